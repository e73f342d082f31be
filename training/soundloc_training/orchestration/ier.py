"""The `ier` run: iterations 0..K of iterative contrastive learning.

Iteration k is a localizer run (orchestration/single.py) in OUT/iter_<k>/ with its own
log.jsonl, last.pt, best.pt, summary.json and validation contact sheet:
- iteration 0 trains `epochs` epochs of the baseline objective from scratch;
- iteration k >= 1 trains `iteration_epochs` epochs, fine-tuned from iteration k−1's best.pt (not
  from scratch: the total compute then stays that of one baseline run, e.g. 10 + 5 + 5 against
  20 epochs, and what k−1 learned is refined rather than relearned). At its start, the frozen
  k−1 model computes the pseudo-labels once (pseudo_labels.py): every training frame's map with its
  own audio -> confident regions, every clip's audio embedding -> k-means clusters. Their summary
  is written to pseudo_labels.json and a contact sheet of the trimaps (red: sounding, blue:
  non-sounding) to pseudo_labels_train.png. Each iteration has its own optimizer and warm-up +
  cosine schedule over its epochs.

Afterwards OUT/best.pt is a copy of the best.pt of the iteration with the best validation
`select_metric` (chosen on val, never test), and OUT/summary.json names it, so soundloc-eval and
soundloc-export work on OUT/best.pt unchanged. `--resume` skips finished iterations (those with a
summary.json) and resumes an unfinished one from its last.pt; the pseudo-labels are recomputed,
identically, from k−1's best.pt.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from soundloc_ros.core.atomic import atomic_write_bytes, atomic_write_text
from soundloc_training.checkpoints import load_model, read_checkpoint
from soundloc_training.config import TrainConfig, write_config
from soundloc_training.data import FrameTable, VisualInputs
from soundloc_training.engine import barrier, is_writer
from soundloc_training.jsonfiles import REWRITE_SUMMARY, read_json
from soundloc_training.orchestration.single import Prepare, run_single
from soundloc_training.pseudo_labels import compute_pseudo_labels
from soundloc_training.visualize import save_contact_sheet


def iteration_dir(config: TrainConfig, k: int) -> Path:
    return config.out_path / f"iter_{k}"


def iteration_config(config: TrainConfig, k: int) -> TrainConfig:
    """The run of iteration k: its own directory and epoch count."""
    epochs = config.epochs if k == 0 else config.iteration_epochs
    return replace(config, out_dir=str(iteration_dir(config, k)), epochs=epochs)


def from_previous(previous_best: Path, config: TrainConfig) -> Prepare:
    """The `prepare` hook of iteration k >= 1: start from k−1's weights, give its pseudo-labels."""

    def prepare(method: torch.nn.Module, table: FrameTable, visual: VisualInputs) -> None:
        previous, _ = load_model(previous_best)  # frozen: eval mode, used under no_grad only
        method.model.load_state_dict(previous.state_dict())
        labels = compute_pseudo_labels(previous, visual, table, config)
        method.set_pseudo_labels(labels)
        if is_writer():
            out = config.out_path
            out.mkdir(parents=True, exist_ok=True)
            summary = {"from": str(previous_best), **labels.summary()}
            atomic_write_text(out / "pseudo_labels.json", json.dumps(summary) + "\n")
            print(json.dumps({"pseudo_labels": summary}))
            trimap = (0.5 + 0.5 * (labels.sounding - labels.non_sounding)).numpy()  # [N, h, w]
            save_contact_sheet(
                out / "pseudo_labels_train.png", table, trimap, config.contact_sheet_frames
            )

    return prepare


def _epochs_done(out: Path) -> int:
    if not (out / "last.pt").is_file():
        return 0
    return int(read_checkpoint(out / "last.pt")["epoch"]) + 1


def run_ier(
    config: TrainConfig, resume: bool = False, stop_after: int | None = None
) -> dict[str, object]:
    """Train iterations 0..K (see module doc); returns the summary of the whole run."""
    if config.iterations < 0 or config.iteration_epochs < 1:
        raise ValueError(
            f"ier needs iterations >= 0 and iteration_epochs >= 1; got iterations="
            f"{config.iterations}, iteration_epochs={config.iteration_epochs}"
        )
    if is_writer():
        config.out_path.mkdir(parents=True, exist_ok=True)
        write_config(config, config.out_path)
    budget = stop_after
    summaries = []
    for k in range(config.iterations + 1):
        sub = iteration_config(config, k)
        finished = sub.out_path / "summary.json"
        if resume and finished.is_file():
            summaries.append(read_json(finished, REWRITE_SUMMARY))
            continue
        if budget is not None and budget <= 0:
            return {"iterations_done": k, "epochs_done": None}
        before = _epochs_done(sub.out_path) if resume else 0
        prepare = from_previous(iteration_dir(config, k - 1) / "best.pt", sub) if k else None
        summary = run_single(sub, resume=resume, stop_after=budget, prepare=prepare)
        if budget is not None:
            budget -= summary["epochs_done"] - before
        if summary["epochs_done"] < sub.epochs:  # stopped early: resume later
            return {"iterations_done": k, "epochs_done": summary["epochs_done"]}
        barrier()  # iteration k's best.pt is written before k + 1 reads it
        summaries.append(read_json(finished, REWRITE_SUMMARY) if finished.is_file() else summary)
    return _finish(config, summaries)


def _finish(config: TrainConfig, summaries: list[dict[str, object]]) -> dict[str, object]:
    metric = config.select_metric
    chosen = int(np.argmax([s["best"][metric] for s in summaries]))  # first of equals
    summary = {
        "best": summaries[chosen]["best"],
        "iteration": chosen,
        "iterations": [
            {
                "iteration": k,
                "epochs": iteration_config(config, k).epochs,
                "best": s["best"],
                "train_time_s": s["train_time_s"],
                "wall_time_s": s.get("wall_time_s"),
            }
            for k, s in enumerate(summaries)
        ],
        "train_time_s": round(sum(s["train_time_s"] for s in summaries), 1),
        "wall_time_s": round(sum(s.get("wall_time_s") or 0.0 for s in summaries), 1),
        "processes": summaries[0]["processes"],
        "epochs_done": sum(iteration_config(config, k).epochs for k in range(len(summaries))),
    }
    if is_writer():
        source = iteration_dir(config, chosen) / "best.pt"
        atomic_write_bytes(config.out_path / "best.pt", source.read_bytes())
        shutil.copyfile(
            iteration_dir(config, chosen) / "contact_sheet_val.png",
            config.out_path / "contact_sheet_val.png",
        )
        atomic_write_text(config.out_path / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
