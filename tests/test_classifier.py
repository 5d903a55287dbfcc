import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_iris, make_classification
from sklearn.metrics import log_loss
from sklearn.model_selection import FixedThresholdClassifier, GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_zerror import ZErrorClassifier, find_label_outliers
from sk_zerror._base import first_run_epochs, retrain_epochs, rows_to_retrain
from sk_zerror._classifier import class_probabilities
from sk_zerror._training import RunResult, hold_out_is_usable

FAST = dict(max_epochs=40, random_state=0)


@pytest.fixture
def noisy_binary():
    X, y = make_classification(
        n_samples=400, n_informative=4, class_sep=2.0, random_state=0
    )
    y_noisy = y.copy()
    y_noisy[:20] = 1 - y_noisy[:20]
    return X, y_noisy, y


@pytest.fixture
def noisy_iris():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(y), 12, replace=False)
    y_noisy = y.copy()
    y_noisy[flipped] = (y[flipped] + 1) % 3
    return X, y_noisy, y, flipped


def test_binary_flags_flipped_labels(noisy_binary):
    X, y_noisy, y = noisy_binary
    clf = ZErrorClassifier(**FAST).fit(X, y_noisy)
    assert clf.outlier_mask_[:20].mean() >= 0.6
    assert clf.outlier_mask_[20:].mean() <= 0.02
    # Lower tail: flagged rows are the ones least confident in their label.
    assert (clf.outlier_scores_[clf.outlier_mask_] < -2).all()
    assert (clf.predict(X) == y).mean() > 0.95


def test_lower_tail_never_flags_confident_rows(noisy_binary):
    # The tail is that of the Z-Error rule: the loss's mask and the final
    # whole-set pass (the training ledger counts errors instead).
    X, y_noisy, _ = noisy_binary
    zerror = dict(ledger="final", sigma=2.0, **FAST)
    lower = ZErrorClassifier(**zerror).fit(X, y_noisy)
    both = ZErrorClassifier(tail="both", **zerror).fit(X, y_noisy)
    assert not (lower.outlier_mask_ & (lower.outlier_scores_ > 0)).any()
    assert (both.outlier_mask_ & (both.outlier_scores_ > 2)).any()


def test_multiclass_flags_flipped_labels(noisy_iris):
    X, y_noisy, y, flipped = noisy_iris
    clf = ZErrorClassifier(max_epochs=60, random_state=0).fit(X, y_noisy)
    assert clf.decision_function(X).shape == (150, 3)
    assert clf.decision_threshold_ is None
    # All 12 flips stand out, and 8 of the 138 clean rows (iris's
    # versicolor/virginica overlap is ambiguous even when clean, and the
    # stratified count expects errors among ambiguous rows).
    clean = np.setdiff1d(np.arange(150), flipped)
    assert clf.outlier_mask_[flipped].mean() >= 0.9
    assert clf.outlier_mask_[clean].mean() <= 0.06
    assert (clf.predict(X) == y).mean() > 0.9


def test_string_labels_and_probabilities(noisy_iris):
    X, y_noisy, _, _ = noisy_iris
    names = np.array(["setosa", "versicolor", "virginica"])[y_noisy]
    clf = ZErrorClassifier(**FAST).fit(X, names)
    assert_array_equal(clf.classes_, ["setosa", "versicolor", "virginica"])
    proba = clf.predict_proba(X)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert set(clf.predict(X)) <= set(names)


def test_binary_decision_function_is_the_logit(noisy_binary):
    X, y_noisy, _ = noisy_binary
    clf = ZErrorClassifier(**FAST).fit(X, y_noisy)
    logits = clf.decision_function(X)
    assert logits.shape == (400,)
    assert_allclose(clf.predict_proba(X)[:, 1], 1 / (1 + np.exp(-logits)))
    assert_array_equal(clf.predict(X), (logits > 0).astype(int))
    fixed = FixedThresholdClassifier(
        clf, threshold=2.0, response_method="decision_function"
    ).fit(X, y_noisy)
    expected = (fixed.estimator_.decision_function(X) >= 2.0).astype(int)
    assert_array_equal(fixed.predict(X), expected)


def test_threshold_parameter_moves_binary_predictions(noisy_binary):
    X, y_noisy, _ = noisy_binary
    clf = ZErrorClassifier(threshold=1.5, **FAST).fit(X, y_noisy)
    assert clf.decision_threshold_ == 1.5
    assert_array_equal(clf.predict(X), (clf.decision_function(X) > 1.5).astype(int))


@pytest.mark.parametrize("method", ["gaussian", "skewnorm"])
def test_fitted_threshold_on_imbalanced_data(method):
    X, y = make_classification(
        n_samples=600,
        n_informative=3,
        weights=[0.9, 0.1],
        class_sep=0.7,
        random_state=0,
    )
    fixed = ZErrorClassifier(**FAST).fit(X, y)
    fitted = ZErrorClassifier(threshold=method, **FAST).fit(X, y)
    assert fitted.cutoff_.method == method
    assert fitted.decision_threshold_ == fitted.cutoff_.threshold
    # The minority class's cutoff moves below 0 and recovers positives.
    assert fitted.decision_threshold_ < 0
    logits = fitted.decision_function(X)
    assert_array_equal(fitted.predict(X), (logits >= fitted.decision_threshold_))
    recall = lambda clf: (clf.predict(X)[y == 1] == 1).mean()  # noqa: E731
    assert recall(fitted) > recall(fixed)
    assert fixed.cutoff_ is None and fixed.decision_threshold_ == 0.0


def test_per_class_sigma(noisy_iris):
    X, y_noisy, _, _ = noisy_iris
    sigma = np.array([1e6, 1e6, 1.0])
    clf = ZErrorClassifier(sigma=sigma, ledger="final", **FAST).fit(X, y_noisy)
    assert_array_equal(sigma, [1e6, 1e6, 1.0])
    assert_allclose(clf.net_.criterion_.sigma.numpy(), sigma)
    assert not clf.outlier_mask_[y_noisy != 2].any()
    assert clf.outlier_mask_[y_noisy == 2].any()
    with pytest.raises(ValueError, match="3 positive values .one per class."):
        ZErrorClassifier(sigma=[1.0, 2.0], max_epochs=1).fit(X, y_noisy)


def test_probability_space(noisy_binary):
    X, y_noisy, _ = noisy_binary
    clf = ZErrorClassifier(space="probability", **FAST).fit(X, y_noisy)
    assert clf.outlier_mask_[:20].mean() > clf.outlier_mask_[20:].mean()


def test_pipeline_grid_search_over_sigma(noisy_binary):
    X, y_noisy, _ = noisy_binary
    pipe = make_pipeline(
        StandardScaler(), ZErrorClassifier(max_epochs=30, random_state=0)
    )
    search = GridSearchCV(pipe, {"zerrorclassifier__sigma": [1.5, 3.0]}, cv=2, n_jobs=2)
    search.fit(X, y_noisy)
    # 200 rows a fold, 20 features of which 4 informative: far above chance.
    assert search.best_score_ > 0.75
    assert search.best_params_["zerrorclassifier__sigma"] in (1.5, 3.0)


def test_pickle_round_trip(noisy_iris):
    X, y_noisy, _, _ = noisy_iris
    clf = ZErrorClassifier(max_epochs=5, random_state=0).fit(X, y_noisy)
    clone = pickle.loads(pickle.dumps(clf))
    assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))


def test_same_random_state_identical_predictions(noisy_binary):
    X, y_noisy, _ = noisy_binary
    a = ZErrorClassifier(**FAST).fit(X, y_noisy).decision_function(X)
    b = ZErrorClassifier(**FAST).fit(X, y_noisy).decision_function(X)
    assert_array_equal(a, b)


@pytest.mark.parametrize(
    "y, error, match",
    [
        (np.zeros(10), ValueError, "at least two classes.*only one class: 0.0"),
        (np.linspace(0, 1, 10), ValueError, "Unknown label type"),
    ],
)
def test_bad_targets_raise_a_clear_error(y, error, match):
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(error, match=match):
        ZErrorClassifier(max_epochs=1).fit(X, y)


def test_nan_in_X_is_refused():
    X = np.ones((6, 2))
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        ZErrorClassifier(max_epochs=1).fit(X, [0, 1] * 3)


# The technical note's method, one parameter set away from the defaults.
NOTE_CLASSIFIER = dict(
    sigma=2.0,
    sigma_start=10.0,
    center="mean",
    scale="std",
    tail="both",
    early_stopping=False,
    ledger="final",
    retrain_without_outliers=False,
)


def test_the_note_setting_is_one_parameter_set_away(noisy_binary):
    X, y_noisy, _ = noisy_binary
    clf = ZErrorClassifier(anneal_epochs=40, **NOTE_CLASSIFIER, **FAST).fit(X, y_noisy)
    # The note's get_sigma_threshold: start + (end - start) * epoch / max_epochs.
    assert_allclose(clf.net_.history[:, "sigma"], [10 - 8 * e / 40 for e in range(40)])
    criterion = clf.net_.criterion_
    assert (criterion.center, criterion.scale, criterion.tail) == (
        "mean",
        "std",
        "both",
    )
    # One training run on every row, as in the note.
    assert dict(clf.net_.callbacks_)["ledger"].n_rows == len(X)
    # The whole-set pass at sigma 2 is the note's two-sided per-class rule.
    logits = clf.decision_function(X)
    given = np.where(y_noisy == 1, logits, -logits)
    expected = np.zeros(len(given), dtype=bool)
    for label in (0, 1):
        rows = y_noisy == label
        z = (given[rows] - given[rows].mean()) / given[rows].std(ddof=1)
        expected[rows] = np.abs(z) > 2.0
    assert_array_equal(clf.outlier_mask_, expected)


def test_defaults_stop_early_on_the_hold_out_log_loss(noisy_binary):
    X, y_noisy, _ = noisy_binary
    clf = ZErrorClassifier(
        max_epochs=20, retrain_without_outliers=False, random_state=0
    ).fit(X, y_noisy)
    history = clf.net_.history
    stopping = dict(clf.net_.callbacks_)["early_stopping"]
    assert stopping.monitor == "valid_loss" and stopping.load_best
    # The score is the plain log-loss of the hold-out rows, wrong labels too.
    split = clf.net_.train_split
    _, hold_out = split(clf.net_.get_dataset({"X": X}), y_noisy)
    rows = np.asarray(hold_out.indices)
    assert len(rows) == 40  # the 10% hold-out
    best = int(np.argmin(history[:, "valid_loss"]))
    assert best + 1 == stopping.best_epoch_
    assert_allclose(
        history[best, "valid_loss"],
        log_loss(y_noisy[rows], clf.predict_proba(X[rows])),
        rtol=1e-5,
    )
    assert_array_equal(np.flatnonzero(np.isnan(clf.outlier_frequency_)), np.sort(rows))
    # No in-batch masking by default: sigma infinite, nothing masked.
    assert set(history[:, "sigma"]) == {np.inf}
    assert set(history[:, "masked_fraction"]) == {0.0}
    masked = ZErrorClassifier(sigma=2.0, max_epochs=3, random_state=0)
    assert set(masked.fit(X, y_noisy).net_.history[:, "sigma"]) == {2.0}
    with pytest.raises(ValueError, match="ledger='final' flags by the Z-Error"):
        ZErrorClassifier(ledger="final", max_epochs=1).fit(X, y_noisy)


def test_small_tables_train_without_a_hold_out():
    X, y = make_classification(n_samples=60, random_state=0)
    once = ZErrorClassifier(max_epochs=6, retrain_without_outliers=False)
    assert len(once.fit(X, y).net_.history) == 6
    clf = ZErrorClassifier(max_epochs=6, random_state=0).fit(X, y)
    # Without early stopping, the first run and the retrain share max_epochs.
    assert len(clf.net_.history) == 3
    assert not np.isnan(clf.outlier_frequency_).any()


@pytest.mark.parametrize(
    "params, n_samples, expected",
    [
        ({}, 400, 100),  # early stopping ends the first run
        ({}, 60, 50),  # too small for a hold-out: half, the retrain the rest
        ({"early_stopping": False}, 400, 50),
        ({"early_stopping": False, "retrain_without_outliers": False}, 400, 100),
    ],
)
def test_first_run_epochs(params, n_samples, expected):
    clf = ZErrorClassifier(max_epochs=100, **params)
    y = np.arange(n_samples) % 2
    stops_early = clf.early_stopping and hold_out_is_usable(
        n_samples, y, clf.validation_fraction, stratified=True
    )
    epochs = first_run_epochs(100, clf.retrain_without_outliers, stops_early)
    assert epochs == expected


def run_probabilities(clf, X):
    """Mean training-batch probabilities; the network's for rows not trained on."""
    ledger = dict(clf.net_.callbacks_)["ledger"]
    proba = clf.predict_proba(X)
    seen = ledger.seen_.numpy()
    trained = seen > 0
    proba[trained] = ledger.prediction_sum_.numpy()[trained] / seen[trained, None]
    return proba


def test_training_ledger_counts_label_errors_on_the_run_probabilities(noisy_iris):
    X, y_noisy, _, _ = noisy_iris
    clf = ZErrorClassifier(retrain_without_outliers=False, **FAST).fit(X, y_noisy)
    proba = run_probabilities(clf, X)
    assert_allclose(proba.sum(axis=1), 1.0)
    expected = find_label_outliers(y_noisy, proba, count="stratified").mask
    assert_array_equal(clf.outlier_mask_, expected)
    zscored = find_label_outliers(y_noisy, proba, score="zscore")
    assert_allclose(clf.outlier_scores_, -zscored.scores)
    # Within a class, a flagged row is less confident in its label than the
    # class's typical row.
    assert (clf.outlier_scores_[clf.outlier_mask_] < 0).all()


def test_retrain_without_outliers(noisy_iris):
    X, y_noisy, y, flipped = noisy_iris
    once = ZErrorClassifier(retrain_without_outliers=False, **FAST).fit(X, y_noisy)
    twice = ZErrorClassifier(**FAST).fit(X, y_noisy)
    # The first runs are the same; the retrain leaves out what it flagged.
    assert_array_equal(once.outlier_frequency_, twice.outlier_frequency_)
    ledger = dict(twice.net_.callbacks_)["ledger"]
    assert ledger.n_rows == 150 - once.outlier_mask_.sum()
    # Both runs' histories are kept; the first is the one-run fit's.
    first, second = twice.run_histories_
    assert second is twice.net_.history and once.run_histories_ == [once.net_.history]
    assert first[:, "train_loss"] == once.net_.history[:, "train_loss"]
    # The final ledger averages both runs.
    assert twice.outlier_mask_[flipped].mean() >= once.outlier_mask_[flipped].mean()
    assert (twice.predict(X) == y).mean() > (once.predict(X) == y).mean()


def test_retrain_gets_the_epochs_the_first_run_left(noisy_binary):
    X, y_noisy, _ = noisy_binary
    params = dict(max_epochs=60, random_state=0)
    once = ZErrorClassifier(retrain_without_outliers=False, **params).fit(X, y_noisy)
    used = len(once.net_.history)
    best = dict(once.net_.callbacks_)["early_stopping"].best_epoch_
    assert best < used < 60  # the first run stopped early
    twice = ZErrorClassifier(**params).fit(X, y_noisy)
    assert dict(twice.net_.callbacks_)["ledger"].n_rows < 400  # it retrained
    assert twice.net_.max_epochs == max(60 - used, best)
    assert len(twice.net_.history) <= twice.net_.max_epochs


@pytest.mark.parametrize(
    "used, best, expected",
    [
        (30, 20, 70),  # the epochs the first run left
        (82, 72, 72),  # never fewer than the first run took to its best
        (100, 95, 100),  # a first run that trained every epoch: a whole run
        (50, None, 50),  # no early stopping: what the first run left
    ],
)
def test_retrain_epochs(used, best, expected):
    first = RunResult(net=None, ledger=None, history=[{}] * used, best_epoch=best)
    assert retrain_epochs(first, 100) == expected


def test_retrain_keeps_classes_that_would_vanish():
    y = np.array([0] * 6 + [1] * 6 + [2] * 3)
    keep = rows_to_retrain(np.isin(np.arange(15), [0, 13, 14]), y)
    # Class 2 would keep one row: it keeps all three; row 0 is left out.
    assert_array_equal(keep, np.arange(15) != 0)
    # Nothing left to leave out.
    assert rows_to_retrain(np.isin(np.arange(15), [13, 14]), y) is None
    assert rows_to_retrain(np.zeros(15, dtype=bool), y) is None


def test_retrain_without_outliers_must_be_a_boolean(noisy_iris):
    X, y_noisy, _, _ = noisy_iris
    with pytest.raises(
        ValueError,
        match="'retrain_without_outliers' parameter of ZErrorClassifier must be",
    ):
        ZErrorClassifier(retrain_without_outliers="yes", max_epochs=1).fit(X, y_noisy)


def test_class_probabilities_of_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(50, 4))
    proba = class_probabilities(torch.as_tensor(logits)).numpy()
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert_allclose(proba, expected)
    binary = logits[:, :1]
    positive = class_probabilities(torch.as_tensor(binary)).numpy()
    assert_allclose(positive[:, 1], 1 / (1 + np.exp(-binary[:, 0])))
    assert_allclose(positive.sum(axis=1), 1.0)
