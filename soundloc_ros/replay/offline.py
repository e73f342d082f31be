"""Offline replay: the node's own pipeline over a bag, deterministic and faster than real time.

Messages are fed in recording order to the node's FrameScheduler (pairing, deadlines, drop
policy) with the bag's log time as its clock, so a frame waits for its audio exactly as long, in
media time, as it would have on the robot; every paired frame then goes through the node's
FramePipeline (preprocessing, backend, post-processing) as soon as bag time moves on (so the
CameraInfo and ground truth logged with a frame are there when its bearing is computed). No
wall clock is involved: two runs give the same outputs, and the bag plays as fast as inference
allows.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace

from tqdm import tqdm

from soundloc_ros.core.frame_pipeline import FramePipeline
from soundloc_ros.core.image_codec import to_rgb8
from soundloc_ros.core.pairing import FrameScheduler, PairedFrame, PairingConfig
from soundloc_ros.core.pcm import AudioStreamFormat, PcmFormatError
from soundloc_ros.replay.bag import (
    BagSource,
    camera_from_info,
    decode_audio,
    decode_frame,
    decode_mask,
    stamp_key,
    stamp_seconds,
    stream_from_info,
)
from soundloc_ros.replay.scoring import PublishedFrame, ReplayScorer, percentiles

STAGES = ("decode", "audio_wait", "preprocess", "inference", "postprocess", "total")


class _BagClock:
    """The scheduler's clock: the log time of the message being replayed."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


class OfflineReplay:
    def __init__(
        self,
        source: BagSource,
        pipeline: FramePipeline,
        scorer: ReplayScorer,
        pairing: PairingConfig,
        stream: AudioStreamFormat,
    ) -> None:
        self.source, self.pipeline, self.scorer = source, pipeline, scorer
        self.stream = stream  # until the bag's audio_info says otherwise
        self.clock = _BagClock()
        # inference is instantaneous in bag time, so nothing is ever superseded
        window = pipeline.localizer.bundle.audio_frontend.window_seconds
        self.pairing = replace(pairing, window_s=window, max_ready=10_000)
        self.scheduler = FrameScheduler(self.pairing, stream.sample_rate, clock=self.clock)
        self.drops: Counter[str] = Counter()
        self.errors: dict[str, str] = {}  # first message of each kind of refused input
        self.stage_ms: dict[str, list[float]] = {stage: [] for stage in STAGES}
        self._camera = None
        self._frames = 0

    def run(self, progress: bool = True) -> dict[str, object]:
        began = time.perf_counter()
        total = sum(info.count for info in self.source.info.values())
        for message in tqdm(self.source.messages(), total=total, desc="replay", unit="msg",
                            disable=not progress, leave=False):  # fmt: skip
            now_s = message.log_time_ns * 1e-9
            if now_s > self.clock.now_s:  # messages logged together arrive before processing
                self._drain()
                self.clock.now_s = now_s
            self._handle(message.kind, self.source.decode(message))
        self.clock.now_s += self.pairing.deadline_s + 1.0  # the bag ended: decide the rest
        self._drain()
        wall_s = time.perf_counter() - began
        drops = self.drops + self.scheduler.drops
        return {
            "latency_ms": {stage: percentiles(v) for stage, v in self.stage_ms.items() if v},
            "drops": dict(sorted(drops.items())),
            "errors": self.errors,
            "wall_s": round(wall_s, 2),
            "speed_vs_real_time": round(self.source.duration_s / max(wall_s, 1e-9), 2),
        }

    def _refuse(self, reason: str, error: Exception) -> None:
        self.drops[reason] += 1
        self.errors.setdefault(reason, str(error))

    def _handle(self, kind: str, msg) -> None:
        if kind == "image":
            began = time.perf_counter()
            index, self._frames = self._frames, self._frames + 1
            try:
                frame, encoding = decode_frame(msg)
            except ValueError as error:
                self._refuse("bad_image", error)
                return
            decode_ms = (time.perf_counter() - began) * 1e3
            key = stamp_key(msg.header)
            self.scorer.add_frame(index, key, lambda: to_rgb8(frame, encoding))
            self.scheduler.add_frame(stamp_seconds(msg.header), (key, frame, encoding, decode_ms))
        elif kind == "audio":
            try:
                samples = decode_audio(msg, self.stream)
            except (PcmFormatError, ValueError) as error:
                self._refuse("bad_audio", error)
                return
            if samples.size:
                self.scheduler.add_audio(stamp_seconds(msg.header), samples)
        elif kind == "audio_info":
            self._set_stream(msg)
        elif kind == "camera_info":
            self.scorer.camera = self._camera = camera_from_info(msg)
        elif kind == "ground_truth":
            try:
                self.scorer.add_truth(stamp_key(msg.header), decode_mask(msg))
            except ValueError as error:
                self._refuse("bad_ground_truth", error)

    def _set_stream(self, msg) -> None:
        try:
            stream = stream_from_info(msg)
        except (PcmFormatError, ValueError) as error:
            self._refuse("bad_audio_info", error)
            return
        if stream.sample_rate != self.stream.sample_rate:
            self.scheduler.reset_audio(stream.sample_rate)
        self.stream = stream

    def _drain(self) -> None:
        while (paired := self.scheduler.next_frame(timeout_s=0.0)) is not None:
            self._process(paired)

    def _process(self, paired: PairedFrame) -> None:
        key, frame, encoding, decode = paired.payload
        result = self.pipeline.process(
            frame, encoding, paired.audio.samples, self.stream.sample_rate
        )
        bearing = result.bearing(self._camera)
        output = PublishedFrame(result.heatmap, result.mask, bearing, result.peak)
        self.scorer.add_output(key, output)
        stages = {"decode": decode, "audio_wait": (self.clock.now_s - paired.arrival_s) * 1e3}
        stages.update(result.timings_ms)
        stages["total"] = decode + sum(result.timings_ms.values())
        for stage, value in stages.items():
            self.stage_ms[stage].append(value)
