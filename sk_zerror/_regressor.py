"""ZErrorRegressor: a neural-network regressor that forgets gross target errors."""

from functools import partial
from numbers import Real

import numpy as np
import torch
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import ZErrorBase
from ._inputs import as_float32
from ._losses import REGRESSION_VALUES, ZErrorMSELoss
from ._scoring import trimmed_mean_squared_error
from ._zscore import group_statistics, rounding_eps, usable_groups


def _target_statistics(y, center, scale):
    """Centre and spread, per column of ``y``, that standardise the targets.

    They are the masking core's statistics of the targets with the
    estimator's ``center`` and ``scale``, so that with the robust pair the
    gross errors being looked for do not inflate the spread and squash the
    clean targets into a narrow band (which slows learning under heavy
    contamination). Where the core finds no usable spread, 1.
    """
    values = torch.tensor(np.asarray(y, dtype=np.float64))
    stats = group_statistics(values, None, 1, center=center, scale=scale)
    usable = usable_groups(stats, rounding_eps(torch.float64))
    spread = torch.where(usable, stats.scale, 1.0)
    return stats.center[0].numpy(), spread[0].numpy()


__all__ = ["ZErrorRegressor"]


class ZErrorRegressor(RegressorMixin, ZErrorBase):
    """Neural-network regressor trained with the Z-Error MSE loss.

    In each batch, the samples whose residual lies more than ``sigma``
    robust standard deviations from the batch centre are left out of the
    loss, so gross target errors (decimal slips, unit errors, swapped rows)
    are not learnt. By default the threshold opens from ``sigma_start=3`` to
    ``sigma=5`` over a first run of half the epochs, whose ledger records
    which rows are outliers (``outlier_mask_``); a second network, trained
    from scratch on the other rows without masking, is the fitted one.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=None
        The network. ``None`` builds a multi-layer perceptron from
        ``hidden_layer_sizes``, ``activation`` and ``dropout``, sized from the
        data. An instance is deep-copied before training (never modified); a
        class is instantiated with ``module_params``. It takes a batch of
        ``X`` as skorch gives it (a float32 tensor of shape (batch, ...); a
        dict X as keyword arguments of ``forward``) and returns (batch,),
        (batch, 1) or (batch, n_outputs), which is checked on the first two
        samples before training. The default MLP takes 2-D tables only.
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
    max_epochs : int, default=100
        Number of passes over the training data, of both runs together with
        ``retrain_without_outliers`` (see there).
    sigma : float, default=5.0
        Final inlier threshold, in robust standard deviations of the batch
        residuals.
    sigma_start : float or None, default=3.0
        Threshold of the first epoch, moved linearly to ``sigma``. The
        default starts tight and opens: gross errors are kept out from the
        first step, before the network could learn them, and the hard but
        valid rows a tight threshold would refuse for ever are let back in
        once the network fits the rest. The note anneals the other way, from
        a wide 10 down to 2. ``None`` uses ``sigma`` from the first epoch.
    anneal : {"linear", "cosine", "exponential"}, default="linear"
        Shape of the annealing path; ``"linear"`` is the note's.
    anneal_epochs : int or None, default=None
        Epochs from ``sigma_start`` to ``sigma``. ``None`` anneals over the
        first half of ``max_epochs``: the whole first run when it retrains
        without the outliers, else the second half trains at ``sigma``;
        ``max_epochs`` reproduces the note, which anneals over all epochs
        (with ``retrain_without_outliers=False``: a first run of half the
        epochs would stop half-way through such a schedule).
    warmup_epochs : int or "plateau", default=0
        Initial epochs without any masking. ``"plateau"`` holds the masking
        off until the training loss flattens (its best over the last 5
        epochs less than 1% below the best before them): rows a network
        learns late, those a curved boundary is made of, are learnt before
        any is refused (:class:`SigmaScheduler`).
    zscore_of : {"residual", "loss", "target"}, default="residual"
        What is z-scored: the signed residual, observed minus predicted (the
        note's text), the squared error, or the target itself (the note's
        code listing).
    center : {"mean", "median"}, default="median"
        Batch location. The median is not pulled by the outliers; the
        note's ``"mean"`` is.
    scale : {"std", "mad"}, default="mad"
        Batch spread: the median absolute deviation, which gross errors do
        not inflate, or the note's standard deviation, which they do (a
        cluster of 30% errors hides within sqrt(0.7 / 0.3) = 1.5 of them).
    tail : {"both", "lower", "upper"}, default="both"
        Which side of the residual distribution is masked.
    window : {"batch", "running"}, default="batch"
        Where the statistics come from: each batch (the note), or exponential
        running statistics across batches (for small batches).
    momentum : float, default=0.1
        Weight of the current batch in the running statistics.
    ledger : {"training", "final"}, default="training"
        What ``outlier_scores_`` and ``outlier_mask_`` are made of:
        ``"training"``, each row's mean z-score in its training batches over
        the whole run (rows stand out early in training, before a network
        can memorise them); ``"final"``, one pass over the whole training
        set after training (the note's whole-dataset statistics).
    retrain_without_outliers : bool, default=True
        Train a second network from scratch on the rows that the first
        run's ``outlier_mask_`` does not flag, with the same settings but no
        masking (the first run's ledger finds gross errors whole, and
        masking the rest would only refuse hard but valid rows); the second
        network is the fitted one, and the outlier attributes stay those of
        the first run, which saw every row. Nothing learnt from the errors
        before they were masked remains. The two runs share ``max_epochs``:
        the first trains ``max_epochs // 2`` epochs (over which sigma
        anneals by default) and the second the rest; with early stopping,
        the first run trains until it stops and the second gets the epochs
        left, but never fewer than the first took to its best epoch (a whole
        run if the first used every epoch). Nothing flagged, nothing
        retrained: the first run's network is the fitted one, so without
        early stopping it has trained ``max_epochs // 2`` epochs only (raise
        ``max_epochs`` for data expected to be clean).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when its trimmed
        squared error (the worst-fitted 25% of its rows left out, see
        :func:`trimmed_mean_squared_error`) has not improved for
        ``n_iter_no_change`` epochs, and keep the weights of the best epoch:
        a guard against memorising the errors. The trim does not depend on
        ``sigma``, so the stopping works with any schedule. Without at least
        10 hold-out rows (and two rows of each class) the fit uses every row
        and stops after ``max_epochs``.
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
    net_ : skorch.NeuralNet
        The trained network (the retrained one with
        ``retrain_without_outliers=True``); ``net_.history`` holds the loss,
        ``sigma`` and ``masked_fraction`` of every epoch.
    run_histories_ : list of skorch.history.History
        The history of each training run: the first, masked run over every
        row (its ``sigma`` schedule and ``masked_fraction``, what
        ``outlier_frequency_`` counts), then the retrain's, if there was
        one (``net_.history``, unmasked).
    outlier_mask_ : ndarray of shape (n_samples,), dtype=bool
        True for the training rows whose score (``outlier_scores_``) lies
        beyond the final ``sigma`` on the tested ``tail``: likely gross
        target errors. With several outputs, a row is an outlier when any of
        its outputs is.
    outlier_scores_ : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Signed z-score of each training row's residual (observed minus
        predicted: positive when the recorded target is too high): with
        ``ledger="training"`` its mean over the row's training batches,
        with ``"final"`` (and for rows held out for early stopping) that of
        a pass over the whole training set after training.
    outlier_frequency_ : ndarray of shape (n_samples,)
        Fraction of training epochs in which the row was masked in its batch
        (NaN for rows held out for early stopping).
    target_center_ : ndarray of shape (n_outputs,)
        Centre used to standardise the targets: their mean, or their median
        with ``center="median"``.
    target_scale_ : ndarray of shape (n_outputs,)
        Spread used to standardise the targets: their standard deviation, or
        with ``scale="mad"`` their median absolute deviation times 1.4826
        (the standard deviation where more than half are tied; 1 where
        zero).
    n_outputs_ : int
        Number of targets.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when X has string column names.

    See Also
    --------
    ZErrorClassifier : The classification counterpart.
    ZErrorMSELoss : The loss, for use in any torch or skorch training loop.
    sklearn.linear_model.HuberRegressor : A linear robust regressor.

    Notes
    -----
    The targets are standardised before training and predictions mapped
    back, so ``sigma`` and the learning rate do not depend on the unit of y.
    The standardisation uses the same ``center`` and ``scale`` as the
    masking: with median/MAD, gross errors do not shrink the clean targets.
    The loss is the sample-weighted mean of the squared errors of the
    inliers; masked samples get exactly zero gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_zerror import ZErrorRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 3))
    >>> y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=300)
    >>> y[:15] += 20  # gross data errors
    >>> reg = ZErrorRegressor(center="median", scale="mad", max_epochs=60,
    ...                       random_state=0).fit(X, y)
    >>> bool(reg.outlier_mask_[:15].all())
    True
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints: dict = {
        **ZErrorBase._parameter_constraints,
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "zscore_of": [StrOptions(set(REGRESSION_VALUES))],
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
        max_epochs=100,
        sigma=5.0,
        sigma_start=3.0,
        anneal="linear",
        anneal_epochs=None,
        warmup_epochs=0,
        zscore_of="residual",
        center="median",
        scale="mad",
        tail="both",
        window="batch",
        momentum=0.1,
        ledger="training",
        retrain_without_outliers=True,
        early_stopping=False,
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
        self.zscore_of = zscore_of
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Train the network and record the training-set outliers.

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
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets, of any scale.
            Required, with a Dataset ``X`` too: ``None`` is refused with
            the reason.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the masked mean of the loss.

        Returns
        -------
        self : ZErrorRegressor
            The fitted estimator.
        """
        X, y, sample_weight, record = self._validate_training_data(
            X, y, sample_weight, multi_output=True, y_numeric=True
        )
        y2d = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        n_outputs = y2d.shape[1]
        center, scale = _target_statistics(y2d, self.center, self.scale)
        y32 = as_float32((y2d - center) / scale)
        settings = self._run_settings(X, n_outputs, float(self.sigma))
        runs, outliers = self._fit_runs(settings, X, y32, sample_weight)
        return self._set_fitted(
            record,
            runs,
            outliers,
            n_outputs_=n_outputs,
            target_center_=center,
            target_scale_=scale,
            _y_1d=np.ndim(y) == 1,
        )

    # The retrain is an unmasked refit on the kept rows: the first run's
    # ledger finds gross errors whole, and masking the rest would only refuse
    # hard valid rows. The outlier attributes stay those of the first run,
    # which saw every row.
    _retrain_masks = False

    def _loss(self, n_outputs):
        return partial(ZErrorMSELoss, zscore_of=self.zscore_of)

    def _find_outliers(self, settings, runs, X, target, kept):
        return self._zscore_outliers(settings, runs[0], X, target)

    _stopping_key = "valid_trimmed_loss"

    @staticmethod
    def _stopping_loss(y, outputs):
        """The hold-out's early-stopping score, on the standardised targets.

        Gross errors would dominate a mean squared error: the worst-fitted
        quarter of the rows is left out (:func:`trimmed_mean_squared_error`).
        """
        return trimmed_mean_squared_error(y.reshape(outputs.shape), outputs)

    def predict(self, X):
        """Predict targets, in the original units of y.

        Parameters
        ----------
        X : array-like, sparse matrix, tensor, dict or Dataset
            Samples, of the kind given to ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions; 1-D when y was 1-D at fit.
        """
        out = self._forward(X) * self.target_scale_ + self.target_center_
        return out.ravel() if self._y_1d else out
