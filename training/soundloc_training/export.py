"""`soundloc-export`: a trained checkpoint -> a model bundle the robot can run.

The exported graph takes the bundle's two inputs (normalized image [1, 3, H, W], log-mel
[1, 1, n_mels, n_frames]) and returns the heatmap as logits [1, 1, h, w]: the cosine similarity
divided by the training temperature, i.e. exactly the scores the contrastive loss treated as
logits, so sigmoid(heatmap) > 0.5 wherever image and sound agree more than they disagree. The
checkpoint of a `uspl` / `ier+uspl` run (its SPS stage) adds the `mask` output, the segmentation
head's logits [1, 1, H/4, W/4], from the same forward pass. The log-mel front-end stays outside
(no STFT on TensorRT 10.3).

What is written is verified before the command succeeds: `onnx.checker`; operators, opset and
static shapes against what the TensorRT 10.3 ONNX parser on Jetson accepts (onnx_compat); ONNX
Runtime against PyTorch on real benchmark frames (max abs diff <= 1e-4); and the torch.export
program (for the torch backend) against PyTorch too.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from soundloc_ros.core.backends.onnxruntime import OnnxRuntimeBackend
from soundloc_ros.core.bundle import (
    ImageInputSpec,
    ModelBundle,
    OutputSpec,
    TensorSpec,
    load_bundle,
    write_bundle,
)
from soundloc_ros.core.preprocess import normalize_images
from soundloc_training.checkpoints import CheckpointError, load_model, read_checkpoint
from soundloc_training.config import TrainConfig
from soundloc_training.data import FrameTable, load_table, parse_data_spec
from soundloc_training.models.localizer import Localizer
from soundloc_training.onnx_compat import fold_constants, tensorrt_problems

OPSET = 17
PARITY_TOLERANCE = 1e-4  # max abs difference of the heatmap logits, fp32
IMAGE_INPUT, AUDIO_INPUT, HEATMAP_OUTPUT, MASK_OUTPUT = "image", "audio", "heatmap", "mask"


class ExportedLocalizer(nn.Module):
    """The deployable graph: (image, log-mel) -> heatmap logits, one frame at a time."""

    def __init__(self, model: Localizer, tau: float) -> None:
        super().__init__()
        self.model = model.eval()
        self.inverse_tau = 1.0 / tau

    output_names = (HEATMAP_OUTPUT,)

    def forward(self, image: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.similarity(self.model.backbone(image), audio) * self.inverse_tau

    def similarity(self, features: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Backbone features [1, C, h, w] + log-mel -> cosine map [1, 1, h, w]."""
        visual = self.model.embed_visual(features)  # [1, D, h, w]
        sound = self.model.embed_audio(audio)  # [1, D]
        # elementwise product + channel sum rather than einsum: plain Mul/ReduceSum in ONNX,
        # which every TensorRT version parses
        return (visual * sound[:, :, None, None]).sum(dim=1, keepdim=True)  # [1, 1, h, w]


class ExportedSoundingPixels(ExportedLocalizer):
    """(image, log-mel) -> (heatmap logits, SPS mask logits): one backbone pass feeds both."""

    output_names = (HEATMAP_OUTPUT, MASK_OUTPUT)

    def __init__(self, model: Localizer, segmentation: nn.Module, tau: float) -> None:
        super().__init__(model, tau)
        self.segmentation = segmentation.eval()

    def forward(
        self, image: torch.Tensor, audio: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.backbone(image)  # [1, C, h, w]
        similarity = self.similarity(features, audio)  # [1, 1, h, w]
        mask = self.segmentation(image, features, similarity[:, 0])[:, None]  # [1, 1, H/4, W/4]
        return similarity * self.inverse_tau, mask


def deployable_graph(checkpoint: str | Path) -> tuple[ExportedLocalizer, TrainConfig]:
    """The graph of a localizer checkpoint, or of a `uspl` run's SPS checkpoint (with mask)."""
    state = read_checkpoint(checkpoint)
    if state.get("stage") == "smr":
        raise ValueError(
            f"{checkpoint} is an SMR checkpoint: the random walk is a training-time step. Export "
            "the run's best.pt (its SPS stage, with a mask output) or its coarse/best.pt"
        )
    if state.get("stage") == "sps":
        from soundloc_training.sounding_pixels import load_stage

        _, model, segmentation, config = load_stage(state)
        return ExportedSoundingPixels(model, segmentation, config.tau).eval(), config
    model, config = load_model(state)
    return ExportedLocalizer(model, config.tau).eval(), config


def example_inputs(config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    n_mels, n_frames = config.audio_frontend.shape
    image = torch.zeros(1, 3, config.image_size, config.image_size)
    return image, torch.zeros(1, 1, n_mels, n_frames)


def export_onnx(graph: ExportedLocalizer, config: TrainConfig) -> bytes:
    """The TorchScript-tracing exporter: the dynamo one needs onnxscript, which is not a
    dependency; its symbolic shape arithmetic is folded away afterwards (onnx_compat)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the tracer's notes about deprecation and Slice folding
        warnings.simplefilter("ignore", (UserWarning, DeprecationWarning))
        torch.onnx.export(
            graph, example_inputs(config), buffer, opset_version=OPSET, dynamo=False,
            input_names=[IMAGE_INPUT, AUDIO_INPUT], output_names=list(graph.output_names),
        )  # fmt: skip
    return buffer.getvalue()


def export_torch_program(graph: ExportedLocalizer, config: TrainConfig) -> bytes:
    program = torch.export.export(graph, example_inputs(config))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


def describe(graph: ExportedLocalizer, config: TrainConfig, source: str) -> ModelBundle:
    """bundle.json for the graph (checksums are filled in when it is written)."""
    image, audio = example_inputs(config)
    with torch.no_grad():
        outputs = graph(image, audio)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    heatmap_shape = tuple(outputs[0].shape)
    mask = None
    if len(outputs) > 1:
        mask = OutputSpec(TensorSpec(MASK_OUTPUT, tuple(outputs[1].shape)), values="logit")
    backbone = graph.model.backbone
    return ModelBundle(
        image=ImageInputSpec(
            TensorSpec(IMAGE_INPUT, tuple(image.shape)), "rgb", backbone.mean, backbone.std
        ),
        audio=TensorSpec(AUDIO_INPUT, tuple(audio.shape)),
        audio_frontend=config.audio_frontend,
        heatmap=OutputSpec(TensorSpec(HEATMAP_OUTPUT, heatmap_shape), values="logit"),
        mask=mask,
        training={
            "method": config.method,
            "data": config.data,
            "backbone": config.backbone,
            "tau": config.tau,
            "checkpoint": source,
        },
        opset=OPSET,
    )


def verification_frames(config: TrainConfig, data: str | None, count: int) -> FrameTable:
    """`count` real validation frames: from --data, the checkpoint's benchmark, or a fresh sample.

    A generated benchmark (synthav, tuxav) that is not on disk is sampled into a temporary
    directory (a few clips, seconds), so a bundle can be exported and checked on any machine.
    """
    spec = data or config.data
    kind, path = parse_data_spec(spec)
    if path.is_dir() or kind not in ("synthav", "tuxav"):
        return load_table(spec, "val", config.image_size, config.audio_frontend, limit=count)
    from soundloc_training.datasets.build import BenchmarkSpec, build_benchmark

    with tempfile.TemporaryDirectory(prefix="soundloc-export-") as tmp:
        size = config.image_size if kind == "synthav" else 224
        sample = build_benchmark(BenchmarkSpec(kind, val=1, image_size=size), Path(tmp) / kind)
        return load_table(
            f"{kind}:{sample}", "val", config.image_size, config.audio_frontend, limit=count
        )


def model_inputs(table: FrameTable, bundle: ModelBundle, index: int) -> dict[str, np.ndarray]:
    image = normalize_images(
        table.images[index : index + 1], bundle.image.mean, bundle.image.std
    )  # [1, 3, H, W]
    audio = table.features(index, bundle.audio_frontend)[None]  # [1, 1, n_mels, n_frames]
    return {bundle.image.tensor.name: image, bundle.audio.name: audio}


def max_difference(reference: ExportedLocalizer, run, inputs: list[dict[str, np.ndarray]]) -> float:
    """Largest |reference - run| over the frames and outputs; `run` maps inputs to the output
    arrays in the graph's output order."""
    worst = 0.0
    for feed in inputs:
        with torch.no_grad():
            expected = reference(*(torch.from_numpy(v) for v in feed.values()))
        expected = expected if isinstance(expected, tuple) else (expected,)
        for got, want in zip(run(feed), expected, strict=True):
            worst = max(worst, float(np.abs(got - want.numpy()).max()))
    return worst


def export_bundle(
    checkpoint: str | Path, out: str | Path, data: str | None = None, frames: int = 8
) -> tuple[ModelBundle, dict[str, float]]:
    """Export, write and verify; returns the loaded bundle and the measured differences."""
    graph, config = deployable_graph(checkpoint)
    onnx_model = fold_constants(export_onnx(graph, config))
    problems = tensorrt_problems(onnx_model)
    if problems:
        raise ValueError(
            "the exported graph would not load on TensorRT 10.3 (Jetson):\n  "
            + "\n  ".join(problems)
        )
    program = export_torch_program(graph, config)
    write_bundle(out, describe(graph, config, str(checkpoint)), onnx_model, program)
    bundle = load_bundle(out)

    table = verification_frames(config, data, frames)
    inputs = [model_inputs(table, bundle, i) for i in range(len(table))]
    onnx_runtime = OnnxRuntimeBackend(bundle, use_gpu=False)
    exported_program = torch.export.load(io.BytesIO(program)).module()

    @torch.no_grad()
    def run_program(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        outputs = exported_program(*(torch.from_numpy(v) for v in feed.values()))
        return [o.numpy() for o in (outputs if isinstance(outputs, tuple) else (outputs,))]

    def run_onnx(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        outputs = onnx_runtime.run(feed)
        return [outputs[name] for name in graph.output_names]

    differences = {
        "onnxruntime": max_difference(graph, run_onnx, inputs),
        "torch_program": max_difference(graph, run_program, inputs),
    }
    failed = {k: v for k, v in differences.items() if v > PARITY_TOLERANCE}
    if failed:
        raise ValueError(
            f"exported models disagree with PyTorch beyond {PARITY_TOLERANCE}: {failed}; the "
            f"bundle in {out} must not be used"
        )
    return bundle, differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soundloc-export", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="best.pt of a run")
    parser.add_argument("--out", required=True, type=Path, help="bundle directory to write")
    parser.add_argument(
        "--data", help="KIND:PATH of frames to verify on (default: the checkpoint's benchmark)"
    )
    parser.add_argument("--frames", type=int, default=8, help="frames to verify on")
    args = parser.parse_args(argv)
    try:
        bundle, differences = export_bundle(args.checkpoint, args.out, args.data, args.frames)
    except CheckpointError as error:
        print(f"soundloc-export: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:
        print(f"soundloc-export: {error}", file=sys.stderr)
        return 1
    shapes = {"image": bundle.image.tensor.shape, "audio": bundle.audio.shape}
    mask = f", mask {bundle.mask.tensor.shape}" if bundle.mask else ""
    print(f"wrote {args.out}: inputs {shapes}, heatmap {bundle.heatmap.tensor.shape}{mask}")
    print(
        "max |difference| to PyTorch: " + ", ".join(f"{k} {v:.2e}" for k, v in differences.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
