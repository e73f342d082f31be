"""sensor_msgs/Image and audio_common_msgs audio messages <-> numpy.

Only field plumbing lives here; the byte layouts are decoded by `soundloc_ros.core.image_codec`
and `soundloc_ros.core.pcm`, which are tested without ROS.
"""

from __future__ import annotations

import numpy as np
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from soundloc_ros.core.image_codec import decode_image, encode_image
from soundloc_ros.core.pcm import AudioStreamFormat, decode_pcm, encode_pcm


def image_to_numpy(msg: Image) -> np.ndarray:
    """(H, W, C) or (H, W) array in the encoding's dtype; may be a read-only view of msg.data."""
    return decode_image(
        msg.data, msg.height, msg.width, msg.encoding, msg.step, bool(msg.is_bigendian)
    )


def numpy_to_image(array: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    data, step = encode_image(array, encoding)
    msg = Image(header=header or Header(), encoding=encoding, is_bigendian=0, step=step)
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.data = data
    return msg


def stream_format_from_info(info: AudioInfo) -> AudioStreamFormat:
    return AudioStreamFormat.from_info(
        info.coding_format, info.sample_format, int(info.channels), int(info.sample_rate)
    )


def info_from_stream_format(stream: AudioStreamFormat) -> AudioInfo:
    return AudioInfo(
        channels=stream.channels,
        sample_rate=stream.sample_rate,
        sample_format=stream.sample_format,
        bitrate=stream.bytes_per_frame * 8 * stream.sample_rate,
        coding_format="wave",
    )


def audio_to_numpy(msg: AudioDataStamped | AudioData, stream: AudioStreamFormat) -> np.ndarray:
    """(n_frames, channels) samples in the stream's native dtype (see core.pcm.pcm_to_float)."""
    data = msg.audio.data if isinstance(msg, AudioDataStamped) else msg.data
    return decode_pcm(data, stream.sample_format, stream.channels)


def numpy_to_audio(
    samples: np.ndarray, stream: AudioStreamFormat, header: Header | None = None
) -> AudioDataStamped:
    """Interleave (n_frames, channels) native-dtype samples; header.stamp = first sample's time."""
    if samples.ndim == 2 and samples.shape[1] != stream.channels:
        raise ValueError(
            f"samples have {samples.shape[1]} channels but the stream announces {stream.channels}"
        )
    msg = AudioDataStamped(header=header or Header())
    msg.audio.data = encode_pcm(samples, stream.sample_format)
    return msg
