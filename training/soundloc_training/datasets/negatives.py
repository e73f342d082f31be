"""Negative clips: frames in which no visible object makes the sound (arXiv 2410.01020).

A localizer always finds *some* best-matching pixels, so a benchmark of positives alone cannot
tell whether it knows when nothing in view is sounding. Three kinds of negatives need no labels:

- off-screen: a scene made as the positive generator makes it, with the sound of a class that is
  nowhere in the frame (neither the sounding object nor a distractor);
- noise only: the same kind of scene over one noise of `NOISE_KINDS` (coloured noise, mains hum,
  a fan, distant babble from real recorded speech) at a level in `NOISE_LEVELS_DBFS`;
- digital silence: all-zero audio.

Every negative clip has all-False masks. Its frames come from the positive scene generator (a
large object near a corner, distractors), so "a large object in view" says nothing about
whether the audio is its sound. Clips are deterministic per (seed, category, index), drawn
from random streams apart from the positives' (so negatives are new scenes, not copies of
positive frames).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from soundloc_ros.core.features import resample
from soundloc_training.datasets import synthav, tuxav
from soundloc_training.datasets.scenes import CLIP_SECONDS, SAMPLE_RATE, Clip, coloured_noise

NOISE_KINDS: tuple[str, ...] = ("white", "pink", "brown", "hum", "fan", "babble")
NOISE_LEVELS_DBFS = (-45.0, -15.0)
KINDS = ("offscreen", "noise", "silence")  # the three kinds; noise cycles NOISE_KINDS
CATEGORIES = ("offscreen", *(f"noise_{kind}" for kind in NOISE_KINDS), "silence")
BENCHMARKS = ("synthav", "tuxav")

# Debian asterisk-core-sounds-en-wav (CC-BY-SA-3.0): 568 prompts by one speaker at 8 kHz
SPEECH_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
SPEECH_RATE = 8000
NOT_SPEECH = frozenset({"beep", "beeperr", "ascending-2tone", "descending-2tone"})
SPEECH_HELP = (
    "babble noise is made from real speech prompts: install them with `make setup` "
    "(or apt-get install asterisk-core-sounds-en-wav)"
)
_STREAM = 0x6E6567  # "neg": keeps negative streams apart from the positive [seed, class, clip]


def _unit_rms(signal: np.ndarray) -> np.ndarray:
    signal = signal - signal.mean()
    return signal / (np.sqrt(np.mean(signal**2)) + 1e-12)


def _shaped_noise(rng: np.random.Generator, n: int, sample_rate: int, gain) -> np.ndarray:
    """Unit-RMS Gaussian noise whose amplitude spectrum is `gain(freqs_hz)`."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    return _unit_rms(np.fft.irfft(spectrum * gain(freqs), n))


def _hum(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Mains hum: 50 or 60 Hz (drifting by up to 0.2 %) and harmonics that decay geometrically,
    over a little pink noise, as a transformer or a badly grounded amplifier makes it."""
    t = np.arange(n) / sample_rate
    mains = (50.0, 60.0)[rng.integers(2)] * (1 + rng.uniform(-0.002, 0.002))
    decay = rng.uniform(0.35, 0.7)
    tones = np.zeros(n)
    for harmonic in range(1, 11):
        amplitude = decay ** (harmonic - 1) * rng.uniform(0.5, 1.5)
        tones += amplitude * np.sin(2 * np.pi * harmonic * mains * t + rng.uniform(0, 2 * np.pi))
    return _unit_rms(_unit_rms(tones) + 0.05 * coloured_noise(rng, n, "pink"))


def _fan(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """A fan: low-passed pink broadband noise, tonal peaks at the blade-pass frequency (blades x
    rotation rate) and its harmonics, and a slow amplitude modulation (the airflow beating)."""
    cutoff = rng.uniform(200.0, 900.0)
    broadband = _shaped_noise(
        rng,
        n,
        sample_rate,
        lambda f: (f > 20) / np.sqrt(np.maximum(f, 1.0)) / np.sqrt(1 + (f / cutoff) ** 2),
    )
    t = np.arange(n) / sample_rate
    blade_pass = rng.integers(3, 8) * rng.uniform(10.0, 25.0)  # 30-175 Hz
    wobble = 1 + 0.005 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t)  # speed jitter
    phase = 2 * np.pi * np.cumsum(blade_pass * wobble) / sample_rate
    tonal = sum(np.sin(h * phase + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 5))
    mixed = broadband + rng.uniform(0.3, 0.8) * _unit_rms(tonal)
    depth, rate = rng.uniform(0.1, 0.3), rng.uniform(0.2, 1.0)
    return _unit_rms(mixed * (1 + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))))


@functools.lru_cache(maxsize=1)
def speech_prompts(root: Path = SPEECH_DIR) -> tuple[np.ndarray, ...]:
    """Every speech prompt (not the tones, not silence/) as float64 at 8 kHz, sorted by path."""
    import soundfile

    files = sorted(
        p
        for p in root.rglob("*.wav")
        if p.stem not in NOT_SPEECH and p.relative_to(root).parts[0] != "silence"
    )
    if not files:
        raise FileNotFoundError(f"no speech prompts in {root}. {SPEECH_HELP}")
    prompts = []
    for path in files:
        samples, rate = soundfile.read(path, dtype="float64", always_2d=True)
        prompts.append(resample(samples.mean(axis=1), rate, SPEECH_RATE))
    return tuple(prompts)


def _talker(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """One voice: random prompts with short pauses, pitch and tempo scaled by 0.85-1.15 (so one
    recorded speaker gives several talkers), `n` samples from a random point of the stream."""
    prompts = speech_prompts()
    factor = rng.integers(17, 24) / 20  # 0.85-1.15 in steps of 0.05: small resampling ratios
    needed = n / (sample_rate * factor) * SPEECH_RATE
    pieces, total = [], 0
    while total < 2 * needed:
        prompt = prompts[rng.integers(len(prompts))]
        pause = np.zeros(int(rng.uniform(0.05, 0.4) * SPEECH_RATE))
        pieces += [prompt, pause]
        total += len(prompt) + len(pause)
    stream = resample(np.concatenate(pieces), SPEECH_RATE, round(sample_rate * factor))
    start = int(rng.integers(0, len(stream) - n))
    return _unit_rms(stream[start : start + n])


def _babble(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Distant babble: 4-8 overlapped talkers, low-passed (walls and distance absorb the highs)
    and mostly reverberant (an exponentially decaying noise tail of RT60 0.3-0.8 s)."""
    voices = sum(
        rng.uniform(0.5, 1.0) * _talker(rng, n, sample_rate) for _ in range(rng.integers(4, 9))
    )
    cutoff = rng.uniform(800.0, 2000.0)
    spectrum = np.fft.rfft(voices) / np.sqrt(
        1 + (np.fft.rfftfreq(n, 1 / sample_rate) / cutoff) ** 4
    )
    dry = np.fft.irfft(spectrum, n)
    rt60 = rng.uniform(0.3, 0.8)
    t = np.arange(int(rt60 * sample_rate)) / sample_rate
    tail = rng.standard_normal(t.size) * 10 ** (-3 * t / rt60)  # -60 dB at rt60
    wet = fftconvolve(dry, tail)[:n]
    return _unit_rms(0.3 * _unit_rms(dry) + _unit_rms(wet))


_MAKERS = {"hum": _hum, "fan": _fan, "babble": _babble}


def _limit_peaks(unit: np.ndarray, knee: float = 3.5, ceiling: float = 5.0) -> np.ndarray:
    """Unit-RMS `unit` with peaks above `knee` x RMS soft-limited below about `ceiling` x RMS.

    Babble and fan beats reach 5.5-7 x RMS; at the loudest level (-15 dBFS, RMS 0.18) they
    would clip. Above the knee lie under 0.05 % of Gaussian samples, so the sound is unchanged.
    """
    magnitude = np.abs(unit)
    over = magnitude > knee
    squashed = knee + (ceiling - knee) * np.tanh((magnitude[over] - knee) / (ceiling - knee))
    limited = unit.copy()
    limited[over] = np.sign(unit[over]) * squashed
    return limited / np.sqrt(np.mean(limited**2))


def synth_noise(
    rng: np.random.Generator,
    kind: str,
    n_samples: int,
    level_dbfs: float,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """`n_samples` of noise `kind` (one of NOISE_KINDS), float32 mono, RMS at `level_dbfs`
    (as soundloc_ros.core.features.level_dbfs measures it)."""
    if kind in ("white", "pink", "brown"):
        unit = coloured_noise(rng, n_samples, kind)
    elif kind in _MAKERS:
        unit = _MAKERS[kind](rng, n_samples, sample_rate)
    else:
        raise ValueError(f"unknown noise kind {kind!r}; choose one of {', '.join(NOISE_KINDS)}")
    return (_limit_peaks(unit) * 10 ** (level_dbfs / 20)).astype(np.float32)


def _rng(seed: int, category: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAM, zlib.crc32(category.encode()), index])


def _scene(
    benchmark: str, rng: np.random.Generator, image_size: int, n_sounding: int
) -> tuple[list[np.ndarray], set[str]]:
    """(frames, names of every object in view) of a positive-style scene of a random class."""
    if benchmark == "tuxav":
        classes = tuxav.sound_classes()
        scene = tuxav.make_scene(rng, int(rng.integers(len(classes))), n_sounding)
        return scene.frames, {s.name for s in [*scene.sounding, *scene.distractors]}
    if benchmark == "synthav":
        sounding = synthav.CLASSES[rng.integers(len(synthav.CLASSES))]
        frames, _, distractors = synthav.make_scene(rng, sounding, image_size)
        return frames, {sounding, *map(str, distractors)}
    raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")


def _offscreen_audio(
    benchmark: str, rng: np.random.Generator, in_view: set[str], snr_db: float
) -> tuple[str, np.ndarray]:
    """(class, audio) of a class not in view, made as its positive clips' audio is made."""
    if benchmark == "tuxav":
        candidates = [c for c in tuxav.sound_classes() if c.name not in in_view]
        stamp = candidates[rng.integers(len(candidates))]
        return stamp.name, tuxav.clip_audio(rng, [stamp], snr_db)
    name = str(rng.choice([c for c in synthav.CLASSES if c not in in_view]))
    return name, synthav.clip_audio(rng, name, snr_db)


def make_negative(
    benchmark: str,
    category: str,
    seed: int,
    index: int,
    *,
    snr_db: float = 10.0,
    image_size: int = 128,
    n_sounding: int = 1,
) -> Clip:
    """Negative clip `index` of `category` (one of CATEGORIES) for `benchmark` (synthav or tuxav).

    `snr_db` is the off-screen sound's SNR over background noise, as in the positive clips;
    `image_size` is SynthAV's frame size, `n_sounding` TuxAV's sounding objects per scene.
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown negative category {category!r}; choose one of {CATEGORIES}")
    rng = _rng(seed, category, index)
    frames, in_view = _scene(benchmark, rng, image_size, n_sounding)
    n = int(CLIP_SECONDS * SAMPLE_RATE)
    info: dict[str, object] = {"in_view": sorted(in_view)}
    if category == "offscreen":
        info["sound"], audio = _offscreen_audio(benchmark, rng, in_view, snr_db)
    elif category == "silence":
        audio = np.zeros(n, np.float32)
    else:
        info["noise"] = category.removeprefix("noise_")
        info["level_dbfs"] = float(rng.uniform(*NOISE_LEVELS_DBFS))
        audio = synth_noise(rng, info["noise"], n, info["level_dbfs"])
    masks = [np.zeros(frame.shape[:2], bool) for frame in frames]
    name = f"{benchmark}_{category}_{index:04d}"
    return Clip(name=name, category=category, frames=frames, masks=masks, audio=audio, info=info)


def kind_of(category: str) -> str:
    """A negative clip's category -> its kind (KINDS): every noise_<colour> is noise."""
    return "noise" if category.startswith("noise_") else category


def category_of(kind: str, index: int) -> str:
    """The category of negative `index` of `kind` (KINDS): noise clips cycle NOISE_KINDS."""
    if kind == "noise":
        return f"noise_{NOISE_KINDS[index % len(NOISE_KINDS)]}"
    if kind in KINDS:
        return kind
    raise ValueError(f"unknown negative kind {kind!r}; choose one of {', '.join(KINDS)}")


def generate(benchmark: str, seed: int, indices: range, **options) -> Iterator[Clip]:
    """Negatives `indices` of each of KINDS, interleaved (off-screen, noise, silence, ...) so
    that any prefix, such as the first clips of a bag, holds every kind."""
    for index in indices:
        for kind in KINDS:
            yield make_negative(benchmark, category_of(kind, index), seed, index, **options)
