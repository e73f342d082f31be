"""Thin rclpy adapters over soundloc_ros.core: message conversions and nodes."""
