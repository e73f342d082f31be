"""`ier`: iterative contrastive learning (Lin et al., CVIU 2023; built from its abstract).

One iteration's training step. Iteration 0 has no pseudo-labels and trains the baseline's
multiple-instance objective (losses/contrastive.py). Iterations 1..K get fixed pseudo-labels from
the frozen model of the previous iteration (pseudo_labels.py; run by orchestration/ier.py), train
    intra_weight * intra-frame region contrast  (losses/region_contrast.py)
  + inter_weight * inter-frame cluster-aware contrast  (losses/cluster_contrast.py)
  + mil_weight * the baseline's multiple-instance term, with clips of the frame's own audio
    cluster removed from its negatives.
The multiple-instance term keeps a path to correct the pseudo-labels: the region losses alone can
only reinforce the previous map, while the max over positions can move to a better place.
"""

from __future__ import annotations

import torch

from soundloc_training.config import TrainConfig
from soundloc_training.losses.cluster_contrast import InterFrameClusterContrast
from soundloc_training.losses.region_contrast import IntraFrameRegionContrast, region_mean
from soundloc_training.methods.baseline import BaselineMethod
from soundloc_training.models.localizer import Localizer
from soundloc_training.pseudo_labels import PseudoLabels, confident_regions


class IERMethod(BaselineMethod):
    """The baseline's step whose objective, once pseudo-labels are set, is the region terms."""

    def __init__(self, model: Localizer, config: TrainConfig) -> None:
        confident_regions(torch.zeros(1, 1, 1), config.fg_threshold, config.bg_threshold,
                          config.region_softness)  # fmt: skip  # validates the thresholds now
        super().__init__(model, config)
        self.intra = IntraFrameRegionContrast(config.region_tau)
        self.inter = InterFrameClusterContrast(config.region_tau, config.cluster_positives)
        self.weights = (config.intra_weight, config.inter_weight, config.mil_weight)
        self.pseudo_labels: PseudoLabels | None = None  # plain attribute: not a DDP buffer

    def set_pseudo_labels(self, labels: PseudoLabels) -> None:
        self.pseudo_labels = labels

    def objective(
        self,
        similarity: torch.Tensor,
        clip_ids: torch.Tensor,
        frames: torch.Tensor,
        flipped: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """similarity [B, B, h, w]; frames [B]: indices into the training table (keys of the
        pseudo-labels); flipped [B]: whose features were mirrored (their pseudo-maps are
        mirrored too)."""
        if self.pseudo_labels is None:  # iteration 0: the baseline objective
            return super().objective(similarity, clip_ids, frames, flipped)
        sounding, non_sounding = self.pseudo_labels.regions(frames, flipped)  # [B, h, w] each
        clusters = self.pseudo_labels.clusters[clip_ids]  # [B]
        own = similarity.diagonal(dim1=0, dim2=1).movedim(-1, 0)  # [B, h, w]
        scores = region_mean(similarity, sounding)  # [B, B]: image i's region vs audio j
        intra = self.intra(own, sounding, non_sounding)
        inter = self.inter(scores, clip_ids, clusters)
        # cluster ids as the groups whose members are not each other's negatives (a clip lies
        # in one cluster, so its other frames stay excluded as in the baseline)
        mil = self.mil(similarity, clusters)
        w_intra, w_inter, w_mil = self.weights
        loss = w_intra * intra + w_inter * inter + w_mil * mil
        stats = {"intra": float(intra), "inter": float(inter), "mil": float(mil),
                 "retrieval_acc": self.retrieval_accuracy(similarity, clusters)}  # fmt: skip
        return loss, stats
