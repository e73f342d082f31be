"""Start the microphone driver: `ros2 launch soundloc_ros capture.launch.py device:=USB`.

Arguments: device (index or part of the name), params_file (defaults to the installed
config/capture.yaml), namespace (topics are <namespace>/audio and <namespace>/audio_info).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("soundloc_ros"))
    return LaunchDescription(
        [
            DeclareLaunchArgument("device", default_value="", description="input device"),
            DeclareLaunchArgument("namespace", default_value="audio"),
            DeclareLaunchArgument(
                "params_file", default_value=str(share / "config" / "capture.yaml")
            ),
            Node(
                package="soundloc_ros",
                executable="soundloc_capture",
                name="soundloc_capture",
                namespace=LaunchConfiguration("namespace"),
                output="screen",
                respawn=True,  # PortAudio cannot re-attach to a restarted JACK server in-process
                respawn_delay=2.0,
                parameters=[
                    LaunchConfiguration("params_file"),
                    {"device": LaunchConfiguration("device")},
                ],
            ),
        ]
    )
