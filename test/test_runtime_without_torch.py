"""The runtime package must import and work on a robot that has no torch installed."""

import subprocess
import sys
import textwrap


def test_every_runtime_module_imports_and_runs_with_torch_blocked():
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys

        class BlockTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")

        sys.meta_path.insert(0, BlockTorch())
        import soundloc_ros
        names = [m.name for m in pkgutil.walk_packages(soundloc_ros.__path__, "soundloc_ros.")]
        for name in names:
            importlib.import_module(name)
        import numpy as np
        from soundloc_ros.core.features import LogMelConfig, compute_features
        assert compute_features(np.zeros(16000), 16000, LogMelConfig()).shape == (64, 97)
        assert "torch" not in sys.modules
        print(len(names))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 8  # core and ros modules were all walked


def test_core_imports_no_ros_and_nothing_outside_core():
    """soundloc_ros.core is the pure logic the node, replay and training share: it must import on
    a machine without ROS (rclpy and every message package blocked) and never reach the node,
    replay or the training package."""
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys

        BLOCKED = ("rclpy", "rcl_interfaces", "sensor_msgs", "std_msgs", "vision_msgs",
                   "audio_common_msgs", "diagnostic_msgs", "geometry_msgs", "visualization_msgs",
                   "soundloc_ros.ros", "soundloc_ros.replay", "soundloc_training")

        class Block:
            def find_spec(self, name, path=None, target=None):
                if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                    raise ImportError(f"{name} is blocked in this test")

        sys.meta_path.insert(0, Block())
        import soundloc_ros.core
        names = [m.name for m in pkgutil.walk_packages(soundloc_ros.core.__path__,
                                                       "soundloc_ros.core.")]
        for name in names:
            importlib.import_module(name)
        print(len(names))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 15  # every core module was imported
