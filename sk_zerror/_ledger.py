"""The outlier ledger: what a training run records of each row, and the rule
per task that turns the record into ``outlier_mask_``, ``outlier_scores_`` and
``outlier_frequency_``.

:class:`OutlierLedger` is the skorch callback that counts, per training row,
the batches it was in, those in which it was masked, its z-scores and
(classification) its predicted probabilities. :meth:`OutlierLedger.summary`
hands the counts over as a :class:`LedgerSummary`; :func:`zscore_outliers`
and :func:`label_outliers` are the only places where the estimators (and so
the audit, which reads the estimators) decide which rows are wrong.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from skorch.callbacks import Callback
from skorch.utils import to_tensor

from ._network import ROW
from ._outliers import find_label_outliers
from ._zscore import inlier_mask

__all__ = [
    "LedgerSummary",
    "OutlierLedger",
    "Outliers",
    "label_outliers",
    "zscore_outliers",
]

# Where the estimators' outlier scores come from: the training run's record,
# or one pass over the whole training set after training (the note's).
LEDGERS = ("training", "final")


@dataclass(frozen=True)
class LedgerSummary:
    """A training run's per-row record, as numpy arrays (rows of that run).

    Attributes
    ----------
    seen : ndarray of shape (n_rows,)
        Training batches each row was in (0 for rows held out).
    masked : ndarray of shape (n_rows,)
        Training batches in which the row was masked.
    score_sum : ndarray of shape (n_rows, n_outputs) or None
        Sum of the row's z-scores over its training batches.
    prediction_sum : ndarray of shape (n_rows, k) or None
        Sum of the row's predictions (class probabilities) over its batches.
    """

    seen: np.ndarray
    masked: np.ndarray
    score_sum: np.ndarray | None
    prediction_sum: np.ndarray | None

    @property
    def trained(self):
        """Rows trained on at least once."""
        return self.seen > 0

    @property
    def frequency(self):
        """Share of its training batches in which each row was masked (NaN if none)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.trained, self.masked / self.seen, np.nan)

    def mean(self, sums):
        """``sums`` (one row per training row) divided by ``seen``; NaN if unseen."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.trained[:, None], sums / self.seen[:, None], np.nan)


class Outliers(NamedTuple):
    """The estimators' answer to "which training rows are wrong?"."""

    mask: np.ndarray
    scores: np.ndarray
    frequency: np.ndarray


class OutlierLedger(Callback):
    """Per training row: batches seen, batches masked, and the masked fraction.

    A skorch callback fed by :class:`~sk_zerror._network.ZErrorNet`, which
    hands each training batch's :class:`~sk_zerror.ZErrorOutput` to
    ``on_batch_end``. The counts live on the net's device and are read once
    per epoch, when the share of training samples masked in their batch is
    recorded in the history as ``masked_fraction``. They are reset whenever
    skorch initialises the net (``initialize``, and ``fit`` without warm
    start); ``partial_fit`` adds to them.

    Parameters
    ----------
    n_rows : int
        Number of training rows; batches carry their row indices under the
        ``"row"`` key of the batch dict.
    predictions : callable, default=None
        Maps a training batch's network outputs to per-row values of shape
        (batch_size, k) (the classifier's class probabilities), summed per
        row in ``prediction_sum_``; ``None`` keeps no such sum.

    Attributes
    ----------
    seen_ : Tensor of shape (n_rows,)
        Training batches each row was in.
    masked_ : Tensor of shape (n_rows,)
        Training batches in which the row was masked (any of its outputs).
    score_sum_ : Tensor of shape (n_rows, n_outputs), float64
        Sum of the row's z-scores in its training batches: divided by
        ``seen_``, its mean z-score over the training run.
    prediction_sum_ : Tensor of shape (n_rows, k), float64, or None
        Sum of ``predictions`` of the row's outputs in its training batches:
        divided by ``seen_``, its mean prediction over the training run
        (None without ``predictions``).
    """

    def __init__(self, n_rows, predictions=None):
        self.n_rows = n_rows
        self.predictions = predictions

    def initialize(self):
        self.seen_ = None
        self.masked_ = None
        self.score_sum_ = None
        self.prediction_sum_ = None
        self.combined_ = {}
        return self

    def on_epoch_begin(self, net, **kwargs):
        if self.seen_ is None:
            self.seen_ = torch.zeros(self.n_rows, device=net.device)
            self.masked_ = torch.zeros(self.n_rows, device=net.device)
        self.epoch_masked_ = None
        self.epoch_seen_ = 0

    def on_batch_end(
        self, net, batch=None, training=False, zerror=None, y_pred=None, **kwargs
    ):
        if not training or zerror is None or zerror.mask.numel() == 0:
            return
        mask = zerror.mask.reshape(zerror.mask.shape[0], -1)
        masked = self.epoch_masked_
        count = (~mask).sum()
        self.epoch_masked_ = count if masked is None else masked + count
        self.epoch_seen_ += mask.numel()
        X = batch[0]
        if not (isinstance(X, Mapping) and ROW in X):
            return
        rows = to_tensor(X[ROW], device=net.device).long()
        self.seen_.index_add_(0, rows, torch.ones_like(rows, dtype=torch.float))
        outlier = (~mask).any(dim=1).to(self.masked_.dtype)
        self.masked_.index_add_(0, rows, outlier)
        scores = zerror.scores.reshape(mask.shape)
        if self.score_sum_ is None:
            self.score_sum_ = scores.new_zeros((self.n_rows, mask.shape[1]))
        self.score_sum_.index_add_(0, rows, scores)
        if self.predictions is not None and y_pred is not None:
            values = self.predictions(y_pred.detach()).double()
            if self.prediction_sum_ is None:
                self.prediction_sum_ = values.new_zeros((self.n_rows, values.shape[1]))
            self.prediction_sum_.index_add_(0, rows, values)

    def combine_processes(self, device):
        """Sum this epoch's counts over the processes of a data-parallel fit.

        Each process counts the rows of its own shard of every batch. Called
        by the data-parallel net at the end of each epoch, before the
        ledger's own ``on_epoch_end``: afterwards every process holds the
        counts of the whole batch, as one process training every row would.
        Only what was added since the last call is summed, so ``partial_fit``
        and earlier epochs are counted once.
        """
        masked = self.epoch_masked_
        epoch = torch.tensor(
            [0.0 if masked is None else float(masked), self.epoch_seen_],
            dtype=torch.float64,
            device=device,
        )
        dist.all_reduce(epoch)
        self.epoch_masked_ = epoch[0].item()
        self.epoch_seen_ = int(epoch[1].item())
        for name in ("seen_", "masked_", "score_sum_", "prediction_sum_"):
            total = getattr(self, name)
            if total is None:
                continue
            before = self.combined_.get(name)
            added = total - before if before is not None else total.clone()
            dist.all_reduce(added)
            total = added + before if before is not None else added
            setattr(self, name, total)
            self.combined_[name] = total.clone()

    def on_epoch_end(self, net, **kwargs):
        if self.epoch_masked_ is not None and self.epoch_seen_:
            fraction = float(self.epoch_masked_) / self.epoch_seen_
            net.history.record("masked_fraction", fraction)

    def summary(self):
        """The counts as a :class:`LedgerSummary` of numpy arrays."""

        def numpy(tensor):
            return None if tensor is None else tensor.cpu().numpy()

        n = self.n_rows
        return LedgerSummary(
            seen=np.zeros(n) if self.seen_ is None else numpy(self.seen_),
            masked=np.zeros(n) if self.masked_ is None else numpy(self.masked_),
            score_sum=numpy(self.score_sum_),
            prediction_sum=numpy(self.prediction_sum_),
        )


def zscore_outliers(ledger, whole_set, *, rule, sigma, tail):
    """Outliers by the Z-Error rule: the regressor's, and the classifier's
    ``ledger="final"``.

    Parameters
    ----------
    ledger : LedgerSummary
        The run's record.
    whole_set : ZErrorOutput
        The run's criterion, with whole-set statistics, evaluated on the
        network's outputs for every training row.
    rule : {"training", "final"}
        ``"training"``: a trained row's score is its mean z-score over its
        training batches; ``"final"`` (and the rows held out): the whole-set
        z-score. Either is tested against ``sigma`` on ``tail``.
    sigma : float
    tail : {"both", "lower", "upper"}

    Returns
    -------
    Outliers
        ``scores`` of shape (n,) for one target, (n, n_targets) for more.
    """
    n = whole_set.mask.shape[0]
    scores = whole_set.scores.reshape(n, -1).cpu().numpy()
    inliers = whole_set.mask.reshape(n, -1).cpu().numpy()
    if rule == "training" and ledger.score_sum is not None:
        trained = ledger.trained[:, None]
        scores = np.where(trained, ledger.mean(ledger.score_sum), scores)
        limit = torch.as_tensor(sigma, dtype=torch.float64)
        inliers = inlier_mask(torch.as_tensor(scores), None, limit, tail).numpy()
    return Outliers(
        mask=~inliers.all(axis=1),
        scores=scores[:, 0] if scores.shape[1] == 1 else scores,
        frequency=ledger.frequency,
    )


def run_probabilities(ledger, outputs_proba, trained_rows):
    """Each row's class probabilities over one classifier training run.

    A row the run trained on gets its mean over its training batches; a row
    it did not (the early-stopping hold-out, the rows left out of a
    retrain) keeps ``outputs_proba``, the trained network's prediction, out
    of sample.
    """
    proba = np.array(outputs_proba, dtype=np.float64)
    if ledger.prediction_sum is not None:
        trained = ledger.trained
        proba[trained_rows[trained]] = ledger.mean(ledger.prediction_sum)[trained]
    return proba


def label_outliers(y_encoded, run_proba, frequency, *, center, scale):
    """The classifier's label errors from its training runs' probabilities.

    :func:`~sk_zerror.find_label_outliers` estimates the number of label
    errors of each pair of given and likely class on the runs' mean
    probabilities, stratified by confidence (more errors among ambiguous
    rows than clear ones), and flags that many; the scores are the z-scores
    of the given-class log-odds within each class (negative: less confident
    in its label than its class's typical row).

    Parameters
    ----------
    y_encoded : ndarray of shape (n,)
        Labels encoded 0..K-1.
    run_proba : list of ndarray of shape (n, K)
        Each run's probabilities (:func:`run_probabilities`); averaged.
    frequency : ndarray of shape (n,)
        The first run's masked frequency (the run that saw every row).
    center, scale : str
        Statistics of the score's z-scores.

    Returns
    -------
    Outliers
    """
    proba = np.mean(run_proba, axis=0)
    mask = find_label_outliers(y_encoded, proba, count="stratified").mask
    zscored = find_label_outliers(
        y_encoded, proba, score="zscore", center=center, scale=scale
    )
    # find_label_outliers scores upward (higher: more likely wrong).
    return Outliers(mask=mask, scores=-zscored.scores, frequency=frequency)
