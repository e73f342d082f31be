"""One interface over every inference engine.

An `InferenceBackend` only runs the bundle's graph: named float tensors in, named tensors out.
Everything around it, the same for TensorRT, ONNX Runtime and PyTorch (frame and audio in,
heatmap, mask, peak and score out), is core.predictor's, so the backends can only differ in the
graph's arithmetic, which the parity tests bound.
"""

from __future__ import annotations

import abc

import numpy as np

from soundloc_ros.core.bundle import BundleError, ModelBundle
from soundloc_ros.core.postprocess import check_finite


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
