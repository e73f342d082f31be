"""Fixtures for tests that run real rclpy nodes over Fast DDS."""

import os
from collections.abc import Callable, Iterator

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed; run `make setup`")
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

# A DDS domain of this test run's own: two runs at once (or a robot on the same network) would
# otherwise exchange frames and audio on the same topic names.
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))


@pytest.fixture
def ros_context() -> Iterator[Context]:
    """A fresh rclpy context per test, shut down afterwards even when the test fails."""
    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)


@pytest.fixture
def spin_until(ros_context: Context) -> Callable[..., bool]:
    """spin_until(nodes, predicate, timeout_s) -> whether predicate became true in time."""
    import time

    def spin(nodes, predicate: Callable[[], bool], timeout_s: float = 20.0) -> bool:
        executor = SingleThreadedExecutor(context=ros_context)
        for node in nodes:
            executor.add_node(node)
        deadline = time.monotonic() + timeout_s
        try:
            while not predicate():
                if time.monotonic() > deadline:
                    return False
                executor.spin_once(timeout_sec=0.05)
            return True
        finally:
            executor.shutdown()

    return spin
