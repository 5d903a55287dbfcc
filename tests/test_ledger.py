import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from sk_zerror import ZErrorClassifier, ZErrorMSELoss, find_label_outliers
from sk_zerror._ledger import (
    LedgerSummary,
    label_outliers,
    run_probabilities,
    zscore_outliers,
)
from sk_zerror._network import ROW


def ledger_data():
    X = np.zeros((8, 2), dtype=np.float32)
    y = np.zeros((8, 1), dtype=np.float32)
    y[7] = 50.0
    y[:7, 0] = np.arange(7) * 0.1
    return {"X": X, ROW: np.arange(8)}, y


def test_the_ledger_counts_each_training_batch_and_resets_on_fit(make_net):
    net = make_net(max_epochs=3)
    X, y = ledger_data()
    net.fit(X, y)
    ledger = dict(net.callbacks_)["ledger"]
    assert ledger.seen_.tolist() == [3.0] * 8
    assert ledger.masked_.tolist() == [0.0] * 7 + [3.0]
    assert_allclose(net.history[:, "masked_fraction"], [1 / 8] * 3)
    # partial_fit goes on counting; fit starts a new training run from zero.
    net.partial_fit(X, y)
    assert ledger.seen_.tolist() == [6.0] * 8
    net.fit(X, y)
    assert ledger.seen_.tolist() == [3.0] * 8
    assert ledger.masked_.tolist() == [0.0] * 7 + [3.0]


def doubled(outputs):
    return torch.cat([outputs, 2 * outputs], dim=1)


def test_the_ledger_sums_each_rows_training_predictions(make_net):
    # At lr 0 every training batch predicts the initial bias for every row.
    net = make_net(max_epochs=3, predictions=doubled, lr=0.0)
    X, y = ledger_data()
    net.fit(X, y)
    ledger = dict(net.callbacks_)["ledger"]
    bias = net.module_.bias.item()
    assert ledger.prediction_sum_.dtype == torch.float64
    assert_allclose(ledger.prediction_sum_.numpy(), [[3 * bias, 6 * bias]] * 8)
    # Without ``predictions`` no sum is kept.
    plain = make_net(max_epochs=1)
    plain.fit(X, y)
    assert dict(plain.callbacks_)["ledger"].prediction_sum_ is None


def test_summary_is_the_counts_as_arrays(make_net):
    net = make_net(max_epochs=2, predictions=doubled, lr=0.0)
    X, y = ledger_data()
    net.fit(X, y)
    summary = dict(net.callbacks_)["ledger"].summary()
    assert_array_equal(summary.seen, [2.0] * 8)
    assert_array_equal(summary.frequency, [0.0] * 7 + [1.0])
    bias = net.module_.bias.item()
    assert_allclose(summary.mean(summary.prediction_sum), [[bias, 2 * bias]] * 8)
    assert summary.score_sum.shape == (8, 1)


def test_summary_frequency_and_mean_leave_unseen_rows_nan():
    summary = LedgerSummary(
        seen=np.array([2.0, 0.0, 4.0]),
        masked=np.array([1.0, 0.0, 0.0]),
        score_sum=np.array([[3.0], [0.0], [-8.0]]),
        prediction_sum=None,
    )
    assert_array_equal(summary.trained, [True, False, True])
    assert_allclose(summary.frequency, [0.5, np.nan, 0.0])
    assert_allclose(summary.mean(summary.score_sum), [[1.5], [np.nan], [-2.0]])


def test_zscore_outliers_training_rule_uses_mean_batch_scores():
    # Whole-set scores say row 0 is an outlier; the training record (mean
    # z-score 0.5 over its batches) says it is not, and row 2 (mean -6) is.
    loss = ZErrorMSELoss(sigma=3.0, center="median", scale="mad")
    outputs = torch.zeros(6, 1, dtype=torch.float64)
    target = torch.tensor([[40.0], [0.1], [-0.2], [0.3], [-0.1], [0.0]]).double()
    whole_set = loss.evaluate(outputs, target)
    assert not whole_set.mask[0, 0] and whole_set.mask[2, 0]
    ledger = LedgerSummary(
        seen=np.array([2.0, 2.0, 2.0, 2.0, 2.0, 0.0]),
        masked=np.array([0.0, 0.0, 2.0, 0.0, 0.0, 0.0]),
        score_sum=np.array([[1.0], [0.0], [-12.0], [2.0], [-2.0], [0.0]]),
        prediction_sum=None,
    )
    final = zscore_outliers(ledger, whole_set, rule="final", sigma=3.0, tail="both")
    assert_array_equal(final.mask, ~whole_set.mask[:, 0].numpy())
    assert_allclose(final.scores, whole_set.scores[:, 0].numpy())
    training = zscore_outliers(
        ledger, whole_set, rule="training", sigma=3.0, tail="both"
    )
    assert_array_equal(training.mask, [False, False, True, False, False, False])
    # The row held out (never seen) keeps its whole-set score.
    expected = [0.5, 0.0, -6.0, 1.0, -1.0, whole_set.scores[5, 0].item()]
    assert_allclose(training.scores, expected)
    assert_allclose(training.frequency, [0, 0, 1, 0, 0, np.nan])
    lower = zscore_outliers(ledger, whole_set, rule="training", sigma=3.0, tail="upper")
    assert not lower.mask.any()


def test_run_probabilities_mean_where_trained_else_the_network():
    ledger = LedgerSummary(
        seen=np.array([2.0, 0.0]),
        masked=np.zeros(2),
        score_sum=None,
        prediction_sum=np.array([[1.6, 0.4], [0.0, 0.0]]),
    )
    network = np.array([[0.1, 0.9], [0.3, 0.7], [0.5, 0.5]])
    # The run trained on rows 2 and 0 of the three (in that order).
    proba = run_probabilities(ledger, network, np.array([2, 0]))
    assert_allclose(proba, [[0.1, 0.9], [0.3, 0.7], [0.8, 0.2]])
    assert_allclose(network[2], [0.5, 0.5])  # the input is not written to


def test_label_outliers_is_find_label_outliers_on_the_runs_mean():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    runs = [rng.dirichlet(np.ones(3), size=120) for _ in range(2)]
    frequency = rng.random(120)
    outliers = label_outliers(y, runs, frequency, center="median", scale="mad")
    mean = (runs[0] + runs[1]) / 2
    expected = find_label_outliers(y, mean, count="stratified")
    assert_array_equal(outliers.mask, expected.mask)
    scored = find_label_outliers(y, mean, score="zscore")
    assert_allclose(outliers.scores, -scored.scores)
    assert outliers.frequency is frequency


@pytest.mark.parametrize("ledger", ["training", "final"])
def test_classifier_outliers_are_the_ledgers_rule(ledger):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] > 0).astype(int)
    y[:15] = 1 - y[:15]
    clf = ZErrorClassifier(
        sigma=2.0,
        max_epochs=8,
        ledger=ledger,
        retrain_without_outliers=False,
        random_state=0,
    ).fit(X, y)
    frequency = clf.outlier_frequency_
    assert frequency.shape == (200,) and np.isnan(frequency).sum() == 20
    if ledger == "final":
        # The Z-Error rule on the whole set: beyond sigma on the lower tail.
        assert_array_equal(clf.outlier_mask_, clf.outlier_scores_ < -2.0)
    else:
        assert clf.outlier_mask_[:15].mean() > clf.outlier_mask_[15:].mean()
