"""One entry point from a (kind, path, split) triple, as given on a command line, to FrameRecords.

Adding a dataset kind is one line in `LOADERS` (SynthAV/TuxAV exports are AVSBench-S4 layouts and
map to `load_avsbench_s4`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .avsbench import load_avsbench_s4
from .flickr import load_flickr_soundnet
from .ingested import load_ingested
from .records import FrameRecord
from .vggss import load_vggss

Loader = Callable[[Path, str | None], list[FrameRecord]]


def _test_only(name: str, load: Callable[[Path], list[FrameRecord]]) -> Loader:
    """Wrap a loader of a test-only dataset so asking for another split fails loudly."""

    def loader(path: Path, split: str | None) -> list[FrameRecord]:
        if split not in (None, "test"):
            raise ValueError(f"{name} has only a 'test' split, not {split!r}")
        return load(path)

    return loader


LOADERS: dict[str, Loader] = {
    "avsbench-s4": load_avsbench_s4,
    "synthav": load_avsbench_s4,  # our benchmarks are written in the AVSBench-S4 layout
    "tuxav": load_avsbench_s4,
    "vggss": _test_only("VGG-SS", load_vggss),
    "flickr": _test_only("Flickr-SoundNet", load_flickr_soundnet),
    "bags": load_ingested,  # soundloc-ingest output: a robot's own recordings, unlabeled
}


def load_records(kind: str, path: Path, split: str | None = None) -> list[FrameRecord]:
    """Index dataset `kind` at `path` (see `LOADERS` for the kinds and what `path` points to)."""
    try:
        loader = LOADERS[kind]
    except KeyError:
        raise ValueError(
            f"unknown dataset kind {kind!r}; known kinds: {', '.join(sorted(LOADERS))}"
        ) from None
    return loader(Path(path), split)
