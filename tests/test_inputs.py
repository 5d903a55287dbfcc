"""Inputs beyond 2-D arrays: any rank, tensors, sparse, dicts, Datasets, collate_fn."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from skorch.helper import SliceDataset, SliceDict
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset, TensorDataset

from sk_zerror import ZErrorClassifier, ZErrorRegressor
from sk_zerror._inputs import dataset_features

FAST = dict(max_epochs=4, batch_size=64, random_state=0)


class SmallCNN(nn.Module):
    def __init__(self, n_outputs=10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * 8 * 8, n_outputs),
        )

    def forward(self, X):
        return self.body(X)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.left = nn.Linear(3, 1)
        self.right = nn.Linear(2, 1)

    def forward(self, left, right):
        return self.left(left) + self.right(right)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16.0).astype(np.float32)
    return X.reshape(-1, 1, 8, 8), y[:300]


@pytest.mark.parametrize("as_tensor", [False, True])
def test_images_of_any_rank_train_a_cnn(digits, as_tensor):
    X, y = digits
    X_fit = torch.as_tensor(X) if as_tensor else X
    clf = ZErrorClassifier(module=SmallCNN, **FAST).fit(X_fit, y)
    assert clf.n_features_in_ == 1  # the channels, scikit-learn's shape[1]
    assert clf.outlier_mask_.shape == clf.outlier_scores_.shape == (300,)
    assert clf.predict_proba(X).shape == (300, 10)
    assert (clf.predict(X) == y).mean() > 0.5
    # The same data, fitted as arrays or tensors, give the same network.
    other = ZErrorClassifier(module=SmallCNN, **FAST).fit(X, y)
    assert_allclose(clf.predict_proba(X), other.predict_proba(X), atol=1e-6)


def test_the_default_mlp_needs_a_table(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"module=None builds .* 2-D tables.*"):
        ZErrorClassifier(**FAST).fit(X, y)


def test_sparse_gives_the_dense_fit_and_is_made_dense_a_batch_at_a_time(
    monkeypatch,
):
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(200, 30)) * (rng.random((200, 30)) < 0.2)
    y = dense[:, :5].sum(axis=1)
    y[:10] += 20
    csr = sparse.csr_matrix(dense)
    rows_made_dense = []
    toarray = type(csr).toarray

    def spy(self, *args, **kwargs):
        rows_made_dense.append(self.shape[0])
        return toarray(self, *args, **kwargs)

    monkeypatch.setattr(type(csr), "toarray", spy)
    reg_sparse = ZErrorRegressor(**FAST).fit(csr, y)
    pred_sparse = reg_sparse.predict(csr)
    assert rows_made_dense and max(rows_made_dense) <= 64
    reg_dense = ZErrorRegressor(**FAST).fit(dense, y)
    assert_allclose(pred_sparse, reg_dense.predict(dense), rtol=1e-5, atol=1e-5)
    assert_array_equal(reg_sparse.outlier_mask_, reg_dense.outlier_mask_)
    assert reg_sparse.outlier_mask_[:10].all()


def test_pipeline_with_a_sparse_one_hot_encoder():
    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "green", "blue"], size=240)
    size = rng.normal(size=240)
    X = np.column_stack([colour, size]).astype(object)
    y = (colour == "red") ^ (size > 0)
    features = make_column_transformer(
        (OneHotEncoder(), [0]), (StandardScaler(), [1]), sparse_threshold=1.0
    )
    assert sparse.issparse(features.fit_transform(X))
    model = make_pipeline(features, ZErrorClassifier(**FAST)).fit(X, y)
    assert model.predict(X).shape == (240,)


def test_dict_inputs_reach_forward_by_name():
    rng = np.random.default_rng(0)
    X = {"left": rng.normal(size=(120, 3)), "right": rng.normal(size=(120, 2))}
    y = X["left"][:, 0] - X["right"][:, 1]
    reg = ZErrorRegressor(module=TwoInputs, **FAST).fit(X, y)
    assert reg.outlier_mask_.shape == (120,)
    assert not hasattr(reg, "n_features_in_")
    assert reg.predict(X).shape == (120,)
    # skorch's SliceDict lets scikit-learn's search split the dict.
    search = GridSearchCV(
        ZErrorRegressor(module=TwoInputs, **FAST), {"sigma": [3.0, 5.0]}, cv=2
    ).fit(SliceDict(**X), y)
    assert search.best_params_["sigma"] in (3.0, 5.0)


def test_dict_inputs_of_different_lengths_are_refused():
    X = {"left": np.zeros((10, 3)), "right": np.zeros((9, 2))}
    with pytest.raises(ValueError, match="different numbers of samples"):
        ZErrorRegressor(module=TwoInputs, **FAST).fit(X, np.zeros(10))
    with pytest.raises(ValueError, match=r"X\['left'\].*NaN"):
        ZErrorRegressor(module=TwoInputs, **FAST).fit(
            {"left": np.full((10, 3), np.nan), "right": np.zeros((10, 2))},
            np.zeros(10),
        )


def test_a_dict_key_forward_does_not_take_is_named():
    X = {"left": np.zeros((10, 3)), "middle": np.zeros((10, 2))}
    with pytest.raises(ValueError, match="failed on the first samples.*middle"):
        ZErrorRegressor(module=TwoInputs, **FAST).fit(X, np.zeros(10))


def test_datasets_and_slice_datasets(digits):
    X, y = digits
    dataset = TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    clf = ZErrorClassifier(module=SmallCNN, **FAST).fit(dataset, y)
    assert clf.outlier_mask_.shape == (300,)
    assert clf.predict(dataset).shape == (300,)
    reference = ZErrorClassifier(module=SmallCNN, **FAST).fit(X, y)
    assert_allclose(clf.predict_proba(X), reference.predict_proba(X), atol=1e-5)
    # A Dataset of bare samples is its own features.
    bare = TensorDataset(torch.as_tensor(X))
    assert dataset_features(bare) is bare
    # skorch's SliceDataset for scikit-learn's cross-validation.
    scores = cross_val_score(
        ZErrorClassifier(module=SmallCNN, **FAST), SliceDataset(dataset), y, cv=2
    )
    assert scores.shape == (2,) and (scores > 0.3).all()


def test_a_dataset_without_y_is_a_clear_error(digits):
    X, y = digits
    dataset = TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    with pytest.raises(ValueError, match="needs y with a Dataset X"):
        ZErrorClassifier(module=SmallCNN, **FAST).fit(dataset, None)
    for estimator in (ZErrorClassifier, ZErrorRegressor):
        with pytest.raises(ValueError, match="needs y with a Dataset X"):
            estimator(module=SmallCNN, **FAST).fit(dataset)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        ZErrorClassifier(module=SmallCNN, **FAST).fit(dataset, y[:10])


class Scalar(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, X):
        return self.linear(X).sum()


def test_a_module_returning_a_scalar_is_a_clear_error():
    X = np.zeros((20, 4))
    with pytest.raises(ValueError, match=r"outputs of shape \(\) for 2 samples"):
        ZErrorRegressor(module=Scalar, **FAST).fit(X, np.arange(20.0))


class Sequences(Dataset):
    """(token ids, label) pairs of lengths 3 to 11: what a padding collate is for."""

    def __init__(self, sequences, labels):
        self.sequences, self.labels = sequences, labels

    def __len__(self):
        return len(self.sequences)

    def __getitem__(self, i):
        return self.sequences[i], self.labels[i]


class MeanPool(nn.Module):
    """Embeddings of the tokens (0 is padding), averaged, then a linear layer."""

    def __init__(self, n_outputs=1):
        super().__init__()
        self.embed = nn.Embedding(20, 8, padding_idx=0)
        self.out = nn.Linear(8, n_outputs)

    def forward(self, X, lengths=None):
        if lengths is None:
            lengths = (X != 0).sum(1)
        pooled = self.embed(X).sum(1) / lengths.unsqueeze(1).clamp(min=1)
        return self.out(pooled)


def pad(samples):
    return pad_sequence(samples, batch_first=True)


def pad_with_lengths(samples):
    """A dict keyed by forward's arguments."""
    lengths = torch.tensor([len(sample) for sample in samples])
    return {"X": pad(samples), "lengths": lengths}


@pytest.fixture(scope="module")
def sequences():
    """300 sequences: class 1 draws tokens 10-18, class 0 tokens 1-9; 30 flipped."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    tokens = [
        torch.as_tensor(rng.integers(1, 10, rng.integers(3, 12)) + 9 * label)
        for label in labels
    ]
    flipped = rng.choice(300, 30, replace=False)
    noisy = labels.copy()
    noisy[flipped] = 1 - noisy[flipped]
    return Sequences(tokens, noisy), noisy, flipped


SEQUENCE_FIT = dict(module=MeanPool, max_epochs=20, random_state=0)


def test_variable_length_sequences_train_with_a_padding_collate(sequences):
    dataset, y, flipped = sequences
    # Without a collate function, torch's rule cannot stack them.
    match = "cannot be batched by torch's rule.*pass .* as iterator_train__collate_fn"
    with pytest.raises(ValueError, match=match):
        ZErrorClassifier(**SEQUENCE_FIT).fit(dataset, y)
    clf = ZErrorClassifier(iterator_train__collate_fn=pad, **SEQUENCE_FIT)
    clf.fit(dataset, y)
    assert clf.outlier_mask_.shape == clf.outlier_scores_.shape == (300,)
    assert clf.predict(dataset).shape == (300,)
    assert clf.predict_proba(dataset).shape == (300, 2)
    # The flags land on the flipped rows (10% of all) far more than by chance.
    flagged = np.flatnonzero(clf.outlier_mask_)
    assert np.isin(flagged, flipped).mean() > 0.4
    assert clf.outlier_mask_[flipped].mean() > 0.7
    reg = ZErrorRegressor(iterator_valid__collate_fn=pad, **SEQUENCE_FIT)
    reg.fit(dataset, y.astype(float))
    assert reg.outlier_mask_.shape == (300,)
    assert reg.predict(dataset).shape == (300,)


def test_a_collate_returning_a_dict_reaches_forward_by_name(sequences):
    dataset, y, _ = sequences
    calls = []
    module = MeanPool()
    # The hook is copied with the module; it records each forward's arguments.
    module.register_forward_pre_hook(
        lambda m, args, kwargs: calls.append((args, sorted(kwargs))), with_kwargs=True
    )
    reg = ZErrorRegressor(
        module=module,
        max_epochs=2,
        random_state=0,
        iterator_train__collate_fn=pad_with_lengths,
    ).fit(dataset, y.astype(float))
    assert calls and all(call == ((), ["X", "lengths"]) for call in calls)
    calls.clear()
    assert reg.predict(dataset).shape == (300,)
    assert calls and all(call == ((), ["X", "lengths"]) for call in calls)
