"""core.maps against hand-computed values: per-map min–max, the constant-map rule and mirroring,
numpy and torch alike (the torch cases skip where torch is not installed, as on a robot)."""

import numpy as np
import pytest

from soundloc_ros.core.maps import SPAN_FLOOR, minmax, mirror

# Two maps of one batch with different ranges: normalized together they would come out wrong.
# item 0: min -2, span 8; item 1: min 1, span 4.
BATCH = np.array([[[-2.0, 0.0], [2.0, 6.0]], [[1.0, 3.0], [5.0, 1.0]]])  # [2, 2, 2]
BATCH_NORMALIZED = np.array([[[0.0, 0.25], [0.5, 1.0]], [[0.0, 0.5], [1.0, 0.0]]])


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def test_numpy_normalizes_each_map_by_its_own_range():
    out = minmax(BATCH, constant=0.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, BATCH_NORMALIZED)  # exact: all are binary fractions
    np.testing.assert_array_equal(minmax(BATCH[0], constant=0.0), BATCH_NORMALIZED[0])  # [H, W]
    four_d = minmax(BATCH[:, None], constant=0.0)  # [B, 1, H, W]
    np.testing.assert_array_equal(four_d, BATCH_NORMALIZED[:, None])


def test_numpy_constant_map_gets_the_callers_value_and_leaves_the_others_alone():
    batch = np.stack([np.full((2, 2), 7.0), BATCH[1]])  # [2, 2, 2]: item 0 flat
    for constant in (0.0, 0.5):
        out = minmax(batch, constant=constant)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out[0], np.full((2, 2), constant))
        np.testing.assert_array_equal(out[1], BATCH_NORMALIZED[1])


def test_numpy_division_is_exact_even_for_a_nearly_flat_map():
    # float64 arithmetic, only span == 0 is constant: a span of 1e-9 still stretches to [0, 1].
    out = minmax(np.array([[1.0, 1.0 + 1e-9], [1.0 + 5e-10, 1.0]]), constant=0.5)
    np.testing.assert_allclose(out, [[0.0, 1.0], [0.5, 0.0]], atol=1e-6)


def test_numpy_refuses_what_it_cannot_normalize_and_says_why():
    heatmap = np.zeros((3, 3))
    heatmap[0, 0] = np.nan
    heatmap[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"2 non-finite value\(s\).*out of 9"):
        minmax(heatmap, constant=0.0)
    with pytest.raises(ValueError, match="empty"):
        minmax(np.zeros((0,)), constant=0.0)
    with pytest.raises(ValueError, match="empty"):
        minmax(np.zeros((2, 0, 3)), constant=0.0)
    with pytest.raises(ValueError, match="numeric"):
        minmax(np.array([["a", "b"]]), constant=0.0)
    with pytest.raises(ValueError, match=r"last two axes.*\(5,\).*maps\[None\]"):
        minmax(np.arange(5.0), constant=0.0)
    with pytest.raises(ValueError, match=r"constant.*\[0, 1\].*got 2"):
        minmax(BATCH, constant=2)


def test_torch_normalizes_each_map_by_its_own_range(torch):
    out = minmax(torch.tensor(BATCH, dtype=torch.float32), constant=0.0)
    assert out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), BATCH_NORMALIZED)
    four_d = minmax(torch.tensor(BATCH[:, None], dtype=torch.float32), constant=0.5)
    np.testing.assert_array_equal(four_d.numpy(), BATCH_NORMALIZED[:, None])


def test_torch_constant_map_gets_the_callers_value_and_leaves_the_others_alone(torch):
    batch = torch.tensor(np.stack([np.full((2, 2), -3.0), BATCH[1]]), dtype=torch.float32)
    for constant in (0.0, 0.5):
        out = minmax(batch, constant=constant)
        np.testing.assert_array_equal(out[0].numpy(), np.full((2, 2), constant))
        np.testing.assert_array_equal(out[1].numpy(), BATCH_NORMALIZED[1])


def test_torch_nearly_flat_map_fades_into_the_constant(torch):
    # span 0.1 SPAN_FLOOR: (x - min) / SPAN_FLOOR in [0, 0.1], plus constant * (1 - 0.1).
    step = 0.1 * SPAN_FLOOR
    flat = torch.tensor([[[0.0, step], [0.5 * step, 0.0]]], dtype=torch.float64)  # [1, 2, 2]
    np.testing.assert_allclose(minmax(flat, constant=0.0).numpy(), [[[0, 0.1], [0.05, 0]]])
    np.testing.assert_allclose(
        minmax(flat, constant=0.5).numpy(), [[[0.45, 0.55], [0.5, 0.45]]], atol=1e-12
    )


def test_torch_keeps_the_gradient(torch):
    maps = torch.tensor(BATCH, dtype=torch.float32, requires_grad=True)
    minmax(maps, constant=0.0)[0, 0, 1].backward()  # (0 - min) / span of item 0
    assert maps.grad[0, 0, 1] == pytest.approx(1 / 8)
    assert not maps.grad[1].any()  # item 1 does not take part in item 0's scale


def test_numpy_and_torch_give_the_same_numbers(torch):
    rng = np.random.default_rng(7)
    scales = np.array([0.01, 1, 30, 1, 2])[:, None, None, None]  # [B, 1, 1, 1]: ranges differ
    maps = rng.standard_normal((5, 1, 7, 9)) * scales
    maps[3] = 0.25  # one constant map
    maps = maps.astype(np.float32)
    for constant in (0.0, 0.5):
        expected = minmax(maps, constant=constant)
        got = minmax(torch.from_numpy(maps), constant=constant).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6)
        np.testing.assert_array_equal(got[3], np.full((1, 7, 9), constant, np.float32))


def test_minmax_does_not_touch_its_input(torch):
    maps = BATCH.copy()
    minmax(maps, constant=0.5)
    np.testing.assert_array_equal(maps, BATCH)
    tensor = torch.tensor(BATCH)
    minmax(tensor, constant=0.5)
    np.testing.assert_array_equal(tensor.numpy(), BATCH)


# [3, 2, 3]: item i is i * 10 + [[0, 1, 2], [3, 4, 5]]
ROWS = 10 * np.arange(3.0)[:, None, None] + np.arange(6.0).reshape(2, 3)
FLIP = np.array([True, False, True])
ROWS_MIRRORED = np.array(
    [[[2, 1, 0], [5, 4, 3]], [[10, 11, 12], [13, 14, 15]], [[22, 21, 20], [25, 24, 23]]], float
)


def test_numpy_mirror_flips_only_the_flagged_items_into_a_new_array():
    maps = ROWS.copy()
    out = mirror(maps, FLIP)
    np.testing.assert_array_equal(out, ROWS_MIRRORED)
    np.testing.assert_array_equal(maps, ROWS)  # the input is untouched
    assert not np.shares_memory(out, maps)
    untouched = mirror(maps, np.zeros(3, bool))
    np.testing.assert_array_equal(untouched, ROWS)
    assert not np.shares_memory(untouched, maps)
    four_d = mirror(ROWS[:, None], FLIP)  # [B, 1, H, W]: still the last axis
    np.testing.assert_array_equal(four_d, ROWS_MIRRORED[:, None])


def test_torch_mirror_flips_only_the_flagged_items_into_a_new_tensor(torch):
    maps = torch.tensor(ROWS)
    for flip in (FLIP, torch.from_numpy(FLIP)):  # numpy flags or a tensor of them
        out = mirror(maps, flip)
        np.testing.assert_array_equal(out.numpy(), ROWS_MIRRORED)
        np.testing.assert_array_equal(maps.numpy(), ROWS)
        assert out.data_ptr() != maps.data_ptr()
    regions = torch.tensor(ROWS > 12)  # bool maps, as the confident regions are
    np.testing.assert_array_equal(mirror(regions, FLIP).numpy(), ROWS_MIRRORED > 12)


def test_numpy_and_torch_mirror_agree(torch):
    rng = np.random.default_rng(1)
    maps = rng.standard_normal((6, 3, 4, 5)).astype(np.float32)
    flip = rng.random(6) < 0.5
    np.testing.assert_array_equal(mirror(torch.from_numpy(maps), flip).numpy(), mirror(maps, flip))


def test_mirror_refuses_flags_that_are_not_one_bool_per_item():
    with pytest.raises(ValueError, match=r"one boolean flag per batch item, shape \(3,\)"):
        mirror(ROWS, np.array([0, 2]))  # indices, not flags
    with pytest.raises(ValueError, match=r"got shape \(2,\) of dtype bool"):
        mirror(ROWS, np.array([True, False]))
    with pytest.raises(ValueError, match="last two axes"):
        mirror(np.arange(3.0), FLIP)
