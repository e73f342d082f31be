"""Is a visible object making the sound? The per-frame source score and its threshold.

Every localizer finds a "most sounding" place in any frame, even when the microphone hears only a
fan or a voice from the next room, so the heatmap alone cannot say whether there is a source. The
score is a coarse map's largest audio-visual cosine similarity (the bundle's `coarse` output, or
its `detector`: another localizer's heads on the same backbone, chosen on val): how well the
best-matching place in view agrees with what is heard. Contrastive training pushes exactly this
number up for a frame and its own audio and down for a frame and another clip's audio, so it
needs no new head (a logistic head on the audio embedding did no better on TuxAV val:
calibration.py); `soundloc-eval --negatives` measures it per negative kind (RESULTS.md).

The threshold is calibrated without labels (soundloc_training.calibration): negatives exist by
construction, a frame paired with another clip's audio (an off-screen source) and a frame paired
with synthesized noise. It is the lowest score at which each kind of negative passes at most
its stated false-alarm rate, so as many true sources as possible stay above it. bundle.json
stores it with its calibration; a node parameter may override it.

Rules in order (FramePipeline): digital silence (the energy gate), then score <= threshold means
no source: all-zero heatmap and mask, no peak, no bearing, no detection.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from soundloc_ros.core.features import level_dbfs

DEFAULT_SILENCE_DB = -55.0  # the energy gate: below this window level there is no source
STATISTIC = "max_cosine"  # the one statistic so far; bundle.json names it so others can follow


@dataclass(frozen=True)
class SourceDetection:
    """bundle.json's `detection` section: how to score a frame and where the line is.

    `scale` turns the scored output (`coarse` or `detector`: cosine / tau) back into cosines
    (scale = tau).
    `false_alarm_rates`: the calibration's targets per negative kind; `calibration`: what it
    measured (free-form, for people and reports)."""

    threshold: float
    scale: float
    statistic: str = STATISTIC
    output: str = "coarse"  # the bundle output scored: coarse, or a detector branch's map
    false_alarm_rates: Mapping[str, float] = field(default_factory=dict)
    calibration: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.statistic != STATISTIC:
            raise ValueError(
                f"detection.statistic {self.statistic!r} is not known here (only {STATISTIC!r}); "
                "upgrade soundloc_ros or re-export the bundle"
            )
        if not (math.isfinite(self.threshold) and -1.0 <= self.threshold <= 1.0):
            raise ValueError(
                f"detection.threshold must be a cosine in [-1, 1]; got {self.threshold}"
            )
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"detection.scale must be a positive number; got {self.scale}")

    def score(self, coarse: np.ndarray) -> float:
        """The scored output (any shape, cosine / tau) -> the frame's max cosine."""
        return float(np.max(coarse)) * self.scale

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "statistic": self.statistic,
            "scale": self.scale,
            "threshold": self.threshold,
            "false_alarm_rates": dict(self.false_alarm_rates),
            "calibration": dict(self.calibration),
        }


def is_silent(samples: np.ndarray, silence_threshold_db: float = DEFAULT_SILENCE_DB) -> bool:
    """The first rule: a window this quiet has no source, whatever the map says."""
    return level_dbfs(samples) < silence_threshold_db


def is_source(score: float, threshold: float) -> bool:
    """A frame has a visible sounding source when its score is above the threshold."""
    return score > threshold


def calibrated_threshold(
    negatives: Mapping[str, np.ndarray], false_alarm_rates: Mapping[str, float]
) -> float:
    """The lowest threshold at which each kind's negatives pass at most its rate.

    With n scores of a kind and rate r, at most floor(r n) may lie above the threshold, so the
    kind's threshold is its (floor(r n) + 1)-th largest score; the answer is the largest over the
    kinds (each constraint must hold). Raising it further would only lose true sources. Scores
    of -inf (silenced by the energy gate) never pass; the answer is at least -1, the lowest
    cosine."""
    if not negatives:
        raise ValueError("calibration needs negative scores of at least one kind")
    thresholds = []
    for kind, scores in negatives.items():
        rate = false_alarm_rates.get(kind)
        if rate is None or not 0.0 <= rate < 1.0:
            raise ValueError(f"false-alarm rate of {kind!r} must be in [0, 1); got {rate!r}")
        ordered = np.sort(np.asarray(scores, np.float64).ravel())[::-1]  # descending
        if ordered.size == 0 or np.isnan(ordered).any() or np.isposinf(ordered).any():
            raise ValueError(f"negative scores of {kind!r} must not be empty, NaN or +inf")
        thresholds.append(float(ordered[min(int(rate * ordered.size), ordered.size - 1)]))
    return max(-1.0, *thresholds)


def bounding_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """(centre u, centre v, width, height) in pixels of a mask [H, W] bool, pixel centres at
    integers (as vision_msgs' BoundingBox2D); None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
    width, height = float(right - left + 1), float(bottom - top + 1)
    return (left + right) / 2.0, (top + bottom) / 2.0, width, height
