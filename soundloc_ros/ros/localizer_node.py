"""`soundloc_node`: camera frames + microphone audio in; heatmap, mask, overlay, bearing out.

A plain (not lifecycle) node: everything it needs is ready when the constructor returns (bundle
loaded, backend and engine prepared), so a launch file or `ros2 run` is all a robot needs, and
there is no second state machine for users to drive. A missing or broken bundle does not kill
it: the node reports the problem on /diagnostics and in the log, and retries every few seconds.

Threads: subscription callbacks only hand messages to the core FrameScheduler (pairing, bounded
queues); one inference thread takes paired frames, runs the model and publishes. All logic
that needs no ROS lives in soundloc_ros.core and is tested there.

Inputs follow the drivers robots run: AudioDataStamped on `audio_stamped` and AudioInfo on
`audio_info` as ros-drivers audio_capture and soundloc_capture publish them (the AudioInfo
from either durability: see `_subscribe_audio_info`), and the camera as raw `image` or, with
image_transport:=compressed, image_transport's `image/compressed` (one of the two, chosen like
image_transport's own parameter: a camera usually offers both, and subscribing to both would
pull every frame twice over the network). Publishers of the wrong type on those topics are
named in the log and on /diagnostics with the fix.

Time: the audio deadline runs on the node's clock, so with use_sim_time a bag played with
--clock pairs the same at any rate; the bundle retry and /diagnostics run on a steady clock,
so they go on while a simulated clock has not started (a ROS-time timer would never fire).

No source: when the audio window is quieter than `silence_threshold_db`, or the frame's source
score (core.detection) is not above the bundle's calibrated threshold (`source_threshold`
overrides it), the heatmap and mask are published all zero (still with the frame's header, so
consumers see the frame was processed), no bearing and no detection are published, and the
Marker is deleted. Consumers that threshold the heatmap thus never see a source in noise. The
score is published for every frame the model ran on (`~/source_score`); above the threshold
`~/detections` carries the mask's box with it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Point, Vector3Stamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Float32
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose
from visualization_msgs.msg import Marker

from soundloc_ros.core.backends import create_backend
from soundloc_ros.core.bundle import BundleError, load_bundle
from soundloc_ros.core.frame_pipeline import CameraModel, FramePipeline, FrameResult
from soundloc_ros.core.health import PeriodCounts, RateBounds, RateWindow, assess
from soundloc_ros.core.image_codec import camera_encoding_spec, decode_compressed, to_rgb8
from soundloc_ros.core.interop import COMPRESSED, IMAGE, STAMPED_AUDIO, wrong_publishers
from soundloc_ros.core.pairing import FrameScheduler, PairedFrame, PairingConfig
from soundloc_ros.core.pcm import AudioStreamFormat, PcmFormatError, decode_chunk
from soundloc_ros.core.pictures import localization_overlay
from soundloc_ros.core.predictor import STAGES as PREDICTOR_STAGES
from soundloc_ros.core.predictor import Predictor
from soundloc_ros.ros.conversions import (
    image_to_numpy,
    numpy_to_image,
    stream_format_from_info,
)
from soundloc_ros.ros.node_runtime import diagnostic_array, diagnostic_status, run
from soundloc_ros.ros.parameters import (
    RATES,
    SPECS,
    check_choice,
    descriptor,
    source_threshold,
)

try:
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

LATCHED = QoSProfile(
    depth=1,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
VOLATILE_INFO = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)  # matches any
RETRY_BUNDLE_S = 5.0
RATE_KEYS = {"image": "image_rate_hz", "audio": "audio_chunk_rate_hz", "output": "output_rate_hz"}
ERROR_THROTTLE_S = 5.0
STAGES = ("decode", *PREDICTOR_STAGES, "publish", "processing")  # /diagnostics: <stage>_p50_ms


def detection_array(header, box: tuple[float, float, float, float], score: float | None):
    """The sounding source as perception consumers read objects: one Detection2D with the
    mask's box (pixels of the frame) and the source score (1.0 for an uncalibrated bundle)."""
    detection = Detection2D(header=header)
    centre_u, centre_v, width, height = box
    detection.bbox.center.position.x, detection.bbox.center.position.y = centre_u, centre_v
    detection.bbox.size_x, detection.bbox.size_y = width, height
    hypothesis = ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id = "sounding_source"
    hypothesis.hypothesis.score = 1.0 if score is None else float(score)
    detection.results = [hypothesis]
    return Detection2DArray(header=header, detections=[detection])


def stamp_seconds(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def input_qos(name: str, depth: int) -> QoSProfile:
    if name == "sensor_data":
        return QoSProfile(
            depth=depth,
            history=HistoryPolicy.KEEP_LAST,
            reliability=qos_profile_sensor_data.reliability,
            durability=qos_profile_sensor_data.durability,
        )
    if name == "reliable":
        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
    return QoSProfile(depth=depth)


class LocalizerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("soundloc", **kwargs)
        for name, spec in SPECS.items():
            self.declare_parameter(name, spec.default, descriptor(name, spec))
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.drops: Counter[str] = Counter()
        self.published = 0
        self.latencies_ms: deque[float] = deque(maxlen=1000)  # frame arrival -> published
        # per-frame milliseconds by stage: decode (image callback), preprocess, inference (the
        # backend alone), postprocess, publish, and processing (the inference thread's whole turn)
        self.stage_ms: dict[str, deque[float]] = {stage: deque(maxlen=1000) for stage in STAGES}
        self.coverage: deque[float] = deque(maxlen=300)
        self.predictor: Predictor | None = None
        self.pipeline: FramePipeline | None = None
        self.model_error = ""
        self.camera: CameraModel | None = None  # from camera_info; enables the bearing
        self._last_error_log: dict[str, float] = {}
        self.received: Counter[str] = Counter()  # image, audio: since the start
        self._before: Counter[str] = Counter()  # received, published and drops before this period
        window = self.param("expected_rate.window")
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._rate_windows = {name: RateWindow(window) for name in RATES}
        for rate_window in self._rate_windows.values():
            rate_window.add(self._steady.now().nanoseconds * 1e-9, 0)
        self._wrong_types: set[tuple[str, str]] = set()  # warned about once
        self._last_info: tuple | None = None

        self.stream = AudioStreamFormat(
            sample_rate=self.param("audio.sample_rate"),
            channels=self.param("audio.channels"),
            sample_format=self.param("audio.sample_format"),
        )
        self.stream_error = ""  # why the announced audio format cannot be used; "" when it can
        self.scheduler = FrameScheduler(
            self._pairing_config(), self.stream.sample_rate, clock=self._node_time_s
        )

        qos = self.param("input_qos")
        self.image_sub = self._subscribe_image(input_qos(qos, 1))
        self.audio_sub = self.create_subscription(
            AudioDataStamped, "audio_stamped", self._on_audio, input_qos(qos, 50)
        )
        self._subscribe_audio_info()
        self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, input_qos(qos, 1))
        self.heatmap_pub = self.create_publisher(Image, "~/heatmap", 5)
        self.mask_pub = self.create_publisher(Image, "~/mask", 5)
        self.overlay_pub = self.create_publisher(Image, "~/overlay", 5)
        self.bearing_pub = self.create_publisher(Vector3Stamped, "~/bearing", 5)
        self.marker_pub = self.create_publisher(Marker, "~/marker", 5)
        self.score_pub = self.create_publisher(Float32, "~/source_score", 5)
        self.detections_pub = self.create_publisher(Detection2DArray, "~/detections", 5)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 5)
        self.create_timer(
            self.param("diagnostics_period"), self._publish_diagnostics, clock=self._steady
        )

        self._load_model()
        if self.predictor is None:
            self._retry_timer = self.create_timer(
                RETRY_BUNDLE_S, self._retry_model, clock=self._steady
            )
        self._running = True
        self._worker = threading.Thread(target=self._inference_loop, daemon=True)
        self._worker.start()

    # --- parameters ---
    def param(self, name: str):
        return self.get_parameter(name).value

    def _node_time_s(self) -> float:
        """The node's clock (simulated with use_sim_time): what pairing deadlines run on."""
        return self.get_clock().now().nanoseconds * 1e-9

    # --- subscriptions ---
    def _subscribe_image(self, qos: QoSProfile):
        """Raw `image`, or `<resolved image>/compressed` as image_transport names it (so a
        remap of `image` moves both, as with image_transport)."""
        if self.param("image_transport") == "raw":
            return self.create_subscription(Image, "image", self._on_image, qos)
        topic = self.resolve_topic_name("image") + "/compressed"
        return self.create_subscription(CompressedImage, topic, self._on_compressed_image, qos)

    def _subscribe_audio_info(self) -> None:
        """AudioInfo from publishers of either durability.

        A best-effort volatile subscription matches every publisher (reliable or not, latched
        or not; audio_capture releases with a volatile AudioInfo repeat it every 5 s) but gets
        no history. A transient-local one gets a latched AudioInfo published before the node
        started (soundloc_capture), but is incompatible with a volatile publisher: both ends
        would log a QoS warning. So the volatile one always, and the transient-local one once
        a latched publisher shows up (`_follow_latched_audio_info`). A latched AudioInfo then
        arrives twice; repeats are ignored."""
        self.info_sub = self.create_subscription(
            AudioInfo, "audio_info", self._on_audio_info, VOLATILE_INFO
        )
        self._latched_info_sub = None
        self._follow_latched_audio_info()

    def _follow_latched_audio_info(self) -> None:
        if self._latched_info_sub is not None:
            return
        offered = self.get_publishers_info_by_topic(self.info_sub.topic_name)
        if any(info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for info in offered):
            quiet = SubscriptionEventCallbacks(incompatible_qos=lambda _event: None)  # expected
            self._latched_info_sub = self.create_subscription(
                AudioInfo, "audio_info", self._on_audio_info, LATCHED, event_callbacks=quiet
            )

    def _pairing_config(self) -> PairingConfig:
        return PairingConfig(
            window_s=1.0,  # replaced by the bundle's window once it is loaded
            offset_s=self.param("audio_offset"),
            deadline_s=self.param("audio_deadline"),
            late_policy=self.param("late_policy"),
            min_coverage=self.param("min_audio_coverage"),
            max_ready=self.param("max_queued_frames"),
        )

    def _validate_parameters(self, parameters) -> SetParametersResult:
        """Reject bad choices with the reason (ranges are enforced by rclpy from descriptors)."""
        for parameter in parameters:
            reason = check_choice(parameter.name, parameter.value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        config = self.scheduler.config
        for parameter in parameters:  # plain attribute updates, read by the worker thread
            if parameter.name == "audio_offset":
                config.offset_s = parameter.value
            elif parameter.name == "audio_deadline":
                config.deadline_s = parameter.value
            elif parameter.name == "late_policy":
                config.late_policy = parameter.value
            elif parameter.name == "min_audio_coverage":
                config.min_coverage = parameter.value
            elif parameter.name == "mask_threshold" and self.predictor is not None:
                self.predictor.mask_threshold = parameter.value
            elif parameter.name == "silence_threshold_db" and self.pipeline is not None:
                self.pipeline.silence_threshold_db = parameter.value
            elif parameter.name == "source_threshold" and self.pipeline is not None:
                self.pipeline.source_threshold = source_threshold(parameter.value)
            elif parameter.name == "output_resolution" and self.pipeline is not None:
                self.pipeline.output_resolution = parameter.value
        return SetParametersResult(successful=True)

    # --- model ---
    def _load_model(self) -> None:
        path = self.param("bundle")
        try:
            if not path:
                raise BundleError("parameter 'bundle' is empty: set it to a model bundle directory")
            bundle = load_bundle(path)
            backend = create_backend(
                bundle,
                self.param("backend"),
                self.param("engine_cache_dir"),
                self.param("precision"),
                fallback=self.param("tensorrt_fallback"),
                threads=self.param("threads"),
            )
        except (BundleError, OSError, RuntimeError) as error:
            self.model_error = str(error)
            self.get_logger().error(
                f"no model loaded: {error} (retrying every {RETRY_BUNDLE_S:.0f} s)"
            )
            return
        self.scheduler.config.window_s = bundle.audio_frontend.window_seconds
        self.predictor = Predictor(backend, mask_threshold=self.param("mask_threshold"))
        self.pipeline = FramePipeline(
            self.predictor,
            self.param("silence_threshold_db"),
            source_threshold(self.param("source_threshold")),
            self.param("output_resolution"),
        )
        self.model_error = ""
        self.get_logger().info(f"loaded {path} on {backend.description}")

    def _retry_model(self) -> None:
        if self.predictor is None:
            self._load_model()
        if self.predictor is not None:
            self._retry_timer.cancel()

    # --- inputs (callbacks: check or decode, then queue; no inference) ---
    def _on_image(self, msg: Image) -> None:
        def decode() -> tuple[np.ndarray, str]:
            camera_encoding_spec(msg.encoding)
            return image_to_numpy(msg), msg.encoding  # a view on the message: no pixel copy

        self._accept_frame(msg.header, decode)

    def _on_compressed_image(self, msg: CompressedImage) -> None:
        self._accept_frame(msg.header, lambda: decode_compressed(msg.data, msg.format))

    def _accept_frame(self, header, decode) -> None:
        """Decode at once, so a bad frame is reported now, not after waiting for its audio."""
        self.received["image"] += 1
        began = time.perf_counter()
        try:
            frame, encoding = decode()
        except ValueError as error:
            self.drops["bad_image"] += 1
            self._warn("bad_image", f"image refused: {error}")
            return
        self.stage_ms["decode"].append((time.perf_counter() - began) * 1e3)
        payload = (header, frame, encoding, time.monotonic())  # wall arrival: for latency
        if not self.scheduler.add_frame(stamp_seconds(header), payload):
            self._warn("time_jump", "image stamps jumped backwards (bag loop?): queue reset")

    def _on_audio(self, msg: AudioDataStamped) -> None:
        self.received["audio"] += 1
        if self.stream_error:
            self.drops["audio_unusable_format"] += 1
            return
        try:
            samples = decode_chunk(msg.audio.data, self.stream)
        except (PcmFormatError, ValueError) as error:
            self.drops["bad_audio"] += 1
            self._warn("bad_audio", f"audio chunk refused: {error}")
            return
        if samples.size == 0:
            self.drops["empty_audio"] += 1
            self._warn("empty_audio", "an audio chunk carried no samples; ignored")
            return
        event = self.scheduler.add_audio(stamp_seconds(msg.header), samples)
        if event.value == "reset":
            self._warn("audio_reset", "audio stamps jumped (bag loop or clock reset): buffer reset")
        elif event.value == "glitch":
            self._warn("audio_glitch", "one audio chunk had a wrong stamp: laid end to end")

    def _on_audio_info(self, msg: AudioInfo) -> None:
        fields = (msg.channels, msg.sample_rate, msg.sample_format, msg.coding_format)
        if fields == self._last_info:
            return  # a repeat (latched ones arrive on both subscriptions): nothing new
        self._last_info = fields
        try:
            stream = stream_format_from_info(msg)
        except (PcmFormatError, ValueError) as error:
            self.drops["bad_audio_info"] += 1
            self.stream_error = str(error)
            self._warn("audio_info", f"audio_info refused, audio ignored until it changes: {error}")
            return
        self.stream_error = ""
        if stream != self.stream:
            self.get_logger().info(f"audio format from audio_info: {stream}")
            if stream.sample_rate != self.stream.sample_rate:
                self.scheduler.reset_audio(stream.sample_rate)
            self.stream = stream

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            self.camera = CameraModel.from_message(msg, self.param("rectified"))
        except ValueError as error:
            self.camera = None
            self._warn("camera_info", f"camera_info refused, no bearing: {error}")
            return
        if self.camera is None:
            self._warn("camera_info", "camera_info has no focal length (uncalibrated): no bearing")

    # --- inference thread ---
    def _inference_loop(self) -> None:
        while self._running:
            paired = self.scheduler.next_frame(timeout_s=0.1)
            if paired is None or self.pipeline is None:
                continue
            try:
                self._process(paired)
            except Exception as error:  # one bad frame must not stop the node
                self.drops["processing_error"] += 1
                self._warn("processing_error", f"frame dropped: {type(error).__name__}: {error}")

    def _process(self, paired: PairedFrame) -> None:
        began = time.perf_counter()
        header, frame, encoding, arrival_s = paired.payload
        self.coverage.append(paired.audio.coverage)
        result = self.pipeline.process(
            frame, encoding, paired.audio.samples, self.stream.sample_rate
        )
        for stage, ms in result.timings_ms.items():
            self.stage_ms[stage].append(ms)
        publish_began = time.perf_counter()
        self._publish(header, frame, encoding, result)
        self.published += 1
        done = time.perf_counter()
        self.latencies_ms.append((time.monotonic() - arrival_s) * 1e3)
        self.stage_ms["publish"].append((done - publish_began) * 1e3)
        self.stage_ms["processing"].append((done - began) * 1e3)

    def _publish(self, header, frame, encoding, result: FrameResult) -> None:
        if result.score is not None:
            self.score_pub.publish(Float32(data=float(result.score)))
        box = result.box()
        if box is not None:
            self.detections_pub.publish(detection_array(header, box, result.score))
        self.heatmap_pub.publish(numpy_to_image(result.heatmap, "32FC1", header))
        mask = result.mask.astype(np.uint8) * 255
        self.mask_pub.publish(numpy_to_image(mask, "mono8", header))
        if self.overlay_pub.get_subscription_count() > 0:
            rgb = to_rgb8(frame, encoding)
            blended = localization_overlay(
                rgb, result.heatmap, result.mask, self.param("overlay_alpha")
            )
            self.overlay_pub.publish(numpy_to_image(blended[..., ::-1], "bgr8", header))
        marker = Marker(header=header, ns="soundloc", id=0)
        direction = result.bearing(self.camera)
        if direction is None:
            marker.action = Marker.DELETE
            self.marker_pub.publish(marker)
            return
        bearing = Vector3Stamped(header=header)
        bearing.vector.x, bearing.vector.y, bearing.vector.z = (float(c) for c in direction)
        self.bearing_pub.publish(bearing)
        marker.type, marker.action = Marker.ARROW, Marker.ADD
        marker.points = [
            Point(),
            Point(x=float(direction[0]), y=float(direction[1]), z=float(direction[2])),
        ]
        marker.scale.x, marker.scale.y, marker.scale.z = 0.02, 0.04, 0.06
        marker.color.r, marker.color.a = 1.0, 1.0
        self.marker_pub.publish(marker)

    # --- diagnostics and logging ---
    def _warn(self, key: str, text: str) -> None:
        """Log an input problem at most every few seconds per kind (they come at frame rate)."""
        now = time.monotonic()
        if now - self._last_error_log.get(key, -1e9) >= ERROR_THROTTLE_S:
            self._last_error_log[key] = now
            self.get_logger().error(text)

    @property
    def stream_usable(self) -> bool:
        return not self.stream_error

    def _totals(self) -> Counter[str]:
        """Everything counted since the start: inputs, outputs and drops by reason."""
        drops = self.drops + self.scheduler.drops
        return (
            self.received
            + Counter(published=self.published)
            + Counter({f"drops.{reason}": n for reason, n in drops.items()})
        )

    def _rate_problems(self, totals: Counter[str]) -> tuple[dict[str, float], list[str]]:
        """Rates over the window (steady time) and those outside their expected bounds."""
        now_s = self._steady.now().nanoseconds * 1e-9
        rates, problems = {}, []
        tolerance = self.param("expected_rate.tolerance")
        for name, window in self._rate_windows.items():
            window.add(now_s, totals["published" if name == "output" else name])
            if window.rate_hz is None:
                continue
            rates[name] = window.rate_hz
            bounds = RateBounds(self.param(f"expected_rate.{name}_min_hz"),
                                self.param(f"expected_rate.{name}_max_hz"), tolerance)  # fmt: skip
            if problem := bounds.problem(name, window.rate_hz):
                problems.append(problem)
        return rates, problems

    def _wrong_publishers(self) -> list[str]:
        """Fixes for publishers of a type the inputs cannot read; each logged once."""
        image_type = IMAGE if self.param("image_transport") == "raw" else COMPRESSED
        expected = {self.image_sub.topic_name: image_type, self.audio_sub.topic_name: STAMPED_AUDIO}
        offered = {
            topic: [info.topic_type for info in self.get_publishers_info_by_topic(topic)]
            for topic in expected
        }
        found = wrong_publishers(expected, offered)
        for key, fix in found.items():
            if key not in self._wrong_types:
                self._wrong_types.add(key)
                self.get_logger().warning(f"a publisher can never reach this node: {fix}")
        return list(found.values())

    def diagnostics(self) -> DiagnosticStatus:
        """This period's status; called once per period (it moves the rate windows on)."""
        totals = self._totals()
        period = totals - self._before
        self._before = totals
        drops = Counter({k[6:]: v for k, v in period.items() if k.startswith("drops.")})
        counts = PeriodCounts(period["image"], period["audio"], period["published"], drops)
        rates, problems = self._rate_problems(totals)
        values = {
            "backend": self.predictor.backend.description if self.predictor else "none",
            **{RATE_KEYS[name]: f"{rate:.1f}" for name, rate in rates.items()},
            "published_total": str(self.published),
            "audio_coverage_mean": f"{np.mean(self.coverage):.3f}" if self.coverage else "n/a",
            **{key: str(n) for key, n in sorted(totals.items()) if key.startswith("drops.")},
        }
        if self.latencies_ms:
            p50, p95, p99 = np.percentile(self.latencies_ms, [50, 95, 99])
            values.update(
                latency_p50_ms=f"{p50:.1f}",
                latency_p95_ms=f"{p95:.1f}",
                latency_p99_ms=f"{p99:.1f}",
            )
        for stage, samples in self.stage_ms.items():
            if samples:
                values[f"{stage}_p50_ms"] = f"{np.median(samples):.2f}"
        problems += self._wrong_publishers()
        level, message = assess(self.model_error, self.stream_error, counts, problems)
        name = f"{self.get_fully_qualified_name()}: localizer"  # diagnostic_updater with use_fqn
        return diagnostic_status(
            bytes([level]), name, message, self.get_fully_qualified_name(), values
        )

    def _publish_diagnostics(self) -> None:
        """The periodic look at the graph, then this period's status."""
        self._follow_latched_audio_info()
        self.diagnostics_pub.publish(diagnostic_array(self, self.diagnostics()))

    def destroy_node(self) -> None:
        self._running = False
        self.scheduler.close()
        self._worker.join(timeout=2.0)
        if self.predictor is not None:
            self.predictor.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run(LocalizerNode, args)


if __name__ == "__main__":
    main()
