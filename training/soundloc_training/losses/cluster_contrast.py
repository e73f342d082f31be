"""Inter-frame contrast of `ier` across clips, with audio-cluster pseudo-labels.

scores[i, j] is image i's confident sounding region (from the previous iteration) pooled against
audio j. The own pair (i, i) is a positive. Audio clusters (pseudo_labels.kmeans) decide the rest:
- another clip in i's cluster makes the same kind of sound, so it is never a negative (the false
  negatives FNAC softens); with `cluster_positives` it is an extra positive, otherwise ignored;
- other frames of the same clip are ignored, as in the baseline (same scene, same sound);
- clips of other clusters are the negatives.
Each positive is contrasted against the negatives only (multi-positive InfoNCE in which positives
do not compete with each other):
    loss_i = mean over positives p of softplus(logsumexp_n(s_in) - s_ip),   s = scores / tau
in both directions (image -> audio over rows, audio -> image over columns).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def multi_positive_nce(
    logits: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor
) -> torch.Tensor:
    """Rows of logits [B, K] with bool masks [B, K] -> mean over rows of the mean over each row's
    positives of -log(e^pos / (e^pos + sum e^neg))."""
    negatives = torch.logsumexp(logits.masked_fill(~negative, float("-inf")), dim=1)  # [B]
    per_pair = F.softplus(negatives[:, None] - logits)  # [B, K]; 0 where a row has no negatives
    per_pair = per_pair.masked_fill(~positive, 0.0)
    return (per_pair.sum(dim=1) / positive.sum(dim=1).clamp_min(1)).mean()


class InterFrameClusterContrast(nn.Module):
    def __init__(self, tau: float = 0.07, cluster_positives: bool = True) -> None:
        super().__init__()
        self.tau = tau
        self.cluster_positives = cluster_positives

    def masks(
        self, clip_ids: torch.Tensor, clusters: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(positive, negative) [B, B] bool from the batch's clip ids and audio clusters [B]."""
        own = torch.eye(len(clip_ids), dtype=torch.bool, device=clip_ids.device)
        same_clip = clip_ids[:, None] == clip_ids[None, :]
        same_cluster = clusters[:, None] == clusters[None, :]
        positive = own | (same_cluster & ~same_clip) if self.cluster_positives else own
        return positive, ~same_cluster & ~same_clip

    def forward(
        self, scores: torch.Tensor, clip_ids: torch.Tensor, clusters: torch.Tensor
    ) -> torch.Tensor:
        """scores [B, B]: image i's sounding region pooled against audio j (cosine)."""
        positive, negative = self.masks(clip_ids, clusters)
        logits = scores / self.tau
        image_to_audio = multi_positive_nce(logits, positive, negative)
        audio_to_image = multi_positive_nce(logits.T, positive.T, negative.T)
        return 0.5 * (image_to_audio + audio_to_image)
