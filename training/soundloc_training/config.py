"""Training configuration: read from YAML in per-component sections, validated in one place.

A config file names the run (`out_dir`, `method`) and groups every other setting under the
component that reads it; the data's `source` (KIND:PATH) is the setting `data`:

    out_dir: runs/tuxav_uspl
    method: uspl
    data: {source: tuxav:data/tuxav, flip_prob: 0.5, audio_jitter_s: 0.25}
    model: {backbone: efficientnet_lite0, embed_dim: 128, tau: 0.03}
    optimisation: {batch_size: 128, epochs: 20, lr: 0.001}
    ier: {iterations: 2}
    uspl: {walk_steps: 128}

`SECTIONS` says which setting belongs where; `load_config` refuses an unknown setting, one in
the wrong section, or a flat file of the old layout, saying what to move where. A run writes
its config.yaml in the same layout (`config_document`), so every run directory's config loads
back. Checkpoints keep the settings flat (`config_from_dict` reads both).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from soundloc_ros.core.atomic import atomic_write_text
from soundloc_ros.core.features import LogMelConfig


@dataclass(frozen=True)
class AudioAugmentation:
    """What the data layer needs to augment a batch's audio (section `data`)."""

    jitter_s: float  # the window may end up to this much before the frame
    gain_db: float  # level augmentation range
    mask_bands: int  # SpecAugment: widest masked mel band span
    mask_frames: int  # SpecAugment: widest masked time span (10 ms frames)


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
    # --- `ier` (methods/ier.py, orchestration/ier.py); ignored by other methods ---
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
    def audio_augmentation(self) -> AudioAugmentation:
        return AudioAugmentation(self.audio_jitter_s, self.audio_gain_db, self.spec_mask_bands,
                                 self.spec_mask_frames)  # fmt: skip

    @property
    def out_path(self) -> Path:
        return Path(self.out_dir)


RUN_KEYS = ("out_dir", "method")  # top level: which run this is
# fmt: off
SECTIONS: dict[str, tuple[str, ...]] = {
    "model": ("backbone", "pretrained", "image_size", "embed_dim", "tau", "frontend"),
    "data": ("data", "flip_prob", "audio_jitter_s", "audio_gain_db", "spec_mask_bands",
             "spec_mask_frames", "limit_train", "limit_eval", "cache_dir",
             "contact_sheet_frames"),
    "optimisation": ("batch_size", "epochs", "lr", "weight_decay", "warmup_epochs", "seed",
                     "positive_fraction", "background_fraction", "feature_dropout",
                     "select_metric", "init_checkpoint"),
    "ier": ("iterations", "iteration_epochs", "fg_threshold", "bg_threshold", "region_softness",
            "region_tau", "audio_clusters", "cluster_positives", "intra_weight", "inter_weight",
            "mil_weight"),
    "uspl": ("mask_mode", "mask_fraction", "mask_weight", "coarse_checkpoint", "pixel_channels",
             "affinity_fg_threshold", "affinity_bg_threshold", "pair_radius", "pair_offsets",
             "affinity_radius", "affinity_beta", "walk_steps", "smr_epochs", "sps_epochs",
             "pixel_batch_size", "pixel_lr", "pseudo_mask_threshold", "pseudo_mask_band"),
}
# fmt: on
SECTION_OF = {name: section for section, names in SECTIONS.items() for name in names}
SOURCE = "source"  # the file's name for the setting `data` (KIND:PATH) in section data:


def _file_name(name: str) -> str:
    return SOURCE if name == "data" else name


def config_from_dict(values: dict[str, Any], source: str) -> TrainConfig:
    """Flat settings -> a validated TrainConfig; errors name `source` and the fix."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{source}: unknown setting(s) {unknown}; known settings: {sorted(known)}")
    missing = [name for name in ("data", "out_dir") if name not in values]
    if missing:
        raise ValueError(f"{source}: missing required setting(s) {missing}")
    config = TrainConfig(**values)
    config.audio_frontend  # noqa: B018 - validates the front-end block early, with its message
    _check_sounding_pixel_settings(config)
    return config


def flatten_sections(document: dict[str, Any], source: str) -> dict[str, Any]:
    """A sectioned config document -> flat settings, refusing misplaced or unknown ones."""
    flat = {key: document[key] for key in RUN_KEYS if key in document}
    flat_layout = [
        key
        for key in document
        if key in SECTION_OF and not (key in SECTIONS and isinstance(document[key], dict))
    ]  # `data: KIND:PATH` too
    misplaced = {_file_name(key): SECTION_OF[key] for key in flat_layout}
    if misplaced:
        moves = "; ".join(f"{key} under {section}:" for key, section in misplaced.items())
        raise ValueError(
            f"{source}: settings now sit in sections ({', '.join(SECTIONS)}); move {moves}"
        )
    unknown = sorted(set(document) - set(RUN_KEYS) - set(SECTIONS))
    if unknown:
        raise ValueError(
            f"{source}: unknown top-level key(s) {unknown}; a config has {list(RUN_KEYS)} and "
            f"the sections {list(SECTIONS)}"
        )
    for section in SECTIONS:
        values = document.get(section) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{source}: section {section}: must be a mapping of settings")
        for key, value in values.items():
            name = "data" if (section, key) == ("data", SOURCE) else key
            home = None if name == "data" and key != SOURCE else SECTION_OF.get(name)
            if home != section:
                known = [_file_name(n) for n in SECTIONS[section]]
                where = f"it belongs under {home}:" if home else f"known: {known}"
                raise ValueError(f"{source}: {key} is not a {section} setting ({where})")
            flat[name] = value
    return flat


def config_document(config: TrainConfig) -> dict[str, Any]:
    """The config in the file layout `load_config` reads (what a run writes as config.yaml)."""
    values = dataclasses.asdict(config)
    document: dict[str, Any] = {key: values[key] for key in RUN_KEYS}
    for section, names in SECTIONS.items():
        document[section] = {_file_name(name): values[name] for name in names}
    return document


def write_config(config: TrainConfig, directory: Path) -> None:
    """DIRECTORY/config.yaml, atomically, in the layout load_config reads."""
    text = yaml.safe_dump(config_document(config), sort_keys=False)
    atomic_write_text(directory / "config.yaml", text)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a sectioned YAML config; `overrides` are `section.key` or bare setting names."""
    document = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(document).__name__}")
    values = flatten_sections(document, str(path))
    for key, value in (overrides or {}).items():
        section, _, name = key.rpartition(".")
        name = "data" if (section, name) == ("data", SOURCE) else name
        if section and SECTION_OF.get(name) != section:
            raise ValueError(f"--set {key}: {name} is not a {section} setting")
        values[name] = value
    return config_from_dict(values, str(path))


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
