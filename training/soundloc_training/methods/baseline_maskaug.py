"""`baseline+maskaug`: the multiple-instance contrast, made robust by masking the visual input.

USPL's coarse stage (Zhang et al., EMNLP 2023; built from its abstract): each step scores the
batch twice with the baseline's symmetric multiple-instance contrast (losses/contrastive.py),
once on the whole image and once on a masked view (masking.py) in which part of every image is
hidden from the pooling:
    loss = mil(maps) + mask_weight * mil(maps with hidden positions left out)
The full view keeps the peak where the sound is; the masked one asks the rest of the object to
match the sound too, which widens the map from one patch to the object.
"""

from __future__ import annotations

import torch

from soundloc_training.config import TrainConfig
from soundloc_training.masking import RegionMasking
from soundloc_training.methods.baseline import BaselineMethod
from soundloc_training.models.localizer import Localizer


class BaselineMaskAugMethod(BaselineMethod):
    """The baseline's step with a second, masked view of the maps in its objective."""

    def __init__(self, model: Localizer, config: TrainConfig) -> None:
        super().__init__(model, config)
        self.masking = RegionMasking(config.mask_mode, config.mask_fraction)
        self.mask_weight = config.mask_weight

    def objective(
        self,
        similarity: torch.Tensor,
        clip_ids: torch.Tensor,
        frames: torch.Tensor,
        flipped: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """similarity [B, B, h, w]; frames / flipped are unused here."""
        own = similarity.diagonal(dim1=0, dim2=1).movedim(-1, 0)  # [B, h, w]
        hidden = self.masking(own)  # [B, h, w] bool
        full = self.mil(similarity, clip_ids)
        masked = self.mil(similarity, clip_ids, excluded=hidden)
        stats = {"full": full.item(), "masked": masked.item(),
                 "retrieval_acc": self.retrieval_accuracy(similarity, clip_ids)}  # fmt: skip
        return full + self.mask_weight * masked, stats
