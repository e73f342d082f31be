"""soundloc-make-bag: a benchmark split as a rosbag2 that rosbags' own reader reads back."""

import numpy as np
import pytest
from PIL import Image
from soundloc_training.cli.make_bag import main
from soundloc_training.data import load_audio
from soundloc_training.datasets.build import BenchmarkSpec, build_benchmark
from soundloc_training.datasets.public import load_records
from soundloc_training.make_bag import dataset_clips, interleave, write_bag

from soundloc_ros.core.pcm import decode_pcm, float_to_pcm
from soundloc_ros.replay.messages import LABEL_TOPIC, BagTopics, typestore

rosbags = pytest.importorskip("rosbags", reason="rosbags is installed by make setup")


def read_all(bag):
    from rosbags.highlevel import AnyReader

    store = typestore()
    with AnyReader([bag], default_typestore=store) as reader:
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
        messages = [
            (c.topic, t, reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages()
        ]
    return messages, qos


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_written_bag_holds_frames_audio_and_masks_as_a_robot_records_them(
    tiny_synthav, tmp_path, storage
):
    data, topics = f"synthav:{tiny_synthav}", BagTopics()
    counts = write_bag(dataset_clips(data, "test", 2), tmp_path / "bag", storage=storage)
    assert (tmp_path / "bag" / "metadata.yaml").is_file()
    messages, qos = read_all(tmp_path / "bag")
    by_topic = {}
    for topic, time_ns, message in messages:
        by_topic.setdefault(topic, []).append((time_ns, message))
    assert {t: len(m) for t, m in by_topic.items()} == counts
    assert counts[topics.image] == counts[topics.ground_truth] == counts[topics.camera_info] == 10
    assert counts[topics.audio] == 2 * 5 * 16000 // 320 and counts[topics.audio_info] == 1

    records = load_records("synthav", tiny_synthav, "test")[:10]
    first_frame = by_topic[topics.image][0][1]
    expected = np.asarray(Image.open(records[0].image_path).convert("RGB"))
    assert (first_frame.height, first_frame.width, first_frame.encoding) == (128, 128, "rgb8")
    np.testing.assert_array_equal(first_frame.data.reshape(expected.shape), expected)
    frame_time = first_frame.header.stamp.sec + first_frame.header.stamp.nanosec * 1e-9
    assert frame_time == pytest.approx(1_700_000_000.0 + records[0].audio_window[1])
    mask = by_topic[topics.ground_truth][0][1]
    assert mask.encoding == "mono8" and mask.header.stamp == first_frame.header.stamp

    chunks = [m for _, m in by_topic[topics.audio]]
    pcm = np.concatenate([decode_pcm(bytes(c.audio.data), "S16LE", 1) for c in chunks[:250]])
    np.testing.assert_array_equal(
        pcm, float_to_pcm(load_audio(records[0].audio_path, 16000)[:, None], "S16LE")
    )
    steps = np.diff([c.header.stamp.sec + c.header.stamp.nanosec * 1e-9 for c in chunks])
    np.testing.assert_allclose(steps, 0.02, atol=1e-6)  # first-sample stamps, 20 ms apart
    times = [t for _, t, _ in messages]
    assert times == sorted(times)
    assert qos[topics.image][0].reliability.name == "BEST_EFFORT"
    assert qos[topics.audio_info][0].durability.name == "TRANSIENT_LOCAL"


@pytest.mark.parametrize("codec", ["png", "jpeg"])
def test_compressed_frames_go_where_image_transport_puts_them_and_read_back(
    tiny_synthav, tmp_path, codec
):
    from soundloc_ros.replay.bag import BagSource, decode_frame

    topics = BagTopics()
    counts = write_bag(dataset_clips(f"synthav:{tiny_synthav}", "test", 1), tmp_path / "bag",
                       image_format=codec)  # fmt: skip
    assert counts[topics.image + "/compressed"] == 5 and topics.image not in counts
    expected = np.asarray(Image.open(load_records("synthav", tiny_synthav, "test")[0].image_path)
                          .convert("RGB"))  # fmt: skip
    with BagSource(tmp_path / "bag") as source:  # the default camera topic finds it
        assert source.info["image"].msgtype == "sensor_msgs/msg/CompressedImage"
        first = next(m for m in source.messages() if m.kind == "image")
        message = source.decode(first)
        frame, encoding = decode_frame(message)
    assert message.format == f"rgb8; {codec} compressed bgr8" and encoding == "rgb8"
    error = np.abs(frame.astype(int) - expected).mean()
    assert error == 0 if codec == "png" else error < 8  # jpeg is lossy


def test_cli_refuses_to_overwrite_and_names_an_empty_split(tiny_synthav, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert main(["--data", f"synthav:{tiny_synthav}", "--out", str(tmp_path / "taken")]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["--data", f"synthav:{tiny_synthav}", "--out", str(tmp_path / "b"), "--clips",
                 "1", "--split", "val"]) == 0  # fmt: skip
    assert "/camera/image_raw        5 messages" in capsys.readouterr().out


def test_negatives_are_interleaved_and_every_mask_comes_with_its_frame_label(tmp_path):
    spec = BenchmarkSpec("synthav", train=0, val=0, test=4, image_size=64)
    root = build_benchmark(spec, tmp_path / "bench", progress=lambda items, **_: items, negatives=2)
    bag, topics = tmp_path / "bag", BagTopics()
    assert main(["--data", f"synthav:{root}", "--out", str(bag), "--negatives"]) == 0
    messages, _ = read_all(bag)
    by_topic = {}
    for topic, time_ns, message in messages:
        by_topic.setdefault(topic, []).append((time_ns, message))
    masks, labels = by_topic[topics.ground_truth], by_topic[LABEL_TOPIC]
    assert [t for t, _ in labels] == [t for t, _ in masks]  # same bag time as each mask
    assert len(labels) == len(by_topic[topics.image]) == (4 + 3 * 2) * 5

    def clips(path, polarity):
        records = load_records("synthav", path, "test")
        return [(f"{polarity}/{r.category}", records[i : i + 5]) for i, r in enumerate(records)][
            ::5
        ]

    expected = interleave(clips(root, "positive"), clips(root / "negatives", "negative"))
    assert [label for label, _ in expected] == [
        "negative/offscreen", "positive/circle", "negative/noise_brown", "positive/square",
        "negative/silence", "negative/offscreen", "positive/triangle", "negative/noise_hum",
        "positive/star", "negative/silence",
    ]  # fmt: skip
    frames = [(label, r) for label, records in expected for r in records]
    images = by_topic[topics.image]
    for (label, record), (_, mask), (_, text), (_, image) in zip(
        frames, masks, labels, images, strict=True
    ):
        assert text.data == label
        expected_rgb = np.asarray(Image.open(record.image_path).convert("RGB"))
        np.testing.assert_array_equal(image.data.reshape(expected_rgb.shape), expected_rgb)
        assert mask.header.stamp == image.header.stamp
        assert mask.data.any() == label.startswith("positive/")  # negatives: empty masks


def test_asking_for_negatives_a_benchmark_lacks_names_the_command_that_adds_them(tiny_synthav):
    with pytest.raises(
        FileNotFoundError, match=f"soundloc-make-benchmark synthav --out {tiny_synthav}"
    ):
        next(dataset_clips(f"synthav:{tiny_synthav}", "test", negatives=True))
