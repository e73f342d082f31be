"""Bearings from CameraInfo: K for raw pinhole images, K + D (plumb_bob, rational_polynomial,
equidistant) for raw distorted ones, P for rectified ones, against rays worked out by hand."""

import numpy as np
import pytest

from soundloc_ros.core import geometry
from soundloc_ros.core.frame_pipeline import CameraModel

K = [500.0, 0, 320.0, 0, 500.0, 240.0, 0, 0, 1]
P = [400.0, 0, 300.0, 0, 0, 400.0, 200.0, 0, 0, 0, 1, 0]


def raw(d=(), model="plumb_bob"):
    return CameraModel.from_camera_info(K, 480, 640, d=d, distortion_model=model, p=P)


def unit(*xyz):
    return np.array(xyz) / np.linalg.norm(xyz)


def test_a_pinhole_pixel_gives_the_ray_through_it():
    camera = raw(d=[0.0] * 5)
    np.testing.assert_allclose(camera.ray(320, 240), [0, 0, 1])
    # 500 px right of the centre at f = 500: 45 degrees
    np.testing.assert_allclose(camera.ray(820, 240), [np.sqrt(0.5), 0, np.sqrt(0.5)])


def test_rectified_images_use_p_not_k():
    """P's fx 400, cx 300: pixel (700, 200) is 400 px right of P's centre -> 45 degrees; with K
    it would be (700 - 320) / 500 = 0.76."""
    camera = CameraModel.from_camera_info(K, 480, 640, d=[-0.3, 0.1, 0, 0, 0], p=P,
                                          rectified=True)  # fmt: skip
    np.testing.assert_allclose(camera.ray(700, 200), [np.sqrt(0.5), 0, np.sqrt(0.5)])
    np.testing.assert_allclose(camera.ray(300, 600), unit(0, 1, 1))  # 400 px below


def test_plumb_bob_undoes_radial_and_tangential_distortion_of_a_known_point():
    """Hand-computed: the direction (0.4, 0.2, 1) has r^2 = 0.2; with k1 = -0.2, k2 = 0.05,
    k3 = 0.01: radial = 1 - 0.04 + 0.002 + 0.00008 = 0.96208; p1 = 0.001, p2 = -0.002:
    xd = 0.4 * 0.96208 + 2 * 0.001 * 0.08 - 0.002 * (0.2 + 0.32) = 0.383952,
    yd = 0.2 * 0.96208 + 0.001 * (0.2 + 0.08) - 2 * 0.002 * 0.08 = 0.192376,
    i.e. pixel (320 + 500 xd, 240 + 500 yd) = (511.976, 336.188)."""
    camera = raw(d=[-0.2, 0.05, 0.001, -0.002, 0.01])
    np.testing.assert_allclose(camera.ray(511.976, 336.188), unit(0.4, 0.2, 1), atol=1e-9)
    pinhole = raw()  # ignoring D (what the node did before) misses by 0.85 degrees
    error = np.degrees(np.arccos(pinhole.ray(511.976, 336.188) @ unit(0.4, 0.2, 1)))
    assert error > 0.8


def test_equidistant_undoes_the_fisheye_angle():
    """Hand-computed: a ray 45 degrees off axis toward +x has theta = pi/4 = 0.785398; with
    k1 = 0.1, k2 = k3 = k4 = 0: theta_d = theta (1 + 0.1 theta^2) = 0.833845, so it lands at
    u = 320 + 500 * 0.833845 = 736.9227 (a pinhole would put it at 820)."""
    camera = raw(d=[0.1, 0, 0, 0], model="equidistant")
    np.testing.assert_allclose(camera.ray(736.92266, 240), unit(1, 0, 1), atol=1e-7)


@pytest.mark.parametrize(
    ("model", "d"),
    [
        ("plumb_bob", [-0.28, 0.07, 0.0005, -0.0008, 0.0]),  # a typical webcam
        ("rational_polynomial", [0.5, -0.1, 0.001, 0.001, 0.01, 0.8, -0.05, 0.02]),
        ("equidistant", [-0.01, 0.02, -0.01, 0.002]),  # a typical fisheye
    ],
)
def test_distort_then_undistort_is_the_identity_over_the_image(model, d):
    camera = raw(d=d, model=model)
    for u in np.linspace(0, 639, 9):
        for v in np.linspace(0, 479, 7):
            ray = camera.ray(u, v)
            np.testing.assert_allclose(camera.project(ray), (u, v), atol=1e-6)


def test_a_fisheye_past_90_degrees_gives_a_ray_behind_the_image_plane():
    camera = raw(d=[0, 0, 0, 0], model="equidistant")
    ray = camera.ray(320 + 500 * np.radians(100), 240)  # theta_d = theta for k = 0
    np.testing.assert_allclose(ray, [np.sin(np.radians(100)), 0, np.cos(np.radians(100))])


def test_bad_calibrations_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="rectified:=true"):
        raw(d=[0.1, 0.2, 0.3], model="kannala_brandt")
    assert raw(d=[0.0] * 4, model="") is not None  # unnamed and zero: a plain pinhole
    with pytest.raises(ValueError, match="at most 4"):
        raw(d=[0.1] * 5, model="equidistant")
    with pytest.raises(ValueError, match="no projection matrix P"):
        CameraModel.from_camera_info(K, 480, 640, p=[0.0] * 12, rectified=True)
    assert CameraModel.from_camera_info([0.0] * 9, 480, 640) is None  # uncalibrated


def test_a_hostile_distortion_terminates():
    coefficients = geometry.coefficients("plumb_bob", [1e6, -1e9, 5.0, 5.0, 1e12])
    ray = geometry.undistorted_ray("plumb_bob", coefficients, 0.9, -0.7)
    assert ray.shape == (3,)
