import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit, softmax
from scipy.stats import norm
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from sk_zerror import (
    LabelOutlierResult,
    OutlierResult,
    find_label_outliers,
    find_outliers,
)
from sk_zerror._outliers import _flag_counts

# 1 / Phi^{-1}(3/4), the MAD's consistency factor for normal data.
MAD_TO_STD = 1.482602218505602


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

    robust = find_outliers(y_true, y_pred, sigma=2.0)
    note = find_outliers(y_true, y_pred, sigma=2.0, center="mean", scale="std")

    assert_array_equal(np.flatnonzero(robust.mask), [20, 21])
    assert_array_equal(np.flatnonzero(note.mask), [20])


@pytest.mark.parametrize(
    "tail, expected", [("both", [0, 5]), ("upper", [5]), ("lower", [0])]
)
def test_find_outliers_tail(tail, expected):
    y_true = np.array([-50.0, 0.1, -0.2, 0.3, -0.1, 50.0, 0.0, 0.2])

    result = find_outliers(y_true, np.zeros(8), sigma=2.0, tail=tail)

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

    result = find_outliers(y_true, np.zeros(34), sigma=2.0)

    assert_array_equal(np.flatnonzero(result.mask), [33])


def test_find_outliers_accepts_pandas_and_lists_and_does_not_modify_input():
    y_true = pd.Series([1.0, 2.0, 1.5, 30.0, 1.2, 1.8])
    y_pred = np.array([1.4, 1.6, 1.5, 1.5, 1.4, 1.6])
    before = (y_true.copy(), y_pred.copy())

    result = find_outliers(y_true, list(y_pred), sigma=2.0)

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
        ([1.0, 2.0], [1.0, 2.0], {"sigma": "auto"}, ValueError, '"fdr" or a'),
        ([1.0, 2.0], [1.0, 2.0], {"sigma": None}, TypeError, "positive number"),
        ([1.0, 2.0], [1.0, 2.0], {"sigma": "fdr", "fdr": 0.0}, ValueError, "fdr must"),
        ([1.0, 2.0], [1.0, 2.0], {"sigma": "fdr", "fdr": 1.5}, ValueError, "fdr must"),
        ([1.0, 2.0], [1.0, 2.0], {"center": "mode"}, ValueError, "center must be"),
        ([1.0, 2.0], [1.0, 2.0], {"tail": "left"}, ValueError, "tail must be"),
    ],
)
def test_find_outliers_errors(y_true, y_pred, kwargs, error, match):
    with pytest.raises(error, match=match):
        find_outliers(y_true, y_pred, **kwargs)


def _benjamini_hochberg(p, q):
    """Reference step-up procedure: the rejected rows, by a plain loop."""
    order = np.argsort(p)
    m = len(p)
    k = 0
    for rank, i in enumerate(order, start=1):
        if p[i] <= rank * q / m:
            k = rank
    rejected = np.zeros(m, dtype=bool)
    rejected[order[:k]] = True
    return rejected


@pytest.mark.parametrize("tail", ["both", "lower", "upper"])
@pytest.mark.parametrize("fdr", [0.01, 0.05, 0.2])
def test_fdr_flags_what_benjamini_hochberg_rejects(rng, tail, fdr):
    y_true = rng.normal(0.0, 1.0, 400)
    y_true[:20] += rng.choice([-1.0, 1.0], 20) * rng.uniform(2.0, 6.0, 20)

    result = find_outliers(y_true, np.zeros(400), sigma="fdr", fdr=fdr, tail=tail)

    z = result.scores
    p = {"both": 2 * norm.sf(np.abs(z)), "lower": norm.cdf(z), "upper": norm.sf(z)}
    expected = _benjamini_hochberg(p[tail], fdr)
    assert expected.any()
    assert_array_equal(result.mask, expected)
    stat = {"both": np.abs(z), "lower": -z, "upper": z}[tail]
    assert_array_equal(result.mask, stat > result.threshold)
    assert np.unique(result.threshold).size == 1


def test_fdr_cut_is_deep_on_clean_normal_residuals_and_adapts_to_errors(rng):
    clean = rng.normal(0.0, 1.0, 2000)

    on_clean = find_outliers(clean, np.zeros(2000), sigma="fdr")
    noisy = clean.copy()
    noisy[:200] += 8.0
    on_noisy = find_outliers(noisy, np.zeros(2000), sigma="fdr")

    # Nothing rejected: the cut is the first BH level, 0.05 / 2000 two-sided.
    assert on_clean.mask.sum() <= 2
    assert on_clean.threshold[0] >= norm.isf(0.05 / 4000) - 1e-9
    assert on_noisy.mask[:200].mean() > 0.95
    assert on_noisy.mask[200:].mean() < 0.01
    # More discoveries lower the cut below the first level.
    assert on_noisy.threshold[0] < on_clean.threshold[0]


def test_fdr_is_the_default(rng):
    y_true = rng.normal(0.0, 1.0, 500)
    y_true[:10] += 9.0

    default = find_outliers(y_true, np.zeros(500))
    fdr = find_outliers(y_true, np.zeros(500), sigma="fdr", fdr=0.05)

    assert_array_equal(default.mask, fdr.mask)
    assert_allclose(default.threshold, fdr.threshold)
    assert default.mask[:10].all()
    # The discoveries lower the cut to the level k * 0.05 / 500 (two-sided)
    # of the k rows flagged: a few clean rows of 490 pass it.
    k = default.mask.sum()
    assert k <= 13
    assert_allclose(default.threshold, norm.isf(k * 0.05 / 1000), rtol=1e-6)


def test_fdr_cuts_each_output_column_on_its_own(rng):
    y_true = rng.normal(0.0, 1.0, (300, 2))
    y_true[:30, 1] += 10.0

    result = find_outliers(y_true, np.zeros((300, 2)), sigma="fdr")

    assert result.threshold.shape == (300, 2)
    assert result.threshold[0, 1] < result.threshold[0, 0]
    assert result.mask[:30, 1].all()
    assert_array_equal(result.mask, np.abs(result.scores) > result.threshold)


# -- find_label_outliers ------------------------------------------------------


def test_find_label_outliers_finds_injected_errors_exactly(noisy_labels):
    labels, probs, wrong = noisy_labels

    result = find_label_outliers(labels, probs)

    assert isinstance(result, LabelOutlierResult)
    assert_array_equal(np.flatnonzero(result.mask), wrong)
    assert result.mask.shape == result.scores.shape == result.likely_labels.shape
    assert result.mask.dtype == bool
    assert result.error_counts.shape == (3, 3)
    assert_allclose(np.diag(result.error_counts), 0.0)
    # The injected errors go to (c + 1) % 3 or (c + 2) % 3 of their true c.
    truth = np.arange(len(labels)) % 3
    assert_array_equal(result.likely_labels[wrong], truth[wrong])


def test_scores_compare_across_classes():
    # The case: a row whose given label has probability 0.0008 must
    # rank above one at 0.145, whatever the spread of each row's class.
    probs = np.array(
        [
            [0.0008, 0.9, 0.0992],
            [0.9, 0.05, 0.05],
            [0.85, 0.1, 0.05],
            [0.145, 0.005, 0.85],
            [0.01, 0.98, 0.01],
            [0.02, 0.97, 0.01],
            [0.03, 0.03, 0.94],
            [0.01, 0.01, 0.98],
        ]
    )
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])

    for score in ["margin", "self_confidence"]:
        scores = find_label_outliers(labels, probs, score=score).scores
        assert scores[0] > scores[3] > scores[[1, 2, 4, 5, 6, 7]].max()


def test_margin_and_self_confidence_scores_are_what_they_say():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    labels = np.array([0, 0, 1])

    margin = find_label_outliers(labels, probs, score="margin").scores
    confidence = find_label_outliers(labels, probs).scores

    assert_allclose(margin, np.log([0.2 / 0.7, 0.6 / 0.1, 0.3 / 0.5]), rtol=1e-12)
    assert_allclose(confidence, [0.3, 0.9, 0.5], rtol=1e-12)


def test_error_counts_and_mask_follow_the_class_pairs():
    # 300 rows per class of 3; 30 rows of class 0 labelled 1 (a pair with
    # its own cut), 3 of class 2 labelled 0 (pooled), and a model that
    # prefers the true class.
    truth = np.repeat([0, 1, 2], 300)
    labels = truth.copy()
    labels[:30] = 1
    labels[600:603] = 0
    wrong = np.r_[0:30, 600:603]
    rng = np.random.default_rng(1)
    top = rng.uniform(0.8, 0.95, 900)
    top[wrong] = 0.97
    probs = np.repeat(((1 - top) / 2)[:, None], 3, axis=1)
    probs[np.arange(900), truth] = top
    # The runner-up of the clean rows is the next class.
    probs[np.arange(900), (truth + 1) % 3] += 0.01
    probs[np.arange(900), (truth + 2) % 3] -= 0.01

    result = find_label_outliers(labels, probs)

    counts = result.error_counts.copy()
    assert_allclose(counts[1, 0], 30, rtol=0.1)
    # Only the rows of class 0 that reach a threshold are counted, then
    # scaled up to the class size: the 3 errors count for more.
    assert 3 <= counts[0, 2] <= 6
    counts[1, 0] = counts[0, 2] = 0.0
    assert_allclose(counts, 0.0)
    # The (1, 0) pair flags its own rounded count, all of them errors.
    own = (labels == 1) & (result.likely_labels == 0)
    assert result.mask[own].sum() == np.rint(result.error_counts[1, 0])
    assert set(wrong) <= set(np.flatnonzero(result.mask))
    assert_array_equal(result.likely_labels[wrong], truth[wrong])


def test_a_label_that_is_the_models_first_choice_is_never_flagged():
    # Class 1's rows all have p(1) = 0.6: the confident joint counts errors
    # among them (class 0's rows are surer), but the model prefers label 1.
    labels = np.r_[np.zeros(50, int), np.ones(50, int)]
    p1 = np.r_[np.full(50, 0.02), np.linspace(0.55, 0.65, 50)]
    probs = np.column_stack([1 - p1, p1])

    result = find_label_outliers(labels, probs)

    assert not result.mask.any()
    assert_array_equal(result.likely_labels, 1 - labels)


def test_probabilities_near_zero_keep_their_order():
    # Below any clipping level, a smaller probability still ranks higher.
    probs = np.array([[1e-9, 1 - 1e-9], [1e-12, 1 - 1e-12], [0.0, 1.0], [0.6, 0.4]])
    labels = np.zeros(4, int)

    for score in ["self_confidence", "margin"]:
        scores = find_label_outliers(labels, probs, score=score).scores
        assert scores[2] > scores[1] > scores[0] > scores[3]
        assert np.isfinite(scores).all()


def test_flag_counts_cuts_large_pairs_alone_and_pools_small_ones():
    # Pair (0, 1) has 12.4 estimated errors: its own cut of 12 rows. Pairs
    # (0, 2) and (1, 0), 2.6 and 1.2, pool their rows: 4 flagged among them.
    labels = np.r_[np.zeros(30, int), np.ones(10, int)]
    likely = np.r_[np.ones(20, int), np.full(10, 2), np.zeros(10, int)]
    scores = np.r_[np.linspace(5.0, -1.0, 20), np.linspace(3.0, -2.0, 10)]
    scores = np.r_[scores, np.linspace(2.9, 0.0, 10)]
    counts = np.zeros((3, 3))
    counts[0] = [0.0, 12.4, 2.6]
    counts[1, 0] = 1.2

    flagged = _flag_counts(scores, labels, likely, counts)

    assert_array_equal(np.flatnonzero(flagged[:20]), np.arange(12))
    # The pool's four highest: 3.0, 2.9, 2.44 (class 0) and 2.58 (class 1).
    assert_array_equal(np.flatnonzero(flagged[20:]), [0, 1, 10, 11])


def test_stratified_count_finds_errors_concentrated_on_ambiguous_rows():
    # Clean rows: half sure (0.98), half ambiguous (0.6); all 40 errors sit
    # among the ambiguous rows, where they are 20% of the rows.
    rng = np.random.default_rng(3)
    n = 400
    truth = rng.integers(0, 2, n)
    sure = np.arange(n) < n // 2
    top = np.where(sure, 0.98, rng.uniform(0.55, 0.65, n))
    labels = truth.copy()
    wrong = rng.choice(np.flatnonzero(~sure), 40, replace=False)
    labels[wrong] = 1 - truth[wrong]
    p0 = np.where(truth == 0, top, 1 - top)
    probs = np.column_stack([p0, 1 - p0])

    joint = find_label_outliers(labels, probs).error_counts.sum()
    stratified = find_label_outliers(labels, probs, count="stratified")

    assert joint < 30
    assert 32 <= stratified.error_counts.sum() <= 50
    assert stratified.mask[wrong].mean() > 0.8


def test_zscore_family_scores_are_minus_zscores_of_given_class_log_odds(
    noisy_labels,
):
    labels, probs, _ = noisy_labels

    result = find_label_outliers(
        labels, probs, score="zscore", center="mean", scale="std"
    )

    given = probs[np.arange(len(labels)), labels]
    log_odds = np.log(given / (1 - given))
    for c in range(3):
        rows = labels == c
        expected = (log_odds[rows] - log_odds[rows].mean()) / log_odds[rows].std(ddof=1)
        assert_allclose(result.scores[rows], -expected, rtol=1e-10)


def test_numeric_sigma_is_the_z_error_rule(noisy_labels):
    labels, probs, wrong = noisy_labels

    result = find_label_outliers(labels, probs, sigma=2.0)
    per_class = find_label_outliers(labels, probs, sigma=[2.0, np.inf, 2.0])
    z = -find_label_outliers(labels, probs, score="zscore").scores

    assert_array_equal(np.flatnonzero(result.mask), wrong)
    assert_array_equal(result.mask, z < -2.0)
    assert_array_equal(np.flatnonzero(per_class.mask), wrong[labels[wrong] != 1])


@pytest.mark.parametrize("sigma", ["auto", 1.0, 0.1])
def test_confident_correct_label_is_never_flagged(noisy_labels, sigma):
    labels, probs, _ = noisy_labels
    probs = probs.copy()
    probs[0] = [1 - 2e-9, 1e-9, 1e-9]
    labels = labels.copy()
    labels[0] = 0

    result = find_label_outliers(labels, probs, sigma=sigma)

    assert result.scores[0] < np.median(result.scores)
    assert not result.mask[0]


@pytest.mark.parametrize("score", ["margin", "self_confidence", "zscore"])
def test_pred_probs_and_softmax_logits_give_the_same_result(rng, score):
    logits = rng.normal(0.0, 2.0, (200, 4))
    labels = rng.integers(0, 4, 200)

    from_logits = find_label_outliers(labels, logits=logits, score=score)
    from_probs = find_label_outliers(labels, softmax(logits, axis=1), score=score)

    assert_allclose(from_logits.scores, from_probs.scores, rtol=1e-9, atol=1e-9)
    assert_array_equal(from_logits.mask, from_probs.mask)
    assert_allclose(from_logits.error_counts, from_probs.error_counts)
    assert from_probs.mask.any()


@pytest.mark.parametrize("shape", [(150,), (150, 1)])
def test_binary_logit_and_two_column_probs_give_the_same_result(rng, shape):
    logit = rng.normal(0.0, 3.0, 150)
    labels = (rng.uniform(size=150) < expit(logit)).astype(int)
    probs = np.column_stack([expit(-logit), expit(logit)])

    from_logit = find_label_outliers(labels, logits=logit.reshape(shape))
    from_probs = find_label_outliers(labels, probs)

    assert_allclose(from_logit.scores, from_probs.scores, rtol=1e-9, atol=1e-9)
    assert_array_equal(from_logit.mask, from_probs.mask)
    assert from_logit.mask.any()


def test_saturated_probabilities_still_flag_the_wrong_labels():
    # Probabilities rounded to exactly 0 and 1 (a forest's votes, a float32
    # softmax): more than half of each class ties, so the MAD is 0.
    labels = np.r_[np.zeros(40, int), np.ones(40, int)]
    p1 = np.r_[np.zeros(30), np.linspace(0.05, 0.3, 8), 1.0, 1.0]
    p1 = np.r_[p1, np.ones(30), np.linspace(0.7, 0.95, 8), 0.0, 0.0]

    probs = np.column_stack([1 - p1, p1])

    fixed = find_label_outliers(labels, probs, sigma=2.0)
    auto = find_label_outliers(labels, probs)

    assert_array_equal(np.flatnonzero(fixed.mask), [38, 39, 78, 79])
    assert_array_equal(np.sort(np.argsort(-auto.scores)[:4]), [38, 39, 78, 79])
    # 2.42 errors estimated in each class, pooled: 5 to flag, but the fifth
    # row's label is the model's first choice (p = 0.7).
    assert_allclose(auto.error_counts.sum(), 2 * 2 * 40 / 33, rtol=1e-12)
    assert_array_equal(np.flatnonzero(auto.mask), [38, 39, 78, 79])


def test_labels_may_skip_a_class_and_be_floats_or_pandas(noisy_labels):
    labels, probs, _ = noisy_labels
    four = np.column_stack([probs, np.zeros(len(labels))])

    as_float = find_label_outliers(pd.Series(labels.astype(float)), pd.DataFrame(four))
    reference = find_label_outliers(labels, probs)

    assert_array_equal(as_float.mask, reference.mask)
    assert_allclose(as_float.scores, reference.scores)
    assert_allclose(as_float.error_counts[:3, :3], reference.error_counts)
    assert_allclose(as_float.error_counts[3], 0.0)


def test_any_label_values_with_classes(noisy_labels):
    labels, probs, _ = noisy_labels
    names = np.array(["cat", "dog", "emu"])

    named = find_label_outliers(names[labels], probs, classes=names)
    reference = find_label_outliers(labels, probs)

    assert_array_equal(named.mask, reference.mask)
    assert_array_equal(named.likely_labels, names[reference.likely_labels])
    # classes in any order: columns follow classes, not sorted order.
    shuffled = find_label_outliers(
        names[labels], probs[:, [2, 0, 1]], classes=names[[2, 0, 1]]
    )
    assert_array_equal(shuffled.mask, reference.mask)
    assert_allclose(shuffled.scores, reference.scores)


def test_find_label_outliers_does_not_modify_its_inputs(noisy_labels):
    labels, probs, _ = noisy_labels
    probs = probs.astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True)
    before = (labels.copy(), probs.copy())

    find_label_outliers(labels, probs)
    find_label_outliers(labels, logits=np.log(probs), score="zscore", sigma=2.0)

    assert_array_equal(labels, before[0])
    assert_array_equal(probs, before[1])


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

    result = find_label_outliers(labels, probs)
    assert f1(result.mask) > 0.9
    assert 0.8 * 180 <= result.error_counts.sum() <= 1.25 * 180
    assert f1(result.mask) >= f1(find_label_outliers(labels, probs, sigma=2.0).mask)


@pytest.mark.parametrize(
    "labels, kwargs, error, match",
    [
        ([0, 1], {}, ValueError, "exactly one of pred_probs and logits"),
        (
            [0, 1],
            {"pred_probs": [[0.5, 0.5]] * 2, "logits": [0, 0]},
            ValueError,
            "exactly one",
        ),
        (
            [0, np.nan],
            {"pred_probs": [[0.5, 0.5]] * 2},
            ValueError,
            "labels contain NaN",
        ),
        ([0, 0.5], {"pred_probs": [[0.5, 0.5]] * 2}, ValueError, "non-integer"),
        (["a", "b"], {"pred_probs": [[0.5, 0.5]] * 2}, ValueError, "without classes"),
        (
            ["a", "c"],
            {"pred_probs": [[0.5, 0.5]] * 2, "classes": ["a", "b"]},
            ValueError,
            r"labels \['c'\] are not in classes",
        ),
        (
            ["a", "b"],
            {"pred_probs": [[0.5, 0.5]] * 2, "classes": ["a", "b", "c"]},
            ValueError,
            "classes has 3 values for the 2 columns",
        ),
        (
            ["a", "b"],
            {"pred_probs": [[0.5, 0.5]] * 2, "classes": ["a", "a"]},
            ValueError,
            "must not repeat",
        ),
        (
            [0, 2],
            {"pred_probs": [[0.5, 0.5]] * 2},
            ValueError,
            r"lie in \[0, 1\].*found \[2\]",
        ),
        (
            [0, -1],
            {"logits": [0.3, 0.2]},
            ValueError,
            r"classes of logits; found \[-1\]",
        ),
        (
            [0, 1, 1],
            {"pred_probs": [[0.5, 0.5]] * 2},
            ValueError,
            "inconsistent numbers",
        ),
        ([0, 1], {"pred_probs": [[0.5, 0.6], [0.5, 0.5]]}, ValueError, "sum to 1"),
        ([0, 1], {"pred_probs": [[1.5, -0.5], [0.5, 0.5]]}, ValueError, r"in \[0, 1\]"),
        ([0, 1], {"pred_probs": [[1.0], [1.0]]}, ValueError, "at least 2"),
        ([0, 1], {"pred_probs": [0.5, 0.5]}, ValueError, r"shape \(n_samples, n_"),
        ([0, 1], {"pred_probs": [[np.nan, 1.0], [0.5, 0.5]]}, ValueError, "NaN"),
        ([0, 1], {"logits": [np.inf, 0.0]}, ValueError, "infinity"),
        ([0, 1], {"logits": [np.nan, 0.0]}, ValueError, "NaN"),
        ([[0, 1]], {"logits": [0.1, 0.0]}, ValueError, "1d array"),
        ([0, 1], {"logits": [0.1, 0.0], "sigma": "fixed"}, ValueError, '"auto" or a'),
        ([0, 1], {"logits": [0.1, 0.0], "sigma": 0.0}, ValueError, "sigma must be > 0"),
        (
            [0, 1],
            {"logits": [0.1, 0.0], "sigma": [1.0] * 3},
            ValueError,
            "one value per group",
        ),
        ([0, 1], {"logits": [0.1, 0.0], "scale": "iqr"}, ValueError, "scale must be"),
        ([0, 1], {"logits": [0.1, 0.0], "score": "loss"}, ValueError, "score must be"),
        ([0, 1], {"logits": [0.1, 0.0], "count": "cj"}, ValueError, "count must be"),
        ([0, 1], {"logits": [0.1, 0.0], "sigma": None}, TypeError, "positive number"),
    ],
)
def test_find_label_outliers_errors(labels, kwargs, error, match):
    with pytest.raises(error, match=match):
        find_label_outliers(labels, **kwargs)
