"""The node's per-frame pipeline (shared with replay) on real ONNX Runtime with the tiny bundle."""

import numpy as np
import pytest

from soundloc_ros.core.backends import create_backend
from soundloc_ros.core.detection import bounding_box
from soundloc_ros.core.frame_pipeline import SILENCE, CameraModel, FramePipeline, FrameResult
from soundloc_ros.core.postprocess import peak_pixel
from soundloc_ros.core.predictor import Predictor, output_plane

RATE = 16000


def tone(seconds=1.0, level=0.3):
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def camera(height=480, width=640):
    focal = 0.9 * width
    k = [focal, 0, (width - 1) / 2, 0, focal, (height - 1) / 2, 0, 0, 1]
    return CameraModel.from_camera_info(k, height, width)


@pytest.fixture
def pipeline(tiny_bundle):
    return FramePipeline(Predictor(create_backend(tiny_bundle, "onnxruntime")))


def test_a_frame_gives_frame_size_outputs_a_peak_on_the_bright_cell_and_a_bearing(pipeline):
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:240, :320] = 255  # tiny graph: the map is the pooled brightness -> top-left cell
    result = pipeline.process(rgb, "rgb8", tone(), RATE)
    assert result.heatmap.shape == result.mask.shape == (480, 640)
    assert result.heatmap.dtype == np.float32
    heat = result.heatmap  # brightest at the bright corner, darkest at the opposite one
    assert heat[0, 0] == heat.max() > heat.min() >= 0
    assert heat[-1, -1] == pytest.approx(heat.min(), rel=1e-6)
    np.testing.assert_array_equal(result.mask, result.heatmap >= 0.5)
    u, v = result.peak
    assert u < 320 and v < 240
    assert result.peak == result.grid_peak.pixel(480, 640)  # the stored peak, in frame pixels
    direction = result.bearing(camera())
    assert np.linalg.norm(direction) == pytest.approx(1) and direction[0] < 0 and direction[1] < 0
    np.testing.assert_array_equal(direction, camera().ray(u, v))  # toward the peak's pixel
    assert result.bearing(None) is None
    assert set(result.timings_ms) == {"preprocess", "inference", "postprocess"}


def test_bgr_frames_are_read_in_their_own_channel_order(pipeline):
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[32:, 32:] = 255
    as_rgb = pipeline.process(rgb, "rgb8", tone(), RATE)
    as_bgr = pipeline.process(np.ascontiguousarray(rgb[..., ::-1]), "bgr8", tone(), RATE)
    np.testing.assert_allclose(as_rgb.heatmap, as_bgr.heatmap, atol=1e-6)


def test_silence_gives_the_no_source_answer(pipeline):
    pipeline.silence_threshold_db = -40.0
    result = pipeline.process(np.full((48, 64, 3), 200, np.uint8), "rgb8", tone(level=0.001), RATE)
    assert result.no_source == SILENCE and result.score is None
    assert not result.heatmap.any() and not result.mask.any()
    assert result.peak is None and result.bearing(camera()) is None


def test_a_binned_camera_gets_the_bearing_of_the_same_peak_in_its_own_pixels(pipeline):
    """CameraInfo of a 2x2-binned sensor describes 320x240 pixels of a 640x480 frame: the stored
    peak is placed in those pixels (as the old code re-located it there), so the direction is
    the one the full-size calibration gives."""
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:240, :320] = 255
    result = pipeline.process(rgb, "rgb8", tone(), RATE)
    binned, full = camera(240, 320), camera(480, 640)
    direction = result.bearing(binned)
    raw = pipeline.predictor.infer(rgb, "rgb8", tone(), RATE).raw  # the same graph outputs
    scores = output_plane(raw["heatmap"], pipeline.predictor.bundle.heatmap)  # [2, 2]
    np.testing.assert_array_equal(direction, binned.ray(*peak_pixel(scores, 240, 320)))  # as before
    np.testing.assert_allclose(direction, result.bearing(full), atol=1e-12)
    assert result.peak == peak_pixel(scores, 480, 640)


def test_a_bearing_maps_back_to_its_pixel_through_binning():
    frame_shape = (480, 640)
    binned = camera(240, 320)  # CameraInfo of a 2x2-binned sensor describes half the pixels
    u, v = 500.0, 100.0
    k = binned.matrix
    ray = np.array(
        [((u + 0.5) / 2 - 0.5 - k[0, 2]) / k[0, 0], ((v + 0.5) / 2 - 0.5 - k[1, 2]) / k[1, 1], 1]
    )
    back = binned.pixel(ray / np.linalg.norm(ray), frame_shape)
    np.testing.assert_allclose(back, (u, v), atol=1e-9)


def test_an_uncalibrated_camera_info_gives_no_camera_model():
    assert CameraModel.from_camera_info([0.0] * 9, 480, 640) is None


def detecting_pipeline(directory, threshold: float) -> FramePipeline:
    from tiny_bundle import write_tiny_bundle

    from soundloc_ros.core.bundle import load_bundle
    from soundloc_ros.core.detection import SourceDetection

    write_tiny_bundle(directory, detection=SourceDetection(threshold=threshold, scale=0.01))
    return FramePipeline(Predictor(create_backend(load_bundle(directory), "onnxruntime")))


def test_below_the_bundles_threshold_a_frame_has_no_source_but_keeps_its_score(tmp_path):
    from soundloc_ros.core.frame_pipeline import BELOW_THRESHOLD

    frame = np.full((48, 64, 3), 200, np.uint8)
    open_gate = detecting_pipeline(tmp_path / "open", threshold=-1.0)
    loud = open_gate.process(frame, "rgb8", tone(level=0.3), RATE)
    quiet = open_gate.process(frame, "rgb8", tone(level=0.003), RATE)
    assert loud.score > quiet.score  # the tiny graph's score grows with the log-mel level
    assert loud.no_source is None and quiet.no_source is None  # -1: every frame has a source
    middle = (loud.score + quiet.score) / 2
    pipeline = detecting_pipeline(tmp_path / "calibrated", threshold=middle)
    heard = pipeline.process(frame, "rgb8", tone(level=0.3), RATE)
    assert heard.no_source is None and heard.score == pytest.approx(loud.score)
    assert heard.peak is not None and heard.bearing(camera()) is not None
    missed = pipeline.process(frame, "rgb8", tone(level=0.003), RATE)
    assert missed.no_source == BELOW_THRESHOLD and missed.score == pytest.approx(quiet.score)
    assert not missed.heatmap.any() and not missed.mask.any() and missed.heatmap.shape == (48, 64)
    assert missed.peak is None and missed.bearing(camera()) is None and missed.box() is None
    assert set(missed.timings_ms) == {"preprocess", "inference"}  # not post-processed
    pipeline.source_threshold = quiet.score - 1e-3  # the node's override wins over the bundle
    assert pipeline.process(frame, "rgb8", tone(level=0.003), RATE).no_source is None


def test_a_bundle_without_detection_has_a_source_in_every_frame_above_the_gate(pipeline):
    result = pipeline.process(np.full((48, 64, 3), 200, np.uint8), "rgb8", tone(0.003), RATE)
    assert result.score is None and result.no_source is None and pipeline.threshold == -np.inf


def test_at_model_resolution_the_maps_are_the_grid_and_the_answers_stay_in_frame_pixels(
    pipeline,
):
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:240, :320] = 255
    full = pipeline.process(rgb, "rgb8", tone(), RATE)
    pipeline.output_resolution = "model"
    small = pipeline.process(rgb, "rgb8", tone(), RATE)
    grid = pipeline.predictor.bundle.heatmap.tensor.shape[2:]
    assert small.heatmap.shape == small.mask.shape == tuple(grid)
    assert small.peak == full.peak  # located once on the grid, placed in frame pixels
    np.testing.assert_array_equal(small.bearing(camera()), full.bearing(camera()))
    quadrant = np.array([[True, False], [False, False]])  # the top-left cell of a 2x2 grid
    on_grid = FrameResult(quadrant.astype(np.float32), quadrant, None, frame_size=(480, 640))
    in_frame = np.zeros((480, 640), bool)
    in_frame[:240, :320] = True
    assert on_grid.box() == bounding_box(in_frame) == (159.5, 119.5, 320.0, 240.0)
    silent = pipeline.process(rgb, "rgb8", np.zeros(RATE, np.float32), RATE)
    assert silent.heatmap.shape == tuple(grid) and silent.box() is None
    pipeline.output_resolution = "native"
    with pytest.raises(ValueError, match="output_resolution must be one of"):
        pipeline.process(rgb, "rgb8", tone(), RATE)
