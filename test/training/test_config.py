"""Config files in sections: what loads, what is refused and what the message says to do."""

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from soundloc_training.config import (
    SECTIONS,
    TrainConfig,
    config_document,
    config_from_dict,
    load_config,
)

CONFIGS = sorted((Path(__file__).parents[2] / "training" / "configs").glob("*.yaml"))


def write(tmp_path, document) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_sectioned_file_sets_each_component(tmp_path):
    path = write(tmp_path, {"out_dir": "runs/x", "method": "uspl",
                            "data": {"source": "synthav:d", "flip_prob": 0.25},
                            "model": {"embed_dim": 64}, "optimisation": {"lr": 0.01},
                            "ier": {"iterations": 3}, "uspl": {"walk_steps": 16}})  # fmt: skip
    config = load_config(path)
    assert (config.data, config.flip_prob, config.embed_dim, config.lr) == (
        "synthav:d",
        0.25,
        64,
        0.01,
    )
    assert (config.iterations, config.walk_steps, config.method) == (3, 16, "uspl")


def test_a_run_writes_a_config_that_loads_back_unchanged(tmp_path):
    config = replace(TrainConfig(data="tuxav:d", out_dir="o"), lr=0.5, walk_steps=4, seed=3)
    assert load_config(write(tmp_path, config_document(config))) == config
    assert set(config_document(config)) == {"out_dir", "method", *SECTIONS}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_loads(path):
    assert load_config(path).out_dir.startswith("runs/")


def test_an_old_flat_file_is_told_where_each_setting_moves(tmp_path):
    path = write(tmp_path, {"data": "synthav:d", "out_dir": "o", "lr": 0.1, "walk_steps": 8})
    with pytest.raises(ValueError, match="sections") as error:
        load_config(path)
    message = str(error.value)
    assert "source under data:" in message and "lr under optimisation:" in message
    assert "walk_steps under uspl:" in message


def test_a_setting_in_the_wrong_section_names_its_home(tmp_path):
    path = write(tmp_path, {"out_dir": "o", "data": {"source": "s:d"}, "model": {"lr": 0.1}})
    with pytest.raises(
        ValueError, match="lr is not a model setting .it belongs under optimisation"
    ):
        load_config(path)


def test_overrides_take_a_section_or_a_bare_name(tmp_path):
    path = write(tmp_path, {"out_dir": "o", "data": {"source": "s:d"}})
    config = load_config(path, {"optimisation.lr": 0.2, "walk_steps": 4, "data.source": "t:e"})
    assert (config.lr, config.walk_steps, config.data) == (0.2, 4, "t:e")
    with pytest.raises(ValueError, match="--set model.lr: lr is not a model setting"):
        load_config(path, {"model.lr": 0.2})


def test_a_checkpoint_config_with_an_unknown_setting_is_named():
    with pytest.raises(ValueError, match=r"the checkpoint: unknown setting\(s\) \['shiny'\]"):
        config_from_dict({"data": "s:d", "out_dir": "o", "shiny": 1}, "the checkpoint")
