import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from sk_zerror import ZErrorRegressor
from sk_zerror._training import (
    hold_out_is_usable,
    network_outputs,
    relative_weights,
    resolve_device,
    train_run,
)


def test_device_resolution():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="is not a torch device"):
        resolve_device("tpu9")


def test_relative_weights():
    assert relative_weights(np.full(4, 3.0)) is None
    assert_allclose(relative_weights(np.array([1.0, 3.0])), [0.5, 1.5])
    assert relative_weights(np.array([1.0, 3.0])).dtype == np.float32
    with pytest.raises(ValueError, match="positive sum"):
        relative_weights(np.array([0.0, 0.0, 0.0, 1e-300]) - 1e-300 / 2)


@pytest.mark.parametrize(
    "n, y, stratified, expected",
    [
        (99, np.arange(99) % 2, False, False),  # 9 rows: too few to score
        (100, np.arange(100) % 2, False, True),
        (100, np.arange(100) % 2, True, True),
        (100, np.r_[np.zeros(99), 1], True, False),  # a class of one row
        (100, np.arange(100) % 11, True, False),  # 11 classes, 10 hold-out rows
    ],
)
def test_hold_out_is_usable(n, y, stratified, expected):
    assert hold_out_is_usable(n, y, 0.1, stratified) is expected


def run_settings(**params):
    reg = ZErrorRegressor(max_epochs=3, random_state=0, **params)
    return reg, reg._run_settings(np.zeros((1, 2)), n_outputs=1, sigma=2.0)


def test_train_run_returns_its_result_and_writes_nothing_else():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2)).astype(np.float32)
    y = X[:, :1] - X[:, 1:]
    y[0] += 50
    reg, settings = run_settings(sigma_start=None)
    before = dict(vars(reg))
    run = train_run(settings, X, y, np.ones(40), seed=0, max_epochs=3)
    assert vars(reg) == before
    assert run.epochs == 3 and run.history is run.net.history
    assert run.best_epoch is None  # no early stopping
    assert_array_equal(run.ledger.seen, [3.0] * 40)
    assert run.ledger.masked[0] == 3.0
    assert run.net.history[:, "sigma"] == [2.0, 2.0, 2.0]
    # masking=False trains with an infinite sigma: nothing is masked.
    plain = train_run(settings, X, y, np.ones(40), seed=0, max_epochs=2, masking=False)
    assert plain.net.history[:, "sigma"] == [np.inf, np.inf]
    assert not plain.ledger.masked.any()


def test_train_run_refuses_a_module_of_the_wrong_width():
    reg, settings = run_settings()
    X = np.zeros((10, 2), dtype=np.float32)
    narrow = settings.__class__(**{**vars(settings), "n_outputs": 3})
    with pytest.raises(ValueError, match=r"expected \(2, 3\)"):
        train_run(
            narrow, X, np.zeros((10, 1), np.float32), np.ones(10), seed=0, max_epochs=1
        )


def test_network_outputs_do_not_depend_on_the_other_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(70, 2)).astype(np.float32)
    reg, settings = run_settings(batch_size=32)
    run = train_run(settings, X, X[:, :1], np.ones(70), seed=0, max_epochs=1)
    whole = network_outputs(run.net, X, 70)
    assert whole.shape == (70, 1)
    assert torch.equal(whole[5:6], network_outputs(run.net, X[5:6], 1))


def test_network_outputs_with_a_collate_fn_read_only_the_real_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(70, 2)).astype(np.float32)
    sizes = []

    def stack(samples):
        sizes.append(len(samples))
        return torch.stack(samples)

    reg, settings = run_settings(batch_size=32)
    settings = settings.__class__(
        **{**vars(settings), "collate_fn": stack, "valid_collate_fn": stack}
    )
    run = train_run(settings, X, X[:, :1], np.ones(70), seed=0, max_epochs=1)
    # The module check's 2 rows, then one epoch of 32 + 32 + 6.
    assert sizes == [2, 32, 32, 6]
    sizes.clear()
    outputs = network_outputs(run.net, X, 70)
    assert sizes == [32, 32, 6]  # no zero rows padded in
    with torch.no_grad():
        expected = run.net.module_(torch.as_tensor(X))
    assert_allclose(outputs.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
