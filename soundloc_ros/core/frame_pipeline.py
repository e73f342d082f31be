"""One paired frame through the localizer, the way the node does it: shared by the node and replay.

A decoded camera frame and its audio window become the heatmap and mask at the frame's size, the
heatmap peak and, given the camera's intrinsics, a bearing toward it. Rosbag replay runs
this same object offline, so what replay measures is what the robot publishes, stage timings
included. The silence rule lives here too: below `silence_threshold_db` the answer is "no source"
(all-zero heatmap and mask, no peak, no bearing), because thresholding a map computed from noise
would invent one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from soundloc_ros.core.backends import Localizer
from soundloc_ros.core.features import level_dbfs
from soundloc_ros.core.postprocess import bearing_from_pixel, peak_pixel, resize_bilinear

DEFAULT_SILENCE_DB = -55.0


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics from CameraInfo, with the image size they describe (binning-safe)."""

    matrix: np.ndarray  # K [3, 3]
    height: int  # 0: the frame's own size (CameraInfo leaves it unset)
    width: int

    @classmethod
    def from_camera_info(cls, k, height: int, width: int) -> CameraModel | None:
        """CameraInfo fields -> a model; None when K has no focal length (uncalibrated)."""
        matrix = np.asarray(k, dtype=np.float64).reshape(3, 3)  # row-major K
        if matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
            return None
        return cls(matrix, int(height), int(width))

    def pixel(self, direction: np.ndarray, frame_shape: tuple[int, ...]) -> tuple[float, float]:
        """(u, v) frame pixels a bearing points at: the inverse of FrameResult.bearing."""
        x, y, z = np.asarray(direction, np.float64)
        u = self.matrix[0, 0] * x / z + self.matrix[0, 2]  # in the pixels K describes
        v = self.matrix[1, 1] * y / z + self.matrix[1, 2]
        height, width = frame_shape[:2]
        scale_u, scale_v = width / (self.width or width), height / (self.height or height)
        return (u + 0.5) * scale_u - 0.5, (v + 0.5) * scale_v - 0.5


@dataclass
class FrameResult:
    heatmap: np.ndarray  # [H, W] float32 in [0, 1], the frame's size
    mask: np.ndarray  # [H, W] bool
    model_scores: np.ndarray | None  # [h, w] model resolution, before the sigmoid; None: silent
    peak: tuple[float, float] | None  # (u, v) frame pixels of the strongest response
    timings_ms: dict[str, float] = field(default_factory=dict)  # preprocess/inference/postprocess

    @property
    def silent(self) -> bool:
        return self.model_scores is None

    def bearing(self, camera: CameraModel | None) -> np.ndarray | None:
        """Unit vector toward the peak in the camera optical frame; None without a source or K.

        Asked for when publishing, so the newest CameraInfo applies even if it arrived while
        the frame was in inference. The peak is located in the pixels K describes (binning).
        """
        if self.model_scores is None or camera is None:
            return None
        size = (camera.height or self.heatmap.shape[0], camera.width or self.heatmap.shape[1])
        return bearing_from_pixel(*peak_pixel(self.model_scores, *size), camera.matrix)


class FramePipeline:
    """Localizer + the node's pre/post-processing for one frame at a time (not thread-safe)."""

    def __init__(self, localizer: Localizer, silence_threshold_db: float = DEFAULT_SILENCE_DB):
        self.localizer = localizer
        self.silence_threshold_db = silence_threshold_db

    def process(
        self,
        frame: np.ndarray,
        encoding: str,
        samples: np.ndarray,
        sample_rate: int,
    ) -> FrameResult:
        """frame: decoded image [H, W(, C)] in `encoding`; samples: mono float audio window."""
        height, width = frame.shape[:2]
        if level_dbfs(samples) < self.silence_threshold_db:
            empty = np.zeros((height, width), np.float32)
            return FrameResult(empty, empty.astype(bool), None, None)
        began = time.perf_counter()
        inputs = self.localizer.inputs(frame, samples, sample_rate, encoding)
        inference_began = time.perf_counter()
        raw = self.localizer.backend.run(inputs)
        post_began = time.perf_counter()
        result = self.localizer.outputs(raw)
        heatmap = resize_bilinear(result.heatmap, height, width)  # [H, W]
        if self.localizer.bundle.mask is not None:
            mask = resize_bilinear(result.mask.astype(np.float32), height, width) >= 0.5
        else:
            mask = heatmap >= self.localizer.mask_threshold
        peak = peak_pixel(result.scores, height, width)
        done = time.perf_counter()
        timings = {
            "preprocess": (inference_began - began) * 1e3,
            "inference": (post_began - inference_began) * 1e3,
            "postprocess": (done - post_began) * 1e3,
        }
        return FrameResult(heatmap, mask, result.scores, peak, timings)
