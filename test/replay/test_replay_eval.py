"""soundloc-replay-eval offline, on bags written with rosbags directly, with real ONNX Runtime."""

import json

import numpy as np
import pytest
from replay_bags import T0, Topics, make_scene, write_scene_bag

from soundloc_ros.core.backends import create_backend
from soundloc_ros.core.frame_pipeline import CameraModel, FramePipeline
from soundloc_ros.core.ground_truth import mask_to_map
from soundloc_ros.core.metrics import LocalizationMetrics, MaskAccumulator
from soundloc_ros.core.predictor import Predictor
from soundloc_ros.replay.cli import main

pytest.importorskip("rosbags", reason="rosbags is installed by make setup")


def topic_args(topics: Topics) -> list[str]:
    return ["--image-topic", topics.image, "--camera-info-topic", topics.camera_info,
            "--audio-topic", topics.audio, "--audio-info-topic", topics.audio_info,
            "--ground-truth-topic", topics.ground_truth]  # fmt: skip


def run_cli(capsys, *args) -> tuple[int, dict | None, str]:
    code = main([*map(str, args), "--quiet"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def expected_figures(bundle, scene) -> dict[str, float]:
    """The same frames scored straight from the scene: audio second [t - 1, t] of each frame."""
    pipeline = FramePipeline(Predictor(create_backend(bundle, "onnxruntime")))
    metrics, masks, hits, angles = LocalizationMetrics(), MaskAccumulator(), [], []
    rate = scene.sample_rate
    for frame, truth, t in zip(scene.frames, scene.masks, scene.frame_times, strict=True):
        window = scene.mono[int((t - 1) * rate) : int(t * rate)]
        result = pipeline.process(np.ascontiguousarray(frame[..., ::-1]), "bgr8", window, rate)
        metrics.update(result.heatmap, gt_map=mask_to_map(truth), mask_gt=truth)
        masks.update(result.mask.astype(np.float32), truth)
        u, v = result.peak
        hits.append(truth[round(v), round(u)])
        angles.append(angle_to_centroid_deg(result.bearing(scene_camera(truth.shape)), truth))
    figures = metrics.compute()
    expected = {k: figures[k] for k in ("ciou", "auc", "miou", "fscore")}
    expected.update(mask_miou=masks.compute()["miou"], peak_in_object=float(np.mean(hits)),
                    bearing_error_deg_median=round(float(np.median(angles)), 2))  # fmt: skip
    return {name: round(value, 4) for name, value in expected.items()}  # as the report rounds


def scene_camera(shape: tuple[int, int]) -> CameraModel:
    """The CameraInfo that write_scene_bag records: focal 0.8 * width, centre at (w/2, h/2)."""
    height, width = shape
    focal = 0.8 * width
    return CameraModel.from_camera_info(
        [focal, 0, width / 2, 0, focal, height / 2, 0, 0, 1], height, width
    )


def angle_to_centroid_deg(bearing: np.ndarray, truth: np.ndarray) -> float:
    """Degrees between a bearing and the ray through the centre of the sounding object's pixels."""
    rows, cols = np.nonzero(truth)
    centroid = scene_camera(truth.shape).ray(cols.mean(), rows.mean())
    return float(np.degrees(np.arccos(np.clip(np.dot(bearing, centroid), -1, 1))))


def test_a_foreign_bag_is_scored_exactly_as_its_frames_would_be_directly(
    tiny_bundle, tmp_path, capsys
):
    """Own topic names, sqlite3, bgr8, 48 kHz stereo announced by AudioInfo, no recorded QoS."""
    scene, topics = make_scene(), Topics()
    bag = write_scene_bag(tmp_path / "bag", scene, topics)
    code, report, err = run_cli(capsys, bag, "--bundle", tiny_bundle.directory, "--out",
                                tmp_path / "out", *topic_args(topics))  # fmt: skip
    assert code == 0, err
    assert report["counts"] == {"frames": 6, "outputs": 6, "scored": 6, "negative": 0, "silent": 0,
                                "outputs_without_ground_truth": 0}  # fmt: skip
    for name, value in expected_figures(tiny_bundle, scene).items():
        step = 0.01 if name.startswith("bearing") else 1e-4  # one step of the report's rounding
        assert report["accuracy"][name] == pytest.approx(value, abs=step), name
    stages = report["latency_ms"]
    assert {"decode", "preprocess", "inference", "postprocess", "total"} <= set(stages)
    assert stages["total"]["n"] == 6 and stages["inference"]["p50"] > 0
    assert report["drops"] == {} and report["speed_vs_real_time"] > 1
    assert (tmp_path / "out" / "contact_sheet.png").stat().st_size > 0
    assert (
        json.loads((tmp_path / "out" / "report.json").read_text())["accuracy"] == report["accuracy"]
    )


@pytest.mark.parametrize("codec", ["png", "jpeg"])
def test_a_bag_of_image_transport_compressed_frames_replays(tiny_bundle, tmp_path, capsys, codec):
    """Recorded from `<camera>/compressed`; replayed under the camera's base topic name, as
    image_transport names it. PNG is lossless: exactly the raw frames' figures."""
    scene, topics = make_scene(), Topics()
    bag = write_scene_bag(tmp_path / "bag", scene, topics, compression=codec)
    code, report, err = run_cli(capsys, bag, "--bundle", tiny_bundle.directory, "--out",
                                tmp_path / "out", *topic_args(topics))  # fmt: skip
    assert code == 0, err
    assert report["topics"]["image"] == topics.image + "/compressed"
    assert report["counts"]["outputs"] == 6 and report["drops"] == {}
    tolerance = 1e-4 if codec == "png" else 0.05  # jpeg is lossy
    for name, value in expected_figures(tiny_bundle, scene).items():
        assert report["accuracy"][name] == pytest.approx(value, abs=tolerance), name


def test_replay_is_deterministic_and_mcap_reads_like_sqlite3(tiny_bundle, tmp_path, capsys):
    scene, topics = make_scene(seed=3), Topics()
    reports = []
    for i, storage in enumerate(("mcap", "sqlite3", "sqlite3")):
        bag = write_scene_bag(tmp_path / f"bag_{i}", scene, topics, storage=storage)
        out = tmp_path / f"out{i}"
        code, report, err = run_cli(
            capsys, bag, "--bundle", tiny_bundle.directory, "--out", out, *topic_args(topics)
        )
        assert code == 0, err
        reports.append(report["accuracy"])
    assert reports[0] == reports[1] == reports[2]


def test_without_ground_truth_it_reports_latency_and_pictures(tiny_bundle, tmp_path, capsys):
    topics = Topics(omit={"ground_truth", "camera_info"})
    bag = write_scene_bag(tmp_path / "bag", make_scene(n_frames=3), topics, storage="mcap")
    code, report, err = run_cli(capsys, bag, "--bundle", tiny_bundle.directory, "--out",
                                tmp_path / "out", "--video", "3", *topic_args(topics))  # fmt: skip
    assert code == 0, err
    assert report["accuracy"] is None and "no ground-truth topic" in report["note"]
    assert report["counts"]["outputs"] == 3 and report["latency_ms"]["inference"]["n"] == 3
    assert set(report["pictures"]) == {"contact_sheet", "video"}
    assert (tmp_path / "out" / "overlay.gif").read_bytes()[:6] == b"GIF89a"


def test_late_audio_follows_the_node_policy_in_bag_time(tiny_bundle, tmp_path, capsys):
    """Audio only up to 3.5 s: frames at 4, 5, 6 s wait out the deadline; `drop` drops them."""
    scene, topics = make_scene(), Topics()
    scene.audio = scene.audio[: int(3.5 * scene.sample_rate)]
    bag = write_scene_bag(tmp_path / "bag", scene, topics)
    args = [bag, "--bundle", tiny_bundle.directory, *topic_args(topics)]
    code, report, err = run_cli(capsys, *args, "--late-policy", "drop", "--out", tmp_path / "a")
    assert code == 0, err
    assert report["counts"]["outputs"] == 3
    assert sum(report["drops"].values()) == 3
    code, report, _ = run_cli(capsys, *args, "--late-policy", "pad", "--out", tmp_path / "b")
    assert report["counts"]["outputs"] == 4  # 4 s is half covered: padded; 5 and 6 s are not


def test_bags_that_cannot_be_replayed_are_refused_with_the_reason(tiny_bundle, tmp_path, capsys):
    bundle = ["--bundle", tiny_bundle.directory]
    code, _, err = run_cli(capsys, tmp_path / "nowhere", *bundle)
    assert code == 2 and "no bag at" in err

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "metadata.yaml").write_text("rosbag2_bagfile_information: [not, a, bag]\n")
    code, _, err = run_cli(capsys, junk, *bundle)
    assert code == 2 and "cannot read" in err and "rosbag2" in err

    topics = Topics()
    bag = write_scene_bag(tmp_path / "b1", make_scene(n_frames=2), topics)
    code, _, err = run_cli(capsys, bag, *bundle)  # default topic names are not in this bag
    assert code == 2 and "--image-topic" in err and topics.image in err

    bag = write_scene_bag(tmp_path / "b3", make_scene(n_frames=2), topics, encoding="yuv422")
    code, _, err = run_cli(capsys, bag, *bundle, *topic_args(topics), "--out", tmp_path / "o")
    assert code == 2 and "could be localized" in err and "yuv422" in err


def test_frames_are_stamped_where_the_scene_says(tmp_path):
    """The helper bag itself: frame stamps are T0 + frame time (what the expectations assume)."""
    from soundloc_ros.replay.bag import BagSource, stamp_seconds

    topics = Topics()
    with BagSource(write_scene_bag(tmp_path / "bag", make_scene(n_frames=2), topics), topics) as s:
        stamps = [stamp_seconds(s.decode(m).header) for m in s.messages() if m.kind == "image"]
    assert stamps == pytest.approx([T0 + 1.0, T0 + 2.0])


def test_an_undecodable_message_is_skipped_counted_and_listed(tiny_bundle, tmp_path, capsys):
    """Frame 2 and one audio chunk are cut in half by the recorder: the replay localizes the
    other frames (the 20 ms gap in frame 6's window is padded, as the node pads), writes its
    report and lists both messages in it."""
    scene, topics = make_scene(), Topics()
    torn = frozenset({("image", 2), ("audio", 250)})  # chunk 250: 5.0 - 5.02 s
    bag = write_scene_bag(tmp_path / "bag", scene, topics, corrupt=torn)
    code, report, err = run_cli(capsys, bag, "--bundle", tiny_bundle.directory, "--out",
                                tmp_path / "out", *topic_args(topics))  # fmt: skip
    assert code == 0, err
    assert report["drops"]["undecodable"] == 2
    assert report["counts"]["frames"] == report["counts"]["outputs"] == 5
    rate = scene.sample_rate  # the log times as write_scene_bag computes them
    expected = [(topics.image, round((T0 + scene.frame_times[2] + 0.005) * 1e9)),
                (topics.audio, round((T0 + 250 * 960 / rate + 960 / rate) * 1e9))]  # fmt: skip
    listed = report["errors"]["undecodable"]
    assert [(e["topic"], e["log_time_ns"]) for e in listed] == expected
    assert all("does not deserialize" in e["reason"] for e in listed)
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert written["errors"]["undecodable"] == listed


def test_negative_frames_are_scored_for_detection_by_their_labelled_kind(tmp_path, capsys):
    """Loud tones over an object are sounding frames, quiet ones over an empty mask are
    labelled noise: localization counts only the first, detection reports both, at the bundle's
    threshold (the tiny graph's score grows with the audio level)."""
    make_bag = pytest.importorskip("soundloc_training.make_bag")
    from tiny_bundle import write_tiny_bundle

    from soundloc_ros.core.bundle import load_bundle
    from soundloc_ros.core.detection import SourceDetection

    rate, times = 16000, [1.0, 2.0]
    t = np.arange(3 * rate) / rate
    frames = [np.full((32, 32, 3), 120, np.uint8)] * 2
    mask = np.zeros((32, 32), bool)
    mask[:16, :16] = True
    clips = [
        make_bag.BagClip(frames, times, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
                         [mask, mask], "positive/tone"),
        make_bag.BagClip(frames, times, (0.003 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
                         [np.zeros_like(mask)] * 2, "negative/noise_pink"),
        make_bag.BagClip(frames, times, np.zeros(3 * rate, np.float32), [np.zeros_like(mask)] * 2,
                         "negative/silence"),
    ]  # fmt: skip
    bag = tmp_path / "bag"
    make_bag.write_bag(clips, bag)
    probe = write_tiny_bundle(tmp_path / "probe", detection=SourceDetection(-1.0, 0.01))
    pipeline = FramePipeline(Predictor(create_backend(load_bundle(probe.directory), "onnxruntime")))
    loud, quiet = (pipeline.process(frames[0], "rgb8", c.audio[:rate], rate).score
                   for c in clips[:2])  # fmt: skip
    bundle = tmp_path / "calibrated"
    write_tiny_bundle(bundle, detection=SourceDetection((loud + quiet) / 2, 0.01))
    code, report, err = run_cli(capsys, bag, "--bundle", bundle, "--out", tmp_path / "out")
    assert code == 0, err
    assert report["counts"]["scored"] == 2 and report["counts"]["negative"] == 4
    detection = report["detection"]
    assert detection["tpr_at_threshold"] == 1.0
    assert detection["false_source_rate"] == {"noise_pink": 0.0, "silence": 0.0}
    assert detection["roc_auc"] == 1.0 and report["source_threshold"] == (loud + quiet) / 2


def test_a_label_after_an_unreadable_mask_does_not_relabel_the_frame_before():
    from soundloc_ros.replay.scoring import PublishedFrame, ReplayScorer

    scorer = ReplayScorer(n_frames=2, sheet_frames=0)
    empty = np.zeros((8, 8), bool)
    scorer.add_truth((1, 0), empty)
    scorer.add_label("negative/noise_pink")
    scorer.refuse_truth()  # the next mask did not decode; its label follows
    scorer.add_label("negative/silence")
    scorer.add_output((1, 0), PublishedFrame(np.zeros((8, 8), np.float32), empty, None, None, 0.1))
    figures = scorer.figures()
    assert figures["detection"]["false_source_rate"] == {"noise_pink": 0.0}
    assert figures["counts"]["bad_ground_truth"] == 1
