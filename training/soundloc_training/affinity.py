"""SMR's pixel affinities and random walk (after AffinityNet; notes/methods.md §2.4).

Positions x and y of the pixel grid are neighbours when |x - y| <= radius (a disk of offsets).
- Affinity: a(x, y) = exp(-mean_c |f_x - f_y|) of the affinity head's features, in (0, 1] and
  symmetric.
- Pair labels, from the coarse map's confident regions (pseudo_labels.confident_regions): both
  ends sounding (fg pair), both non-sounding (bg pair), one of each (cross pair); a pair with an
  end in the unconfident band has no label and is left out.
- Random walk: transition x -> x + o with probability T_o(x) = W_o(x) / D(x), where W = a ** beta
  with a self-loop of weight 1 (a lazy walk: aperiodic, so it converges) and D(x) = sum_o W_o(x).
  The refined map is AffinityNet's P^t coarse: t times, each position becomes the
  transition-weighted average of its neighbours, r'(x) = sum_o T_o(x) r(x + o). Because W is
  symmetric, the degree-weighted total sum_x D(x) r(x) stays the same (the mass D * r moves).
  RandomWalk does this with static shapes only (one Gather of fixed neighbour indices per step),
  so the same module refines SPS's pseudo-masks in training and is exported to ONNX / TensorRT.
Everything is on [B, P, H, W] tensors: P offsets, each a shifted copy of the grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Offset = tuple[int, int]


def disk_offsets(radius: int, half: bool = False) -> list[Offset]:
    """(dy, dx) with 0 < dy² + dx² <= radius², row-major; `half` keeps one of each ± pair
    (the later one in raster order), which is enough for symmetric pair terms."""
    if radius < 1:
        raise ValueError(f"affinity_radius must be >= 1; got {radius}")
    offsets = [
        (dy, dx)
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
        if 0 < dy * dy + dx * dx <= radius * radius
    ]
    return [(dy, dx) for dy, dx in offsets if dy > 0 or (dy == 0 and dx > 0)] if half else offsets


def shifted(grid: torch.Tensor, offset: Offset) -> torch.Tensor:
    """[..., H, W] -> [..., H, W] holding grid(x + offset) at x; zero where that is off the grid."""
    dy, dx = offset
    height, width = grid.shape[-2:]
    r = max(abs(dy), abs(dx))
    padded = F.pad(grid, (r, r, r, r))  # [..., H + 2r, W + 2r]
    return padded[..., r + dy : r + dy + height, r + dx : r + dx + width]


def inside(height: int, width: int, offsets: list[Offset]) -> torch.Tensor:
    """[P, H, W] bool: x + offset lies on the grid."""
    ones = torch.ones(height, width)
    return torch.stack([shifted(ones, o) > 0 for o in offsets])


def pair_affinities(features: torch.Tensor, offsets: list[Offset]) -> torch.Tensor:
    """Features [B, C, H, W] -> a [B, P, H, W]: exp(-mean_c |f_x - f_{x+o}|), 0 off the grid."""
    height, width = features.shape[-2:]
    distances = torch.stack(
        [(features - shifted(features, o)).abs().mean(dim=1) for o in offsets], dim=1
    )  # [B, P, H, W]
    return torch.exp(-distances) * inside(height, width, offsets).to(features.dtype)


def pair_labels(
    sounding: torch.Tensor, non_sounding: torch.Tensor, offsets: list[Offset]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Confident regions [B, H, W] bool -> (fg, bg, cross) pairs [B, P, H, W] bool. Pairs
    leaving the grid or touching the unconfident band are in none of them."""
    fg_there = torch.stack([shifted(sounding, o) for o in offsets], dim=1)  # [B, P, H, W]
    bg_there = torch.stack([shifted(non_sounding, o) for o in offsets], dim=1)
    fg_here, bg_here = sounding[:, None], non_sounding[:, None]  # [B, 1, H, W]
    cross = (fg_here & bg_there) | (bg_here & fg_there)
    return fg_here & fg_there, bg_here & bg_there, cross


def cross_pair_coverage(
    sounding: torch.Tensor, non_sounding: torch.Tensor, radius: int
) -> tuple[float, float]:
    """(share of the labelled pairs within `radius` that are cross pairs, share of the frames
    with at least one) for confident regions [B, H, W] bool: whether pairs that short can show
    the affinity head a boundary at all (scripts/sweep_smr.py prints it)."""
    fg, bg, cross = pair_labels(sounding, non_sounding, disk_offsets(radius, half=True))
    labelled = int(fg.sum() + bg.sum() + cross.sum())
    share = int(cross.sum()) / max(labelled, 1)
    return share, cross.flatten(1).any(dim=1).float().mean().item()


def walk_weights(affinities: torch.Tensor, beta: float) -> torch.Tensor:
    """a [B, P, H, W] -> W [B, 1 + P, H, W]: the self-loop (weight 1) first, then a ** beta."""
    self_loop = torch.ones_like(affinities[:, :1])
    return torch.cat([self_loop, affinities.clamp_min(0) ** beta], dim=1)


class RandomWalk(nn.Module):
    """The walk P^t coarse on a fixed grid, `steps` unrolled rounds over static shapes.

    A round reads every position's (2R + 1)^2 square of neighbours with two Gathers of constant
    indices: the rows y + dy of the zero-padded map (contiguous rows, so a block copy), then,
    transposed, its columns x + dx. The transition is laid out the same way once, zero off the
    disk, and the round is one Mul and one ReduceSum: 8 ONNX nodes, no Loop or Scan. Prototyped
    on ONNX Runtime (CPU, 56 x 56, 128 steps, radius 4): 45 ms, against 227 ms for one Slice per
    offset, 356 ms for one Gather per element and 440 ms for a one-hot Conv (most of its taps
    are zeros); benchmarks/walk_latency.py measures this form per steps and radius. In training
    (32 frames a batch) it is about 6x faster than moving the mass offset by offset."""

    def __init__(self, grid: tuple[int, int], offsets: list[Offset], beta: float, steps: int):
        super().__init__()
        self.beta, self.steps = beta, steps
        self.radius = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
        height, width = grid
        self.grid = (height, width)
        size = 2 * self.radius + 1
        channel = {move: i for i, move in enumerate([(0, 0), *offsets])}  # in walk_weights
        square = [channel.get((dy, dx), len(channel)) for dx in range(-self.radius, self.radius + 1)
                  for dy in range(-self.radius, self.radius + 1)]  # fmt: skip
        self.register_buffer("square", torch.tensor(square), persistent=False)  # [(dx, dy)]
        windows = torch.arange(size)[:, None]  # [size, 1]: the shift d + radius
        self.register_buffer("rows", (windows + torch.arange(height)).flatten(), persistent=False)
        self.register_buffer("cols", (windows + torch.arange(width)).flatten(), persistent=False)

    def squared(self, affinities: torch.Tensor) -> torch.Tensor:
        """a [B, P, H, W] -> transition [B, dx, W, dy, H] over the square, zero off the disk."""
        weights = walk_weights(affinities, self.beta)  # [B, 1 + P, H, W]
        transition = weights / weights.sum(dim=1, keepdim=True)
        padded = F.pad(transition, (0, 0, 0, 0, 0, 1))  # [B, 2 + P, H, W]: a zero channel last
        size = 2 * self.radius + 1
        square = padded.index_select(1, self.square).unflatten(1, (size, size))  # [B,dx,dy,H,W]
        return square.permute(0, 1, 4, 2, 3)  # [B, dx, W, dy, H]

    def forward(self, coarse: torch.Tensor, affinities: torch.Tensor) -> torch.Tensor:
        """coarse [B, H, W] in [0, 1], affinities [B, P, H, W] -> refined [B, H, W] in [0, 1]."""
        transition = self.squared(affinities)  # [B, dx, W, dy, H]
        r, refined = self.radius, coarse
        for _ in range(self.steps):
            padded = F.pad(refined, (r, r, r, r))  # [B, H + 2r, W + 2r]: zero off the grid
            rows = padded.index_select(1, self.rows)  # [B, (dy, y), W + 2r]
            both = rows.transpose(1, 2).index_select(1, self.cols)  # [B, (dx, x), (dy, y)]
            neighbours = both.view(transition.shape)  # [B, dx, W, dy, H]: refined(y+dy, x+dx)
            refined = (transition * neighbours).sum(dim=(1, 3)).transpose(1, 2)  # [B, H, W]
        return refined
