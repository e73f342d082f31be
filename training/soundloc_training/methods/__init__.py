"""Training methods: each turns a batch into a loss. Selected by `method:` in the config."""

from __future__ import annotations

from torch import nn

from soundloc_training.config import TrainConfig
from soundloc_training.methods.baseline import BaselineMethod
from soundloc_training.methods.baseline_maskaug import BaselineMaskAugMethod
from soundloc_training.methods.ier import IERMethod
from soundloc_training.models.localizer import Localizer

METHODS = {
    "baseline": BaselineMethod,
    "baseline+maskaug": BaselineMaskAugMethod,
    "ier": IERMethod,
}
# The runs that train them, and the staged methods uspl / ier+uspl built on them: orchestration/.


def build_method(config: TrainConfig, model: Localizer) -> nn.Module:
    if config.method not in METHODS:
        raise ValueError(f"unknown method {config.method!r}; choose one of {sorted(METHODS)}")
    return METHODS[config.method](model, config)
