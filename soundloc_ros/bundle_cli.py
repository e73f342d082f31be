"""`soundloc_bundle DIR`: validate a model bundle and print what the runtime will feed it.

The check is the node's own: bundle.json parsed, the ONNX checksum, the graph's tensors against
bundle.json in ONNX Runtime, and one test inference; exit 1 with the reason when any fails.
"""

from __future__ import annotations

import argparse
import sys

from soundloc_ros.core.backends import BackendUnavailableError, create_backend
from soundloc_ros.core.bundle import BundleError, ModelBundle, load_bundle


def describe(bundle: ModelBundle) -> str:
    frontend = bundle.audio_frontend
    lines = [
        f"bundle      {bundle.directory} (format {bundle.format_version})",
        f"model       {bundle.onnx_file} opset {bundle.opset} sha256 {bundle.onnx_sha256[:16]}…",
        f"image in    {bundle.image.tensor.name} {list(bundle.image.tensor.shape)} "
        f"{bundle.image.tensor.dtype} {bundle.image.channel_order} "
        f"mean {list(bundle.image.mean)} std {list(bundle.image.std)}",
        f"audio in    {bundle.audio.name} {list(bundle.audio.shape)} {bundle.audio.dtype}: "
        f"{frontend.window_seconds} s at {frontend.sample_rate} Hz, {frontend.n_mels} mel bands, "
        f"{frontend.n_frames} frames",
    ]
    for key, spec in bundle.outputs.items():
        meaning = f": {spec.meaning}" if spec.meaning else ""
        lines.append(
            f"{key + ' out':11s} {spec.tensor.name} {list(spec.tensor.shape)} ({spec.values})"
            + meaning
        )
    if bundle.mask is None:
        lines.append("mask out    none (the runtime thresholds the heatmap)")
    if bundle.training:
        lines.append("training    " + ", ".join(f"{k}={v}" for k, v in bundle.training.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soundloc_bundle", description=__doc__)
    parser.add_argument("bundle", help="bundle directory (bundle.json + model.onnx)")
    args = parser.parse_args(argv)
    try:
        bundle = load_bundle(args.bundle)
        create_backend(bundle, "onnxruntime").close()
    except (BundleError, BackendUnavailableError) as error:
        print(f"soundloc_bundle: {error}", file=sys.stderr)
        return 1
    print(describe(bundle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
