"""Checkpoints: written atomically, holding the config so a model can be rebuilt from one file.

A checkpoint holds only tensors and plain containers (dict, list, tuple, str, int, float, bool,
None), so it loads with `torch.load(weights_only=True)`: reading a checkpoint someone sent
cannot run code, the way unpickling arbitrary objects could. `read_checkpoint` is the one place
that loads one.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import warnings
from collections import OrderedDict
from pathlib import Path, PurePath

import numpy as np
import torch
from torch import nn

from soundloc_ros.core.atomic import atomic_write_bytes
from soundloc_training.config import TrainConfig, config_from_dict
from soundloc_training.models.localizer import Localizer
from soundloc_training.models.pixel_heads import AffinityHead, SegmentationHead

PRIMITIVES = (str, int, float, bool, type(None))  # exact types: np.float64 is a float too


class CheckpointError(ValueError):
    """A file is not a checkpoint this project wrote; the message names it and what to do."""


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint at `path`, loaded on the CPU with weights_only=True (no code runs);
    CheckpointError naming the file for anything else: a missing, truncated or foreign file, or
    one holding other objects than tensors and plain values (maybe a code payload)."""
    try:
        with warnings.catch_warnings():  # e.g. about the pickle protocol: not the user's concern
            warnings.simplefilter("ignore")
            checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise CheckpointError(
            f"checkpoint {path} does not exist; give a run's best.pt or last.pt"
        ) from None
    except Exception as error:  # torch raises many types for foreign or damaged files
        lines = [line for line in str(error).splitlines() if line.strip()] or [""]
        detail = next((line for line in lines if "GLOBAL" in line), lines[0])[:160]
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is damaged, not a PyTorch file, or holds objects "
            "other than tensors and plain values, which are never loaded as unpickling them "
            f"can run code ({type(error).__name__}: {detail}); use a best.pt or last.pt "
            "written by soundloc-train"
        ) from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("config"), dict):
        raise CheckpointError(
            f"{path} holds no training config, so it is not a soundloc-train checkpoint; use "
            "a best.pt or last.pt written by soundloc-train"
        )
    return checkpoint


def trainable_state(model: Localizer) -> dict[str, torch.Tensor]:
    """The model's state without a frozen backbone (rebuilt from its pretrained weights)."""
    state = model.state_dict()
    if model.backbone_frozen:
        state = {k: v for k, v in state.items() if not k.startswith("backbone.")}
    return state


def _plain(value: object, where: str) -> object:
    """`value` with numpy scalars, paths and dataclasses turned into plain values; TypeError
    naming `where` for anything weights_only loading would refuse."""
    if isinstance(value, torch.Tensor) or type(value) in PRIMITIVES:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value), where)
    if isinstance(value, dict):  # a state dict's copy keeps its _metadata (module versions)
        plain = copy.copy(value) if isinstance(value, OrderedDict) else {}
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint key {where}[{key!r}] must be a str or an int")
            plain[key] = _plain(item, f"{where}[{key!r}]")
        return plain
    if isinstance(value, (list, tuple)):
        items = [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise TypeError(
        f"checkpoint field {where} is a {type(value).__name__}; store tensors and plain values "
        "only, so the checkpoint loads with weights_only=True"
    )


def save_checkpoint(path: Path, **content: object) -> None:
    """Write `content` atomically, as plain values only (see the module doc)."""
    buffer = io.BytesIO()
    torch.save({key: _plain(value, key) for key, value in content.items()}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_model(checkpoint: dict | str | Path) -> tuple[Localizer, TrainConfig]:
    """Rebuild the trained localizer (eval mode) from a checkpoint (or its path)."""
    if not isinstance(checkpoint, dict):
        checkpoint = read_checkpoint(checkpoint)
    config = config_from_dict(checkpoint["config"], "the checkpoint's config")
    model = Localizer(config.backbone, pretrained=config.pretrained, embed_dim=config.embed_dim)
    load_trainable(model, checkpoint)
    model.eval()
    return model, config


def load_trainable(model: Localizer, checkpoint: dict | str | Path) -> None:
    """Put a checkpoint's trained weights into `model` (whose frozen backbone stays as built)."""
    if not isinstance(checkpoint, dict):
        checkpoint = read_checkpoint(checkpoint)
    hint = "was it trained with another backbone or embed_dim?"
    try:
        missing, unexpected = model.load_state_dict(checkpoint["model"], strict=False)
    except RuntimeError as error:  # tensors of another shape
        raise ValueError(f"checkpoint does not fit the model ({hint}): {error}") from None
    if unexpected or any(not k.startswith("backbone.") for k in missing):
        raise ValueError(
            f"checkpoint does not fit the model: missing {missing}, unexpected {unexpected}; "
            + hint
        )


def build_head(stage: str, localizer: Localizer, config: TrainConfig) -> nn.Module:
    if stage == "smr":
        return AffinityHead(localizer.backbone.low_level_channels, config.pixel_channels)
    return SegmentationHead(localizer.backbone.out_channels, config.pixel_channels)


def load_stage(
    checkpoint: dict | str | Path,
) -> tuple[str, Localizer, nn.Module, TrainConfig]:
    """(stage, frozen coarse localizer, trained head, run config) of an SMR / SPS checkpoint."""
    source = "the checkpoint" if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(checkpoint, dict):
        checkpoint = read_checkpoint(checkpoint)
    if "stage" not in checkpoint:
        raise CheckpointError(
            f"{source} is not a uspl stage checkpoint (it holds no stage); give a uspl run's "
            "OUT/smr/best.pt or OUT/best.pt"
        )
    config = config_from_dict(checkpoint["config"], "the checkpoint's config")
    localizer, _ = load_model(checkpoint["coarse"])
    head = build_head(checkpoint["stage"], localizer, config)
    head.load_state_dict(checkpoint["head"])
    return checkpoint["stage"], localizer, head.eval(), config


def load_any(
    checkpoint: dict | str | Path,
) -> tuple[str, Localizer, nn.Module | None, TrainConfig]:
    """(kind, localizer, head, run config) of any checkpoint soundloc-train writes: kind
    "localizer" (head None), or a uspl stage "smr" / "sps" (its frozen coarse localizer and the
    stage's head): what evaluation and export switch on."""
    if not isinstance(checkpoint, dict):
        checkpoint = read_checkpoint(checkpoint)
    if "stage" in checkpoint:
        return load_stage(checkpoint)
    model, config = load_model(checkpoint)
    return "localizer", model, None, config
