"""Smoke test of benchmarks/bench_images.py, its image generator and its CNN."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal


@pytest.fixture(scope="module")
def bench(import_benchmark):
    return import_benchmark("bench_images")


def test_make_shapes_is_seeded_and_balanced(bench):
    X, y = bench.make_shapes(40, random_state=1)
    assert X.shape == (40, 1, 16, 16) and X.dtype == np.float32
    assert_array_equal(np.bincount(y), np.full(10, 4))
    X_again, y_again = bench.make_shapes(40, random_state=1)
    assert_array_equal(X, X_again)
    assert_array_equal(y, y_again)
    assert not np.array_equal(X, bench.make_shapes(40, random_state=2)[0])


@pytest.mark.parametrize("size", [8, 16])
def test_small_cnn_takes_any_size(bench, size):
    module = bench.SmallCNN(channels=4)
    X = torch.zeros(3, 1, size, size)
    assert module(X).shape == (3, 10)
    assert module.embed(X).shape == (3, 4 * 2 * 16)


def test_bench_images_quick(run_benchmark):
    run = run_benchmark("bench_images.py", "--quick", timeout=120)
    assert "| symmetric 10% | 0 |" in run.stdout
