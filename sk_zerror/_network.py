"""Skorch training glue: the default MLP, a batched dataset, a net with a ledger."""

from collections.abc import Mapping

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import Dataset, unpack_data
from skorch.utils import to_tensor
from torch import nn
from torch.utils.data import default_collate

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
}

# Keys of the dict that carries each batch: the features, the training-row
# index (for the ledger) and the sample weight.
FEATURES, ROW, WEIGHT = "X", "row", "sample_weight"


def make_mlp(n_features, n_outputs, hidden_layer_sizes, activation, dropout):
    """A multi-layer perceptron: Linear -> activation -> dropout, repeated."""
    layers, width = [], n_features
    for size in hidden_layer_sizes:
        layers += [nn.Linear(width, int(size)), ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(size)
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


def _batchable(data):
    if isinstance(data, Mapping):
        return all(_batchable(value) for value in data.values())
    return isinstance(data, np.ndarray | torch.Tensor)


def _take(data, index):
    if isinstance(data, Mapping):
        return {key: _take(value, index) for key, value in data.items()}
    return torch.as_tensor(data[index])


class BatchDataset(Dataset):
    """skorch's Dataset, indexed a whole batch at a time.

    The DataLoader otherwise indexes and collates row by row, which for a
    small MLP costs more than the network itself, the more so for dict
    batches. A batch holds the very tensors that row-wise collation gives
    (same rows, order, values and dtypes), so training is unchanged. Use it
    with :func:`collate_batch` as the DataLoader's ``collate_fn``. Data other
    than arrays, tensors and dicts of them is still collated row by row.
    """

    def __getitems__(self, indices):
        if not (_batchable(self.X) and (self.y is None or _batchable(self.y))):
            return default_collate([self[i] for i in indices])
        index = np.asarray(indices, dtype=np.int64)
        X = _take(self.X, index)
        if self.y is None:
            # Row by row, skorch yields a dummy tensor([0.]) per row.
            return X, torch.zeros(len(index), 1)
        return X, _take(self.y, index)


def collate_batch(batch):
    """DataLoader ``collate_fn`` for :class:`BatchDataset`: already a batch."""
    return batch


class OutlierLedger(Callback):
    """Per training row: batches seen, batches masked, and the masked fraction.

    A skorch callback fed by :class:`ZErrorNet`, which hands each training
    batch's :class:`~sk_zerror.ZErrorOutput` to ``on_batch_end``. The counts
    live on the net's device and are read once per epoch, when the share of
    training samples masked in their batch is recorded in the history as
    ``masked_fraction``. They are reset whenever skorch initialises the net
    (``initialize``, and ``fit`` without warm start); ``partial_fit`` adds to
    them.

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
        if isinstance(X, Mapping) and ROW in X:
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
                    self.prediction_sum_ = values.new_zeros(
                        (self.n_rows, values.shape[1])
                    )
                self.prediction_sum_.index_add_(0, rows, values)

    def on_epoch_end(self, net, **kwargs):
        if self.epoch_masked_ is not None and self.epoch_seen_:
            fraction = float(self.epoch_masked_) / self.epoch_seen_
            net.history.record("masked_fraction", fraction)


class ZErrorNet(NeuralNet):
    """A skorch net that trains on a dict batch with a Z-Error criterion.

    Training batches are dicts with the features, the training-row index and
    optionally the sample weight; the module only ever sees the features.
    The criterion's :meth:`evaluate` gives the elementwise loss, the mask and
    the z-scores of each batch, its :meth:`reduce` the loss (the
    sample-weighted mean over the inliers); each step hands the evaluation to
    the callbacks as ``zerror`` (:class:`OutlierLedger` counts from it).
    A validation batch is scored with the criterion's ``unmasked_loss``
    (recorded as ``valid_loss``): every row counts, and no statistics are
    computed.
    """

    def infer(self, x, **fit_params):
        x = to_tensor(x, device=self.device)
        if isinstance(x, Mapping):
            x = x[FEATURES]
        return self.module_(x, **fit_params)

    def evaluate_loss(self, y_pred, y_true, X=None):
        """The criterion's :class:`~sk_zerror.ZErrorOutput` for one batch."""
        weight = None
        if isinstance(X, Mapping) and WEIGHT in X:
            weight = to_tensor(X[WEIGHT], device=self.device)
        target = to_tensor(y_true, device=self.device)
        return self.criterion_.evaluate(y_pred, target, sample_weight=weight)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return self.criterion_.reduce(self.evaluate_loss(y_pred, y_true, X))

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        output = self.evaluate_loss(y_pred, yi, X=Xi)
        loss = self.criterion_.reduce(output)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred, "zerror": output}

    def validation_step(self, batch, **fit_params):
        # The hold-out's loss of every row, without the batch statistics: its
        # rows are scored, never masked (early stopping must not depend on
        # sigma), and the statistics would cost more than the network.
        self._set_training(False)
        Xi, yi = unpack_data(batch)
        with torch.no_grad():
            y_pred = self.infer(Xi, **fit_params)
            target = to_tensor(yi, device=self.device)
            loss = self.criterion_.unmasked_loss(y_pred, target)
        return {"loss": loss, "y_pred": y_pred}
