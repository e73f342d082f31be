"""Datasets written by `soundloc-ingest` from a robot's bags (kind `bags`): unlabeled frames.

The manifest is append-only JSON lines: one line per frame (its PNG, its clip's WAV and its
window in it, its split), then one `clip_done` line closing each clip (with its frame count),
then one `bag_done` line per finished bag. Only closed clips count: lines after the last closing
line are what an interrupted append left, and are ignored here and cut off by a resumed ingest,
which writes that clip again. No ground truth: these datasets train; benchmarks with labels
evaluate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from soundloc_training.jsonfiles import parse_json

from .records import FrameRecord

MANIFEST = "manifest.jsonl"
DATASET_FILE = "dataset.json"
FORMAT_VERSION = 2  # 2: clips end with a clip_done line
DAMAGED = "restore it from a backup, or ingest the bags again into a new --out"


def read_manifest(path: Path) -> Iterator[tuple[int, dict, list[dict]]]:
    """(end offset in bytes, closing row, frame rows) for every complete record in file order:
    a clip_done row with its clip's frame rows, or a bag_done row with none. Stops at a torn
    end; ValueError naming the file and line for damage anywhere else (an interrupted append
    can only be the last thing in the file)."""
    offset, torn, clip = 0, None, []
    with open(path, "rb") as file:
        for number, line in enumerate(file, 1):
            offset += len(line)
            where = f"{path}:{number}"
            try:
                if not line.endswith(b"\n"):
                    raise ValueError(f"{where} is cut short; {DAMAGED}")
                row = parse_json(line, where, DAMAGED)
            except ValueError as error:
                torn = torn or error  # the torn end of the file, unless whole records follow
                continue
            if torn is not None and ("clip_done" in row or "bag_done" in row):
                raise torn
            if "clip_done" in row:
                key = (row["clip_done"], row.get("clip_index"))
                if row.get("frames") != len(clip) or any(_clip_key(r) != key for r in clip):
                    raise ValueError(
                        f"{where} closes clip {key} of {row.get('frames')} frames, but "
                        f"{len(clip)} frame lines of other clips precede it: {DAMAGED}"
                    )
                yield offset, row, clip
                clip = []
            elif "bag_done" in row:
                if clip:
                    raise ValueError(
                        f"{where}: frame lines without their clip_done line precede it (a "
                        f"manifest of an older soundloc-ingest?): {DAMAGED}"
                    )
                yield offset, row, []
            else:
                clip.append(row)


def _clip_key(row: dict) -> tuple[object, object]:
    return row.get("bag"), row.get("clip_index")


def load_ingested(root: Path, split: str | None) -> list[FrameRecord]:
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise ValueError(
            f"{root} has no {MANIFEST}: create it with soundloc-ingest BAG... --out {root}"
        )
    return [
        FrameRecord(
            name=row["name"],
            clip=f"{row['bag']}/{row['clip_index']}",
            image_path=root / row["image"],
            audio_path=root / row["audio"],
            audio_window=tuple(row["window"]),
            split=row["split"],
        )
        for _, _, frames in read_manifest(manifest)
        for row in frames
        if split is None or row["split"] == split
    ]
