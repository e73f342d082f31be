"""The installed parameter files reach the nodes under any namespace and node name, as rcl reads
them (`--params-file`, the way `ros2 run` and launch_ros pass them), and device:=2 is accepted."""

from pathlib import Path

import pytest
import yaml
from rclpy.parameter import Parameter

from soundloc_ros.ros.capture_node import CaptureNode
from soundloc_ros.ros.localizer_node import LocalizerNode

CONFIG = Path(__file__).resolve().parents[2] / "config"


def edited_copy(source: Path, target: Path, name: str, value) -> Path:
    """The file as shipped (same top-level keys) with one parameter changed from its default."""
    document = yaml.safe_load(source.read_text())
    for node in document.values():
        node["ros__parameters"][name] = value
    target.write_text(yaml.safe_dump(document))
    return target


@pytest.mark.parametrize(
    ("file", "node_class", "name", "value"),
    [
        ("soundloc.yaml", LocalizerNode, "mask_threshold", 0.7),
        ("capture.yaml", CaptureNode, "frame_id", "front_microphone"),
    ],
)
@pytest.mark.parametrize(("namespace", "node_name"), [("/", None), ("/front", None),
                                                      ("/robot/front", "left")])  # fmt: skip
def test_the_parameter_file_applies_under_any_namespace_and_name(
    ros_context, tmp_path, file, node_class, name, value, namespace, node_name
):
    path = edited_copy(CONFIG / file, tmp_path / file, name, value)
    arguments = ["--ros-args", "--params-file", str(path), "-r", f"__ns:={namespace}"]
    arguments += ["-r", f"__node:={node_name}"] if node_name else []
    node = node_class(context=ros_context, cli_args=arguments)
    try:
        assert node.get_parameter(name).value == value, (
            f"{file} did not reach {node.get_fully_qualified_name()}: key it by /**"
        )
    finally:
        node.destroy_node()


@pytest.mark.parametrize("arguments", [["-p", "device:=2"], ["-p", "device:=USB"]])
def test_the_capture_node_takes_a_device_index_or_name(ros_context, arguments):
    node = CaptureNode(context=ros_context, cli_args=["--ros-args", *arguments])
    try:
        assert str(node.get_parameter("device").value) == arguments[1].split(":=")[1]
    finally:
        node.destroy_node()


def test_an_integer_device_from_a_launch_file_or_yaml_is_accepted(ros_context):
    node = CaptureNode(context=ros_context, parameter_overrides=[Parameter("device", value=2)])
    try:
        assert node.get_parameter("device").value == 2
    finally:
        node.destroy_node()
