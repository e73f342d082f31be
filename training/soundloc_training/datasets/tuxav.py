"""TuxAV: real object photos with their real sounds, composited into scenes with exact masks.

Source material (installed by `make setup`, never committed: GPL):
- Debian `tuxpaint-stamps-default`: cut-out photos with alpha masks under
  /usr/share/tuxpaint/stamps; 103 of them (animals, instruments, tools, ...) have a sound effect of
  the same name (`dog.png` + `dog.ogg`). Those are the sound classes.
- Debian `mate-backgrounds`: 12 nature photographs, the shared background pool.

A clip: a random crop of a background photo; one sounding object (optionally several) scaled so
its visible mask covers 25-45 % of the 224x224 frame (so the median-threshold cIoU protocol can
score it: a map predicting the top 50 % of pixels cannot reach cIoU 0.5 on a smaller object) and
placed near a random corner (a large object placed uniformly would mostly cover the centre, where
a fixed centre prior finds it); one to three silent distractors (any other stamp, with or without a
sound of its own) of 3-10 % each, underneath; a slow drift between the 5 frames. Audio: the
object's real recording, resampled to 16 kHz, looped with short gaps over 5 s, over per-second
coloured noise at the set SNR.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from soundloc_ros.core.features import resample
from soundloc_training.datasets.scenes import (
    CLIP_SECONDS,
    FRAMES_PER_CLIP,
    SAMPLE_RATE,
    Clip,
    drift_offsets,
    loop_to_length,
    mix_with_noise,
    off_centre_corner,
    paste,
)

STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")
BACKGROUNDS_DIR = Path("/usr/share/backgrounds/mate/nature")
IMAGE_SIZE = 224
MISSING_HELP = (
    "TuxAV is generated from Debian packages: install them with `make setup` "
    "(or apt-get install tuxpaint-stamps-default mate-backgrounds)"
)


@dataclass(frozen=True)
class Stamp:
    name: str
    image_path: Path
    sound_path: Path | None


@functools.lru_cache(maxsize=1)
def find_stamps(root: Path = STAMPS_DIR) -> tuple[Stamp, ...]:
    """Every photo stamp outside symbols/ (letters and numbers), sorted by name for determinism."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root} not found. {MISSING_HELP}")
    stamps = []
    for png in sorted(root.rglob("*.png")):
        if png.relative_to(root).parts[0] == "symbols":
            continue
        sound = png.with_suffix(".ogg")
        stamps.append(Stamp(png.stem, png, sound if sound.is_file() else None))
    return tuple(stamps)


def sound_classes() -> tuple[Stamp, ...]:
    return tuple(s for s in find_stamps() if s.sound_path is not None)


@functools.cache
def load_sprite(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(rgb float32 [h, w, 3], alpha float32 [h, w] in [0, 1]) cropped to the alpha bounding box."""
    rgba = np.asarray(Image.open(path).convert("RGBA"), dtype=np.float32)
    alpha = rgba[..., 3] / 255.0
    rows, cols = np.nonzero(alpha > 0.5)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    return rgba[top:bottom, left:right, :3], alpha[top:bottom, left:right]


@functools.cache
def load_sound(path: Path) -> np.ndarray:
    """Mono float at 16 kHz, peak-normalized to 1."""
    import soundfile

    samples, rate = soundfile.read(path, dtype="float64", always_2d=True)
    mono = resample(samples.mean(axis=1), rate, SAMPLE_RATE)
    return mono / (np.abs(mono).max() + 1e-9)


@functools.lru_cache(maxsize=1)
def load_backgrounds(root: Path = BACKGROUNDS_DIR) -> tuple[np.ndarray, ...]:
    files = sorted(root.glob("*.jpg"))
    if not files:
        raise FileNotFoundError(f"no background photos in {root}. {MISSING_HELP}")
    photos = []
    for path in files:
        image = Image.open(path).convert("RGB")
        image.thumbnail((800, 800))  # plenty for 224 px crops, and fast to crop
        photos.append(np.asarray(image))
    return tuple(photos)


def _background(rng: np.random.Generator) -> np.ndarray:
    photos = load_backgrounds()
    photo = photos[rng.integers(len(photos))]
    height, width = photo.shape[:2]
    side = int(min(height, width) * rng.uniform(0.4, 1.0))
    top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
    crop = Image.fromarray(photo[top : top + side, left : left + side])
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)).copy()


def _scaled_sprite(path: Path, area_fraction: float, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize a stamp so its mask covers `area_fraction` of the frame, if it fits in the frame."""
    rgb, alpha = load_sprite(path)
    target_px = area_fraction * IMAGE_SIZE**2
    scale = np.sqrt(target_px / max(float((alpha > 0.5).sum()), 1.0))
    scale = min(scale, (IMAGE_SIZE - 2 * margin) / max(alpha.shape))  # keep it inside the frame
    size = (max(2, round(alpha.shape[1] * scale)), max(2, round(alpha.shape[0] * scale)))
    rgb_image = Image.fromarray(rgb.astype(np.uint8)).resize(size, Image.Resampling.BILINEAR)
    alpha_image = Image.fromarray((alpha * 255).astype(np.uint8)).resize(
        size, Image.Resampling.BILINEAR
    )
    return np.asarray(rgb_image, np.float32), np.asarray(alpha_image, np.float32) / 255.0


@dataclass
class Scene:
    """The visual half of a clip: frames, the sounding objects' masks, and what is in view."""

    frames: list[np.ndarray]
    masks: list[np.ndarray]
    sounding: list[Stamp]
    distractors: list[Stamp]


def make_scene(rng: np.random.Generator, class_index: int, n_sounding: int = 1) -> Scene:
    """A scene whose main object is class `class_index`; negatives reuse it with other audio."""
    classes = sound_classes()
    sounding = [classes[class_index]]
    if n_sounding > 1:
        extra = rng.choice(
            [c for i, c in enumerate(classes) if i != class_index], n_sounding - 1, replace=False
        )
        sounding += list(extra)
    sounding_names = {s.name for s in sounding}
    pool = [s for s in find_stamps() if s.name not in sounding_names]
    distractors = [pool[i] for i in rng.choice(len(pool), rng.integers(1, 4), replace=False)]
    margin = int(IMAGE_SIZE * 0.03)  # room for the drift

    layout = []  # (rgb, alpha, top, left, is_sounding); distractors first, underneath
    per_object = (0.25, 0.45) if n_sounding == 1 else (0.15, 0.25)
    for stamp in [*distractors, *sounding]:
        is_sounding = stamp in sounding
        area = rng.uniform(*per_object) if is_sounding else rng.uniform(0.03, 0.10)
        rgb, alpha = _scaled_sprite(stamp.image_path, area, margin)
        free_y = IMAGE_SIZE - 2 * margin - alpha.shape[0]
        free_x = IMAGE_SIZE - 2 * margin - alpha.shape[1]
        if is_sounding:
            top, left = off_centre_corner(rng, free_y, free_x)
        else:
            top, left = rng.integers(0, free_y + 1), rng.integers(0, free_x + 1)
        layout.append((rgb, alpha, margin + int(top), margin + int(left), is_sounding))
    drift = drift_offsets(rng, max_step_px=margin / FRAMES_PER_CLIP)
    background = _background(rng)

    frames, masks = [], []
    for k in range(FRAMES_PER_CLIP):
        canvas = background.copy()
        mask = np.zeros(canvas.shape[:2], bool)
        dy, dx = np.round(drift[k]).astype(int)
        for rgb, alpha, top, left, is_sounding in layout:
            covered = paste(canvas, rgb, alpha, top + dy, left + dx)
            mask = mask | covered if is_sounding else mask & ~covered
        frames.append(canvas)
        masks.append(mask)
    return Scene(frames, masks, sounding, distractors)


def clip_audio(rng: np.random.Generator, sounds: list[Stamp], snr_db: float) -> np.ndarray:
    """5 s of the stamps' recordings looped and mixed over per-second background noise."""
    n = int(CLIP_SECONDS * SAMPLE_RATE)
    mixture = np.zeros(n)
    for stamp in sounds:
        looped = loop_to_length(rng, load_sound(stamp.sound_path), n, max_gap_s=0.3)
        mixture += looped * rng.uniform(0.3, 0.9)
    return mix_with_noise(rng, mixture, snr_db, snr_jitter_db=5.0)


def make_clip(
    seed: int, class_index: int, clip_index: int, n_sounding: int = 1, snr_db: float = 10.0
) -> Clip:
    """Clip `clip_index` of sound class `class_index` (the same arguments give the same clip)."""
    rng = np.random.default_rng([seed, class_index, clip_index])
    scene = make_scene(rng, class_index, n_sounding)
    return Clip(
        name=f"tuxav_{scene.sounding[0].name}_{clip_index:03d}",
        category=scene.sounding[0].name,
        frames=scene.frames,
        masks=scene.masks,
        audio=clip_audio(rng, scene.sounding, snr_db),
        info={
            "sounding": sorted(s.name for s in scene.sounding),
            "distractors": [s.name for s in scene.distractors],
            "mask_fraction": float(np.mean([m.mean() for m in scene.masks])),
        },
    )


def generate(
    seed: int, clip_indices: range, class_indices: range | None = None, **options
) -> Iterator[Clip]:
    """Clips `clip_indices` of every sound class (or of `class_indices`), class-major order."""
    classes = class_indices if class_indices is not None else range(len(sound_classes()))
    for class_index in classes:
        for clip_index in clip_indices:
            yield make_clip(seed, class_index, clip_index, **options)
