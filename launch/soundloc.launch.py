"""Start the localizer node: `ros2 launch soundloc_ros soundloc.launch.py bundle:=/path/to/bundle`.

Arguments: bundle, backend, params_file (defaults to the installed config/soundloc.yaml, keyed by
/** so it applies under any namespace and name), namespace, node_name, use_sim_time, log_level,
the input topics image, camera_info, audio_stamped, audio_info (remapped onto the node's names; the
defaults are what ros-drivers audio_capture and soundloc_capture publish under /audio), and
with_capture:=true to start soundloc_capture too (microphone `device`, its topics under /audio,
its parameters from capture_params_file).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

TOPICS = {
    "image": "/camera/image_raw",
    "camera_info": "/camera/camera_info",
    "audio_stamped": "/audio/audio_stamped",
    "audio_info": "/audio/audio_info",
}
SHARED = ("use_sim_time", "log_level")  # handed on to soundloc_capture


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("soundloc_ros"))
    arguments = [
        DeclareLaunchArgument("bundle", description="model bundle directory"),
        DeclareLaunchArgument(
            "backend", default_value="auto", description="auto, tensorrt, onnxruntime or torch"
        ),
        DeclareLaunchArgument("params_file", default_value=str(share / "config" / "soundloc.yaml")),
        DeclareLaunchArgument("namespace", default_value=""),
        DeclareLaunchArgument("node_name", default_value="soundloc"),
        DeclareLaunchArgument("use_sim_time", default_value="false"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug, info, …"),
        *(DeclareLaunchArgument(name, default_value=topic) for name, topic in TOPICS.items()),
        DeclareLaunchArgument("with_capture", default_value="false"),
        DeclareLaunchArgument("device", default_value="", description="microphone (capture)"),
        DeclareLaunchArgument(
            "capture_params_file", default_value=str(share / "config" / "capture.yaml")
        ),
    ]
    sim_time = LaunchConfiguration("use_sim_time")
    node = Node(
        package="soundloc_ros",
        executable="soundloc_node",
        name=LaunchConfiguration("node_name"),
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "bundle": LaunchConfiguration("bundle"),
                "backend": LaunchConfiguration("backend"),
                "use_sim_time": ParameterValue(sim_time, value_type=bool),
            },
        ],
        remappings=[(name, LaunchConfiguration(name)) for name in TOPICS],
        ros_arguments=["--log-level", LaunchConfiguration("log_level")],
    )
    return LaunchDescription([*arguments, node, capture(share)])


def capture(share: Path) -> GroupAction:
    """capture.launch.py in a scope of its own: an include would otherwise inherit this file's
    namespace, node_name and params_file (launch configurations are global)."""
    handed_on = {
        "device": LaunchConfiguration("device"),
        "namespace": "audio",
        "node_name": "soundloc_capture",
        "params_file": LaunchConfiguration("capture_params_file"),
        **{name: LaunchConfiguration(name) for name in SHARED},
    }
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(share / "launch" / "capture.launch.py")),
        launch_arguments=handed_on.items(),
    )
    return GroupAction([include], condition=IfCondition(LaunchConfiguration("with_capture")))
