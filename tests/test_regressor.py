import pickle

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_zerror import ZErrorRegressor

FAST = dict(max_epochs=40, random_state=0)


@pytest.fixture
def corrupted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y_clean = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=300)
    y = y_clean.copy()
    y[:15] += 20.0
    return X, y, y_clean


def rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


def test_robust_setting_flags_the_gross_errors_and_ignores_them(corrupted):
    X, y, y_clean = corrupted
    robust = ZErrorRegressor(center="median", scale="mad", **FAST).fit(X, y)
    plain = ZErrorRegressor(sigma=1e9, sigma_start=None, **FAST).fit(X, y)
    assert robust.outlier_mask_[:15].all()
    assert robust.outlier_mask_[15:].mean() < 0.1
    # Positive scores: the recorded targets are too high.
    assert (robust.outlier_scores_[:15] > 5).all()
    assert rmse(robust.predict(X[15:]), y_clean[15:]) < 0.5 * rmse(
        plain.predict(X[15:]), y_clean[15:]
    )
    assert not plain.outlier_mask_.any()


def test_outlier_frequency_counts_masked_epochs(corrupted):
    X, y, _ = corrupted
    reg = ZErrorRegressor(retrain_without_outliers=False, **FAST).fit(X, y)
    assert reg.outlier_frequency_.shape == (300,)
    assert ((reg.outlier_frequency_ >= 0) & (reg.outlier_frequency_ <= 1)).all()
    assert reg.outlier_frequency_[:15].min() > reg.outlier_frequency_[15:].mean()
    history = reg.net_.history
    # The default schedule starts tight and opens.
    assert history[0, "sigma"] == 3.0 and history[-1, "sigma"] == 5.0
    assert 0 < history[-1, "masked_fraction"] < 0.2


def test_targets_of_any_scale_train_alike(corrupted):
    X, y, _ = corrupted
    small = ZErrorRegressor(**FAST).fit(X, y)
    large = ZErrorRegressor(**FAST).fit(X, 1e6 * y + 5e6)
    assert_allclose(large.predict(X), 1e6 * small.predict(X) + 5e6, rtol=1e-4)
    assert_array_equal(large.outlier_mask_, small.outlier_mask_)
    assert_allclose(large.target_center_, 1e6 * np.median(y) + 5e6)


def test_multi_output_targets(corrupted):
    X, y, _ = corrupted
    Y = np.column_stack([y, -3 * y])
    Y[20, 1] += 100.0
    reg = ZErrorRegressor(center="median", scale="mad", **FAST).fit(X, Y)
    assert reg.predict(X).shape == (300, 2)
    assert reg.n_outputs_ == 2
    assert reg.outlier_scores_.shape == (300, 2)
    assert reg.outlier_mask_[:15].all() and reg.outlier_mask_[20]
    column = ZErrorRegressor(**FAST).fit(X, y[:, None])
    assert column.predict(X).shape == (300, 1)


def test_integer_and_float32_inputs_are_accepted(corrupted):
    X, y, _ = corrupted
    reg = ZErrorRegressor(**FAST)
    reg.fit(np.round(X * 10).astype(np.int64), np.round(y).astype(np.int32))
    assert reg.predict(np.round(X * 10).astype(np.int64)).dtype == np.float64
    reg.fit(X.astype(np.float32), y.astype(np.float32))
    assert np.isfinite(reg.predict(X)).all()


def test_sample_weight_zero_removes_rows(corrupted):
    X, y, y_clean = corrupted
    weight = np.ones(300)
    weight[:15] = 0.0
    plain = dict(sigma=1e9, sigma_start=None, **FAST)
    weighted = ZErrorRegressor(**plain).fit(X, y, sample_weight=weight)
    unweighted = ZErrorRegressor(**plain).fit(X, y)
    assert rmse(weighted.predict(X[15:]), y_clean[15:]) < 0.5 * rmse(
        unweighted.predict(X[15:]), y_clean[15:]
    )
    ones = ZErrorRegressor(**FAST).fit(X, y, sample_weight=np.ones(300))
    assert_array_equal(ones.predict(X), ZErrorRegressor(**FAST).fit(X, y).predict(X))


def test_same_random_state_gives_identical_predictions_and_spares_global_rng(
    corrupted,
):
    X, y, _ = corrupted
    state = torch.get_rng_state()
    a = ZErrorRegressor(dropout=0.2, **FAST).fit(X, y).predict(X)
    assert torch.equal(torch.get_rng_state(), state)
    b = ZErrorRegressor(dropout=0.2, **FAST).fit(X, y).predict(X)
    c = ZErrorRegressor(dropout=0.2, max_epochs=40, random_state=1).fit(X, y)
    assert_array_equal(a, b)
    assert not np.allclose(a, c.predict(X))


def test_pickle_and_joblib_round_trips(corrupted, tmp_path):
    X, y, _ = corrupted
    reg = ZErrorRegressor(**FAST).fit(X, y)
    expected = reg.predict(X)
    assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(X), expected)
    joblib.dump(reg, tmp_path / "reg.joblib")
    loaded = joblib.load(tmp_path / "reg.joblib")
    assert_array_equal(loaded.predict(X), expected)
    assert_array_equal(loaded.outlier_mask_, reg.outlier_mask_)


def test_pipeline_grid_search_clone_and_set_params(corrupted):
    X, y, _ = corrupted
    pipe = make_pipeline(StandardScaler(), ZErrorRegressor(max_epochs=15))
    search = GridSearchCV(
        pipe, {"zerrorregressor__sigma": [1.5, 3.0]}, cv=2, n_jobs=2
    ).fit(X, y)
    assert search.best_params_["zerrorregressor__sigma"] in (1.5, 3.0)
    assert search.predict(X).shape == (300,)
    reg = ZErrorRegressor(sigma=3.0)
    twin = clone(reg).set_params(sigma=1.5, lr=0.1)
    assert reg.sigma == 3.0 and twin.sigma == 1.5 and twin.lr == 0.1
    assert not hasattr(twin, "net_")


def test_pandas_in_feature_names_out(corrupted):
    pd = pytest.importorskip("pandas")
    X, y, _ = corrupted
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    reg = ZErrorRegressor(**FAST).fit(frame, pd.Series(y))
    assert_array_equal(reg.feature_names_in_, ["a", "b", "c"])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        from_array = reg.predict(X)
    assert_allclose(reg.predict(frame), from_array)


def test_the_note_setting_reproduces_the_target_listing(corrupted):
    X, y, _ = corrupted
    reg = ZErrorRegressor(zscore_of="target", sigma_start=None, **FAST).fit(X, y)
    z = (y - y.mean()) / y.std()
    # Whole-set pass on standardised targets: the flags are the |z| > 2 rows.
    assert_array_equal(reg.outlier_mask_, np.abs(z) > 2)


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.array([[1.0, np.nan]] * 5), np.arange(5.0), "Input X contains NaN"),
        (np.array([[1.0, np.inf]] * 5), np.arange(5.0), "Input X contains infinity"),
        (np.empty((0, 2)), np.empty(0), "0 sample"),
        (np.ones((5, 2)), np.array([1.0, np.nan, 2, 3, 4]), "Input y contains NaN"),
    ],
)
def test_bad_data_raises_a_clear_error(X, y, match):
    with pytest.raises(ValueError, match=match):
        ZErrorRegressor(max_epochs=2).fit(X, y)


def test_predict_checks_the_number_of_features(corrupted):
    X, y, _ = corrupted
    reg = ZErrorRegressor(max_epochs=2).fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but ZErrorRegressor"):
        reg.predict(X[:, :2])


def test_sparse_input_fits_as_the_dense_table(corrupted):
    sparse = pytest.importorskip("scipy.sparse")
    X, y, _ = corrupted
    params = dict(max_epochs=4, random_state=0)
    on_sparse = ZErrorRegressor(**params).fit(sparse.csr_matrix(X), y)
    on_dense = ZErrorRegressor(**params).fit(X, y)
    assert on_sparse.__sklearn_tags__().input_tags.sparse
    assert_array_equal(on_sparse.outlier_mask_, on_dense.outlier_mask_)
    assert_allclose(on_sparse.predict(sparse.csr_matrix(X)), on_dense.predict(X))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(sigma=0.0), "'sigma' parameter of ZErrorRegressor must be"),
        (dict(sigma=[1.0, 2.0]), "must be a float in the range"),
        (dict(zscore_of="error"), "'zscore_of' parameter"),
        (dict(hidden_layer_sizes=(10, 0)), "hidden_layer_sizes must be a sequence"),
        (dict(lr=-1.0), "'lr' parameter"),
        (
            dict(retrain_without_outliers="yes"),
            "'retrain_without_outliers' parameter of ZErrorRegressor must be",
        ),
    ],
)
def test_bad_parameters_raise_at_fit(corrupted, params, match):
    X, y, _ = corrupted
    with pytest.raises(ValueError, match=match):
        ZErrorRegressor(max_epochs=2, **params).fit(X, y)


def test_the_input_data_is_not_modified(corrupted):
    X, y, _ = corrupted
    X_copy, y_copy = X.copy(), y.copy()
    ZErrorRegressor(max_epochs=2).fit(X, y)
    assert_array_equal(X, X_copy)
    assert_array_equal(y, y_copy)


def test_robust_settings_standardise_targets_robustly(corrupted):
    X, y, _ = corrupted
    reg = ZErrorRegressor(center="median", scale="mad", **FAST).fit(X, y)
    median = np.median(y)
    assert_allclose(reg.target_center_, [median])
    assert_allclose(reg.target_scale_, [1.482602218505602 * np.median(abs(y - median))])
    # The gross errors inflate the standard deviation, not the MAD.
    assert reg.target_scale_[0] < 0.8 * y.std()
    plain = ZErrorRegressor(center="mean", scale="std", **FAST).fit(X, y)
    assert_allclose(plain.target_center_, [y.mean()])
    # The masking core's unbiased standard deviation.
    assert_allclose(plain.target_scale_, [y.std(ddof=1)])


def test_tied_targets_fall_back_from_a_zero_mad():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = np.zeros(60)
    y[:10] = rng.normal(5.0, 1.0, size=10)  # 50 of 60 tied: the MAD is 0
    reg = ZErrorRegressor(center="median", scale="mad", **FAST).fit(X, y)
    assert_allclose(reg.target_center_, [0.0])
    # The core's policy: the standard deviation about the median instead.
    assert_allclose(reg.target_scale_, [np.sqrt(np.sum(y**2) / 59)])


def test_retrain_without_outliers_trains_on_the_rows_kept(corrupted):
    X, y, y_clean = corrupted
    once = ZErrorRegressor(**FAST).fit(X, y)
    twice = ZErrorRegressor(retrain_without_outliers=True, **FAST).fit(X, y)
    # The outlier attributes are the first run's, which saw every row.
    assert_array_equal(twice.outlier_mask_, once.outlier_mask_)
    assert_array_equal(twice.outlier_scores_, once.outlier_scores_)
    assert_array_equal(twice.outlier_frequency_, once.outlier_frequency_)
    # The fitted network trained on the unflagged rows only.
    ledger = dict(twice.net_.callbacks_)["ledger"]
    assert ledger.n_rows == (~once.outlier_mask_).sum()
    assert ledger.seen_.min() > 0
    # ... without masking: what is left is trained on whole.
    history = twice.net_.history
    assert set(history[:, "sigma"]) == {np.inf}
    assert set(history[:, "masked_fraction"]) == {0.0}
    # and fits them well.
    kept = ~once.outlier_mask_
    assert rmse(twice.predict(X[kept]), y_clean[kept]) < 0.5


def test_hold_out_valid_loss_is_its_plain_mean_squared_error(corrupted):
    X, y, _ = corrupted
    reg = ZErrorRegressor(
        early_stopping=True,
        validation_fraction=0.25,
        retrain_without_outliers=False,
        **FAST,
    )
    reg.fit(X, y)
    history = reg.net_.history
    held = np.isnan(reg.outlier_frequency_)  # the rows never trained on
    scaled = (y - reg.target_center_) / reg.target_scale_
    pred = (reg.predict(X) - reg.target_center_) / reg.target_scale_
    best = dict(reg.net_.callbacks_)["early_stopping"].best_epoch_
    # Gross errors in the hold-out count in full: the stopping's own score
    # (valid_trimmed_loss) leaves them out, valid_loss does not.
    plain = np.mean((pred[held] - scaled[held]) ** 2)
    assert_allclose(history[best - 1, "valid_loss"], plain, rtol=1e-4)
    assert history[best - 1, "valid_trimmed_loss"] < plain


def test_retrain_without_early_stopping_shares_max_epochs(corrupted):
    X, y, _ = corrupted
    reg = ZErrorRegressor(**FAST).fit(X, y)
    once = ZErrorRegressor(retrain_without_outliers=False, **FAST).fit(X, y)
    assert reg.outlier_mask_.any()
    # The first run trains half of max_epochs, the length of the schedule,
    # which ends at the final sigma; the retrain trains the other half.
    frequency = reg.outlier_frequency_
    assert frequency.min() >= 0 and 0 < frequency.max() <= 1
    assert len(once.net_.history) == 40
    assert reg.net_.max_epochs == len(reg.net_.history) == 20
    first, second = reg.run_histories_
    assert second is reg.net_.history
    # The first run's schedule opens from 3 to 5 over its 20 epochs.
    assert len(first) == 20 and first[0, "sigma"] == 3.0
    assert 4.8 < first[-1, "sigma"] < 5.0
    nothing = ZErrorRegressor(sigma_start=None, sigma=1e6, **FAST).fit(X, y)
    # Nothing flagged: the first run, of 20 epochs, is the fitted network.
    assert not nothing.outlier_mask_.any()
    assert len(nothing.net_.history) == 20
    assert set(nothing.net_.history[:, "sigma"]) == {1e6}


def test_retrain_without_outliers_with_nothing_flagged_is_one_fit():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    y = X @ [1.0, 1.0] + 0.1 * rng.normal(size=200)
    reg = ZErrorRegressor(sigma=1e6, retrain_without_outliers=True, **FAST)
    reg.fit(X, y)
    assert not reg.outlier_mask_.any()
    assert dict(reg.net_.callbacks_)["ledger"].n_rows == 200


def test_note_preset_is_one_annealed_run_flagging_unusual_targets(corrupted):
    X, y, _ = corrupted
    note = dict(
        sigma=2.0,
        sigma_start=10.0,
        center="mean",
        scale="std",
        early_stopping=False,
        ledger="final",
        retrain_without_outliers=False,
        zscore_of="target",
    )
    reg = ZErrorRegressor(anneal_epochs=8, max_epochs=10, random_state=0, **note)
    reg.fit(X, y)
    # One run, sigma annealed linearly from 10 to 2 (the note's schedule).
    (history,) = reg.run_histories_
    assert history is reg.net_.history
    assert_allclose(history[:, "sigma"], [10, 9, 8, 7, 6, 5, 4, 3, 2, 2])
    # The note's listing z-scores the targets over the whole set.
    z = (y - y.mean()) / y.std(ddof=1)
    assert_array_equal(reg.outlier_mask_, np.abs(z) > 2.0)
    assert_allclose(reg.outlier_scores_, z, rtol=1e-6, atol=1e-9)
