"""`uspl` and `ier+uspl`: coarse maps -> SMR refined maps -> SPS masks, no label anywhere.

USPL (Zhang et al., EMNLP 2023), built from its abstract and AffinityNet (notes/methods.md §2.4).
`soundloc-train` with `method: uspl` or `ier+uspl` runs three stages, each resumable:

1. OUT/coarse/: the coarse localizer, a `baseline+maskaug` run (uspl, methods/masked_mil.py) or
   an `ier` run (ier+uspl, iterative.py). `coarse_checkpoint` names a finished run's best.pt
   to refine instead (the ablation reuses the `ier` run so it is not trained twice).
2. OUT/smr/: SMR. The frozen coarse model maps every training frame with its own audio; the map,
   upsampled to the stride-4 pixel grid and min-max normalized, gives confident sounding
   (> affinity_fg_threshold) and non-sounding (< affinity_bg_threshold) regions. The affinity
   head (image + the frozen backbone's low-level features) learns from labelled pairs up to
   pair_radius apart (losses/affinity.py); the coarse map is then propagated by the random walk
   on its affinities within affinity_radius (refinement.py) into the refined map.
3. OUT/sps/: SPS. The segmentation head (image, backbone features, the coarse map of the audio)
   learns the refined maps of the training frames as pseudo-masks (losses/segmentation.py); at
   run time it gives the mask in the same forward pass as the heatmap (soundloc-export).
   Its checkpoints carry the SMR head too (`affinity`), so OUT/best.pt alone exports the robot's
   whole graph: the refined heatmap, the mask and the coarse map.

Stage checkpoints hold the frozen coarse model too, so each one is evaluated alone:
`soundloc-eval --checkpoint OUT/smr/best.pt` scores the refined maps (a heatmap method) and
`OUT/best.pt` (= OUT/sps/best.pt) the masks (probabilities, used unchanged for mIoU / F).
SMR keeps its last epoch; SPS keeps the epoch with the best val mIoU where the val split has
masks (labels choose checkpoints on val only, as for every method), else its last.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from tqdm import tqdm

from soundloc_ros.core.atomic import atomic_write_bytes, atomic_write_text
from soundloc_ros.core.maps import mirror
from soundloc_ros.core.metrics import mask_iou, prepare_heatmap
from soundloc_ros.core.preprocess import normalize_images
from soundloc_training.affinity import RandomWalk, disk_offsets, pair_affinities, pair_labels
from soundloc_training.checkpoints import (
    build_head,
    load_model,
    load_stage,
    read_checkpoint,
    save_checkpoint,
)
from soundloc_training.config import TrainConfig
from soundloc_training.data import GT_SIZE, FrameTable, VisualInputs, load_table
from soundloc_training.inference import predict_heatmaps
from soundloc_training.iterative import run_iterations
from soundloc_training.jsonfiles import REWRITE_SUMMARY, read_json
from soundloc_training.losses.affinity import AffinityLoss
from soundloc_training.losses.segmentation import PseudoMaskLoss
from soundloc_training.models.localizer import Localizer
from soundloc_training.models.pixel_heads import (
    PIXEL_STRIDE,
    AffinityHead,
    SegmentationHead,
    normalized_map,
)
from soundloc_training.pseudo_labels import confident_regions
from soundloc_training.refinement import Refinement, WalkSettings, refined_map
from soundloc_training.scoring import evaluate_heatmaps
from soundloc_training.train import epoch_batches, learning_rate_factor, optimize_epoch, run
from soundloc_training.visualize import save_stage_sheet

COARSE_METHOD = {"uspl": "baseline+maskaug", "ier+uspl": "ier"}
EVAL_BATCH = 32


# ---------------------------------------------------------------------------------------------
# Per-frame inputs of the pixel heads
# ---------------------------------------------------------------------------------------------


class PixelInputs:
    """What a pixel head reads per frame: the normalized image, the cached backbone features,
    and the frozen coarse model's similarity map with the frame's own audio."""

    def __init__(self, localizer: Localizer, table: FrameTable, config: TrainConfig) -> None:
        self.table = table
        self.visual = VisualInputs(localizer, table, config)
        self.coarse = torch.from_numpy(predict_heatmaps(localizer, self.visual, table, config))
        self.localizer, self.backbone = localizer, localizer.backbone
        self.mean, self.std = self.backbone.mean, self.backbone.std
        self.grid = (config.image_size // PIXEL_STRIDE,) * 2

    def batch(
        self, indices: np.ndarray, flip: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images [B, 3, S, S], features [B, C, h, w], coarse maps [B, h, w]), mirrored where
        `flip` is True (all three together)."""
        images = torch.from_numpy(normalize_images(self.table.images[indices], self.mean, self.std))
        coarse = self.coarse[indices]
        if flip is not None:
            images, coarse = mirror(images, flip), mirror(coarse, flip)
        return images, self.visual.batch(indices, flip), coarse

    @torch.no_grad()
    def low_level(self, images: torch.Tensor) -> torch.Tensor:
        """The frozen backbone's low-level features of a batch [B, C, S/4, S/4] (not cached:
        4 x the deep features' positions would not fit in memory for a full split)."""
        return self.backbone.low_level(images)

    def batches(self) -> list[np.ndarray]:
        return [np.arange(s, min(s + EVAL_BATCH, len(self.table))) for s in
                range(0, len(self.table), EVAL_BATCH)]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# SMR and SPS steps and predictions
# ---------------------------------------------------------------------------------------------


def seed_regions(inputs: PixelInputs, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """SMR's confident (sounding, non-sounding) regions [N, H, W] bool on the pixel grid: the
    frames' coarse maps upsampled, min-max normalized, cut at the affinity seed levels."""
    coarse = normalized_map(inputs.coarse, inputs.grid)[:, 0]  # [N, H, W]
    sounding, non_sounding = confident_regions(
        coarse, config.affinity_fg_threshold, config.affinity_bg_threshold
    )
    return sounding.bool(), non_sounding.bool()


class AffinityStep(nn.Module):
    """SMR's training step: the affinity loss over labelled pairs.

    Pairs span up to `pair_radius` (wider than the walk's `affinity_radius`): the confident
    sounding and non-sounding regions lie apart, with the unconfident band between them, so
    pairs as short as the walk's have almost no cross (sounding / non-sounding) label and the
    head would only learn to pull neighbours together. Each step draws `pair_offsets` of the
    wide half-disk's offsets at random (torch's generator, seeded per epoch), which keeps the
    step's cost that of a short radius."""

    def __init__(self, head: AffinityHead, inputs: PixelInputs, config: TrainConfig) -> None:
        super().__init__()
        self.head, self.inputs = head, inputs
        self.offsets = disk_offsets(config.pair_radius, half=True)
        self.draws = config.pair_offsets
        self.sounding, self.non_sounding = seed_regions(inputs, config)
        self.loss = AffinityLoss()

    def forward(self, indices: np.ndarray, flip: np.ndarray) -> tuple[torch.Tensor, dict]:
        images, _, _ = self.inputs.batch(indices, flip)
        drawn = torch.randperm(len(self.offsets))[: self.draws].sort().values
        offsets = [self.offsets[i] for i in drawn.tolist()]
        features = self.head(images, self.inputs.low_level(images))  # [B, C, H, W]
        affinities = pair_affinities(features, offsets)  # [B, P, H, W]
        labels = pair_labels(
            mirror(self.sounding[indices], flip),
            mirror(self.non_sounding[indices], flip),
            offsets,
        )
        return self.loss(affinities, *labels)


class SegmentationStep(nn.Module):
    """SPS's training step: cross-entropy against the refined maps as pseudo-masks."""

    def __init__(
        self, head: SegmentationHead, inputs: PixelInputs, refined: torch.Tensor,
        config: TrainConfig,
    ) -> None:  # fmt: skip
        super().__init__()
        self.head, self.inputs, self.refined = head, inputs, refined
        self.loss = PseudoMaskLoss(config.pseudo_mask_threshold, config.pseudo_mask_band)

    def forward(self, indices: np.ndarray, flip: np.ndarray) -> tuple[torch.Tensor, dict]:
        logits = self.head(*self.inputs.batch(indices, flip))  # [B, H, W]
        loss = self.loss(logits, mirror(self.refined[indices], flip))
        return loss, {}


def walked_maps(
    head: AffinityHead, inputs: PixelInputs, indices: np.ndarray, radius: int,
    walks: list[tuple[float, int]],
) -> list[torch.Tensor]:  # fmt: skip
    """The frames' coarse maps [B, h, w] walked on the head's affinities once per
    (beta, steps) of `walks` (affinities computed once): each [B, H, W] on the pixel grid,
    min-max normalized."""
    images, _, coarse = inputs.batch(indices)
    offsets = disk_offsets(radius)
    features = head(images, inputs.low_level(images))  # [B, C, H, W]
    affinities = pair_affinities(features, offsets)  # [B, P, H, W]
    return [refined_map(coarse, affinities, RandomWalk(inputs.grid, offsets, beta, steps))
            for beta, steps in walks]  # fmt: skip


def walk_settings(
    config: TrainConfig, steps: int | None = None, radius: int | None = None, pool: int = 1
) -> WalkSettings:
    """The config's SMR walk, with steps, radius and grid pooling overridable (the export)."""
    return WalkSettings(
        steps=config.walk_steps if steps is None else steps,
        radius=config.affinity_radius if radius is None else radius,
        beta=config.affinity_beta,
        pool=pool,
    )


def refinement(
    head: AffinityHead, localizer: Localizer, config: TrainConfig, walk: WalkSettings | None = None
) -> Refinement:
    """SMR's refinement with the config's walk, or with `walk`."""
    return Refinement(head, localizer.backbone, config.image_size, walk or walk_settings(config))


@torch.no_grad()
def refined_maps(head: AffinityHead, inputs: PixelInputs, config: TrainConfig) -> torch.Tensor:
    """Every frame's coarse map refined by the config's random walk: [N, H, W], the same module
    as the exported graph's heatmap."""
    refine = refinement(head.eval(), inputs.localizer, config)
    maps = []
    for indices in tqdm(inputs.batches(), desc="SMR random walk", leave=False):
        images, _, coarse = inputs.batch(indices)
        maps.append(refine(images, coarse))  # [B, H, W]
    return torch.cat(maps)


@torch.no_grad()
def sweep_walks(
    head: AffinityHead, inputs: PixelInputs, config: TrainConfig,
    walks: list[tuple[float, int]], levels: list[float],
) -> np.ndarray:  # fmt: skip
    """mIoU [len(walks), len(levels)] over the inputs' frames of each walk's refined map read
    at each level (scripts/sweep_smr.py). Maps are scored as the protocol scores a heatmap
    (metrics.prepare_heatmap: 224 x 224, min-max), foreground above the level; steps 0 is the
    coarse map itself."""
    head.eval()
    ious = np.zeros((len(walks), len(levels)))  # summed over frames
    for indices in tqdm(inputs.batches(), desc="sweep", leave=False):
        walked = walked_maps(head, inputs, indices, config.affinity_radius, walks)
        for w, maps in enumerate(walked):
            for heatmap, i in zip(maps.numpy(), indices, strict=True):
                prepared = prepare_heatmap(heatmap)
                gt = inputs.table.gt_maps[i] > 0.5
                for t, level in enumerate(levels):
                    binary = (prepared > level).astype(np.float32)  # foreground: 1 > 0.5
                    ious[w, t] += mask_iou(binary, gt)
    return ious / len(inputs.table)


@torch.no_grad()
def segment(head: SegmentationHead, inputs: PixelInputs, size: int = GT_SIZE) -> np.ndarray:
    """Sounding-pixel probabilities [N, size, size] (logits upsampled, then the sigmoid)."""
    head.eval()
    masks = []
    for indices in inputs.batches():
        logits = head(*inputs.batch(indices))[:, None]  # [B, 1, H, W]
        upsampled = F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)
        masks.append(torch.sigmoid(upsampled[:, 0]).numpy())
    return np.concatenate(masks)


# ---------------------------------------------------------------------------------------------
# Stage checkpoints
# ---------------------------------------------------------------------------------------------


def smr_head_state(checkpoint: dict, source: str) -> dict:
    """The SMR affinity head's weights: an SMR checkpoint's head, or the copy an SPS one carries."""
    if checkpoint["stage"] == "smr":
        return checkpoint["head"]
    if "affinity" not in checkpoint:
        raise ValueError(
            f"{source} is an SPS checkpoint without the SMR head (written before SPS checkpoints "
            "carried it); retrain its SPS stage: delete OUT/sps and OUT/best.pt, then run "
            "soundloc-train CONFIG --resume (the coarse and SMR stages are reused)"
        )
    return checkpoint["affinity"]


def pixel_graph(
    checkpoint: dict, source: str, stage: str, localizer: Localizer, head: nn.Module,
    config: TrainConfig, steps: int | None = None, radius: int | None = None, pool: int = 1,
) -> tuple[Refinement, nn.Module | None]:  # fmt: skip
    """(SMR refinement, SPS head or None for SMR) of a stage checkpoint loaded by load_any: what
    the exported graph runs after the coarse localizer, with the run's walk unless overridden."""
    affinity = build_head("smr", localizer, config)
    affinity.load_state_dict(smr_head_state(checkpoint, source))
    segmentation = head if stage == "sps" else None
    walk = walk_settings(config, steps, radius, pool)
    return refinement(affinity, localizer, config, walk), segmentation


def stage_method(checkpoint: dict) -> str:
    """The results-row name of a stage checkpoint: `<coarse method>+smr`, or the run's method."""
    if checkpoint["stage"] == "smr":
        return f"{checkpoint['coarse']['config']['method']}+smr"
    return checkpoint["config"]["method"]


def predict_stage(
    stage: str, localizer: Localizer, head: nn.Module, config: TrainConfig, table: FrameTable
) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """(heatmaps, mask probabilities or None) of a stage checkpoint loaded by load_any on a
    table's frames."""
    inputs = PixelInputs(localizer, table, config)
    if stage == "smr":
        return list(refined_maps(head, inputs, config).numpy()), None
    masks = list(segment(head, inputs))
    return masks, masks


# ---------------------------------------------------------------------------------------------
# Training a head
# ---------------------------------------------------------------------------------------------


def fit_head(
    stage: str,
    step: nn.Module,
    n_frames: int,
    config: TrainConfig,
    epochs: int,
    coarse: dict,
    validate: Callable[[], dict[str, float]] | None,
    resume: bool,
    stop_after: int | None,
    carried: dict[str, object] | None = None,
) -> dict[str, object]:
    """Train `step.head` for `epochs` in OUT/<stage>/ (log.jsonl, last.pt, best.pt); returns
    the stage summary. best.pt is the epoch with the best val mIoU when `validate` is given,
    else the last epoch. `carried` goes into every checkpoint as it is (SPS: the SMR head)."""
    out = config.out_path / stage
    if not resume and (out / "last.pt").exists():
        raise FileExistsError(
            f"{out} already holds a run (last.pt); pass --resume to continue it, or choose a "
            "new out_dir (or delete this one) to start over"
        )
    out.mkdir(parents=True, exist_ok=True)
    head = step.head
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.pixel_lr, weight_decay=1e-4)
    stage_config = replace(config, batch_size=config.pixel_batch_size, epochs=epochs,
                           warmup_epochs=min(config.warmup_epochs, epochs / 2))  # fmt: skip
    steps_per_epoch = len(epoch_batches(n_frames, stage_config, 0, 0, 1))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: learning_rate_factor(s, steps_per_epoch, stage_config)
    )
    start, best, elapsed = 0, {"epoch": -1, "miou": -math.inf}, 0.0
    if resume and (out / "last.pt").is_file():
        state = read_checkpoint(out / "last.pt")
        head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, best, elapsed = state["epoch"] + 1, state["best"], state["elapsed_s"]
        print(f"resuming {out} at epoch {start}")
    last = epochs if stop_after is None else min(epochs, start + stop_after)
    for epoch in range(start, last):
        began = time.monotonic()
        figures = _one_epoch(step, optimizer, scheduler, n_frames, stage_config, epoch, stage)
        elapsed += time.monotonic() - began
        val = validate() if validate is not None else {}
        line = {"stage": stage, "epoch": epoch, "train": figures, "val": val,
                "train_time_s": round(elapsed, 1)}  # fmt: skip
        with open(out / "log.jsonl", "a") as log:
            log.write(json.dumps(line) + "\n")
        print(json.dumps(line))
        improved = validate is None or val["miou"] > best["miou"]
        if improved:
            best = {"epoch": epoch, **val}
        content = {"config": asdict(config), "stage": stage, "coarse": coarse,
                   "head": head.state_dict(), "epoch": epoch, "best": best,
                   "elapsed_s": elapsed, **(carried or {})}  # fmt: skip
        if improved:
            save_checkpoint(out / "best.pt", **content)
        save_checkpoint(out / "last.pt", **content, optimizer=optimizer.state_dict(),
                        scheduler=scheduler.state_dict())  # fmt: skip
    summary = {"stage": stage, "best": best, "train_time_s": round(elapsed, 1),
               "epochs_done": last}  # fmt: skip
    if last == epochs:
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _one_epoch(
    step: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    n_frames: int,
    config: TrainConfig,
    epoch: int,
    stage: str,
) -> dict[str, float]:
    """One pass over the training frames with random mirroring; the epoch's mean figures."""
    step.head.train()
    rng = np.random.default_rng([config.seed, epoch, 7])
    torch.manual_seed(int(rng.integers(2**62)))
    batches = epoch_batches(n_frames, config, epoch, 0, 1)
    return optimize_epoch(
        batches,
        lambda indices: step(indices, rng.random(len(indices)) < config.flip_prob),
        optimizer,
        scheduler,
        f"{stage} epoch {epoch}",
    )


# ---------------------------------------------------------------------------------------------
# The three stages
# ---------------------------------------------------------------------------------------------


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
        summary = run_iterations(sub, resume=resume, stop_after=stop_after)
        return sub.out_path / "best.pt" if "iterations" in summary else None
    summary = run(sub, resume=resume, stop_after=stop_after)
    return sub.out_path / "best.pt" if summary["epochs_done"] == sub.epochs else None


def run_sounding_pixels(
    config: TrainConfig, resume: bool = False, stop_after: int | None = None
) -> dict[str, object]:
    """Train the coarse stage, SMR and SPS (see module doc); returns the run summary."""
    if config.method not in COARSE_METHOD:
        raise ValueError(f"run_sounding_pixels trains {sorted(COARSE_METHOD)}, not {config.method}")
    out = config.out_path
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", yaml.safe_dump(asdict(config), sort_keys=False))
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
        smr_step = AffinityStep(affinity, train, config)
        stages["smr"] = fit_head("smr", smr_step, len(train.table), config, config.smr_epochs,
                                 coarse, None, resume, stop_after)  # fmt: skip
        if stages["smr"]["epochs_done"] < config.smr_epochs:
            return {"stage": "smr", "epochs_done": stages["smr"]["epochs_done"]}
    refined = refined_maps(affinity, train, config)  # [N, H, W]: SPS's pseudo-masks

    segmentation = build_head("sps", localizer, config)

    def validate() -> dict[str, float]:
        masks = segment(segmentation, val)
        return evaluate_heatmaps(masks, val.table, probabilities=masks)

    sps_step = SegmentationStep(segmentation, train, refined, config)
    validation = validate if labelled else None
    stages["sps"] = fit_head("sps", sps_step, len(train.table), config, config.sps_epochs,
                             coarse, validation, resume, stop_after,
                             {"affinity": affinity.state_dict()})  # fmt: skip
    if stages["sps"]["epochs_done"] < config.sps_epochs:
        return {"stage": "sps", "epochs_done": stages["sps"]["epochs_done"]}

    atomic_write_bytes(out / "best.pt", (out / "sps" / "best.pt").read_bytes())
    _, _, best_segmentation, _ = load_stage(out / "best.pt")
    sheet = {
        "coarse": val.coarse.numpy(),
        "refined (SMR)": refined_maps(affinity, val, config).numpy(),
        "segmented (SPS)": (segment(best_segmentation, val) > 0.5).astype(np.float32),
    }
    save_stage_sheet(out / "stages_val.png", val.table, sheet, config.contact_sheet_frames)
    summary = {"coarse": str(coarse_path), "stages": stages,
               "train_time_s": round(sum(s["train_time_s"] for s in stages.values()), 1),
               "epochs_done": config.smr_epochs + config.sps_epochs}  # fmt: skip
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
