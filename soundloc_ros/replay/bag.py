"""Reading a recorded rosbag2 (MCAP or sqlite3) for replay, with `rosbags`: no ROS needed.

`BagSource` opens a bag, finds the camera, microphone and (optional) camera-info, audio-info and
ground-truth topics by name, and checks their types before anything is replayed (the camera may
be raw Image or image_transport's CompressedImage, jpeg or png: a bag recorded from
`<camera>/compressed` is found under the camera's base name too), so a bag that
cannot be used fails at once with a message that says what is wrong and which argument fixes it.
Messages come out in recording order (log time) as raw CDR bytes, which live replay publishes
unchanged and offline replay decodes with the same codecs the node uses. A message whose bytes
do not deserialize (a recorder's torn write) is skipped, counted and listed with its topic, log
time and reason (`drops`, `errors`), so one bad message never ends a replay or an ingest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundloc_ros.core.frame_pipeline import CameraModel
from soundloc_ros.core.image_codec import camera_encoding_spec, decode_compressed, decode_image
from soundloc_ros.core.interop import COMPRESSED, COMPRESSED_SUFFIX
from soundloc_ros.core.pcm import AudioStreamFormat, decode_chunk
from soundloc_ros.replay.messages import LABEL_TOPIC, BagTopics, typestore

IMAGE_TYPE = "sensor_msgs/msg/Image"
EXPECTED_TYPES = {
    "image": (IMAGE_TYPE, COMPRESSED),
    "camera_info": ("sensor_msgs/msg/CameraInfo",),
    "audio": ("audio_common_msgs/msg/AudioDataStamped",),
    "audio_info": ("audio_common_msgs/msg/AudioInfo",),
    "ground_truth": (IMAGE_TYPE,),
    "label": ("std_msgs/msg/String",),  # LABEL_TOPIC: what kind of frame each mask is
}
REQUIRED = ("image", "audio")
LISTED = 100  # undecodable messages listed one by one in a report; more are only counted
FLAGS = {  # the command-line option that names each topic
    "image": "--image-topic",
    "camera_info": "--camera-info-topic",
    "audio": "--audio-topic",
    "audio_info": "--audio-info-topic",
    "ground_truth": "--ground-truth-topic",
}
HINTS = {
    "audio_common_msgs/msg/AudioData": "its chunks carry no timestamps; record the stamped "
    "topic of the capture node (audio_capture and soundloc_capture: audio_stamped)",
}


class ReplayError(RuntimeError):
    """The bag cannot be replayed as asked; the message says what is wrong and how to fix it."""


StampKey = tuple[int, int]  # (sec, nanosec) of a header stamp: how outputs find their frame


def stamp_key(header) -> StampKey:
    return (int(header.stamp.sec), int(header.stamp.nanosec))


def stamp_seconds(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


@dataclass(frozen=True)
class BagMessage:
    kind: str  # image, camera_info, audio, audio_info, ground_truth, label
    topic: str
    msgtype: str
    log_time_ns: int  # when the recorder received it
    raw: bytes  # CDR, as recorded


@dataclass(frozen=True)
class TopicInfo:
    topic: str
    msgtype: str
    count: int
    qos: list  # rosbags Qos profiles offered by the recorded publisher


class BagSource:
    """A bag's soundloc topics, type-checked; iterate `messages()` in recording order."""

    def __init__(self, path: str | Path, topics: BagTopics = BagTopics()) -> None:  # noqa: B008
        from rosbags.highlevel import AnyReader

        self.path = Path(path)
        if not self.path.exists():
            raise ReplayError(f"no bag at {self.path}: give a rosbag2 directory or its .mcap file")
        try:
            self._reader = AnyReader([self.path], default_typestore=typestore())
            self._reader.open()
        except Exception as error:  # rosbags raises several types for damaged or foreign files
            raise ReplayError(
                f"cannot read {self.path} as a rosbag2 (MCAP or sqlite3): "
                f"{type(error).__name__}: {error}. Check that `ros2 bag info {self.path}` "
                "reads it; ROS 1 .bag files need `rosbags-convert` first"
            ) from error
        self.topics = topics
        self.info: dict[str, TopicInfo] = {}
        self._connections = {}
        self._undecodable = 0
        self._listed: list[dict[str, object]] = []  # topic, log time, reason: the first LISTED
        self._find_topics()

    def _find_topics(self) -> None:
        recorded = {}
        for connection in self._reader.connections:
            recorded.setdefault(connection.topic, []).append(connection)
        listing = ", ".join(f"{t} ({c[0].msgtype})" for t, c in sorted(recorded.items()))
        for kind, expected in EXPECTED_TYPES.items():
            topic = LABEL_TOPIC if kind == "label" else getattr(self.topics, kind)
            if kind == "image" and topic not in recorded and topic + COMPRESSED_SUFFIX in recorded:
                topic += COMPRESSED_SUFFIX  # recorded from image_transport's compressed topic
            connections = recorded.get(topic)
            if not connections:
                if kind in REQUIRED:
                    raise ReplayError(
                        f"{self.path} has no {kind} topic {topic!r}; name it with "
                        f"{FLAGS[kind]}. Recorded topics: {listing or 'none'}"
                    )
                continue
            msgtype = connections[0].msgtype
            if msgtype not in expected:
                hint = HINTS.get(msgtype, f"replay reads {' or '.join(expected)}")
                raise ReplayError(f"{topic} in {self.path} is {msgtype}, not {expected[0]}: {hint}")
            self._connections[kind] = connections
            self.info[kind] = TopicInfo(
                topic,
                msgtype,
                sum(c.msgcount for c in connections),
                [q for c in connections for q in getattr(c.ext, "offered_qos_profiles", [])],
            )

    @property
    def has_ground_truth(self) -> bool:
        return "ground_truth" in self.info

    @property
    def duration_s(self) -> float:
        return self._reader.duration * 1e-9

    def messages(self) -> Iterator[BagMessage]:
        kinds = {id(c): kind for kind, cs in self._connections.items() for c in cs}
        connections = [c for cs in self._connections.values() for c in cs]
        for connection, log_time_ns, raw in self._reader.messages(connections=connections):
            kind = kinds[id(connection)]
            yield BagMessage(kind, connection.topic, connection.msgtype, log_time_ns, bytes(raw))

    def decode(self, message: BagMessage):
        """The message as a rosbags object (fields as in the .msg; arrays as numpy), or None
        when its bytes do not deserialize: then it is counted and listed (see `errors`)."""
        try:
            return self._reader.deserialize(message.raw, message.msgtype)
        except Exception as error:  # rosbags raises several types for damaged bytes
            self._undecodable += 1
            if len(self._listed) < LISTED:
                reason = f"{message.msgtype} does not deserialize: {type(error).__name__}: {error}"
                self._listed.append({"topic": message.topic, "log_time_ns": message.log_time_ns,
                                     "reason": reason})  # fmt: skip
            return None

    @property
    def drops(self) -> Counter[str]:
        """{"undecodable": count} once a message did not deserialize."""
        return Counter({"undecodable": self._undecodable} if self._undecodable else {})

    @property
    def errors(self) -> dict[str, list[dict[str, object]]]:
        """{"undecodable": [{topic, log_time_ns, reason}, ...]}: the first LISTED of them."""
        return {"undecodable": list(self._listed)} if self._listed else {}

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> BagSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def decode_frame(msg) -> tuple[np.ndarray, str]:
    """A camera Image or CompressedImage -> (decoded array, encoding); ValueError naming an
    unusable encoding or codec."""
    if hasattr(msg, "format"):  # CompressedImage: Image has no `format` field
        return decode_compressed(msg.data, msg.format)
    camera_encoding_spec(msg.encoding)
    frame = decode_image(
        msg.data, msg.height, msg.width, msg.encoding, msg.step, bool(msg.is_bigendian)
    )
    return frame, msg.encoding


def decode_mask(msg) -> np.ndarray:
    """A ground-truth mask Image (mono8 0/255, or any 8-bit mono) -> bool [H, W]."""
    if msg.encoding not in ("mono8", "8UC1"):
        raise ValueError(f"ground-truth masks must be mono8 (0/255); got {msg.encoding!r}")
    return decode_image(msg.data, msg.height, msg.width, "mono8", msg.step, False) > 127


def decode_audio(msg, stream: AudioStreamFormat) -> np.ndarray:
    """An AudioDataStamped chunk -> mono float32 samples in [-1, 1]."""
    return decode_chunk(msg.audio.data, stream)


def stream_from_info(msg) -> AudioStreamFormat:
    return AudioStreamFormat.from_info(
        msg.coding_format, msg.sample_format, int(msg.channels), int(msg.sample_rate)
    )


def camera_from_info(msg, rectified: bool = False) -> CameraModel | None:
    """ValueError naming the fix for a distortion model the bearing cannot undo."""
    return CameraModel.from_message(msg, rectified)
