"""Live replay: a bag played in real time over DDS into a `soundloc_node`, its outputs scored.

This is the robot's path end to end: a separate node process (started here, with the bundle and
the node parameters given) subscribes to the bag's topics; this process publishes the recorded
CDR bytes unchanged at their recorded pace, with the QoS their drivers offered, and listens to
the node's heatmap, mask and bearing. Outputs are matched to frames by header stamp and scored
by the same ReplayScorer as offline replay, so the two modes can be compared frame for frame.
The ground-truth topic is read from the bag here and never published.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from soundloc_ros.core.image_codec import to_rgb8
from soundloc_ros.core.interop import COMPRESSED, COMPRESSED_SUFFIX, base_topic
from soundloc_ros.replay.bag import (
    BagMessage,
    BagSource,
    ReplayError,
    camera_from_info,
    decode_frame,
    decode_mask,
    stamp_key,
)
from soundloc_ros.replay.scoring import PublishedFrame, ReplayScorer, percentiles

NODE_NAME = "soundloc"
PROFILE = Path(__file__).resolve().parents[2] / "config" / "fastdds_large_messages.xml"
STARTUP_TIMEOUT_S = 120.0  # a first TensorRT engine build on a Jetson takes minutes
DRAIN_TIMEOUT_S = 5.0
ERROR_LEVEL = 2  # diagnostic_msgs/DiagnosticStatus.ERROR: e.g. the bundle did not load


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


NODE_INPUTS = {"image": "image", "camera_info": "camera_info", "audio": "audio_stamped",
               "audio_info": "audio_info"}  # fmt: skip


def remap_rule(kind: str, topic: str, msgtype: str) -> str:
    """The node's input `kind` onto a bag topic; a CompressedImage camera through its base
    topic, as image_transport resolves it (`image:=/cam` reads `/cam/compressed`)."""
    if msgtype != COMPRESSED:
        return f"{NODE_INPUTS[kind]}:={topic}"
    if topic.endswith(COMPRESSED_SUFFIX):
        return f"image:={base_topic(topic)}"
    return f"image{COMPRESSED_SUFFIX}:={topic}"


def node_command(source: BagSource, args, pairing) -> list[str]:
    """The soundloc_node command line: remapped onto the bag's topics, with the given parameters."""
    inputs = {kind: info for kind, info in source.info.items() if kind in NODE_INPUTS}
    remaps = [remap_rule(kind, info.topic, info.msgtype) for kind, info in inputs.items()]
    compressed = inputs["image"].msgtype == COMPRESSED
    parameters = {
        "image_transport": "compressed" if compressed else "raw",
        "rectified": bool(args.rectified),
        "bundle": str(Path(args.bundle).resolve()),
        "backend": args.backend,
        "threads": args.threads,
        "audio.sample_rate": args.sample_rate,
        "audio.channels": args.channels,
        "audio.sample_format": args.sample_format,
        "audio_offset": float(pairing.offset_s),
        "audio_deadline": float(pairing.deadline_s),
        "late_policy": pairing.late_policy,
        "min_audio_coverage": float(pairing.min_coverage),
        "silence_threshold_db": float(args.silence_threshold_db),
        "mask_threshold": float(args.mask_threshold),
    }
    if args.source_threshold is not None:
        parameters["source_threshold"] = float(args.source_threshold)
    command = [sys.executable, "-m", "soundloc_ros.ros.localizer_node", "--ros-args"]
    command += ["-r", f"__node:={NODE_NAME}"]
    for remap in remaps:
        command += ["-r", remap]
    for name, value in parameters.items():
        command += ["-p", f"{name}:={value}"]
    return command


class _Listener:
    """Collects the node's outputs; a frame is complete when a later frame's heatmap arrives
    (the node publishes frames in order, heatmap first), or at the end."""

    def __init__(self, scorer: ReplayScorer) -> None:
        self.scorer = scorer
        self.partial: dict[tuple[int, int], dict] = {}
        self.sent_at: dict[tuple[int, int], float] = {}  # frame key -> wall time published
        self.latency_ms: list[float] = []
        self.diagnostics: dict[str, str] = {}
        self.diagnostics_level: int | None = None
        self.diagnostics_message = "no /diagnostics from it"

    def on_heatmap(self, msg) -> None:
        from soundloc_ros.ros.conversions import image_to_numpy

        key = stamp_key(msg.header)
        sent = self.sent_at.pop(key, None)
        if sent is not None:
            self.latency_ms.append((time.monotonic() - sent) * 1e3)
        for dropped in [k for k in self.sent_at if k < key]:  # the node dropped these frames
            del self.sent_at[dropped]
        for older in [k for k in self.partial if k != key]:
            self._finish(older)
        self.partial.setdefault(key, {})["heatmap"] = np.array(image_to_numpy(msg))

    def on_mask(self, msg) -> None:
        from soundloc_ros.ros.conversions import image_to_numpy

        self.partial.setdefault(stamp_key(msg.header), {})["mask"] = image_to_numpy(msg) > 127

    def on_bearing(self, msg) -> None:
        vector = np.array([msg.vector.x, msg.vector.y, msg.vector.z])
        self.partial.setdefault(stamp_key(msg.header), {})["bearing"] = vector

    def on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.hardware_id.lstrip("/") == NODE_NAME:
                self.diagnostics = {kv.key: kv.value for kv in status.values}
                self.diagnostics_level = int.from_bytes(status.level, "little")
                self.diagnostics_message = status.message

    def finish_all(self) -> None:
        for key in list(self.partial):
            self._finish(key)

    def _finish(self, key) -> None:
        parts = self.partial.pop(key)
        if "heatmap" not in parts or "mask" not in parts:
            return  # a part was lost in transport: the frame counts as not localized
        bearing, peak = parts.get("bearing"), None
        camera = self.scorer.camera
        if bearing is not None and camera is not None:
            peak = camera.pixel(bearing, parts["heatmap"].shape)
        self.scorer.add_output(key, PublishedFrame(parts["heatmap"], parts["mask"], bearing, peak))


def _qos(kind: str, info, default_depth: int):
    """The QoS the recorded publisher offered; without a record, the driver contract's: a
    latched AudioInfo, and reliable sensor topics (which best-effort subscribers accept too)."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    recorded = info.qos[0] if info.qos else None
    if recorded is None:
        reliable, latched, depth = True, kind == "audio_info", default_depth
    else:
        reliable = recorded.reliability.name == "RELIABLE"
        latched = recorded.durability.name == "TRANSIENT_LOCAL"
        depth = max(default_depth, recorded.depth)
    return QoSProfile(
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def _stop(process: subprocess.Popen) -> str:
    """Ctrl-C the node, then kill it if it does not exit; returns the tail of its log."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log = process.stdout.read() if process.stdout else ""
    return "\n".join(log.splitlines()[-15:])


def replay_live(source: BagSource, scorer: ReplayScorer, args, pairing) -> dict[str, object]:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import Vector3Stamped
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    # frames over 512 KB need it (docs/architecture.md: Transport); children inherit it
    if PROFILE.is_file():
        os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(PROFILE))
    process = subprocess.Popen(
        node_command(source, args, pairing),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("soundloc_replay", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    listener = _Listener(scorer)
    try:
        for name, kind, callback in (
            ("heatmap", Image, listener.on_heatmap),
            ("mask", Image, listener.on_mask),
            ("bearing", Vector3Stamped, listener.on_bearing),
        ):
            node.create_subscription(kind, f"/{NODE_NAME}/{name}", callback, 50)
        node.create_subscription(DiagnosticArray, "/diagnostics", listener.on_diagnostics, 10)
        publishers = {
            kind: node.create_publisher(
                message_class(info.msgtype),
                info.topic,
                _qos(kind, info, 100 if kind == "audio" else 10),
            )
            for kind, info in source.info.items()
            if kind not in ("ground_truth", "label")
        }
        _wait_for_node(process, executor, listener, publishers)
        began = time.monotonic()
        _play(source, scorer, listener, publishers, executor, args.speed, args.rectified)
        end = time.monotonic() + DRAIN_TIMEOUT_S  # the last frames are still in inference
        while listener.sent_at and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        wall_s = time.monotonic() - began
        diagnostics_wait = time.monotonic() + 2.0  # one more diagnostics period
        while time.monotonic() < diagnostics_wait:
            executor.spin_once(timeout_sec=0.05)
        listener.finish_all()
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        node_log = _stop(process)
    diagnostics = listener.diagnostics
    drops = {k[6:]: int(v) for k, v in diagnostics.items() if k.startswith("drops.")}
    return {
        "backend": diagnostics.get("backend", "?"),
        "latency_ms": {"frame_to_heatmap": percentiles(listener.latency_ms)},
        "drops": {**drops, **source.drops},  # the node's, and messages this side skipped
        "errors": source.errors,
        "node_diagnostics": diagnostics,
        "wall_s": round(wall_s, 2),
        "speed_vs_real_time": round(source.duration_s / max(wall_s, 1e-9), 2),
        "node_log_tail": node_log,
    }


def _wait_for_node(process, executor, listener: _Listener, publishers: dict) -> None:
    """Until the node reports a loaded model and subscribes to the camera topic."""
    end = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.1)
        if process.poll() is not None:
            raise ReplayError(f"soundloc_node exited at start (code {process.returncode}):\n"
                              f"{_stop(process)}")  # fmt: skip
        level = listener.diagnostics_level
        if level == ERROR_LEVEL:
            raise ReplayError(
                f"soundloc_node reports: {listener.diagnostics_message}; its log:\n{_stop(process)}"
            )
        if level is not None and publishers["image"].get_subscription_count() > 0:
            return
    raise ReplayError(
        f"soundloc_node was not ready within {STARTUP_TIMEOUT_S:.0f} s "
        f"({listener.diagnostics_message}); its log:\n{_stop(process)}"
    )


def _play(
    source, scorer, listener: _Listener, publishers, executor, speed: float, rectified: bool
) -> None:
    """Publish every message at its recorded time (scaled by `speed`) after the first.

    Messages logged at the same instant go out CameraInfo first, so the node knows the camera
    when it publishes that frame's bearing (offline replay sees them the same way)."""
    if speed <= 0:
        raise ReplayError(f"--speed must be positive; got {speed}")
    wall0, bag0, index, batch = time.monotonic(), None, 0, []
    for message in [*source.messages(), None]:  # None flushes the last batch
        if batch and (message is None or message.log_time_ns != batch[0].log_time_ns):
            due = wall0 + (batch[0].log_time_ns - bag0) * 1e-9 / speed
            while (wait := due - time.monotonic()) > 0:
                executor.spin_once(timeout_sec=min(wait, 0.005))
            for queued in sorted(batch, key=lambda m: m.kind != "camera_info"):
                index = _send(source, scorer, listener, publishers, queued, index, rectified)
            batch = []
        if message is not None:
            bag0 = message.log_time_ns if bag0 is None else bag0
            batch.append(message)


def _send(
    source, scorer, listener, publishers, message: BagMessage, index: int, rectified: bool
) -> int:
    """Publish one message (ground truth is only scored); returns the next frame index. One
    that does not deserialize is not sent (the node could not read it either): the source
    counts and lists it."""
    msg = source.decode(message)
    if msg is None:
        return index
    if message.kind == "ground_truth":
        try:
            scorer.add_truth(stamp_key(msg.header), decode_mask(msg))
        except ValueError:
            scorer.refuse_truth()  # counted; the frame is still replayed, just not scored
        return index
    if message.kind == "label":
        scorer.add_label(str(msg.data))
        return index
    if message.kind == "camera_info":
        try:
            scorer.camera = camera_from_info(msg, rectified)
        except ValueError:
            scorer.camera = None  # the node refuses it too, and publishes no bearing
    if message.kind == "image":
        key = stamp_key(msg.header)

        def rgb() -> np.ndarray:
            return to_rgb8(*decode_frame(msg))

        scorer.add_frame(index, key, rgb)
        listener.sent_at[key] = time.monotonic()
        index += 1
    publishers[message.kind].publish(message.raw)
    return index
