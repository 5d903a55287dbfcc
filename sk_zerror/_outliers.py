"""Post-hoc outlier search in the outputs of any model: residuals and labels.

Both functions z-score a per-row value within its group with the masking core
(:mod:`sk_zerror._zscore`), so a row is flagged by the same rule as in the
Z-Error losses, only with the polarity of a data audit: ``mask`` is True for
the rows to review.
"""

from collections.abc import Sequence
from numbers import Real
from typing import Literal, NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.special import log_softmax
from sklearn.utils import check_array, check_consistent_length, column_or_1d

from ._zscore import (
    CENTERS,
    SCALES,
    TAILS,
    _check_option,
    degenerate_groups,
    group_statistics,
    inlier_mask_from_zscores,
    rounding_eps,
    sigma_tensor,
    zscores_from_statistics,
)

__all__ = ["OutlierResult", "find_label_outliers", "find_outliers"]

# Probabilities are clipped to [EPS, 1 - EPS] before taking log-odds, and
# log-odds from logits to the same range, so both inputs give the same scores.
EPS = 1e-6
# Tolerance on the row sums of pred_probs (float32 softmax outputs included).
SUM_ATOL = 1e-3
# sigma="auto": a (label, rival class) cell gets its own cut from this many
# estimated errors on; fewer are too noisy an estimate (about 30% relative
# error at 10), and such cells share their class's cut.
MIN_CELL_ERRORS = 10


class OutlierResult(NamedTuple):
    """What :func:`find_outliers` and :func:`find_label_outliers` return.

    Attributes
    ----------
    mask : ndarray of bool
        True for the flagged rows (outliers): the opposite polarity of
        :func:`~sk_zerror.zscore_mask`, whose True marks inliers.
    scores : ndarray of float
        Signed z-score of each value within its group.
    threshold : ndarray of float
        The sigma each value was tested against, so that ``mask`` is
        ``scores < -threshold`` (lower tail), ``scores > threshold`` (upper)
        or ``abs(scores) > threshold`` (both). ``inf`` flags nothing.
    """

    mask: np.ndarray
    scores: np.ndarray
    threshold: np.ndarray


def _robust_zscores(values, groups, n_groups, center, scale):
    """Z-scores of ``values`` (n, d) within their group, and the statistics.

    The statistics are those of the masking core, except that a zero median
    absolute deviation (more than half of a group tied, as with probabilities
    rounded to 1 or a forest's vote fractions) falls back to the standard
    deviation about the same centre, so that tied groups still flag their
    lower tail.
    """
    eps = rounding_eps(torch.float64)
    stats = group_statistics(values, groups, n_groups, center=center, scale=scale)
    if scale == "mad":
        spread = group_statistics(values, groups, n_groups, center=center, scale="std")
        stats = stats._replace(
            scale=torch.where(degenerate_groups(stats, eps), spread.scale, stats.scale)
        )
    z = zscores_from_statistics(values, groups, stats, degenerate_groups(stats, eps))
    return z, stats


def _per_row(sigma, groups):
    """The sigma each row is tested against, as a numpy array."""
    per_row = sigma[groups] if sigma.ndim == 1 else sigma.expand(groups.shape)
    return per_row.numpy().copy()


def find_outliers(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sigma: float = 2.0,
    center: Literal["median", "mean"] = "median",
    scale: Literal["mad", "std"] = "mad",
    tail: Literal["both", "lower", "upper"] = "both",
) -> OutlierResult:
    """Flag the rows whose residual is an outlier among all residuals.

    The residual ``y_true - y_pred`` (observed minus predicted) of every row is
    z-scored against the residuals of all rows, each output column on its own
    statistics, and rows further than ``sigma`` from the centre are flagged:
    the regression rule of the Z-Error Loss (technical note, "Z-error loss for
    Regression"), applied once to the predictions of any model.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Observed targets.
    y_pred : array-like of the shape of ``y_true``
        Predictions of any model, ideally out-of-fold
        (:func:`sklearn.model_selection.cross_val_predict`) so that a model
        that memorised an error does not hide it.
    sigma : float, default=2.0
        Threshold in (robust) standard deviations; ``inf`` flags nothing.
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
        residuals) and ``threshold``, each of the shape of ``y_true``.

    See Also
    --------
    find_label_outliers : The classification counterpart.
    sk_zerror.zscore_mask : The masking rule, on torch tensors.

    Notes
    -----
    With ``center="mean", scale="std"`` this is the note's rule; the robust
    defaults are chosen because a gross error inflates the standard deviation
    it is measured against: on the diabetes data with 10% of the targets
    corrupted (decimal slips, digit swaps, unit errors, swapped rows;
    ``benchmarks/bench_label_noise.py``), median/MAD at sigma 2 finds 43% of
    the errors, mean/std 23% (F1 0.49 against 0.37). ``sigma=3`` trades
    recall for precision (35% found, 94% of the flags right). Non-finite
    values are rejected at input; with fewer than two rows, or no spread,
    nothing is flagged.

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

    The note's mean and standard deviation are inflated by the gross error
    at 99.0, which then hides the one at 1.0:

    >>> find_outliers(y_true, y_pred, center="mean", scale="std").mask
    array([False, False, False,  True, False, False, False, False])
    """
    _check_option("center", center, CENTERS)
    _check_option("scale", scale, SCALES)
    _check_option("tail", tail, TAILS)
    if not isinstance(sigma, Real) or isinstance(sigma, bool):
        raise TypeError(f"sigma must be a positive number, got {sigma!r}.")
    limit = sigma_tensor(float(sigma), None)
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
    z, _ = _robust_zscores(values, groups, 1, center, scale)
    inlier = inlier_mask_from_zscores(z, groups, limit, tail)
    shape = residual.shape
    return OutlierResult(
        mask=(~inlier).reshape(shape).numpy(),
        scores=z.reshape(shape).numpy(),
        threshold=np.full(shape, float(sigma)),
    )


def _check_labels(labels):
    """Integer class indices from ``labels``, with clear errors otherwise."""
    labels = column_or_1d(labels, input_name="labels")
    if labels.dtype.kind == "f":
        if np.isnan(labels).any():
            raise ValueError("labels contain NaN; drop or fill those rows first.")
        if not np.all(labels == np.round(labels)):
            raise ValueError(
                "labels must be integer class indices; got non-integer floats."
            )
    elif labels.dtype.kind not in "iub":
        raise ValueError(
            "labels must be integer class indices 0..K-1, the column order of "
            f"pred_probs; got dtype {labels.dtype}. Encode other labels with "
            "sklearn.preprocessing.LabelEncoder."
        )
    return labels.astype(np.int64)


def _log_odds_from_probs(pred_probs):
    """Log-odds of every class from probabilities, clipped to [EPS, 1 - EPS]."""
    probs = check_array(pred_probs, dtype=np.float64, input_name="pred_probs")
    if probs.shape[1] < 2:
        raise ValueError(
            "pred_probs must have one column per class (at least 2), got "
            f"shape {probs.shape}."
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
    clipped = np.clip(probs, EPS, 1.0 - EPS)
    return np.log(clipped) - np.log1p(-clipped)


def _log_odds_from_logits(logits):
    """Log-odds of every class from logits (1-D: sigmoid; 2-D: softmax)."""
    logits = check_array(logits, ensure_2d=False, dtype=np.float64, input_name="logits")
    bound = np.log1p(-EPS) - np.log(EPS)
    if logits.ndim == 1 or logits.shape[1] == 1:
        positive = logits.reshape(-1)
        return np.clip(np.column_stack([-positive, positive]), -bound, bound)
    log_p = log_softmax(logits, axis=1)
    # log(1 - p) without cancellation: log(-expm1(x)) near p = 1, log1p(-exp(x))
    # elsewhere.
    with np.errstate(divide="ignore"):
        log_q = np.where(
            log_p > -np.log(2.0),
            np.log(-np.expm1(log_p)),
            np.log1p(-np.exp(log_p)),
        )
    return np.clip(log_p - log_q, -bound, bound)


def _error_counts(log_odds, labels, centers):
    """Estimated number of rows of each given class that belong to each class.

    A row counts as a member of class ``c`` when its class-``c`` logit reaches
    the centre of the given-class logits of the rows labelled ``c``, and goes
    to the class with the largest logit among those it is a member of. The
    counts of each given class are then rescaled to its number of rows.
    This is cleanlab's confident joint (Northcutt et al., 2021), with the
    class centre of the z-scores as per-class threshold.

    Returns
    -------
    counts : ndarray of shape (K, K)
        ``counts[j, c]``: rows labelled ``j`` estimated to belong to ``c``.
    """
    n_classes = log_odds.shape[1]
    member = log_odds >= centers
    best = np.where(member, log_odds, -np.inf).argmax(axis=1)
    counted = member.any(axis=1)
    counts = np.zeros((n_classes, n_classes))
    np.add.at(counts, (labels[counted], best[counted]), 1.0)
    size = np.bincount(labels, minlength=n_classes)
    return counts * (size / np.maximum(counts.sum(axis=1), 1.0))[:, None]


def _auto_sigma(z, labels, rival, counts):
    """Per-cell sigma that flags each cell's estimated number of wrong labels.

    The rows labelled ``j`` that belong to ``c`` have ``c`` as strongest rival,
    so a (label ``j``, rival ``c``) cell with at least ``MIN_CELL_ERRORS``
    estimated errors ``counts[j, c]`` gets its own cut; the other rows of
    label ``j`` share one cut (cell ``(j, j)``), with the sum of the small
    counts. The ``round(count)`` lowest z-scores of a cell are flagged: the
    cut lies halfway between the last flagged and the first kept value. Sigma
    is never below 0, so no row at or above its class centre is flagged;
    ``inf`` flags nothing.

    Returns the cell of each row and the sigma of each cell.
    """
    n_classes = len(counts)
    errors = counts.copy()
    np.fill_diagonal(errors, 0.0)
    own_cut = errors >= MIN_CELL_ERRORS
    cells = labels * n_classes + np.where(own_cut[labels, rival], rival, labels)
    np.fill_diagonal(errors, (errors * ~own_cut).sum(axis=1))
    errors[~own_cut & ~np.eye(n_classes, dtype=bool)] = 0.0
    size = np.bincount(cells, minlength=n_classes**2)
    k = np.minimum(np.rint(errors.ravel()).astype(np.int64), size)
    ordered = z[np.lexsort((z, cells))]
    start = np.cumsum(size) - size
    last = max(len(z) - 1, 0)
    below = ordered[np.clip(start + k - 1, 0, last)]
    above = ordered[np.clip(start + k, 0, last)]
    cut = np.where(k < size, 0.5 * (below + above), np.inf)
    return cells, np.where(k == 0, np.inf, np.maximum(-cut, 0.0))


def find_label_outliers(
    labels: ArrayLike,
    pred_probs: ArrayLike | None = None,
    logits: ArrayLike | None = None,
    *,
    sigma: Literal["auto"] | float | Sequence[float] = "auto",
    center: Literal["median", "mean"] = "median",
    scale: Literal["mad", "std"] = "mad",
) -> OutlierResult:
    """Flag the rows whose given label the model finds unusually unlikely.

    Each row's score is the given-class logit: the log-odds
    ``log(p_y / (1 - p_y))`` of its given label ``y`` under the model. It is
    z-scored within the rows of the same given class (the note's
    per-class Gaussians, "Z-error loss for Classification"), and only the lower
    tail is flagged: a correctly labelled row is never flagged for being too
    confident.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Given labels as integer class indices ``0..K-1``, indexing the columns
        of ``pred_probs`` or ``logits`` (cleanlab's convention). Encode other
        labels with :class:`sklearn.preprocessing.LabelEncoder`.
    pred_probs : array-like of shape (n_samples, K), default=None
        Predicted class probabilities (rows summing to 1), ideally
        out-of-fold (``cross_val_predict(..., method="predict_proba")``).
    logits : array-like of shape (n_samples,) or (n_samples, K), default=None
        Raw scores instead of ``pred_probs``: one logit per row for two
        classes (sigmoid of class 1), or one per class (softmax). Give exactly
        one of ``pred_probs`` and ``logits``.
    sigma : "auto", float or array-like of shape (K,), default="auto"
        Threshold in (robust) standard deviations below the class centre,
        shared or one per class. ``"auto"`` sets it from the data (Notes).
    center : {"median", "mean"}, default="median"
        Centre of each class's scores.
    scale : {"mad", "std"}, default="mad"
        Spread of each class's scores (the median absolute deviation times
        1.4826 falls back to the standard deviation where it is zero).

    Returns
    -------
    OutlierResult
        ``mask`` (True = flagged), ``scores`` (z-score of the given-class
        logit within its class; low is suspicious) and ``threshold`` (the
        sigma each row was tested against: ``mask == scores < -threshold``),
        each of shape (n_samples,).

    See Also
    --------
    find_outliers : The regression counterpart.
    sk_zerror.ZErrorClassifier : Learns without the flagged rows.

    Notes
    -----
    Probabilities are clipped to ``[1e-6, 1 - 1e-6]``, so the given-class
    logit lies within +-13.8; logits give the same scores as their softmax
    (or sigmoid) probabilities. The log-odds is the given-class logit of the
    binary Z-Error loss; within a class it ranks the rows as the
    log-probability does, and at a fixed sigma both flag about as well (F1
    0.55 and 0.56 at sigma 2 on the tuning sets).

    A fixed sigma places the cut at the same depth of every class's
    distribution whatever the noise rate: too deep when many labels are wrong,
    too shallow when few are (on breast cancer with one-sided noise,
    ``sigma=2`` flags none of the wrong labels: the confident clean rows
    spread the class so wide that the wrong ones stay within 2 sigma).

    ``sigma="auto"`` first estimates how many rows of each given class ``j``
    belong to each other class ``c``: a row counts as a member of ``c`` when
    its class-``c`` logit reaches the centre of class ``c``'s given-class
    logits, and goes to its most likely such class; the counts of each given
    class are rescaled to its size. This is cleanlab's confident joint
    (Northcutt, Jiang and Chuang, "Confident learning", JAIR 2021) with the
    class centre as threshold. Each class then gets the sigma that flags its
    estimated number of errors, lowest scores first. Under class-dependent
    noise the errors of class ``j`` that belong to ``c`` all have ``c`` as
    strongest rival class, so a (class, rival) pair with at least 10
    estimated errors gets its own sigma; the rest of the class shares one.
    Sigma is never negative, so no row at or above its class centre is
    flagged. With perfectly separated classes only half of each class reaches
    its centre, and the rescaling over-counts the errors.

    Classes with fewer than two rows, or with no spread, flag nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_zerror import find_label_outliers
    >>> labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    >>> p1 = np.array([0.1, 0.2, 0.05, 0.15, 0.97, 0.9, 0.8, 0.95, 0.85, 0.02])
    >>> pred_probs = np.column_stack([1 - p1, p1])
    >>> result = find_label_outliers(labels, pred_probs, sigma=2.0)
    >>> result.mask
    array([False, False, False, False,  True, False, False, False, False,  True])
    >>> find_label_outliers(labels, pred_probs).mask.nonzero()
    (array([4, 9]),)
    """
    _check_option("center", center, CENTERS)
    _check_option("scale", scale, SCALES)
    auto = isinstance(sigma, str)
    if auto and sigma != "auto":
        raise ValueError(f'sigma must be "auto" or a positive number, got {sigma!r}.')
    if (pred_probs is None) == (logits is None):
        raise ValueError("give exactly one of pred_probs and logits.")
    labels = _check_labels(labels)
    if pred_probs is not None:
        log_odds = _log_odds_from_probs(pred_probs)
        source = "pred_probs"
    else:
        log_odds = _log_odds_from_logits(logits)
        source = "logits"
    check_consistent_length(labels, log_odds)
    n, n_classes = log_odds.shape
    if labels.min() < 0 or labels.max() >= n_classes:
        bad = np.unique(labels[(labels < 0) | (labels >= n_classes)])[:5].tolist()
        raise ValueError(
            f"labels must lie in [0, {n_classes - 1}] to index the {n_classes} "
            f"classes of {source}; found {bad}."
        )
    given = log_odds[np.arange(n), labels]
    groups = torch.from_numpy(labels)
    values = torch.from_numpy(given).unsqueeze(1)
    z, stats = _robust_zscores(values, groups, n_classes, center, scale)
    if auto:
        # A class without rows has no centre and no members.
        centers = torch.where(stats.count > 0, stats.center, torch.inf)
        counts = _error_counts(log_odds, labels, centers[:, 0].numpy())
        rival = np.where(np.eye(n_classes, dtype=bool)[labels], -np.inf, log_odds)
        cells, limit = _auto_sigma(
            z[:, 0].numpy(), labels, rival.argmax(axis=1), counts
        )
        groups, limit = torch.from_numpy(cells), torch.from_numpy(limit)
    else:
        limit = sigma_tensor(sigma, n_classes)
    inlier = inlier_mask_from_zscores(z, groups, limit, "lower")[:, 0]
    return OutlierResult(
        mask=(~inlier).numpy(),
        scores=z[:, 0].numpy(),
        threshold=_per_row(limit, groups),
    )
