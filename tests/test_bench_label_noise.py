"""Smoke test of benchmarks/bench_label_noise.py and its noise generator."""

import csv

import numpy as np
import pytest
from numpy.testing import assert_array_equal


@pytest.fixture(scope="module")
def noise(import_benchmark):
    return import_benchmark("_noise")


def _read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def clean_probs():
    """Labels and probabilities of a model that is unsure of a third of them."""
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 3, n)
    probs = np.full((n, 3), 0.01)
    probs[np.arange(n), y] = 0.98
    ambiguous = np.arange(n) < n // 3
    # The ambiguous rows split their mass between their class and the next.
    probs[ambiguous, y[ambiguous]] = 0.5
    probs[ambiguous, (y[ambiguous] + 1) % 3] = 0.49
    return y, probs, ambiguous


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.4])
def test_flip_plausible_flips_exactly_the_rate(noise, clean_probs, rate):
    y, probs, _ = clean_probs

    noisy, flipped = noise.flip_plausible(y, probs, rate, 3)

    assert flipped.sum() == round(rate * len(y))
    assert_array_equal(flipped, noisy != y)


def test_flip_plausible_hits_ambiguous_rows_towards_plausible_classes(
    noise, clean_probs
):
    y, probs, ambiguous = clean_probs

    noisy, flipped = noise.flip_plausible(y, probs, 0.1, 1)

    # Ambiguity 0.5 against 0.02: nearly every flip is an ambiguous row, and
    # goes to the class the model found plausible, not the third one.
    assert flipped[ambiguous].sum() >= 0.9 * flipped.sum()
    moved = flipped & ambiguous
    assert (noisy[moved] == (y[moved] + 1) % 3).mean() > 0.9


def test_flip_plausible_is_deterministic_and_leaves_its_input(noise, clean_probs):
    y, probs, _ = clean_probs
    before = (y.copy(), probs.copy())

    first = noise.flip_plausible(y, probs, 0.2, 7)
    again = noise.flip_plausible(y, probs, 0.2, np.random.default_rng(7))
    other = noise.flip_plausible(y, probs, 0.2, 8)

    assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], other[0])
    assert_array_equal(y, before[0])
    assert_array_equal(probs, before[1])


def test_bench_label_noise_quick(tmp_path, run_benchmark):
    pytest.importorskip("cleanlab")
    run_benchmark("bench_label_noise.py", "--quick", "--out", tmp_path, timeout=300)

    labels = _read_csv(tmp_path / "labels.csv")
    methods = {row["method"] for row in labels}
    assert {"ours", "ours (stratified)", "cleanlab (prune_by_noise_rate)"} <= methods
    assert {"cleanlab rank (self_confidence)"} <= methods
    assert {row["noise"] for row in labels} == {"symmetric", "pair", "instance"}
    for row in labels:
        if row["method"].startswith("ours"):
            assert 0.0 <= float(row["f1"]) <= 1.0
            assert 0.0 <= float(row["ap"]) <= 1.0
            assert float(row["count_ratio"]) > 0.0
            assert int(row["n_errors"]) > 0

    timing = _read_csv(tmp_path / "timing.csv")
    assert [row["method"] for row in timing][0] == "find_label_outliers"
    assert all(float(row["wall_s"]) > 0.0 for row in timing)

    targets = _read_csv(tmp_path / "targets.csv")
    clean = [r for r in targets if float(r["rate"]) == 0.0]
    assert clean and all(r["f1"] == "" for r in clean)
    assert all(0.0 <= float(r["clean_flagged"]) <= 1.0 for r in targets)
    assert 'ours (sigma="fdr", default)' in {r["method"] for r in targets}
    tables = (tmp_path / "tables.md").read_text()
    assert "F1 >= cleanlab default" in tables
