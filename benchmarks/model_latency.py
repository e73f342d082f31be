"""Model inference per backend on this machine: latency percentiles, throughput, FLOP rate.

Runs the default bundle (`make bundle`; or --bundle DIR) one frame at a time, as the node does,
on every backend that can run here (TensorRT only where a GPU is), after a warm-up. The achieved
FLOP rate (graph FLOPs / median latency) is set against the machine's own float32 matmul rate
(numpy BLAS, all cores), so the figure says how much of the CPU the network actually uses.
Results: benchmarks/results/model_latency.json, summarized in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np
from flops import graph_flops
from machine import record

from soundloc_ros.core.backends import BackendUnavailableError, create_backend
from soundloc_ros.core.backends.tensorrt import unavailable_reason
from soundloc_ros.core.bundle import load_bundle

BLOCKS = 6
DEFAULT_BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "default"


def matmul_flops_per_second(size: int = 1024, repeats: int = 20) -> float:
    """Best-of float32 GEMM rate: the ceiling a dense network could reach on this CPU."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b  # warm-up: thread pool start
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10, help="runs before each block")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not (args.bundle / "bundle.json").is_file():
        raise SystemExit(f"no bundle at {args.bundle}: run `make bundle` first (or pass --bundle)")
    bundle = load_bundle(args.bundle)
    rng = np.random.default_rng(0)
    inputs = {
        bundle.image.tensor.name: rng.standard_normal(bundle.image.tensor.shape, np.float32),
        bundle.audio.name: rng.standard_normal(bundle.audio.shape, np.float32),
    }
    flops = graph_flops(bundle.onnx_path.read_bytes())
    total_flops = sum(flops.values())
    peak = matmul_flops_per_second()
    figures: dict[str, object] = {
        "bundle": str(args.bundle),
        "inputs": {"image": bundle.image.tensor.shape, "audio": bundle.audio.shape},
        "gflops_per_inference": total_flops / 1e9,
        "gflops_by_op": {k: v / 1e9 for k, v in flops.items()},
        "matmul_gflops_per_s": peak / 1e9,
        "backends": {},
    }
    reason = unavailable_reason()
    names = ["onnxruntime", "torch"] + (["tensorrt"] if reason is None else [])
    backends = {}
    for name in names:
        try:
            backends[name] = create_backend(bundle, name, fallback=False)
        except BackendUnavailableError as error:
            print(f"{name}: skipped ({error})")
    # alternating blocks: a slower moment of the machine weighs on every backend alike, while
    # within a block a backend runs undisturbed (alternating single calls would let PyTorch's
    # spinning OpenMP threads steal the cores from ONNX Runtime's next call)
    samples_ms = {name: [] for name in backends}
    block = max(1, args.repeats // BLOCKS)
    for _ in range(BLOCKS):
        for name, backend in backends.items():
            for _ in range(args.warmup):
                backend.run(inputs)
            samples_ms[name] += [
                _timed(lambda b=backend: b.run(inputs)) * 1e3 for _ in range(block)
            ]
    for name, backend in backends.items():
        samples = np.asarray(samples_ms[name])
        timing = {
            "median_ms": float(np.median(samples)),
            "p95_ms": float(np.percentile(samples, 95)),
            "p99_ms": float(np.percentile(samples, 99)),
            "mean_ms": float(samples.mean()),
        }
        timing["throughput_hz"] = 1e3 / timing["mean_ms"]
        timing["achieved_gflops_per_s"] = total_flops / (timing["median_ms"] / 1e3) / 1e9
        timing["share_of_matmul_rate"] = timing["achieved_gflops_per_s"] * 1e9 / peak
        timing["description"] = backend.description
        figures["backends"][name] = timing
        backend.close()
        print(
            f"{name:12s} p50 {timing['median_ms']:7.2f} ms  p95 {timing['p95_ms']:7.2f} ms  "
            f"p99 {timing['p99_ms']:7.2f} ms  {timing['throughput_hz']:6.1f} Hz  "
            f"{timing['achieved_gflops_per_s']:6.1f} GFLOP/s ({timing['share_of_matmul_rate']:.0%})"
        )
    if reason is not None:
        figures["tensorrt_skipped"] = reason
        print(f"tensorrt: skipped ({reason})")
    measured = figures["backends"]
    if "onnxruntime" in measured and "torch" in measured:
        ratio = measured["torch"]["median_ms"] / measured["onnxruntime"]["median_ms"]
        figures["onnxruntime_speedup_over_torch_p50"] = ratio
        print(f"ONNX Runtime is {ratio:.2f}x faster than PyTorch eager (p50)")
    print(f"{total_flops / 1e9:.3f} GFLOP per inference; matmul rate {peak / 1e9:.1f} GFLOP/s")
    print(f"threads: {os.cpu_count()} cores; recorded in {record('model_latency', figures)}")


if __name__ == "__main__":
    main()
