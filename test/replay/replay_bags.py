"""Bags for the replay tests, written with rosbags directly (not with soundloc-make-bag), the way
another robot's recorder might: its own topic names, bgr8 frames, 48 kHz stereo audio."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PilImage

from soundloc_ros.core.pcm import encode_pcm, float_to_pcm
from soundloc_ros.replay.messages import typestore

T0 = 1_750_000_000.0
COMPRESSED = "sensor_msgs/msg/CompressedImage"


@dataclass
class Scene:
    """Frames (RGB), their masks and the stereo audio they were recorded with."""

    frames: list[np.ndarray]
    masks: list[np.ndarray]
    frame_times: list[float]  # seconds from the first audio sample
    audio: np.ndarray  # [n, 2] float32
    sample_rate: int = 48000

    @property
    def mono(self) -> np.ndarray:
        return self.audio.mean(axis=1)


def make_scene(n_frames: int = 6, height: int = 120, width: int = 160, seed: int = 0) -> Scene:
    """A bright rectangle (the sounding object) on a dark noisy background, moving per frame."""
    rng = np.random.default_rng(seed)
    frames, masks = [], []
    for _ in range(n_frames):
        frame = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        mask = np.zeros((height, width), bool)
        top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
        mask[top : top + height // 2, left : left + width // 2] = True
        frame[mask] = 220
        frames.append(frame)
        masks.append(mask)
    rate, seconds = 48000, n_frames + 1.0
    t = np.arange(int(seconds * rate)) / rate
    left = 0.2 * np.sin(2 * np.pi * 330 * t) + 0.02 * rng.standard_normal(t.size)
    audio = np.stack([left, 0.5 * left], axis=1).astype(np.float32)
    return Scene(frames, masks, [1.0 + k for k in range(n_frames)], audio, rate)


@dataclass
class Topics:
    image: str = "/front_cam/color/image_raw"
    camera_info: str = "/front_cam/color/camera_info"
    audio: str = "/mic_array/audio"
    audio_info: str = "/mic_array/audio_info"
    ground_truth: str = "/labels/sounding_mask"
    omit: set[str] = field(default_factory=set)  # kinds not to record


def write_scene_bag(
    path: Path,
    scene: Scene,
    topics: Topics = Topics(),  # noqa: B008
    storage: str = "sqlite3",
    encoding: str = "bgr8",
    chunk: int = 960,
    compression: str = "",
    corrupt: frozenset[tuple[str, int]] = frozenset(),
) -> Path:
    """`compression` (jpeg, png): frames as image_transport's compressed_image_transport
    publishes them, CompressedImage on `<image topic>/compressed`. `corrupt`: (kind, k) pairs
    whose k-th message of that kind is written cut in half, as a recorder's torn write leaves
    it (the CDR bytes no longer deserialize)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = typestore()
    types = store.types

    def header(stamp: float):
        sec = int(stamp)
        time = types["builtin_interfaces/msg/Time"](sec=sec, nanosec=round((stamp - sec) * 1e9))
        return types["std_msgs/msg/Header"](stamp=time, frame_id="front_cam_optical")

    def image(stamp: float, array: np.ndarray, enc: str):
        channels = 1 if array.ndim == 2 else array.shape[2]
        return types["sensor_msgs/msg/Image"](
            header=header(stamp), height=array.shape[0], width=array.shape[1], encoding=enc,
            is_bigendian=0, step=array.shape[1] * channels, data=array.reshape(-1).copy(),
        )  # fmt: skip

    events = []  # (log time s, kind, message, msgtype)
    pcm = float_to_pcm(scene.audio, "S16LE")
    for first in range(0, len(pcm), chunk):
        stamp = T0 + first / scene.sample_rate
        data = types["audio_common_msgs/msg/AudioData"](
            data=np.frombuffer(encode_pcm(pcm[first : first + chunk], "S16LE"), np.uint8)
        )
        message = types["audio_common_msgs/msg/AudioDataStamped"](header=header(stamp), audio=data)
        arrival = stamp + chunk / scene.sample_rate  # a recorder logs a chunk after its last sample
        events.append((arrival, "audio", message, "audio_common_msgs/msg/AudioDataStamped"))
    height, width = scene.frames[0].shape[:2]
    for frame, mask, time_s in zip(scene.frames, scene.masks, scene.frame_times, strict=True):
        stamp = T0 + time_s
        pixels = frame[..., ::-1] if encoding == "bgr8" else frame
        if compression:
            buffer = io.BytesIO()
            PilImage.fromarray(frame).save(buffer, format=compression.upper())
            message = types[COMPRESSED](
                header=header(stamp), format=f"{encoding}; {compression} compressed bgr8",
                data=np.frombuffer(buffer.getvalue(), np.uint8),
            )  # fmt: skip
            events.append((stamp + 0.005, "image", message, COMPRESSED))
        else:
            message = image(stamp, np.ascontiguousarray(pixels), encoding)
            events.append((stamp + 0.005, "image", message, "sensor_msgs/msg/Image"))
        focal = 0.8 * width
        info = types["sensor_msgs/msg/CameraInfo"](
            header=header(stamp), height=height, width=width, distortion_model="plumb_bob",
            d=np.zeros(5), k=np.array([focal, 0, width / 2, 0, focal, height / 2, 0, 0, 1.0]),
            r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0, binning_y=0,
            roi=types["sensor_msgs/msg/RegionOfInterest"](
                x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
            ),
        )  # fmt: skip
        events.append((stamp + 0.005, "camera_info", info, "sensor_msgs/msg/CameraInfo"))
        truth = image(stamp, mask.astype(np.uint8) * 255, "mono8")
        events.append((stamp + 0.006, "ground_truth", truth, "sensor_msgs/msg/Image"))
    audio_info = types["audio_common_msgs/msg/AudioInfo"](
        channels=2, sample_rate=scene.sample_rate, sample_format="S16LE",
        bitrate=scene.sample_rate * 32, coding_format="wave",
    )  # fmt: skip
    events.append((T0, "audio_info", audio_info, "audio_common_msgs/msg/AudioInfo"))
    events = sorted((e for e in events if e[1] not in topics.omit), key=lambda e: e[0])
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        connections, written = {}, Counter()
        for log_time, kind, message, msgtype in events:
            if kind not in connections:
                topic = getattr(topics, kind) + ("/compressed" if msgtype == COMPRESSED else "")
                connections[kind] = writer.add_connection(topic, msgtype, typestore=store)
            raw = bytes(store.serialize_cdr(message, msgtype))
            if (kind, written[kind]) in corrupt:
                raw = raw[: len(raw) // 2]
            written[kind] += 1
            writer.write(connections[kind], round(log_time * 1e9), raw)
    return path
