"""soundloc_node against the drivers a robot runs, over real DDS (tiny bundle, ONNX Runtime).

ros-drivers audio_capture's AudioInfo in both durabilities, image_transport's compressed
topics, publishers of the wrong type on an input topic, and simulated time (use_sim_time with
and without /clock)."""

import io
import shutil
import time

import numpy as np
import pytest
import rclpy
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray
from PIL import Image as PilImage
from rclpy.context import Context
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image

from soundloc_ros.core.pcm import AudioStreamFormat, float_to_pcm
from soundloc_ros.ros.conversions import image_to_numpy, info_from_stream_format, numpy_to_audio
from soundloc_ros.ros.localizer_node import LocalizerNode
from soundloc_ros.ros.playback import header_at

RATE, T0 = 16000, 1_700_000_000.0
STREAM = AudioStreamFormat(sample_rate=RATE, channels=1, sample_format="S16LE")
MP3 = AudioInfo(channels=1, sample_rate=RATE, sample_format="S16LE", coding_format="mp3")


def qos(durability: DurabilityPolicy) -> QoSProfile:
    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=durability)


def localizer(ros_context, bundle, *parameters, cli=()) -> LocalizerNode:
    return LocalizerNode(
        context=ros_context,
        cli_args=["--ros-args", *cli] if cli else None,
        parameter_overrides=[
            Parameter("bundle", value=str(bundle)),
            Parameter("backend", value="onnxruntime"),
            Parameter("input_qos", value="reliable"),
            Parameter("diagnostics_period", value=0.2),
            *parameters,
        ],
    )


def publish_audio(publisher, start_s: float, seconds: float, chunk: int = 1600) -> None:
    """A 440 Hz tone from `start_s`, in chunks stamped with their first sample."""
    t = np.arange(int(seconds * RATE)) / RATE
    pcm = float_to_pcm((0.3 * np.sin(2 * np.pi * 440 * t))[:, None].astype(np.float32), "S16LE")
    for first in range(0, len(pcm), chunk):
        header = header_at(start_s + first / RATE)
        publisher.publish(numpy_to_audio(pcm[first : first + chunk], STREAM, header))


def compressed(picture: np.ndarray, codec: str, stamp_s: float) -> CompressedImage:
    buffer = io.BytesIO()
    PilImage.fromarray(picture).save(buffer, format=codec.upper())
    return CompressedImage(header=header_at(stamp_s), format=f"rgb8; {codec} compressed bgr8",
                           data=buffer.getvalue())  # fmt: skip


@pytest.fixture
def rig(ros_context):
    node = rclpy.create_node("rig", context=ros_context)
    yield node
    node.destroy_node()


@pytest.mark.parametrize("durability", [DurabilityPolicy.VOLATILE,
                                        DurabilityPolicy.TRANSIENT_LOCAL])  # fmt: skip
def test_audio_info_of_either_durability_reaches_the_node_and_mp3_is_refused(
    ros_context, rig, tiny_bundle, spin_until, durability, capfd
):
    """audio_capture's AudioInfo is volatile in some releases (repeated every 5 s), latched in
    others (published once, before the node may have started)."""
    info_pub = rig.create_publisher(AudioInfo, "audio_info", qos(durability))
    if durability == DurabilityPolicy.TRANSIENT_LOCAL:
        info_pub.publish(MP3)  # before the node exists: only the latched copy can reach it
    node = localizer(ros_context, tiny_bundle.directory)
    try:
        if durability == DurabilityPolicy.VOLATILE:
            rig.create_timer(0.2, lambda: info_pub.publish(MP3))  # audio_capture repeats it
        assert spin_until([node, rig], lambda: "mp3" in node.stream_error, 10.0), node.drops
        assert node.drops["bad_audio_info"] == 1  # repeats and the second subscription: once
        assert "incompatible" not in capfd.readouterr().err.lower()
    finally:
        node.destroy_node()


@pytest.mark.parametrize("codec", ["jpeg", "png"])
def test_compressed_images_are_localized_on_image_transports_topic(
    ros_context, rig, tiny_bundle, spin_until, codec
):
    node = localizer(ros_context, tiny_bundle.directory,
                     Parameter("image_transport", value="compressed"),
                     cli=["-r", "image:=/cam/image_raw"])  # fmt: skip
    heatmaps = []
    rig.create_subscription(Image, "/soundloc/heatmap", heatmaps.append, 10)
    frames = rig.create_publisher(CompressedImage, "/cam/image_raw/compressed", 10)
    audio = rig.create_publisher(AudioDataStamped, "audio_stamped", 100)
    latched = qos(DurabilityPolicy.TRANSIENT_LOCAL)
    rig.create_publisher(AudioInfo, "audio_info", latched).publish(info_from_stream_format(STREAM))
    try:
        assert node.image_sub.topic_name == "/cam/image_raw/compressed"  # follows the remap
        assert spin_until([node, rig], lambda: frames.get_subscription_count() > 0, 10.0)
        assert spin_until([node, rig], lambda: audio.get_subscription_count() > 0, 10.0)
        assert spin_until([node, rig], lambda: node.heatmap_pub.get_subscription_count() > 0)
        picture = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
        publish_audio(audio, T0, 3.1)
        for k in (1, 2, 3):  # one at a time: the image subscription keeps only the newest
            frames.publish(compressed(picture, codec, T0 + k))
            assert spin_until([node, rig], lambda: len(heatmaps) >= k, 10.0), node.drops  # noqa: B023
        assert image_to_numpy(heatmaps[0]).shape == (32, 48)  # the decoded picture's size
        assert not node.drops
    finally:
        node.destroy_node()


def test_publishers_of_the_wrong_type_are_named_once_with_the_fix(
    ros_context, rig, tiny_bundle, spin_until, capfd
):
    """The drivers run in another participant (as on a robot: Fast DDS refuses two types on
    one topic name within one participant)."""
    node = localizer(ros_context, tiny_bundle.directory)
    diagnostics = []
    rig.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    drivers_context = Context()
    rclpy.init(context=drivers_context)
    drivers = rclpy.create_node("drivers", context=drivers_context)
    drivers.create_publisher(CompressedImage, "image", 10)  # a camera's compressed stream
    drivers.create_publisher(AudioData, "audio_stamped", 10)  # unstamped audio
    try:
        assert spin_until([node, rig], lambda: len(diagnostics) >= 5, 10.0)
        log = capfd.readouterr().err
        assert log.count("sensor_msgs/msg/CompressedImage") == 1, log
        assert "ros2 run image_transport republish compressed raw" in log
        assert log.count("audio_common_msgs/msg/AudioData,") == 1
        assert "audio_stamped:=/audio_stamped" in log
        status = diagnostics[-1].status[0]
        assert status.name == "/soundloc: localizer"  # diagnostic_updater's naming
        assert status.level == status.WARN and "image_transport:=compressed" in status.message
    finally:
        node.destroy_node()
        drivers.destroy_node()
        rclpy.shutdown(context=drivers_context)


def test_with_sim_time_and_no_clock_the_bundle_retry_and_diagnostics_go_on(
    ros_context, rig, tiny_bundle, tmp_path, spin_until
):
    """ROS-time timers do not fire before /clock starts: the retry must not be one."""
    later = tmp_path / "later_bundle"
    node = localizer(ros_context, later, Parameter("use_sim_time", value=True))
    diagnostics = []
    rig.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    try:
        assert node.predictor is None
        assert spin_until([node, rig], lambda: diagnostics, 5.0)  # /diagnostics without /clock
        shutil.copytree(tiny_bundle.directory, later)
        assert spin_until([node, rig], lambda: node.predictor is not None, 12.0)
        assert node.get_clock().now().nanoseconds == 0  # still no /clock
    finally:
        node.destroy_node()


def test_the_audio_deadline_runs_on_the_nodes_clock(ros_context, rig, tiny_bundle, spin_until):
    """/clock stands still (a paused bag): a frame waits for its audio however long that takes
    in wall time; once /clock moves past its deadline, a frame without audio is dropped."""
    node = localizer(ros_context, tiny_bundle.directory, Parameter("use_sim_time", value=True),
                     Parameter("late_policy", value="drop"),
                     Parameter("audio_deadline", value=0.5))  # fmt: skip
    heatmaps = []
    rig.create_subscription(Image, "/soundloc/heatmap", heatmaps.append, 10)
    clock = rig.create_publisher(Clock, "/clock", 10)
    frames = rig.create_publisher(Image, "image", 10)
    audio = rig.create_publisher(AudioDataStamped, "audio_stamped", 100)

    def tick(stamp_s: float) -> None:
        clock.publish(Clock(clock=header_at(stamp_s).stamp))

    from soundloc_ros.ros.conversions import numpy_to_image

    frame = np.zeros((16, 16, 3), np.uint8)
    try:
        assert spin_until([node, rig], lambda: audio.get_subscription_count() > 0, 10.0)
        assert spin_until([node, rig], lambda: node.heatmap_pub.get_subscription_count() > 0)
        tick(T0 + 1.0)
        assert spin_until([node, rig], lambda: node.get_clock().now().nanoseconds > 0, 5.0)
        frames.publish(numpy_to_image(frame, "rgb8", header_at(T0 + 1.0)))
        spin_until([node, rig], lambda: False, 1.5)  # 3 deadlines of wall time
        assert not heatmaps and not node.scheduler.drops
        publish_audio(audio, T0, 1.05)
        assert spin_until([node, rig], lambda: heatmaps, 5.0), node.scheduler.drops
        frames.publish(numpy_to_image(frame, "rgb8", header_at(T0 + 3.0)))  # its audio never comes
        spin_until([node, rig], lambda: False, 0.5)
        assert not node.scheduler.drops
        started = time.monotonic()
        tick(T0 + 1.6)  # past the second frame's deadline in node time
        assert spin_until([node, rig], lambda: node.scheduler.drops, 5.0)
        assert time.monotonic() - started < 2.0 and len(heatmaps) == 1
    finally:
        node.destroy_node()


def test_rates_outside_their_expected_bounds_warn(ros_context, rig, tiny_bundle, spin_until):
    from soundloc_ros.ros.conversions import numpy_to_image

    node = localizer(ros_context, tiny_bundle.directory,
                     Parameter("expected_rate.image_min_hz", value=50.0))  # fmt: skip
    diagnostics = []
    rig.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    frames = rig.create_publisher(Image, "image", 10)
    frame = np.zeros((8, 8, 3), np.uint8)
    rig.create_timer(0.1, lambda: frames.publish(numpy_to_image(frame, "rgb8", header_at(T0))))
    try:
        assert spin_until([node, rig], lambda: len(diagnostics) >= 8, 10.0)
        status = diagnostics[-1].status[0]
        assert status.level == status.WARN
        assert "image rate" in status.message and "below the expected 50 Hz" in status.message
        rate = float({kv.key: kv.value for kv in status.values}["image_rate_hz"])
        assert 5.0 < rate < 15.0  # 10 Hz over the window of five 0.2 s periods
    finally:
        node.destroy_node()


def test_frames_refused_while_audio_is_missing_are_an_error_naming_the_refusal(
    ros_context, rig, tiny_bundle, spin_until
):
    """Before: "waiting for audio" (WARN), hiding that no frame could ever be used."""
    node = localizer(ros_context, tiny_bundle.directory)
    diagnostics = []
    rig.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    frames = rig.create_publisher(Image, "image", 10)
    yuv = Image(header=header_at(T0), height=2, width=2, encoding="yuv422", step=4, data=bytes(8))
    rig.create_timer(0.05, lambda: frames.publish(yuv))
    try:
        errors = lambda: [d for d in diagnostics if d.status[0].level == b"\x02"]  # noqa: E731
        assert spin_until([node, rig], errors, 10.0)
        status = errors()[-1].status[0]
        assert "inputs arrive but nothing is published: mostly bad_image" in status.message
        assert int({kv.key: kv.value for kv in status.values}["drops.bad_image"]) >= 1
    finally:
        node.destroy_node()
