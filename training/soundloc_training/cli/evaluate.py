"""`soundloc-eval` (evaluate.py has the evaluation)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from soundloc_ros.core.metrics import detection_summary, json_ready
from soundloc_training import evaluate
from soundloc_training.checkpoints import CheckpointError


def format_table(result: dict[str, object]) -> str:
    rows = [(result["method"], result["metrics"]), *result["baselines"].items()]
    keys = [k for k in ("ciou", "auc", "ciou_mean", "miou", "fscore") if k in result["metrics"]]
    lines = [f"{result['benchmark']} {result['split']} ({result['metrics']['n_frames']} frames)"]
    lines.append(f"{'method':24s}" + "".join(f"{k:>10s}" for k in keys))
    for name, scores in rows:
        lines.append(f"{name:24s}" + "".join(f"{scores[k]:10.4f}" for k in keys))
    if "detection" in result:
        detection = result["detection"]
        lines += [threshold_line(detection), detection_summary(detection),
                  f"TPR at 5% false alarms: {detection['tpr_at_5pct_false_alarm']}"]  # fmt: skip
    return "\n".join(lines)


def threshold_line(figures: dict[str, object]) -> str:
    threshold = figures["threshold"]
    shown = "n/a" if threshold is None else f"{threshold:.3f}"
    return f"detection threshold {shown} ({figures['threshold_source']})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="soundloc-eval", description=evaluate.__doc__.splitlines()[0]
    )
    parser.add_argument("--data", required=True, help="KIND:PATH, e.g. tuxav:data/tuxav")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path)
    source.add_argument("--predictions", type=Path, help="directory of <frame name>.npy heatmaps")
    parser.add_argument(
        "--negatives",
        help="KIND:PATH of negative clips (e.g. "
        "tuxav:data/tuxav/negatives): detection figures beside localization",
    )
    parser.add_argument("--threshold", type=float, help="source threshold (default: calibrated "
                        "on --data's val split, as the bundle's is)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        record = evaluate.evaluate(args.data, args.split, args.checkpoint, args.predictions,
                                   args.negatives, args.threshold)  # fmt: skip
        result = json_ready(record)
    except CheckpointError as error:
        print(f"soundloc-eval: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:
        print(f"soundloc-eval: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, allow_nan=False) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
