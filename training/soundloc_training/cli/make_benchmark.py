"""`soundloc-make-benchmark` (datasets/build.py writes the benchmark)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from soundloc_training.datasets.build import (
    DEFAULT_NEGATIVES,
    DEFAULTS,
    NEGATIVES_DIR,
    BenchmarkSpec,
    build_benchmark,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="soundloc-make-benchmark",
        description="Write SynthAV or TuxAV to OUT in the AVSBench-S4 layout.",
    )
    parser.add_argument("kind", choices=sorted(DEFAULTS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--train", type=int, help="clips (synthav) or clips per class (tuxav)")
    parser.add_argument("--val", type=int)
    parser.add_argument("--test", type=int)
    parser.add_argument("--snr-db", type=float)
    parser.add_argument("--n-sounding", type=int, help="tuxav: sounding objects per scene")
    parser.add_argument(
        "--negatives",
        type=int,
        default=DEFAULT_NEGATIVES,
        metavar="N",
        help="clips of each negative kind (off-screen, noise, silence) per split in OUT/negatives "
        f"(val and test; default {DEFAULT_NEGATIVES}; 0: none)",
    )
    args = parser.parse_args(argv)
    overrides = {
        key: value
        for key, value in vars(args).items()
        if key not in ("kind", "out", "negatives") and value is not None
    }
    spec = BenchmarkSpec(**{**asdict(DEFAULTS[args.kind]), **overrides})
    try:
        build_benchmark(spec, args.out, negatives=args.negatives)
    except (OSError, ValueError) as error:
        print(f"soundloc-make-benchmark: {error}", file=sys.stderr)
        return 1
    with_negatives = f" (negatives in {args.out / NEGATIVES_DIR})" if args.negatives else ""
    print(f"{spec.kind} ready in {args.out}{with_negatives}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
