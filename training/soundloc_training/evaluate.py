"""`soundloc-eval`: score a checkpoint, or saved heatmaps of any method, the way the field does.

Scores and reference maps are scoring.py's; every evaluation also scores the random,
center-prior and oracle maps on the same frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from soundloc_training.calibration import calibrate, detection_report
from soundloc_training.checkpoints import load_any, read_checkpoint
from soundloc_training.config import TrainConfig, config_from_dict
from soundloc_training.data import GT_SIZE, FrameTable, VisualInputs, load_table, parse_data_spec
from soundloc_training.inference import predict_heatmaps
from soundloc_training.pixel_stages import predict_stage, stage_method
from soundloc_training.scoring import evaluate_heatmaps, reference_heatmaps


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
    _, localizer, _, config = load_any(state)
    return localizer, config


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
        config = config_from_dict(state["config"], "the checkpoint's config")
        table = load_table(data, split, config.image_size, config.audio_frontend)
        checkpoint_kind, model, head, config = load_any(state)
        if checkpoint_kind == "localizer":
            heatmaps = predict_heatmaps(
                model,
                VisualInputs(model, table, config.image_size, config.cache_dir),
                table,
                config,
            )
            method = config.method
        else:  # an SMR or SPS checkpoint (pixel_stages.py)
            heatmaps, probabilities = predict_stage(checkpoint_kind, model, head, config, table)
            method = stage_method(state)
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
