"""Write SynthAV or TuxAV to disk in the AVSBench-S4 layout (`soundloc-make-benchmark`).

Generation is deterministic (fixed seeds; each clip's randomness depends only on its own index),
so a benchmark can be rebuilt anywhere bit for bit from the installed packages and is never
committed. The whole tree is written into a temporary directory and renamed into place at the
end: an interrupted build leaves nothing that looks complete. `benchmark.json` records what was
built; a directory whose record matches the request is reused as it is.

Negatives (negatives.py: off-screen sound, noise only, digital silence; empty masks) are written
as a second AVSBench-S4 root, `OUT/negatives/`, with val and test splits and a record of its own.
The positive splits stay exactly as they were, so localization figures remain comparable, and an
existing benchmark gains its negatives without being rebuilt.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from soundloc_training.datasets import negatives as negative_clips
from soundloc_training.datasets import synthav, tuxav
from soundloc_training.datasets.avsbench import S4MetaRow, avsbench_paths, write_avsbench_s4_meta
from soundloc_training.datasets.scenes import SAMPLE_RATE, Clip
from soundloc_training.jsonfiles import read_json

RECORD_FILE = "benchmark.json"
FORMAT_VERSION = 1
NEGATIVES_DIR = "negatives"
NEGATIVE_SPLITS = ("val", "test")  # negatives are for evaluation and calibration, not training
# Clips per kind (off-screen, noise, silence) per split: 48 gives 240 frames of each kind (40 per
# noise kind) in TuxAV val and test; a 5 % false-source rate is then known to about +-3 points,
# 20 % to about +-5, and the negatives take about 20 s to generate.
DEFAULT_NEGATIVES = 48


@dataclass(frozen=True)
class BenchmarkSpec:
    """What to generate; stored in benchmark.json so a matching directory is reused."""

    kind: str
    seed: int = 0
    train: int = 0  # clips (SynthAV) or clips per class (TuxAV) in each split
    val: int = 0
    test: int = 0
    snr_db: float = 10.0
    n_sounding: int = 1
    image_size: int = 128  # SynthAV only; TuxAV frames are 224 px
    version: int = FORMAT_VERSION


DEFAULTS = {
    "synthav": BenchmarkSpec("synthav", train=400, val=80, test=80),
    "tuxav": BenchmarkSpec("tuxav", train=8, val=2, test=2, image_size=224),
}


@dataclass(frozen=True)
class NegativesSpec:
    """What OUT/negatives holds; stored in its own benchmark.json so a match is reused."""

    kind: str
    seed: int
    clips: int  # per kind (negative_clips.KINDS) per split
    snr_db: float  # of the off-screen sounds over background noise, as in the positives
    n_sounding: int
    image_size: int
    noise_kinds: tuple[str, ...] = negative_clips.NOISE_KINDS
    levels_dbfs: tuple[float, float] = negative_clips.NOISE_LEVELS_DBFS
    version: int = FORMAT_VERSION

    @classmethod
    def matching(cls, spec: BenchmarkSpec, clips: int) -> NegativesSpec:
        """Negatives whose scenes and off-screen sounds are made like `spec`'s positives."""
        return cls(spec.kind, spec.seed, clips, spec.snr_db, spec.n_sounding, spec.image_size)


def _clips(spec: BenchmarkSpec) -> Iterator[tuple[str, Clip]]:
    """(split, clip) for every clip; splits are disjoint index ranges of the same generator."""
    start = 0
    for split in ("train", "val", "test"):
        count = getattr(spec, split)
        if spec.kind == "synthav":
            clips = synthav.generate(
                spec.seed, count, start=start, image_size=spec.image_size, snr_db=spec.snr_db
            )
        else:
            clips = tuxav.generate(
                spec.seed,
                range(start, start + count),
                snr_db=spec.snr_db,
                n_sounding=spec.n_sounding,
            )
        for clip in clips:
            yield split, clip
        start += count


def _total(spec: BenchmarkSpec) -> int:
    per_split = spec.train + spec.val + spec.test
    return per_split * (len(tuxav.sound_classes()) if spec.kind == "tuxav" else 1)


def _negative_clips(spec: NegativesSpec) -> Iterator[tuple[str, Clip]]:
    """(split, clip) for every negative; val and test are disjoint index ranges."""
    options = {"snr_db": spec.snr_db, "image_size": spec.image_size, "n_sounding": spec.n_sounding}
    for number, split in enumerate(NEGATIVE_SPLITS):
        indices = range(number * spec.clips, (number + 1) * spec.clips)
        for clip in negative_clips.generate(spec.kind, spec.seed, indices, **options):
            yield split, clip


def _write_clip(root: Path, split: str, clip: Clip) -> S4MetaRow:
    import soundfile

    paths = avsbench_paths(root, split, clip.category, clip.name)
    paths.make_dirs()
    for frame, mask, frame_path, mask_path in zip(
        clip.frames, clip.masks, paths.frames, paths.masks, strict=True
    ):
        Image.fromarray(frame).save(frame_path, compress_level=1)
        Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path, compress_level=1)
    soundfile.write(paths.wav, clip.audio, SAMPLE_RATE, subtype="PCM_16")
    return S4MetaRow(video=clip.name, start_s=0.0, category=clip.category, split=split)


def _record(spec: BenchmarkSpec | NegativesSpec) -> dict:
    """The spec as its benchmark.json reads back (tuples become lists)."""
    return json.loads(json.dumps(asdict(spec)))


def _write_root(
    spec: BenchmarkSpec | NegativesSpec,
    clips: Iterable[tuple[str, Clip]],
    total: int,
    out: Path,
    progress: Callable[..., object],
) -> None:
    """Write one AVSBench-S4 root atomically (staging directory + rename), unless `out` already
    holds `spec`; refuses to touch a directory holding anything else."""
    record = out / RECORD_FILE
    fix = f"remove {out} to build it again"
    if record.is_file() and read_json(record, fix) == _record(spec):
        return
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(
            f"{out} exists and holds something other than the requested benchmark "
            f"({asdict(spec)}); remove it or choose another --out"
        )
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    what = "negatives" if isinstance(spec, NegativesSpec) else "clips"
    rows = [
        _write_clip(staging, split, clip)
        for split, clip in progress(clips, total=total, desc=f"{spec.kind} {what}")
    ]
    write_avsbench_s4_meta(staging, rows)
    (staging / RECORD_FILE).write_text(json.dumps(asdict(spec), indent=2) + "\n")
    if out.exists():
        out.rmdir()  # empty, checked above
    staging.rename(out)


def build_benchmark(
    spec: BenchmarkSpec,
    out: Path,
    progress: Callable[..., object] = tqdm,
    negatives: int = 0,
) -> Path:
    """Generate `spec` into `out` (the AVSBench `Single-source`-style root) and, with
    `negatives` > 0, that many clips of each negative kind per split into `out/negatives`;
    returns `out`. Parts already on disk with a matching record are kept as they are."""
    out = Path(out)
    _write_root(spec, _clips(spec), _total(spec), out, progress)
    if negatives > 0:
        negative_spec = NegativesSpec.matching(spec, negatives)
        total = negatives * len(NEGATIVE_SPLITS) * len(negative_clips.KINDS)
        clips = _negative_clips(negative_spec)
        _write_root(negative_spec, clips, total, out / NEGATIVES_DIR, progress)
    return out
