"""SMR and SPS, the sounding-pixel stages of `uspl` and `ier+uspl`: what their heads read,
their training steps, and their predictions (the run itself: orchestration/uspl.py).

USPL (Zhang et al., EMNLP 2023), built from its abstract and AffinityNet.
- SMR: the frozen coarse model maps every training frame with its own audio; the map,
  upsampled to the stride-4 pixel grid and min-max normalized, gives confident sounding
  (> affinity_fg_threshold) and non-sounding (< affinity_bg_threshold) regions. The affinity
  head (image + the frozen backbone's low-level features) learns from labelled pairs up to
  pair_radius apart (losses/affinity.py); the coarse map is then propagated by the random walk
  on its affinities within affinity_radius (refinement.py) into the refined map.
- SPS: the segmentation head (image, backbone features, the coarse map of the audio) learns the
  refined maps of the training frames as pseudo-masks (losses/segmentation.py); at run time it
  gives the mask in the same forward pass as the heatmap (soundloc-export).

Stage checkpoints hold the frozen coarse model too, so each one is evaluated alone:
`soundloc-eval --checkpoint OUT/smr/best.pt` scores the refined maps (a heatmap method) and
`OUT/best.pt` (= OUT/sps/best.pt) the masks (probabilities, used unchanged for mIoU / F).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from soundloc_ros.core.maps import mirror
from soundloc_ros.core.metrics import mask_iou, prepare_heatmap
from soundloc_ros.core.preprocess import normalize_images
from soundloc_training.affinity import RandomWalk, disk_offsets, pair_affinities, pair_labels
from soundloc_training.checkpoints import build_head
from soundloc_training.config import TrainConfig
from soundloc_training.data import GT_SIZE, FrameTable, VisualInputs
from soundloc_training.engine import Batch
from soundloc_training.inference import predict_heatmaps
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

EVAL_BATCH = 32


# ---------------------------------------------------------------------------------------------
# Per-frame inputs of the pixel heads
# ---------------------------------------------------------------------------------------------


class PixelInputs:
    """What a pixel head reads per frame: the normalized image, the cached backbone features,
    and the frozen coarse model's similarity map with the frame's own audio."""

    def __init__(self, localizer: Localizer, table: FrameTable, config: TrainConfig) -> None:
        self.table = table
        self.visual = VisualInputs(localizer, table, config.image_size, config.cache_dir)
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


class HeadStep(nn.Module):
    """What both heads' training steps share: mirroring drawn for the global batch from
    (seed, epoch), the same on every rank, so N processes train the same frames the same way
    as one (the Trainer's Batch); torch's generator (SMR's pair offsets) is seeded alike."""

    def __init__(self, head: nn.Module, inputs: PixelInputs, config: TrainConfig) -> None:
        super().__init__()
        self.head, self.inputs = head, inputs
        self.seed, self.flip_prob = config.seed, config.flip_prob
        self.rng = np.random.default_rng()

    def begin_epoch(self, epoch: int, rank: int) -> None:
        self.rng = np.random.default_rng([self.seed, epoch, 7])  # not rank: see the class doc
        torch.manual_seed(int(self.rng.integers(2**62)))

    def frames(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """(this rank's frames, which of them are mirrored)."""
        flip = self.rng.random(len(batch.frames)) < self.flip_prob  # [B] global
        return batch.indices, flip[batch.shard]


class AffinityStep(HeadStep):
    """SMR's training step: the affinity loss over labelled pairs.

    Pairs span up to `pair_radius` (wider than the walk's `affinity_radius`): the confident
    sounding and non-sounding regions lie apart, with the unconfident band between them, so
    pairs as short as the walk's have almost no cross (sounding / non-sounding) label and the
    head would only learn to pull neighbours together. Each step draws `pair_offsets` of the
    wide half-disk's offsets at random (torch's generator, seeded per epoch), which keeps the
    step's cost that of a short radius."""

    def __init__(self, head: AffinityHead, inputs: PixelInputs, config: TrainConfig) -> None:
        super().__init__(head, inputs, config)
        self.offsets = disk_offsets(config.pair_radius, half=True)
        self.draws = config.pair_offsets
        self.sounding, self.non_sounding = seed_regions(inputs, config)
        self.loss = AffinityLoss()

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict]:
        indices, flip = self.frames(batch)
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


class SegmentationStep(HeadStep):
    """SPS's training step: cross-entropy against the refined maps as pseudo-masks."""

    def __init__(
        self, head: SegmentationHead, inputs: PixelInputs, refined: torch.Tensor,
        config: TrainConfig,
    ) -> None:  # fmt: skip
        super().__init__(head, inputs, config)
        self.refined = refined
        self.loss = PseudoMaskLoss(config.pseudo_mask_threshold, config.pseudo_mask_band)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict]:
        indices, flip = self.frames(batch)
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
