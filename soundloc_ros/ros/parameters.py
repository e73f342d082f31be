"""The localizer node's parameters: one table, declared with descriptors and ranges.

`config/soundloc.yaml` lists every one of them with its default; a test keeps the two in step.
Parameters marked `at_start` are read once (the model, backend, QoS); the others can be changed
while the node runs (`ros2 param set /soundloc mask_threshold 0.6`), and a value outside its
range or choices is rejected with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rcl_interfaces.msg import ParameterType as Type

from soundloc_ros.core.backends import BACKENDS, DEFAULT_ENGINE_CACHE
from soundloc_ros.core.frame_pipeline import OUTPUT_RESOLUTIONS
from soundloc_ros.core.pairing import LATE_POLICIES
from soundloc_ros.core.pcm import MAX_CHANNELS, MAX_SAMPLE_RATE

QOS_CHOICES = ("sensor_data", "reliable", "system_default")
IMAGE_TRANSPORTS = ("raw", "compressed")
RATES = {"image": "camera frames", "audio": "audio chunks", "output": "published frames"}
BUNDLE_THRESHOLD = -2.0  # below any cosine: "use the bundle's calibrated source threshold"


def source_threshold(value: float) -> float | None:
    """The parameter's value -> FramePipeline's override (None: the bundle's threshold)."""
    return None if value < -1.0 else value


@dataclass(frozen=True)
class Spec:
    default: object
    description: str
    at_start: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


SPECS: dict[str, Spec] = {
    "bundle": Spec("", "model bundle directory (bundle.json + model.onnx)", at_start=True),
    "backend": Spec(
        "auto", "inference backend (auto: TensorRT when usable)", True, choices=BACKENDS
    ),
    "tensorrt_fallback": Spec(
        True, "when TensorRT cannot run, use ONNX Runtime instead of failing", at_start=True
    ),
    "engine_cache_dir": Spec(DEFAULT_ENGINE_CACHE, "TensorRT engine cache", at_start=True),
    "precision": Spec("fp16", "TensorRT precision", at_start=True, choices=("fp16", "fp32")),
    "threads": Spec(0, "ONNX Runtime threads (0: one per core)", at_start=True, low=0, high=64),
    "input_qos": Spec(
        "sensor_data", "QoS of the image and audio subscriptions", True, choices=QOS_CHOICES
    ),
    "image_transport": Spec(
        "raw",
        "raw: sensor_msgs/Image on `image`; compressed: CompressedImage (jpeg, png) on "
        "`image/compressed`, image_transport's name for it",
        at_start=True,
        choices=IMAGE_TRANSPORTS,
    ),
    "rectified": Spec(
        False,
        "images are rectified (image_rect): bearings use CameraInfo P; false: raw images, "
        "undistorted with K and D (plumb_bob, rational_polynomial, equidistant)",
    ),
    "audio.sample_rate": Spec(
        16000,
        "Hz, used until audio_info announces the stream",
        at_start=True,
        low=1,
        high=MAX_SAMPLE_RATE,
    ),
    "audio.channels": Spec(
        1,
        "channels (downmixed to mono), until audio_info",
        at_start=True,
        low=1,
        high=MAX_CHANNELS,
    ),
    "audio.sample_format": Spec("S16LE", "S16LE, S32LE, F32LE or U8, until audio_info", True),
    "audio_offset": Spec(0.0, "s: window end relative to the frame stamp", low=-2.0, high=2.0),
    "audio_deadline": Spec(0.25, "s a frame may wait for its audio", low=0.0, high=5.0),
    "late_policy": Spec(
        "pad", "audio incomplete at the deadline: pad (zeros) or drop", choices=LATE_POLICIES
    ),
    "min_audio_coverage": Spec(0.5, "windows with less audio are dropped", low=0.0, high=1.0),
    "max_queued_frames": Spec(
        2, "paired frames waiting for inference", at_start=True, low=1, high=30
    ),
    "silence_threshold_db": Spec(
        -55.0, "dBFS: quieter windows give the no-sound output", low=-120.0, high=0.0
    ),
    "source_threshold": Spec(
        BUNDLE_THRESHOLD,
        "source score (the coarse map's max cosine) a frame must exceed to have a source; "
        f"{BUNDLE_THRESHOLD:g}: the bundle's calibrated threshold",
        low=BUNDLE_THRESHOLD,
        high=1.0,
    ),
    "output_resolution": Spec(
        "frame",
        "size of ~/heatmap and ~/mask: frame (the camera frame's) or model (the model's grid, "
        "56x56 for the default bundle: a 100th of the bytes); peak, bearing and detections are "
        "in frame pixels either way",
        choices=OUTPUT_RESOLUTIONS,
    ),
    "mask_threshold": Spec(
        0.5, "heatmap value above which a pixel is sounding", low=0.01, high=0.99
    ),
    "overlay_alpha": Spec(0.6, "opacity of the heatmap on ~/overlay", low=0.0, high=1.0),
    "diagnostics_period": Spec(
        1.0, "s between /diagnostics messages", at_start=True, low=0.1, high=60.0
    ),
    **{
        f"expected_rate.{name}_{side}_hz": Spec(
            0.0, f"Hz, {side}imum rate of {what} (0: unchecked)", low=0.0, high=10000.0
        )
        for name, what in RATES.items()
        for side in ("min", "max")
    },
    "expected_rate.tolerance": Spec(
        0.1, "rates within [min * (1 - t), max * (1 + t)] are fine", low=0.0, high=1.0
    ),
    "expected_rate.window": Spec(
        5, "diagnostics periods a rate is measured over", at_start=True, low=1, high=100
    ),
}


def descriptor(name: str, spec: Spec) -> ParameterDescriptor:
    text = spec.description + (" (read at start)" if spec.at_start else "")
    if spec.choices:
        text += f"; one of {', '.join(spec.choices)}"
    result = ParameterDescriptor(name=name, description=text, read_only=spec.at_start)
    if spec.low is not None and isinstance(spec.default, float):
        result.type = Type.PARAMETER_DOUBLE
        result.floating_point_range = [
            FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high), step=0.0)
        ]
    elif spec.low is not None and isinstance(spec.default, int):
        result.type = Type.PARAMETER_INTEGER
        result.integer_range = [
            IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)
        ]
    return result


def check_choice(name: str, value: object) -> str | None:
    """Why `value` is not allowed for `name` (None when it is); ranges are checked by rclpy."""
    spec = SPECS.get(name)
    if spec is not None and spec.choices and value not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}; got {value!r}"
    return None
