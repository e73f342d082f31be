"""Reproduce RESULTS.md's "shipped bundle" table: the old and the new default bundle, replayed.

    .venv/bin/python scripts/reproduce_shipped_bundle.py      # also run by `make results`

The TuxAV test split is recorded as a bag (frames, CameraInfo, microphone chunks and the true
masks), and both committed checkpoints are exported the way `make bundle` / `make
bundle-baseline` do and measured by offline replay through the node's own pipeline: what the
robot publishes, scored. Each step is skipped when its output exists. Writes
results/replay/shipped_bundle_tuxav_test.json (rendered into RESULTS.md by reproduce_results.py).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from reproduce_self_training import TEST_BAG, replay, step, write_record

BUNDLES = {  # row name -> (checkpoint, bundle directory)
    "previous default: baseline (models/tuxav_baseline.pt)": (
        "models/tuxav_baseline.pt",
        "bundles/baseline",
    ),
    "shipped default: uspl, SMR-refined heatmap + SPS mask (models/tuxav_uspl.pt)": (
        "models/tuxav_uspl.pt",
        "bundles/default",
    ),
}


def main() -> int:
    commands = [
        step("data/tuxav/benchmark.json",
             ["soundloc-make-benchmark", "tuxav", "--out", "data/tuxav"]),
        step(TEST_BAG, ["soundloc-make-bag", "--data", "tuxav:data/tuxav", "--split", "test",
                        "--out", TEST_BAG]),
    ]  # fmt: skip
    rows = {}
    for name, (checkpoint, bundle) in BUNDLES.items():
        export = ["soundloc-export", "--checkpoint", checkpoint, "--out", bundle]
        commands.append(step(f"{bundle}/bundle.json", export))
        rows[name] = replay(bundle, f"shipped_{Path(bundle).name}")
    record = {
        "title": "Shipped bundle: tuxav test, replayed as a bag",
        "description": (
            "Offline replay of the TuxAV test split recorded as a bag (soundloc-replay-eval), "
            "through the node's own pipeline: the heatmap and mask columns score what the node "
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
