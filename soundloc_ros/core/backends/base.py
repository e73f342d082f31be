"""One localizer interface over every inference engine.

An `InferenceBackend` only runs the bundle's graph: named float tensors in, named tensors out.
Everything around it, the same for TensorRT, ONNX Runtime and PyTorch, lives in `Localizer`:
the camera frame -> image tensor rule (core.preprocess), the audio window -> log-mel front-end
(core.features), and the outputs -> a [0, 1] heatmap and a binary mask. So the three backends can
only differ in the graph's arithmetic, which the parity tests bound.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from soundloc_ros.core.bundle import BundleError, ModelBundle, OutputSpec
from soundloc_ros.core.features import compute_features
from soundloc_ros.core.postprocess import check_finite
from soundloc_ros.core.preprocess import frame_tensor


class BackendUnavailableError(RuntimeError):
    """This backend cannot run here; the message says what is missing and what to do."""


class InferenceBackend(abc.ABC):
    """Runs the bundle's graph. Inputs and outputs are keyed by the bundle's tensor names."""

    name: str = "?"

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle

    @property
    def description(self) -> str:
        """What actually runs (engine, device, precision): reported in /diagnostics."""
        return self.name

    @abc.abstractmethod
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference; returns every output the bundle declares, as float32 arrays."""

    def close(self) -> None:  # noqa: B027 - most backends hold nothing that needs releasing
        """Release engines and device memory (idempotent)."""


def warm_up(backend: InferenceBackend) -> None:
    """One inference on zeros, checked against bundle.json: every declared output, of its
    declared size, finite. Run at load, so a bundle that cannot serve is refused with the reason
    at start instead of failing on every frame; it also pays the first-run costs early."""
    bundle = backend.bundle
    zeros = {
        spec.name: np.zeros(spec.shape, np.dtype(spec.dtype))
        for spec in (bundle.image.tensor, bundle.audio)
    }
    try:
        raw = backend.run(zeros)
    except Exception as error:  # every engine raises its own types
        raise BundleError(
            f"{bundle.onnx_path}: a test inference failed ({type(error).__name__}: {error}); "
            "re-export the bundle"
        ) from None
    for spec in bundle.outputs.values():
        values = raw.get(spec.tensor.name)
        size = int(np.prod(spec.tensor.shape))
        if values is None or np.size(values) != size:
            got = "nothing" if values is None else f"shape {list(np.shape(values))}"
            raise BundleError(
                f"{bundle.onnx_path}: output {spec.tensor.name!r} gave {got} in a test inference, "
                f"but bundle.json says {list(spec.tensor.shape)}; re-export the bundle"
            )
        try:
            check_finite(np.asarray(values, np.float32), spec.tensor.name)
        except ValueError as error:
            raise BundleError(f"{bundle.onnx_path}: test inference: {error}") from None


def output_names(bundle: ModelBundle) -> list[str]:
    """The graph's output tensors, in its order: heatmap, then mask and coarse where present."""
    return [spec.tensor.name for spec in bundle.outputs.values()]


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
class Localization:
    """The model's answer at its own resolution: heatmap in [0, 1], mask True where sounding.

    `scores` is the heatmap output before the sigmoid: it ranks positions where the heatmap has
    saturated (a logit above ~17 is 1.0 in float32), so the peak is taken from it.
    """

    heatmap: np.ndarray  # [h, w] float32
    mask: np.ndarray  # [h, w] bool
    scores: np.ndarray  # [h, w] float32, monotone in the heatmap


class Localizer:
    """uint8 camera frame + mono audio window -> Localization, on any backend."""

    def __init__(self, backend: InferenceBackend, mask_threshold: float = 0.5) -> None:
        if not 0.0 < mask_threshold < 1.0:
            raise ValueError(f"mask_threshold must be in (0, 1); got {mask_threshold}")
        self.backend = backend
        self.bundle = backend.bundle
        self.mask_threshold = mask_threshold

    def inputs(
        self, frame: np.ndarray, samples: np.ndarray, sample_rate: int, encoding: str = "rgb8"
    ) -> dict[str, np.ndarray]:
        """The graph inputs for one camera frame (decoded, in `encoding`) and its audio window
        (float samples in [-1, 1])."""
        bundle = self.bundle
        audio = compute_features(samples, sample_rate, bundle.audio_frontend)  # [n_mels, n_frames]
        return {
            bundle.image.tensor.name: frame_tensor(frame, encoding, bundle.image),  # [1, 3, H, W]
            bundle.audio.name: audio[None, None],  # [1, 1, n_mels, n_frames]
        }

    def outputs(self, raw: dict[str, np.ndarray]) -> Localization:
        """Raw outputs -> heatmap and mask (the thresholded heatmap when there is no mask head)."""
        bundle = self.bundle
        scores = output_plane(raw[bundle.heatmap.tensor.name], bundle.heatmap)
        heatmap = as_probability(scores, bundle.heatmap)
        if bundle.mask is not None:
            mask_plane = output_plane(raw[bundle.mask.tensor.name], bundle.mask)
            mask = as_probability(mask_plane, bundle.mask) >= 0.5
        else:
            mask = heatmap >= self.mask_threshold
        return Localization(heatmap=heatmap, mask=mask, scores=scores)

    def localize(self, rgb: np.ndarray, samples: np.ndarray, sample_rate: int) -> Localization:
        return self.outputs(self.backend.run(self.inputs(rgb, samples, sample_rate)))

    def close(self) -> None:
        self.backend.close()
