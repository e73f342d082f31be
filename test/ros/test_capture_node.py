"""soundloc_capture recording a real PortAudio input: a JACK dummy server with a 440 Hz tone.

The capture node runs as its own process (`python -m soundloc_ros.ros.capture_node`), exactly
as on a robot; this process listens over DDS and checks tone, level, stamps and AudioInfo.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

jack = pytest.importorskip("jack", reason="JACK-Client is installed by make setup")
if shutil.which("jackd") is None:
    pytest.skip("jackd is not installed (make setup installs jackd2)", allow_module_level=True)

from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from soundloc_ros.core.pcm import decode_pcm, pcm_to_float  # noqa: E402
from soundloc_ros.ros.conversions import numpy_to_image  # noqa: E402
from soundloc_ros.ros.localizer_node import LATCHED, LocalizerNode  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from virtual_microphone import ToneGenerator, jack_server  # noqa: E402

RATE, BLOCK = 16000, 320


@pytest.fixture
def microphone():
    name = f"soundloc_test_{os.getpid()}"
    with jack_server(name, RATE, BLOCK):
        tone = ToneGenerator(name, frequency=440.0, amplitude=0.5)
        yield tone
        tone.close()


@pytest.fixture
def capture_process():
    started = []

    def start(*parameters: str) -> subprocess.Popen:
        arguments = [a for p in parameters for a in ("-p", p)]
        process = subprocess.Popen(
            [sys.executable, "-m", "soundloc_ros.ros.capture_node", "--ros-args", *arguments],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()
        process.wait(10)


class Listener:
    def __init__(self, context) -> None:
        import rclpy

        self.node = rclpy.create_node("listener", context=context)
        self.chunks, self.infos, self.diagnostics, self.unstamped = [], [], [], []
        self.node.create_subscription(AudioDataStamped, "audio_stamped", self._on_chunk, 200)
        self.node.create_subscription(AudioData, "audio", self.unstamped.append, 200)
        self.node.create_subscription(AudioInfo, "audio_info", self.infos.append, LATCHED)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def _on_chunk(self, msg) -> None:
        self.chunks.append((time.time(), msg))

    def _on_diagnostics(self, msg) -> None:
        self.diagnostics += [s for s in msg.status if s.name == "/soundloc_capture: capture"]

    def spin_until(self, predicate, timeout_s: float = 20.0) -> bool:
        end = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > end:
                return False
            self.executor.spin_once(timeout_sec=0.01)
        return True

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def stamp_of(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def test_the_tone_arrives_with_its_level_and_sample_accurate_stamps(
    ros_context, microphone, capture_process
):
    capture_process("device:=system", f"sample_rate:={RATE}", f"block_size:={BLOCK}")
    listener = Listener(ros_context)
    try:
        assert listener.spin_until(lambda: listener.infos), "no audio_info from the capture node"
        microphone.connect_to_recorders()
        start = len(listener.chunks)
        assert listener.spin_until(lambda: len(listener.chunks) >= start + 150)
        info = listener.infos[-1]
        assert (info.channels, info.sample_rate, info.sample_format, info.coding_format) == (
            1, RATE, "S16LE", "wave",
        )  # fmt: skip
        assert info.bitrate == RATE * 16
        # ros-drivers' names: AudioDataStamped on audio_stamped, the same bytes unstamped on audio
        stamped = {bytes(m.audio.data) for _, m in listener.chunks}
        assert listener.unstamped and all(bytes(m.data) in stamped for m in listener.unstamped)
        received = listener.chunks[start + 25 :]  # the tone is connected by now
        audio = np.concatenate(
            [pcm_to_float(decode_pcm(m.audio.data, "S16LE", 1))[:, 0] for _, m in received]
        )
        last_second = audio[-RATE:]
        assert np.sqrt(np.mean(last_second**2)) == pytest.approx(0.5 / np.sqrt(2), abs=0.01)
        spectrum = np.abs(np.fft.rfft(last_second))
        assert np.argmax(spectrum) == pytest.approx(440, abs=1)  # 1 Hz bins
        stamps = np.array([stamp_of(m) for _, m in received])
        steps = np.diff(stamps)
        assert np.mean(steps) == pytest.approx(BLOCK / RATE, abs=2e-4)
        # ADC-time stamps step by the block exactly but for the clock-offset updates; a stall of
        # this 2-core machine can still shift a few of them, so the bound is on 90 % of steps
        typical = np.percentile(np.abs(steps - BLOCK / RATE), 90)
        assert typical < 1e-3, f"90 % of stamp steps within {typical * 1e3:.3f} ms of the block"
        assert np.std(steps) < 5e-3, f"stamp jitter {np.std(steps) * 1e3:.3f} ms"
        lateness = np.array([t for t, _ in received]) - (stamps + BLOCK / RATE)
        assert np.all(lateness > -0.005) and np.median(lateness) < 0.2  # stamps are not future
        print(
            f"stamp step {np.mean(steps) * 1e3:.3f} ms, jitter (std) {np.std(steps) * 1e3:.3f} ms;"
            f" end of chunk -> received p50 {np.median(lateness) * 1e3:.1f} ms, "
            f"p95 {np.percentile(lateness, 95) * 1e3:.1f} ms"
        )
    finally:
        listener.close()


def test_the_localizer_node_accepts_the_captured_stream(
    ros_context, microphone, capture_process, tiny_bundle
):
    capture_process("device:=system")
    localizer = LocalizerNode(
        context=ros_context,
        parameter_overrides=[
            Parameter("bundle", value=str(tiny_bundle.directory)),
            Parameter("backend", value="onnxruntime"),
        ],
    )
    listener = Listener(ros_context)
    listener.executor.add_node(localizer)
    heatmaps = []
    listener.node.create_subscription(Image, "/soundloc/heatmap", heatmaps.append, 10)
    camera = listener.node.create_publisher(Image, "image", 10)
    try:
        assert listener.spin_until(lambda: listener.infos)
        microphone.connect_to_recorders()
        listener.spin_until(lambda: False, timeout_s=1.3)  # a full second of audio first
        frame = np.zeros((8, 8, 3), np.uint8)
        for _ in range(10):
            msg = numpy_to_image(frame, "rgb8")
            now = time.time() - 0.05
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int((now % 1) * 1e9)
            camera.publish(msg)
            listener.spin_until(lambda: False, timeout_s=0.1)
        assert listener.spin_until(lambda: len(heatmaps) >= 8, timeout_s=10)
        drops = localizer.drops + localizer.scheduler.drops
        assert not drops.get("bad_audio") and not drops.get("no_audio"), drops
        assert min(localizer.coverage) > 0.95
        assert any(np.frombuffer(bytes(m.data), np.float32).any() for m in heatmaps)  # not silent
    finally:
        listener.close()
        localizer.destroy_node()


@pytest.mark.parametrize(
    ("parameters", "complaint"),
    [
        (("device:=no-such-mic",), "no input device matches 'no-such-mic'; inputs: 0: system"),
        (("device:=system", "sample_rate:=44100"), "sample rate"),
        (("device:=system", "sample_format:=U8"), "sample_format must be one of"),
    ],
    ids=["missing-device", "unsupported-rate", "unsupported-format"],
)
def test_bad_devices_and_settings_are_reported_retried_and_survived(
    ros_context, microphone, capture_process, parameters, complaint
):
    process = capture_process(*parameters)
    listener = Listener(ros_context)
    try:
        errors = lambda: [s for s in listener.diagnostics if s.level == s.ERROR]  # noqa: E731
        assert listener.spin_until(errors, timeout_s=15)
        status = listener.diagnostics[-1]
        assert complaint.lower() in status.message.lower(), status.message
        listener.spin_until(lambda: False, timeout_s=2.5)  # retries at 1 s, then 2 s
        failures = {kv.key: kv.value for kv in listener.diagnostics[-1].values}["open_failures"]
        assert int(failures) >= 2 and process.poll() is None  # retried, and still up
    finally:
        listener.close()


def test_a_vanished_device_is_detected_reported_and_survived(ros_context, capture_process):
    name = f"soundloc_unplug_{os.getpid()}"
    with jack_server(name, RATE, BLOCK) as server:
        process = capture_process("device:=system", "stall_timeout_s:=0.5")
        listener = Listener(ros_context)
        try:
            assert listener.spin_until(lambda: len(listener.chunks) >= 10)
            server.terminate()  # the sound server (the "device") disappears
            server.wait(10)
            errors = lambda: [s for s in listener.diagnostics if s.level == s.ERROR]  # noqa: E731
            assert listener.spin_until(errors, timeout_s=10)
            assert "no audio from system" in errors()[-1].message
            listener.spin_until(lambda: False, timeout_s=1.5)
            assert process.poll() is None  # still up, still reporting
        finally:
            listener.close()
