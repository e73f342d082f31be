"""soundloc-make-bag: a benchmark split as a rosbag2 that rosbags' own reader reads back."""

import numpy as np
import pytest
from PIL import Image
from soundloc_training.data import load_audio
from soundloc_training.datasets.public import load_records
from soundloc_training.make_bag import dataset_clips, main, write_bag

from soundloc_ros.core.pcm import decode_pcm, float_to_pcm
from soundloc_ros.replay.messages import BagTopics, typestore

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
