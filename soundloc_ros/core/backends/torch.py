"""PyTorch backend: the bundle's torch.export program, for parity checks and debugging.

torch is imported only when this backend is created, so the runtime never needs it otherwise.
"""

from __future__ import annotations

import numpy as np

from soundloc_ros.core.backends.base import (
    BackendUnavailableError,
    InferenceBackend,
    output_names,
)
from soundloc_ros.core.bundle import ModelBundle, verify_torch_program


class TorchBackend(InferenceBackend):
    name = "torch"

    def __init__(self, bundle: ModelBundle) -> None:
        super().__init__(bundle)
        try:
            import torch
        except ImportError:
            raise BackendUnavailableError(
                "the torch backend needs PyTorch (pip install torch); use backend onnxruntime"
            ) from None
        self._torch = torch
        program = torch.export.load(str(verify_torch_program(bundle)))
        self.module = program.module()
        self._inputs = [bundle.image.tensor.name, bundle.audio.name]
        self._outputs = output_names(bundle)

    @property
    def description(self) -> str:
        return f"torch {self._torch.__version__} (cpu, eager)"

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._torch.no_grad():
            values = self.module(*(self._torch.from_numpy(inputs[n]) for n in self._inputs))
        if not isinstance(values, tuple | list):
            values = (values,)
        return {n: v.numpy() for n, v in zip(self._outputs, values, strict=True)}
