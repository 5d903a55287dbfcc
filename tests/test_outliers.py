import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit, softmax
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from sk_zerror._outliers import (
    OutlierResult,
    _auto_sigma,
    find_label_outliers,
    find_outliers,
)
from sk_zerror._zscore import MAD_TO_STD


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def noisy_labels(rng):
    """Probabilities of a confident model and labels with 15 injected errors."""
    n, n_classes = 300, 3
    truth = np.arange(n) % n_classes
    probs = rng.uniform(0.0, 0.1, (n, n_classes))
    probs[np.arange(n), truth] = rng.uniform(2.0, 4.0, n)
    probs /= probs.sum(axis=1, keepdims=True)
    wrong = rng.choice(n, 15, replace=False)
    labels = truth.copy()
    labels[wrong] = (truth[wrong] + 1 + np.arange(15) % 2) % n_classes
    return labels, probs, np.sort(wrong)


# -- find_outliers ------------------------------------------------------------


def test_find_outliers_finds_injected_gross_errors_exactly(rng):
    y_pred = rng.normal(50.0, 10.0, 500)
    y_true = y_pred + rng.normal(0.0, 1.0, 500)
    errors = np.array([3, 77, 150, 321, 499])
    y_true[errors] = [y_true[3] * 10, -40.0, y_true[150] + 30.0, 0.0, 1e4]

    result = find_outliers(y_true, y_pred, sigma=4.0)

    assert isinstance(result, OutlierResult)
    assert_array_equal(np.flatnonzero(result.mask), errors)
    assert result.mask.shape == result.scores.shape == result.threshold.shape
    assert_array_equal(result.mask, np.abs(result.scores) > result.threshold)


def test_find_outliers_scores_are_robust_zscores_of_observed_minus_predicted():
    y_true = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    y_pred = np.zeros(5)

    result = find_outliers(y_true, y_pred, sigma=3.0)

    mad = np.median(np.abs(y_true - 3.0)) * MAD_TO_STD
    assert_allclose(result.scores, (y_true - 3.0) / mad, rtol=1e-12)
    assert_array_equal(result.mask, [False, False, False, False, True])
    assert_allclose(result.threshold, 3.0)


def test_find_outliers_note_statistics_are_masked_by_the_errors():
    # Two gross errors inflate the standard deviation enough to hide the
    # smaller one; the median and MAD are not moved by them.
    y_true = np.r_[np.linspace(-1.0, 1.0, 20), 200.0, 15.0]
    y_pred = np.zeros(22)

    robust = find_outliers(y_true, y_pred)
    note = find_outliers(y_true, y_pred, center="mean", scale="std")

    assert_array_equal(np.flatnonzero(robust.mask), [20, 21])
    assert_array_equal(np.flatnonzero(note.mask), [20])


@pytest.mark.parametrize(
    "tail, expected", [("both", [0, 5]), ("upper", [5]), ("lower", [0])]
)
def test_find_outliers_tail(tail, expected):
    y_true = np.array([-50.0, 0.1, -0.2, 0.3, -0.1, 50.0, 0.0, 0.2])

    result = find_outliers(y_true, np.zeros(8), tail=tail)

    assert_array_equal(np.flatnonzero(result.mask), expected)


def test_find_outliers_two_outputs_use_their_own_statistics(rng):
    y_pred = np.zeros((100, 2))
    y_true = np.column_stack([rng.normal(0, 1, 100), rng.normal(0, 100, 100)])
    y_true[10, 0] = 30.0  # gross in column 0, ordinary in column 1

    result = find_outliers(y_true, y_pred, sigma=5.0)

    assert result.mask.shape == (100, 2)
    assert_array_equal(np.argwhere(result.mask), [[10, 0]])


def test_find_outliers_tied_residuals_fall_back_to_std():
    # More than half the residuals are 0: the MAD is 0, the std is not.
    y_true = np.r_[np.zeros(30), 0.5, -0.4, 0.3, 40.0]

    result = find_outliers(y_true, np.zeros(34))

    assert_array_equal(np.flatnonzero(result.mask), [33])


def test_find_outliers_accepts_pandas_and_lists_and_does_not_modify_input():
    y_true = pd.Series([1.0, 2.0, 1.5, 30.0, 1.2, 1.8])
    y_pred = np.array([1.4, 1.6, 1.5, 1.5, 1.4, 1.6])
    before = (y_true.copy(), y_pred.copy())

    result = find_outliers(y_true, list(y_pred))

    assert_array_equal(np.flatnonzero(result.mask), [3])
    pd.testing.assert_series_equal(y_true, before[0])
    assert_array_equal(y_pred, before[1])


@pytest.mark.parametrize(
    "y_true, y_pred, kwargs, error, match",
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], {}, ValueError, "inconsistent numbers"),
        (np.ones((3, 2)), np.ones(3), {}, ValueError, "same shape"),
        ([1.0, np.nan, 3.0], [1.0, 2.0, 3.0], {}, ValueError, "NaN"),
        ([1.0, 2.0], [1.0, 2.0], {"sigma": -1.0}, ValueError, "sigma must be > 0"),
        ([1.0, 2.0], [1.0, 2.0], {"sigma": "auto"}, TypeError, "positive number"),
        ([1.0, 2.0], [1.0, 2.0], {"center": "mode"}, ValueError, "center must be"),
        ([1.0, 2.0], [1.0, 2.0], {"tail": "left"}, ValueError, "tail must be"),
    ],
)
def test_find_outliers_errors(y_true, y_pred, kwargs, error, match):
    with pytest.raises(error, match=match):
        find_outliers(y_true, y_pred, **kwargs)


# -- find_label_outliers ------------------------------------------------------


def test_find_label_outliers_finds_injected_errors_exactly(noisy_labels):
    labels, probs, wrong = noisy_labels

    result = find_label_outliers(labels, probs, sigma=2.0)

    assert_array_equal(np.flatnonzero(result.mask), wrong)
    assert result.mask.shape == result.scores.shape == result.threshold.shape
    assert result.mask.dtype == bool
    assert_array_equal(result.mask, result.scores < -result.threshold)


def test_auto_finds_every_injected_error_and_overcounts_when_separable(
    noisy_labels,
):
    labels, probs, wrong = noisy_labels

    result = find_label_outliers(labels, probs)

    # With perfectly separated classes, only half of each class reaches the
    # class centre, and rescaling the counts to the class size inflates the
    # estimated errors (20 for the 15 injected).
    flagged = np.flatnonzero(result.mask)
    assert set(wrong) <= set(flagged)
    assert len(flagged) == 20
    assert_array_equal(result.mask, result.scores < -result.threshold)


def test_find_label_outliers_scores_are_zscores_of_given_class_log_odds(
    noisy_labels,
):
    labels, probs, _ = noisy_labels

    result = find_label_outliers(labels, probs, sigma=2.0, center="mean", scale="std")

    given = probs[np.arange(len(labels)), labels]
    log_odds = np.log(given / (1 - given))
    for c in range(3):
        rows = labels == c
        expected = (log_odds[rows] - log_odds[rows].mean()) / log_odds[rows].std(ddof=1)
        assert_allclose(result.scores[rows], expected, rtol=1e-10)
    assert_allclose(result.threshold, 2.0)


@pytest.mark.parametrize("sigma", ["auto", 1.0, 0.1])
def test_confident_correct_label_is_never_flagged(noisy_labels, sigma):
    labels, probs, _ = noisy_labels
    probs = probs.copy()
    # Far more confident than any other row of its class: upper tail only.
    probs[0] = [1 - 2e-9, 1e-9, 1e-9]
    labels = labels.copy()
    labels[0] = 0

    result = find_label_outliers(labels, probs, sigma=sigma)

    assert result.scores[0] > 2.0
    assert not result.mask[0]


def test_find_label_outliers_sigma_per_class(noisy_labels):
    labels, probs, wrong = noisy_labels

    result = find_label_outliers(labels, probs, sigma=[2.0, np.inf, 2.0])

    assert_array_equal(np.flatnonzero(result.mask), wrong[labels[wrong] != 1])
    assert_allclose(result.threshold, np.array([2.0, np.inf, 2.0])[labels])


def test_pred_probs_and_softmax_logits_give_the_same_result(rng):
    logits = rng.normal(0.0, 2.0, (200, 4))
    labels = rng.integers(0, 4, 200)

    from_logits = find_label_outliers(labels, logits=logits)
    from_probs = find_label_outliers(labels, softmax(logits, axis=1))

    assert_allclose(from_logits.scores, from_probs.scores, rtol=1e-9, atol=1e-9)
    assert_array_equal(from_logits.mask, from_probs.mask)
    assert_allclose(from_logits.threshold, from_probs.threshold, rtol=1e-9)


@pytest.mark.parametrize("shape", [(150,), (150, 1)])
def test_binary_logit_and_two_column_probs_give_the_same_result(rng, shape):
    logit = rng.normal(0.0, 3.0, 150)
    labels = (rng.uniform(size=150) < expit(logit)).astype(int)
    probs = np.column_stack([expit(-logit), expit(logit)])

    from_logit = find_label_outliers(labels, logits=logit.reshape(shape), sigma=1.5)
    from_probs = find_label_outliers(labels, probs, sigma=1.5)

    assert_allclose(from_logit.scores, from_probs.scores, rtol=1e-9, atol=1e-9)
    assert_array_equal(from_logit.mask, from_probs.mask)
    assert from_logit.mask.any()


def test_saturated_probabilities_still_flag_the_wrong_labels():
    # Probabilities rounded to exactly 0 and 1 (a forest's votes, a float32
    # softmax): more than half of each class ties, so the MAD is 0.
    labels = np.r_[np.zeros(40, int), np.ones(40, int)]
    p1 = np.r_[np.zeros(30), np.linspace(0.05, 0.3, 8), 1.0, 1.0]
    p1 = np.r_[p1, np.ones(30), np.linspace(0.7, 0.95, 8), 0.0, 0.0]

    for sigma in ["auto", 2.0]:
        result = find_label_outliers(labels, np.column_stack([1 - p1, p1]), sigma=sigma)
        assert_array_equal(np.flatnonzero(result.mask), [38, 39, 78, 79])


def test_labels_may_skip_a_class_and_be_floats_or_pandas(noisy_labels):
    labels, probs, wrong = noisy_labels
    four = np.column_stack([probs, np.zeros(len(labels))])

    as_float = find_label_outliers(pd.Series(labels.astype(float)), pd.DataFrame(four))
    reference = find_label_outliers(labels, probs)

    assert_array_equal(as_float.mask, reference.mask)
    assert_allclose(as_float.scores, reference.scores)


def test_find_label_outliers_does_not_modify_its_inputs(noisy_labels):
    labels, probs, _ = noisy_labels
    probs = probs.astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True)
    before = (labels.copy(), probs.copy())

    find_label_outliers(labels, probs)
    find_label_outliers(labels, logits=np.log(probs))

    assert_array_equal(labels, before[0])
    assert_array_equal(probs, before[1])


def test_auto_sigma_cuts_large_rival_cells_alone_and_pools_small_ones():
    # Class 0: 20 rows with rival 1, 10 with rival 2; 12.4 errors estimated
    # towards class 1 (a cell of its own) and 2.6 towards class 2 (pooled).
    labels = np.zeros(30, dtype=int)
    rival = np.r_[np.ones(20, int), np.full(10, 2)]
    z = np.r_[np.linspace(-5.0, 1.0, 20), np.linspace(-3.0, 2.0, 10)]
    counts = np.zeros((3, 3))
    counts[0] = [15.0, 12.4, 2.6]

    cells, sigma = _auto_sigma(z, labels, rival, counts)

    assert_array_equal(cells, np.r_[np.ones(20, int), np.zeros(10, int)])
    flagged = z < -sigma[cells]
    assert_array_equal(np.flatnonzero(flagged), np.r_[np.arange(12), 20, 21, 22])
    # Halfway between the 12th and 13th z-score of the cell, sign flipped.
    assert_allclose(sigma[1], -(z[11] + z[12]) / 2)
    assert np.isinf(sigma[3:]).all()


def test_auto_adapts_to_a_high_noise_rate_on_out_of_fold_probs(rng):
    X, y = make_classification(
        600,
        10,
        n_informative=6,
        n_classes=3,
        n_clusters_per_class=1,
        class_sep=3.0,
        random_state=0,
    )
    wrong = rng.choice(600, 180, replace=False)
    labels = y.copy()
    labels[wrong] = (y[wrong] + rng.integers(1, 3, 180)) % 3
    probs = cross_val_predict(
        LogisticRegression(),
        X,
        labels,
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        method="predict_proba",
    )

    def f1(mask):
        return 2 * mask[wrong].sum() / (mask.sum() + len(wrong))

    auto = f1(find_label_outliers(labels, probs).mask)
    assert auto > 0.9
    assert auto >= f1(find_label_outliers(labels, probs, sigma=2.0).mask)


@pytest.mark.parametrize(
    "labels, kwargs, match",
    [
        ([0, 1], {}, "exactly one of pred_probs and logits"),
        ([0, 1], {"pred_probs": [[0.5, 0.5]] * 2, "logits": [0, 0]}, "exactly one"),
        ([0, np.nan], {"pred_probs": [[0.5, 0.5]] * 2}, "labels contain NaN"),
        ([0, 0.5], {"pred_probs": [[0.5, 0.5]] * 2}, "non-integer"),
        (["a", "b"], {"pred_probs": [[0.5, 0.5]] * 2}, "LabelEncoder"),
        ([0, 2], {"pred_probs": [[0.5, 0.5]] * 2}, r"lie in \[0, 1\].*found \[2\]"),
        ([0, -1], {"logits": [0.3, 0.2]}, r"2 classes of logits; found \[-1\]"),
        ([0, 1, 1], {"pred_probs": [[0.5, 0.5]] * 2}, "inconsistent numbers"),
        ([0, 1], {"pred_probs": [[0.5, 0.6], [0.5, 0.5]]}, "sum to 1"),
        ([0, 1], {"pred_probs": [[1.5, -0.5], [0.5, 0.5]]}, r"lie in \[0, 1\]"),
        ([0, 1], {"pred_probs": [[1.0], [1.0]]}, "at least 2"),
        ([0, 1], {"logits": [np.inf, 0.0]}, "infinity"),
        ([0, 1], {"logits": [0.1, 0.0], "sigma": "fixed"}, 'sigma must be "auto"'),
        ([0, 1], {"logits": [0.1, 0.0], "sigma": 0.0}, "sigma must be > 0"),
        ([0, 1], {"logits": [0.1, 0.0], "sigma": [1.0] * 3}, "one value per group"),
        ([0, 1], {"logits": [0.1, 0.0], "scale": "iqr"}, "scale must be"),
    ],
)
def test_find_label_outliers_errors(labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        find_label_outliers(labels, **kwargs)
