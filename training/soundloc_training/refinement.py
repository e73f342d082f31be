"""SMR's refined map, one composition for training and for the robot.

The coarse similarity map, min-max normalized and upsampled to the pixel grid, is walked on the
affinity head's affinities (affinity.RandomWalk) and min-max normalized again. SPS learns these
maps as pseudo-masks (sounding_pixels.refined_maps runs `Refinement`), the sweep scores them per
walk (sounding_pixels.walked_maps), and the exported graph's heatmap is `Refinement` itself.
"""

from __future__ import annotations

import torch
from torch import nn

from soundloc_training.affinity import RandomWalk, disk_offsets, pair_affinities
from soundloc_training.models.pixel_heads import (
    PIXEL_STRIDE,
    AffinityHead,
    minmax,
    normalized_map,
)


def refined_map(
    similarity: torch.Tensor, affinities: torch.Tensor, walk: RandomWalk
) -> torch.Tensor:
    """Coarse similarity [B, h, w] + affinities [B, P, H, W] -> refined map [B, H, W] in [0, 1]
    (all zeros where the walked map is constant)."""
    start = normalized_map(similarity, walk.grid)[:, 0]  # [B, H, W]
    return minmax(walk(start, affinities))


class Refinement(nn.Module):
    """Image [B, 3, S, S] + coarse similarity [B, h, w] -> refined map [B, S/4, S/4] in [0, 1].

    `backbone` is the frozen coarse localizer's: the affinity head reads its low-level features.
    """

    def __init__(
        self, head: AffinityHead, backbone: nn.Module, image_size: int, radius: int, beta: float,
        steps: int,
    ) -> None:  # fmt: skip
        super().__init__()
        self.head, self.backbone = head.eval(), backbone
        self.offsets = disk_offsets(radius)
        grid = (image_size // PIXEL_STRIDE,) * 2
        self.walk = RandomWalk(grid, self.offsets, beta, steps)

    def forward(self, image: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
        features = self.head(image, self.backbone.low_level(image))  # [B, C, S/4, S/4]
        return refined_map(similarity, pair_affinities(features, self.offsets), self.walk)
