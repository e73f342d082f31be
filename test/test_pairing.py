"""Audio ring buffer and frame/audio pairing: jitter, gaps, late chunks, jumps, bounded queues."""

import threading

import numpy as np
import pytest

from soundloc_ros.core.audio_buffer import AudioRingBuffer, ChunkEvent
from soundloc_ros.core.pairing import FrameScheduler, PairingConfig

RATE = 1000  # 1 kHz keeps the arithmetic readable: one sample per millisecond


def ramp(start: int, n: int) -> np.ndarray:
    """Samples whose value is their absolute index / 1e4, so any misplacement shows."""
    return (np.arange(start, start + n) / 1e4).astype(np.float32)


def test_jittery_stamps_are_laid_end_to_end_by_sample_count():
    buffer = AudioRingBuffer(RATE, capacity_s=2.0, jitter_s=0.01)
    assert buffer.push(10.0, ramp(0, 100)) is ChunkEvent.STARTED
    assert buffer.push(10.104, ramp(100, 100)) is ChunkEvent.APPENDED  # 4 ms late stamp
    assert buffer.push(10.196, ramp(200, 100)) is ChunkEvent.APPENDED  # 4 ms early stamp
    window = buffer.window(10.05, 10.25)
    np.testing.assert_allclose(window.samples, ramp(50, 200))
    assert window.coverage == 1.0 and buffer.end_time == pytest.approx(10.3)


def test_a_lost_chunk_leaves_a_gap_that_lowers_coverage():
    buffer = AudioRingBuffer(RATE, capacity_s=2.0)
    buffer.push(0.0, ramp(0, 100))
    assert buffer.push(0.2, ramp(200, 100)) is ChunkEvent.GAP
    window = buffer.window(0.0, 0.3)
    assert window.coverage == pytest.approx(2 / 3)
    np.testing.assert_array_equal(window.samples[100:200], 0)
    np.testing.assert_allclose(window.samples[200:], ramp(200, 100))


def test_a_late_chunk_fills_its_gap_in_place():
    buffer = AudioRingBuffer(RATE, capacity_s=2.0)
    buffer.push(0.0, ramp(0, 100))
    buffer.push(0.2, ramp(200, 100))
    assert buffer.push(0.1, ramp(100, 100)) is ChunkEvent.LATE
    window = buffer.window(0.0, 0.3)
    assert window.coverage == 1.0
    np.testing.assert_allclose(window.samples, ramp(0, 300))


def test_time_going_backwards_restarts_the_buffer_once_two_chunks_agree():
    buffer = AudioRingBuffer(RATE, capacity_s=2.0, backward_reset_s=1.0)
    buffer.push(100.0, ramp(0, 500))
    assert buffer.push(3.0, ramp(0, 100)) is ChunkEvent.HELD  # a bag loop, or one bad stamp?
    assert buffer.push(3.1, ramp(100, 100)) is ChunkEvent.RESET  # the bag started over
    assert buffer.start_time == pytest.approx(3.0) and buffer.end_time == pytest.approx(3.2)
    np.testing.assert_allclose(buffer.window(3.0, 3.2).samples, ramp(0, 200))  # nothing lost
    assert buffer.window(99.5, 100.0).coverage == 0.0


@pytest.mark.parametrize("wrong_stamp", [0.0, 1e9, 97.0])  # zeroed, garbage, a hiccup back
def test_one_glitched_stamp_is_laid_end_to_end_and_loses_nothing(wrong_stamp):
    buffer = AudioRingBuffer(RATE, capacity_s=2.0, backward_reset_s=1.0)
    buffer.push(100.0, ramp(0, 100))
    assert buffer.push(wrong_stamp, ramp(100, 100)) is ChunkEvent.HELD
    assert buffer.push(100.2, ramp(200, 100)) is ChunkEvent.GLITCH
    window = buffer.window(100.0, 100.3)
    assert window.coverage == 1.0
    np.testing.assert_allclose(window.samples, ramp(0, 300))


def test_old_audio_falls_out_of_the_ring():
    buffer = AudioRingBuffer(RATE, capacity_s=1.0)
    for k in range(30):
        buffer.push(k * 0.1, ramp(k * 100, 100))
    assert buffer.start_time == pytest.approx(2.0)
    assert buffer.window(1.5, 2.5).coverage == pytest.approx(0.5)
    np.testing.assert_allclose(buffer.window(2.0, 3.0).samples, ramp(2000, 1000))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def scheduler(clock, **overrides) -> FrameScheduler:
    config = PairingConfig(window_s=0.5, deadline_s=0.2, **overrides)
    return FrameScheduler(config, RATE, clock=clock)


def test_a_frame_waits_for_its_audio_then_is_paired_with_the_right_window():
    clock = Clock()
    pairs = scheduler(clock)
    pairs.add_audio(0.0, ramp(0, 900))
    pairs.add_frame(1.0, "frame@1.0")  # needs audio up to 1.0 s
    assert pairs.next_frame(0.0) is None and pairs.pending_count == 1
    pairs.add_audio(0.9, ramp(900, 200))
    paired = pairs.next_frame(0.0)
    assert paired.payload == "frame@1.0" and not paired.padded
    np.testing.assert_allclose(paired.audio.samples, ramp(500, 500))


def test_at_the_deadline_missing_audio_is_padded_or_dropped_by_policy():
    for policy, expect_frame in (("pad", True), ("drop", False)):
        clock = Clock()
        pairs = scheduler(clock, late_policy=policy)
        pairs.add_audio(0.0, ramp(0, 900))  # 0.1 s short of the frame's window
        pairs.add_frame(1.0, "f")
        clock.now = 0.25  # deadline (0.2 s) passed
        paired = pairs.next_frame(0.0)
        if expect_frame:
            assert paired.padded and paired.audio.coverage == pytest.approx(0.8)
            np.testing.assert_array_equal(paired.audio.samples[400:], 0)
        else:
            assert paired is None and pairs.drops["audio_late"] == 1


def test_no_audio_at_all_is_dropped_not_served_as_silence():
    clock = Clock()
    pairs = scheduler(clock)
    pairs.add_frame(1.0, "f")
    clock.now = 1.0
    assert pairs.next_frame(0.0) is None and pairs.drops["no_audio"] == 1


def test_when_inference_falls_behind_the_newest_frames_win():
    clock = Clock()
    pairs = scheduler(clock, max_ready=2)
    pairs.add_audio(0.0, ramp(0, 3000))
    for k in range(5):
        pairs.add_frame(1.0 + 0.1 * k, k)
    assert [pairs.next_frame(0.0).payload for _ in range(2)] == [3, 4]
    assert pairs.drops["superseded"] == 3


def test_pending_frames_are_bounded():
    clock = Clock()
    pairs = scheduler(clock, max_pending=3)
    for k in range(10):
        pairs.add_frame(1.0 + 0.03 * k, k)
    assert pairs.pending_count == 3 and pairs.drops["pending_full"] == 7


def test_a_bag_loop_resets_pending_frames_and_counts_them():
    clock = Clock()
    pairs = scheduler(clock)
    pairs.add_audio(50.0, ramp(0, 500))
    pairs.add_frame(51.0, "waiting")
    pairs.add_audio(0.0, ramp(0, 100))
    assert pairs.add_audio(0.1, ramp(100, 100)) is ChunkEvent.RESET
    assert pairs.drops["time_jump"] == 1 and pairs.pending_count == 0
    assert pairs.add_frame(51.0, "a") and not pairs.add_frame(2.0, "after the loop")
    assert pairs.drops["time_jump"] == 2


def test_a_glitched_audio_stamp_loses_no_frame():
    clock = Clock()
    pairs = scheduler(clock)
    paired = []
    for k in range(20):  # 2 s of 100 ms chunks, one frame per chunk; chunk 9 has a bad stamp
        pairs.add_audio(0.0 if k == 9 else 10.0 + 0.1 * k, ramp(100 * k, 100))
        if k >= 5:  # from when a whole 0.5 s window exists
            pairs.add_frame(10.05 + 0.1 * k, k)
        while (frame := pairs.next_frame(timeout_s=0.0)) is not None:
            paired.append(frame.payload)
    assert sum(pairs.drops.values()) == 0 and pairs.audio_events["glitch"] == 1
    assert paired == list(range(5, 20))


def test_a_consumer_thread_is_woken_by_audio_arriving():
    pairs = FrameScheduler(PairingConfig(window_s=0.5, deadline_s=5.0), RATE)
    pairs.add_audio(0.0, ramp(0, 900))
    pairs.add_frame(1.0, "f")
    got = []
    consumer = threading.Thread(target=lambda: got.append(pairs.next_frame(5.0)))
    consumer.start()
    pairs.add_audio(0.9, ramp(900, 200))
    consumer.join(2.0)
    assert got and got[0].payload == "f"
    pairs.close()


def test_bad_settings_are_refused_with_the_allowed_values():
    with pytest.raises(ValueError, match="late_policy must be one of"):
        FrameScheduler(PairingConfig(late_policy="wait"), RATE)
