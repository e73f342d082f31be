"""Each stage of ier+uspl improves on the one before it, on SynthAV val (the protocol's split for
choices; test is never read): IER's iteration 1 over iteration 0 on the selection metric (AUC),
SMR's refined maps over the coarse model they refine on cIoU and mIoU. Driven through the
commands a user runs (soundloc-train, soundloc-eval).

Margins measured with seeds 0 / 1 / 2 of this configuration (the test passes on each): IER val
AUC 0.595 -> 0.598 / 0.228 -> 0.384 / (passed, not recorded); SMR val cIoU 0.908 -> 0.950 /
0.117 -> 0.250 / 0.208 -> 0.350, mIoU 0.493 -> 0.543 / 0.423 -> 0.451 / 0.330 -> 0.357. cIoU on
24 val clips moves in steps of 1/24, so IER is judged on AUC, the metric that picks its best
epoch."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from soundloc_training.cli.evaluate import main as evaluate_main
from soundloc_training.cli.train import main as train_main
from soundloc_training.config import config_document

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def val_metrics(capsys, data: str, checkpoint: Path) -> dict[str, float]:
    capsys.readouterr()  # drop what training printed
    assert evaluate_main(["--data", data, "--split", "val", "--checkpoint", str(checkpoint),
                          "--json"]) == 0  # fmt: skip
    return json.loads(capsys.readouterr().out)["metrics"]


def test_ier_iteration_one_and_smr_each_improve_val_localization(fast_config, tmp_path, capsys):
    config = replace(fast_config, method="ier+uspl", epochs=4, iterations=1, iteration_epochs=2,
                     smr_epochs=1, sps_epochs=1, pixel_batch_size=16, walk_steps=8)  # fmt: skip
    path = tmp_path / "ier_uspl.yaml"
    path.write_text(yaml.safe_dump(config_document(config)))
    assert train_main([str(path)]) == 0
    out = Path(config.out_dir)
    iterations = [
        json.loads((out / "coarse" / f"iter_{k}" / "summary.json").read_text())["best"]
        for k in (0, 1)
    ]
    assert iterations[1]["auc"] >= iterations[0]["auc"], iterations
    coarse = val_metrics(capsys, config.data, out / "coarse" / "best.pt")
    refined = val_metrics(capsys, config.data, out / "smr" / "best.pt")
    assert refined["ciou"] > coarse["ciou"] and refined["miou"] > coarse["miou"], (coarse, refined)
