"""Demo: soundloc_node localizes sounding objects in a rosbag of TuxAV scenes it has never seen.

`make demo` exports the default bundle (the committed TuxAV uspl run), records twelve unseen
TuxAV clips and, spread among them, seven unseen negatives (two off-screen sounds, pink noise,
mains hum, a fan, distant babble, digital silence) as a rosbag2 the way a robot would (camera
frames with CameraInfo, 20 ms microphone chunks with AudioInfo, and the true sounding-object masks
and each frame's positive/negative label on their own topics), then replays that bag in real time
over DDS into a `soundloc_node` process and scores what the node publishes:
`soundloc-replay-eval bags/demo_tuxav_negatives --bundle bundles/default --live`. It prints the
scores and latency and writes demo_output/contact_sheet.png (heatmap overlays with the mask
outlined in cyan; the true object outlined in white, the node's peak green when on it, red when
not) and demo_output/overlay.gif.
The bag is kept, so later runs skip straight to the replay (a bag recorded before the negatives,
bags/demo_tuxav, is left alone).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSES = range(0, 103, 9)  # twelve sound classes spread over TuxAV's 103
CLIP_INDEX = 50  # training uses clips 0-7 of each class, val 8-9, test 10-11: never seen
NEGATIVES = ("offscreen", "noise_pink", "noise_hum", "offscreen", "noise_fan", "noise_babble",
             "silence")  # fmt: skip
NEGATIVE_INDEX = 1000  # benchmarks use negatives 0 to 2 x --negatives - 1: never seen
FRAME_TIMES = [1.0, 2.0, 3.0, 4.0, 5.0]  # frame k pairs with audio second [k - 1, k]


def make_demo_bag(path: Path) -> None:
    from soundloc_training.datasets.negatives import make_negative
    from soundloc_training.datasets.tuxav import make_clip
    from soundloc_training.make_bag import BagClip, interleave, write_bag

    def bag_clip(clip, polarity: str) -> BagClip:
        return BagClip(
            clip.frames, FRAME_TIMES, clip.audio, clip.masks, f"{polarity}/{clip.category}"
        )

    print(f"recording {len(CLASSES)} unseen TuxAV clips and {len(NEGATIVES)} negatives "
          f"into {path} ...", flush=True)  # fmt: skip
    positives = [bag_clip(make_clip(0, c, CLIP_INDEX), "positive") for c in CLASSES]
    negatives = [
        bag_clip(make_negative("tuxav", category, 0, NEGATIVE_INDEX + n), "negative")
        for n, category in enumerate(NEGATIVES)
    ]
    write_bag(interleave(positives, negatives), path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "bundles" / "default")
    parser.add_argument("--bag", type=Path, default=ROOT / "bags" / "demo_tuxav_negatives")
    parser.add_argument("--out", type=Path, default=ROOT / "demo_output")
    args = parser.parse_args()
    if not (args.bundle / "bundle.json").is_file():
        raise SystemExit(f"no bundle at {args.bundle}: run `make bundle` (make demo does)")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # stay on this machine
    began = time.monotonic()
    from soundloc_ros.replay.messages import BagTopics

    metadata = args.bag / "metadata.yaml"
    if metadata.is_file() and BagTopics().audio not in metadata.read_text():
        shutil.rmtree(args.bag)  # kept from before the audio topic followed audio_capture's name
    if not metadata.is_file():
        make_demo_bag(args.bag)
    from soundloc_ros.replay.cli import main as replay_eval

    command = [str(args.bag), "--bundle", str(args.bundle), "--live", "--out", str(args.out),
               "--video", "60"]  # fmt: skip
    print("soundloc-replay-eval " + " ".join(command), flush=True)
    code = replay_eval(command)
    print(f"demo finished in {time.monotonic() - began:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
