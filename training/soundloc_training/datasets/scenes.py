"""What SynthAV and TuxAV have in common: clips of 5 frames + 5 s of audio, and their nuisances.

A clip is a short "video": one scene whose objects drift a little between frames, one frame per
second (frame k at t = k s, paired with the audio second [k-1, k], as AVSBench-S4 does), and
5 s of 16 kHz audio holding the sounding object's sound over background noise.

Shortcut control (DESIGN.md §5). Contrastive learning matches a clip's audio to its frames through
anything clip-specific that both modalities share. So the nuisances here are independent of the
clip identity: the noise colour and level are drawn again for every second of a clip, and the
backgrounds come from one shared pool whatever the class. The only thing that links a frame to its
audio consistently is the sounding object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16000
FRAMES_PER_CLIP = 5
CLIP_SECONDS = 5.0
NOISE_COLOURS = ("white", "pink", "brown")


@dataclass
class Clip:
    """One generated clip; masks mark the sounding object(s) only, distractors are background."""

    name: str
    category: str
    frames: list[np.ndarray]  # FRAMES_PER_CLIP x [H, W, 3] uint8
    masks: list[np.ndarray]  # FRAMES_PER_CLIP x [H, W] bool
    audio: np.ndarray  # [CLIP_SECONDS * SAMPLE_RATE] float32 in [-1, 1]
    info: dict[str, object] = field(default_factory=dict)


def coloured_noise(rng: np.random.Generator, n: int, colour: str) -> np.ndarray:
    """Unit-RMS noise with a 1/f^alpha power spectrum (white 0, pink 1, brown 2)."""
    alpha = {"white": 0.0, "pink": 1.0, "brown": 2.0}[colour]
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]  # keep DC finite; it is removed below anyway
    shaped = np.fft.irfft(spectrum / freqs ** (alpha / 2), n)
    shaped -= shaped.mean()
    return shaped / (np.sqrt(np.mean(shaped**2)) + 1e-12)


def mix_with_noise(
    rng: np.random.Generator, signal: np.ndarray, snr_db: float, snr_jitter_db: float
) -> np.ndarray:
    """Add noise second by second, each second with its own colour and SNR around `snr_db`.

    The SNR is relative to the signal's RMS over the whole clip, so a quiet gap in the sound stays
    quiet noise rather than being boosted.
    """
    signal_rms = np.sqrt(np.mean(signal**2)) + 1e-9
    out = signal.astype(np.float64).copy()
    for second in range(int(len(signal) // SAMPLE_RATE)):
        part = slice(second * SAMPLE_RATE, (second + 1) * SAMPLE_RATE)
        colour = NOISE_COLOURS[rng.integers(len(NOISE_COLOURS))]
        snr = snr_db + rng.uniform(-snr_jitter_db, snr_jitter_db)
        out[part] += coloured_noise(rng, SAMPLE_RATE, colour) * signal_rms / 10 ** (snr / 20)
    peak = np.abs(out).max()
    if peak > 0.99:  # keep the mix inside the converter's range without clipping
        out *= 0.99 / peak
    return out.astype(np.float32)


def loop_to_length(
    rng: np.random.Generator, sound: np.ndarray, length: int, max_gap_s: float
) -> np.ndarray:
    """Repeat `sound` (with short random gaps) to fill `length` samples from a random phase.

    Long sounds give a random excerpt. Gaps stay below `max_gap_s` so every second of the clip
    holds part of the sound, as the frame/second pairing assumes.
    """
    pieces, total = [], 0
    while total < length + len(sound):
        gap = np.zeros(int(rng.uniform(0, max_gap_s) * SAMPLE_RATE))
        pieces += [sound, gap]
        total += len(sound) + len(gap)
    looped = np.concatenate(pieces)
    start = int(rng.integers(0, max(1, len(looped) - length)))
    return looped[start : start + length]


def drift_offsets(rng: np.random.Generator, max_step_px: float) -> np.ndarray:
    """Per-frame (dy, dx) offsets of a slow random walk, shape [FRAMES_PER_CLIP, 2]."""
    steps = rng.uniform(-max_step_px, max_step_px, (FRAMES_PER_CLIP, 2))
    steps[0] = 0.0
    return np.cumsum(steps, axis=0)


def off_centre_corner(rng: np.random.Generator, free_y: int, free_x: int) -> tuple[int, int]:
    """(top, left) near one of the four corners, for an object leaving `free_y` x `free_x` slack.

    Large sounding objects placed uniformly would mostly cover the centre, where a fixed centre
    prior would already find them; near a corner, a map has to find the object to score.
    """
    near_y = rng.uniform(0, 0.15) if rng.random() < 0.5 else rng.uniform(0.85, 1.0)
    near_x = rng.uniform(0, 0.15) if rng.random() < 0.5 else rng.uniform(0.85, 1.0)
    return round(near_y * max(free_y, 0)), round(near_x * max(free_x, 0))


def paste(
    canvas: np.ndarray, sprite: np.ndarray, alpha: np.ndarray, top: int, left: int
) -> np.ndarray:
    """Alpha-blend `sprite` [h, w, 3] onto `canvas` [H, W, 3] (in place); returns the visible
    coverage [H, W] of the sprite (alpha > 0.5), clipped to the canvas."""
    height, width = canvas.shape[:2]
    h, w = alpha.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, height), min(left + w, width)
    coverage = np.zeros((height, width), bool)
    if y1 <= y0 or x1 <= x0:
        return coverage
    sy, sx = slice(y0 - top, y1 - top), slice(x0 - left, x1 - left)
    a = alpha[sy, sx, None]  # [h', w', 1]
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = (a * sprite[sy, sx] + (1 - a) * region).round().astype(np.uint8)
    coverage[y0:y1, x0:x1] = alpha[sy, sx] > 0.5
    return coverage
