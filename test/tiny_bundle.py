"""A hand-made bundle small enough to reason about: heatmap logits = 4x4 average of the
channel-mean image + mean of the log-mel. Built with onnx.helper, so runtime tests need no torch.
With a `detection` section the graph also outputs the same logits as `coarse`, so the source
score is (max logit) * scale: louder audio (a larger log-mel mean) scores higher. With `mask` it
outputs the negated logits as a mask head's (SPS) logits: the mask is where the heatmap is low,
so a mask read from it cannot be mistaken for the thresholded heatmap."""

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
from soundloc_ros.core.detection import SourceDetection
from soundloc_ros.core.features import LogMelConfig

IMAGE_SHAPE, AUDIO_SHAPE, HEATMAP_SHAPE = (1, 3, 8, 8), (1, 1, 64, 97), (1, 1, 2, 2)


def tiny_onnx(
    output_name: str = "heatmap", image_size: int = 8, coarse: bool = False, mask: bool = False
) -> bytes:
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["grey"], axes=[1], keepdims=1),
        helper.make_node("AveragePool", ["grey"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("ReduceMean", ["audio"], ["level"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Add", ["pooled", "level"], [output_name]),
    ]
    side = image_size // 4
    outputs = [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, (1, 1, side, side))]
    if mask:
        nodes.append(helper.make_node("Neg", [output_name], ["mask"]))
        outputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, (1, 1, side, side)))
    if coarse:
        nodes.append(helper.make_node("Identity", [output_name], ["coarse"]))
        outputs.append(
            helper.make_tensor_value_info("coarse", TensorProto.FLOAT, (1, 1, side, side))
        )
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info(
                "image", TensorProto.FLOAT, (1, 3, image_size, image_size)
            ),
            helper.make_tensor_value_info("audio", TensorProto.FLOAT, AUDIO_SHAPE),
        ],
        outputs,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def tiny_bundle_spec(
    heatmap_values: str = "logit", detection: SourceDetection | None = None, mask: bool = False
) -> ModelBundle:
    coarse = OutputSpec(TensorSpec("coarse", HEATMAP_SHAPE), values="logit") if detection else None
    sps = OutputSpec(TensorSpec("mask", HEATMAP_SHAPE), values="logit") if mask else None
    return ModelBundle(
        image=ImageInputSpec(TensorSpec("image", IMAGE_SHAPE), "rgb", (0.5,) * 3, (0.5,) * 3),
        audio=TensorSpec("audio", AUDIO_SHAPE),
        audio_frontend=LogMelConfig(),
        heatmap=OutputSpec(TensorSpec("heatmap", HEATMAP_SHAPE), values=heatmap_values),
        mask=sps,
        training={"method": "hand-made test graph"},
        coarse=coarse,
        detection=detection,
    )


def write_tiny_bundle(directory: Path, **spec) -> ModelBundle:
    bundle = tiny_bundle_spec(**spec)
    graph = tiny_onnx(coarse=bundle.detection is not None, mask=bundle.mask is not None)
    return write_bundle(directory, bundle, graph)
