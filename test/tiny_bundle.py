"""A hand-made bundle small enough to reason about: heatmap logits = 4x4 average of the
channel-mean image + mean of the log-mel. Built with onnx.helper, so runtime tests need no torch."""

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from soundloc_ros.core.bundle import (
    ImageInputSpec,
    ModelBundle,
    OutputSpec,
    TensorSpec,
    write_bundle,
)
from soundloc_ros.core.features import LogMelConfig

IMAGE_SHAPE, AUDIO_SHAPE, HEATMAP_SHAPE = (1, 3, 8, 8), (1, 1, 64, 97), (1, 1, 2, 2)


def tiny_onnx(output_name: str = "heatmap", image_size: int = 8) -> bytes:
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["grey"], axes=[1], keepdims=1),
        helper.make_node("AveragePool", ["grey"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("ReduceMean", ["audio"], ["level"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Add", ["pooled", "level"], [output_name]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info(
                "image", TensorProto.FLOAT, (1, 3, image_size, image_size)
            ),
            helper.make_tensor_value_info("audio", TensorProto.FLOAT, AUDIO_SHAPE),
        ],
        [
            helper.make_tensor_value_info(
                output_name, TensorProto.FLOAT, (1, 1, image_size // 4, image_size // 4)
            )
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def tiny_bundle_spec(heatmap_values: str = "logit") -> ModelBundle:
    return ModelBundle(
        image=ImageInputSpec(TensorSpec("image", IMAGE_SHAPE), "rgb", (0.5,) * 3, (0.5,) * 3),
        audio=TensorSpec("audio", AUDIO_SHAPE),
        audio_frontend=LogMelConfig(),
        heatmap=OutputSpec(TensorSpec("heatmap", HEATMAP_SHAPE), values=heatmap_values),
        training={"method": "hand-made test graph"},
    )


def write_tiny_bundle(directory: Path, **spec) -> ModelBundle:
    return write_bundle(directory, tiny_bundle_spec(**spec), tiny_onnx())
