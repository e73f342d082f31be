"""Demo: soundloc_node finds the sounding object in TuxAV scenes it has never seen, over real DDS.

`make demo` exports the default bundle (the committed TuxAV baseline), starts the localizer node,
and plays six unseen TuxAV clips into it as a camera and a microphone would (frames with their
CameraInfo, 20 ms audio chunks with jittered stamps), in real time. It listens to the node's
heatmaps, overlays and bearings, and writes demo_output/overlays.png: one frame per clip with the
heatmap overlay, the true sounding object outlined in white and the heatmap peak marked (green:
inside the object, red: outside). It prints how often the peak falls inside the sounding object
and the node's own latency figures.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Vector3Stamped
from PIL import Image as PILImage
from PIL import ImageDraw
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from soundloc_training.datasets.tuxav import make_clip

from soundloc_ros.ros.conversions import image_to_numpy
from soundloc_ros.ros.localizer_node import LocalizerNode
from soundloc_ros.ros.playback import Player, Recording, stamp_key

ROOT = Path(__file__).resolve().parents[1]
CLASSES = (0, 17, 34, 51, 68, 85)  # six sound classes, clip 50: never used in training
SHOWN_FRAME = 2


def outline(mask: np.ndarray) -> np.ndarray:
    """Pixels on the border of a boolean mask."""
    inner = mask.copy()
    inner[1:-1, 1:-1] &= mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return mask & ~inner


def contact_sheet(panels: list[tuple[np.ndarray, str]], path: Path) -> None:
    size, label_h = panels[0][0].shape[0], 18
    sheet = PILImage.new("RGB", (size * len(panels), size + label_h), "black")
    draw = ImageDraw.Draw(sheet)
    for i, (panel, label) in enumerate(panels):
        sheet.paste(PILImage.fromarray(panel), (i * size, label_h))
        draw.text((i * size + 4, 3), label, fill="white")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "bundles" / "default")
    parser.add_argument("--out", type=Path, default=ROOT / "demo_output")
    parser.add_argument("--speed", type=float, default=1.0, help="media seconds per wall second")
    args = parser.parse_args()
    if not (args.bundle / "bundle.json").is_file():
        raise SystemExit(f"no bundle at {args.bundle}: run `make bundle` (make demo does)")

    print("generating six unseen TuxAV clips ...", flush=True)
    clips = [make_clip(0, c, 50) for c in CLASSES]
    rclpy.init()
    localizer = LocalizerNode(parameter_overrides=[Parameter("bundle", value=str(args.bundle))])
    viewer = rclpy.create_node("demo_viewer")
    player = Player(viewer)
    received: dict[str, dict] = {"heatmap": {}, "overlay": {}, "bearing": {}}
    for name, kind in (("heatmap", Image), ("overlay", Image), ("bearing", Vector3Stamped)):
        viewer.create_subscription(
            kind,
            f"/soundloc/{name}",
            lambda m, n=name: received[n].__setitem__(stamp_key(m.header), m),
            50,
        )
    diagnostics = []
    viewer.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.append(m), 10)
    executor = SingleThreadedExecutor()
    executor.add_node(localizer)
    executor.add_node(viewer)

    recordings = [Recording(c.frames, [1.0, 2.0, 3.0, 4.0, 5.0], c.audio) for c in clips]
    print(f"playing {len(clips)} clips ({5 * len(clips)} s) into soundloc_node ...", flush=True)
    sent = player.play(
        recordings, time.time(), lambda t: executor.spin_once(timeout_sec=t), args.speed
    )
    deadline = time.monotonic() + 10
    while len(received["heatmap"]) < len(sent) and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    end = time.monotonic() + 1.5  # one more diagnostics period
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)

    hits, panels = 0, []
    for key, (j, k) in sorted(sent.items()):
        heatmap = received["heatmap"].get(key)
        if heatmap is None:
            continue
        values = image_to_numpy(heatmap)
        v, u = np.unravel_index(np.argmax(values), values.shape)
        hit = bool(clips[j].masks[k][v, u])
        hits += hit
        if k == SHOWN_FRAME and key in received["overlay"]:
            panel = image_to_numpy(received["overlay"][key])[..., ::-1].copy()  # bgr8 -> rgb
            panel[outline(clips[j].masks[k])] = 255
            colour = (0, 255, 0) if hit else (255, 0, 0)
            panel[max(0, v - 3) : v + 4, max(0, u - 3) : u + 4] = colour
            panels.append((panel, f"{clips[j].category} {'hit' if hit else 'miss'}"))
    sheet = args.out / "overlays.png"
    if panels:
        contact_sheet(panels, sheet)
    status = diagnostics[-1].status[0] if diagnostics else None
    values = {kv.key: kv.value for kv in status.values} if status else {}
    print(f"frames sent {len(sent)}, heatmaps received {len(received['heatmap'])}")
    print(f"heatmap peak inside the sounding object: {hits}/{len(received['heatmap'])} frames")
    print(
        f"node: backend {values.get('backend')}, frame-to-heatmap latency p50 "
        f"{values.get('latency_p50_ms')} ms, p95 {values.get('latency_p95_ms')} ms, inference p50 "
        f"{values.get('inference_p50_ms')} ms; bearings published: {len(received['bearing'])}"
    )
    print(f"wrote {sheet}")
    executor.shutdown()
    localizer.destroy_node()
    viewer.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
