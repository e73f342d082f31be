"""AVSBench-S4 (single-source) layout: the official data, and our SynthAV/TuxAV exports.

The layout is defined once here (`avsbench_paths`, `write_avsbench_s4_meta`) so that our benchmark
writers and `load_avsbench_s4` cannot drift apart:

    root/s4_meta_data.csv
    root/s4_data/visual_frames/{split}/{category}/{video}/{video}_{1..5}.png
    root/s4_data/audio_wav/{split}/{category}/{video}.wav          (16 kHz)
    root/s4_data/gt_masks/{split}/{category}/{video}/{video}_{k}.png

`root` is the `Single-source` directory. Each clip is 5 s long and has 5 frames; the official
preprocessing keeps one frame near the end of each second, so frame k is paired with the second of
audio that ends at it, (k - 1, k). Official train clips only have the mask of frame 1; val/test
clips have all 5.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .records import FrameRecord, GroundTruth

META_FILENAME = "s4_meta_data.csv"
SPLITS = ("train", "val", "test")
FRAMES_PER_CLIP = 5
SAMPLE_RATE = 16000
# Names we write for columns 0/1; the official names are unknown, so reading goes by position.
META_HEADER = ("name", "start_time", "category", "split")
_MAX_LISTED = 5


def frame_name(video: str, k: int) -> str:
    """The dataset's own name of frame k (1-based); prediction files are named after it."""
    return f"{video}_{k}"


@dataclass(frozen=True)
class AvsbenchPaths:
    """Where one clip's files live; index k - 1 of `frames`/`masks` is frame k."""

    frames: tuple[Path, ...]
    masks: tuple[Path, ...]
    wav: Path

    def make_dirs(self) -> None:
        """Create the clip's directories, so a writer can save files straight into them."""
        for path in (self.frames[0], self.masks[0], self.wav):
            path.parent.mkdir(parents=True, exist_ok=True)


def _check_component(what: str, value: str) -> None:
    # A separator or an empty name would silently move files elsewhere in the tree.
    if not value or value in (".", "..") or "/" in value or "\\" in value:
        raise ValueError(f"AVSBench {what} {value!r} cannot be used as a directory/file name")


def avsbench_paths(root: Path, split: str, category: str, video: str) -> AvsbenchPaths:
    """Paths of one clip under `root` (the `Single-source` directory); not checked on disk."""
    if split not in SPLITS:
        raise ValueError(f"AVSBench split {split!r} is not one of {', '.join(SPLITS)}")
    _check_component("category", category)
    _check_component("video name", video)
    data = Path(root) / "s4_data"
    frame_dir = data / "visual_frames" / split / category / video
    mask_dir = data / "gt_masks" / split / category / video
    names = [frame_name(video, k) for k in range(1, FRAMES_PER_CLIP + 1)]
    return AvsbenchPaths(
        frames=tuple(frame_dir / f"{n}.png" for n in names),
        masks=tuple(mask_dir / f"{n}.png" for n in names),
        wav=data / "audio_wav" / split / category / f"{video}.wav",
    )


@dataclass(frozen=True)
class S4MetaRow:
    """One row of `s4_meta_data.csv`: a clip, the start (s) of its 5 s in the source video."""

    video: str
    start_s: float
    category: str
    split: str


def write_avsbench_s4_meta(root: Path, rows: Iterable[S4MetaRow]) -> Path:
    """Write `root/s4_meta_data.csv` in the column order the official file and the loader use."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / META_FILENAME
    rows = list(rows)
    for i, row in enumerate(rows):
        try:
            if row.split not in SPLITS:
                raise ValueError(f"split {row.split!r} is not one of {', '.join(SPLITS)}")
            _check_component("category", row.category)
            _check_component("video name", row.video)
            if "," in row.video or "," in row.category:
                raise ValueError("names must not contain commas")
        except ValueError as e:
            raise ValueError(f"cannot write {path}: row {i} ({row}): {e}") from None
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(META_HEADER)
        for row in rows:
            writer.writerow((row.video, f"{row.start_s:g}", row.category, row.split))
    return path


def resolve_s4_root(root: Path) -> Path:
    """Accept either the `Single-source` directory or the `avsbench_data` directory above it."""
    root = Path(root)
    for candidate in (root, root / "Single-source"):
        if (candidate / META_FILENAME).is_file():
            return candidate
    raise FileNotFoundError(
        f"no {META_FILENAME} in {root} or {root / 'Single-source'}; pass the AVSBench "
        "'Single-source' directory (or the 'avsbench_data' directory that contains it)"
    )


def read_avsbench_s4_meta(path: Path) -> list[S4MetaRow]:
    """Parse `s4_meta_data.csv` by column position (the names of columns 0/1 are not known).

    The first row is the header; a file whose first row already is a clip (its column 3 is a
    split name) is read as headerless. Every row must have as many columns as the first.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as f:
        lines = [
            (n, row) for n, row in enumerate(csv.reader(f), start=1) if any(c.strip() for c in row)
        ]
    if not lines:
        raise ValueError(f"{path} is empty; expected a header row and one row per clip")

    first_no, first = lines[0]
    n_cols = len(first)
    if n_cols >= 4 and first[3].strip() not in SPLITS:
        names = [c.strip().lower() for c in first[2:4]]
        if names != ["category", "split"]:
            raise ValueError(
                f"{path} row {first_no}: header {first!r} should name columns 2 and 3 'category' "
                "and 'split'; is this an AVSBench-S4 meta file?"
            )
        lines = lines[1:]

    rows: list[S4MetaRow] = []
    seen: dict[tuple[str, str], int] = {}
    for n, fields in lines:
        where = f"{path} row {n} ({','.join(fields)!r})"
        if len(fields) != n_cols or n_cols < 4:
            raise ValueError(
                f"{where}: has {len(fields)} columns, expected {max(n_cols, 4)} "
                "(video, start time, category, split); fix or remove the row"
            )
        video, start, category, split = (c.strip() for c in fields[:4])
        if split not in SPLITS:
            raise ValueError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
        try:
            start_s = float(start)
        except ValueError:
            raise ValueError(f"{where}: start time {start!r} is not a number") from None
        if not math.isfinite(start_s):
            raise ValueError(f"{where}: start time {start!r} is not a finite number")
        try:
            _check_component("category", category)
            _check_component("video name", video)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if (video, split) in seen:
            raise ValueError(
                f"{where}: clip {video!r} is already listed in row {seen[video, split]} "
                f"of the {split} split; frame names must be unique"
            )
        seen[video, split] = n
        rows.append(S4MetaRow(video=video, start_s=start_s, category=category, split=split))
    return rows


def load_avsbench_s4(
    root: Path, split: str | None = None, *, allow_missing: bool = False
) -> list[FrameRecord]:
    """Index AVSBench-S4 (or a SynthAV/TuxAV export): 5 records per clip, in meta-file order.

    `split` selects one of train/val/test (None = all). A missing frame or wav means a partial
    download, which would silently change the benchmark, so it is an error unless
    `allow_missing=True` (then such clips are skipped with one warning). Masks are optional per
    frame: ground_truth is set exactly where the mask file exists.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"AVSBench split {split!r} is not one of {', '.join(SPLITS)} (or None)")
    root = resolve_s4_root(root)
    meta = root / META_FILENAME
    rows = [r for r in read_avsbench_s4_meta(meta) if split is None or r.split == split]
    if not rows:
        raise ValueError(f"{meta} lists no clips" + (f" for split {split!r}" if split else ""))

    records: list[FrameRecord] = []
    missing: list[Path] = []
    skipped_clips = 0
    for row in rows:
        paths = avsbench_paths(root, row.split, row.category, row.video)
        clip_missing = [p for p in (*paths.frames, paths.wav) if not p.is_file()]
        if clip_missing:
            missing.extend(clip_missing)
            skipped_clips += 1
            continue
        for k, (image, mask) in enumerate(zip(paths.frames, paths.masks, strict=True), start=1):
            records.append(
                FrameRecord(
                    name=frame_name(row.video, k),
                    clip=row.video,
                    image_path=image,
                    audio_path=paths.wav,
                    audio_window=(float(k - 1), float(k)),
                    split=row.split,
                    category=row.category,
                    ground_truth=GroundTruth(mask_path=mask) if mask.is_file() else None,
                )
            )

    if missing:
        listed = "\n  ".join(str(p) for p in missing[:_MAX_LISTED])
        more = (
            f"\n  ... and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        )
        summary = (
            f"{len(missing)} frame/audio files of {skipped_clips} of the {len(rows)} clips "
            f"listed in {meta} are missing:\n  {listed}{more}"
        )
        if not allow_missing:
            raise FileNotFoundError(
                f"{summary}\nComplete the download/extraction, or pass allow_missing=True to skip "
                "these clips."
            )
        warnings.warn(f"skipping incomplete clips: {summary}", stacklevel=2)
        if not records:
            raise FileNotFoundError(f"no complete clip is left: {summary}")
    return records
