"""Make an exported ONNX graph static and check it against the TensorRT 10.3 ONNX parser.

Robots on JetPack 6 build their engine with TensorRT 10.3, so a bundle must only use what that
parser accepts (onnx-tensorrt docs/operators.md; see notes/tensorrt.md section 4): opset 17, the
operators below, Resize in nearest/linear mode only, no STFT/DFT/MelWeightMatrix, shape and
axes tensors as constants, and no dynamic dimension anywhere. Checked here, on any CPU machine,
because the parser itself needs a GPU.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx

TARGET_OPSET = 17

# operators onnx-tensorrt lists as supported (FP32/FP16) for TensorRT 10.x that a localizer may
# reasonably use; anything else is refused until someone checks it on a Jetson
TENSORRT_10_3_OPS = frozenset(
    """Abs Add And AveragePool BatchNormalization Cast Clip Concat Constant Conv ConvTranspose Div
    Equal Erf Exp Expand Flatten Gather Gemm GlobalAveragePool GlobalMaxPool Greater HardSigmoid
    HardSwish Identity LeakyRelu Less Log MatMul Max MaxPool Min Mul Neg Not Or Pad Pow ReduceL2
    ReduceMax ReduceMean ReduceMin ReduceSum Relu Reshape Resize Sigmoid Slice Softmax Split Sqrt
    Squeeze Sub Tanh Transpose Unsqueeze Where""".split()  # noqa: SIM905 - a readable table
)
NOT_ON_JETSON = {
    "STFT": "STFT is only supported from TensorRT 10.5; compute the log-mel outside the graph",
    "DFT": "DFT is not supported by any TensorRT version",
    "MelWeightMatrix": "MelWeightMatrix is not supported by TensorRT; use a constant MatMul",
}
# inputs that TensorRT needs as build-time constants (index of the input per operator)
CONSTANT_INPUTS = {"ReduceSum": 1, "Pad": 1, "Reshape": 1, "Resize": 3, "Expand": 1, "Slice": 1}


def fold_constants(model_bytes: bytes) -> bytes:
    """Constant-fold with ONNX Runtime's basic (standard-operator) optimizations.

    The tracing exporter leaves shape arithmetic in the graph (Shape -> Gather -> Concat feeding
    Pad and Resize), which makes the output shape symbolic; with static inputs all of it folds
    away and BatchNormalization merges into the convolutions.
    """
    import onnxruntime

    with tempfile.TemporaryDirectory() as tmp:
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(Path(tmp) / "folded.onnx")
        onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        model = onnx.load(options.optimized_model_filepath)
    used = {node.domain for node in model.graph.node}
    kept = [o for o in model.opset_import if o.domain in used or o.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend(kept)  # ONNX Runtime lists every domain it knows; keep the used ones
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return model.SerializeToString()


def _dims(value: onnx.ValueInfoProto) -> list[str | int]:
    shape = value.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in shape.dim]


def tensorrt_problems(model_bytes: bytes) -> list[str]:
    """Everything in the graph that TensorRT 10.3 would reject; empty when it is fine."""
    model = onnx.load_from_string(model_bytes)
    onnx.checker.check_model(model, full_check=True)
    problems = []
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    if opsets.get("ai.onnx") != TARGET_OPSET:
        problems.append(f"opset {opsets.get('ai.onnx')} (export with opset {TARGET_OPSET})")
    constants = {i.name for i in model.graph.initializer}
    constants |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    for node in model.graph.node:
        where = f"{node.op_type} node {node.name!r}"
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"{where}: custom domain {node.domain!r}")
        elif node.op_type in NOT_ON_JETSON:
            problems.append(f"{where}: {NOT_ON_JETSON[node.op_type]}")
        elif node.op_type not in TENSORRT_10_3_OPS:
            problems.append(f"{where}: operator not on the TensorRT 10.3 list")
        index = CONSTANT_INPUTS.get(node.op_type)
        has_shape_input = index is not None and len(node.input) > index and node.input[index]
        if has_shape_input and node.input[index] not in constants:
            problems.append(f"{where}: input {index} must be a constant, it is computed")
        if node.op_type == "Resize":
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            mode = attributes.get("mode", b"nearest").decode()
            if mode not in ("nearest", "linear") or attributes.get("antialias", 0):
                problems.append(f"{where}: mode {mode!r} (only nearest/linear, no antialias)")
    values = [*model.graph.input, *model.graph.output, *model.graph.value_info]
    for value in values:
        dims = _dims(value)
        if any(not isinstance(d, int) or d <= 0 for d in dims):
            problems.append(f"tensor {value.name!r} has a dynamic shape {dims}")
    return problems
