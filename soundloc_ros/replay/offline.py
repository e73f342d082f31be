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

import math
import time
from collections import Counter
from dataclasses import replace

from tqdm import tqdm

from soundloc_ros.core.frame_pipeline import SILENCE, FramePipeline
from soundloc_ros.core.image_codec import to_rgb8
from soundloc_ros.core.pairing import PairedFrame, PairingConfig
from soundloc_ros.core.pcm import AudioStreamFormat
from soundloc_ros.replay.bag import (
    BagSource,
    camera_from_info,
    decode_frame,
    decode_mask,
    stamp_key,
)
from soundloc_ros.replay.pairing import BagPairing
from soundloc_ros.replay.scoring import PublishedFrame, ReplayScorer, percentiles

STAGES = ("decode", "audio_wait", "preprocess", "inference", "postprocess", "total")


class OfflineReplay:
    def __init__(
        self,
        source: BagSource,
        pipeline: FramePipeline,
        scorer: ReplayScorer,
        pairing: PairingConfig,
        stream: AudioStreamFormat,
        rectified: bool = False,
    ) -> None:
        """rectified: the bag's images are rectified (the node's `rectified`)."""
        self.source, self.pipeline, self.scorer = source, pipeline, scorer
        self.rectified = rectified
        # inference is instantaneous in bag time, so nothing is ever superseded
        window = pipeline.predictor.bundle.audio_frontend.window_seconds
        self.bag = BagPairing(replace(pairing, window_s=window, max_ready=10_000), stream)
        self.drops: Counter[str] = Counter()  # bad_image, bad_camera_info, bad_ground_truth
        self.errors: dict[str, str] = {}
        self.stage_ms: dict[str, list[float]] = {stage: [] for stage in STAGES}
        self._camera = None
        self._frames = 0

    def run(self, progress: bool = True) -> dict[str, object]:
        began = time.perf_counter()
        total = sum(info.count for info in self.source.info.values())
        for message in tqdm(self.source.messages(), total=total, desc="replay", unit="msg",
                            disable=not progress, leave=False):  # fmt: skip
            for paired in self.bag.advance(message.log_time_ns):
                self._process(paired)
            if (msg := self.source.decode(message)) is not None:  # else counted by the source
                self._handle(message.kind, msg)
        for paired in self.bag.finish():
            self._process(paired)
        wall_s = time.perf_counter() - began
        drops = self.drops + self.bag.drops + self.source.drops
        return {
            "latency_ms": {stage: percentiles(v) for stage, v in self.stage_ms.items() if v},
            "drops": dict(sorted(drops.items())),
            "errors": {**self.bag.errors, **self.errors, **self.source.errors},
            "wall_s": round(wall_s, 2),
            "speed_vs_real_time": round(self.source.duration_s / max(wall_s, 1e-9), 2),
        }

    def _refuse(self, reason: str, error: Exception) -> None:
        self.drops[reason] += 1
        self.errors.setdefault(reason, str(error))  # first message of each kind of refusal

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
            self.bag.add_frame(msg, (key, frame, encoding, decode_ms))
        elif kind == "audio":
            self.bag.add_audio(msg)
        elif kind == "audio_info":
            self.bag.set_audio_info(msg)
        elif kind == "camera_info":
            try:
                camera = camera_from_info(msg, self.rectified)
            except ValueError as error:
                self._refuse("bad_camera_info", error)
                camera = None
            self.scorer.camera = self._camera = camera
        elif kind == "ground_truth":
            try:
                self.scorer.add_truth(stamp_key(msg.header), decode_mask(msg))
            except ValueError as error:
                self.scorer.refuse_truth()
                self._refuse("bad_ground_truth", error)
        elif kind == "label":
            self.scorer.add_label(str(msg.data))

    def _process(self, paired: PairedFrame) -> None:
        key, frame, encoding, decode = paired.payload
        rate = self.bag.stream.sample_rate
        result = self.pipeline.process(frame, encoding, paired.audio.samples, rate)
        bearing = result.bearing(self._camera)
        score = -math.inf if result.no_source == SILENCE else result.score
        output = PublishedFrame(result.heatmap, result.mask, bearing, result.peak, score)
        self.scorer.add_output(key, output)
        stages = {"decode": decode, "audio_wait": (self.bag.clock.now_s - paired.arrival_s) * 1e3}
        stages.update(result.timings_ms)
        stages["total"] = decode + sum(result.timings_ms.values())
        for stage, value in stages.items():
            self.stage_ms[stage].append(value)
