"""`soundloc-ingest` (ingest.py has the ingestion)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from soundloc_ros.replay.bag import ReplayError
from soundloc_ros.replay.messages import BagTopics
from soundloc_training import ingest


def main(argv: list[str] | None = None) -> int:
    defaults, topics = ingest.IngestConfig(), BagTopics()
    parser = argparse.ArgumentParser(
        prog="soundloc-ingest", description=ingest.__doc__.splitlines()[0]
    )
    parser.add_argument("bags", nargs="+", type=Path, help="rosbag2 directories (MCAP/sqlite3)")
    parser.add_argument("--out", required=True, type=Path, help="dataset directory")
    parser.add_argument("--fps", type=float, default=defaults.fps, help="frames kept per second")
    parser.add_argument("--silence-db", type=float, default=defaults.silence_db)
    parser.add_argument("--dedup", type=float, default=defaults.dedup,
                        help="min mean grey change between kept frames (0: keep all)")  # fmt: skip
    parser.add_argument("--clip-seconds", type=float, default=defaults.clip_seconds)
    parser.add_argument("--val-percent", type=float, default=defaults.val_percent)
    parser.add_argument("--audio-offset", type=float, default=defaults.audio_offset)
    parser.add_argument("--image-topic", default=topics.image)
    parser.add_argument("--audio-topic", default=topics.audio)
    parser.add_argument("--audio-info-topic", default=topics.audio_info)
    args = parser.parse_args(argv)
    chosen = asdict(topics) | {"image": args.image_topic, "audio": args.audio_topic,
                               "audio_info": args.audio_info_topic}  # fmt: skip
    config = ingest.IngestConfig(fps=args.fps, silence_db=args.silence_db, dedup=args.dedup,
                          clip_seconds=args.clip_seconds, val_percent=args.val_percent,
                          audio_offset=args.audio_offset, topics=chosen)  # fmt: skip
    try:
        results = ingest.ingest(args.bags, args.out, config)
    except (ReplayError, OSError, ValueError) as error:
        print(f"soundloc-ingest: {error}", file=sys.stderr)
        return 2
    for bag, counts in results.items():
        print(f"{bag}: {json.dumps(counts)}")
    manifest = ingest.Manifest(args.out)
    print(f"{args.out}: {manifest.frames} frames in {len(manifest.done_clips)} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
