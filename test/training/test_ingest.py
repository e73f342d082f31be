"""soundloc-ingest: robot bags (written with rosbags directly) -> an unlabeled training dataset."""

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replay"))
from replay_bags import (  # the replay tests' foreign-recorder bags
    T0,
    Topics,
    make_scene,
    write_scene_bag,
)
from soundloc_training.cli.ingest import main
from soundloc_training.data import load_table
from soundloc_training.datasets.ingested import load_ingested
from soundloc_training.ingest import IngestConfig, Manifest, ingest

from soundloc_ros.core.features import LogMelConfig

pytest.importorskip("rosbags", reason="rosbags is installed by make setup")
TOPICS = Topics()
CONFIG = IngestConfig(fps=2.0, clip_seconds=1.0, val_percent=30.0,
                      topics={"image": TOPICS.image, "camera_info": TOPICS.camera_info,
                              "audio": TOPICS.audio, "audio_info": TOPICS.audio_info,
                              "ground_truth": TOPICS.ground_truth})  # fmt: skip


def robot_scene():
    """A 10 Hz camera for 4 s (frames at 1.0 .. 4.9 s); silence in [2.5, 4.0) s; from 3.0 s on
    the picture stays the same."""
    scene = make_scene(n_frames=40, seed=2)
    scene.frame_times = [1.0 + 0.1 * k for k in range(40)]
    scene.audio = scene.audio[: int(5.0 * scene.sample_rate)]
    rate = scene.sample_rate
    scene.audio[int(2.5 * rate) : int(4.0 * rate)] = 0.0
    for k in range(20, 40):
        scene.frames[k] = scene.frames[20]
    return scene


@pytest.fixture(scope="module")
def robot_bag(tmp_path_factory):
    return write_scene_bag(tmp_path_factory.mktemp("bags") / "robot_run_1", robot_scene(), TOPICS)


def manifest_rows(root):
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def clip_rows(root):
    """The frame and clip_done lines (bag_done lines hold each run's own counts)."""
    return [r for r in manifest_rows(root) if "bag_done" not in r]


def test_ingest_subsamples_skips_silence_and_duplicates_and_keeps_the_audio_exact(
    robot_bag, tmp_path
):
    results = ingest([robot_bag], tmp_path / "ds", CONFIG)
    counts = results["robot_run_1"]
    # 2 fps -> frames at 1.0, 1.5, ..., 4.5 s; the windows [t - 1, t] of 3.5 and 4.0 s are
    # silent; 4.5 s shows the picture of 3.0 s again
    assert counts["frames_in_bag"] == 40 and counts["subsampled"] == 32
    assert counts["silent"] == 2 and counts["duplicate"] == 1
    rows = [r for r in clip_rows(tmp_path / "ds") if "clip_done" not in r]
    stamps = [round(r["stamp"] - 1_750_000_000.0, 3) for r in rows]
    assert stamps == [1.0, 1.5, 2.0, 2.5, 3.0] and counts["kept"] == 5
    scene = robot_scene()
    for row in rows:
        samples, rate = soundfile.read(tmp_path / "ds" / row["audio"], dtype="float32")
        start, end = (round(x * rate) for x in row["window"])
        t = row["stamp"] - 1_750_000_000.0
        expected = scene.mono[round((t - 1) * rate) : round(t * rate)]
        np.testing.assert_allclose(samples[start:end], expected, atol=2e-4)  # PCM16 rounding
        frame = np.asarray(Image.open(tmp_path / "ds" / row["image"]))
        k = round((t - 1.0) / 0.1)
        np.testing.assert_array_equal(frame, scene.frames[k])


def test_a_bag_of_image_transport_compressed_frames_ingests_like_raw(robot_bag, tmp_path):
    """png is lossless, so the dataset is the raw bag's, frame for frame."""
    compressed = write_scene_bag(tmp_path / "robot_run_png", robot_scene(), TOPICS,
                                 compression="png")  # fmt: skip
    counts = ingest([compressed], tmp_path / "png", CONFIG)["robot_run_png"]
    raw = ingest([robot_bag], tmp_path / "raw", CONFIG)["robot_run_1"]
    assert counts == raw and counts["kept"] == 5
    for a, b in zip(clip_rows(tmp_path / "png"), clip_rows(tmp_path / "raw"), strict=True):
        if "image" in a:
            png = np.asarray(Image.open(tmp_path / "png" / a["image"]))
            np.testing.assert_array_equal(
                png, np.asarray(Image.open(tmp_path / "raw" / b["image"]))
            )


def test_duplicates_are_dropped_and_the_training_loader_reads_the_dataset(robot_bag, tmp_path):
    keep_all = IngestConfig(**{**CONFIG.__dict__, "dedup": 0.0, "silence_db": -200.0})
    counts = ingest([robot_bag], tmp_path / "all", keep_all)["robot_run_1"]
    assert counts["kept"] == 6 and "duplicate" not in counts  # digital silence is still silent
    deduped = ingest([robot_bag], tmp_path / "dedup",
                     IngestConfig(**{**keep_all.__dict__, "dedup": 2.0}))  # fmt: skip
    assert deduped["robot_run_1"]["duplicate"] == 1
    frontend = LogMelConfig()
    tables = {s: load_table(f"bags:{tmp_path / 'all'}", s, 64, frontend) for s in ("train", "val")}
    assert len(tables["train"]) + len(tables["val"]) == 6 and len(tables["val"]) > 0
    assert tables["train"].gt_maps is None  # unlabeled by construction
    train = tables["train"]
    clips = {r.clip for r in train.records}
    assert len(set(train.clip_ids.tolist())) == len(clips)  # one clip id per clip
    np.testing.assert_allclose(train.windows[:, 1] - train.windows[:, 0], 1.0)


def test_an_interrupted_ingest_resumes_to_the_same_dataset(robot_bag, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    ingest([robot_bag], reference, CONFIG)
    appended = []
    real_append = Manifest.append

    def crash_after_two_clips(self, rows):
        if len(appended) == 2:
            raise KeyboardInterrupt  # the operator's Ctrl-C, between two clips
        appended.append(rows)
        real_append(self, rows)

    monkeypatch.setattr(Manifest, "append", crash_after_two_clips)
    with pytest.raises(KeyboardInterrupt):
        ingest([robot_bag], tmp_path / "ds", CONFIG)
    monkeypatch.setattr(Manifest, "append", real_append)
    with open(tmp_path / "ds" / "manifest.jsonl", "a") as manifest:
        manifest.write('{"name": "half a li')  # and a line cut short by a power loss
    assert (
        main(
            [
                str(robot_bag),
                "--out",
                str(tmp_path / "ds"),
                "--fps",
                "2",
                "--clip-seconds",
                "1",
                "--val-percent",
                "30",
                "--image-topic",
                TOPICS.image,
                "--audio-topic",
                TOPICS.audio,
                "--audio-info-topic",
                TOPICS.audio_info,
            ]
        )
        == 2
    )
    # the CLI's topics differ from CONFIG's (camera_info, ground_truth): refused, not mixed
    counts = ingest([robot_bag], tmp_path / "ds", CONFIG)["robot_run_1"]
    assert counts["already_ingested"] == 4 and counts["kept"] == 1  # clips 0 and 1 were written
    assert clip_rows(tmp_path / "ds") == clip_rows(reference)
    assert Manifest(tmp_path / "ds").done_bags == {"robot_run_1"}


def test_a_bag_without_audio_is_refused_with_the_topic_to_set(tmp_path, capsys):
    bag = write_scene_bag(tmp_path / "no_audio", make_scene(n_frames=2),
                          Topics(omit={"audio"}))  # fmt: skip
    assert main([str(bag), "--out", str(tmp_path / "ds"), "--image-topic", TOPICS.image]) == 2
    assert "--audio-topic" in capsys.readouterr().err


CLI_ARGS = ["--fps", "2", "--clip-seconds", "1", "--val-percent", "30", "--image-topic",
            TOPICS.image, "--audio-topic", TOPICS.audio, "--audio-info-topic",
            TOPICS.audio_info]  # fmt: skip


def test_an_undecodable_message_is_skipped_counted_and_listed_and_the_bag_finishes(
    robot_bag, tmp_path
):
    """Frame 11 (2.1 s, which 2 fps subsampling skips anyway) is cut in half by the recorder:
    the bag gives the frames it gives whole, and names the message it skipped."""
    reference = tmp_path / "reference"
    ingest([robot_bag], reference, CONFIG)
    scene = robot_scene()
    bag = write_scene_bag(tmp_path / "torn" / "robot_run_1", scene, TOPICS,
                          corrupt=frozenset({("image", 11)}))  # fmt: skip
    for _ in range(2):  # and a rerun finds the bag done
        ingest([bag], tmp_path / "ds", CONFIG)
    rows = manifest_rows(tmp_path / "ds")
    (done,) = [r for r in rows if "bag_done" in r]
    counts = done["counts"]
    assert counts["undecodable"] == 1 and counts["frames_in_bag"] == 39 and counts["kept"] == 5
    (listed,) = counts["errors"]["undecodable"]
    assert listed["topic"] == TOPICS.image and "deserialize" in listed["reason"]
    assert listed["log_time_ns"] == round((T0 + scene.frame_times[11] + 0.005) * 1e9)
    assert clip_rows(tmp_path / "ds") == clip_rows(reference)


def test_a_clip_torn_inside_its_append_is_written_again_and_no_frame_is_lost(robot_bag, tmp_path):
    """Killed while appending clip 1: its first frame line is whole, its second cut short."""
    reference = tmp_path / "reference"
    ingest([robot_bag], reference, CONFIG)
    ds = tmp_path / "ds"
    shutil.copytree(reference, ds)
    lines = (reference / "manifest.jsonl").read_bytes().splitlines(keepends=True)
    rows = [json.loads(line) for line in lines]
    first = next(i for i, r in enumerate(rows) if "name" in r and r["clip_index"] == 1)
    (ds / "manifest.jsonl").write_bytes(b"".join(lines[: first + 1]) + lines[first + 1][:25])
    assert len(load_ingested(ds, None)) == 2  # training reads the whole clip 0 only
    counts = ingest([robot_bag], ds, CONFIG)["robot_run_1"]
    assert counts["already_ingested"] == 2 and counts["kept"] == 3
    assert clip_rows(ds) == clip_rows(reference)
    assert len(load_ingested(ds, None)) == len(load_ingested(reference, None)) == 5


def test_a_damaged_manifest_or_dataset_json_is_named_with_the_fix(robot_bag, tmp_path, capsys):
    ds = tmp_path / "ds"
    ingest([robot_bag], ds, CONFIG)
    manifest = ds / "manifest.jsonl"
    whole = manifest.read_bytes()
    lines = whole.splitlines(keepends=True)
    manifest.write_bytes(lines[0] + b"#garbled#\n" + b"".join(lines[2:]))  # whole clips follow
    named = rf"{re.escape(str(manifest))}:2 is not valid JSON .*new --out"
    with pytest.raises(ValueError, match=named):
        ingest([robot_bag], ds, CONFIG)
    with pytest.raises(ValueError, match=named):
        load_ingested(ds, None)
    manifest.write_bytes(whole)
    (ds / "dataset.json").write_text('{"format": "soundloc-ingested",\n')
    assert main([str(robot_bag), "--out", str(ds), *CLI_ARGS]) == 2
    err = capsys.readouterr().err
    assert f"{ds / 'dataset.json'} is not valid JSON" in err and "new --out" in err


def test_a_bag_that_gives_no_frame_is_an_error_and_not_marked_done(tmp_path, capsys):
    scene = robot_scene()
    scene.audio *= 1e-3  # the microphone gain was turned down: about -77 dBFS
    bag = write_scene_bag(tmp_path / "quiet_run", scene, TOPICS)
    assert main([str(bag), "--out", str(tmp_path / "ds"), *CLI_ARGS]) == 2
    err = capsys.readouterr().err
    assert f"no frame of {bag} was kept" in err and "--silence-db -55.0" in err
    assert Manifest(tmp_path / "ds").done_bags == set()
    # the empty dataset takes the advice: the same bag, a lower level
    assert main([str(bag), "--out", str(tmp_path / "ds"), *CLI_ARGS, "--silence-db", "-90"]) == 0
    assert Manifest(tmp_path / "ds").done_bags == {"quiet_run"}
    assert Manifest(tmp_path / "ds").frames == 5  # as many as at the normal level
