"""TensorRT engine cache and the GPU-free parts of the TensorRT backend.

TensorRT and a GPU cannot exist on CI machines, so the build is a plain callable here and the
version-dependent helpers get stand-in `tensorrt` modules shaped like 8.6, 10.3 and 11.1; the
real backend is exercised by scripts/check_tensorrt.py on GPU machines.
"""

import logging
import multiprocessing
import os
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from soundloc_ros.core.backends import BackendUnavailableError, create_backend, tensorrt
from soundloc_ros.core.backends.engine_cache import MAGIC, EngineCache, EngineKey, pack_engine
from soundloc_ros.core.bundle import BundleError

KEY = EngineKey("ab" * 32, "10.3.0", "Orin (nvgpu)", "8.7", "fp16")


class CountingBuild:
    def __init__(self, plan: bytes = b"plan-bytes") -> None:
        self.plan, self.calls = plan, 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.plan


def test_key_names_every_part_that_makes_an_engine_incompatible():
    names = {
        KEY.file_name,
        replace(KEY, onnx_sha256="cd" * 32).file_name,
        replace(KEY, tensorrt_version="10.4.0").file_name,
        replace(KEY, gpu_name="RTX 4090").file_name,
        replace(KEY, compute_capability="8.9").file_name,
        replace(KEY, precision="fp32").file_name,
    }
    assert len(names) == 6
    assert KEY.file_name == "abababababababab_trt10.3.0_orin-nvgpu_sm87_fp16.engine"


def test_builds_once_then_loads_from_disk(tmp_path):
    build = CountingBuild()
    assert EngineCache(tmp_path).load_or_build(KEY, build) == b"plan-bytes"
    assert EngineCache(tmp_path).load_or_build(KEY, build) == b"plan-bytes"  # a new process
    assert build.calls == 1
    assert (tmp_path / KEY.file_name).is_file()


def test_another_tensorrt_version_rebuilds_and_drops_the_stale_engine(tmp_path):
    cache = EngineCache(tmp_path)
    cache.load_or_build(KEY, CountingBuild(b"old"))
    upgraded = replace(KEY, tensorrt_version="10.4.0")
    build = CountingBuild(b"new")
    assert cache.load_or_build(upgraded, build) == b"new" and build.calls == 1
    assert sorted(p.name for p in tmp_path.glob("*.engine")) == [upgraded.file_name]


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) - 3],  # truncated copy
        lambda data: data[:-1] + b"X",  # flipped byte in the plan
        lambda data: b"garbage",  # not ours at all
        lambda data: pack_engine(replace(KEY, gpu_name="RTX 4090"), b"plan-bytes"),  # renamed
    ],
    ids=["truncated", "bit-flip", "foreign", "other-gpu"],
)
def test_a_damaged_engine_is_rebuilt_with_a_warning(tmp_path, caplog, damage):
    cache = EngineCache(tmp_path)
    cache.load_or_build(KEY, CountingBuild())
    path = tmp_path / KEY.file_name
    path.write_bytes(damage(path.read_bytes()))
    build = CountingBuild()
    with caplog.at_level(logging.WARNING):
        assert cache.load_or_build(KEY, build) == b"plan-bytes"
    assert build.calls == 1
    assert "rebuilding" in caplog.text
    assert cache.load(KEY) == b"plan-bytes"  # and the file was repaired


def test_invalidate_forces_a_rebuild(tmp_path):
    cache = EngineCache(tmp_path)
    cache.load_or_build(KEY, CountingBuild())
    cache.invalidate(KEY)
    build = CountingBuild()
    cache.load_or_build(KEY, build)
    assert build.calls == 1


def _build_in_process(directory: str, log_path: str) -> None:
    def slow_build() -> bytes:
        with open(log_path, "a") as log:
            log.write(f"{os.getpid()}\n")
        time.sleep(1.0)  # long enough for the other process to arrive while this one builds
        return b"built-by-" + str(os.getpid()).encode()

    plan = EngineCache(directory).load_or_build(KEY, slow_build)
    with open(log_path + ".result", "a") as out:
        out.write(plan.decode() + "\n")


def test_two_processes_starting_together_build_once(tmp_path):
    log_path = str(tmp_path / "builds")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_build_in_process, args=(str(tmp_path / "cache"), log_path))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert len(Path(log_path).read_text().split()) == 1  # one build
    results = Path(log_path + ".result").read_text().split()
    assert len(results) == 2 and results[0] == results[1]  # both got that engine


def test_unwritable_cache_builds_in_memory_and_says_how_to_fix_it(tmp_path, caplog):
    if os.geteuid() == 0:  # root ignores permission bits: put the cache under a regular file
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("")
        directory = blocker / "engines"
    else:
        directory = tmp_path / "engines"
        directory.mkdir()
        directory.chmod(0o555)
    build = CountingBuild()
    with caplog.at_level(logging.WARNING):
        assert EngineCache(directory).load_or_build(KEY, build) == b"plan-bytes"
    assert build.calls == 1
    assert "not writable" in caplog.text and "engine_cache_dir" in caplog.text


OTHER_USER = 65534  # nobody: the tests run as root in CI, which may chown


def planted_engine(directory: Path, plan: bytes = b"planted") -> Path:
    """A well-formed engine for KEY (checksum recomputed) that someone else put there."""
    path = directory / KEY.file_name
    path.write_bytes(pack_engine(KEY, plan))
    return path


@pytest.mark.parametrize("permissions", ["world-writable", "group-writable", "other-owner"])
def test_an_untrusted_directory_is_refused_with_the_fix(tmp_path, caplog, permissions):
    directory = tmp_path / "engines"
    directory.mkdir()
    planted_engine(directory)
    if permissions == "other-owner":
        if os.geteuid() != 0:
            pytest.skip("chown to another user needs root")
        os.chown(directory, OTHER_USER, OTHER_USER)
        fix = f"chown {os.geteuid()} {directory}"
    else:
        directory.chmod(0o777 if permissions == "world-writable" else 0o770)
        fix = f"chmod 700 {directory}"
    build = CountingBuild()
    with caplog.at_level(logging.WARNING):
        assert EngineCache(directory).load_or_build(KEY, build) == b"plan-bytes"
    assert build.calls == 1  # built in memory: the planted engine was never read
    assert fix in caplog.text
    assert not (directory / KEY.file_name).with_suffix(".lock").exists()


@pytest.mark.parametrize("planted", ["mode-666", "other-owner", "symlink"])
def test_an_engine_file_others_could_write_is_not_deserialized(tmp_path, caplog, planted):
    cache = EngineCache(tmp_path / "engines")
    assert cache.check_directory() is None
    path = cache.path(KEY)
    if planted == "symlink":
        target = planted_engine(tmp_path)
        path.symlink_to(target)
    else:
        planted_engine(cache.directory)
        if planted == "mode-666":
            path.chmod(0o666)
        elif os.geteuid() == 0:
            os.chown(path, OTHER_USER, OTHER_USER)
        else:
            pytest.skip("chown to another user needs root")
    build = CountingBuild()
    with caplog.at_level(logging.WARNING):
        assert cache.load_or_build(KEY, build) == b"plan-bytes"
    assert build.calls == 1 and "rebuilding" in caplog.text
    assert not path.is_symlink() and cache.load(KEY) == b"plan-bytes"  # replaced by our own
    if planted == "symlink":
        assert target.read_bytes() == pack_engine(KEY, b"planted")  # the link's target untouched


def test_a_symlinked_lock_is_not_followed(tmp_path, caplog):
    cache = EngineCache(tmp_path / "engines")
    cache.check_directory()
    target = tmp_path / "elsewhere" / "created-by-the-node"
    target.parent.mkdir()
    cache.path(KEY).with_suffix(".lock").symlink_to(target)
    build = CountingBuild()
    with caplog.at_level(logging.WARNING):
        assert cache.load_or_build(KEY, build) == b"plan-bytes"
    assert build.calls == 1 and not target.exists()
    assert "engine cache refused" in caplog.text


def test_cache_files_are_private(tmp_path):
    cache = EngineCache(tmp_path / "new" / "engines")
    cache.load_or_build(KEY, CountingBuild())
    assert cache.directory.stat().st_mode & 0o777 == 0o700
    assert cache.path(KEY).stat().st_mode & 0o777 == 0o600
    assert cache.path(KEY).with_suffix(".lock").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("header", [b"[]", b'"key"', b"1", b"null", b"[" * 100_000])
def test_a_header_that_is_json_but_not_an_object_means_a_rebuild(tmp_path, header):
    cache = EngineCache(tmp_path)
    length = len(header).to_bytes(4, "little")
    cache.path(KEY).write_bytes(MAGIC + length + header + b"plan")
    build = CountingBuild()
    assert cache.load_or_build(KEY, build) == b"plan-bytes" and build.calls == 1


def fake_tensorrt(version: str, has_fp16: bool = True) -> SimpleNamespace:
    flags = SimpleNamespace(FP16=1) if has_fp16 else SimpleNamespace()
    return SimpleNamespace(
        __version__=version,
        BuilderFlag=flags,
        NetworkDefinitionCreationFlag=SimpleNamespace(EXPLICIT_BATCH=0),
        TensorIOMode=SimpleNamespace(INPUT="in", OUTPUT="out"),
        nptype=lambda dtype: np.float32,
    )


def test_build_flags_follow_the_tensorrt_generation():
    assert tensorrt.network_flags(fake_tensorrt("8.6.1")) == 1  # EXPLICIT_BATCH for 8.x
    assert tensorrt.network_flags(fake_tensorrt("10.3.0")) == 0
    assert tensorrt.network_flags(fake_tensorrt("11.1.0", has_fp16=False)) == 0


def test_fp16_needs_the_builder_flag_or_an_fp16_onnx(caplog):
    assert tensorrt.effective_precision(fake_tensorrt("10.3.0"), "fp16", "float32") == "fp16"
    assert tensorrt.effective_precision(fake_tensorrt("10.3.0"), "fp32", "float32") == "fp32"
    trt11 = fake_tensorrt("11.1.0", has_fp16=False)
    with caplog.at_level(logging.WARNING):
        assert tensorrt.effective_precision(trt11, "fp16", "float32") == "fp32"
    assert "strongly typed" in caplog.text
    assert tensorrt.effective_precision(trt11, "fp16", "float16") == "fp16"
    with pytest.raises(ValueError, match="precision"):
        tensorrt.effective_precision(trt11, "int8", "float32")


class FakeEngine:
    """The name-based I/O introspection of an ICudaEngine (TensorRT 8.5 to 11.x)."""

    def __init__(self, tensors: dict[str, tuple[tuple[int, ...], str]]) -> None:
        self.tensors = tensors
        self.num_io_tensors = len(tensors)

    def get_tensor_name(self, index):
        return list(self.tensors)[index]

    def get_tensor_mode(self, name):
        return self.tensors[name][1]

    def get_tensor_shape(self, name):
        return self.tensors[name][0]

    def get_tensor_dtype(self, name):
        return "float"


def test_engine_io_is_checked_against_the_bundle(tiny_bundle):
    trt = fake_tensorrt("10.3.0")
    good = {
        "image": ((1, 3, 8, 8), "in"),
        "audio": ((1, 1, 64, 97), "in"),
        "heatmap": ((1, 1, 2, 2), "out"),
    }
    io = tensorrt.check_engine_io(FakeEngine(good), trt, tiny_bundle)
    assert io["heatmap"] == ((1, 1, 2, 2), np.dtype(np.float32), False)
    renamed = {("score" if name == "heatmap" else name): v for name, v in good.items()}
    with pytest.raises(BundleError, match="no tensor 'heatmap'"):
        tensorrt.check_engine_io(FakeEngine(renamed), trt, tiny_bundle)
    wrong = {**good, "heatmap": ((1, 1, 4, 4), "out")}
    with pytest.raises(BundleError, match="bundle.json says"):
        tensorrt.check_engine_io(FakeEngine(wrong), trt, tiny_bundle)


def test_without_tensorrt_auto_runs_onnx_runtime_and_strict_mode_says_why(tiny_bundle, caplog):
    assert "TensorRT Python bindings are not installed" in tensorrt.unavailable_reason()
    with caplog.at_level(logging.INFO):
        assert create_backend(tiny_bundle, "auto").name == "onnxruntime"
    assert "TensorRT is not used" in caplog.text
    assert create_backend(tiny_bundle, "tensorrt").name == "onnxruntime"  # fallback
    with pytest.raises(BackendUnavailableError, match="python3-libnvinfer"):
        create_backend(tiny_bundle, "tensorrt", fallback=False)
    with pytest.raises(ValueError, match="backend must be one of"):
        create_backend(tiny_bundle, "openvino")
