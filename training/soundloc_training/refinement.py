"""SMR's refined map, one composition for training and for the robot.

The coarse similarity map, min-max normalized and upsampled to the pixel grid, is walked on the
affinity head's affinities (affinity.RandomWalk) and min-max normalized again. SPS learns these
maps as pseudo-masks (pixel_stages.refined_maps runs `Refinement`), the sweep scores them per
walk (pixel_stages.walked_maps), and the exported graph's heatmap is `Refinement` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from soundloc_ros.core.maps import minmax
from soundloc_training.affinity import RandomWalk, disk_offsets, pair_affinities
from soundloc_training.models.pixel_heads import PIXEL_STRIDE, AffinityHead, normalized_map


@dataclass(frozen=True)
class WalkSettings:
    """How the refined map is walked: `steps` rounds, moves of at most `radius` positions,
    transitions from affinity ** `beta`, on the pixel grid pooled by `pool` (2: a 28 x 28 grid
    at 224 px, each position the mean of a 2 x 2 block of affinity features). Pooling is the
    robot's cheap form: a quarter of the positions, and a move reaches twice as far, so about a
    quarter of the steps diffuse as far (benchmarks/walk_latency.py measures the trade)."""

    steps: int
    radius: int
    beta: float
    pool: int = 1

    def __post_init__(self) -> None:
        for name in ("steps", "radius", "pool"):
            if getattr(self, name) < 1:
                raise ValueError(f"walk {name} must be >= 1; got {getattr(self, name)}")

    def as_record(self) -> dict[str, float]:
        """What bundle.json records of the walk."""
        return {"steps": self.steps, "radius": self.radius, "beta": self.beta, "pool": self.pool}


def refined_map(
    similarity: torch.Tensor, affinities: torch.Tensor, walk: RandomWalk
) -> torch.Tensor:
    """Coarse similarity [B, h, w] + affinities [B, P, H, W] -> refined map [B, H, W] in [0, 1]
    (all zeros where the walked map is constant)."""
    start = normalized_map(similarity, walk.grid)[:, 0]  # [B, H, W]
    return minmax(walk(start, affinities), constant=0.0)  # the published heatmap's rule


class Refinement(nn.Module):
    """Image [B, 3, S, S] + coarse similarity [B, h, w] -> refined map [B, G, G] in [0, 1],
    G = S / (4 pool): the pixel grid, or the pooled one.

    `backbone` is the frozen coarse localizer's: the affinity head reads its low-level features.
    """

    def __init__(
        self, head: AffinityHead, backbone: nn.Module, image_size: int, settings: WalkSettings
    ) -> None:
        super().__init__()
        self.head, self.backbone = head.eval(), backbone
        self.settings = settings
        self.offsets = disk_offsets(settings.radius)
        grid = (image_size // (PIXEL_STRIDE * settings.pool),) * 2
        self.walk = RandomWalk(grid, self.offsets, settings.beta, settings.steps)

    def forward(self, image: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
        features = self.head(image, self.backbone.low_level(image))  # [B, C, S/4, S/4]
        if self.settings.pool > 1:
            features = F.avg_pool2d(features, self.settings.pool)  # [B, C, G, G]
        return refined_map(similarity, pair_affinities(features, self.offsets), self.walk)
