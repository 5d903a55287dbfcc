"""Trimmed metrics and scorers: values, validation, and choosing sigma with them."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sk_zerror import (
    ZErrorClassifier,
    ZErrorRegressor,
    make_trimmed_scorer,
    trimmed_accuracy_score,
    trimmed_log_loss,
    trimmed_mean_squared_error,
)


@pytest.fixture
def regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    y = X @ [1.0, -1.0] + 0.3 * rng.normal(size=60)
    return X, y, y + 0.5 * rng.normal(size=60)


def _probabilities(n, n_classes, rng):
    raw = rng.gamma(1.0, size=(n, n_classes))
    return raw / raw.sum(axis=1, keepdims=True)


# -- trimmed mean squared error --------------------------------------------


@pytest.mark.parametrize("trim", [0.1, 0.25, 0.49])
def test_trimmed_mse_is_the_mse_of_the_best_fitted_rows(regression, trim):
    _, y, pred = regression
    errors = (y - pred) ** 2
    kept = np.argsort(errors)[: len(y) - int(trim * len(y))]
    expected = mean_squared_error(y[kept], pred[kept])
    assert_allclose(
        trimmed_mean_squared_error(y, pred, trim=trim), expected, rtol=1e-12
    )


def test_trimmed_mse_weights_only_the_kept_rows(regression):
    _, y, pred = regression
    weight = np.random.default_rng(2).uniform(0.5, 2.0, len(y))
    kept = np.argsort((y - pred) ** 2)[: len(y) - 15]
    expected = mean_squared_error(y[kept], pred[kept], sample_weight=weight[kept])
    value = trimmed_mean_squared_error(y, pred, trim=0.25, sample_weight=weight)
    assert_allclose(value, expected, rtol=1e-12)


def test_zero_trim_is_the_plain_mse(regression):
    _, y, pred = regression
    assert_allclose(
        trimmed_mean_squared_error(y, pred, trim=0.0),
        mean_squared_error(y, pred),
        rtol=1e-12,
    )


def test_an_extreme_wrong_target_does_not_move_the_score(regression):
    _, y, pred = regression
    moderate, extreme = y.copy(), y.copy()
    moderate[7] += 50.0
    extreme[7] += 1e9
    reference = trimmed_mean_squared_error(moderate, pred, trim=0.1)
    assert trimmed_mean_squared_error(extreme, pred, trim=0.1) == reference
    # The plain error is all that one row.
    assert mean_squared_error(extreme, pred) > 1e15


def test_multioutput_rows_are_trimmed_whole():
    y = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    pred = y + [[0.1, 0.3], [0.0, 0.2], [5.0, 0.0], [0.2, 0.2]]
    # Row means of the squared errors: 0.05, 0.02, 12.5, 0.04; the third goes.
    assert_allclose(
        trimmed_mean_squared_error(y, pred, trim=0.25),
        np.mean([0.05, 0.02, 0.04]),
        rtol=1e-12,
    )


# -- trimmed log-loss and accuracy ------------------------------------------


@pytest.mark.parametrize("trim", [0.0, 0.2, 0.4])
def test_trimmed_log_loss_is_the_log_loss_of_the_likeliest_rows(trim):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 50)
    proba = _probabilities(50, 3, rng)
    given = proba[np.arange(50), y]
    kept = np.argsort(-given)[: 50 - int(trim * 50)]
    expected = log_loss(y[kept], proba[kept], labels=[0, 1, 2])
    assert_allclose(trimmed_log_loss(y, proba, trim=trim), expected, rtol=1e-12)


@pytest.mark.parametrize("trim", [0.0, 0.2, 0.4])
def test_trimmed_accuracy_is_the_accuracy_on_the_same_rows(trim):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 50)
    proba = _probabilities(50, 3, rng)
    given = proba[np.arange(50), y]
    kept = np.argsort(-given)[: 50 - int(trim * 50)]
    expected = accuracy_score(y[kept], np.argmax(proba[kept], axis=1))
    assert trimmed_accuracy_score(y, proba, trim=trim) == pytest.approx(expected)
    if trim:
        # Trimming the least likely rows can only help the accuracy.
        assert expected >= accuracy_score(y, np.argmax(proba, axis=1))


def test_a_confidently_flipped_label_does_not_move_the_log_loss():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 40)
    doubtful = _probabilities(40, 2, rng)
    doubtful[0, y[0]], doubtful[0, 1 - y[0]] = 1e-3, 1.0 - 1e-3
    sure = doubtful.copy()
    sure[0, y[0]], sure[0, 1 - y[0]] = 1e-300, 1.0  # certain the label is wrong
    assert trimmed_log_loss(y, sure, trim=0.1) == trimmed_log_loss(
        y, doubtful, trim=0.1
    )
    # The plain log-loss is mostly that one row (-log(eps) = 36 nats).
    assert log_loss(y, sure) > log_loss(y, doubtful) + 0.6


def test_binary_probability_of_the_second_label_equals_both_columns():
    rng = np.random.default_rng(6)
    y = np.where(rng.random(30) < 0.5, "spam", "ham")
    proba = _probabilities(30, 2, rng)
    for function in (trimmed_log_loss, trimmed_accuracy_score):
        assert function(y, proba[:, 1], trim=0.2) == function(y, proba, trim=0.2)


def test_labels_name_the_columns_when_a_fold_lacks_a_class():
    y = np.array([0, 0, 2, 2])
    proba = np.array(
        [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6]]
    )
    value = trimmed_log_loss(y, proba, trim=0.25, labels=[0, 1, 2])
    assert_allclose(value, -np.mean(np.log([0.8, 0.6, 0.8])), rtol=1e-12)
    with pytest.raises(ValueError, match="3 columns but there are 2 labels"):
        trimmed_log_loss(y, proba)


def test_losing_confidence_on_rows_never_improves_the_trimmed_loss():
    # What masking more in training can do to a fold: raise some rows'
    # losses. A trimmed mean with a fixed count cannot fall for it.
    rng = np.random.default_rng(7)
    for _ in range(50):
        y = rng.integers(0, 3, 40)
        sure = _probabilities(40, 3, rng)
        doubtful = sure.copy()
        rows = rng.choice(40, 10, replace=False)
        doubtful[rows] = (sure[rows] + 1.0) / 4.0  # towards uniform
        given_sure = sure[np.arange(40), y]
        given_doubt = doubtful[np.arange(40), y]
        worse = given_doubt <= given_sure
        doubtful[~worse] = sure[~worse]
        assert trimmed_log_loss(y, doubtful, trim=0.25) >= trimmed_log_loss(
            y, sure, trim=0.25
        )


# -- validation --------------------------------------------------------------


@pytest.mark.parametrize("trim", [1.0, -0.1, 1.5])
def test_trim_out_of_range_is_refused(trim):
    with pytest.raises(InvalidParameterError, match=r"'trim' parameter .* range"):
        trimmed_mean_squared_error([1.0, 2.0], [1.0, 2.0], trim=trim)
    with pytest.raises(InvalidParameterError, match=r"'trim' parameter .* range"):
        make_trimmed_scorer("neg_log_loss", trim=trim)


def test_unknown_metric_is_refused():
    with pytest.raises(InvalidParameterError, match="'metric' parameter"):
        make_trimmed_scorer("r2")


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="y_true has 3 rows but y_pred has 2"):
        trimmed_mean_squared_error([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="y_true has 1 outputs but y_pred has 2"):
        trimmed_mean_squared_error([1.0, 2.0], [[1.0, 1.0], [2.0, 2.0]])
    with pytest.raises(ValueError, match="y_pred contains NaN"):
        trimmed_mean_squared_error([1.0, 2.0], [1.0, np.nan])
    with pytest.raises(ValueError, match="0 sample"):
        trimmed_mean_squared_error([], [])
    with pytest.raises(ValueError, match=r"labels not in labels: \[5\]"):
        trimmed_log_loss([0, 5], [[0.5, 0.5], [0.5, 0.5]], labels=[0, 1])
    with pytest.raises(ValueError, match="1-d y_proba .* 3 labels"):
        trimmed_log_loss([0, 1, 2], [0.2, 0.5, 0.9])
    with pytest.raises(ValueError, match="labels must be distinct"):
        trimmed_log_loss([0, 1], [[0.5, 0.5], [0.5, 0.5]], labels=[0, 0])


def test_inputs_are_not_modified(regression):
    _, y, pred = regression
    y_copy, pred_copy = y.copy(), pred.copy()
    trimmed_mean_squared_error(y, pred, trim=0.3)
    np.testing.assert_array_equal(y, y_copy)
    np.testing.assert_array_equal(pred, pred_copy)


# -- scorers -----------------------------------------------------------------


def test_scorers_are_greater_is_better_and_read_the_right_method(regression):
    X, y, _ = regression
    model = LinearRegression().fit(X, y)
    pred = model.predict(X)
    mse = trimmed_mean_squared_error(y, pred, trim=0.2)
    rmse_scorer = make_trimmed_scorer("neg_root_mean_squared_error", trim=0.2)
    assert_allclose(rmse_scorer(model, X, y), -np.sqrt(mse), rtol=1e-12)
    mse_scorer = make_trimmed_scorer("neg_mean_squared_error", trim=0.2)
    assert_allclose(mse_scorer(model, X, y), -mse, rtol=1e-12)

    labels = np.where(y > 0, "high", "low")
    clf = LogisticRegression().fit(X, labels)
    proba = clf.predict_proba(X)
    loss_scorer = make_trimmed_scorer("neg_log_loss", trim=0.2)
    expected = trimmed_log_loss(labels, proba, trim=0.2)
    assert_allclose(loss_scorer(clf, X, labels), -expected, rtol=1e-12)
    accuracy = make_trimmed_scorer("accuracy", trim=0.2)
    assert accuracy(clf, X, labels) == trimmed_accuracy_score(labels, proba, trim=0.2)


def test_the_trim_does_not_depend_on_the_estimator(regression):
    # Two regressors that mask very differently in training are scored on
    # the same number of rows, whatever their outlier masks say.
    X, y, _ = regression
    y = y.copy()
    y[:12] += 20.0
    scorer = make_trimmed_scorer("neg_mean_squared_error", trim=0.25)
    for sigma in (1.0, 1e6):
        model = ZErrorRegressor(
            sigma=sigma, sigma_start=None, max_epochs=5, random_state=0
        ).fit(X, y)
        errors = np.sort((y - model.predict(X)) ** 2)
        assert_allclose(scorer(model, X, y), -np.mean(errors[:45]), rtol=1e-10)


def test_trimmed_log_loss_picks_sigma_where_the_plain_one_does_not():
    # A cell of the defaults panel: wine, 30% of the training labels flipped
    # to another class at random. The plain log-loss of the noisy folds
    # rewards the network that learnt the flips (no masking, sigma=1e6); the
    # trimmed one picks a masking sigma, which is far better on clean labels.
    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    rng = np.random.default_rng(0)
    flip = rng.choice(len(y_train), round(0.3 * len(y_train)), replace=False)
    noisy = y_train.copy()
    noisy[flip] = (noisy[flip] + rng.integers(1, 3, len(flip))) % 3

    sigmas = [0.5, 2.0, 1e6]
    # Without early stopping or the retrain, which on their own protect a
    # network from the flips and so narrow the differences that sigma makes.
    model = ZErrorClassifier(
        center="median",
        scale="mad",
        sigma_start=None,
        early_stopping=False,
        retrain_without_outliers=False,
        max_epochs=30,
        random_state=0,
    )
    search = GridSearchCV(
        model,
        {"sigma": sigmas},
        scoring={
            "plain": "neg_log_loss",
            "trimmed": make_trimmed_scorer("neg_log_loss", trim=0.3),
        },
        refit=False,
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(X_train, noisy)
    clean_accuracy = [
        model.set_params(sigma=s).fit(X_train, noisy).score(X_test, y_test)
        for s in sigmas
    ]
    plain = int(np.argmax(search.cv_results_["mean_test_plain"]))
    trimmed = int(np.argmax(search.cv_results_["mean_test_trimmed"]))
    assert sigmas[plain] == 1e6
    assert sigmas[trimmed] < 1e6
    assert clean_accuracy[trimmed] >= max(clean_accuracy) - 0.03
    assert clean_accuracy[trimmed] >= clean_accuracy[plain] + 0.1
