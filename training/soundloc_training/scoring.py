"""Scores of heatmaps against ground truth, and the label-free validation figures.

Metrics come from `soundloc_ros.core.metrics` (the one implementation, shared with rosbag replay):
cIoU / AUC by the LVS protocol at 224 x 224, and for mask datasets mIoU / F-score (AVSBench
definitions, F max over the whole set) of the min-max normalized map. soundloc-eval also scores the
reference maps on the same frames:
- random: uniform noise drawn at the method's map resolution (14 x 14 for 224 px input), upsampled;
- center_prior: a centred Gaussian (under median thresholding any radially decreasing map is the
  same central disc);
- oracle: the ground-truth map used as the heatmap (the ceiling of the protocol; a binary map
  smaller than half the frame is reproduced exactly by the median threshold).
"""

from __future__ import annotations

import numpy as np
import torch

from soundloc_ros.core.metrics import LocalizationMetrics
from soundloc_training.config import TrainConfig
from soundloc_training.data import GT_SIZE, FrameTable, VisualInputs
from soundloc_training.inference import embedded_batches, predict_heatmaps
from soundloc_training.losses.contrastive import MultipleInstanceContrast

REFERENCE_MAP_SIZE = 14


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
