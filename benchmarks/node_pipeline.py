"""soundloc_node under a real camera load: 640x480 bgr8 at 30 Hz and 16 kHz audio in 20 ms chunks,
over Fast DDS between processes, for 60 s (after a 5 s warm-up).

The node runs as its own process (`soundloc_node`, default bundle, ONNX Runtime); this process
plays camera and microphone (TuxAV frames scaled to 640x480, their audio) and listens to the
heatmaps. Frame-to-heatmap latency = heatmap arrival - the frame's stamp (the capture time on the
shared clock), so it includes both DDS hops. CPU and RSS of the node process are sampled from
/proc every second; per-frame inference and processing times come from its /diagnostics.
Note: the driver shares the 2 cores with the node (it serializes 27 MB/s of images). It is its own
loop, not soundloc_ros.ros.playback's Player (the node tests'), which sends frames 8 ms after
their stamp, jitters audio stamps and adds CameraInfo, in rgb8: each would change what is measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import record

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "config" / "fastdds_large_messages.xml"
WIDTH, HEIGHT, CAMERA_HZ, RATE, CHUNK = 640, 480, 30.0, 16000, 320


def proc_sample(pid: int) -> tuple[float, float]:
    """(CPU seconds used so far, RSS in MB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return cpu_s, rss_kb / 1024


def media() -> tuple[list[np.ndarray], np.ndarray]:
    from soundloc_training.datasets.tuxav import make_clip

    from soundloc_ros.core.preprocess import resize_rgb

    clips = [make_clip(0, c, 60) for c in (0, 40)]
    frames = [resize_rgb(f, HEIGHT, WIDTH)[..., ::-1].copy() for c in clips for f in c.frames]
    return frames, np.concatenate([c.audio for c in clips])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "bundles" / "default")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=0, help="the node's ONNX Runtime threads")
    parser.add_argument(
        "--transport",
        choices=("large_shm", "fastdds_default"),
        default="large_shm",
        help="large_shm: config/fastdds_large_messages.xml for every process (recommended)",
    )
    parser.add_argument(
        "--qos",
        choices=("sensor_data", "reliable"),
        default="sensor_data",
        help="camera/microphone QoS (the node subscribes with the same)",
    )
    parser.add_argument(
        "--output-resolution",
        choices=("frame", "model"),
        default="frame",
        help="the node's output_resolution: heatmap and mask at the frame's size or the model's",
    )
    args = parser.parse_args()
    if not (args.bundle / "bundle.json").is_file():
        raise SystemExit(f"no bundle at {args.bundle}: run `make bundle` first")

    import rclpy
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from soundloc_ros.core.pcm import AudioStreamFormat, float_to_pcm
    from soundloc_ros.ros.conversions import info_from_stream_format, numpy_to_audio, numpy_to_image
    from soundloc_ros.ros.localizer_node import LATCHED

    os.environ.setdefault("ROS_DOMAIN_ID", str(50 + os.getpid() % 50))
    if args.transport == "large_shm":  # read when the DDS participants are created
        os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(PROFILE)
    else:
        os.environ.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    log = Path(tempfile.mkstemp(prefix="soundloc_node_", suffix=".log")[1])
    node_process = subprocess.Popen(
        [sys.executable, "-m", "soundloc_ros.ros.localizer_node", "--ros-args",
         "-p", f"bundle:={args.bundle}", "-p", "backend:=onnxruntime",
         "-p", f"threads:={args.threads}", "-p", f"input_qos:={args.qos}",
         "-p", f"output_resolution:={args.output_resolution}"],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    frames, audio = media()
    rclpy.init()
    driver = rclpy.create_node("camera_and_microphone")
    qos = qos_profile_sensor_data if args.qos == "sensor_data" else 10
    image_pub = driver.create_publisher(Image, "image", qos)
    audio_pub = driver.create_publisher(AudioDataStamped, "audio_stamped", qos)
    info_pub = driver.create_publisher(AudioInfo, "audio_info", LATCHED)
    stream = AudioStreamFormat(sample_rate=RATE, channels=1, sample_format="S16LE")
    info_pub.publish(info_from_stream_format(stream))
    pcm = float_to_pcm(audio[:, None], "S16LE")

    received: list[tuple[float, float]] = []  # (arrival wall time, latency ms)
    diagnostics: list[dict[str, str]] = []

    def on_heatmap(msg: Image) -> None:
        now = time.time()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        received.append((now, (now - stamp) * 1e3))

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(": localizer"):  # "<node's full name>: localizer"
                diagnostics.append({kv.key: kv.value for kv in status.values})

    driver.create_subscription(Image, "/soundloc/heatmap", on_heatmap, 10)
    driver.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)

    start = time.time()
    sent = {"frames": 0, "chunks": 0}

    def header_at(t: float) -> Header:
        header = Header(frame_id="camera_optical_frame")
        header.stamp.sec, header.stamp.nanosec = int(t), int((t - int(t)) * 1e9)
        return header

    def publish_due() -> None:
        now = time.time()
        while start + (sent["chunks"] + 1) * CHUNK / RATE <= now:  # a chunk leaves once recorded
            first = sent["chunks"] * CHUNK % (len(pcm) - CHUNK)
            chunk_stamp = start + sent["chunks"] * CHUNK / RATE
            msg = numpy_to_audio(pcm[first : first + CHUNK], stream, header_at(chunk_stamp))
            audio_pub.publish(msg)
            sent["chunks"] += 1
        if start + sent["frames"] / CAMERA_HZ <= now:
            stamp = start + sent["frames"] / CAMERA_HZ
            frame = frames[int(stamp - start) % len(frames)]
            image_pub.publish(numpy_to_image(frame, "bgr8", header_at(stamp)))
            sent["frames"] += 1

    samples, warm_index = [], None
    end = start + args.warmup + args.seconds
    next_sample = start
    try:
        while time.time() < end:
            publish_due()
            rclpy.spin_once(driver, timeout_sec=0.002)
            if time.time() >= next_sample:
                samples.append((time.time() - start, *proc_sample(node_process.pid)))
                next_sample += 1.0
                if warm_index is None and time.time() - start >= args.warmup:
                    warm_index = (len(received), sent["frames"], len(samples) - 1)
        rclpy.spin_once(driver, timeout_sec=0.5)
    finally:
        node_process.terminate()
        node_process.wait(10)
        driver.destroy_node()
        rclpy.shutdown()

    first_output, first_frame, first_sample = warm_index
    measured = received[first_output:]
    latencies = np.array([latency for _, latency in measured])
    duration = args.seconds
    t0, cpu0, rss0 = samples[first_sample]
    t1, cpu1, rss1 = samples[-1]
    last = diagnostics[-1] if diagnostics else {}
    drops = {k.removeprefix("drops."): int(v) for k, v in last.items() if k.startswith("drops.")}
    stages = ("decode", "preprocess", "inference", "postprocess", "publish", "processing")
    per_frame = {f"{stage}_p50": float(last.get(f"{stage}_p50_ms", "nan")) for stage in stages}
    decode, processing = per_frame["decode_p50"], per_frame["processing_p50"]
    inference = per_frame["inference_p50"]
    figures = {
        "camera": f"{WIDTH}x{HEIGHT} bgr8 at {CAMERA_HZ:.0f} Hz; audio {RATE} Hz S16LE mono, "
        f"{CHUNK}-sample chunks",
        "seconds": duration,
        "frames_sent": sent["frames"] - first_frame,
        "heatmaps_received": len(measured),
        "output_rate_hz": len(measured) / duration,
        "latency_ms": {
            "p50": float(np.percentile(latencies, 50)),
            "p95": float(np.percentile(latencies, 95)),
            "p99": float(np.percentile(latencies, 99)),
        },
        "node_drops_by_reason": drops,
        "node_per_frame_ms": per_frame,
        "non_inference_share_of_frame_work": (decode + processing - inference)
        / (decode + processing),
        "non_inference_share_of_frame_period": (decode + processing - inference) * CAMERA_HZ / 1e3,
        "node_cpu_cores": (cpu1 - cpu0) / (t1 - t0),
        "node_rss_mb": {"after_warmup": rss0, "end": rss1, "growth": rss1 - rss0},
        "node_rss_timeline_mb": [round(rss, 1) for _, _, rss in samples],
        "node_input_rates_hz": {
            "image": float(last.get("image_rate_hz", "nan")),
            "audio_chunks": float(last.get("audio_chunk_rate_hz", "nan")),
        },
        "backend": last.get("backend", "?"),
        "onnxruntime_threads": args.threads,
        "qos": args.qos,
        "transport": args.transport,
        "output_resolution": args.output_resolution,
    }
    for name, value in figures.items():
        if name != "node_rss_timeline_mb":
            print(f"{name:36s} {value}")
    suffix = "" if args.output_resolution == "frame" else f"_{args.output_resolution}_resolution"
    path = record(f"node_pipeline_{args.qos}_{args.transport}{suffix}", figures)
    print(f"node log: {log}; recorded in {path}")


if __name__ == "__main__":
    main()
