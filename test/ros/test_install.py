"""The package as a robot gets it: `colcon build --packages-select soundloc_ros` into a throwaway
workspace, the files it installs, the installed `soundloc_node` entry point localizing a frame,
the launch files resolved to the command lines they start, and every runtime file parsed as
Python 3.10 (Humble's interpreter)."""

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image

from soundloc_ros.ros.capture_node import CaptureNode
from soundloc_ros.ros.localizer_node import LocalizerNode
from soundloc_ros.ros.playback import Player, Recording

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent
RUNTIME = sorted([*(ROOT / "soundloc_ros").rglob("*.py"), *(ROOT / "launch").glob("*.py")])


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> Path:
    """<workspace>/install/soundloc_ros, built by the venv's colcon as the README's robot path
    builds it (the ament tools come from the ros-jazzy-* wheels, as for audio_common_msgs)."""
    workspace = tmp_path_factory.mktemp("ws")
    environment = {**os.environ, "AMENT_PREFIX_PATH": str(VENV), "CMAKE_PREFIX_PATH": str(VENV)}
    build = subprocess.run(
        [str(VENV / "bin" / "colcon"), "--log-base", "log", "build", "--base-paths", str(ROOT),
         "--packages-select", "soundloc_ros", "--build-base", "build", "--install-base", "install",
         "--event-handlers", "console_cohesion-", "summary-"],
        cwd=workspace, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, f"colcon build failed:\n{build.stdout}\n{build.stderr}"
    return workspace / "install" / "soundloc_ros"


def sourced(install: Path) -> dict[str, str]:
    """The environment `source install/local_setup.bash` gives a shell."""
    script = f". {install.parent}/local_setup.sh && env -0"
    output = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout
    return dict(line.split("=", 1) for line in output.decode().split("\0") if "=" in line)


def test_share_holds_the_manifest_marker_launch_and_config(install):
    share = install / "share" / "soundloc_ros"
    assert (share / "package.xml").read_text() == (ROOT / "package.xml").read_text()
    assert (
        install / "share" / "ament_index" / "resource_index" / "packages" / "soundloc_ros"
    ).is_file()
    installed = {p.relative_to(share).as_posix() for p in share.glob("*/*")}
    expected = {
        *(f"launch/{name}.launch.py" for name in ("capture", "soundloc", "replay")),
        *(
            f"config/{name}"
            for name in ("soundloc.yaml", "capture.yaml", "fastdds_large_messages.xml")
        ),
    }
    assert expected <= installed, f"not installed: {expected - installed} (setup.py data_files)"
    executables = {p.name for p in (install / "lib" / "soundloc_ros").iterdir()}
    assert {"soundloc_node", "soundloc_capture", "soundloc_bundle"} <= executables


def test_the_installed_node_localizes_a_frame(install, tiny_bundle, ros_context):
    environment = sourced(install)
    where = subprocess.run(
        [sys.executable, "-c", "import soundloc_ros; print(soundloc_ros.__file__)"],
        env=environment, cwd=install, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(install)), f"the node would not run the installed copy: {where}"
    node = subprocess.Popen(
        [str(install / "lib" / "soundloc_ros" / "soundloc_node"), "--ros-args",
         "-p", f"bundle:={tiny_bundle.directory}", "-p", "backend:=onnxruntime",
         "-p", "input_qos:=reliable", "-p", "audio_deadline:=2.0"],
        env=environment, cwd=install, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    rig = rclpy.create_node("install_rig", context=ros_context)
    heatmaps = []
    rig.create_subscription(Image, "/soundloc/heatmap", heatmaps.append, 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(rig)
    try:
        player = Player(rig)
        assert spin_until(executor, lambda: player.image.get_subscription_count() > 0, 30.0), (
            "the installed soundloc_node never subscribed to image"
        )
        frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        audio = 0.1 * np.random.default_rng(1).standard_normal(3 * 16000)
        spin = lambda timeout: executor.spin_once(timeout_sec=timeout)  # noqa: E731
        player.play([Recording([frame] * 3, [1.5, 2.0, 2.5], audio)], 1_700_000_000.0, spin, 4.0)
        assert spin_until(executor, lambda: heatmaps, 20.0), "no heatmap from the installed node"
        assert heatmaps[0].encoding == "32FC1"
    finally:
        executor.shutdown()
        rig.destroy_node()
        node.terminate()
        output, _ = node.communicate(timeout=10)
    assert "Traceback" not in output, output


def spin_until(executor, predicate, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            return False
        executor.spin_once(timeout_sec=0.02)
    return True


def test_every_runtime_file_parses_as_python_3_10():
    for path in RUNTIME:
        ast.parse(path.read_text(), str(path), feature_version=(3, 10))


# --- the launch files, resolved as `ros2 launch` would before starting anything ---


def resolve(launch_file: Path, arguments: dict[str, str]) -> list[list[str]]:
    """The command lines `ros2 launch <file> name:=value …` starts, without starting them."""
    from launch import LaunchContext
    from launch.actions import ExecuteProcess
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    context = LaunchContext()
    context.launch_configurations.update(arguments)
    pending = [PythonLaunchDescriptionSource(str(launch_file)).get_launch_description(context)]
    commands = []
    while pending:
        entity = pending.pop(0)
        if isinstance(entity, ExecuteProcess):
            if entity.condition is None or entity.condition.evaluate(context):
                commands.append(command_line(entity, context))
        else:
            pending[0:0] = entity.visit(context) or []  # depth first, in order (scopes)
    return commands


def command_line(process, context) -> list[str]:
    """What Node.execute / ExecuteProcess.execute would run, substitutions performed."""
    from launch.utilities import perform_substitutions
    from launch_ros.actions import Node

    if isinstance(process, Node):
        process._perform_substitutions(context)
        namespace, _, name = process.node_name.rpartition("/")
        specific = {"name": f"__node:={name}", "ns": f"__ns:={namespace or '/'}"}
        context.extend_locals({"ros_specific_arguments": specific})
    return [perform_substitutions(context, part) for part in process.cmd]


def ros_arguments(command: list[str]) -> list[str]:
    return command[command.index("--ros-args") :]


@pytest.fixture
def launch_files(install, monkeypatch) -> Path:
    """The installed launch directory, with the workspace sourced for ament_index lookups."""
    pytest.importorskip("launch_ros", reason="launch_ros is not on PyPI: runs on a ROS 2 install")
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"{install}{os.pathsep}{VENV}")
    return install / "share" / "soundloc_ros" / "launch"


def test_capture_launch_passes_the_device_as_a_string_under_any_namespace(
    launch_files, install, ros_context
):
    arguments = {"device": "2", "namespace": "front", "node_name": "mic",
                 "use_sim_time": "true", "log_level": "debug"}  # fmt: skip
    (command,) = resolve(launch_files / "capture.launch.py", arguments)
    assert command[0] == str(install / "lib" / "soundloc_ros" / "soundloc_capture")
    assert str(install / "share" / "soundloc_ros" / "config" / "capture.yaml") in command
    assert command[command.index("--log-level") + 1] == "debug"
    node = CaptureNode(context=ros_context, cli_args=ros_arguments(command))
    try:
        assert node.get_fully_qualified_name() == "/front/mic"
        assert node.get_parameter("device").value == "2", "device:=2 must stay a string"
        assert node.get_parameter("use_sim_time").value is True
    finally:
        node.destroy_node()


def test_soundloc_launch_namespaces_the_node_and_keeps_capture_apart(
    launch_files, install, ros_context, tmp_path
):
    arguments = {"bundle": str(tmp_path / "bundle"), "namespace": "front", "node_name": "left",
                 "use_sim_time": "true", "with_capture": "true", "device": "USB"}  # fmt: skip
    localizer, capture = resolve(launch_files / "soundloc.launch.py", arguments)
    config = install / "share" / "soundloc_ros" / "config"
    assert str(config / "soundloc.yaml") in localizer and str(config / "capture.yaml") in capture
    assert str(config / "soundloc.yaml") not in capture
    assert "audio_stamped:=/audio/audio_stamped" in localizer
    node = LocalizerNode(context=ros_context, cli_args=ros_arguments(localizer))
    try:
        assert node.get_fully_qualified_name() == "/front/left"
        assert node.get_parameter("use_sim_time").value is True
    finally:
        node.destroy_node()
    microphone = CaptureNode(context=ros_context, cli_args=ros_arguments(capture))
    try:
        assert microphone.get_fully_qualified_name() == "/audio/soundloc_capture"
        assert microphone.get_parameter("device").value == "USB"
    finally:
        microphone.destroy_node()


def test_replay_launch_plays_the_bag_on_its_clock_into_a_sim_time_node(
    launch_files, ros_context, tmp_path
):
    arguments = {"bag": str(tmp_path / "bag"), "bundle": str(tmp_path / "bundle")}
    localizer, play = resolve(launch_files / "replay.launch.py", arguments)
    assert play[:4] == ["ros2", "bag", "play", str(tmp_path / "bag")] and "--clock" in play
    node = LocalizerNode(context=ros_context, cli_args=ros_arguments(localizer))
    try:
        assert node.get_parameter("use_sim_time").value is True
        assert node.get_parameter("bundle").value == str(tmp_path / "bundle")
    finally:
        node.destroy_node()
