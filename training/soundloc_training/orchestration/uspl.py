"""The `uspl` and `ier+uspl` runs: coarse maps -> SMR refined maps -> SPS masks, no label
anywhere (the stages themselves: pixel_stages.py).

Three stages, each a Trainer run in its own directory, each resumable:
1. OUT/coarse/: the coarse localizer, a `baseline+maskaug` run (uspl) or an `ier` run
   (ier+uspl). `coarse_checkpoint` names a finished run's best.pt to refine instead (the
   ablation reuses the `ier` run so it is not trained twice).
2. OUT/smr/: the SMR affinity head. It keeps its last epoch (no label judges affinities).
3. OUT/sps/: the SPS segmentation head, learning SMR's refined maps of the training frames.
   It keeps the epoch with the best val mIoU where the val split has masks (labels choose
   checkpoints on val only, as for every method), else its last. Its checkpoints carry the SMR
   head too (`affinity`), so OUT/best.pt (a copy of OUT/sps/best.pt) alone exports the robot's
   whole graph: the refined heatmap, the mask and the coarse map.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from soundloc_ros.core.atomic import atomic_write_bytes, atomic_write_text
from soundloc_training.checkpoints import build_head, load_model, load_stage, read_checkpoint
from soundloc_training.config import TrainConfig, write_config
from soundloc_training.data import load_table
from soundloc_training.engine import Schedule, Trainer, Weights, is_writer
from soundloc_training.jsonfiles import REWRITE_SUMMARY, read_json
from soundloc_training.orchestration.ier import run_ier
from soundloc_training.orchestration.single import run_single
from soundloc_training.pixel_stages import (
    AffinityStep,
    HeadStep,
    PixelInputs,
    SegmentationStep,
    refined_maps,
    segment,
)
from soundloc_training.scoring import evaluate_heatmaps
from soundloc_training.visualize import save_stage_sheet

COARSE_METHOD = {"uspl": "baseline+maskaug", "ier+uspl": "ier"}


def coarse_stage(config: TrainConfig, resume: bool, stop_after: int | None) -> Path | None:
    """The coarse model's best.pt, training it first unless `coarse_checkpoint` names one;
    None when `stop_after` ended the coarse run early."""
    if config.coarse_checkpoint:
        path = Path(config.coarse_checkpoint)
        if not path.is_file():
            raise FileNotFoundError(
                f"coarse_checkpoint {path} does not exist; train that run first (its config "
                f"under training/configs/) or leave coarse_checkpoint out to train the coarse "
                "stage here"
            )
        return path
    sub = replace(config, method=COARSE_METHOD[config.method],
                  out_dir=str(config.out_path / "coarse"))  # fmt: skip
    if resume and (sub.out_path / "summary.json").is_file():
        summary = read_json(sub.out_path / "summary.json", REWRITE_SUMMARY)
        if summary.get("epochs_done") is not None and "iterations_done" not in summary:
            return sub.out_path / "best.pt"
    if sub.method == "ier":
        summary = run_ier(sub, resume=resume, stop_after=stop_after)
        return sub.out_path / "best.pt" if "iterations" in summary else None
    summary = run_single(sub, resume=resume, stop_after=stop_after)
    return sub.out_path / "best.pt" if summary["epochs_done"] == sub.epochs else None


def head_trainer(
    stage: str, step: HeadStep, config: TrainConfig, epochs: int, coarse: dict,
    **options: object,
) -> Trainer:  # fmt: skip
    """The Trainer of a pixel head in OUT/<stage>/ (its checkpoints: the head, the run config
    and the frozen coarse model)."""
    schedule = Schedule(epochs, config.pixel_batch_size, config.pixel_lr, 1e-4,
                        min(config.warmup_epochs, epochs / 2), config.seed)  # fmt: skip
    carried = {"config": asdict(config), "stage": stage, "coarse": coarse,
               **options.pop("carried", {})}  # fmt: skip
    return Trainer(
        out=config.out_path / stage, step=step, weights=Weights.of_module("head", step.head),
        n_frames=len(step.inputs.table), schedule=schedule, carried=carried,
        desc=f"{stage} epoch", **options,
    )  # fmt: skip


def run_uspl(
    config: TrainConfig, resume: bool = False, stop_after: int | None = None
) -> dict[str, object]:
    """Train the coarse stage, SMR and SPS (see module doc); returns the run summary."""
    if config.method not in COARSE_METHOD:
        raise ValueError(f"run_uspl trains {sorted(COARSE_METHOD)}, not {config.method}")
    out = config.out_path
    if is_writer():
        out.mkdir(parents=True, exist_ok=True)
        write_config(config, out)
    coarse_path = coarse_stage(config, resume, stop_after)
    if coarse_path is None:
        return {"stage": "coarse", "epochs_done": None}
    coarse_checkpoint = read_checkpoint(coarse_path)
    coarse = {"config": coarse_checkpoint["config"], "model": coarse_checkpoint["model"],
              "from": str(coarse_path)}  # fmt: skip
    localizer, coarse_config = load_model(coarse)
    torch.manual_seed(config.seed)
    frontend, size = coarse_config.audio_frontend, coarse_config.image_size
    train = PixelInputs(localizer, load_table(config.data, "train", size, frontend,
                                              config.limit_train), config)  # fmt: skip
    val = PixelInputs(localizer, load_table(config.data, "val", size, frontend,
                                            config.limit_eval), config)  # fmt: skip
    labelled = val.table.gt_maps is not None and val.table.gt_is_mask
    stages = {}

    affinity = build_head("smr", localizer, config)
    smr_done = out / "smr" / "summary.json"
    if resume and smr_done.is_file():
        affinity.load_state_dict(read_checkpoint(out / "smr" / "best.pt")["head"])
        stages["smr"] = read_json(smr_done, REWRITE_SUMMARY)
    else:
        smr = head_trainer("smr", AffinityStep(affinity, train, config), config,
                           config.smr_epochs, coarse)  # fmt: skip
        stages["smr"] = smr.fit(resume, stop_after)
        if stages["smr"]["epochs_done"] < config.smr_epochs:
            return {"stage": "smr", "epochs_done": stages["smr"]["epochs_done"]}
    refined = refined_maps(affinity, train, config)  # [N, H, W]: SPS's pseudo-masks

    segmentation = build_head("sps", localizer, config)

    def validate() -> dict[str, float]:
        masks = segment(segmentation, val)
        return evaluate_heatmaps(masks, val.table, probabilities=masks)

    sps = head_trainer(
        "sps", SegmentationStep(segmentation, train, refined, config), config,
        config.sps_epochs, coarse, carried={"affinity": affinity.state_dict()},
        validate=validate if labelled else None, select_metric="miou" if labelled else None,
    )  # fmt: skip
    stages["sps"] = sps.fit(resume, stop_after)
    if stages["sps"]["epochs_done"] < config.sps_epochs:
        return {"stage": "sps", "epochs_done": stages["sps"]["epochs_done"]}
    summary = {"coarse": str(coarse_path), "stages": stages,
               "train_time_s": round(sum(s["train_time_s"] for s in stages.values()), 1),
               "epochs_done": config.smr_epochs + config.sps_epochs}  # fmt: skip
    if is_writer():
        _finish(out, val, affinity, config, summary)
    return summary


def _finish(out: Path, val: PixelInputs, affinity, config: TrainConfig, summary: dict) -> None:
    """Rank 0: OUT/best.pt, the stages' contact sheet on val, OUT/summary.json."""
    atomic_write_bytes(out / "best.pt", (out / "sps" / "best.pt").read_bytes())
    _, _, best_segmentation, _ = load_stage(out / "best.pt")
    sheet = {
        "coarse": val.coarse.numpy(),
        "refined (SMR)": refined_maps(affinity, val, config).numpy(),
        "segmented (SPS)": (segment(best_segmentation, val) > 0.5).astype(np.float32),
    }
    save_stage_sheet(out / "stages_val.png", val.table, sheet, config.contact_sheet_frames)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
