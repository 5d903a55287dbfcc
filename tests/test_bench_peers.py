"""The peer benchmark's --quick mode and the baselines it trains."""

import csv
import json
import math

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def baselines(import_benchmark):
    return import_benchmark("_baselines")


def _rows(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _number(text):
    return float(text) if text not in ("", None) else math.nan


def test_bench_peers_quick(tmp_path, run_benchmark):
    pytest.importorskip("cleanlab")
    figures = tmp_path / "figures"
    run_benchmark(
        "bench_peers.py",
        "--quick",
        "--out",
        tmp_path,
        "--figures",
        figures,
        timeout=300,
    )

    regression = _rows(tmp_path / "regression.csv")
    methods = {r["method"] for r in regression}
    assert {
        "oracle (MLP, MSE, clean rows)",
        "Z-Error, note (target, mean/std)",
        "Z-Error, robust (median/MAD, sigma=3, start 5)",
        "MLP, MSE",
        "MLP, Huber",
        "HuberRegressor",
        "RANSACRegressor",
        "cleanlab CleanLearning (MLP)",
    } <= methods
    assert {float(r["rate"]) for r in regression} == {0.0, 0.3}
    for row in regression:
        assert _number(row["test_rmse"]) > 0
        f1 = _number(row["f1"])
        if float(row["rate"]) == 0.0 or row["method"].startswith(("oracle", "MLP")):
            assert math.isnan(f1)  # nothing to detect, or no mask
        else:
            assert 0.0 <= f1 <= 1.0
        if row["method"].startswith("oracle"):
            assert float(row["rmse_ratio"]) == 1.0

    classification = _rows(tmp_path / "classification.csv")
    assert {(r["noise"], float(r["rate"])) for r in classification} == {
        ("none", 0.0),
        ("symmetric", 0.3),
        ("class", 0.3),
    }
    assert {
        "MLP, CE",
        "MLP, GCE",
        "Z-Error, defaults",
        "cleanlab CleanLearning (MLP)",
        "find_label_outliers + refit (MLP)",
    } <= {r["method"] for r in classification}
    for row in classification:
        assert 0.0 <= float(row["test_accuracy"]) <= 1.0
        if row["noise"] != "none" and not row["method"].startswith(("oracle", "MLP")):
            assert 0.0 <= float(row["f1"]) <= 1.0

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mode"] == "quick"
    assert summary["environment"]["cleanlab"]
    tables = (tmp_path / "tables.md").read_text()
    assert "RMSE / oracle" in tables and "detection F1 >= cleanlab" in tables
    for name in (
        "peers_regression.png",
        "peers_classification_accuracy.png",
        "peers_classification_detection.png",
    ):
        assert (figures / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generalized_cross_entropy_limits(baselines):
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], dtype=torch.float64)
    target = torch.tensor([0, 2])
    p_given = torch.softmax(logits, dim=1)[torch.arange(2), target]
    # q = 1: mean of 1 - p_y.
    gce = baselines.GeneralizedCrossEntropyLoss(q=1.0)(logits, target)
    assert torch.allclose(gce, (1 - p_given).mean())
    # q -> 0: cross-entropy.
    tiny = baselines.GeneralizedCrossEntropyLoss(q=1e-6)(logits, target)
    ce = torch.nn.functional.cross_entropy(logits, target)
    assert torch.allclose(tiny, ce, atol=1e-5)


def test_plain_mlp_regressor_restores_target_scale(baselines):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = 1000.0 + 50.0 * X[:, 0]
    for loss in ("mse", "huber"):
        model = baselines.PlainMLPRegressor(loss=loss, epochs=60, batch_size=64)
        pred = model.fit(X, y).predict(X)
        # Predictions are on the targets' scale, not the standardised one.
        assert np.sqrt(np.mean((pred - y) ** 2)) < 10.0


def test_plain_mlp_classifier_is_seeded_and_keeps_labels(baselines):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = np.where(X[:, 0] > 0, "yes", "no")
    first = baselines.PlainMLPClassifier(epochs=20, seed=3).fit(X, y)
    second = baselines.PlainMLPClassifier(epochs=20, seed=3).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert set(first.predict(X)) <= {"no", "yes"}
    assert np.mean(first.predict(X) == y) > 0.9
