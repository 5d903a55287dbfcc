"""Skorch training glue: the default MLP, a batched dataset, the Z-Error net."""

from collections.abc import Mapping

import numpy as np
import torch
from scipy import sparse
from skorch import NeuralNet
from skorch.dataset import Dataset, unpack_data
from skorch.helper import SliceDataset
from skorch.utils import to_tensor
from torch import nn
from torch.utils.data import Subset, default_collate

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
    return isinstance(data, np.ndarray | torch.Tensor) or sparse.issparse(data)


def _take(data, index):
    if isinstance(data, Mapping):
        return {key: _take(value, index) for key, value in data.items()}
    if sparse.issparse(data):
        # Only the batch's rows are ever made dense.
        return torch.as_tensor(data[index].toarray())
    if isinstance(data, np.ndarray | torch.Tensor):
        return torch.as_tensor(data[index])
    # A Dataset or a sequence: its samples, collated by torch's rule.
    return default_collate(_samples(data, index))


def _samples(data, index):
    if isinstance(data, Mapping):
        keys = list(data)
        columns = [_samples(data[key], index) for key in keys]
        rows = zip(*columns, strict=True)
        return [dict(zip(keys, row, strict=True)) for row in rows]
    if _batchable(data):
        return list(_take(data, index))
    many = getattr(data, "__getitems__", None)
    return many(index.tolist()) if many else [data[int(i)] for i in index]


def take_rows(data, index, collate_fn=None):
    """Rows ``index`` of any training input, as the module receives them.

    Arrays, tensors, sparse matrices and dicts of them are indexed as a
    batch; other data (skorch's ``SliceDataset``, a torch ``Dataset``, a
    sequence) are read sample by sample and collated by torch's DataLoader
    rule. With ``collate_fn``, the samples of any input
    (:func:`take_samples`) are collated by it instead.
    """
    index = np.asarray(index, dtype=np.int64)
    if collate_fn is None:
        return _take(data, index)
    return collate_fn(_samples(data, index))


def take_samples(data, index):
    """Rows ``index`` of any training input, as a list of samples.

    What a user's ``collate_fn`` receives: the rows of arrays, tensors and
    sparse matrices as tensors (sparse rows made dense), of dicts as dicts
    of such rows, and the samples of a Dataset or sequence as it gives them.
    """
    return _samples(data, np.asarray(index, dtype=np.int64))


def subset_rows(data, index):
    """Rows ``index`` (integers) of any training input, as the same kind of data."""
    if isinstance(data, Mapping):
        return {key: subset_rows(value, index) for key, value in data.items()}
    if _batchable(data) or isinstance(data, SliceDataset):
        return data[index]
    # Python integers: a user's Dataset may index with them only.
    return Subset(data, np.asarray(index).tolist())


def pad_rows(data, n):
    """Arrays, sparse matrices or dicts of them with ``n`` zero rows appended.

    Other data are returned as they are.
    """
    if isinstance(data, Mapping):
        return {key: pad_rows(value, n) for key, value in data.items()}
    if sparse.issparse(data):
        zeros = sparse.csr_matrix((n, data.shape[1]), dtype=data.dtype)
        return sparse.vstack([data, zeros], format="csr")
    if isinstance(data, np.ndarray):
        return np.concatenate([data, np.zeros((n, *data.shape[1:]), data.dtype)])
    if isinstance(data, torch.Tensor):
        return torch.cat([data, data.new_zeros((n, *data.shape[1:]))])
    return data


class BatchDataset(Dataset):
    """skorch's Dataset, indexed a whole batch at a time.

    The DataLoader otherwise indexes and collates row by row, which for a
    small MLP costs more than the network itself, the more so for dict
    batches. A batch holds the very tensors that row-wise collation gives
    (same rows, order, values and dtypes), so training is unchanged. Use it
    with :func:`collate_batch` as the DataLoader's ``collate_fn``. Sparse
    matrices are made dense one batch at a time; the samples of a Dataset
    (or a sequence) are read one by one and collated by torch's rule.

    With ``feature_samples=True``, ``X`` is a dict whose ``FEATURES`` entry
    is handed on as the list of the batch's samples (:func:`take_samples`),
    for a :class:`CollateFeatures` to collate with the user's function; its
    other entries (the row index, the weights) and ``y`` are batched as
    before.
    """

    def __init__(self, X, y=None, length=None, feature_samples=False):
        super().__init__(X, y=y, length=length)
        self.feature_samples = feature_samples

    def __getitems__(self, indices):
        index = np.asarray(indices, dtype=np.int64)
        if self.feature_samples:
            X = {
                key: _samples(value, index) if key == FEATURES else _take(value, index)
                for key, value in self.X.items()
            }
        else:
            X = _take(self.X, index)
        if self.y is None:
            # Row by row, skorch yields a dummy tensor([0.]) per row.
            return X, torch.zeros(len(index), 1)
        return X, _take(self.y, index)


def collate_batch(batch):
    """DataLoader ``collate_fn`` for :class:`BatchDataset`: already a batch."""
    return batch


class CollateFeatures:
    """DataLoader ``collate_fn`` that collates the features with the user's function.

    For a :class:`BatchDataset` with ``feature_samples=True``: ``collate_fn``
    receives the list of the batch's feature samples and returns what the
    module's ``forward`` takes (a tensor, or a dict of tensors keyed by its
    arguments); the row index, the weights and the targets are the
    dataset's batches, so the ledger still knows each batch's rows.
    """

    def __init__(self, collate_fn):
        self.collate_fn = collate_fn

    def __call__(self, batch):
        X, y = batch
        return {**X, FEATURES: self.collate_fn(X[FEATURES])}, y


class ZErrorNet(NeuralNet):
    """A skorch net that trains on a dict batch with a Z-Error criterion.

    Training batches are dicts with the features, the training-row index and
    optionally the sample weight; the module only ever sees the features.
    The criterion's :meth:`evaluate` gives the elementwise loss, the mask and
    the z-scores of each batch, its :meth:`reduce` the loss (the
    sample-weighted mean over the inliers); each step hands the evaluation to
    the callbacks as ``zerror`` (:class:`~sk_zerror._ledger.OutlierLedger`
    counts from it).
    A validation batch is scored with the criterion's ``unmasked_loss``
    (recorded as ``valid_loss``): every row counts, and no statistics are
    computed.

    ``mixed_precision=True`` runs the module's forward under
    ``torch.autocast`` in bfloat16 (on the net's device type, CPU included)
    and hands float32 outputs on, so that the loss, its batch statistics and
    the ledger are never computed in reduced precision.
    """

    def __init__(self, *args, mixed_precision=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.mixed_precision = mixed_precision

    def infer(self, x, **fit_params):
        x = to_tensor(x, device=self.device)
        if isinstance(x, Mapping) and FEATURES in x:
            x = x[FEATURES]
        if not self.mixed_precision:
            return self._forward_module(x, fit_params)
        device_type = torch.device(self.device).type
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16):
            return self._forward_module(x, fit_params).float()

    def _forward_module(self, x, fit_params):
        if isinstance(x, Mapping):
            # A dict of inputs is keyed by the module's forward arguments.
            return self.module_(**x, **fit_params)
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
