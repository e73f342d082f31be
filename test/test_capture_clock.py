"""Chunk stamps from PortAudio's clocks: offset from the least-delayed callback, drift followed."""

import pytest

from soundloc_ros.core.capture_clock import CaptureClock


def test_offset_is_the_least_delayed_reading_and_stamps_use_adc_time():
    clock = CaptureClock(window_s=10.0)
    offset = 1000.0  # system clock = device clock + 1000 s
    delays = [0.004, 0.0005, 0.003, 0.002]  # scheduling delays of the callbacks (>= 0)
    stamps = []
    for k, delay in enumerate(delays):
        device_now = 0.02 * (k + 1)
        adc = device_now - 0.02  # the chunk's first sample entered 20 ms before
        stamps.append(
            clock.first_sample_stamp(adc, device_now, device_now + offset + delay, 320, 16000, 0.0)
        )
    assert clock.offset == pytest.approx(offset + 0.0005)
    assert stamps[-1] == pytest.approx(0.06 + offset + 0.0005)


def test_a_drifting_device_clock_is_followed_by_the_sliding_window():
    clock = CaptureClock(window_s=1.0)
    for k in range(200):  # 4 s; the device clock runs 1000 ppm slow
        device_now = 0.02 * k
        clock.observe(device_now, device_now * 1.001 + 5.0)
    assert clock.offset == pytest.approx(5.0 + 0.001 * (0.02 * 199 - 1.0), abs=1e-4)


def test_missing_adc_times_fall_back_to_current_time_minus_duration_and_latency():
    clock = CaptureClock()
    stamp = clock.first_sample_stamp(0.0, 10.0, 110.0, 320, 16000, 0.01)
    assert stamp == pytest.approx(110.0 - 0.02 - 0.01)


def test_an_overflow_shows_as_a_gap_in_the_stamps():
    clock = CaptureClock()
    first = clock.first_sample_stamp(1.00, 1.02, 101.02, 320, 16000, 0.0)
    after_lost_block = clock.first_sample_stamp(1.04, 1.06, 101.06, 320, 16000, 0.0)
    assert after_lost_block - first == pytest.approx(0.04)  # 20 ms of audio are missing
