"""The defaults study's --quick mode, its target checks and its baselines."""

import csv
import json
import math

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench(import_benchmark):
    pytest.importorskip("cleanlab")
    pytest.importorskip("vega_datasets")
    return import_benchmark("bench_defaults"), import_benchmark("_baselines")


def _rows(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _number(text):
    return float(text) if text not in ("", None) else math.nan


def test_bench_defaults_quick(tmp_path, run_benchmark, bench):
    module, _ = bench
    run_benchmark("bench_defaults.py", "--quick", "--out", tmp_path, timeout=300)

    candidates = set(module.CANDIDATES)
    classification = _rows(tmp_path / "classification.csv")
    assert {r["method"] for r in classification} == candidates | {
        module.ORACLE,
        module.CLEANLAB,
        "MLP, CE",
        "MLP, CE, early stopping",
        "MLP, GCE",
        "LogisticRegression",
    }
    assert {(r["noise"], float(r["rate"])) for r in classification} == {
        ("none", 0.0),
        ("symmetric", 0.3),
        ("instance", 0.3),
    }
    for row in classification:
        f1 = _number(row["f1"])
        if row["method"] == module.CLEANLAB:
            assert row["noise"] != "none" and 0.0 <= f1 <= 1.0
            continue
        assert 0.0 <= float(row["test_accuracy"]) <= 1.0
        assert float(row["fit_cpu_s"]) > 0
        if row["method"] == module.ORACLE:
            assert float(row["oracle_ratio"]) == 1.0
        if row["noise"] == "none" or row["method"] not in candidates:
            assert math.isnan(f1)  # nothing to detect, or no mask
        else:
            assert 0.0 <= f1 <= 1.0

    regression = _rows(tmp_path / "regression.csv")
    assert {(r["dataset"], float(r["rate"])) for r in regression} == {
        ("linear", 0.0),
        ("linear", 0.25),
        ("linear_t3", 0.0),
    }
    assert "HuberRegressor" in {r["method"] for r in regression}
    for row in regression:
        assert float(row["test_rmse"]) > 0
        if row["method"] == module.ORACLE:
            assert float(row["oracle_ratio"]) == 1.0

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["environment"]["mode"] == "quick"
    assert summary["environment"]["seeds"] == [0]
    checks = summary["checks"]
    # Every candidate is checked against every target that the quick panel
    # has cells for; the fit-time reference is not compared with itself.
    for candidate in candidates:
        targets = {c["target"] for c in checks if c["candidate"] == candidate}
        assert "noisy: mean accuracy / oracle >= 0.93" in targets
        assert "gross errors: RMSE <= 1.05 x oracle" in targets
        assert "clean: RMSE <= 1.03 x plain MSE MLP" in targets
        timed = any("fit CPU time" in t for t in targets)
        assert timed == (candidate != module.TIME_REFERENCE)
    tables = (tmp_path / "tables.md").read_text()
    assert "## Targets (on the held-out seeds)" in tables
    assert "tuning seeds: not held out" in tables
    assert "Classification: label-error detection F1" in tables


def _entry(method, **metrics):
    return {"method": method, "n_seeds": 1, **metrics}


def test_classification_checks_compare_with_the_best_peer(bench):
    module, _ = bench
    noisy = ("iris", "symmetric", 0.3)
    clean = ("iris", "none", 0.0)
    cells = {
        clean: {
            "cand": _entry("cand", test_accuracy=0.95, oracle_ratio=1.0, f1=None),
            "MLP, CE": _entry("MLP, CE", test_accuracy=0.97),
        },
        noisy: {
            "cand": _entry("cand", test_accuracy=0.90, oracle_ratio=0.92, f1=0.7),
            "LogisticRegression": _entry("LogisticRegression", test_accuracy=0.93),
            "MLP, CE, early stopping": _entry("x", test_accuracy=0.80),
            "MLP, GCE": _entry("y", test_accuracy=0.85),
            module.CLEANLAB: _entry(module.CLEANLAB, f1=0.6),
        },
    }
    found = {c["target"]: c for c in module.classification_checks(cells, "cand")}
    ratio = found["clean: accuracy >= 0.99 x plain CE MLP"]
    assert ratio["value"] == pytest.approx(0.95 / 0.97) and not ratio["met"]
    peer = found["noisy: accuracy >= best of LR, CE+ES, GCE"]
    assert peer["value"] == pytest.approx(-0.03) and not peer["met"]
    assert peer["detail"] == "best peer LogisticRegression"
    assert found["noisy: mean accuracy / oracle >= 0.93"]["value"] == 0.92
    assert not found["noisy: mean accuracy / oracle >= 0.93"]["met"]
    versus = found["noisy: detection F1 >= cleanlab's (per cell)"]
    assert versus["value"] == pytest.approx(0.1) and versus["met"]
    share = found["noisy: detection F1 >= cleanlab's in >= 80% of cells"]
    assert share["value"] == 1.0 and share["met"]


def test_regression_checks_use_the_rate_limit_and_skip_diabetes(bench):
    module, _ = bench
    cells = {
        ("friedman", "gross", 0.4): {
            "cand": _entry("cand", test_rmse=1.08, oracle_ratio=1.08, f1=0.96)
        },
        ("friedman", "gross", 0.25): {
            "cand": _entry("cand", test_rmse=1.08, oracle_ratio=1.08, f1=0.90)
        },
        ("diabetes", "gross", 0.25): {
            "cand": _entry("cand", test_rmse=9.0, oracle_ratio=3.0, f1=0.1)
        },
    }
    checks = module.regression_checks(cells, "cand")
    assert {c["cell"] for c in checks} == {"friedman gross 40%", "friedman gross 25%"}
    by = {(c["target"], c["cell"]): c for c in checks}
    assert by["gross errors: RMSE <= 1.10 x oracle", "friedman gross 40%"]["met"]
    assert not by["gross errors: RMSE <= 1.05 x oracle", "friedman gross 25%"]["met"]
    assert not by["gross errors: detection F1 >= 0.95", "friedman gross 25%"]["met"]
    table = module.targets_table(checks, ["cand"], [3, 4, 5])
    assert "not held out" not in table
    # The worst cell of a lower-is-better target is its largest number.
    assert "| cand | gross errors: detection F1 >= 0.95 | **missed** | 1/2 |" in table
    assert "friedman gross 25%: 0.900" in table


def test_candidate_params_lay_the_task_over_the_shared_ones(bench, monkeypatch):
    module, _ = bench
    monkeypatch.setitem(
        module.CANDIDATES,
        "x",
        {
            "sigma": 3.0,
            "anneal_epochs": module.ALL_EPOCHS,
            "classification": {"sigma": 1.0},
        },
    )
    assert module.candidate_params("x", "classification", 40) == {
        "sigma": 1.0,
        "anneal_epochs": 40,
    }
    assert module.candidate_params("x", "regression", 7) == {
        "sigma": 3.0,
        "anneal_epochs": 7,
    }


def test_plain_baselines_stop_early_and_keep_the_best_epoch(bench):
    _, baselines = bench
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = (X[:, 0] > 0).astype(int)
    y[rng.choice(300, 90, replace=False)] ^= 1  # 30% flipped: it overfits
    model = baselines.PlainMLPClassifier(early_stopping=True, epochs=300, seed=0).fit(
        X, y
    )
    history = model.net_.history
    assert len(history) < 300
    # It ran at least PATIENCE epochs past its best validation loss.
    best = int(np.argmin(history[:, "valid_loss"]))
    assert best + baselines.PATIENCE < len(history)
    reg = baselines.PlainMLPRegressor(early_stopping=True, epochs=300, seed=0)
    reg.fit(X, X[:, 0] + 0.5 * rng.normal(size=300))
    assert len(reg.net_.history) < 300
