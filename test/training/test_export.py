"""Checkpoint -> bundle -> every backend gives the training model's answer, on real frames."""

import importlib.util
import io
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import TensorProto, helper
from soundloc_training.affinity import RandomWalk, disk_offsets, pair_affinities
from soundloc_training.checkpoints import load_model
from soundloc_training.cli.export import main
from soundloc_training.config import TrainConfig
from soundloc_training.data import load_table
from soundloc_training.export import PARITY_TOLERANCE, export_bundle, model_inputs
from soundloc_training.onnx_compat import fold_constants, tensorrt_problems
from soundloc_training.orchestration import run

from soundloc_ros.core.backends import create_backend, tensorrt
from soundloc_ros.core.bundle import load_bundle
from soundloc_ros.core.maps import minmax
from soundloc_ros.core.postprocess import resize_bilinear
from soundloc_ros.core.predictor import Predictor, as_probability, output_plane
from soundloc_ros.core.preprocess import normalize_images

BACKENDS = ("onnxruntime", "torch")


@pytest.fixture(scope="module")
def checkpoint(tiny_synthav, tmp_path_factory):
    out = tmp_path_factory.mktemp("export_run")
    config = TrainConfig(
        data=f"synthav:{tiny_synthav}",
        out_dir=str(out / "run"),
        image_size=128,
        batch_size=48,
        epochs=1,
        cache_dir=str(out / "cache"),
        contact_sheet_frames=2,
    )
    run(config)
    return out / "run" / "best.pt"


@pytest.fixture(scope="module")
def exported(checkpoint, tiny_synthav, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    bundle, differences = export_bundle(checkpoint, out, f"synthav:{tiny_synthav}", frames=6)
    return bundle, differences


def test_export_verifies_onnx_runtime_and_the_torch_program_against_pytorch(exported):
    bundle, differences = exported
    assert set(differences) == {"onnxruntime", "torch_program"}
    assert max(differences.values()) <= PARITY_TOLERANCE
    assert bundle.image.tensor.shape == (1, 3, 128, 128)
    assert bundle.heatmap.tensor.shape == (1, 1, 8, 8) and bundle.heatmap.values == "probability"
    assert "min-max normalized within the frame" in bundle.heatmap.meaning
    assert bundle.coarse.tensor.shape == (1, 1, 8, 8) and bundle.coarse.values == "logit"
    assert bundle.mask is None
    assert load_bundle(bundle.directory).training["method"] == "baseline"


def test_exported_graph_is_static_opset_17_and_tensorrt_10_3_clean(exported):
    bundle, _ = exported
    model_bytes = bundle.onnx_path.read_bytes()
    assert tensorrt_problems(model_bytes) == []
    model = onnx.load_from_string(model_bytes)
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
    assert not {"STFT", "DFT", "Einsum", "Shape"} & {n.op_type for n in model.graph.node}


def test_the_walk_exports_as_a_static_tensorrt_clean_graph():
    """RandomWalk alone, as the bundle runs it: unrolled steps, constant indices, no Loop or Scan,
    static shapes; ONNX Runtime == PyTorch."""
    offsets = disk_offsets(4)
    generator = torch.Generator().manual_seed(0)
    affinities = pair_affinities(0.1 * torch.randn(1, 8, 20, 24, generator=generator), offsets)
    coarse = torch.rand(1, 20, 24, generator=generator)
    walk = RandomWalk((20, 24), offsets, 16.0, 6)
    buffer = io.BytesIO()
    torch.onnx.export(walk, (coarse, affinities), buffer, opset_version=17, dynamo=False,
                      input_names=["coarse", "affinities"], output_names=["refined"])  # fmt: skip
    model_bytes = fold_constants(buffer.getvalue())
    assert tensorrt_problems(model_bytes) == []
    operators = [n.op_type for n in onnx.load_from_string(model_bytes).graph.node]
    assert not {"Loop", "Scan", "If", "Shape"} & set(operators)
    assert operators.count("Gather") == 1 + 2 * 6  # the transition's layout once, 2 a step
    session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    (refined,) = session.run(None, {"coarse": coarse.numpy(), "affinities": affinities.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(refined, walk(coarse, affinities).numpy(), atol=1e-6)


def _graph(node, inputs, outputs, opset=17):
    graph = helper.make_graph([node], "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def _tensor(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


@pytest.mark.parametrize(
    ("model", "complaint"),
    [
        (
            _graph(
                helper.make_node("Relu", ["x"], ["y"]),
                [_tensor("x", ["batch", 4])],
                [_tensor("y", ["batch", 4])],
            ),
            "dynamic shape",
        ),
        (
            _graph(
                helper.make_node("Relu", ["x"], ["y"]),
                [_tensor("x", [1, 4])],
                [_tensor("y", [1, 4])],
                opset=18,
            ),
            "opset 18",
        ),
        (
            _graph(
                helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="cubic"),
                [_tensor("x", [1, 1, 4, 4]), _tensor("scales", [4])],
                [_tensor("y", [1, 1, 8, 8])],
            ),
            "mode 'cubic'",
        ),
        (
            _graph(
                helper.make_node("DFT", ["x"], ["y"]),
                [_tensor("x", [1, 16, 1])],
                [_tensor("y", [1, 16, 2])],
            ),
            "DFT is not supported",
        ),
        (
            _graph(
                helper.make_node("Reshape", ["x", "shape"], ["y"]),
                [
                    _tensor("x", [2, 2]),
                    helper.make_tensor_value_info("shape", TensorProto.INT64, [1]),
                ],
                [_tensor("y", [4])],
            ),
            "input 1 must be a constant",
        ),
    ],
    ids=["dynamic", "opset", "cubic-resize", "dft", "computed-shape"],
)
def test_the_tensorrt_check_names_what_jetson_would_reject(model, complaint):
    problems = tensorrt_problems(model)
    assert any(complaint in p for p in problems), problems


def test_every_backend_gives_the_training_models_heatmap(exported, checkpoint, tiny_synthav):
    """Raw frames and waveforms through the runtime == training's pipeline through PyTorch."""
    bundle, _ = exported
    model, config = load_model(checkpoint)
    table = load_table(f"synthav:{tiny_synthav}", "val", 128, config.audio_frontend, limit=5)
    backbone = model.backbone
    rate = config.audio_frontend.sample_rate
    predictors = {name: Predictor(create_backend(bundle, name)) for name in BACKENDS}
    for i in range(len(table)):
        image = torch.from_numpy(
            normalize_images(table.images[i : i + 1], backbone.mean, backbone.std)
        )
        logmel = torch.from_numpy(table.features(i, config.audio_frontend)[None])
        with torch.no_grad():
            similarity = model(image, logmel)[0, 0].numpy()  # [h, w]
        height, width = table.images[i].shape[:2]
        expected = resize_bilinear(minmax(similarity, constant=0.0), height, width)  # [H, W]
        start, end = np.round(table.windows[i] * rate).astype(int)
        samples = table.clip_audio[table.clip_ids[i]][max(0, start) : end]
        for name, predictor in predictors.items():  # the node's path, at the frame's size
            result = predictor.postprocess(predictor.infer(table.images[i], "rgb8", samples, rate))
            np.testing.assert_allclose(result.heatmap, expected, atol=2e-5, err_msg=name)


def test_cli_reports_what_it_wrote_and_refuses_a_missing_checkpoint(
    checkpoint, tiny_synthav, tmp_path, capsys
):
    assert main(["--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "b")]) == 2
    assert "does not exist" in capsys.readouterr().err
    args = ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "b"), "--frames", "2"]
    assert main([*args, "--data", f"synthav:{tiny_synthav}"]) == 0
    assert "max |difference| to PyTorch: onnxruntime" in capsys.readouterr().out
    assert main([*args, "--walk-steps", "8"]) == 1  # a plain localizer has no walk
    assert "has no random walk; leave out --walk-steps" in capsys.readouterr().err
    with torch.no_grad():
        assert load_bundle(tmp_path / "b").onnx_sha256


def test_the_tensorrt_check_compares_every_output(exported, tiny_synthav):
    """scripts/check_tensorrt.py's comparison (the script itself needs a GPU)."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "check_tensorrt.py"
    spec = importlib.util.spec_from_file_location("check_tensorrt", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    bundle, _ = exported
    table = load_table(f"synthav:{tiny_synthav}", "val", 128, bundle.audio_frontend, limit=1)
    expected = create_backend(bundle, "onnxruntime").run(model_inputs(table, bundle, 0))
    actual = {**expected, "heatmap": expected["heatmap"] + 0.25}
    actual["coarse"] = expected["coarse"] - 0.5
    found = script.differences(bundle, expected, actual)
    assert set(found) == {"heatmap", "coarse"}
    assert found["heatmap"][1] == pytest.approx(0.25) and found["coarse"][1] == pytest.approx(0.5)
    assert found["coarse"][0] <= 0.125 + 1e-6  # through the sigmoid, whose slope is <= 1/4


@pytest.mark.skipif(
    tensorrt.unavailable_reason() is not None,
    reason=f"needs a GPU with TensorRT: {tensorrt.unavailable_reason()}",
)
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_engine_agrees_with_onnx_runtime(exported, tiny_synthav, tmp_path, precision):
    bundle, _ = exported
    reference = create_backend(bundle, "onnxruntime")
    engine = create_backend(bundle, "tensorrt", str(tmp_path), precision, fallback=False)
    table = load_table(f"synthav:{tiny_synthav}", "val", 128, bundle.audio_frontend, limit=4)
    tolerance = 1e-3 if engine.precision == "fp32" else 2e-2
    spec = bundle.heatmap
    for i in range(len(table)):
        inputs = model_inputs(table, bundle, i)
        expected, actual = (
            as_probability(output_plane(backend.run(inputs)[spec.tensor.name], spec), spec)
            for backend in (reference, engine)
        )  # [h, w] each, in [0, 1] as the runtime reads them
        np.testing.assert_allclose(actual, expected, atol=tolerance)
    engine.close()


def test_the_bundle_carries_a_threshold_calibrated_to_its_rates_and_the_runtime_scores_alike(
    exported, checkpoint, tiny_synthav
):
    """bundle.json's detection section: at the stored threshold the calibration's negatives
    pass at most their rates; and the score the node computes from the ONNX coarse output is
    the score calibration computed in PyTorch (else the threshold would mean something else)."""
    from soundloc_training.calibration import FALSE_ALARM_RATES, own_scores

    bundle, _ = exported
    detection = bundle.detection
    assert detection.false_alarm_rates == FALSE_ALARM_RATES and detection.scale == 0.03
    passed = detection.calibration["above_threshold"]
    assert passed["mismatched"] <= 0.15 and passed["noise"] <= 0.05
    assert passed["matched"] > passed["mismatched"]  # the model scores its own audio higher
    model, config = load_model(torch.load(checkpoint, weights_only=True))
    table = load_table(f"synthav:{tiny_synthav}", "val", 128, config.audio_frontend, limit=6)
    expected = own_scores(model, table, config)
    backend = create_backend(bundle, "onnxruntime")
    for index, want in enumerate(expected):
        coarse = backend.run(model_inputs(table, bundle, index))[bundle.coarse.tensor.name]
        assert detection.score(coarse) == pytest.approx(want, abs=1e-4)


def test_eval_reports_detection_per_negative_kind_as_json_without_nan(
    checkpoint, tiny_synthav, tmp_path, capsys
):
    import json

    from soundloc_training.cli.evaluate import main as evaluate_main
    from soundloc_training.datasets.build import BenchmarkSpec, build_benchmark

    spec = BenchmarkSpec("synthav", val=2, test=2, image_size=128)
    root = build_benchmark(spec, tmp_path / "synthav", progress=lambda items, **_: items,
                           negatives=2)  # fmt: skip
    negatives = f"synthav:{root}/negatives"
    code = evaluate_main(["--data", f"synthav:{tiny_synthav}", "--checkpoint", str(checkpoint),
                          "--negatives", negatives, "--threshold", "0.2", "--json"])  # fmt: skip
    out = capsys.readouterr().out.strip().splitlines()[-1]  # (fixtures may have printed first)
    assert code == 0
    detection = json.loads(out)["detection"]  # json.loads accepts NaN; the CLI must not print it
    assert "NaN" not in out and "Infinity" not in out
    assert detection["threshold"] == 0.2 and detection["threshold_source"] == "given"
    assert set(detection["false_source_rate"]) == {"offscreen", "noise", "silence"}
    assert detection["false_source_rate"]["silence"] == 0.0  # the energy gate: never a source
    assert detection["n_negative"] == {"noise": 10, "offscreen": 10, "silence": 10}
    assert detection["n_positive"] == 24 * 5
    gate = detection["references"]["energy_gate"]
    assert gate["false_source_rate"]["noise"] == 1.0 and gate["false_source_rate"]["silence"] == 0.0
    assert 0.0 <= detection["roc_auc"] <= 1.0 and detection["roc_auc"] > 0.5


def test_a_detector_branch_is_scored_instead_of_the_coarse_map(checkpoint, tiny_synthav, tmp_path):
    """--detector: another localizer's heads on the same frozen backbone add the `detector`
    output; the threshold is calibrated on it and the node's score reads it."""
    from soundloc_training.calibration import own_scores

    config = TrainConfig(data=f"synthav:{tiny_synthav}", out_dir=str(tmp_path / "detector"),
                         image_size=128, batch_size=48, epochs=1, seed=7,
                         cache_dir=str(tmp_path / "cache"), contact_sheet_frames=2)  # fmt: skip
    run(config)
    detector = tmp_path / "detector" / "best.pt"
    bundle, differences = export_bundle(checkpoint, tmp_path / "bundle", f"synthav:{tiny_synthav}",
                                        frames=2, detector=detector)  # fmt: skip
    assert max(differences.values()) <= PARITY_TOLERANCE
    assert bundle.detection.output == "detector" and bundle.detector.tensor.shape[:2] == (1, 1)
    model, config = load_model(torch.load(detector, weights_only=True))
    table = load_table(f"synthav:{tiny_synthav}", "val", 128, config.audio_frontend, limit=3)
    backend = create_backend(bundle, "onnxruntime")
    for index, want in enumerate(own_scores(model, table, config)):
        raw = backend.run(model_inputs(table, bundle, index))
        assert bundle.detection.score(raw["detector"]) == pytest.approx(want, abs=1e-4)
        assert bundle.detection.score(raw["coarse"]) != pytest.approx(want, abs=1e-3)
