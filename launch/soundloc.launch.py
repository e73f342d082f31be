"""Start the localizer node: `ros2 launch soundloc_ros soundloc.launch.py bundle:=/path/to/bundle`.

Arguments: bundle, backend, params_file (defaults to the installed config/soundloc.yaml), the
input topics image, camera_info, audio, audio_info (remapped onto the node's names), and
with_capture:=true to start soundloc_capture too (microphone `device`, its topics under /audio).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

TOPICS = {
    "image": "/camera/image_raw",
    "camera_info": "/camera/camera_info",
    "audio": "/audio/audio",  # ros-drivers audio_capture: audio:=/audio/audio_stamped
    "audio_info": "/audio/audio_info",
}


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("soundloc_ros"))
    arguments = [
        DeclareLaunchArgument("bundle", description="model bundle directory"),
        DeclareLaunchArgument(
            "backend", default_value="auto", description="auto, tensorrt, onnxruntime or torch"
        ),
        DeclareLaunchArgument("params_file", default_value=str(share / "config" / "soundloc.yaml")),
        *(DeclareLaunchArgument(name, default_value=topic) for name, topic in TOPICS.items()),
        DeclareLaunchArgument("with_capture", default_value="false"),
        DeclareLaunchArgument("device", default_value="", description="microphone (capture)"),
    ]
    capture = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(share / "launch" / "capture.launch.py")),
        launch_arguments={"device": LaunchConfiguration("device"), "namespace": "audio"}.items(),
        condition=IfCondition(LaunchConfiguration("with_capture")),
    )
    node = Node(
        package="soundloc_ros",
        executable="soundloc_node",
        name="soundloc",
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {"bundle": LaunchConfiguration("bundle"), "backend": LaunchConfiguration("backend")},
        ],
        remappings=[(name, LaunchConfiguration(name)) for name in TOPICS],
    )
    return LaunchDescription([*arguments, capture, node])
