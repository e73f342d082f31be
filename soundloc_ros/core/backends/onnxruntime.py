"""ONNX Runtime backend: the default wherever TensorRT is not usable.

CPU always; the CUDA and TensorRT execution providers are put in front when the installed
onnxruntime build has them (onnxruntime-gpu), so a desktop GPU is used without any setting.
"""

from __future__ import annotations

import numpy as np

from soundloc_ros.core.backends.base import BackendUnavailableError, InferenceBackend, output_names
from soundloc_ros.core.bundle import BundleError, ModelBundle

ONNX_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16"}  # bundle.json's names
PREFERRED_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CPUExecutionProvider",
)


def select_providers(available: list[str], use_gpu: bool = True) -> list[str]:
    """The providers to ask for, best first; always ends with the CPU provider."""
    wanted = PREFERRED_PROVIDERS if use_gpu else ("CPUExecutionProvider",)
    return [p for p in wanted if p in available] or ["CPUExecutionProvider"]


class OnnxRuntimeBackend(InferenceBackend):
    name = "onnxruntime"

    def __init__(self, bundle: ModelBundle, threads: int = 0, use_gpu: bool = True) -> None:
        """`threads` = 0 lets ONNX Runtime use one thread per physical core."""
        super().__init__(bundle)
        try:
            import onnxruntime
        except ImportError as error:
            raise BackendUnavailableError(
                f"onnxruntime is not installed ({error}); pip install onnxruntime, or "
                "apt install the rosdep key python3-onnxruntime-pip"
            ) from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        # idle worker threads sleep instead of spinning: on a robot the cores are shared with
        # the camera driver and the rest of the stack, where spinning only burns their time
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = select_providers(onnxruntime.get_available_providers(), use_gpu)
        try:
            self.session = onnxruntime.InferenceSession(
                str(bundle.onnx_path), options, providers=providers
            )
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BundleError(
                f"ONNX Runtime cannot load {bundle.onnx_path}: {error}; re-export the bundle "
                "with soundloc-export"
            ) from None
        self._check_io()
        self.providers = self.session.get_providers()
        self._outputs = output_names(bundle)

    def _check_io(self) -> None:
        """The graph must have exactly the tensors bundle.json promises: names, static shapes
        and dtypes, inputs and outputs (a bundle that lies would fail on every frame)."""
        bundle = self.bundle
        declared = {bundle.image.tensor.name: bundle.image.tensor, bundle.audio.name: bundle.audio}
        declared.update({spec.tensor.name: spec.tensor for spec in bundle.outputs.values()})
        graph = {t.name: t for t in (*self.session.get_inputs(), *self.session.get_outputs())}
        for name, spec in declared.items():
            found = graph.get(name)
            if found is None:
                raise BundleError(
                    f"{bundle.onnx_path}: tensor {name!r} named in bundle.json is not in the "
                    f"graph (it has {sorted(graph)}); re-export the bundle"
                )
            shape, dtype = tuple(found.shape), ONNX_TYPES.get(found.type, found.type)
            if shape != spec.shape or dtype != spec.dtype:
                raise BundleError(
                    f"{bundle.onnx_path}: tensor {name!r} is {dtype} {list(shape)} in the graph "
                    f"but {spec.dtype} {list(spec.shape)} in bundle.json; re-export the bundle"
                )

    @property
    def description(self) -> str:
        return f"onnxruntime ({', '.join(self.providers)})"

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self._outputs, inputs)
        return dict(zip(self._outputs, values, strict=True))
