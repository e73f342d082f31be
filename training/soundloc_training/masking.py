"""Masking augmentation of the visual input (USPL's coarse stage, methods/baseline_maskaug.py).

A masked view hides part of each image; the pooled score over what is left must still pick the
image's own audio. Two forms:

- `guided`: hide the positions where the image matches its own audio best (the top
  `fraction` of its current, detached map). The max or top-k pooling must then find the sound
  elsewhere, so the map has to cover the rest of the object rather than one peak patch
  (adversarial erasing, with the audio as the only guide).
- `random`: hide one axis-aligned block covering about `fraction` of the positions, at a
  random place and aspect ratio (cutout), so no single patch is ever guaranteed to be seen.

Masking acts on the grid of backbone positions, not on pixels: the frozen backbone's features
are cached per frame, and the visual head is 1 x 1, so hiding a position is exactly leaving it
out of every pooling (the receptive field of a position still sees its surroundings).
"""

from __future__ import annotations

import math

import torch

MASK_MODES = ("guided", "random")


class RegionMasking:
    def __init__(self, mode: str = "random", fraction: float = 0.25) -> None:
        if mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {MASK_MODES}; got {mode!r}")
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"mask_fraction must be in (0, 1); got {fraction}")
        self.mode, self.fraction = mode, fraction

    @torch.no_grad()
    def __call__(self, own_maps: torch.Tensor) -> torch.Tensor:
        """Each image's map with its own audio [B, h, w] -> hidden positions [B, h, w] bool
        (at least one position stays visible)."""
        if self.mode == "guided":
            return self._guided(own_maps)
        return self._random_block(*own_maps.shape)

    def _guided(self, own_maps: torch.Tensor) -> torch.Tensor:
        flat = own_maps.flatten(1)  # [B, h*w]
        k = min(flat.shape[1] - 1, max(1, round(self.fraction * flat.shape[1])))
        hidden = torch.zeros_like(flat, dtype=torch.bool)
        hidden.scatter_(1, flat.topk(k, dim=1).indices, True)
        return hidden.view_as(own_maps)

    def _random_block(self, batch: int, height: int, width: int) -> torch.Tensor:
        area = self.fraction * height * width
        aspect = torch.exp(torch.empty(batch).uniform_(-math.log(2), math.log(2)))  # h / w
        block_h = (area * aspect).sqrt().round().clamp(1, height).long()  # [B]
        block_w = (area / block_h.float()).round().clamp(1, width).long()
        top = (torch.rand(batch) * (height - block_h + 1).float()).long()
        left = (torch.rand(batch) * (width - block_w + 1).float()).long()
        rows = torch.arange(height)[None, :, None]  # [1, h, 1]
        cols = torch.arange(width)[None, None, :]  # [1, 1, w]
        top, left = top[:, None, None], left[:, None, None]  # [B, 1, 1]
        bottom, right = top + block_h[:, None, None], left + block_w[:, None, None]
        hidden = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)  # [B, h, w]
        hidden[:, 0, 0] &= ~hidden.flatten(1).all(dim=1)  # never hide everything
        return hidden  # [B, h, w]
