"""soundloc_ros: which pixels of the camera image make the sound the robot hears.

`soundloc_ros.core` is pure logic (numpy/scipy, no rclpy, no torch); `soundloc_ros.ros` holds the
thin rclpy adapters.
"""
