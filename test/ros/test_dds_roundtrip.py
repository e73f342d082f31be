"""Proof that the ROS layer is real: arrays cross Fast DDS between two processes unchanged."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import rclpy
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from sample_publisher import FRAME_ID, STAMP, sample_arrays  # test/ros is on sys.path
from sensor_msgs.msg import Image

from soundloc_ros.ros.conversions import audio_to_numpy, image_to_numpy, stream_format_from_info

PUBLISHER = Path(__file__).with_name("sample_publisher.py")


def test_image_and_audio_round_trip_over_fast_dds(ros_context, spin_until, tmp_path):
    received: dict[str, object] = {}
    node = rclpy.create_node("receiver", context=ros_context)
    node.create_subscription(
        Image, "camera/image_raw", lambda m: received.setdefault("image", m), 10
    )
    node.create_subscription(
        AudioDataStamped, "audio", lambda m: received.setdefault("audio", m), 10
    )
    node.create_subscription(AudioInfo, "audio_info", lambda m: received.setdefault("info", m), 10)

    log = (tmp_path / "publisher.log").open("w")
    publisher = subprocess.Popen(
        [sys.executable, str(PUBLISHER)], cwd=Path(__file__).parents[2], stdout=log, stderr=log
    )
    try:
        got_all = spin_until([node], lambda: len(received) == 3, timeout_s=30.0)
    finally:
        publisher.terminate()
        publisher.wait(timeout=10)
        node.destroy_node()
    assert got_all, (
        f"missing { ({'image', 'audio', 'info'} - set(received)) }; publisher log: "
        + (tmp_path / "publisher.log").read_text()
    )

    expected_image, expected_audio = sample_arrays()
    image_msg, audio_msg = received["image"], received["audio"]
    np.testing.assert_array_equal(image_to_numpy(image_msg), expected_image)
    stream = stream_format_from_info(received["info"])
    assert (stream.sample_rate, stream.channels, stream.sample_format) == (16000, 2, "S16LE")
    np.testing.assert_array_equal(audio_to_numpy(audio_msg, stream), expected_audio)
    for msg in (image_msg, audio_msg):
        assert msg.header.frame_id == FRAME_ID
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == STAMP
