"""Pictures people look at instead of reading numbers: outlines, tiled contact sheets, GIFs.

Pillow only (no OpenCV or matplotlib on the robot); shared by training's contact sheets, rosbag
replay and the demo. Files are written atomically, so a viewer never opens half a PNG.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from soundloc_ros.core.atomic import atomic_write_bytes
from soundloc_ros.core.pillow_compat import ADAPTIVE
from soundloc_ros.core.postprocess import overlay, resize_bilinear

WHITE = (255, 255, 255)
HIT, MISS = (0, 255, 0), (255, 0, 0)
MASK_OUTLINE = (0, 255, 255)  # cyan: the published mask, distinct from the white ground truth


def mask_edges(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a boolean mask [H, W] (inside pixels with an outside 4-neighbour)."""
    inner = mask.copy()
    inner[1:-1, 1:-1] &= mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    inner[[0, -1], :] = False  # the frame border counts as outside
    inner[:, [0, -1]] = False
    return mask & ~inner


def draw_outline(image: np.ndarray, mask: np.ndarray, colour=WHITE) -> np.ndarray:
    """A copy of RGB `image` with the boundary of `mask` (any size; resized to it) drawn."""
    height, width = image.shape[:2]
    inside = resize_bilinear(np.asarray(mask, np.float32), height, width) > 0.5
    marked = image.copy()
    marked[mask_edges(inside)] = colour
    return marked


def localization_overlay(
    rgb: np.ndarray, heatmap: np.ndarray, mask: np.ndarray, alpha: float = 0.6
) -> np.ndarray:
    """What the node publishes on ~/overlay and replay draws: the heatmap blended over the frame
    and the mask's outline on top (cyan), so both outputs are read from one picture."""
    return draw_outline(overlay(rgb, heatmap, alpha), mask, MASK_OUTLINE)


def draw_marker(image: np.ndarray, u: float, v: float, colour, radius: int = 3) -> np.ndarray:
    """A copy of `image` with a filled square centred on pixel (u, v)."""
    marked = image.copy()
    row, col = round(v), round(u)
    marked[max(0, row - radius) : row + radius + 1, max(0, col - radius) : col + radius + 1] = (
        colour
    )
    return marked


def tile_grid(
    tiles: Sequence[np.ndarray], columns: int, labels: Sequence[str] | None = None
) -> np.ndarray:
    """Equal-size RGB tiles -> one RGB sheet, row-major, captioned when labels are given."""
    if not tiles:
        raise ValueError("a contact sheet needs at least one tile")
    height, width = tiles[0].shape[:2]
    caption = 16 if labels else 0
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * width, rows * (height + caption)), "black")
    draw = ImageDraw.Draw(sheet)
    for i, tile in enumerate(tiles):
        left, top = (i % columns) * width, (i // columns) * (height + caption)
        sheet.paste(Image.fromarray(tile), (left, top + caption))
        if labels:
            draw.text((left + 3, top + 2), labels[i], fill=WHITE)
    return np.asarray(sheet)


def save_png(path: Path, image: np.ndarray) -> Path:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def save_gif(path: Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    """An animated GIF (plays in any browser or image viewer; no video codec needed)."""
    if not frames:
        raise ValueError("an animation needs at least one frame")
    images = [Image.fromarray(f).convert("P", palette=ADAPTIVE) for f in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=max(20, round(1000 / fps)),
        loop=0,
    )
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)
