"""`soundloc-export`: a trained checkpoint -> a model bundle the robot can run.

The exported graph takes the bundle's two inputs (normalized image [1, 3, H, W], log-mel
[1, 1, n_mels, n_frames]) and returns, from one forward pass:
- `heatmap` [1, 1, h, w] in [0, 1] ("probability"), min-max normalized within the frame (a
  constant map is all zeros), so it is relative, as the evaluation protocol reads maps; a
  sigmoid of the coarse logits (cosine / tau, tau 0.03) would be ~1 wherever the cosine is
  above 0.1. For a `uspl` / `ier+uspl` stage checkpoint it is SMR's refined map on the stride-4
  pixel grid: the affinity head and the random walk (refinement.py) run in the graph, with the
  checkpoint's walk steps and radius unless --walk-steps / --walk-radius say otherwise
  (--walk-pool 2 walks a grid pooled 2x, [1, 1, H/8, W/8], the robot's cheap form). For a
  plain localizer it is the coarse map itself.
- `mask` [1, 1, H/4, W/4]: the SPS head's logits (SPS checkpoints, OUT/best.pt, only).
- `coarse` [1, 1, H/16, W/16]: the coarse cosine / tau, the contrastive loss's logits (debug).
- `detector` [1, 1, H/16, W/16], with --detector CHECKPOINT only: another localizer's heads on
  the same frozen backbone features, cosine / tau, scored by the no-source decision instead of
  `coarse` (the default bundle's: the baseline's, which separates sounding frames from
  mismatched and noise pairs better on TuxAV val than uspl's own coarse map).
bundle.json's `detection`: the no-source threshold, calibrated on the val split without labels
(calibration.py).
bundle.json says in words what each output means. The log-mel front-end stays outside the graph
(no STFT on TensorRT 10.3).

What is written is verified before the command succeeds: `onnx.checker`; operators, opset and
static shapes against what the TensorRT 10.3 ONNX parser on Jetson accepts (onnx_compat); ONNX
Runtime against PyTorch on real benchmark frames (max abs diff <= 1e-4); and the torch.export
program (for the torch backend) against PyTorch too.
"""

from __future__ import annotations

import dataclasses
import io
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
from soundloc_ros.core.maps import minmax
from soundloc_ros.core.preprocess import normalize_images
from soundloc_training.calibration import calibrate
from soundloc_training.checkpoints import load_any, load_model, read_checkpoint
from soundloc_training.config import TrainConfig
from soundloc_training.data import FrameTable, load_table, parse_data_spec
from soundloc_training.models.localizer import Localizer
from soundloc_training.onnx_compat import fold_constants, tensorrt_problems
from soundloc_training.pixel_stages import pixel_graph
from soundloc_training.refinement import Refinement

OPSET = 17
PARITY_TOLERANCE = 1e-4  # max abs difference of any output, fp32
IMAGE_INPUT, AUDIO_INPUT = "image", "audio"
HEATMAP_OUTPUT, MASK_OUTPUT, COARSE_OUTPUT = "heatmap", "mask", "coarse"
DETECTOR_OUTPUT = "detector"


class ExportedLocalizer(nn.Module):
    """The deployable graph, one frame at a time: (image, log-mel) -> (heatmap in [0, 1],
    [mask logits,] coarse logits). `refinement` (SMR) makes the heatmap the refined map,
    `segmentation` (SPS) adds the mask."""

    def __init__(
        self, model: Localizer, tau: float, refinement: Refinement | None = None,
        segmentation: nn.Module | None = None, detector: Localizer | None = None,
        detector_tau: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.model = model.eval()
        self.inverse_tau = 1.0 / tau
        self.refinement, self.segmentation = refinement, segmentation
        self.detector = None if detector is None else detector.eval()
        self.detector_inverse_tau = 1.0 / (detector_tau or tau)
        mask = (MASK_OUTPUT,) if segmentation is not None else ()
        scored = (DETECTOR_OUTPUT,) if detector is not None else ()
        self.output_names = (HEATMAP_OUTPUT, *mask, COARSE_OUTPUT, *scored)

    def forward(self, image: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.model.backbone(image)  # [1, C, h, w]
        similarity = self.similarity(features, audio)[:, 0]  # [1, h, w]
        if self.refinement is None:
            heatmap = minmax(similarity, constant=0.0)  # [1, h, w]; flat: no localization
        else:
            heatmap = self.refinement(image, similarity)  # [1, H/(4 pool), W/(4 pool)]
        outputs = [heatmap[:, None]]
        if self.segmentation is not None:
            outputs.append(self.segmentation(image, features, similarity)[:, None])  # [1,1,H/4,W/4]
        outputs.append(similarity[:, None] * self.inverse_tau)  # coarse [1, 1, h, w]
        if self.detector is not None:  # the same frozen features, the detector's own heads
            outputs.append(
                self.similarity(features, audio, self.detector) * self.detector_inverse_tau
            )
        return tuple(outputs)

    def similarity(
        self, features: torch.Tensor, audio: torch.Tensor, heads: Localizer | None = None
    ) -> torch.Tensor:
        """Backbone features [1, C, h, w] + log-mel -> cosine map [1, 1, h, w] of `heads`' (the
        model's unless given) visual and audio embeddings."""
        heads = heads or self.model
        visual = heads.embed_visual(features)  # [1, D, h, w]
        sound = heads.embed_audio(audio)  # [1, D]
        # elementwise product + channel sum rather than einsum: plain Mul/ReduceSum in ONNX,
        # which every TensorRT version parses
        return (visual * sound[:, :, None, None]).sum(dim=1, keepdim=True)  # [1, 1, h, w]


def deployable_graph(
    checkpoint: str | Path, walk_steps: int | None = None, walk_radius: int | None = None,
    walk_pool: int | None = None, detector: str | Path | None = None,
) -> tuple[ExportedLocalizer, TrainConfig]:  # fmt: skip
    """The graph of a localizer checkpoint, or of a `uspl` run's SMR (refined heatmap) or SPS
    checkpoint (refined heatmap and mask); the walk is the run's unless overridden. With
    `detector` (a plain localizer checkpoint on the same frozen backbone and inputs) its heads
    add the `detector` output, which the no-source decision scores instead of `coarse`."""
    graph, config = _graph(checkpoint, walk_steps, walk_radius, walk_pool)
    if detector is None:
        return graph, config
    heads, heads_config = load_model(detector)
    if not (heads.backbone_frozen and graph.model.backbone_frozen):
        raise ValueError(
            f"--detector needs a frozen backbone in both {detector} and {checkpoint}: a trained "
            "one differs per run, and the graph holds one backbone"
        )
    for name in ("backbone", "pretrained", "image_size", "audio_frontend"):
        if getattr(heads_config, name) != getattr(config, name):
            raise ValueError(
                f"--detector {detector} differs from {checkpoint} in {name} "
                f"({getattr(heads_config, name)!r} vs {getattr(config, name)!r}); it must read "
                "the same inputs through the same frozen backbone"
            )
    heads.backbone = graph.model.backbone  # frozen and equal: one copy in the graph
    parts = (graph.model, config.tau, graph.refinement, graph.segmentation, heads, heads_config.tau)
    return ExportedLocalizer(*parts).eval(), config


def _graph(
    checkpoint: str | Path, walk_steps: int | None, walk_radius: int | None, walk_pool: int | None
) -> tuple[ExportedLocalizer, TrainConfig]:
    state = read_checkpoint(checkpoint)
    overrides = {"--walk-steps": walk_steps, "--walk-radius": walk_radius,
                 "--walk-pool": walk_pool}  # fmt: skip
    for flag, value in overrides.items():
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1; got {value}")
    kind, model, head, config = load_any(state)
    if kind != "localizer":
        refinement, segmentation = pixel_graph(
            state, str(checkpoint), kind, model, head, config, walk_steps, walk_radius,
            walk_pool or 1,
        )  # fmt: skip
        return ExportedLocalizer(model, config.tau, refinement, segmentation).eval(), config
    if any(value is not None for value in overrides.values()):
        raise ValueError(
            f"{checkpoint} is a plain localizer checkpoint, which has no random walk; leave out "
            "--walk-steps / --walk-radius / --walk-pool, or export a uspl run's smr/best.pt or "
            "best.pt"
        )
    return ExportedLocalizer(model, config.tau).eval(), config


def meanings(graph: ExportedLocalizer, config: TrainConfig) -> dict[str, str]:
    """bundle.json's words for each output of the graph."""
    relative = "min-max normalized within the frame (a constant map is all zeros): relative, "
    relative += "not calibrated; the evaluation protocol reads it as sounding above 0.5"
    refinement = graph.refinement
    if refinement is None:
        heatmap = f"the coarse audio-visual similarity map, {relative}"
    else:
        walk = refinement.settings
        grid = "the pixel grid" if walk.pool == 1 else f"the pixel grid pooled {walk.pool}x"
        heatmap = (
            f"SMR's refined map: the coarse map walked {walk.steps} steps (radius "
            f"{walk.radius}, beta {walk.beta:g}, on {grid}) on the affinity head's affinities, "
            f"{relative}"
        )
    return {
        DETECTOR_OUTPUT: (
            "the detection branch's coarse cosine similarity / tau (another localizer's heads on "
            "the same backbone, chosen on val for the no-source decision): what `detection` "
            "scores"
        ),
        HEATMAP_OUTPUT: heatmap,
        MASK_OUTPUT: "SPS segmentation head's logits: sounding where sigmoid(mask) > 0.5",
        COARSE_OUTPUT: (
            f"coarse cosine similarity / tau ({config.tau:g}): the contrastive loss's logits, "
            "for debugging; a sigmoid saturates them"
        ),
    }


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


def describe(
    graph: ExportedLocalizer, config: TrainConfig, source: str, val: dict | None = None
) -> ModelBundle:
    """bundle.json for the graph (checksums are filled in when it is written); `val`: the
    checkpoint's validation figures (the epoch it was chosen at), recorded with the method."""
    image, audio = example_inputs(config)
    with torch.no_grad():
        shapes = [tuple(output.shape) for output in graph(image, audio)]
    words = meanings(graph, config)
    outputs = {
        name: OutputSpec(TensorSpec(name, shape), "probability" if name == HEATMAP_OUTPUT
                         else "logit", words[name])
        for name, shape in zip(graph.output_names, shapes, strict=True)
    }  # fmt: skip
    training = {"method": config.method, "data": config.data, "backbone": config.backbone,
                "tau": config.tau, "checkpoint": source, "val": val or {}}  # fmt: skip
    if graph.refinement is not None:
        training["walk"] = graph.refinement.settings.as_record()
    backbone = graph.model.backbone
    return ModelBundle(
        image=ImageInputSpec(
            TensorSpec(IMAGE_INPUT, tuple(image.shape)), "rgb", backbone.mean, backbone.std
        ),
        audio=TensorSpec(AUDIO_INPUT, tuple(audio.shape)),
        audio_frontend=config.audio_frontend,
        heatmap=outputs[HEATMAP_OUTPUT],
        mask=outputs.get(MASK_OUTPUT),
        coarse=outputs[COARSE_OUTPUT],
        detector=outputs.get(DETECTOR_OUTPUT),
        training=training,
        opset=OPSET,
    )


def verification_frames(config: TrainConfig, data: str | None) -> FrameTable:
    """Real validation frames: from --data, the checkpoint's benchmark, or a fresh sample.

    A generated benchmark (synthav, tuxav) that is not on disk is sampled into a temporary
    directory (one clip per TuxAV class, 8 SynthAV clips; seconds), so a bundle can be exported,
    checked and calibrated on any machine.
    """
    spec = data or config.data
    kind, path = parse_data_spec(spec)
    if path.is_dir() or kind not in ("synthav", "tuxav"):
        return load_table(spec, "val", config.image_size, config.audio_frontend)
    from soundloc_training.datasets.build import BenchmarkSpec, build_benchmark

    with tempfile.TemporaryDirectory(prefix="soundloc-export-") as tmp:
        size = config.image_size if kind == "synthav" else 224
        clips = 8 if kind == "synthav" else 1
        sample = build_benchmark(BenchmarkSpec(kind, val=clips, image_size=size), Path(tmp) / kind)
        return load_table(f"{kind}:{sample}", "val", config.image_size, config.audio_frontend)


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
        for got, want in zip(run(feed), expected, strict=True):
            worst = max(worst, float(np.abs(got - want.numpy()).max()))
    return worst


def export_bundle(
    checkpoint: str | Path, out: str | Path, data: str | None = None, frames: int = 8,
    walk_steps: int | None = None, walk_radius: int | None = None, walk_pool: int | None = None,
    detector: str | Path | None = None,
) -> tuple[ModelBundle, dict[str, float]]:  # fmt: skip
    """Export, write and verify; returns the loaded bundle and the measured differences."""
    graph, config = deployable_graph(checkpoint, walk_steps, walk_radius, walk_pool, detector)
    onnx_model = fold_constants(export_onnx(graph, config))
    problems = tensorrt_problems(onnx_model)
    if problems:
        raise ValueError(
            "the exported graph would not load on TensorRT 10.3 (Jetson):\n  "
            + "\n  ".join(problems)
        )
    program = export_torch_program(graph, config)
    val = read_checkpoint(checkpoint).get("best", {})
    table = verification_frames(config, data)  # the whole val split: calibration reads it all
    detection = calibrate(
        graph.detector or graph.model, table, config, f"{data or config.data} val",
        output=DETECTOR_OUTPUT if graph.detector is not None else COARSE_OUTPUT,
        scale=1.0 / graph.detector_inverse_tau,  # the model's own tau without a detector
    )  # fmt: skip
    described = dataclasses.replace(describe(graph, config, str(checkpoint), val),
                                    detection=detection)  # fmt: skip
    write_bundle(out, described, onnx_model, program)
    bundle = load_bundle(out)

    inputs = [model_inputs(table, bundle, i) for i in range(min(frames, len(table)))]
    onnx_runtime = OnnxRuntimeBackend(bundle, use_gpu=False)
    exported_program = torch.export.load(io.BytesIO(program)).module()

    @torch.no_grad()
    def run_program(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [o.numpy() for o in exported_program(*(torch.from_numpy(v) for v in feed.values()))]

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
