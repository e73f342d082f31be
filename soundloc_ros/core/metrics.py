"""Sound-source localization metrics: the one implementation used by training and rosbag replay.

Two families, each reproducing the protocol that published numbers are computed with, so ours are
comparable to them:

- cIoU / AUC by the LVS protocol (Chen et al., "Localizing Visual Sounds the Hard Way"), used on
  Flickr-SoundNet and VGG-SS: the heatmap is resized to 224x224, min–max normalized, binarized at
  its median and compared with a ground-truth map whose pixels weigh 0, 0.5 or 1.
- mIoU / F-score by AVSBench's official code, for binary segmentation masks; the F-score is
  averaged over the whole set before taking the max over thresholds, because the official
  per-batch variant changes with the batch size. The per-batch variant is available, labelled.

Everything is numpy, frame by frame: accumulate with `update`, finalize with `compute`. Only one
float per frame (cIoU) and one 255-point F curve per frame are kept, never maps. The ground-truth
maps they compare with are built by core.ground_truth.
"""

from __future__ import annotations

import math

import numpy as np

from soundloc_ros.core.detection import calibrated_threshold
from soundloc_ros.core.ground_truth import LVS_SIZE, binary_mask
from soundloc_ros.core.maps import minmax
from soundloc_ros.core.postprocess import check_finite, check_size, resize_bilinear

CIOU_SUCCESS_THRESHOLD = 0.5
"""A frame counts as localized when its cIoU reaches this value (the reported "cIoU")."""

AUC_THRESHOLDS = np.linspace(0.0, 1.0, 21)
"""cIoU thresholds 0, 0.05, ..., 1 over which the success rate is integrated for the AUC."""

MASK_THRESHOLD = 0.5
"""Probability above which a pixel is foreground for mIoU (AVSBench: sigmoid(logit) > 0.5)."""

FSCORE_BETA2 = 0.3
"""beta² of the F-measure: precision weighs more than recall, as in salient-object detection."""

FSCORE_THRESHOLDS = np.linspace(0.0, 1.0 - 1e-10, 255)
"""The 255 probability thresholds of AVSBench's F-score curve."""

_IOU_EPS = 1e-7
_PR_EPS = 1e-20


# --------------------------------------------------------------------------------------------
# cIoU / AUC (LVS protocol)
# --------------------------------------------------------------------------------------------


def prepare_heatmap(heatmap: np.ndarray, size: int = LVS_SIZE) -> np.ndarray:
    """Heatmap of any resolution -> (size, size) float32 in [0, 1]: bilinear resize, min–max."""
    heatmap = np.asarray(heatmap)
    if heatmap.ndim != 2:
        raise ValueError(
            f"heatmap must be 2-D (H, W); got shape {heatmap.shape}. "
            "Select one map first, e.g. heatmap[0, 0] for a (1, 1, H, W) model output."
        )
    size = check_size("size", size)
    check_finite(heatmap)  # before resizing, so the count refers to the model's own pixels
    # a flat map localizes nothing: all 0, so its median cut marks no pixel
    return minmax(resize_bilinear(heatmap, size, size), constant=0.0)


def binarize_at_median(pred: np.ndarray) -> np.ndarray:
    """LVS binarization of a min-max normalized map: 1 where pred > its median element, else 0.

    The threshold is the element at index N//2 of the sorted map. Like the LVS script
    (`pred[pred > thr] = 1; pred[pred < 1] = 0`), pixels already at exactly 1.0 stay on even when
    they tie with the threshold: a map in which half or more of the pixels share the maximum
    predicts those pixels. A constant (all-zero after normalization) map predicts nothing.
    """
    pred = np.asarray(pred)
    if pred.size == 0:
        raise ValueError("binarize_at_median got an empty map")
    flat = pred.ravel()  # (N,)
    k = flat.size // 2  # LVS: int(H * W / 2)
    threshold = np.partition(flat, k)[k]  # same value as np.sort(flat)[k], without a full sort
    return ((pred > threshold) | (pred >= 1.0)).astype(np.float32)


def _check_gt_map(gt_map: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    gt = np.asarray(gt_map, dtype=np.float64)
    if gt.shape != shape:
        raise ValueError(
            f"ground-truth map has shape {gt.shape} but the prediction is {shape}; build it at "
            "that size with mask_to_map(mask, size) or boxes_to_map(boxes, size, consensus=...)"
        )
    if not np.all(np.isfinite(gt)) or gt.min() < 0.0 or gt.max() > 1.0:
        raise ValueError("ground-truth map must hold finite weights in [0, 1] (0, 0.5 or 1)")
    return gt


def ciou_score(pred_binary: np.ndarray, gt_map: np.ndarray) -> float:
    """cIoU of one binarized prediction against a weighted ground-truth map.

    cIoU = sum(P * G) / (sum(G) + sum(P * (G == 0))): a predicted pixel of weight w adds w to the
    intersection, every GT pixel adds its weight to the union, and predicted pixels outside the
    GT add 1 to the union. When the denominator is 0 (empty GT and empty prediction) the value is
    defined as 0.0: LVS would get NaN, which fails every success threshold, so 0.0 gives the same
    cIoU and AUC and keeps the mean finite.
    """
    pred = np.asarray(pred_binary, dtype=np.float64)
    gt = _check_gt_map(gt_map, pred.shape)
    intersection = float(np.sum(pred * gt))
    union = float(np.sum(gt) + np.sum(pred * (gt == 0)))
    if union == 0.0:
        return 0.0
    return intersection / union


def frame_ciou(heatmap: np.ndarray, gt_map: np.ndarray, size: int = LVS_SIZE) -> float:
    """Full LVS pipeline for one frame: resize + normalize, binarize at median, cIoU."""
    return ciou_score(binarize_at_median(prepare_heatmap(heatmap, size)), gt_map)


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    # np.trapz was renamed np.trapezoid in numpy 2; the formula is spelled out to serve both.
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def success_rates(cious: np.ndarray, thresholds: np.ndarray = AUC_THRESHOLDS) -> np.ndarray:
    """Fraction of frames whose cIoU >= t, for each threshold t."""
    values = np.asarray(cious, dtype=np.float64).ravel()  # (n_frames,)
    if values.size == 0:
        raise ValueError("no cIoU values: evaluate at least one frame first")
    return np.mean(values[None, :] >= np.asarray(thresholds)[:, None], axis=1)  # (n_thresholds,)


def ciou_auc(cious: np.ndarray) -> float:
    """Area under the success-rate curve over cIoU thresholds 0, 0.05, ..., 1; lies in [0, 1]."""
    return _trapezoid(success_rates(cious, AUC_THRESHOLDS), AUC_THRESHOLDS)


class CiouAccumulator:
    """Collects per-frame cIoU (LVS protocol) and reports cIoU@0.5, AUC and the mean cIoU."""

    def __init__(self, size: int = LVS_SIZE) -> None:
        self.size = check_size("size", size)
        self._values: list[float] = []

    def __len__(self) -> int:
        return len(self._values)

    def update(self, heatmap: np.ndarray, gt_map: np.ndarray) -> float:
        """Score one frame; gt_map is (size, size) from mask_to_map/boxes_to_map. Returns cIoU."""
        value = frame_ciou(heatmap, gt_map, self.size)
        self._values.append(value)
        return value

    def add(self, ciou: float) -> None:
        """Record an already computed per-frame cIoU (e.g. merged from another worker)."""
        value = float(ciou)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"a cIoU lies in [0, 1]; got {ciou!r}")
        self._values.append(value)

    @property
    def values(self) -> np.ndarray:
        """Per-frame cIoU values in update order (a copy)."""
        return np.array(self._values, dtype=np.float64)

    def compute(self) -> dict[str, float]:
        """ciou (fraction of frames with cIoU >= 0.5), auc, ciou_mean, n_frames; NaN if empty."""
        n = len(self._values)
        if n == 0:
            nan = math.nan
            return {"ciou": nan, "auc": nan, "ciou_mean": nan, "n_frames": 0}
        values = self.values
        return {
            "ciou": float(np.mean(values >= CIOU_SUCCESS_THRESHOLD)),
            "auc": ciou_auc(values),
            "ciou_mean": float(np.mean(values)),
            "n_frames": n,
        }


# --------------------------------------------------------------------------------------------
# mIoU / F-score (AVSBench)
# --------------------------------------------------------------------------------------------


def check_probabilities(probabilities: np.ndarray, gt_shape: tuple[int, ...]) -> np.ndarray:
    """Validate a probability map against the GT shape; returns it as float64."""
    prob = np.asarray(probabilities)
    if prob.shape != gt_shape:
        raise ValueError(
            f"probability map has shape {prob.shape} but the ground-truth mask is {gt_shape}; "
            "resize the prediction to the mask size first (resize_bilinear)"
        )
    prob = prob.astype(np.float64, copy=False)
    if not np.all(np.isfinite(prob)):
        raise ValueError("probability map contains NaN or inf")
    low, high = float(prob.min()), float(prob.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"probability map has values in [{low:g}, {high:g}], outside [0, 1]; apply the "
            "sigmoid to logits first, or pass the map as a heatmap to have it min–max normalized"
        )
    return prob


def _mask_pair(probabilities: np.ndarray, gt_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated (float64 probabilities, bool GT) of one frame, both (H, W)."""
    gt = binary_mask(gt_mask)
    return check_probabilities(probabilities, gt.shape), gt


def _iou(prob: np.ndarray, gt: np.ndarray) -> float:
    pred = prob > MASK_THRESHOLD
    if gt.any():
        inter = np.count_nonzero(pred & gt)
        union = np.count_nonzero(pred | gt)
    else:
        inter = np.count_nonzero(~pred)
        union = gt.size
    return inter / (union + _IOU_EPS)


def _fscore_curve(prob: np.ndarray, gt: np.ndarray) -> np.ndarray:
    order = np.argsort(prob, axis=None, kind="stable")  # (N,) flat indices, ascending prob
    prob_sorted = prob.ravel()[order]  # (N,)
    gt_sorted = gt.ravel()[order].astype(np.float64)  # (N,)
    # suffix_tp[k] = sum(gt_sorted[k:]); the extra trailing 0 serves "no pixel >= t".
    suffix_tp = np.concatenate([np.cumsum(gt_sorted[::-1])[::-1], [0.0]])  # (N + 1,)
    first = np.searchsorted(prob_sorted, FSCORE_THRESHOLDS, side="left")  # (255,)
    n_pred = prob_sorted.size - first
    tp = suffix_tp[first]
    precision = tp / (n_pred + _PR_EPS)
    recall = tp / (gt_sorted.sum() + _PR_EPS)
    numerator = (1.0 + FSCORE_BETA2) * precision * recall
    denominator = FSCORE_BETA2 * precision + recall
    with np.errstate(divide="ignore", invalid="ignore"):
        f = numerator / denominator
    return np.where(denominator > 0, f, 0.0)  # 0/0 (NaN) -> 0, as the official code does


def mask_iou(probabilities: np.ndarray, gt_mask: np.ndarray) -> float:
    """AVSBench frame IoU: foreground = prob > 0.5; an empty GT scores the background IoU.

    With an empty GT the official code replaces the intersection by the number of pixels both
    call background and the union by H*W, so predicting nothing there scores ~1.
    """
    return _iou(*_mask_pair(probabilities, gt_mask))


def fscore_curve(probabilities: np.ndarray, gt_mask: np.ndarray) -> np.ndarray:
    """F-measure (beta² = 0.3) at each of the 255 thresholds, pred_t = prob >= t. Shape (255,).

    Computed with one sort instead of 255 passes over the map: with the probabilities sorted
    ascending, the pixels at or above a threshold are a suffix, so their count and their GT sum
    (the true positives) come from a searchsorted index and a suffix sum. An empty GT gives an
    all-zero curve (recall 0); accumulators skip such frames, as AVSBench does.
    """
    return _fscore_curve(*_mask_pair(probabilities, gt_mask))


class MaskAccumulator:
    """mIoU and F-score over a set of frames, as AVSBench computes them.

    mIoU is the mean frame IoU over all frames. The F-score averages the per-frame F curves over
    all frames with a non-empty GT, then takes the max over thresholds (whole-set variant; the
    official per-batch variant is `fscore_per_batch`). Running sums are kept; with
    keep_frame_curves=True (needed for `fscore_per_batch`) one 255-float curve per non-empty
    frame is also kept (2 KB a frame); pass False for unbounded streams such as long replays.
    """

    def __init__(self, keep_frame_curves: bool = True) -> None:
        self.keep_frame_curves = keep_frame_curves
        self._iou_sum = 0.0
        self._n_frames = 0
        self._f_sum = np.zeros(FSCORE_THRESHOLDS.size, dtype=np.float64)
        self._n_f_frames = 0
        self._curves: list[np.ndarray | None] = []  # None marks an empty-GT frame

    def __len__(self) -> int:
        return self._n_frames

    def update(self, probabilities: np.ndarray, gt_mask: np.ndarray) -> float:
        """Add one frame: probabilities in [0, 1], same (H, W) as gt_mask. Returns its IoU."""
        return self._add(*_mask_pair(probabilities, gt_mask))

    def _add(self, prob: np.ndarray, gt: np.ndarray) -> float:
        """Record a validated (float64 probabilities, bool GT) pair; returns its IoU."""
        iou = _iou(prob, gt)
        curve = _fscore_curve(prob, gt) if gt.any() else None
        self._iou_sum += iou
        self._n_frames += 1
        if curve is not None:
            self._f_sum += curve
            self._n_f_frames += 1
        if self.keep_frame_curves:
            self._curves.append(curve)
        return iou

    def compute(self) -> dict[str, float]:
        """miou, fscore (whole set), n_frames_mask, n_frames_fscore; NaN where nothing counted."""
        miou = self._iou_sum / self._n_frames if self._n_frames else math.nan
        fscore = float(np.max(self._f_sum / self._n_f_frames)) if self._n_f_frames else math.nan
        return {
            "miou": float(miou),
            "fscore": fscore,
            "n_frames_mask": self._n_frames,
            "n_frames_fscore": self._n_f_frames,
        }

    def fscore_per_batch(self, batch_size: int) -> float:
        """Official AVSBench per-batch variant, reported only labelled as such.

        Frames are grouped in update order into consecutive batches of batch_size (the last
        may be shorter, like a DataLoader without drop_last); in each batch the curves of the
        non-empty frames are averaged and maxed, a batch with no non-empty frame scores 0 (the
        official code's zero-initialized score), and the batch maxima are averaged. The result
        depends on batch_size and frame order, which is why the whole-set `fscore` is primary.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        if not self.keep_frame_curves:
            raise ValueError(
                "fscore_per_batch needs the per-frame curves; create the accumulator with "
                "keep_frame_curves=True"
            )
        if not self._curves:
            return math.nan
        maxima = []
        for start in range(0, len(self._curves), batch_size):
            curves = [c for c in self._curves[start : start + batch_size] if c is not None]
            maxima.append(float(np.max(np.mean(curves, axis=0))) if curves else 0.0)
        return float(np.mean(maxima))


# --------------------------------------------------------------------------------------------
# Both families together
# --------------------------------------------------------------------------------------------


class LocalizationMetrics:
    """One accumulator for a localization method, fed frame by frame.

    Per frame, pass the method's heatmap and whichever ground truth the dataset has:
    - gt_map, a (size, size) weight map from `mask_to_map` or `boxes_to_map`, for cIoU/AUC;
    - mask_gt, a binary (H, W) mask, for mIoU/F-score.
    For mIoU/F-score a heatmap method's map is resized to the mask size (bilinear) and min–max
    normalized, and that is used as the probability map (so mIoU thresholds it at half its
    range). A model with a real probability output (a mask head, after the sigmoid) passes it as
    `probabilities=` instead; it is then used unchanged, and must already be at the mask size.

    `compute()` reports ciou, auc, ciou_mean (mean per-frame cIoU, not the success rate), miou,
    fscore (whole set), and the frame counts; a metric no frame had ground truth for is NaN.
    """

    def __init__(self, size: int = LVS_SIZE, keep_frame_curves: bool = True) -> None:
        self.ciou_metrics = CiouAccumulator(size)
        self.mask_metrics = MaskAccumulator(keep_frame_curves)
        self._n_frames = 0

    def update(
        self,
        heatmap: np.ndarray,
        gt_map: np.ndarray | None = None,
        mask_gt: np.ndarray | None = None,
        *,
        probabilities: np.ndarray | None = None,
    ) -> dict[str, float]:
        """Score one frame; returns the per-frame values computed ('ciou' and/or 'iou')."""
        if gt_map is None and mask_gt is None:
            raise ValueError("update needs ground truth: pass gt_map (cIoU/AUC), mask_gt, or both")
        if probabilities is not None and mask_gt is None:
            raise ValueError("probabilities are scored against mask_gt; pass mask_gt as well")
        # Everything is validated before anything is recorded, so a refused frame leaves the
        # accumulators consistent.
        ciou = None if gt_map is None else frame_ciou(heatmap, gt_map, self.ciou_metrics.size)
        mask_pair = None
        if mask_gt is not None:
            if probabilities is None:
                shape = np.shape(mask_gt)
                if len(shape) != 2:
                    raise ValueError(f"mask_gt must be 2-D (H, W); got shape {shape}")
                check_finite(heatmap)
                # a flat map localizes nothing: probability 0 everywhere, an empty mask
                probabilities = minmax(resize_bilinear(heatmap, *shape), constant=0.0)
            mask_pair = _mask_pair(probabilities, mask_gt)
        scores: dict[str, float] = {}
        if ciou is not None:
            self.ciou_metrics.add(ciou)
            scores["ciou"] = ciou
        if mask_pair is not None:
            scores["iou"] = self.mask_metrics._add(*mask_pair)
        self._n_frames += 1
        return scores

    def compute(self) -> dict[str, float]:
        """All set-level metrics plus n_frames (all updates), n_frames_ciou and n_frames_mask."""
        ciou = self.ciou_metrics.compute()
        masks = self.mask_metrics.compute()
        return {
            "ciou": ciou["ciou"],
            "auc": ciou["auc"],
            "ciou_mean": ciou["ciou_mean"],
            "miou": masks["miou"],
            "fscore": masks["fscore"],
            "n_frames": self._n_frames,
            "n_frames_ciou": ciou["n_frames"],
            "n_frames_mask": masks["n_frames_mask"],
            "n_frames_fscore": masks["n_frames_fscore"],
        }

    def fscore_per_batch(self, batch_size: int) -> float:
        """Official AVSBench per-batch F-score variant; see MaskAccumulator.fscore_per_batch."""
        return self.mask_metrics.fscore_per_batch(batch_size)


# --------------------------------------------------------------------------------------------
# Detection: is there a visible sounding source at all (core.detection)
# --------------------------------------------------------------------------------------------


def lands_on(truth: np.ndarray, point: tuple[float, float] | None) -> bool:
    """Whether pixel (u, v) (centres at integers, clamped to the mask) lies on the sounding
    object of a mask [H, W] bool; no point lands nowhere. How a peak or bearing is judged."""
    if point is None:
        return False
    u, v = point
    row = min(max(round(v), 0), truth.shape[0] - 1)
    col = min(max(round(u), 0), truth.shape[1] - 1)
    return bool(truth[row, col])


DETECTION_FALSE_ALARM = 0.05
"""The false-alarm rate at which the true-positive rate is reported (TPR@5%FA)."""


def roc_auc(positives: np.ndarray, negatives: np.ndarray) -> float | None:
    """P(a positive scores above a negative), ties counting one half (the Mann-Whitney form of
    the area under the ROC curve); None when either side is empty. -inf scores (the energy
    gate's "silence") rank below everything else."""
    positives, negatives = np.asarray(positives, float), np.sort(np.asarray(negatives, float))
    if positives.size == 0 or negatives.size == 0:
        return None
    below = np.searchsorted(negatives, positives, side="left")  # negatives < each positive
    ties = np.searchsorted(negatives, positives, side="right") - below
    return float((below + 0.5 * ties).sum() / (positives.size * negatives.size))


def rate_above(scores: np.ndarray, threshold: float) -> float | None:
    """Share of scores above the threshold (a source claimed); None for no scores."""
    scores = np.asarray(scores, float)
    return float(np.mean(scores > threshold)) if scores.size else None


def detection_figures(
    positives: np.ndarray, negatives: dict[str, np.ndarray], threshold: float | None
) -> dict[str, object]:
    """Detection over sounding frames (`positives`) and negative frames by kind: ROC AUC and the
    true-positive rate at 5 % false alarms over all negatives, and at `threshold` (the bundle's)
    the true-positive rate and the false-source rate of each kind. Undefined figures are None
    (null in JSON), never NaN."""
    pooled = np.concatenate([np.asarray(v, float) for v in negatives.values()] or [np.empty(0)])
    tpr_at_fa = None
    if pooled.size and np.size(positives):
        cut = calibrated_threshold({"all": pooled}, {"all": DETECTION_FALSE_ALARM})
        tpr_at_fa = rate_above(positives, cut)
    at_threshold = threshold is not None
    return {
        "n_positive": int(np.size(positives)),
        "n_negative": {kind: int(np.size(v)) for kind, v in negatives.items()},
        "roc_auc": roc_auc(positives, pooled),
        "tpr_at_5pct_false_alarm": tpr_at_fa,
        "threshold": threshold,
        "tpr_at_threshold": rate_above(positives, threshold) if at_threshold else None,
        "false_source_rate": {
            kind: rate_above(v, threshold) if at_threshold else None
            for kind, v in negatives.items()
        },
    }


def detection_summary(figures: dict[str, object]) -> str:
    """Detection figures (detection_figures' keys) in one line; undefined ones as n/a. Shared by
    soundloc-eval and soundloc-replay-eval, so both say the same thing the same way."""

    def show(value: object) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    rates = ", ".join(f"{k} {show(v)}" for k, v in figures["false_source_rate"].items())
    return (f"detection: source claimed on {show(figures['tpr_at_threshold'])} of sounding "
            f"frames; false-source rate {rates}; ROC AUC {show(figures['roc_auc'])}")  # fmt: skip


def json_ready(value: object) -> object:
    """A report with every NaN or infinite float (an undefined figure, or the gate's -inf) as
    None, and numpy numbers as Python ones, so json.dumps(..., allow_nan=False) always works:
    NaN is not JSON, and consumers in other languages reject it."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
