"""Reproduce RESULTS.md's "shipped bundle" table: the old and the new default bundle, replayed.

    .venv/bin/python scripts/reproduce_shipped_bundle.py      # also run by `make results`

The TuxAV test split and its negatives are recorded as one bag (frames, CameraInfo, microphone
chunks, the true masks and each frame's label), both bundles are exported by `make bundle` /
`make bundle-baseline` and measured by offline replay through the node's own pipeline: what the
robot publishes, scored (localization on the sounding frames, detection on all). Each step is
skipped when its output exists. Writes results/replay/shipped_bundle_tuxav_test.json (rendered
into RESULTS.md by reproduce_results.py).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from reproduce_self_training import replay, step, write_record

BUNDLES = {  # row name -> (make target, bundle directory)
    "previous default: baseline (models/tuxav_baseline.pt)": (
        "bundle-baseline",
        "bundles/baseline",
    ),
    "shipped default: uspl, SMR-refined heatmap + SPS mask, baseline detector": (
        "bundle",
        "bundles/default",
    ),
}
BAG = "bags/tuxav_test_negatives"  # the test split with its negatives spread among the clips


def main() -> int:
    commands = [
        step("data/tuxav/benchmark.json",
             ["soundloc-make-benchmark", "tuxav", "--out", "data/tuxav"]),
        step(BAG, ["soundloc-make-bag", "--data", "tuxav:data/tuxav", "--split", "test",
                   "--negatives", "--out", BAG]),
    ]  # fmt: skip
    rows = {}
    for name, (target, bundle) in BUNDLES.items():
        commands.append(step(f"{bundle}/bundle.json", ["make", target]))
        rows[name] = replay(bundle, f"shipped_{Path(bundle).name}", BAG)
    record = {
        "title": "Shipped bundle: tuxav test, replayed as a bag",
        "description": (
            "Offline replay of the TuxAV test split with its negatives recorded as a bag "
            "(soundloc-replay-eval), through the node's own pipeline, no-source decision "
            "included (a sounding frame below the threshold is published all zero and scores "
            "so): the heatmap and mask columns, on the 1030 sounding frames, score what the node "
            "publishes (the heatmap min-max normalized within the frame; the mask is the SPS "
            "head's for uspl, the heatmap above mask_threshold for the baseline); the peak is "
            "the heatmap's, the bearing is toward it."
        ),
        "steps": [shlex.join(c) for c in commands],
        "rows": rows,
    }
    write_record("shipped_bundle_tuxav_test.json", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
