"""Real training steps on a tiny SynthAV: learning, exact resume, DDP, evaluation CLI."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from soundloc_training.checkpoints import load_model
from soundloc_training.cli.evaluate import main as eval_main
from soundloc_training.config import TrainConfig, config_document
from soundloc_training.losses.contrastive import MultipleInstanceContrast
from soundloc_training.orchestration import run


def read_log(config):
    return [
        json.loads(line) for line in (Path(config.out_dir) / "log.jsonl").read_text().splitlines()
    ]


def test_loss_prefers_the_matching_pairs_and_ignores_same_clip_negatives():
    loss = MultipleInstanceContrast(tau=0.1)
    clip_ids = torch.tensor([0, 1, 1])
    matched = torch.full((3, 3, 2, 2), -0.5)
    for i in range(3):
        matched[i, i, 0, 0] = 0.9  # one position of each image matches its own audio
    shuffled = matched[:, [1, 2, 0]]
    assert loss(matched, clip_ids) < loss(shuffled, clip_ids)
    logits = loss.logits(matched, clip_ids)
    assert torch.isinf(logits[1, 2]) and torch.isinf(logits[2, 1])  # same clip, not negatives
    assert torch.isfinite(logits[0, 1])


def test_training_lowers_the_loss_and_sharpens_localization(fast_config):
    """Real training steps on 96 clips improve validation localization.

    Beating the centre prior is a claim about the full benchmarks (RESULTS.md): on a set this
    small some seeds need more than 60 steps to stop matching background (measured: seeds 0-2 at
    6 epochs reach val cIoU 0.91, 0.17 and 0.33, the centre prior 0.58), so the test asserts what
    holds for every seed: the loss falls and the maps move toward the sounding object.
    """
    from soundloc_training.data import load_table
    from soundloc_training.scoring import evaluate_heatmaps, reference_heatmaps

    summary = run(fast_config)
    log = read_log(fast_config)
    assert log[-1]["train"]["loss"] < log[0]["train"]["loss"]
    assert summary["best"]["auc"] > log[0]["val"]["auc"] + 0.05
    table = load_table(fast_config.data, "val", 128, fast_config.audio_frontend)
    noise = evaluate_heatmaps(reference_heatmaps(table)["random"], table)
    assert summary["best"]["auc"] > noise["auc"]
    out = Path(fast_config.out_dir)
    assert (out / "best.pt").is_file() and (out / "contact_sheet_val.png").is_file()


def test_resume_continues_exactly(fast_config):
    straight = replace(fast_config, epochs=2, out_dir=fast_config.out_dir + "_straight")
    run(straight)
    interrupted = replace(fast_config, epochs=2)
    run(interrupted, stop_after=1)
    assert (
        len(read_log(interrupted)) == 1
        and not (Path(interrupted.out_dir) / "summary.json").exists()
    )
    with pytest.raises(FileExistsError, match="--resume"):
        run(interrupted)  # a fresh run must not silently append to the interrupted one
    run(interrupted, resume=True)
    a = torch.load(Path(straight.out_dir) / "last.pt", weights_only=False)["model"]
    b = torch.load(Path(interrupted.out_dir) / "last.pt", weights_only=False)["model"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_two_process_ddp_keeps_replicas_identical(fast_config, tmp_path):
    config = replace(fast_config, epochs=1)
    config_path = tmp_path / "ddp.yaml"
    config_path.write_text(yaml.safe_dump(config_document(config)))
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
         str(worker), str(config_path)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    states = [torch.load(Path(config.out_dir) / f"rank{r}.pt") for r in (0, 1)]
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], rtol=0, atol=0)
    assert len(states[0]) >= 10  # the head's and the audio encoder's trainable tensors
    initial = torch.load(Path(config.out_dir) / "rank0_initial.pt")
    assert any(not torch.equal(initial[k], states[0][k]) for k in states[0])  # it did train


def write_hand_made_avsbench(root: Path) -> list[str]:
    """Two 5-frame clips in the AVSBench-S4 layout, written without our benchmark writer."""
    import soundfile

    names = []
    rows = ["name,start_time,category,split"]
    for video, category in (("clipA", "dog"), ("clipB", "cat")):
        rows.append(f"{video},0,{category},test")
        frames = root / "s4_data" / "visual_frames" / "test" / category / video
        masks = root / "s4_data" / "gt_masks" / "test" / category / video
        wav = root / "s4_data" / "audio_wav" / "test" / category / f"{video}.wav"
        for directory in (frames, masks, wav.parent):
            directory.mkdir(parents=True, exist_ok=True)
        for k in range(1, 6):
            Image.fromarray(np.full((224, 224, 3), 40 * k, np.uint8)).save(
                frames / f"{video}_{k}.png"
            )
            mask = np.zeros((224, 224), np.uint8)
            mask[:, :100] = 255 if video == "clipA" else 0
            mask[:100, :] = 255 if video == "clipB" else mask[:100, :]
            Image.fromarray(mask).save(masks / f"{video}_{k}.png")
            names.append(f"{video}_{k}")
        soundfile.write(wav, np.zeros(80000, np.float32), 16000)
    (root / "s4_meta_data.csv").write_text("\n".join(rows) + "\n")
    return names


def test_eval_scores_predictions_on_a_hand_written_avsbench_dataset(tmp_path, capsys):
    root = tmp_path / "Single-source"
    names = write_hand_made_avsbench(root)
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    for name in names:
        heatmap = np.zeros((7, 7), np.float32)
        if name.startswith("clipA"):
            heatmap[:, :3] = 1.0  # the left columns: clipA's mask
        else:
            heatmap[4:, :] = 1.0  # the bottom rows: clipB's mask is the top, so a miss
        np.save(predictions / f"{name}.npy", heatmap)
    code = eval_main(["--data", f"avsbench-s4:{root}", "--split", "test", "--predictions",
                      str(predictions), "--json"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["benchmark"] == "avsbench-s4" and result["split"] == "test"
    assert result["metrics"]["n_frames"] == 10
    assert result["metrics"]["ciou"] == pytest.approx(0.5)  # clipA hits, clipB misses
    assert set(result["baselines"]) == {"random", "center_prior", "oracle"}
    assert result["baselines"]["oracle"]["ciou"] == 1.0
    (predictions / "clipB_3.npy").unlink()
    assert eval_main(["--data", f"avsbench-s4:{root}", "--predictions", str(predictions)]) == 1
    assert "1 of 10 prediction files are missing" in capsys.readouterr().err


def test_checkpoint_rebuilds_the_model_and_evaluates(fast_config, capsys):
    """soundloc-eval on val reproduces the figures training selected best.pt by."""
    config = replace(fast_config, epochs=1)
    best = run(config)["best"]
    model, loaded = load_model(Path(config.out_dir) / "best.pt")
    assert loaded == config and not model.training
    capsys.readouterr()
    code = eval_main(["--data", config.data, "--split", "val", "--checkpoint",
                      str(Path(config.out_dir) / "best.pt"), "--json"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "baseline" and result["split"] == "val"
    for name in ("ciou", "auc"):
        assert result["metrics"][name] == pytest.approx(best[name], abs=1e-4), (name, best)


def test_the_smoke_scale_synthav_run_localizes_better_than_the_centre_prior(tmp_path_factory):
    """The default SynthAV (400 training clips) for 4 epochs, about a minute: measured val cIoU
    0.77, 1.00 and 0.98 for seeds 1-3 against about 0.5 for the centre prior."""
    from soundloc_training.data import load_table
    from soundloc_training.datasets.build import DEFAULTS, build_benchmark
    from soundloc_training.scoring import evaluate_heatmaps, reference_heatmaps

    root = tmp_path_factory.mktemp("synthav_default")
    data = build_benchmark(DEFAULTS["synthav"], root / "synthav", progress=lambda items, **_: items)
    config = TrainConfig(
        data=f"synthav:{data}",
        out_dir=str(root / "run"),
        image_size=128,
        batch_size=64,
        epochs=4,
        cache_dir=str(root / "cache"),
        contact_sheet_frames=2,
    )
    summary = run(config)
    table = load_table(config.data, "val", 128, config.audio_frontend)
    centre = evaluate_heatmaps(reference_heatmaps(table)["center_prior"], table)
    assert summary["best"]["ciou"] > centre["ciou"] + 0.1, (summary["best"], centre)
    assert summary["best"]["auc"] > centre["auc"]
