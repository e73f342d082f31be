"""SPS's loss: binary cross-entropy against the refined maps as pseudo-masks.

The pseudo-mask of a pixel is refined > `level`; pixels whose refined value lies within `band` of
the level (where the refinement is undecided) are left out, so the head learns the boundary from
the image where the pseudo-mask is unsure rather than copying its blur. The level is a
hyperparameter (`pseudo_mask_threshold`, chosen on the validation split with
scripts/sweep_smr.py): multiple-instance maps spread past the object, so their min-max
normalized 0.5 level is usually too wide. Pixels are not re-weighted by class: the mask is read at
probability 0.5, where an unweighted cross-entropy is calibrated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PseudoMaskLoss(nn.Module):
    def __init__(self, level: float = 0.5, band: float = 0.1) -> None:
        super().__init__()
        if not 0.0 < level < 1.0:
            raise ValueError(f"pseudo_mask_threshold must be in (0, 1); got {level}")
        if not 0.0 <= band < min(level, 1.0 - level):
            raise ValueError(
                f"pseudo_mask_band must be in [0, {min(level, 1.0 - level):.2f}) so that both "
                f"sides of pseudo_mask_threshold {level} keep pixels; got {band}"
            )
        self.level, self.band = level, band

    def forward(self, logits: torch.Tensor, refined: torch.Tensor) -> torch.Tensor:
        """logits [B, H, W] (before the sigmoid); refined maps [B, H, W] in [0, 1]."""
        target = (refined > self.level).float()
        confident = ((refined - self.level).abs() >= self.band).float()  # [B, H, W]
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return (per_pixel * confident).sum() / confident.sum().clamp_min(1)
