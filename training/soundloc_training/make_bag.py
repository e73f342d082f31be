"""`soundloc-make-bag`: a benchmark split as a rosbag2, recorded the way a robot would record it.

Clips play back to back. Frames go on the camera topic (rgb8, at their native size, stamped at
the end of their audio window; or, with --image-format jpeg|png, as image_transport's
compressed_image_transport publishes them: CompressedImage on `<camera topic>/compressed`)
with a pinhole CameraInfo; the audio goes out in chunks of
`--chunk` samples, S16LE, each stamped with its first sample's time, with an AudioInfo at the
start; the ground-truth mask of each frame goes on its own topic (mono8, the frame's header),
and beside it, at the same time, the frame's label (std_msgs/String: "positive/<class>", or
"negative/<kind>" for the clips of a benchmark's negatives root, which `--negatives` interleaves
with the positives so that replay can score detection per kind of negative).
MCAP by default (sqlite3 with --storage sqlite3), with metadata.yaml and the QoS a camera and
a microphone driver offer (best effort for sensor data, transient local for AudioInfo), so
`ros2 bag play` reproduces them. The bag is written beside its destination and renamed into
place when complete: an interrupted run leaves no bag that looks whole.
"""

from __future__ import annotations

import io
import shutil
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from soundloc_ros.core.image_codec import encode_image
from soundloc_ros.core.pcm import encode_pcm, float_to_pcm
from soundloc_ros.replay.messages import LABEL_TOPIC, BagTopics, typestore
from soundloc_training.data import load_audio, parse_data_spec
from soundloc_training.datasets.build import NEGATIVES_DIR
from soundloc_training.datasets.public import load_records
from soundloc_training.datasets.records import FrameRecord

SAMPLE_RATE = 16000
FRAME_ID = "camera_optical_frame"
IMAGE_FORMATS = ("raw", "jpeg", "png")
COMPRESSED = "sensor_msgs/msg/CompressedImage"


def _qos(reliable: bool, transient_local: bool, depth: int):
    from rosbags.rosbag2.metadata import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    forever = QosTime(sec=9223372036, nsec=854775807)  # ROS 2's "infinite" duration
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=depth,
        reliability=QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        durability=QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
        deadline=forever,
        lifespan=forever,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=forever,
        avoid_ros_namespace_conventions=False,
    )


class _Messages:
    """rosbags message objects for the few types a soundloc bag holds."""

    def __init__(self) -> None:
        self.store = typestore()
        self.t = self.store.types

    def header(self, stamp_s: float):
        sec = int(stamp_s)
        nanosec = round((stamp_s - sec) * 1e9) % 1_000_000_000
        time = self.t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
        return self.t["std_msgs/msg/Header"](stamp=time, frame_id=FRAME_ID)

    def image(self, stamp_s: float, array: np.ndarray, encoding: str):
        data, step = encode_image(array, encoding)
        return self.t["sensor_msgs/msg/Image"](
            header=self.header(stamp_s), height=array.shape[0], width=array.shape[1],
            encoding=encoding, is_bigendian=0, step=step, data=np.frombuffer(data, np.uint8),
        )  # fmt: skip

    def compressed(self, stamp_s: float, rgb: np.ndarray, codec: str):
        """As compressed_image_transport writes it: the format names the source encoding."""
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format=codec.upper())
        return self.t[COMPRESSED](
            header=self.header(stamp_s), format=f"rgb8; {codec} compressed bgr8",
            data=np.frombuffer(buffer.getvalue(), np.uint8),
        )  # fmt: skip

    def camera_info(self, stamp_s: float, height: int, width: int):
        focal = 0.9 * width  # a 58 degree horizontal field of view, a typical webcam
        cx, cy = (width - 1) / 2, (height - 1) / 2
        roi = self.t["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        )
        return self.t["sensor_msgs/msg/CameraInfo"](
            header=self.header(stamp_s), height=height, width=width, distortion_model="plumb_bob",
            d=np.zeros(5), k=np.array([focal, 0, cx, 0, focal, cy, 0, 0, 1], float),
            r=np.eye(3).ravel(), p=np.array([focal, 0, cx, 0, 0, focal, cy, 0, 0, 0, 1, 0], float),
            binning_x=0, binning_y=0, roi=roi,
        )  # fmt: skip

    def audio(self, stamp_s: float, pcm: bytes):
        data = self.t["audio_common_msgs/msg/AudioData"](data=np.frombuffer(pcm, np.uint8))
        return self.t["audio_common_msgs/msg/AudioDataStamped"](
            header=self.header(stamp_s), audio=data
        )

    def label(self, text: str):
        return self.t["std_msgs/msg/String"](data=text)

    def audio_info(self):
        return self.t["audio_common_msgs/msg/AudioInfo"](
            channels=1, sample_rate=SAMPLE_RATE, sample_format="S16LE",
            bitrate=SAMPLE_RATE * 16, coding_format="wave",
        )  # fmt: skip


@dataclass
class BagClip:
    """One clip to record: RGB frames at `frame_times` seconds into its mono audio."""

    frames: list[np.ndarray]  # [H, W, 3] uint8
    frame_times: list[float]  # seconds from the clip's first sample
    audio: np.ndarray  # float32 in [-1, 1] at SAMPLE_RATE
    masks: list[np.ndarray] | None = None  # [H, W] bool per frame: the sounding object
    label: str | None = None  # "positive/<class>" or "negative/<kind>", sent with each mask


ClipRecords = tuple[str, Path, list[FrameRecord]]  # (label, audio file, its frames' records)


def _clip_records(kind: str, path: Path, split: str, polarity: str) -> list[ClipRecords]:
    """The records of one AVSBench-layout root grouped by clip, in file order."""
    by_clip: dict[Path, list[FrameRecord]] = defaultdict(list)
    for record in load_records(kind, path, split):
        by_clip[record.audio_path].append(record)
    return [
        (f"{polarity}/{records[0].category}" if records[0].category else polarity, audio, records)
        for audio, records in by_clip.items()
    ]


def interleave(first: list, second: list) -> list:
    """Both lists merged evenly (item i of a list of n sits at (i + 0.5) / n), order kept."""
    keyed = [((i + 0.5) / len(first), 0, item) for i, item in enumerate(first)]
    keyed += [((i + 0.5) / len(second), 1, item) for i, item in enumerate(second)]
    return [item for *_, item in sorted(keyed, key=lambda k: k[:2])]


def dataset_clips(
    data: str, split: str, clips: int | None = None, negatives: bool = False
) -> Iterator[BagClip]:
    """The clips of a benchmark split on disk (AVSBench layout), one frame per record; with
    `negatives`, the clips of the same split of its negatives root spread evenly among them."""
    kind, path = parse_data_spec(data)
    selected = _clip_records(kind, path, split, "positive")
    if negatives:
        root = path / NEGATIVES_DIR
        if not root.is_dir():
            raise FileNotFoundError(
                f"{data} has no negatives ({root} is missing); add them with "
                f"`soundloc-make-benchmark {kind} --out {path}` (it keeps the positive clips)"
            )
        selected = interleave(selected, _clip_records(kind, root, split, "negative"))
    selected = selected[:clips]
    if not selected:
        raise ValueError(f"{data} has no {split} frames to write")
    for label, audio_path, records in selected:
        audio = load_audio(audio_path, SAMPLE_RATE)
        duration = len(audio) / SAMPLE_RATE
        frames, times, masks = [], [], []
        for record in records:
            times.append(record.audio_window[1] if record.audio_window else duration / 2 + 0.5)
            frames.append(np.asarray(Image.open(record.image_path).convert("RGB")))
            mask_path = record.ground_truth.mask_path if record.ground_truth else None
            if mask_path is not None:
                masks.append(np.asarray(Image.open(mask_path).convert("L")) > 127)
        has_masks = len(masks) == len(frames)
        yield BagClip(frames, times, audio, masks if has_masks else None, label)


def write_bag(
    clips: Iterable[BagClip],
    out: Path,
    storage: str = "mcap",
    chunk: int = 320,
    start_s: float = 1_700_000_000.0,
    topics: BagTopics = BagTopics(),  # noqa: B008 - frozen dataclass
    image_format: str = "raw",
    label_topic: str = LABEL_TOPIC,
) -> dict[str, int]:
    """Write the clips back to back as one recording; returns the number of messages per topic.

    image_format: raw (Image) or jpeg / png (CompressedImage on `<topics.image>/compressed`)."""
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}")
    from rosbags.rosbag2 import StoragePlugin, Writer

    messages, events, offset = _Messages(), [], start_s
    for clip in tqdm(clips, desc="clips", leave=False):
        pcm = float_to_pcm(clip.audio[:, None], "S16LE")
        for first in range(0, len(pcm), chunk):
            stamp = offset + first / SAMPLE_RATE
            audio = messages.audio(stamp, encode_pcm(pcm[first : first + chunk], "S16LE"))
            events.append((stamp, "audio", audio))
        for k, (rgb, time_s) in enumerate(zip(clip.frames, clip.frame_times, strict=True)):
            stamp = offset + time_s
            if image_format == "raw":
                events.append((stamp, "image", messages.image(stamp, rgb, "rgb8")))
            else:
                events.append((stamp, "image", messages.compressed(stamp, rgb, image_format)))
            events.append((stamp, "camera_info", messages.camera_info(stamp, *rgb.shape[:2])))
            if clip.masks is not None:
                mask = clip.masks[k].astype(np.uint8) * 255
                events.append((stamp, "ground_truth", messages.image(stamp, mask, "mono8")))
                if clip.label is not None:
                    events.append((stamp, "label", messages.label(clip.label)))
        offset += len(pcm) / SAMPLE_RATE
    if not events:
        raise ValueError("no clips to write")
    events.sort(key=lambda event: event[0])
    sensor, latched = _qos(False, False, 5), _qos(True, True, 1)
    image_topic = topics.image + ("" if image_format == "raw" else "/compressed")
    kinds = {
        "image": ("sensor_msgs/msg/Image" if image_format == "raw" else COMPRESSED, sensor),
        "camera_info": ("sensor_msgs/msg/CameraInfo", sensor),
        "audio": ("audio_common_msgs/msg/AudioDataStamped", sensor),
        "audio_info": ("audio_common_msgs/msg/AudioInfo", latched),
        "ground_truth": ("sensor_msgs/msg/Image", _qos(True, False, 10)),
        "label": ("std_msgs/msg/String", _qos(True, False, 10)),
    }
    names = asdict(topics) | {"image": image_topic, "label": label_topic}
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    counts: dict[str, int] = defaultdict(int)
    staging = out.parent / f".{out.name}.partial"  # renamed into place when complete
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with Writer(staging / out.name, version=9, storage_plugin=plugin) as writer:
        connections = {
            name: writer.add_connection(
                names[name],
                msgtype,
                typestore=messages.store,
                offered_qos_profiles=[qos],
            )
            for name, (msgtype, qos) in kinds.items()
        }
        events.insert(0, (start_s, "audio_info", messages.audio_info()))
        for stamp, name, message in events:
            msgtype = kinds[name][0]
            data_bytes = messages.store.serialize_cdr(message, msgtype)
            writer.write(connections[name], round(stamp * 1e9), bytes(data_bytes))
            counts[names[name]] += 1
    (staging / out.name).rename(out)
    staging.rmdir()
    return dict(counts)
