"""SynthAV and TuxAV generators, and their AVSBench-S4 export."""

import json

import numpy as np
import pytest
from soundloc_training.datasets import synthav, tuxav
from soundloc_training.datasets.avsbench import load_avsbench_s4
from soundloc_training.datasets.build import BenchmarkSpec, build_benchmark
from soundloc_training.datasets.scenes import (
    CLIP_SECONDS,
    FRAMES_PER_CLIP,
    SAMPLE_RATE,
    off_centre_corner,
)


def check_clip(clip, size):
    assert len(clip.frames) == len(clip.masks) == FRAMES_PER_CLIP
    assert clip.frames[0].shape == (size, size, 3) and clip.frames[0].dtype == np.uint8
    assert clip.audio.shape == (int(CLIP_SECONDS * SAMPLE_RATE),)
    assert np.all(np.isfinite(clip.audio)) and np.abs(clip.audio).max() <= 1.0
    fractions = [m.mean() for m in clip.masks]
    return float(np.mean(fractions))


def test_synthav_is_deterministic_and_sounding_objects_are_large_and_off_centre():
    a, b = synthav.make_clip(3, 11), synthav.make_clip(3, 11)
    np.testing.assert_array_equal(a.frames[2], b.frames[2])
    np.testing.assert_array_equal(a.audio, b.audio)
    assert not np.array_equal(a.frames[0], synthav.make_clip(3, 12).frames[0])
    fractions = [check_clip(clip, 128) for clip in synthav.generate(0, 24)]
    assert min(fractions) > 0.2 and max(fractions) < 0.45
    rng = np.random.default_rng(0)
    positions = np.array([off_centre_corner(rng, 100, 40) for _ in range(400)])
    near_edge = (positions <= [15, 6]) | (positions >= [85, 34])
    assert near_edge.all()  # within 15 % of the slack from an edge, on both axes
    assert {tuple(p) for p in (positions > [50, 20]).astype(int)} == {
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    }


@pytest.mark.skipif(not tuxav.STAMPS_DIR.is_dir(), reason="tuxpaint-stamps-default not installed")
def test_tuxav_scenes_use_real_photos_with_their_sounds():
    classes = tuxav.sound_classes()
    assert len(classes) >= 100  # 103 in tuxpaint-stamps-default 2022.06.04
    clip = tuxav.make_clip(0, 5, 1)
    assert clip.category == classes[5].name and classes[5].name in clip.info["sounding"]
    assert 0.02 < check_clip(clip, 224) < 0.5
    again = tuxav.make_clip(0, 5, 1)
    np.testing.assert_array_equal(clip.frames[4], again.frames[4])
    np.testing.assert_array_equal(clip.audio, again.audio)
    two = tuxav.make_clip(0, 5, 1, n_sounding=2)
    assert len(two.info["sounding"]) == 2


def test_export_loads_as_avsbench_and_is_reused(tmp_path):
    spec = BenchmarkSpec("synthav", train=3, val=2, test=1, image_size=64)
    root = build_benchmark(spec, tmp_path / "bench", progress=lambda items, **_: items)
    records = load_avsbench_s4(root, "val")
    assert len(records) == 2 * FRAMES_PER_CLIP
    assert records[0].name == "synthav_00003_1" and records[0].audio_window == (0.0, 1.0)
    assert all(r.ground_truth is not None for r in records)
    assert json.loads((root / "benchmark.json").read_text())["val"] == 2
    stamp = (root / "benchmark.json").stat().st_mtime_ns
    build_benchmark(spec, root)  # same spec: reused, nothing rewritten
    assert (root / "benchmark.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="remove it or choose another"):
        build_benchmark(BenchmarkSpec("synthav", train=4, val=2, test=1, image_size=64), root)
    assert not (tmp_path / ".bench.partial").exists()
