"""Heatmap resizing and peaks against hand-computed values and torch's interpolate (min–max
normalization: test_maps.py)."""

import numpy as np
import pytest

from soundloc_ros.core.postprocess import resize_bilinear


def test_bilinear_upsample_2x2_to_4x4_by_hand():
    # Per axis, output centres map to source positions (i + 0.5) * 2/4 - 0.5 =
    # -0.25, 0.25, 0.75, 1.25, clamped to 0, 0.25, 0.75, 1 (edge). The map [[0, 1], [2, 3]] is
    # 2*row + col, so the result is 2*r + c with r, c in (0, 0.25, 0.75, 1).
    image = np.array([[0.0, 1.0], [2.0, 3.0]])
    expected = np.array(
        [
            [0.00, 0.25, 0.75, 1.00],
            [0.50, 0.75, 1.25, 1.50],
            [1.50, 1.75, 2.25, 2.50],
            [2.00, 2.25, 2.75, 3.00],
        ]
    )
    out = resize_bilinear(image, 4, 4)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_bilinear_downsample_averages_pixel_pairs():
    # 4 -> 2: source positions (i + 0.5) * 2 - 0.5 = 0.5 and 2.5, midway between pixel pairs.
    image = np.array([[0.0, 1.0, 2.0, 3.0]])
    np.testing.assert_allclose(resize_bilinear(image, 1, 2), [[0.5, 2.5]])
    # 3 -> 2: positions 0.25 and 1.75.
    np.testing.assert_allclose(resize_bilinear(np.array([[0.0, 4.0, 8.0]]), 1, 2), [[1.0, 7.0]])


def test_bilinear_identity_and_constant():
    rng = np.random.default_rng(0)
    image = rng.random((5, 9))
    np.testing.assert_allclose(resize_bilinear(image, 5, 9), image, atol=1e-7)
    np.testing.assert_allclose(resize_bilinear(np.full((3, 4), 2.5), 11, 6), 2.5)
    assert resize_bilinear(image, 1, 1).shape == (1, 1)
    # Integer and bool maps are accepted and come back as float32.
    assert resize_bilinear(np.eye(3, dtype=np.uint8), 6, 6).dtype == np.float32


@pytest.mark.parametrize(
    ("in_shape", "out_shape"),
    [((7, 7), (224, 224)), ((28, 28), (224, 224)), ((300, 200), (224, 224)), ((5, 13), (17, 3))],
)
def test_bilinear_matches_torch_interpolate(in_shape, out_shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(sum(in_shape))
    image = rng.standard_normal(in_shape)

    def torch_resize(array):
        return torch.nn.functional.interpolate(
            torch.from_numpy(array)[None, None],  # (1, 1, H, W)
            size=out_shape,
            mode="bilinear",
            align_corners=False,
        )[0, 0].numpy()

    out = resize_bilinear(image, *out_shape)
    assert out.shape == out_shape
    # The float64 reference is exact up to our float32 output rounding.
    assert np.max(np.abs(out - torch_resize(image))) < 1e-5
    # torch's float32 kernel also rounds the source positions in float32 (about 3e-5 px at
    # x = 300), which on unit-variance noise moves values by up to ~1e-4.
    assert np.max(np.abs(out - torch_resize(image.astype(np.float32)))) < 3e-4


def test_bilinear_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"2-D .*heatmap\[0, 0\]"):
        resize_bilinear(np.zeros((1, 1, 7, 7)), 224, 224)
    with pytest.raises(ValueError, match="height must be a positive integer"):
        resize_bilinear(np.zeros((7, 7)), 0, 224)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        resize_bilinear(np.zeros((7, 7)), 224, 22.4)
    with pytest.raises(ValueError, match="empty"):
        resize_bilinear(np.zeros((0, 7)), 4, 4)


def test_peak_is_refined_between_cells_and_mapped_to_image_pixels():
    from soundloc_ros.core.postprocess import peak_pixel

    heatmap = np.zeros((4, 4))
    heatmap[1, 2] = 1.0
    u, v = peak_pixel(heatmap, 40, 80)  # cell (1, 2) covers x 40..60, y 10..20
    assert (u, v) == pytest.approx((49.5, 14.5))
    heatmap[1, 3] = 1.0  # an equal neighbour pulls the peak halfway toward it
    u, _ = peak_pixel(heatmap, 40, 80)
    assert u == pytest.approx(59.5)


def test_peak_of_negative_logits_is_where_a_shifted_positive_map_peaks():
    """The node hands peak_pixel raw logits (cosine / tau), often all negative: the refinement
    weighs the 3x3 neighbourhood relative to its minimum, so a shift changes nothing."""
    from soundloc_ros.core.postprocess import peak_pixel

    logits = np.full((4, 4), -30.0)
    logits[1, 2], logits[1, 3], logits[2, 2] = -2.0, -2.0, -20.0
    u, v = peak_pixel(logits, 40, 80)
    assert (u, v) == pytest.approx(peak_pixel(logits + 100.0, 40, 80))
    # weights over the minimum -30: (1, 2) and (1, 3) 28 each, (2, 2) 10, the rest 0
    column, row = (2 * 28 + 3 * 28 + 2 * 10) / 66, (1 * 28 + 1 * 28 + 2 * 10) / 66
    assert u == pytest.approx((column + 0.5) * 80 / 4 - 0.5)  # cells of 20 x 10 pixels
    assert v == pytest.approx((row + 0.5) * 40 / 4 - 0.5)


def test_overlay_leaves_cold_pixels_alone_and_colours_hot_ones():
    from soundloc_ros.core.postprocess import COLORMAP, overlay

    rgb = np.full((2, 2, 3), 100, np.uint8)
    heat = np.array([[0.0, 1.0], [0.0, 0.0]], np.float32)
    out = overlay(rgb, heat, alpha=1.0)
    np.testing.assert_array_equal(out[0, 0], [100, 100, 100])
    np.testing.assert_array_equal(out[0, 1], COLORMAP[255])  # fully hot: the ramp's end, opaque
    assert COLORMAP[255][0] > COLORMAP[255][2] and COLORMAP[0][2] > COLORMAP[0][0]  # red / blue


def test_a_peak_located_once_is_placed_in_images_of_any_size():
    """The node locates the peak once on the model's grid, then places it in the frame and in
    the (binned) pixels CameraInfo describes: both must be where peak_pixel puts them."""
    from soundloc_ros.core.postprocess import locate_peak, peak_pixel

    logits = np.random.default_rng(3).standard_normal((7, 9))
    peak = locate_peak(logits)
    assert (peak.rows, peak.cols) == (7, 9)
    for height, width in ((480, 640), (240, 320), (7, 9)):
        assert peak.pixel(height, width) == peak_pixel(logits, height, width)  # exactly
    assert peak.pixel(7, 9) == pytest.approx((peak.col, peak.row))  # the grid itself: the cell
