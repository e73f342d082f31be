"""`baseline`: single-stage multiple-instance contrastive localization (losses/contrastive.py)."""

from __future__ import annotations

import torch
from torch import nn

from soundloc_training.config import TrainConfig
from soundloc_training.losses.contrastive import MultipleInstanceContrast
from soundloc_training.models.localizer import Localizer


class BaselineMethod(nn.Module):
    """One training step's computation, as a module so DDP can wrap it."""

    def __init__(self, model: Localizer, config: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.feature_dropout = nn.Dropout2d(config.feature_dropout)
        self.loss = MultipleInstanceContrast(
            config.tau, config.positive_fraction, config.background_fraction
        )

    def forward(
        self,
        visual_input: torch.Tensor,
        logmel: torch.Tensor,
        clip_ids: torch.Tensor,
        visual_is_image: bool,
        frames: torch.Tensor,
        flipped: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """visual_input: cached backbone features [B, C, h, w], or images if the backbone trains.

        frames / flipped (training-table indices, mirrored or not) are part of every method's
        step signature for per-frame pseudo-labels (`ier`); the baseline has none.
        """
        similarity = self.model.training_maps(
            visual_input, logmel, visual_is_image, self.feature_dropout
        )  # [B, B, h, w]
        loss = self.loss(similarity, clip_ids)
        with torch.no_grad():
            logits = self.loss.logits(similarity, clip_ids)
            accuracy = (logits.argmax(dim=1) == torch.arange(len(logits))).float().mean()
        return loss, {"retrieval_acc": float(accuracy)}
