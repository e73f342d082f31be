"""`soundloc-replay-eval BAG --bundle B`: how well, and how fast, a bundle localizes on a rosbag.

Offline (default): the node's pipeline code runs over the bag deterministically, as fast as
inference allows. `--live`: the bag is played in real time over DDS into a `soundloc_node`
process, and what that node publishes is scored. Both report cIoU, AUC, mIoU and F-score of the
heatmap, the mIoU of the published mask, how often the peak lands on the object and the bearing
error, against the bag's ground-truth mask topic when it has one (otherwise latency and pictures
only), plus per-stage latency; as report.json, contact_sheet.png and, with --video, overlay.gif.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from soundloc_ros.core.atomic import atomic_write_text
from soundloc_ros.core.backends import BACKENDS, create_backend
from soundloc_ros.core.bundle import BundleError, load_bundle
from soundloc_ros.core.detection import DEFAULT_SILENCE_DB
from soundloc_ros.core.frame_pipeline import FramePipeline
from soundloc_ros.core.metrics import detection_summary, json_ready
from soundloc_ros.core.pairing import LATE_POLICIES, PairingConfig
from soundloc_ros.core.pcm import AudioStreamFormat, PcmFormatError
from soundloc_ros.core.predictor import Predictor
from soundloc_ros.replay.bag import FLAGS, BagSource, ReplayError
from soundloc_ros.replay.messages import BagTopics
from soundloc_ros.replay.scoring import ReplayScorer


def parser() -> argparse.ArgumentParser:
    defaults, pairing = BagTopics(), PairingConfig()
    p = argparse.ArgumentParser(prog="soundloc-replay-eval", description=__doc__.splitlines()[0])
    p.add_argument("bag", type=Path, help="rosbag2 directory (MCAP or sqlite3) or .mcap file")
    p.add_argument("--bundle", required=True, type=Path, help="model bundle directory")
    p.add_argument("--live", action="store_true", help="play into a soundloc_node over DDS")
    p.add_argument("--speed", type=float, default=1.0, help="live: bag seconds per wall second")
    p.add_argument("--out", type=Path, help="report directory (default: replay_output/BAG_NAME)")
    p.add_argument("--video", type=int, default=0, metavar="N", help="overlay.gif of N frames")
    p.add_argument("--sheet-frames", type=int, default=12, help="frames on the contact sheet")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar; print only the JSON")
    topics = p.add_argument_group("topics (defaults: what soundloc-make-bag writes)")
    for kind, flag in FLAGS.items():
        topics.add_argument(flag, dest=f"{kind}_topic", default=getattr(defaults, kind))
    audio = p.add_argument_group("audio format when the bag has no audio_info")
    audio.add_argument("--sample-rate", type=int, default=16000)
    audio.add_argument("--channels", type=int, default=1)
    audio.add_argument("--sample-format", default="S16LE")
    node = p.add_argument_group("node parameters (the same names and defaults as soundloc_node)")
    node.add_argument("--audio-offset", type=float, default=pairing.offset_s)
    node.add_argument("--audio-deadline", type=float, default=pairing.deadline_s)
    node.add_argument("--late-policy", choices=LATE_POLICIES, default=pairing.late_policy)
    node.add_argument("--min-audio-coverage", type=float, default=pairing.min_coverage)
    node.add_argument("--silence-threshold-db", type=float, default=DEFAULT_SILENCE_DB)
    node.add_argument("--mask-threshold", type=float, default=0.5)
    node.add_argument(
        "--source-threshold", type=float, help="source threshold (default: the bundle's)"
    )
    node.add_argument("--rectified", action="store_true",
                      help="the bag's images are rectified: bearings use CameraInfo P")  # fmt: skip
    return p


def _topics(args: argparse.Namespace) -> BagTopics:
    return BagTopics(**{kind: getattr(args, f"{kind}_topic") for kind in FLAGS})


def _pairing(args: argparse.Namespace) -> PairingConfig:
    config = PairingConfig(
        offset_s=args.audio_offset,
        deadline_s=args.audio_deadline,
        late_policy=args.late_policy,
        min_coverage=args.min_audio_coverage,
    )
    config.check()
    return config


def evaluate(args: argparse.Namespace) -> dict[str, object]:
    """Run one replay as the arguments say; returns the report (also written to OUT)."""
    out = args.out or Path("replay_output") / args.bag.resolve().name
    stream = AudioStreamFormat(args.sample_rate, args.channels, args.sample_format)
    pairing = _pairing(args)
    out.mkdir(parents=True, exist_ok=True)
    with BagSource(args.bag, _topics(args)) as source:
        frames = source.info["image"]
        fps = frames.count / max(source.duration_s, 1e-9)
        scorer = ReplayScorer(frames.count, args.sheet_frames, args.video, fps)
        if args.live:
            from soundloc_ros.replay.live import replay_live

            load_bundle(args.bundle)  # a bad bundle is reported here, not by a node that waits

            run = replay_live(source, scorer, args, pairing)
        else:
            run = _replay_offline(source, scorer, args, pairing, stream)
        if scorer.counts["outputs"] == 0:
            raise ReplayError(_nothing_localized(args.bag, run))
        if not source.has_ground_truth:
            run["note"] = f"no ground-truth topic {source.topics.ground_truth}: latency only"
        report = {
            "bag": str(args.bag),
            "mode": "live" if args.live else "offline",
            "bundle": str(args.bundle),
            "topics": {kind: info.topic for kind, info in source.info.items()},
            **scorer.figures(),
            **run,
            "pictures": scorer.write_pictures(out),
        }
    report = json_ready(report)
    atomic_write_text(out / "report.json", json.dumps(report, indent=2, allow_nan=False) + "\n")
    report["report"] = str(out / "report.json")
    return report


def _nothing_localized(bag: Path, run: dict) -> str:
    reasons = run.get("errors") or run.get("drops") or {}
    details = "; ".join(f"{k}: {v}" for k, v in reasons.items()) or "no frame was paired"
    return (
        f"no frame of {bag} could be localized ({details}). Check the image encoding, the "
        "audio format (--sample-rate/--sample-format when the bag has no audio_info) and that "
        "the audio covers the frames' stamps (--audio-offset)"
    )


def _replay_offline(source, scorer, args, pairing, stream) -> dict[str, object]:
    from soundloc_ros.replay.offline import OfflineReplay

    bundle = load_bundle(args.bundle)
    backend = create_backend(bundle, args.backend, threads=args.threads)
    predictor = Predictor(backend, mask_threshold=args.mask_threshold)
    try:
        pipeline = FramePipeline(predictor, args.silence_threshold_db, args.source_threshold)
        replay = OfflineReplay(source, pipeline, scorer, pairing, stream, args.rectified)
        threshold = json_ready(pipeline.threshold)  # -inf (no decision) becomes null
        return {"backend": backend.description, "source_threshold": threshold,
                **replay.run(progress=not args.quiet)}  # fmt: skip
    finally:
        predictor.close()


def summary_lines(report: dict) -> list[str]:
    counts, accuracy = report["counts"], report["accuracy"]
    lines = [f"{report['mode']} replay of {report['bag']} on {report.get('backend', '?')}: "
             f"{counts['outputs']} of {counts['frames']} frames localized, "
             f"{counts['scored']} scored"]  # fmt: skip
    if accuracy:
        lines.append("  " + "  ".join(f"{k} {v}" for k, v in accuracy.items()))
    if report.get("detection"):
        lines.append("  " + detection_summary(report["detection"]))
    for stage, figures in report.get("latency_ms", {}).items():
        lines.append(f"  {stage:>12s}: p50 {figures['p50']:.2f} ms, p95 {figures['p95']:.2f} ms")
    if report.get("drops"):
        lines.append(f"  drops: {report['drops']}")
    if report.get("note"):
        lines.append(f"  {report['note']}")
    lines += [f"  {name}: {path}" for name, path in report["pictures"].items()]
    lines.append(f"  report: {report['report']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        report = evaluate(args)
    except (ReplayError, BundleError, PcmFormatError, ValueError, OSError) as error:
        print(f"soundloc-replay-eval: {error}", file=sys.stderr)
        return 2
    if args.quiet:
        print(json.dumps(report, allow_nan=False))
    else:
        print("\n".join(summary_lines(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
