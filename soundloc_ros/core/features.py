"""The audio front-end: waveform window -> normalized log-mel spectrogram.

This is the single implementation used by training, by the node and by replay evaluation, so the
network sees bit-for-bit the same features offline and on the robot. It stays outside the ONNX
graph because TensorRT 10.3 (JetPack 6) has no STFT operator.

Choices, and why:
- 16 kHz, 1 s window: 16 kHz covers the band where most sounding objects carry their identity and
  is what robot microphones commonly deliver; one second holds a bark, a note or a word, yet the
  map follows a change of source within a second. Longer windows mostly add stale sound.
- No centre padding: every STFT frame lies wholly inside the window, so the features of the window
  [t - 1 s, t] use no audio after t (no look-ahead, nothing to wait for).
- Hann window of 25 ms inside a 512-point FFT, 10 ms hop: 97 frames per second of audio, the usual
  speech/audio-event resolution, cheap on a CPU (~1 ms).
- HTK mel scale with unit-peak triangular filters; natural log of (power + offset); one fixed
  mean/std pair (estimated on training data, stored in the bundle), never per-example statistics,
  so loudness survives normalization and the node's silence decision stays meaningful.
- Float input is clipped to [-1, 1], as a saturated converter would; any input rate is resampled
  with a polyphase filter (scipy.signal.resample_poly).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import resample_poly


class FeatureConfigError(ValueError):
    """A front-end parameter is out of range or a stored configuration is malformed."""


@dataclass(frozen=True)
class LogMelConfig:
    """Every parameter of the front-end; stored verbatim in the model bundle."""

    sample_rate: int = 16000
    window_seconds: float = 1.0
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 8000.0
    log_offset: float = 1e-6
    norm_mean: float = 0.0
    norm_std: float = 1.0

    def __post_init__(self) -> None:
        self._check()

    @property
    def n_samples(self) -> int:
        """Samples in one analysis window at `sample_rate`."""
        return round(self.window_seconds * self.sample_rate)

    @property
    def n_frames(self) -> int:
        """STFT frames per window (no centre padding)."""
        return 1 + (self.n_samples - self.n_fft) // self.hop_length

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of one feature map: (n_mels, n_frames)."""
        return (self.n_mels, self.n_frames)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LogMelConfig:
        """Strict inverse of `to_dict`: unknown or missing keys are errors, named in the message."""
        if not isinstance(values, Mapping):
            raise FeatureConfigError(
                f"audio front-end: expected a mapping of parameters, got {type(values).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        missing = sorted(known - set(values))
        if unknown:
            raise FeatureConfigError(
                f"audio front-end: unknown parameter(s) {unknown}; "
                f"this version knows {sorted(known)}"
            )
        if missing:
            raise FeatureConfigError(f"audio front-end: missing parameter(s) {missing}")
        return cls(**values)

    def _check(self) -> None:
        def fail(field: str, why: str) -> None:
            raise FeatureConfigError(f"audio front-end: {field}={getattr(self, field)!r} {why}")

        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                fail(name, "must be a positive integer")
        for name in ("window_seconds", "fmin", "fmax", "log_offset", "norm_mean", "norm_std"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                fail(name, "must be a number")
            if not math.isfinite(value):
                fail(name, "must be finite")
        if self.win_length > self.n_fft:
            fail("win_length", f"must not exceed n_fft={self.n_fft}")
        if self.n_samples < self.n_fft:
            fail("window_seconds", f"gives {self.n_samples} samples, fewer than n_fft={self.n_fft}")
        if not 0 <= self.fmin < self.fmax:
            fail("fmin", f"must satisfy 0 <= fmin < fmax={self.fmax}")
        if self.fmax > self.sample_rate / 2:
            fail("fmax", f"must not exceed the Nyquist frequency {self.sample_rate / 2} Hz")
        if self.log_offset <= 0:
            fail("log_offset", "must be > 0 (it keeps log() finite on silence)")
        if self.norm_std <= 0:
            fail("norm_std", "must be > 0")
        if self.n_mels > self.n_fft // 2 + 1:
            fail("n_mels", f"must not exceed the {self.n_fft // 2 + 1} FFT bins")


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_center_frequencies(config: LogMelConfig) -> np.ndarray:
    """Centre frequency in Hz of each mel band, shape [n_mels]."""
    edges = mel_to_hz(
        np.linspace(hz_to_mel(config.fmin), hz_to_mel(config.fmax), config.n_mels + 2)
    )
    return edges[1:-1]


@functools.lru_cache(maxsize=8)
def mel_filterbank(config: LogMelConfig) -> np.ndarray:
    """Unit-peak triangular filters, shape [n_mels, n_fft // 2 + 1]."""
    edges = mel_to_hz(
        np.linspace(hz_to_mel(config.fmin), hz_to_mel(config.fmax), config.n_mels + 2)
    )
    bin_hz = np.fft.rfftfreq(config.n_fft, d=1.0 / config.sample_rate)  # [n_bins]
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # [n_mels, 1]
    rising = (bin_hz[None, :] - lower) / (centre - lower)  # [n_mels, n_bins]
    falling = (upper - bin_hz[None, :]) / (upper - centre)  # [n_mels, n_bins]
    bank = np.clip(np.minimum(rising, falling), 0.0, None)
    bank.setflags(write=False)
    return bank


@functools.lru_cache(maxsize=8)
def analysis_window(config: LogMelConfig) -> np.ndarray:
    """Periodic Hann window of win_length, zero-padded to n_fft and centred, shape [n_fft]."""
    n = np.arange(config.win_length)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / config.win_length)
    window = np.zeros(config.n_fft)
    start = (config.n_fft - config.win_length) // 2
    window[start : start + config.win_length] = hann
    window.setflags(write=False)
    return window


def resample(samples: np.ndarray, input_rate: int, output_rate: int) -> np.ndarray:
    """Polyphase resampling along the last axis; identity when the rates match."""
    if input_rate <= 0 or output_rate <= 0:
        raise FeatureConfigError(
            f"sample rates must be positive, got input {input_rate} Hz and output {output_rate} Hz"
        )
    if input_rate == output_rate:
        return samples
    divisor = math.gcd(int(input_rate), int(output_rate))
    return resample_poly(samples, output_rate // divisor, input_rate // divisor, axis=-1)


def fit_to_length(samples: np.ndarray, n_samples: int) -> np.ndarray:
    """Keep the newest n_samples along the last axis, zero-padding at the start if short.

    The window ends at the frame's time, so the newest audio is the part that must survive.
    """
    length = samples.shape[-1]
    if length >= n_samples:
        return samples[..., length - n_samples :]
    padding = [(0, 0)] * (samples.ndim - 1) + [(n_samples - length, 0)]
    return np.pad(samples, padding)


def log_mel(samples: np.ndarray, config: LogMelConfig) -> np.ndarray:
    """Normalized log-mel of waveforms already at config.sample_rate and in [-1, 1].

    samples: [..., n_samples] -> [..., n_mels, n_frames] float32. Any length >= n_fft works;
    `compute_features` is the entry point that also fixes rate, range and length.
    """
    waveform = np.asarray(samples, dtype=np.float64)
    if waveform.shape[-1] < config.n_fft:
        raise FeatureConfigError(
            f"need at least n_fft={config.n_fft} samples, got {waveform.shape[-1]}"
        )
    frames = np.lib.stride_tricks.sliding_window_view(waveform, config.n_fft, axis=-1)
    frames = frames[..., :: config.hop_length, :]  # [..., n_frames, n_fft]
    spectrum = np.fft.rfft(frames * analysis_window(config), axis=-1)  # [..., n_frames, n_bins]
    power = spectrum.real**2 + spectrum.imag**2
    mel = power @ mel_filterbank(config).T  # [..., n_frames, n_mels]
    logmel = np.log(mel + config.log_offset)
    normalized = (logmel - config.norm_mean) / config.norm_std
    return np.swapaxes(normalized, -1, -2).astype(np.float32)  # [..., n_mels, n_frames]


def compute_features(samples: np.ndarray, sample_rate: int, config: LogMelConfig) -> np.ndarray:
    """Front-end for one or many audio windows, as training and the node both call it.

    samples: float waveform [..., n] at `sample_rate` (mono; downmix before), nominally in
    [-1, 1]. Returns [..., n_mels, n_frames] float32 for exactly one window of
    `config.window_seconds` (the newest samples are kept; short input is zero-padded in front).
    """
    waveform = np.asarray(samples)
    if not np.issubdtype(waveform.dtype, np.floating):
        raise FeatureConfigError(
            f"expected float samples in [-1, 1], got dtype {waveform.dtype}; convert PCM with "
            "soundloc_ros.core.pcm.pcm_to_float first"
        )
    bad = np.count_nonzero(~np.isfinite(waveform))
    if bad:
        raise ValueError(
            f"audio window holds {bad} NaN/inf sample(s); check the microphone driver's sample "
            "format (float streams must be F32LE in [-1, 1])"
        )
    waveform = np.clip(waveform.astype(np.float64), -1.0, 1.0)
    waveform = resample(waveform, sample_rate, config.sample_rate)
    return log_mel(fit_to_length(waveform, config.n_samples), config)


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of a float window in dB relative to full scale (-inf for digital silence).

    The node's no-sound decision compares this with a threshold before any inference: a
    localizer always finds *some* best-matching pixels, even in silence.
    """
    waveform = np.asarray(samples, dtype=np.float64)
    if waveform.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(waveform**2)))
    return 20.0 * math.log10(rms) if rms > 0 else float("-inf")
