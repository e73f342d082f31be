"""Shared fixtures for the training tests: a tiny SynthAV benchmark and a fast config."""

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the training tests need torch (make setup installs it)")

from soundloc_training.config import TrainConfig
from soundloc_training.datasets.build import BenchmarkSpec, build_benchmark


@pytest.fixture(scope="session")
def tiny_synthav(tmp_path_factory) -> Path:
    """96 train / 24 val / 24 test SynthAV clips at 128 px, written in the AVSBench-S4 layout."""
    root = tmp_path_factory.mktemp("bench") / "synthav"
    spec = BenchmarkSpec("synthav", train=96, val=24, test=24, image_size=128)
    return build_benchmark(spec, root, progress=lambda items, **_: items)


@pytest.fixture
def fast_config(tiny_synthav, tmp_path) -> TrainConfig:
    return TrainConfig(
        data=f"synthav:{tiny_synthav}",
        out_dir=str(tmp_path / "run"),
        image_size=128,
        batch_size=48,
        epochs=6,
        warmup_epochs=0.5,
        cache_dir=str(tmp_path / "cache"),
        contact_sheet_frames=4,
    )
