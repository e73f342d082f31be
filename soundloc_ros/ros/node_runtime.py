"""What every soundloc node's process does the same way: spin until Ctrl-C or shutdown, then
tear down in order; and wrap a DiagnosticStatus into a stamped /diagnostics message."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node


def run(make_node: Callable[[], Node], args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = make_node()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def diagnostic_array(node: Node, status: DiagnosticStatus) -> DiagnosticArray:
    array = DiagnosticArray(status=[status])
    array.header.stamp = node.get_clock().now().to_msg()
    return array


def diagnostic_status(
    level: bytes, name: str, message: str, hardware_id: str, values: dict[str, str]
) -> DiagnosticStatus:
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )
