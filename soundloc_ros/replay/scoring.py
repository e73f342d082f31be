"""Scoring what the localizer published for a bag's frames against the bag's ground truth.

Both replay modes feed the same `ReplayScorer`: offline replay hands it the pipeline's results,
live replay the heatmaps and masks it received over DDS. Outputs and ground-truth masks meet by
the frame's header stamp, whichever comes first; both waiting lists are bounded, so memory stays
flat on a long bag. The figures are the ones training reports (`soundloc_ros.core.metrics`, the
one implementation) computed on the published full-resolution heatmap, plus what a robot cares
about: the mIoU of the published mask, how often the heatmap peak lies on the sounding object,
and the angle between the published bearing and the direction of the object's centroid.
Localization is scored on sounding frames only (a non-empty mask). Frames whose mask is empty are
negatives (off-screen sound, noise, silence: the bag's label topic names the kind): with them the
scorer reports detection, how often a source was claimed on each kind and on sounding frames,
and, where the scores are known (offline replay), the ROC AUC of the source score.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundloc_ros.core.frame_pipeline import CameraModel
from soundloc_ros.core.ground_truth import mask_to_map, resize_nearest
from soundloc_ros.core.metrics import LocalizationMetrics, MaskAccumulator, detection_figures
from soundloc_ros.core.pictures import (
    HIT,
    MISS,
    draw_marker,
    draw_outline,
    localization_overlay,
    save_gif,
    save_png,
    tile_grid,
)
from soundloc_ros.core.postprocess import resize_bilinear
from soundloc_ros.replay.bag import StampKey

MAX_WAITING = 600  # outputs or masks waiting for their partner (20 s of 30 Hz video)
MAX_SCORED = 1_000_000  # frames whose detection outcome is kept (one small tuple each)
VIDEO_WIDTH = 320


@dataclass
class PublishedFrame:
    """The localizer's outputs for one frame, as a subscriber sees them."""

    heatmap: np.ndarray  # [H, W] float32 in [0, 1]
    mask: np.ndarray  # [H, W] bool
    bearing: np.ndarray | None  # unit vector, camera optical frame
    peak: tuple[float, float] | None = None  # (u, v) frame pixels; None: the heatmap's argmax
    score: float | None = None  # the source score; -inf: silence; None: not known (live replay)

    @property
    def claimed(self) -> bool:
        """Whether a source was published: the no-source answer is all zero."""
        return bool(self.heatmap.any())

    def peak_cell(self, height: int, width: int) -> tuple[int, int]:
        """(row, col) of the peak on a height x width grid over the frame.

        The node's peak comes from the scores before the sigmoid; the published heatmap's own
        argmax is only a fallback, since a saturated heatmap has many maxima.
        """
        frame_h, frame_w = self.heatmap.shape
        if self.peak is None:
            row, col = np.unravel_index(int(np.argmax(self.heatmap)), self.heatmap.shape)
            u, v = float(col), float(row)
        else:
            u, v = self.peak
        row = int(np.clip(round((v + 0.5) * height / frame_h - 0.5), 0, height - 1))
        col = int(np.clip(round((u + 0.5) * width / frame_w - 0.5), 0, width - 1))
        return row, col


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "p99": round(float(p99), 3),
            "max": round(float(max(values)), 3), "n": len(values)}  # fmt: skip


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))))


class ReplayScorer:
    def __init__(
        self, n_frames: int, sheet_frames: int = 12, video_frames: int = 0, fps: float = 30.0
    ) -> None:
        """n_frames: image messages in the bag, so the contact sheet spans the whole bag."""
        count = min(sheet_frames, n_frames)
        self.sheet_indices = set(np.linspace(0, n_frames - 1, count).astype(int).tolist())
        self.video_frames, self.fps = video_frames, fps
        self.metrics = LocalizationMetrics()
        self.mask_metrics = MaskAccumulator(keep_frame_curves=False)
        self.camera: CameraModel | None = None
        self.counts: Counter[str] = Counter()
        self.peak_hits: list[bool] = []
        self.bearing_errors: list[float] = []
        self.labels: dict[StampKey, str] = {}  # the label topic's kind of each negative frame
        self.detections: dict[StampKey, tuple[bool, bool, float | None]] = {}  # sounding,
        # claimed, score: by frame, so a label that comes after its frame was scored still counts
        self._outputs: OrderedDict[StampKey, PublishedFrame] = OrderedDict()
        self._truths: OrderedDict[StampKey, np.ndarray] = OrderedDict()
        self._pictures: dict[StampKey, _Picture] = {}  # frames shown on the sheet or video
        self._last_truth: StampKey | None = None

    # --- inputs ---
    def add_frame(self, index: int, key: StampKey, rgb: Callable[[], np.ndarray]) -> None:
        """The bag's `index`-th frame; `rgb()` is called only if a picture needs the pixels."""
        self.counts["frames"] += 1
        if index in self.sheet_indices or index < self.video_frames:
            self._pictures[key] = _Picture(index, _shrink(rgb()))

    def add_truth(self, key: StampKey, mask: np.ndarray) -> None:
        self._last_truth = key
        if key in self._outputs:
            self._score(key, self._outputs.pop(key), mask)
        else:
            self._remember(self._truths, key, mask, "truth_without_output")

    def add_label(self, label: str) -> None:
        """The label of the last ground-truth mask ("positive/<class>", "negative/<kind>"; the
        label topic carries no header and is written right after its mask): names the kind of
        a negative frame in the detection figures."""
        if self._last_truth is not None and len(self.labels) < MAX_SCORED:
            self.labels[self._last_truth] = label.removeprefix("negative/")
        self._last_truth = None  # one label per mask

    def refuse_truth(self) -> None:
        """A ground-truth mask that could not be read: its label, which follows, names no frame
        (it must not relabel the frame before)."""
        self._last_truth = None
        self.counts["bad_ground_truth"] += 1

    def add_output(self, key: StampKey, output: PublishedFrame) -> None:
        self.counts["outputs"] += 1
        self.counts["silent"] += not output.heatmap.any()
        if key in self._truths:
            self._score(key, output, self._truths.pop(key))
        else:
            self._remember(self._outputs, key, output, "output_without_truth")
        if key in self._pictures:
            self._pictures[key].output = output

    def _remember(self, waiting: OrderedDict, key: StampKey, value, overflow: str) -> None:
        waiting[key] = value
        if len(waiting) > MAX_WAITING:
            waiting.popitem(last=False)
            self.counts[overflow] += 1

    # --- scoring ---
    def _score(self, key: StampKey, output: PublishedFrame, truth: np.ndarray) -> None:
        if len(self.detections) < MAX_SCORED:
            self.detections[key] = (bool(truth.any()), output.claimed, output.score)
        if key in self._pictures:
            self._pictures[key].truth = truth
        if not truth.any():
            self.counts["negative"] += 1
            return
        self.counts["scored"] += 1
        self.metrics.update(output.heatmap, gt_map=mask_to_map(truth), mask_gt=truth)
        published = resize_nearest(output.mask, *truth.shape).astype(np.float32)
        self.mask_metrics.update(published, truth)
        row, col = output.peak_cell(*truth.shape)
        self.peak_hits.append(bool(truth[row, col]))
        if output.bearing is not None and self.camera is not None:
            self.bearing_errors.append(_angle_deg(output.bearing, self._truth_bearing(truth)))

    def _truth_bearing(self, truth: np.ndarray) -> np.ndarray:
        rows, cols = np.nonzero(truth)
        height, width = self.camera.described_size(truth.shape)
        u = (cols.mean() + 0.5) * width / truth.shape[1] - 0.5  # centroid in K's pixels
        v = (rows.mean() + 0.5) * height / truth.shape[0] - 0.5
        return self.camera.ray(u, v)

    # --- results ---
    def figures(self) -> dict[str, object]:
        """Set-level figures; None for the accuracy ones when the bag has no ground truth."""
        counts = {
            "frames": self.counts["frames"],
            "outputs": self.counts["outputs"],
            "scored": self.counts["scored"],
            "negative": self.counts["negative"],
            "silent": self.counts["silent"],
            "outputs_without_ground_truth": len(self._outputs)
            + self.counts["output_without_truth"],
        }
        if self.counts["bad_ground_truth"]:
            counts["bad_ground_truth"] = self.counts["bad_ground_truth"]
        detection = self._detection_figures()
        if not self.counts["scored"]:
            return {"counts": counts, "accuracy": None, "detection": detection}
        scores = self.metrics.compute()
        accuracy = {
            name: round(float(scores[name]), 4) for name in ("ciou", "auc", "miou", "fscore")
        }
        accuracy["mask_miou"] = round(float(self.mask_metrics.compute()["miou"]), 4)
        if self.peak_hits:
            accuracy["peak_in_object"] = round(float(np.mean(self.peak_hits)), 4)
        if self.bearing_errors:
            accuracy["bearing_error_deg_median"] = round(float(np.median(self.bearing_errors)), 2)
        return {"counts": counts, "accuracy": accuracy, "detection": detection}

    def _detection_figures(self) -> dict[str, object] | None:
        """How often a source was claimed per kind of frame; with the scores known, also the
        ROC AUC and the true-positive rate at 5 % false alarms. None without negatives."""
        sounding, negatives = [], {}
        for key, (is_sounding, claimed, score) in self.detections.items():
            if is_sounding:
                sounding.append((claimed, score))
            else:
                negatives.setdefault(self.labels.get(key, "negative"), []).append((claimed, score))
        if not negatives:
            return None
        frames = [*sounding, *(f for v in negatives.values() for f in v)]
        if all(score is not None for _, score in frames):
            figures = detection_figures(
                np.array([s for _, s in sounding], float),
                {k: np.array([s for _, s in v], float) for k, v in negatives.items()}, None,
            )  # fmt: skip
        else:
            figures = {"n_positive": len(sounding), "roc_auc": None,
                       "n_negative": {k: len(v) for k, v in negatives.items()}}  # fmt: skip
        claimed = [c for c, _ in sounding]
        figures["tpr_at_threshold"] = float(np.mean(claimed)) if claimed else None
        figures["false_source_rate"] = {
            kind: float(np.mean([c for c, _ in frames_of])) for kind, frames_of in negatives.items()
        }
        return figures

    def write_pictures(self, out_dir: Path) -> dict[str, str]:
        """contact_sheet.png (frames spread over the bag) and, if asked, overlay.gif."""
        shown = sorted((p for p in self._pictures.values() if p.output is not None),
                       key=lambda p: p.index)  # fmt: skip
        written = {}
        sheet = [p for p in shown if p.index in self.sheet_indices]
        if sheet:
            tiles, labels = zip(*(p.render() for p in sheet), strict=True)
            grid = tile_grid(tiles, columns=min(6, len(tiles)), labels=labels)
            written["contact_sheet"] = str(save_png(out_dir / "contact_sheet.png", grid))
        video = [p.render()[0] for p in shown if p.index < self.video_frames]
        if video:
            written["video"] = str(save_gif(out_dir / "overlay.gif", video, self.fps))
        return written


@dataclass
class _Picture:
    index: int  # the frame's place in the bag
    rgb: np.ndarray  # at most VIDEO_WIDTH wide
    output: PublishedFrame | None = None
    truth: np.ndarray | None = None

    def render(self) -> tuple[np.ndarray, str]:
        """Heatmap overlay with the mask outlined (cyan), the true object outlined (white), the
        peak green on it or red off it."""
        size = self.rgb.shape[:2]
        heatmap = resize_bilinear(self.output.heatmap, *size)
        tile = localization_overlay(self.rgb, heatmap, self.output.mask)
        label = f"#{self.index}"
        if self.truth is not None and self.truth.any():
            truth = resize_nearest(self.truth, *size)
            row, col = self.output.peak_cell(*size)
            hit = bool(truth[row, col])
            tile = draw_marker(draw_outline(tile, truth), col, row, HIT if hit else MISS)
            label += " hit" if hit else " miss"
        return tile, label


def _shrink(tile: np.ndarray) -> np.ndarray:
    if tile.shape[1] <= VIDEO_WIDTH:
        return tile
    height = round(tile.shape[0] * VIDEO_WIDTH / tile.shape[1])
    from PIL import Image

    return np.asarray(Image.fromarray(tile).resize((VIDEO_WIDTH, height)))
