import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from skorch import NeuralNetClassifier, NeuralNetRegressor

from sk_zerror import (
    SigmaScheduler,
    ZErrorCrossEntropyLoss,
    ZErrorMSELoss,
    sigma_at_epoch,
)
from sk_zerror._schedule import loss_has_flattened


def test_linear_schedule_is_the_note_formula():
    # The note: start + (end - start) * epoch / max_epochs.
    values = [sigma_at_epoch(e, 2.0, start=100.0, anneal_epochs=10) for e in range(12)]
    assert_allclose(values[:10], [100 + (2 - 100) * e / 10 for e in range(10)])
    assert values[10:] == [2.0, 2.0]


def test_cosine_and_exponential_schedules_hit_both_ends():
    for schedule in ["cosine", "exponential"]:
        path = [
            sigma_at_epoch(e, 2.0, start=8.0, schedule=schedule, anneal_epochs=4)
            for e in range(5)
        ]
        assert_allclose([path[0], path[-1]], [8.0, 2.0])
        assert all(a > b for a, b in zip(path, path[1:], strict=False))
    assert_allclose(
        sigma_at_epoch(2, 2.0, start=8.0, schedule="exponential", anneal_epochs=4), 4.0
    )
    assert_allclose(
        sigma_at_epoch(2, 2.0, start=8.0, schedule="cosine", anneal_epochs=4), 5.0
    )


def test_warmup_masks_nothing_and_per_class_targets():
    assert sigma_at_epoch(1, 2.0, warmup_epochs=2) == math.inf
    per_class = sigma_at_epoch(1, np.array([1.0, 3.0]), start=5.0, anneal_epochs=2)
    assert_allclose(per_class, [3.0, 4.0])
    assert sigma_at_epoch(5, 2.0, start=None) == 2.0


def regression_data(n=128):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = (X @ np.array([1.0, -1.0, 0.5], dtype=np.float32))[:, None]
    y[:6] += 30.0
    return X, y


def test_scheduler_changes_sigma_in_place_and_keeps_the_optimizer():
    X, y = regression_data()
    net = NeuralNetRegressor(
        torch.nn.Linear(3, 1),
        criterion=ZErrorMSELoss,
        optimizer=torch.optim.Adam,
        max_epochs=5,
        batch_size=32,
        train_split=None,
        verbose=0,
        callbacks=[SigmaScheduler(target=2.0, start=6.0, anneal_epochs=4)],
    )
    net.initialize()
    optimizer, buffer = net.optimizer_, net.criterion_.sigma
    net.partial_fit(X, y)
    assert net.optimizer_ is optimizer and net.criterion_.sigma is buffer
    # Adam's state survived every epoch: one step per batch, 4 batches x 5 epochs.
    state = optimizer.state[next(iter(net.module_.parameters()))]
    assert int(state["step"]) == 20
    assert net.history[:, "sigma"] == [6.0, 5.0, 4.0, 3.0, 2.0]
    assert net.history[:, "sigma_annealing"] == [True] * 4 + [False]
    assert_allclose(net.criterion_.sigma.item(), 2.0)


def test_scheduler_on_a_plain_skorch_classifier_with_per_class_sigma():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 1).astype(np.int64)
    net = NeuralNetClassifier(
        torch.nn.Linear(4, 3),
        criterion=ZErrorCrossEntropyLoss,
        criterion__sigma=[2.0, 2.0, 2.0],
        max_epochs=3,
        train_split=None,
        verbose=0,
        callbacks=[SigmaScheduler(target=[1.0, 2.0, 3.0], start=5.0, anneal_epochs=2)],
    ).fit(X, y)
    assert net.history[-1, "sigma"] == [1.0, 2.0, 3.0]
    assert_allclose(net.criterion_.sigma.numpy(), [1.0, 2.0, 3.0])
    assert net.predict_proba(X).shape == (90, 3)


def test_scheduler_refuses_a_plain_criterion():
    X, y = regression_data()
    net = NeuralNetRegressor(
        torch.nn.Linear(3, 1),
        max_epochs=1,
        train_split=None,
        callbacks=[SigmaScheduler()],
    )
    with pytest.raises(TypeError, match="needs a Z-Error criterion with set_sigma"):
        net.fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(schedule="step"), "schedule must be one of"),
        (dict(start=-1.0), "start must be > 0"),
        (dict(target=0.0), "sigma must be > 0"),
        (dict(warmup_epochs="late"), "integer >= 0 or 'plateau'"),
    ],
)
def test_scheduler_parameters_are_checked(params, match):
    X, y = regression_data()
    net = NeuralNetRegressor(
        torch.nn.Linear(3, 1),
        criterion=ZErrorMSELoss,
        max_epochs=1,
        train_split=None,
        callbacks=[SigmaScheduler(**params)],
    )
    with pytest.raises(ValueError, match=match):
        net.fit(X, y)


def test_plateau_warm_up_masks_once_the_training_loss_flattens():
    X, y = regression_data()
    scheduler = SigmaScheduler(target=2.0, start=None, warmup_epochs="plateau")
    net = NeuralNetRegressor(
        torch.nn.Linear(3, 1),
        criterion=ZErrorMSELoss,
        max_epochs=40,
        lr=0.05,
        train_split=None,
        verbose=0,
        callbacks=[scheduler],
    ).fit(X, y)
    sigma = net.history[:, "sigma"]
    losses = net.history[:, "train_loss"]
    start = scheduler.warmup_epochs_
    assert start is not None and 5 < start < 40
    assert sigma[:start] == [np.inf] * start and set(sigma[start:]) == {2.0}
    # It fired at the first epoch whose loss had flattened, not before.
    assert loss_has_flattened(losses[:start])
    assert not any(loss_has_flattened(losses[:k]) for k in range(1, start))
    assert net.history[start - 1, "sigma_annealing"]
    assert not net.history[start, "sigma_annealing"]
