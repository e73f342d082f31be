"""The self-training loop end to end, for real: recorded bags -> ingest -> fine-tune -> export ->
replay evaluation on a held-out bag, and the pieces it needs (init_checkpoint, label-free val,
datasets joined with '+')."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from soundloc_training.data import load_table
from soundloc_training.export import export_bundle
from soundloc_training.ingest import IngestConfig, ingest
from soundloc_training.make_bag import dataset_clips, write_bag
from soundloc_training.orchestration import run

from soundloc_ros.replay.cli import main as replay_eval

pytest.importorskip("rosbags", reason="rosbags is installed by make setup")


def read_log(config):
    lines = (Path(config.out_dir) / "log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def replay_accuracy(capsys, bag: Path, bundle: Path, out: Path) -> dict:
    capsys.readouterr()  # what training printed
    assert replay_eval([str(bag), "--bundle", str(bundle), "--out", str(out), "--quiet"]) == 0
    return json.loads(capsys.readouterr().out.splitlines()[-1])["accuracy"]


def test_bags_to_a_better_bundle(fast_config, tiny_synthav, tmp_path, capsys):
    data = f"synthav:{tiny_synthav}"
    start = replace(fast_config, epochs=1, out_dir=str(tmp_path / "start"), limit_train=96)
    run(start)  # a weak starting checkpoint: one epoch on 96 frames
    write_bag(dataset_clips(data, "train"), tmp_path / "robot_bag")  # the robot's recordings
    write_bag(dataset_clips(data, "test"), tmp_path / "held_out")  # labelled, never trained on
    counts = ingest([tmp_path / "robot_bag"], tmp_path / "robot_data",
                    IngestConfig(clip_seconds=5.0, val_percent=20.0))["robot_bag"]  # fmt: skip
    assert counts["kept"] > 300
    tuned = replace(fast_config, data=f"bags:{tmp_path / 'robot_data'}",
                    out_dir=str(tmp_path / "tuned"), epochs=5,
                    init_checkpoint=str(tmp_path / "start" / "best.pt"),
                    select_metric="retrieval_acc")  # fmt: skip
    summary = run(tuned)
    log = read_log(tuned)
    assert "retrieval_acc" in log[0]["val"] and "auc" not in log[0]["val"]  # no labels used
    assert summary["best"]["retrieval_acc"] == max(line["val"]["retrieval_acc"] for line in log)
    before = export_bundle(tmp_path / "start" / "best.pt", tmp_path / "b0", frames=2)[0]
    after = export_bundle(tmp_path / "tuned" / "best.pt", tmp_path / "b1", frames=2)[0]
    # the no-source threshold is re-calibrated on the bags' own val pairs, without labels
    calibration = after.detection.calibration
    assert calibration["frames"] == f"bags:{tmp_path / 'robot_data'} val"
    assert calibration["above_threshold"]["mismatched"] <= 0.15
    assert after.detection.threshold != before.detection.threshold
    old = replay_accuracy(capsys, tmp_path / "held_out", before.directory, tmp_path / "r0")
    new = replay_accuracy(capsys, tmp_path / "held_out", after.directory, tmp_path / "r1")
    assert new["auc"] > old["auc"] and new["peak_in_object"] >= old["peak_in_object"], (old, new)


def test_init_checkpoint_starts_from_its_weights_and_refuses_a_misfit(fast_config, tmp_path):
    first = replace(fast_config, epochs=1, out_dir=str(tmp_path / "a"))
    run(first)
    again = replace(fast_config, epochs=1, out_dir=str(tmp_path / "b"), lr=1e-12,
                    warmup_epochs=1.0, init_checkpoint=str(tmp_path / "a" / "last.pt"))  # fmt: skip
    run(again)  # a learning rate of ~0: the weights stay the checkpoint's
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["model"]
    for key in a:
        if key.endswith(("weight", "bias")):
            torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)
    misfit = replace(again, out_dir=str(tmp_path / "c"), embed_dim=64)
    with pytest.raises(ValueError, match="embed_dim"):
        run(misfit)


def test_datasets_join_with_a_plus_and_unlabeled_val_needs_a_label_free_metric(
    fast_config, tiny_synthav, tmp_path
):
    write_bag(dataset_clips(f"synthav:{tiny_synthav}", "val", 10), tmp_path / "bag")
    ingest([tmp_path / "bag"], tmp_path / "robot", IngestConfig(clip_seconds=5.0, val_percent=50))
    joined = f"bags:{tmp_path / 'robot'}+synthav:{tiny_synthav}"
    robot = load_table(f"bags:{tmp_path / 'robot'}", "train", 64, fast_config.audio_frontend)
    both = load_table(joined, "train", 64, fast_config.audio_frontend)
    synth = load_table(f"synthav:{tiny_synthav}", "train", 64, fast_config.audio_frontend)
    assert len(both) == len(robot) + len(synth)
    assert len(set(both.clip_ids.tolist())) == len(set(robot.clip_ids)) + len(set(synth.clip_ids))
    unlabeled = replace(fast_config, data=f"bags:{tmp_path / 'robot'}", out_dir=str(tmp_path / "r"))
    with pytest.raises(ValueError, match="retrieval_acc"):
        run(unlabeled)  # select_metric auc cannot be computed without ground truth
