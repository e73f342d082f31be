"""Pair camera frames with the audio window around their stamp, without unbounded queues.

A frame stamped t needs the audio [t + offset - window, t + offset]. Audio arrives in chunks that
usually end a little after t, so a frame waits (in a bounded pending list) until the buffer
covers its window or its deadline passes; then it is paired (coverage reported, missing audio
zero-filled and flagged as padded) or dropped, according to the policy, with a counted reason.
Paired frames wait for inference in a short FIFO; when inference falls behind the camera the
oldest is dropped ("superseded"), so the newest frame always wins and latency stays bounded.

`FrameScheduler` is the thread-safe front: subscription callbacks add frames and audio, one
inference thread takes paired frames. No ROS here; the node is a thin adapter around it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from soundloc_ros.core.audio_buffer import AudioRingBuffer, AudioWindow, ChunkEvent

LATE_POLICIES = ("pad", "drop")
MAX_WAIT_S = 0.02  # wall seconds between deadline checks: the clock may be simulated and fast


@dataclass
class PairingConfig:
    window_s: float = 1.0  # the bundle's front-end window
    offset_s: float = 0.0  # window end relative to the frame stamp
    deadline_s: float = 0.25  # how long a frame may wait for its audio (scheduler clock)
    late_policy: str = "pad"  # audio incomplete at the deadline: "pad" (zeros, flagged) or "drop"
    min_coverage: float = 0.5  # below this a window is never used, whatever the policy
    max_pending: int = 30  # frames waiting for audio (1 s of 30 Hz video)
    max_ready: int = 2  # paired frames waiting for inference

    def check(self) -> None:
        if self.late_policy not in LATE_POLICIES:
            raise ValueError(
                f"late_policy must be one of {LATE_POLICIES}; got {self.late_policy!r}"
            )
        if not 0.0 <= self.min_coverage <= 1.0:
            raise ValueError(f"min_coverage must be in [0, 1]; got {self.min_coverage}")
        if self.window_s <= 0 or self.deadline_s < 0 or self.max_pending < 1 or self.max_ready < 1:
            raise ValueError("window_s > 0, deadline_s >= 0, max_pending >= 1, max_ready >= 1")


@dataclass
class PairedFrame:
    payload: Any  # whatever the caller attached (the image message)
    stamp_s: float
    arrival_s: float  # monotonic time the frame arrived
    audio: AudioWindow
    padded: bool  # the window was incomplete and zero-filled


@dataclass
class _Pending:
    payload: Any
    stamp_s: float
    arrival_s: float


class FrameScheduler:
    def __init__(
        self,
        config: PairingConfig,
        sample_rate: int,
        clock: Callable[[], float] = time.monotonic,
        buffer_s: float = 5.0,
    ) -> None:
        """clock: seconds that arrival and deadlines are measured in (the node's ROS clock, a
        bag's log time); it may stand still (a paused bag) or run faster than wall time."""
        config.check()
        self.config = config
        self.clock = clock
        self.buffer_s = buffer_s
        self.buffer = AudioRingBuffer(sample_rate, capacity_s=buffer_s)
        self.drops: Counter[str] = Counter()
        self.audio_events: Counter[str] = Counter()
        self._pending: deque[_Pending] = deque()
        self._ready: deque[PairedFrame] = deque()
        self._last_frame_stamp: float | None = None
        self._condition = threading.Condition()
        self._closed = False

    # --- producers (subscription callbacks) ---
    def add_audio(self, stamp_s: float, samples) -> ChunkEvent:
        with self._condition:
            event = self.buffer.push(stamp_s, samples)
            self.audio_events[event.value] += 1
            if event is ChunkEvent.RESET:  # frames waiting for the old timeline never complete
                self._drop_all_pending("time_jump")
            self._advance()
            return event

    def add_frame(self, stamp_s: float, payload: Any) -> bool:
        """Queue a frame; False (and counted) when its stamp jumped back and the queue was reset."""
        with self._condition:
            jumped = (
                self._last_frame_stamp is not None
                and stamp_s < self._last_frame_stamp - self.config.deadline_s - 1.0
            )
            if jumped:
                self._drop_all_pending("time_jump")
            self._last_frame_stamp = stamp_s
            if len(self._pending) >= self.config.max_pending:
                self._pending.popleft()
                self.drops["pending_full"] += 1
            self._pending.append(_Pending(payload, stamp_s, self.clock()))
            self._advance()
            return not jumped

    def reset_audio(self, sample_rate: int) -> None:
        """The stream's format changed: start a new buffer; waiting frames are dropped."""
        with self._condition:
            self.buffer = AudioRingBuffer(sample_rate, capacity_s=self.buffer_s)
            self._drop_all_pending("audio_format_changed")

    # --- consumer (the inference thread) ---
    def next_frame(self, timeout_s: float) -> PairedFrame | None:
        """The oldest paired frame, waiting up to `timeout_s`; deadlines are enforced meanwhile."""
        end = self.clock() + timeout_s
        with self._condition:
            while not self._closed:
                self._advance()
                if self._ready:
                    return self._ready.popleft()
                remaining = end - self.clock()
                if remaining <= 0:
                    return None
                self._condition.wait(min(remaining, self._next_deadline_in(), MAX_WAIT_S))
            return None

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # --- internals (lock held) ---
    def _window(self, stamp_s: float) -> tuple[float, float]:
        end = stamp_s + self.config.offset_s
        return end - self.config.window_s, end

    def _next_deadline_in(self) -> float:
        if not self._pending:
            return 0.05
        oldest = min(p.arrival_s for p in self._pending)
        return max(0.001, oldest + self.config.deadline_s - self.clock())

    def _advance(self) -> None:
        """Move every frame whose audio is complete, or whose deadline passed, on."""
        now, kept = self.clock(), deque()
        for frame in self._pending:
            start, end = self._window(frame.stamp_s)
            complete = self.buffer.covers(end)
            if not complete and now - frame.arrival_s < self.config.deadline_s:
                kept.append(frame)
                continue
            audio = self.buffer.window(start, end)
            self._decide(frame, audio, complete)
        self._pending = kept
        self._condition.notify_all()

    def _decide(self, frame: _Pending, audio: AudioWindow, complete: bool) -> None:
        config = self.config
        if audio.coverage == 0.0:
            self.drops["no_audio" if not self.buffer.started else "audio_missing"] += 1
            return
        whole = complete and audio.coverage >= 0.999
        if not whole and (config.late_policy == "drop" or audio.coverage < config.min_coverage):
            self.drops["audio_late" if not complete else "audio_gap"] += 1
            return
        if len(self._ready) >= config.max_ready:
            self._ready.popleft()
            self.drops["superseded"] += 1
        self._ready.append(
            PairedFrame(frame.payload, frame.stamp_s, frame.arrival_s, audio, padded=not whole)
        )

    def _drop_all_pending(self, reason: str) -> None:
        self.drops[reason] += len(self._pending)
        self._pending.clear()
