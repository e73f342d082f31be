"""Datasets written by `soundloc-ingest` from a robot's bags (kind `bags`): unlabeled frames.

Every manifest line is one frame: its PNG, its clip's WAV and its window in it, its split. No
ground truth: these datasets train; benchmarks with labels evaluate.
"""

from __future__ import annotations

import json
from pathlib import Path

from .records import FrameRecord

MANIFEST = "manifest.jsonl"


def load_ingested(root: Path, split: str | None) -> list[FrameRecord]:
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise ValueError(
            f"{root} has no {MANIFEST}: create it with soundloc-ingest BAG... --out {root}"
        )
    records = []
    for number, line in enumerate(manifest.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
        except ValueError as error:
            raise ValueError(
                f"{manifest}:{number} is not JSON ({error}); rerun soundloc-ingest with the same "
                "arguments to repair an interrupted manifest"
            ) from None
        if "bag_done" in row or (split is not None and row["split"] != split):
            continue
        records.append(
            FrameRecord(
                name=row["name"],
                clip=f"{row['bag']}/{row['clip_index']}",
                image_path=root / row["image"],
                audio_path=root / row["audio"],
                audio_window=tuple(row["window"]),
                split=row["split"],
            )
        )
    return records
