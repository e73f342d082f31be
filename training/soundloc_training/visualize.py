"""Contact sheets: frames, their heatmaps as overlays, and the ground-truth outline."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image

from soundloc_ros.core.atomic import atomic_write_bytes
from soundloc_ros.core.postprocess import normalize_minmax, resize_bilinear
from soundloc_training.data import FrameTable


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """RGB uint8 [H, W, 3] with the min-max normalized heatmap blended on top in 'jet'."""
    height, width = image.shape[:2]
    heat = normalize_minmax(resize_bilinear(heatmap, height, width))
    colours = colormaps["jet"](heat)[..., :3] * 255  # [H, W, 3]
    return (alpha * colours + (1 - alpha) * image).astype(np.uint8)


def outline(image: np.ndarray, mask: np.ndarray, colour=(255, 255, 255)) -> np.ndarray:
    """Draw the boundary of a binary mask (resized to the image) on a copy of the image."""
    height, width = image.shape[:2]
    inside = resize_bilinear(mask.astype(np.float32), height, width) > 0.5
    edge = inside & ~(
        np.roll(inside, 1, 0)
        & np.roll(inside, -1, 0)
        & np.roll(inside, 1, 1)
        & np.roll(inside, -1, 1)
    )
    marked = image.copy()
    marked[edge] = colour
    return marked


def save_contact_sheet(
    path: Path, table: FrameTable, heatmaps: np.ndarray, count: int = 12, columns: int = 4
) -> None:
    """Evenly spaced frames of the table: each tile is the overlay with the GT outline."""
    picks = np.linspace(0, len(table) - 1, min(count, len(table))).astype(int)
    tiles = []
    for index in picks:
        tile = overlay(table.images[index], heatmaps[index])
        if table.gt_maps is not None:
            tile = outline(tile, table.gt_maps[index] > 0.5)
        tiles.append(np.concatenate([table.images[index], tile], axis=1))
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    buffer = io.BytesIO()
    Image.fromarray(np.concatenate(rows, axis=0)).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
