"""Feed the hostile inputs an outside probe found (issue 19) through the package's entry points
and count what happened to each: refused with a message, crashed, hung, accepted, or lost data.

    .venv/bin/python scripts/probe_hostile_input.py            # prints one JSON object

Only entry points that every version of the package has are used (decoders, the audio buffer
behind the scheduler, the engine cache, load_bundle + create_backend, the soundloc_bundle and
soundloc-export commands), so the same probe measures a checkout before and after a fix:
`PYTHONPATH=OLD:OLD/training .venv/bin/python scripts/probe_hostile_input.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from soundloc_ros.core.backends import create_backend
from soundloc_ros.core.backends.engine_cache import EngineCache, EngineKey, pack_engine
from soundloc_ros.core.bundle import load_bundle
from soundloc_ros.core.image_codec import decode_image
from soundloc_ros.core.pairing import FrameScheduler, PairingConfig
from soundloc_ros.core.pcm import AudioStreamFormat
from soundloc_ros.replay.bag import decode_audio

HANG_S = 30.0  # a command starting up (torch imports) takes seconds on a loaded machine
KEY = EngineKey("ab" * 32, "10.3.0", "Orin", "8.7", "fp16")


def outcome(probe: Callable[[], str]) -> str:
    """refused | accepted | lost | nothing lost | code ran | crash | hang: what one input did."""
    began = time.monotonic()
    try:
        verdict = probe()
    except (ValueError, RuntimeError, OSError) as error:  # the package's refusal types
        verdict = "refused" if "Traceback" not in str(error) else "crash"
    except Exception:  # MemoryError, AttributeError, ...: the process would have died
        verdict = "crash"
    return "hang" if time.monotonic() - began > HANG_S else verdict


def image_probes() -> dict[str, Callable[[], str]]:
    def decode(height: int, width: int, step: int) -> Callable[[], str]:
        def probe() -> str:
            image = decode_image(b"", height, width, "rgb8", step, False)
            from PIL import Image  # what the node does next: resize for the model

            Image.fromarray(np.ascontiguousarray(image)).resize((224, 224))
            return "accepted"

        return probe

    return {
        "image 2^29 x 0, step 0": decode(2**29, 0, 0),
        "image 0 x 640": decode(0, 640, 1920),
        "image 480 x 0": decode(480, 0, 0),
    }


def audio_probes() -> dict[str, Callable[[], str]]:
    def info(rate: int, channels: int) -> Callable[[], str]:
        def probe() -> str:
            stream = AudioStreamFormat.from_info("wave", "S16LE", channels, rate)
            FrameScheduler(PairingConfig(), stream.sample_rate)  # the node's buffer for it
            return "accepted"

        return probe

    def nan_chunk() -> str:
        samples = np.zeros(320, np.float32)
        samples[10] = np.nan
        msg = SimpleNamespace(audio=SimpleNamespace(data=samples.tobytes()))
        decode_audio(msg, AudioStreamFormat(16000, 1, "F32LE"))
        return "accepted"

    return {
        "AudioInfo sample_rate 4e9": info(4_000_000_000, 1),
        "AudioInfo sample_rate 20 MHz": info(20_000_000, 1),
        "AudioInfo channels 255": info(16000, 255),
        "F32LE chunk with NaN": nan_chunk,
        "one glitched audio stamp": glitched_stamp,
    }


def glitched_stamp() -> str:
    """2 s of 100 ms chunks, a frame for each from 0.5 s on; chunk 9's stamp is 0."""
    pairs = FrameScheduler(PairingConfig(window_s=0.5, deadline_s=0.2), 1000, clock=lambda: 0.0)
    paired = 0
    for k in range(20):
        pairs.add_audio(0.0 if k == 9 else 10.0 + 0.1 * k, np.zeros(100, np.float32))
        if k >= 5:
            pairs.add_frame(10.05 + 0.1 * k, k)
        while pairs.next_frame(timeout_s=0.0) is not None:
            paired += 1
    return "nothing lost" if paired == 15 else "lost"


def engine_probes(root: Path) -> dict[str, Callable[[], str]]:
    def planted(setup: Callable[[Path], None]) -> Callable[[], str]:
        def probe() -> str:
            directory = Path(tempfile.mkdtemp(dir=root))
            setup(directory)
            plan = EngineCache(directory).load_or_build(KEY, lambda: b"built here")
            return "accepted" if plan == b"planted" else "refused"

        return probe

    def world_writable(directory: Path) -> None:
        (directory / KEY.file_name).write_bytes(pack_engine(KEY, b"planted"))
        directory.chmod(0o777)

    def other_owner(directory: Path) -> None:
        path = directory / KEY.file_name
        path.write_bytes(pack_engine(KEY, b"planted"))
        path.chmod(0o666)
        if os.geteuid() == 0:
            os.chown(path, 65534, 65534)

    def symlink(directory: Path) -> None:
        target = root / f"elsewhere-{directory.name}"
        target.write_bytes(pack_engine(KEY, b"planted"))
        (directory / KEY.file_name).symlink_to(target)

    def not_an_object(directory: Path) -> None:
        header = b"[]"
        (directory / KEY.file_name).write_bytes(
            pack_engine(KEY, b"")[:14] + len(header).to_bytes(4, "little") + header
        )

    return {
        "engine: replaced plan in a world-writable dir": planted(world_writable),
        "engine: mode-666 file of another user": planted(other_owner),
        "engine: symlinked engine file": planted(symlink),
        "engine: header JSON not an object": planted(not_an_object),
    }


def bundle_probes(root: Path) -> dict[str, Callable[[], str]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))
    import onnx
    from tiny_bundle import tiny_onnx, write_tiny_bundle

    def lying() -> str:
        directory = root / "lying"
        write_tiny_bundle(directory)
        model = onnx.load_from_string(tiny_onnx())
        model.graph.node[1].attribute[0].ints[:] = [2, 2]  # the graph computes 4x4, says 2x2
        model.graph.node[1].attribute[1].ints[:] = [2, 2]
        data = model.SerializeToString()
        (directory / "model.onnx").write_bytes(data)
        _rewrite_sha(directory, data)
        backend = create_backend(load_bundle(directory), "onnxruntime")
        return "accepted" if backend is not None else "refused"

    def cli(corrupt: Callable[[Path], None]) -> Callable[[], str]:
        def probe() -> str:
            directory = Path(tempfile.mkdtemp(dir=root))
            write_tiny_bundle(directory)
            corrupt(directory)
            result = subprocess.run([sys.executable, "-m", "soundloc_ros.bundle_cli",
                                     str(directory)], capture_output=True, text=True)  # fmt: skip
            if "Traceback" in result.stderr:
                return "crash"
            return "refused" if result.returncode != 0 else "accepted"

        return probe

    def deep(directory: Path) -> None:
        (directory / "bundle.json").write_text("[" * 100_000 + "]" * 100_000)

    def lying_cli(directory: Path) -> None:
        model = onnx.load_from_string(tiny_onnx())
        model.graph.output[0].type.tensor_type.shape.dim[2].dim_value = 3
        data = model.SerializeToString()
        (directory / "model.onnx").write_bytes(data)
        _rewrite_sha(directory, data)

    return {
        "bundle: graph computes another output shape": lying,
        "soundloc_bundle: output shape differs from bundle.json": cli(lying_cli),
        "soundloc_bundle: deeply nested bundle.json": cli(deep),
    }


def _rewrite_sha(directory: Path, data: bytes) -> None:
    import hashlib

    path = directory / "bundle.json"
    values = json.loads(path.read_text())
    values["model"]["sha256"] = hashlib.sha256(data).hexdigest()
    path.write_text(json.dumps(values))


def checkpoint_probes(root: Path) -> dict[str, Callable[[], str]]:
    marker = root / "code-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    def crafted() -> str:
        import torch

        path = root / "crafted.pt"
        torch.save({"config": {}, "model": Payload()}, path)
        export = Path(sys.executable).parent / "soundloc-export"
        result = subprocess.run([str(export), "--checkpoint", str(path), "--out",
                                 str(root / "out")], capture_output=True, text=True)  # fmt: skip
        if marker.exists():
            return "code ran"
        return "crash" if "Traceback" in result.stderr else "refused"

    return {"checkpoint whose pickle runs a command (soundloc-export)": crafted}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="soundloc-probe-") as tmp:
        root = Path(tmp)
        probes = {**image_probes(), **audio_probes(), **engine_probes(root),
                  **bundle_probes(root), **checkpoint_probes(root)}  # fmt: skip
        results = {name: outcome(probe) for name, probe in probes.items()}
    print(json.dumps({"inputs": results, "counts": Counter(results.values())}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
