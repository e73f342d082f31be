"""Foundation demo: a camera and a microphone over ROS 2, received and turned into features.

Until the localizer node lands (issues 7 and 9), `make demo` shows the pieces that exist working
together for real: a "sensor" node publishes 10 Hz camera frames (sensor_msgs/Image, bgr8) and
20 ms microphone chunks (audio_common_msgs/AudioDataStamped, S16LE, stamped with the first
sample's time, plus a latched AudioInfo) of a scene whose sound changes over time; a "listener"
node receives them over Fast DDS, rebuilds the audio stream from the stamps, and computes the
log-mel features of the 1 s window ending at each frame's stamp. It writes a picture of frames
and their feature windows to demo_output/foundation.png.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import rclpy
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from soundloc_ros.core.features import LogMelConfig, compute_features
from soundloc_ros.core.image_codec import to_rgb8
from soundloc_ros.core.pcm import AudioStreamFormat, downmix, float_to_pcm, pcm_to_float
from soundloc_ros.ros.conversions import (
    audio_to_numpy,
    image_to_numpy,
    info_from_stream_format,
    numpy_to_audio,
    numpy_to_image,
    stream_format_from_info,
)

RATE = 16000
CHUNK = 320  # 20 ms
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def scene_audio(seconds: float) -> np.ndarray:
    """A siren-like sweep for the first half, then a two-tone chime, over faint noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    sweep = 0.4 * np.sin(2 * np.pi * (600 * t + 300 * np.sin(2 * np.pi * 0.5 * t)))
    chime = 0.3 * (np.sin(2 * np.pi * 880 * t) + np.sin(2 * np.pi * 1320 * t))
    noise = np.random.default_rng(0).normal(0, 0.01, t.size)
    return np.where(t < seconds / 2, sweep, chime) + noise


def scene_frame(index: int) -> np.ndarray:
    """A 120x160 bgr8 frame: a disc moving left to right over a gradient."""
    yy, xx = np.mgrid[0:120, 0:160]
    frame = np.stack([xx * 255 // 160, yy * 255 // 120, np.full_like(xx, 60)], axis=-1)
    cx = 20 + (6 * index) % 120
    frame[(xx - cx) ** 2 + (yy - 60) ** 2 < 18**2] = (40, 40, 230)
    return frame.astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path("demo_output"))
    args = parser.parse_args()

    rclpy.init()
    sensor = rclpy.create_node("demo_sensors")
    listener = rclpy.create_node("demo_listener")
    stream = AudioStreamFormat(sample_rate=RATE, channels=1, sample_format="S16LE")
    image_pub = sensor.create_publisher(Image, "camera/image_raw", 10)
    audio_pub = sensor.create_publisher(AudioDataStamped, "audio", 50)
    info_pub = sensor.create_publisher(AudioInfo, "audio_info", LATCHED)

    frames: list[tuple[float, np.ndarray]] = []
    chunks: dict[float, np.ndarray] = {}
    received_format: list[AudioStreamFormat] = []

    def stamp_seconds(header: Header) -> float:
        return header.stamp.sec + header.stamp.nanosec * 1e-9

    listener.create_subscription(
        AudioInfo,
        "audio_info",
        lambda m: received_format.append(stream_format_from_info(m)),
        LATCHED,
    )
    listener.create_subscription(
        Image,
        "camera/image_raw",
        lambda m: frames.append((stamp_seconds(m.header), to_rgb8(image_to_numpy(m), m.encoding))),
        10,
    )
    listener.create_subscription(
        AudioDataStamped,
        "audio",
        lambda m: chunks.__setitem__(
            stamp_seconds(m.header),
            audio_to_numpy(m, received_format[-1] if received_format else stream),
        ),
        50,
    )

    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(sensor)
    executor.add_node(listener)
    info_pub.publish(info_from_stream_format(stream))

    audio = float_to_pcm(scene_audio(args.seconds), "S16LE")
    start = time.time()
    n_chunks = audio.size // CHUNK
    print(
        f"publishing {args.seconds:.1f} s of audio in {n_chunks} chunks and 10 Hz frames over DDS"
    )
    for k in range(n_chunks):
        header = Header(frame_id="microphone")
        t = start + k * CHUNK / RATE
        header.stamp.sec, header.stamp.nanosec = int(t), int((t % 1) * 1e9)
        audio_pub.publish(numpy_to_audio(audio[k * CHUNK : (k + 1) * CHUNK], stream, header))
        if k % 5 == 4:  # a frame every 100 ms, stamped at the end of this chunk
            header = Header(frame_id="camera_optical_frame")
            t_frame = t + CHUNK / RATE
            header.stamp.sec, header.stamp.nanosec = int(t_frame), int((t_frame % 1) * 1e9)
            image_pub.publish(numpy_to_image(scene_frame(k // 5), "bgr8", header))
        while time.time() < t + CHUNK / RATE:  # real-time pace, as a microphone delivers
            executor.spin_once(timeout_sec=0.005)
    deadline = time.monotonic() + 5.0
    while len(chunks) < n_chunks and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    print(f"received {len(chunks)}/{n_chunks} audio chunks and {len(frames)} frames")

    # rebuild the stream by placing each chunk at its stamp (a lost chunk stays silent), then
    # cut the 1 s window ending at each frame's stamp
    stamps = sorted(chunks)
    waveform = np.zeros(round((stamps[-1] - stamps[0]) * RATE) + CHUNK, np.float32)
    for s in stamps:
        offset = round((s - stamps[0]) * RATE)
        waveform[offset : offset + CHUNK] = downmix(pcm_to_float(chunks[s]))
    config = LogMelConfig()
    picks = [frames[i] for i in np.linspace(len(frames) // 4, len(frames) - 1, 3).astype(int)]
    features = []
    for stamp, _ in picks:
        end = round((stamp - stamps[0]) * RATE)
        features.append(
            compute_features(waveform[max(0, end - config.n_samples) : end], RATE, config)
        )
        print(
            f"frame at +{stamp - stamps[0]:.2f} s -> features {features[-1].shape}, "
            f"strongest band {int(features[-1].mean(axis=1).argmax())}"
        )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, len(picks), figsize=(4 * len(picks), 5.5))
    for column, ((stamp, frame), feats) in enumerate(zip(picks, features, strict=True)):
        axes[0, column].imshow(frame)
        axes[0, column].set_title(f"frame at +{stamp - stamps[0]:.2f} s")
        axes[0, column].axis("off")
        axes[1, column].imshow(feats, origin="lower", aspect="auto", cmap="magma")
        axes[1, column].set_xlabel("10 ms frames of the preceding 1 s")
        axes[1, column].set_ylabel("mel band")
    figure.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out / "foundation.png", dpi=80)
    print(f"wrote {args.out / 'foundation.png'}")
    executor.shutdown()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
