"""SPS's loss: binary cross-entropy against the refined maps as pseudo-masks.

The pseudo-mask of a pixel is refined > 0.5; pixels whose refined value lies within `band` of
0.5 (where the refinement is undecided) are left out, so the head learns the boundary from the
image where the pseudo-mask is unsure rather than copying its blur. Pixels are not re-weighted by
class: the mask is read at probability 0.5, where an unweighted cross-entropy is calibrated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PseudoMaskLoss(nn.Module):
    def __init__(self, band: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= band < 0.5:
            raise ValueError(f"pseudo_mask_band must be in [0, 0.5); got {band}")
        self.band = band

    def forward(self, logits: torch.Tensor, refined: torch.Tensor) -> torch.Tensor:
        """logits [B, H, W] (before the sigmoid); refined maps [B, H, W] in [0, 1]."""
        target = (refined > 0.5).float()
        confident = ((refined - 0.5).abs() >= self.band).float()  # [B, H, W]
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return (per_pixel * confident).sum() / confident.sum().clamp_min(1)
