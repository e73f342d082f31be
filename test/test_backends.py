"""The Localizer interface on real ONNX Runtime with a hand-made bundle (no torch needed)."""

import numpy as np
import pytest
from tiny_bundle import tiny_onnx, write_tiny_bundle

from soundloc_ros.core.backends import Localizer, create_backend
from soundloc_ros.core.backends.onnxruntime import select_providers
from soundloc_ros.core.bundle import BundleError, load_bundle, verify_torch_program, write_bundle
from soundloc_ros.core.features import compute_features


def test_localizer_feeds_the_graph_and_turns_logits_into_a_heatmap_and_mask(tiny_bundle):
    localizer = Localizer(create_backend(tiny_bundle, "onnxruntime"), mask_threshold=0.5)
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:240, :320] = 255  # top-left quarter white: the pooled map is bright there
    silence = np.zeros(16000, np.float32)
    result = localizer.localize(rgb, silence, 16000)
    # graph: mean over 4x4 cells of the normalized grey image ((x/255 - .5)/.5) + log-mel mean
    level = compute_features(silence, 16000, tiny_bundle.audio_frontend).mean()
    logits = np.array([[1.0, -1.0], [-1.0, -1.0]]) + level
    np.testing.assert_allclose(result.heatmap, 1 / (1 + np.exp(-logits)), atol=1e-5)
    assert result.heatmap.dtype == np.float32 and result.heatmap.shape == (2, 2)
    np.testing.assert_array_equal(result.mask, result.heatmap >= 0.5)


def test_probability_outputs_are_used_as_they_are_and_the_threshold_is_a_setting(tmp_path):
    bundle = load_bundle(write_tiny_bundle(tmp_path / "b", heatmap_values="probability").directory)
    backend = create_backend(bundle, "onnxruntime")
    raw = {"heatmap": np.array([[[[0.2, 0.7], [1.5, -3.0]]]], np.float32)}
    result = Localizer(backend, mask_threshold=0.6).outputs(raw)
    np.testing.assert_allclose(result.heatmap, [[0.2, 0.7], [1.0, 0.0]])  # clipped to [0, 1]
    np.testing.assert_array_equal(result.mask, [[False, True], [True, False]])
    with pytest.raises(ValueError, match="mask_threshold"):
        Localizer(backend, mask_threshold=1.0)


def test_non_finite_outputs_are_refused_with_their_count(tiny_bundle):
    localizer = Localizer(create_backend(tiny_bundle, "onnxruntime"))
    with pytest.raises(ValueError, match="1 non-finite"):
        localizer.outputs({"heatmap": np.array([[[[0.0, np.nan], [0.0, 0.0]]]], np.float32)})


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
