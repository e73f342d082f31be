"""Stamps for microphone chunks: the time of each chunk's first sample on the ROS clock.

PortAudio reports, in every input callback, when the buffer's first sample hit the converter
(`inputBufferAdcTime`) and the stream's current time (`currentTime`), both on the stream's own
clock. The ROS clock is read when the callback runs. So

    ros_now - currentTime = offset + scheduling delay (>= 0)

and the smallest value over a sliding window is the best estimate of the offset between the
clocks; the window slides, so a slow drift between the sound card and the system clock is
followed. A chunk's stamp is then inputBufferAdcTime + offset. Host APIs that do not report ADC
times (some give 0) fall back to currentTime minus the chunk's duration and the input latency.

Lost audio (an input overflow) is never hidden: the next chunk's stamp comes from its own ADC
time, so the stream shows a gap exactly where samples are missing.
"""

from __future__ import annotations

from collections import deque


class CaptureClock:
    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._offsets: deque[tuple[float, float]] = deque()  # (device time, ros - device)

    def observe(self, device_now: float, ros_now: float) -> None:
        """One callback's pair of readings of the two clocks."""
        self._offsets.append((device_now, ros_now - device_now))
        while self._offsets and self._offsets[0][0] < device_now - self.window_s:
            self._offsets.popleft()

    @property
    def offset(self) -> float:
        if not self._offsets:
            raise RuntimeError("CaptureClock.offset before any observe()")
        return min(o for _, o in self._offsets)

    def first_sample_stamp(
        self,
        adc_time: float,
        device_now: float,
        ros_now: float,
        frames: int,
        sample_rate: int,
        input_latency_s: float,
    ) -> float:
        """ROS time of a chunk's first sample (observes the clocks on the way)."""
        self.observe(device_now, ros_now)
        if adc_time <= 0.0:  # not reported by this host API
            adc_time = device_now - frames / sample_rate - input_latency_s
        return adc_time + self.offset
