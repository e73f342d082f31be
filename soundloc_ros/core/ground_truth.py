"""Ground-truth maps, the metrics' other input: dataset masks and boxes as the protocols read them.

Datasets ship masks in several encodings and boxes per annotator; the LVS protocol compares maps
on a LVS_SIZE x LVS_SIZE grid whose pixels weigh 0, 0.5 or 1. Training's data loading and rosbag
replay build these maps without scoring anything, so they live apart from core.metrics. An
encoding that cannot be read for sure is refused with the fix: a guess would silently change the
ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from soundloc_ros.core.postprocess import check_size

LVS_SIZE = 224
"""Side of the square grid on which LVS-protocol cIoU is computed."""


def binary_mask(mask: np.ndarray) -> np.ndarray:
    """A ground-truth mask as bool, accepting the encodings datasets ship masks in.

    Accepted: bool; integers with values in {0, 1} or {0, 255} (foreground = nonzero); floats in
    [0, 1] (foreground = > 0.5, so a mask that was resized with interpolation is re-binarized at
    its midpoint). Anything else (a label map with several classes, floats scaled to 255) is
    refused, because guessing would silently change the ground truth.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(
            f"a ground-truth mask must be a non-empty 2-D (H, W) array; got shape {mask.shape}. "
            "Drop channel axes first, e.g. mask[..., 0] for an (H, W, 3) PNG."
        )
    if mask.dtype == np.bool_:
        return mask.copy()
    if np.issubdtype(mask.dtype, np.integer):
        values = np.unique(mask)
        if not (set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255}):
            shown = values[:8].tolist()
            raise ValueError(
                f"integer mask has values {shown}{'...' if values.size > 8 else ''}; expected a "
                "binary mask with values 0/1 or 0/255. For a label map, select the class first "
                "(mask == class_id)."
            )
        return mask > 0
    if np.issubdtype(mask.dtype, np.floating):
        if not np.all(np.isfinite(mask)):
            raise ValueError("float mask contains NaN or inf; expected values in [0, 1]")
        low, high = float(mask.min()), float(mask.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"float mask has values in [{low:g}, {high:g}]; expected [0, 1]. "
                "Divide a 0/255 mask by 255 (or pass it as uint8)."
            )
        return mask > 0.5
    raise ValueError(f"unsupported mask dtype {mask.dtype}; use bool, uint8 or float")


def _nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index floor((i + 0.5) * n_in / n_out) for each output pixel, clamped.

    Integer arithmetic ((2i + 1) * n_in // (2 n_out)) keeps it exact: with floats a product
    landing on an integer could round either way and shift a mask edge by a pixel.
    """
    out = np.arange(n_out, dtype=np.int64)
    return np.minimum((2 * out + 1) * n_in // (2 * n_out), n_in - 1)


def resize_nearest(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize with half-pixel centres; keeps dtype (masks stay binary)."""
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"resize_nearest expects a non-empty 2-D (H, W) array; got {image.shape}")
    rows = _nearest_indices(image.shape[0], check_size("height", height))
    cols = _nearest_indices(image.shape[1], check_size("width", width))
    return image[rows[:, None], cols[None, :]]  # (height, width)


def mask_to_map(mask: np.ndarray, size: int = LVS_SIZE) -> np.ndarray:
    """A binary mask of any size -> float32 (size, size) ground-truth map with values {0, 1}.

    Nearest-neighbour resizing keeps the mask binary (no blurred edge to re-threshold). Accepted
    encodings are those of `binary_mask`: bool, integer 0/1 or 0/255, float in [0, 1] (> 0.5).
    """
    size = check_size("size", size)
    binary = binary_mask(mask)
    return resize_nearest(binary, size, size).astype(np.float32)


def _annotator_boxes(boxes_per_annotator: Sequence[Sequence[Sequence[float]]]) -> list[np.ndarray]:
    """Validate the nested box structure; one (n_boxes, 4) float array per annotator."""
    groups: list[np.ndarray] = []
    for a, boxes in enumerate(boxes_per_annotator):
        arr = np.asarray(boxes, dtype=np.float64)
        if arr.size == 0:
            groups.append(np.zeros((0, 4)))
            continue
        if arr.ndim == 1 and arr.shape[0] == 4:
            raise ValueError(
                f"annotator {a} holds a single box {arr.tolist()} instead of a list of boxes; "
                "boxes_per_annotator is a list (annotators) of lists (boxes) of "
                "(xmin, ymin, xmax, ymax). For one annotator pass [boxes]."
            )
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise ValueError(
                f"annotator {a}: boxes must be (xmin, ymin, xmax, ymax) 4-tuples; got an array "
                f"of shape {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"annotator {a}: box coordinates contain NaN or inf")
        arr = np.clip(arr, 0.0, 1.0)
        bad = (arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1])
        if np.any(bad):
            raise ValueError(
                f"annotator {a}: box {arr[np.argmax(bad)].tolist()} has xmax < xmin or "
                "ymax < ymin; boxes are (xmin, ymin, xmax, ymax) normalized to [0, 1], not "
                "(x, y, width, height)"
            )
        groups.append(arr)
    return groups


def boxes_to_map(
    boxes_per_annotator: Sequence[Sequence[Sequence[float]]],
    size: int = LVS_SIZE,
    *,
    consensus: bool,
) -> np.ndarray:
    """Ground-truth map (size, size) float32 from boxes, as the LVS evaluation builds it.

    Boxes are (xmin, ymin, xmax, ymax) normalized to [0, 1] (clipped to it), grouped per
    annotator. A box covers pixel (row i, column j) when int(size*xmin) <= j < int(size*xmax)
    and int(size*ymin) <= i < int(size*ymax).

    consensus=False (VGG-SS): the union of all boxes, values {0, 1}.
    consensus=True (Flickr-SoundNet): the count of boxes covering a pixel, over all boxes of all
    annotators, divided by 2 and clipped to 1: values 0 / 0.5 / 1, so a region only one box marks
    counts half, and one that two or more boxes agree on counts fully.
    """
    size = check_size("size", size)
    if isinstance(boxes_per_annotator, np.ndarray) and boxes_per_annotator.ndim == 2:
        raise ValueError(
            f"boxes_per_annotator has shape {boxes_per_annotator.shape}; it needs a per-annotator "
            "level, shape (n_annotators, n_boxes, 4). For one annotator pass [boxes]."
        )
    count = np.zeros((size, size), dtype=np.float64)
    for boxes in _annotator_boxes(boxes_per_annotator):
        for xmin, ymin, xmax, ymax in boxes:
            count[int(size * ymin) : int(size * ymax), int(size * xmin) : int(size * xmax)] += 1.0
    if consensus:
        return np.minimum(count / 2.0, 1.0).astype(np.float32)
    return (count > 0).astype(np.float32)
