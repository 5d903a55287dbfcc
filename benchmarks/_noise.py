"""Data sets and the corruptions the benchmarks inject into them."""

import zlib

import numpy as np
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_wine,
    make_classification,
)


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
