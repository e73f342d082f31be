"""The TensorRT engine cache: build once per robot, reuse at every start, never trust a bad file.

An engine is only valid for the ONNX it was built from, the TensorRT version, the GPU (name and
compute capability) and the precision; all five form the key and the file name, so upgrading
TensorRT or moving the SD card to another robot simply misses the cache and rebuilds. Each file
starts with a small header (the key and the plan's sha256), so a truncated or foreign file is
detected before TensorRT sees it. Files are written atomically; concurrent starts (two nodes, or
a node and a provisioning script) serialize on a lock file, and the second one reuses the first
one's engine instead of building again. A read-only cache directory is survivable: the engine is
built in memory and the log says how to make the next start fast.

No TensorRT import here: the build is a callable, so all of this is tested on machines without
a GPU.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from soundloc_ros.core.atomic import atomic_write_bytes

MAGIC = b"SOUNDLOC-TRT\x00\x01"  # format of the wrapper, not of the plan inside
_LENGTH = struct.Struct("<I")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "8.7" on Orin
    precision: str  # "fp16" or "fp32"

    @property
    def file_name(self) -> str:
        gpu = re.sub(r"[^A-Za-z0-9]+", "-", self.gpu_name).strip("-").lower() or "gpu"
        return (
            f"{self.onnx_sha256[:16]}_trt{self.tensorrt_version}_{gpu}"
            f"_sm{self.compute_capability.replace('.', '')}_{self.precision}.engine"
        )


def pack_engine(key: EngineKey, plan: bytes) -> bytes:
    """Header (key + checksum of the plan) followed by the serialized TensorRT plan."""
    header = json.dumps(
        {"key": asdict(key), "plan_sha256": hashlib.sha256(plan).hexdigest(), "size": len(plan)}
    ).encode()
    return MAGIC + _LENGTH.pack(len(header)) + header + plan


def unpack_engine(data: bytes, key: EngineKey) -> bytes:
    """The plan inside `data`; ValueError saying why when it is not a valid engine for `key`."""
    if not data.startswith(MAGIC):
        raise ValueError("not a soundloc engine file (bad magic)")
    offset = len(MAGIC) + _LENGTH.size
    if len(data) < offset:
        raise ValueError("truncated header")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    try:
        header = json.loads(data[offset : offset + length])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("unreadable header") from None
    if header.get("key") != asdict(key):
        raise ValueError(f"built for {header.get('key')}, not for {asdict(key)}")
    plan = data[offset + length :]
    if len(plan) != header.get("size") or hashlib.sha256(plan).hexdigest() != header.get(
        "plan_sha256"
    ):
        raise ValueError(f"plan is {len(plan)} bytes and fails its checksum (truncated or damaged)")
    return plan


class EngineCache:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).expanduser()

    def path(self, key: EngineKey) -> Path:
        return self.directory / key.file_name

    def load(self, key: EngineKey) -> bytes | None:
        """The cached plan for `key`, or None (missing, or invalid: then it is logged)."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            log.warning("cannot read cached engine %s (%s); rebuilding", path, error)
            return None
        try:
            return unpack_engine(data, key)
        except ValueError as why:
            log.warning("cached engine %s is unusable (%s); rebuilding it", path, why)
            return None

    def load_or_build(self, key: EngineKey, build: Callable[[], bytes]) -> bytes:
        """The plan for `key`: from the cache, or built (once, across processes) and stored."""
        plan = self.load(key)
        if plan is not None:
            return plan
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock = open(self.path(key).with_suffix(".lock"), "a+b")  # noqa: SIM115 - held below
        except OSError as error:
            log.warning(
                "engine cache %s is not writable (%s): building the engine in memory, which "
                "repeats at every start; point engine_cache_dir at a writable directory",
                self.directory,
                error,
            )
            return build()
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building this very key
            plan = self.load(key)
            if plan is None:
                plan = build()
                self.store(key, plan)
                self._remove_stale(key)
            return plan

    def store(self, key: EngineKey, plan: bytes) -> None:
        try:
            atomic_write_bytes(self.path(key), pack_engine(key, plan))
        except OSError as error:
            log.warning("could not write engine cache %s (%s)", self.path(key), error)

    def invalidate(self, key: EngineKey) -> None:
        """Drop an engine that passed its checksum but TensorRT still refused to load."""
        self.path(key).unlink(missing_ok=True)

    def _remove_stale(self, key: EngineKey) -> None:
        """Engines of the same model for another TensorRT, GPU or precision on this machine are
        dead weight once a new one is built (a robot has one GPU and one TensorRT)."""
        prefix = key.onnx_sha256[:16] + "_"
        for other in self.directory.glob(prefix + "*.engine"):
            if other.name != key.file_name and key.precision in other.name:
                other.unlink(missing_ok=True)
