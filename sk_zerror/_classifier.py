"""ZErrorClassifier: a neural-network classifier that forgets mislabelled rows."""

from functools import partial
from numbers import Real

import numpy as np
import torch
from scipy.special import expit
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._base import ZErrorBase
from ._cutoffs import gaussian_cutoff, skewnorm_cutoff
from ._ledger import label_outliers, run_probabilities
from ._losses import BINARY_SPACES, ZErrorBCEWithLogitsLoss, ZErrorCrossEntropyLoss
from ._training import network_outputs

__all__ = ["ZErrorClassifier"]


def class_probabilities(outputs):
    """Class probabilities (n, K) of outputs: one logit (K = 2) or one per class."""
    if outputs.shape[1] == 1:
        positive = torch.sigmoid(outputs[:, 0])
        return torch.stack([1 - positive, positive], dim=1)
    return torch.softmax(outputs, dim=1)


class ZErrorClassifier(ClassifierMixin, ZErrorBase):
    """Neural-network classifier that finds and forgets mislabelled rows.

    A first training run over every row, stopped early on a hold-out before
    the network memorises the wrong labels, records each row's predicted
    probabilities over the run; the rows whose labels they find likely wrong
    (``outlier_mask_``) are left out of a second training from scratch, whose
    network is the fitted one. With a ``sigma``, the loss is the Z-Error
    cross-entropy: within each batch the given-class logits of each class are
    modelled by their own Gaussian (the note's per-class Gaussians), and
    samples further than ``sigma`` standard deviations below their class
    centre are left out of the loss. By default nothing is masked within the
    batches: on the masking study's panel (nonlinear problems and tables,
    clean and noisy) in-batch masking earned its place on no problem and
    refused the rows a curved boundary is made of, while the early stopping,
    the training-run ledger and the retrain did the work. Two classes use one
    logit and :class:`ZErrorBCEWithLogitsLoss`, more classes
    :class:`ZErrorCrossEntropyLoss`.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=None
        The network. ``None`` builds a multi-layer perceptron from
        ``hidden_layer_sizes``, ``activation`` and ``dropout``, sized from the
        data. An instance is deep-copied before training (never modified); a
        class is instantiated with ``module_params``. It takes a batch of
        ``X`` as skorch gives it (a float32 tensor of shape (batch, ...); a
        dict X as keyword arguments of ``forward``) and returns logits of
        shape (batch, 1) for two classes, or (batch, n_classes) for more,
        which is checked on the first two samples before training. The
        default MLP takes 2-D tables only.
    module_params : dict, default=None
        Keyword arguments for ``module`` when it is a class.
    hidden_layer_sizes : sequence of int, default=(100,)
        Widths of the hidden layers of the default MLP.
    activation : {"relu", "tanh", "gelu", "logistic", "identity"}, default="relu"
        Hidden activation of the default MLP.
    dropout : float, default=0.0
        Dropout probability after each hidden layer of the default MLP.
    optimizer : {"adam", "adamw", "sgd"} or torch optimizer class, default="adam"
        Optimizer.
    lr : float, default=1e-2
        Learning rate.
    weight_decay : float, default=0.0
        L2 penalty passed to the optimizer.
    batch_size : int, default=256
        Mini-batch size. The z-scores are batch statistics, so batches under
        ~96 are noisy (the note's limitation); ``window="running"``
        helps there.
    max_epochs : int, default=300
        Most passes over the training data, of both runs together with
        ``retrain_without_outliers`` (see there); early stopping usually
        ends each run long before.
    sigma : float, array-like of shape (n_classes,) or None, default=None
        Inlier threshold of the in-batch mask, in standard deviations of the
        class's given-class logits; one value per class (in the order of
        ``classes_``) gives each class its own threshold. ``None`` (the
        default) masks nothing within the batches (see above); the note's
        method is ``sigma=2.0, sigma_start=10.0, anneal_epochs=max_epochs,
        center="mean", scale="std", tail="both"``. A sigma is needed by
        ``ledger="final"``; the fitted cutoffs of ``threshold`` use 2 when
        it is None.
    sigma_start : float or None, default=None
        Threshold of the first epoch, moved linearly to ``sigma``; ``None``
        masks at ``sigma`` from the first step. The note anneals from a wide
        10 down to 2.
    anneal : {"linear", "cosine", "exponential"}, default="linear"
        Shape of the annealing path; ``"linear"`` is the note's.
    anneal_epochs : int or None, default=None
        Epochs from ``sigma_start`` to ``sigma``. ``None`` anneals over the
        first half of ``max_epochs`` so the second half trains at ``sigma``;
        ``max_epochs`` reproduces the note, which anneals over all epochs.
    warmup_epochs : int or "plateau", default=0
        Initial epochs without any masking. ``"plateau"`` holds the masking
        off until the training loss flattens (its best over the last 5
        epochs less than 1% below the best before them): rows a network
        learns late, those a curved boundary is made of, are learnt before
        any is refused (:class:`SigmaScheduler`).
    space : {"logit", "probability"}, default="logit"
        Where each class's distribution is modelled: the given-class logit
        (the note's preference), or the predicted probability of the given
        label (binary) or its logarithm (multi-class).
    threshold : float or {"gaussian", "skewnorm"}, default=0.0
        Logit cutoff of binary ``predict``: a sample is predicted positive
        (``classes_[1]``) when its logit is at or above it; 0 is probability
        0.5. ``"gaussian"`` sets it, after training, where the Gaussians of
        the two classes' inlier logits on the whole training set cross
        (:func:`gaussian_cutoff`); ``"skewnorm"`` where skew-normals of their
        probabilities cross (:func:`skewnorm_cutoff`). A cutoff learnt on
        the training set is optimistic: :class:`ZThresholdCalibrator` sets it
        on held-out data instead.
    center : {"mean", "median"}, default="median"
        Location of each class's scores in the batch. The median is not
        pulled by the mislabelled samples; the note's ``"mean"`` is.
    scale : {"std", "mad"}, default="mad"
        Spread of each class's scores: the median absolute deviation, or the
        note's standard deviation, which a cluster of 30% flipped labels
        inflates so much that it hides within 1.5 of it.
    tail : {"both", "lower", "upper"}, default="lower"
        Which side is masked. ``"lower"`` (the default) masks only samples
        much *less* confident in their label than their class, so a
        correctly labelled, very confident sample is never refused;
        ``"both"`` is the note's two-sided rule.
    window : {"batch", "running"}, default="batch"
        Where the statistics come from: each batch (the note), or exponential
        running statistics across batches (for small batches).
    momentum : float, default=0.1
        Weight of the current batch in the running statistics.
    ledger : {"training", "final"}, default="training"
        What ``outlier_scores_`` and ``outlier_mask_`` are made of.
        ``"training"``: each row's predicted class probabilities averaged over
        the training run (its mean over its training batches; for a row a run
        did not train on, that run's final prediction), and over both runs
        when the network is retrained; :func:`find_label_outliers` then
        estimates the number of label errors of each pair of given and likely
        class on these probabilities (``count="stratified"``: more errors
        among the ambiguous rows than among the clear ones) and flags that
        many rows (rows stand out early in training, before a network can
        memorise them).
        ``"final"``: the Z-Error rule (``sigma``, ``tail``) on one pass over
        the whole training set after training (the note's whole-dataset
        statistics).
    retrain_without_outliers : bool, default=True
        After training, train a second network from scratch, with the same
        settings, on the rows that ``outlier_mask_`` does not flag (a class
        that would keep fewer than two rows keeps all of them); the second
        network is the fitted one. A network that never sees the wrong labels
        cannot learn them, which masking within batches only approximates.
        Nothing flagged, nothing retrained. The two runs share
        ``max_epochs``: early stopping ends the first, and the second gets
        the epochs left, but never fewer than the first took to its best
        epoch (a whole run if the first used every epoch); without early
        stopping (or a hold-out too small for it), each run trains half.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the data, stop when its log-loss
        (of every hold-out row, unmasked: the net's ``valid_loss``) has
        not improved for ``n_iter_no_change`` epochs, and keep the weights of
        the best epoch: a guard against memorising the errors, whose wrong
        labels in the hold-out make a memorising network's loss rise. The
        score does not depend on ``sigma``, so the stopping works with any
        schedule. Without at least 10 hold-out rows (and two rows of each
        class) the fit uses every row and stops after ``max_epochs``.
    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping=True``.
    n_iter_no_change : int, default=10
        Patience of the early stopping, and of ``tol``'s.
    tol : float or None, default=None
        Stopping by convergence, scikit-learn's MLP rule: a run without a
        hold-out (``early_stopping=False``, or too few rows for one) stops
        once its training loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs; ``max_epochs`` is then a ceiling, as
        ``max_iter`` is. ``None`` trains every epoch.
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``), or ``"auto"`` (CUDA when
        available). Ignored when ``accelerator`` is set.
    mixed_precision : bool, default=False
        Run the module's forward under ``torch.autocast`` in bfloat16 (on
        CUDA, or the CPU), for speed and memory on large networks; the
        outputs are cast back to float32 before the loss, so the batch
        statistics, the mask and the ledger keep full precision. Ignored
        with ``accelerator``, whose own ``mixed_precision`` setting applies.
    accelerator : accelerate.Accelerator, default=None
        Train data-parallel through `accelerate
        <https://huggingface.co/docs/accelerate>`_ (``accelerate launch``,
        ``torchrun``; extra ``distributed``), on the accelerator's device.
        Every process fits the same data; each trains on its shard of every
        batch (``batch_size`` rows per process, unless the accelerator splits
        batches), the loss statistics are those of the whole batch, and the
        fitted estimator is the same in every process. See the user guide,
        "Scaling out".
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks (or ``(name, callback)`` pairs), copied at fit.
    verbose : int, default=0
        0 is silent, 1 prints skorch's epoch table, 2 also shows a progress bar.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and dropout. Training runs on
        its own torch random stream, so the caller's generator is untouched.
    **routed : skorch's double-underscore parameters
        ``module__<name>`` (arguments of a ``module`` class, with
        ``module_params``), ``optimizer__<name>`` (e.g. ``momentum``),
        ``iterator_train__<name>`` and ``iterator_valid__<name>`` (DataLoader
        options such as ``num_workers``, ``pin_memory``), passed to skorch as
        they are; ``get_params``, ``set_params`` and ``clone`` keep them.
        ``iterator_train__collate_fn`` and ``iterator_valid__collate_fn``
        collate the features only: the function receives the list of a
        batch's feature samples (the ``x`` of a Dataset's ``(x, y)`` pairs,
        the rows of arrays) and returns what ``forward`` takes (a tensor, or
        a dict keyed by its arguments), while the estimator batches the
        targets, weights and row index; the first collates training batches,
        the second the hold-out's and ``predict``'s, and one given alone
        serves both (see the user guide, "Inputs and modules").
        Refused at fit, with the reason: other prefixes,
        ``optimizer__weight_decay`` (use ``weight_decay``), ``module__*``
        without a module class, and the iterators' ``batch_size``,
        ``shuffle`` and ``dataset`` (the estimators batch their inputs with
        the training-row index the ledger needs).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (any type, strings included).
    net_ : skorch.NeuralNet
        The trained network (the retrained one with
        ``retrain_without_outliers=True``); ``net_.history`` holds the loss,
        ``sigma``, ``masked_fraction`` and ``valid_loss`` of every epoch.
    run_histories_ : list of skorch.history.History
        The history of each training run: the first, over every row (what
        ``outlier_frequency_`` counts), then the retrain's, if there was one
        (``net_.history``).
    decision_threshold_ : float or None
        Logit cutoff used by binary ``predict``; None with more classes.
    cutoff_ : Cutoff or None
        With ``threshold="gaussian"`` or ``"skewnorm"``, the fitted cutoff
        and its two per-class distributions (for plotting); else None.
    outlier_mask_ : ndarray of shape (n_samples,), dtype=bool
        True for the likely label errors among the training rows: with
        ``ledger="training"``, the rows :func:`find_label_outliers` flags on
        the training runs' mean probabilities; with ``"final"``, the rows
        whose ``outlier_scores_`` lie beyond ``sigma`` on the tested ``tail``.
    outlier_scores_ : ndarray of shape (n_samples,)
        Z-score of each training row's given-class log-odds within the rows
        of its class (negative: less confident in its label than its class's
        typical row; median/MAD or mean/std as ``center`` and ``scale``):
        with ``ledger="training"`` of the training runs' mean probabilities,
        with ``"final"`` of the final network's logits. With ``"training"``
        the flagged rows are mostly the lowest-scored of their class, but the
        number of errors estimated for each class pair, not a threshold on
        the score, decides; scores of different classes do not compare.
    outlier_frequency_ : ndarray of shape (n_samples,)
        Fraction of the first training run's epochs in which the row was
        masked in its batch (NaN for rows held out for early stopping).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when X has string column names.

    See Also
    --------
    ZErrorRegressor : The regression counterpart.
    ZErrorCrossEntropyLoss : The loss, for any torch or skorch training loop.

    Notes
    -----
    The binary ``decision_function`` returns the logit, so scikit-learn's
    :class:`~sklearn.model_selection.FixedThresholdClassifier` and
    :class:`~sklearn.model_selection.TunedThresholdClassifierCV` work on it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from sk_zerror import ZErrorClassifier
    >>> X, y = make_classification(n_samples=400, n_informative=4,
    ...                            class_sep=2.0, random_state=0)
    >>> y_noisy = y.copy()
    >>> y_noisy[:20] = 1 - y_noisy[:20]  # 20 flipped labels
    >>> clf = ZErrorClassifier(max_epochs=40, random_state=0).fit(X, y_noisy)
    >>> clf.classes_
    array([0, 1])
    >>> clf.predict_proba(X[:3]).shape
    (3, 2)
    >>> bool(clf.outlier_mask_[:20].mean() > clf.outlier_mask_[20:].mean())
    True
    """

    _parameter_constraints: dict = {
        **ZErrorBase._parameter_constraints,
        "sigma": [None, Interval(Real, 0, None, closed="neither"), "array-like"],
        "space": [StrOptions(set(BINARY_SPACES))],
        "threshold": [Real, StrOptions({"gaussian", "skewnorm"})],
    }

    def __init__(
        self,
        *,
        module=None,
        module_params=None,
        hidden_layer_sizes=(100,),
        activation="relu",
        dropout=0.0,
        optimizer="adam",
        lr=1e-2,
        weight_decay=0.0,
        batch_size=256,
        max_epochs=300,
        sigma=None,
        sigma_start=None,
        anneal="linear",
        anneal_epochs=None,
        warmup_epochs=0,
        space="logit",
        threshold=0.0,
        center="median",
        scale="mad",
        tail="lower",
        window="batch",
        momentum=0.1,
        ledger="training",
        retrain_without_outliers=True,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=None,
        device="cpu",
        mixed_precision=False,
        accelerator=None,
        callbacks=None,
        verbose=0,
        random_state=None,
        **routed,
    ):
        self.module = module
        self.module_params = module_params
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.sigma = sigma
        self.sigma_start = sigma_start
        self.anneal = anneal
        self.anneal_epochs = anneal_epochs
        self.warmup_epochs = warmup_epochs
        self.space = space
        self.threshold = threshold
        self.center = center
        self.scale = scale
        self.tail = tail
        self.window = window
        self.momentum = momentum
        self.ledger = ledger
        self.retrain_without_outliers = retrain_without_outliers
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.mixed_precision = mixed_precision
        self.accelerator = accelerator
        self.callbacks = callbacks
        self.verbose = verbose
        self.random_state = random_state
        # skorch's double-underscore parameters (module__*, optimizer__*,
        # iterator_train__*, iterator_valid__*), checked at fit.
        vars(self).update(routed)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Train the network and record the training-set label outliers.

        Parameters
        ----------
        X : array-like, sparse matrix, tensor, dict or Dataset
            Training data of n_samples: an array or tensor of shape
            (n_samples, ...) (pandas DataFrames set ``feature_names_in_``), a
            scipy sparse matrix (made dense one batch at a time), a dict of
            such arrays keyed by the module's ``forward`` arguments (skorch's
            ``SliceDict`` for scikit-learn's searches), or a torch
            ``Dataset`` or skorch ``SliceDataset`` (read batch by batch; ``y``
            is then required). See the user guide, "Inputs and modules".
        y : array-like of shape (n_samples,)
            Class labels, of any type.
            Required, with a Dataset ``X`` too: ``None`` is refused with
            the reason.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the masked mean of the loss.

        Returns
        -------
        self : ZErrorClassifier
            The fitted estimator.
        """
        X, y, sample_weight, record = self._validate_training_data(X, y, sample_weight)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        classes = encoder.classes_
        if len(classes) < 2:
            raise ValueError(
                "ZErrorClassifier needs samples of at least two classes in the "
                f"data; got only one class: {classes.tolist()[0]!r}."
            )
        sigma = self._sigma_of(len(classes))
        if sigma is None and self.ledger == "final":
            raise ValueError(
                "ledger='final' flags by the Z-Error rule, which needs a sigma; "
                "set sigma (the note's is 2.0) or use ledger='training'."
            )
        y_encoded = encoder.transform(y)
        if len(classes) == 2:
            target, n_outputs = y_encoded.astype(np.float32), 1
        else:
            target, n_outputs = y_encoded.astype(np.int64), len(classes)
        # No sigma: an infinite one, which masks only non-finite logits.
        settings = self._run_settings(X, n_outputs, np.inf if sigma is None else sigma)
        runs, outliers = self._fit_runs(
            settings, X, target, sample_weight, labels=y_encoded
        )
        cutoff, threshold = None, None
        if len(classes) == 2:
            cutoff, threshold = self._binary_threshold(runs[-1], X, y_encoded, sigma)
        return self._set_fitted(
            record,
            runs,
            outliers,
            classes_=classes,
            cutoff_=cutoff,
            decision_threshold_=threshold,
        )

    def _sigma_of(self, n_classes):
        """The target sigma: None, a float, or one value per class."""
        if self.sigma is None:
            return None
        sigma = np.asarray(self.sigma, dtype=float)
        if sigma.ndim == 0:
            return float(sigma)
        if sigma.shape != (n_classes,) or not (sigma > 0).all():
            raise ValueError(
                f"sigma must be a positive number or {n_classes} positive values "
                f"(one per class), got {self.sigma!r}."
            )
        return sigma

    # The retrain without the flagged rows masks too, and its ledger joins
    # the first run's.
    _retrain_masks = True

    def _find_outliers(self, settings, runs, X, target, kept):
        """The label ledger after the runs so far (``kept``: the retrain's rows).

        ``ledger="final"`` is the Z-Error rule on the last network's pass
        over the whole set; ``"training"`` flags on the runs' mean
        probabilities (:func:`~sk_zerror._ledger.label_outliers`).
        """
        frequency = runs[0].ledger.frequency
        if self.ledger == "final":
            outliers = self._zscore_outliers(settings, runs[-1], X, target)
            return outliers._replace(frequency=frequency)
        n = len(target)
        # The rows each run trained on: every row, then the retrain's.
        rows = [np.arange(n), *([np.flatnonzero(kept)] if kept is not None else [])]
        proba = [
            run_probabilities(
                run.ledger,
                class_probabilities(network_outputs(run.net, X, n).double()).numpy(),
                trained_rows,
            )
            for run, trained_rows in zip(runs, rows, strict=True)
        ]
        labels = target if target.dtype == np.int64 else target.astype(np.int64)
        return label_outliers(
            labels, proba, frequency, center=self.center, scale=self.scale
        )

    # The hold-out's early-stopping score is the net's own valid_loss: the
    # unmasked log-loss of every hold-out row. Memorised wrong labels make
    # confident wrong predictions on the hold-out's wrong labels, which this
    # loss punishes most; a trimmed loss would ignore them and stop later.
    _stopping_key = "valid_loss"
    _stopping_loss = None
    _ledger_predictions = staticmethod(class_probabilities)

    def _loss(self, n_outputs):
        if n_outputs == 1:
            return partial(ZErrorBCEWithLogitsLoss, space=self.space)
        space = "log_probability" if self.space == "probability" else "logit"
        return partial(ZErrorCrossEntropyLoss, space=space)

    def _binary_threshold(self, run, X, y_encoded, sigma):
        """The cutoff (or None) and the logit threshold of binary ``predict``.

        A fixed ``threshold``, or one fitted on the final network's logits of
        the training rows.
        """
        if not isinstance(self.threshold, str):
            return None, float(self.threshold)
        logits = network_outputs(run.net, X, len(y_encoded)).reshape(-1)
        logits = logits.double().numpy()
        # Without an in-batch sigma, the cutoffs' own inlier threshold.
        options = dict(pos_label=1) if sigma is None else dict(sigma=sigma, pos_label=1)
        if self.threshold == "gaussian":
            cutoff = gaussian_cutoff(logits, y_encoded, **options)
        else:
            cutoff = skewnorm_cutoff(expit(logits), y_encoded, **options)
        return cutoff, float(cutoff.threshold)

    def decision_function(self, X):
        """Logits of the network.

        Parameters
        ----------
        X : array-like, sparse matrix, tensor, dict or Dataset
            Samples, of the kind given to ``fit``.

        Returns
        -------
        logits : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The logit of ``classes_[1]`` for two classes, else one logit per
            class.
        """
        out = self._forward(X)
        return out[:, 0] if len(self.classes_) == 2 else out

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like, sparse matrix, tensor, dict or Dataset
            Samples, of the kind given to ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        return class_probabilities(torch.as_tensor(self._forward(X))).numpy()

    def predict(self, X):
        """Predict class labels.

        Binary predictions compare the logit with ``decision_threshold_``;
        multi-class predictions take the largest logit.

        Parameters
        ----------
        X : array-like, sparse matrix, tensor, dict or Dataset
            Samples, of the kind given to ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, from ``classes_``.
        """
        check_is_fitted(self)
        logits = self.decision_function(X)
        if logits.ndim == 1:
            return self.classes_[(logits >= self.decision_threshold_).astype(int)]
        return self.classes_[np.argmax(logits, axis=1)]
