"""SMR's random walk on the robot: ONNX Runtime CPU latency and accuracy per (steps, radius).

The exported heatmap of a uspl bundle is the refined map, so every frame pays for the walk. For
steps in {8, ..., 128} and radius in {2, 3, 4} this measures, at the TuxAV config's 224 px
(a 56 x 56 pixel grid), with ONNX Runtime's default session options (threads: one per core;
latency: the best of a few blocks' medians, as the machine may be shared):
- the walk alone (affinity.RandomWalk exported as the bundle has it),
- the whole SPS graph (backbone, coarse map, affinity head + walk, SPS head; soundloc-export's
  ExportedLocalizer with untrained heads: latency does not depend on the weights), next to
  the graph without SMR (heatmap = the coarse map) and the plain localizer,
- how far each walk's refined map is from the configured 128-step / radius-4 one: max and mean
  |difference| and the IoU of the two masks at 0.5, on synthetic scenes whose affinities are
  what a trained head aims for (high within an object or the background, low across an edge)
  and whose coarse map is a blurred, shifted blob on the 14 x 14 grid. No trained TuxAV model
  is needed; the real choice is made on val (scripts/sweep_smr.py), then exported with
  soundloc-export --walk-steps / --walk-radius.

A precomputed power of the transition (P^2 as one local operator) is not measured: its stencil
is the sum of two disks, (4R + 1)^2 positions in the square layout (289 at R 4) for two steps,
against 2 (2R + 1)^2 = 162 for two single steps, plus the cost of forming it each frame.

    python benchmarks/walk_latency.py [--repeats 10] [--blocks 5] [--scenes 16]

Results: benchmarks/results/walk_latency.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import io
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from machine import record, time_call
from soundloc_training.affinity import RandomWalk, disk_offsets, pair_affinities
from soundloc_training.config import load_config
from soundloc_training.export import ExportedLocalizer, export_onnx
from soundloc_training.models.localizer import Localizer
from soundloc_training.models.pixel_heads import PIXEL_STRIDE
from soundloc_training.onnx_compat import fold_constants
from soundloc_training.refinement import Refinement, refined_map
from soundloc_training.sounding_pixels import build_head

STEPS = (8, 16, 32, 64, 128)
RADII = (2, 3, 4)
REFERENCE = (128, 4)
CONFIG = Path(__file__).resolve().parents[1] / "training" / "configs" / "tuxav_uspl.yaml"


def session(model_bytes: bytes) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])


def onnx_of(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the tracer's notes, as in export.export_onnx
        warnings.simplefilter("ignore", (UserWarning, DeprecationWarning))
        torch.onnx.export(module, inputs, buffer, opset_version=17, dynamo=False)
    return fold_constants(buffer.getvalue())


def timed_ms(models: dict[str, bytes], inputs: tuple, repeats: int, blocks: int) -> dict:
    """Per model, the best over `blocks` rounds of its median latency (ms) in `repeats` runs.

    The rounds go over all models in turn, so a busy moment of a shared machine spoils one
    block of each rather than every figure of one model."""
    runs = {name: session(model) for name, model in models.items()}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(blocks):
        for name, run in runs.items():
            feed = {i.name: x.numpy() for i, x in zip(run.get_inputs(), inputs, strict=True)}
            median = time_call(lambda r=run, f=feed: r.run(None, f), repeats, warmup=2)
            best[name] = min(best[name], median["median_ms"])
    return best


def scene(rng: np.random.Generator, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(affinity-head-like features [1, 8, G, G], coarse similarity [1, G/4, G/4]): 1-3
    ellipses on a background, one feature vector each plus noise; the coarse map a Gaussian
    blob near the first object, as blurred as the stride-16 map is."""
    yy, xx = np.mgrid[:grid, :grid].astype(np.float32)
    labels = np.zeros((grid, grid), np.int64)
    for label in range(1, rng.integers(2, 5)):
        cy, cx = rng.uniform(0.2, 0.8, 2) * grid
        ry, rx = rng.uniform(0.1, 0.25, 2) * grid
        labels[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = label
    vectors = rng.normal(0, 1, (labels.max() + 1, 8)).astype(np.float32)
    features = vectors[labels] + rng.normal(0, 0.05, (grid, grid, 8)).astype(np.float32)
    target = np.argwhere(labels == 1).mean(0) if (labels == 1).any() else [grid / 2] * 2
    coarse_grid = grid // (16 // PIXEL_STRIDE)
    centre = (np.asarray(target) + rng.normal(0, 0.08 * grid, 2)) * coarse_grid / grid
    cy, cx = np.mgrid[:coarse_grid, :coarse_grid].astype(np.float32) + 0.5
    blob = np.exp(-((cy - centre[0]) ** 2 + (cx - centre[1]) ** 2) / (2 * 2.0**2))
    similarity = blob + rng.normal(0, 0.05, blob.shape)
    features = torch.from_numpy(features).permute(2, 0, 1)[None]  # [1, 8, G, G]
    return features, torch.from_numpy(similarity.astype(np.float32))[None]


def accuracy(scenes: list, grid: int, beta: float) -> dict[tuple[int, int], dict[str, float]]:
    """Each walk's refined maps against the reference walk's, over the scenes."""
    maps = {}
    for steps in STEPS:
        for radius in RADII:
            offsets = disk_offsets(radius)
            walk = RandomWalk((grid, grid), offsets, beta, steps)
            maps[steps, radius] = [
                refined_map(coarse, pair_affinities(features, offsets), walk)
                for features, coarse in scenes
            ]
    reference = maps[REFERENCE]
    figures = {}
    for key, refined in maps.items():
        difference = torch.stack([(a - b).abs() for a, b in zip(refined, reference, strict=True)])
        ious = [mask_iou(a > 0.5, b > 0.5) for a, b in zip(refined, reference, strict=True)]
        figures[key] = {"max_abs_diff": float(difference.max()),
                        "mean_abs_diff": float(difference.mean()),
                        "iou_at_0_5": float(np.mean(ious))}  # fmt: skip
    return figures


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 1.0


def whole_graphs(repeats: int, blocks: int) -> dict[str, float]:
    """Median latency of the SPS graph per walk, and of the graphs without SMR."""
    config = load_config(CONFIG)
    torch.manual_seed(0)
    model = Localizer(config.backbone, pretrained=config.pretrained, embed_dim=config.embed_dim)
    model.eval()
    affinity, segmentation = (build_head(s, model, config).eval() for s in ("smr", "sps"))
    n_mels, n_frames = config.audio_frontend.shape
    inputs = (torch.randn(1, 3, config.image_size, config.image_size),
              torch.randn(1, 1, n_mels, n_frames))  # fmt: skip
    graphs = {
        "baseline (coarse heatmap)": ExportedLocalizer(model, config.tau),
        "SPS without SMR": ExportedLocalizer(model, config.tau, None, segmentation),
    }
    for steps in STEPS:
        for radius in RADII:
            refinement = Refinement(affinity, model.backbone, config.image_size, radius,
                                    config.affinity_beta, steps)  # fmt: skip
            graphs[f"{steps}/{radius}"] = ExportedLocalizer(
                model, config.tau, refinement, segmentation
            )
    models = {name: fold_constants(export_onnx(graph.eval(), config))
              for name, graph in graphs.items()}  # fmt: skip
    return timed_ms(models, inputs, repeats, blocks)


def walks_alone(scenes: list, grid: int, beta: float, repeats: int, blocks: int) -> dict:
    """Latency of each walk alone (its input values do not change it)."""
    features, _ = scenes[0]
    latencies = {}
    for radius in RADII:
        offsets = disk_offsets(radius)
        inputs = (torch.rand(1, grid, grid), pair_affinities(features, offsets))
        models = {f"{steps}/{radius}": onnx_of(RandomWalk((grid, grid), offsets, beta, steps),
                                               inputs) for steps in STEPS}  # fmt: skip
        latencies.update(timed_ms(models, inputs, repeats, blocks))
    return latencies


def table(walk: dict, graph: dict, accurate: dict) -> str:
    lines = ["| steps | radius | walk alone (ms) | whole SPS graph (ms) | max abs diff | "
             "mean abs diff | IoU@0.5 vs 128/4 |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for steps in STEPS:
        for radius in RADII:
            key, figures = f"{steps}/{radius}", accurate[steps, radius]
            lines.append(
                f"| {steps} | {radius} | {walk[key]:.2f} | {graph[key]:.1f} | "
                f"{figures['max_abs_diff']:.3f} | {figures['mean_abs_diff']:.4f} | "
                f"{figures['iou_at_0_5']:.3f} |"
            )
    others = [f"{name}: {ms:.1f} ms" for name, ms in graph.items() if "/" not in name]
    return "\n".join(lines) + "\n\nwithout SMR: " + "; ".join(others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per block")
    parser.add_argument("--blocks", type=int, default=5, help="rounds over all graphs")
    parser.add_argument("--scenes", type=int, default=16, help="synthetic scenes for accuracy")
    args = parser.parse_args()
    config = load_config(CONFIG)
    grid, beta = config.image_size // PIXEL_STRIDE, config.affinity_beta
    rng = np.random.default_rng(0)
    scenes = [scene(rng, grid) for _ in range(args.scenes)]
    began = time.perf_counter()
    accurate = accuracy(scenes, grid, beta)
    walk = walks_alone(scenes, grid, beta, args.repeats, args.blocks)
    graph = whole_graphs(args.repeats, args.blocks)
    figures = {
        "grid": [grid, grid], "beta": beta, "reference": {"steps": 128, "radius": 4},
        "onnxruntime": onnxruntime.__version__, "threads": "onnxruntime default",
        "latency": f"best of {args.blocks} blocks' median of {args.repeats} runs, ms",
        "walk_alone_median_ms": walk, "whole_graph_median_ms": graph,
        "against_reference": {f"{s}/{r}": v for (s, r), v in accurate.items()},
        "seconds": round(time.perf_counter() - began, 1),
    }  # fmt: skip
    print(table(walk, graph, accurate))
    print(f"\nrecorded in {record('walk_latency', figures)}")


if __name__ == "__main__":
    main()
