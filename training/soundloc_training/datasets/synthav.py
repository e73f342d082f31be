"""SynthAV: procedural audio-visual scenes for unit tests and smoke training (seconds to minutes).

Eight classes, each a shape with its own colour family and a synthesized sound of its own
character (sweep, bell, drum, whistle, buzz, chirps, hiss, horn). Each clip shows one sounding
object, large (about 25-40 % of the frame) and near a corner, plus one or two smaller silent
distractors of other classes, on a smooth random background; the audio is the sounding class's
sound over per-second coloured noise (see scenes.py for the shortcut controls).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

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

Shape = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (u, v) in [-1, 1] -> inside mask


def _polygon(n: int, rotation: float = 0.0) -> Shape:
    def inside(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        angle = np.arctan2(v, u) - rotation
        sector = 2 * np.pi / n
        radius = np.cos(np.pi / n) / np.cos((angle % sector) - sector / 2)
        return np.hypot(u, v) <= radius

    return inside


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    angle = np.arctan2(v, u)
    return np.hypot(u, v) <= 0.55 + 0.45 * np.cos(5 * angle) ** 2


SHAPES: dict[str, Shape] = {
    "circle": lambda u, v: u**2 + v**2 <= 1,
    "square": lambda u, v: np.maximum(abs(u), abs(v)) <= 0.85,
    "triangle": _polygon(3, rotation=np.pi / 2),
    "star": _star,
    "ring": lambda u, v: (u**2 + v**2 <= 1) & (u**2 + v**2 >= 0.3),
    "cross": lambda u, v: (abs(u) <= 0.33) | (abs(v) <= 0.33),
    "diamond": lambda u, v: abs(u) + abs(v) <= 1,
    "hexagon": _polygon(6),
}


def _tone(t: np.ndarray, freq: np.ndarray | float) -> np.ndarray:
    return np.sin(2 * np.pi * np.cumsum(np.broadcast_to(freq, t.shape)) / SAMPLE_RATE)


def _sweep(rng, t, pitch):
    return _tone(t, pitch * (700 + 350 * np.sin(2 * np.pi * 0.8 * t)))


def _bell(rng, t, pitch):
    phase = t % 0.5
    partials = sum(
        a * np.sin(2 * np.pi * f * pitch * t) for f, a in ((880, 1), (2210, 0.6), (3450, 0.4))
    )
    return partials * np.exp(-phase * 9)


def _drum(rng, t, pitch):
    phase = t % 0.25
    body = _tone(t, 110 * pitch * (1 + 2 * np.exp(-phase * 30))) * np.exp(-phase * 25)
    return body + 0.3 * rng.standard_normal(t.size) * np.exp(-phase * 80)


def _whistle(rng, t, pitch):
    return _tone(t, pitch * (2500 + 60 * np.sin(2 * np.pi * 6 * t)))


def _buzz(rng, t, pitch):
    return 2 * ((150 * pitch * t) % 1.0) - 1


def _chirps(rng, t, pitch):
    phase = t % 0.25
    freq = pitch * (3000 + 20000 * phase)
    return _tone(t, freq) * (phase < 0.08)


def _hiss(rng, t, pitch):
    noise = np.fft.rfft(rng.standard_normal(t.size))
    freqs = np.fft.rfftfreq(t.size, 1 / SAMPLE_RATE)
    band = np.fft.irfft(noise * ((freqs > 4000 * pitch) & (freqs < 6000 * pitch)), t.size)
    return band / (np.abs(band).max() + 1e-9) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))


def _horn(rng, t, pitch):
    return np.sign(np.sin(2 * np.pi * 440 * pitch * t)) + np.sign(
        np.sin(2 * np.pi * 660 * pitch * t)
    )


SOUNDS = {
    "circle": _sweep, "square": _bell, "triangle": _drum, "star": _whistle,
    "ring": _buzz, "cross": _chirps, "diamond": _hiss, "hexagon": _horn,
}  # fmt: skip
HUES = {name: i / len(SHAPES) for i, name in enumerate(SHAPES)}
_V, _U = np.mgrid[-1:1:64j, -1:1:64j]
FILL = {name: float(inside(_U, _V).mean()) for name, inside in SHAPES.items()}  # of the box area
CLASSES = tuple(SHAPES)


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour field: low-frequency noise upsampled, shared by all classes."""
    coarse = rng.uniform(0.2, 0.8, (4, 4, 3))
    index = np.linspace(0, 3, size)
    lo = np.floor(index).astype(int).clip(0, 2)
    w = (index - lo)[:, None]
    rows = coarse[lo] * (1 - w[..., None]) + coarse[lo + 1] * w[..., None]  # [size, 4, 3]
    field = rows[:, lo] * (1 - w.T[..., None]) + rows[:, lo + 1] * w.T[..., None]  # [size, size, 3]
    return (255 * (field + rng.normal(0, 0.03, field.shape)).clip(0, 1)).astype(np.uint8)


def _sprite(rng: np.random.Generator, name: str, box: int) -> tuple[np.ndarray, np.ndarray]:
    """The class's shape in its colour family with a random stripe texture: (rgb, alpha)."""
    v, u = np.mgrid[-1 : 1 : box * 1j, -1 : 1 : box * 1j]
    alpha = SHAPES[name](u, v).astype(np.float32)
    base = _hsv_to_rgb(HUES[name] + rng.uniform(-0.03, 0.03), rng.uniform(0.6, 0.9), 0.9)
    angle = rng.uniform(0, np.pi)
    stripes = 0.75 + 0.25 * np.sign(np.sin(6 * (u * np.cos(angle) + v * np.sin(angle))))
    return (255 * base * stripes[..., None]).astype(np.float32), alpha


def make_scene(
    rng: np.random.Generator, sounding: str, image_size: int = 128
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """(frames, masks of `sounding`, distractor classes); negatives reuse it with other audio."""
    others = [c for c in CLASSES if c != sounding]
    distractors = list(rng.choice(others, size=rng.integers(1, 3), replace=False))
    background = _background(rng, image_size)

    layout = []  # (name, rgb, alpha, top, left, is_sounding); distractors first (underneath)
    for name in [*distractors, sounding]:
        is_sounding = name == sounding
        # sounding objects cover 25-40 % of the frame (so the median-threshold protocol can
        # score them), distractors 3-8 %, whatever the shape's fill of its box
        area = rng.uniform(0.25, 0.40) if is_sounding else rng.uniform(0.03, 0.08)
        box = min(int(image_size * np.sqrt(area / FILL[name])), image_size - 2)
        rgb, alpha = _sprite(rng, name, box)
        if is_sounding:
            top, left = off_centre_corner(rng, image_size - box, image_size - box)
        else:
            top, left = rng.integers(0, image_size - box, 2)
        layout.append((name, rgb, alpha, int(top), int(left), is_sounding))
    drift = drift_offsets(rng, max_step_px=image_size * 0.02)

    frames, masks = [], []
    for k in range(FRAMES_PER_CLIP):
        canvas = background.copy()
        dy, dx = np.round(drift[k]).astype(int)
        for _, rgb, alpha, top, left, is_sounding in layout:  # the sounding object comes last
            covered = paste(canvas, rgb, alpha, top + dy, left + dx)
            if is_sounding:
                mask = covered
        frames.append(canvas)
        masks.append(mask)
    return frames, masks, distractors


def clip_audio(rng: np.random.Generator, name: str, snr_db: float) -> np.ndarray:
    """5 s of class `name`'s sound, at a random pitch and level, over per-second noise."""
    n = int(CLIP_SECONDS * SAMPLE_RATE)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    pattern = SOUNDS[name](rng, t, rng.uniform(0.92, 1.08))
    pattern = pattern / (np.abs(pattern).max() + 1e-9) * rng.uniform(0.3, 0.8)
    return mix_with_noise(rng, loop_to_length(rng, pattern, n, max_gap_s=0.0), snr_db, 5.0)


def make_clip(seed: int, index: int, image_size: int = 128, snr_db: float = 10.0) -> Clip:
    """Clip `index` of the benchmark with master `seed`; the same arguments give the same clip."""
    rng = np.random.default_rng([seed, index])
    sounding = CLASSES[index % len(CLASSES)]  # balanced classes
    frames, masks, distractors = make_scene(rng, sounding, image_size)
    return Clip(
        name=f"synthav_{index:05d}",
        category=sounding,
        frames=frames,
        masks=masks,
        audio=clip_audio(rng, sounding, snr_db),
        info={"distractors": distractors},
    )


def generate(seed: int, count: int, start: int = 0, **options) -> Iterator[Clip]:
    """Clips start..start+count-1 (each independent of the others, so splits can be ranges)."""
    for index in range(start, start + count):
        yield make_clip(seed, index, **options)
