"""Annealing of the inlier threshold: a skorch callback."""

import math

import numpy as np
from skorch.callbacks import Callback

from ._zscore import sigma_tensor

__all__ = ["SigmaScheduler", "sigma_at_epoch"]

SCHEDULES = ("linear", "cosine", "exponential")
# warmup_epochs="plateau": masking starts once the best training loss of the
# last PLATEAU_EPOCHS epochs is less than PLATEAU_GAIN (relatively) below the
# best before them, that is once the network has learnt what it can easily.
PLATEAU = "plateau"
PLATEAU_EPOCHS = 5
PLATEAU_GAIN = 0.01


def loss_has_flattened(losses, epochs=PLATEAU_EPOCHS, gain=PLATEAU_GAIN):
    """Whether the last ``epochs`` losses improved on the earlier best by < ``gain``.

    Examples
    --------
    >>> from sk_zerror._schedule import loss_has_flattened
    >>> loss_has_flattened([1.0, 0.5, 0.4, 0.39, 0.38, 0.37, 0.36])
    False
    >>> loss_has_flattened([1.0, 0.5, 0.4, 0.399, 0.398, 0.398, 0.397, 0.397])
    True
    """
    if len(losses) <= epochs:
        return False
    before, recent = min(losses[:-epochs]), min(losses[-epochs:])
    return before - recent < gain * abs(before)


def sigma_at_epoch(
    epoch, target, *, start=10.0, schedule="linear", anneal_epochs=10, warmup_epochs=0
):
    """Threshold for a 0-based ``epoch`` of an annealing schedule.

    Parameters
    ----------
    epoch : int
        0-based epoch number.
    target : float or ndarray
        Final threshold (scalar or one per class).
    start : float or None, default=10.0
        Threshold of the first annealed epoch; ``None`` uses ``target`` from
        the start (no annealing).
    schedule : {"linear", "cosine", "exponential"}, default="linear"
        ``"linear"`` is the note's ``get_sigma_threshold``; ``"cosine"`` moves
        slowly at both ends; ``"exponential"`` interpolates geometrically.
    anneal_epochs : int, default=10
        Number of epochs from ``start`` to ``target``; 0 means ``target`` at once.
    warmup_epochs : int, default=0
        Epochs before annealing during which nothing is masked (sigma = inf).

    Returns
    -------
    sigma : float or ndarray
        ``inf`` during warm-up.

    Examples
    --------
    >>> from sk_zerror import sigma_at_epoch
    >>> [sigma_at_epoch(e, 2.0, start=10.0, anneal_epochs=4) for e in range(6)]
    [10.0, 8.0, 6.0, 4.0, 2.0, 2.0]
    >>> sigma_at_epoch(0, 2.0, warmup_epochs=1)
    inf
    """
    if epoch < warmup_epochs:
        return math.inf if np.ndim(target) == 0 else np.full(np.shape(target), np.inf)
    if start is None or anneal_epochs <= 0:
        return target
    progress = min((epoch - warmup_epochs) / anneal_epochs, 1.0)
    target = np.asarray(target, dtype=float)
    if schedule == "linear":
        sigma = start + (target - start) * progress
    elif schedule == "cosine":
        sigma = target + (start - target) * 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        sigma = start * (target / start) ** progress
    return float(sigma) if sigma.ndim == 0 else sigma


class SigmaScheduler(Callback):
    """Anneal the Z-Error loss threshold from a wide ``start`` to ``target``.

    The technical note's annealing ("Adaptive Sigma Threshold"): early in
    training every sample is learnt from; as the model improves, the window
    narrows and the remaining outliers are masked. The criterion's ``sigma``
    buffer is changed in place at the start of each epoch, so neither the
    criterion nor the optimizer (and Adam's moment estimates) is rebuilt, as
    ``net.set_params(criterion__sigma=...)`` would do.

    Works on any skorch net whose criterion is a Z-Error loss.

    Parameters
    ----------
    target : float or array-like, default=2.0
        Final threshold; one value per class is allowed when the criterion
        was built with per-class sigma.
    start : float or None, default=10.0
        Threshold of the first annealed epoch; ``None`` disables annealing.
    schedule : {"linear", "cosine", "exponential"}, default="linear"
        Shape of the path from ``start`` to ``target``.
    anneal_epochs : int or None, default=None
        Epochs from ``start`` to ``target``; ``None`` uses the net's
        ``max_epochs`` minus the warm-up, as in the note.
    warmup_epochs : int or "plateau", default=0
        Initial epochs without any masking (sigma infinite). ``"plateau"``
        holds the masking off until the training loss flattens: until the
        best ``train_loss`` of the last 5 epochs is less than 1% below the
        best before them, so that the rows a network learns late (those a
        curved boundary is made of) are learnt before any is refused. The
        annealing then starts from the epoch after.
    criterion : str, default="criterion"
        Name of the criterion on the net (``net.<criterion>_``).

    Attributes
    ----------
    sigma_ : float or ndarray
        Threshold in force in the current (or last) epoch.
    warmup_epochs_ : int or None
        Epochs of the warm-up: ``warmup_epochs``, or with ``"plateau"`` the
        epochs until the loss flattened (None until then).

    Notes
    -----
    Each epoch, the history gets ``sigma`` (the threshold in force) and
    ``sigma_annealing`` (True while warm-up or annealing is still under way).
    The estimators' nets also record ``masked_fraction``, the fraction of
    training samples masked in their batch.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skorch import NeuralNetRegressor
    >>> from sk_zerror import SigmaScheduler, ZErrorMSELoss
    >>> X = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    >>> y = X.sum(axis=1, keepdims=True)
    >>> net = NeuralNetRegressor(
    ...     torch.nn.Linear(3, 1), criterion=ZErrorMSELoss(), max_epochs=4,
    ...     train_split=None, verbose=0,
    ...     callbacks=[SigmaScheduler(target=2.0, start=8.0, anneal_epochs=3)],
    ... )
    >>> net = net.fit(X, y)
    >>> net.history[:, "sigma"]
    [8.0, 6.0, 4.0, 2.0]
    """

    def __init__(
        self,
        target=2.0,
        *,
        start=10.0,
        schedule="linear",
        anneal_epochs=None,
        warmup_epochs=0,
        criterion="criterion",
    ):
        self.target = target
        self.start = start
        self.schedule = schedule
        self.anneal_epochs = anneal_epochs
        self.warmup_epochs = warmup_epochs
        self.criterion = criterion

    def _criterion(self, net):
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {SCHEDULES}, got {self.schedule!r}."
            )
        if self.start is not None and not self.start > 0:
            raise ValueError(f"start must be > 0 or None, got {self.start!r}.")
        plateau = isinstance(self.warmup_epochs, str) and self.warmup_epochs == PLATEAU
        if not plateau and not (
            isinstance(self.warmup_epochs, int | np.integer) and self.warmup_epochs >= 0
        ):
            raise ValueError(
                "warmup_epochs must be an integer >= 0 or 'plateau', got "
                f"{self.warmup_epochs!r}."
            )
        criterion = getattr(net, self.criterion + "_", None)
        if not hasattr(criterion, "set_sigma"):
            raise TypeError(
                f"SigmaScheduler needs a Z-Error criterion with set_sigma; "
                f"net.{self.criterion}_ is {type(criterion).__name__}."
            )
        # The target is checked by the core's rule before the first epoch, which
        # may not reach it; on_epoch_begin is the only place sigma is written.
        sigma_tensor(self.target)
        return criterion

    def on_train_begin(self, net, **kwargs):
        self.criterion_ = self._criterion(net)
        self.target_ = np.asarray(self.target, dtype=float)
        plateau = self.warmup_epochs == PLATEAU
        self.warmup_epochs_ = None if plateau else self.warmup_epochs
        self.anneal_epochs_ = (
            max(net.max_epochs - (0 if plateau else self.warmup_epochs), 0)
            if self.anneal_epochs is None
            else self.anneal_epochs
        )
        self.epoch_ = len(net.history) - 1

    def _sigma(self, epoch):
        if self.warmup_epochs_ is None:  # the loss has not flattened yet
            inf = np.full(self.target_.shape, np.inf)
            return inf if inf.ndim else float(inf)
        return sigma_at_epoch(
            epoch,
            self.target_ if self.target_.ndim else float(self.target_),
            start=self.start,
            schedule=self.schedule,
            anneal_epochs=self.anneal_epochs_,
            warmup_epochs=self.warmup_epochs_,
        )

    def on_epoch_begin(self, net, **kwargs):
        self.epoch_ += 1
        self.sigma_ = self._sigma(self.epoch_)
        self.criterion_.set_sigma(self.sigma_)
        warmup = self.warmup_epochs_
        annealing = warmup is None or self.epoch_ < warmup + (
            self.anneal_epochs_ if self.start is not None else 0
        )
        net.history.record(
            "sigma", self.sigma_.tolist() if np.ndim(self.sigma_) else self.sigma_
        )
        net.history.record("sigma_annealing", bool(annealing))

    def on_epoch_end(self, net, **kwargs):
        if self.warmup_epochs_ is not None:
            return
        losses = [row["train_loss"] for row in net.history if "train_loss" in row]
        if loss_has_flattened(losses):
            self.warmup_epochs_ = self.epoch_ + 1
