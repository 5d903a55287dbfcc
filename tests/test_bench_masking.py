"""The masking ablation's --quick mode and its callback prototypes."""

import csv
import math

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench(import_benchmark):
    return import_benchmark("bench_masking")


def test_bench_masking_quick(tmp_path, run_benchmark):
    pytest.importorskip("cleanlab")
    run_benchmark(
        "bench_masking.py", "--quick", "--seeds", "0", "--out", tmp_path, timeout=600
    )
    with (tmp_path / "raw.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    models = {(r["dataset"], r["noise"], r["model"]) for r in rows}
    assert ("moons", "clean", "nomask|es|rt") in models
    assert ("moons", "inst20", "CleanLearning(MLP)") in models
    assert ("moons", "inst20", "oracle") in models
    assert ("friedman1", "slip20", "first|conv|rt") in models
    assert ("friedman1", "slip20", "HuberRegressor") in models
    for row in rows:
        score = float(row["score"])
        if row["task"] == "classification":
            assert 0.5 <= score <= 1.0
        else:
            assert math.isfinite(score) and score > 0
        if row["noise"] == "clean" or row["model"] in ("oracle", "MLPClassifier"):
            assert row["f1"] in ("nan", "")
    slips = [
        r for r in rows if r["model"] == "first|conv|rt" and r["noise"] == "slip20"
    ]
    assert float(slips[0]["f1"]) > 0.9
    tables = (tmp_path / "tables.md").read_text()
    assert "## classification: targets per variant" in tables
    assert "## regression: targets per variant" in tables


def test_variant_params(bench):
    params = bench.variant_params("classification", "plateau|conv|nort")
    assert params["retrain_without_outliers"] is False
    assert params["early_stopping"] is False
    assert params["max_epochs"] == bench.CEILING
    names = [name for name, _ in params["callbacks"]]
    assert names == ["plateau", "convergence"]
    params = bench.variant_params("regression", "anneal|fixed|rt+lr=0.001")
    assert params["sigma_start"] == 10.0
    assert params["anneal_epochs"] == params["max_epochs"] == bench.FIXED_EPOCHS
    assert params["lr"] == 0.001
    assert bench.variant_params("classification", "current") == {}
    assert len(set(bench.variants())) == len(bench.variants())


def test_mask_after_plateau_holds_sigma_until_the_loss_flattens(bench):
    from sk_zerror import ZErrorRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, 300)
    reg = ZErrorRegressor(
        sigma_start=None,
        max_epochs=60,
        retrain_without_outliers=False,
        callbacks=[("plateau", bench.MaskAfterPlateau(patience=3, rel=0.05))],
        random_state=0,
    ).fit(X, y)
    history = reg.net_.history
    sigmas = history[:, "sigma"]
    fired = [e["mask_trigger"] for e in history if "mask_trigger" in e]
    assert len(fired) == 1
    trigger = fired[0]
    assert all(math.isinf(s) for s in sigmas[: trigger + 1])
    assert sigmas[trigger + 1 :] == [5.0] * (len(sigmas) - trigger - 1)
    assert 3 <= trigger < len(sigmas) - 1


def test_no_mask_never_masks(bench):
    from sk_zerror import ZErrorClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(int)
    y[:20] = 1 - y[:20]
    clf = ZErrorClassifier(
        max_epochs=20,
        early_stopping=False,
        retrain_without_outliers=False,
        callbacks=[("no_mask", bench.MaskAfterPlateau(patience=None))],
        random_state=0,
    ).fit(X, y)
    assert clf.net_.history[:, "masked_fraction"] == [0.0] * 20
    assert np.isnan(clf.outlier_frequency_).sum() == 0
    assert (clf.outlier_frequency_ == 0).all()
