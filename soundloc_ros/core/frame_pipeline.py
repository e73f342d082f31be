"""One paired frame through the model, the way the node does it: shared by the node and replay.

A decoded camera frame and its audio window become, through core.predictor, the heatmap and mask
at the frame's size and the heatmap peak, and, given the camera's intrinsics, a bearing toward
it. Rosbag replay runs this same object offline, so what replay measures is what the robot
publishes, stage timings included. What is added here are the no-source rules (core.detection),
in order: below `silence_threshold_db` the model does not run; then a frame whose source score
is not above the threshold (the bundle's calibrated one, or the node's override) has no source
either, and is not post-processed. Either way the answer is the all-zero heatmap and mask, no
peak, no bearing, because thresholding a map computed from noise would invent a source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from soundloc_ros.core import geometry
from soundloc_ros.core.detection import DEFAULT_SILENCE_DB, bounding_box, is_silent, is_source
from soundloc_ros.core.postprocess import GridPeak
from soundloc_ros.core.predictor import Predictor

SILENCE, BELOW_THRESHOLD = "silence", "below_threshold"  # why a frame has no source


@dataclass(frozen=True)
class CameraModel:
    """A calibrated camera from CameraInfo, with the image size it describes (binning-safe).

    `rectified`: the images are already undistorted (image_rect), so P describes them and D
    does not apply; otherwise (image_raw) a pixel is undone through K and D. CameraInfo cannot
    say which: image_proc republishes the raw camera's CameraInfo, D included, next to
    image_rect, so the node is told (parameter `rectified`).
    """

    matrix: np.ndarray  # K [3, 3], or P's left 3x3 when rectified
    height: int  # 0: the frame's own size (CameraInfo leaves it unset)
    width: int
    distortion_model: str = (
        geometry.PLUMB_BOB
    )  # the undistortion: plumb_bob (also rational) or equidistant
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(8))  # geometry.coefficients
    rectified: bool = False

    @classmethod
    def from_camera_info(
        cls, k, height: int, width: int, d=(), distortion_model: str = "", p=(),
        rectified: bool = False,
    ) -> CameraModel | None:  # fmt: skip
        """CameraInfo fields -> a model; None when the matrix used has no focal length
        (uncalibrated); ValueError naming the fix for a distortion model it cannot undo."""
        matrix = np.asarray(k, dtype=np.float64).reshape(3, 3)  # row-major K
        projection = np.asarray(p, dtype=np.float64).reshape(3, 4) if len(p) else None  # P
        if rectified:
            if projection is None or projection[0, 0] <= 0 or projection[1, 1] <= 0:
                raise ValueError(
                    "rectified:=true but camera_info has no projection matrix P; calibrate the "
                    "camera (camera_calibration) or use raw images with rectified:=false"
                )
            return cls(projection[:, :3].copy(), int(height), int(width), rectified=True)
        if matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
            return None
        coefficients = geometry.coefficients(distortion_model, d)
        model = distortion_model if distortion_model == geometry.EQUIDISTANT else geometry.PLUMB_BOB
        return cls(matrix, int(height), int(width), model, coefficients)

    @classmethod
    def from_message(cls, msg, rectified: bool = False) -> CameraModel | None:
        """From a CameraInfo message (rclpy's or rosbags'; the field names are the same)."""
        return cls.from_camera_info(msg.k, msg.height, msg.width, d=msg.d,
                                    distortion_model=msg.distortion_model, p=msg.p,
                                    rectified=rectified)  # fmt: skip

    def ray(self, u: float, v: float) -> np.ndarray:
        """Unit vector toward pixel (u, v) of the image this model describes."""
        fx, fy, cx, cy = geometry.pinhole(self.matrix)
        xd, yd = (u - cx) / fx, (v - cy) / fy
        if self.rectified:
            return geometry.unit(xd, yd)
        return geometry.undistorted_ray(self.distortion_model, self.distortion, xd, yd)

    def project(self, direction: np.ndarray) -> tuple[float, float]:
        """(u, v) pixels of the image this model describes that `direction` points at."""
        fx, fy, cx, cy = geometry.pinhole(self.matrix)
        if self.rectified:
            x, y, z = np.asarray(direction, np.float64)
            xd, yd = x / z, y / z
        else:
            xd, yd = geometry.distort(self.distortion_model, self.distortion, direction)
        return fx * xd + cx, fy * yd + cy

    def described_size(self, frame_shape: tuple[int, ...]) -> tuple[int, int]:
        """(height, width) of the pixels the model describes: CameraInfo's, else the frame's."""
        return self.height or frame_shape[0], self.width or frame_shape[1]

    def pixel(self, direction: np.ndarray, frame_shape: tuple[int, ...]) -> tuple[float, float]:
        """(u, v) frame pixels a bearing points at: the inverse of FrameResult.bearing."""
        u, v = self.project(direction)
        height, width = self.described_size(frame_shape)
        scale_u, scale_v = frame_shape[1] / width, frame_shape[0] / height
        return (u + 0.5) * scale_u - 0.5, (v + 0.5) * scale_v - 0.5


OUTPUT_RESOLUTIONS = ("frame", "model")  # the size the heatmap and mask are published at


@dataclass
class FrameResult:
    heatmap: np.ndarray  # [H, W] float32 in [0, 1], the frame's size (or the model's grid)
    mask: np.ndarray  # [H, W] bool, the heatmap's size
    grid_peak: GridPeak | None  # the strongest response on the model's grid; None: no source
    timings_ms: dict[str, float] = field(default_factory=dict)  # preprocess/inference/postprocess
    score: float | None = None  # the source score (core.detection); None: silence, or uncalibrated
    no_source: str | None = None  # why there is no source (SILENCE, BELOW_THRESHOLD), else None
    frame_size: tuple[int, int] | None = None  # (H, W) of the camera frame; None: the heatmap's

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.frame_size or self.heatmap.shape

    @property
    def peak(self) -> tuple[float, float] | None:
        """(u, v) frame pixels of the strongest response; None without a source."""
        return None if self.grid_peak is None else self.grid_peak.pixel(*self.frame_shape)

    def box(self) -> tuple[float, float, float, float] | None:
        """The mask's bounding box (centre u, v, width, height) in frame pixels, whatever size
        the mask has; None without a source or with an empty mask."""
        box = None if self.no_source else bounding_box(self.mask)
        if box is None:
            return None
        u, v, width, height = box
        scale_v, scale_u = (f / m for f, m in zip(self.frame_shape, self.mask.shape, strict=True))
        return (
            (u + 0.5) * scale_u - 0.5,
            (v + 0.5) * scale_v - 0.5,
            width * scale_u,
            height * scale_v,
        )

    def bearing(self, camera: CameraModel | None) -> np.ndarray | None:
        """Unit vector toward the peak in the camera optical frame; None without a source or K.

        Asked for when publishing, so the newest CameraInfo applies even if it arrived while
        the frame was in inference. The peak is placed in the pixels K describes, which are not
        the frame's when the camera bins.
        """
        if self.grid_peak is None or camera is None:
            return None
        return camera.ray(*self.grid_peak.pixel(*camera.described_size(self.frame_shape)))


def no_source_result(
    size: tuple[int, int], why: str, score: float | None = None, timings=None,
    frame_size: tuple[int, int] | None = None,
) -> FrameResult:  # fmt: skip
    """The all-zero answer at the output size."""
    empty = np.zeros(size, np.float32)
    return FrameResult(empty, empty.astype(bool), grid_peak=None, timings_ms=timings or {},
                       score=score, no_source=why, frame_size=frame_size)  # fmt: skip


class FramePipeline:
    """The no-source rules around a Predictor, one frame at a time (not thread-safe).

    `source_threshold`: None uses the bundle's calibrated threshold (every frame has a source
    when the bundle has none); a number overrides it. `output_resolution`: the heatmap and mask
    at the frame's size ("frame"), or on the model's grid ("model": 56x56 for the default
    bundle instead of 640x480, a 100th of the bytes to publish); the peak, bearing and box are in
    frame pixels either way."""

    def __init__(
        self, predictor: Predictor, silence_threshold_db: float = DEFAULT_SILENCE_DB,
        source_threshold: float | None = None, output_resolution: str = "frame",
    ) -> None:  # fmt: skip
        self.predictor = predictor
        self.silence_threshold_db = silence_threshold_db
        self.source_threshold = source_threshold
        self.output_resolution = output_resolution

    def output_size(self, frame_size: tuple[int, int]) -> tuple[int, int]:
        """(H, W) of the published maps for a frame of `frame_size`."""
        if self.output_resolution not in OUTPUT_RESOLUTIONS:
            raise ValueError(
                f"output_resolution must be one of {OUTPUT_RESOLUTIONS}; got "
                f"{self.output_resolution!r}"
            )
        if self.output_resolution == "model":
            return tuple(self.predictor.bundle.heatmap.tensor.shape[2:])  # [1, 1, h, w] -> (h, w)
        return frame_size

    @property
    def threshold(self) -> float:
        """The source threshold in force (-inf: no decision, every frame has a source)."""
        if self.source_threshold is not None:
            return self.source_threshold
        detection = self.predictor.bundle.detection
        return detection.threshold if detection is not None else -np.inf

    def process(
        self,
        frame: np.ndarray,
        encoding: str,
        samples: np.ndarray,
        sample_rate: int,
    ) -> FrameResult:
        """frame: decoded image [H, W(, C)] in `encoding`; samples: mono float audio window."""
        frame_size = frame.shape[:2]
        size = self.output_size(frame_size)
        if is_silent(samples, self.silence_threshold_db):
            return no_source_result(size, SILENCE, frame_size=frame_size)
        inference = self.predictor.infer(frame, encoding, samples, sample_rate)
        score = inference.score
        if score is not None and not is_source(score, self.threshold):
            return no_source_result(
                size, BELOW_THRESHOLD, score, inference.timings_ms, frame_size=frame_size
            )
        found = self.predictor.postprocess(inference, size)
        return FrameResult(found.heatmap, found.mask, found.peak, found.timings_ms, score,
                           frame_size=frame_size)  # fmt: skip
