"""Flickr-SoundNet test set (the `5k_labeled` directory): boxes of 3 annotators per frame.

Layout: `root/Annotations/<id>.xml`, `root/Data/frames/<id>.jpg`, `root/Data/audio/<id>.wav`.
Only the XML structure every peer parser relies on is assumed (the other tag names are not
documented): each child of the root is one annotator; each of its children tagged `bbox` holds an
ignored first child followed by xmin, ymin, xmax, ymax in a 256×256 frame.
"""

from __future__ import annotations

import math
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

from .records import FrameRecord, GroundTruth

Box = tuple[float, float, float, float]
# Annotations are drawn on frames resized to 256×256 (every peer parser scales by 224/256).
ANNOTATION_SIZE = 256.0
DEFAULT_TEST_LIST = "flickr_test.csv"
_MAX_LISTED = 5


def parse_flickr_xml(path: Path) -> tuple[tuple[Box, ...], ...]:
    """Per-annotator groups of normalized boxes; annotators without a box are left out."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(
            f"{path}: cannot parse the XML ({e}); re-download the annotation"
        ) from None
    groups: list[tuple[Box, ...]] = []
    for a, annotator in enumerate(root):
        boxes: list[Box] = []
        for element in annotator:
            if element.tag != "bbox":
                continue
            children = list(element)
            where = f"{path}: annotator {a} ({annotator.tag}), bbox {len(boxes)}"
            if len(children) < 5:
                raise ValueError(
                    f"{where} has {len(children)} children, expected a first (ignored) child "
                    "followed by xmin, ymin, xmax, ymax"
                )
            values: list[float] = []
            for child in children[1:5]:
                text = (child.text or "").strip()
                try:
                    value = float(text)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise ValueError(f"{where}: <{child.tag}> is {text!r}, expected a number")
                values.append(min(max(value / ANNOTATION_SIZE, 0.0), 1.0))
            boxes.append((values[0], values[1], values[2], values[3]))
        if boxes:
            groups.append(tuple(boxes))
    return tuple(groups)


def read_flickr_test_list(path: Path) -> list[str]:
    """Ids from a test list: one per row, optionally followed by `,<anything>`."""
    path = Path(path)
    ids: list[str] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        item = line.split(",", 1)[0].strip()
        if not item:
            if line.strip():
                raise ValueError(f"{path} row {n} ({line!r}): no id before the comma")
            continue
        if "/" in item or "\\" in item:
            raise ValueError(f"{path} row {n} ({line!r}): expected a bare id, not a path")
        if item in seen:
            raise ValueError(f"{path} row {n}: id {item!r} is already listed in row {seen[item]}")
        seen[item] = n
        ids.append(item)
    if not ids:
        raise ValueError(f"{path} lists no ids; expected one Flickr id per row")
    return ids


def load_flickr_soundnet(
    root: Path, test_list: Path | None = None, *, allow_missing: bool = False
) -> list[FrameRecord]:
    """Index Flickr-SoundNet test pairs under `root` (the `5k_labeled` directory).

    `test_list` defaults to `root/flickr_test.csv` if present, else every id with an XML in
    `root/Annotations` (sorted). The test list is a fixed benchmark, so an id without its XML,
    frame or wav is an error unless `allow_missing=True` (then it is skipped with one warning).
    GT: per-annotator box groups with consensus=True; audio_window=None.
    """
    root = Path(root)
    ann_dir = root / "Annotations"
    frame_dir = root / "Data" / "frames"
    audio_dir = root / "Data" / "audio"
    if test_list is None and (root / DEFAULT_TEST_LIST).is_file():
        test_list = root / DEFAULT_TEST_LIST
    if test_list is not None:
        source = str(test_list)
        ids = read_flickr_test_list(Path(test_list))
    else:
        source = f"the XML files in {ann_dir}"
        ids = sorted(p.stem for p in ann_dir.glob("*.xml")) if ann_dir.is_dir() else []
        if not ids:
            raise FileNotFoundError(
                f"no test list ({root / DEFAULT_TEST_LIST}) and no {ann_dir}/<id>.xml; pass the "
                "Flickr-SoundNet '5k_labeled' directory"
            )

    records: list[FrameRecord] = []
    missing: list[Path] = []
    for item in ids:
        xml = ann_dir / f"{item}.xml"
        image = frame_dir / f"{item}.jpg"
        audio = audio_dir / f"{item}.wav"
        absent = [p for p in (xml, image, audio) if not p.is_file()]
        if absent:
            missing.extend(absent)
            continue
        groups = parse_flickr_xml(xml)
        if not groups:
            raise ValueError(f"{xml}: no <bbox> under any annotator; cannot evaluate {item!r}")
        records.append(
            FrameRecord(
                name=item,
                clip=item,
                image_path=image,
                audio_path=audio,
                audio_window=None,
                split="test",
                ground_truth=GroundTruth(boxes=groups, consensus=True),
            )
        )

    if missing:
        listed = "\n  ".join(str(p) for p in missing[:_MAX_LISTED])
        more = (
            f"\n  ... and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        )
        summary = (
            f"{len(missing)} files of {len(ids) - len(records)} of the {len(ids)} ids from "
            f"{source} are missing:\n  {listed}{more}"
        )
        if not allow_missing:
            raise FileNotFoundError(
                f"{summary}\nComplete the download, or pass allow_missing=True to skip these ids."
            )
        warnings.warn(f"Flickr-SoundNet: skipping incomplete ids: {summary}", stacklevel=2)
        if not records:
            raise FileNotFoundError(f"no complete id is left: {summary}")
    return records
