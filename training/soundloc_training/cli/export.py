"""`soundloc-export` (export.py has the export and its checks)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from soundloc_training import export
from soundloc_training.checkpoints import CheckpointError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="soundloc-export", description=export.__doc__.splitlines()[0]
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="best.pt of a run")
    parser.add_argument("--out", required=True, type=Path, help="bundle directory to write")
    parser.add_argument(
        "--data", help="KIND:PATH of frames to verify on (default: the checkpoint's benchmark)"
    )
    parser.add_argument("--frames", type=int, default=8, help="frames to verify on")
    parser.add_argument(
        "--walk-steps", type=int, help="uspl checkpoints: random-walk steps (default: the run's)"
    )
    parser.add_argument(
        "--walk-radius", type=int, help="uspl checkpoints: random-walk radius (default: the run's)"
    )
    parser.add_argument(
        "--detector", type=Path,
        help="a plain localizer checkpoint on the same frozen backbone whose heads score the "
        "no-source decision (default: the checkpoint's own coarse map)",
    )  # fmt: skip
    parser.add_argument(
        "--walk-pool", type=int,
        help="uspl checkpoints: walk on the pixel grid pooled by this factor (default 1; 2 is "
        "about 8x cheaper at 1/4 the steps)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        options = {"walk_steps": args.walk_steps, "walk_radius": args.walk_radius,
                   "walk_pool": args.walk_pool, "detector": args.detector}  # fmt: skip
        bundle, differences = export.export_bundle(
            args.checkpoint, args.out, args.data, args.frames, **options
        )
    except CheckpointError as error:
        print(f"soundloc-export: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:
        print(f"soundloc-export: {error}", file=sys.stderr)
        return 1
    shapes = {"image": bundle.image.tensor.shape, "audio": bundle.audio.shape}
    outputs = ", ".join(f"{key} {spec.tensor.shape}" for key, spec in bundle.outputs.items())
    print(f"wrote {args.out}: inputs {shapes}, outputs {outputs}")
    print(
        "max |difference| to PyTorch: " + ", ".join(f"{k} {v:.2e}" for k, v in differences.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
