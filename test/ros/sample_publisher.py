"""A separate process that publishes a known Image and AudioDataStamped until stopped.

Run as a script by test_dds_roundtrip.py so the messages cross a real Fast DDS transport
between two processes. The expected arrays come from `sample_arrays`, shared with the test.
"""

import sys

import numpy as np

FRAME_ID = "camera_optical_frame"
STAMP = (1_700_000_000, 123_456_789)
SAMPLE_RATE = 16000


def sample_arrays() -> tuple[np.ndarray, np.ndarray]:
    """A 48x64 bgr8 frame and 0.1 s of stereo S16LE audio with full-scale extremes."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    audio = rng.integers(-32768, 32768, (1600, 2), dtype=np.int16)
    audio[0] = (-32768, 32767)
    return image, audio


def main(lifetime_s: float = 60.0) -> None:
    """Publish every 50 ms until killed or `lifetime_s` has passed (never runs on forever)."""
    import time

    import rclpy
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from soundloc_ros.core.pcm import AudioStreamFormat
    from soundloc_ros.ros.conversions import info_from_stream_format, numpy_to_audio, numpy_to_image

    rclpy.init()
    node = rclpy.create_node("sample_publisher")
    image_pub = node.create_publisher(Image, "camera/image_raw", 10)
    audio_pub = node.create_publisher(AudioDataStamped, "audio", 10)
    info_pub = node.create_publisher(AudioInfo, "audio_info", 10)
    image, audio = sample_arrays()
    stream = AudioStreamFormat(sample_rate=SAMPLE_RATE, channels=2, sample_format="S16LE")
    header = Header(frame_id=FRAME_ID)
    header.stamp.sec, header.stamp.nanosec = STAMP

    def publish() -> None:
        image_pub.publish(numpy_to_image(image, "bgr8", header))
        audio_pub.publish(numpy_to_audio(audio, stream, header))
        info_pub.publish(info_from_stream_format(stream))

    node.create_timer(0.05, publish)
    deadline = time.monotonic() + lifetime_s
    try:
        while time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
