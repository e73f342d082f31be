"""Intra-frame region contrast of `ier`: a frame's sounding region against its own audio.

For frame i with its own audio, the score of a region is the weighted mean of the cosine map over
the region's pseudo-label weights (LVS pools its trimap the same way). The confident sounding
region must beat the frame's own confident non-sounding region:
    loss_i = -log softmax([pos_i, neg_i] / tau)[0] = softplus((neg_i - pos_i) / tau)
which pulls the sounding region toward the audio and pushes the non-sounding region away from it
(LVS's "hard negative": the same image, the same sound, the wrong place). Frames whose pseudo-map
has an empty region (a constant previous map) are left out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def region_mean(similarity: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean over positions: maps [B, ..., h, w] with weights [B, h, w] -> [B, ...]."""
    while weights.dim() < similarity.dim():
        weights = weights.unsqueeze(1)  # [B, 1, h, w] against [B, K, h, w]
    total = weights.sum(dim=(-2, -1)).clamp_min(1e-6)
    return (similarity * weights).sum(dim=(-2, -1)) / total


class IntraFrameRegionContrast(nn.Module):
    def __init__(self, tau: float = 0.07) -> None:
        super().__init__()
        self.tau = tau

    def forward(
        self, own_similarity: torch.Tensor, sounding: torch.Tensor, non_sounding: torch.Tensor
    ) -> torch.Tensor:
        """own_similarity [B, h, w]: each frame with its own audio; regions [B, h, w]."""
        valid = (sounding.flatten(1).sum(1) > 0) & (non_sounding.flatten(1).sum(1) > 0)  # [B]
        if not valid.any():
            return own_similarity.sum() * 0.0
        positive = region_mean(own_similarity, sounding)  # [B]
        negative = region_mean(own_similarity, non_sounding)  # [B]
        return F.softplus((negative - positive) / self.tau)[valid].mean()
