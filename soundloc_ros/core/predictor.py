"""Everything around the graph, the same on every engine: a camera frame and its audio window
in; the frame-size heatmap, mask, peak and source score out, each stage timed.

An InferenceBackend (core.backends) only runs the graph, so TensorRT, ONNX Runtime and PyTorch
can only differ in its arithmetic, which the parity tests bound. FramePipeline
(core.frame_pipeline) adds the no-source rules, which need the score before the maps; hence two
steps: `infer` (pre-processing, inference, score), then `postprocess` (maps and peak), which a
frame without a source skips.

Each answer is computed once, at the size it is published at: the heatmap resized to the frame;
the mask at the frame's size (from the SPS mask output when the bundle has one, else the
thresholded heatmap); the peak located once on the model's grid (GridPeak), from which both the
frame's pixel and the bearing's (in CameraInfo's pixels, not the frame's under binning) follow.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from soundloc_ros.core.backends.base import InferenceBackend
from soundloc_ros.core.bundle import OutputSpec
from soundloc_ros.core.features import compute_features
from soundloc_ros.core.postprocess import GridPeak, check_finite, locate_peak, resize_bilinear
from soundloc_ros.core.preprocess import frame_tensor

STAGES = ("preprocess", "inference", "postprocess")  # timings_ms keys: the node's /diagnostics


def output_plane(values: np.ndarray, spec: OutputSpec) -> np.ndarray:
    """A raw output map [1, 1, h, w] -> [h, w] float32, checked finite."""
    plane = np.asarray(values, dtype=np.float32).reshape(spec.tensor.shape[2:])  # [h, w]
    check_finite(plane, spec.tensor.name)
    return plane


def as_probability(plane: np.ndarray, spec: OutputSpec) -> np.ndarray:
    """An output plane [h, w] -> float32 in [0, 1], per the bundle's `values`."""
    if spec.values == "logit":
        plane = 0.5 * (1.0 + np.tanh(0.5 * plane))  # sigmoid without overflow warnings
    return np.clip(plane, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Inference:
    """One frame after the graph ran: what the no-source decision reads (the score) and what
    post-processing needs (the raw outputs, the frame's size, when the graph returned)."""

    raw: Mapping[str, np.ndarray]  # the bundle's outputs by tensor name
    score: float | None  # the source score (core.detection); None: the bundle has no detection
    height: int  # the frame's
    width: int
    timings_ms: dict[str, float]  # preprocess, inference
    ended_s: float  # time.perf_counter() when the graph returned: post-processing counts from it


@dataclass(frozen=True)
class Prediction:
    """The model's answer at the frame's size."""

    heatmap: np.ndarray  # [H, W] float32 in [0, 1]
    mask: np.ndarray  # [H, W] bool
    peak: GridPeak  # the heatmap scores' strongest response, on the model's grid
    score: float | None
    timings_ms: dict[str, float]  # preprocess, inference, postprocess


class Predictor:
    """Camera frame + mono audio window -> Prediction, on any backend."""

    def __init__(self, backend: InferenceBackend, mask_threshold: float = 0.5) -> None:
        if not 0.0 < mask_threshold < 1.0:
            raise ValueError(f"mask_threshold must be in (0, 1); got {mask_threshold}")
        self.backend = backend
        self.bundle = backend.bundle
        self.mask_threshold = mask_threshold  # the heatmap's, for bundles without a mask output

    def inputs(
        self, frame: np.ndarray, encoding: str, samples: np.ndarray, sample_rate: int
    ) -> dict[str, np.ndarray]:
        """The graph inputs for one camera frame (decoded, in `encoding`) and its audio window
        (float samples in [-1, 1])."""
        bundle = self.bundle
        audio = compute_features(samples, sample_rate, bundle.audio_frontend)  # [n_mels, n_frames]
        return {
            bundle.image.tensor.name: frame_tensor(frame, encoding, bundle.image),  # [1, 3, H, W]
            bundle.audio.name: audio[None, None],  # [1, 1, n_mels, n_frames]
        }

    def score(self, raw: Mapping[str, np.ndarray]) -> float | None:
        """The frame's source score from the raw outputs; None when the bundle cannot score."""
        detection = self.bundle.detection
        if detection is None:
            return None
        return detection.score(raw[self.bundle.outputs[detection.output].tensor.name])

    def infer(
        self, frame: np.ndarray, encoding: str, samples: np.ndarray, sample_rate: int
    ) -> Inference:
        """Pre-processing and inference, timed, and the source score."""
        began = time.perf_counter()
        inputs = self.inputs(frame, encoding, samples, sample_rate)
        inference_began = time.perf_counter()
        raw = self.backend.run(inputs)
        ended = time.perf_counter()
        timings = {"preprocess": (inference_began - began) * 1e3,
                   "inference": (ended - inference_began) * 1e3}  # fmt: skip
        height, width = frame.shape[:2]
        return Inference(raw, self.score(raw), height, width, timings, ended)

    def postprocess(self, inference: Inference, size: tuple[int, int] | None = None) -> Prediction:
        """Raw outputs -> the heatmap and mask at `size` (default: the frame's) and the peak;
        its time includes the score's (everything after the graph returned)."""
        bundle = self.bundle
        height, width = size or (inference.height, inference.width)
        scores = output_plane(inference.raw[bundle.heatmap.tensor.name], bundle.heatmap)  # [h, w]
        heatmap = resize_bilinear(as_probability(scores, bundle.heatmap), height, width)  # [H, W]
        if bundle.mask is None:
            mask = heatmap >= self.mask_threshold
        else:  # the SPS head's cells (p >= 0.5), upsampled bilinearly and cut at half
            plane = output_plane(inference.raw[bundle.mask.tensor.name], bundle.mask)  # [h, w]
            cells = (as_probability(plane, bundle.mask) >= 0.5).astype(np.float32)
            mask = resize_bilinear(cells, height, width) >= 0.5  # [H, W]
        # the peak from the scores (before the sigmoid): they still rank positions where the
        # heatmap has saturated (a logit above ~17 is 1.0 in float32)
        peak = locate_peak(scores)
        timings = {**inference.timings_ms,
                   "postprocess": (time.perf_counter() - inference.ended_s) * 1e3}  # fmt: skip
        return Prediction(heatmap, mask, peak, inference.score, timings)

    def close(self) -> None:
        self.backend.close()
