"""Tests for soundloc_ros.core.image_codec: byte layouts built by hand, round trips, errors."""

from __future__ import annotations

import array
import re
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from soundloc_ros.core.image_codec import (
    SUPPORTED_ENCODINGS,
    ImageEncodingError,
    ImageLayoutError,
    decode_image,
    encode_image,
    to_rgb8,
)

GARBAGE = 0xFF


def padded_rows(rows: list[bytes], padding: int) -> bytes:
    """Concatenate rows, each followed by `padding` garbage bytes, as a driver with step > row."""
    return b"".join(row + bytes([GARBAGE]) * padding for row in rows)


# --- decode: hand-built layouts -------------------------------------------------------------


def test_rgb8_decode_skips_row_padding() -> None:
    # 2 rows × 3 pixels × 3 channels; values 0..17 so the 0xFF padding is recognizable.
    values = list(range(18))
    rows = [bytes(values[0:9]), bytes(values[9:18])]
    data = padded_rows(rows, padding=4)
    assert len(data) == 2 * 13

    image = decode_image(data, height=2, width=3, encoding="rgb8", step=13, is_bigendian=False)

    assert image.shape == (2, 3, 3)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, np.arange(18, dtype=np.uint8).reshape(2, 3, 3))
    assert GARBAGE not in image
    # Pixel (row 1, col 2) is the last three non-padding bytes, in R, G, B order.
    assert image[1, 2].tolist() == [15, 16, 17]


def test_decode_ignores_bytes_after_last_row() -> None:
    data = bytes([1, 2, 3, 4]) + bytes([GARBAGE]) * 8
    image = decode_image(data, height=2, width=2, encoding="mono8", step=2, is_bigendian=False)
    np.testing.assert_array_equal(image, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    ("encoding", "channels"), [("bgr8", 3), ("rgba8", 4), ("bgra8", 4), ("mono8", 1)]
)
def test_8bit_decode_shape_and_order(encoding: str, channels: int) -> None:
    height, width = 2, 3
    row_bytes = width * channels
    flat = np.arange(height * row_bytes, dtype=np.uint8)
    data = padded_rows([flat[:row_bytes].tobytes(), flat[row_bytes:].tobytes()], padding=2)

    image = decode_image(data, height, width, encoding, step=row_bytes + 2, is_bigendian=False)

    expected_shape = (height, width) if channels == 1 else (height, width, channels)
    assert image.shape == expected_shape
    np.testing.assert_array_equal(image, flat.reshape(expected_shape))


def test_8bit_decode_ignores_is_bigendian() -> None:
    data = bytes(range(12))
    little = decode_image(data, 2, 2, "bgr8", step=6, is_bigendian=False)
    big = decode_image(data, 2, 2, "bgr8", step=6, is_bigendian=True)
    np.testing.assert_array_equal(little, big)


def test_32fc1_big_endian_with_padding() -> None:
    depth = np.array([[1.5, -2.25], [3.0e-5, 1024.0]])
    rows = [depth[0].astype(">f4").tobytes(), depth[1].astype(">f4").tobytes()]
    data = padded_rows(rows, padding=8)

    image = decode_image(data, height=2, width=2, encoding="32FC1", step=16, is_bigendian=True)

    assert image.shape == (2, 2)
    assert image.dtype == np.float32
    assert image.dtype.isnative
    np.testing.assert_array_equal(image, depth.astype(np.float32))


def test_32fc1_little_endian_bytes() -> None:
    data = struct.pack("<3f", 0.5, -7.0, 2.0**-10)
    image = decode_image(data, height=1, width=3, encoding="32FC1", step=12, is_bigendian=False)
    np.testing.assert_array_equal(image, np.array([[0.5, -7.0, 2.0**-10]], dtype=np.float32))


def test_32fc1_endian_flag_matters() -> None:
    data = struct.pack(">f", 1.0)
    as_big = decode_image(data, 1, 1, "32FC1", step=4, is_bigendian=True)
    as_little = decode_image(data, 1, 1, "32FC1", step=4, is_bigendian=False)
    assert as_big[0, 0] == 1.0
    assert as_little[0, 0] != 1.0


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
    raw = bytes([10, 20, 30, 40, 50, 60])
    image = decode_image(make_buffer(raw), 1, 2, "rgb8", step=6, is_bigendian=False)
    np.testing.assert_array_equal(image, [[[10, 20, 30], [40, 50, 60]]])


@pytest.mark.parametrize(
    ("height", "width", "step", "field"),
    [
        (2**29, 0, 0, "height is 536870912"),  # the probe's bomb: an empty image 2^29 rows high
        (480, 0, 0, "width is 0"),
        (0, 4, 12, "height is 0"),
        (16385, 1, 3, "height is 16385, outside [1, 16384]"),
        (10_000, 10_000, 30_000, "more than 40000000 pixels"),
        (1, 4, 12 + 4097, "step is 4109, outside [0, 4108]"),
    ],
)
def test_sizes_from_the_header_are_bounded_before_anything_is_allocated(
    height: int, width: int, step: int, field: str
) -> None:
    with pytest.raises(ImageLayoutError, match=re.escape(field)):
        decode_image(b"", height, width, encoding="rgb8", step=step, is_bigendian=False)


# --- decode: errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["yuv422", "bayer_rggb8", "16UC1", ""])
def test_unsupported_encoding_names_it_and_lists_supported(bad: str) -> None:
    with pytest.raises(ImageEncodingError) as excinfo:
        decode_image(b"\x00" * 16, 2, 2, bad, step=8, is_bigendian=False)
    message = str(excinfo.value)
    assert repr(bad) in message
    for name in SUPPORTED_ENCODINGS:
        assert name in message


def test_encoding_is_case_sensitive_with_hint() -> None:
    with pytest.raises(ImageEncodingError, match=r"'RGB8'.*did you mean 'rgb8'"):
        decode_image(b"\x00" * 3, 1, 1, "RGB8", step=3, is_bigendian=False)


def test_data_too_short() -> None:
    with pytest.raises(ImageLayoutError) as excinfo:
        decode_image(b"\x00" * 25, height=2, width=3, encoding="rgb8", step=13, is_bigendian=False)
    message = str(excinfo.value)
    assert "25" in message
    assert "26" in message


def test_step_smaller_than_row() -> None:
    with pytest.raises(ImageLayoutError) as excinfo:
        decode_image(b"\x00" * 64, height=2, width=3, encoding="rgba8", step=11, is_bigendian=False)
    message = str(excinfo.value)
    assert "11" in message
    assert "12" in message


def test_step_not_multiple_of_itemsize() -> None:
    with pytest.raises(ImageLayoutError, match="step 10 is not a multiple of the 4-byte"):
        decode_image(b"\x00" * 40, height=2, width=2, encoding="32FC1", step=10, is_bigendian=True)


def test_negative_dimension() -> None:
    with pytest.raises(ImageLayoutError, match="height is -1"):
        decode_image(b"", height=-1, width=2, encoding="mono8", step=2, is_bigendian=False)


def test_non_uint8_data_array_is_rejected() -> None:
    with pytest.raises(TypeError, match="float32"):
        decode_image(np.zeros(4, np.float32), 1, 1, "32FC1", step=4, is_bigendian=False)


# --- encode -----------------------------------------------------------------------------------


def test_encode_rgb8_is_tightly_packed_row_major() -> None:
    image = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    data, step = encode_image(image, "rgb8")
    assert step == 9
    assert data == bytes(range(18))


def test_encode_32fc1_is_little_endian() -> None:
    data, step = encode_image(np.array([[1.0, -0.5]], dtype=np.float32), "32FC1")
    assert step == 8
    assert data == struct.pack("<2f", 1.0, -0.5)


def test_encode_big_endian_float32_array_is_written_little_endian() -> None:
    data, _ = encode_image(np.array([[3.25]], dtype=">f4"), "32FC1")
    assert data == struct.pack("<f", 3.25)


def test_encode_non_contiguous_array() -> None:
    image = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)[:, ::2]  # every other column
    data, step = encode_image(image, "bgr8")
    assert step == 6
    assert data == image.copy().tobytes()


@pytest.mark.parametrize(
    ("encoding", "array", "expected_fragment"),
    [
        ("rgb8", np.zeros((2, 2, 3), np.float64), "needs dtype uint8, got float64"),
        ("32FC1", np.zeros((2, 2), np.float64), "needs dtype float32, got float64"),
        ("mono8", np.zeros((2, 2), np.int8), "needs dtype uint8, got int8"),
        ("rgb8", np.zeros((2, 2), np.uint8), r"needs shape \(H, W, 3\), got shape \(2, 2\)"),
        ("rgb8", np.zeros((2, 2, 4), np.uint8), r"needs shape \(H, W, 3\), got shape \(2, 2, 4\)"),
        ("mono8", np.zeros((2, 2, 1), np.uint8), r"needs shape \(H, W\), got shape \(2, 2, 1\)"),
    ],
)
def test_encode_rejects_wrong_dtype_or_shape(
    encoding: str, array: np.ndarray, expected_fragment: str
) -> None:
    with pytest.raises(ImageLayoutError, match=expected_fragment):
        encode_image(array, encoding)


def test_encode_unsupported_encoding() -> None:
    with pytest.raises(ImageEncodingError, match="'16UC1'"):
        encode_image(np.zeros((2, 2), np.uint16), "16UC1")


# --- round trips ------------------------------------------------------------------------------


@st.composite
def image_for_encoding(draw: st.DrawFn, encoding: str) -> np.ndarray:
    spec = SUPPORTED_ENCODINGS[encoding]
    height = draw(st.integers(1, 5))
    width = draw(st.integers(1, 5))
    elements = (
        st.floats(width=32, allow_nan=True, allow_infinity=True)
        if spec.dtype == np.float32
        else None
    )
    return draw(hnp.arrays(spec.dtype, spec.array_shape(height, width), elements=elements))


@pytest.mark.parametrize("encoding", list(SUPPORTED_ENCODINGS))
@settings(max_examples=40, deadline=None)
@given(data=st.data(), padding=st.integers(0, 3))
def test_round_trip_with_padding(encoding: str, data: st.DataObject, padding: int) -> None:
    image = data.draw(image_for_encoding(encoding))
    encoded, step = encode_image(image, encoding)
    height = image.shape[0]
    assert len(encoded) == height * step

    # Add per-row padding (whole samples, so the step stays valid) to exercise stride handling.
    pad_bytes = padding * SUPPORTED_ENCODINGS[encoding].dtype.itemsize
    rows = [encoded[row * step : (row + 1) * step] for row in range(height)]
    decoded = decode_image(
        padded_rows(rows, pad_bytes), height, image.shape[1], encoding, step + pad_bytes, False
    )

    assert decoded.dtype == image.dtype
    assert decoded.shape == image.shape
    np.testing.assert_array_equal(decoded, image)  # NaNs compare equal at equal positions


@settings(max_examples=40, deadline=None)
@given(
    depth=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, max_side=5),
        elements=st.floats(width=32),
    )
)
def test_32fc1_big_endian_round_trip(depth: np.ndarray) -> None:
    big_endian = depth.astype(">f4").tobytes()
    decoded = decode_image(big_endian, *depth.shape, "32FC1", depth.shape[1] * 4, True)
    np.testing.assert_array_equal(decoded, depth)


# --- to_rgb8 ----------------------------------------------------------------------------------


def test_to_rgb8_from_bgr8_swaps_channels() -> None:
    bgr = np.array([[[10, 20, 30], [40, 50, 60]]], dtype=np.uint8)
    rgb = to_rgb8(bgr, "bgr8")
    np.testing.assert_array_equal(rgb, [[[30, 20, 10], [60, 50, 40]]])


def test_to_rgb8_from_bgra8_swaps_and_drops_alpha() -> None:
    bgra = np.array([[[10, 20, 30, 255], [40, 50, 60, 7]]], dtype=np.uint8)
    rgb = to_rgb8(bgra, "bgra8")
    np.testing.assert_array_equal(rgb, [[[30, 20, 10], [60, 50, 40]]])


def test_to_rgb8_from_rgba8_drops_alpha() -> None:
    rgba = np.array([[[10, 20, 30, 255], [40, 50, 60, 7]]], dtype=np.uint8)
    rgb = to_rgb8(rgba, "rgba8")
    np.testing.assert_array_equal(rgb, [[[10, 20, 30], [40, 50, 60]]])


def test_to_rgb8_from_mono8_replicates() -> None:
    mono = np.array([[0, 128], [200, 255]], dtype=np.uint8)
    rgb = to_rgb8(mono, "mono8")
    assert rgb.shape == (2, 2, 3)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], mono)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_to_rgb8_returns_new_contiguous_writable_array(encoding: str) -> None:
    spec = SUPPORTED_ENCODINGS[encoding]
    raw = bytes(range(2 * 3 * spec.channels))
    decoded = decode_image(raw, 2, 3, encoding, step=3 * spec.channels, is_bigendian=False)
    rgb = to_rgb8(decoded, encoding)
    assert rgb.shape == (2, 3, 3)
    assert rgb.dtype == np.uint8
    assert rgb.flags.c_contiguous
    assert rgb.flags.writeable
    assert not np.shares_memory(rgb, decoded)


def test_to_rgb8_of_decoded_bgr8_message() -> None:
    # One blue pixel then one red pixel, as a bgr8 camera sends them.
    data = bytes([255, 0, 0, 0, 0, 255])
    decoded = decode_image(data, 1, 2, "bgr8", step=6, is_bigendian=False)
    rgb = to_rgb8(decoded, "bgr8")
    assert rgb[0, 0].tolist() == [0, 0, 255]  # blue
    assert rgb[0, 1].tolist() == [255, 0, 0]  # red


def test_to_rgb8_refuses_32fc1() -> None:
    with pytest.raises(ImageEncodingError, match=r"32FC1.*not a camera image"):
        to_rgb8(np.zeros((2, 2), np.float32), "32FC1")


def test_to_rgb8_checks_shape_against_encoding() -> None:
    with pytest.raises(ImageLayoutError, match=r"\(H, W, 4\)"):
        to_rgb8(np.zeros((2, 2, 3), np.uint8), "bgra8")
