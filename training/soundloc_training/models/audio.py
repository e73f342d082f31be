"""Audio encoder: normalized log-mel [B, 1, n_mels, n_frames] -> embedding [B, D].

Trained from scratch (no pretrained audio encoder is available offline). Four strided 3x3 conv
blocks, then a max over time and frequency: a sound is recognised by its most characteristic
time-frequency patch wherever it falls in the window (LVS and EZ-VSL pool the same way). Sized for
CPU training: about 60 MFLOP per 1 s window.
"""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class AudioEncoder(nn.Module):
    def __init__(self, embed_dim: int = 128, widths: tuple[int, ...] = (32, 64, 128, 128)) -> None:
        super().__init__()
        strides = (2, 2, 2, 1)
        layers, cin = [], 1
        for width, stride in zip(widths, strides, strict=True):
            layers.append(_block(cin, width, stride))
            cin = width
        self.features = nn.Sequential(*layers)
        self.project = nn.Linear(cin, embed_dim)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = self.features(logmel)  # [B, C, n_mels/8, n_frames/8]
        pooled = x.amax(dim=(2, 3))  # [B, C]
        return self.project(pooled)  # [B, D]
