"""Dataset index loaders against tiny on-disk fixtures written in each documented layout."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile
from soundloc_training.datasets.avsbench import (
    S4MetaRow,
    avsbench_paths,
    load_avsbench_s4,
    read_avsbench_s4_meta,
    write_avsbench_s4_meta,
)
from soundloc_training.datasets.flickr import load_flickr_soundnet, parse_flickr_xml
from soundloc_training.datasets.public import LOADERS, load_records
from soundloc_training.datasets.vggss import load_vggss

# ---------------------------------------------------------------- fixture writers


def write_image(path: Path, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (10, 20, 30)).save(path)


def write_mask(path: Path, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (size, size), 0).save(path)


def write_wav(path: Path, seconds: float = 0.01, rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, np.zeros(int(seconds * rate), dtype=np.int16))


def write_s4_clip(
    root: Path, split: str, category: str, video: str, masks: tuple[int, ...] | None = None
) -> None:
    """Frames, wav and masks of one clip; masks default to the official train/val/test pattern."""
    paths = avsbench_paths(root, split, category, video)
    if masks is None:
        masks = (1,) if split == "train" else (1, 2, 3, 4, 5)
    for frame in paths.frames:
        write_image(frame)
    for k in masks:
        write_mask(paths.masks[k - 1])
    write_wav(paths.wav)


S4_CLIPS = [
    S4MetaRow("vidA", 0.0, "dog_barking", "train"),
    S4MetaRow("vidB", 3.0, "helicopter", "val"),
    S4MetaRow("vidC", 5.0, "race_car", "test"),
]


@pytest.fixture
def s4_root(tmp_path: Path) -> Path:
    """An `avsbench_data/Single-source` tree with one clip per split."""
    root = tmp_path / "avsbench_data" / "Single-source"
    write_avsbench_s4_meta(root, S4_CLIPS)
    for row in S4_CLIPS:
        write_s4_clip(root, row.split, row.category, row.video)
    return root


def write_meta_text(root: Path, text: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "s4_meta_data.csv").write_text(text)


def write_flickr_xml(path: Path, annotators: list[list[tuple[int, int, int, int]]]) -> None:
    """A realistic-looking annotation file: one <annotation> per annotator."""
    parts = ["<annotations>"]
    for boxes in annotators:
        parts.append(f"<annotation><file>{path.stem}.jpg</file><size>256</size>")
        for xmin, ymin, xmax, ymax in boxes:
            parts.append(
                f"<bbox><label>sound</label><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
                f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bbox>"
            )
        parts.append("</annotation>")
    parts.append("</annotations>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))


def write_flickr_pair(root: Path, item: str, annotators: list[list[tuple[int, int, int, int]]]):
    write_flickr_xml(root / "Annotations" / f"{item}.xml", annotators)
    write_image(root / "Data" / "frames" / f"{item}.jpg")
    write_wav(root / "Data" / "audio" / f"{item}.wav")


def write_vggss_pair(root: Path, file: str) -> None:
    write_image(root / "frames" / f"{file}.jpg")
    write_wav(root / "audio" / f"{file}.wav")


# ---------------------------------------------------------------- AVSBench-S4


def test_s4_frames_windows_and_masks(s4_root: Path) -> None:
    records = load_avsbench_s4(s4_root)
    assert [r.name for r in records] == [f"vid{v}_{k}" for v in "ABC" for k in range(1, 6)]
    assert [r.audio_window for r in records[:5]] == [(k - 1.0, float(k)) for k in range(1, 6)]
    first = records[0]
    assert first.clip == "vidA" and first.split == "train" and first.category == "dog_barking"
    assert first.image_path == (s4_root / "s4_data/visual_frames/train/dog_barking/vidA/vidA_1.png")
    assert first.audio_path == s4_root / "s4_data/audio_wav/train/dog_barking/vidA.wav"
    # Train clips: only frame 1 has a mask; val/test: all 5.
    train = [r for r in records if r.split == "train"]
    assert train[0].ground_truth is not None
    assert train[0].ground_truth.mask_path == (
        s4_root / "s4_data/gt_masks/train/dog_barking/vidA/vidA_1.png"
    )
    assert all(r.ground_truth is None for r in train[1:])
    assert all(r.ground_truth is not None for r in records if r.split != "train")


def test_s4_split_filter_and_parent_dir(s4_root: Path) -> None:
    val = load_avsbench_s4(s4_root.parent, split="val")  # the avsbench_data directory
    assert {r.clip for r in val} == {"vidB"} and len(val) == 5
    assert [r.name for r in load_avsbench_s4(s4_root, "test")][:1] == ["vidC_1"]
    with pytest.raises(ValueError, match="'dev' is not one of train, val, test"):
        load_avsbench_s4(s4_root, "dev")


def test_s4_ground_truth_only_where_mask_exists(tmp_path: Path) -> None:
    root = tmp_path / "s4"
    write_avsbench_s4_meta(root, [S4MetaRow("v", 0, "cat", "test")])
    write_s4_clip(root, "test", "cat", "v", masks=(2, 5))
    records = load_avsbench_s4(root)
    assert [r.ground_truth is not None for r in records] == [False, True, False, False, True]


def test_s4_missing_files_error_or_skip(s4_root: Path) -> None:
    avsbench_paths(s4_root, "val", "helicopter", "vidB").frames[3].unlink()
    avsbench_paths(s4_root, "test", "race_car", "vidC").wav.unlink()
    with pytest.raises(FileNotFoundError, match=r"2 frame/audio files of 2 of the 3 clips") as e:
        load_avsbench_s4(s4_root)
    assert "vidB_4.png" in str(e.value) and "vidC.wav" in str(e.value)
    assert "allow_missing=True" in str(e.value)
    with pytest.warns(UserWarning, match="skipping incomplete clips"):
        records = load_avsbench_s4(s4_root, allow_missing=True)
    assert {r.clip for r in records} == {"vidA"}
    with pytest.warns(UserWarning), pytest.raises(FileNotFoundError, match="no complete clip"):
        load_avsbench_s4(s4_root, "test", allow_missing=True)


def test_s4_meta_is_read_by_position(tmp_path: Path) -> None:
    # Unknown names for columns 0/1; extra trailing column; blank line.
    write_meta_text(tmp_path, "vid,uid,category,split,x\nabc,2,lawn_mowing,test,?\n\n")
    assert read_avsbench_s4_meta(tmp_path / "s4_meta_data.csv") == [
        S4MetaRow("abc", 2.0, "lawn_mowing", "test")
    ]
    write_meta_text(tmp_path, "abc,2,lawn_mowing,test\n")  # headerless
    assert read_avsbench_s4_meta(tmp_path / "s4_meta_data.csv")[0].video == "abc"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name,start,category,split\na,0,cat,train\nb,0,cat\n", r"row 3 \('b,0,cat'\).*3 columns"),
        ("name,start,category,split\na,0,cat,train\nb,0,cat,dev\n", r"row 3 .*'dev' is not one"),
        ("name,start,category,split\na,zero,cat,train\n", r"row 2 .*start time 'zero'"),
        ("name,start,category,split\na,0,cat,train\na,1,cat,train\n", r"row 3 .*row 2"),
        ("name,start,kind,subset\na,0,cat,train\n", r"row 1: header"),
        ("", "is empty"),
    ],
)
def test_s4_malformed_meta(tmp_path: Path, text: str, match: str) -> None:
    write_meta_text(tmp_path, text)
    with pytest.raises(ValueError, match=match) as e:
        load_avsbench_s4(tmp_path)
    assert "s4_meta_data.csv" in str(e.value)


def test_s4_missing_meta_names_both_places(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Single-source"):
        load_avsbench_s4(tmp_path)


def test_s4_writer_round_trip_and_rejects_bad_rows(tmp_path: Path) -> None:
    path = write_avsbench_s4_meta(tmp_path, S4_CLIPS)
    assert read_avsbench_s4_meta(path) == S4_CLIPS
    with pytest.raises(ValueError, match=r"row 0 .*split 'dev'"):
        write_avsbench_s4_meta(tmp_path, [S4MetaRow("v", 0, "c", "dev")])
    with pytest.raises(ValueError, match="video name 'a/b'"):
        avsbench_paths(tmp_path, "train", "c", "a/b")


# ---------------------------------------------------------------- VGG-SS


def test_vggss_records_clamping_and_skipping(tmp_path: Path) -> None:
    entries = [
        {"file": "aaa_000010", "class": "elk bugling", "bbox": [[0.4, 0.25, 0.6, 0.75]]},
        {"file": "bbb_000020", "class": "dog", "bbox": [[-0.02, 0.1, 1.03, 0.9], [0, 0, 1, 1]]},
        {"file": "ccc_000030", "class": "cat", "bbox": [[0.1, 0.1, 0.2, 0.2]]},  # no files
        {"file": "ddd_000040", "class": "cow", "bbox": [[0.1, 0.1, 0.2, 0.2]]},  # no audio
    ]
    (tmp_path / "vggss.json").write_text(json.dumps(entries))
    write_vggss_pair(tmp_path, "aaa_000010")
    write_vggss_pair(tmp_path, "bbb_000020")
    write_image(tmp_path / "frames" / "ddd_000040.jpg")
    with pytest.warns(UserWarning, match="skipped 2 of 4 entries") as caught:
        records = load_vggss(tmp_path)
    assert len(caught) == 1
    assert [r.name for r in records] == ["aaa_000010", "bbb_000020"]
    a, b = records
    assert a.clip == "aaa_000010" and a.category == "elk bugling" and a.split == "test"
    assert a.audio_window is None
    assert a.image_path == tmp_path / "frames" / "aaa_000010.jpg"
    assert a.audio_path == tmp_path / "audio" / "aaa_000010.wav"
    assert a.ground_truth is not None and not a.ground_truth.consensus
    assert a.ground_truth.boxes == (((0.4, 0.25, 0.6, 0.75),),)
    assert b.ground_truth is not None
    assert b.ground_truth.boxes == (((0.0, 0.1, 1.0, 0.9), (0.0, 0.0, 1.0, 1.0)),)


def test_vggss_explicit_annotations_no_warning_when_complete(tmp_path: Path) -> None:
    ann = tmp_path / "metadata" / "vggss.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps([{"file": "x_000001", "class": "c", "bbox": [[0, 0, 1, 1]]}]))
    write_vggss_pair(tmp_path / "data", "x_000001")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records = load_vggss(tmp_path / "data", annotations=ann)
    assert [r.name for r in records] == ["x_000001"]


def test_vggss_nothing_on_disk(tmp_path: Path) -> None:
    (tmp_path / "vggss.json").write_text(
        json.dumps([{"file": "x_000001", "class": "c", "bbox": [[0, 0, 1, 1]]}])
    )
    with pytest.raises(FileNotFoundError, match="none of the 1 entries"):
        load_vggss(tmp_path)
    with pytest.raises(FileNotFoundError, match="pass its path"):
        load_vggss(tmp_path / "elsewhere")


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"file": "b_000002", "bbox": [[0, 0, 1, 1]]}, r"entry 1 \(file 'b_000002'\): .*class"),
        ({"file": "b_000002", "class": "c", "bbox": [[0, 0, 1]]}, r"entry 1 .*0 is \[0, 0, 1\]"),
        ({"file": "b_000002", "class": "c", "bbox": [[0, 0, "1", 1]]}, r"entry 1 .*4 numbers"),
        ({"file": "b_000002", "class": "c", "bbox": []}, r"entry 1 .*non-empty"),
        (
            {"file": "a_000001", "class": "c", "bbox": [[0, 0, 1, 1]]},
            r"entry 1: file 'a_000001' .*entry 0",
        ),
        ("b_000002", r"entry 1: expected an object"),
    ],
)
def test_vggss_malformed_entries(tmp_path: Path, bad: object, match: str) -> None:
    good = {"file": "a_000001", "class": "c", "bbox": [[0, 0, 1, 1]]}
    (tmp_path / "vggss.json").write_text(json.dumps([good, bad]))
    with pytest.raises(ValueError, match=match) as e:
        load_vggss(tmp_path)
    assert "vggss.json" in str(e.value)


def test_vggss_invalid_json(tmp_path: Path) -> None:
    (tmp_path / "vggss.json").write_text("[{")
    with pytest.raises(ValueError, match="vggss.json is not valid JSON"):
        load_vggss(tmp_path)


# ---------------------------------------------------------------- Flickr-SoundNet


def test_flickr_annotator_groups_and_normalization(tmp_path: Path) -> None:
    write_flickr_pair(
        tmp_path,
        "1001",
        [[(0, 64, 128, 256)], [(32, 32, 96, 96), (128, 128, 192, 192)], [(16, 16, 240, 240)]],
    )
    write_flickr_pair(tmp_path, "1000", [[(0, 0, 256, 256)]])
    records = load_flickr_soundnet(tmp_path)  # no test list: every XML, sorted
    assert [r.name for r in records] == ["1000", "1001"]
    rec = records[1]
    assert rec.clip == "1001" and rec.split == "test" and rec.audio_window is None
    assert rec.image_path == tmp_path / "Data" / "frames" / "1001.jpg"
    assert rec.audio_path == tmp_path / "Data" / "audio" / "1001.wav"
    assert rec.ground_truth is not None and rec.ground_truth.consensus
    assert rec.ground_truth.boxes == (
        ((0.0, 0.25, 0.5, 1.0),),
        ((0.125, 0.125, 0.375, 0.375), (0.5, 0.5, 0.75, 0.75)),
        ((0.0625, 0.0625, 0.9375, 0.9375),),
    )


def test_flickr_test_list_default_and_explicit(tmp_path: Path) -> None:
    for item in ("1", "2", "3"):
        write_flickr_pair(tmp_path, item, [[(0, 0, 10, 10)]])
    (tmp_path / "flickr_test.csv").write_text("3,0\n1,1\n\n")
    assert [r.name for r in load_flickr_soundnet(tmp_path)] == ["3", "1"]
    other = tmp_path / "list.txt"
    other.write_text("2\n")
    assert [r.name for r in load_flickr_soundnet(tmp_path, other)] == ["2"]
    other.write_text("2\n3\n2\n")
    with pytest.raises(ValueError, match=r"list.txt row 3: id '2' is already listed in row 1"):
        load_flickr_soundnet(tmp_path, other)


def test_flickr_missing_files(tmp_path: Path) -> None:
    write_flickr_pair(tmp_path, "1", [[(0, 0, 10, 10)]])
    write_flickr_pair(tmp_path, "2", [[(0, 0, 10, 10)]])
    (tmp_path / "Data" / "audio" / "2.wav").unlink()
    (tmp_path / "flickr_test.csv").write_text("1\n2\n")
    with pytest.raises(FileNotFoundError, match=r"1 files of 1 of the 2 ids") as e:
        load_flickr_soundnet(tmp_path)
    assert "2.wav" in str(e.value)
    with pytest.warns(UserWarning, match="skipping incomplete ids"):
        assert [r.name for r in load_flickr_soundnet(tmp_path, allow_missing=True)] == ["1"]


def test_flickr_bad_xml_names_the_file(tmp_path: Path) -> None:
    write_flickr_pair(tmp_path, "1", [[(0, 0, 10, 10)]])
    (tmp_path / "Annotations" / "1.xml").write_text("<annotations><annotation>")
    with pytest.raises(ValueError, match=r"1\.xml: cannot parse the XML"):
        load_flickr_soundnet(tmp_path)


@pytest.mark.parametrize(
    ("bbox", "match"),
    [
        (
            "<bbox><label>x</label><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax></bbox>",
            "has 4 children",
        ),
        (
            "<bbox><label>x</label><xmin>1</xmin><ymin>a</ymin><xmax>3</xmax><ymax>4</ymax></bbox>",
            r"<ymin> is 'a'",
        ),
        ("<label>no box</label>", "no <bbox>"),
    ],
)
def test_flickr_malformed_boxes(tmp_path: Path, bbox: str, match: str) -> None:
    path = tmp_path / "Annotations" / "7.xml"
    write_flickr_pair(tmp_path, "7", [])
    path.write_text(f"<annotations><annotation>{bbox}</annotation></annotations>")
    with pytest.raises(ValueError, match=match) as e:
        load_flickr_soundnet(tmp_path)
    assert "7.xml" in str(e.value)


def test_flickr_parser_relies_only_on_structure(tmp_path: Path) -> None:
    # Other tag names, a child without boxes and a bbox directly under the root are all ignored.
    path = tmp_path / "x.xml"
    path.write_text(
        "<r><meta><w>256</w></meta>"
        "<bbox><q/><a>0</a><b>0</b><c>256</c><d>256</d></bbox>"
        "<who><bbox><n>k</n><a>128</a><b>0</b><c>256</c><d>128</d></bbox></who></r>"
    )
    assert parse_flickr_xml(path) == (((0.5, 0.0, 1.0, 0.5),),)


# ---------------------------------------------------------------- registry


def test_registry_dispatch_and_errors(s4_root: Path, tmp_path: Path) -> None:
    assert len(load_records("avsbench-s4", s4_root, "train")) == 5
    flickr = tmp_path / "flickr"
    write_flickr_pair(flickr, "1", [[(0, 0, 10, 10)]])
    assert [r.name for r in load_records("flickr", flickr, "test")] == ["1"]
    with pytest.raises(ValueError, match="only a 'test' split"):
        load_records("vggss", tmp_path, "train")
    with pytest.raises(ValueError, match="unknown dataset kind 'avs'; known kinds: ") as e:
        load_records("avs", s4_root, None)
    for kind in LOADERS:
        assert kind in str(e.value)
