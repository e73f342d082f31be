"""Tests for soundloc_ros.core.pcm: hand-built PCM bytes, scaling, round trips, errors."""

from __future__ import annotations

import array
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from soundloc_ros.core.pcm import (
    SUPPORTED_SAMPLE_FORMATS,
    AudioStreamFormat,
    PcmFormatError,
    bytes_per_sample,
    decode_chunk,
    decode_pcm,
    downmix,
    encode_pcm,
    float_to_pcm,
    pcm_to_float,
)

# struct codes of each format's little-endian sample, to build bytes independently of numpy.
STRUCT_CODES = {"S16LE": "h", "S32LE": "i", "F32LE": "f", "U8": "B"}


def pack(sample_format: str, values: list) -> bytes:
    return struct.pack(f"<{len(values)}{STRUCT_CODES[sample_format]}", *values)


# --- decode -----------------------------------------------------------------------------------


def test_stereo_s16le_interleaving() -> None:
    # Wire order: frame 0 ch0, frame 0 ch1, frame 1 ch0, ...
    data = pack("S16LE", [1, -1, 2, -2, 3, -3])
    samples = decode_pcm(data, "S16LE", channels=2)
    assert samples.shape == (3, 2)
    assert samples.dtype == np.int16
    np.testing.assert_array_equal(samples[:, 0], [1, 2, 3])
    np.testing.assert_array_equal(samples[:, 1], [-1, -2, -3])


def test_three_channel_interleaving() -> None:
    data = pack("S32LE", [10, 20, 30, 11, 21, 31])
    samples = decode_pcm(data, "S32LE", channels=3)
    np.testing.assert_array_equal(samples, [[10, 20, 30], [11, 21, 31]])


def test_s16le_is_read_little_endian() -> None:
    samples = decode_pcm(b"\x01\x00\x00\x01", "S16LE", channels=1)
    np.testing.assert_array_equal(samples[:, 0], [1, 256])
    assert samples.dtype.isnative


@pytest.mark.parametrize(
    ("sample_format", "values", "dtype"),
    [
        ("S16LE", [-32768, -1, 0, 32767], np.int16),
        ("S32LE", [-(2**31), -1, 0, 2**31 - 1], np.int32),
        ("F32LE", [-1.0, -0.25, 0.0, 0.75], np.float32),
        ("U8", [0, 127, 128, 255], np.uint8),
    ],
)
def test_decode_known_values(sample_format: str, values: list, dtype: type) -> None:
    samples = decode_pcm(pack(sample_format, values), sample_format, channels=1)
    assert samples.dtype == dtype
    assert samples.shape == (4, 1)
    np.testing.assert_array_equal(samples[:, 0], np.array(values, dtype=dtype))


@pytest.mark.parametrize(
    "make_buffer",
    [
        bytes,
        bytearray,
        memoryview,
        lambda raw: array.array("B", raw),  # what rclpy gives for uint8[] fields
        lambda raw: np.frombuffer(raw, dtype=np.uint8),
    ],
    ids=["bytes", "bytearray", "memoryview", "array.array", "ndarray"],
)
def test_decode_accepts_buffer_types(make_buffer) -> None:
    samples = decode_pcm(make_buffer(pack("S16LE", [5, -6])), "S16LE", channels=2)
    np.testing.assert_array_equal(samples, [[5, -6]])


def test_decode_empty() -> None:
    samples = decode_pcm(b"", "F32LE", channels=4)
    assert samples.shape == (0, 4)
    assert samples.dtype == np.float32


@pytest.mark.parametrize("name", ["s16le", "S16le", " S16LE "])
def test_format_lookup_ignores_case(name: str) -> None:
    assert decode_pcm(pack("S16LE", [7]), name, 1)[0, 0] == 7


def test_bytes_per_sample() -> None:
    assert bytes_per_sample("S16LE") == 2
    assert bytes_per_sample("S32LE") == 4
    assert bytes_per_sample("F32LE") == 4
    assert bytes_per_sample("U8") == 1
    assert bytes_per_sample("u8") == 1


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["mp3", "S24LE", "S16BE", ""])
def test_unsupported_format_names_it_and_lists_supported(bad: str) -> None:
    with pytest.raises(PcmFormatError) as excinfo:
        decode_pcm(b"\x00" * 12, bad, channels=1)
    message = str(excinfo.value)
    assert repr(bad) in message
    for name in SUPPORTED_SAMPLE_FORMATS:
        assert name in message
    assert "mp3" in message and "S16LE" in message  # points at the capture-node fix


def test_bytes_per_sample_unsupported() -> None:
    with pytest.raises(PcmFormatError, match="'opus'"):
        bytes_per_sample("opus")


def test_byte_count_not_multiple_of_frame() -> None:
    # 5 bytes of stereo S16LE: frames are 4 bytes.
    with pytest.raises(PcmFormatError) as excinfo:
        decode_pcm(b"\x00" * 5, "S16LE", channels=2)
    message = str(excinfo.value)
    assert "5 bytes" in message
    assert "multiple of 4" in message


def test_byte_count_ok_for_mono_but_not_stereo() -> None:
    data = b"\x00" * 6  # 3 S16 samples
    assert decode_pcm(data, "S16LE", channels=1).shape == (3, 1)
    with pytest.raises(PcmFormatError, match=r"6 bytes.*multiple of 4"):
        decode_pcm(data, "S16LE", channels=2)


@pytest.mark.parametrize("channels", [0, -2])
def test_channels_must_be_positive(channels: int) -> None:
    with pytest.raises(PcmFormatError, match=f"channels={channels}"):
        decode_pcm(b"", "S16LE", channels=channels)


def test_non_uint8_data_array_is_rejected() -> None:
    with pytest.raises(TypeError, match="int16"):
        decode_pcm(np.zeros(4, np.int16), "S16LE", channels=1)


# --- encode -----------------------------------------------------------------------------------


def test_encode_stereo_interleaves() -> None:
    samples = np.array([[1, -1], [2, -2], [3, -3]], dtype=np.int16)
    assert encode_pcm(samples, "S16LE") == pack("S16LE", [1, -1, 2, -2, 3, -3])


def test_encode_mono_1d() -> None:
    samples = np.array([0, 128, 255], dtype=np.uint8)
    assert encode_pcm(samples, "U8") == bytes([0, 128, 255])


def test_encode_is_little_endian_even_from_big_endian_array() -> None:
    samples = np.array([[1.5, -2.0]], dtype=">f4")
    assert encode_pcm(samples, "F32LE") == pack("F32LE", [1.5, -2.0])


def test_encode_non_contiguous_channel_slice() -> None:
    stereo = np.array([[1, 100], [2, 200]], dtype=np.int32)
    assert encode_pcm(stereo[:, 1:], "S32LE") == pack("S32LE", [100, 200])


@pytest.mark.parametrize(
    ("sample_format", "dtype", "needed"),
    [
        ("S16LE", np.float64, "int16"),
        ("S16LE", np.int32, "int16"),
        ("S32LE", np.float32, "int32"),
        ("F32LE", np.float64, "float32"),
        ("U8", np.int8, "uint8"),
    ],
)
def test_encode_rejects_wrong_dtype(sample_format: str, dtype: type, needed: str) -> None:
    with pytest.raises(PcmFormatError) as excinfo:
        encode_pcm(np.zeros((4, 2), dtype=dtype), sample_format)
    message = str(excinfo.value)
    assert f"needs {needed} samples, got {np.dtype(dtype)}" in message
    assert "float_to_pcm" in message


@pytest.mark.parametrize("shape", [(4, 0), (2, 2, 2), ()])
def test_encode_rejects_wrong_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(PcmFormatError, match="shape"):
        encode_pcm(np.zeros(shape, dtype=np.int16), "S16LE")


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("sample_format", list(SUPPORTED_SAMPLE_FORMATS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_encode_decode_round_trip(sample_format: str, data: st.DataObject) -> None:
    dtype = SUPPORTED_SAMPLE_FORMATS[sample_format].dtype
    shape = data.draw(st.tuples(st.integers(0, 20), st.integers(1, 4)))
    samples = data.draw(hnp.arrays(dtype, shape))

    encoded = encode_pcm(samples, sample_format)
    assert len(encoded) == samples.size * bytes_per_sample(sample_format)
    decoded = decode_pcm(encoded, sample_format, channels=shape[1])

    assert decoded.dtype == dtype
    np.testing.assert_array_equal(decoded, samples)  # NaNs compare equal at equal positions


@pytest.mark.parametrize(
    ("sample_format", "lsb"), [("S16LE", 1 / 32767), ("S32LE", 1 / (2**31 - 1)), ("U8", 1 / 127)]
)
@settings(max_examples=40, deadline=None)
@given(
    signal=hnp.arrays(
        np.float64, st.integers(0, 64), elements=st.floats(-1.0, 1.0, allow_nan=False)
    )
)
def test_float_pcm_float_round_trip_within_one_lsb(
    sample_format: str, lsb: float, signal: np.ndarray
) -> None:
    restored = pcm_to_float(float_to_pcm(signal, sample_format))
    assert restored.dtype == np.float32
    assert restored.shape == signal.shape
    # Half an LSB of rounding, the 32767-vs-32768 scale mismatch (< 1 LSB), float32 rounding.
    np.testing.assert_allclose(restored, signal, rtol=0, atol=1.5 * lsb + 1e-7)


# --- pcm_to_float -----------------------------------------------------------------------------


def test_s16_scaling() -> None:
    scaled = pcm_to_float(np.array([-32768, 0, 16384, 32767], dtype=np.int16))
    assert scaled.dtype == np.float32
    np.testing.assert_array_equal(scaled, np.float32([-1.0, 0.0, 0.5, 32767 / 32768]))


def test_s32_scaling() -> None:
    scaled = pcm_to_float(np.array([-(2**31), 0, 2**30], dtype=np.int32))
    np.testing.assert_array_equal(scaled, np.float32([-1.0, 0.0, 0.5]))
    assert pcm_to_float(np.array([2**31 - 1], dtype=np.int32))[0] <= 1.0


def test_u8_silence_and_extremes() -> None:
    scaled = pcm_to_float(np.array([128, 0, 255, 192], dtype=np.uint8))
    np.testing.assert_array_equal(scaled, np.float32([0.0, -1.0, 127 / 128, 0.5]))


def test_u8_bytes_of_silence_decode_to_zero() -> None:
    samples = decode_pcm(bytes([128] * 8), "U8", channels=2)
    np.testing.assert_array_equal(pcm_to_float(samples), np.zeros((4, 2), np.float32))


def test_s16_bytes_of_minimum_decode_to_minus_one() -> None:
    samples = decode_pcm(pack("S16LE", [-32768, 32767]), "S16LE", channels=1)
    floats = pcm_to_float(samples)
    assert floats[0, 0] == -1.0
    assert floats[1, 0] == np.float32(32767 / 32768)


def test_float32_passes_through_unclipped() -> None:
    samples = np.array([[-3.0, 0.25], [1.5, np.inf]], dtype=np.float32)
    result = pcm_to_float(samples)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, samples)


def test_pcm_to_float_keeps_shape() -> None:
    assert pcm_to_float(np.zeros((5, 3), np.int16)).shape == (5, 3)


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int64, np.bool_])
def test_pcm_to_float_rejects_other_dtypes(dtype: type) -> None:
    with pytest.raises(PcmFormatError, match=str(np.dtype(dtype))):
        pcm_to_float(np.zeros(3, dtype=dtype))


# --- float_to_pcm -----------------------------------------------------------------------------


def test_float_to_s16_full_scale_and_clipping() -> None:
    result = float_to_pcm(np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]), "S16LE")
    assert result.dtype == np.int16
    np.testing.assert_array_equal(result, [-32767, -32767, 0, 16384, 32767, 32767])


def test_float_to_s32_full_scale() -> None:
    result = float_to_pcm(np.array([-1.0, 0.0, 1.0]), "S32LE")
    assert result.dtype == np.int32
    np.testing.assert_array_equal(result, [-(2**31 - 1), 0, 2**31 - 1])


def test_float_to_u8_offset_binary() -> None:
    result = float_to_pcm(np.array([-1.0, 0.0, 1.0, 5.0], dtype=np.float32), "U8")
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, [1, 128, 255, 255])


def test_float_to_f32_clips() -> None:
    result = float_to_pcm(np.array([-1.5, 0.25, 1.5]), "F32LE")
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, np.float32([-1.0, 0.25, 1.0]))


def test_float_to_pcm_nan_is_silence() -> None:
    np.testing.assert_array_equal(float_to_pcm(np.array([np.nan]), "S16LE"), [0])
    np.testing.assert_array_equal(float_to_pcm(np.array([np.nan]), "U8"), [128])


def test_float_to_pcm_keeps_shape() -> None:
    assert float_to_pcm(np.zeros((7, 2)), "S16LE").shape == (7, 2)


def test_float_to_pcm_rejects_integers() -> None:
    with pytest.raises(PcmFormatError, match=r"needs float samples.*int16"):
        float_to_pcm(np.zeros(3, np.int16), "S16LE")


def test_float_to_pcm_unsupported_format() -> None:
    with pytest.raises(PcmFormatError, match="'S24LE'"):
        float_to_pcm(np.zeros(3), "S24LE")


# --- downmix ----------------------------------------------------------------------------------


def test_downmix_averages_channels() -> None:
    stereo = np.array([[1.0, 3.0], [2.0, 4.0], [-1.0, 1.0]], dtype=np.float32)
    mono = downmix(stereo)
    assert mono.shape == (3,)
    assert mono.dtype == np.float32
    np.testing.assert_array_equal(mono, [2.0, 3.0, 0.0])


def test_downmix_single_channel_and_1d() -> None:
    np.testing.assert_array_equal(downmix(np.array([[0.5], [-0.5]])), [0.5, -0.5])
    np.testing.assert_array_equal(downmix(np.array([0.5, -0.5])), [0.5, -0.5])


def test_downmix_rejects_integer_samples() -> None:
    with pytest.raises(PcmFormatError, match="pcm_to_float"):
        downmix(np.zeros((4, 2), np.int16))


def test_downmix_rejects_zero_channels() -> None:
    with pytest.raises(PcmFormatError, match="channels >= 1"):
        downmix(np.zeros((4, 0), np.float32))


def test_decode_scale_downmix_pipeline() -> None:
    # Left channel at -32768 (-1.0), right at 16384 (0.5): mono is -0.25.
    data = pack("S16LE", [-32768, 16384, -32768, 16384])
    mono = downmix(pcm_to_float(decode_pcm(data, "S16LE", channels=2)))
    np.testing.assert_array_equal(mono, np.float32([-0.25, -0.25]))


@pytest.mark.parametrize(
    ("channels", "sample_rate", "field"),
    [
        (1, 4_000_000_000, "sample_rate is 4000000000, outside \\[1, 384000\\]"),  # 74.5 GiB
        (1, 20_000_000, "sample_rate"),
        (1, 0, "sample_rate is 0"),
        (255, 16000, "channels is 255, outside \\[1, 64\\]"),
        (0, 16000, "channels is 0"),
    ],
)
def test_audio_info_counts_are_bounded_with_the_field_and_the_fix(
    channels: int, sample_rate: int, field: str
) -> None:
    with pytest.raises(PcmFormatError, match=field) as excinfo:
        AudioStreamFormat.from_info("wave", "S16LE", channels, sample_rate)
    assert "audio_info" in str(excinfo.value) and "publisher" in str(excinfo.value)


def test_a_chunk_is_decoded_to_mono_float() -> None:
    stream = AudioStreamFormat(16000, 2, "S16LE")
    mono = decode_chunk(pack("S16LE", [-32768, 16384, 0, 0]), stream)
    np.testing.assert_array_equal(mono, np.float32([-0.25, 0.0]))


def test_a_chunk_longer_than_the_buffer_is_refused_before_conversion() -> None:
    stream = AudioStreamFormat(1000, 1, "S16LE")  # 5 s = 5000 frames
    decode_chunk(bytes(2 * 5000), stream)
    with pytest.raises(PcmFormatError, match="5001 frames is longer than 5 s"):
        decode_chunk(bytes(2 * 5001), stream)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_audio_is_refused_not_taken_for_silence(bad: float) -> None:
    samples = np.zeros((100, 2), np.float32)
    samples[50, 1] = bad
    with pytest.raises(PcmFormatError, match="NaN or infinite"):
        decode_chunk(samples.tobytes(), AudioStreamFormat(16000, 2, "F32LE"))
