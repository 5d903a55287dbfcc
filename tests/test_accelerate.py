"""Estimators trained data-parallel through accelerate, 2 CPU processes (gloo).

Two processes on 127.0.0.1 are spawned once for the module, each with the
environment ``torchrun`` would give it; each builds an
``Accelerator(cpu=True)`` (which joins the gloo group) and fits the same
estimators on the same data. The parent compares them with single-process
fits.

Why they must agree: accelerate gives each process whole batches of one
shuffled order (``batch_size`` rows each), drawn from torch's random stream
as in one process (``_FreshOrderEachPass``), so a step of 2 processes trains
on the rows one process takes in a batch of ``2 * batch_size``; the
statistics are those of the global batch and the averaged gradients the
single-process ones (``tests/test_distributed.py``); only the summation
order of the gradients differs. So the outlier masks are equal, and the
predictions to rounding. The row counts leave an odd number of batches,
whose last step accelerate pads with rows already seen: the ledger must
still count each training row once per epoch.
"""

import io
import os
import pickle
from contextlib import redirect_stdout

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification, make_regression

from sk_zerror import ZErrorClassifier, ZErrorRegressor

pytest.importorskip(
    "accelerate", reason="accelerate is not installed (extra 'distributed')"
)

LOOPBACK = "127.0.0.1"
WORLD = 2
EPOCHS = 10
# float32 gradients summed in another order, through a few Adam steps.
PREDICT_RTOL, PREDICT_ATOL = 1e-4, 1e-3
LOSS_RTOL = 1e-4


def _regression(n_rows):
    X, y = make_regression(n_rows, 4, noise=2.0, random_state=0)
    rng = np.random.default_rng(0)
    outliers = np.zeros(n_rows, dtype=bool)
    outliers[rng.choice(n_rows, n_rows // 10, replace=False)] = True
    y = y.copy()
    y[outliers] += rng.choice([-1, 1], outliers.sum()) * 6 * y.std()
    return X, y, outliers


def _classification(n_rows):
    X, y = make_classification(
        n_rows,
        6,
        n_informative=6,
        n_redundant=0,
        n_classes=3,
        n_clusters_per_class=1,
        class_sep=3.0,
        random_state=0,
    )
    rng = np.random.default_rng(1)
    outliers = np.zeros(n_rows, dtype=bool)
    outliers[rng.choice(n_rows, n_rows // 10, replace=False)] = True
    y = y.copy()
    y[outliers] = (y[outliers] + rng.integers(1, 3, outliers.sum())) % 3
    return X, y, outliers


# name -> (estimator, its parameters, data, rows, batch size per process).
# 950 rows make 15 batches of up to 64: the 8th step of the second process is
# padding; so are 900 of 1000 with early stopping (100 validate).
CASES = {
    "regressor": (ZErrorRegressor, {}, _regression, 950, 64),
    "classifier": (ZErrorClassifier, {}, _classification, 950, 64),
    "classifier_early_stopping": (
        ZErrorClassifier,
        dict(early_stopping=True, n_iter_no_change=2),
        _classification,
        1000,
        64,
    ),
}


def _estimator(name, **params):
    cls, extra, *_ = CASES[name]
    options = dict(hidden_layer_sizes=(16,), lr=0.01, max_epochs=EPOCHS, random_state=0)
    options.update(extra)
    options.update(params)
    return cls(**options)


def _data(name):
    _, _, make, n_rows, *_ = CASES[name]
    return make(n_rows)


def _worker(rank, port, outdir):
    """One process of a torchrun-like launch: fit every case, save results."""
    from accelerate import Accelerator

    torch.set_num_threads(1)
    os.environ.update(
        MASTER_ADDR=LOOPBACK,
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_WORLD_SIZE=str(WORLD),
    )
    accelerator = Accelerator(cpu=True)
    results = {"num_processes": accelerator.num_processes}
    for name in CASES:
        X, y, _ = _data(name)
        printed = io.StringIO()
        with redirect_stdout(printed):
            est = _estimator(name, accelerator=accelerator, batch_size=CASES[name][4])
            est.fit(X, y)
        ledger = dict(est.net_.callbacks_)["ledger"]
        results[name] = dict(
            printed=printed.getvalue(),
            seen=ledger.seen_.numpy(),
            outlier_mask=est.outlier_mask_,
            prediction=est.predict(X),
            epochs=len(est.net_.history),
            masked_fraction=est.net_.history[:, "masked_fraction"],
            train_loss=est.net_.history[:, "train_loss"],
            valid_loss=est.net_.history[:, "valid_loss"]
            if est.early_stopping
            else None,
            pickled=pickle.dumps(est),
        )
    printed = io.StringIO()
    with redirect_stdout(printed):
        est = _estimator("regressor", accelerator=accelerator, verbose=1)
        est.set_params(max_epochs=1).fit(*_data("regressor")[:2])
    results["verbose_printed"] = printed.getvalue()
    accelerator.wait_for_everyone()
    torch.save(results, os.path.join(outdir, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(spawn_ranks):
    """The results of both processes, from one spawn for the whole module."""
    return spawn_ranks(_worker, "accelerate", WORLD)


@pytest.fixture(scope="module")
def single():
    """Single-process fits with the global batch size (2 x per process)."""
    results = {}
    for name in CASES:
        X, y, _ = _data(name)
        est = _estimator(name, batch_size=WORLD * CASES[name][4]).fit(X, y)
        ledger = dict(est.net_.callbacks_)["ledger"]
        results[name] = (est, ledger.seen_.numpy())
    return results


def test_both_processes_joined(ranks):
    assert [r["num_processes"] for r in ranks] == [WORLD, WORLD]


@pytest.mark.parametrize("name", list(CASES))
def test_processes_agree_and_ledger_counts_every_row_once(ranks, single, name):
    first, second = ranks[0][name], ranks[1][name]
    assert first["epochs"] == second["epochs"]
    assert_array_equal(first["outlier_mask"], second["outlier_mask"])
    assert_allclose(first["prediction"], second["prediction"], rtol=0, atol=0)
    # The shards were merged and the padding dropped: each training row once
    # per epoch (the validation rows of early stopping never).
    _, seen = single[name]
    training = seen > 0
    assert training.mean() > 0.8
    assert_array_equal(first["seen"], second["seen"])
    assert_array_equal(first["seen"][training], first["epochs"])
    assert_array_equal(first["seen"] > 0, training)


@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_equal_one_process(ranks, single, name):
    reference, _ = single[name]
    got = ranks[0][name]
    X, _, outliers = _data(name)
    assert got["epochs"] == len(reference.net_.history)
    assert_array_equal(got["outlier_mask"], reference.outlier_mask_)
    # The share of the rows masked in their batch, epoch by epoch: the same
    # batches, the same masks.
    assert_allclose(
        got["masked_fraction"],
        reference.net_.history[:, "masked_fraction"],
        rtol=0,
        atol=0.5 / len(X),
    )
    # The loss of the whole batch, as one process records it.
    history = reference.net_.history
    assert_allclose(got["train_loss"], history[:, "train_loss"], rtol=LOSS_RTOL)
    if got["valid_loss"] is not None:
        assert_allclose(got["valid_loss"], history[:, "valid_loss"], rtol=LOSS_RTOL)
    assert got["outlier_mask"][outliers].mean() > 0.5
    if isinstance(reference, ZErrorRegressor):
        assert_allclose(
            got["prediction"],
            reference.predict(X),
            rtol=PREDICT_RTOL,
            atol=PREDICT_ATOL,
        )
    else:
        assert_array_equal(got["prediction"], reference.predict(X))


@pytest.mark.parametrize("name", list(CASES))
def test_fitted_estimator_pickles_and_predicts_in_one_process(ranks, name):
    est = pickle.loads(ranks[0][name]["pickled"])
    X, _, _ = _data(name)
    assert_allclose(est.predict(X), ranks[0][name]["prediction"], rtol=0, atol=0)
    assert_array_equal(est.outlier_mask_, ranks[0][name]["outlier_mask"])


def test_epoch_table_only_when_asked_and_only_on_rank_0(ranks):
    for rank in ranks:
        for name in CASES:
            assert rank[name]["printed"] == ""
    assert "train_loss" in ranks[0]["verbose_printed"]
    assert ranks[1]["verbose_printed"] == ""


def test_accelerator_must_be_an_accelerator():
    X, y, _ = _regression(40)
    with pytest.raises(ValueError, match="'accelerator' parameter of ZErrorRegressor"):
        ZErrorRegressor(accelerator="cuda", max_epochs=1).fit(X, y)
