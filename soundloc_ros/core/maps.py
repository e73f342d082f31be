"""Min–max normalization and mirroring of maps: the one implementation, numpy and torch alike.

The heatmap the node publishes and the evaluation scores (numpy, core.metrics), the exported
graph's and SMR's refined map (torch, inside the ONNX graph), `ier`'s pseudo-labels and SMR's
seed regions (torch) all scale maps to [0, 1], and training mirrors the maps and targets of the
frames it flipped. Each used to do it its own way; these two functions are what they share.

A map is the last two axes of an array, [..., H, W]: [H, W], [B, H, W] and [B, 1, H, W] alike.
Arrays are numpy arrays or torch tensors. Core must import on a robot without torch, so a tensor
is recognised by its methods (not an ndarray, has `amin`) and handled with them.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

from soundloc_ros.core.postprocess import check_finite

Maps = TypeVar("Maps")  # np.ndarray or torch.Tensor: what comes in goes out

SPAN_FLOOR = 1e-6
"""Smallest span the torch path divides by: the exported graph's clamp (see `minmax`)."""


def _is_tensor(maps: Any) -> bool:
    return not isinstance(maps, np.ndarray) and hasattr(maps, "amin")


def _check_maps(name: str, shape: tuple[int, ...], needs: str) -> None:
    if len(shape) < 2:
        raise ValueError(
            f"{name} works on maps, the last two axes (H, W) of an array; got shape "
            f"{tuple(shape)}. {needs}"
        )


def minmax(maps: Maps, *, constant: float) -> Maps:
    """Each map (the last two axes) scaled linearly to [0, 1], (x - min) / (max - min).

    Per map, so that the items of a batch never share a scale. A constant map (max == min) has
    no scale to stretch: all of it becomes `constant`, which the caller chooses for what a flat
    map means there (0.0 "no localization" for a heatmap; 0.5 "neither confident region" for
    pseudo-labels thresholded on both sides).

    numpy (also lists): float64 arithmetic, float32 result; empty, non-numeric and non-finite
    maps are refused with a ValueError (one NaN would otherwise poison every later threshold).
    Exact: only span == 0 is constant.

    torch: the tensor's dtype, differentiable and ONNX-exportable (ReduceMin, ReduceMax, Sub,
    Clip, Div); no value checks, which a graph cannot make. The span is floored at SPAN_FLOOR,
    as the exported graph always has, so float32 noise on a flat map is not stretched to [0, 1]:
    a map flatter than that fades into `constant`, (x - min) / SPAN_FLOOR + constant * (1 -
    span / SPAN_FLOOR), reaching it at span 0. Every other map gets the numpy path's numbers
    (to float32 rounding), and `constant=0.0` adds no operation to the graph.
    """
    if not 0.0 <= constant <= 1.0:
        raise ValueError(
            f"minmax's constant (the value of a constant map) must lie in [0, 1] like the rest "
            f"of the output; got {constant}"
        )
    if _is_tensor(maps):
        return _minmax_tensor(maps, constant)
    return _minmax_numpy(np.asarray(maps), constant)


def _minmax_tensor(maps: Any, constant: float) -> Any:
    _check_maps("minmax", maps.shape, "Add the missing axis, e.g. maps[None] for one row.")
    low = maps.amin(dim=(-2, -1), keepdim=True)  # [..., 1, 1]
    span = maps.amax(dim=(-2, -1), keepdim=True) - low  # [..., 1, 1]
    scaled = (maps - low) / span.clamp_min(SPAN_FLOOR)
    if constant == 0.0:  # the fade below would add exactly 0
        return scaled
    return scaled + constant * (1 - span / SPAN_FLOOR).clamp_min(0)


def _minmax_numpy(maps: np.ndarray, constant: float) -> np.ndarray:
    if maps.size == 0:
        raise ValueError(
            f"minmax got an empty map of shape {maps.shape}; every map needs at least one pixel"
        )
    if not (np.issubdtype(maps.dtype, np.number) or maps.dtype == np.bool_):
        raise ValueError(
            f"minmax needs numeric maps; got dtype {maps.dtype}. Convert with "
            "np.asarray(maps, dtype=np.float32)."
        )
    _check_maps("minmax", maps.shape, "Add the missing axis, e.g. maps[None] for one row.")
    data = maps.astype(np.float64, copy=False)
    check_finite(data)
    low = data.min(axis=(-2, -1), keepdims=True)  # [..., 1, 1]
    span = data.max(axis=(-2, -1), keepdims=True) - low  # [..., 1, 1]
    flat = span == 0
    scaled = (data - low) / np.where(flat, 1.0, span)  # a flat map's 0 / 1, replaced next
    return np.where(flat, constant, scaled).astype(np.float32)


def mirror(maps: Maps, flip: Any) -> Maps:
    """A copy of the batch `maps` [B, ..., W] with the items whose `flip` flag is set mirrored
    along the last axis (width): a frame flipped for augmentation needs its maps and targets
    flipped alike. `flip` is bool [B], numpy or a CPU tensor. `maps` itself is never modified
    (it is often a slice of a cached table)."""
    if not _is_tensor(maps):
        maps = np.asarray(maps)
    _check_maps("mirror", maps.shape, "Pass a batch [B, ..., W] with one flag per item.")
    flags = np.asarray(flip)
    if flags.dtype != np.bool_ or flags.shape != tuple(maps.shape[:1]):
        raise ValueError(
            f"mirror needs one boolean flag per batch item, shape ({maps.shape[0]},) of dtype "
            f"bool; got shape {flags.shape} of dtype {flags.dtype}. Build it as e.g. "
            "rng.random(B) < flip_prob."
        )
    rows = np.flatnonzero(flags)  # [n_flipped] indices of the items to mirror
    if _is_tensor(maps):
        mirrored = maps.clone()
        mirrored[rows] = maps[rows].flip(-1)
        return mirrored
    mirrored = maps.copy()
    mirrored[rows] = maps[rows, ..., ::-1]
    return mirrored
