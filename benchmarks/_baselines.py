"""Plain skorch networks the benchmarks compare the Z-Error estimators with.

Both wrappers are ordinary scikit-learn estimators (``clone`` works), so that
cleanlab's ``CleanLearning`` can refit them on its folds. They train the same
network as the estimators' default (:func:`mlp`) with Adam, and seed torch
inside ``torch.random.fork_rng`` so that a fit is repeatable and leaves the
global generator alone.
"""

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import EarlyStopping
from skorch.dataset import ValidSplit

# 1 / Phi^{-1}(3/4): the MAD as an estimate of the standard deviation.
MAD_TO_STD = 1.482602218505602


class GeneralizedCrossEntropyLoss(torch.nn.Module):
    """Generalized cross-entropy (Zhang and Sabuncu, NeurIPS 2018).

    ``(1 - p_y ** q) / q``: cross-entropy as ``q -> 0``, mean absolute error
    of the probabilities at ``q = 1``; ``q = 0.7`` is the paper's choice.
    """

    def __init__(self, q=0.7):
        super().__init__()
        self.q = q

    def forward(self, logits, target):
        log_p = torch.log_softmax(logits, dim=-1)
        given = log_p.gather(1, target.long().view(-1, 1)).squeeze(1)
        return ((1.0 - torch.exp(self.q * given)) / self.q).mean()


def mlp(n_features, n_outputs, hidden):
    """The estimators' default network: Linear -> ReLU per hidden layer, Linear.

    The same layers, in the same order and with torch's default
    initialisation, as ``ZErrorRegressor`` and ``ZErrorClassifier`` build with
    their defaults ``activation="relu"`` and ``dropout=0``: the comparisons
    differ in the loss, not in the network.
    """
    layers, width = [], n_features
    for size in hidden:
        layers += [torch.nn.Linear(width, int(size)), torch.nn.ReLU()]
        width = int(size)
    layers.append(torch.nn.Linear(width, n_outputs))
    return torch.nn.Sequential(*layers)


def _softmax_rows(logits):
    return torch.softmax(logits, dim=-1)


# Early stopping of the plain nets: the estimators' validation_fraction and
# n_iter_no_change defaults.
VALIDATION_FRACTION = 0.1
PATIENCE = 10


def net_params(lr, batch_size, epochs, early_stopping=False, stratified=False, seed=0):
    """skorch settings shared by every plain net: Adam, no validation split.

    ``early_stopping=True`` holds out ``VALIDATION_FRACTION`` of the rows
    (stratified for classifiers, drawn with ``seed``) and stops when their
    loss has not improved for ``PATIENCE`` epochs, restoring the best
    epoch's weights: the strongest form of the plain baseline.
    """
    params = dict(
        optimizer=torch.optim.Adam,
        lr=lr,
        batch_size=batch_size,
        max_epochs=epochs,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    if early_stopping:
        params["train_split"] = ValidSplit(
            VALIDATION_FRACTION, stratified=stratified, random_state=seed
        )
        params["callbacks"] = [
            EarlyStopping(monitor="valid_loss", patience=PATIENCE, load_best=True)
        ]
    return params


class PlainMLPRegressor(RegressorMixin, BaseEstimator):
    """A skorch MLP on MSE or Huber loss, with standardised targets.

    ``loss="mse"`` standardises the targets with their mean and standard
    deviation; ``loss="huber"`` (``HuberLoss(delta=1)``) with their median and
    MAD, so that ``delta`` is one robust standard deviation.
    ``early_stopping=True``: see :func:`net_params`.
    """

    def __init__(
        self,
        loss="mse",
        hidden=(100,),
        lr=1e-2,
        batch_size=256,
        epochs=100,
        seed=0,
        early_stopping=False,
    ):
        self.loss = loss
        self.hidden = hidden
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.seed = seed
        self.early_stopping = early_stopping

    def fit(self, X, y):
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64).ravel()
        if self.loss == "huber":
            self.center_ = np.median(y)
            self.scale_ = MAD_TO_STD * np.median(np.abs(y - self.center_))
            criterion = torch.nn.HuberLoss
        else:
            self.center_, self.scale_ = y.mean(), y.std()
            criterion = torch.nn.MSELoss
        self.scale_ = self.scale_ if self.scale_ > 0 else 1.0
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.net_ = NeuralNetRegressor(
                mlp(X.shape[1], 1, self.hidden),
                criterion=criterion,
                **net_params(
                    self.lr,
                    self.batch_size,
                    self.epochs,
                    early_stopping=self.early_stopping,
                    seed=self.seed,
                ),
            )
            target = ((y - self.center_) / self.scale_).astype(np.float32)
            self.net_.fit(X, target.reshape(-1, 1))
        return self

    def predict(self, X):
        out = self.net_.predict(np.asarray(X, dtype=np.float32)).ravel()
        return out.astype(np.float64) * self.scale_ + self.center_


class PlainMLPClassifier(ClassifierMixin, BaseEstimator):
    """A skorch MLP on cross-entropy (``loss="ce"``) or generalized CE (``"gce"``).

    ``early_stopping=True``: see :func:`net_params` (stratified hold-out).
    """

    def __init__(
        self,
        loss="ce",
        q=0.7,
        hidden=(100,),
        lr=1e-2,
        batch_size=256,
        epochs=100,
        seed=0,
        early_stopping=False,
    ):
        self.loss = loss
        self.q = q
        self.hidden = hidden
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.seed = seed
        self.early_stopping = early_stopping

    def fit(self, X, y):
        X = np.asarray(X, dtype=np.float32)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        criterion = (
            dict(criterion=GeneralizedCrossEntropyLoss, criterion__q=self.q)
            if self.loss == "gce"
            else dict(criterion=torch.nn.CrossEntropyLoss)
        )
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.net_ = NeuralNetClassifier(
                mlp(X.shape[1], len(self.classes_), self.hidden),
                predict_nonlinearity=_softmax_rows,
                **criterion,
                **net_params(
                    self.lr,
                    self.batch_size,
                    self.epochs,
                    early_stopping=self.early_stopping,
                    stratified=True,
                    seed=self.seed,
                ),
            )
            self.net_.fit(X, encoder.transform(y).astype(np.int64))
        return self

    def predict_proba(self, X):
        return self.net_.predict_proba(np.asarray(X, dtype=np.float32))

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
