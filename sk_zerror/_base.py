"""What ZErrorRegressor and ZErrorClassifier share: parameters, training, ledger."""

import copy
from functools import partial
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import EarlyStopping, EpochScoring, ProgressBar
from skorch.dataset import ValidSplit

from ._losses import WINDOWS
from ._network import (
    ACTIVATIONS,
    FEATURES,
    ROW,
    WEIGHT,
    BatchDataset,
    OutlierLedger,
    ZErrorNet,
    collate_batch,
    make_mlp,
)
from ._schedule import SCHEDULES, SigmaScheduler
from ._zscore import CENTERS, SCALES, TAILS, inlier_mask

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


def resolve_device(device):
    """Map ``"auto"`` to CUDA when available; refuse CUDA when it is not."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was asked for but CUDA is not available; "
            "use device='cpu' or device='auto'."
        )
    try:
        torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device={device!r} is not a torch device: {exc}") from None
    return device


# What outlier_scores_ are: the mean z-score of the training run, or the
# final whole-training-set pass.
LEDGERS = ("training", "final")
# Fewest hold-out rows that early stopping scores.
MIN_HOLD_OUT = 10
# Fewest rows of a class that a retrain without the outliers keeps.
MIN_CLASS_ROWS = 2


def hold_out_loss(loss, net, X, y):
    """``loss(y, outputs)`` of the net on the hold-out: an EpochScoring scorer."""
    outputs = net.forward(X, training=False)
    outputs = outputs.reshape(outputs.shape[0], -1).double().numpy()
    return loss(np.asarray(y), outputs)


def private_rng(device):
    """Fork torch's random state: the caller's generator is left as it was.

    Even prediction draws from it (the DataLoader takes a base seed).
    """
    cuda = [torch.device(device)] if str(device).startswith("cuda") else []
    return torch.random.fork_rng(devices=cuda)


def as_float32(X):
    """A C-contiguous, writable float32 copy only where one is needed."""
    return np.require(X, dtype=np.float32, requirements=["C", "W"])


class ZErrorBase(BaseEstimator):
    """Training of a skorch network with a Z-Error loss, for both tasks.

    Subclasses define ``__init__`` (the parameters), ``fit`` (target encoding
    and the criterion), ``_make_criterion``, the early-stopping score
    (``_stopping_loss``, recorded in the history as ``_stopping_key``; None
    stops on the net's ``valid_loss``, the unmasked loss of the hold-out) and
    ``_ledger_predictions`` (what the ledger averages per row, or None).
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
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
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
        "device": [str],
        "accelerator": [None, HasMethods(["prepare", "backward"])],
        "callbacks": [None, list],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    # -- checks -------------------------------------------------------------

    def _check_hidden_layer_sizes(self):
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

    def _validate_X_y(self, X, y, **kwargs):
        return validate_data(
            self, X, y, accept_sparse=False, dtype=[np.float64, np.float32], **kwargs
        )

    def _check_sigma(self, n_groups):
        """The target sigma: a float, or one value per class."""
        sigma = np.asarray(self.sigma, dtype=float)
        if sigma.ndim == 0:
            return float(sigma)
        if sigma.shape != (n_groups,) or not (sigma > 0).all():
            raise ValueError(
                f"sigma must be a positive number or {n_groups} positive values "
                f"(one per class), got {self.sigma!r}."
            )
        return sigma

    @staticmethod
    def _relative_weights(sample_weight):
        """Sample weights rescaled to average 1, or None when all are equal.

        The masked mean of the loss does not change with the scale of the
        weights; the batch statistics count a row of weight 2 as two rows, so
        weights of the order of 1 keep them meaningful whatever scale the
        user's weights come in. Equal weights are no weights at all.
        """
        if np.all(sample_weight == sample_weight[0]):
            return None
        mean = sample_weight.mean()
        if not mean > 0:
            raise ValueError("sample_weight must have a positive sum.")
        return (sample_weight / mean).astype(np.float32)

    # -- training -----------------------------------------------------------

    def _build_module(self, n_features, n_outputs):
        if self.module is None:
            return make_mlp(
                n_features,
                n_outputs,
                self._check_hidden_layer_sizes(),
                self.activation,
                self.dropout,
            )
        if isinstance(self.module, torch.nn.Module):
            # Never train the user's own instance.
            return copy.deepcopy(self.module)
        return self.module(**(self.module_params or {}))

    def _check_module_output(self, net, X, n_outputs):
        module = net.module_
        was_training = module.training
        module.eval()
        with torch.no_grad():
            probe = net.infer(X[:2])
        module.train(was_training)
        expected = (min(2, len(X)), n_outputs)
        if tuple(probe.reshape(probe.shape[0], -1).shape) != expected:
            raise ValueError(
                f"module returned outputs of shape {tuple(probe.shape)} for "
                f"{expected[0]} samples; expected {expected}."
            )

    def _hold_out_is_usable(self, n_samples, y):
        """Whether the early-stopping hold-out is large enough to score."""
        size = int(self.validation_fraction * n_samples)
        if size < MIN_HOLD_OUT:
            return False
        if is_classifier(self):
            counts = np.unique(np.asarray(y).ravel(), return_counts=True)[1]
            return size >= len(counts) and counts.min() >= 2
        return True

    def _callbacks(self, sigma, sigma_start, seed, is_classifier, n_samples, y):
        anneal_epochs = (
            self.max_epochs // 2 if self.anneal_epochs is None else self.anneal_epochs
        )
        callbacks = [
            (
                "sigma_scheduler",
                SigmaScheduler(
                    target=sigma,
                    start=sigma_start,
                    schedule=self.anneal,
                    anneal_epochs=anneal_epochs,
                    warmup_epochs=self.warmup_epochs,
                ),
            )
        ]
        train_split = None
        if self.early_stopping and self._hold_out_is_usable(n_samples, y):
            train_split = ValidSplit(
                self.validation_fraction, stratified=is_classifier, random_state=seed
            )
            # The score of the hold-out does not depend on sigma (no mask), so
            # the stopping needs no wait for a schedule, and masking more
            # cannot buy a better score. The best epoch's weights are kept.
            if self._stopping_loss is not None:
                scoring = EpochScoring(
                    partial(hold_out_loss, self._stopping_loss),
                    name=self._stopping_key,
                    lower_is_better=True,
                )
                callbacks.append(("valid_stopping_score", scoring))
            callbacks += [
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor=self._stopping_key,
                        patience=self.n_iter_no_change,
                        load_best=True,
                    ),
                ),
            ]
        if self.verbose and self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        # The user's callbacks are copied: training must not change them.
        callbacks += copy.deepcopy(list(self.callbacks or []))
        return callbacks, train_split

    def _criterion_options(self, sigma):
        """The Z-Error loss parameters the estimator sets."""
        return dict(
            sigma=sigma,
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

    def _train(
        self, X, y, sample_weight, n_outputs, sigma, masking=True, max_epochs=None
    ):
        """Train ``net_`` and read the ledger; X is float32, y tensor-ready.

        Each call trains a fresh criterion (running statistics start anew).
        ``masking=False`` trains on every row: sigma infinite throughout.
        ``max_epochs`` (default: the parameter) bounds this run's epochs; the
        schedules of sigma still count the parameter's epochs.
        """
        net_class, net_options = ZErrorNet, {}
        if self.accelerator is None:
            device = resolve_device(self.device)
        else:
            from ._accelerate import accelerated_net_options

            net_class, net_options = accelerated_net_options(
                self.accelerator, self.verbose
            )
            device = net_options.pop("device")
        if not self.verbose and self.accelerator is None:
            # skorch builds its epoch table even when nothing prints it (its
            # accelerated net needs the table, whose sink prints nothing).
            net_options["callbacks__print_log"] = None
        optimizer = OPTIMIZERS.get(self.optimizer, self.optimizer)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        n_samples = X.shape[0]
        batch = {FEATURES: X, ROW: np.arange(n_samples)}
        weights = self._relative_weights(sample_weight)
        if weights is not None:
            batch[WEIGHT] = weights
        sigma_start = self.sigma_start
        if not masking:
            sigma, sigma_start = np.inf, None
        criterion = self._make_criterion(self._criterion_options(sigma))
        callbacks, train_split = self._callbacks(
            sigma, sigma_start, seed, is_classifier(self), n_samples, y
        )
        ledger = OutlierLedger(n_samples, predictions=self._ledger_predictions)
        callbacks.insert(0, ("ledger", ledger))
        # A private random stream: reproducible with random_state.
        with private_rng(device):
            torch.manual_seed(seed)
            net = net_class(
                module=self._build_module(X.shape[1], n_outputs),
                criterion=criterion,
                optimizer=optimizer,
                lr=self.lr,
                optimizer__weight_decay=self.weight_decay,
                batch_size=self.batch_size,
                max_epochs=self.max_epochs if max_epochs is None else max_epochs,
                train_split=train_split,
                callbacks=callbacks,
                device=device,
                verbose=int(self.verbose),
                dataset=BatchDataset,
                iterator_train__shuffle=True,
                iterator_train__collate_fn=collate_batch,
                iterator_valid__collate_fn=collate_batch,
                **net_options,
            )
            net.initialize()
            self._check_module_output(net, X, n_outputs)
            net.partial_fit(batch, y)
        self.net_ = net
        ledger = dict(net.callbacks_)["ledger"]
        seen = ledger.seen_.cpu().numpy()
        masked = ledger.masked_.cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            self.outlier_frequency_ = np.where(seen > 0, masked / seen, np.nan)
        return net

    def _first_run(self, X, y, sample_weight, n_outputs, sigma):
        """The first training run, over every row; starts ``run_histories_``."""
        epochs = self._first_run_epochs(len(X), y)
        self._train(X, y, sample_weight, n_outputs, sigma, max_epochs=epochs)
        self.run_histories_ = [self.net_.history]

    def _retrain(self, X, y, sample_weight, n_outputs, sigma, keep, masking=True):
        """The retrain on the rows ``keep``, in the epochs the first run left.

        ``outlier_frequency_`` stays the first run's, which saw every row.
        """
        frequency = self.outlier_frequency_
        self._train(
            X[keep],
            y[keep],
            sample_weight[keep],
            n_outputs,
            sigma,
            masking=masking,
            max_epochs=self._retrain_epochs(),
        )
        self.outlier_frequency_ = frequency
        self.run_histories_.append(self.net_.history)

    def _first_run_epochs(self, n_samples, y):
        """Epochs of the first run: ``max_epochs``, or its first half.

        A fit that may retrain without the outliers shares ``max_epochs``
        between its two runs. Early stopping ends the first run where the
        errors begin to be learnt and leaves the rest to the retrain;
        without it, the first run trains ``max_epochs // 2`` epochs (the
        default length of the sigma schedule) and the retrain the others.
        """
        stops_early = self.early_stopping and self._hold_out_is_usable(n_samples, y)
        if self.retrain_without_outliers and not stops_early:
            return max(1, self.max_epochs // 2)
        return self.max_epochs

    def _retrain_epochs(self):
        """Epochs of the retrain without the outliers, after the first run.

        What the first run left of ``max_epochs``, so that both runs
        together train ``max_epochs``, as one run would. After early
        stopping, never fewer than the first run took to its best epoch (the
        rows without the errors need no longer a run), and a whole run when
        the first trained every epoch.
        """
        used = len(self.net_.history)
        stopping = dict(self.net_.callbacks_).get("early_stopping")
        if stopping is None:
            return max(1, self.max_epochs - used)
        if used >= self.max_epochs:
            return self.max_epochs
        return max(self.max_epochs - used, int(stopping.best_epoch_))

    def _rows_to_retrain(self, labels=None):
        """Rows of the retrain without the outliers, or None for no retrain.

        With class ``labels`` (encoded 0..K-1), a class keeps all its rows
        when fewer than two would be left, so that the retrained network
        still knows every class.
        """
        if not (self.retrain_without_outliers and self.outlier_mask_.any()):
            return None
        keep = ~self.outlier_mask_
        if labels is not None:
            for label in np.unique(labels):
                rows = labels == label
                if np.count_nonzero(keep & rows) < MIN_CLASS_ROWS:
                    keep[rows] = True
        return None if keep.all() else keep

    def _record_outliers(self, X, target, sigma):
        """The z-score ledger: ``outlier_mask_`` and ``outlier_scores_``.

        A pass over the whole training set scores every row as one batch (the
        note's whole-dataset statistics) with the training rule. With
        ``ledger="training"`` (the regressor's; the classifier's training
        ledger is its own) the scores of the rows trained on are instead
        their mean z-score in their training batches over the whole run, and
        the same sigma and tail test them; the rows held out for early
        stopping keep the whole-set score. Returns the network's outputs on
        the training set.
        """
        outputs = self._network_outputs(X)
        options = self._criterion_options(sigma)
        options.update(window="batch", sync_statistics=False)
        whole_set = self._make_criterion(options)
        target = torch.as_tensor(target)
        if target.is_floating_point():
            target = target.double()
        output = whole_set.evaluate(outputs.double(), target)
        n = len(X)
        inliers = output.mask.reshape(n, -1)
        scores = output.scores.reshape(n, -1)
        ledger = dict(self.net_.callbacks_)["ledger"]
        if self.ledger == "training" and ledger.score_sum_ is not None:
            seen = ledger.seen_.to(scores.device, torch.float64).unsqueeze(1)
            trained = ledger.score_sum_.to(scores.device) / seen.clamp(min=1)
            scores = torch.where(seen > 0, trained, scores)
            limit = whole_set.sigma
            inliers = inlier_mask(scores, None, limit, self.tail)
        scores = scores.cpu().numpy()
        self.outlier_mask_ = ~inliers.all(dim=1).cpu().numpy()
        self.outlier_scores_ = scores[:, 0] if scores.shape[1] == 1 else scores
        return outputs

    def _forward(self, X):
        """Raw network outputs for new data, as a float64 array (n, n_outputs)."""
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, accept_sparse=False, dtype=[np.float64, np.float32]
        )
        return self._network_outputs(as_float32(X)).double().numpy()

    def _network_outputs(self, X):
        """The network's outputs (n, n_outputs) for float32 ``X``, row by row.

        The rows go through the network in batches of exactly ``batch_size``
        (the last one padded with zeros), so that the matrix products run the
        same kernels whatever the number of rows: a row's output then does
        not depend on the other rows of the call, as scikit-learn expects
        (float32 kernels chosen by the number of rows differ by ~1e-7).
        """
        n = len(X)
        padding = -n % self.net_.batch_size
        if padding:
            X = np.concatenate([X, np.zeros((padding, X.shape[1]), X.dtype)])
        with private_rng(self.net_.device):
            out = self.net_.forward(X, training=False)
        return out[:n].reshape(n, -1)
