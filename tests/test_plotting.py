import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sk_zerror import ZErrorClassifier, ZErrorRegressor  # noqa: E402
from sk_zerror.plotting import (  # noqa: E402
    plot_class_distributions,
    plot_sigma_schedule,
    plot_zscores,
)


@pytest.fixture(scope="module")
def regressor():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = X[:, 0] + 0.1 * rng.normal(size=200)
    y[:5] += 10
    return ZErrorRegressor(max_epochs=20, random_state=0).fit(X, y)


def test_plot_zscores_splits_flagged_rows(regressor):
    ax = plot_zscores(regressor)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["inliers", f"flagged ({regressor.outlier_mask_.sum()})"]
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [-2.0, 2.0]


def test_plot_sigma_schedule_draws_the_history(regressor):
    ax = plot_sigma_schedule(regressor)
    sigma = ax.get_lines()[0].get_ydata()
    assert sigma[0] == 10.0 and sigma[-1] == 2.0 and len(sigma) == 20


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
