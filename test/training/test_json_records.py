"""A damaged JSON record (benchmark.json, a run's summary.json) is named with the fix."""

import pytest
from soundloc_training.cli.make_benchmark import main as benchmark_main
from soundloc_training.cli.train import main as train_main
from soundloc_training.datasets.build import BenchmarkSpec, build_benchmark
from soundloc_training.jsonfiles import read_json

DAMAGED = '{"kind": "synthav",\n'  # what a full disk or a crash mid-write leaves


def test_a_damaged_benchmark_record_names_the_file_and_the_fix(tmp_path, capsys):
    out = tmp_path / "synthav"
    out.mkdir()
    (out / "benchmark.json").write_text(DAMAGED)
    with pytest.raises(ValueError, match=rf"benchmark.json is not valid JSON .*remove {out}"):
        build_benchmark(BenchmarkSpec("synthav", train=1), out)
    assert benchmark_main(["synthav", "--out", str(out), "--train", "1"]) == 1
    err = capsys.readouterr().err
    assert f"{out / 'benchmark.json'} is not valid JSON" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("method", "summary"), [("ier", "iter_0"), ("uspl", "coarse")])
def test_a_damaged_summary_stops_a_resumed_run_with_the_fix(tmp_path, capsys, method, summary):
    run = tmp_path / "run"
    (run / summary).mkdir(parents=True)
    (run / summary / "summary.json").write_text(DAMAGED)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"data: {{source: synthav:{tmp_path}/none}}\nout_dir: {run}\nmethod: {method}\n"
    )
    assert train_main([str(config), "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{run / summary / 'summary.json'} is not valid JSON" in err and "--resume" in err


@pytest.mark.parametrize(
    ("text", "complaint"),
    [(b"\xff\xfe{", "is not UTF-8 text"), (b"[1, 2]", "holds a JSON list, not a dict")],
)
def test_json_that_is_not_the_expected_record_is_named(tmp_path, text, complaint):
    path = tmp_path / "summary.json"
    path.write_bytes(text)
    with pytest.raises(ValueError, match=complaint) as caught:
        read_json(path, "rerun it")
    assert str(caught.value).startswith(str(path)) and str(caught.value).endswith("; rerun it")
