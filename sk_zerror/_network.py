"""Skorch training glue: the default MLP and a net that keeps a per-row ledger."""

from collections.abc import Mapping

import torch
from skorch import NeuralNet
from skorch.utils import to_tensor
from torch import nn

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
