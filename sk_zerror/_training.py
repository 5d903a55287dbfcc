"""One training run: a function of its settings and data that returns its result.

:func:`train_run` builds a skorch :class:`~sk_zerror._network.ZErrorNet` from
:class:`RunSettings`, trains it with an :class:`~sk_zerror._ledger.OutlierLedger`
and returns a :class:`RunResult` (the network, the ledger's summary and the
history). It writes nothing anywhere else: the estimators decide what to do
with one or two runs and set their fitted attributes at the end of ``fit``.
"""

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from skorch.callbacks import EarlyStopping, EpochScoring, ProgressBar
from skorch.dataset import ValidSplit

from ._ledger import LedgerSummary, OutlierLedger
from ._network import (
    FEATURES,
    ROW,
    WEIGHT,
    BatchDataset,
    CollateFeatures,
    ZErrorNet,
    collate_batch,
    pad_rows,
    take_rows,
    take_samples,
)
from ._schedule import SigmaScheduler

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}
# Fewest hold-out rows that early stopping scores.
MIN_HOLD_OUT = 10


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


def relative_weights(sample_weight):
    """Sample weights rescaled to average 1, or None when all are equal.

    The masked mean of the loss does not change with the scale of the
    weights; the batch statistics count a row of weight 2 as two rows, so
    weights of the order of 1 keep them meaningful whatever scale the user's
    weights come in. Equal weights are no weights at all.
    """
    if np.all(sample_weight == sample_weight[0]):
        return None
    mean = sample_weight.mean()
    if not mean > 0:
        raise ValueError("sample_weight must have a positive sum.")
    return (sample_weight / mean).astype(np.float32)


def hold_out_is_usable(n_samples, y, validation_fraction, stratified):
    """Whether an early-stopping hold-out of ``n_samples`` rows can be scored.

    At least ``MIN_HOLD_OUT`` rows, and for classification (``stratified``)
    one row per class and two rows of every class to split.
    """
    size = int(validation_fraction * n_samples)
    if size < MIN_HOLD_OUT:
        return False
    if stratified:
        counts = np.unique(np.asarray(y).ravel(), return_counts=True)[1]
        return bool(size >= len(counts) and counts.min() >= 2)
    return True


def hold_out_loss(loss, net, X, y):
    """``loss(y, outputs)`` of the net on the hold-out: an EpochScoring scorer."""
    outputs = net.forward(X, training=False)
    outputs = outputs.reshape(outputs.shape[0], -1).double().numpy()
    return loss(np.asarray(y), outputs)


@dataclass(frozen=True)
class RunSettings:
    """Everything a training run needs, resolved and validated by ``fit``.

    Attributes
    ----------
    build_module : callable
        ``build_module()`` returns a fresh module (n_features -> n_outputs).
    n_outputs : int
        Width of the module's output (checked before training).
    make_criterion : callable
        ``make_criterion(sigma)`` returns a fresh Z-Error loss.
    sigma, sigma_start, anneal, anneal_epochs, warmup_epochs
        The threshold and its schedule (:class:`~sk_zerror.SigmaScheduler`).
    max_epochs : int
        The estimator's epochs; a run may be given fewer.
    early_stopping : bool
        Stop on a hold-out when the data allow one (:func:`hold_out_is_usable`).
    tol : float or None
        Without a hold-out, stop once the training loss has not improved by
        ``tol`` for ``n_iter_no_change`` epochs; None trains every epoch.
    stratified : bool
        Whether the hold-out is stratified (classification).
    stopping_key : str
        History key early stopping monitors (``valid_loss``: the hold-out's
        unmasked loss).
    stopping_loss : callable or None
        ``loss(y, outputs)`` recorded as ``stopping_key``; None for the
        net's ``valid_loss``.
    ledger_predictions : callable or None
        What the ledger sums per row besides the counts (class probabilities).
    mixed_precision : bool
        bfloat16 autocast of the module's forward (:class:`ZErrorNet`).
    net_params : dict
        skorch's double-underscore parameters for the net (``optimizer__*``,
        ``iterator_train__*``, ``iterator_valid__*``), checked by the estimator.
    collate_fn, valid_collate_fn : callable or None
        The user's functions that collate a list of feature samples into
        what the module takes, for the training batches and for the
        hold-out's and prediction's; both None (the estimator's whole-batch
        indexing) or both set.
    """

    build_module: Callable
    n_outputs: int
    make_criterion: Callable
    optimizer: type
    lr: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    sigma: object
    sigma_start: float | None
    anneal: str
    anneal_epochs: int
    warmup_epochs: int
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    tol: float | None
    stratified: bool
    stopping_key: str
    stopping_loss: Callable | None
    device: str
    accelerator: object
    verbose: int
    callbacks: list = field(default_factory=list)
    ledger_predictions: Callable | None = None
    mixed_precision: bool = False
    net_params: dict = field(default_factory=dict)
    collate_fn: Callable | None = None
    valid_collate_fn: Callable | None = None


@dataclass(frozen=True)
class RunResult:
    """What one training run returns.

    Attributes
    ----------
    net : ZErrorNet
        The trained network (its ``callbacks_`` hold the ledger as ``"ledger"``).
    ledger : LedgerSummary
        The ledger's per-row record of the rows this run trained on.
    history : skorch.history.History
        The run's history (``net.history``).
    best_epoch : int or None
        The epoch whose weights early stopping kept; None without it.
    """

    net: object
    ledger: LedgerSummary
    history: object
    best_epoch: int | None

    @property
    def epochs(self):
        """Epochs this run trained."""
        return len(self.history)


def _silent(*args, **kwargs):
    """A sink that prints nothing."""


def _callbacks(settings, sigma, sigma_start, hold_out):
    callbacks = [
        (
            "sigma_scheduler",
            SigmaScheduler(
                target=sigma,
                start=sigma_start,
                schedule=settings.anneal,
                anneal_epochs=settings.anneal_epochs,
                warmup_epochs=settings.warmup_epochs,
            ),
        )
    ]
    if hold_out:
        # The score of the hold-out does not depend on sigma (no mask), so the
        # stopping needs no wait for a schedule, and masking more cannot buy a
        # better score. The best epoch's weights are kept.
        if settings.stopping_loss is not None:
            scoring = EpochScoring(
                partial(hold_out_loss, settings.stopping_loss),
                name=settings.stopping_key,
                lower_is_better=True,
            )
            callbacks.append(("valid_stopping_score", scoring))
        stopping = EarlyStopping(
            monitor=settings.stopping_key,
            patience=settings.n_iter_no_change,
            load_best=True,
        )
        callbacks.append(("early_stopping", stopping))
    elif settings.tol is not None:
        # Without a hold-out: scikit-learn's MLP rule, a run stops once its
        # training loss has not improved by tol for n_iter_no_change epochs.
        convergence = EarlyStopping(
            monitor="train_loss",
            patience=settings.n_iter_no_change,
            threshold=settings.tol,
            threshold_mode="abs",
            load_best=False,
            sink=print if settings.verbose else _silent,
        )
        callbacks.append(("convergence", convergence))
    if settings.verbose and settings.verbose >= 2:
        callbacks.append(("progress_bar", ProgressBar()))
    # The user's callbacks are copied: training must not change them.
    return callbacks + copy.deepcopy(list(settings.callbacks))


def _net_class_and_options(settings):
    if settings.accelerator is None:
        options = {"mixed_precision": settings.mixed_precision}
        if not settings.verbose:
            # skorch builds its epoch table even when nothing prints it.
            options["callbacks__print_log"] = None
        return ZErrorNet, settings.device, options
    from ._accelerate import accelerated_net_options

    net_class, options = accelerated_net_options(settings.accelerator, settings.verbose)
    return net_class, options.pop("device"), options


def check_module_output(net, X, n_samples, n_outputs, collate_fn=None):
    """Refuse a module whose output is not (n_samples, n_outputs), before training.

    The module is run on the first two samples (collated by the user's
    ``collate_fn`` when there is one, as training batches are); an error
    the module or ``collate_fn`` raises there is reported as a ValueError
    naming the input it was given.
    """
    module = net.module_
    was_training = module.training
    index = range(min(2, n_samples))
    try:
        rows = take_rows(X, index, collate_fn=collate_fn)
    except Exception as exc:  # the user's function or data: any error is possible
        failure = f"{type(exc).__name__}: {exc}"
        if collate_fn is None:
            raise ValueError(
                "the first samples of X cannot be batched by torch's rule "
                f"({failure}); pass a function that batches them (one that pads "
                "sequences of different lengths, say) as iterator_train__collate_fn."
            ) from exc
        first = describe(take_samples(X, [0])[0])
        raise ValueError(
            "iterator_train__collate_fn failed on the first samples of X (a list "
            f"of {len(index)}, the first {first}): {failure}"
        ) from exc
    given = "the first samples of X"
    if collate_fn is not None:
        given = "what iterator_train__collate_fn made of the first samples of X"
    module.eval()
    try:
        with torch.no_grad():
            probe = net.infer({FEATURES: rows})
    except Exception as exc:  # the user's module: any error is possible
        raise ValueError(
            f"module {type(module).__name__} failed on {given} "
            f"({describe(rows)}): {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        module.train(was_training)
    expected = (min(2, n_samples), n_outputs)
    shape = tuple(getattr(probe, "shape", ()))
    if len(shape) == 0 or tuple(probe.reshape(shape[0], -1).shape) != expected:
        raise ValueError(
            f"module returned outputs of shape {shape} for {expected[0]} "
            f"samples; expected {expected}."
        )


def describe(data):
    """A few words on what the module is given: shapes, keys, dtypes."""
    if isinstance(data, Mapping):
        return "a dict: " + ", ".join(
            f"{key!r}: {describe(value)}" for key, value in data.items()
        )
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        return f"{type(data).__name__} of shape {tuple(data.shape)}, {data.dtype}"
    return type(data).__name__


def _collate_options(settings):
    """The net's dataset and DataLoader collation options.

    Whole batches by default; with the user's functions, the dataset hands
    the features on as samples and each iterator collates them with its
    function.
    """
    if settings.collate_fn is None:
        return {
            "iterator_train__collate_fn": collate_batch,
            "iterator_valid__collate_fn": collate_batch,
        }
    return {
        "dataset__feature_samples": True,
        "iterator_train__collate_fn": CollateFeatures(settings.collate_fn),
        "iterator_valid__collate_fn": CollateFeatures(settings.valid_collate_fn),
    }


def train_run(settings, X, y, sample_weight, *, seed, max_epochs, masking=True):
    """Train a fresh network on ``X`` (float32) and ``y`` (tensor-ready).

    Parameters
    ----------
    settings : RunSettings
    X : array, sparse matrix, dict of them, or Dataset
        The checked inputs (:func:`~sk_zerror._inputs.check_features`).
    y : ndarray
        Targets as the criterion takes them.
    sample_weight : ndarray of shape (n_samples,)
    seed : int
        Seed of the run's private torch random stream and of its hold-out.
    max_epochs : int
        This run's epochs at most; the sigma schedule counts the settings'.
    masking : bool, default=True
        ``False`` trains on every row: sigma infinite throughout.

    Returns
    -------
    RunResult
    """
    sigma, sigma_start = settings.sigma, settings.sigma_start
    if not masking:
        sigma, sigma_start = np.inf, None
    n_samples = len(sample_weight)
    batch = {FEATURES: X, ROW: np.arange(n_samples)}
    weights = relative_weights(sample_weight)
    if weights is not None:
        batch[WEIGHT] = weights
    hold_out = settings.early_stopping and hold_out_is_usable(
        n_samples, y, settings.validation_fraction, settings.stratified
    )
    train_split = None
    if hold_out:
        train_split = ValidSplit(
            settings.validation_fraction,
            stratified=settings.stratified,
            random_state=seed,
        )
    callbacks = [
        ("ledger", OutlierLedger(n_samples, predictions=settings.ledger_predictions)),
        *_callbacks(settings, sigma, sigma_start, hold_out),
    ]
    net_class, device, options = _net_class_and_options(settings)
    # A private random stream: reproducible with random_state.
    with private_rng(device):
        torch.manual_seed(seed)
        net = net_class(
            module=settings.build_module(),
            criterion=settings.make_criterion(sigma),
            optimizer=settings.optimizer,
            lr=settings.lr,
            optimizer__weight_decay=settings.weight_decay,
            batch_size=settings.batch_size,
            max_epochs=max_epochs,
            train_split=train_split,
            callbacks=callbacks,
            device=device,
            verbose=int(settings.verbose),
            dataset=BatchDataset,
            iterator_train__shuffle=True,
            **_collate_options(settings),
            **options,
            **settings.net_params,
        )
        net.initialize()
        check_module_output(
            net, X, n_samples, settings.n_outputs, collate_fn=settings.collate_fn
        )
        net.partial_fit(batch, y)
    named = dict(net.callbacks_)
    stopping = named.get("early_stopping")
    return RunResult(
        net=net,
        ledger=named["ledger"].summary(),
        history=net.history,
        best_epoch=None if stopping is None else int(stopping.best_epoch_),
    )


def network_outputs(net, X, n_samples):
    """The network's outputs (n_samples, n_outputs) for checked ``X``.

    The rows of arrays, sparse matrices and dicts of them go through the
    network in batches of exactly ``batch_size`` (the last one padded with
    zeros), so that the matrix products run the same kernels whatever the
    number of rows: a row's output then does not depend on the other rows of
    the call, as scikit-learn expects (float32 kernels chosen by the number
    of rows differ by ~1e-7). Datasets are read as they are, and so is any
    input with the user's ``collate_fn``: the function only ever sees real
    samples.
    """
    padding = -n_samples % net.batch_size
    if isinstance(getattr(net, "iterator_valid__collate_fn", None), CollateFeatures):
        padding = 0
    with private_rng(net.device):
        out = net.forward({FEATURES: pad_rows(X, padding)}, training=False)
    return out[:n_samples].reshape(n_samples, -1)
