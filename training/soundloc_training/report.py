"""`soundloc-report`: render RESULTS.md tables from the JSON rows kept under results/.

Each results/*.json is what `soundloc-eval --json` printed, plus `command` (the evaluation
command), `train_command`, `epochs` and `train_time_s` (when a model was trained), and for an
iterative method `iteration` (its rows are listed in order) and `val_selected` (the iteration
whose validation score picked the run's best.pt). One table per benchmark/split; the random,
center-prior and oracle rows come from the same evaluation as the methods (same frames), so all
rows of a table are comparable.
"""

from __future__ import annotations

import sys
from pathlib import Path

from soundloc_training.datasets.negatives import KINDS, kind_of
from soundloc_training.jsonfiles import read_json

METRICS = ("ciou", "auc", "miou", "fscore")
REFERENCE_ROWS = ("random", "center_prior", "oracle")


def _cell(scores: dict[str, float], key: str) -> str:
    value = scores.get(key)
    return "–" if value is None else f"{value:.3f}"


def render(results: list[dict[str, object]]) -> str:
    """Markdown tables, one per (benchmark, split), methods sorted by name then iteration."""
    groups: dict[tuple[str, str], list[dict[str, object]]] = {}
    for row in results:
        groups.setdefault((row["benchmark"], row["split"]), []).append(row)
    sections = []
    for (benchmark, split), rows in sorted(groups.items()):
        rows.sort(key=lambda r: (str(r["method"]), r.get("iteration", -1)))
        n_frames = rows[0]["metrics"]["n_frames"]
        lines = [
            f"### {benchmark} {split} ({n_frames} frames)",
            "",
            "| method | cIoU | AUC | mIoU | F-score | epochs | training steps / whole run "
            "| reproduce |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name in REFERENCE_ROWS:
            scores = rows[0]["baselines"][name]
            lines.append(
                f"| {name} | "
                + " | ".join(_cell(scores, k) for k in METRICS)
                + " | – | – | (printed by every evaluation) |"
            )
        for row in rows:
            label = str(row["method"]) + (
                f" (iteration {row['iteration']})" if "iteration" in row else ""
            )
            if row.get("val_selected"):
                label += ", val-selected"
            epochs = row.get("epochs", "–")
            times = [row.get("train_time_s"), row.get("wall_time_s")]
            time_cell = " / ".join("–" if t is None else f"{t / 60:.1f} min" for t in times)
            commands = [c for c in (row.get("train_command"), row.get("command")) if c]
            reproduce = "<br>".join(f"`{c}`" for c in commands)
            lines.append(
                f"| {label} | "
                + " | ".join(_cell(row["metrics"], k) for k in METRICS)
                + f" | {epochs} | {time_cell} | {reproduce} |"
            )
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


ABLATION = (  # (results-row method, what it adds, the row whose map it starts from)
    ("baseline", "multiple-instance contrast", None),
    ("baseline+maskaug", "+ mask augmentation", None),
    ("baseline+maskaug+smr", "+ SMR (refined maps)", "baseline+maskaug"),
    ("uspl", "+ SPS (masks): uspl", "baseline+maskaug"),
    ("ier", "ier (val-selected iteration)", None),
    ("ier+smr", "ier + SMR", "ier"),
    ("ier+uspl", "ier + SMR + SPS: ier+uspl", "ier"),
)


def render_ablation(results: list[dict[str, object]]) -> str:
    """USPL's ablation, one table per benchmark's test split: the ABLATION rows present, in
    order, with the reference rows and each SMR / SPS row's mIoU change over the thresholded
    coarse map it refines."""
    sections = []
    for benchmark in sorted({str(r["benchmark"]) for r in results}):
        rows = {
            str(row["method"]): row
            for row in results
            if row["benchmark"] == benchmark and row["split"] == "test"
            and ("iteration" not in row or row.get("val_selected"))
        }  # fmt: skip
        present = [entry for entry in ABLATION if entry[0] in rows]
        if not any(name in rows for name in ("uspl", "ier+uspl")):
            continue
        reference = rows[present[0][0]]
        lines = [
            f"### USPL ablation: {benchmark} test ({reference['metrics']['n_frames']} frames)",
            "",
            "| row | method | cIoU | AUC | mIoU | F-score | mIoU vs coarse map |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in REFERENCE_ROWS:
            scores = reference["baselines"][name]
            lines.append(f"| {name} | – | " + " | ".join(_cell(scores, k) for k in METRICS)
                         + " | – |")  # fmt: skip
        for name, label, coarse in present:
            scores = rows[name]["metrics"]
            delta = "–"
            if coarse in rows:
                change = scores["miou"] - rows[coarse]["metrics"]["miou"]
                delta = f"{change:+.3f} (vs {coarse})"
            cells = " | ".join(_cell(scores, k) for k in METRICS)
            lines.append(f"| {label} | {name} | {cells} | {delta} |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n" if sections else ""


REPLAY_METRICS = ("ciou", "auc", "miou", "fscore", "mask_miou", "peak_in_object",
                  "bearing_error_deg_median")  # fmt: skip


def _section_head(record: dict[str, object]) -> list[str]:
    """A results record's heading and paragraph: title, description and the steps that made it."""
    steps = "; ".join(f"`{step}`" for step in record["steps"])
    return [f"### {record['title']}", "", f"{record['description']} Steps: {steps}.", ""]


def render_replay(records: list[dict[str, object]]) -> str:
    """Tables of replay evaluations (results/replay/*.json, written by scripts/reproduce_*.py):
    bundles measured by soundloc-replay-eval on a recorded bag, one row per bundle, under the
    record's title and description."""
    sections = []
    for record in records:
        lines = [
            *_section_head(record),
            "| bundle | cIoU | AUC | mIoU | F-score | mask mIoU | peak on object | "
            "bearing error (median) | frames | reproduce |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, row in record["rows"].items():
            scores = row["accuracy"]
            cells = [_cell(scores, k) for k in REPLAY_METRICS[:-1]]
            cells.append(f"{scores['bearing_error_deg_median']:.1f}°")
            lines.append(f"| {name} | " + " | ".join(cells)
                         + f" | {row['counts']['scored']} | `{row['command']}` |")  # fmt: skip
        detected = {name: row["detection"] for name, row in record["rows"].items()
                    if row.get("detection")}  # fmt: skip
        if detected:
            lines += ["", _replay_detection(detected)]
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


def _replay_detection(rows: dict[str, dict]) -> str:
    """What the node claimed on the same bag: a source on sounding frames, false sources per
    negative kind (noise colours pooled), and the score's ROC AUC."""
    lines = ["| bundle | source on sounding frames | ROC AUC | "
             + " | ".join(f"false sources: {k}" for k in DETECTION_KINDS) + " |",
             "|---|---|---|" + "---|" * len(DETECTION_KINDS)]  # fmt: skip
    for name, figures in rows.items():
        pooled = {}
        for category, rate in figures["false_source_rate"].items():
            kind = kind_of(category)
            count = figures["n_negative"][category] if "n_negative" in figures else 1
            pooled.setdefault(kind, []).append((rate, count))
        rates = {k: sum(r * n for r, n in v) / sum(n for _, n in v) for k, v in pooled.items()}
        cells = [_rate(figures["tpr_at_threshold"]), _rate(figures.get("roc_auc"))]
        cells += [_rate(rates.get(k)) for k in DETECTION_KINDS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_results(directory: Path) -> list[dict[str, object]]:
    """Every evaluation row under `directory`; other JSON records kept there (no `method` and
    `metrics`, e.g. a replay evaluation's) are not table rows and are named on stderr."""
    rows = []
    for path in sorted(directory.glob("*.json")):  # results/replay/ holds replay records
        row = read_json(path, "re-run its evaluation (soundloc-eval --json) or remove it")
        if not {"method", "metrics", "baselines"} <= set(row):
            print(f"soundloc-report: {path} is not an evaluation row; left out", file=sys.stderr)
            continue
        rows.append(row)
    if not rows:
        raise ValueError(f"no result rows (*.json) in {directory}")
    return rows


DETECTION_KINDS = KINDS


def render_detection(records: list[dict[str, object]]) -> str:
    """Tables of detection evaluations (results/detection/*.json, scripts/reproduce_detection.py):
    per detector, the ROC AUC and the true-positive rate at 5 % false alarms over all negatives,
    then at its threshold the true-positive rate and the false-source rate of each negative kind."""
    sections = []
    for record in records:
        lines = [
            *_section_head(record),
            "| detector | threshold | ROC AUC | TPR @ 5 % FA | TPR at threshold | "
            + " | ".join(f"false sources: {k}" for k in DETECTION_KINDS)
            + " |",
            "|---|---|---|---|---|" + "---|" * len(DETECTION_KINDS),
        ]
        for name, row in record["rows"].items():
            cells = [
                _rate(row["threshold"], 3),
                _rate(row["roc_auc"], 3),
                _rate(row["tpr_at_5pct_false_alarm"]),
                _rate(row["tpr_at_threshold"]),
            ]
            cells += [_rate(row["false_source_rate"].get(k)) for k in DETECTION_KINDS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")  # fmt: skip
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


def _rate(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
