"""Hyperparameter search over sigma on a dask cluster gives the serial results.

A ``GridSearchCV`` of the Z-Error estimators runs its fits through joblib;
under joblib's dask backend they run in the worker processes of a
``dask.distributed`` cluster. Each fit is seeded (``random_state``) and single
threaded on both sides, so the cluster must reproduce the serial scores.
Only the loopback interface (127.0.0.1) is used.
"""

import os

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold

from sk_zerror import ZErrorClassifier, ZErrorRegressor

pytest.importorskip("dask", reason="dask is not installed (extra 'distributed')")
distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (extra 'distributed')"
)
joblib = pytest.importorskip("joblib")

LOOPBACK = "127.0.0.1"
SIGMAS = [1.0, 2.0, 3.0]
# Same seeds, same single thread, same library on both sides: the fits are
# the same computations, so the scores agree to rounding. The tolerance only
# allows for a different summation order of the float32 reductions, were
# torch ever to pick another kernel in a worker.
RTOL, ATOL = 1e-6, 1e-9
SCORE_KEYS = ["mean_test_score", "std_test_score"] + [
    f"split{i}_test_score" for i in range(3)
]


@pytest.fixture(scope="module")
def dask_client():
    """Two single-threaded worker processes on 127.0.0.1, closed afterwards."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host=LOOPBACK,
        dashboard_address=None,
        # Passed to each worker process: one thread per fit, as in the serial run.
        env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(autouse=True)
def _one_thread():
    """Run the serial search with one torch thread, as the workers do."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _noisy_classification():
    X, y = make_classification(
        n_samples=240, n_features=8, n_informative=5, flip_y=0.0, random_state=0
    )
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(y), 24, replace=False)
    y[flipped] = 1 - y[flipped]
    return X.astype(np.float32), y


def _regression_with_gross_errors():
    X, y = make_regression(
        n_samples=240, n_features=8, n_informative=5, noise=5.0, random_state=0
    )
    rng = np.random.default_rng(0)
    bad = rng.choice(len(y), 24, replace=False)
    y[bad] += rng.choice([-1.0, 1.0], len(bad)) * 10 * y.std()
    return X.astype(np.float32), y.astype(np.float32)


def _search(estimator, cv):
    # n_jobs=None: serial outside a joblib backend, every dask worker inside one.
    return GridSearchCV(estimator, {"sigma": SIGMAS}, cv=cv)


def _run_both(client, estimator, X, y, cv):
    serial = _search(estimator, cv).fit(X, y)
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_backend("dask"):
            on_cluster = _search(estimator, cv).fit(X, y)
    return serial, on_cluster, stream.data


def _check_same_results(serial, on_cluster, tasks, client):
    for key in SCORE_KEYS:
        assert_allclose(
            on_cluster.cv_results_[key],
            serial.cv_results_[key],
            rtol=RTOL,
            atol=ATOL,
            err_msg=key,
        )
    assert on_cluster.best_params_ == serial.best_params_
    # The comparison says something only if sigma changes the scores.
    assert len(np.unique(serial.cv_results_["mean_test_score"])) > 1
    # The fits did run in the cluster's workers, not in this process.
    workers = set(client.scheduler_info()["workers"])
    assert len(workers) == 2
    assert tasks and {task["worker"] for task in tasks} <= workers
    assert all(
        address.startswith(f"tcp://{LOOPBACK}:")
        for address in [client.scheduler.address, *workers]
    )


def test_cluster_is_loopback_only(dask_client):
    info = dask_client.scheduler_info()
    assert info["address"].startswith(f"tcp://{LOOPBACK}:")
    pids = dask_client.run(os.getpid)
    assert len(pids) == 2 and os.getpid() not in pids.values()
    assert set(dask_client.run(torch.get_num_threads).values()) == {1}


def test_classifier_search_on_dask_matches_serial(dask_client):
    X, y = _noisy_classification()
    estimator = ZErrorClassifier(
        hidden_layer_sizes=(16,),
        max_epochs=8,
        batch_size=64,
        lr=0.01,
        random_state=0,
    )
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    serial, on_cluster, tasks = _run_both(dask_client, estimator, X, y, cv)
    _check_same_results(serial, on_cluster, tasks, dask_client)


def test_regressor_search_on_dask_matches_serial(dask_client):
    X, y = _regression_with_gross_errors()
    estimator = ZErrorRegressor(
        hidden_layer_sizes=(16,),
        max_epochs=8,
        batch_size=64,
        lr=0.01,
        random_state=0,
    )
    cv = KFold(3, shuffle=True, random_state=0)
    serial, on_cluster, tasks = _run_both(dask_client, estimator, X, y, cv)
    _check_same_results(serial, on_cluster, tasks, dask_client)
