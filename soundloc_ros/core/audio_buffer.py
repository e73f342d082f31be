"""A time-indexed ring buffer of mono audio: chunks in (stamped), windows out (by time).

Microphone chunks arrive with a stamp for their first sample, but the stamps jitter (they are
taken when a driver wakes up) while the sample count is exact. So consecutive chunks are laid end
to end on one sample timeline as long as their stamp agrees with the end of the previous chunk
within `jitter_s`; beyond that the stamp wins:

- stamp later than expected: samples were lost; the gap stays marked missing (zeros), so a window
  over it reports coverage < 1 instead of silently shifting the audio;
- stamp earlier than expected but inside the buffer: a late (out-of-order) chunk or an overlap;
  its samples are written where they belong and fill what was missing;
- stamp more than `backward_reset_s` before the newest audio, or further ahead than the whole
  capacity: either time jumped (a bag started over, the clock was reset) or this one stamp is
  wrong (a driver glitch). One chunk cannot tell, so it is held back: when the next chunk
  continues the held one, time jumped, the buffer restarts with both and RESET is returned so
  the caller can warn; when the next chunk continues the old timeline instead, the held chunk's
  stamp was a glitch, its samples are laid end to end by count and GLITCH is returned. Either
  way no audio is lost, and one bad stamp no longer throws away the frames waiting for audio.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np


class ChunkEvent(enum.Enum):
    APPENDED = "appended"  # contiguous with the previous chunk (within jitter)
    GAP = "gap"  # some audio before this chunk never arrived
    LATE = "late"  # out of order or overlapping: written into its place
    TOO_OLD = "too_old"  # entirely before the buffer's memory: ignored
    HELD = "held"  # the stamp jumped: kept back until the next chunk confirms or refutes it
    GLITCH = "glitch"  # the held chunk's stamp was wrong: laid end to end; this one stored
    RESET = "reset"  # time jumped (two chunks agree); the buffer started over with them
    STARTED = "started"  # first chunk


@dataclass(frozen=True)
class AudioWindow:
    samples: np.ndarray  # float32 [n], zeros where audio is missing
    coverage: float  # fraction of the window's samples that arrived


class AudioRingBuffer:
    def __init__(
        self,
        sample_rate: int,
        capacity_s: float = 5.0,
        jitter_s: float = 0.02,
        backward_reset_s: float = 1.0,
    ) -> None:
        if sample_rate <= 0 or capacity_s <= 0:
            raise ValueError("sample_rate and capacity_s must be positive")
        self.sample_rate = sample_rate
        self.capacity = round(capacity_s * sample_rate)
        self.jitter = round(jitter_s * sample_rate)
        self.backward_reset = round(backward_reset_s * sample_rate)
        self._samples = np.zeros(self.capacity, np.float32)
        self._valid = np.zeros(self.capacity, bool)
        self._origin_s: float | None = None  # time of sample index 0
        self._end = 0  # absolute index one past the newest sample
        self._held: tuple[float, np.ndarray] | None = None  # (stamp, samples) of a jumped chunk

    @property
    def started(self) -> bool:
        return self._origin_s is not None

    @property
    def end_time(self) -> float | None:
        """Time just after the newest sample (None before the first chunk)."""
        return None if self._origin_s is None else self._origin_s + self._end / self.sample_rate

    @property
    def start_time(self) -> float | None:
        """Time of the oldest sample still held."""
        if self._origin_s is None:
            return None
        return self._origin_s + max(0, self._end - self.capacity) / self.sample_rate

    def reset(self) -> None:
        self._samples[:] = 0
        self._valid[:] = False
        self._origin_s, self._end, self._held = None, 0, None

    def _index(self, stamp_s: float) -> int:
        assert self._origin_s is not None
        return math.floor((stamp_s - self._origin_s) * self.sample_rate + 0.5)

    def push(self, stamp_s: float, samples: np.ndarray) -> ChunkEvent:
        """Store a chunk whose first sample was taken at `stamp_s` (seconds)."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._origin_s is None:
            self._origin_s, self._end = stamp_s, 0
            self._write(0, samples)
            return ChunkEvent.STARTED
        if self._held is not None:
            return self._resolve_held(stamp_s, samples)
        start = self._index(stamp_s)
        offset = start - self._end
        if abs(offset) <= self.jitter:
            event, start = ChunkEvent.APPENDED, self._end  # trust the sample count
        elif self._jumped(offset):
            self._held = (stamp_s, samples)
            return ChunkEvent.HELD
        elif offset > 0:
            event = ChunkEvent.GAP
        elif start + len(samples) <= self._end - self.capacity:
            return ChunkEvent.TOO_OLD
        else:
            event = ChunkEvent.LATE
        self._write(start, samples)
        return event

    def _jumped(self, offset: int) -> bool:
        return offset > self.capacity or offset < -self.backward_reset

    def _resolve_held(self, stamp_s: float, samples: np.ndarray) -> ChunkEvent:
        """The chunk after a jumped one decides: a real jump, or one wrong stamp."""
        held_stamp, held = self._held
        self._held = None
        held_end = held_stamp + len(held) / self.sample_rate
        if abs(stamp_s - held_end) * self.sample_rate <= self.jitter:  # continues the held one
            self.reset()
            self.push(held_stamp, held)
            self.push(stamp_s, samples)
            return ChunkEvent.RESET
        self._write(self._end, held)  # a glitched stamp: its samples follow the previous chunk
        event = self.push(stamp_s, samples)
        return ChunkEvent.GLITCH if event is not ChunkEvent.HELD else event

    def _write(self, start: int, samples: np.ndarray) -> None:
        end = start + len(samples)
        if end > self._end:  # everything between the old end and `start` is a gap
            gap = np.arange(self._end, max(self._end, start))
            self._samples[gap % self.capacity] = 0
            self._valid[gap % self.capacity] = False
            self._end = end
        first = max(start, self._end - self.capacity)  # older samples no longer fit
        index = np.arange(first, end) % self.capacity
        self._samples[index] = samples[first - start :]
        self._valid[index] = True

    def covers(self, end_s: float) -> bool:
        """Has audio up to `end_s` arrived (or been skipped over)?"""
        return self._origin_s is not None and self._index(end_s) <= self._end

    def window(self, start_s: float, end_s: float) -> AudioWindow:
        """Samples in [start_s, end_s): zeros (and lower coverage) where none arrived."""
        if self._origin_s is None:
            n = max(0, round((end_s - start_s) * self.sample_rate))
            return AudioWindow(np.zeros(n, np.float32), 0.0)
        first, last = self._index(start_s), self._index(end_s)
        index = np.arange(first, last)
        held = (index >= max(0, self._end - self.capacity)) & (index < self._end)
        out = np.zeros(len(index), np.float32)
        ring = index[held] % self.capacity
        valid = self._valid[ring]
        out[np.flatnonzero(held)[valid]] = self._samples[ring[valid]]
        coverage = float(valid.sum()) / len(index) if len(index) else 0.0
        return AudioWindow(out, coverage)
