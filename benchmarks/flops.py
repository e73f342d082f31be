"""Multiply-accumulate work of an ONNX graph, from its static shapes (2 FLOPs per MAC).

Counts Conv, ConvTranspose, Gemm and MatMul, which hold all but a fraction of a percent of a
CNN's arithmetic; elementwise and reduction nodes are left out, so the figure is a lower bound.
"""

from __future__ import annotations

import math

import onnx


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*graph.input, *graph.output, *graph.value_info]
    }
    shapes.update({t.name: list(t.dims) for t in graph.initializer})
    return shapes


def graph_flops(model_bytes: bytes) -> dict[str, int]:
    """FLOPs per operator type for one inference (static shapes required)."""
    model = onnx.load_from_string(model_bytes)
    shapes = _shapes(model)
    totals: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose"):
            kernel = shapes[node.input[1]]  # [C_out, C_in / groups, kH, kW]
            if node.op_type == "Conv":  # every output element: C_in / groups * kH * kW MACs
                macs = math.prod(shapes[node.output[0]]) * math.prod(kernel[1:])
            else:  # every input element: C_out / groups * kH * kW MACs
                macs = math.prod(shapes[node.input[0]]) * kernel[1] * math.prod(kernel[2:])
        elif node.op_type in ("Gemm", "MatMul"):
            a, b = shapes[node.input[0]], shapes[node.input[1]]
            if node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute):
                b = b[::-1]
            macs = math.prod(a) * b[-1]  # [.., M, K] x [K, N]
        else:
            continue
        totals[node.op_type] = totals.get(node.op_type, 0) + 2 * int(macs)
    return totals
