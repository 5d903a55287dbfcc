"""Smoke tests of the benchmark scripts in benchmarks/."""

import csv
import json
import math


def _read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_bench_estimators_quick(tmp_path, run_benchmark):
    run_benchmark("bench_estimators.py", "--quick", "--out", tmp_path, timeout=120)
    overhead = _read_csv(tmp_path / "overhead.csv")
    assert {(r["task"], r["net"]) for r in overhead} == {
        (task, net)
        for task in ("regressor", "classifier")
        for net in ("skorch", "skorch_batched", "zerror")
    }
    for row in overhead:
        assert all(
            math.isfinite(float(row[k])) and float(row[k]) > 0
            for k in ("wall_s", "cpu_s", "loop_s")
        )

    regression = _read_csv(tmp_path / "regression.csv")
    assert {float(r["error_rate"]) for r in regression} == {0.1, 0.2, 0.3}
    methods = {r["method"] for r in regression}
    assert {"oracle (clean rows, MSE)", "robust (median/mad)", "plain MSE"} <= methods
    assert any(m.startswith("note") for m in methods)
    assert any(m.startswith("Huber") for m in methods)
    for row in regression:
        assert math.isfinite(float(row["test_rmse"]))
        assert math.isfinite(float(row["rmse_ratio_to_oracle"]))
        if row["method"].startswith(("robust", "note", "default")):
            assert 0.0 <= float(row["f1"]) <= 1.0

    classification = _read_csv(tmp_path / "classification.csv")
    assert {float(r["flip_rate"]) for r in classification} == {0.2, 0.4}
    assert {"plain CE", "robust (median/mad)"} <= {r["method"] for r in classification}
    for row in classification:
        assert 0.0 <= float(row["test_accuracy"]) <= 1.0
        if row["method"].startswith(("robust", "default")):
            assert 0.0 <= float(row["f1"]) <= 1.0

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mode"] == "quick"
    assert summary["environment"]["threads"] == 1
    assert set(summary["summary"]) == {"overhead", "regression", "classification"}
    assert (tmp_path / "tables.md").read_text().count("|") > 0


def test_bench_losses_quick(tmp_path, run_benchmark):
    out = tmp_path / "losses.csv"
    run = run_benchmark(
        "bench_losses.py", "--quick", "--device", "cpu", "--out", out, timeout=120
    )
    assert out.exists()
    rows = _read_csv(out)
    cross_entropy = [r for r in rows if r["loss"] == "ZErrorCrossEntropyLoss"]
    # The target configuration, with all three implementations timed.
    assert any(
        (r["batch"], r["n_classes"], r["variant"]) == ("256", "100", "")
        for r in cross_entropy
    )
    for row in cross_entropy:
        assert float(row["plain_us"]) > 0 and float(row["zerror_us"]) > 0
        if not row["variant"]:
            assert float(row["loop_us"]) > 0
    assert "| ZErrorCrossEntropyLoss | default | 256 | 100 |" in run.stdout


def test_bench_threshold_quick(tmp_path, run_benchmark):
    run_benchmark("bench_threshold.py", "--quick", "--out", tmp_path, timeout=300)
    rows = _read_csv(tmp_path / "runs.csv")
    methods = {row["method"] for row in rows}
    assert {"default", "z-gaussian", "z-skewnorm", "tuned"} <= methods
    for row in rows:
        assert 0.0 <= float(row["balanced_accuracy"]) <= 1.0
        assert float(row["fit_s"]) >= 0.0
        assert 0.0 <= float(row["probability_cutoff"]) <= 1.0
