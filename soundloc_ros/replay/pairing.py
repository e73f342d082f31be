"""A bag's microphone and frames through the node's FrameScheduler, in bag time.

Offline replay and `soundloc-ingest` both pair a recording's frames with their audio exactly as
the node would: the scheduler's clock is the log time of the message being read, so a frame
waits for its audio as long, in media time, as it did on the robot. Messages logged at the same
instant all arrive before the frames they complete are handed out (`advance`), and the end of
the bag lets every waiting frame meet its deadline (`finish`).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from soundloc_ros.core.pairing import FrameScheduler, PairedFrame, PairingConfig
from soundloc_ros.core.pcm import AudioStreamFormat, PcmFormatError
from soundloc_ros.replay.bag import decode_audio, stamp_seconds, stream_from_info


class _BagClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


class BagPairing:
    def __init__(self, pairing: PairingConfig, stream: AudioStreamFormat) -> None:
        """`stream`: the audio format until the bag's AudioInfo says otherwise."""
        self.pairing, self.stream = pairing, stream
        self.clock = _BagClock()
        self.scheduler = FrameScheduler(pairing, stream.sample_rate, clock=self.clock)
        self.refused: Counter[str] = Counter()  # bad_audio, bad_audio_info
        self.errors: dict[str, str] = {}  # the first message of each kind of refusal

    def advance(self, log_time_ns: int) -> list[PairedFrame]:
        """Bag time moves to this message's; returns the frames paired before it."""
        now_s = log_time_ns * 1e-9
        ready = self.drain() if now_s > self.clock.now_s else []
        self.clock.now_s = max(now_s, self.clock.now_s)
        return ready

    def add_frame(self, msg, payload) -> None:
        self.scheduler.add_frame(stamp_seconds(msg.header), payload)

    def add_audio(self, msg) -> tuple[float, np.ndarray] | None:
        """Decode and buffer one AudioDataStamped; returns (first-sample stamp, mono samples)."""
        try:
            samples = decode_audio(msg, self.stream)
        except (PcmFormatError, ValueError) as error:
            self.refuse("bad_audio", error)
            return None
        if not samples.size:
            return None
        stamp = stamp_seconds(msg.header)
        self.scheduler.add_audio(stamp, samples)
        return stamp, samples

    def set_audio_info(self, msg) -> None:
        try:
            stream = stream_from_info(msg)
        except (PcmFormatError, ValueError) as error:
            self.refuse("bad_audio_info", error)
            return
        if stream.sample_rate != self.stream.sample_rate:
            self.scheduler.reset_audio(stream.sample_rate)
        self.stream = stream

    def refuse(self, reason: str, error: Exception) -> None:
        self.refused[reason] += 1
        self.errors.setdefault(reason, str(error))

    def drain(self) -> list[PairedFrame]:
        ready = []
        while (paired := self.scheduler.next_frame(timeout_s=0.0)) is not None:
            ready.append(paired)
        return ready

    def finish(self) -> list[PairedFrame]:
        """The bag ended: every waiting frame meets its deadline and is decided."""
        self.clock.now_s += self.pairing.deadline_s + 1.0
        return self.drain()

    @property
    def drops(self) -> Counter[str]:
        return self.refused + self.scheduler.drops
