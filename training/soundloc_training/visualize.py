"""Contact sheets: frames, their heatmaps as overlays, and the ground-truth outline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from soundloc_ros.core.maps import minmax
from soundloc_ros.core.pictures import draw_outline, save_png, tile_grid
from soundloc_ros.core.postprocess import overlay, resize_bilinear
from soundloc_training.data import FrameTable


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """RGB uint8 [H, W, 3] with the min-max normalized heatmap blended on top (the node's ramp)."""
    height, width = image.shape[:2]
    heatmap = resize_bilinear(heatmap, height, width)
    return overlay(image, minmax(heatmap, constant=0.0), 0.7)  # flat: no overlay at all


def save_contact_sheet(
    path: Path, table: FrameTable, heatmaps: np.ndarray, count: int = 12, columns: int = 4
) -> None:
    """Evenly spaced frames of the table: each tile is the frame beside its overlay + GT outline."""
    picks = np.linspace(0, len(table) - 1, min(count, len(table))).astype(int)
    tiles = []
    for index in picks:
        tile = heatmap_overlay(table.images[index], heatmaps[index])
        if table.gt_maps is not None:
            tile = draw_outline(tile, table.gt_maps[index] > 0.5)
        tiles.append(np.concatenate([table.images[index], tile], axis=1))  # [S, 2S, 3]
    save_png(path, tile_grid(tiles, columns))


def save_stage_sheet(
    path: Path, table: FrameTable, stages: dict[str, np.ndarray], count: int = 8
) -> None:
    """The same evenly spaced frames through several stages: one row per frame, the frame then
    one overlay per stage (each with the GT outline), captioned with the stage names."""
    picks = np.linspace(0, len(table) - 1, min(count, len(table))).astype(int)
    tiles, labels = [], []
    for index in picks:
        tiles.append(table.images[index])
        labels.append(table.records[index].name[:24])
        for name, maps in stages.items():
            tile = heatmap_overlay(table.images[index], maps[index])
            if table.gt_maps is not None:
                tile = draw_outline(tile, table.gt_maps[index] > 0.5)
            tiles.append(tile)
            labels.append(name)
    save_png(path, tile_grid(tiles, 1 + len(stages), labels))
