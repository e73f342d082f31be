"""Multiple-instance audio-visual contrastive loss (the `baseline` objective).

For image i and audio j, the score pools the map of i against j over positions:
    score[i, j] = mean of the top `positive_fraction` of <v_i(h, w), a_j> / tau
(one position = the EZ-VSL max). The matching pairs (i, i) must beat every other clip in the
batch, in both directions (image -> audio and audio -> image).

The max alone only asks one position of the sounding object to match; the rest of the image is
left free, so the map outside its peak says little, which the median-threshold protocol punishes
(it scores the top half of the map). Pooling over the top fraction asks the whole object to
match, and, optionally, the image's own least-matching `background_fraction` of positions is one
more negative for its own audio (the hard negative of LVS, defined here by rank instead of LVS's
fixed similarity thresholds, which were tuned for one backbone's features).

Frames of the same clip are not negatives of each other (they show the same scene and sound): the
clip id, free from the data, masks them out. No class label is used.

`excluded` [B, h, w] (mask augmentation, methods/baseline_maskaug.py) removes positions of image i
from every pooling over its maps, as if that part of the image had not been seen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def top_fraction_mean(
    values: torch.Tensor,
    fraction: float,
    largest: bool = True,
    excluded: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of the top (or bottom) `fraction` of the last axis; at least one element. Elements
    where `excluded` (broadcast to `values`) is True take no part; `fraction` then counts the
    fewest remaining elements of any row, so no excluded element is ever averaged in."""
    available = values.shape[-1]
    if excluded is not None:
        excluded = excluded.expand_as(values)
        available = int((~excluded).sum(dim=-1).min())
        if available == 0:
            raise ValueError("top_fraction_mean: a row has every element excluded")
        values = values.masked_fill(excluded, float("-inf") if largest else float("inf"))
    k = max(1, round(fraction * available))
    return values.topk(k, dim=-1, largest=largest).values.mean(dim=-1)


class MultipleInstanceContrast(nn.Module):
    def __init__(
        self, tau: float = 0.03, positive_fraction: float = 0.0, background_fraction: float = 0.0
    ) -> None:
        super().__init__()
        self.tau = tau
        self.positive_fraction = positive_fraction
        self.background_fraction = background_fraction

    def logits(
        self,
        similarity: torch.Tensor,
        clip_ids: torch.Tensor,
        excluded: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """All-pairs maps [B, B, h, w] -> image-to-audio logits [B, B] (same-clip pairs removed)."""
        hidden = None if excluded is None else excluded.flatten(1)[:, None, :]  # [B, 1, h*w]
        scores = top_fraction_mean(similarity.flatten(2), self.positive_fraction, True, hidden)
        scores = scores / self.tau
        same_clip = clip_ids[:, None] == clip_ids[None, :]
        off_diagonal = ~torch.eye(len(clip_ids), dtype=torch.bool, device=scores.device)
        return scores.masked_fill(same_clip & off_diagonal, float("-inf"))  # [B, B]

    def forward(
        self,
        similarity: torch.Tensor,
        clip_ids: torch.Tensor,
        excluded: torch.Tensor | None = None,
    ) -> torch.Tensor:
        logits = self.logits(similarity, clip_ids, excluded)
        target = torch.arange(len(clip_ids), device=logits.device)
        image_to_audio = logits
        if self.background_fraction > 0:
            own = similarity.diagonal(dim1=0, dim2=1).movedim(-1, 0).flatten(1)  # [B, h*w]
            hidden = None if excluded is None else excluded.flatten(1)  # [B, h*w]
            background = top_fraction_mean(own, self.background_fraction, False, hidden)
            image_to_audio = torch.cat([logits, background[:, None] / self.tau], dim=1)  # [B, B+1]
        return 0.5 * (F.cross_entropy(image_to_audio, target) + F.cross_entropy(logits.T, target))
