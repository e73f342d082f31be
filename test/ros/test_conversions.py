"""Message <-> numpy conversions on real message objects (no transport)."""

import numpy as np
import pytest
from audio_common_msgs.msg import AudioData, AudioInfo
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from soundloc_ros.core.image_codec import ImageEncodingError
from soundloc_ros.core.pcm import AudioStreamFormat, PcmFormatError
from soundloc_ros.ros.conversions import (
    audio_to_numpy,
    image_to_numpy,
    info_from_stream_format,
    numpy_to_audio,
    numpy_to_image,
    stream_format_from_info,
)


def test_padded_rgba_image_from_a_driver_decodes_without_the_padding():
    msg = Image(height=2, width=2, encoding="rgba8", step=12)  # 8 bytes of pixels + 4 padding
    rows = [bytes(range(1, 9)) + b"\xee" * 4, bytes(range(11, 19)) + b"\xee" * 4]
    msg.data = b"".join(rows)
    out = image_to_numpy(msg)
    assert out.shape == (2, 2, 4)
    np.testing.assert_array_equal(out[1, 1], [15, 16, 17, 18])
    assert 0xEE not in out


def test_big_endian_float_heatmap_is_read_in_native_order():
    values = np.array([[0.25, 1.0], [0.0, 0.5]], dtype=">f4")
    msg = Image(height=2, width=2, encoding="32FC1", step=8, is_bigendian=1)
    msg.data = values.tobytes()
    np.testing.assert_array_equal(image_to_numpy(msg), values.astype(np.float32))


def test_image_keeps_header_and_rejects_unknown_encoding():
    header = Header(frame_id="cam")
    msg = numpy_to_image(np.zeros((3, 4), np.float32), "32FC1", header)
    assert (msg.height, msg.width, msg.step, msg.header.frame_id) == (3, 4, 16, "cam")
    msg.encoding = "yuv422"
    with pytest.raises(ImageEncodingError, match="yuv422"):
        image_to_numpy(msg)


def test_mp3_stream_is_refused_with_the_fix():
    info = AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE", coding_format="mp3")
    with pytest.raises(PcmFormatError, match=r"'mp3'.*format:=wave"):
        stream_format_from_info(info)


def test_info_round_trip_and_bitrate():
    stream = AudioStreamFormat(sample_rate=48000, channels=4, sample_format="S32LE")
    info = info_from_stream_format(stream)
    assert info.bitrate == 48000 * 4 * 32 and info.coding_format == "wave"
    assert stream_format_from_info(info) == stream


def test_audio_of_odd_byte_count_is_refused():
    stream = AudioStreamFormat(sample_rate=16000, channels=2, sample_format="S16LE")
    with pytest.raises(PcmFormatError, match="6"):
        audio_to_numpy(AudioData(data=bytes(6)), stream)  # 6 bytes: 1.5 stereo S16 frames
    with pytest.raises(ValueError, match="3 channels"):
        numpy_to_audio(np.zeros((4, 3), np.int16), stream)
