"""Negative clips (off-screen sound, noise only, digital silence) and their benchmark roots."""

import hashlib
import json

import numpy as np
import pytest
from soundloc_training.cli.make_benchmark import main
from soundloc_training.data import load_table
from soundloc_training.datasets import negatives, synthav, tuxav
from soundloc_training.datasets.build import NEGATIVES_DIR, BenchmarkSpec, build_benchmark
from soundloc_training.datasets.negatives import (
    CATEGORIES,
    NOISE_KINDS,
    NOISE_LEVELS_DBFS,
    make_negative,
    synth_noise,
)
from soundloc_training.datasets.scenes import CLIP_SECONDS, FRAMES_PER_CLIP, SAMPLE_RATE

from soundloc_ros.core.features import LogMelConfig, level_dbfs

HAS_SPEECH = negatives.SPEECH_DIR.is_dir()
HAS_STAMPS = tuxav.STAMPS_DIR.is_dir()
needs_speech = pytest.mark.skipif(not HAS_SPEECH, reason="asterisk-core-sounds-en-wav missing")
needs_stamps = pytest.mark.skipif(not HAS_STAMPS, reason="tuxpaint-stamps-default missing")
N = int(CLIP_SECONDS * SAMPLE_RATE)
QUIET = lambda items, **_: items  # noqa: E731 - no progress bars in tests


def kinds_here():
    return [k for k in NOISE_KINDS if k != "babble" or HAS_SPEECH]


def band_fraction(signal, low_hz, high_hz):
    power = np.abs(np.fft.rfft(signal)) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / SAMPLE_RATE)
    return power[(freqs >= low_hz) & (freqs < high_hz)].sum() / power.sum()


@pytest.mark.parametrize("kind", kinds_here())
@pytest.mark.parametrize("level", [NOISE_LEVELS_DBFS[0], -27.5, NOISE_LEVELS_DBFS[1]])
def test_each_noise_kind_has_the_requested_level_and_stays_in_range(kind, level):
    for seed in range(4):
        noise = synth_noise(np.random.default_rng(seed), kind, N, level)
        assert noise.dtype == np.float32 and noise.shape == (N,)
        assert level_dbfs(noise) == pytest.approx(level, abs=1e-3)
        assert np.abs(noise).max() < 1.0  # no clipping even at the loudest level


def test_noise_kinds_have_their_own_spectra():
    rng = np.random.default_rng(0)
    hum = synth_noise(rng, "hum", N, -20.0)
    spectrum = np.abs(np.fft.rfft(hum))
    peak_hz = np.fft.rfftfreq(N, 1 / SAMPLE_RATE)[spectrum.argmax()]
    assert min(abs(peak_hz - 50), abs(peak_hz - 60)) < 0.5  # the mains frequency
    assert band_fraction(hum, 0, 1000) > 0.95
    fan = synth_noise(rng, "fan", N, -20.0)
    assert (
        band_fraction(fan, 0, 1000)
        > 0.8
        > band_fraction(synth_noise(rng, "white", N, -20), 0, 4000)
    )
    seconds = [level_dbfs(fan[i * SAMPLE_RATE : (i + 1) * SAMPLE_RATE]) for i in range(5)]
    assert np.ptp(seconds) > 0.2  # the slow amplitude modulation
    assert band_fraction(synth_noise(rng, "brown", N, -20), 0, 200) > 0.9


@needs_speech
def test_babble_is_distant_speech_and_a_missing_package_says_how_to_install_it(tmp_path):
    babble = synth_noise(np.random.default_rng(1), "babble", N, -20.0)
    assert band_fraction(babble, 80, 2000) > 0.9  # voices, low-passed
    envelope = [level_dbfs(babble[i : i + 1600]) for i in range(0, N, 1600)]
    assert np.ptp(envelope) > 3  # syllables still modulate the level
    with pytest.raises(FileNotFoundError, match="apt-get install asterisk-core-sounds-en-wav"):
        negatives.speech_prompts(tmp_path)


def test_unknown_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="white, pink"):
        synth_noise(np.random.default_rng(0), "rain", 100, -20.0)
    with pytest.raises(ValueError, match="offscreen"):
        make_negative("synthav", "thunder", 0, 0)
    with pytest.raises(ValueError, match="synthav, tuxav"):
        make_negative("vggss", "silence", 0, 0)


def check_negative(clip, size):
    assert clip.category in CATEGORIES and clip.name.endswith(f"{clip.category}_0003")
    assert len(clip.frames) == len(clip.masks) == FRAMES_PER_CLIP
    assert clip.frames[0].shape == (size, size, 3) and clip.frames[0].dtype == np.uint8
    assert all(m.shape == (size, size) and not m.any() for m in clip.masks)
    assert clip.audio.shape == (N,) and clip.audio.dtype == np.float32
    assert np.abs(clip.audio).max() <= 1.0


def benchmarks_here():
    return ["synthav", *(["tuxav"] if HAS_STAMPS else [])]


@pytest.mark.parametrize("benchmark", benchmarks_here())
def test_negatives_are_deterministic_with_empty_masks_and_sound_what_they_say(benchmark):
    size = 64 if benchmark == "synthav" else tuxav.IMAGE_SIZE
    categories = [c for c in CATEGORIES if c != "noise_babble" or HAS_SPEECH]
    for category in categories:
        clip = make_negative(benchmark, category, 2, 3, image_size=64)
        check_negative(clip, size)
        again = make_negative(benchmark, category, 2, 3, image_size=64)
        np.testing.assert_array_equal(clip.frames[4], again.frames[4])
        np.testing.assert_array_equal(clip.audio, again.audio)
        other = make_negative(benchmark, category, 2, 4, image_size=64)
        assert not np.array_equal(clip.frames[0], other.frames[0])
        if category == "silence":
            assert not clip.audio.any()
        elif category.startswith("noise_"):
            low, high = NOISE_LEVELS_DBFS
            assert clip.info["noise"] == category.removeprefix("noise_")
            assert level_dbfs(clip.audio) == pytest.approx(clip.info["level_dbfs"], abs=1e-3)
            assert low <= clip.info["level_dbfs"] <= high
        else:
            assert level_dbfs(clip.audio) > -40  # a real sound, as loud as the positives'


def test_an_offscreen_sound_is_of_a_class_nowhere_in_the_frame():
    for index in range(40):
        clip = make_negative("synthav", "offscreen", 0, index, image_size=64)
        in_view = set(clip.info["in_view"])
        assert clip.info["sound"] in synthav.CLASSES and clip.info["sound"] not in in_view
        assert len(in_view) >= 2  # the scene's large object and its distractors


@needs_stamps
def test_a_tuxav_offscreen_sound_is_a_recording_of_a_stamp_not_in_view():
    classes = {c.name for c in tuxav.sound_classes()}
    sounds = set()
    for index in range(30):
        info = make_negative("tuxav", "offscreen", 0, index).info
        assert info["sound"] in classes and info["sound"] not in info["in_view"]
        sounds.add(info["sound"])
    assert len(sounds) > 20  # drawn over the classes, not one favourite


def tree_digest(root, exclude=NEGATIVES_DIR):
    """sha256 of every file under root (path and bytes), skipping the negatives directory."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if relative.parts[0] == exclude:
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@needs_speech  # six clips per kind reach the babble noise
def test_negatives_leave_the_positive_files_byte_identical_and_load_with_zero_maps(tmp_path):
    spec = BenchmarkSpec("synthav", train=2, val=2, test=2, image_size=64)
    plain = build_benchmark(spec, tmp_path / "plain", progress=QUIET)
    both = build_benchmark(spec, tmp_path / "both", progress=QUIET, negatives=6)
    assert not (plain / NEGATIVES_DIR).exists()
    assert tree_digest(plain) == tree_digest(both)

    frontend = LogMelConfig()
    positives = load_table(f"synthav:{both}", "test", 64, frontend)
    assert len(positives) == 2 * FRAMES_PER_CLIP  # the negatives are not in the positive split
    table = load_table(f"synthav:{both / NEGATIVES_DIR}", "test", 64, frontend)
    assert len(table) == 3 * 6 * FRAMES_PER_CLIP
    assert table.gt_is_mask and table.gt_maps.shape == (90, 224, 224) and not table.gt_maps.any()
    counts = {}
    for record in table.records:
        counts[record.category] = counts.get(record.category, 0) + 1
    expected = {"offscreen": 30, "silence": 30} | {f"noise_{k}": 5 for k in NOISE_KINDS}
    assert counts == expected
    val = load_table(f"synthav:{both / NEGATIVES_DIR}", "val", 64, frontend)
    assert not {r.clip for r in val.records} & {r.clip for r in table.records}
    with pytest.raises(ValueError, match="no clips for split 'train'"):
        load_table(f"synthav:{both / NEGATIVES_DIR}", "train", 64, frontend)
    record = json.loads((both / NEGATIVES_DIR / "benchmark.json").read_text())
    assert record["clips"] == 6 and record["noise_kinds"] == list(NOISE_KINDS)


def test_an_existing_benchmark_gains_negatives_without_a_rebuild(tmp_path, capsys):
    # two clips per kind per split: noise indices 0-3 (white to hum), no speech needed
    out = tmp_path / "bench"
    args = ["synthav", "--out", str(out), "--train", "1", "--val", "1", "--test", "1"]
    assert main([*args, "--negatives", "0"]) == 0
    assert not (out / NEGATIVES_DIR).exists()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert main([*args, "--negatives", "2"]) == 0
    assert "negatives in" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in before} == before  # positives untouched
    stamp = (out / NEGATIVES_DIR / "benchmark.json").stat().st_mtime_ns
    assert main([*args, "--negatives", "2"]) == 0  # both records match: nothing rewritten
    assert (out / NEGATIVES_DIR / "benchmark.json").stat().st_mtime_ns == stamp
    assert main([*args, "--negatives", "3"]) == 1  # another count: refused, with the fix
    assert f"{out / NEGATIVES_DIR} exists" in capsys.readouterr().err
    assert not (out / ".negatives.partial").exists()
