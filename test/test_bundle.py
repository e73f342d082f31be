"""The model-bundle contract: round trip, checksum, and errors that name the bad field."""

import dataclasses
import hashlib
import json
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
from tiny_bundle import tiny_bundle_spec, tiny_onnx, write_tiny_bundle

from soundloc_ros.core.backends import InferenceBackend, create_backend
from soundloc_ros.core.backends.base import warm_up
from soundloc_ros.core.backends.onnxruntime import OnnxRuntimeBackend
from soundloc_ros.core.bundle import (
    BundleError,
    ImageInputSpec,
    ModelBundle,
    OutputSpec,
    TensorSpec,
    load_bundle,
    parse_bundle,
    write_bundle,
)
from soundloc_ros.core.features import LogMelConfig

MODEL_BYTES = b"\x08\x07 stand-in for an ONNX protobuf; the bundle layer treats it as opaque"


def make_bundle(**changes) -> ModelBundle:
    frontend = LogMelConfig()
    values = dict(
        image=ImageInputSpec(tensor=TensorSpec("image", (1, 3, 224, 224))),
        audio=TensorSpec("audio", (1, 1, *frontend.shape)),
        audio_frontend=frontend,
        heatmap=OutputSpec(TensorSpec("heatmap", (1, 1, 28, 28)), values="logit"),
        training={"method": "baseline", "data": "SynthAV train"},
    )
    values.update(changes)
    return ModelBundle(**values)


@pytest.fixture
def bundle_dir(tmp_path):
    write_bundle(tmp_path / "bundle", make_bundle(), MODEL_BYTES)
    return tmp_path / "bundle"


def edit_json(directory, edit):
    path = directory / "bundle.json"
    values = json.loads(path.read_text())
    edit(values)
    path.write_text(json.dumps(values))


def test_write_then_load_round_trips(bundle_dir):
    loaded = load_bundle(bundle_dir)
    assert loaded == make_bundle(onnx_sha256=loaded.onnx_sha256)
    assert loaded.onnx_path.read_bytes() == MODEL_BYTES
    assert loaded.image.height == 224 and loaded.audio.shape == (1, 1, 64, 97)
    assert loaded.mask is None and loaded.heatmap.values == "logit"


def test_mask_output_round_trips(tmp_path):
    mask = OutputSpec(TensorSpec("mask", (1, 1, 56, 56)), values="probability")
    write_bundle(tmp_path, make_bundle(mask=mask), MODEL_BYTES)
    assert load_bundle(tmp_path).mask == mask


def test_coarse_output_and_meanings_round_trip(tmp_path):
    coarse = OutputSpec(TensorSpec("coarse", (1, 1, 14, 14)), "logit", "cosine / tau, debug")
    heatmap = OutputSpec(TensorSpec("heatmap", (1, 1, 56, 56)), "probability", "relative")
    write_bundle(tmp_path, make_bundle(heatmap=heatmap, coarse=coarse), MODEL_BYTES)
    loaded = load_bundle(tmp_path)
    assert loaded.coarse == coarse and loaded.heatmap.meaning == "relative"
    assert list(loaded.outputs) == ["heatmap", "coarse"]  # the graph's order, mask absent
    written = json.loads((tmp_path / "bundle.json").read_text())["outputs"]
    assert written["coarse"]["meaning"] == "cosine / tau, debug"


def test_a_bundle_without_coarse_or_meaning_still_loads(bundle_dir):
    """Bundles exported before `coarse` and `meaning` existed (format 1 all the same)."""
    written = json.loads((bundle_dir / "bundle.json").read_text())["outputs"]
    assert set(written) == {"heatmap"} and "meaning" not in written["heatmap"]
    loaded = load_bundle(bundle_dir)
    assert loaded.coarse is None and loaded.heatmap.meaning == ""
    assert list(loaded.outputs) == ["heatmap"]


def test_bad_coarse_or_meaning_fields_are_named(bundle_dir):
    def add_coarse(values, **changes):
        values["outputs"]["coarse"] = {**values["outputs"]["heatmap"], "name": "coarse", **changes}

    edit_json(bundle_dir, lambda v: add_coarse(v, name="heatmap"))
    with pytest.raises(BundleError, match="distinct"):
        load_bundle(bundle_dir)
    edit_json(bundle_dir, lambda v: add_coarse(v, shape=[1, 2, 8, 8]))
    with pytest.raises(BundleError, match=r"outputs\.coarse\.shape must be \[1, 1, h, w\]"):
        load_bundle(bundle_dir)
    edit_json(bundle_dir, lambda v: add_coarse(v, meaning=7))
    with pytest.raises(BundleError, match=r"outputs\.coarse\.meaning must be str"):
        load_bundle(bundle_dir)


def test_modified_model_file_is_refused_with_remedy(bundle_dir):
    (bundle_dir / "model.onnx").write_bytes(MODEL_BYTES + b"tampered")
    with pytest.raises(BundleError, match="changed or corrupted.*re-export"):
        load_bundle(bundle_dir)
    assert load_bundle(bundle_dir, verify_checksum=False).onnx_path.exists()


def test_missing_pieces_are_named(tmp_path, bundle_dir):
    with pytest.raises(BundleError, match="not a directory"):
        load_bundle(tmp_path / "nowhere")
    with pytest.raises(BundleError, match="bundle.json is missing"):
        load_bundle(tmp_path)
    (bundle_dir / "model.onnx").unlink()
    with pytest.raises(BundleError, match="model.onnx is missing"):
        load_bundle(bundle_dir)


def test_corrupt_json_is_reported(bundle_dir):
    (bundle_dir / "bundle.json").write_text('{"format_version": 1,')
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle_dir)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda v: v.pop("audio_frontend"), r"audio_frontend is missing"),
        (lambda v: v["inputs"]["image"].update(shape=[1, 3, -1, 224]), r"inputs\.image\.shape"),
        (lambda v: v["inputs"]["image"].update(shape=[1, 1, 224, 224]), r"\[1, 3, H, W\]"),
        (lambda v: v["inputs"]["image"].update(dtype="int8"), r"inputs\.image\.dtype"),
        (lambda v: v["inputs"]["image"].update(std=[0.2, 0.0, 0.2]), r"inputs\.image\.std"),
        (lambda v: v["inputs"]["image"].update(channel_order="yuv"), r"channel_order"),
        (lambda v: v["inputs"]["audio"].update(shape=[1, 1, 64, 101]), r"n_frames=97"),
        (lambda v: v["audio_frontend"].update(hop_length=-1), r"audio_frontend.*hop_length"),
        (lambda v: v["outputs"]["heatmap"].update(values="score"), r"outputs\.heatmap\.values"),
        (lambda v: v["outputs"]["heatmap"].pop("name"), r"outputs\.heatmap\.name is missing"),
        (lambda v: v["outputs"]["heatmap"].update(name="audio"), r"distinct"),
        (lambda v: v["model"].update(file="../elsewhere.onnx"), r"model\.file"),
        (lambda v: v["model"].update(sha256="xyz"), r"model\.sha256"),
        (lambda v: v.update(format_version=2), r"newer than this soundloc_ros"),
        (lambda v: v.update(format_version=True), r"format_version must be int"),
    ],
)
def test_invalid_fields_are_named(bundle_dir, edit, message):
    edit_json(bundle_dir, edit)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_dir)


def test_write_refuses_an_invalid_bundle(tmp_path):
    bad = make_bundle(audio=TensorSpec("audio", (1, 1, 64, 50)))
    with pytest.raises(BundleError, match="inputs.audio.shape"):
        write_bundle(tmp_path, bad, MODEL_BYTES)
    assert not (tmp_path / "bundle.json").exists()


def test_parse_rejects_non_object():
    with pytest.raises(BundleError, match="top level must be an object"):
        parse_bundle([1, 2, 3])


def run_cli(directory) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "soundloc_ros.bundle_cli", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_describes_a_valid_bundle_and_rejects_a_bad_one(tmp_path):
    write_tiny_bundle(tmp_path / "tiny")
    ok = run_cli(tmp_path / "tiny")
    assert ok.returncode == 0, ok.stderr
    assert "audio in    audio [1, 1, 64, 97]" in ok.stdout and "thresholds the heatmap" in ok.stdout
    edit_json(tmp_path / "tiny", lambda v: v["inputs"].pop("image"))
    bad = run_cli(tmp_path / "tiny")
    assert bad.returncode == 1 and "inputs.image is missing" in bad.stderr


def lying_bundle(directory, pool: int = 4, declared: int = 2, says: int = 2) -> None:
    """A tiny bundle whose graph computes (8/pool)^2, declares declared^2, bundle.json says^2."""
    model = onnx.load_from_string(tiny_onnx())
    model.graph.node[1].attribute[0].ints[:] = [pool, pool]  # kernel_shape
    model.graph.node[1].attribute[1].ints[:] = [pool, pool]  # strides
    dims = model.graph.output[0].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = declared
    spec = tiny_bundle_spec()
    heatmap = OutputSpec(TensorSpec("heatmap", (1, 1, says, says)), values="logit")
    write_bundle(directory, dataclasses.replace(spec, heatmap=heatmap), model.SerializeToString())


@pytest.mark.parametrize(
    ("lie", "message"),
    [
        (dict(says=3), "is float32 [1, 1, 2, 2] in the graph but float32 [1, 1, 3, 3]"),
        (dict(pool=2), "is float32 [1, 1, None, None] in the graph"),  # ORT's lenient merge
    ],
    ids=["graph-vs-json", "graph-vs-its-own-declaration"],
)
def test_a_bundle_that_lies_about_its_outputs_is_refused_at_load(tmp_path, lie, message):
    lying_bundle(tmp_path / "lying", **lie)
    with pytest.raises(BundleError, match=re.escape(message)):
        create_backend(load_bundle(tmp_path / "lying"), "onnxruntime")
    result = run_cli(tmp_path / "lying")
    assert result.returncode == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: (d / "bundle.json").write_text("[" * 100_000 + "]" * 100_000),
        lambda d: (d / "bundle.json").write_text(" " * (2 << 20) + "{}"),
        lambda d: edit_json(d, lambda v: v["model"].update(sha256=write_model(d, b"\x08junk"))),
    ],
    ids=["deeply-nested", "oversized", "onnx-runtime-refuses"],
)
def test_the_cli_refuses_hostile_bundles_with_one_line(tmp_path, corrupt):
    write_tiny_bundle(tmp_path / "b")
    corrupt(tmp_path / "b")
    result = run_cli(tmp_path / "b")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("soundloc_bundle: ") and result.stderr.count("\n") == 1


def write_model(directory, data: bytes) -> str:
    (directory / "model.onnx").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


class WrongShapeEngine(InferenceBackend):
    """Stands in for a TensorRT engine (no GPU here) that returns 783 values for 784."""

    def run(self, inputs):
        return {"heatmap": np.zeros(783, np.float32)}


def test_the_warm_up_inference_refuses_outputs_of_the_wrong_size(tiny_bundle):
    with pytest.raises(BundleError, match=re.escape("gave shape [783] in a test inference")):
        warm_up(WrongShapeEngine(tiny_bundle))
    warm_up(OnnxRuntimeBackend(tiny_bundle))  # the real graph passes


def test_the_detection_section_round_trips_with_its_calibration(tmp_path):
    from soundloc_ros.core.detection import SourceDetection

    detection = SourceDetection(
        threshold=0.42, scale=0.03, false_alarm_rates={"mismatched": 0.15, "noise": 0.05},
        calibration={"n_frames": 10, "above_threshold": {"matched": 0.9}},
    )  # fmt: skip
    write_tiny_bundle(tmp_path, detection=detection)
    assert load_bundle(tmp_path).detection == detection


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["detection"].update(threshold=7), "cosine in"),
        (lambda d: d["detection"].update(scale="x"), "detection.scale must be"),
        (lambda d: d["detection"].pop("threshold"), "detection.threshold is missing"),
        (lambda d: d["detection"].update(false_alarm_rates={"noise": "low"}), "map kinds"),
        (lambda d: d["outputs"].pop("coarse"), "needs a `coarse` output"),
    ],
)
def test_bad_detection_fields_are_named(tmp_path, edit, message):
    from soundloc_ros.core.detection import SourceDetection

    write_tiny_bundle(tmp_path, detection=SourceDetection(threshold=0.4, scale=0.03))
    edit_json(tmp_path, edit)
    with pytest.raises(BundleError, match=message):
        load_bundle(tmp_path, verify_checksum=False)
