"""Where should the bearing point: the refined heatmap's peak, or the mask's centroid?

Runs a bundle through the node's own FramePipeline (ONNX Runtime) on a labelled split (val: the
choice is made there, never on test) and prints, as JSON, how often each candidate lands inside
the true sounding object, with the heatmap's cIoU/AUC and the mask's mIoU on the same frames:

    python scripts/choose_peak.py --bundle bundles/default --data tuxav:data/tuxav --split val
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from soundloc_training.data import load_table
from tqdm import tqdm

from soundloc_ros.core.backends import create_backend
from soundloc_ros.core.bundle import load_bundle
from soundloc_ros.core.frame_pipeline import FramePipeline
from soundloc_ros.core.metrics import LocalizationMetrics, MaskAccumulator, lands_on
from soundloc_ros.core.predictor import Predictor


def mask_centroid(mask: np.ndarray) -> tuple[float, float] | None:
    """(u, v) of the mask's centre of mass; None for an empty mask."""
    rows, cols = np.nonzero(mask)
    return (float(cols.mean()), float(rows.mean())) if rows.size else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", required=True, help="KIND:PATH with ground truth")
    parser.add_argument("--split", default="val", choices=("val", "train"))
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    bundle = load_bundle(args.bundle)
    # every audible frame localized: the question is where a bearing points, not whether
    predictor = Predictor(create_backend(bundle, "onnxruntime"))
    pipeline = FramePipeline(predictor, source_threshold=-1.0)
    frontend = bundle.audio_frontend
    table = load_table(args.data, args.split, 224, frontend, limit=args.limit)
    if table.gt_maps is None:
        print(f"{args.data} {args.split} has no ground truth", file=sys.stderr)
        return 2
    hits = {"heatmap_peak": 0, "mask_centroid": 0}
    heatmaps, masks = LocalizationMetrics(), MaskAccumulator(keep_frame_curves=False)
    for index in tqdm(range(len(table)), desc="frames", file=sys.stderr):
        audio = table.clip_audio[table.clip_ids[index]]
        start, end = (np.asarray(table.windows[index]) * frontend.sample_rate).round().astype(int)
        samples = audio[max(0, start) : max(0, end)]
        result = pipeline.process(table.images[index], "rgb8", samples, frontend.sample_rate)
        truth = table.gt_maps[index] > 0.5  # [224, 224], the frame's own size
        hits["heatmap_peak"] += lands_on(truth, result.peak)
        hits["mask_centroid"] += lands_on(truth, mask_centroid(result.mask))
        heatmaps.update(result.heatmap, gt_map=table.gt_maps[index], mask_gt=truth)
        masks.update(result.mask.astype(np.float32), truth)
    n = len(table)
    report = {
        "bundle": str(args.bundle),
        "split": f"{args.data} {args.split}",
        "frames": n,
        "on_object": {name: round(count / n, 4) for name, count in hits.items()},
        "heatmap": {k: round(float(heatmaps.compute()[k]), 4) for k in ("ciou", "auc", "miou")},
        "mask_miou": round(float(masks.compute()["miou"]), 4),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
