"""Post-processing of model heatmaps: resizing and the peak, in pure numpy.

The network emits a coarse score map (e.g. 7x7 or 28x28); the node and the evaluation both need
it at image resolution and on a common [0, 1] scale (min–max normalization: core.maps). These
helpers are shared by the ROS node, training evaluation and rosbag replay, so all three see the
same numbers, and they run on robots without torch or OpenCV.

Choices, and why:
- Bilinear resizing uses half-pixel centres (align_corners=False) with edge clamping, the
  convention of OpenCV INTER_LINEAR and torch `F.interpolate(mode="bilinear",
  align_corners=False)` without antialias, so maps match what models were trained and evaluated
  with in PyTorch. No antialiasing on downsampling, for the same reason.
- Resizing runs in float32 (two small matrix products; within 1e-6 of float64 for maps in
  [0, 1]), normalization (core.maps) in float64; results are float32, which halves the memory
  of full-resolution maps without any loss that matters for display or thresholding.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


def check_size(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer number of pixels; got {value!r}")
    return int(value)


@functools.lru_cache(maxsize=32)
def _bilinear_matrix(n_in: int, n_out: int, transposed: bool = False) -> np.ndarray:
    """[n_out, n_in] float32 interpolation weights for one axis (each row sums to 1), or
    their transpose, contiguous (a strided operand would make the product 30x slower).

    Output pixel i has its centre at i + 0.5; mapped into the input it lies at
    (i + 0.5) * n_in / n_out - 0.5. Positions left of the first input centre are clamped to it,
    and the upper neighbour is clamped to the last pixel, so borders replicate the edge value
    (exactly what torch and OpenCV do).
    """
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.maximum(src, 0.0)
    lower = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    upper = np.minimum(lower + 1, n_in - 1)
    weight_upper = src - lower  # in [0, 1); irrelevant where upper == lower
    matrix = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, lower), 1.0 - weight_upper)
    np.add.at(matrix, (rows, upper), weight_upper)
    matrix = np.ascontiguousarray(matrix.T if transposed else matrix, dtype=np.float32)
    matrix.setflags(write=False)
    return matrix


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a 2-D map to (height, width) bilinearly, half-pixel centres, edges clamped.

    Matches torch `F.interpolate(x, (height, width), mode="bilinear", align_corners=False)`
    (antialias off) and OpenCV INTER_LINEAR, for up- and down-sampling. Returns float32.
    Computed as rows @ map @ columns^T with cached weight matrices: a 14x14 map to 640x480
    is two small matrix products (well under a millisecond), which the node does every frame.
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
    height = check_size("height", height)
    width = check_size("width", width)
    rows = _bilinear_matrix(image.shape[0], height)  # [height, in_h]
    cols_t = _bilinear_matrix(image.shape[1], width, transposed=True)  # [in_w, width]
    return (rows @ image.astype(np.float32)) @ cols_t  # [height, in_w] @ [in_w, width]


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


@dataclass(frozen=True)
class GridPeak:
    """A map's strongest response in the map's own cell coordinates (cell centres at integers),
    with the grid's size. Located once, it is placed in any image the map is stretched over: the
    frame, and the pixels CameraInfo describes, which differ when the camera bins."""

    col: float
    row: float
    cols: int
    rows: int

    def pixel(self, height: int, width: int) -> tuple[float, float]:
        """(u, v) in a (height, width) image the map covers, pixel centres at integers."""
        u = (self.col + 0.5) * width / self.cols - 0.5
        return u, (self.row + 0.5) * height / self.rows - 0.5


def locate_peak(heatmap: np.ndarray) -> GridPeak:
    """A map's strongest response [h, w] -> GridPeak.

    The arg-max cell is refined by the response-weighted centroid of its 3x3 neighbourhood, so
    the bearing moves smoothly instead of jumping cell by cell on a coarse 14x14 map.
    """
    rows, cols = heatmap.shape
    row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    r0, r1, c0, c1 = max(0, row - 1), min(rows, row + 2), max(0, col - 1), min(cols, col + 2)
    patch = heatmap[r0:r1, c0:c1].astype(np.float64)
    weights = patch - patch.min() + 1e-12
    grid_r, grid_c = np.mgrid[r0:r1, c0:c1]
    centre_r = float((weights * grid_r).sum() / weights.sum())
    centre_c = float((weights * grid_c).sum() / weights.sum())
    return GridPeak(centre_c, centre_r, cols, rows)


def peak_pixel(heatmap: np.ndarray, height: int, width: int) -> tuple[float, float]:
    """(u, v) image coordinates (pixel centres at integers) of a map's strongest response."""
    return locate_peak(heatmap).pixel(height, width)


def _colormap() -> np.ndarray:
    """A 256-entry blue-cyan-yellow-red ramp (uint8 RGB), perceptually ordered enough for
    a glance at where the sound is; avoids an OpenCV dependency."""
    x = np.linspace(0.0, 1.0, 256)
    red = np.clip(1.5 - np.abs(4 * x - 3), 0, 1)
    green = np.clip(1.5 - np.abs(4 * x - 2), 0, 1)
    blue = np.clip(1.5 - np.abs(4 * x - 1), 0, 1)
    return (255 * np.stack([red, green, blue], axis=1)).astype(np.uint8)


COLORMAP = _colormap()


def overlay(rgb: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the colour-mapped heatmap (same H, W, values in [0, 1]) over an RGB frame."""
    colours = COLORMAP[np.clip(heatmap * 255, 0, 255).astype(np.uint8)]  # [H, W, 3]
    weight = (alpha * heatmap)[..., None]  # stronger responses are more opaque
    return (rgb * (1 - weight) + colours * weight).astype(np.uint8)
