"""Check a model bundle on a GPU machine: build (or load) the TensorRT engine, compare it with
ONNX Runtime on the same inputs, and print latency percentiles of both.

    python scripts/check_tensorrt.py bundles/default [--precision fp16] [--cache DIR]

Run it once on every new robot image or TensorRT version; it exits non-zero when TensorRT is
missing, the engine cannot be built, or the heatmaps differ by more than the tolerance (fp16
engines are compared on the [0, 1] heatmap, where a difference of 0.02 is invisible).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from machine import time_call

from soundloc_ros.core.backends import BackendUnavailableError, Localizer, create_backend
from soundloc_ros.core.backends.engine_cache import EngineCache
from soundloc_ros.core.bundle import load_bundle

TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2}  # max |heatmap difference| in [0, 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    parser.add_argument("--cache", default="~/.cache/soundloc_ros/engines")
    parser.add_argument("--frames", type=int, default=20, help="random inputs to compare on")
    parser.add_argument("--repeats", type=int, default=500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    bundle = load_bundle(args.bundle)

    started = time.perf_counter()
    try:
        trt = create_backend(bundle, "tensorrt", args.cache, args.precision, fallback=False)
    except BackendUnavailableError as error:
        print(f"TensorRT is not usable here: {error}", file=sys.stderr)
        return 2
    print(f"engine ready in {time.perf_counter() - started:.1f} s: {trt.description}")
    print(f"engine cache: {EngineCache(args.cache).directory}")
    ort = create_backend(bundle, "onnxruntime")
    print(f"reference: {ort.description}")

    reference, engine = Localizer(ort), Localizer(trt)
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(args.frames):
        rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        audio = rng.normal(0, 0.1, bundle.audio_frontend.n_samples).astype(np.float32)
        inputs = reference.inputs(rgb, audio, bundle.audio_frontend.sample_rate)
        expected = reference.outputs(ort.run(inputs)).heatmap
        worst = max(worst, float(np.abs(engine.outputs(trt.run(inputs)).heatmap - expected).max()))
    tolerance = TOLERANCE[trt.precision]
    print(
        f"max |heatmap difference| over {args.frames} inputs: {worst:.2e} (tolerance {tolerance})"
    )

    for name, backend in (("tensorrt", trt), ("onnxruntime", ort)):
        timing = time_call(lambda b=backend: b.run(inputs), args.repeats, warmup=50)
        print(
            f"{name:12s} p50 {timing['median_ms']:.3f} ms  p95 {timing['p95_ms']:.3f} ms  "
            f"p99 {timing['p99_ms']:.3f} ms"
        )
    trt.close()
    return 0 if worst <= tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
