"""The TensorRT engine cache: build once per robot, reuse at every start, never trust a bad file.

An engine is only valid for the ONNX it was built from, the TensorRT version, the GPU (name and
compute capability) and the precision; all five form the key and the file name, so upgrading
TensorRT or moving the SD card to another robot simply misses the cache and rebuilds. Each file
starts with a small header (the key and the plan's sha256), so a truncated or foreign file is
detected before TensorRT sees it. Files are written atomically; concurrent starts (two nodes, or
a node and a provisioning script) serialize on a lock file, and the second one reuses the first
one's engine instead of building again. A read-only cache directory is survivable: the engine is
built in memory and the log says how to make the next start fast.

A TensorRT plan is code-adjacent data (deserializing a crafted one is as good as running it), and
its checksum only catches damage, not a writer who recomputes it. So the cache is trusted the way
ssh trusts ~/.ssh: only a directory owned by this user and writable by nobody else is used
(created 0700, files 0600), engine and lock files are never followed through a symlink, and any
other directory is refused with the chmod/chown that fixes it, the engine then built in memory.

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
import stat
import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from soundloc_ros.core.atomic import atomic_write_bytes

MAGIC = b"SOUNDLOC-TRT\x00\x01"  # format of the wrapper, not of the plan inside
_LENGTH = struct.Struct("<I")
MAX_HEADER_BYTES = 64 * 1024  # ours are ~300 bytes
MAX_ENGINE_BYTES = 4 << 30  # far above any engine of a sound localizer (ours: tens of MB)
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
    if length > MAX_HEADER_BYTES:
        raise ValueError(f"header of {length} bytes is over {MAX_HEADER_BYTES}")
    try:
        header = json.loads(data[offset : offset + length])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError("unreadable header") from None
    if not isinstance(header, dict):
        raise ValueError(f"unreadable header (a JSON {type(header).__name__}, not an object)")
    if header.get("key") != asdict(key):
        raise ValueError(f"built for {header.get('key')}, not for {asdict(key)}")
    plan = data[offset + length :]
    if len(plan) != header.get("size") or hashlib.sha256(plan).hexdigest() != header.get(
        "plan_sha256"
    ):
        raise ValueError(f"plan is {len(plan)} bytes and fails its checksum (truncated or damaged)")
    return plan


def untrusted_reason(status: os.stat_result, what: str) -> str | None:
    """Why a cache directory or file may not be trusted (None when it may), with the fix."""
    uid = os.geteuid()
    if status.st_uid != uid:
        return f"{what} is owned by uid {status.st_uid}, not by this user: chown {uid} {what}"
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        mode = "700" if stat.S_ISDIR(status.st_mode) else "600"
        return (
            f"{what} is writable by others (mode {stat.S_IMODE(status.st_mode):o}): "
            f"chmod {mode} {what}"
        )
    return None


def read_private_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of this user's that nobody else can write; OSError or
    ValueError saying why not. A symlink is refused rather than followed."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "rb") as stream:
        status = os.fstat(stream.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise ValueError("not a regular file")
        reason = untrusted_reason(status, str(path))
        if reason:
            raise ValueError(reason)
        if status.st_size > limit:
            raise ValueError(f"{status.st_size} bytes, over the {limit}-byte limit")
        return stream.read(limit + 1)


class EngineCache:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).expanduser()

    def path(self, key: EngineKey) -> Path:
        return self.directory / key.file_name

    def check_directory(self) -> str | None:
        """Create the directory (0700) if missing; why it may not hold engines, or None."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            return untrusted_reason(self.directory.resolve().stat(), str(self.directory))
        except OSError as error:
            return f"{self.directory} is not writable ({error})"

    def load(self, key: EngineKey) -> bytes | None:
        """The cached plan for `key`, or None (missing, or invalid: then it is logged)."""
        path = self.path(key)
        try:
            data = read_private_file(path, MAX_ENGINE_BYTES + MAX_HEADER_BYTES)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:  # a symlink fails O_NOFOLLOW with ELOOP
            log.warning("cannot use cached engine %s (%s); rebuilding it", path, error)
            return None
        try:
            return unpack_engine(data, key)
        except ValueError as why:
            log.warning("cached engine %s is unusable (%s); rebuilding it", path, why)
            return None

    def load_or_build(self, key: EngineKey, build: Callable[[], bytes]) -> bytes:
        """The plan for `key`: from the cache, or built (once, across processes) and stored."""
        refused = self.check_directory()
        if refused is None:
            plan = self.load(key)
            if plan is not None:
                return plan
            try:
                lock = self._open_lock(key)
            except OSError as error:
                refused = f"{self.directory} is not writable ({error})"
        if refused is not None:
            log.warning(
                "engine cache refused: %s. Building the engine in memory, which repeats at every "
                "start; fix the directory or point engine_cache_dir at a private one",
                refused,
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

    def _open_lock(self, key: EngineKey):
        """The lock file, 0600, never through a symlink (one could point anywhere)."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
        return os.fdopen(os.open(self.path(key).with_suffix(".lock"), flags, 0o600), "r+b")

    def store(self, key: EngineKey, plan: bytes) -> None:
        try:
            atomic_write_bytes(self.path(key), pack_engine(key, plan), mode=0o600)
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
