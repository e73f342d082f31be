"""Training methods: each turns a batch into a loss. Selected by `method:` in the config."""

from __future__ import annotations

from torch import nn

from soundloc_training.config import TrainConfig
from soundloc_training.methods.baseline import BaselineMethod
from soundloc_training.methods.ier import IERMethod
from soundloc_training.methods.masked_mil import MaskAugmentedMILMethod
from soundloc_training.models.localizer import Localizer

METHODS = {
    "baseline": BaselineMethod,
    "baseline+maskaug": MaskAugmentedMILMethod,
    "ier": IERMethod,
}
# Staged methods are drivers over these (cli/train.py): `ier` (iterative.py) and `uspl`,
# `ier+uspl` (sounding_pixels.py, whose coarse stage is `baseline+maskaug` or `ier`).


def build_method(config: TrainConfig, model: Localizer) -> nn.Module:
    if config.method not in METHODS:
        raise ValueError(f"unknown method {config.method!r}; choose one of {sorted(METHODS)}")
    return METHODS[config.method](model, config)
