import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.base import clone
from skorch.callbacks import Callback
from torch.utils.data import default_collate

from sk_zerror import ZErrorClassifier, ZErrorRegressor


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    return X, X[:, 0] - X[:, 1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU-only message")
def test_cuda_without_cuda_is_a_clear_error(data):
    X, y = data
    with pytest.raises(ValueError, match="CUDA is not available"):
        ZErrorRegressor(device="cuda", max_epochs=1).fit(X, y)


class Wide(torch.nn.Module):
    def __init__(self, n_in=4, width=8):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(n_in, width), torch.nn.ReLU(), torch.nn.Linear(width, 1)
        )

    def forward(self, X):
        return self.body(X)


def test_module_class_with_params_and_instance_left_untouched(data):
    X, y = data
    reg = ZErrorRegressor(module=Wide, module_params={"width": 16}, max_epochs=3)
    reg.fit(X, y)
    assert reg.net_.module_.body[0].out_features == 16
    instance = Wide()
    before = {k: v.clone() for k, v in instance.state_dict().items()}
    reg = ZErrorRegressor(module=instance, max_epochs=3).fit(X, y)
    assert reg.net_.module_ is not instance
    for key, value in instance.state_dict().items():
        assert torch.equal(value, before[key])


def test_module_with_wrong_output_shape_is_refused(data):
    X, y = data
    with pytest.raises(ValueError, match=r"module returned outputs of shape \(2, 3\)"):
        ZErrorRegressor(module=torch.nn.Linear(4, 3), max_epochs=1).fit(X, y)


class CountEpochs(Callback):
    def initialize(self):
        self.epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1


def test_user_callbacks_run_on_a_copy(data):
    X, y = data
    counter = CountEpochs()
    reg = ZErrorRegressor(
        callbacks=[counter], max_epochs=3, retrain_without_outliers=False
    ).fit(X, y)
    assert not hasattr(counter, "epochs_")
    copied = dict(reg.net_.callbacks_)["CountEpochs"]
    assert copied.epochs_ == 3


def test_verbose_prints_the_epoch_table(data, capsys):
    X, y = data
    ZErrorRegressor(verbose=1, max_epochs=2).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "sigma" in out


def test_early_stopping_holds_out_data_and_leaves_nan_frequency(data):
    X, y = data
    reg = ZErrorRegressor(
        early_stopping=True, validation_fraction=0.25, max_epochs=6, random_state=0
    ).fit(X, y)
    assert "valid_loss" in reg.net_.history[-1]
    assert np.isnan(reg.outlier_frequency_).sum() == 15


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", torch.optim.RMSprop])
def test_optimizers(data, optimizer):
    X, y = data
    reg = ZErrorRegressor(optimizer=optimizer, max_epochs=2).fit(X, y)
    expected = {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}.get(
        optimizer, optimizer
    )
    assert isinstance(reg.net_.optimizer_, expected)


def test_running_statistics_with_small_batches(data):
    X, y = data
    y = y.copy()
    y[:3] += 50
    reg = ZErrorRegressor(
        window="running",
        batch_size=8,
        max_epochs=20,
        random_state=0,
        center="median",
        scale="mad",
    ).fit(X, y)
    assert reg.net_.criterion_.running_seen.all()
    assert reg.outlier_mask_[:3].all()


def test_classifier_shares_the_base(data):
    X, y = data
    clf = ZErrorClassifier(max_epochs=2, random_state=0).fit(X, y > 0)
    assert_array_equal(clf.classes_, [False, True])


class AttributeProbe(Callback):
    """Records, at each epoch's end, the estimator's attributes ending in ``_``."""

    def __init__(self, attributes):
        # A function survives the estimator's deep copy of its callbacks.
        self.attributes = attributes

    def on_epoch_end(self, net, **kwargs):
        self.attributes()


@pytest.mark.parametrize(
    "make",
    [
        lambda probe: ZErrorRegressor(max_epochs=4, callbacks=[probe]),
        lambda probe: ZErrorClassifier(max_epochs=4, callbacks=[probe]),
    ],
)
def test_no_fitted_attribute_exists_before_fit_returns(data, make):
    X, y = data
    y = y.copy()
    if isinstance(make(None), ZErrorRegressor):
        y[:4] += 30  # gross errors to flag, so that both runs train
    else:
        y = y > 0
        y[:6] = ~y[:6]  # flipped labels to flag
    seen = []
    estimator = None

    def attributes():
        seen.append(
            sorted(
                name
                for name in vars(estimator)
                if name.endswith("_") and not name.startswith("__")
            )
        )

    estimator = make(AttributeProbe(attributes))
    estimator.fit(X, y)
    assert len(seen) == sum(len(h) for h in estimator.run_histories_) == 4
    assert len(estimator.run_histories_) == 2
    # Not even scikit-learn's n_features_in_: every one is set as fit returns.
    assert seen == [[]] * 4
    fitted = {name for name in vars(estimator) if name.endswith("_")}
    assert {
        "net_",
        "run_histories_",
        "outlier_mask_",
        "outlier_scores_",
        "outlier_frequency_",
        "n_features_in_",
    } <= fitted


def test_skorch_double_underscore_parameters_are_routed(data):
    X, y = data
    reg = ZErrorRegressor(
        module=Wide,
        module__width=5,
        optimizer="sgd",
        optimizer__momentum=0.5,
        iterator_train__pin_memory=False,
        iterator_valid__num_workers=0,
        max_epochs=2,
        random_state=0,
    )
    params = reg.get_params()
    assert params["module__width"] == 5 and params["optimizer__momentum"] == 0.5
    twin = clone(reg)
    assert twin.get_params()["iterator_train__pin_memory"] is False
    twin.set_params(module__width=7, sigma=4.0)
    assert twin.module__width == 7 and twin.sigma == 4.0
    assert "module__width=5" in repr(reg)
    reg.fit(X, y)
    assert reg.net_.module_.body[0].out_features == 5
    assert reg.net_.optimizer_.param_groups[0]["momentum"] == 0.5
    assert reg.net_.iterator_valid__num_workers == 0
    assert clone(twin).fit(X, y).net_.module_.body[0].out_features == 7


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(criterion__sigma=3), "unknown parameter 'criterion__sigma'"),
        (dict(optimizer__weight_decay=0.1), "use weight_decay"),
        (dict(iterator_train__batch_size=8), "use batch_size"),
        (dict(module__width=8), r"needs a module class.*None \(the default MLP\)"),
        (
            dict(module=Wide, module_params={"width": 4}, module__width=8),
            "module__width is also in module_params",
        ),
    ],
)
def test_routed_parameters_are_checked_at_fit(data, params, match):
    X, y = data
    reg = ZErrorRegressor(max_epochs=1, **params)  # __init__ only stores them
    with pytest.raises(ValueError, match=match):
        reg.fit(X, y)


class RecordBatches:
    """A collate function (torch's rule) that records the size of each batch."""

    def __init__(self):
        self.sizes = []

    def __call__(self, samples):
        self.sizes.append(len(samples))
        return default_collate(samples)


def stack_rows(samples):
    return torch.stack(samples)


def test_a_collate_fn_is_kept_by_get_params_set_params_and_clone(data):
    X, y = data
    reg = ZErrorRegressor(max_epochs=1, iterator_train__collate_fn=default_collate)
    assert reg.get_params()["iterator_train__collate_fn"] is default_collate
    twin = clone(reg).set_params(iterator_valid__collate_fn=stack_rows)
    assert twin.get_params()["iterator_train__collate_fn"] is default_collate
    assert twin.iterator_valid__collate_fn is stack_rows
    twin.fit(X, y)
    assert twin.net_.iterator_train__collate_fn.collate_fn is default_collate
    assert twin.net_.iterator_valid__collate_fn.collate_fn is stack_rows
    # clone copies a callable object, as it copies any non-estimator parameter.
    record = RecordBatches()
    copied = clone(ZErrorRegressor(iterator_valid__collate_fn=record))
    assert isinstance(copied.iterator_valid__collate_fn, RecordBatches)


@pytest.mark.parametrize("given", ["iterator_train", "iterator_valid"])
def test_a_collate_fn_given_for_one_iterator_serves_both(data, given):
    X, y = data
    record = RecordBatches()
    reg = ZErrorRegressor(
        max_epochs=2,
        batch_size=16,
        early_stopping=False,
        retrain_without_outliers=False,
        **{f"{given}__collate_fn": record},
    ).fit(X, y)
    # The module check's 2 samples, 2 epochs of 16 + 16 + 16 + 12 rows, then
    # the pass over every row that scores the ledger, unpadded.
    assert record.sizes == [2, *[16, 16, 16, 12] * 2, 16, 16, 16, 12]
    record.sizes.clear()
    assert reg.predict(X[:5]).shape == (5,)
    assert record.sizes == [5]


def test_arrays_train_alike_with_torch_rule_as_collate_fn(data):
    X, y = data
    params = dict(batch_size=20, max_epochs=3, random_state=0)
    plain = ZErrorRegressor(**params).fit(X, y)
    unset = ZErrorRegressor(iterator_train__collate_fn=None, **params).fit(X, y)
    rowwise = ZErrorRegressor(iterator_train__collate_fn=default_collate, **params)
    rowwise.fit(X, y)
    assert_array_equal(unset.predict(X), plain.predict(X))
    assert_array_equal(rowwise.predict(X), plain.predict(X))
    assert_array_equal(rowwise.outlier_scores_, plain.outlier_scores_)


def broken_collate(samples):
    raise RuntimeError("no padding for these")


@pytest.mark.parametrize(
    "collate_fn, error, match",
    [
        (
            broken_collate,
            ValueError,
            r"iterator_train__collate_fn failed on the first samples of X \(a list "
            r"of 2, the first Tensor of shape \(4,\).*RuntimeError: no padding",
        ),
        (
            lambda samples: [s.tolist() for s in samples],
            ValueError,
            "module Wide failed on what iterator_train__collate_fn made of the "
            "first samples of X",
        ),
        ("pad", TypeError, "iterator_train__collate_fn must be a function"),
    ],
)
def test_a_broken_collate_fn_is_a_clear_error_before_training(
    data, collate_fn, error, match
):
    X, y = data
    reg = ZErrorRegressor(
        module=Wide, max_epochs=1, iterator_train__collate_fn=collate_fn
    )
    with pytest.raises(error, match=match):
        reg.fit(X, y)


def test_set_params_refuses_unknown_parameters():
    with pytest.raises(ValueError, match="Invalid parameter 'criterion'"):
        ZErrorRegressor().set_params(criterion__sigma=3)


def test_mixed_precision_fits_with_full_precision_statistics(data):
    X, y = data
    y = y.copy()
    y[:4] += 30
    reg = ZErrorRegressor(mixed_precision=True, max_epochs=6, random_state=0)
    reg.fit(X, y)
    assert reg.net_.mixed_precision is True
    assert reg.predict(X).dtype == np.float64
    assert reg.outlier_mask_[:4].all()
    with pytest.raises(ValueError, match="'mixed_precision' parameter"):
        ZErrorRegressor(mixed_precision="bf16", max_epochs=1).fit(X, y)


def test_tol_stops_a_run_once_its_training_loss_converges(data):
    X, y = data
    reg = ZErrorRegressor(
        tol=1e-3, max_epochs=300, retrain_without_outliers=False, random_state=0
    ).fit(X, y)
    losses = np.array(reg.net_.history[:, "train_loss"])
    assert 10 < len(losses) < 300
    # The last 10 epochs never beat the best before them by 1e-3.
    assert losses[-10:].min() > losses[:-10].min() - 1e-3
    # Without tol, every epoch of the ceiling is trained.
    every = ZErrorRegressor(max_epochs=30, retrain_without_outliers=False).fit(X, y)
    assert len(every.net_.history) == 30


def test_plateau_warm_up_in_the_estimators():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    y = X[:, 0] - X[:, 1] > 0
    y[:40] = ~y[:40]  # flipped labels keep the loss from falling to zero
    params = dict(
        sigma=2.0,
        warmup_epochs="plateau",
        retrain_without_outliers=False,
        early_stopping=False,
        random_state=0,
    )
    clf = ZErrorClassifier(max_epochs=60, **params).fit(X, y)
    sigma = clf.net_.history[:, "sigma"]
    start = sigma.index(2.0)
    assert 5 < start < 60 and sigma[:start] == [np.inf] * start
    assert set(sigma[start:]) == {2.0}
    # A loss that keeps falling (separable, clean) never starts the masking.
    clean = ZErrorClassifier(max_epochs=30, **params).fit(X[40:], y[40:])
    assert clean.net_.history[:, "sigma"] == [np.inf] * 30
    with pytest.raises(ValueError, match="'warmup_epochs' parameter"):
        ZErrorClassifier(warmup_epochs="late", max_epochs=1).fit(X, y)
