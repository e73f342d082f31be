"""Training configuration: one dataclass, read from YAML, strict about unknown keys."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from soundloc_ros.core.features import LogMelConfig


@dataclass
class TrainConfig:
    """Everything a run depends on; stored in every checkpoint."""

    data: str  # KIND:PATH, e.g. tuxav:data/tuxav
    out_dir: str
    method: str = "baseline"
    backbone: str = "efficientnet_lite0"
    pretrained: bool = True
    image_size: int = 224
    embed_dim: int = 128
    tau: float = 0.03
    positive_fraction: float = 0.0  # pool the top fraction of positions (0: the single max)
    background_fraction: float = 0.0  # own least-matching fraction as a hard negative (0: off)
    batch_size: int = 128  # global: split across torchrun processes
    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    seed: int = 0
    flip_prob: float = 0.5
    audio_jitter_s: float = 0.25  # the window may end up to this much before the frame
    audio_gain_db: float = 6.0  # level augmentation range
    spec_mask_bands: int = 8  # SpecAugment: widest masked mel band span
    spec_mask_frames: int = 10  # SpecAugment: widest masked time span (10 ms frames)
    feature_dropout: float = 0.5  # channel dropout on the visual features: keeps the head from
    # memorizing clip-specific appearance (without it the train loss keeps falling while the
    # validation maps degrade; see docs/methods.md)
    select_metric: str = "auc"  # validation metric that picks best.pt (no val labels:
    # retrieval_acc, see evaluate.evaluate_label_free)
    init_checkpoint: str | None = None  # fine-tuning: start from this run's trained weights
    # --- `ier` (methods/ier.py, runs/ier.py); ignored by other methods ---
    iterations: int = 2  # K: iteration 0 is the baseline objective, 1..K use pseudo-labels
    iteration_epochs: int = 5  # epochs of each iteration 1..K (iteration 0 trains `epochs`)
    fg_threshold: float = 0.6  # previous map, min-max normalized: above = confident sounding
    bg_threshold: float = 0.3  # ... below = confident non-sounding (between: left out)
    region_softness: float = 0.0  # 0: hard regions; > 0: sigmoid of this width at each threshold
    region_tau: float = 0.07  # temperature of the region-pooled (LVS-style) contrasts
    audio_clusters: int = 32  # k-means clusters of clip audio embeddings (re-estimated each k)
    cluster_positives: bool = True  # other clips of a frame's cluster are positives (else ignored)
    intra_weight: float = 1.0  # loss weights of iterations 1..K: intra-frame region contrast,
    inter_weight: float = 1.0  # inter-frame cluster-aware contrast,
    mil_weight: float = 1.0  # and the baseline's multiple-instance term (cluster-aware negatives)
    # --- `baseline+maskaug`, `uspl`, `ier+uspl` (methods/baseline_maskaug.py, pixel_stages.py) ---
    mask_mode: str = "random"  # visual masking: random (erase a random block of positions) or
    # guided (erase the map's best-matching positions; widened the maps, docs/methods.md "uspl")
    mask_fraction: float = 0.25  # share of the positions the masked view erases
    mask_weight: float = 1.0  # weight of the masked view's multiple-instance term
    coarse_checkpoint: str | None = None  # uspl / ier+uspl: refine this run's best.pt instead
    # of training the coarse stage in OUT/coarse
    pixel_channels: int = 32  # width of the SMR / SPS heads (on the stride-4 pixel grid)
    affinity_fg_threshold: float = 0.8  # SMR pair labels: coarse map (min-max) above = sounding,
    affinity_bg_threshold: float = 0.3  # below = non-sounding (tighter than IER's: purer seeds)
    pair_radius: int = 12  # SMR training pairs: positions at most this far apart (pixel grid),
    pair_offsets: int = 32  # of which this many offsets are drawn at random per step
    affinity_radius: int = 4  # random walk: moves to positions at most this far (pixel grid)
    # The walk and the pseudo-mask levels below were chosen on TuxAV val with
    # scripts/sweep_smr.py; docs/methods.md "uspl" gives the figures.
    affinity_beta: float = 16.0  # random walk on affinity ** beta (AffinityNet's beta)
    walk_steps: int = 128  # random-walk steps from the coarse map to the refined one
    smr_epochs: int = 2
    sps_epochs: int = 3
    pixel_batch_size: int = 32
    pixel_lr: float = 1e-3
    pseudo_mask_threshold: float = 0.6  # SPS pseudo-mask: refined map above this level
    pseudo_mask_band: float = 0.2  # refined map within this of the level: left out of SPS's loss
    limit_train: int | None = None  # use only the first N training frames (smoke runs)
    limit_eval: int | None = None
    contact_sheet_frames: int = 12
    cache_dir: str = "data/cache"  # frozen-backbone features, keyed by frames and backbone
    frontend: dict[str, Any] = field(default_factory=lambda: LogMelConfig().to_dict())

    @property
    def audio_frontend(self) -> LogMelConfig:
        return LogMelConfig.from_dict(self.frontend)

    @property
    def out_path(self) -> Path:
        return Path(self.out_dir)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config; unknown keys and missing required keys are errors naming them."""
    values = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
    values.update(overrides or {})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {unknown}; known settings: {sorted(known)}")
    missing = [name for name in ("data", "out_dir") if name not in values]
    if missing:
        raise ValueError(f"{path}: missing required setting(s) {missing}")
    config = TrainConfig(**values)
    config.audio_frontend  # noqa: B018 - validates the front-end block early, with its message
    _check_sounding_pixel_settings(config)
    return config


def _check_sounding_pixel_settings(config: TrainConfig) -> None:
    """Refuse a bad masking / SMR / SPS setting at load time, with the message of the part
    that reads it, rather than after minutes of feature caching."""
    from soundloc_training.affinity import disk_offsets
    from soundloc_training.losses.segmentation import PseudoMaskLoss
    from soundloc_training.masking import RegionMasking

    RegionMasking(config.mask_mode, config.mask_fraction)
    disk_offsets(config.affinity_radius)
    if not 0.0 <= config.affinity_bg_threshold < config.affinity_fg_threshold <= 1.0:
        raise ValueError(
            "need 0 <= affinity_bg_threshold < affinity_fg_threshold <= 1 (levels of the "
            f"min-max coarse map); got {config.affinity_bg_threshold}, "
            f"{config.affinity_fg_threshold}"
        )
    pairs = len(disk_offsets(config.pair_radius, half=True))
    if not 1 <= config.pair_offsets <= pairs:
        raise ValueError(
            f"pair_offsets must be between 1 and {pairs} (the offsets within pair_radius "
            f"{config.pair_radius}); got {config.pair_offsets}"
        )
    PseudoMaskLoss(config.pseudo_mask_threshold, config.pseudo_mask_band)
