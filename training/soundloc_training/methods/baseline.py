"""`baseline`: single-stage multiple-instance contrastive localization (losses/contrastive.py).

`BaselineMethod` is also the shape of every method's training step: `forward` turns a batch into
the [B, B, h, w] maps of every image with every audio, and `objective` turns the maps into the
loss. The other methods (baseline_maskaug.py, ier.py) override `objective` alone.
"""

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
        self.mil = MultipleInstanceContrast(
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
        """visual_input: cached backbone features [B, C, h, w], or images if the backbone trains;
        logmel: the batch's audio windows; clip_ids [B]; frames [B]: indices into the training
        table and flipped [B]: which were mirrored (for per-frame pseudo-labels, `ier`)."""
        similarity = self.model.training_maps(
            visual_input, logmel, visual_is_image, self.feature_dropout
        )  # [B, B, h, w]
        return self.objective(similarity, clip_ids, frames, flipped)

    def objective(
        self,
        similarity: torch.Tensor,
        clip_ids: torch.Tensor,
        frames: torch.Tensor,
        flipped: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The symmetric multiple-instance contrast of the maps; the baseline has no per-frame
        pseudo-labels, so frames / flipped are unused."""
        loss = self.mil(similarity, clip_ids)
        return loss, {"retrieval_acc": self.retrieval_accuracy(similarity, clip_ids)}

    @torch.no_grad()
    def retrieval_accuracy(self, similarity: torch.Tensor, groups: torch.Tensor) -> float:
        """How often an image's own audio scores best among the batch's other groups."""
        logits = self.mil.logits(similarity, groups)  # [B, B]
        return float((logits.argmax(dim=1) == torch.arange(len(logits))).float().mean())
