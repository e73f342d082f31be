"""Raw PCM bytes (`audio_common_msgs/AudioData.data`) <-> numpy arrays, without ROS.

Sample formats use the GStreamer-style names of audio_common's `AudioInfo.sample_format`.

Choices, and why:
- Bytes are always read and written little-endian, whatever the host, because the format names
  say so (S16LE, ...); decoded arrays are in native byte order so downstream code never sees a
  byte-swapped dtype.
- Decoding does not normalize: `decode_pcm` gives the integers on the wire and `pcm_to_float`
  scales them, so each step can be tested and reused on its own (the capture node needs the
  inverse path, `float_to_pcm` + `encode_pcm`).
- Dtypes are checked strictly: silently casting float audio to int16 (truncating to 0/±1) or
  int16 to float (without scaling) produces plausible-looking garbage, so a mismatch is an error
  that names the conversion function to use.
"""

from __future__ import annotations

import array as py_array
import operator
import types
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

PcmBuffer = bytes | bytearray | memoryview | py_array.array | np.ndarray


@dataclass(frozen=True)
class SampleFormat:
    """One raw PCM sample format: its canonical name and the numpy dtype of a sample."""

    name: str
    dtype: np.dtype  # native byte order; the wire order is always little-endian

    @property
    def wire_dtype(self) -> np.dtype:
        """The dtype of a sample as stored in the message bytes."""
        return self.dtype.newbyteorder("<")


SUPPORTED_SAMPLE_FORMATS: Mapping[str, SampleFormat] = types.MappingProxyType(
    {
        name: SampleFormat(name=name, dtype=np.dtype(dtype))
        for name, dtype in (
            ("S16LE", np.int16),
            ("S32LE", np.int32),
            ("F32LE", np.float32),
            ("U8", np.uint8),
        )
    }
)
"""Sample formats this module reads and writes, by canonical (upper-case) name."""


class PcmFormatError(ValueError):
    """The sample format, channel count, byte count, shape or dtype of PCM audio is unusable."""


def get_sample_format(sample_format: str) -> SampleFormat:
    """Look up a sample format by name, ignoring case and surrounding whitespace."""
    if isinstance(sample_format, str):
        found = SUPPORTED_SAMPLE_FORMATS.get(sample_format.strip().upper())
        if found is not None:
            return found
    supported = ", ".join(SUPPORTED_SAMPLE_FORMATS)
    raise PcmFormatError(
        f"unsupported PCM sample format {sample_format!r}; supported formats are: {supported}. "
        "Compressed audio (e.g. mp3) cannot be decoded here: configure the capture node to "
        "publish raw wave audio with sample format S16LE."
    )


def bytes_per_sample(sample_format: str) -> int:
    """Bytes one sample of one channel occupies in the message data."""
    return get_sample_format(sample_format).dtype.itemsize


def _as_byte_array(data: PcmBuffer) -> np.ndarray:
    """A flat uint8 view of the message bytes (rclpy gives `uint8[]` fields as array.array)."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise TypeError(
                f"PCM data must be raw bytes (a uint8 array), got an array of dtype {data.dtype}; "
                "arrays of samples are already decoded"
            )
        return np.ascontiguousarray(data).reshape(-1)
    return np.frombuffer(data, dtype=np.uint8)


def decode_pcm(data: PcmBuffer, sample_format: str, channels: int) -> np.ndarray:
    """Decode interleaved PCM bytes into an (n_frames, channels) array of raw samples.

    The dtype is the format's (int16, int32, float32 or uint8), in native byte order; values are
    not normalized (see `pcm_to_float`). The result may be a read-only view on `data`.
    """
    fmt = get_sample_format(sample_format)
    channels = operator.index(channels)
    if channels < 1:
        raise PcmFormatError(f"PCM audio needs at least 1 channel, got channels={channels}")
    byte_array = _as_byte_array(data)
    frame_bytes = channels * fmt.dtype.itemsize
    if byte_array.size % frame_bytes != 0:
        raise PcmFormatError(
            f"{fmt.name} audio with {channels} channel(s) comes in frames of {frame_bytes} bytes, "
            f"but the data has {byte_array.size} bytes, which is not a multiple of {frame_bytes}; "
            "check the sample format and channel count of the audio source"
        )
    samples = byte_array.view(fmt.wire_dtype).reshape(-1, channels)
    if not samples.dtype.isnative:
        samples = samples.astype(fmt.dtype)
    return samples


def encode_pcm(samples: np.ndarray, sample_format: str) -> bytes:
    """Encode (n_frames, channels) or mono (n_frames,) samples as interleaved little-endian bytes.

    The dtype must already be the format's (e.g. int16 for S16LE); use `float_to_pcm` to convert
    float audio first.
    """
    fmt = get_sample_format(sample_format)
    if not isinstance(samples, np.ndarray):
        raise PcmFormatError(f"PCM samples must be a numpy array, got {type(samples).__name__}")
    if samples.dtype.kind != fmt.dtype.kind or samples.dtype.itemsize != fmt.dtype.itemsize:
        raise PcmFormatError(
            f"{fmt.name} needs {fmt.dtype} samples, got {samples.dtype}; "
            f"use float_to_pcm(samples, {fmt.name!r}) to convert float audio in [-1, 1]"
        )
    if samples.ndim not in (1, 2) or (samples.ndim == 2 and samples.shape[1] < 1):
        raise PcmFormatError(
            "PCM samples must have shape (n_frames, channels) with channels >= 1, or (n_frames,) "
            f"for mono; got shape {samples.shape}"
        )
    # Row-major order of (n_frames, channels) is exactly the interleaved order.
    return np.ascontiguousarray(samples, dtype=fmt.wire_dtype).tobytes()


_INT16_SCALE = np.float32(1.0 / 32768.0)
_INT32_SCALE = np.float32(1.0 / 2**31)


def pcm_to_float(samples: np.ndarray) -> np.ndarray:
    """Scale raw samples to float32 in [-1, 1]: the most negative integer maps to exactly -1.0.

    int16 / 32768, int32 / 2**31, uint8 (x - 128) / 128. Float input is returned as float32
    unchanged (not copied if already float32, and not clipped: clipping is the front-end's job).
    """
    samples = np.asarray(samples)
    dtype = samples.dtype
    if dtype.kind == "f":
        return samples.astype(np.float32, copy=False)
    # Scaling by a power of two is exact, so one rounding (int -> float32) is the only error.
    if dtype.kind == "i" and dtype.itemsize == 2:
        return samples.astype(np.float32) * _INT16_SCALE
    if dtype.kind == "i" and dtype.itemsize == 4:
        return samples.astype(np.float32) * _INT32_SCALE
    if dtype.kind == "u" and dtype.itemsize == 1:
        return (samples.astype(np.float32) - np.float32(128.0)) * np.float32(1.0 / 128.0)
    raise PcmFormatError(
        f"cannot scale samples of dtype {dtype} to float; expected int16, int32, uint8 or float "
        "(the dtypes decode_pcm returns)"
    )


def float_to_pcm(samples: np.ndarray, sample_format: str) -> np.ndarray:
    """Convert float audio in [-1, 1] to the format's native dtype (for test signals, capture).

    Values are clipped to [-1, 1] (as a saturating converter would) and NaN becomes 0 (silence).
    Integer formats scale by the largest positive value so that +1.0 fits: S16LE maps ±1.0 to
    ±32767, S32LE to ±(2**31 - 1), U8 to 128 ± 127. The most negative code (-32768, 0 for U8) is
    never produced; this asymmetry with `pcm_to_float` (which divides by 32768) costs under one
    LSB and keeps the output symmetric around zero.
    """
    fmt = get_sample_format(sample_format)
    samples = np.asarray(samples)
    if samples.dtype.kind != "f":
        raise PcmFormatError(
            f"float_to_pcm needs float samples in [-1, 1], got dtype {samples.dtype}; "
            f"integer samples are already PCM (pass them to encode_pcm directly)"
        )
    # float64 keeps S32LE's 31 bits exact through the scaling.
    wide = np.nan_to_num(samples.astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    clipped = np.clip(wide, -1.0, 1.0)
    if fmt.dtype.kind == "f":
        return clipped.astype(fmt.dtype)
    if fmt.dtype.kind == "u":
        midpoint = (int(np.iinfo(fmt.dtype).max) + 1) // 2  # 128 for U8: offset binary
        return (np.rint(clipped * (midpoint - 1)) + midpoint).astype(fmt.dtype)
    full_scale = int(np.iinfo(fmt.dtype).max)
    return np.rint(clipped * full_scale).astype(fmt.dtype)


def downmix(samples: np.ndarray) -> np.ndarray:
    """Average float (n_frames, channels) audio to mono (n_frames,); 1-D input is already mono.

    Integer samples are refused: averaging them before `pcm_to_float` would lose the scale
    (and, for U8, the 128 offset).
    """
    samples = np.asarray(samples)
    if samples.dtype.kind != "f":
        raise PcmFormatError(
            f"downmix needs float samples, got dtype {samples.dtype}; convert with pcm_to_float"
        )
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2 or samples.shape[1] < 1:
        raise PcmFormatError(
            f"downmix needs shape (n_frames, channels) with channels >= 1, got {samples.shape}"
        )
    return samples.mean(axis=1, dtype=samples.dtype)


UNCOMPRESSED_CODINGS = ("wave",)
MAX_SAMPLE_RATE = 384_000  # the highest rate audio interfaces offer; also the parameter's cap
MAX_CHANNELS = 64  # a large microphone array; also the parameter's cap
MAX_CHUNK_SECONDS = 5.0  # the node's audio buffer holds 5 s: a longer chunk could not be paired


@dataclass(frozen=True)
class AudioStreamFormat:
    """What an `AudioInfo` announces about a stream, checked to be decodable here."""

    sample_rate: int
    channels: int
    sample_format: str = "S16LE"

    @classmethod
    def from_info(
        cls, coding_format: str, sample_format: str, channels: int, sample_rate: int
    ) -> AudioStreamFormat:
        """Validate the fields of an audio_common_msgs/AudioInfo; errors say what to change."""
        coding = coding_format.strip().lower()
        if coding not in UNCOMPRESSED_CODINGS:
            raise PcmFormatError(
                f"audio coding format {coding_format!r} is not supported: only uncompressed "
                f"{'/'.join(UNCOMPRESSED_CODINGS)} audio can be paired with frames. Set the "
                "capture node to raw PCM (audio_common's audio_capture: format:=wave)."
            )
        _check_count("channels", channels, MAX_CHANNELS)
        _check_count("sample_rate", sample_rate, MAX_SAMPLE_RATE)
        return cls(
            sample_rate=sample_rate,
            channels=channels,
            sample_format=get_sample_format(sample_format).name,
        )

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one multi-channel sample frame."""
        return self.channels * bytes_per_sample(self.sample_format)

    @property
    def max_chunk_frames(self) -> int:
        """The most sample frames one message may carry (MAX_CHUNK_SECONDS of audio)."""
        return int(self.sample_rate * MAX_CHUNK_SECONDS)


def _check_count(field: str, value: object, bound: int) -> None:
    """An AudioInfo count must be an integer in [1, bound]: the buffers are sized from it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= bound:
        raise PcmFormatError(
            f"audio_info.{field} is {value!r}, outside [1, {bound}]; fix the publisher's "
            f"{field} (or set the node's audio.{field} parameter and stop publishing audio_info)"
        )


def decode_chunk(data: PcmBuffer, stream: AudioStreamFormat) -> np.ndarray:
    """One audio message's bytes -> mono float32 samples in [-1, 1], refused when unusable.

    Bounded before anything is allocated (at most `stream.max_chunk_frames`), and refused when a
    float stream carries NaN or infinite samples: those are a broken driver, not silence, and
    would poison every window they fall into.
    """
    samples = decode_pcm(data, stream.sample_format, stream.channels)  # a view: no allocation
    if samples.shape[0] > stream.max_chunk_frames:
        raise PcmFormatError(
            f"an audio chunk of {samples.shape[0]} frames is longer than {MAX_CHUNK_SECONDS:g} s "
            f"at {stream.sample_rate} Hz ({stream.max_chunk_frames} frames); publish audio in "
            "chunks of well under a second"
        )
    mono = downmix(pcm_to_float(samples))
    if not np.isfinite(mono).all():
        raise PcmFormatError(
            f"an {stream.sample_format} audio chunk holds NaN or infinite samples; the audio "
            "driver or the publisher is broken (a float stream must stay within [-1, 1])"
        )
    return mono
