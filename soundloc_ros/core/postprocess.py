"""Post-processing of model heatmaps: resizing and normalization, in pure numpy.

The network emits a coarse score map (e.g. 7x7 or 28x28); the node and the evaluation both need
it at image resolution and on a common [0, 1] scale. These helpers are shared by the ROS node,
training evaluation and rosbag replay, so all three see the same numbers, and they run on robots
without torch or OpenCV.

Choices, and why:
- Bilinear resizing uses half-pixel centres (align_corners=False) with edge clamping, the
  convention of OpenCV INTER_LINEAR and torch `F.interpolate(mode="bilinear",
  align_corners=False)` without antialias, so maps match what models were trained and evaluated
  with in PyTorch. No antialiasing on downsampling, for the same reason.
- Arithmetic is float64 internally and the result float32: the inputs are small maps, and float32
  output halves the memory of full-resolution maps without any loss that matters for display or
  thresholding.
"""

from __future__ import annotations

import numpy as np


def _check_size(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer number of pixels; got {value!r}")
    return int(value)


def _bilinear_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (lower, upper) and upper-neighbour weights for one axis.

    Output pixel i has its centre at i + 0.5; mapped into the input it lies at
    (i + 0.5) * n_in / n_out - 0.5. Positions left of the first input centre are clamped to it,
    and the upper neighbour is clamped to the last pixel, so borders replicate the edge value
    (exactly what torch and OpenCV do).
    """
    scale = n_in / n_out
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5
    src = np.maximum(src, 0.0)
    lower = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    upper = np.minimum(lower + 1, n_in - 1)
    weight_upper = src - lower  # in [0, 1); irrelevant where upper == lower
    return lower, upper, weight_upper


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a 2-D map to (height, width) bilinearly, half-pixel centres, edges clamped.

    Matches torch `F.interpolate(x, (height, width), mode="bilinear", align_corners=False)`
    (antialias off) and OpenCV INTER_LINEAR, for up- and down-sampling. Returns float32.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(
            f"resize_bilinear expects a 2-D (H, W) map; got shape {image.shape}. "
            "Select one map first, e.g. heatmap[0, 0] for a (1, 1, H, W) model output."
        )
    if image.size == 0:
        raise ValueError(f"resize_bilinear got an empty map of shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == np.bool_):
        raise ValueError(f"resize_bilinear needs a numeric map; got dtype {image.dtype}")
    height = _check_size("height", height)
    width = _check_size("width", width)
    in_h, in_w = image.shape
    data = image.astype(np.float64, copy=False)

    row_lo, row_hi, row_w = _bilinear_axis(in_h, height)
    col_lo, col_hi, col_w = _bilinear_axis(in_w, width)

    # Rows first: (height, in_w), then columns: (height, width).
    rows = data[row_lo] * (1.0 - row_w)[:, None] + data[row_hi] * row_w[:, None]
    out = rows[:, col_lo] * (1.0 - col_w)[None, :] + rows[:, col_hi] * col_w[None, :]
    return out.astype(np.float32)


def check_finite(values: np.ndarray, name: str = "heatmap") -> None:
    """Refuse NaN/inf, naming how many: one bad value would otherwise poison every threshold."""
    values = np.asarray(values)
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_):
        raise ValueError(f"{name} must be numeric; got dtype {values.dtype}")
    n_bad = int(np.count_nonzero(~np.isfinite(values)))
    if n_bad:
        raise ValueError(
            f"{name} has {n_bad} non-finite value(s) (NaN or inf) out of {np.size(values)}; "
            "check the model output (e.g. overflow in fp16) or replace them with np.nan_to_num "
            "before normalizing"
        )


def normalize_minmax(heatmap: np.ndarray) -> np.ndarray:
    """Rescale a map linearly to [0, 1]: (x - min) / (max - min), as float32.

    A constant map becomes all zeros: a flat map carries no localization, so it must not light
    up the whole image (or divide by zero). Non-finite values are refused rather than silently
    spreading NaN through every later threshold.
    """
    heatmap = np.asarray(heatmap)
    if heatmap.size == 0:
        raise ValueError(f"normalize_minmax got an empty map of shape {heatmap.shape}")
    if not (np.issubdtype(heatmap.dtype, np.number) or heatmap.dtype == np.bool_):
        raise ValueError(f"normalize_minmax needs a numeric map; got dtype {heatmap.dtype}")
    data = heatmap.astype(np.float64, copy=False)
    check_finite(data)
    low = data.min()
    span = data.max() - low
    if span == 0:
        return np.zeros(data.shape, dtype=np.float32)
    return ((data - low) / span).astype(np.float32)
