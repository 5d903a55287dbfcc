from functools import partial

import numpy as np
import pytest
import sklearn
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logit
from scipy.stats import norm, skewnorm
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import (
    StratifiedKFold,
    StratifiedShuffleSplit,
    cross_val_predict,
    train_test_split,
)
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import LinearSVC
from skorch import NeuralNetBinaryClassifier
from threadpoolctl import threadpool_limits

from sk_zerror import (
    ZErrorClassifier,
    ZThresholdCalibrator,
    gaussian_cutoff,
    skewnorm_cutoff,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Small fits: threads only add synchronisation (BLAS: 20x slower on 2 cores)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def imbalanced():
    X, y = make_classification(
        n_samples=2000,
        n_features=10,
        n_informative=4,
        weights=[0.9, 0.1],
        class_sep=0.8,
        random_state=0,
    )
    return train_test_split(X, y, stratify=y, random_state=0)


@pytest.mark.parametrize(
    "estimator",
    [LogisticRegression(), HistGradientBoostingClassifier(max_iter=30, random_state=0)],
    ids=["logistic", "hist_gradient_boosting"],
)
@pytest.mark.parametrize("method", ["gaussian", "skewnorm"])
def test_improves_balanced_accuracy_on_imbalanced_data(imbalanced, estimator, method):
    X_train, X_test, y_train, y_test = imbalanced
    default = clone(estimator).fit(X_train, y_train).predict(X_test)
    model = ZThresholdCalibrator(estimator, method=method, cv=3).fit(X_train, y_train)

    gain = balanced_accuracy_score(y_test, model.predict(X_test))
    gain -= balanced_accuracy_score(y_test, default)
    assert gain > 0.1
    assert model.response_method_ == "decision_function"
    assert model.crossed_
    # Imbalance moves the cutoff towards the minority (positive) class's side.
    assert model.decision_threshold_ < 0
    assert_allclose(
        model.probability_threshold_, 1 / (1 + np.exp(-model.decision_threshold_))
    )
    family = norm if method == "gaussian" else skewnorm
    assert list(model.distributions_) == [0, 1]
    assert all(isinstance(d.dist, type(family)) for d in model.distributions_.values())


def test_cutoff_comes_from_out_of_fold_scores(imbalanced):
    X, _, y, _ = imbalanced
    cv = StratifiedKFold(4)
    model = ZThresholdCalibrator(LogisticRegression(), cv=cv).fit(X, y)

    scores = cross_val_predict(
        LogisticRegression(), X, y, cv=cv, method="decision_function"
    )
    assert_allclose(model.decision_threshold_, gaussian_cutoff(scores, y).threshold)
    # refit=True: the estimator is then fitted on all the data.
    full = LogisticRegression().fit(X, y)
    assert_allclose(model.estimator_.coef_, full.coef_)


def test_skewnorm_threshold_is_in_score_space(imbalanced):
    X, _, y, _ = imbalanced
    model = ZThresholdCalibrator(LogisticRegression(), method="skewnorm", cv=3)
    model.fit(X, y)
    scores = cross_val_predict(
        LogisticRegression(), X, y, cv=StratifiedKFold(3), method="predict_proba"
    )[:, 1]
    cutoff = skewnorm_cutoff(scores, y)
    assert_allclose(model.probability_threshold_, cutoff.probability, rtol=1e-6)
    assert_allclose(model.decision_threshold_, logit(cutoff.probability), rtol=1e-5)


def test_prefit_refits_nothing(imbalanced):
    X_train, X_held, y_train, y_held = imbalanced
    estimator = LogisticRegression().fit(X_train, y_train)
    coef = estimator.coef_.copy()

    model = ZThresholdCalibrator(estimator, cv="prefit", refit=False)
    model.fit(X_held, y_held)

    assert model.estimator_ is estimator
    assert_array_equal(estimator.coef_, coef)
    expected = gaussian_cutoff(estimator.decision_function(X_held), y_held)
    assert model.decision_threshold_ == expected.threshold
    assert_array_equal(
        model.predict(X_held),
        (estimator.decision_function(X_held) >= expected.threshold).astype(int),
    )


def test_prefit_errors(imbalanced):
    X, _, y, _ = imbalanced
    with pytest.raises(ValueError, match="When cv='prefit', refit cannot be True"):
        ZThresholdCalibrator(LogisticRegression().fit(X, y), cv="prefit").fit(X, y)
    with pytest.raises(NotFittedError, match="must be fitted already"):
        ZThresholdCalibrator(LogisticRegression(), cv="prefit", refit=False).fit(X, y)


def test_single_split_without_refit(imbalanced):
    X, _, y, _ = imbalanced
    model = ZThresholdCalibrator(
        LogisticRegression(), cv=0.3, refit=False, random_state=0
    ).fit(X, y)
    split = StratifiedShuffleSplit(n_splits=1, test_size=0.3, random_state=0)
    train, test = next(split.split(X, y))
    fitted = LogisticRegression().fit(X[train], y[train])
    assert_allclose(model.estimator_.coef_, fitted.coef_)
    expected = gaussian_cutoff(fitted.decision_function(X[test]), y[test])
    assert_allclose(model.decision_threshold_, expected.threshold)

    with pytest.raises(ValueError, match="several folds, refit cannot be False"):
        ZThresholdCalibrator(LogisticRegression(), refit=False).fit(X, y)


def test_delegation_and_method_availability(imbalanced):
    X_train, X_test, y_train, _ = imbalanced

    logistic = ZThresholdCalibrator(LogisticRegression(), cv=3).fit(X_train, y_train)
    inner = logistic.estimator_
    assert_array_equal(logistic.predict_proba(X_test), inner.predict_proba(X_test))
    assert_array_equal(
        logistic.predict_log_proba(X_test), inner.predict_log_proba(X_test)
    )
    assert_array_equal(
        logistic.decision_function(X_test), inner.decision_function(X_test)
    )

    svc = ZThresholdCalibrator(LinearSVC(), cv=3)
    assert not hasattr(svc, "predict_proba")
    assert svc.fit(X_train, y_train).response_method_ == "decision_function"
    assert not hasattr(svc, "predict_proba")

    bayes = ZThresholdCalibrator(GaussianNB(), cv=3).fit(X_train, y_train)
    assert not hasattr(bayes, "decision_function")
    assert bayes.response_method_ == "predict_proba"
    # Scores are logits of predict_proba: the cutoff is the probability one.
    positive = bayes.predict_proba(X_test)[:, 1] >= bayes.probability_threshold_
    agree = np.mean(bayes.predict(X_test) == positive.astype(int))
    assert agree > 0.99  # ties at the cutoff only (rounding of expit/logit)

    forced = ZThresholdCalibrator(LogisticRegression(), response_method="predict_proba")
    assert forced.fit(X_train, y_train).response_method_ == "predict_proba"
    with pytest.raises(ValueError, match="GaussianNB has no decision_function"):
        ZThresholdCalibrator(GaussianNB(), response_method="decision_function").fit(
            X_train, y_train
        )


def test_string_labels_and_pos_label(imbalanced):
    X_train, X_test, y_train, _ = imbalanced
    names = np.array(["healthy", "sick"])
    model = ZThresholdCalibrator(LogisticRegression(), cv=3)
    default = clone(model).fit(X_train, names[y_train])
    assert_array_equal(default.classes_, names)
    assert list(default.distributions_) == ["healthy", "sick"]
    predicted = default.predict(X_test)
    assert predicted.dtype == names.dtype
    assert set(predicted) == set(names)

    # With "healthy" positive the scores are mirrored, and so is the Gaussian
    # crossing: the same samples are predicted sick.
    flipped = clone(model).set_params(pos_label="healthy").fit(X_train, names[y_train])
    assert_allclose(flipped.decision_threshold_, -default.decision_threshold_)
    assert list(flipped.distributions_) == ["sick", "healthy"]
    same = np.mean(flipped.predict(X_test) == predicted)
    assert same > 0.99  # ties at the cutoff only

    with pytest.raises(ValueError, match="pos_label='ill' is not one of the classes"):
        model.set_params(pos_label="ill").fit(X_train, names[y_train])


def test_multiclass_is_refused():
    X, y = make_classification(
        n_samples=90, n_classes=3, n_informative=4, random_state=0
    )
    with pytest.raises(ValueError, match="binary.*got 3 classes"):
        ZThresholdCalibrator(LogisticRegression()).fit(X, y)


def test_class_with_too_few_inliers_is_named(imbalanced):
    X_train, X_held, y_train, y_held = imbalanced
    estimator = LogisticRegression().fit(X_train, y_train)
    keep = np.flatnonzero(y_held == 0)[:50].tolist() + [np.flatnonzero(y_held)[0]]
    model = ZThresholdCalibrator(estimator, cv="prefit", refit=False)
    with pytest.raises(ValueError, match="Class 1 has 1 inlier"):
        model.fit(X_held[keep], y_held[keep])


def test_fit_params_are_routed(imbalanced):
    X, _, y, _ = imbalanced
    weights = np.where(y == 1, 5.0, 1.0)
    with sklearn.config_context(enable_metadata_routing=True):
        estimator = LogisticRegression().set_fit_request(sample_weight=True)
        model = ZThresholdCalibrator(estimator, cv=3).fit(X, y, sample_weight=weights)
    expected = LogisticRegression().fit(X, y, sample_weight=weights)
    assert_allclose(model.estimator_.coef_, expected.coef_)
    with pytest.raises(ValueError, match="enable_metadata_routing=True"):
        ZThresholdCalibrator(LogisticRegression()).fit(X, y, sample_weight=weights)


def test_skorch_net_in_a_pipeline():
    X, y = make_classification(
        n_samples=300, n_features=5, weights=[0.85, 0.15], random_state=0
    )
    net = NeuralNetBinaryClassifier(
        torch.nn.Linear,
        module__in_features=5,
        module__out_features=1,
        max_epochs=5,
        lr=0.1,
        train_split=None,
        verbose=0,
    )
    to_float32 = FunctionTransformer(partial(np.asarray, dtype=np.float32))
    pipeline = make_pipeline(StandardScaler(), to_float32, net)
    # skorch's binary net trains on float targets.
    model = ZThresholdCalibrator(pipeline, cv=2).fit(X, y.astype(np.float32))
    assert model.response_method_ == "predict_proba"
    assert np.isfinite(model.decision_threshold_)
    assert set(model.predict(X)) <= {0.0, 1.0}
    assert model.predict_proba(X).shape == (300, 2)


def test_zerror_classifier():
    X, y = make_classification(
        n_samples=300, n_features=5, weights=[0.85, 0.15], random_state=0
    )
    estimator = ZErrorClassifier(max_epochs=5, hidden_layer_sizes=(8,), random_state=0)
    model = ZThresholdCalibrator(estimator, cv=2).fit(X, y)
    assert model.response_method_ == "decision_function"
    assert_array_equal(
        model.decision_function(X), model.estimator_.decision_function(X)
    )
    assert_array_equal(
        model.predict(X),
        (model.estimator_.decision_function(X) >= model.decision_threshold_).astype(
            int
        ),
    )
