"""The no-source decision: threshold calibration, the score, boxes and the detection figures."""

import json

import numpy as np
import pytest

from soundloc_ros.core.detection import (
    SourceDetection,
    bounding_box,
    calibrated_threshold,
    is_source,
)
from soundloc_ros.core.metrics import detection_figures, roc_auc


def test_the_threshold_lets_through_at_most_each_kinds_rate():
    # 10 mismatched scores 0.0..0.9: at 20 % two may pass -> the 3rd largest, 0.7 (0.8, 0.9 pass)
    mismatched = np.arange(10) / 10
    assert calibrated_threshold({"mismatched": mismatched}, {"mismatched": 0.2}) == 0.7
    # noise 0.1..0.4 at 0 %: nothing may pass -> its largest, 0.4; the stricter kind decides
    noise = np.array([0.1, 0.2, 0.3, 0.4])
    both = calibrated_threshold(
        {"mismatched": mismatched, "noise": noise}, {"mismatched": 0.5, "noise": 0.0}
    )
    assert both == 0.4  # mismatched alone at 50 % would allow 0.4 too (0.5..0.9 pass)
    rates = {"mismatched": 0.2, "noise": 0.0}
    strict = calibrated_threshold({"mismatched": mismatched, "noise": noise}, rates)
    assert strict == 0.7 and np.mean(mismatched > strict) <= 0.2 and not (noise > strict).any()


def test_silenced_negatives_never_pass_and_the_threshold_stays_a_cosine():
    gated = np.full(5, -np.inf)
    assert calibrated_threshold({"noise": gated}, {"noise": 0.0}) == -1.0
    with pytest.raises(ValueError, match="NaN"):
        calibrated_threshold({"noise": np.array([0.1, np.nan])}, {"noise": 0.1})
    with pytest.raises(ValueError, match="rate of 'noise'"):
        calibrated_threshold({"noise": np.array([0.1])}, {})


def test_the_score_is_the_largest_coarse_cosine():
    detection = SourceDetection(threshold=0.4, scale=0.03)
    coarse = np.array([[[[10.0, 20.0], [5.0, -30.0]]]])  # cosine / 0.03
    assert detection.score(coarse) == pytest.approx(0.6)
    assert is_source(0.6, 0.4) and not is_source(0.4, 0.4)  # at the threshold: no source


@pytest.mark.parametrize(
    "fields, message",
    [({"threshold": 1.5}, "threshold"), ({"scale": 0.0}, "scale"),
     ({"statistic": "mean"}, "statistic"), ({"threshold": float("nan")}, "threshold")],
)  # fmt: skip
def test_unusable_detection_settings_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        SourceDetection(**{"threshold": 0.4, "scale": 0.03, **fields})


def test_bounding_box_in_pixel_centres():
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:7] = True  # rows 1..3, columns 2..6
    assert bounding_box(mask) == (4.0, 2.0, 5.0, 3.0)
    assert bounding_box(np.zeros((6, 8), bool)) is None


def test_roc_auc_counts_ties_as_half():
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0]), np.array([2.0])) == 0.0
    assert roc_auc(np.array([2.0]), np.array([2.0, 1.0])) == 0.75  # one tie, one below
    assert roc_auc(np.array([-np.inf]), np.array([0.0])) == 0.0
    assert roc_auc(np.array([]), np.array([1.0])) is None


def test_detection_figures_are_json_with_nulls_for_what_is_undefined():
    positives = np.array([0.9, 0.8, 0.7, 0.3])
    negatives = {"noise": np.array([0.1, 0.2]), "offscreen": np.array([0.75, 0.2]),
                 "silence": np.array([-np.inf])}  # fmt: skip
    figures = detection_figures(positives, negatives, threshold=0.5)
    assert figures["tpr_at_threshold"] == 0.75  # 0.9, 0.8, 0.7 of four
    assert figures["false_source_rate"] == {"noise": 0.0, "offscreen": 0.5, "silence": 0.0}
    # 5 negatives, 5 % of them rounds down to none passing: the cut is the largest, 0.75
    assert figures["tpr_at_5pct_false_alarm"] == 0.5
    # pairs won: 0.9 and 0.8 beat all 5; 0.7 and 0.3 beat 4 (all but 0.75)
    assert figures["roc_auc"] == pytest.approx((5 + 5 + 4 + 4) / 20)
    empty = detection_figures(np.array([]), {"noise": np.array([])}, threshold=None)
    text = json.dumps(empty, allow_nan=False)  # raises on NaN
    assert json.loads(text)["roc_auc"] is None and empty["false_source_rate"] == {"noise": None}


def test_a_point_lands_on_the_object_by_its_nearest_pixel_clamped_to_the_frame():
    from soundloc_ros.core.metrics import lands_on

    truth = np.zeros((4, 6), bool)
    truth[1, 4] = True
    assert lands_on(truth, (4.4, 0.6)) and not lands_on(truth, (3.4, 1.0))  # round: col 3
    corner = np.zeros((4, 6), bool)
    corner[3, 5] = True
    assert lands_on(corner, (9.0, 7.0)) and not lands_on(corner, None)  # clamped; no point
