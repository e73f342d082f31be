"""`soundloc-eval`: score a checkpoint, or saved heatmaps of any method, the way the field does.

Metrics come from `soundloc_ros.core.metrics` (the one implementation, shared with rosbag replay):
cIoU / AUC by the LVS protocol at 224 x 224, and for mask datasets mIoU / F-score (AVSBench
definitions, F max over the whole set) of the min-max normalized map. Every evaluation also scores,
on the same frames:
- random: uniform noise drawn at the method's map resolution (14 x 14 for 224 px input), upsampled;
- center_prior: a centred Gaussian (under median thresholding any radially decreasing map is the
  same central disc);
- oracle: the ground-truth map used as the heatmap (the ceiling of the protocol; a binary map
  smaller than half the frame is reproduced exactly by the median threshold).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from soundloc_ros.core.metrics import LocalizationMetrics, json_ready
from soundloc_training.calibration import calibrate, detection_report
from soundloc_training.checkpoints import CheckpointError, load_model, read_checkpoint
from soundloc_training.config import TrainConfig
from soundloc_training.data import (
    GT_SIZE,
    FrameTable,
    VisualInputs,
    audio_batch,
    load_table,
    parse_data_spec,
)

REFERENCE_MAP_SIZE = 14


@torch.no_grad()
def embedded_batches(
    model: torch.nn.Module,
    visual: VisualInputs,
    table: FrameTable,
    config: TrainConfig,
    batch: int = 64,
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """(indices, visual embeddings [B, D, h, w], audio embeddings [B, D]) over the table in
    order, each frame with its own un-augmented audio window (eval mode)."""
    model.eval()
    for start in range(0, len(table), batch):
        indices = np.arange(start, min(start + batch, len(table)))
        features = visual.batch(indices)
        if not visual.precomputed:
            features = model.backbone(features)
        embedded = model.embed_visual(features)  # [B, D, h, w]
        yield indices, embedded, model.embed_audio(audio_batch(table, indices, config))


def predict_heatmaps(
    model: torch.nn.Module,
    visual: VisualInputs,
    table: FrameTable,
    config: TrainConfig,
    batch: int = 64,
) -> np.ndarray:
    """The model's similarity map for every frame with its own audio: [N, h, w] float32."""
    maps = [
        model.paired_similarity(embedded, audio).numpy()  # [B, h, w]
        for _, embedded, audio in embedded_batches(model, visual, table, config, batch)
    ]
    return np.concatenate(maps).astype(np.float32)


@torch.no_grad()
def evaluate_label_free(
    model: torch.nn.Module,
    visual: VisualInputs,
    table: FrameTable,
    config: TrainConfig,
    batch: int = 128,
) -> dict[str, float]:
    """Validation without ground truth (a robot's own recordings): how often a frame's own audio
    is the best match of its image among `batch` frames of other clips (`retrieval_acc`), and
    the baseline contrastive loss there (`contrastive_loss`). Frames are batched in table order,
    so the figure is the same at every epoch for the same model."""
    from soundloc_training.losses.contrastive import MultipleInstanceContrast

    loss = MultipleInstanceContrast(config.tau)
    correct, losses, counted = 0, [], 0
    for indices, embedded, audio in embedded_batches(model, visual, table, config, batch):
        if len(np.unique(table.clip_ids[indices])) < 2:
            continue  # no other clip to tell the frame's own audio from
        similarity = model.all_pairs_similarity(embedded, audio)  # [B, B, h, w]
        clip_ids = torch.from_numpy(table.clip_ids[indices])
        logits = loss.logits(similarity, clip_ids)  # [B, B], same-clip pairs removed
        correct += int((logits.argmax(dim=1) == torch.arange(len(indices))).sum())
        losses.append(float(loss(similarity, clip_ids)) * len(indices))
        counted += len(indices)
    if counted == 0:
        raise ValueError("label-free validation needs validation frames from two clips or more")
    return {"retrieval_acc": round(correct / counted, 4),
            "contrastive_loss": round(sum(losses) / counted, 4), "n_frames": counted}  # fmt: skip


def validate(
    model: torch.nn.Module, visual: VisualInputs, table: FrameTable, config: TrainConfig
) -> dict[str, float]:
    """Per-epoch validation figures: the localization metrics where the split has ground
    truth, the label-free ones (evaluate_label_free) where it has none."""
    if table.gt_maps is None:
        return evaluate_label_free(model, visual, table, config)
    return evaluate_heatmaps(predict_heatmaps(model, visual, table, config), table)


def evaluate_heatmaps(
    heatmaps: np.ndarray | list[np.ndarray],
    table: FrameTable,
    probabilities: np.ndarray | list[np.ndarray] | None = None,
) -> dict[str, float]:
    """Score one heatmap per frame (any resolution) against the table's ground truth. A mask
    head's `probabilities` (one [224, 224] map in [0, 1] per frame) are scored for mIoU / F
    as they are, instead of the min-max normalized heatmap."""
    if table.gt_maps is None:
        raise ValueError("this split has no ground truth for every frame; it cannot be scored")
    metrics = LocalizationMetrics()
    masks = [None] * len(table) if probabilities is None else probabilities
    for heatmap, gt, mask in zip(heatmaps, table.gt_maps, masks, strict=True):
        mask_gt = gt > 0.5 if table.gt_is_mask else None
        metrics.update(heatmap, gt_map=gt, mask_gt=mask_gt,
                       probabilities=mask if mask_gt is not None else None)  # fmt: skip
    scores = metrics.compute()
    keys = (
        ("ciou", "auc", "ciou_mean", "miou", "fscore")
        if table.gt_is_mask
        else ("ciou", "auc", "ciou_mean")
    )
    return {key: round(float(scores[key]), 4) for key in keys} | {"n_frames": len(table)}


def reference_heatmaps(table: FrameTable, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """The random, center-prior and oracle maps for every frame of the table."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(-1, 1, GT_SIZE)
    centre = np.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2 * 0.5**2)).astype(np.float32)
    return {
        "random": [rng.random((REFERENCE_MAP_SIZE, REFERENCE_MAP_SIZE)) for _ in range(len(table))],
        "center_prior": [centre] * len(table),
        "oracle": list(table.gt_maps),
    }


def load_predictions(directory: Path, table: FrameTable) -> list[np.ndarray]:
    """`DIR/<frame name>.npy` for every frame (2-D float maps, any resolution)."""
    paths = [directory / f"{record.name}.npy" for record in table.records]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(paths)} prediction files are missing in {directory}, e.g. "
            f"{missing[0].name}; save one 2-D .npy heatmap per frame, named after the frame"
        )
    maps = [np.load(p) for p in paths]
    bad = [p.name for p, m in zip(paths, maps, strict=True) if m.ndim != 2]
    if bad:
        raise ValueError(f"prediction files must hold 2-D heatmaps; not so: {bad[:5]}")
    return maps


def coarse_localizer(state: dict) -> tuple[torch.nn.Module, TrainConfig]:
    """The coarse localizer of any checkpoint (a stage checkpoint carries its own): what the
    source score reads."""
    if "stage" in state:
        from soundloc_training.sounding_pixels import load_stage

        _, localizer, _, config = load_stage(state)
        return localizer, config
    return load_model(state)


def detection(
    state: dict, data: str, split: str, negatives: str, threshold: float | None
) -> dict[str, object]:
    """Detection of `split`'s sounding frames against the negatives' same split, at
    `threshold`, or at the one the export would calibrate on `data`'s val split (the bundle's)."""
    model, config = coarse_localizer(state)

    def load(spec: str, name: str) -> FrameTable:
        return load_table(spec, name, config.image_size, config.audio_frontend)

    source = "given"
    if threshold is None:
        threshold = calibrate(model, load(data, "val"), config, f"{data} val").threshold
        source = f"calibrated on {data} val (as soundloc-export does)"
    report = detection_report(model, config, load(data, split), load(negatives, split), threshold)
    return {"negatives": negatives, "threshold_source": source, **report}


def evaluate(
    data: str, split: str, checkpoint: Path | None = None, predictions: Path | None = None,
    negatives: str | None = None, threshold: float | None = None,
) -> dict[str, object]:  # fmt: skip
    """The full evaluation record `--json` prints; with `negatives`, detection figures too."""
    if (checkpoint is None) == (predictions is None):
        raise ValueError("give exactly one of --checkpoint or --predictions")
    if negatives is not None and checkpoint is None:
        raise ValueError("--negatives needs --checkpoint: the source score comes from the model")
    kind, _ = parse_data_spec(data)
    probabilities = None
    if checkpoint is not None:
        state = read_checkpoint(checkpoint)
        config = TrainConfig(**state["config"])
        table = load_table(data, split, config.image_size, config.audio_frontend)
        if "stage" in state:  # an SMR or SPS checkpoint (sounding_pixels.py)
            from soundloc_training.sounding_pixels import predict_stage, stage_method

            heatmaps, probabilities = predict_stage(state, table)
            method = stage_method(state)
        else:
            model, config = load_model(state)
            heatmaps = predict_heatmaps(model, VisualInputs(model, table, config), table, config)
            method = config.method
    else:
        table = load_table(data, split, GT_SIZE, TrainConfig(data=data, out_dir="").audio_frontend)
        heatmaps = load_predictions(predictions, table)
        method = f"predictions:{predictions.name}"
    result = {
        "benchmark": kind,
        "data": data,
        "split": split,
        "method": method,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "metrics": evaluate_heatmaps(heatmaps, table, probabilities),
        "baselines": {
            name: evaluate_heatmaps(maps, table) for name, maps in reference_heatmaps(table).items()
        },
    }
    if negatives is not None:
        result["detection"] = detection(state, data, split, negatives, threshold)
    return result


def format_table(result: dict[str, object]) -> str:
    rows = [(result["method"], result["metrics"]), *result["baselines"].items()]
    keys = [k for k in ("ciou", "auc", "ciou_mean", "miou", "fscore") if k in result["metrics"]]
    lines = [f"{result['benchmark']} {result['split']} ({result['metrics']['n_frames']} frames)"]
    lines.append(f"{'method':24s}" + "".join(f"{k:>10s}" for k in keys))
    for name, scores in rows:
        lines.append(f"{name:24s}" + "".join(f"{scores[k]:10.4f}" for k in keys))
    if "detection" in result:
        lines.append(detection_summary(result["detection"]))
    return "\n".join(lines)


def detection_summary(figures: dict[str, object]) -> str:
    """Detection figures in one line each (None prints as n/a)."""

    def show(value: object) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    rates = ", ".join(f"{k} {show(v)}" for k, v in figures["false_source_rate"].items())
    return "\n".join([
        f"detection at threshold {show(figures['threshold'])} ({figures['threshold_source']}):",
        f"  ROC AUC {show(figures['roc_auc'])}, TPR at 5% false alarms "
        f"{show(figures['tpr_at_5pct_false_alarm'])}, TPR at threshold "
        f"{show(figures['tpr_at_threshold'])}",
        f"  false-source rate: {rates}",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soundloc-eval", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="KIND:PATH, e.g. tuxav:data/tuxav")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path)
    source.add_argument("--predictions", type=Path, help="directory of <frame name>.npy heatmaps")
    parser.add_argument(
        "--negatives",
        help="KIND:PATH of negative clips (e.g. "
        "tuxav:data/tuxav/negatives): detection figures beside localization",
    )
    parser.add_argument("--threshold", type=float, help="source threshold (default: calibrated "
                        "on --data's val split, as the bundle's is)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        result = json_ready(evaluate(args.data, args.split, args.checkpoint, args.predictions,
                                     args.negatives, args.threshold))  # fmt: skip
    except CheckpointError as error:
        print(f"soundloc-eval: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:
        print(f"soundloc-eval: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, allow_nan=False) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
