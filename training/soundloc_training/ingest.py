"""`soundloc-ingest BAG... --out DATASET`: the robot's own recordings as unlabeled training data.

Each bag is read in recording order (soundloc_ros.replay.bag) and its frames are paired with
their audio windows by the node's own FrameScheduler, with the bag's log time as its clock, so
training sees exactly the (frame, audio) pairs the node would have localized. Then:
- subsampling: at most `--fps` frames per second are kept (a 30 Hz camera repeats itself);
- silence filter: a frame whose window is quieter than `--silence-db` (the node's no-sound rule)
  teaches nothing about sounding objects and is skipped;
- de-duplication: a frame whose 16x16 grey thumbnail differs from the last kept frame's by less
  than `--dedup` grey levels (mean absolute difference) is skipped: a parked robot records the
  same picture for minutes;
- clips: kept frames are grouped into clips of `--clip-seconds` of bag time. Frames of a clip
  share one audio file (its span plus the window before the first frame) and, as in every
  dataset here, are never each other's negatives; clips are assigned to train or val by a hash of
  (bag, clip), so a resumed or repeated run splits the same way.

Layout (read by `--data bags:DATASET`, loader `datasets/ingested.py`):
    DATASET/frames/<bag>/<clip>_<k>.png    DATASET/audio/<bag>/<clip>.wav (mono, the bag's rate)
    DATASET/manifest.jsonl                 one line per frame and one {"clip_done": ...} per
                                           clip, then one {"bag_done": ...} per bag
Safe to interrupt: every file is written atomically, and a clip's manifest lines are appended
only after its files exist, so the manifest never names a half-written sample; a clip counts as
done only once its clip_done line is written, so a rerun with the same arguments cuts off the
torn end of an interrupted append, skips finished bags and clips and resumes where it stopped.
A message that does not deserialize is skipped, counted and listed; a bag that gives no sample
at all is an error (and not marked done). Ground-truth topics, if the bag has any, are not
read: the dataset is unlabeled by construction.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from soundloc_ros.core.atomic import atomic_write_bytes
from soundloc_ros.core.audio_buffer import AudioRingBuffer
from soundloc_ros.core.features import LogMelConfig, level_dbfs
from soundloc_ros.core.image_codec import to_rgb8
from soundloc_ros.core.pairing import PairingConfig
from soundloc_ros.core.pcm import AudioStreamFormat
from soundloc_ros.replay.bag import (
    BagSource,
    decode_frame,
    stamp_seconds,
)
from soundloc_ros.replay.messages import BagTopics
from soundloc_ros.replay.pairing import BagPairing
from soundloc_training.datasets.ingested import (
    DATASET_FILE,
    FORMAT_VERSION,
    MANIFEST,
    read_manifest,
)
from soundloc_training.jsonfiles import read_json

THUMBNAIL = 16


@dataclass(frozen=True)
class IngestConfig:
    """What decides which samples a dataset holds; stored in dataset.json and checked on resume."""

    fps: float = 2.0
    silence_db: float = -55.0
    dedup: float = 1.0  # mean |grey difference| of 16x16 thumbnails, 0-255; 0 keeps all
    clip_seconds: float = 10.0
    val_percent: float = 10.0
    window_s: float = LogMelConfig().window_seconds
    jitter_margin_s: float = 0.25  # audio kept before each window, for training's time jitter
    audio_offset: float = 0.0
    audio_deadline: float = 0.25
    topics: dict[str, str] = field(default_factory=lambda: asdict(BagTopics()))


@dataclass
class _Clip:
    index: int
    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (stamp, rgb)


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    grey = Image.fromarray(rgb).convert("L").resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX)
    return np.asarray(grey, np.float32)


def split_of(bag: str, clip: int, val_percent: float) -> str:
    digest = hashlib.sha256(f"{bag}/{clip}".encode()).digest()
    return "val" if int.from_bytes(digest[:4], "big") % 10_000 < val_percent * 100 else "train"


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def _png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


class Manifest:
    """The append-only record of what the dataset holds (the only state a resume needs)."""

    def __init__(self, root: Path) -> None:
        self.path = root / MANIFEST
        self.done_bags: set[str] = set()
        self.done_clips: set[tuple[str, int]] = set()
        self.frames = 0
        if self.path.is_file():
            self._read()

    def _read(self) -> None:
        """Take in the finished bags and closed clips; cut off the torn end an interrupted
        append left (its clip is then written again)."""
        complete = 0  # bytes up to the end of the last complete record
        for end, row, frames in read_manifest(self.path):
            complete = end
            if "bag_done" in row:
                self.done_bags.add(row["bag_done"])
            else:
                self.done_clips.add((row["clip_done"], row["clip_index"]))
                self.frames += len(frames)
        if complete != self.path.stat().st_size:
            with open(self.path, "r+b") as file:
                file.truncate(complete)

    def append(self, rows: list[dict]) -> None:
        with open(self.path, "a") as file:
            file.write("".join(json.dumps(row) + "\n" for row in rows))
            file.flush()
            os.fsync(file.fileno())


class BagIngester:
    """One bag -> clips of kept (frame, audio) samples, appended to the dataset."""

    def __init__(self, root: Path, config: IngestConfig, manifest: Manifest) -> None:
        self.root, self.config, self.manifest = root, config, manifest
        self.counts: Counter[str] = Counter()

    def ingest(self, bag: Path) -> dict[str, object]:
        """The bag's counts (kept, and why others were not), with "errors" naming the first
        refusal of each kind and every undecodable message when there were any."""
        config, name = self.config, bag.resolve().name
        self.counts = Counter()
        with BagSource(bag, BagTopics(**config.topics)) as source:
            pairing = PairingConfig(window_s=config.window_s, offset_s=config.audio_offset,
                                    deadline_s=config.audio_deadline, late_policy="drop",
                                    max_ready=10_000)  # fmt: skip
            feed = BagPairing(pairing, AudioStreamFormat(16000, 1, "S16LE"))
            span = config.clip_seconds + config.window_s + config.jitter_margin_s + 5.0
            audio = AudioRingBuffer(feed.stream.sample_rate, capacity_s=span)  # the clips' audio
            state = _BagState(name)
            total = sum(info.count for info in source.info.values())
            for message in tqdm(source.messages(), total=total, desc=name, unit="msg",
                                leave=False):  # fmt: skip
                if message.kind == "ground_truth":
                    continue  # the dataset is unlabeled by construction
                for paired in feed.advance(message.log_time_ns):
                    self._keep_or_skip(paired, state, audio)
                msg = source.decode(message)
                if msg is None:
                    continue  # undecodable: counted and listed by the source
                if message.kind == "audio_info":
                    feed.set_audio_info(msg)
                    if feed.stream.sample_rate != audio.sample_rate:
                        audio = AudioRingBuffer(feed.stream.sample_rate, capacity_s=span)
                elif message.kind == "audio" and (chunk := feed.add_audio(msg)) is not None:
                    audio.push(*chunk)
                    self._flush_if_past(state, chunk[0], audio)
                elif message.kind == "image":
                    self._offer_frame(msg, feed, state)
            for paired in feed.finish():
                self._keep_or_skip(paired, state, audio)
            self._flush(state, audio)
            self.counts.update(feed.refused)
            self.counts.update({f"unpaired_{k}": v for k, v in feed.scheduler.drops.items()})
            self.counts.update(source.drops)
            errors = {**feed.errors, **source.errors}
        return dict(self.counts) | ({"errors": errors} if errors else {})

    def _offer_frame(self, msg, feed: BagPairing, state: _BagState) -> None:
        self.counts["frames_in_bag"] += 1
        stamp = stamp_seconds(msg.header)
        if state.last_offered is not None and stamp - state.last_offered < 1.0 / self.config.fps:
            self.counts["subsampled"] += 1
            return
        try:
            frame, encoding = decode_frame(msg)
        except ValueError:
            self.counts["bad_image"] += 1
            return
        state.last_offered = stamp
        feed.add_frame(msg, to_rgb8(frame, encoding).copy())

    def _flush_if_past(self, state: _BagState, stamp: float, audio: AudioRingBuffer) -> None:
        """Write the open clip once bag time has left its span (its audio is still buffered)."""
        if state.clip is not None and state.clip_index(stamp, self.config) != state.clip.index:
            self._flush(state, audio)

    def _keep_or_skip(self, paired, state: _BagState, audio: AudioRingBuffer) -> None:
        config = self.config
        state.first_stamp = paired.stamp_s if state.first_stamp is None else state.first_stamp
        self._flush_if_past(state, paired.stamp_s, audio)
        if level_dbfs(paired.audio.samples) < config.silence_db:
            self.counts["silent"] += 1
            return
        rgb, small = paired.payload, thumbnail(paired.payload)
        previous = state.last_thumbnail
        if previous is not None and float(np.abs(small - previous).mean()) < config.dedup:
            self.counts["duplicate"] += 1
            return
        state.last_thumbnail = small
        if state.clip is None:
            state.clip = _Clip(state.clip_index(paired.stamp_s, config))
        state.clip.frames.append((paired.stamp_s, rgb))

    def _flush(self, state: _BagState, audio: AudioRingBuffer) -> None:
        """Write the clip's frames and audio, then record them in the manifest."""
        clip, state.clip = state.clip, None
        if clip is None or not clip.frames:
            return
        if (state.bag, clip.index) in self.manifest.done_clips:
            self.counts["already_ingested"] += len(clip.frames)
            return
        config = self.config
        start = clip.frames[0][0] + config.audio_offset - config.window_s - config.jitter_margin_s
        end = clip.frames[-1][0] + config.audio_offset
        window = audio.window(start, end)  # gaps zero-filled, as the node pads
        clip_name = f"{state.bag}/{clip.index:06d}"
        audio_file = Path("audio") / f"{clip_name}.wav"
        _write(self.root / audio_file, _wav_bytes(window.samples, audio.sample_rate))
        split = split_of(state.bag, clip.index, config.val_percent)
        rows = []
        for k, (stamp, rgb) in enumerate(clip.frames):
            image_file = Path("frames") / f"{clip_name}_{k}.png"
            _write(self.root / image_file, _png_bytes(rgb))
            offset = stamp + config.audio_offset - start
            rows.append({"name": f"{state.bag}_{clip.index:06d}_{k}", "bag": state.bag,
                         "clip_index": clip.index, "image": str(image_file),
                         "audio": str(audio_file), "window": [offset - config.window_s, offset],
                         "stamp": stamp, "split": split})  # fmt: skip
        closing = {"clip_done": state.bag, "clip_index": clip.index, "frames": len(rows)}
        self.manifest.append([*rows, closing])
        self.counts["kept"] += len(rows)


@dataclass
class _BagState:
    bag: str
    last_offered: float | None = None
    last_thumbnail: np.ndarray | None = None
    first_stamp: float | None = None  # of the bag's first paired frame: clip 0 starts there
    clip: _Clip | None = None

    def clip_index(self, stamp: float, config: IngestConfig) -> int:
        return int((stamp - self.first_stamp) // config.clip_seconds)


def nothing_kept(bag: Path, counts: dict[str, object], config: IngestConfig) -> str:
    """Why a bag gave no sample at all, and the option that changes it."""
    topics, offered = config.topics, counts.get("frames_in_bag", 0) - counts.get("subsampled", 0)
    if offered == 0:
        why = f"no image on {topics['image']} could be read (name the camera: --image-topic)"
    elif counts.get("silent"):
        why = (f"every frame's audio window is quieter than --silence-db {config.silence_db} "
               "dB (lower it for a quiet microphone)")  # fmt: skip
    elif counts.get("bad_image") == offered:
        why = "no image could be decoded (see bad_image: an encoding soundloc cannot read)"
    else:
        why = (f"no frame was paired with audio from {topics['audio']} (check --audio-topic, "
               "--audio-offset and that the audio covers the frames' stamps)")  # fmt: skip
    return f"no frame of {bag} was kept: {why}; counts {counts}. The bag is not marked done"


def ingest(bags: list[Path], out: Path, config: IngestConfig) -> dict[str, dict[str, object]]:
    """Ingest every bag not yet done; returns counts per bag. ValueError when a bag gives
    no sample (it is not marked done, so a rerun, with other options if need be, tries it
    again: a dataset that holds nothing yet takes new settings)."""
    out.mkdir(parents=True, exist_ok=True)
    names = [bag.resolve().name for bag in bags]
    if len(set(names)) != len(names):
        raise ValueError(f"bags are told apart by directory name; these repeat: {names}")
    record = {"format": "soundloc-ingested", "version": FORMAT_VERSION, "config": asdict(config)}
    record_path = out / DATASET_FILE
    existing = None
    if record_path.is_file():
        existing = read_json(record_path, f"restore it or ingest into a new --out than {out}")
        if existing.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{out} was ingested by another soundloc-ingest (format {existing.get('version')}"
                f", this one writes {FORMAT_VERSION}); ingest into a new --out"
            )
    manifest = Manifest(out)
    holds_samples = bool(manifest.done_clips or manifest.done_bags)
    if existing is not None and holds_samples and existing.get("config") != record["config"]:
        raise ValueError(
            f"{out} was ingested with other settings ({existing.get('config')}); use the "
            "same options to resume or add bags, or a new --out"
        )
    if existing != record:
        atomic_write_bytes(record_path, (json.dumps(record, indent=2) + "\n").encode())
    results = {}
    for bag in bags:
        name = bag.resolve().name
        if name in manifest.done_bags:
            results[name] = {"skipped": "already ingested"}
            continue
        counts = BagIngester(out, config, manifest).ingest(bag)
        if not counts.get("kept") and not counts.get("already_ingested"):
            raise ValueError(nothing_kept(bag, counts, config))
        manifest.append([{"bag_done": name, "counts": counts}])
        results[name] = counts
    return results
