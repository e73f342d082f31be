"""SMR's random walk on the robot: accuracy on TuxAV val against ONNX Runtime CPU latency.

The exported heatmap of a uspl bundle is the refined map, so every frame pays for the walk. For
each walk (steps, radius, pool: the grid pooled by this factor, see refinement.WalkSettings) the
committed default checkpoint's whole graph (backbone, coarse map, affinity head + walk, SPS
head; what soundloc-export writes) is
- scored on the TuxAV validation split, as the evaluation protocol scores heatmaps (cIoU, its
  AUC, mIoU at 0.5) plus how often the heatmap's peak lands on the sounding object (the bearing);
- exported to ONNX and timed on ONNX Runtime's CPU provider (default session options: one
  thread per core; the best of a few blocks' medians, as the machine may be shared),
next to the graph without SMR (heatmap = the coarse map). The walk is chosen here, on val, and
exported with soundloc-export --walk-steps / --walk-radius / --walk-pool.

A precomputed power of the transition (P^2 as one local operator) is not measured: its stencil
is the sum of two disks, (4R + 1)^2 positions in the square layout (289 at R 4) for two steps,
against 2 (2R + 1)^2 = 162 for two single steps, plus the cost of forming it each frame.

    python benchmarks/walk_latency.py [--data tuxav:data/tuxav] [--limit N]

Results: benchmarks/results/walk_latency.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from machine import record, time_call
from soundloc_training.checkpoints import load_any, read_checkpoint
from soundloc_training.data import FrameTable, load_table
from soundloc_training.export import ExportedLocalizer, export_onnx
from soundloc_training.onnx_compat import fold_constants
from soundloc_training.pixel_stages import pixel_graph
from tqdm import tqdm

from soundloc_ros.core.metrics import LocalizationMetrics, lands_on
from soundloc_ros.core.postprocess import peak_pixel
from soundloc_ros.core.preprocess import normalize_images

CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "tuxav_uspl.pt"
# (steps, radius, pool); the first is the run's own walk, the reference
WALKS = [(128, 4, 1), (64, 4, 1), (32, 4, 1), (16, 4, 1), (32, 2, 1), (64, 4, 2), (32, 4, 2),
         (16, 4, 2), (8, 4, 2), (16, 2, 2), (8, 2, 2), (8, 4, 4)]  # fmt: skip
WITHOUT_SMR = "SPS without SMR (coarse heatmap)"
BATCH = 32


def graphs(checkpoint: Path) -> tuple[dict[str, ExportedLocalizer], object]:
    """Every walk's deployable graph, and the graph whose heatmap is the coarse map."""
    state = read_checkpoint(checkpoint)
    kind, model, head, config = load_any(state)
    built = {}
    for steps, radius, pool in WALKS:
        refinement, segmentation = pixel_graph(
            state, str(checkpoint), kind, model, head, config, steps, radius, pool
        )
        built[f"{steps}/{radius}/{pool}"] = ExportedLocalizer(
            model, config.tau, refinement, segmentation
        ).eval()
    built[WITHOUT_SMR] = ExportedLocalizer(model, config.tau, None, segmentation).eval()
    return built, config


def batches(table: FrameTable, mean, std, frontend):
    """(indices, images [B, 3, S, S], log-mels [B, 1, n_mels, n_frames]) over the table."""
    for start in range(0, len(table), BATCH):
        indices = np.arange(start, min(start + BATCH, len(table)))
        images = torch.from_numpy(normalize_images(table.images[indices], mean, std))
        audio = np.stack([table.features(int(i), frontend) for i in indices])  # [B, 1, m, t]
        yield indices, images, torch.from_numpy(audio)


@torch.no_grad()
def accuracy(built: dict[str, ExportedLocalizer], table: FrameTable, config) -> dict:
    """Per graph: the heatmap's cIoU, AUC and mIoU at 0.5 on the table, and the share of
    frames whose heatmap peak lies on the sounding object."""
    backbone = next(iter(built.values())).model.backbone
    scores = {name: LocalizationMetrics(keep_frame_curves=False) for name in built}
    on_object = dict.fromkeys(built, 0)
    frames = batches(table, backbone.mean, backbone.std, config.audio_frontend)
    for indices, images, audio in tqdm(list(frames), desc="val batches", file=sys.stderr):
        for name, graph in built.items():
            heatmaps = graph(images, audio)[0][:, 0].numpy()  # [B, h, w]
            for heatmap, index in zip(heatmaps, indices, strict=True):
                truth = table.gt_maps[index] > 0.5  # [224, 224]
                scores[name].update(heatmap, gt_map=table.gt_maps[index], mask_gt=truth)
                on_object[name] += lands_on(truth, peak_pixel(heatmap, *truth.shape))
    figures = {}
    for name, metrics in scores.items():
        computed = metrics.compute()
        figures[name] = {key: round(float(computed[key]), 4) for key in ("ciou", "auc", "miou")}
        figures[name]["peak_on_object"] = round(on_object[name] / len(table), 4)
    return figures


def latency(built: dict[str, ExportedLocalizer], config, repeats: int, blocks: int) -> dict:
    """Per graph, the best over `blocks` rounds of its median ONNX Runtime latency (ms). The
    rounds go over all graphs in turn, so a busy moment spoils one block of each."""
    sessions = {
        name: onnxruntime.InferenceSession(
            fold_constants(export_onnx(graph, config)), providers=["CPUExecutionProvider"]
        )
        for name, graph in tqdm(built.items(), desc="export", file=sys.stderr)
    }
    n_mels, n_frames = config.audio_frontend.shape
    feed = {"image": np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(np.float32),
            "audio": np.zeros((1, 1, n_mels, n_frames), np.float32)}  # fmt: skip
    best = dict.fromkeys(sessions, float("inf"))
    for _ in range(blocks):
        for name, run in sessions.items():
            median = time_call(lambda r=run: r.run(None, feed), repeats, warmup=2)
            best[name] = min(best[name], median["median_ms"])
    return {name: round(ms, 2) for name, ms in best.items()}


def table_markdown(accurate: dict, timed: dict) -> str:
    lines = ["| walk (steps / radius / pool) | grid | cIoU | AUC | mIoU@0.5 | peak on object | "
             "whole graph ms |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, figures in accurate.items():
        grid = "14 x 14 (coarse)" if name == WITHOUT_SMR else f"{56 // int(name.split('/')[2])}²"
        lines.append(
            f"| {name} | {grid} | {figures['ciou']:.3f} | {figures['auc']:.3f} | "
            f"{figures['miou']:.3f} | {figures['peak_on_object']:.3f} | {timed[name]:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument("--data", default="tuxav:data/tuxav", help="KIND:PATH with a val split")
    parser.add_argument("--limit", type=int, default=None, help="val frames (default: all)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per block")
    parser.add_argument("--blocks", type=int, default=5, help="rounds over all graphs")
    args = parser.parse_args()
    began = time.perf_counter()
    torch.set_num_threads(2)
    built, config = graphs(args.checkpoint)
    table = load_table(args.data, "val", config.image_size, config.audio_frontend,
                       limit=args.limit)  # fmt: skip
    accurate = accuracy(built, table, config)
    timed = latency(built, config, args.repeats, args.blocks)
    figures = {
        "checkpoint": str(args.checkpoint.name), "split": f"{args.data} val",
        "frames": len(table), "onnxruntime": onnxruntime.__version__,
        "latency": f"best of {args.blocks} blocks' median of {args.repeats} runs, ms",
        "accuracy": accurate, "whole_graph_median_ms": timed,
        "seconds": round(time.perf_counter() - began, 1),
    }  # fmt: skip
    print(table_markdown(accurate, timed))
    print(f"\nrecorded in {record('walk_latency', figures)}")


if __name__ == "__main__":
    main()
