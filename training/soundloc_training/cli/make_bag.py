"""`soundloc-make-bag` (make_bag.py writes the bag)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from soundloc_training import make_bag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="soundloc-make-bag", description=make_bag.__doc__.splitlines()[0]
    )
    parser.add_argument("--data", required=True, help="KIND:PATH of a benchmark (AVSBench layout)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", required=True, type=Path, help="bag directory to create")
    parser.add_argument("--clips", type=int, help="only the first N clips")
    parser.add_argument(
        "--negatives",
        action="store_true",
        help="also the split's clips of DATA's negatives root (PATH/negatives), interleaved",
    )
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--chunk", type=int, default=320, help="audio samples per message")
    parser.add_argument("--image-format", choices=make_bag.IMAGE_FORMATS, default="raw",
                        help="raw Image, or CompressedImage on <camera>/compressed")  # fmt: skip
    args = parser.parse_args(argv)
    if args.out.exists():
        print(
            f"soundloc-make-bag: {args.out} exists; remove it or choose another --out",
            file=sys.stderr,
        )
        return 2
    try:
        clips = make_bag.dataset_clips(args.data, args.split, args.clips, args.negatives)
        counts = make_bag.write_bag(
            clips, args.out, args.storage, args.chunk, image_format=args.image_format
        )
    except (OSError, ValueError) as error:
        print(f"soundloc-make-bag: {error}", file=sys.stderr)
        return 1
    for topic, count in counts.items():
        print(f"{topic:24s} {count} messages")
    print(f"wrote {args.out} ({args.storage})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
