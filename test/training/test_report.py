"""RESULTS.md rendering: the USPL ablation table reads the right rows in the right order."""

from soundloc_training.report import render_ablation

REFERENCES = {name: {"ciou": 0.0, "auc": 0.2, "miou": 0.2, "fscore": 0.3}
              for name in ("random", "center_prior", "oracle")}  # fmt: skip


def row(method: str, miou: float, benchmark: str = "tuxav", **extra) -> dict:
    metrics = {"ciou": 0.5, "auc": 0.5, "miou": miou, "fscore": 0.7, "n_frames": 10}
    return {"benchmark": benchmark, "split": "test", "method": method, "metrics": metrics,
            "baselines": REFERENCES, **extra}  # fmt: skip


def test_ablation_rows_come_in_order_with_their_gain_over_the_coarse_map():
    results = [
        row("uspl", 0.65),
        row("ier", 0.40, iteration=0, val_selected=False),
        row("ier", 0.52, iteration=1, val_selected=True),
        row("baseline+maskaug+smr", 0.60),
        row("baseline", 0.55),
        row("baseline+maskaug", 0.50),
        row("ier+uspl", 0.50),
        row("baseline", 0.5, benchmark="synthav"),  # no uspl row there: no ablation table
    ]
    table = render_ablation(results)
    assert "synthav" not in table
    lines = [line for line in table.splitlines() if line.startswith("| ")][1:]
    assert [line.split(" | ")[1] for line in lines] == [
        "–", "–", "–", "baseline", "baseline+maskaug", "baseline+maskaug+smr", "uspl", "ier",
        "ier+uspl",
    ]  # fmt: skip
    by_method = {line.split(" | ")[1]: line for line in lines}
    assert "| 0.520 |" in by_method["ier"]  # the val-selected iteration, not iteration 0
    assert by_method["uspl"].endswith("+0.150 (vs baseline+maskaug) |")
    assert by_method["ier+uspl"].endswith("-0.020 (vs ier) |")
    assert by_method["baseline"].endswith("| – |")


def test_no_ablation_without_uspl_rows():
    assert render_ablation([row("baseline", 0.5), row("ier", 0.5)]) == ""
