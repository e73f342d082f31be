"""The one training loop: every stage (a localizer run, each IER iteration, the SMR and SPS heads)
is a `Trainer.fit`.

The Trainer owns what every stage shares, so that no stage can get it wrong on its own:
- the schedule: AdamW, linear warm-up then cosine decay, over the global batches of each epoch
  (drop_last, so every step has the same batch size);
- data parallelism: under `torchrun` every rank trains its shard of each global batch, the step
  module is wrapped in DDP (gradients averaged), and only rank 0 validates and writes;
- the run directory: a run refuses a directory that already holds one unless resumed, and
  writes `log.jsonl` (one JSON line per epoch), `last.pt` every epoch (with the optimizer and
  schedule, for `--resume`), `best.pt` when the validation metric improves (chosen on val, never
  on test), and `summary.json` once the last epoch is done;
- resume: `last.pt` is read before any work (a damaged file is reported at once) and loaded
  strictly, so weights that do not fit the model are an error, not a silent partial load.

A stage gives the Trainer a step module, `forward(batch: Batch) -> (loss, figures)`, and its
`Weights` (which tensors a checkpoint holds and how they load). All randomness of an epoch comes
from (seed, epoch, rank) through the step's own generators, so a resumed run sees the same
batches and augmentations as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from soundloc_ros.core.atomic import atomic_write_text
from soundloc_training.checkpoints import read_checkpoint, save_checkpoint


def distributed() -> tuple[int, int]:
    """(rank, world size), joining the process group that torchrun describes on first use."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def is_writer() -> bool:
    """Rank 0, or a single process: the one that validates and writes files."""
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in one process): what rank 0 wrote is then readable by all."""
    if dist.is_initialized():
        dist.barrier()


def claim_run_dir(out: Path, resume: bool) -> dict | None:
    """Refuse a directory that holds a run unless resuming; the run's last.pt when resuming
    (read now, so a damaged file is reported before any work), else None."""
    last = out / "last.pt"
    if not resume and last.exists():
        raise FileExistsError(
            f"{out} already holds a run (last.pt); pass --resume to continue it, or choose a "
            "new out_dir (or delete this one) to start over"
        )
    return read_checkpoint(last) if resume and last.is_file() else None


@dataclass(frozen=True)
class Schedule:
    """How one stage optimizes: epochs of global batches, AdamW, warm-up + cosine decay."""

    epochs: int
    batch_size: int  # global: split across torchrun processes
    lr: float
    weight_decay: float
    warmup_epochs: float
    seed: int

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.warmup_epochs < 0:
            raise ValueError(
                f"a schedule needs epochs >= 1, batch_size >= 1, lr > 0, warmup_epochs >= 0; "
                f"got {self}"
            )


def learning_rate_factor(step: int, steps_per_epoch: int, schedule: Schedule) -> float:
    """Linear warm-up, then cosine decay to zero over the run."""
    warmup = max(1, round(schedule.warmup_epochs * steps_per_epoch))
    total = max(warmup + 1, schedule.epochs * steps_per_epoch)
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def epoch_batches(n: int, schedule: Schedule, epoch: int) -> list[np.ndarray]:
    """The epoch's shuffled global batches of frame indices (the same on every rank)."""
    order = np.random.default_rng([schedule.seed, epoch]).permutation(n)
    steps = n // schedule.batch_size
    if steps == 0:
        raise ValueError(
            f"batch_size {schedule.batch_size} is larger than the {n} training frames; lower it"
        )
    return [order[s * schedule.batch_size : (s + 1) * schedule.batch_size] for s in range(steps)]


@dataclass(frozen=True)
class Batch:
    """One step's frames: the global batch, and the positions in it that this rank trains.

    A step that draws per-frame randomness for the global batch and then keeps its `shard`
    trains the same frames the same way in one process or in N (the SMR / SPS heads do)."""

    frames: np.ndarray  # [B] global batch: indices into the training table
    rank: int = 0
    world: int = 1

    @property
    def shard(self) -> slice:
        return slice(self.rank, None, self.world)

    @property
    def indices(self) -> np.ndarray:
        """This rank's frames."""
        return self.frames[self.shard]


@dataclass
class Weights:
    """What a stage's checkpoints hold under `key`, and how it loads back (strictly)."""

    key: str  # the checkpoint field: "model" for a localizer, "head" for a pixel head
    state: Callable[[], dict[str, torch.Tensor]]
    load: Callable[[dict[str, torch.Tensor]], None]

    @classmethod
    def of_module(cls, key: str, module: nn.Module) -> Weights:
        """All of a module's state, loaded with strict=True."""
        return cls(key, module.state_dict, lambda state: module.load_state_dict(state))


Validate = Callable[[], dict[str, float]]
Callback = Callable[[Path, dict[str, object]], None]  # (run directory, summary) after fit


@dataclass
class Trainer:
    """Trains one stage in `out` (see the module doc); `fit` returns the stage summary.

    `select_metric` picks best.pt among the epochs (higher is better) from `validate`'s figures;
    without a `validate`, best.pt is the last epoch. `carried` goes into every checkpoint as is
    (the run config, a uspl stage's coarse model...). `on_begin` runs on every rank once the
    step is built and before a resumed state loads (IER hands over its pseudo-labels there);
    `on_end` callbacks run on rank 0 after the last epoch."""

    out: Path
    step: nn.Module
    weights: Weights
    n_frames: int
    schedule: Schedule
    validate: Validate | None = None
    select_metric: str | None = None
    carried: dict[str, object] = field(default_factory=dict)
    on_end: list[Callback] = field(default_factory=list)
    desc: str = "epoch"

    def fit(self, resume: bool = False, stop_after: int | None = None) -> dict[str, object]:
        """Train up to the schedule's epochs, or `stop_after` more of them (a time-limited
        job, continued later with resume=True)."""
        run_started = time.monotonic()
        rank, world = distributed()
        state = claim_run_dir(self.out, resume)
        if rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        parameters = [p for p in self.step.parameters() if p.requires_grad]
        module = self.step
        if world > 1:
            module = nn.parallel.DistributedDataParallel(self.step)
        optimizer = torch.optim.AdamW(
            parameters, lr=self.schedule.lr, weight_decay=self.schedule.weight_decay
        )
        steps_per_epoch = len(epoch_batches(self.n_frames, self.schedule, 0))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: learning_rate_factor(s, steps_per_epoch, self.schedule)
        )
        start, best, elapsed = 0, {"epoch": -1}, 0.0
        if state is not None:
            self.weights.load(state[self.weights.key])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start, best, elapsed = state["epoch"] + 1, state["best"], state["elapsed_s"]
            if rank == 0:
                print(f"resuming {self.out} at epoch {start}")
        epochs = self.schedule.epochs
        last = epochs if stop_after is None else min(epochs, start + stop_after)
        for epoch in range(start, last):
            began = time.monotonic()
            figures = self.train_one_epoch(module, optimizer, scheduler, epoch, rank, world)
            elapsed += time.monotonic() - began
            if rank == 0:
                best = self._end_epoch(epoch, figures, best, elapsed, optimizer, scheduler)
            barrier()
        summary = {**self._log_context(), "best": best, "train_time_s": round(elapsed, 1),
                   "processes": world, "epochs_done": last}  # fmt: skip
        if rank == 0 and last == epochs:
            for callback in self.on_end:
                callback(self.out, summary)
            summary["wall_time_s"] = round(time.monotonic() - run_started, 1)  # this invocation
            atomic_write_text(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        barrier()
        return summary

    def train_one_epoch(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        epoch: int,
        rank: int,
        world: int,
    ) -> dict[str, float]:
        """One pass over this rank's shards of the epoch's batches (one optimizer and schedule
        step each); returns the mean of the loss and of every figure the step reports."""
        self.step.train()
        begin_epoch = getattr(self.step, "begin_epoch", None)
        if begin_epoch is not None:
            begin_epoch(epoch, rank)
        batches = epoch_batches(self.n_frames, self.schedule, epoch)
        totals: dict[str, float] = {}
        for frames in tqdm(batches, desc=f"{self.desc} {epoch}", leave=False, disable=rank != 0):
            loss, figures = module(Batch(frames, rank, world))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            for key, value in {"loss": loss.item(), **figures}.items():
                totals[key] = totals.get(key, 0.0) + value
        return {key: value / len(batches) for key, value in totals.items()}

    def _end_epoch(
        self,
        epoch: int,
        figures: dict[str, float],
        best: dict,
        elapsed: float,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
    ) -> dict:
        """Rank 0: validate, log the epoch, write last.pt and (when it improved) best.pt."""
        val = self.validate() if self.validate is not None else {}
        line = {**self._log_context(), "epoch": epoch, "train": figures, "val": val,
                "lr": scheduler.get_last_lr()[0], "train_time_s": round(elapsed, 1)}  # fmt: skip
        with open(self.out / "log.jsonl", "a") as log:
            log.write(json.dumps(line) + "\n")
        print(json.dumps(line))
        metric = self.select_metric
        improved = metric is None or val[metric] > best.get(metric, -math.inf)
        if improved:
            best = {"epoch": epoch, **val}
        content = {**self.carried, self.weights.key: self.weights.state(), "epoch": epoch,
                   "best": best, "elapsed_s": elapsed}  # fmt: skip
        if improved:
            save_checkpoint(self.out / "best.pt", **content)
        save_checkpoint(self.out / "last.pt", **content, optimizer=optimizer.state_dict(),
                        scheduler=scheduler.state_dict())  # fmt: skip
        return best

    def _log_context(self) -> dict[str, object]:
        """What every log line of this stage repeats (a pixel head's stage name)."""
        stage = self.carried.get("stage")
        return {"stage": stage} if stage is not None else {}
