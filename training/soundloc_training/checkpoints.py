"""Checkpoints: written atomically, holding the config so a model can be rebuilt from one file."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from soundloc_ros.core.atomic import atomic_write_bytes
from soundloc_training.config import TrainConfig
from soundloc_training.models.localizer import Localizer


def trainable_state(model: Localizer) -> dict[str, torch.Tensor]:
    """The model's state without a frozen backbone (rebuilt from its pretrained weights)."""
    state = model.state_dict()
    if model.backbone_frozen:
        state = {k: v for k, v in state.items() if not k.startswith("backbone.")}
    return state


def save_checkpoint(path: Path, **content: object) -> None:
    buffer = io.BytesIO()
    torch.save(content, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_model(checkpoint: dict | str | Path) -> tuple[Localizer, TrainConfig]:
    """Rebuild the trained localizer (eval mode) from a checkpoint (or its path)."""
    if not isinstance(checkpoint, dict):
        checkpoint = torch.load(checkpoint, weights_only=False, map_location="cpu")
    config = TrainConfig(**checkpoint["config"])
    model = Localizer(config.backbone, pretrained=config.pretrained, embed_dim=config.embed_dim)
    load_trainable(model, checkpoint)
    model.eval()
    return model, config


def load_trainable(model: Localizer, checkpoint: dict | str | Path) -> None:
    """Put a checkpoint's trained weights into `model` (whose frozen backbone stays as built)."""
    if not isinstance(checkpoint, dict):
        checkpoint = torch.load(checkpoint, weights_only=False, map_location="cpu")
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
