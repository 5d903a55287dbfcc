"""What ZErrorRegressor and ZErrorClassifier share: parameters and the two-run plan.

A fit validates its inputs and parameters once, resolves them into
:class:`~sk_zerror._training.RunSettings`, trains a first run over every row
(:func:`~sk_zerror._training.train_run`), asks the task's ledger rule which
rows are wrong, retrains without them, and only then sets the fitted
attributes.
"""

import copy
from functools import partial
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    validate_data,
)

from ._inputs import check_features, is_dataset, is_table
from ._ledger import LEDGERS, zscore_outliers
from ._losses import WINDOWS
from ._network import ACTIVATIONS, make_mlp, subset_rows
from ._schedule import PLATEAU, SCHEDULES
from ._training import (
    OPTIMIZERS,
    RunSettings,
    describe,
    hold_out_is_usable,
    network_outputs,
    resolve_device,
    train_run,
)
from ._zscore import CENTERS, SCALES, TAILS

__all__ = ["ZErrorBase", "resolve_device"]

# skorch's double-underscore parameters the estimators pass on to the net.
ROUTED_PREFIXES = ("module__", "optimizer__", "iterator_train__", "iterator_valid__")
# Routed parameters the estimators set themselves, and why a user may not.
RESERVED = {
    "optimizer__weight_decay": "use weight_decay",
    "iterator_train__batch_size": "use batch_size",
    "iterator_valid__batch_size": "use batch_size",
    "iterator_train__shuffle": "training batches are always shuffled",
    "iterator_train__dataset": "the estimators build the dataset",
    "iterator_valid__dataset": "the estimators build the dataset",
}
# The user's collate functions: they collate the features only
# (:class:`~sk_zerror._network.CollateFeatures`).
COLLATE_PARAMS = ("iterator_train__collate_fn", "iterator_valid__collate_fn")
# Fewest rows of a class that a retrain without the outliers keeps.
MIN_CLASS_ROWS = 2
# What scikit-learn's input validation records on the estimator.
INPUT_ATTRIBUTES = ("n_features_in_", "feature_names_in_")


def make_module(spec, n_features, n_outputs):
    """A fresh network: the default MLP, a copy of an instance, or a class's."""
    module, module_params, hidden_layer_sizes, activation, dropout = spec
    if module is None:
        return make_mlp(n_features, n_outputs, hidden_layer_sizes, activation, dropout)
    if isinstance(module, torch.nn.Module):
        # Never train the user's own instance.
        return copy.deepcopy(module)
    return module(**(module_params or {}))


def first_run_epochs(max_epochs, retrains, stops_early):
    """Epochs of the first run: ``max_epochs``, or its first half.

    A fit that may retrain without the outliers shares ``max_epochs``
    between its two runs. Early stopping ends the first run where the errors
    begin to be learnt and leaves the rest to the retrain; without it, the
    first run trains ``max_epochs // 2`` epochs (the default length of the
    sigma schedule) and the retrain the others.
    """
    if retrains and not stops_early:
        return max(1, max_epochs // 2)
    return max_epochs


def retrain_epochs(first, max_epochs):
    """Epochs of the retrain without the outliers, after the run ``first``.

    What the first run left of ``max_epochs``, so that both runs together
    train ``max_epochs``, as one run would. After early stopping, never
    fewer than the first run took to its best epoch (the rows without the
    errors need no longer a run), and a whole run when the first trained
    every epoch.
    """
    if first.best_epoch is None:
        return max(1, max_epochs - first.epochs)
    if first.epochs >= max_epochs:
        return max_epochs
    return max(max_epochs - first.epochs, first.best_epoch)


def rows_to_retrain(outlier_mask, labels=None):
    """Rows of the retrain without the outliers, or None for no retrain.

    With class ``labels`` (encoded 0..K-1), a class keeps all its rows when
    fewer than two would be left, so that the retrained network still knows
    every class.
    """
    if not outlier_mask.any():
        return None
    keep = ~outlier_mask
    if labels is not None:
        for label in np.unique(labels):
            rows = labels == label
            if np.count_nonzero(keep & rows) < MIN_CLASS_ROWS:
                keep[rows] = True
    return None if keep.all() else keep


class ZErrorBase(BaseEstimator):
    """Training of a skorch network with a Z-Error loss, for both tasks.

    Subclasses define ``__init__`` (the parameters), ``fit`` (target
    encoding, then :meth:`_fit_runs`), ``_loss(n_outputs)`` (the loss class
    with its task options), ``_find_outliers`` (the task's ledger rule), the
    early-stopping score (``_stopping_loss``, recorded as ``_stopping_key``;
    None stops on the net's ``valid_loss``), ``_ledger_predictions`` (what
    the ledger averages per row, or None) and ``_retrain_masks`` (whether
    the retrain masks, and so adds to the ledger, or is a plain refit).
    """

    _ledger_predictions = None

    _parameter_constraints: dict = {
        "module": [None, callable],
        "module_params": [None, dict],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), callable],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "sigma": [Interval(Real, 0, None, closed="neither"), "array-like"],
        "sigma_start": [None, Interval(Real, 0, None, closed="neither")],
        "anneal": [StrOptions(set(SCHEDULES))],
        "anneal_epochs": [None, Interval(Integral, 0, None, closed="left")],
        "warmup_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({PLATEAU}),
        ],
        "center": [StrOptions(set(CENTERS))],
        "scale": [StrOptions(set(SCALES))],
        "tail": [StrOptions(set(TAILS))],
        "window": [StrOptions(set(WINDOWS))],
        "momentum": [Interval(Real, 0, 1, closed="right")],
        "ledger": [StrOptions(set(LEDGERS))],
        "retrain_without_outliers": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [None, Interval(Real, 0, None, closed="left")],
        "device": [str],
        "mixed_precision": ["boolean"],
        "accelerator": [None, HasMethods(["prepare", "backward"])],
        "callbacks": [None, list],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- skorch's double-underscore parameters -----------------------------

    def _routed_params(self):
        return {key: value for key, value in vars(self).items() if "__" in key[1:]}

    def get_params(self, deep=True):
        return {**super().get_params(deep=deep), **self._routed_params()}

    def set_params(self, **params):
        routed = [key for key in params if key.startswith(ROUTED_PREFIXES)]
        vars(self).update({key: params.pop(key) for key in routed})
        return super().set_params(**params)

    def _check_routed(self):
        """The routed parameters: the module's, the net's, and the collate functions.

        A collate function given for one iterator only serves both: one that
        pads variable-length samples for training is needed to predict too.
        """
        module_params, net_params = {}, {}
        for key, value in self._routed_params().items():
            if not key.startswith(ROUTED_PREFIXES):
                raise ValueError(
                    f"{type(self).__name__} got an unknown parameter {key!r}: "
                    "the double-underscore parameters are skorch's "
                    + ", ".join(f"{prefix}*" for prefix in ROUTED_PREFIXES)
                    + "."
                )
            if key in RESERVED:
                raise ValueError(f"{key} cannot be set: {RESERVED[key]}.")
            if key.startswith("module__"):
                module_params[key[len("module__") :]] = value
            else:
                net_params[key] = value
        if module_params and (
            self.module is None or isinstance(self.module, torch.nn.Module)
        ):
            raise ValueError(
                f"module__{next(iter(module_params))} needs a module class (it "
                "is passed to the class); module is "
                f"{'None (the default MLP)' if self.module is None else 'an instance'}."
            )
        clash = set(module_params) & set(self.module_params or {})
        if clash:
            raise ValueError(
                f"module__{clash.pop()} is also in module_params: set it once."
            )
        collate = [net_params.pop(key, None) for key in COLLATE_PARAMS]
        for key, function in zip(COLLATE_PARAMS, collate, strict=True):
            if function is not None and not callable(function):
                raise TypeError(
                    f"{key} must be a function of a list of feature samples, "
                    f"got {function!r}."
                )
        train, valid = collate
        return module_params, net_params, (train or valid, valid or train)

    # -- validation, once, at fit ------------------------------------------

    def _validate_training_data(self, X, y, sample_weight, **y_params):
        """Inputs, targets and weights for fit, recording nothing on the estimator.

        scikit-learn's validation sets ``n_features_in_`` (and
        ``feature_names_in_``) on the estimator it is given; it is given a
        shallow copy, and :meth:`_set_fitted` copies them over at the end.
        Returns ``X`` (:func:`~sk_zerror._inputs.check_features`), ``y``,
        the weights and the copy.
        """
        name = type(self).__name__
        if y is None and is_dataset(X):
            raise ValueError(
                f"{name} needs y with a Dataset X: pass the targets as y (for a "
                "Dataset of (x, y) pairs, y = np.array([t for _, t in dataset])); "
                "they are read once, before training, to encode them."
            )
        record = copy.copy(self)
        X, y, n_samples = check_features(
            X, lambda X_, **check: validate_data(record, X_, y, **check, **y_params)
        )
        rows = np.empty((n_samples, 0))
        check_consistent_length(rows, y)
        sample_weight = _check_sample_weight(
            sample_weight, rows, ensure_non_negative=True
        )
        return X, y, sample_weight, record

    def _hidden_layer_sizes(self):
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if (
            sizes.ndim != 1
            or not np.issubdtype(sizes.dtype, np.integer)
            or (sizes < 1).any()
        ):
            raise ValueError(
                "hidden_layer_sizes must be a sequence of positive integers, "
                f"got {self.hidden_layer_sizes!r}."
            )
        return [int(s) for s in sizes]

    def _run_settings(self, X, n_outputs, sigma):
        """The settings of this fit's training runs on ``X``, validated and resolved."""
        n_features = X.shape[1] if is_table(X) else None
        if self.module is None and n_features is None:
            raise ValueError(
                "module=None builds a multi-layer perceptron for 2-D tables "
                f"(n_samples, n_features); X is {describe(X)}: pass a torch "
                "module that takes it as module=."
            )
        device = resolve_device(self.device) if self.accelerator is None else None
        module_params, net_params, (collate, valid_collate) = self._check_routed()
        spec = (
            self.module,
            {**(self.module_params or {}), **module_params},
            self._hidden_layer_sizes() if self.module is None else None,
            self.activation,
            self.dropout,
        )
        criterion = partial(
            self._loss(n_outputs),
            center=self.center,
            scale=self.scale,
            tail=self.tail,
            window=self.window,
            momentum=self.momentum,
            # Only an accelerated fit shards its batches across processes; a
            # plain fit in each process of a job has the whole batch.
            sync_statistics="auto" if self.accelerator is not None else False,
            check_input=False,
        )
        return RunSettings(
            build_module=partial(make_module, spec, n_features, n_outputs),
            n_outputs=n_outputs,
            make_criterion=criterion,
            optimizer=OPTIMIZERS.get(self.optimizer, self.optimizer),
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            sigma=sigma,
            sigma_start=self.sigma_start,
            anneal=self.anneal,
            anneal_epochs=(
                self.max_epochs // 2
                if self.anneal_epochs is None
                else self.anneal_epochs
            ),
            warmup_epochs=self.warmup_epochs,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            stratified=is_classifier(self),
            stopping_key=self._stopping_key,
            stopping_loss=self._stopping_loss,
            device=device,
            accelerator=self.accelerator,
            verbose=self.verbose,
            callbacks=list(self.callbacks or []),
            ledger_predictions=self._ledger_predictions,
            mixed_precision=self.mixed_precision,
            net_params=net_params,
            collate_fn=collate,
            valid_collate_fn=valid_collate,
        )

    # -- the two-run plan --------------------------------------------------

    def _seed(self):
        """A run's seed: the same for every run with an integer random_state."""
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def _fit_runs(self, settings, X, target, sample_weight, labels=None):
        """The first run over every row, then the retrain without its outliers.

        Returns the runs (:class:`~sk_zerror._training.RunResult`) and the
        task's :class:`~sk_zerror._ledger.Outliers`. ``labels`` (classes
        encoded 0..K-1) keep every class in the retrain.
        """
        stops_early = settings.early_stopping and hold_out_is_usable(
            len(target), target, settings.validation_fraction, settings.stratified
        )
        epochs = first_run_epochs(
            self.max_epochs, self.retrain_without_outliers, stops_early
        )
        first = train_run(
            settings, X, target, sample_weight, seed=self._seed(), max_epochs=epochs
        )
        runs = [first]
        outliers = self._find_outliers(settings, runs, X, target, None)
        keep = None
        if self.retrain_without_outliers:
            keep = rows_to_retrain(outliers.mask, labels)
        if keep is not None:
            rows = np.flatnonzero(keep)
            retrain = train_run(
                settings,
                subset_rows(X, rows),
                target[rows],
                sample_weight[rows],
                seed=self._seed(),
                max_epochs=retrain_epochs(first, self.max_epochs),
                masking=self._retrain_masks,
            )
            runs.append(retrain)
            if self._retrain_masks:
                outliers = self._find_outliers(settings, runs, X, target, keep)
        return runs, outliers

    def _zscore_outliers(self, settings, run, X, target):
        """The Z-Error rule on one pass of ``run``'s network over every row.

        The pass scores every training row as one batch (the note's
        whole-dataset statistics); with ``ledger="training"`` the rows the
        run trained on are scored by their mean z-score in their batches.
        """
        whole_set = settings.make_criterion(
            sigma=settings.sigma, window="batch", sync_statistics=False
        )
        target = torch.as_tensor(target)
        if target.is_floating_point():
            target = target.double()
        outputs = network_outputs(run.net, X, len(target)).double()
        return zscore_outliers(
            run.ledger,
            whole_set.evaluate(outputs, target),
            rule=self.ledger,
            sigma=settings.sigma,
            tail=self.tail,
        )

    def _set_fitted(self, record, runs, outliers, **attributes):
        """Every fitted attribute, at the end of ``fit``."""
        for name in INPUT_ATTRIBUTES:
            if hasattr(record, name):
                setattr(self, name, getattr(record, name))
            elif name in vars(self):
                delattr(self, name)
        self.net_ = runs[-1].net
        self.run_histories_ = [run.history for run in runs]
        self.outlier_mask_ = outliers.mask
        self.outlier_scores_ = outliers.scores
        self.outlier_frequency_ = outliers.frequency
        for name, value in attributes.items():
            setattr(self, name, value)
        return self

    # -- prediction ---------------------------------------------------------

    def _forward(self, X):
        """Raw network outputs for new data, as a float64 array (n, n_outputs)."""
        check_is_fitted(self)

        def validate(X_, **check):
            if isinstance(X_, str):  # a dict or Dataset: nothing more to check
                return None
            return validate_data(self, X_, reset=False, **check)

        X, _, n_samples = check_features(X, validate)
        return network_outputs(self.net_, X, n_samples).double().numpy()
