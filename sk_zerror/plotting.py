"""Figures of a fitted Z-Error estimator (needs matplotlib).

Each function takes a fitted estimator and an optional matplotlib ``Axes``
and returns the ``Axes`` it drew on.
"""

import numpy as np
from scipy.stats import norm
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "plot_class_distributions",
    "plot_label_confusion",
    "plot_sigma_schedule",
    "plot_zscores",
]

# Tails beyond this many times the band switch plot_zscores to a symlog axis.
HEAVY_TAIL = 5.0


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


def _scores_mask_bands(source, tail):
    """Scores, flags and the band edges of an estimator or an OutlierResult."""
    if hasattr(source, "scores") and hasattr(source, "mask"):
        scores = np.asarray(source.scores, dtype=float).reshape(len(source.mask), -1)
        mask = np.asarray(source.mask, dtype=bool).reshape(len(scores), -1).any(axis=1)
        if not hasattr(source, "threshold"):
            # find_label_outliers: one score per row, higher is more suspicious.
            return (
                scores,
                mask,
                None,
                tail or "upper",
                "label score (higher: likelier wrong)",
            )
        limits = np.unique(np.asarray(source.threshold, dtype=float))
        limits = limits[np.isfinite(limits)]
        # One band only when every row was tested against the same sigma.
        sigma = limits[0] if len(limits) == 1 else None
        return scores, mask, sigma, tail or "both", "z-score"
    est = _final_step(source)
    check_is_fitted(est, "outlier_scores_")
    mask = np.asarray(est.outlier_mask_, dtype=bool)
    scores = np.asarray(est.outlier_scores_, dtype=float).reshape(len(mask), -1)
    sigma = float(np.max(np.atleast_1d(est.sigma)))
    return scores, mask, sigma, tail or est.tail, "z-score of the training rows"


def _bins(ax, scores, bins, linthresh):
    """Bin edges, on a symmetric-log axis when the tails reach far.

    With heavy tails (a decimal slip lies at 50 to 150 sigma) a linear axis
    squeezes the inliers into one bar; the symmetric-log axis is linear within
    ``linthresh`` and logarithmic beyond, and the counts go on a log axis so a
    single far row stays visible.
    """
    finite = scores[np.isfinite(scores)]
    low = float(finite.min()) if finite.size else -1.0
    high = float(finite.max()) if finite.size else 1.0
    if linthresh is None:  # no band (label scores): the data's own range
        return np.linspace(low, max(high, low + 1e-9), bins + 1)
    low, high = min(low, -linthresh), max(high, linthresh)
    if max(-low, high) <= HEAVY_TAIL * linthresh:
        return np.linspace(low, high, bins + 1)
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("symlog", linthresh=linthresh)
    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(NullFormatter())
    transform = ax.xaxis.get_transform()
    ends = transform.transform(np.array([low, high]))
    edges = transform.inverted().transform(np.linspace(ends[0], ends[1], bins + 1))
    edges[0], edges[-1] = low, high
    return edges


def _band(tail, sigma):
    return {"both": (-sigma, sigma), "lower": (-sigma,), "upper": (sigma,)}[tail]


def plot_zscores(estimator, *, ax=None, bins=50, tail=None):
    """Histogram of the z-scores with the ``sigma`` bands, flagged rows in red.

    With heavy tails (any score beyond 5 times the band) the x-axis is
    symmetric-logarithmic (linear within the band, logarithmic beyond) and the
    counts logarithmic, so both the bulk of the rows and single far outliers
    show.

    Parameters
    ----------
    estimator : ZErrorRegressor, ZErrorClassifier, Pipeline ending in one, or \
OutlierResult
        Fitted estimator (its training rows' ``outlier_scores_`` and
        ``outlier_mask_``), or the result of :func:`~sk_zerror.find_outliers`
        or :func:`~sk_zerror.find_label_outliers`.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    bins : int, default=50
        Number of histogram bins.
    tail : {"both", "lower", "upper"}, default=None
        Side(s) of the band to draw: the estimator's ``tail``, or ``"both"``
        for an OutlierResult. No band is drawn when the rows were tested
        against different thresholds.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sk_zerror import ZErrorRegressor, find_outliers
    >>> from sk_zerror.plotting import plot_zscores
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> reg = ZErrorRegressor(max_epochs=5, random_state=0).fit(X, X[:, 0])
    >>> plot_zscores(reg).get_xlabel()
    'z-score of the training rows'
    >>> y = np.random.default_rng(1).normal(size=200)
    >>> y[:3] = 100.0  # far outliers: a symmetric-log axis
    >>> plot_zscores(find_outliers(y, np.zeros(200), sigma=2.0)).get_xscale()
    'symlog'
    """
    scores, flagged, sigma, tail, xlabel = _scores_mask_bands(estimator, tail)
    ax = _axes(ax)
    edges = _bins(ax, scores, bins, sigma)
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
    if sigma is not None:
        for bound in _band(tail, sigma):
            ax.axvline(bound, color="black", linestyle="--", linewidth=1)
        ax.set_title(f"Z-scores with the sigma={sigma:.3g} band")
    else:
        ax.set_title("Scores of the rows, flagged in red")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    ax.legend()
    return ax


def plot_sigma_schedule(estimator, *, ax=None):
    """Sigma and the fraction of masked training samples, per epoch.

    Drawn for the first training run (``run_histories_[0]``), the one over
    every row that masked the outliers and counted ``outlier_frequency_``.

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
    # The masked run over every row; a retrain after it may mask nothing.
    history = est.run_histories_[0]
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


def plot_label_confusion(given, likely, *, labels=None, ax=None):
    """Given against likely class of the flagged rows: where the labels went.

    Each cell counts the flagged rows labelled with the row's class whose
    likely class (for the audit, the most probable class other than the given
    one) is the column's: a dense off-diagonal cell is a pair of
    classes that are confused in the data (class-dependent label noise).

    Parameters
    ----------
    given : array-like of shape (n_flagged,)
        The given labels of the flagged rows.
    likely : array-like of shape (n_flagged,)
        The model's most probable class of each of them.
    labels : array-like, default=None
        The classes, in the order of the rows and columns; by default the
        sorted union of ``given`` and ``likely``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sk_zerror.plotting import plot_label_confusion
    >>> ax = plot_label_confusion(["cat", "cat", "dog"], ["dog", "dog", "cat"])
    >>> [t.get_text() for t in ax.texts]
    ['0', '2', '1', '0']
    """
    given, likely = np.asarray(given), np.asarray(likely)
    if given.shape != likely.shape:
        raise ValueError(
            f"given and likely must have the same shape, got {given.shape} and "
            f"{likely.shape}."
        )
    labels = np.union1d(given, likely) if labels is None else np.asarray(labels)
    index = {label: i for i, label in enumerate(labels.tolist())}
    unknown = sorted(
        {str(v) for v in [*given.tolist(), *likely.tolist()]} - {str(v) for v in index}
    )
    if unknown:
        raise ValueError(f"labels not among the classes: {unknown[:5]}.")
    counts = np.zeros((len(labels), len(labels)), dtype=int)
    np.add.at(
        counts,
        ([index[v] for v in given.tolist()], [index[v] for v in likely.tolist()]),
        1,
    )
    ax = _axes(ax)
    ax.imshow(counts, cmap="Reds", vmin=0, vmax=max(int(counts.max()), 1))
    for (i, j), count in np.ndenumerate(counts):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            color="white" if count > counts.max() / 2 else "black",
        )
    names = [str(label) for label in labels]
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("likely class (the most probable other than the given)")
    ax.set_ylabel("given label")
    ax.set_title(f"Flagged rows: given against likely class ({int(counts.sum())})")
    return ax
