"""Fuzzing every decoder that reads bytes from outside: a hostile input is refused with the
module's own error type (a ValueError subclass that names the field), never a crash, a hang or
a large allocation. Bounded so that the whole file runs in about a minute."""

from __future__ import annotations

import contextlib
import io
import json
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from tiny_bundle import tiny_bundle_spec

from soundloc_ros.core.backends.engine_cache import EngineKey, pack_engine, unpack_engine
from soundloc_ros.core.bundle import BundleError, parse_bundle
from soundloc_ros.core.image_codec import (
    MAX_IMAGE_PIXELS,
    SUPPORTED_ENCODINGS,
    ImageEncodingError,
    ImageLayoutError,
    decode_compressed,
    decode_image,
)
from soundloc_ros.core.pcm import (
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    SUPPORTED_SAMPLE_FORMATS,
    AudioStreamFormat,
    PcmFormatError,
    decode_chunk,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
huge = st.integers(-(2**40), 2**40) | st.sampled_from([0, 1, 2**29, 2**31 - 1, 2**32 - 1])
small_bytes = st.binary(max_size=256)


def flip(data: bytes, positions: list[int], values: list[int]) -> bytes:
    """`data` with some bytes overwritten (positions taken modulo its length)."""
    mutated = bytearray(data)
    for position, value in zip(positions, values, strict=False):
        mutated[position % len(mutated)] = value
    return bytes(mutated)


mutations = st.tuples(
    st.lists(st.integers(0, 2**16), max_size=8), st.lists(st.integers(0, 255), max_size=8)
)


@FUZZ
@given(
    data=small_bytes,
    height=huge,
    width=huge,
    step=huge,
    encoding=st.sampled_from([*SUPPORTED_ENCODINGS, "yuv422", "", "RGB8"]),
    big_endian=st.booleans(),
)
def test_raw_images(data, height, width, step, encoding, big_endian):
    try:
        image = decode_image(data, height, width, encoding, step, big_endian)
    except (ImageEncodingError, ImageLayoutError):
        return
    assert image.shape[:2] == (height, width) and height * width <= MAX_IMAGE_PIXELS
    assert image.nbytes <= len(data)  # a view on the message: nothing was allocated from sizes


@FUZZ
@given(
    data=st.binary(max_size=4096),
    sample_format=st.sampled_from(list(SUPPORTED_SAMPLE_FORMATS)),
    channels=st.integers(1, MAX_CHANNELS),
    sample_rate=st.integers(1, 400),
)
def test_audio_chunks(data, sample_format, channels, sample_rate):
    stream = AudioStreamFormat(sample_rate, channels, sample_format)
    try:
        mono = decode_chunk(data, stream)
    except PcmFormatError:
        return
    assert mono.dtype == np.float32 and mono.ndim == 1
    assert len(mono) <= stream.max_chunk_frames and np.isfinite(mono).all()


@FUZZ
@given(
    coding=st.sampled_from(["wave", "WAVE ", "mp3", "", "\x00"]),
    sample_format=st.text(max_size=8) | st.sampled_from(list(SUPPORTED_SAMPLE_FORMATS)),
    channels=huge,
    sample_rate=huge,
)
def test_audio_info(coding, sample_format, channels, sample_rate):
    try:
        stream = AudioStreamFormat.from_info(coding, sample_format, channels, sample_rate)
    except PcmFormatError:
        return
    assert 1 <= stream.channels <= MAX_CHANNELS and 1 <= stream.sample_rate <= MAX_SAMPLE_RATE


def compressed(codec: str, mode: str) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (12, 16, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, codec.upper())
    return buffer.getvalue()


VALID_COMPRESSED = {(c, m): compressed(c, m) for c in ("jpeg", "png") for m in ("RGB", "L")}


@pytest.mark.parametrize(("codec", "mode"), list(VALID_COMPRESSED))
def test_valid_compressed_images_decode(codec, mode):
    image, encoding = decode_compressed(VALID_COMPRESSED[codec, mode], f"bgr8; {codec} compressed")
    assert image.shape[:2] == (12, 16) and encoding == ("mono8" if mode == "L" else "rgb8")


@FUZZ
@given(
    source=st.sampled_from(list(VALID_COMPRESSED)),
    mutation=mutations,
    garbage=small_bytes,
    use_garbage=st.booleans(),
    format_field=st.sampled_from(["jpeg", "png", "rgb8; jpeg compressed bgr8", "tiff", ""]),
)
def test_compressed_images(source, mutation, garbage, use_garbage, format_field):
    data = garbage if use_garbage else flip(VALID_COMPRESSED[source], *mutation)
    try:
        image, encoding = decode_compressed(data, format_field)
    except (ImageEncodingError, ImageLayoutError):
        return
    assert encoding in ("rgb8", "mono8") and image.size <= MAX_IMAGE_PIXELS * 3


def test_a_small_png_claiming_a_huge_image_is_refused_before_decoding():
    data = bytearray(VALID_COMPRESSED["png", "RGB"])
    data[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR width and height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # a valid chunk again
    with pytest.raises(ImageLayoutError, match="outside|claims more than"):
        decode_compressed(bytes(data), "png")


def containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
json_values = st.recursive(scalars, containers, max_leaves=20)
VALID_BUNDLE = tiny_bundle_spec().to_dict()
VALID_BUNDLE["model"]["sha256"] = "0" * 64


def replaced_at(values, path: list[str], new):
    """A deep copy of `values` with the value at `path` (keys, or list indices) replaced."""
    copied = json.loads(json.dumps(values))
    node = copied
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return copied


def leaf_paths(values, prefix=()):
    if isinstance(values, dict):
        for key, value in values.items():
            yield from leaf_paths(value, (*prefix, key))
    elif isinstance(values, list):
        for index, value in enumerate(values):
            yield from leaf_paths(value, (*prefix, index))
    if prefix:
        yield prefix


PATHS = sorted(set(leaf_paths(VALID_BUNDLE)), key=str)


@FUZZ
@given(path=st.sampled_from(PATHS), new=json_values)
def test_bundle_json_with_one_field_replaced(path, new):
    with contextlib.suppress(BundleError):  # a valid bundle is fine too: no other error
        parse_bundle(replaced_at(VALID_BUNDLE, list(path), new))


@FUZZ
@given(values=json_values)
def test_bundle_json_of_any_shape(values):
    with pytest.raises(BundleError):
        parse_bundle(values)


KEY = EngineKey("ab" * 32, "10.3.0", "Orin", "8.7", "fp16")
PACKED = pack_engine(KEY, b"plan" * 16)


@FUZZ
@given(mutation=mutations, garbage=st.binary(max_size=512), use_garbage=st.booleans())
def test_engine_cache_headers(mutation, garbage, use_garbage):
    data = garbage if use_garbage else flip(PACKED, *mutation)
    try:
        plan = unpack_engine(data, KEY)
    except ValueError:
        return
    assert plan == b"plan" * 16  # only an intact file yields a plan
