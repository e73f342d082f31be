"""Ground-truth maps (core.ground_truth) against hand-computed values."""

import numpy as np
import pytest

from soundloc_ros.core.ground_truth import boxes_to_map, mask_to_map, resize_nearest


def test_boxes_consensus_weights_from_three_annotators():
    # size 10, so box edges are int(10 * coordinate):
    # A: (0, 0, .5, .5)      -> rows/cols 0..4 (25 px)
    # B: (.3, .3, .8, .8)    -> rows/cols 3..7 (25 px), overlapping A on rows/cols 3..4 (4 px)
    # C: (.35, .35, .45, .45) -> the single pixel (3, 3), inside A and B (3 boxes there)
    # Counts / 2, clipped to 1: 2+ boxes -> 1 (4 px), exactly one box -> 0.5 (21 + 21 = 42 px).
    boxes = [[(0.0, 0.0, 0.5, 0.5)], [(0.3, 0.3, 0.8, 0.8)], [(0.35, 0.35, 0.45, 0.45)]]
    gt = boxes_to_map(boxes, size=10, consensus=True)
    assert gt.dtype == np.float32 and gt.shape == (10, 10)
    assert gt[3, 3] == 1.0 and gt[4, 4] == 1.0 and gt[3, 4] == 1.0
    assert gt[0, 0] == 0.5 and gt[7, 7] == 0.5 and gt[2, 4] == 0.5
    assert gt[5, 5] == 0.5 and gt[8, 8] == 0.0 and gt[0, 9] == 0.0
    assert np.count_nonzero(gt == 1.0) == 4
    assert np.count_nonzero(gt == 0.5) == 42
    assert np.count_nonzero(gt == 0.0) == 54
    # VGG-SS style union: every covered pixel is 1.
    union = boxes_to_map(boxes, size=10, consensus=False)
    assert set(np.unique(union).tolist()) == {0.0, 1.0}
    assert np.count_nonzero(union) == 46


def test_boxes_two_boxes_of_one_annotator_count_twice_and_clip():
    # Summed over all boxes, not per annotator: overlapping boxes of one annotator also give 1.
    gt = boxes_to_map([[(0, 0, 0.5, 1.0), (0.25, 0, 1.0, 1.0)]], size=4, consensus=True)
    np.testing.assert_array_equal(gt[0], [0.5, 1.0, 0.5, 0.5])
    # Coordinates are clipped to [0, 1]; half-open pixel ranges: xmax = 0.5 stops before col 2.
    gt = boxes_to_map([[(-0.5, -1.0, 0.5, 2.0)]], size=4, consensus=False)
    np.testing.assert_array_equal(gt, np.tile([1.0, 1.0, 0.0, 0.0], (4, 1)))


def test_boxes_errors_name_the_layout():
    with pytest.raises(ValueError, match=r"single box.*\[boxes\]"):
        boxes_to_map([(0.1, 0.1, 0.5, 0.5)], consensus=False)
    with pytest.raises(ValueError, match="width, height"):
        boxes_to_map([[(0.5, 0.1, 0.2, 0.5)]], consensus=False)
    with pytest.raises(ValueError, match="4-tuples"):
        boxes_to_map([[(0.1, 0.1, 0.5)]], consensus=False)
    assert not boxes_to_map([[]], size=8, consensus=True).any()


def test_nearest_mask_resize():
    mask = np.array([[1, 0], [0, 1]], dtype=np.uint8)
    expected = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], np.float32)
    np.testing.assert_array_equal(mask_to_map(mask, size=4), expected)
    # Down 4 -> 2: source index floor((i + 0.5) * 2) = 1, 3 (the second pixel of each pair).
    values = np.arange(16).reshape(4, 4)
    np.testing.assert_array_equal(resize_nearest(values, 2, 2), [[5, 7], [13, 15]])
    # 3 -> 2: floor(0.75) = 0, floor(2.25) = 2.  3 -> 7: floor((i + 0.5) * 3/7).
    np.testing.assert_array_equal(resize_nearest(np.array([[10, 20, 30]]), 1, 2), [[10, 30]])
    np.testing.assert_array_equal(
        resize_nearest(np.array([[10, 20, 30]]), 1, 7), [[10, 10, 20, 20, 20, 30, 30]]
    )


def test_mask_encodings_are_equivalent_and_bad_ones_refused():
    bool_mask = np.zeros((6, 5), dtype=bool)
    bool_mask[1:4, 2:5] = True
    expected = mask_to_map(bool_mask, size=12)
    assert set(np.unique(expected).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(mask_to_map(bool_mask.astype(np.uint8) * 255, 12), expected)
    np.testing.assert_array_equal(mask_to_map(bool_mask.astype(np.int64), 12), expected)
    soft = np.where(bool_mask, 0.8, 0.3)  # float: foreground is > 0.5
    np.testing.assert_array_equal(mask_to_map(soft, 12), expected)
    with pytest.raises(ValueError, match=r"values \[0, 1, 2\].*mask == class_id"):
        mask_to_map(np.array([[0, 1], [2, 0]], dtype=np.uint8))
    with pytest.raises(ValueError, match="Divide a 0/255 mask by 255"):
        mask_to_map(bool_mask * 255.0)
    with pytest.raises(ValueError, match=r"mask\[\.\.\., 0\]"):
        mask_to_map(np.zeros((4, 4, 3), dtype=np.uint8))
