"""Figures of a fitted Z-Error estimator (needs matplotlib).

Each function takes a fitted estimator and an optional matplotlib ``Axes``
and returns the ``Axes`` it drew on.
"""

import numpy as np
from scipy.stats import norm
from sklearn.utils.validation import check_is_fitted

__all__ = ["plot_class_distributions", "plot_sigma_schedule", "plot_zscores"]


def _axes(ax):
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "sk_zerror.plotting needs matplotlib: pip install 'sk-zerror[cli]'."
        ) from exc
    return plt.figure().add_subplot()


def _final_step(estimator):
    """The estimator itself, or the last step of a Pipeline."""
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def plot_zscores(estimator, *, ax=None, bins=50):
    """Histogram of the training rows' z-scores with the ``sigma`` bands.

    Parameters
    ----------
    estimator : ZErrorRegressor, ZErrorClassifier or Pipeline ending in one
        Fitted estimator.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    bins : int, default=50
        Number of histogram bins.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sk_zerror import ZErrorRegressor
    >>> from sk_zerror.plotting import plot_zscores
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> reg = ZErrorRegressor(max_epochs=5, random_state=0).fit(X, X[:, 0])
    >>> plot_zscores(reg).get_xlabel()
    'z-score of the training rows'
    """
    est = _final_step(estimator)
    check_is_fitted(est, "outlier_scores_")
    ax = _axes(ax)
    scores = np.asarray(est.outlier_scores_, dtype=float).reshape(
        len(est.outlier_mask_), -1
    )
    finite = np.isfinite(scores)
    limit = np.max(np.abs(scores[finite])) if finite.any() else 1.0
    edges = np.linspace(-limit, limit, bins + 1)
    flagged = est.outlier_mask_
    ax.hist(
        scores[~flagged][np.isfinite(scores[~flagged])],
        bins=edges,
        color="tab:blue",
        alpha=0.7,
        label="inliers",
    )
    ax.hist(
        scores[flagged][np.isfinite(scores[flagged])],
        bins=edges,
        color="tab:red",
        alpha=0.7,
        label=f"flagged ({int(flagged.sum())})",
    )
    sigma = np.max(np.atleast_1d(est.sigma))
    for bound in _band(est.tail, sigma):
        ax.axvline(bound, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("z-score of the training rows")
    ax.set_ylabel("rows")
    ax.set_title(f"Z-scores with the sigma={sigma:g} band")
    ax.legend()
    return ax


def _band(tail, sigma):
    return {"both": (-sigma, sigma), "lower": (-sigma,), "upper": (sigma,)}[tail]


def plot_sigma_schedule(estimator, *, ax=None):
    """Sigma and the fraction of masked training samples, per epoch.

    Parameters
    ----------
    estimator : ZErrorRegressor, ZErrorClassifier or Pipeline ending in one
        Fitted estimator.
    ax : matplotlib Axes, default=None
        Where to draw sigma; the masked fraction goes on a twin axis.

    Returns
    -------
    ax : matplotlib Axes
        The axis holding sigma.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sk_zerror import ZErrorRegressor
    >>> from sk_zerror.plotting import plot_sigma_schedule
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> reg = ZErrorRegressor(max_epochs=5, random_state=0).fit(X, X[:, 0])
    >>> plot_sigma_schedule(reg).get_ylabel()
    'sigma'
    """
    est = _final_step(estimator)
    check_is_fitted(est, "net_")
    ax = _axes(ax)
    history = est.net_.history
    epochs = np.asarray(history[:, "epoch"])
    sigma = np.array(
        [np.max(np.atleast_1d(s)) for s in history[:, "sigma"]], dtype=float
    )
    shown = np.where(np.isfinite(sigma), sigma, np.nan)
    ax.plot(epochs, shown, color="tab:blue", label="sigma")
    ax.set_xlabel("epoch")
    ax.set_ylabel("sigma", color="tab:blue")
    twin = ax.twinx()
    masked = [row.get("masked_fraction", np.nan) for row in history]
    twin.plot(epochs, masked, color="tab:red", label="masked fraction")
    twin.set_ylabel("masked fraction", color="tab:red")
    ax.set_title("Annealing: sigma and masked fraction per epoch")
    return ax


def plot_class_distributions(estimator, X, y, *, ax=None, bins=40):
    """The two classes' score distributions, their Gaussians and the cutoff.

    Parameters
    ----------
    estimator : binary classifier with ``decision_function``
        Fitted ZErrorClassifier, ZThresholdCalibrator or Pipeline ending in
        one; its ``decision_threshold_`` (0 when absent) is drawn.
    X : array-like of shape (n_samples, n_features)
        Samples to score.
    y : array-like of shape (n_samples,)
        Their labels.
    ax : matplotlib Axes, default=None
        Where to draw.
    bins : int, default=40
        Number of histogram bins.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import make_classification
    >>> from sk_zerror import ZErrorClassifier
    >>> from sk_zerror.plotting import plot_class_distributions
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> clf = ZErrorClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> plot_class_distributions(clf, X, y).get_xlabel()
    'decision score (logit)'
    """
    est = _final_step(estimator)
    check_is_fitted(est)
    classes = est.classes_
    if len(classes) != 2:
        raise ValueError(
            f"plot_class_distributions is for binary classifiers; got {len(classes)} "
            "classes."
        )
    ax = _axes(ax)
    scores = np.asarray(estimator.decision_function(X), dtype=float)
    y = np.asarray(y)
    edges = np.histogram_bin_edges(scores[np.isfinite(scores)], bins=bins)
    grid = np.linspace(edges[0], edges[-1], 400)
    for label, color in zip(classes, ("tab:blue", "tab:orange"), strict=True):
        values = scores[(y == label) & np.isfinite(scores)]
        ax.hist(
            values,
            bins=edges,
            density=True,
            alpha=0.5,
            color=color,
            label=f"class {label}",
        )
        if len(values) > 1:
            ax.plot(grid, norm.pdf(grid, values.mean(), values.std()), color=color)
    threshold = getattr(est, "decision_threshold_", 0.0)
    threshold = 0.0 if threshold is None else float(np.ravel(threshold)[0])
    ax.axvline(
        threshold, color="black", linestyle="--", label=f"cutoff {threshold:.3g}"
    )
    ax.set_xlabel("decision score (logit)")
    ax.set_ylabel("density")
    ax.set_title("Class score distributions and the decision cutoff")
    ax.legend()
    return ax
