"""Pixel <-> ray for a calibrated camera, as CameraInfo describes it: numpy only, no OpenCV.

A raw image is distorted: the ray toward a pixel is K^-1 applied to the pixel, then the lens
distortion D undone (plumb_bob and rational_polynomial as OpenCV's undistortPoints, equidistant
as its fisheye model). A rectified image (image_proc's image_rect) has no distortion left and
is described by P, not K: the ray is P's pinhole inverse, as image_geometry's
projectPixelTo3dRay computes it (Tx, Ty ignored: they move the projection centre, not the
direction). Rays are unit vectors in the optical frame (x right, y down, z ahead); a rectified
ray is in the rectified frame, which for a monocular camera is the optical frame (R = I).

Undistortion has no closed form; it is solved iteratively, to 1e-12 in normalized coordinates
(far below a pixel) in a bounded number of steps, so a hostile D can cost time but never hang.
"""

from __future__ import annotations

import numpy as np

PLUMB_BOB, RATIONAL, EQUIDISTANT = "plumb_bob", "rational_polynomial", "equidistant"
DISTORTION_MODELS = (PLUMB_BOB, RATIONAL, EQUIDISTANT)
MAX_ITERATIONS = 50
TOLERANCE = 1e-12


def coefficients(model: str, d) -> np.ndarray:
    """D padded to the model's length: plumb_bob / rational (k1 k2 p1 p2 k3 k4 k5 k6) as 8,
    equidistant (k1 k2 k3 k4) as 4. ValueError naming the fix for any other non-zero model."""
    d = np.asarray(d, dtype=np.float64).ravel()
    if model == EQUIDISTANT:
        size = 4
    elif model in (PLUMB_BOB, RATIONAL) or not np.any(d):
        size = 8  # an unnamed model with all-zero D is the plain pinhole
    else:
        raise ValueError(
            f"distortion model {model!r} is not supported (only {', '.join(DISTORTION_MODELS)}); "
            "feed the node rectified images (image_proc) with rectified:=true"
        )
    if d.size > size:
        raise ValueError(f"{model} has at most {size} coefficients; CameraInfo D has {d.size}")
    return np.pad(d, (0, size - d.size))


def distort(model: str, d: np.ndarray, direction) -> tuple[float, float]:
    """A direction (X, Y, Z) in the optical frame -> its normalized distorted coordinates."""
    big_x, big_y, big_z = (float(c) for c in direction)
    if model == EQUIDISTANT:
        r = np.hypot(big_x, big_y)
        if r == 0.0:
            return 0.0, 0.0
        theta_d = _theta_d(d, np.arctan2(r, big_z))  # angle from the axis: past 90 degrees too
        return big_x * theta_d / r, big_y * theta_d / r
    x, y = big_x / big_z, big_y / big_z
    k1, k2, p1, p2, k3, k4, k5, k6 = d
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    return (
        x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
        y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y,
    )


def undistorted_ray(model: str, d: np.ndarray, xd: float, yd: float) -> np.ndarray:
    """Normalized distorted (xd, yd) -> unit ray; the inverse of `distort` (then normalized)."""
    if model == EQUIDISTANT:
        return _equidistant_ray(d, xd, yd)
    k1, k2, p1, p2, k3, k4, k5, k6 = d
    x, y = xd, yd
    for _ in range(MAX_ITERATIONS):  # OpenCV's fixed point: x = (xd - tangential) / radial
        r2 = x * x + y * y
        inverse_radial = (1 + r2 * (k4 + r2 * (k5 + r2 * k6))) / (
            1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        )
        nx = (xd - 2 * p1 * x * y - p2 * (r2 + 2 * x * x)) * inverse_radial
        ny = (yd - p1 * (r2 + 2 * y * y) - 2 * p2 * x * y) * inverse_radial
        done = abs(nx - x) + abs(ny - y) < TOLERANCE
        x, y = nx, ny
        if done:
            break
    return unit(x, y)


def _theta_d(d: np.ndarray, theta: float) -> float:
    t2 = theta * theta
    return theta * (1 + t2 * (d[0] + t2 * (d[1] + t2 * (d[2] + t2 * d[3]))))


def _equidistant_ray(d: np.ndarray, xd: float, yd: float) -> np.ndarray:
    """Newton on theta_d = theta (1 + k1 theta^2 + ... + k4 theta^8); the ray is built from
    theta itself, so fisheyes past 90 degrees (where tan(theta) breaks) work too."""
    theta_d = np.hypot(xd, yd)
    if theta_d == 0.0:
        return np.array([0.0, 0.0, 1.0])
    theta = min(theta_d, np.pi)
    for _ in range(MAX_ITERATIONS):
        t2 = theta * theta
        slope = 1 + t2 * (3 * d[0] + t2 * (5 * d[1] + t2 * (7 * d[2] + t2 * 9 * d[3])))
        step = (_theta_d(d, theta) - theta_d) / slope
        theta -= step
        if abs(step) < TOLERANCE:
            break
    return np.array([np.sin(theta) * xd / theta_d, np.sin(theta) * yd / theta_d, np.cos(theta)])


def unit(x: float, y: float) -> np.ndarray:
    ray = np.array([x, y, 1.0])
    return ray / np.linalg.norm(ray)


def pinhole(matrix: np.ndarray) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of K [3, 3] or P [3, 4]."""
    return matrix[0, 0], matrix[1, 1], matrix[0, 2], matrix[1, 2]
