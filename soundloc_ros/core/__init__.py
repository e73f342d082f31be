"""ROS-free core: pure numpy/scipy logic that the ROS nodes wrap; no rclpy, no torch."""
