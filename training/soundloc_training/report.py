"""`soundloc-report`: render RESULTS.md tables from the JSON rows kept under results/.

Each results/*.json is what `soundloc-eval --json` printed, plus `command` (the evaluation
command), `train_command` and `train_time_s` (when a model was trained). One table per
benchmark/split; the random, center-prior and oracle rows come from the same evaluation as the
methods (same frames), so all rows of a table are comparable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
            "| method | cIoU | AUC | mIoU | F-score | training steps / whole run | reproduce |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in REFERENCE_ROWS:
            scores = rows[0]["baselines"][name]
            lines.append(
                f"| {name} | "
                + " | ".join(_cell(scores, k) for k in METRICS)
                + " | – | (printed by every evaluation) |"
            )
        for row in rows:
            label = str(row["method"]) + (
                f" (iteration {row['iteration']})" if "iteration" in row else ""
            )
            times = [row.get("train_time_s"), row.get("wall_time_s")]
            time_cell = " / ".join("–" if t is None else f"{t / 60:.1f} min" for t in times)
            commands = [c for c in (row.get("train_command"), row.get("command")) if c]
            reproduce = "<br>".join(f"`{c}`" for c in commands)
            lines.append(
                f"| {label} | "
                + " | ".join(_cell(row["metrics"], k) for k in METRICS)
                + f" | {time_cell} | {reproduce} |"
            )
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


def load_results(directory: Path) -> list[dict[str, object]]:
    rows = []
    for path in sorted(directory.glob("*.json")):
        try:
            rows.append(json.loads(path.read_text()))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error}); re-run its evaluation") from None
    if not rows:
        raise ValueError(f"no result rows (*.json) in {directory}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soundloc-report", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="directory of result JSON rows")
    args = parser.parse_args(argv)
    try:
        print(render(load_results(args.results)), end="")
    except ValueError as error:
        print(f"soundloc-report: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
