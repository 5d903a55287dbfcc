"""ZThresholdCalibrator: the note's density-crossing cutoff on any binary classifier."""

from numbers import Integral, Real

import numpy as np
from scipy.special import expit, logit
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import StratifiedShuffleSplit, check_cv
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, RealNotInt, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _raise_for_params,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import _check_method_params, check_is_fitted, indexable

from ._cutoffs import gaussian_cutoff, skewnorm_cutoff

__all__ = ["ZThresholdCalibrator"]

# Probabilities of exactly 0 or 1 are clipped to this distance from them
# before the logit, which keeps the scores finite (|logit| <= 36.04).
PROBA_EPS = np.finfo(np.float64).eps


def _estimator_has(name):
    """available_if check: the fitted estimator, else the given one, has ``name``."""

    def check(self):
        return hasattr(getattr(self, "estimator_", self.estimator), name)

    return check


def _response_method(estimator, response_method):
    """The method whose output is the score: decision_function first for "auto"."""
    if response_method == "auto":
        if hasattr(estimator, "decision_function"):
            return "decision_function"
        return "predict_proba"
    if not hasattr(estimator, response_method):
        raise ValueError(
            f"response_method={response_method!r}, but "
            f"{type(estimator).__name__} has no {response_method} method."
        )
    return response_method


def positive_scores(estimator, X, response_method, pos_label):
    """Scores of ``pos_label``: decision values, or logits of its probability.

    Parameters
    ----------
    estimator : fitted binary classifier
    X : array-like
    response_method : {"decision_function", "predict_proba"}
    pos_label : label
        One of ``estimator.classes_``.

    Returns
    -------
    scores : ndarray of shape (n_samples,), float64
        Larger for the positive class.
    """
    classes = np.asarray(estimator.classes_)
    if response_method == "decision_function":
        scores = np.asarray(estimator.decision_function(X), dtype=np.float64)
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.ndim != 1:
            raise ValueError(
                "ZThresholdCalibrator is binary: the estimator's decision_function "
                f"returned shape {scores.shape}, expected (n_samples,)."
            )
        # decision_function scores classes_[1], by scikit-learn's convention.
        return -scores if pos_label == classes[0] else scores
    proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    column = np.flatnonzero(classes == pos_label)[0]
    return logit(np.clip(proba[:, column], PROBA_EPS, 1 - PROBA_EPS))


def _fold_scores(estimator, X, y, train, test, fit_params, response_method, pos):
    """Fit on ``train`` and score ``test``: one fold of out-of-fold scores."""
    fit_params = _check_method_params(X, fit_params, indices=train)
    estimator.fit(_safe_indexing(X, train), _safe_indexing(y, train), **fit_params)
    return positive_scores(estimator, _safe_indexing(X, test), response_method, pos)


class ZThresholdCalibrator(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Binary classifier that cuts where the classes' inlier densities cross.

    The note's cutoff ("Infer the best cutoff threshold", code listing 4) on
    any binary classifier: the scores of each class (out-of-fold, or from a
    held-out set) are z-scored against that class, one distribution is fitted
    per class to its inliers, and ``predict`` cuts where the two densities are
    equal instead of at probability 0.5. The classifier itself is unchanged,
    so ``predict_proba`` and ``decision_function`` are the estimator's.

    Parameters
    ----------
    estimator : estimator instance
        Binary classifier with ``fit`` and ``decision_function`` or
        ``predict_proba``; fitted already when ``cv="prefit"``.
    method : {"gaussian", "skewnorm"}, default="gaussian"
        :func:`gaussian_cutoff` on the scores (the note's preference), or
        :func:`skewnorm_cutoff` on ``expit(scores)``, the probabilities.
    sigma : float or (float, float), default=2.0
        Inlier threshold, in standard deviations of each class's scores (or
        probabilities for ``"skewnorm"``), or one per class, negative first.
    response_method : {"auto", "decision_function", "predict_proba"}, \
            default="auto"
        Where the scores come from. ``"auto"`` takes ``decision_function``
        when the estimator has one, else the logit of ``predict_proba``:
        the note models logits. (scikit-learn's threshold classifiers try
        ``predict_proba`` first.)
    cv : int, float, cross-validation generator, iterable or "prefit", default=5
        Where the scores that set the cutoff come from:

        * an int or a splitter: out-of-fold scores, from stratified k-fold for
          an int;
        * a float in (0, 1): the scores of a stratified validation share of
          that size (one split, shuffled by ``random_state``);
        * ``"prefit"``: ``estimator`` is fitted already and the data passed to
          :meth:`fit` are a held-out set used only to set the cutoff; nothing
          is refitted and ``estimator_`` is ``estimator`` itself.
    refit : bool, default=True
        Refit the estimator on all the data once the cutoff is set. ``False``
        needs a single split and keeps the estimator fitted on its training
        share; it is required with ``cv="prefit"``. (The same rules as
        :class:`~sklearn.model_selection.TunedThresholdClassifierCV`.)
    pos_label : int, float, bool or str, default=None
        The positive class. ``None`` takes ``classes_[1]``, the greater label.
    random_state : int, RandomState instance or None, default=None
        Shuffles the single split when ``cv`` is a float.
    n_jobs : int, default=None
        Number of folds fitted in parallel. ``None`` means 1 unless in a
        :obj:`joblib.parallel_backend` context.

    Attributes
    ----------
    estimator_ : estimator instance
        The fitted classifier used to predict.
    classes_ : ndarray of shape (2,)
        The class labels, from ``estimator_``.
    decision_threshold_ : float
        The cutoff on the scores: ``predict`` returns the positive class where
        ``decision_function`` (or the logit of ``predict_proba``) is at or
        above it.
    probability_threshold_ : float
        The same cutoff as a probability, ``expit(decision_threshold_)``. It is
        the cutoff on ``predict_proba`` when the scores are logits.
    distributions_ : dict
        Frozen :mod:`scipy.stats` distribution of each class, keyed by label,
        negative class first: :func:`scipy.stats.norm` in score space for
        ``"gaussian"``, :func:`scipy.stats.skewnorm` in probability space for
        ``"skewnorm"``. Plot their ``pdf`` to see the crossing.
    crossed_ : bool
        False when the densities did not cross and the cutoff is the midpoint
        of the class means.
    response_method_ : str
        The method the scores came from.
    n_features_in_ : int
        Number of features seen during fit, when the estimator has it.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when the estimator has them.

    See Also
    --------
    gaussian_cutoff : The Gaussian cutoff on given scores.
    skewnorm_cutoff : The skew-normal cutoff on given probabilities.
    sklearn.model_selection.TunedThresholdClassifierCV : Cutoff that maximises
        a metric over a grid of thresholds.

    Notes
    -----
    The cutoff is where a sample is equally likely under both classes' inlier
    distributions: a likelihood ratio of 1, which is the Bayes decision for
    equal class priors and so maximises balanced accuracy when the fitted
    distributions describe the scores. It ignores the class imbalance that
    0.5 on a probability carries, and unlike a metric search it needs only
    two distribution fits.

    The Gaussians are fitted in the space of the scores: logits for logistic
    models, gradient boosting and neural networks; for other decision
    functions (SVM margins) the method works the same in their own space,
    but ``probability_threshold_`` is then only ``expit`` of a margin.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.metrics import balanced_accuracy_score
    >>> from sklearn.model_selection import train_test_split
    >>> from sk_zerror import ZThresholdCalibrator
    >>> X, y = make_classification(
    ...     n_samples=2000, weights=[0.9, 0.1], class_sep=0.8, random_state=0
    ... )
    >>> X_train, X_test, y_train, y_test = train_test_split(
    ...     X, y, stratify=y, random_state=0
    ... )
    >>> model = ZThresholdCalibrator(LogisticRegression()).fit(X_train, y_train)
    >>> round(model.decision_threshold_, 1), round(model.probability_threshold_, 2)
    (-1.6, 0.17)
    >>> default = model.estimator_.predict(X_test)
    >>> bool(
    ...     balanced_accuracy_score(y_test, model.predict(X_test))
    ...     > balanced_accuracy_score(y_test, default)
    ... )
    True
    """

    _parameter_constraints: dict = {
        "estimator": [
            HasMethods(["fit", "predict_proba"]),
            HasMethods(["fit", "decision_function"]),
        ],
        "method": [StrOptions({"gaussian", "skewnorm"})],
        "sigma": [Interval(Real, 0, None, closed="neither"), "array-like"],
        "response_method": [StrOptions({"auto", "decision_function", "predict_proba"})],
        "cv": [
            "cv_object",
            StrOptions({"prefit"}),
            Interval(RealNotInt, 0.0, 1.0, closed="neither"),
        ],
        "refit": ["boolean"],
        "pos_label": [Real, str, "boolean", None],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        estimator,
        *,
        method="gaussian",
        sigma=2.0,
        response_method="auto",
        cv=5,
        refit=True,
        pos_label=None,
        random_state=None,
        n_jobs=None,
    ):
        self.estimator = estimator
        self.method = method
        self.sigma = sigma
        self.response_method = response_method
        self.cv = cv
        self.refit = refit
        self.pos_label = pos_label
        self.random_state = random_state
        self.n_jobs = n_jobs

    @_fit_context(
        # The estimator is not validated yet.
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, **params):
        """Fit the estimator and set the cutoff.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, as the estimator takes it; with ``cv="prefit"``,
            the held-out data that set the cutoff.
        y : array-like of shape (n_samples,)
            Labels of two classes.
        **params : dict
            Passed to the estimator's ``fit`` (and the splitter's ``split``);
            needs ``sklearn.set_config(enable_metadata_routing=True)``.

        Returns
        -------
        self : ZThresholdCalibrator
            The fitted calibrator.
        """
        _raise_for_params(params, self, "fit")
        X, y = indexable(X, y)
        self._check_binary(y)
        routed = process_routing(self, "fit", **params)
        method = _response_method(self.estimator, self.response_method)

        if self.cv == "prefit":
            if self.refit:
                raise ValueError("When cv='prefit', refit cannot be True.")
            try:
                check_is_fitted(self.estimator, "classes_")
            except NotFittedError as exc:
                raise NotFittedError(
                    "When cv='prefit', the estimator must be fitted already."
                ) from exc
            self.estimator_ = self.estimator
            pos = self._positive_label()
            scores, y_scored = positive_scores(self.estimator_, X, method, pos), y
        else:
            scores, y_scored = self._cross_fit(X, y, routed, method)

        self.response_method_ = method
        self._set_cutoff(scores, y_scored)
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_
        return self

    def _check_binary(self, y):
        y_type = type_of_target(y, input_name="y")
        if y_type not in ("binary", "multiclass"):
            raise ValueError(
                "Only binary classification is supported by ZThresholdCalibrator. "
                f"Unknown label type: {y_type!r}."
            )
        n_classes = np.unique(y).size
        if n_classes != 2:
            raise ValueError(
                "Only binary classification is supported by ZThresholdCalibrator: "
                f"y must hold two classes, got {n_classes} "
                f"class{'' if n_classes == 1 else 'es'}."
            )

    def _cross_fit(self, X, y, routed, method):
        """Fit ``estimator_`` and return out-of-fold scores with their labels."""
        if isinstance(self.cv, Real) and 0 < self.cv < 1:
            cv = StratifiedShuffleSplit(
                n_splits=1, test_size=self.cv, random_state=self.random_state
            )
        else:
            cv = check_cv(self.cv, y=y, classifier=True)
        splits = list(cv.split(X, y, **routed.splitter.split))
        fit_params = routed.estimator.fit
        if not self.refit:
            if len(splits) > 1:
                raise ValueError("When cv has several folds, refit cannot be False.")
            # One split: the estimator fitted on its training share is kept.
            (train, test), self.estimator_ = splits[0], clone(self.estimator)
            pos = self._positive_label(y)
            scores = _fold_scores(
                self.estimator_, X, y, train, test, fit_params, method, pos
            )
            return scores, _safe_indexing(y, test)

        pos = self._positive_label(y)
        fold_scores = Parallel(n_jobs=self.n_jobs)(
            delayed(_fold_scores)(
                clone(self.estimator), X, y, train, test, fit_params, method, pos
            )
            for train, test in splits
        )
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        # Repeated splitters score a sample more than once: all are kept.
        test = np.concatenate([test for _, test in splits])
        return np.concatenate(fold_scores), _safe_indexing(y, test)

    def _positive_label(self, y=None):
        """``pos_label``, checked against the classes, or the greater class."""
        classes = np.unique(y) if y is not None else self.classes_
        if self.pos_label is None:
            return classes[1]
        if self.pos_label not in np.asarray(classes).tolist():
            raise ValueError(
                f"pos_label={self.pos_label!r} is not one of the classes "
                f"{np.asarray(classes).tolist()}."
            )
        return self.pos_label

    def _set_cutoff(self, scores, y):
        pos = self._positive_label()
        if self.method == "gaussian":
            cutoff = gaussian_cutoff(scores, y, sigma=self.sigma, pos_label=pos)
        else:
            cutoff = skewnorm_cutoff(expit(scores), y, sigma=self.sigma, pos_label=pos)
        self.decision_threshold_ = cutoff.threshold
        self.probability_threshold_ = cutoff.probability
        self.distributions_ = cutoff.distributions
        self.crossed_ = cutoff.crossed

    @property
    def classes_(self):
        """The class labels, from the fitted estimator."""
        return self.estimator_.classes_

    def predict(self, X):
        """Predict the positive class where the score reaches the cutoff.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples, as the estimator takes them.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, from ``classes_``.
        """
        check_is_fitted(self, "decision_threshold_")
        pos = self._positive_label()
        scores = positive_scores(self.estimator_, X, self.response_method_, pos)
        classes = np.asarray(self.classes_)
        negative = classes[classes != pos][0]
        labels = np.array([negative, pos], dtype=classes.dtype)
        return labels[(scores >= self.decision_threshold_).astype(int)]

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the estimator, unchanged.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples, as the estimator takes them.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities of the estimator, unchanged.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples, as the estimator takes them.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, 2)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the estimator, unchanged.

        Compare it with ``decision_threshold_`` (when ``response_method_`` is
        ``"decision_function"``), not with 0.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples, as the estimator takes them.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Scores of ``classes_[1]``.
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.decision_function(X)

    def get_metadata_routing(self):
        """Get metadata routing of this object.

        Returns
        -------
        routing : MetadataRouter
            Routes ``fit`` parameters to the estimator's ``fit`` and the
            splitter's ``split``.
        """
        return (
            MetadataRouter(owner=self)
            .add(
                estimator=self.estimator,
                method_mapping=MethodMapping().add(callee="fit", caller="fit"),
            )
            .add(
                splitter=self.cv,
                method_mapping=MethodMapping().add(callee="split", caller="fit"),
            )
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.sparse = get_tags(self.estimator).input_tags.sparse
        return tags
