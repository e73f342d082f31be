"""One localizer run (`baseline`, `baseline+maskaug`, and each IER iteration): the config's
method trained on its data by the Trainer in OUT/.

BatchNorm running statistics stay per process under torchrun (rank 0's are saved); parameters
are identical on every replica. After the last epoch rank 0 draws the best epoch's validation
maps into OUT/contact_sheet_val.png.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from soundloc_training.checkpoints import load_model, load_trainable, trainable_state
from soundloc_training.config import TrainConfig, write_config
from soundloc_training.data import FrameTable, VisualInputs, audio_batch, load_table
from soundloc_training.engine import (
    Batch,
    Schedule,
    Trainer,
    Weights,
    barrier,
    claim_run_dir,
    distributed,
)
from soundloc_training.inference import predict_heatmaps
from soundloc_training.methods import build_method
from soundloc_training.models.localizer import Localizer
from soundloc_training.scoring import validate
from soundloc_training.visualize import save_contact_sheet

Prepare = Callable[[nn.Module, FrameTable, VisualInputs], None]


def localizer_schedule(config: TrainConfig) -> Schedule:
    return Schedule(config.epochs, config.batch_size, config.lr, config.weight_decay,
                    config.warmup_epochs, config.seed)  # fmt: skip


class LocalizerStep(nn.Module):
    """A localizer method's training step over the table's frames, with the run's per-frame
    augmentations (mirroring, audio jitter, gain and SpecAugment) drawn from (seed, epoch, rank)."""

    def __init__(
        self, method: nn.Module, visual: VisualInputs, table: FrameTable, config: TrainConfig
    ) -> None:
        super().__init__()
        self.method, self.visual, self.table = method, visual, table
        self.seed, self.flip_prob = config.seed, config.flip_prob
        self.frontend, self.augmentation = config.audio_frontend, config.audio_augmentation
        self.rng = np.random.default_rng()

    def begin_epoch(self, epoch: int, rank: int) -> None:
        self.rng = np.random.default_rng([self.seed, epoch, rank, 1])
        torch.manual_seed(int(self.rng.integers(2**62)))  # dropout etc.

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        indices = batch.indices
        flip = self.rng.random(len(indices)) < self.flip_prob
        return self.method(
            self.visual.batch(indices, flip),
            audio_batch(self.table, indices, self.frontend, self.augmentation, self.rng),
            torch.from_numpy(self.table.clip_ids[indices]),
            not self.visual.precomputed,
            torch.from_numpy(indices),
            torch.from_numpy(flip),
        )


def _contact_sheet(val_visual: VisualInputs, val_table: FrameTable, config: TrainConfig):
    def draw(out: Path, summary: dict[str, object]) -> None:
        best_model, _ = load_model(out / "best.pt")
        heatmaps = predict_heatmaps(best_model, val_visual, val_table, config)
        save_contact_sheet(
            out / "contact_sheet_val.png", val_table, heatmaps, config.contact_sheet_frames
        )

    return draw


def run_single(
    config: TrainConfig,
    resume: bool = False,
    stop_after: int | None = None,
    prepare: Prepare | None = None,
) -> dict[str, object]:
    """Train per `config`; returns the run summary (also written to out_dir/summary.json).

    `prepare(method, train_table, train_visual)` runs once the training data is ready and
    before a resumed state is loaded (IER initializes from the previous iteration there and
    hands over its pseudo-labels)."""
    rank, world = distributed()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    torch.manual_seed(config.seed)
    out = config.out_path
    resumed = claim_run_dir(out, resume) is not None
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_config(config, out)

    model = Localizer(config.backbone, pretrained=config.pretrained, embed_dim=config.embed_dim)
    if config.init_checkpoint and not resumed:
        load_trainable(model, config.init_checkpoint)  # fine-tuning; a resume has its own state
    method = build_method(config, model)
    frontend, size = config.audio_frontend, config.image_size
    train_table = load_table(config.data, "train", size, frontend, config.limit_train)
    val_table = load_table(config.data, "val", size, frontend, config.limit_eval)
    if rank == 0:  # rank 0 fills the feature cache; the others then read it
        train_visual = VisualInputs(model, train_table, size, config.cache_dir)
    barrier()
    if rank != 0:
        train_visual = VisualInputs(model, train_table, size, config.cache_dir)
    val_visual = VisualInputs(model, val_table, size, config.cache_dir) if rank == 0 else None
    if val_table.gt_maps is None and config.select_metric != "retrieval_acc":
        raise ValueError(
            f"the val split of {config.data} has no ground truth to compute "
            f"{config.select_metric!r} on; set select_metric: retrieval_acc (label-free)"
        )
    if prepare is not None:
        prepare(method, train_table, train_visual)

    trainer = Trainer(
        out=out,
        step=LocalizerStep(method, train_visual, train_table, config),
        weights=Weights(
            "model",
            lambda: trainable_state(model),
            lambda state: load_trainable(model, {"model": state}),
        ),
        n_frames=len(train_table),
        schedule=localizer_schedule(config),
        validate=(lambda: validate(model, val_visual, val_table, config)),
        select_metric=config.select_metric,
        carried={"config": asdict(config)},
        on_end=[_contact_sheet(val_visual, val_table, config)],
    )
    return trainer.fit(resume, stop_after)
