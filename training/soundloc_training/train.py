"""`soundloc-train CONFIG.yaml`: learn a localizer from unlabeled frames and audio.

One process, or data-parallel under `torchrun --nproc_per_node=N` (DDP over gloo on CPU, NCCL on
GPUs): the global batch is split across processes, gradients are averaged, rank 0 evaluates and
writes. BatchNorm running statistics stay per process (rank 0's are saved); parameters are
identical on every replica. Every epoch appends a JSON line of figures to `log.jsonl`, writes
`last.pt` atomically, and `best.pt` when the validation metric improves (checkpoints are chosen
on val, never on test).
`--resume` continues from `last.pt` exactly: all randomness of an epoch is derived from
(seed, epoch, rank), so a resumed run sees the same batches and augmentations.
`method: ier` runs its iterations 0..K, each one such run in OUT/iter_<k>/ (iterative.py);
`method: uspl` / `ier+uspl` run a coarse stage, SMR and SPS in OUT/coarse, smr, sps
(sounding_pixels.py).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

from soundloc_ros.core.atomic import atomic_write_text
from soundloc_training.checkpoints import (
    load_model,
    load_trainable,
    read_checkpoint,
    save_checkpoint,
    trainable_state,
)
from soundloc_training.config import TrainConfig
from soundloc_training.data import FrameTable, VisualInputs, audio_batch, load_table
from soundloc_training.inference import predict_heatmaps
from soundloc_training.methods import build_method
from soundloc_training.models.localizer import Localizer
from soundloc_training.scoring import validate
from soundloc_training.visualize import save_contact_sheet


def learning_rate_factor(step: int, steps_per_epoch: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to zero over the run."""
    warmup = max(1, round(config.warmup_epochs * steps_per_epoch))
    total = max(warmup + 1, config.epochs * steps_per_epoch)
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def epoch_batches(
    n: int, config: TrainConfig, epoch: int, rank: int, world: int
) -> list[np.ndarray]:
    """This rank's share of the epoch's shuffled batches (drop_last keeps batch sizes equal)."""
    order = np.random.default_rng([config.seed, epoch]).permutation(n)
    per_step = config.batch_size
    steps = n // per_step
    if steps == 0:
        raise ValueError(
            f"batch_size {config.batch_size} is larger than the {n} training frames; lower it"
        )
    return [order[s * per_step : (s + 1) * per_step][rank::world] for s in range(steps)]


Step = Callable[[np.ndarray], tuple[torch.Tensor, dict[str, float]]]


def optimize_epoch(
    batches: list[np.ndarray],
    step: Step,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    desc: str,
    quiet: bool = False,
) -> dict[str, float]:
    """Minimize `step(indices)`'s loss over the batches in order (one optimizer and scheduler
    step each); returns the mean of the loss and of every figure the step reports. The one
    loop behind every stage: the localizer's methods and the SMR / SPS heads."""
    totals: dict[str, float] = {}
    for indices in tqdm(batches, desc=desc, leave=False, disable=quiet):
        loss, stats = step(indices)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        for key, value in {"loss": loss.item(), **stats}.items():
            totals[key] = totals.get(key, 0.0) + value
    return {key: value / len(batches) for key, value in totals.items()}


def train_one_epoch(
    step_module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    visual: VisualInputs,
    table: FrameTable,
    config: TrainConfig,
    epoch: int,
    rank: int = 0,
    world: int = 1,
) -> dict[str, float]:
    """One pass over the training frames; returns the epoch's mean figures."""
    step_module.train()
    rng = np.random.default_rng([config.seed, epoch, rank, 1])
    torch.manual_seed(
        int(rng.integers(2**62))
    )  # dropout etc.: reproducible per epoch, for --resume

    def step(indices: np.ndarray) -> tuple[torch.Tensor, dict[str, float]]:
        flip = rng.random(len(indices)) < config.flip_prob
        return step_module(
            visual.batch(indices, flip),
            audio_batch(table, indices, config, rng),
            torch.from_numpy(table.clip_ids[indices]),
            not visual.precomputed,
            torch.from_numpy(indices),
            torch.from_numpy(flip),
        )

    batches = epoch_batches(len(table), config, epoch, rank, world)
    return optimize_epoch(batches, step, optimizer, scheduler, f"epoch {epoch}", rank != 0)


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


Prepare = Callable[[torch.nn.Module, FrameTable, VisualInputs], None]


def run(
    config: TrainConfig,
    resume: bool = False,
    stop_after: int | None = None,
    prepare: Prepare | None = None,
) -> dict[str, object]:
    """Train per `config`; returns the run summary (also written to out_dir/summary.json).

    `stop_after` ends this invocation after that many epochs (a time-limited job); the run
    is then continued with `resume=True`. `prepare(method, train_table, train_visual)` runs
    once the training data is ready and before a resumed state is loaded (iterative.py uses it
    to initialize from the previous iteration and hand over its pseudo-labels).
    """
    run_started = time.monotonic()
    rank, world = _distributed()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    torch.manual_seed(config.seed)
    out = config.out_path
    if not resume and (out / "last.pt").exists():
        raise FileExistsError(
            f"{out} already holds a run (last.pt); pass --resume to continue it, or choose a "
            "new out_dir (or delete this one) to start over"
        )
    # read before any work, so a damaged last.pt is reported at once
    state = read_checkpoint(out / "last.pt") if resume and (out / "last.pt").is_file() else None
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", yaml.safe_dump(asdict(config), sort_keys=False))

    model = Localizer(config.backbone, pretrained=config.pretrained, embed_dim=config.embed_dim)
    if config.init_checkpoint and state is None:
        load_trainable(model, config.init_checkpoint)  # fine-tuning; a resume has its own state
    method = build_method(config, model)
    step_module = method
    if world > 1:
        step_module = torch.nn.parallel.DistributedDataParallel(method)
    frontend, size = config.audio_frontend, config.image_size
    train_table = load_table(config.data, "train", size, frontend, config.limit_train)
    val_table = load_table(config.data, "val", size, frontend, config.limit_eval)
    if rank == 0:  # rank 0 fills the feature cache; the others then read it
        train_visual = VisualInputs(model, train_table, config)
    if world > 1:
        dist.barrier()
    if rank != 0:
        train_visual = VisualInputs(model, train_table, config)
    val_visual = VisualInputs(model, val_table, config) if rank == 0 else None
    if val_table.gt_maps is None and config.select_metric != "retrieval_acc":
        raise ValueError(
            f"the val split of {config.data} has no ground truth to compute "
            f"{config.select_metric!r} on; set select_metric: retrieval_acc (label-free)"
        )
    if prepare is not None:
        prepare(method, train_table, train_visual)

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = len(epoch_batches(len(train_table), config, 0, 0, 1))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, steps_per_epoch, config)
    )
    start_epoch, best, elapsed = 0, {"epoch": -1, config.select_metric: -1.0}, 0.0
    if state is not None:
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best, elapsed = state["epoch"] + 1, state["best"], state["elapsed_s"]
        if rank == 0:
            print(f"resuming {out} at epoch {start_epoch}")

    last_epoch = (
        config.epochs if stop_after is None else min(config.epochs, start_epoch + stop_after)
    )
    for epoch in range(start_epoch, last_epoch):
        began = time.monotonic()
        figures = train_one_epoch(
            step_module, optimizer, scheduler, train_visual, train_table, config, epoch, rank, world
        )
        elapsed += time.monotonic() - began
        if rank == 0:
            val = validate(model, val_visual, val_table, config)
            line = {"epoch": epoch, "train": figures, "val": val, "lr": scheduler.get_last_lr()[0],
                    "train_time_s": round(elapsed, 1)}  # fmt: skip
            with open(out / "log.jsonl", "a") as log:
                log.write(json.dumps(line) + "\n")
            print(json.dumps(line))
            improved = val[config.select_metric] > best[config.select_metric]
            if improved:
                best = {"epoch": epoch, **val}
            checkpoint = {
                "config": asdict(config), "model": trainable_state(model), "epoch": epoch,
                "best": best, "elapsed_s": elapsed,
            }  # fmt: skip
            if improved:
                save_checkpoint(out / "best.pt", **checkpoint)
            save_checkpoint(
                out / "last.pt", **checkpoint, optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(),
            )  # fmt: skip
        if world > 1:
            dist.barrier()

    summary = {"best": best, "train_time_s": round(elapsed, 1), "processes": world,
               "epochs_done": last_epoch}  # fmt: skip
    if rank == 0 and last_epoch == config.epochs:
        best_model, _ = load_model(out / "best.pt")
        heatmaps = predict_heatmaps(best_model, val_visual, val_table, config)
        save_contact_sheet(
            out / "contact_sheet_val.png", val_table, heatmaps, config.contact_sheet_frames
        )
        # this invocation's wall time: data loading, feature caching, training and validation
        summary["wall_time_s"] = round(time.monotonic() - run_started, 1)
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
