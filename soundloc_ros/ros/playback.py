"""Play recorded frames and audio into ROS as a camera and a microphone would deliver them.

Used by the node tests (test/ros: test_localizer_node, test_install): 20 ms audio chunks leave
after their last sample, frames shortly after their stamp, stamps jitter a little, and media time
may run faster than wall time (`speed`) without changing any stamp. The demo plays a recorded bag
instead (soundloc_ros.replay.live). benchmarks/node_pipeline.py drives its own camera and
microphone: it measures latency as arrival minus a wall-clock stamp taken at sending, so it needs
frames sent at their stamp, unjittered, in bgr8 and without CameraInfo, none of which this is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from soundloc_ros.core.pcm import AudioStreamFormat, float_to_pcm
from soundloc_ros.ros.conversions import info_from_stream_format, numpy_to_audio, numpy_to_image

FRAME_ID = "camera_optical_frame"


@dataclass
class Recording:
    """Frames (RGB uint8) at `frame_times` seconds into mono float audio at `sample_rate`."""

    frames: Sequence[np.ndarray]
    frame_times: Sequence[float]
    audio: np.ndarray
    sample_rate: int = 16000


def header_at(stamp_s: float, frame_id: str = FRAME_ID) -> Header:
    header = Header(frame_id=frame_id)
    header.stamp.sec = int(stamp_s)
    header.stamp.nanosec = round((stamp_s - int(stamp_s)) * 1e9) % 1_000_000_000
    return header


def stamp_key(header: Header) -> tuple[int, int, str]:
    return (header.stamp.sec, header.stamp.nanosec, header.frame_id)


def pinhole_info(height: int, width: int, focal_px: float, header: Header) -> CameraInfo:
    info = CameraInfo(header=header, height=height, width=width)
    info.k = [focal_px, 0.0, (width - 1) / 2, 0.0, focal_px, (height - 1) / 2, 0.0, 0.0, 1.0]
    return info


class Player:
    """Publishes on `image`, `camera_info`, `audio_stamped` and `audio_info` of `node`."""

    def __init__(self, node, image_qos=10, audio_qos=100, chunk: int = 320) -> None:
        from soundloc_ros.ros.localizer_node import LATCHED

        self.image = node.create_publisher(Image, "image", image_qos)
        self.camera_info = node.create_publisher(CameraInfo, "camera_info", image_qos)
        self.audio = node.create_publisher(AudioDataStamped, "audio_stamped", audio_qos)
        self.audio_info = node.create_publisher(AudioInfo, "audio_info", LATCHED)
        self.chunk = chunk

    def play(
        self,
        recordings: Sequence[Recording],
        start_s: float,
        spin: Callable[[float], None],
        speed: float = 1.0,
        gap_s: float = 0.0,
        silent: bool = False,
        seed: int = 1,
    ) -> dict[tuple[int, int, str], tuple[int, int]]:
        """Publish the recordings back to back from media time `start_s`; `spin(timeout)` runs
        the caller's executor between messages. Returns {frame header key: (recording, frame)}."""
        rng = np.random.default_rng(seed)
        events, sent, offset = [], {}, start_s
        for j, recording in enumerate(recordings):
            rate = recording.sample_rate
            stream = AudioStreamFormat(sample_rate=rate, channels=1, sample_format="S16LE")
            audio = np.zeros_like(recording.audio) if silent else recording.audio
            pcm = float_to_pcm(np.asarray(audio)[:, None], "S16LE")
            for i in range(0, len(pcm), self.chunk):
                stamp = offset + i / rate + rng.uniform(-0.002, 0.002)  # driver stamp jitter
                arrival = stamp + self.chunk / rate + 0.003
                events.append((arrival, "audio", stamp, (pcm[i : i + self.chunk], stream)))
            for k, (frame, t) in enumerate(
                zip(recording.frames, recording.frame_times, strict=True)
            ):
                stamp = offset + t
                events.append((stamp + 0.008, "image", stamp, frame))
                sent[stamp_key(header_at(stamp))] = (j, k)
            offset += len(audio) / rate + gap_s
        events.sort(key=lambda event: event[0])
        self.audio_info.publish(info_from_stream_format(events[0][3][1]))
        wall0, media0 = time.monotonic(), events[0][0]
        for arrival, kind, stamp, payload in events:
            while (wait := (arrival - media0) / speed - (time.monotonic() - wall0)) > 0:
                spin(min(wait, 0.005))
            header = header_at(stamp)
            if kind == "audio":
                samples, stream = payload
                self.audio.publish(numpy_to_audio(samples, stream, header))
            else:
                height, width = payload.shape[:2]
                self.camera_info.publish(pinhole_info(height, width, 0.9 * width, header))
                self.image.publish(numpy_to_image(payload, "rgb8", header))
        return sent
