"""Reproduce the self-training row of RESULTS.md: bags -> ingest -> fine-tune -> replay evaluation.

    .venv/bin/python scripts/reproduce_self_training.py      # also run by `make results`

TuxAV train scenes are recorded as a bag (its ground-truth topic is never read), ingested, and
the SynthAV-trained checkpoint is fine-tuned on them without any label
(training/configs/tuxav_bags_finetune.yaml). Both checkpoints are exported and measured by
offline replay of the TuxAV *test* split recorded as a bag: the gain is what fine-tuning on the
recordings bought. Each step is skipped when its output exists, so an interrupted run continues.
Writes results/replay/selftrain_tuxav_test.json (rendered into RESULTS.md by reproduce_results.py).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from soundloc_training.config import load_config

ROOT = Path(__file__).resolve().parents[1]
START_CONFIG = "training/configs/synthav_baseline.yaml"
START_RUN = "runs/selftrain/synthav_start"
FINETUNE_CONFIG = "training/configs/tuxav_bags_finetune.yaml"
TRAIN_BAG, TEST_BAG = "bags/tuxav_train", "bags/tuxav_test"
INGESTED = "data/tuxav_train_ingested"


def sh(command: list[str]) -> str:
    print("+", shlex.join(command), flush=True)
    return subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout


def step(output: str, command: list[str]) -> list[str]:
    """Run `command` unless `output` exists; returns the command for the record."""
    if not (ROOT / output).exists():
        sh(command)
    return command


def replay(bundle: str, name: str, bag: str = TEST_BAG) -> dict:
    """soundloc-replay-eval of `bundle` on `bag` (offline), with the command that reproduces it."""
    out = f"replay_output/{name}"
    command = ["soundloc-replay-eval", bag, "--bundle", bundle, "--out", out, "--quiet"]
    report = json.loads(sh(command).strip().splitlines()[-1])
    return {"command": shlex.join(command), **report}


def write_record(name: str, record: dict) -> None:
    """results/replay/NAME: one replay table of RESULTS.md (rendered by reproduce_results.py)."""
    out = ROOT / "results" / "replay" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


def describe(record: dict) -> str:
    """The paragraph RESULTS.md shows above the self-training table."""
    ingest, finetune = record.get("ingest") or {}, record["finetune"]
    return (
        f"{record['evaluation']}. The starting checkpoint is fine-tuned on the TuxAV train split "
        f"recorded as a bag and ingested without its labels ({ingest.get('kept', '?')} of "
        f"{ingest.get('frames_in_bag', '?')} frames kept: {ingest.get('duplicate', 0)} "
        f"near-duplicates and {ingest.get('silent', 0)} silent dropped), best.pt chosen by "
        f"label-free val retrieval accuracy ({finetune['best'].get('retrieval_acc')}); training "
        f"steps {finetune['train_time_s'] / 60:.1f} min."
    )


def main() -> int:
    finetune = asdict(load_config(ROOT / FINETUNE_CONFIG))  # flat settings
    start_bundle, tuned_bundle = "bundles/selftrain_start", "bundles/selftrain_tuned"
    tuned_run = finetune["out_dir"]
    commands = [
        step("data/synthav/benchmark.json",
             ["soundloc-make-benchmark", "synthav", "--out", "data/synthav"]),
        step("data/tuxav/benchmark.json",
             ["soundloc-make-benchmark", "tuxav", "--out", "data/tuxav"]),
        step(f"{START_RUN}/summary.json",
             ["soundloc-train", START_CONFIG, "--resume", "--set", f"out_dir={START_RUN}"]),
        step(TRAIN_BAG, ["soundloc-make-bag", "--data", "tuxav:data/tuxav", "--split", "train",
                         "--out", TRAIN_BAG]),
        step(TEST_BAG, ["soundloc-make-bag", "--data", "tuxav:data/tuxav", "--split", "test",
                        "--out", TEST_BAG]),
        step(f"{INGESTED}/manifest.jsonl",
             ["soundloc-ingest", TRAIN_BAG, "--out", INGESTED, "--clip-seconds", "5"]),
        step(f"{tuned_run}/summary.json", ["soundloc-train", FINETUNE_CONFIG, "--resume"]),
        step(f"{start_bundle}/bundle.json", ["soundloc-export", "--checkpoint",
                                            f"{START_RUN}/best.pt", "--out", start_bundle]),
        step(f"{tuned_bundle}/bundle.json", ["soundloc-export", "--checkpoint",
                                            f"{tuned_run}/best.pt", "--out", tuned_bundle]),
    ]  # fmt: skip
    manifest = (ROOT / INGESTED / "manifest.jsonl").read_text().splitlines()
    ingest_counts = [json.loads(line)["counts"] for line in manifest if "bag_done" in line]
    summary = json.loads((ROOT / tuned_run / "summary.json").read_text())
    record = {
        "benchmark": "tuxav",
        "split": "test",
        "evaluation": "offline replay of the TuxAV test split as a bag (soundloc-replay-eval)",
        "ingest": ingest_counts[0] if ingest_counts else None,
        "finetune": {
            "config": FINETUNE_CONFIG,
            "best": summary["best"],
            "train_time_s": summary["train_time_s"],
        },
        "steps": [shlex.join(c) for c in commands],
        "rows": {
            "synthav checkpoint (start)": replay(start_bundle, "selftrain_start"),
            "+ fine-tuned on ingested TuxAV bags": replay(tuned_bundle, "selftrain_tuned"),
        },
    }
    record.update(title="Self-training from recordings: tuxav test, replayed as a bag",
                  description=describe(record))  # fmt: skip
    write_record("selftrain_tuxav_test.json", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
