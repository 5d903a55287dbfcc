"""Skorch training glue: the default MLP, a batched dataset, a net with a ledger."""

from collections.abc import Mapping

import numpy as np
import torch
from skorch import NeuralNet
from skorch.dataset import Dataset
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


class ZErrorNet(NeuralNet):
    """A skorch net that trains on a dict batch and keeps a per-row ledger.

    Training batches are dicts with the features, the training-row index and
    the sample weight; the module only ever sees the features. The criterion
    must be a Z-Error loss with ``reduction="none"``: :meth:`get_loss` takes
    the sample-weighted mean over the inliers, and, in training, counts per
    row how often it was masked in its batch.
    """

    def initialize_ledger(self, n_rows):
        """Zero the per-row counts of batches seen and batches masked."""
        self.ledger_seen_ = torch.zeros(n_rows, device=self.device)
        self.ledger_masked_ = torch.zeros(n_rows, device=self.device)
        return self

    def infer(self, x, **fit_params):
        x = to_tensor(x, device=self.device)
        if isinstance(x, Mapping):
            x = x[FEATURES]
        return self.module_(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        elementwise = self.criterion_(y_pred, to_tensor(y_true, device=self.device))
        n = elementwise.shape[0]
        elementwise = elementwise.reshape(n, -1)
        mask = self.criterion_.last_mask.reshape(n, -1)
        if isinstance(X, Mapping) and WEIGHT in X:
            weight = to_tensor(X[WEIGHT], device=self.device).to(elementwise.dtype)
        else:
            weight = elementwise.new_ones(n)
        weight = weight.reshape(n, 1)
        # Always the weighted formula, so unit weights give bit-identical
        # training to no weights.
        total = (weight * elementwise).sum()
        count = (weight * mask).sum()
        loss = total / torch.where(count > 0, count, torch.ones_like(count))
        if training and isinstance(X, Mapping) and ROW in X:
            rows = to_tensor(X[ROW], device=self.device).long()
            self.ledger_seen_.index_add_(
                0, rows, torch.ones_like(rows, dtype=torch.float)
            )
            masked = (~mask).any(dim=1).to(self.ledger_masked_.dtype)
            self.ledger_masked_.index_add_(0, rows, masked)
        return loss
