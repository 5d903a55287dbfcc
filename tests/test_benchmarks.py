"""Smoke tests of the benchmark scripts in benchmarks/, and their shared helpers."""

import csv
import json
import math

import numpy as np
import pytest
import sklearn


@pytest.fixture(scope="module")
def common(import_benchmark):
    return import_benchmark("_common")


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


def test_summarise_groups_in_order_and_skips_missing_values(common):
    rows = [
        {"method": "b", "seed": 0, "f1": 0.2, "rmse": np.nan},
        {"method": "a", "seed": 0, "f1": 0.9, "rmse": 1.0},
        {"method": "b", "seed": 1, "f1": 0.6, "rmse": np.nan},
        {"method": "b", "seed": 2, "f1": np.nan, "rmse": np.nan},
        {"method": "a", "seed": 1, "f1": 0.7, "rmse": 3.0},
    ]
    summary = common.summarise(rows, ("method",), ("f1", "rmse"))
    assert [e["method"] for e in summary] == ["b", "a"]
    b, a = summary
    assert b["n_seeds"] == 3
    assert (b["f1"], b["f1_min"], b["f1_max"]) == pytest.approx((0.4, 0.2, 0.6))
    assert b["rmse"] is b["rmse_min"] is b["rmse_max"] is None
    assert (a["rmse"], a["rmse_min"], a["rmse_max"]) == (2.0, 1.0, 3.0)
    suffixed = common.summarise(rows, ("method",), ("f1",), median="_median")
    assert suffixed[1] == {
        "method": "a",
        "n_seeds": 2,
        "f1_median": pytest.approx(0.8),
        "f1_min": 0.7,
        "f1_max": 0.9,
    }


def test_spread_shows_the_range_only_over_several_seeds(common):
    entry = {"n_seeds": 3, "f1": 0.5, "f1_min": 0.25, "f1_max": 0.75, "x": None}
    assert common.spread(entry, "f1", ".2f") == "0.50 (0.25-0.75)"
    assert common.spread(entry, "x", ".2f") == "-"
    single = {"n_seeds": 1, "f1_median": 0.5, "f1_min": 0.5, "f1_max": 0.5}
    assert common.spread(single, "f1", ".3f", median="_median") == "0.500"


def test_detection_scores_a_mask(common):
    truth = np.array([True, True, False, False, False])
    mask = np.array([True, False, True, False, False])
    assert common.detection(mask, truth) == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    )
    nothing = common.detection(np.zeros(5, dtype=bool), truth)
    assert nothing == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert all(math.isnan(v) for v in common.detection(None, truth).values())


def test_score_mask_adds_the_flagged_share_and_needs_corrupted_rows(common):
    truth = np.array([True, False, False, False])
    found = common.score_mask(np.array([True, True, False, False]), truth)
    assert found["precision"] == pytest.approx(0.5)
    assert found["recall"] == pytest.approx(1.0)
    assert found["flagged"] == pytest.approx(0.5)
    clean = common.score_mask(truth, np.zeros(4, dtype=bool))
    assert math.isnan(clean["f1"])
    assert clean["flagged"] == pytest.approx(0.25)
    assert math.isnan(common.score_mask(None, truth)["flagged"])


def test_cpu_timed_returns_the_result_and_cpu_seconds(common):
    out, seconds = common.cpu_timed(sum, range(100_000))
    assert out == sum(range(100_000))
    assert 0.0 <= seconds < 5.0


def test_environment_describes_the_run(common):
    import sk_zerror

    env = common.environment(sklearn, threads=2, seeds=[0, 1], argv=["--quick"])
    assert list(env)[:5] == ["command", "python", "sk_zerror", "sklearn", "machine"]
    assert env["command"].endswith(" --quick")
    assert env["sk_zerror"] == sk_zerror.__version__
    assert env["sklearn"] == sklearn.__version__
    assert "usable cores" in env["machine"]
    assert (env["threads"], env["seeds"]) == (2, [0, 1])
    assert "load_average_at_start" not in env
    extra = common.environment(
        threads=1, seeds=3, with_load_average=True, machine="mine", quick=True
    )
    assert (extra["machine"], extra["quick"]) == ("mine", True)
    assert "load_average_at_start" in extra


def test_write_csv_takes_every_key_in_first_seen_order(common, tmp_path):
    path = tmp_path / "rows.csv"
    common.write_csv(path, [{"a": 1, "b": 2}, {"c": 3, "a": 4}])
    assert path.read_text().splitlines() == ["a,b,c", "1,2,", "4,,3"]
