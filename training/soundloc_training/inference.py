"""The localizer's embeddings and maps over a frame table, every frame with its own audio.

One home below every stage that reads maps (training, pseudo-labels, the pixel heads,
evaluation), so none of them depends on another to get them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from soundloc_training.config import TrainConfig
from soundloc_training.data import FrameTable, VisualInputs, audio_batch


@torch.no_grad()
def embedded_batches(
    model: torch.nn.Module,
    visual: VisualInputs,
    table: FrameTable,
    config: TrainConfig,
    batch: int = 64,
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """(indices, visual embeddings [B, D, h, w], audio embeddings [B, D]) over the table in
    order, each frame with its own un-augmented audio window (eval mode)."""
    model.eval()
    for start in range(0, len(table), batch):
        indices = np.arange(start, min(start + batch, len(table)))
        features = visual.batch(indices)
        if not visual.precomputed:
            features = model.backbone(features)
        embedded = model.embed_visual(features)  # [B, D, h, w]
        yield (
            indices,
            embedded,
            model.embed_audio(audio_batch(table, indices, config.audio_frontend)),
        )


def predict_heatmaps(
    model: torch.nn.Module,
    visual: VisualInputs,
    table: FrameTable,
    config: TrainConfig,
    batch: int = 64,
) -> np.ndarray:
    """The model's similarity map for every frame with its own audio: [N, h, w] float32."""
    maps = [
        model.paired_similarity(embedded, audio).numpy()  # [B, h, w]
        for _, embedded, audio in embedded_batches(model, visual, table, config, batch)
    ]
    return np.concatenate(maps).astype(np.float32)
