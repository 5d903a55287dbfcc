"""Decision cutoffs where the two classes' inlier densities cross.

The technical note ("Infer the best cutoff threshold", code listing 4) fits one
distribution per class to the model outputs of that class's z-score inliers
and cuts where the two densities are equal, instead of at probability 0.5:
Gaussians on logits, or skew-normals on probabilities, which the sigmoid
skews ("Gaussian vs. Skew-Normal").
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import expit, logit
from scipy.stats import norm, skewnorm
from sklearn.utils.validation import check_consistent_length

from ._zscore import zscore_mask

__all__ = ["Cutoff", "gaussian_cutoff", "skewnorm_cutoff"]

# Sign changes of the log-density difference are looked for on this many
# points inside (0, 1): a spacing of 1/2048 separates any two crossings of
# skew-normals fitted to probabilities of a non-trivial spread.
GRID_SIZE = 2049


@dataclass(frozen=True)
class Cutoff:
    """A decision cutoff and the per-class fits it comes from.

    Unpacks as ``(threshold, probability)``, like the note's
    ``optimal_logit_cutoff_from_gaussians``.

    Attributes
    ----------
    threshold : float
        The cutoff on the score (logit) scale: scores at or above it are
        predicted positive.
    probability : float
        The same cutoff as a probability, ``expit(threshold)``.
    method : {"gaussian", "skewnorm"}
        The fitted family. Gaussians are fitted to the scores, skew-normals to
        the probabilities.
    distributions : dict
        The frozen :mod:`scipy.stats` distribution fitted to each class's
        inliers, keyed by class label, negative class first. A class whose
        inliers have no spread gets a degenerate one, of scale 0.
    n_inliers : dict
        The number of inliers each fit used, keyed by class label.
    crossed : bool
        False when the two densities do not cross, and ``threshold`` is the
        midpoint fallback instead.
    """

    threshold: float
    probability: float
    method: str
    distributions: dict[Any, Any]
    n_inliers: dict[Any, int]
    crossed: bool

    def __iter__(self) -> Iterator[float]:
        yield self.threshold
        yield self.probability


def _as_1d_float(values, name):
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {values.shape}.")
    return values


def _binary_labels(y, pos_label):
    """Group index (1 = positive) of each sample and the (negative, positive) labels."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}.")
    classes = np.unique(y)
    if classes.size != 2:
        raise ValueError(
            "The cutoff is binary: y must hold exactly two classes, "
            f"got {classes.size}: {classes[:5].tolist()}."
        )
    if pos_label is None:
        pos_label = classes[1]
    elif pos_label not in classes.tolist():
        raise ValueError(
            f"pos_label={pos_label!r} is not one of the classes "
            f"{classes.tolist()} in y."
        )
    positive = y == pos_label
    negative_label = classes[0] if classes[1] == pos_label else classes[1]
    labels = tuple(_plain(label) for label in (negative_label, pos_label))
    return positive.astype(np.int64), labels


def _plain(label):
    """A numpy scalar label as the Python scalar it holds."""
    return label.item() if isinstance(label, np.generic) else label


def _class_inliers(values, groups, labels, sigma, family):
    """Each class's inlier values, by the package's z-score rule."""
    mask = zscore_mask(
        torch.from_numpy(values), torch.from_numpy(groups), sigma=sigma, n_groups=2
    ).numpy()
    inliers = []
    for group, label in enumerate(labels):
        kept = values[mask & (groups == group)]
        if kept.size < 2:
            raise ValueError(
                f"Class {label!r} has {kept.size} inlier(s) at sigma={sigma}; "
                f"at least 2 are needed to fit a {family} to it."
            )
        inliers.append(kept)
    return inliers


def _quadratic_roots(a, b, c):
    """Real roots of ``a x**2 + b x + c``, without cancellation.

    ``c / q`` tends to ``-c / b`` as ``a`` tends to 0, so the equal-variance
    case, where the quadratic is a line, needs no branch of its own.
    """
    disc = b * b - 4.0 * a * c
    if not disc >= 0.0:
        return np.empty(0)
    q = -0.5 * (b + np.copysign(np.sqrt(disc), b))
    if q == 0.0:
        return np.empty(0)
    roots = [c / q] if a == 0.0 else [c / q, q / a]
    return np.array(roots)


def _nearest(roots, target):
    """The root nearest ``target``, or None."""
    roots = roots[np.isfinite(roots)]
    if not roots.size:
        return None
    # + 0.0 turns a root of -0.0 into 0.0.
    return float(roots[np.argmin(np.abs(roots - target))]) + 0.0


def gaussian_cutoff(
    scores,
    y,
    *,
    sigma: float | tuple[float, float] = 2.0,
    pos_label: Any = None,
) -> Cutoff:
    """Score cutoff where the Gaussians of the two classes' inliers cross.

    Each class's scores (logits) are z-scored against that class alone; a
    Gaussian is fitted to the inliers of each class, and the cutoff is the
    score where the two densities are equal (the note's "Infer the best
    cutoff threshold", code listing 4).

    Parameters
    ----------
    scores : array-like or Tensor of shape (n_samples,)
        Scores that increase with the positive class: logits, or any
        decision function (SVM margins work too, in their own space).
        Non-finite scores are outliers.
    y : array-like or Tensor of shape (n_samples,)
        Labels of two classes, of any type.
    sigma : float or (float, float), default=2.0
        Inlier threshold in standard deviations of the class's scores, or one
        per class (negative class first).
    pos_label : label, default=None
        The positive class. ``None`` takes the greater of the two labels
        (scikit-learn's ``classes_[1]``).

    Returns
    -------
    cutoff : Cutoff
        Unpacks as ``(threshold, probability)``: the score cutoff and
        ``expit(threshold)``. ``cutoff.distributions`` holds the two fitted
        :func:`scipy.stats.norm` in score space.

    Raises
    ------
    ValueError
        If ``y`` does not hold exactly two classes, or a class has fewer than
        2 inliers.

    See Also
    --------
    skewnorm_cutoff : The probability-space counterpart.
    ZThresholdCalibrator : Puts the cutoff on any binary classifier.

    Notes
    -----
    Each Gaussian is the maximum-likelihood fit to the class's inliers: their
    mean and their standard deviation with ``ddof=0``, as in the note's
    listing. The inliers are those of :func:`~sk_zerror.zscore_mask`, whose
    z-scores use the unbiased standard deviation, as the listing does.

    With :math:`N(\\mu_0, \\sigma_0^2)` for the negative class and
    :math:`N(\\mu_1, \\sigma_1^2)` for the positive one, the log-density ratio
    :math:`\\log f_1(x) - \\log f_0(x)` is zero where

    .. math::

        a x^2 + b x + c = 0, \\qquad
        a = \\frac{1}{2\\sigma_0^2} - \\frac{1}{2\\sigma_1^2}, \\quad
        b = \\frac{\\mu_1}{\\sigma_1^2} - \\frac{\\mu_0}{\\sigma_0^2}, \\quad
        c = \\frac{\\mu_0^2}{2\\sigma_0^2} - \\frac{\\mu_1^2}{2\\sigma_1^2}
            - \\log\\frac{\\sigma_1}{\\sigma_0}.

    The roots are computed as :math:`c/q` and :math:`q/a` with
    :math:`q = -(b + \\operatorname{sign}(b)\\sqrt{b^2 - 4ac})/2`, which loses
    no digits to cancellation. With equal variances :math:`a = 0`, the
    quadratic is a line and its one root, :math:`c/q = -c/b`, is the midpoint
    :math:`(\\mu_0 + \\mu_1)/2`.

    With unequal variances there are two roots, and the one kept is the
    nearest to the midpoint of the means (the listing's rule). At most one
    root lies between the means, and when one does it is the nearest to the
    midpoint, so this is the crossing that separates the classes; the other
    lies in a tail, where the wider Gaussian takes over again. When no root
    lies between the means (one class's density is the higher at both means,
    which needs very unequal spreads), the nearest root is still the one kept.

    Unequal variances always give real roots: the narrower density is the
    higher at its own mean and the lower far from it. Only identical fits (or
    a class whose inliers have no spread) leave no crossing; the cutoff is
    then the midpoint of the two means and ``cutoff.crossed`` is False.

    The note's listing computes in float32, as its tensors are; this computes
    in float64, so it agrees with the listing to about 1e-7, and with the
    listing run on float64 tensors to rounding.

    Examples
    --------
    >>> from sk_zerror import gaussian_cutoff
    >>> scores = [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0]
    >>> y = [0, 0, 0, 1, 1, 1]
    >>> threshold, probability = gaussian_cutoff(scores, y)
    >>> threshold, probability
    (0.0, 0.5)

    A wider positive class pushes the cutoff towards the negative class:

    >>> cutoff = gaussian_cutoff([-3.0, -2.0, -1.0, 0.0, 2.0, 4.0], y)
    >>> round(cutoff.threshold, 4), round(cutoff.probability, 4)
    (-0.4448, 0.3906)
    >>> {label: round(float(d.std()), 4) for label, d in cutoff.distributions.items()}
    {0: 0.8165, 1: 1.633}
    """
    scores = _as_1d_float(scores, "scores")
    groups, labels = _binary_labels(y, pos_label)
    check_consistent_length(scores, groups)
    inliers = _class_inliers(scores, groups, labels, sigma, "Gaussian")
    (mu0, mu1), (sd0, sd1) = (
        [x.mean() for x in inliers],
        [x.std() for x in inliers],
    )
    midpoint = (mu0 + mu1) / 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a = 1 / (2 * sd0**2) - 1 / (2 * sd1**2)
        b = mu1 / sd1**2 - mu0 / sd0**2
        c = mu0**2 / (2 * sd0**2) - mu1**2 / (2 * sd1**2) - np.log(sd1 / sd0)
        finite = np.isfinite([a, b, c]).all()
        root = _nearest(_quadratic_roots(a, b, c), midpoint) if finite else None
    threshold = float(midpoint) if root is None else root
    return Cutoff(
        threshold=threshold,
        probability=float(expit(threshold)),
        method="gaussian",
        distributions={
            label: norm(loc=mu, scale=sd)
            for label, mu, sd in zip(labels, (mu0, mu1), (sd0, sd1), strict=True)
        },
        n_inliers={label: x.size for label, x in zip(labels, inliers, strict=True)},
        crossed=root is not None,
    )


def _density_crossings(dist0, dist1):
    """Every point of (0, 1) where the two densities cross."""
    grid = np.linspace(0.0, 1.0, GRID_SIZE)[1:-1]

    def log_ratio(x):
        # Clipped so a density that underflows to 0 (log -inf) still gives
        # Brent's method finite values; the root is the same.
        return np.clip(dist1.logpdf(x) - dist0.logpdf(x), -1e3, 1e3)

    with np.errstate(invalid="ignore"):
        sign = np.sign(log_ratio(grid))
    # Equal densities (0) are no crossing unless the sign changes across them,
    # and where both densities underflow (NaN) there is no telling: both are
    # skipped, and Brent's method brackets each change between the rest.
    keep = np.abs(sign) == 1
    grid, sign = grid[keep], sign[keep]
    changes = np.flatnonzero(sign[:-1] != sign[1:])
    return np.array([brentq(log_ratio, grid[i], grid[i + 1]) for i in changes])


def skewnorm_cutoff(
    probabilities,
    y,
    *,
    sigma: float | tuple[float, float] = 2.0,
    pos_label: Any = None,
) -> Cutoff:
    """Probability cutoff where the skew-normals of the two classes cross.

    Each class's predicted probabilities are z-scored against that class
    alone; a skew-normal is fitted to the inliers of each class, and the
    cutoff is the probability inside (0, 1) where the two densities are equal
    (the note's "Gaussian vs. Skew-Normal" and code listing 4).

    Parameters
    ----------
    probabilities : array-like or Tensor of shape (n_samples,)
        Predicted probability of the positive class, in [0, 1]. Non-finite
        values are outliers.
    y : array-like or Tensor of shape (n_samples,)
        Labels of two classes, of any type.
    sigma : float or (float, float), default=2.0
        Inlier threshold in standard deviations of the class's probabilities,
        or one per class (negative class first).
    pos_label : label, default=None
        The positive class. ``None`` takes the greater of the two labels
        (scikit-learn's ``classes_[1]``).

    Returns
    -------
    cutoff : Cutoff
        Unpacks as ``(threshold, probability)``: the cutoff on the logit
        scale, ``logit(probability)``, and the probability cutoff itself.
        ``cutoff.distributions`` holds the two fitted
        :func:`scipy.stats.skewnorm` in probability space.

    Raises
    ------
    ValueError
        If ``y`` does not hold exactly two classes, a finite probability lies
        outside [0, 1], or a class has fewer than 2 inliers.

    See Also
    --------
    gaussian_cutoff : The logit-space counterpart, the note's preference.
    ZThresholdCalibrator : Puts the cutoff on any binary classifier.

    Notes
    -----
    The sigmoid compresses confident outputs towards 0 and 1, which skews
    each class's probabilities; a skew-normal
    (:func:`scipy.stats.skewnorm.fit`, maximum likelihood) follows them
    better than a Gaussian would. The inliers are z-scored on the
    probabilities, as in the listing.

    The crossings are the sign changes of the log-density ratio on a grid of
    2047 points inside (0, 1), each refined by Brent's method. As for
    :func:`gaussian_cutoff`, the crossing kept is the one nearest the
    midpoint of the two classes' inlier means, which is the crossing between
    the means whenever there is one.

    Fallback: when the densities do not cross inside (0, 1), or a class's
    inliers have no spread (no skew-normal fits them), the cutoff is the
    midpoint of the two classes' inlier mean probabilities, as in the
    listing, and ``cutoff.crossed`` is False. The listing looks for a single
    sign change between 0.001 and 0.999 and so also falls back when the
    densities cross twice there; this keeps the crossing between the means.

    Unlike the listing, which returns the probability alone, this returns a
    :class:`Cutoff`; its ``probability`` is the listing's value.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import expit
    >>> from sk_zerror import skewnorm_cutoff
    >>> rng = np.random.default_rng(0)
    >>> logits = np.concatenate([rng.normal(-2, 1, 500), rng.normal(2, 1, 500)])
    >>> y = np.repeat([0, 1], 500)
    >>> cutoff = skewnorm_cutoff(expit(logits), y)
    >>> bool(0.4 < cutoff.probability < 0.6), cutoff.crossed
    (True, True)
    >>> cutoff.distributions[1].mean()
    np.float64(0.8...)
    """
    probabilities = _as_1d_float(probabilities, "probabilities")
    finite = probabilities[np.isfinite(probabilities)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(
            "probabilities must lie in [0, 1], got values in "
            f"[{finite.min():.6g}, {finite.max():.6g}]."
        )
    groups, labels = _binary_labels(y, pos_label)
    check_consistent_length(probabilities, groups)
    inliers = _class_inliers(probabilities, groups, labels, sigma, "skew-normal")
    midpoint = (inliers[0].mean() + inliers[1].mean()) / 2
    # No skew-normal fits values without spread: a zero-scale one stands in.
    dists = [
        skewnorm(*skewnorm.fit(x)) if np.ptp(x) > 0 else skewnorm(0.0, x[0], 0.0)
        for x in inliers
    ]
    spread = all(np.ptp(x) > 0 for x in inliers)
    root = _nearest(_density_crossings(*dists), midpoint) if spread else None
    probability = float(midpoint) if root is None else root
    return Cutoff(
        threshold=float(logit(probability)),
        probability=probability,
        method="skewnorm",
        distributions=dict(zip(labels, dists, strict=True)),
        n_inliers={label: x.size for label, x in zip(labels, inliers, strict=True)},
        crossed=root is not None,
    )
