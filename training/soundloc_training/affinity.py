"""SMR's pixel affinities and random walk (after AffinityNet; notes/methods.md §2.4).

Positions x and y of the pixel grid are neighbours when |x - y| <= radius (a disk of offsets).
- Affinity: a(x, y) = exp(-mean_c |f_x - f_y|) of the affinity head's features, in (0, 1] and
  symmetric.
- Pair labels, from the coarse map's confident regions (pseudo_labels.confident_regions): both
  ends sounding (fg pair), both non-sounding (bg pair), one of each (cross pair); a pair with an
  end in the unconfident band has no label and is left out.
- Random walk: transition x -> x + o with probability W_o(x) / D(x), where W = a ** beta with a
  self-loop of weight 1 (a lazy walk: aperiodic, so it converges) and D(x) = sum_o W_o(x).
  Mass m moves as m'(y) = sum_o m(y - o) W_o(y - o) / D(y - o), which keeps its total. Started
  from m_0 = D * coarse, the walk's m_t / D equals AffinityNet's refined map P^t coarse (each
  position the affinity-weighted average of its neighbours, repeated), because W is symmetric.
Everything is on [B, P, H, W] tensors: P offsets, each a shifted copy of the grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


def random_walk(
    mass: torch.Tensor, weights: torch.Tensor, offsets: list[Offset], steps: int
) -> torch.Tensor:
    """Move mass [B, H, W] `steps` times along the transition W / D; returns [B, H, W] with
    the same total. weights [B, 1 + P, H, W] as from walk_weights (offset 0 first)."""
    transition = weights / weights.sum(dim=1, keepdim=True)  # [B, 1 + P, H, W], sums to 1
    moves = [(0, 0), *offsets]
    for _ in range(steps):
        outgoing = transition * mass[:, None]  # [B, 1 + P, H, W]: m(x) P(x -> x + o)
        mass = sum(
            shifted(outgoing[:, p], (-dy, -dx)) for p, (dy, dx) in enumerate(moves)
        )  # arrives at x + o
    return mass


def refine(
    coarse: torch.Tensor, affinities: torch.Tensor, offsets: list[Offset], beta: float, steps: int
) -> torch.Tensor:
    """Coarse map [B, H, W] in [0, 1] -> refined map [B, H, W] in [0, 1] (P^t coarse)."""
    weights = walk_weights(affinities, beta)  # [B, 1 + P, H, W]
    degree = weights.sum(dim=1)  # [B, H, W], >= 1
    return random_walk(coarse * degree, weights, offsets, steps) / degree
