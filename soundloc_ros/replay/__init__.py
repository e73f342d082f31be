"""rosbag2 files without the ROS runtime: writing test/demo bags and replaying them offline."""
