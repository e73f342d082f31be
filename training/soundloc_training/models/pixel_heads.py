"""SMR's affinity head and SPS's segmentation head, on a stride-4 pixel grid (56 x 56 at 224 px).

The localizer's map has one position per 16 pixels; an object's boundary needs finer evidence:
both heads start from their own small trainable stem on the image (two stride-2 3 x 3
convolutions: colour and edges at stride 4). They do not share weights.
- SPS also reads a 1 x 1 projection of the frozen backbone's features (what the object is),
  upsampled to the stem's grid, and the audio's coarse map.
- SMR reads the image and the frozen backbone's low-level features (its stride-4 and stride-8
  stages, backbones.low_level), widened by dilated convolutions. It does not read the deep
  features: its pair labels come from the coarse map, which is computed from those, and given
  them the head reproduces the coarse map's blurred level set, learning the map's boundary
  instead of the object's. The early layers carry edges, colours and textures but not the
  audio-visual training. (Measured on TuxAV val with scripts/sweep_smr.py, docs/methods.md
  "uspl": the walk on this head's affinities gains over the coarse map where the deep-feature
  head lost and the image-only head gained less.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from soundloc_ros.core.maps import minmax

PIXEL_STRIDE = 4  # the stem's two stride-2 convolutions


def _conv_bn_relu(
    cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1
) -> nn.Sequential:
    padding = dilation * (kernel // 2)  # keeps the grid size at stride 1
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def image_stem(width: int) -> nn.Sequential:
    """Image [B, 3, S, S] -> [B, width, S/4, S/4]."""
    return nn.Sequential(_conv_bn_relu(3, 16, 3, 2), _conv_bn_relu(16, width, 3, 2))


class PixelFeatures(nn.Module):
    """Image [B, 3, S, S] + backbone features [B, C, h, w] -> [B, 2 * width, S/4, S/4]."""

    def __init__(self, backbone_channels: int, width: int) -> None:
        super().__init__()
        self.stem = image_stem(width)
        self.semantic = _conv_bn_relu(backbone_channels, width, 1)

    def forward(self, image: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        low = self.stem(image)  # [B, width, S/4, S/4]
        high = F.interpolate(
            self.semantic(features), size=low.shape[-2:], mode="bilinear", align_corners=False
        )  # [B, width, S/4, S/4]
        return torch.cat([low, high], dim=1)


class AffinityHead(nn.Module):
    """SMR: image + low-level features -> the features whose L1 distances give the affinities
    (affinity.pair_affinities); with dilations 2 and 4 each position sees about 16 grid positions
    (64 pixels) across."""

    def __init__(self, low_level_channels: int, width: int = 32) -> None:
        super().__init__()
        self.stem = image_stem(width)
        self.low_level = _conv_bn_relu(low_level_channels, width, 1)
        self.context = nn.Sequential(
            _conv_bn_relu(2 * width, width, 3),
            _conv_bn_relu(width, width, 3, dilation=2),
            _conv_bn_relu(width, width, 3, dilation=4),
        )
        self.out = nn.Conv2d(width, width, 1)

    def forward(self, image: torch.Tensor, low_level: torch.Tensor) -> torch.Tensor:
        """image [B, 3, S, S], low_level [B, C, S/4, S/4] -> [B, width, S/4, S/4]."""
        pixels = torch.cat([self.stem(image), self.low_level(low_level)], dim=1)  # [B, 2w, .]
        return self.out(self.context(pixels))


def normalized_map(similarity: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Similarity maps [B, h, w] -> min-max normalized, bilinearly upsampled [B, 1, *size]
    (all zeros for a constant map: the coarse map localizes nothing there)."""
    scaled = minmax(similarity, constant=0.0)[:, None]  # [B, 1, h, w]
    return F.interpolate(scaled, size=size, mode="bilinear", align_corners=False)


class SegmentationHead(nn.Module):
    """SPS: image, backbone features and the audio's coarse map -> sounding-pixel logits.

    The coarse map (the localizer's similarity with this audio) is what makes the head
    audio-conditioned: which of the objects in view is sounding comes from it, the boundary
    from the pixel features."""

    def __init__(self, backbone_channels: int, width: int = 32) -> None:
        super().__init__()
        self.pixels = PixelFeatures(backbone_channels, width)
        self.out = nn.Sequential(
            _conv_bn_relu(2 * width + 1, width, 3),
            _conv_bn_relu(width, width, 3),
            nn.Conv2d(width, 1, 1),
        )

    def forward(
        self, image: torch.Tensor, features: torch.Tensor, similarity: torch.Tensor
    ) -> torch.Tensor:
        """similarity [B, h, w] -> logits [B, S/4, S/4]."""
        pixels = self.pixels(image, features)  # [B, 2 * width, S/4, S/4]
        coarse = normalized_map(similarity, pixels.shape[-2:])  # [B, 1, S/4, S/4]
        return self.out(torch.cat([pixels, coarse], dim=1))[:, 0]
