"""`soundloc-train CONFIG.yaml`: learn a localizer from unlabeled frames and audio.

One process, or data-parallel under `torchrun --nproc_per_node=N -m soundloc_training.cli.train`
(DDP over gloo on CPU): the global batch is split across processes, gradients are averaged, rank
0 evaluates and writes. `--resume` continues exactly where a run stopped. The config's method
picks the run (soundloc_training.orchestration); every stage trains through engine.Trainer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch.distributed as dist
import yaml

from soundloc_training.config import load_config
from soundloc_training.orchestration import run


def _parse_overrides(pairs: list[str]) -> dict[str, object]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        overrides[key] = yaml.safe_load(value)
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="soundloc-train", description=__doc__.splitlines()[0].split(": ", 1)[1]
    )
    parser.add_argument("config", type=Path, help="YAML config (see training/configs/)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt")
    parser.add_argument(
        "--stop-after", type=int, metavar="N", help="stop after N epochs (resume later)"
    )
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="override settings"
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, _parse_overrides(args.set))
    except (OSError, ValueError) as error:
        print(f"soundloc-train: {error}", file=sys.stderr)
        return 2
    try:
        summary = run(config, resume=args.resume, stop_after=args.stop_after)
    except (OSError, ValueError) as error:  # CheckpointError, a damaged summary.json...
        print(f"soundloc-train: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
