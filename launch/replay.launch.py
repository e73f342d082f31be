"""Replay a recorded bag into the localizer on the bag's clock:
`ros2 launch soundloc_ros replay.launch.py bag:=/path/to/bag bundle:=/path/to/bundle`.

Plays the bag with `ros2 bag play --clock` and starts soundloc.launch.py with use_sim_time:=true,
so the node's stamps, audio deadlines and diagnostics run on the bag's time. Arguments: bag,
bundle, rate (playback speed), delay (seconds before playback, while the node loads its bundle;
raise it when a TensorRT engine is built on first start), and every soundloc.launch.py argument
(namespace, node_name, log_level, the input topics image, camera_info, audio, audio_info as the
bag names them, …).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("soundloc_ros"))
    arguments = [
        DeclareLaunchArgument("bag", description="rosbag2 directory or .mcap file"),
        DeclareLaunchArgument("bundle", description="model bundle directory"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback speed"),
        DeclareLaunchArgument("delay", default_value="3.0", description="s before playback"),
    ]
    play = ExecuteProcess(
        cmd=["ros2", "bag", "play", LaunchConfiguration("bag"), "--clock",
             "--rate", LaunchConfiguration("rate"), "--delay", LaunchConfiguration("delay")],
        output="screen",
    )  # fmt: skip
    localizer = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(share / "launch" / "soundloc.launch.py")),
        # an included file's required arguments must be handed on explicitly
        launch_arguments={"bundle": LaunchConfiguration("bundle"), "use_sim_time": "true"}.items(),
    )
    return LaunchDescription([*arguments, localizer, play])
