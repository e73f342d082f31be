"""Run orchestration: which run trains each `method:` of a config, in one registry.

- `baseline`, `baseline+maskaug`: one localizer run (single.py);
- `ier`: iterations 0..K, each a localizer run (ier.py);
- `uspl`, `ier+uspl`: a coarse run (single or ier), then the SMR and SPS heads (uspl.py).
Every run trains through the one loop, engine.Trainer.
"""

from __future__ import annotations

from collections.abc import Callable

from soundloc_training.config import TrainConfig
from soundloc_training.methods import METHODS
from soundloc_training.orchestration.ier import run_ier
from soundloc_training.orchestration.single import run_single
from soundloc_training.orchestration.uspl import COARSE_METHOD, run_uspl

Run = Callable[..., dict[str, object]]  # (config, resume=False, stop_after=None) -> summary

RUNS: dict[str, Run] = {
    **{method: run_single for method in METHODS if method != "ier"},
    "ier": run_ier,
    **{method: run_uspl for method in COARSE_METHOD},
}


def run(config: TrainConfig, resume: bool = False, stop_after: int | None = None) -> dict:
    """Train `config.method` per the registry; returns the run's summary."""
    if config.method not in RUNS:
        raise ValueError(f"unknown method {config.method!r}; choose one of {sorted(RUNS)}")
    return RUNS[config.method](config, resume=resume, stop_after=stop_after)
