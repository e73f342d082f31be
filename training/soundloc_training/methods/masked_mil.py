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
from torch import nn

from soundloc_training.config import TrainConfig
from soundloc_training.losses.contrastive import MultipleInstanceContrast
from soundloc_training.masking import RegionMasking
from soundloc_training.models.localizer import Localizer


class MaskAugmentedMILMethod(nn.Module):
    """One training step's computation, as a module so DDP can wrap it."""

    def __init__(self, model: Localizer, config: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.feature_dropout = nn.Dropout2d(config.feature_dropout)
        self.loss = MultipleInstanceContrast(
            config.tau, config.positive_fraction, config.background_fraction
        )
        self.masking = RegionMasking(config.mask_mode, config.mask_fraction)
        self.mask_weight = config.mask_weight

    def forward(
        self,
        visual_input: torch.Tensor,
        logmel: torch.Tensor,
        clip_ids: torch.Tensor,
        visual_is_image: bool,
        frames: torch.Tensor,
        flipped: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The step signature every method shares (train.train_one_epoch); frames / flipped
        are unused here."""
        similarity = self.model.training_maps(
            visual_input, logmel, visual_is_image, self.feature_dropout
        )  # [B, B, h, w]
        own = similarity.diagonal(dim1=0, dim2=1).movedim(-1, 0)  # [B, h, w]
        hidden = self.masking(own)  # [B, h, w] bool
        full = self.loss(similarity, clip_ids)
        masked = self.loss(similarity, clip_ids, excluded=hidden)
        loss = full + self.mask_weight * masked
        with torch.no_grad():
            logits = self.loss.logits(similarity, clip_ids)
            accuracy = (logits.argmax(dim=1) == torch.arange(len(logits))).float().mean()
        stats = {"full": full.item(), "masked": masked.item(), "retrieval_acc": accuracy.item()}
        return loss, stats
