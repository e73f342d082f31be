"""VGG-Sound Source (VGG-SS) test set: one still frame per clip, boxes from `vggss.json`.

Layout: `root/frames/<file>.jpg`, `root/audio/<file>.wav`, annotations `vggss.json` (a JSON list of
`{"file", "class", "bbox": [[xmin, ymin, xmax, ymax], ...]}`, normalized, a few values slightly out
of [0, 1]). Peers evaluate on the entries whose files they have, so entries missing on disk are
skipped (with one warning giving the count, so a smaller test set is never silent).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from soundloc_training.jsonfiles import read_json

from .records import FrameRecord, GroundTruth

Box = tuple[float, float, float, float]


def _clamp01(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _parse_box(raw: Any) -> Box | None:
    """The clamped box, or None if `raw` is not 4 finite numbers."""
    if not isinstance(raw, (list, tuple)) or len(raw) != 4:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
        return None
    if not all(math.isfinite(v) for v in raw):
        return None
    xmin, ymin, xmax, ymax = (_clamp01(float(v)) for v in raw)
    return (xmin, ymin, xmax, ymax)


def _parse_entry(index: int, entry: Any, path: Path) -> tuple[str, str, tuple[Box, ...]]:
    """(file, class, boxes) of one JSON entry; errors name the entry so it can be fixed."""
    where = f"{path} entry {index}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an object with 'file', 'class', 'bbox', got {entry!r}")
    file = entry.get("file")
    if isinstance(file, str) and file:
        where += f" (file {file!r})"
    missing = [k for k in ("file", "class", "bbox") if k not in entry]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
    if not isinstance(file, str) or not file or "/" in file or "\\" in file:
        raise ValueError(f"{where}: 'file' must be a clip id like 'zpWuikVorYg_000032'")
    label = entry["class"]
    if not isinstance(label, str):
        raise ValueError(f"{where}: 'class' must be a string, got {label!r}")
    raw_boxes = entry["bbox"]
    if not isinstance(raw_boxes, list) or not raw_boxes:
        raise ValueError(f"{where}: 'bbox' must be a non-empty list of [xmin, ymin, xmax, ymax]")
    boxes: list[Box] = []
    for j, raw in enumerate(raw_boxes):
        box = _parse_box(raw)
        if box is None:
            raise ValueError(
                f"{where}: bbox {j} is {raw!r}, expected 4 numbers [xmin, ymin, xmax, ymax]"
            )
        boxes.append(box)
    return file, label, tuple(boxes)


def load_vggss(root: Path, annotations: Path | None = None) -> list[FrameRecord]:
    """Index the VGG-SS test set under `root`, in annotation order.

    `annotations` defaults to `root/vggss.json`. Each record holds all boxes of its entry as one
    annotator group (consensus=False: the union is the ground truth) and audio_window=None (one
    still frame per clip, so the audio window is centred in the file).
    """
    root = Path(root)
    path = Path(annotations) if annotations is not None else root / "vggss.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"VGG-SS annotations {path} not found; put vggss.json there or pass its path "
            "as `annotations`"
        )
    entries = read_json(path, "re-download vggss.json", expect=list)

    records: list[FrameRecord] = []
    seen: dict[str, int] = {}
    skipped: list[str] = []
    for index, entry in enumerate(entries):
        file, label, boxes = _parse_entry(index, entry, path)
        if file in seen:
            raise ValueError(
                f"{path} entry {index}: file {file!r} is already entry {seen[file]}; "
                "frame names must be unique"
            )
        seen[file] = index
        image = root / "frames" / f"{file}.jpg"
        audio = root / "audio" / f"{file}.wav"
        if not (image.is_file() and audio.is_file()):
            skipped.append(file)
            continue
        records.append(
            FrameRecord(
                name=file,
                clip=file,
                image_path=image,
                audio_path=audio,
                audio_window=None,
                split="test",
                category=label,
                ground_truth=GroundTruth(boxes=(boxes,), consensus=False),
            )
        )

    if not records:
        raise FileNotFoundError(
            f"none of the {len(entries)} entries of {path} has both {root / 'frames'}/<file>.jpg "
            f"and {root / 'audio'}/<file>.wav; is {root} the VGG-SS test data directory?"
        )
    if skipped:
        warnings.warn(
            f"VGG-SS: skipped {len(skipped)} of {len(entries)} entries of {path} whose frame or "
            f"audio is missing under {root} (e.g. {skipped[0]!r}); results cover "
            f"{len(records)} clips",
            stacklevel=2,
        )
    return records
