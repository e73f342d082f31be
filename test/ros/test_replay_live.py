"""Live replay (bag -> DDS -> a soundloc_node process -> scorer) agrees with offline replay."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replay"))
from replay_bags import Topics, make_scene, write_scene_bag

from soundloc_ros.replay.cli import main

pytest.importorskip("rosbags", reason="rosbags is installed by make setup")


def replay(capsys, *args) -> dict:
    code = main([*map(str, args), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("compression", ["", "png"], ids=["raw", "compressed"])
def test_live_replay_scores_what_the_node_publishes_like_offline_replay(
    tiny_bundle, tmp_path, capsys, compression
):
    """compressed: the node is started with image_transport:=compressed, remapped by base topic."""
    topics = Topics()
    bag = write_scene_bag(tmp_path / "bag", make_scene(n_frames=6, seed=5), topics, "mcap",
                          compression=compression)  # fmt: skip
    common = [bag, "--bundle", tiny_bundle.directory, "--backend", "onnxruntime",
              "--image-topic", topics.image, "--camera-info-topic", topics.camera_info,
              "--audio-topic", topics.audio, "--audio-info-topic", topics.audio_info,
              "--ground-truth-topic", topics.ground_truth]  # fmt: skip
    offline = replay(capsys, *common, "--out", tmp_path / "offline")
    live = replay(capsys, *common, "--live", "--speed", "2", "--out", tmp_path / "live")
    assert live["mode"] == "live" and live["counts"]["outputs"] == offline["counts"]["outputs"] == 6
    for name, value in offline["accuracy"].items():
        assert live["accuracy"][name] == pytest.approx(value, abs=1e-3), name
    assert live["latency_ms"]["frame_to_heatmap"]["n"] == 6
    assert live["node_diagnostics"]["published_total"] == "6"
    assert "onnxruntime" in live["backend"]
    assert (tmp_path / "live" / "contact_sheet.png").is_file()


def test_live_replay_reports_a_node_that_cannot_start(tmp_path, capsys):
    bag = write_scene_bag(tmp_path / "bag", make_scene(n_frames=1), Topics(), "mcap")
    topics = Topics()
    code = main([str(bag), "--bundle", str(tmp_path / "missing"), "--live", "--quiet",
                 "--image-topic", topics.image, "--audio-topic", topics.audio])  # fmt: skip
    assert code == 2
    assert "missing" in capsys.readouterr().err  # the bundle path, named before any node starts


def test_live_replay_skips_lists_and_survives_an_undecodable_message(tiny_bundle, tmp_path, capsys):
    topics = Topics()
    scene = make_scene(n_frames=6, seed=5)
    bag = write_scene_bag(
        tmp_path / "bag", scene, topics, "mcap", corrupt=frozenset({("image", 2)})
    )
    report = replay(capsys, bag, "--bundle", tiny_bundle.directory, "--backend", "onnxruntime",
                    "--image-topic", topics.image, "--camera-info-topic", topics.camera_info,
                    "--audio-topic", topics.audio, "--audio-info-topic", topics.audio_info,
                    "--live", "--speed", "2", "--out", tmp_path / "live")  # fmt: skip
    assert report["drops"]["undecodable"] == 1
    (listed,) = report["errors"]["undecodable"]
    assert listed["topic"] == topics.image and "does not deserialize" in listed["reason"]
    assert report["counts"]["outputs"] == 5  # every other frame was localized
