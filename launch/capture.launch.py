"""Start the microphone driver: `ros2 launch soundloc_ros capture.launch.py device:=USB`.

Arguments: device (index or part of the name), params_file (defaults to the installed
config/capture.yaml, keyed by /** so it applies under any namespace and name), namespace (topics
are <namespace>/audio_stamped and <namespace>/audio_info, as ros-drivers audio_capture names
them), node_name, use_sim_time, log_level.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("soundloc_ros"))
    arguments = [
        DeclareLaunchArgument("device", default_value="", description="index or part of a name"),
        DeclareLaunchArgument("namespace", default_value="audio"),
        DeclareLaunchArgument("node_name", default_value="soundloc_capture"),
        DeclareLaunchArgument("params_file", default_value=str(share / "config" / "capture.yaml")),
        DeclareLaunchArgument("use_sim_time", default_value="false"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug, info, …"),
    ]
    sim_time = LaunchConfiguration("use_sim_time")
    node = Node(
        package="soundloc_ros",
        executable="soundloc_capture",
        name=LaunchConfiguration("node_name"),
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        respawn=True,  # PortAudio cannot re-attach to a restarted JACK server in-process
        respawn_delay=2.0,
        parameters=[
            LaunchConfiguration("params_file"),
            {
                # a string even when it looks like a number: device:=2 is an index, not an int
                "device": ParameterValue(LaunchConfiguration("device"), value_type=str),
                "use_sim_time": ParameterValue(sim_time, value_type=bool),
            },
        ],
        ros_arguments=["--log-level", LaunchConfiguration("log_level")],
    )
    return LaunchDescription([*arguments, node])
