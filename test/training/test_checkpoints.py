"""Checkpoints load with weights_only=True: a hostile or damaged file is refused, never run."""

import importlib.util
import os
import pickle
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from soundloc_training.checkpoints import (
    CheckpointError,
    load_model,
    read_checkpoint,
    save_checkpoint,
)
from soundloc_training.cli.train import main as train_main
from soundloc_training.config import config_document
from soundloc_training.orchestration import run

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class Payload:
    """Unpickling this runs `touch MARKER`: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"config": {"data": "synthav:x", "out_dir": "x"}, "model": Payload(marker)}, path)
    return path


def load_sweep_script():
    spec = importlib.util.spec_from_file_location("sweep_smr", ROOT / "scripts" / "sweep_smr.py")
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    return sweep


def test_the_hostile_payload_is_real(tmp_path):
    """The control: unpickled the old way (weights_only=False), the file does run its code."""
    marker = tmp_path / "MARKER"
    path = hostile_checkpoint(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize(
    "command",
    [
        ["soundloc-export", "--checkpoint", "{pt}", "--out", "{tmp}/bundle"],
        ["soundloc-eval", "--data", "synthav:{tmp}/none", "--checkpoint", "{pt}"],
    ],
)
def test_a_checkpoint_whose_pickle_runs_code_is_refused_by_the_clis(tmp_path, command):
    marker = tmp_path / "MARKER"
    path = hostile_checkpoint(tmp_path / "evil.pt", marker)
    argv = [str(BIN / command[0])] + [a.format(pt=path, tmp=tmp_path) for a in command[1:]]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stderr
    assert not marker.exists()
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert str(path) in lines[0] and "soundloc-train" in lines[0]
    assert not (tmp_path / "bundle").exists()


def test_training_resume_and_the_sweep_refuse_a_hostile_checkpoint(fast_config, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    out = Path(fast_config.out_dir)
    out.mkdir(parents=True)
    hostile_checkpoint(out / "last.pt", marker)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(config_document(fast_config)))
    assert train_main([str(config), "--resume"]) == 2
    err = capsys.readouterr().err
    assert str(out / "last.pt") in err and len(err.strip().splitlines()) == 1
    assert load_sweep_script().main([str(out / "last.pt")]) == 2
    err = capsys.readouterr().err
    assert str(out / "last.pt") in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()


@dataclass
class Settings:
    rate: int = 16000


def test_saved_values_become_plain_and_foreign_objects_are_refused(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, config={"out_dir": Path("/runs/a"), "settings": Settings()},
                    best={"auc": np.float32(0.5), "epoch": np.int64(3)},
                    pairs=(torch.ones(2), [Path("x"), np.float64(2.0)]))  # fmt: skip
    loaded = torch.load(path, weights_only=True)
    assert loaded["config"] == {"out_dir": "/runs/a", "settings": {"rate": 16000}}
    assert loaded["best"] == {"auc": 0.5, "epoch": 3} and type(loaded["best"]["epoch"]) is int
    assert loaded["pairs"][1] == ["x", 2.0] and type(loaded["pairs"][1][1]) is float
    with pytest.raises(TypeError, match=r"pairs\[0\] is a ndarray"):
        save_checkpoint(path, pairs=(np.arange(2),))
    with pytest.raises(TypeError, match=r"extra\['f'\] is a function"):
        save_checkpoint(tmp_path / "d.pt", extra={"f": lambda: 0})
    assert not (tmp_path / "d.pt").exists()


def not_a_checkpoint(kind: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{kind}.pt"
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "text":
        path.write_text("model: best\n")
    elif kind == "truncated":
        data = (ROOT / "models" / "tuxav_baseline.pt").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "plain_pickle":
        path.write_bytes(pickle.dumps({"config": {}}))
    elif kind == "no_config":
        torch.save({"model": {"w": torch.zeros(2)}}, path)
    elif kind == "directory":
        path.mkdir()
    return path  # "missing": never written


@pytest.mark.parametrize(
    "kind", ["random", "text", "truncated", "plain_pickle", "no_config", "directory", "missing"]
)
def test_a_file_that_is_not_a_checkpoint_gives_one_clear_error(tmp_path, kind):
    path = not_a_checkpoint(kind, tmp_path)
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    assert "soundloc-train" in message or "best.pt" in message


def test_the_committed_baseline_checkpoint_loads():
    model, config = load_model(ROOT / "models" / "tuxav_baseline.pt")
    assert config.data.startswith("tuxav") and not model.training


def test_every_checkpoint_a_run_writes_loads_with_weights_only(fast_config):
    config = replace(fast_config, epochs=1)
    run(config)
    for name in ("best.pt", "last.pt"):
        state = torch.load(Path(config.out_dir) / name, weights_only=True)
        assert state["config"] == asdict(config) and state["epoch"] == 0
    load_model(Path(config.out_dir) / "best.pt")
