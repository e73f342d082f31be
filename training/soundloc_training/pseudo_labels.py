"""Pseudo-labels of `ier` iteration k, computed once at its start by the frozen model of k−1.

The paper's abstract names two kinds; how each is built is our choice (docs/methods.md):

- **Regions** (intra-frame). Each training frame's similarity map with its own, un-augmented
  audio is min–max normalized to [0, 1]. Positions above `fg_threshold` form the confident
  *sounding* region, those below `bg_threshold` the confident *non-sounding* region; the band
  between is left out of the region losses (LVS's trimap, but drawn from the previous iteration's
  map instead of the current one, so the targets do not move while they are learned).
  Thresholds act on the normalized map rather than on ranks: the region then follows the extent
  of what the previous model found instead of a fixed fraction of the frame, and neither region
  is ever empty (the maximum is 1, the minimum 0) unless the map is flat, which is all 0.5 and
  so confident of nothing (core.maps.minmax). `softness` > 0 replaces each hard step with a
  sigmoid of that width.
- **Audio semantics** (inter-frame). One embedding per clip, the renormalized mean of its frames'
  audio embeddings (a clip makes one kind of sound; averaging removes the per-second nuisance),
  is clustered by k-means on unit vectors (so Euclidean k-means ranks by cosine). Clips of one
  cluster are taken to make the same kind of sound.

k-means is deterministic and independent of the order of the clips: the samples are sorted
lexicographically before k-means++ seeding (fixed seed), and clusters are numbered by their first
member in that order, so a permuted input yields the same label for every sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from soundloc_ros.core.maps import minmax, mirror
from soundloc_training.config import TrainConfig
from soundloc_training.data import FrameTable, VisualInputs
from soundloc_training.inference import embedded_batches
from soundloc_training.models.localizer import Localizer


def confident_regions(
    maps: torch.Tensor, fg_threshold: float, bg_threshold: float, softness: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps [N, h, w] (any scale) -> (sounding, non_sounding) weights [N, h, w] in [0, 1]."""
    if not 0.0 <= bg_threshold < fg_threshold <= 1.0:
        raise ValueError(
            f"need 0 <= bg_threshold < fg_threshold <= 1 on the normalized map; got "
            f"bg_threshold={bg_threshold}, fg_threshold={fg_threshold}"
        )
    if softness < 0:
        raise ValueError(f"region_softness must be >= 0 (0: hard regions); got {softness}")
    # a flat map shows no region: 0.5, mid-scale, lies between the usual thresholds (0.3 / 0.6,
    # SMR's 0.3 / 0.8), so it is neither sounding nor non-sounding
    normalized = minmax(maps, constant=0.5)
    if softness == 0:
        return (normalized > fg_threshold).float(), (normalized < bg_threshold).float()
    sounding = torch.sigmoid((normalized - fg_threshold) / softness)
    non_sounding = torch.sigmoid((bg_threshold - normalized) / softness)
    return sounding, non_sounding


def kmeans(
    samples: np.ndarray, k: int, seed: int = 0, max_iterations: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means (k-means++ seeding, Lloyd steps): (labels [N], centres [k', D]).

    Labels do not depend on the order of the rows: they are computed on the lexicographically
    sorted rows and numbered by first appearance there. k is capped at the number of samples;
    an emptied cluster keeps its centre (and stays empty), so k' = min(k, N).
    """
    if k < 1:
        raise ValueError(f"audio_clusters must be >= 1; got {k}")
    x = np.asarray(samples, dtype=np.float64)  # [N, D]
    order = np.lexsort(x.T[::-1])  # rows sorted by column 0, then 1, ...
    x_sorted = x[order]
    n, k = len(x_sorted), min(k, len(x_sorted))
    rng = np.random.default_rng(seed)
    centres = [x_sorted[rng.integers(n)]]
    nearest = ((x_sorted - centres[0]) ** 2).sum(axis=1)  # [N] squared distance to nearest centre
    for _ in range(1, k):
        total = nearest.sum()
        pick = rng.choice(n, p=nearest / total) if total > 0 else rng.integers(n)
        centres.append(x_sorted[pick])
        nearest = np.minimum(nearest, ((x_sorted - centres[-1]) ** 2).sum(axis=1))
    centre_array = np.stack(centres)  # [k, D]
    labels = np.full(n, -1)
    for _ in range(max_iterations):
        distances = (
            (x_sorted**2).sum(1)[:, None]
            - 2 * x_sorted @ centre_array.T
            + (centre_array**2).sum(1)[None, :]
        )  # [N, k]
        new_labels = distances.argmin(axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for j in range(k):
            members = labels == j
            if members.any():
                centre_array[j] = x_sorted[members].mean(axis=0)
    _, first = np.unique(labels, return_index=True)  # first sorted position of each cluster
    renumber = np.empty(k, dtype=np.int64)
    used = labels[np.sort(first)]  # cluster ids in order of first appearance
    renumber[used] = np.arange(len(used))
    canonical = np.empty(n, dtype=np.int64)
    canonical[order] = renumber[labels]
    return canonical, centre_array[used]


def clip_embeddings(frame_audio: np.ndarray, clip_ids: np.ndarray) -> np.ndarray:
    """Per-frame audio embeddings [N, D] -> one unit vector per clip id [n_clips, D]."""
    n_clips = int(clip_ids.max()) + 1
    sums = np.zeros((n_clips, frame_audio.shape[1]), dtype=np.float64)
    np.add.at(sums, clip_ids, frame_audio)
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


@torch.no_grad()
def maps_and_audio(
    model: Localizer, visual: VisualInputs, table: FrameTable, config: TrainConfig, batch: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Every frame's map with its own un-augmented audio [N, h, w], and its audio embedding
    [N, D], in one pass (the log-mel features dominate the cost)."""
    maps, audio = [], []
    for _, embedded, sound in embedded_batches(model, visual, table, config, batch):
        maps.append(model.paired_similarity(embedded, sound).numpy())  # [B, h, w]
        audio.append(sound.numpy())
    return np.concatenate(maps), np.concatenate(audio)


@dataclass
class PseudoLabels:
    """Fixed targets of one iteration, indexed by training-frame index (regions) or clip id."""

    sounding: torch.Tensor  # [N, h, w] weights in [0, 1]
    non_sounding: torch.Tensor  # [N, h, w]
    clusters: torch.Tensor  # [n_clips] int64 audio cluster of each clip id

    def regions(
        self, frames: torch.Tensor, flipped: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's (sounding, non_sounding) [B, h, w], mirrored where its features were."""
        sounding, non_sounding = self.sounding[frames], self.non_sounding[frames]  # [B, h, w]
        return mirror(sounding, flipped), mirror(non_sounding, flipped)

    def summary(self) -> dict[str, object]:
        sizes = torch.bincount(self.clusters).tolist()
        return {
            "sounding_fraction": round(float(self.sounding.mean()), 4),
            "non_sounding_fraction": round(float(self.non_sounding.mean()), 4),
            "clusters": len(sizes),
            "cluster_sizes": sorted(sizes, reverse=True),
        }


def compute_pseudo_labels(
    model: Localizer, visual: VisualInputs, table: FrameTable, config: TrainConfig
) -> PseudoLabels:
    """Regions from `model`'s maps and audio clusters from its embeddings (see module doc)."""
    maps, audio = maps_and_audio(model, visual, table, config)
    sounding, non_sounding = confident_regions(
        torch.from_numpy(maps), config.fg_threshold, config.bg_threshold, config.region_softness
    )
    labels, _ = kmeans(clip_embeddings(audio, table.clip_ids), config.audio_clusters, config.seed)
    return PseudoLabels(sounding, non_sounding, torch.from_numpy(labels))
