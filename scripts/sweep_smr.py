"""How the SMR random walk's settings change the refined maps, on the validation split.

    .venv/bin/python scripts/sweep_smr.py runs/tuxav_uspl/smr/best.pt --limit 256

For an SMR stage checkpoint, the affinities of each val frame are computed once; the coarse map
is then walked for every (affinity_beta, walk_steps) pair and the min-max normalized result is
thresholded at each level. Printed: mIoU (AVSBench frame IoU, averaged) of every combination,
with steps 0 = the upsampled coarse map itself, so a gain from recovering boundaries is told
apart from a gain from a different threshold. First it prints how many of the labelled SMR
training pairs within each radius join a sounding and a non-sounding seed (cross pairs, the
only ones that teach a boundary) on the same frames. Labels are read on val only, as for
checkpoint selection; the settings chosen go in the run's config (affinity_beta, walk_steps,
pseudo_mask_threshold, pair_radius).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from soundloc_training.affinity import cross_pair_coverage
from soundloc_training.checkpoints import CheckpointError, load_stage
from soundloc_training.data import load_table
from soundloc_training.pixel_stages import PixelInputs, seed_regions, sweep_walks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="an SMR stage checkpoint (OUT/smr/best.pt)")
    parser.add_argument("--data", help="dataset spec (default: the run's own)")
    parser.add_argument("--limit", type=int, default=256, help="val frames (default 256)")
    parser.add_argument("--betas", type=float, nargs="+", default=[8.0, 16.0, 32.0])
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 32, 128, 256])
    parser.add_argument("--radii", type=int, nargs="+", default=[4, 8, 12],
                        help="pair radii whose cross-pair coverage is printed")  # fmt: skip
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9])
    args = parser.parse_args(argv)
    if min(args.radii) < 1:
        parser.error(f"--radii must be >= 1 (grid positions); got {args.radii}")
    try:
        stage, localizer, head, config = load_stage(args.checkpoint)
    except CheckpointError as error:
        print(f"error: {error}. For the sweep, give a finished run's OUT/smr/best.pt",
              file=sys.stderr)  # fmt: skip
        return 2
    if stage != "smr":
        print(f"error: {args.checkpoint} is an {stage} checkpoint; give OUT/smr/best.pt",
              file=sys.stderr)  # fmt: skip
        return 2
    table = load_table(args.data or config.data, "val", config.image_size,
                       config.audio_frontend, args.limit)  # fmt: skip
    if table.gt_maps is None or not table.gt_is_mask:
        print("error: the val split has no ground-truth masks to score the sweep with",
              file=sys.stderr)  # fmt: skip
        return 2
    inputs = PixelInputs(localizer, table, config)
    sounding, non_sounding = seed_regions(inputs, config)
    print(f"SMR seeds: {sounding.float().mean():.1%} of positions sounding, "
          f"{non_sounding.float().mean():.1%} non-sounding; pairs up to radius r:")  # fmt: skip
    for radius in args.radii:
        share, frames = cross_pair_coverage(sounding, non_sounding, radius)
        print(f"  r {radius:2d}: {share:.2%} of labelled pairs cross, {frames:.1%} of frames "
              "have one")  # fmt: skip
    walks = [(beta, steps) for beta in args.betas for steps in args.steps]
    ious = sweep_walks(head, inputs, config, walks, args.thresholds)
    print(f"mIoU on {len(table)} val frames of {args.checkpoint} (rows: beta, steps)")
    print("beta  steps  " + "  ".join(f"thr {t:.2f}" for t in args.thresholds))
    for (beta, steps), row in zip(walks, ious, strict=True):
        print(f"{beta:4.0f}  {steps:5d}  " + "  ".join(f"{v:8.3f}" for v in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
