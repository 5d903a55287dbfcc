import numpy as np
import torch
from numpy.testing import assert_allclose

from sk_zerror import ZErrorMSELoss
from sk_zerror._network import ROW, WEIGHT, ZErrorNet, make_mlp


def test_make_mlp_layers():
    mlp = make_mlp(5, 2, [8, 4], "tanh", 0.1)
    kinds = [type(layer).__name__ for layer in mlp]
    assert kinds == ["Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout", "Linear"]
    assert mlp(torch.zeros(3, 5)).shape == (3, 2)
    assert [type(x).__name__ for x in make_mlp(5, 1, [], "relu", 0.0)] == ["Linear"]


def make_net(**kwargs):
    net = ZErrorNet(
        torch.nn.Linear(2, 1),
        criterion=ZErrorMSELoss(sigma=1.0, reduction="none"),
        max_epochs=1,
        batch_size=8,
        train_split=None,
        verbose=0,
        **kwargs,
    )
    return net.initialize().initialize_ledger(8)


def test_get_loss_is_the_weighted_masked_mean_and_fills_the_ledger():
    net = make_net()
    y_pred = torch.tensor([[0.0]] * 7 + [[50.0]])
    y_true = torch.zeros(8, 1)
    weight = torch.tensor([1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    y_pred[:, 0] += torch.arange(8) * 0.1
    X = {"X": torch.zeros(8, 2), ROW: torch.arange(8), WEIGHT: weight}
    loss = net.get_loss(y_pred, y_true, X=X, training=True)
    squared = (y_pred[:7, 0] ** 2) * weight[:7]
    assert_allclose(loss.item(), (squared.sum() / weight[:7].sum()).item(), rtol=1e-6)
    assert net.ledger_seen_.tolist() == [1.0] * 8
    assert net.ledger_masked_.tolist() == [0.0] * 7 + [1.0]
    net.get_loss(y_pred, y_true, X=X, training=False)
    assert net.ledger_seen_.sum().item() == 8


def test_infer_feeds_only_the_features_to_the_module():
    net = make_net()
    X = {"X": np.ones((3, 2), dtype=np.float32), ROW: np.arange(3)}
    out = net.infer(X)
    assert out.shape == (3, 1)
    assert_allclose(
        out.detach().numpy(), net.infer(np.ones((3, 2), np.float32)).detach().numpy()
    )
