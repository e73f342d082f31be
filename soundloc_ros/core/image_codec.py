"""Raw `sensor_msgs/Image` bytes <-> numpy arrays, without ROS.

The ROS wrapper passes the message fields (data, height, width, encoding, step, is_bigendian) in,
so this module can be tested without rclpy or cv_bridge; cv_bridge is avoided because its OpenCV
build often clashes with the one pip installs next to PyTorch.

Choices, and why:
- Only the encodings a camera driver or depth pipeline commonly publishes are supported; anything
  else (Bayer, YUV, 16-bit) is refused with a message saying what to configure, rather than
  guessed at.
- Decoding is zero-copy where possible (a strided view on the message buffer), because images
  arrive at frame rate; the result may therefore be read-only. 32FC1 data in non-native byte
  order is converted (one copy) so downstream code never sees a byte-swapped dtype.
- Encoding always produces tightly packed little-endian data (is_bigendian=False), the layout every
  ROS 2 consumer handles.
"""

from __future__ import annotations

import array as py_array
import io
import operator
import types
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image as PilImage

ImageBuffer = bytes | bytearray | memoryview | py_array.array | np.ndarray


@dataclass(frozen=True)
class ImageEncodingSpec:
    """How one `sensor_msgs/Image` encoding lays out a pixel."""

    name: str
    channels: int
    dtype: np.dtype

    @property
    def bytes_per_pixel(self) -> int:
        """Bytes one pixel occupies in a tightly packed row."""
        return self.channels * self.dtype.itemsize

    def array_shape(self, height: int, width: int) -> tuple[int, ...]:
        """Shape of the decoded array: single-channel images drop the channel axis."""
        if self.channels == 1:
            return (height, width)
        return (height, width, self.channels)


def _spec(name: str, channels: int, dtype: type) -> tuple[str, ImageEncodingSpec]:
    return name, ImageEncodingSpec(name=name, channels=channels, dtype=np.dtype(dtype))


SUPPORTED_ENCODINGS: Mapping[str, ImageEncodingSpec] = types.MappingProxyType(
    dict(
        [
            _spec("rgb8", 3, np.uint8),
            _spec("bgr8", 3, np.uint8),
            _spec("rgba8", 4, np.uint8),
            _spec("bgra8", 4, np.uint8),
            _spec("mono8", 1, np.uint8),
            _spec("32FC1", 1, np.float32),
        ]
    )
)
"""Encodings this module reads and writes, by their exact `sensor_msgs/Image` name."""


class ImageEncodingError(ValueError):
    """The image encoding is not one this module supports (or not usable for the operation)."""


class ImageLayoutError(ValueError):
    """The image's size, row step, data length, shape or dtype do not agree with each other."""


def get_encoding_spec(encoding: str) -> ImageEncodingSpec:
    """Look up an encoding; names are case-sensitive, as in ROS, but a case slip gets a hint."""
    spec = SUPPORTED_ENCODINGS.get(encoding) if isinstance(encoding, str) else None
    if spec is not None:
        return spec
    supported = ", ".join(SUPPORTED_ENCODINGS)
    hint = ""
    if isinstance(encoding, str):
        same_but_case = [name for name in SUPPORTED_ENCODINGS if name.lower() == encoding.lower()]
        if same_but_case:
            hint = f" (encoding names are case-sensitive: did you mean {same_but_case[0]!r}?)"
    raise ImageEncodingError(
        f"unsupported image encoding {encoding!r}{hint}; supported encodings are: {supported}. "
        "Configure the camera driver to publish one of them (e.g. rgb8 or bgr8), or convert the "
        "stream (e.g. debayer / image_proc) before it reaches this node."
    )


def _as_byte_array(data: ImageBuffer) -> np.ndarray:
    """A flat uint8 view of the message bytes (rclpy gives `uint8[]` fields as array.array)."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise TypeError(
                f"image data must be raw bytes (a uint8 array), got an array of dtype {data.dtype}"
            )
        return np.ascontiguousarray(data).reshape(-1)
    return np.frombuffer(data, dtype=np.uint8)


MAX_IMAGE_SIDE = 16384  # beyond any camera a robot carries (8K video is 7680 wide)
MAX_IMAGE_PIXELS = 40_000_000  # 8K video is 33 million
MAX_ROW_PADDING = 4096  # bytes a row may carry beyond its pixels (alignment padding)


def _field(value: int, what: str, low: int, high: int) -> int:
    index = operator.index(value)
    if not low <= index <= high:
        raise ImageLayoutError(
            f"image {what} is {index}, outside [{low}, {high}]; the publisher sends a broken "
            "image header (check the camera driver)"
        )
    return index


def check_image_size(height: int, width: int) -> tuple[int, int]:
    """Height and width of an image header, bounded before any buffer is sized from them."""
    height = _field(height, "height", 1, MAX_IMAGE_SIDE)
    width = _field(width, "width", 1, MAX_IMAGE_SIDE)
    if height * width > MAX_IMAGE_PIXELS:
        raise ImageLayoutError(
            f"image of {width}x{height} has more than {MAX_IMAGE_PIXELS} pixels; publish a "
            "smaller image (e.g. through image_proc's resize) for sound localization"
        )
    return height, width


def decode_image(
    data: ImageBuffer,
    height: int,
    width: int,
    encoding: str,
    step: int,
    is_bigendian: bool,
) -> np.ndarray:
    """Decode `sensor_msgs/Image` data into an (H, W, C) array, or (H, W) for mono8 / 32FC1.

    Bytes beyond width × bytes-per-pixel in each row (step padding) are skipped. The result is in
    native byte order and may be a read-only view on `data`; copy it if you need to write to it.
    """
    spec = get_encoding_spec(encoding)
    height, width = check_image_size(height, width)
    itemsize = spec.dtype.itemsize
    row_bytes = width * spec.bytes_per_pixel
    step = _field(step, "step", 0, row_bytes + MAX_ROW_PADDING)
    if step < row_bytes:
        raise ImageLayoutError(
            f"{encoding} image step {step} is smaller than one row of pixels: width {width} × "
            f"{spec.channels} channel(s) × {itemsize} byte(s) = {row_bytes} bytes"
        )
    if step % itemsize != 0:
        raise ImageLayoutError(
            f"{encoding} image step {step} is not a multiple of the {itemsize}-byte sample size, "
            "so rows would start mid-sample; check the publisher's step field"
        )
    byte_array = _as_byte_array(data)
    needed = height * step
    if byte_array.size < needed:
        raise ImageLayoutError(
            f"{encoding} image data has {byte_array.size} bytes, but height {height} × step "
            f"{step} needs {needed}"
        )

    wire_order = ">" if is_bigendian else "<"
    wire_dtype = spec.dtype.newbyteorder(wire_order) if itemsize > 1 else spec.dtype
    shape = spec.array_shape(height, width)
    strides = (step, spec.bytes_per_pixel, itemsize)[: len(shape)]
    # A strided view straight onto the message buffer: no copy, padding bytes are never read.
    image = np.ndarray(shape=shape, dtype=wire_dtype, buffer=byte_array[:needed], strides=strides)
    if not image.dtype.isnative:
        image = image.astype(wire_dtype.newbyteorder("="))
    return image


def _check_array_layout(image: np.ndarray, spec: ImageEncodingSpec) -> None:
    """Raise ImageLayoutError unless `image` has exactly the shape and dtype `spec` decodes to."""
    if not isinstance(image, np.ndarray):
        raise ImageLayoutError(
            f"{spec.name} image must be a numpy array, got {type(image).__name__}"
        )
    if image.dtype.kind != spec.dtype.kind or image.dtype.itemsize != spec.dtype.itemsize:
        raise ImageLayoutError(
            f"{spec.name} image needs dtype {spec.dtype}, got {image.dtype}; convert it explicitly "
            f"(e.g. array.astype(np.{spec.dtype})) after checking the value range"
        )
    wanted = "(H, W)" if spec.channels == 1 else f"(H, W, {spec.channels})"
    if image.ndim != len(spec.array_shape(0, 0)) or (
        spec.channels > 1 and image.shape[2] != spec.channels
    ):
        raise ImageLayoutError(f"{spec.name} image needs shape {wanted}, got shape {image.shape}")


def encode_image(array: np.ndarray, encoding: str) -> tuple[bytes, int]:
    """Encode an array as tightly packed little-endian `sensor_msgs/Image` data.

    Returns (data, step); publish with is_bigendian=False. The dtype must match the encoding
    exactly (uint8, or float32 for 32FC1): silently casting would hide range mistakes.
    """
    spec = get_encoding_spec(encoding)
    _check_array_layout(array, spec)
    step = array.shape[1] * spec.bytes_per_pixel
    little_endian = spec.dtype.newbyteorder("<")
    data = np.ascontiguousarray(array, dtype=little_endian).tobytes()
    return data, step


def camera_encoding_spec(encoding: str) -> ImageEncodingSpec:
    """The spec of an 8-bit camera encoding; float images (depth) are refused with the reason."""
    spec = get_encoding_spec(encoding)
    if spec.dtype != np.uint8:
        raise ImageEncodingError(
            f"{encoding} is a single-channel float image (e.g. depth), not a camera image, and "
            "has no RGB form; subscribe to the colour camera topic instead"
        )
    return spec


def to_rgb8(array: np.ndarray, encoding: str) -> np.ndarray:
    """Convert a decoded 8-bit camera image to a new contiguous (H, W, 3) uint8 RGB array.

    Always returns a fresh, writable array (even for rgb8), because decoded images may be
    read-only views on a message buffer.
    """
    spec = camera_encoding_spec(encoding)
    _check_array_layout(array, spec)
    if encoding == "rgb8":
        rgb = array
    elif encoding == "rgba8":
        rgb = array[..., :3]
    elif encoding in ("bgr8", "bgra8"):
        rgb = array[..., 2::-1]
    elif encoding == "mono8":
        rgb = np.broadcast_to(array[..., np.newaxis], (*array.shape, 3))
    else:  # pragma: no cover - guards against adding an encoding without a conversion
        raise ImageEncodingError(f"no RGB conversion is implemented for {encoding!r}")
    return np.array(rgb, dtype=np.uint8, order="C", copy=True)


COMPRESSED_FORMATS = {"jpeg": "JPEG", "png": "PNG"}  # image_transport's names -> Pillow's
MAX_COMPRESSED_BYTES = 64 << 20


def compression_of(format_field: str) -> str:
    """The codec named by a CompressedImage `format`: 'jpeg', 'png', or image_transport's
    'bgr8; jpeg compressed bgr8' form; ImageEncodingError for anything else."""
    codec = format_field.split(";")[-1].strip().split(" ")[0].lower() if format_field else ""
    codec = "jpeg" if codec == "jpg" else codec
    if codec not in COMPRESSED_FORMATS:
        raise ImageEncodingError(
            f"compressed image format {format_field!r} is not jpeg or png; publish the "
            "image_transport 'compressed' stream (jpeg/png), or the raw image"
        )
    return codec


def decode_compressed(data: ImageBuffer, format_field: str) -> tuple[np.ndarray, str]:
    """A `sensor_msgs/CompressedImage` -> (array, 'rgb8' or 'mono8').

    The header's width and height are bounded (check_image_size) before the pixels are
    decoded, so a small file that claims a huge image cannot allocate it.
    """
    codec = compression_of(format_field)
    raw = _as_byte_array(data)
    if raw.size > MAX_COMPRESSED_BYTES:
        raise ImageLayoutError(
            f"compressed image of {raw.size} bytes is over the {MAX_COMPRESSED_BYTES}-byte limit"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PilImage.DecompressionBombWarning)
            picture = PilImage.open(io.BytesIO(raw.tobytes()), formats=[COMPRESSED_FORMATS[codec]])
            check_image_size(picture.height, picture.width)
            picture.load()
    except ImageLayoutError:
        raise
    except (PilImage.DecompressionBombError, PilImage.DecompressionBombWarning):
        raise ImageLayoutError(
            f"{codec} image header claims more than {MAX_IMAGE_PIXELS} pixels; the publisher "
            "sends a broken or hostile image"
        ) from None
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, bomb errors
        raise ImageLayoutError(
            f"{codec} image does not decode ({type(error).__name__}: {error}); check the "
            "publisher's compressed stream"
        ) from None
    if picture.mode == "L":
        return np.asarray(picture), "mono8"
    if picture.mode not in ("RGB", "RGBA", "P", "LA", "CMYK", "YCbCr", "1"):
        raise ImageEncodingError(
            f"{codec} image of mode {picture.mode} (e.g. 16-bit) is not a camera image; "
            "publish 8-bit colour or grey"
        )
    return np.asarray(picture.convert("RGB")), "rgb8"
