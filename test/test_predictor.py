"""The Predictor on real ONNX Runtime with hand-made bundles (no torch needed): what it feeds the
graph, and that each published answer is computed once, at the frame's size, with the numbers the
node has always published."""

import time

import numpy as np
import pytest
from tiny_bundle import write_tiny_bundle

from soundloc_ros.core import predictor as predictor_module
from soundloc_ros.core.backends import create_backend
from soundloc_ros.core.bundle import load_bundle
from soundloc_ros.core.features import compute_features
from soundloc_ros.core.postprocess import peak_pixel, resize_bilinear
from soundloc_ros.core.predictor import (
    STAGES,
    Inference,
    Predictor,
    as_probability,
    output_plane,
)

RATE = 16000


def sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


def given(raw: dict, height: int, width: int, score=None) -> Inference:
    """An Inference as infer() leaves it, with hand-made raw outputs."""
    return Inference(raw, score, height, width, {"preprocess": 0.0, "inference": 0.0},
                     time.perf_counter())  # fmt: skip


@pytest.fixture
def sps_bundle(tmp_path):
    """The tiny bundle with a mask head: its mask logits are the heatmap's, negated."""
    return load_bundle(write_tiny_bundle(tmp_path / "sps", mask=True).directory)


def test_the_predictor_feeds_the_graph_and_answers_at_the_frame_size(tiny_bundle):
    predictor = Predictor(create_backend(tiny_bundle, "onnxruntime"), mask_threshold=0.5)
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:240, :320] = 255  # top-left quarter white: the pooled map is bright there
    silence = np.zeros(RATE, np.float32)
    inference = predictor.infer(rgb, "rgb8", silence, RATE)
    assert inference.score is None  # the tiny bundle has no detection section
    assert set(inference.timings_ms) == {"preprocess", "inference"}
    result = predictor.postprocess(inference)
    # graph: mean over 4x4 cells of the normalized grey image ((x/255 - .5)/.5) + log-mel mean
    level = compute_features(silence, RATE, tiny_bundle.audio_frontend).mean()
    logits = np.array([[1.0, -1.0], [-1.0, -1.0]]) + level  # [2, 2]
    expected = resize_bilinear(sigmoid(logits).astype(np.float32), 480, 640)  # [480, 640]
    assert result.heatmap.dtype == np.float32 and result.heatmap.shape == (480, 640)
    np.testing.assert_allclose(result.heatmap, expected, atol=1e-5)
    np.testing.assert_array_equal(result.mask, result.heatmap >= 0.5)
    assert (result.peak.rows, result.peak.cols) == (2, 2)
    u, v = result.peak.pixel(480, 640)
    assert u < 320 and v < 240
    assert tuple(result.timings_ms) == STAGES and all(ms >= 0 for ms in result.timings_ms.values())


def test_probability_outputs_are_used_as_they_are_and_the_threshold_is_a_setting(tmp_path):
    bundle = load_bundle(write_tiny_bundle(tmp_path / "b", heatmap_values="probability").directory)
    backend = create_backend(bundle, "onnxruntime")
    raw = {"heatmap": np.array([[[[0.2, 0.7], [1.5, -3.0]]]], np.float32)}
    result = Predictor(backend, mask_threshold=0.6).postprocess(given(raw, 2, 2))  # grid = frame
    np.testing.assert_allclose(result.heatmap, [[0.2, 0.7], [1.0, 0.0]])  # clipped to [0, 1]
    np.testing.assert_array_equal(result.mask, [[False, True], [True, False]])
    with pytest.raises(ValueError, match="mask_threshold"):
        Predictor(backend, mask_threshold=1.0)


def test_non_finite_outputs_are_refused_with_their_count(tiny_bundle):
    predictor = Predictor(create_backend(tiny_bundle, "onnxruntime"))
    raw = {"heatmap": np.array([[[[0.0, np.nan], [0.0, 0.0]]]], np.float32)}
    with pytest.raises(ValueError, match="1 non-finite"):
        predictor.postprocess(given(raw, 48, 64))


def test_the_peak_comes_from_the_scores_when_the_heatmap_saturates(tiny_bundle):
    """Logits of 20 and 60 are both 1.0 after a float32 sigmoid: only the scores rank them."""
    predictor = Predictor(create_backend(tiny_bundle, "onnxruntime"))
    raw = {"heatmap": np.array([[[[20.0, 25.0], [60.0, 30.0]]]], np.float32)}
    result = predictor.postprocess(given(raw, 2, 2))
    assert np.all(result.heatmap == 1.0)
    assert (round(result.peak.row), round(result.peak.col)) == (1, 0)


def test_the_mask_is_the_sps_heads_at_the_frame_size_not_the_thresholded_heatmap(sps_bundle):
    predictor = Predictor(create_backend(sps_bundle, "onnxruntime"))
    raw = {"heatmap": np.array([[[[3.0, -3.0], [-3.0, -3.0]]]], np.float32),  # hot top left
           "mask": np.array([[[[-5.0, -5.0], [-5.0, 5.0]]]], np.float32)}  # fmt: skip
    result = predictor.postprocess(given(raw, 48, 64))
    assert result.mask.shape == (48, 64)
    assert not result.mask[:24, :32].any() and result.mask[36:, 48:].all()  # the head's cell
    assert result.heatmap[:12, :16].min() > 0.5  # where thresholding the heatmap would mark


@pytest.mark.parametrize("with_mask_head", [False, True])
def test_each_map_is_resized_once_and_the_peak_located_once(tmp_path, monkeypatch, with_mask_head):
    """Post-processing resizes the heatmap (and the SPS mask) once, to the frame, and never
    computes a model-resolution mask it would throw away; the peak is located once."""
    bundle = load_bundle(write_tiny_bundle(tmp_path / "b", mask=with_mask_head).directory)
    predictor = Predictor(create_backend(bundle, "onnxruntime"))
    calls = {"resize": [], "peak": 0}
    resize, locate = predictor_module.resize_bilinear, predictor_module.locate_peak

    def counted_resize(image, height, width):
        calls["resize"].append((image.shape, height, width))
        return resize(image, height, width)

    def counted_locate(scores):
        calls["peak"] += 1
        return locate(scores)

    monkeypatch.setattr(predictor_module, "resize_bilinear", counted_resize)
    monkeypatch.setattr(predictor_module, "locate_peak", counted_locate)
    predictor.postprocess(predictor.infer(np.zeros((48, 64, 3), np.uint8), "rgb8",
                                          np.zeros(RATE, np.float32), RATE))  # fmt: skip
    assert calls["resize"] == [((2, 2), 48, 64)] * (2 if with_mask_head else 1)
    assert calls["peak"] == 1


@pytest.mark.parametrize("with_mask_head", [False, True])
def test_the_numbers_are_the_old_formulas(tmp_path, with_mask_head):
    """What the node published before the Predictor, recomputed the old way from the same raw
    outputs: the heatmap resized from the sigmoid, the mask from the model-resolution mask
    (SPS: its cells at p >= 0.5, resized and cut at half; else the resized heatmap at the
    threshold), and the peak from the scores."""
    bundle = load_bundle(write_tiny_bundle(tmp_path / "b", mask=with_mask_head).directory)
    predictor = Predictor(create_backend(bundle, "onnxruntime"), mask_threshold=0.4)
    rng = np.random.default_rng(7)
    for _ in range(5):
        raw = {spec.tensor.name: rng.normal(0, 3, spec.tensor.shape).astype(np.float32)
               for spec in bundle.outputs.values()}  # fmt: skip
        result = predictor.postprocess(given(raw, 480, 640))
        scores = output_plane(raw["heatmap"], bundle.heatmap)  # [2, 2]
        heatmap = resize_bilinear(as_probability(scores, bundle.heatmap), 480, 640)
        if with_mask_head:
            cells = as_probability(output_plane(raw["mask"], bundle.mask), bundle.mask) >= 0.5
            mask = resize_bilinear(cells.astype(np.float32), 480, 640) >= 0.5
        else:
            mask = heatmap >= 0.4
        np.testing.assert_array_equal(result.heatmap, heatmap)
        np.testing.assert_array_equal(result.mask, mask)
        assert result.peak.pixel(480, 640) == peak_pixel(scores, 480, 640)  # exactly
