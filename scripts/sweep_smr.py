"""How the SMR random walk's settings change the refined maps, on the validation split.

    .venv/bin/python scripts/sweep_smr.py runs/tuxav_uspl/smr/best.pt --limit 256

For an SMR stage checkpoint, the affinities of each val frame are computed once; the coarse map
is then walked for every (affinity_beta, walk_steps) pair and the min-max normalized result is
thresholded at each level. Printed: mIoU (AVSBench frame IoU, averaged) of every combination,
with steps 0 = the upsampled coarse map itself, so a gain from recovering boundaries is told
apart from a gain from a different threshold. Labels are read on val only, as for checkpoint
selection; the settings chosen go in the run's config (affinity_beta, walk_steps,
pseudo_mask_threshold).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F
from soundloc_training.affinity import disk_offsets, pair_affinities, refine
from soundloc_training.data import GT_SIZE, load_table
from soundloc_training.models.pixel_heads import normalized_map
from soundloc_training.sounding_pixels import PixelInputs, load_stage, minmax
from tqdm import tqdm

from soundloc_ros.core.metrics import mask_iou


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="an SMR stage checkpoint (OUT/smr/best.pt)")
    parser.add_argument("--data", help="dataset spec (default: the run's own)")
    parser.add_argument("--limit", type=int, default=256, help="val frames (default 256)")
    parser.add_argument("--betas", type=float, nargs="+", default=[8.0, 16.0, 32.0])
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 8, 32, 64])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9])
    args = parser.parse_args()
    stage, localizer, head, config = load_stage(args.checkpoint)
    if stage != "smr":
        print(f"error: {args.checkpoint} is an {stage} checkpoint; give OUT/smr/best.pt")
        return 2
    table = load_table(args.data or config.data, "val", config.image_size,
                       config.audio_frontend, args.limit)  # fmt: skip
    if table.gt_maps is None or not table.gt_is_mask:
        print("error: the val split has no ground-truth masks to score the sweep with")
        return 2
    inputs = PixelInputs(localizer, table, config)
    offsets = disk_offsets(config.affinity_radius)
    combos = [(b, s) for b in args.betas for s in args.steps]
    ious = np.zeros((len(combos), len(args.thresholds)))  # summed over frames
    with torch.no_grad():
        for indices in tqdm(inputs.batches(), desc="sweep", leave=False):
            images, _, coarse = inputs.batch(indices)
            affinities = pair_affinities(head(images), offsets)  # [B, P, H, W]
            start = normalized_map(coarse, inputs.grid)[:, 0]  # [B, H, W]
            for c, (beta, steps) in enumerate(combos):
                walked = minmax(refine(start, affinities, offsets, beta, steps))[:, None]
                maps = F.interpolate(walked, size=(GT_SIZE, GT_SIZE), mode="bilinear",
                                     align_corners=False)[:, 0].numpy()  # fmt: skip
                for t, level in enumerate(args.thresholds):
                    for m, i in zip(maps, indices, strict=True):
                        binary = (m > level).astype(np.float32)  # foreground: 1 > 0.5
                        ious[c, t] += mask_iou(binary, table.gt_maps[i] > 0.5)
    ious /= len(table)
    print(f"mIoU on {len(table)} val frames of {args.checkpoint} (rows: beta, steps)")
    print("beta  steps  " + "  ".join(f"thr {t:.2f}" for t in args.thresholds))
    for (beta, steps), row in zip(combos, ious, strict=True):
        print(f"{beta:4.0f}  {steps:5d}  " + "  ".join(f"{v:8.3f}" for v in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
