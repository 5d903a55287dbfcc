"""Data sets and the corruptions the benchmarks inject into them."""

import zlib

import numpy as np
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_wine,
    make_classification,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

PROBABILITY_MODELS = ("logistic", "mlp")


def load_classification(name):
    """Features and clean labels of a data set, by name."""
    if name == "digits":
        return load_digits(return_X_y=True)
    if name == "breast_cancer":
        return load_breast_cancer(return_X_y=True)
    if name == "wine":
        return load_wine(return_X_y=True)
    if name == "synthetic4":
        return make_classification(
            2000,
            20,
            n_informative=8,
            n_classes=4,
            n_clusters_per_class=1,
            class_sep=1.5,
            random_state=7,
        )
    if name == "synthetic2":
        return make_classification(
            1000, 20, n_informative=6, class_sep=1.2, flip_y=0, random_state=8
        )
    if name == "synthetic20":
        # Many classes, some overlap: a linear model reaches 90% accuracy on
        # the clean labels (72% at class_sep=1.5, where the classes' own
        # overlap hides any label noise below 20%).
        return make_classification(
            4000,
            30,
            n_informative=20,
            n_redundant=0,
            n_classes=20,
            n_clusters_per_class=1,
            class_sep=2.0,
            flip_y=0,
            random_state=20,
        )
    raise ValueError(f"unknown data set {name!r}")


def rng_for(*parts):
    """A generator seeded by the configuration, stable across runs."""
    key = "/".join(map(str, parts)).encode()
    return np.random.default_rng([zlib.crc32(key), int(parts[-1])])


def corrupt_labels(y, noise, rate, rng):
    """Noisy copy of the integer labels ``y`` (0 to K-1).

    ``noise="symmetric"``: ``round(rate * n)`` random rows get one of the other
    classes, uniformly. ``noise="class"`` (class-dependent): with more than two
    classes, ``round(rate * n_c)`` rows of every class ``c`` get class
    ``(c + 1) % K``; with two classes, ``round(rate * n_1)`` rows of class 1
    only get class 0 (one-sided).
    """
    n_classes = int(y.max()) + 1
    noisy = y.copy()
    if noise == "symmetric":
        rows = rng.choice(len(y), round(rate * len(y)), replace=False)
        noisy[rows] = (y[rows] + rng.integers(1, n_classes, len(rows))) % n_classes
        return noisy
    sources = [1] if n_classes == 2 else range(n_classes)
    for c in sources:
        members = np.flatnonzero(y == c)
        rows = rng.choice(members, round(rate * len(members)), replace=False)
        noisy[rows] = (c + 1) % n_classes
    return noisy


def add_gross_errors(y, rate, rng, size=(5.0, 15.0)):
    """Add +-U(size) standard deviations of ``y`` to ``round(rate * n)`` rows.

    Returns the noisy copy and the boolean mask of corrupted rows.
    """
    n_bad = int(round(rate * len(y)))
    bad = rng.choice(len(y), n_bad, replace=False)
    shift = rng.uniform(*size, n_bad) * y.std()
    noisy = y.copy()
    noisy[bad] += rng.choice([-1.0, 1.0], n_bad) * shift
    truth = np.zeros(len(y), dtype=bool)
    truth[bad] = True
    return noisy, truth


def probability_model(model, seed=0):
    """An unfitted scikit-learn classifier: ``"logistic"`` or a small ``"mlp"``."""
    if model == "logistic":
        head = LogisticRegression(max_iter=2000)
    elif model == "mlp":
        # 100 epochs of Adam: within 1% of the accuracy of 200 on the
        # benchmark sets, in half the time (it stops before converging).
        head = MLPClassifier(
            hidden_layer_sizes=(64,), alpha=1e-3, max_iter=100, random_state=seed
        )
    else:
        raise ValueError(f"model must be one of {PROBABILITY_MODELS}, got {model!r}")
    return make_pipeline(StandardScaler(), head)


def out_of_fold_probabilities(X, y, model="logistic", seed=0, n_splits=5):
    """Out-of-fold ``predict_proba`` of ``probability_model(model)`` on ``(X, y)``.

    Stratified, shuffled ``n_splits``-fold cross-validation seeded by ``seed``
    (which also seeds the MLP), so the result is deterministic.
    """
    cv = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    return cross_val_predict(
        probability_model(model, seed), X, y, cv=cv, method="predict_proba"
    )


def flip_plausible(y, probs, rate, rng):
    """Instance-dependent label noise from a model's probabilities on clean labels.

    Exactly ``round(rate * n)`` rows are flipped. They are drawn without
    replacement with probability proportional to their ambiguity
    ``1 - probs[i, y[i]]`` (successive weighted sampling), so a row's chance
    of being flipped rises with how unsure the model is of its clean label;
    a flipped row gets a class drawn from the model's probabilities of the
    other classes (uniformly when they are all zero). This mimics annotators,
    who err on the ambiguous rows and towards the classes those rows resemble,
    unlike symmetric or class-pair flips, which hit rows at random.

    Parameters
    ----------
    y : ndarray of int, shape (n,)
        Clean labels ``0..K-1``.
    probs : ndarray of shape (n, K)
        Probabilities of a model fitted on the clean labels, ideally out of
        fold (:func:`out_of_fold_probabilities`).
    rate : float
        Share of rows to flip, in [0, 1).
    rng : numpy Generator or int
        Source of randomness: the same seed gives the same flips.

    Returns
    -------
    noisy : ndarray of int, shape (n,)
    flipped : ndarray of bool, shape (n,)
        ``noisy != y``.
    """
    rng = np.random.default_rng(rng)
    y = np.asarray(y)
    probs = np.asarray(probs, dtype=np.float64)
    n, n_classes = probs.shape
    others = probs.copy()
    others[np.arange(n), y] = 0.0
    # A floor keeps every row drawable when few rows are ambiguous.
    ambiguity = np.maximum(others.sum(axis=1), 1e-9)
    rows = rng.choice(n, round(rate * n), replace=False, p=ambiguity / ambiguity.sum())
    targets = others[rows]
    targets[targets.sum(axis=1) <= 0] = 1.0
    targets[np.arange(len(rows)), y[rows]] = 0.0
    targets /= targets.sum(axis=1, keepdims=True)
    cumulative = targets.cumsum(axis=1)
    draw = rng.uniform(size=(len(rows), 1)) * cumulative[:, -1:]
    new = np.minimum((cumulative <= draw).sum(axis=1), n_classes - 1)
    # Rounding at the top of the cumulative sum could land on the clean class.
    new = np.where(new == y[rows], targets.argmax(axis=1), new)
    noisy = y.copy()
    noisy[rows] = new
    return noisy, noisy != y


def instance_dependent_labels(X, y, rate, rng, model="logistic", probs=None):
    """Labels flipped by :func:`flip_plausible` from a model fitted on ``y``.

    ``probs`` (the out-of-fold probabilities of ``model`` on the clean labels)
    are computed with :func:`out_of_fold_probabilities` (seed 0) unless given,
    so that several noise draws can share one fit.

    Returns
    -------
    noisy : ndarray of int, shape (n,)
    flipped : ndarray of bool, shape (n,)
    """
    if probs is None:
        probs = out_of_fold_probabilities(X, y, model)
    return flip_plausible(y, probs, rate, rng)
