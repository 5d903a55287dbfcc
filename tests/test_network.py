import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy import sparse
from skorch.dataset import Dataset
from skorch.helper import SliceDataset
from torch.utils.data import DataLoader, Subset

from sk_zerror._network import (
    FEATURES,
    ROW,
    WEIGHT,
    BatchDataset,
    CollateFeatures,
    collate_batch,
    make_mlp,
    subset_rows,
    take_rows,
    take_samples,
)


def test_make_mlp_layers():
    mlp = make_mlp(5, 2, [8, 4], "tanh", 0.1)
    kinds = [type(layer).__name__ for layer in mlp]
    assert kinds == ["Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout", "Linear"]
    assert mlp(torch.zeros(3, 5)).shape == (3, 2)
    assert [type(x).__name__ for x in make_mlp(5, 1, [], "relu", 0.0)] == ["Linear"]


def test_get_loss_is_the_weighted_masked_mean(make_net):
    net = make_net()
    y_pred = torch.tensor([[0.0]] * 7 + [[50.0]])
    y_true = torch.zeros(8, 1)
    weight = torch.tensor([1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    y_pred[:, 0] += torch.arange(8) * 0.1
    X = {"X": torch.zeros(8, 2), ROW: torch.arange(8), WEIGHT: weight}
    loss = net.get_loss(y_pred, y_true, X=X, training=True)
    squared = (y_pred[:7, 0] ** 2) * weight[:7]
    assert_allclose(loss.item(), (squared.sum() / weight[:7].sum()).item(), rtol=1e-6)
    output = net.evaluate_loss(y_pred, y_true, X=X)
    assert output.mask[:, 0].tolist() == [True] * 7 + [False]
    assert_allclose(output.count.item(), weight[:7].sum().item())


def test_infer_feeds_only_the_features_to_the_module(make_net):
    net = make_net()
    X = {"X": np.ones((3, 2), dtype=np.float32), ROW: np.arange(3)}
    out = net.infer(X)
    assert out.shape == (3, 1)
    assert_allclose(
        out.detach().numpy(), net.infer(np.ones((3, 2), np.float32)).detach().numpy()
    )


def _batches(dataset, collate_fn=None):
    kwargs = {} if collate_fn is None else {"collate_fn": collate_fn}
    torch.manual_seed(0)
    return list(DataLoader(dataset, batch_size=4, shuffle=True, **kwargs))


@pytest.mark.parametrize(
    "y",
    [
        None,
        np.arange(10, dtype=np.int64),
        np.linspace(0, 1, 10, dtype=np.float32).reshape(-1, 1),
    ],
)
def test_batch_dataset_gives_the_batches_of_row_wise_collation(y):
    X = {
        "X": np.arange(30, dtype=np.float32).reshape(10, 3),
        ROW: np.arange(10),
        WEIGHT: np.linspace(1, 2, 10, dtype=np.float32),
    }
    for make in (lambda d: d, lambda d: Subset(d, [9, 2, 4, 0, 7, 1])):
        rowwise = _batches(make(Dataset(X, y)))
        batched = _batches(make(BatchDataset(X, y)), collate_batch)
        assert len(rowwise) == len(batched)
        for (xa, ya), (xb, yb) in zip(rowwise, batched, strict=True):
            for key in xa:
                assert xa[key].dtype == xb[key].dtype
                assert torch.equal(xa[key], xb[key])
            if y is None:
                continue
            assert ya.dtype == yb.dtype and torch.equal(ya, yb)


def test_mixed_precision_runs_the_module_in_bfloat16_and_returns_float32(make_net):
    net = make_net(mixed_precision=True)
    seen = []
    net.module_.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    out = net.infer({"X": np.ones((3, 2), dtype=np.float32), ROW: np.arange(3)})
    assert seen == [torch.bfloat16]
    assert out.dtype == torch.float32
    plain = make_net()
    assert plain.infer(np.ones((3, 2), dtype=np.float32)).dtype == torch.float32


class Ragged(torch.utils.data.Dataset):
    """Sequences of lengths 1, 2, ..., n with their label: (x, y) pairs."""

    def __init__(self, n):
        self.seqs = [torch.arange(1, length + 1) for length in range(1, n + 1)]

    def __len__(self):
        return len(self.seqs)

    def __getitem__(self, i):
        return self.seqs[i], i % 2


def pad(samples):
    return torch.nn.utils.rnn.pad_sequence(samples, batch_first=True)


def test_take_samples_gives_rows_dict_rows_and_dataset_samples():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    rows = take_samples(X, [2, 0])
    assert [row.tolist() for row in rows] == [[6, 7, 8], [0, 1, 2]]
    dense = take_samples(sparse.csr_matrix(X), [2, 0])
    assert all(torch.equal(a, b) for a, b in zip(dense, rows, strict=True))
    dicts = take_samples({"a": X, "b": np.arange(4)}, [3, 1])
    assert [sorted(d) for d in dicts] == [["a", "b"], ["a", "b"]]
    assert dicts[0]["a"].tolist() == [9, 10, 11] and dicts[1]["b"].item() == 1
    sequences = take_samples(Ragged(5), [3, 0])
    assert [x.tolist() for x, _ in sequences] == [[1, 2, 3, 4], [1]]
    # take_rows collates them with the user's function instead of torch's.
    features = Ragged(5).seqs
    padded = take_rows(features, [3, 0], collate_fn=pad)
    assert padded.tolist() == [[1, 2, 3, 4], [1, 0, 0, 0]]
    with pytest.raises(RuntimeError, match="stack expects each tensor"):
        take_rows(features, [3, 0])


def test_feature_samples_reach_the_user_collate_with_rows_and_targets_batched():
    X = {FEATURES: SliceDataset(Ragged(10), idx=0), ROW: np.arange(10)}
    y = np.arange(10, dtype=np.int64) % 2
    dataset = BatchDataset(X, y, feature_samples=True)
    batches = _batches(dataset, CollateFeatures(pad))
    assert len(batches) == 3
    for Xb, yb in batches:
        rows = Xb[ROW]
        lengths = rows + 1
        assert Xb[FEATURES].shape == (len(rows), int(lengths.max()))
        assert (Xb[FEATURES] != 0).sum(1).tolist() == lengths.tolist()
        assert torch.equal(yb, rows % 2)
    assert sorted(torch.cat([Xb[ROW] for Xb, _ in batches]).tolist()) == list(range(10))


class _IntIndexedSamples(torch.utils.data.Dataset):
    """A Dataset that, like many users' own, accepts Python integers only."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        if type(i) is not int:
            raise TypeError(f"an int is required, got {type(i).__name__}")
        return torch.full((2,), float(i))


def test_subset_rows_of_a_dataset_index_it_with_python_integers():
    subset = subset_rows(_IntIndexedSamples(), np.array([4, 1], dtype=np.int64))
    assert isinstance(subset, Subset)
    assert [float(subset[i][0]) for i in range(len(subset))] == [4.0, 1.0]
