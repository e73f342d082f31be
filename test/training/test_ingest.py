"""soundloc-ingest: robot bags (written with rosbags directly) -> an unlabeled training dataset."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replay"))
from replay_bags import (  # the replay tests' foreign-recorder bags
    Topics,
    make_scene,
    write_scene_bag,
)
from soundloc_training.data import load_table
from soundloc_training.ingest import IngestConfig, Manifest, ingest, main

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


def test_ingest_subsamples_skips_silence_and_duplicates_and_keeps_the_audio_exact(
    robot_bag, tmp_path
):
    results = ingest([robot_bag], tmp_path / "ds", CONFIG)
    counts = results["robot_run_1"]
    # 2 fps -> frames at 1.0, 1.5, ..., 4.5 s; the windows [t - 1, t] of 3.5 and 4.0 s are
    # silent; 4.5 s shows the picture of 3.0 s again
    assert counts["frames_in_bag"] == 40 and counts["subsampled"] == 32
    assert counts["silent"] == 2 and counts["duplicate"] == 1
    rows = [r for r in manifest_rows(tmp_path / "ds") if "bag_done" not in r]
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
    frames = [r for r in manifest_rows(tmp_path / "ds") if "bag_done" not in r]
    assert frames == [r for r in manifest_rows(reference) if "bag_done" not in r]
    assert Manifest(tmp_path / "ds").done_bags == {"robot_run_1"}


def test_a_bag_without_audio_is_refused_with_the_topic_to_set(tmp_path, capsys):
    bag = write_scene_bag(tmp_path / "no_audio", make_scene(n_frames=2),
                          Topics(omit={"audio"}))  # fmt: skip
    assert main([str(bag), "--out", str(tmp_path / "ds"), "--image-topic", TOPICS.image]) == 2
    assert "--audio-topic" in capsys.readouterr().err
