"""Check a model bundle on a GPU machine: build (or load) the TensorRT engine, compare it with
ONNX Runtime on the same inputs, and print latency percentiles of both.

    python scripts/check_tensorrt.py bundles/default [--precision fp16] [--cache DIR]

Run it once on every new robot image or TensorRT version; it exits non-zero when TensorRT is
missing, the engine cannot be built, or any output the bundle declares (heatmap, and mask and
coarse where present) differs by more than the tolerance. Outputs are compared in [0, 1], as the
runtime reads them (logits through the sigmoid), where an fp16 difference of 0.02 is invisible;
the raw difference is printed too (a saturated sigmoid hides differences of the coarse logits,
which are for debugging only). A uspl bundle's heatmap is the refined map after the random walk's
many fp16 steps: this is where that precision is checked.
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

from soundloc_ros.core.backends import BackendUnavailableError, create_backend
from soundloc_ros.core.backends.engine_cache import EngineCache
from soundloc_ros.core.bundle import ModelBundle, load_bundle
from soundloc_ros.core.predictor import Predictor, as_probability, output_plane

TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2}  # max |difference| of any output in [0, 1]


def differences(
    bundle: ModelBundle, expected: dict[str, np.ndarray], actual: dict[str, np.ndarray]
) -> dict[str, tuple[float, float]]:
    """Per output key: (max |difference| in [0, 1] as the runtime reads it, raw max |diff|)."""
    found = {}
    for key, spec in bundle.outputs.items():
        want = output_plane(expected[spec.tensor.name], spec)  # [h, w]
        got = output_plane(actual[spec.tensor.name], spec)
        read = np.abs(as_probability(got, spec) - as_probability(want, spec)).max()
        found[key] = (float(read), float(np.abs(got - want).max()))
    return found


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

    reference = Predictor(ort)
    rng = np.random.default_rng(0)
    worst = {key: (0.0, 0.0) for key in bundle.outputs}
    for _ in range(args.frames):
        rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        audio = rng.normal(0, 0.1, bundle.audio_frontend.n_samples).astype(np.float32)
        inputs = reference.inputs(rgb, "rgb8", audio, bundle.audio_frontend.sample_rate)
        found = differences(bundle, ort.run(inputs), trt.run(inputs))
        worst = {key: tuple(map(max, worst[key], found[key])) for key in worst}
    tolerance = TOLERANCE[trt.precision]
    for key, (read, raw) in worst.items():
        spec = bundle.outputs[key]
        print(
            f"max |{key} difference| over {args.frames} inputs: {read:.2e} in [0, 1] "
            f"(tolerance {tolerance}), {raw:.2e} raw ({spec.values})"
        )

    for name, backend in (("tensorrt", trt), ("onnxruntime", ort)):
        timing = time_call(lambda b=backend: b.run(inputs), args.repeats, warmup=50)
        print(
            f"{name:12s} p50 {timing['median_ms']:.3f} ms  p95 {timing['p95_ms']:.3f} ms  "
            f"p99 {timing['p99_ms']:.3f} ms"
        )
    trt.close()
    return 0 if max(read for read, _ in worst.values()) <= tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
