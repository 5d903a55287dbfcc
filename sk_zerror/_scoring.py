"""Trimmed scores: cross-validation that the wrong rows in a fold do not dominate.

The validation folds of a cross-validation on noisy data hold the same errors
as the training folds. A mean squared error or a log-loss computed on them is
mostly made of the gross errors and flipped labels, which no model can
predict, and it rewards a model that hedges towards them. The scores here
leave out of each fold the ``trim`` share of its rows that the model fits
worst, and average the rest. The share is fixed by the caller, not by the
model, so a model that masks more rows in training cannot buy a better score.
"""

from numbers import Real

import numpy as np
from sklearn.metrics import make_scorer
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import _check_sample_weight, check_array

__all__ = [
    "make_trimmed_scorer",
    "trimmed_accuracy_score",
    "trimmed_log_loss",
    "trimmed_mean_squared_error",
]

# The share of rows left out of each fold unless told otherwise: above the
# 20% of wrong rows that real tables rarely exceed, under the half at which
# a trimmed mean stops describing the majority.
DEFAULT_TRIM = 0.25

# Probabilities are clipped here before the logarithm, as in log_loss.
_EPS = np.finfo(np.float64).eps

# scoring name -> (metric, greater_is_better, response_method)
TRIMMED_METRICS = {
    "neg_mean_squared_error": ("mse", False, "predict"),
    "neg_root_mean_squared_error": ("rmse", False, "predict"),
    "neg_log_loss": ("log_loss", False, "predict_proba"),
    "accuracy": ("accuracy", True, "predict_proba"),
}

_TRIM = [Interval(Real, 0, 1, closed="left")]


def _kept_rows(row_losses, trim):
    """Indices of the rows left after dropping the ``int(trim * n)`` largest losses.

    The order is stable, so tied losses keep the earlier rows; ties have the
    same loss, so the trimmed mean does not depend on which one goes.
    """
    n_trimmed = int(trim * len(row_losses))
    order = np.argsort(row_losses, kind="stable")
    return np.sort(order[: len(row_losses) - n_trimmed])


def _weighted_mean(values, weight):
    return float(np.average(values, weights=weight))


def _check_lengths(y_true, y_pred, sample_weight, name_pred):
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true has {len(y_true)} rows but {name_pred} has {len(y_pred)}."
        )
    return _check_sample_weight(sample_weight, y_true, dtype=np.float64)


def _squared_errors(y_true, y_pred, sample_weight):
    """Per-row mean over the outputs of the squared error, and the weights."""
    y_true = check_array(y_true, ensure_2d=False, dtype=np.float64, input_name="y_true")
    y_pred = check_array(y_pred, ensure_2d=False, dtype=np.float64, input_name="y_pred")
    y_true = y_true.reshape(len(y_true), -1)
    y_pred = y_pred.reshape(len(y_pred), -1)
    weight = _check_lengths(y_true, y_pred, sample_weight, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true has {y_true.shape[1]} outputs but y_pred has {y_pred.shape[1]}."
        )
    return np.mean((y_true - y_pred) ** 2, axis=1), weight


def _given_label_proba(y_true, y_proba, labels, sample_weight):
    """Probability of the given label per row, the predicted labels, the weights.

    A 1-d ``y_proba`` is the probability of the second of two labels, as
    scikit-learn's scorers pass it for binary problems.
    """
    y_true = check_array(
        y_true, ensure_2d=False, dtype=None, input_name="y_true"
    ).ravel()
    y_proba = check_array(
        y_proba, ensure_2d=False, dtype=np.float64, input_name="y_proba"
    )
    labels = np.unique(y_true) if labels is None else np.asarray(labels)
    if len(labels) != len(np.unique(labels)):
        raise ValueError(f"labels must be distinct, got {labels.tolist()!r}.")
    if y_proba.ndim == 1:
        if len(labels) != 2:
            raise ValueError(
                "a 1-d y_proba is the probability of the second of two labels, "
                f"but there are {len(labels)} labels ({labels.tolist()!r}); pass "
                "labels= with both classes, or y_proba with one column per class."
            )
        y_proba = np.column_stack([1.0 - y_proba, y_proba])
    if y_proba.ndim != 2 or y_proba.shape[1] != len(labels):
        raise ValueError(
            f"y_proba has {y_proba.shape[-1]} columns but there are "
            f"{len(labels)} labels ({labels.tolist()!r}); pass labels= with "
            "the estimator's classes_ when a fold lacks some classes."
        )
    weight = _check_lengths(y_true, y_proba, sample_weight, "y_proba")
    sorter = np.argsort(labels)
    position = np.searchsorted(labels, y_true, sorter=sorter)
    position = sorter[np.minimum(position, len(labels) - 1)]
    unknown = labels[position] != y_true
    if unknown.any():
        raise ValueError(
            "y_true holds labels not in labels: "
            f"{np.unique(y_true[unknown]).tolist()!r}."
        )
    given = y_proba[np.arange(len(y_true)), position]
    predicted = labels[np.argmax(y_proba, axis=1)]
    return given, predicted, y_true, weight


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred": ["array-like"],
        "trim": _TRIM,
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def trimmed_mean_squared_error(
    y_true, y_pred, *, trim=DEFAULT_TRIM, sample_weight=None
) -> float:
    """Mean squared error of the rows left after trimming the worst-fitted share.

    The ``int(trim * n_samples)`` rows with the largest squared errors are
    left out, and the (weighted) mean squared error of the others is
    returned. On a validation fold with gross target errors, the errors are
    the rows a good model fits worst, so they are the ones left out, and the
    score measures how well the model fits the rest.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Observed targets (with their errors).
    y_pred : array-like of the same shape
        Predicted targets.
    trim : float in [0, 1), default=0.25
        Share of the rows left out. Set it to at least the share of wrong
        rows you expect; 0 gives the plain mean squared error.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the mean over the kept rows (the rows trimmed are counted,
        not weighed).

    Returns
    -------
    float
        The trimmed mean squared error (lower is better). With several
        outputs, a row's squared error is the mean over its outputs.

    See Also
    --------
    make_trimmed_scorer : The scorer for ``GridSearchCV``.
    sklearn.metrics.mean_squared_error : The untrimmed error.

    Notes
    -----
    This is the criterion of least trimmed squares (Rousseeuw, 1984) applied
    to a fitted model's predictions: the share trimmed does not depend on the
    model, so every candidate of a search is scored on the same number of
    rows.

    Examples
    --------
    >>> from sk_zerror import trimmed_mean_squared_error
    >>> y_true = [1.0, 2.0, 3.0, 4.0, 100.0]
    >>> y_pred = [1.5, 2.0, 3.0, 4.0, 5.0]
    >>> trimmed_mean_squared_error(y_true, y_pred, trim=0.2)
    0.0625
    >>> trimmed_mean_squared_error(y_true, y_pred, trim=0.0)
    1805.05
    """
    errors, weight = _squared_errors(y_true, y_pred, sample_weight)
    kept = _kept_rows(errors, trim)
    return _weighted_mean(errors[kept], weight[kept])


@validate_params(
    {
        "y_true": ["array-like"],
        "y_proba": ["array-like"],
        "trim": _TRIM,
        "labels": ["array-like", None],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def trimmed_log_loss(
    y_true, y_proba, *, trim=DEFAULT_TRIM, labels=None, sample_weight=None
) -> float:
    """Log-loss of the rows left after trimming those least likely under the model.

    The ``int(trim * n_samples)`` rows with the lowest predicted probability
    of their given label are left out, and the (weighted) mean of
    ``-log p(given label)`` over the others is returned. A flipped label is
    one a good model finds unlikely, so the flipped rows of a validation fold
    are the ones left out: a confident model is not punished for disagreeing
    with them, and a model that hedges towards the noise gains nothing.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Given labels (with their errors).
    y_proba : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, one column per label in sorted order (the
        estimator's ``classes_``); a 1-d array is the probability of the
        second of two labels.
    trim : float in [0, 1), default=0.25
        Share of the rows left out. Set it to at least the share of wrong
        labels you expect; 0 gives the plain log-loss.
    labels : array-like of shape (n_classes,), default=None
        The labels of the columns of ``y_proba``. ``None`` takes those of
        ``y_true``, which fails when a fold lacks a class.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the mean over the kept rows (the rows trimmed are counted,
        not weighed).

    Returns
    -------
    float
        The trimmed log-loss, in nats (lower is better). Probabilities are
        clipped to ``[eps, 1]`` before the logarithm.

    See Also
    --------
    make_trimmed_scorer : The scorer for ``GridSearchCV``.
    trimmed_accuracy_score : The accuracy on the same kept rows.
    sklearn.metrics.log_loss : The untrimmed loss.

    Examples
    --------
    >>> from sk_zerror import trimmed_log_loss
    >>> y_true = ["a", "a", "b", "b"]
    >>> y_proba = [[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.99, 0.01]]
    >>> round(trimmed_log_loss(y_true, y_proba, trim=0.25), 4)
    0.1446
    >>> round(trimmed_log_loss(y_true, y_proba, trim=0.0), 4)
    1.2598
    """
    given, _, _, weight = _given_label_proba(y_true, y_proba, labels, sample_weight)
    losses = -np.log(np.clip(given, _EPS, 1.0))
    kept = _kept_rows(losses, trim)
    return _weighted_mean(losses[kept], weight[kept])


@validate_params(
    {
        "y_true": ["array-like"],
        "y_proba": ["array-like"],
        "trim": _TRIM,
        "labels": ["array-like", None],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def trimmed_accuracy_score(
    y_true, y_proba, *, trim=DEFAULT_TRIM, labels=None, sample_weight=None
) -> float:
    """Accuracy on the rows left after trimming those least likely under the model.

    The rows trimmed are those of :func:`trimmed_log_loss`: the
    ``int(trim * n_samples)`` rows with the lowest predicted probability of
    their given label. The (weighted) share of the others whose most
    probable label is the given one is returned.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Given labels (with their errors).
    y_proba : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, one column per label in sorted order (the
        estimator's ``classes_``); a 1-d array is the probability of the
        second of two labels.
    trim : float in [0, 1), default=0.25
        Share of the rows left out; 0 gives the plain accuracy.
    labels : array-like of shape (n_classes,), default=None
        The labels of the columns of ``y_proba``. ``None`` takes those of
        ``y_true``, which fails when a fold lacks a class.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the share over the kept rows.

    Returns
    -------
    float
        The trimmed accuracy, in [0, 1] (greater is better).

    See Also
    --------
    make_trimmed_scorer : The scorer for ``GridSearchCV``.
    trimmed_log_loss : The log-loss on the same kept rows.

    Notes
    -----
    Under symmetric label noise the plain accuracy of a noisy fold is a
    falling linear function of the clean error rate, so it ranks models
    correctly on average; the trimmed accuracy ranks them with less noise
    from the flipped rows. Prefer :func:`trimmed_log_loss`, which also sees
    how confident the model is, to choose ``sigma``.

    Examples
    --------
    >>> from sk_zerror import trimmed_accuracy_score
    >>> y_true = [0, 0, 1, 1]
    >>> y_proba = [[0.9, 0.1], [0.4, 0.6], [0.1, 0.9], [0.95, 0.05]]
    >>> trimmed_accuracy_score(y_true, y_proba, trim=0.25)
    0.6666666666666666
    >>> trimmed_accuracy_score(y_true, y_proba, trim=0.0)
    0.5
    """
    given, predicted, y_true, weight = _given_label_proba(
        y_true, y_proba, labels, sample_weight
    )
    kept = _kept_rows(-given, trim)
    return _weighted_mean(predicted[kept] == y_true[kept], weight[kept])


_METRIC_FUNCTIONS = {
    "mse": trimmed_mean_squared_error,
    "log_loss": trimmed_log_loss,
    "accuracy": trimmed_accuracy_score,
}


def _trimmed_root_mean_squared_error(y_true, y_pred, *, trim, sample_weight=None):
    return float(
        np.sqrt(
            trimmed_mean_squared_error(
                y_true, y_pred, trim=trim, sample_weight=sample_weight
            )
        )
    )


@validate_params(
    {
        "metric": [StrOptions(set(TRIMMED_METRICS))],
        "trim": _TRIM,
        "labels": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def make_trimmed_scorer(metric, *, trim=DEFAULT_TRIM, labels=None):
    """A scikit-learn scorer (greater is better) of a trimmed metric.

    Use it as the ``scoring`` of :class:`~sklearn.model_selection.GridSearchCV`
    or :func:`~sklearn.model_selection.cross_val_score` to choose ``sigma``
    (or any other parameter) on data with errors in the targets or labels.

    Parameters
    ----------
    metric : {"neg_root_mean_squared_error", "neg_mean_squared_error", \
"neg_log_loss", "accuracy"}
        The metric, named as scikit-learn's scoring strings: the negated
        :func:`trimmed_mean_squared_error` or its square root (regressors,
        from ``predict``), the negated :func:`trimmed_log_loss` or
        :func:`trimmed_accuracy_score` (classifiers, from
        ``predict_proba``).
    trim : float in [0, 1), default=0.25
        Share of each scored fold left out: the rows the model fits worst.
        It is fixed here, for every candidate alike. Set it to at least the
        share of wrong rows you expect; 0 gives the plain metric.
    labels : array-like of shape (n_classes,), default=None
        For the classification metrics, the estimator's ``classes_``; needed
        only when a scored fold may lack a class.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, sample_weight=None)``, made with
        :func:`sklearn.metrics.make_scorer`.

    See Also
    --------
    trimmed_mean_squared_error, trimmed_log_loss, trimmed_accuracy_score

    Notes
    -----
    A score computed on the rows that the candidate itself masks, or on a
    share that depends on its ``sigma``, would improve as ``sigma`` shrinks
    and the model gives up on more rows. Here every candidate is scored on
    the same number of rows of each fold, the best-fitted ones: giving up on
    a valid row can only raise the loss of the rows kept or push one of them
    out, in exchange for a worse one.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sk_zerror import ZErrorRegressor, make_trimmed_scorer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=200)
    >>> y[:30] += 15.0  # gross errors
    >>> search = GridSearchCV(
    ...     ZErrorRegressor(center="median", scale="mad", sigma_start=None,
    ...                     max_epochs=20, random_state=0),
    ...     {"sigma": [2.0, 1e6]},
    ...     scoring=make_trimmed_scorer("neg_root_mean_squared_error", trim=0.2),
    ...     cv=3,
    ... ).fit(X, y)
    >>> search.best_params_
    {'sigma': 2.0}
    """
    name, greater_is_better, response_method = TRIMMED_METRICS[metric]
    kwargs = {"trim": trim}
    if response_method == "predict_proba" and labels is not None:
        kwargs["labels"] = labels
    score_func = (
        _trimmed_root_mean_squared_error if name == "rmse" else _METRIC_FUNCTIONS[name]
    )
    return make_scorer(
        score_func,
        greater_is_better=greater_is_better,
        response_method=response_method,
        **kwargs,
    )
