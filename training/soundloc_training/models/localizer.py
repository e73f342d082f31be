"""The localizer: where in the image is the sound? A cosine-similarity map per (image, audio).

backbone (frozen or trained) -> 1x1 visual head -> L2-normalized D-dim vector per position;
audio encoder -> L2-normalized D-dim vector; similarity map = their dot product per position,
in [-1, 1] (the map LVS and EZ-VSL localize with).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from soundloc_training.models.audio import AudioEncoder
from soundloc_training.models.backbones import build_backbone


class VisualHead(nn.Module):
    """Backbone features [B, C, h, w] -> embeddings [B, D, h, w] (before normalization)."""

    def __init__(self, in_channels: int, embed_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, embed_dim, 1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class Localizer(nn.Module):
    def __init__(
        self, backbone: str = "efficientnet_lite0", pretrained: bool = True, embed_dim: int = 128
    ) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone, pretrained=pretrained)
        self.visual_head = VisualHead(self.backbone.out_channels, embed_dim)
        self.audio_encoder = AudioEncoder(embed_dim)

    @property
    def backbone_frozen(self) -> bool:
        return bool(self.backbone.frozen)

    def embed_visual(self, features: torch.Tensor) -> torch.Tensor:
        """Backbone features [B, C, h, w] -> unit vectors [B, D, h, w]."""
        return F.normalize(self.visual_head(features), dim=1)

    def embed_audio(self, logmel: torch.Tensor) -> torch.Tensor:
        """Log-mel [B, 1, n_mels, n_frames] -> unit vectors [B, D]."""
        return F.normalize(self.audio_encoder(logmel), dim=1)

    @staticmethod
    def paired_similarity(visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Each image with its own audio: [B, D, h, w] x [B, D] -> [B, h, w]."""
        return torch.einsum("bdhw,bd->bhw", visual, audio)

    @staticmethod
    def all_pairs_similarity(visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Every image with every audio: [B, D, h, w] x [K, D] -> [B, K, h, w]."""
        return torch.einsum("bdhw,kd->bkhw", visual, audio)

    def training_maps(
        self,
        visual_input: torch.Tensor,
        logmel: torch.Tensor,
        visual_is_image: bool,
        feature_dropout: nn.Module,
    ) -> torch.Tensor:
        """A training batch's every-image-with-every-audio maps [B, B, h, w]. visual_input:
        cached backbone features [B, C, h, w], or images when the backbone trains; the dropout
        acts on the backbone features (the regularizer every method uses)."""
        features = self.backbone(visual_input) if visual_is_image else visual_input
        visual = self.embed_visual(feature_dropout(features))  # [B, D, h, w]
        return self.all_pairs_similarity(visual, self.embed_audio(logmel))  # [B, B, h, w]

    def forward(self, image: torch.Tensor, logmel: torch.Tensor) -> torch.Tensor:
        """Normalized image [B, 3, H, W] + log-mel -> similarity map [B, 1, h, w] (exported)."""
        visual = self.embed_visual(self.backbone(image))
        return self.paired_similarity(visual, self.embed_audio(logmel)).unsqueeze(1)
