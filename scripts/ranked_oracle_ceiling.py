"""The ceiling of the median-threshold protocol for a continuous map (docs/methods.md, `ier`).

    .venv/bin/python scripts/ranked_oracle_ceiling.py tuxav:data/tuxav synthav:data/synthav

The LVS protocol keeps the top half of a map's pixels, so a map that is not exactly flat outside
the object always marks half the frame. The best any continuous map can do is to rank every
pixel correctly: here the signed distance to the ground-truth mask's boundary (positive inside).
Its cIoU and AUC on a split are what a perfect localizer with a smooth map could score; the
binary oracle row (1.0) is reachable only by a map that is exactly minimal outside the object.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from scipy.ndimage import distance_transform_edt
from soundloc_training.data import load_table
from soundloc_training.scoring import evaluate_heatmaps

from soundloc_ros.core.features import LogMelConfig


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Distance to the boundary: positive inside the mask, negative outside [H, W]."""
    return distance_transform_edt(mask) - distance_transform_edt(~mask)


def main(specs: list[str]) -> int:
    for spec in specs:
        table = load_table(spec, "test", 224, LogMelConfig())
        masks = table.gt_maps > 0.5  # [N, 224, 224]
        scores = evaluate_heatmaps([signed_distance(m).astype(np.float32) for m in masks], table)
        coverage = masks.mean(axis=(1, 2))
        under = round(float((coverage < 0.25).mean()), 3)
        print(json.dumps({"data": spec, "ranked_oracle": scores, "frames_under_25pct": under,
                          "mask_coverage_mean": round(float(coverage.mean()), 3)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["tuxav:data/tuxav", "synthav:data/synthav"]))
