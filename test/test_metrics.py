"""Localization metrics against hand-computed values and loop-based reference implementations."""

import math

import numpy as np
import pytest

from soundloc_ros.core.ground_truth import boxes_to_map, mask_to_map
from soundloc_ros.core.maps import minmax
from soundloc_ros.core.metrics import (
    FSCORE_THRESHOLDS,
    CiouAccumulator,
    LocalizationMetrics,
    MaskAccumulator,
    binarize_at_median,
    ciou_auc,
    ciou_score,
    frame_ciou,
    fscore_curve,
    mask_iou,
    prepare_heatmap,
)
from soundloc_ros.core.postprocess import resize_bilinear

# --------------------------------------------------------------------------------------------
# cIoU (LVS protocol)
# --------------------------------------------------------------------------------------------


def rows_map(n_rows: int, size: int = 224) -> np.ndarray:
    """size x size map that is 1 on the first n_rows rows and 0 below."""
    out = np.zeros((size, size), dtype=np.float32)
    out[:n_rows] = 1.0
    return out


def test_ciou_of_top_rows_heatmap_against_top_quarter_gt():
    # Heatmap: rows 0..99 high (22400 px), rows 100..223 low (27776 px). Sorted, the element at
    # index 224*224/2 = 25088 is still a low pixel, so threshold = 0 and P = rows 0..99.
    # GT: top quarter, rows 0..55 = 56*224 = 12544 px.
    # cIoU = sum(P*G) / (sum(G) + sum(P*(G==0))) = 12544 / (12544 + 44*224) = 12544 / 22400.
    heatmap = rows_map(100) * 5.0 - 2.0  # any affine scale: min–max normalization undoes it
    assert frame_ciou(heatmap, rows_map(56)) == pytest.approx(12544 / 22400)  # = 0.56


def test_ciou_exact_half_tie_keeps_the_maximum_as_lvs_does():
    # Top half (rows 0..111) high: index 25088 of the sorted map is the first high pixel, so the
    # threshold equals the maximum and nothing is strictly greater; the LVS script still keeps the
    # pixels at exactly 1.0, so the prediction is the top half: cIoU = 12544 / 25088 = 0.5.
    np.testing.assert_array_equal(binarize_at_median(rows_map(112)), rows_map(112))
    assert frame_ciou(rows_map(112), rows_map(56)) == pytest.approx(0.5)
    # A constant map normalizes to zeros and predicts nothing.
    assert not binarize_at_median(prepare_heatmap(np.full((7, 7), 0.3))).any()


def test_binary_gt_under_half_used_as_heatmap_scores_one():
    # Less than half the pixels are 1: the median is 0 and exactly the mask pixels are > 0.
    mask = np.zeros((224, 224), dtype=bool)
    mask[30:150, 40:200] = True  # 120*160 = 19200 < 25088 pixels
    gt = mask_to_map(mask)
    assert frame_ciou(gt, gt) == 1.0


def test_ciou_half_weight_pixels():
    # G: row 0 weight 1 (4 px), row 1 weight 0.5 (4 px). P: rows 1 and 2.
    # Intersection: the 4 predicted 0.5-pixels count 0.5 each = 2.
    # Union: sum(G) = 4 + 4*0.5 = 6, plus predicted pixels where G == 0 (row 2) = 4; the
    # predicted 0.5-pixels are not added again. cIoU = 2 / 10 = 0.2.
    gt = np.zeros((4, 4))
    gt[0] = 1.0
    gt[1] = 0.5
    pred = np.zeros((4, 4))
    pred[1:3] = 1.0
    assert ciou_score(pred, gt) == pytest.approx(0.2)


def test_ciou_empty_gt_and_empty_prediction_is_zero():
    assert ciou_score(np.zeros((5, 5)), np.zeros((5, 5))) == 0.0
    assert ciou_score(np.ones((5, 5)), np.zeros((5, 5))) == 0.0


def test_frame_ciou_matches_lvs_reference_loop_on_random_maps():
    # The LVS script: bilinear to 224, normalize, sort, threshold at [N/2], >, then < 1 -> 0.
    rng = np.random.default_rng(3)
    for shape in [(7, 7), (28, 28), (224, 224)]:
        heatmap = rng.standard_normal(shape)
        gt = boxes_to_map([[(0.1, 0.2, 0.6, 0.7)], [(0.3, 0.1, 0.9, 0.5)]], consensus=True)
        pred = minmax(resize_bilinear(heatmap, 224, 224), constant=0.0)
        threshold = np.sort(pred.flatten())[int(pred.shape[0] * pred.shape[1] / 2)]
        pred[pred > threshold] = 1
        infer = np.where(pred < 1, 0.0, 1.0)
        expected = np.sum(infer * gt) / (np.sum(gt) + np.sum(infer * (gt == 0)))
        assert frame_ciou(heatmap, gt) == pytest.approx(expected, abs=1e-12)


def test_auc_of_known_cious():
    # cIoUs [0, 0.5, 1]: success rate is 1 at t=0, 2/3 for t=0.05..0.5 (10 points) and 1/3 for
    # t=0.55..1.0 (10 points). Trapezoid, step 0.05:
    # 0.05 * (1/2 + 10*(2/3) + 9*(1/3) + (1/3)/2) = 0.05 * 31/3 = 31/60.
    acc = CiouAccumulator()
    for value in (0.0, 0.5, 1.0):
        acc.add(value)
    result = acc.compute()
    assert result["auc"] == pytest.approx(31 / 60)
    assert result["ciou"] == pytest.approx(2 / 3)  # cIoU >= 0.5 counts as a success
    assert result["ciou_mean"] == pytest.approx(0.5)
    assert result["n_frames"] == 3
    # All perfect: area 1. All zero: only t = 0 succeeds, area = 0.05 / 2.
    assert ciou_auc(np.array([1.0, 1.0])) == pytest.approx(1.0)
    assert ciou_auc(np.array([0.0])) == pytest.approx(0.025)


def test_ciou_accumulator_empty_and_errors():
    result = CiouAccumulator().compute()
    assert result["n_frames"] == 0 and math.isnan(result["ciou"]) and math.isnan(result["auc"])
    with pytest.raises(ValueError, match=r"shape \(100, 100\).*mask_to_map"):
        frame_ciou(np.zeros((7, 7)), np.zeros((100, 100)))
    with pytest.raises(ValueError, match=r"2-D.*heatmap\[0, 0\]"):
        frame_ciou(np.zeros((1, 1, 7, 7)), np.zeros((224, 224)))
    with pytest.raises(ValueError, match="2 non-finite"):
        frame_ciou(np.array([[np.nan, 0.0], [np.inf, 1.0]]), np.zeros((224, 224)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        CiouAccumulator().add(1.5)


# --------------------------------------------------------------------------------------------
# mIoU / F-score (AVSBench)
# --------------------------------------------------------------------------------------------


def reference_fscore_curve(prob: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """AVSBench's _eval_pr loop, one threshold at a time."""
    gt = gt.astype(np.float64)
    curve = np.zeros(FSCORE_THRESHOLDS.size)
    for i, threshold in enumerate(FSCORE_THRESHOLDS):
        pred = (prob >= threshold).astype(np.float64)
        tp = np.sum(pred * gt)
        precision, recall = tp / (pred.sum() + 1e-20), tp / (gt.sum() + 1e-20)
        with np.errstate(invalid="ignore"):
            f = 1.3 * precision * recall / (0.3 * precision + recall)
        curve[i] = 0.0 if np.isnan(f) else f
    return curve


def test_fscore_curve_matches_loop_reference_including_ties():
    rng = np.random.default_rng(7)
    gt = rng.random((20, 30)) < 0.3
    # Probabilities placed exactly on thresholds exercise the >= comparison.
    on_thresholds = FSCORE_THRESHOLDS[rng.integers(0, 255, size=(20, 30))]
    for prob in (rng.random((20, 30)), on_thresholds, rng.random((20, 30)).astype(np.float32)):
        np.testing.assert_allclose(
            fscore_curve(prob, gt), reference_fscore_curve(prob, gt), rtol=1e-12, atol=1e-15
        )


def test_fscore_of_perfect_prediction_is_one():
    gt = np.zeros((8, 8), dtype=bool)
    gt[2:5, 3:7] = True
    acc = MaskAccumulator()
    acc.update(gt.astype(np.float32), gt)
    result = acc.compute()
    assert result["fscore"] == pytest.approx(1.0)
    assert result["miou"] == pytest.approx(1.0)


def test_miou_by_hand_and_background_iou_for_empty_gt():
    gt = np.zeros((4, 4), dtype=bool)
    gt[0, :] = True  # 4 px
    prob = np.full((4, 4), 0.1)
    prob[0, :2] = 0.9  # 2 px inside the GT
    prob[1, :2] = 0.7  # 2 px outside
    # pred = prob > 0.5: inter = 2, union = |pred ∪ gt| = 4 + 2 = 6.
    assert mask_iou(prob, gt) == pytest.approx(2 / 6)
    # Exactly 0.5 is background (strict >).
    assert mask_iou(np.full((4, 4), 0.5), np.ones((4, 4), dtype=bool)) == pytest.approx(0.0)
    # Empty GT: IoU of the background. Nothing predicted -> 16/16; 4 px predicted -> 12/16.
    empty = np.zeros((4, 4), dtype=bool)
    assert mask_iou(np.full((4, 4), 0.2), empty) == pytest.approx(1.0)
    assert mask_iou(prob, empty) == pytest.approx(12 / 16)


def test_empty_gt_frames_count_in_miou_but_are_skipped_in_fscore():
    gt = np.zeros((4, 4), dtype=bool)
    gt[:2] = True
    acc = MaskAccumulator()
    acc.update(gt.astype(float), gt)  # perfect: IoU 1, F curve max 1
    acc.update(np.full((4, 4), 0.9), np.zeros((4, 4), dtype=bool))  # all wrong: background IoU 0
    result = acc.compute()
    assert result["miou"] == pytest.approx(0.5)
    assert result["fscore"] == pytest.approx(1.0)  # the empty frame is not averaged in
    assert result["n_frames_mask"] == 2 and result["n_frames_fscore"] == 1


def test_whole_set_fscore_differs_from_per_batch_variant():
    # 16 px, GT the top row (4 px). Frame A: 0.2 on the GT, 0.1 elsewhere -> F = 1 only for
    # thresholds in (0.1, 0.2]. Frame B: 0.9 / 0.8 -> F = 1 only in (0.8, 0.9].
    # Predicting every pixel: P = 4/16, R = 1, F = 1.3 * 0.25 / (0.3 * 0.25 + 1) = 0.325/1.075.
    # Whole set: best mean curve is in (0.1, 0.2]: (1 + 0.325/1.075) / 2 (B still predicts all).
    # Per batch of 1: each frame reaches 1, mean of maxima = 1.
    gt = np.zeros((4, 4), dtype=bool)
    gt[0] = True
    frame_a = np.where(gt, 0.2, 0.1)
    frame_b = np.where(gt, 0.9, 0.8)
    acc = MaskAccumulator()
    acc.update(frame_a, gt)
    acc.update(frame_b, gt)
    whole = (1.0 + 0.325 / 1.075) / 2.0
    assert acc.compute()["fscore"] == pytest.approx(whole)
    assert acc.fscore_per_batch(1) == pytest.approx(1.0)
    assert acc.fscore_per_batch(2) == pytest.approx(whole)
    # A batch holding only empty-GT frames scores 0, as in the official code.
    acc.update(np.full((4, 4), 0.3), np.zeros((4, 4), dtype=bool))
    assert acc.fscore_per_batch(1) == pytest.approx(2.0 / 3.0)
    assert acc.fscore_per_batch(2) == pytest.approx((whole + 0.0) / 2.0)
    assert acc.compute()["fscore"] == pytest.approx(whole)


def test_fscore_per_batch_needs_curves_and_a_valid_batch_size():
    acc = MaskAccumulator(keep_frame_curves=False)
    acc.update(np.ones((2, 2)), np.ones((2, 2), dtype=bool))
    assert acc.compute()["fscore"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="keep_frame_curves=True"):
        acc.fscore_per_batch(4)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        MaskAccumulator().fscore_per_batch(0)


def test_mask_metric_errors_name_the_fix():
    gt = np.ones((4, 4), dtype=bool)
    with pytest.raises(ValueError, match=r"\(2, 2\).*\(4, 4\).*resize"):
        mask_iou(np.zeros((2, 2)), gt)
    with pytest.raises(ValueError, match="apply the sigmoid"):
        fscore_curve(np.full((4, 4), 3.0), gt)
    with pytest.raises(ValueError, match="NaN"):
        mask_iou(np.full((4, 4), np.nan), gt)


# --------------------------------------------------------------------------------------------
# The combined accumulator
# --------------------------------------------------------------------------------------------


def test_localization_metrics_heatmap_path_resizes_and_normalizes():
    # A 2x2 heatmap, high top-left only. Bilinear 2 -> 8 per axis samples source positions
    # 0, 0, .125, .375, .625, .875, 1, 1 (clamped), i.e. weights a = 1, 1, .875, .625, .375, .125,
    # 0, 0 on the high pixel; the resized map is 4 * a_i * a_j and min–max gives a_i * a_j.
    # Products > 0.5 within rows/cols 0..3: all but (3, 3) (.625 * .625 = .39) -> 15 px, all
    # inside the 4x4 GT block: IoU = 15 / 16.
    heatmap = np.array([[4.0, 0.0], [0.0, 0.0]])
    mask = np.zeros((8, 8), dtype=bool)
    mask[:4, :4] = True
    metrics = LocalizationMetrics()
    scores = metrics.update(heatmap, gt_map=mask_to_map(mask), mask_gt=mask)
    assert scores["iou"] == pytest.approx(15 / 16)
    assert scores["ciou"] == pytest.approx(frame_ciou(heatmap, mask_to_map(mask)))
    result = metrics.compute()
    assert result["miou"] == pytest.approx(15 / 16)
    assert result["n_frames"] == 1 and result["n_frames_ciou"] == 1
    assert result["n_frames_mask"] == 1
    assert set(result) >= {"ciou", "auc", "ciou_mean", "miou", "fscore", "n_frames"}


def test_localization_metrics_probabilities_are_used_unchanged():
    # Probabilities all below 0.5 predict nothing; min–max normalizing them would not.
    mask = np.zeros((4, 4), dtype=bool)
    mask[:2] = True
    probabilities = np.where(mask, 0.4, 0.1)
    metrics = LocalizationMetrics()
    scores = metrics.update(probabilities, mask_gt=mask, probabilities=probabilities)
    assert scores == {"iou": pytest.approx(0.0)}
    as_heatmap = LocalizationMetrics().update(probabilities, mask_gt=mask)
    assert as_heatmap["iou"] == pytest.approx(1.0)


def test_localization_metrics_reports_nan_for_missing_ground_truth_and_refuses_none():
    metrics = LocalizationMetrics()
    metrics.update(np.eye(7), gt_map=mask_to_map(np.eye(7, dtype=bool)))
    result = metrics.compute()
    assert result["n_frames_ciou"] == 1 and result["n_frames_mask"] == 0
    assert math.isnan(result["miou"]) and math.isnan(result["fscore"])
    with pytest.raises(ValueError, match="needs ground truth"):
        metrics.update(np.eye(7))
    with pytest.raises(ValueError, match="pass mask_gt"):
        metrics.update(np.eye(7), gt_map=np.zeros((224, 224)), probabilities=np.eye(7))
    # A frame refused for its mask leaves no partial record behind.
    with pytest.raises(ValueError, match="resize the prediction"):
        metrics.update(np.eye(7), np.zeros((224, 224)), np.ones((7, 7)), probabilities=np.eye(6))
    after = metrics.compute()
    assert after["n_frames"] == 1 and after["n_frames_ciou"] == 1 and after["n_frames_mask"] == 0
