"""Test-wide ROS 2 isolation: own DDS domain per run, discovery kept on this machine."""

import os

# Set before any test imports rclpy; subprocesses started by tests inherit them.
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
