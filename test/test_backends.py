"""The backends on real ONNX Runtime with a hand-made bundle (no torch needed); what runs
around them is test_predictor.py's."""

import pytest
from tiny_bundle import tiny_onnx

from soundloc_ros.core.backends import create_backend
from soundloc_ros.core.backends.onnxruntime import select_providers
from soundloc_ros.core.bundle import BundleError, load_bundle, verify_torch_program, write_bundle


def test_a_graph_that_does_not_match_bundle_json_is_refused(tmp_path, tiny_bundle):
    renamed = write_bundle(tmp_path / "renamed", tiny_bundle, tiny_onnx(output_name="score"))
    with pytest.raises(BundleError, match=r"'heatmap' named in bundle.json is not in the graph"):
        create_backend(load_bundle(renamed.directory), "onnxruntime")
    resized = write_bundle(tmp_path / "resized", tiny_bundle, tiny_onnx(image_size=16))
    with pytest.raises(BundleError, match=r"'image' is float32 \[1, 3, 16, 16\].*\[1, 3, 8, 8\]"):
        create_backend(load_bundle(resized.directory), "onnxruntime")


def test_a_corrupt_model_file_gets_a_message_naming_it(tmp_path, tiny_bundle):
    broken = write_bundle(tmp_path / "corrupt", tiny_bundle, b"\x08\x01 this is not protobuf")
    with pytest.raises(BundleError, match="ONNX Runtime cannot load .*model.onnx.*re-export"):
        create_backend(load_bundle(broken.directory), "onnxruntime")


def test_torch_backend_needs_a_torch_program_in_the_bundle(tiny_bundle):
    with pytest.raises(BundleError, match="no PyTorch program"):
        create_backend(tiny_bundle, "torch")


def test_gpu_providers_come_first_when_the_onnxruntime_build_has_them():
    gpu_build = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    assert select_providers(gpu_build) == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert select_providers(gpu_build, use_gpu=False) == ["CPUExecutionProvider"]
    assert select_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_the_optional_torch_program_round_trips_and_is_checksummed(tmp_path, tiny_bundle):
    written = write_bundle(tmp_path / "b", tiny_bundle, tiny_onnx(), torch_program=b"program")
    loaded = load_bundle(written.directory)
    assert loaded.torch_file == "model.pt2" and loaded.torch_path.read_bytes() == b"program"
    assert verify_torch_program(loaded) == loaded.torch_path
    loaded.torch_path.write_bytes(b"swapped")
    with pytest.raises(BundleError, match="model.pt2 has sha256 .*re-export"):
        verify_torch_program(loaded)
    assert load_bundle(written.directory).onnx_sha256  # the ONNX path is unaffected
