"""Camera frame -> image tensor: the rule bundle.json states, shared by training and runtime."""

import numpy as np
import pytest
from PIL import Image

from soundloc_ros.core.bundle import ImageInputSpec, TensorSpec
from soundloc_ros.core.preprocess import image_tensor, normalize_images, resize_rgb

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def frame(height=480, width=640, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_resize_is_pillow_bilinear_after_a_whole_factor_box_reduction():
    rgb = frame()  # 480x640
    np.testing.assert_array_equal(
        resize_rgb(rgb, 240, 320), np.asarray(Image.fromarray(rgb).reduce(2))
    )  # exactly half: the box reduction alone
    reduced = np.asarray(
        Image.fromarray(rgb).reduce((2, 3)).resize((224, 160), Image.Resampling.BILINEAR)
    )  # 640/224 -> 2, 480/160 -> 3, then bilinear
    np.testing.assert_array_equal(resize_rgb(rgb, 160, 224), reduced)
    small = frame(224, 224)
    small = frame(224, 224)
    assert resize_rgb(small, 224, 224) is small


def test_shrinking_averages_instead_of_aliasing():
    stripes = np.zeros((480, 640, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: point sampling would give all black or all white
    resized = resize_rgb(stripes, 224, 224).astype(float)
    assert abs(resized.mean() - 127.5) < 3 and resized.std() < 20


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32)])
def test_resize_refuses_what_is_not_rgb8_and_says_how_to_convert(bad):
    with pytest.raises(ValueError, match="to_rgb8"):
        resize_rgb(bad, 2, 2)


def test_normalization_follows_the_bundle_rule_per_channel():
    rgb = frame(4, 5)
    out = normalize_images(rgb[None], MEAN, STD)
    assert out.shape == (1, 3, 4, 5) and out.dtype == np.float32
    for c in range(3):
        expected = (rgb[..., c] / 255.0 - MEAN[c]) / STD[c]
        np.testing.assert_allclose(out[0, c], expected, atol=1e-5)
    bgr = normalize_images(rgb[None], MEAN, STD, channel_order="bgr")
    np.testing.assert_allclose(bgr[0, 0], (rgb[..., 2] / 255.0 - MEAN[0]) / STD[0], atol=1e-5)


def test_image_tensor_resizes_a_camera_frame_to_the_bundle_input():
    spec = ImageInputSpec(TensorSpec("image", (1, 3, 224, 224)), "rgb", MEAN, STD)
    rgb = frame()
    out = image_tensor(rgb, spec)
    assert out.shape == (1, 3, 224, 224)
    np.testing.assert_allclose(out, normalize_images(resize_rgb(rgb, 224, 224)[None], MEAN, STD))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_frame_tensor_from_the_arriving_encoding_equals_converting_first(encoding):
    from soundloc_ros.core.image_codec import decode_image, encode_image, to_rgb8
    from soundloc_ros.core.preprocess import frame_tensor

    spec = ImageInputSpec(TensorSpec("image", (1, 3, 224, 224)), "rgb", MEAN, STD)
    channels = {"mono8": 1, "rgba8": 4, "bgra8": 4}.get(encoding, 3)
    rng = np.random.default_rng(3)
    arrived = rng.integers(0, 256, (480, 640, channels)[: 3 if channels > 1 else 2], np.uint8)
    expected = image_tensor(to_rgb8(arrived, encoding), spec)
    np.testing.assert_array_equal(frame_tensor(arrived, encoding, spec), expected)
    data, step = encode_image(arrived, encoding)
    padded_step = step + 8  # a driver that pads rows: a strided view
    padded = b"".join(data[r * step : (r + 1) * step] + bytes(8) for r in range(480))
    view = decode_image(padded, 480, 640, encoding, padded_step, False)
    np.testing.assert_array_equal(frame_tensor(view, encoding, spec), expected)


def test_frame_tensor_refuses_depth_images_with_the_reason():
    from soundloc_ros.core.preprocess import frame_tensor

    spec = ImageInputSpec(TensorSpec("image", (1, 3, 8, 8)))
    with pytest.raises(ValueError, match="not a camera image"):
        frame_tensor(np.zeros((8, 8), np.float32), "32FC1", spec)
