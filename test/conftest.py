"""Test-wide ROS 2 isolation (own DDS domain per run, discovery kept on this machine) and the
shared hand-made model bundle."""

import os

import pytest

# Set before any test imports rclpy; subprocesses started by tests inherit them.
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


@pytest.fixture
def tiny_bundle(tmp_path):
    """A real ONNX bundle (hand-made graph, see tiny_bundle.py), loaded through load_bundle."""
    from tiny_bundle import write_tiny_bundle

    from soundloc_ros.core.bundle import load_bundle

    write_tiny_bundle(tmp_path / "tiny_bundle")
    return load_bundle(tmp_path / "tiny_bundle")
