import numpy as np
import pytest
from numpy.testing import assert_allclose

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sk_zerror import ZErrorClassifier, ZErrorRegressor  # noqa: E402
from sk_zerror.plotting import (  # noqa: E402
    plot_class_distributions,
    plot_label_confusion,
    plot_sigma_schedule,
    plot_zscores,
)


@pytest.fixture(scope="module")
def regressor():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = X[:, 0] + 0.1 * rng.normal(size=200)
    y[:5] += 10
    return ZErrorRegressor(
        max_epochs=20,
        sigma=2.0,
        sigma_start=10.0,
        center="mean",
        scale="std",
        random_state=0,
    ).fit(X, y)


def test_plot_zscores_splits_flagged_rows(regressor):
    ax = plot_zscores(regressor)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["inliers", f"flagged ({regressor.outlier_mask_.sum()})"]
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [-2.0, 2.0]


def test_plot_sigma_schedule_draws_the_history(regressor):
    ax = plot_sigma_schedule(regressor)
    sigma = ax.get_lines()[0].get_ydata()
    # The first, masked run (half of max_epochs), not the unmasked retrain.
    first, retrain = regressor.run_histories_
    assert_allclose(sigma, first[:, "sigma"])
    assert sigma[0] == 10.0 and len(sigma) == 10
    assert set(retrain[:, "sigma"]) == {np.inf}


def test_plot_class_distributions_with_a_pipeline():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(int)
    pipe = make_pipeline(
        StandardScaler(), ZErrorClassifier(max_epochs=10, threshold=0.5, random_state=0)
    ).fit(X, y)
    ax = plot_class_distributions(pipe, X, y)
    assert ax.get_lines()[-1].get_xdata()[0] == 0.5
    assert "cutoff 0.5" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_xlabel() == "decision score (logit)"


def test_plot_class_distributions_refuses_multiclass():
    X = np.random.default_rng(0).normal(size=(60, 2))
    clf = ZErrorClassifier(max_epochs=2).fit(X, np.arange(60) % 3)
    with pytest.raises(ValueError, match="binary classifiers; got 3 classes"):
        plot_class_distributions(clf, X, np.arange(60) % 3)


def test_plot_zscores_shows_bulk_and_tail_on_a_symlog_axis():
    from sk_zerror import find_outliers

    rng = np.random.default_rng(1)
    y = rng.normal(size=500)
    y[:3] = [80.0, -120.0, 150.0]  # decimal slips far out in the tail
    result = find_outliers(y, np.zeros(500), sigma="fdr")
    ax = plot_zscores(result)
    assert ax.get_xscale() == "symlog" and ax.get_yscale() == "log"
    # The three far rows are in bars of their own, each of height 1.
    flagged_bars = [p for p in ax.containers[1] if p.get_height() > 0]
    assert sum(p.get_height() for p in flagged_bars) == result.mask.sum()
    far = [p for p in flagged_bars if abs(p.get_x()) > 50]
    assert [p.get_height() for p in far] == [1, 1, 1]
    # The bulk is spread over many bins, not squeezed into one.
    assert sum(p.get_height() > 0 for p in ax.containers[0]) >= 10
    cut = result.threshold[0]
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [-cut, cut]


def test_plot_zscores_keeps_a_linear_axis_without_heavy_tails():
    from sk_zerror import find_outliers

    y = np.random.default_rng(2).normal(size=500)
    ax = plot_zscores(find_outliers(y, np.zeros(500), sigma=2.0))
    assert ax.get_xscale() == "linear" and ax.get_yscale() == "linear"


def test_plot_label_confusion_counts_given_against_likely():
    given = ["sun", "sun", "rain", "fog", "sun"]
    likely = ["fog", "fog", "sun", "sun", "rain"]
    ax = plot_label_confusion(given, likely, labels=["fog", "rain", "sun"])
    counts = np.array(ax.images[0].get_array())
    assert counts.tolist() == [[0, 0, 1], [0, 0, 1], [2, 1, 0]]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["fog", "rain", "sun"]
    with pytest.raises(ValueError, match=r"labels not among the classes: \['sun'\]"):
        plot_label_confusion(given, likely, labels=["fog", "rain"])
    with pytest.raises(ValueError, match="same shape"):
        plot_label_confusion(given, likely[:2])


def test_plot_zscores_of_label_scores_spans_the_data():
    from sk_zerror import find_label_outliers

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 300)
    probs = rng.dirichlet(np.ones(3), 300)
    result = find_label_outliers(labels, probs)
    ax = plot_zscores(result)
    low, high = ax.containers[0][0].get_x(), ax.containers[0][-1].get_x()
    assert low == pytest.approx(result.scores.min())
    assert high + ax.containers[0][-1].get_width() == pytest.approx(result.scores.max())
    assert ax.get_lines() == [] and ax.get_xscale() == "linear"
    assert ax.get_xlabel() == "label score (higher: likelier wrong)"
