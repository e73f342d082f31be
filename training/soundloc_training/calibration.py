"""The no-source threshold, calibrated without labels on a validation split.

Negatives exist by construction (soundloc_ros.core.detection): each val frame is scored with its
own audio window ("matched"), with the window of a frame from another clip ("mismatched": an
off-screen source) and with synthesized noise of a random kind and level ("noise": hum, fan,
babble, coloured noise at -45 to -15 dBFS). The energy gate applies first, as on the robot. The
threshold is the lowest score at which at most FALSE_ALARM_RATES of each negative kind pass.

The rates were set against the product's targets (a sounding frame detected at least 95 % of
the time, noise claimed at most 5 %, off-screen sound at most 20 %), with margin on the
off-screen kind. On TuxAV val (1030 frames) synthesized noise is the kind that binds. With the
default bundle's detector (the baseline's heads) the threshold keeps 95.4 % of the matched frames
and lets 2.8 % of the mismatched ones through; with uspl's own coarse map it would keep 85.4 %.
Of the matched frames, 4 % have a window below the energy gate (quiet stretches of the looped
recordings) and can never pass. A learned head on the audio embedding and the max cosine
(logistic regression on train-split pairs) did no better than the max cosine alone, so the score
stays the one number the localizer already learns. Matched pairs need no labels either, so the
same calibration runs on a robot's own bags (self-training re-exports with `--data bags:...` and
re-calibrates there).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from tqdm import tqdm

from soundloc_ros.core.detection import (
    DEFAULT_SILENCE_DB,
    SourceDetection,
    calibrated_threshold,
    is_silent,
)
from soundloc_ros.core.features import compute_features, level_dbfs
from soundloc_ros.core.metrics import detection_figures, rate_above
from soundloc_ros.core.preprocess import normalize_images
from soundloc_training.config import TrainConfig
from soundloc_training.data import FrameTable
from soundloc_training.datasets.negatives import (
    NOISE_KINDS,
    NOISE_LEVELS_DBFS,
    kind_of,
    synth_noise,
)
from soundloc_training.models.localizer import Localizer

FALSE_ALARM_RATES = {"mismatched": 0.15, "noise": 0.05}
BATCH = 32  # frames per forward pass


def mismatched_partners(clip_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each frame, a random frame of another clip (no labels: another clip is enough)."""
    if len(np.unique(clip_ids)) < 2:
        raise ValueError("calibration needs frames from two clips or more (mismatched pairs)")
    partners = rng.integers(len(clip_ids), size=len(clip_ids))
    same = clip_ids[partners] == clip_ids
    while same.any():
        partners[same] = rng.integers(len(clip_ids), size=int(same.sum()))
        same = clip_ids[partners] == clip_ids
    return partners


def pairing_windows(
    table: FrameTable, config: TrainConfig, seed: int = 0
) -> dict[str, list[np.ndarray]]:
    """Per pairing, the audio window (samples) each frame is scored with."""
    rng = np.random.default_rng(seed)
    rate = config.audio_frontend.sample_rate
    length = round(config.audio_frontend.window_seconds * rate)
    partners = mismatched_partners(table.clip_ids, rng)
    kinds = rng.choice(NOISE_KINDS, len(table))
    levels = rng.uniform(*NOISE_LEVELS_DBFS, len(table))
    return {
        "matched": [table.samples(i, rate) for i in range(len(table))],
        "mismatched": [table.samples(int(j), rate) for j in partners],
        "noise": [synth_noise(rng, str(kind), length, float(level), rate)
                  for kind, level in zip(kinds, levels, strict=True)],
    }  # fmt: skip


@torch.no_grad()
def window_scores(
    model: Localizer, table: FrameTable, config: TrainConfig,
    windows: dict[str, list[np.ndarray]],
) -> dict[str, np.ndarray]:  # fmt: skip
    """Per pairing in `windows` (one audio window per frame), each frame's score: the coarse
    map's max cosine with that window, -inf where the energy gate says silence (the node would
    not run the model). The image side is computed once for all pairings."""
    model.eval()
    frontend = config.audio_frontend
    scores = {name: np.empty(len(table)) for name in windows}
    for start in tqdm(range(0, len(table), BATCH), desc="scoring", leave=False, file=sys.stderr):
        indices = np.arange(start, min(start + BATCH, len(table)))
        images = normalize_images(table.images[indices], model.backbone.mean, model.backbone.std)
        visual = model.embed_visual(model.backbone(torch.from_numpy(images)))  # [B, D, h, w]
        for name, pairing in windows.items():
            batch = [pairing[i] for i in indices]
            logmel = np.stack([compute_features(w, frontend.sample_rate, frontend)[None]
                               for w in batch])  # [B, 1, n_mels, n_frames]  # fmt: skip
            sound = model.embed_audio(torch.from_numpy(logmel))  # [B, D]
            best = model.paired_similarity(visual, sound).flatten(1).amax(dim=1).numpy()  # [B]
            silent = np.array([is_silent(w) for w in batch])
            scores[name][indices] = np.where(silent, -np.inf, best)
    return scores


def own_scores(model: Localizer, table: FrameTable, config: TrainConfig) -> np.ndarray:
    """Each frame's score with its own audio window, as the robot would see the pair."""
    rate = config.audio_frontend.sample_rate
    own = [table.samples(i, rate) for i in range(len(table))]
    return window_scores(model, table, config, {"own": own})["own"]


def calibrate(
    model: Localizer,
    table: FrameTable,
    config: TrainConfig,
    source: str,
    seed: int = 0,
    output: str = "coarse",
    scale: float | None = None,
) -> SourceDetection:
    """bundle.json's `detection` section, calibrated on `table` (a val split, named `source`)
    for the bundle output `output` holding `model`'s cosine / tau (scale: tau; the config's)."""
    scores = window_scores(model, table, config, pairing_windows(table, config, seed))
    negatives = {kind: scores[kind] for kind in FALSE_ALARM_RATES}
    threshold = calibrated_threshold(negatives, FALSE_ALARM_RATES)
    passed = {name: round(float(np.mean(values > threshold)), 4) for name, values in scores.items()}
    return SourceDetection(
        threshold=threshold,
        scale=config.tau if scale is None else scale,
        output=output,
        false_alarm_rates=FALSE_ALARM_RATES,
        calibration={
            "frames": source, "n_frames": len(table), "seed": seed,
            "noise": {"kinds": list(NOISE_KINDS), "levels_dbfs": list(NOISE_LEVELS_DBFS)},
            "above_threshold": passed,
            "note": "matched: a frame with its own audio (true-positive rate); mismatched: "
                    "with another clip's audio; noise: with synthesized noise",
        },
    )  # fmt: skip


def detection_report(
    model: Localizer, config: TrainConfig, positives: FrameTable, negatives: FrameTable,
    threshold: float,
) -> dict[str, object]:  # fmt: skip
    """Detection figures (core.metrics.detection_figures) of sounding frames against negative
    frames grouped by kind, at `threshold`, with each noise colour's false-source rate, and the
    same figures for two reference detectors (`reference_detectors`)."""
    categories = np.array([record.category for record in negatives.records])
    kinds = np.array([kind_of(c) for c in categories])

    def figures(positive: np.ndarray, negative: np.ndarray, cut: float) -> dict[str, object]:
        result = detection_figures(
            positive, {kind: negative[kinds == kind] for kind in sorted(set(kinds))}, cut
        )
        result["false_source_rate_by_category"] = {
            c: rate_above(negative[categories == c], cut) for c in sorted(set(categories))
        }
        return result

    report = figures(own_scores(model, positives, config), own_scores(model, negatives, config),
                     threshold)  # fmt: skip
    report["references"] = {
        name: figures(positive, negative, cut)
        for name, (positive, negative, cut) in reference_detectors(positives, negatives, config)
    }
    return report


def reference_detectors(positives: FrameTable, negatives: FrameTable, config: TrainConfig):
    """(name, (positive scores, negative scores, threshold)) of the detectors to beat:
    - random: uniform scores, thresholded where FALSE_ALARM_RATES would put it for them (the
      strictest rate's quantile);
    - energy_gate: the window's level in dBFS against the node's silence gate, the only rule
      before the learned score: every audible frame is a source."""
    rng = np.random.default_rng(0)
    rate = config.audio_frontend.sample_rate
    yield "random", (rng.random(len(positives)), rng.random(len(negatives)),
                     1.0 - min(FALSE_ALARM_RATES.values()))  # fmt: skip

    def levels(table: FrameTable) -> np.ndarray:
        return np.array([level_dbfs(table.samples(i, rate)) for i in range(len(table))])

    yield "energy_gate", (levels(positives), levels(negatives), DEFAULT_SILENCE_DB)
