"""soundloc_node over real DDS: TuxAV frames and their audio played as a camera and a microphone.

The node runs in this process with its own inference thread; a driver node publishes frames,
camera info and 20 ms audio chunks with realistic, jittered stamps (media time runs 10x faster
than wall time) and collects every output.
"""

import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

pytest.importorskip(
    "soundloc_training", reason="exporting the test bundle needs the training package"
)

from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Vector3Stamped
from sensor_msgs.msg import Image
from soundloc_training.datasets.tuxav import make_clip
from soundloc_training.export import export_bundle
from std_msgs.msg import Float32
from vision_msgs.msg import Detection2DArray
from visualization_msgs.msg import Marker

from soundloc_ros.core.pcm import AudioStreamFormat
from soundloc_ros.ros.conversions import (
    image_to_numpy,
    info_from_stream_format,
    numpy_to_image,
)
from soundloc_ros.ros.localizer_node import LocalizerNode
from soundloc_ros.ros.playback import Player, Recording, header_at, stamp_key

RATE = 16000
T0 = 1_700_000_000.0
OUTPUTS = ("heatmap", "mask", "bearing", "marker", "overlay", "diagnostics")
CLASSES = (0, 20, 40, 60)  # frog, grasshopper, sheep_lamb, beaver; clip 50 (never trained on)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "tuxav_baseline"
    export_bundle("models/tuxav_baseline.pt", out, frames=2)
    return out


@pytest.fixture(scope="module")
def clips():
    return [make_clip(0, c, 50) for c in CLASSES]


@dataclass
class Rig:
    """The camera, microphone and listener on the other side of DDS."""

    node: object
    outputs: dict = field(default_factory=lambda: {n: [] for n in OUTPUTS})

    def __post_init__(self):
        n = self.node
        self.player = Player(n)
        for name, kind in (("heatmap", Image), ("mask", Image), ("bearing", Vector3Stamped),
                           ("marker", Marker), ("overlay", Image)):  # fmt: skip
            n.create_subscription(kind, f"/soundloc/{name}", self.outputs[name].append, 50)
        n.create_subscription(
            DiagnosticArray, "/diagnostics", self.outputs["diagnostics"].append, 10
        )


def start_localizer(ros_context, bundle_dir) -> LocalizerNode:
    """The TuxAV baseline on ONNX Runtime, set up so the tests lose no frame to QoS."""
    return LocalizerNode(
        context=ros_context,
        parameter_overrides=[
            Parameter("bundle", value=str(bundle_dir)),
            Parameter("backend", value="onnxruntime"),
            Parameter("input_qos", value="reliable"),  # the test must not lose frames to QoS
            Parameter("max_queued_frames", value=30),
            Parameter("audio_deadline", value=2.0),
            Parameter("diagnostics_period", value=0.2),
        ],
    )


@pytest.fixture
def rig(ros_context):
    import rclpy

    return Rig(rclpy.create_node("rig", context=ros_context))


@pytest.fixture
def system(ros_context, bundle_dir, rig):
    """(localizer node, rig, executor, stream)."""
    localizer = start_localizer(ros_context, bundle_dir)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(localizer)
    executor.add_node(rig.node)
    stream = AudioStreamFormat(sample_rate=RATE, channels=1, sample_format="S16LE")
    yield localizer, rig, executor, stream
    executor.shutdown()
    localizer.destroy_node()
    rig.node.destroy_node()


def spin_for(executor, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.005)


def spin_until(executor, predicate, timeout_s: float = 20.0) -> bool:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            return False
        executor.spin_once(timeout_sec=0.01)
    return True


def play(system, clips, silent=False, start_s=T0, speed=10.0):
    """Frame k of each clip is stamped k + 1 s into it: it pairs with second k of its audio."""
    _, rig, executor, _ = system
    recordings = [Recording(c.frames, [1.0, 2.0, 3.0, 4.0, 5.0], c.audio) for c in clips]
    spin = lambda timeout: executor.spin_once(timeout_sec=timeout)  # noqa: E731
    return rig.player.play(recordings, start_s, spin, speed=speed, silent=silent)


def test_outputs_carry_the_frame_header_and_the_peak_finds_the_sounding_object(system, clips):
    localizer, rig, executor, _ = system
    sent = play(system, clips)
    outputs = rig.outputs
    assert spin_until(executor, lambda: len(outputs["heatmap"]) >= len(sent)), localizer.drops
    spin_for(executor, 0.3)
    for name in ("heatmap", "mask", "bearing", "marker"):
        assert {stamp_key(m.header) for m in outputs[name]} <= set(sent), name
    assert {stamp_key(m.header) for m in outputs["heatmap"]} == set(sent)
    hits = 0
    for message in outputs["heatmap"]:
        j, k = sent[stamp_key(message.header)]
        heatmap = image_to_numpy(message)
        assert message.encoding == "32FC1" and heatmap.shape == (224, 224)
        assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
        v, u = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        hits += bool(clips[j].masks[k][v, u])
    assert hits / len(sent) >= 0.6, f"peak inside the sounding object on {hits}/{len(sent)} frames"
    masks = [image_to_numpy(m) for m in outputs["mask"]]
    assert all(m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255} for m in masks)
    bearing = outputs["bearing"][0].vector
    assert abs(np.linalg.norm([bearing.x, bearing.y, bearing.z]) - 1) < 1e-6 and bearing.z > 0
    assert outputs["marker"][0].type == Marker.ARROW and outputs["marker"][0].action == Marker.ADD
    overlay = outputs["overlay"][0]  # published because the rig subscribes to it
    assert overlay.encoding == "bgr8" and stamp_key(overlay.header) in sent


def test_silence_gives_the_no_sound_output(system, clips):
    _, rig, executor, _ = system
    sent = play(system, clips[:1], silent=True)
    outputs = rig.outputs
    assert spin_until(executor, lambda: len(outputs["heatmap"]) >= len(sent))
    spin_for(executor, 0.3)
    assert all(not image_to_numpy(m).any() for m in outputs["heatmap"])
    assert all(not image_to_numpy(m).any() for m in outputs["mask"])
    assert not outputs["bearing"]
    assert outputs["marker"] and all(m.action == Marker.DELETE for m in outputs["marker"])


def noise_clip(clip, level_dbfs: float = -26.0):
    """The clip's frames with pink noise instead of its sound: no visible source is sounding."""
    from dataclasses import replace as replaced

    from soundloc_training.datasets.scenes import coloured_noise

    noise = coloured_noise(np.random.default_rng(7), len(clip.audio), "pink")
    noise *= 10 ** (level_dbfs / 20) / np.sqrt(np.mean(noise**2))
    return replaced(clip, audio=noise.astype(np.float32))


def test_noise_gives_no_bearing_and_no_detection_and_a_sounding_clip_both(system, clips):
    """The bundle's calibrated threshold (soundloc-export) decides: what a fan gives is not a
    source, what the object's own sound gives is, and the score comes with every frame."""
    _, rig, executor, _ = system
    outputs = {"detections": [], "source_score": []}
    for name, kind in (("detections", Detection2DArray), ("source_score", Float32)):
        rig.node.create_subscription(kind, f"/soundloc/{name}", outputs[name].append, 50)
    sent = play(system, [noise_clip(c) for c in clips])
    assert spin_until(executor, lambda: len(rig.outputs["heatmap"]) >= len(sent))
    spin_for(executor, 0.3)
    assert not outputs["detections"] and not rig.outputs["bearing"]
    assert all(not image_to_numpy(m).any() for m in rig.outputs["heatmap"])
    assert len(outputs["source_score"]) == len(sent)  # the score of every frame, still
    noise_scores = [m.data for m in outputs["source_score"]]
    sounding = play(system, clips, start_s=T0 + 100.0)
    assert spin_until(executor, lambda: len(outputs["source_score"]) >= len(sent) + len(sounding))
    spin_for(executor, 0.3)
    detected = {stamp_key(m.header) for m in outputs["detections"]}
    with_bearing = {stamp_key(m.header) for m in rig.outputs["bearing"]}
    assert len(detected) >= 0.8 * len(sounding) and detected == with_bearing
    assert min(m.data for m in outputs["source_score"][len(sent) :]) > min(noise_scores)
    detection = outputs["detections"][0].detections[0]
    j, k = sounding[stamp_key(outputs["detections"][0].header)]
    rows, cols = np.nonzero(clips[j].masks[k])  # the box lies on the object
    centre = detection.bbox.center.position
    assert cols.min() <= centre.x <= cols.max() and rows.min() <= centre.y <= rows.max()
    assert detection.results[0].hypothesis.class_id == "sounding_source"
    assert 0 < detection.bbox.size_x <= 224 and 0 < detection.bbox.size_y <= 224


def test_bad_input_is_reported_and_good_input_keeps_being_served(system, clips, capfd):
    localizer, rig, executor, stream = system
    frame = clips[0].frames[0]
    yuv = Image(header=header_at(T0), height=2, width=2, encoding="yuv422", step=4, data=bytes(8))
    rig.player.image.publish(yuv)
    spin_for(executor, 0.2)  # the image subscription keeps only the newest frame
    short = numpy_to_image(frame, "rgb8", header_at(T0 + 0.5))
    short.data = bytes(short.data[:-10])  # a frame shorter than height * step
    rig.player.image.publish(short)
    spin_for(executor, 0.2)
    rig.player.audio.publish(AudioDataStamped(header=header_at(T0)))  # empty chunk
    rig.player.audio_info.publish(AudioInfo(channels=1, sample_rate=RATE, sample_format="S16LE",
                                     coding_format="mp3"))  # fmt: skip
    assert spin_until(executor, lambda: not localizer.stream_usable, 5.0)
    rig.player.audio_info.publish(info_from_stream_format(stream))  # the microphone is fixed
    assert spin_until(executor, lambda: localizer.stream_usable, 5.0)
    sent = play(system, clips[:1], start_s=T0 + 100.0)
    play(system, clips[1:2], start_s=T0 + 10.0)  # stamps went back 95 s: a bag loop
    assert spin_until(executor, lambda: len(rig.outputs["heatmap"]) >= len(sent) + 3)
    drops = localizer.drops + localizer.scheduler.drops
    assert drops["bad_image"] == 2 and drops["empty_audio"] == 1, drops
    assert drops["time_jump"] >= 1 or localizer.scheduler.audio_events["reset"] >= 1
    errors = capfd.readouterr().err
    assert "yuv422" in errors and "mp3" in errors and "no samples" in errors
    spin_until(executor, lambda: rig.outputs["diagnostics"], 5.0)
    status = rig.outputs["diagnostics"][-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert values["backend"].startswith("onnxruntime") and values["drops.bad_image"] == "2"


def test_a_latched_hostile_audio_info_cannot_kill_the_node(ros_context, bundle_dir, rig, clips):
    """The probe's crash loop: sample_rate 4e9 made the node allocate 74.5 GiB at every start."""
    hostile = AudioInfo(channels=1, sample_rate=4_000_000_000, sample_format="S16LE",
                        coding_format="wave")  # fmt: skip
    rig.player.audio_info.publish(hostile)  # latched: every (re)started node receives it
    localizer = start_localizer(ros_context, bundle_dir)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(localizer)
    executor.add_node(rig.node)
    system = (localizer, rig, executor, None)
    try:
        assert spin_until(executor, lambda: localizer.drops["bad_audio_info"] == 1, 10.0)
        assert spin_until(executor, lambda: len(rig.outputs["diagnostics"]) >= 2, 5.0)
        status = rig.outputs["diagnostics"][-1].status[0]
        assert status.level == status.ERROR
        assert "audio_info.sample_rate is 4000000000, outside [1, 384000]" in status.message
        assert {kv.key: kv.value for kv in status.values}["drops.bad_audio_info"] == "1"
        stream = AudioStreamFormat(sample_rate=RATE, channels=1, sample_format="S16LE")
        rig.player.audio_info.publish(info_from_stream_format(stream))  # the publisher is fixed
        assert spin_until(executor, lambda: localizer.stream_usable, 5.0)
        sent = play(system, clips[:1])
        assert spin_until(executor, lambda: len(rig.outputs["heatmap"]) >= len(sent))
    finally:
        executor.shutdown()
        localizer.destroy_node()
        rig.node.destroy_node()


def test_diagnostics_say_error_when_inputs_arrive_and_nothing_is_published(system, clips):
    localizer, rig, executor, _ = system

    def broken(inputs):  # a bundle whose graph fails on every frame
        raise RuntimeError("reshape: output has 783 values, bundle.json says 784")

    localizer.predictor.backend.run = broken
    play(system, clips[:1])
    assert spin_until(executor, lambda: localizer.drops["processing_error"] >= 3)
    spin_for(executor, 0.5)
    errors = [s.status[0] for s in rig.outputs["diagnostics"] if s.status[0].level == b"\x02"]
    assert errors, [s.status[0].message for s in rig.outputs["diagnostics"]]
    assert "inputs arrive but nothing is published: mostly processing_error" in errors[-1].message


def test_parameters_change_at_run_time_and_bad_values_are_refused(system, clips):
    localizer, rig, executor, _ = system
    areas = []
    for threshold in (0.1, 0.95):
        result = localizer.set_parameters([Parameter("mask_threshold", value=threshold)])[0]
        assert result.successful
        rig.outputs["mask"].clear()
        play(system, clips[2:3], start_s=T0 + 1000.0 * threshold)
        assert spin_until(executor, lambda: len(rig.outputs["mask"]) >= 5)
        areas.append(np.mean([image_to_numpy(m).mean() / 255 for m in rig.outputs["mask"]]))
    assert areas[0] > areas[1] + 0.2, areas
    bad = [("late_policy", "wait"), ("mask_threshold", 1.5), ("backend", "torch")]
    refused = localizer.set_parameters([Parameter(name, value=value) for name, value in bad])
    assert [r.successful for r in refused] == [False, False, False]
    assert "one of pad, drop" in refused[0].reason
    assert localizer.get_parameter("backend").value == "onnxruntime"


def test_at_model_resolution_the_maps_come_on_the_models_grid(system, clips):
    localizer, rig, executor, _ = system
    assert localizer.set_parameters([Parameter("output_resolution", value="model")])[0].successful
    try:
        rig.outputs["heatmap"].clear()
        rig.outputs["mask"].clear()
        play(system, clips[2:3], start_s=T0 + 3000.0)
        assert spin_until(executor, lambda: len(rig.outputs["mask"]) >= 3)
        grid = localizer.predictor.bundle.heatmap.tensor.shape[2:]
        for topic in ("heatmap", "mask"):
            assert {(m.height, m.width) for m in rig.outputs[topic]} == {tuple(grid)}
        refused = localizer.set_parameters([Parameter("output_resolution", value="native")])[0]
        assert not refused.successful and "one of frame, model" in refused.reason
    finally:
        localizer.set_parameters([Parameter("output_resolution", value="frame")])


def test_a_missing_bundle_keeps_the_node_up_and_says_what_to_do(ros_context, tmp_path):
    node = LocalizerNode(
        context=ros_context, parameter_overrides=[Parameter("bundle", value=str(tmp_path / "x"))]
    )
    try:
        assert node.predictor is None and "not a directory" in node.model_error
        status = node.diagnostics()
        assert status.level == status.ERROR and "soundloc-export" in status.message
    finally:
        node.destroy_node()


def test_config_file_lists_every_parameter_with_its_default():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "write_node_config.py"
    spec = importlib.util.spec_from_file_location("write_node_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = (path.parents[1] / "config" / "soundloc.yaml").read_text()
    assert config == module.render(), "run scripts/write_node_config.py"
