"""TensorRT backend: the robot's GPU path (TensorRT 10.x on JetPack 6, 11.x on desktops).

The engine is built from the bundle's ONNX on first use and cached (engine_cache). Inference uses
the name-based tensor API (`set_tensor_address` + `execute_async_v3`), present from 8.5 to 11.x,
so only the build needs version guards: EXPLICIT_BATCH before 10, `BuilderFlag.FP16` where it
exists (removed in 11, where precision comes from the ONNX file itself).

Device memory and the stream go through pycuda on the device's *primary* context, pushed and
popped around every call: rclpy's multi-threaded executors call back on pool threads, where a
context made current once (as `pycuda.autoinit` does) is not current. Teardown runs with the
context pushed, in the order TensorRT requires (execution context, engine, runtime).

The functions before `TensorRTBackend` need no GPU and are unit-tested; the class itself runs only
where TensorRT and a GPU exist (scripts/check_tensorrt.py exercises it on any GPU machine).
"""

from __future__ import annotations

import logging
import threading
from types import ModuleType
from typing import Any

import numpy as np

from soundloc_ros.core.backends.base import (
    BackendUnavailableError,
    InferenceBackend,
    output_names,
)
from soundloc_ros.core.backends.engine_cache import EngineCache, EngineKey
from soundloc_ros.core.bundle import BundleError, ModelBundle

log = logging.getLogger(__name__)
PRECISIONS = ("fp16", "fp32")
WORKSPACE_BYTES = 1 << 30


def unavailable_reason() -> str | None:
    """Why TensorRT cannot run here (None when it can): bindings, pycuda, a visible GPU."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as error:
        return (
            f"the TensorRT Python bindings are not installed ({error}); on Jetson: apt install "
            "python3-libnvinfer, on a desktop: pip install tensorrt"
        )
    try:
        import pycuda.driver as cuda
    except ImportError as error:
        return f"pycuda is not installed ({error}); pip install pycuda (needs the CUDA toolkit)"
    try:
        cuda.init()
        count = cuda.Device.count()
    except Exception as error:  # pycuda raises its own LogicError/RuntimeError types
        return f"CUDA cannot be initialized ({error}); check the NVIDIA driver"
    if count == 0:
        return "no CUDA GPU is visible (check CUDA_VISIBLE_DEVICES and the driver)"
    return None


def major_version(trt: ModuleType) -> int:
    return int(str(trt.__version__).split(".")[0])


def network_flags(trt: ModuleType) -> int:
    """8.x's ONNX parser needs an explicit-batch network; 10.x ignores the flag, 11.x lacks it."""
    if major_version(trt) < 10:
        return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    return 0


def effective_precision(trt: ModuleType, requested: str, onnx_dtype: str) -> str:
    """The precision the engine will really run in, which names its cache entry.

    FP16 from an fp32 ONNX needs `BuilderFlag.FP16` (TensorRT <= 10.x). TensorRT 11 builds
    strongly typed networks only: the ONNX file's own dtype decides.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {requested!r}")
    if requested == "fp32" or onnx_dtype == "float16":
        return "fp16" if onnx_dtype == "float16" else "fp32"
    if hasattr(trt.BuilderFlag, "FP16"):
        return "fp16"
    log.warning(
        "TensorRT %s has no FP16 builder flag (networks are strongly typed): the engine runs "
        "in the ONNX file's precision, fp32; export an fp16 ONNX for FP16 speed",
        trt.__version__,
    )
    return "fp32"


def check_engine_io(engine: Any, trt: ModuleType, bundle: ModelBundle) -> dict[str, tuple]:
    """Engine I/O tensors by name -> (shape, numpy dtype, is_input); must match bundle.json."""
    found = {}
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        shape = tuple(int(d) for d in engine.get_tensor_shape(name))
        found[name] = (shape, np.dtype(trt.nptype(engine.get_tensor_dtype(name))), is_input)
    expected = {bundle.image.tensor.name: (bundle.image.tensor.shape, True)}
    expected[bundle.audio.name] = (bundle.audio.shape, True)
    for spec in bundle.outputs.values():
        expected[spec.tensor.name] = (spec.tensor.shape, False)
    for name, (shape, is_input) in expected.items():
        if name not in found:
            raise BundleError(
                f"the TensorRT engine has no tensor {name!r} (it has {sorted(found)}); the engine "
                "does not belong to this bundle: delete the engine cache and restart"
            )
        if found[name][0] != shape or found[name][2] != is_input:
            kind = "input" if found[name][2] else "output"
            raise BundleError(
                f"engine tensor {name!r} is {found[name][0]} ({kind}) but bundle.json says "
                f"{shape}; delete the engine cache and restart"
            )
    return found


def build_plan(trt: ModuleType, onnx_path: str, precision: str, workspace: int) -> bytes:
    """Parse the ONNX and build a serialized engine (needs a GPU; minutes on a Jetson)."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BundleError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    if precision == "fp16" and hasattr(trt.BuilderFlag, "FP16"):
        config.set_flag(trt.BuilderFlag.FP16)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see its log)")
    return bytes(plan)


class TensorRTBackend(InferenceBackend):
    name = "tensorrt"

    def __init__(
        self,
        bundle: ModelBundle,
        cache_dir: str,
        precision: str = "fp16",
        device: int = 0,
        workspace: int = WORKSPACE_BYTES,
    ) -> None:
        super().__init__(bundle)
        reason = unavailable_reason()
        if reason:
            raise BackendUnavailableError(reason)
        import pycuda.driver as cuda
        import tensorrt as trt

        self._cuda, self._trt = cuda, trt
        self._lock = threading.Lock()  # one execution context: one inference at a time
        gpu = cuda.Device(device)
        self._context = gpu.retain_primary_context()
        self._context.push()
        try:
            major, minor = gpu.compute_capability()
            self.precision = effective_precision(trt, precision, bundle.image.tensor.dtype)
            key = EngineKey(
                bundle.onnx_sha256, trt.__version__, gpu.name(), f"{major}.{minor}", self.precision
            )
            self.gpu_name = gpu.name()
            self._logger = trt.Logger(trt.Logger.WARNING)  # must outlive the runtime
            self._runtime = trt.Runtime(self._logger)
            self._engine = self._load_engine(EngineCache(cache_dir), key, workspace)
            self._io = check_engine_io(self._engine, trt, bundle)
            self._execution = self._engine.create_execution_context()
            self._stream = cuda.Stream()
            self._host, self._device = {}, {}
            for name, (shape, dtype, _) in self._io.items():
                self._host[name] = cuda.pagelocked_empty(shape, dtype)
                self._device[name] = cuda.mem_alloc(self._host[name].nbytes)
                self._execution.set_tensor_address(name, int(self._device[name]))
        finally:
            self._context.pop()
        self._outputs = output_names(bundle)

    def _load_engine(self, cache: EngineCache, key: EngineKey, workspace: int) -> Any:
        def build() -> bytes:
            log.info("building a TensorRT engine for %s (first start only)", self.bundle.onnx_path)
            return build_plan(self._trt, str(self.bundle.onnx_path), key.precision, workspace)

        engine = self._runtime.deserialize_cuda_engine(cache.load_or_build(key, build))
        if engine is None:  # checksum fine, but TensorRT refuses it: rebuild once
            log.warning("TensorRT could not load the cached engine; rebuilding it")
            cache.invalidate(key)
            engine = self._runtime.deserialize_cuda_engine(cache.load_or_build(key, build))
        if engine is None:
            raise RuntimeError("TensorRT cannot deserialize the engine it just built")
        return engine

    @property
    def description(self) -> str:
        return f"tensorrt {self._trt.__version__} {self.precision} on {self.gpu_name}"

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = self._cuda
        with self._lock:
            self._context.push()
            try:
                for name, (_, _, is_input) in self._io.items():
                    if is_input:
                        np.copyto(self._host[name], inputs[name], casting="same_kind")
                        cuda.memcpy_htod_async(self._device[name], self._host[name], self._stream)
                if not self._execution.execute_async_v3(self._stream.handle):
                    raise RuntimeError("TensorRT execute_async_v3 failed (see its log)")
                for name in self._outputs:
                    cuda.memcpy_dtoh_async(self._host[name], self._device[name], self._stream)
                self._stream.synchronize()
            finally:
                self._context.pop()
        return {name: self._host[name].astype(np.float32) for name in self._outputs}

    def close(self) -> None:
        if getattr(self, "_engine", None) is None:
            return
        with self._lock:
            self._context.push()
            try:
                for buffer in self._device.values():
                    buffer.free()
                del self._execution, self._engine, self._runtime  # context before engine
                self._engine = None
            finally:
                self._context.pop()
                self._context.detach()
