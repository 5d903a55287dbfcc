"""What ZErrorRegressor and ZErrorClassifier share: parameters, training, ledger."""

import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import ProgressBar
from skorch.dataset import ValidSplit

from ._network import (
    ACTIVATIONS,
    FEATURES,
    ROW,
    WEIGHT,
    BatchDataset,
    ZErrorNet,
    collate_batch,
    make_mlp,
)
from ._schedule import SCHEDULES, AnnealAwareEarlyStopping, SigmaScheduler
from ._zscore import CENTERS, SCALES, TAILS, zscore_mask

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
    and the criterion) and ``_ledger_values`` (what the whole-set pass
    z-scores).
    """

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
        "statistics": [StrOptions({"batch", "running"})],
        "momentum": [Interval(Real, 0, 1, closed="right")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
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
        """The target sigma as a float or one value per group."""
        sigma = np.array(self.sigma, dtype=float)
        if sigma.ndim == 0:
            return float(sigma)
        if sigma.shape != (n_groups,) or not (sigma > 0).all():
            raise ValueError(
                f"sigma must be a positive number or {n_groups} positive values "
                f"(one per class), got {self.sigma!r}."
            )
        return sigma

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

    def _callbacks(self, sigma, seed, is_classifier):
        anneal_epochs = (
            self.max_epochs // 2 if self.anneal_epochs is None else self.anneal_epochs
        )
        callbacks = [
            (
                "sigma_scheduler",
                SigmaScheduler(
                    target=sigma,
                    start=self.sigma_start,
                    schedule=self.anneal,
                    anneal_epochs=anneal_epochs,
                    warmup_epochs=self.warmup_epochs,
                ),
            )
        ]
        train_split = None
        if self.early_stopping:
            train_split = ValidSplit(
                self.validation_fraction, stratified=is_classifier, random_state=seed
            )
            callbacks.append(
                (
                    "early_stopping",
                    AnnealAwareEarlyStopping(
                        monitor="valid_loss", patience=self.n_iter_no_change
                    ),
                )
            )
        if self.verbose and self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        # The user's callbacks are copied: training must not change them.
        callbacks += copy.deepcopy(list(self.callbacks or []))
        return callbacks, train_split

    def _train(self, X, y, sample_weight, n_outputs, criterion, sigma):
        """Train ``net_`` and fill the ledger; X is float32, y a tensor-ready array."""
        device = resolve_device(self.device)
        optimizer = OPTIMIZERS.get(self.optimizer, self.optimizer)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        n_samples = X.shape[0]
        batch = {
            FEATURES: X,
            ROW: np.arange(n_samples),
            WEIGHT: sample_weight.astype(np.float32),
        }
        callbacks, train_split = self._callbacks(sigma, seed, is_classifier(self))
        # A private random stream: reproducible with random_state.
        with private_rng(device):
            torch.manual_seed(seed)
            net = ZErrorNet(
                module=self._build_module(X.shape[1], n_outputs),
                criterion=criterion,
                optimizer=optimizer,
                lr=self.lr,
                optimizer__weight_decay=self.weight_decay,
                batch_size=self.batch_size,
                max_epochs=self.max_epochs,
                train_split=train_split,
                callbacks=callbacks,
                device=device,
                verbose=int(self.verbose),
                dataset=BatchDataset,
                iterator_train__shuffle=True,
                iterator_train__collate_fn=collate_batch,
                iterator_valid__collate_fn=collate_batch,
            )
            net.initialize()
            self._check_module_output(net, X, n_outputs)
            net.initialize_ledger(n_samples)
            net.partial_fit(batch, y)
        self.net_ = net
        seen = net.ledger_seen_.cpu().numpy()
        masked = net.ledger_masked_.cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            self.outlier_frequency_ = np.where(seen > 0, masked / seen, np.nan)
        return net

    def _record_outliers(self, X, y, sigma):
        """Whole-training-set pass at the final sigma: the outlier ledger.

        Returns the network's outputs on the training set.
        """
        with private_rng(self.net_.device):
            outputs = self.net_.forward(X, training=False)
        values, groups, n_groups = self._ledger_values(outputs, y)
        inliers, scores = zscore_mask(
            values,
            groups,
            sigma=torch.as_tensor(sigma, dtype=torch.float64),
            center=self.center,
            scale=self.scale,
            tail=self.tail,
            n_groups=n_groups,
            return_scores=True,
        )
        inliers = inliers.reshape(len(values), -1)
        scores = scores.reshape(len(values), -1).double().numpy()
        self.outlier_mask_ = ~inliers.all(dim=1).numpy()
        self.outlier_scores_ = scores[:, 0] if scores.shape[1] == 1 else scores
        return outputs

    def _forward(self, X):
        """Raw network outputs for new data, as a float64 array (n, n_outputs)."""
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, accept_sparse=False, dtype=[np.float64, np.float32]
        )
        with private_rng(self.net_.device):
            out = self.net_.forward(as_float32(X), training=False)
        return out.reshape(out.shape[0], -1).double().numpy()
