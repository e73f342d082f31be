"""SMR's affinity loss (AffinityNet's, notes/methods.md §2.4): labelled pairs of neighbours.

With a = exp(-d) the affinity of a pair (affinity.pair_affinities):
    fg  = mean over sounding-sounding pairs of        -log a     = mean d
    bg  = mean over non-sounding pairs of             -log a     = mean d
    neg = mean over sounding-non-sounding pairs of    -log(1 - a)
    loss = fg / 4 + bg / 4 + neg / 2
Each term is averaged over its own pairs, so the far more numerous background pairs do not drown
the others. A term without pairs in the batch contributes 0.
"""

from __future__ import annotations

import torch
from torch import nn


def _mean_over(values: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    count = pairs.sum()
    return (values * pairs).sum() / count.clamp_min(1)


class AffinityLoss(nn.Module):
    def forward(
        self,
        affinities: torch.Tensor,
        fg_pairs: torch.Tensor,
        bg_pairs: torch.Tensor,
        cross_pairs: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """affinities [B, P, H, W] in (0, 1]; the pair masks [B, P, H, W] bool."""
        affinities = affinities.clamp(1e-6, 1 - 1e-6)
        same = -torch.log(affinities)
        different = -torch.log1p(-affinities)
        fg = _mean_over(same, fg_pairs)
        bg = _mean_over(same, bg_pairs)
        neg = _mean_over(different, cross_pairs)
        loss = fg / 4 + bg / 4 + neg / 2
        figures = {"fg": fg.item(), "bg": bg.item(), "neg": neg.item()}
        return loss, figures
