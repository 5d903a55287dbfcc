"""Post-hoc outlier search in the outputs of any model: residuals and labels.

:func:`find_outliers` z-scores each residual with the masking core
(:func:`~sk_zerror.zscore_mask`), the regression rule of the Z-Error losses
with the polarity of a data audit: ``mask`` is True for the rows to review.
:func:`find_label_outliers` ranks rows by how unlikely the model finds their
given label and flags the estimated number of label errors.
"""

from collections.abc import Sequence
from numbers import Real
from typing import Literal, NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.special import log_expit, log_softmax
from scipy.stats import norm
from sklearn.utils import check_array, check_consistent_length, column_or_1d

from ._zscore import CENTERS, SCALES, zscore_mask

__all__ = [
    "LabelOutlierResult",
    "OutlierResult",
    "find_label_outliers",
    "find_outliers",
]

# The given-class probability is clipped to [EPS, 1 - EPS] before its
# log-odds are z-scored (score="zscore", numeric sigma), so that z-scores stay
# finite; the other scores use the probabilities as given.
EPS = 1e-6
# Tolerance on the row sums of pred_probs (float32 softmax outputs included).
SUM_ATOL = 1e-3
LABEL_SCORES = ("self_confidence", "margin", "zscore")
# A (given, likely) class pair gets its own cut from this many estimated
# errors on; fewer are too noisy an estimate (about 30% relative error at 10),
# and such pairs share one pooled cut.
MIN_CELL_ERRORS = 10


class OutlierResult(NamedTuple):
    """What :func:`find_outliers` returns.

    Attributes
    ----------
    mask : ndarray of bool
        True for the flagged rows (outliers): the opposite polarity of
        :func:`~sk_zerror.zscore_mask`, whose True marks inliers.
    scores : ndarray of float
        Signed robust z-score of each residual.
    threshold : ndarray of float
        The cut on the absolute z-score each value was tested against, so
        that ``mask`` is ``scores < -threshold`` (lower tail),
        ``scores > threshold`` (upper) or ``abs(scores) > threshold`` (both).
        With ``sigma="fdr"`` it is the cut the false-discovery control chose.
        ``inf`` flags nothing.
    """

    mask: np.ndarray
    scores: np.ndarray
    threshold: np.ndarray


class LabelOutlierResult(NamedTuple):
    """What :func:`find_label_outliers` returns.

    Attributes
    ----------
    mask : ndarray of bool, shape (n_samples,)
        True for the rows whose given label is flagged as likely wrong.
    scores : ndarray of float, shape (n_samples,)
        How likely each given label is wrong: higher is more suspicious, and
        scores compare across classes (sort by ``-scores`` to review the
        likeliest errors first).
    likely_labels : ndarray, shape (n_samples,)
        For each row, the class other than its given label that the model
        finds most probable: the likely true label of a flagged row. In the
        label space of ``classes`` when given, else class indices.
    error_counts : ndarray of float, shape (n_classes, n_classes)
        ``error_counts[j, c]``: estimated number of rows given label ``j``
        whose true class is ``c`` (zero on the diagonal). Its sum is the
        estimated number of label errors, and ``mask`` flags, in each
        (given, likely) pair, about that pair's count of rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_zerror import find_label_outliers
    >>> labels = np.array([0, 0, 0, 1, 1, 1])
    >>> p1 = np.array([0.1, 0.2, 0.9, 0.8, 0.9, 0.3])
    >>> result = find_label_outliers(labels, np.column_stack([1 - p1, p1]))
    >>> result.mask.nonzero()
    (array([2, 5]),)
    >>> result.error_counts
    array([[0., 1.],
           [1., 0.]])
    """

    mask: np.ndarray
    scores: np.ndarray
    likely_labels: np.ndarray
    error_counts: np.ndarray


def _check_sigma(sigma, allowed):
    """``sigma`` as a float, or the one string option ``allowed``."""
    if isinstance(sigma, str):
        if sigma != allowed:
            raise ValueError(
                f'sigma must be "{allowed}" or a positive number, got {sigma!r}.'
            )
        return sigma
    if not isinstance(sigma, Real) or isinstance(sigma, bool):
        raise TypeError(
            f'sigma must be "{allowed}" or a positive number, got {sigma!r}.'
        )
    return float(sigma)


def _zscores(values, groups, n_groups, *, sigma, center, scale, tail):
    """The core's inlier mask and z-scores of ``values`` (n, d) within groups.

    A group whose MAD is zero (more than half of it tied) is scored against
    its standard deviation about the same centre: the core's policy, so that
    such groups still flag their tails.
    """
    return zscore_mask(
        values,
        groups,
        sigma=sigma,
        center=center,
        scale=scale,
        tail=tail,
        n_groups=n_groups,
        return_scores=True,
    )


def _fdr_cut(z, fdr, tail):
    """Per-column |z| cut of the Benjamini-Hochberg procedure at level ``fdr``.

    The p-value of a z-score is its standard normal tail probability (both
    tails, or the tested one); the procedure rejects the ``k`` smallest
    p-values, ``k`` the largest rank with ``p_(k) <= k * fdr / m``, and the
    cut is the z-score of the level ``k * fdr / m`` (``fdr / m`` when nothing
    is rejected, which nothing exceeds).
    """
    if tail == "both":
        stat, share = np.abs(z), 2.0
    else:
        stat, share = (-z if tail == "lower" else z), 1.0
    m = len(z)
    p = np.sort(share * norm.sf(stat), axis=0)
    rank = np.arange(1, m + 1)[:, None]
    passed = p <= rank * fdr / m
    k = np.where(passed.any(axis=0), m - np.argmax(passed[::-1], axis=0), 0)
    cut = norm.isf(np.maximum(k, 1) * fdr / (share * m))
    # The k-th smallest p-value passed: its statistic must exceed the cut,
    # whatever the rounding of isf.
    kth = np.sort(stat, axis=0)[::-1][np.maximum(k, 1) - 1, np.arange(z.shape[1])]
    return np.where(k > 0, np.minimum(cut, np.nextafter(kth, -np.inf)), cut)


def find_outliers(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sigma: Literal["fdr"] | float = "fdr",
    fdr: float = 0.05,
    center: Literal["median", "mean"] = "median",
    scale: Literal["mad", "std"] = "mad",
    tail: Literal["both", "lower", "upper"] = "both",
) -> OutlierResult:
    """Flag the rows whose residual is an outlier among all residuals.

    The residual ``y_true - y_pred`` (observed minus predicted) of every row is
    z-scored against the residuals of all rows, each output column on its own
    statistics, and rows further than a cut from the centre are flagged: the
    regression rule of the Z-Error Loss (technical note, "Z-error loss for
    Regression"), applied once to the predictions of any model. By default
    the cut keeps the expected share of clean rows among the flagged ones at
    ``fdr``; a numeric ``sigma`` fixes it instead.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Observed targets.
    y_pred : array-like of the shape of ``y_true``
        Predictions of any model, ideally out-of-fold
        (:func:`sklearn.model_selection.cross_val_predict`) so that a model
        that memorised an error does not hide it.
    sigma : "fdr" or float, default="fdr"
        ``"fdr"``: the Benjamini-Hochberg cut at false-discovery rate ``fdr``
        (Notes). A number: the threshold in (robust) standard deviations;
        ``inf`` flags nothing.
    fdr : float, default=0.05
        Target false-discovery rate of ``sigma="fdr"``, in (0, 1); ignored
        for a numeric sigma.
    center : {"median", "mean"}, default="median"
        Centre of the residuals. The median is not pulled by the errors it
        should find.
    scale : {"mad", "std"}, default="mad"
        Spread of the residuals: the median absolute deviation times 1.4826,
        or the standard deviation (the note's choice, inflated by gross
        errors: see Notes). A zero MAD falls back to the standard deviation.
    tail : {"both", "lower", "upper"}, default="both"
        Flag residuals beyond ``sigma`` on both sides, only below (observed
        too low) or only above (observed too high).

    Returns
    -------
    OutlierResult
        ``mask`` (True = flagged), ``scores`` (signed z-scores of the
        residuals) and ``threshold`` (the cut on ``abs(scores)``), each of
        the shape of ``y_true``.

    See Also
    --------
    find_label_outliers : The classification counterpart.
    sk_zerror.zscore_mask : The masking rule, on torch tensors.

    Notes
    -----
    With ``center="mean", scale="std"`` this is the note's rule; the robust
    defaults are chosen because a gross error inflates the standard deviation
    it is measured against. Non-finite values are rejected at input; with
    fewer than two rows, or no spread, nothing is flagged.

    ``sigma="fdr"`` turns each z-score into a normal tail probability (both
    tails, or the one of ``tail``) and applies the Benjamini-Hochberg
    step-up procedure to each output column: with ``m`` rows, the ``k``
    smallest p-values are flagged, ``k`` the largest rank whose p-value is at
    most ``k * fdr / m``. The cut adapts to the number of errors (a deep one
    when there are none, a shallower one when many residuals stand out) and
    to the number of rows, where a fixed sigma flags a fixed share of clean
    rows (4.6% at 2 sigma for normal residuals), hence the default. The
    guarantee assumes normal clean residuals; with heavier tails it flags
    more clean rows than ``fdr`` says (``docs/benchmarks/label_noise.md``
    measures by how much, against Tukey's fences and robust regressions).

    Examples
    --------
    >>> from sk_zerror import find_outliers
    >>> y_true = [10.1, 9.8, 10.3, 99.0, 10.0, 9.9, 10.2, 1.0]
    >>> y_pred = [10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0]
    >>> result = find_outliers(y_true, y_pred)
    >>> result.mask
    array([False, False, False,  True, False, False, False,  True])
    >>> result.scores.round(1).tolist()
    [0.2, -0.8, 0.8, 300.0, -0.2, -0.5, 0.5, -30.5]
    >>> float(result.threshold[0].round(2))
    2.5

    The note's mean and standard deviation, at its fixed 2 sigma, are
    inflated by the gross error at 99.0, which then hides the one at 1.0:

    >>> find_outliers(y_true, y_pred, sigma=2.0, center="mean", scale="std").mask
    array([False, False, False,  True, False, False, False, False])
    """
    sigma = _check_sigma(sigma, "fdr")
    if sigma == "fdr" and not (
        isinstance(fdr, Real) and not isinstance(fdr, bool) and 0.0 < fdr < 1.0
    ):
        raise ValueError(f"fdr must be a number in (0, 1), got {fdr!r}.")
    y_true = check_array(y_true, ensure_2d=False, dtype=np.float64, input_name="y_true")
    y_pred = check_array(y_pred, ensure_2d=False, dtype=np.float64, input_name="y_pred")
    check_consistent_length(y_true, y_pred)
    if y_true.shape != y_pred.shape and y_true.size == y_pred.size == len(y_true):
        # (n,) against (n, 1): one output either way.
        y_pred = y_pred.reshape(y_true.shape)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape, got {y_true.shape} "
            f"and {y_pred.shape}."
        )
    residual = torch.from_numpy(y_true - y_pred)
    values = residual.reshape(len(residual), -1)
    groups = torch.zeros(len(values), dtype=torch.long)
    options = dict(center=center, scale=scale, tail=tail)
    fixed = float("inf") if sigma == "fdr" else sigma
    inlier, z = _zscores(values, groups, 1, sigma=fixed, **options)
    if sigma == "fdr":
        cut = _fdr_cut(z.numpy(), float(fdr), tail)
        # Each column is tested against its own cut.
        columns = [
            _zscores(values[:, [i]], groups, 1, sigma=float(c), **options)[0]
            for i, c in enumerate(cut)
        ]
        inlier = torch.cat(columns, dim=1)
        threshold = np.broadcast_to(cut, values.shape)
    else:
        threshold = np.full(values.shape, sigma)
    shape = residual.shape
    return OutlierResult(
        mask=(~inlier).reshape(shape).numpy(),
        scores=z.reshape(shape).numpy(),
        threshold=threshold.reshape(shape).copy(),
    )


def _encode_labels(labels, classes):
    """Class indices of ``labels``, and the class values (None: indices)."""
    labels = column_or_1d(labels, input_name="labels")
    if classes is not None:
        classes = column_or_1d(classes, input_name="classes")
        if len(np.unique(classes)) != len(classes):
            raise ValueError("classes must not repeat a value.")
        order = np.argsort(classes, kind="stable")
        position = np.searchsorted(classes[order], labels)
        position = np.minimum(position, len(classes) - 1)
        known = classes[order][position] == labels
        if not known.all():
            bad = list(dict.fromkeys(labels[~known].tolist()))[:5]
            raise ValueError(f"labels {bad} are not in classes.")
        return order[position].astype(np.int64), classes
    if labels.dtype.kind == "f":
        if np.isnan(labels).any():
            raise ValueError("labels contain NaN; drop or fill those rows first.")
        if not np.all(labels == np.round(labels)):
            raise ValueError(
                "labels must be integer class indices; got non-integer floats. "
                "Pass classes= to use other label values."
            )
    elif labels.dtype.kind not in "iub":
        raise ValueError(
            "labels must be integer class indices 0..K-1, the column order of "
            f"pred_probs, unless classes= gives that order; got dtype "
            f"{labels.dtype} without classes."
        )
    return labels.astype(np.int64), None


def _log_probs_from_probs(pred_probs):
    """Log-probabilities from validated probabilities (zeros to the log of
    the smallest positive float, so that no score is infinite)."""
    probs = check_array(
        pred_probs, ensure_2d=False, dtype=np.float64, input_name="pred_probs"
    )
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(
            "pred_probs must have shape (n_samples, n_classes) with one column "
            f"per class (at least 2), got shape {probs.shape}."
        )
    if (probs < 0).any() or (probs > 1).any():
        raise ValueError("pred_probs must lie in [0, 1].")
    sums = probs.sum(axis=1)
    if not np.allclose(sums, 1.0, rtol=0.0, atol=SUM_ATOL):
        worst = sums[np.argmax(np.abs(sums - 1.0))]
        raise ValueError(
            f"each row of pred_probs must sum to 1 (within {SUM_ATOL}); found a "
            f"row summing to {worst:.6g}. Pass raw scores as logits instead."
        )
    return np.log(np.maximum(probs, np.finfo(np.float64).tiny))


def _log_probs_from_logits(logits):
    """Log-probabilities from logits (1-D: sigmoid; 2-D: softmax)."""
    logits = check_array(logits, ensure_2d=False, dtype=np.float64, input_name="logits")
    if logits.ndim == 1 or logits.shape[1] == 1:
        positive = logits.reshape(-1)
        log_p = np.column_stack([log_expit(-positive), log_expit(positive)])
    else:
        log_p = log_softmax(logits, axis=1)
    return log_p


def _log_odds(log_p):
    """``log(p / (1 - p))`` from ``log(p)``, without cancellation near 1."""
    with np.errstate(divide="ignore"):
        log_q = np.where(
            log_p > -np.log(2.0),
            np.log(-np.expm1(log_p)),
            np.log1p(-np.exp(log_p)),
        )
    return log_p - log_q


def _confident_joint(probs, labels, n_classes):
    """Estimated number of rows of each given class that belong to each class.

    Cleanlab's calibrated confident joint (Northcutt, Jiang and Chuang,
    "Confident learning", JAIR 2021): a row counts towards class ``c`` when
    its probability of ``c`` reaches the mean probability of ``c`` among the
    rows labelled ``c``, and goes to its most probable such class; the counts
    of each given class are rescaled to its number of rows, which assumes
    that the rows reaching no threshold hold the same share of errors.

    Returns
    -------
    counts : ndarray of shape (K, K)
        ``counts[j, c]``: rows labelled ``j`` estimated to belong to ``c``,
        zero on the diagonal.
    """
    n = len(labels)
    size = np.bincount(labels, minlength=n_classes)
    sums = np.zeros(n_classes)
    np.add.at(sums, labels, probs[np.arange(n), labels])
    # A class without rows has no threshold and no members.
    thresholds = np.where(size > 0, sums / np.maximum(size, 1), np.inf)
    member = probs >= thresholds
    best = np.where(member, probs, -np.inf).argmax(axis=1)
    counted = member.any(axis=1)
    counts = np.zeros((n_classes, n_classes))
    np.add.at(counts, (labels[counted], best[counted]), 1.0)
    counts *= (size / np.maximum(counts.sum(axis=1), 1.0))[:, None]
    np.fill_diagonal(counts, 0.0)
    return counts


def _stratified_joint(probs, labels, n_classes):
    """The confident joint of each half of the rows, by confidence, summed.

    The rows are split at the median of their largest probability, and each
    half gets its own thresholds and its own rescaling: errors may then be
    more frequent among the ambiguous rows than among the confident ones, as
    when annotators err on the rows a model also finds hard.
    """
    confidence = probs.max(axis=1)
    low = confidence < np.median(confidence)
    if low.sum() < 2 or (~low).sum() < 2:
        return _confident_joint(probs, labels, n_classes)
    return sum(
        _confident_joint(probs[half], labels[half], n_classes) for half in (low, ~low)
    )


COUNTS = {"confident_joint": _confident_joint, "stratified": _stratified_joint}


def _flag_counts(scores, labels, likely, counts):
    """Flag the estimated number of errors, highest scores first, by class pair.

    A cell is the rows given label ``j`` whose likely label is ``c``. A cell
    with at least ``MIN_CELL_ERRORS`` estimated errors ``counts[j, c]`` flags
    its ``round(counts[j, c])`` highest scores; the rows of all other cells
    are pooled and flag the rounded sum of their counts, highest first.
    """
    n_classes = len(counts)
    own = counts >= MIN_CELL_ERRORS
    np.fill_diagonal(own, False)
    cells = np.where(own[labels, likely], labels * n_classes + likely, n_classes**2)
    quota = np.append(np.where(own, counts, 0.0).ravel(), counts[~own].sum())
    size = np.bincount(cells, minlength=n_classes**2 + 1)
    k = np.minimum(np.rint(quota).astype(np.int64), size)
    order = np.lexsort((-scores, cells))
    start = np.cumsum(size) - size
    rank = np.empty(len(scores), dtype=np.int64)
    rank[order] = np.arange(len(scores)) - start[cells[order]]
    return rank < k[cells]


def find_label_outliers(
    labels: ArrayLike,
    pred_probs: ArrayLike | None = None,
    logits: ArrayLike | None = None,
    *,
    classes: ArrayLike | None = None,
    score: Literal["self_confidence", "margin", "zscore"] = "self_confidence",
    count: Literal["confident_joint", "stratified"] = "confident_joint",
    sigma: Literal["auto"] | float | Sequence[float] = "auto",
    center: Literal["median", "mean"] = "median",
    scale: Literal["mad", "std"] = "mad",
) -> LabelOutlierResult:
    """Flag the rows whose given label the model finds likely wrong.

    Each row gets a score that grows as the model's probability of its given
    label falls relative to the other classes, comparable across classes.
    The number of label errors is estimated for each pair of given and likely
    true class, and each pair's rows with the highest scores are flagged.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Given labels: integer class indices ``0..K-1`` indexing the columns
        of ``pred_probs`` or ``logits`` (cleanlab's convention), or any
        values listed in ``classes``.
    pred_probs : array-like of shape (n_samples, K), default=None
        Predicted class probabilities (rows summing to 1), ideally
        out-of-fold (``cross_val_predict(..., method="predict_proba")``).
    logits : array-like of shape (n_samples,) or (n_samples, K), default=None
        Raw scores instead of ``pred_probs``: one logit per row for two
        classes (sigmoid of class 1), or one per class (softmax). Give exactly
        one of ``pred_probs`` and ``logits``.
    classes : array-like of shape (K,), default=None
        The class of each column (a fitted classifier's ``classes_``), for
        labels that are not column indices. ``likely_labels`` is then given
        in these values.
    score : {"self_confidence", "margin", "zscore"}, default="self_confidence"
        The per-row score. ``"self_confidence"``: one minus the probability
        of the given label. ``"margin"``: the largest log-probability of
        another class minus that of the given class. ``"zscore"``: the
        Z-Error family, minus the z-score of the given-class log-odds within
        the rows of the same given class (the note's per-class Gaussians),
        which is not comparable across classes.
    count : {"confident_joint", "stratified"}, default="confident_joint"
        How the number of errors of each class pair is estimated (Notes).
        ``"confident_joint"`` assumes that a label's chance of being wrong
        depends on its true class only; ``"stratified"`` lets it differ
        between the rows the model is sure of and the ambiguous ones, as
        with annotators' errors.
    sigma : "auto", float or array-like of shape (K,), default="auto"
        ``"auto"`` flags the estimated number of errors of each (given,
        likely) class pair, highest scores first. A number (or one per
        class) applies the Z-Error rule instead: a row is flagged when the
        z-score of its given-class log-odds within its class is below
        ``-sigma``, whatever ``score``.
    center : {"median", "mean"}, default="median"
        Centre of each class's log-odds, for ``score="zscore"`` and a numeric
        ``sigma``.
    scale : {"mad", "std"}, default="mad"
        Spread of each class's log-odds (the median absolute deviation times
        1.4826, falling back to the standard deviation where it is zero), for
        ``score="zscore"`` and a numeric ``sigma``.

    Returns
    -------
    LabelOutlierResult
        ``mask`` (True = flagged), ``scores`` (higher = more likely wrong),
        ``likely_labels`` and ``error_counts`` (estimated errors per pair of
        given and true class).

    See Also
    --------
    find_outliers : The regression counterpart.
    sk_zerror.ZErrorClassifier : Learns without the flagged rows.

    Notes
    -----
    The count is cleanlab's calibrated confident joint (Northcutt, Jiang and
    Chuang, "Confident learning", JAIR 2021): a row labelled ``j`` counts as
    belonging to class ``c`` when its probability of ``c`` reaches the mean
    probability of ``c`` among the rows labelled ``c``; each given class's
    counts are rescaled to its number of rows. The rescaling assumes that
    the rows reaching no threshold, the ambiguous ones, hold the same share
    of errors as the rest: true of errors that strike at random, not of
    annotators', who err where the rows are ambiguous, so it undercounts
    those. ``count="stratified"`` computes the confident joint separately
    for the rows below and above the median of the model's largest
    probability, and adds the two; it counts more of the errors on
    ambiguous rows and somewhat more false ones where errors are random.
    ``docs/benchmarks/label_noise.md`` measures both against cleanlab under
    random, class-pair and instance-dependent noise.

    Each row's likely label is its most probable other class. A (given,
    likely) pair with at least 10 estimated errors flags that many of its
    rows, highest scores first, so that errors between two confusable
    classes are cut on their own; the pairs with fewer share one cut over
    their pooled rows. As in cleanlab, a row whose given label is the
    model's most probable class is never flagged, so ``mask`` may hold fewer
    rows than ``error_counts`` sums to.

    The default score, self-confidence, ranks rows across classes by the
    probability of their given label alone (a label at probability 0.0008
    ranks above one at 0.145, whatever their classes): within a class it
    orders rows as the Z-Error losses' given-class logit does, which the
    per-class z-scores of ``score="zscore"`` do not preserve across classes.

    Logits give the results of their softmax (or sigmoid) probabilities.
    For the z-scores, the given-class probability is clipped to
    ``[1e-6, 1 - 1e-6]``.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_zerror import find_label_outliers
    >>> labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    >>> p1 = np.array([0.1, 0.2, 0.05, 0.15, 0.97, 0.9, 0.8, 0.95, 0.85, 0.02])
    >>> result = find_label_outliers(labels, np.column_stack([1 - p1, p1]))
    >>> result.mask.nonzero()
    (array([4, 9]),)
    >>> np.argsort(-result.scores)[:2]
    array([9, 4])
    """
    for name, value, options in [
        ("score", score, LABEL_SCORES),
        ("count", count, tuple(COUNTS)),
        ("center", center, CENTERS),
        ("scale", scale, SCALES),
    ]:
        if value not in options:
            raise ValueError(f"{name} must be one of {options}, got {value!r}.")
    auto = isinstance(sigma, str)
    if auto and sigma != "auto":
        raise ValueError(f'sigma must be "auto" or a positive number, got {sigma!r}.')
    if (pred_probs is None) == (logits is None):
        raise ValueError("give exactly one of pred_probs and logits.")
    labels, values = _encode_labels(labels, classes)
    if pred_probs is not None:
        log_p, source = _log_probs_from_probs(pred_probs), "pred_probs"
    else:
        log_p, source = _log_probs_from_logits(logits), "logits"
    check_consistent_length(labels, log_p)
    n, n_classes = log_p.shape
    if values is not None and len(values) != n_classes:
        raise ValueError(
            f"classes has {len(values)} values for the {n_classes} columns of {source}."
        )
    if n and (labels.min() < 0 or labels.max() >= n_classes):
        bad = np.unique(labels[(labels < 0) | (labels >= n_classes)])[:5].tolist()
        raise ValueError(
            f"labels must lie in [0, {n_classes - 1}] to index the {n_classes} "
            f"classes of {source}; found {bad}."
        )
    rows = np.arange(n)
    given = log_p[rows, labels]
    others = log_p.copy()
    others[rows, labels] = -np.inf
    likely = others.argmax(axis=1)
    need_z = score == "zscore" or not auto
    if need_z:
        groups = torch.from_numpy(labels)
        bounded = np.clip(given, np.log(EPS), np.log1p(-EPS))
        log_odds = torch.from_numpy(_log_odds(bounded)).unsqueeze(1)
        limit = np.inf if auto else sigma
        inlier, z = _zscores(
            log_odds,
            groups,
            n_classes,
            sigma=limit,
            center=center,
            scale=scale,
            tail="lower",
        )
    if score == "margin":
        scores = others[rows, likely] - given
    elif score == "self_confidence":
        scores = -np.expm1(given)
    else:
        scores = -z[:, 0].numpy()
    counts = COUNTS[count](np.exp(log_p), labels, n_classes)
    if auto:
        # A label that is the model's own first choice is never flagged.
        mask = _flag_counts(scores, labels, likely, counts)
        mask &= log_p.argmax(axis=1) != labels
    else:
        mask = ~inlier[:, 0].numpy()
    return LabelOutlierResult(
        mask=mask,
        scores=scores,
        likely_labels=likely if values is None else values[likely],
        error_counts=counts,
    )
