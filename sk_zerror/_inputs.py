"""The estimators' inputs: whatever skorch's NeuralNet accepts, checked cheaply.

Arrays of any rank, torch tensors, DataFrames and scipy sparse matrices are
validated by scikit-learn (finite numbers, at least one sample, the features
seen at fit); dicts of them (keyed by the module's ``forward`` arguments,
skorch's ``SliceDict`` too) value by value; torch Datasets and skorch's
``SliceDataset`` only by their length, since reading them means loading
every sample. Nothing is copied that need not be: sparse matrices stay
sparse (made dense one batch at a time), and Datasets are read batch by
batch.
"""

from collections.abc import Mapping

import numpy as np
import torch
from scipy import sparse
from sklearn.utils.validation import check_array
from skorch.helper import SliceDataset

__all__ = [
    "as_float32",
    "check_features",
    "dataset_features",
    "is_dataset",
    "is_table",
]

FLOATS = [np.float32, np.float64]


def is_dataset(X):
    """A torch Dataset or skorch's SliceDataset: read sample by sample."""
    return isinstance(X, torch.utils.data.Dataset | SliceDataset)


def is_table(X):
    """2-D data the default MLP takes: (n_samples, n_features)."""
    return getattr(X, "ndim", None) == 2 and (
        sparse.issparse(X) or not isinstance(X, Mapping)
    )


def dataset_features(dataset):
    """The features of a Dataset: its samples, or their first element.

    A torch Dataset of ``(x, y)`` pairs (skorch's convention) gives ``x``
    through a ``SliceDataset``; one that yields bare samples is its own
    features.
    """
    if isinstance(dataset, SliceDataset) or len(dataset) == 0:
        return dataset
    first = dataset[0]
    if isinstance(first, tuple | list) and len(first) >= 2:
        return SliceDataset(dataset, idx=0)
    return dataset


def as_float32(array):
    """Floating arrays and tensors as float32 (a C-contiguous, writable copy
    only where one is needed); integer ones as they are."""
    if isinstance(array, torch.Tensor):
        return array.float() if array.is_floating_point() else array
    if np.issubdtype(array.dtype, np.floating):
        return np.require(array, dtype=np.float32, requirements=["C", "W"])
    return array


def _check_value(name, value):
    """One value of a dict input: an array or tensor with a first axis."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"Input X[{name!r}] contains NaN or infinity.")
        tensor = value
    else:
        try:
            tensor = check_array(
                value,
                accept_sparse="csr",
                dtype=None,
                ensure_2d=False,
                allow_nd=True,
                ensure_all_finite=True,
                input_name=f"X[{name!r}]",
            )
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"X[{name!r}]: {exc}") from None
        if tensor.dtype == object:
            raise TypeError(
                f"X[{name!r}] holds Python objects ({type(np.ravel(value)[0])!r}); "
                "each value of a dict X must be a numeric array or tensor."
            )
    if tensor.ndim == 0:
        raise ValueError(f"X[{name!r}] is a scalar; it needs one row per sample.")
    return as_float32(tensor)


def check_features(X, validate, **check_params):
    """``X`` ready for the network (float32 where floating) and its length.

    Parameters
    ----------
    X : array-like, sparse matrix, tensor, dict, Dataset or SliceDataset
    validate : callable
        ``validate(X, **check_params)`` validates array-likes (the caller's
        ``validate_data`` of the estimator, with or without ``y``) and
        returns what ``validate_data`` returns; it is called with
        ``X="no_validation"`` for dicts and Datasets, to check ``y`` alone.
    **check_params
        Passed on to ``validate`` for array-likes.

    Returns
    -------
    X : the checked data
    rest : what ``validate`` returned besides X (y, when it was given one)
    n_samples : int
    """
    # scipy's DOK matrix is a dict too: sparse first.
    if isinstance(X, Mapping) and not sparse.issparse(X):
        if not X:
            raise ValueError("X is an empty dict; it needs one entry per input.")
        X = {key: _check_value(key, value) for key, value in X.items()}
        lengths = {key: value.shape[0] for key, value in X.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(
                "the values of dict X have different numbers of samples: "
                + ", ".join(f"{key!r}: {n}" for key, n in lengths.items())
            )
        return X, validate("no_validation"), next(iter(lengths.values()))
    if is_dataset(X):
        return dataset_features(X), validate("no_validation"), len(X)
    if isinstance(X, torch.Tensor):
        if X.ndim < 2:
            raise ValueError(
                "Expected a tensor of at least 2 dimensions (n_samples, ...), "
                f"got shape {tuple(X.shape)}."
            )
        X = X.detach().cpu().numpy()
    out = validate(X, accept_sparse="csr", dtype=FLOATS, allow_nd=True, **check_params)
    X, rest = (out[0], out[1]) if isinstance(out, tuple) else (out, None)
    if sparse.issparse(X):
        X = X.astype(np.float32)
        X.sort_indices()
    else:
        X = as_float32(X)
    return X, rest, X.shape[0]
