"""Inference backends behind one interface; `create_backend` picks and falls back.

backend = create_backend(load_bundle("bundles/default"), "auto", engine_cache_dir="~/.cache")
predictor = Predictor(backend)  # core.predictor: frame + audio in; heatmap, mask, peak out
"""

from __future__ import annotations

import logging

from soundloc_ros.core.backends.base import BackendUnavailableError, InferenceBackend, warm_up
from soundloc_ros.core.bundle import BundleError, ModelBundle

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
DEFAULT_ENGINE_CACHE = "~/.cache/soundloc_ros/engines"
log = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "InferenceBackend",
    "create_backend",
]


def create_backend(
    bundle: ModelBundle,
    name: str = "auto",
    engine_cache_dir: str = DEFAULT_ENGINE_CACHE,
    precision: str = "fp16",
    fallback: bool = True,
    threads: int = 0,
) -> InferenceBackend:
    """The requested backend, warmed up and checked against bundle.json (base.warm_up); `auto`
    is TensorRT when usable, else ONNX Runtime.

    When TensorRT is asked for but cannot run (no bindings, no GPU, a graph it cannot parse, a
    failed build, out of device memory), the reason is logged and ONNX Runtime is used instead,
    unless `fallback` is False: then BackendUnavailableError carries the reason.
    """
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {name!r}")
    backend = _open_backend(bundle, name, engine_cache_dir, precision, fallback, threads)
    try:
        warm_up(backend)
    except BundleError:
        backend.close()
        raise
    return backend


def _open_backend(
    bundle: ModelBundle,
    name: str,
    engine_cache_dir: str,
    precision: str,
    fallback: bool,
    threads: int,
) -> InferenceBackend:
    if name == "onnxruntime":
        from soundloc_ros.core.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(bundle, threads=threads)
    if name == "torch":
        from soundloc_ros.core.backends.torch import TorchBackend

        return TorchBackend(bundle)
    from soundloc_ros.core.backends import tensorrt

    reason = tensorrt.unavailable_reason()
    if reason is None:
        try:
            return tensorrt.TensorRTBackend(bundle, engine_cache_dir, precision)
        except Exception as error:  # parser, builder, pycuda and CUDA errors have many types
            reason = f"TensorRT failed: {type(error).__name__}: {error}"
    if name == "tensorrt" and not fallback:
        raise BackendUnavailableError(reason)
    level = logging.WARNING if name == "tensorrt" else logging.INFO
    log.log(level, "TensorRT is not used (%s); running on ONNX Runtime", reason)
    return _open_backend(bundle, "onnxruntime", engine_cache_dir, precision, fallback, threads)
