"""Label errors in images: one ZErrorClassifier fit against K-fold cleanlab.

Three parts (``--dataset``), noisy training labels and clean test labels in
each; noise is symmetric, or instance-dependent (flipped to the class a
reference model finds second likeliest, more often for ambiguous images).

``digits`` and ``shapes`` (scikit-learn's digits as 1x8x8 images; generated
1x16x16 images of ten glyphs, :func:`make_shapes`), with a small CNN:

- ``zerror``: ``ZErrorClassifier(module=CNN)`` at its defaults: test
  accuracy, detection F1 of ``outlier_mask_``, fit CPU time (one fit);
- ``plain``: the same CNN trained by skorch (Adam, lr 1e-2, 100 epochs,
  batch 256, every row): test accuracy;
- ``cleanlab``: ``find_label_issues`` on 5-fold out-of-fold probabilities of
  the plain CNN: detection F1, CPU time of the 5 fits;
- ``cleanlearning``: cleanlab's ``CleanLearning`` around the plain CNN (5
  folds, then a fit on the kept rows): test accuracy, CPU time;
- ``oracle``: the plain CNN on the true labels: test accuracy.

``embeddings``: cleanlab's tutorial workflow on fixed features. The plain CNN
is trained on clean labels of one part of the shapes (the "pretrained"
extractor); its penultimate activations embed a disjoint part, whose labels
get the noise, and a test part:

- ``zerror``: ``ZErrorClassifier()`` (its default MLP) on the embeddings;
- ``cleanlab``: ``find_label_issues`` on 5-fold ``cross_val_predict``
  probabilities of ``LogisticRegression()``;
- ``cleanlearning``: ``CleanLearning(LogisticRegression())``;
- ``logistic``, ``mlp``: ``LogisticRegression()``, ``MLPClassifier()``;
- ``oracle``: ``MLPClassifier()`` on the true labels.

``python benchmarks/bench_images.py [--dataset digits|shapes|embeddings]
[--cells symmetric:0.2 instance:0.4] [--seeds 0 1] [--quick]``; prints
Markdown.
"""

import argparse
import platform
import time
import warnings

import numpy as np
import torch
from _common import cpu_timed
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import cross_val_predict, train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits
from torch import nn

from sk_zerror import ZErrorClassifier

CELLS = {
    "digits": [
        (kind, rate)
        for kind in ("symmetric", "instance")
        for rate in (0.1, 0.2, 0.3, 0.4)
    ],
    "shapes": [
        ("symmetric", 0.2),
        ("symmetric", 0.4),
        ("instance", 0.2),
        ("instance", 0.4),
    ],
    "embeddings": [("symmetric", 0.2), ("instance", 0.2)],
}
N_SHAPES = {"shapes": 3000, "embeddings": 4000}
N_CLASSES = 10


class SmallCNN(nn.Module):
    """Two 3x3 convolutions, max-pools to a 4x4 map, and a linear layer.

    The second pool is adaptive (the identity on 8x8 images, a 2x2 pool on
    16x16), so the last layer is the same for every image size.
    """

    def __init__(self, channels=16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveMaxPool2d(4),
            nn.Flatten(),
            nn.Linear(2 * channels * 16, N_CLASSES),
        )

    def forward(self, X):
        return self.body(X)

    def embed(self, X):
        """The penultimate activations (the input of the last layer)."""
        return self.body[:-1](X)


# -- generated images ---------------------------------------------------------


def _segments(px, py, segments):
    """Distance from each pixel (px, py) to the nearest of the segments."""
    best = np.full(px.shape, np.inf)
    for (ax, ay), (bx, by) in segments:
        dx, dy = bx - ax, by - ay
        t = np.clip(((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy), 0, 1)
        best = np.minimum(best, np.hypot(px - ax - t * dx, py - ay - t * dy))
    return best


def _outline(corners):
    return list(zip(corners, corners[1:] + corners[:1], strict=True))


_SQUARE = [(-0.75, -0.75), (0.75, -0.75), (0.75, 0.75), (-0.75, 0.75)]
_TRIANGLE = [(0.0, -0.9), (0.85, 0.6), (-0.85, 0.6)]
# Distance, in glyph units, from each pixel to the glyph (0 inside filled ones).
GLYPHS = (
    ("bar", lambda x, y: _segments(x, y, [((-1, 0), (1, 0))])),
    ("cross", lambda x, y: _segments(x, y, [((-1, 0), (1, 0)), ((0, -1), (0, 1))])),
    ("ring", lambda x, y: np.abs(np.hypot(x, y) - 0.8)),
    ("disc", lambda x, y: np.maximum(np.hypot(x, y) - 0.7, 0)),
    ("square", lambda x, y: _segments(x, y, _outline(_SQUARE))),
    (
        "block",
        lambda x, y: np.hypot(
            np.maximum(np.abs(x) - 0.65, 0), np.maximum(np.abs(y) - 0.65, 0)
        ),
    ),
    ("triangle", lambda x, y: _segments(x, y, _outline(_TRIANGLE))),
    (
        "ell",
        lambda x, y: _segments(
            x, y, [((-0.7, -1), (-0.7, 0.8)), ((-0.7, 0.8), (0.8, 0.8))]
        ),
    ),
    (
        "tee",
        lambda x, y: _segments(x, y, [((-1, -0.8), (1, -0.8)), ((0, -0.8), (0, 1))]),
    ),
    (
        "equals",
        lambda x, y: _segments(
            x, y, [((-1, -0.45), (1, -0.45)), ((-1, 0.45), (1, 0.45))]
        ),
    ),
)


def make_shapes(n_samples, size=16, noise=0.12, random_state=0):
    """Grayscale images of ten glyphs, as ``(n_samples, 1, size, size)`` floats.

    Each image: one glyph (:data:`GLYPHS`; the class is its index) at a random
    position, scale, rotation and stroke width, a random contrast, a faint
    stray stroke half of the time, and Gaussian pixel noise of scale
    ``noise``. Deterministic for a given ``random_state``; balanced classes.
    """
    rng = np.random.default_rng(random_state)
    y = rng.permutation(np.arange(n_samples) % len(GLYPHS))
    grid = np.arange(size) + 0.5
    px, py = np.meshgrid(grid, grid)
    images = np.empty((n_samples, size, size))
    for i, label in enumerate(y):
        scale = rng.uniform(0.28, 0.42) * size
        cx, cy = rng.uniform(scale * 0.8, size - scale * 0.8, 2)
        angle = rng.uniform(-np.pi / 6, np.pi / 6)
        cos, sin = np.cos(angle), np.sin(angle)
        u = (cos * (px - cx) + sin * (py - cy)) / scale
        v = (-sin * (px - cx) + cos * (py - cy)) / scale
        width = rng.uniform(1.2, 2.2)
        distance = GLYPHS[label][1](u, v) * scale
        ink = np.clip(width / 2 + 0.5 - distance, 0, 1) * rng.uniform(0.6, 1.0)
        if rng.random() < 0.3:
            (ax, ay), (bx, by) = rng.uniform(0, size, (2, 2))
            stray = _segments(px, py, [((ax, ay), (bx, by))])
            ink = np.maximum(ink, np.clip(1 - stray, 0, 1) * rng.uniform(0.2, 0.5))
        images[i] = ink + rng.normal(0, noise, (size, size))
    return images.astype(np.float32)[:, None], y.astype(np.int64)


def load_images(dataset):
    """The images and labels of a part (the shapes are drawn with seed 0)."""
    if dataset == "digits":
        X, y = load_digits(return_X_y=True)
        return (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y
    return make_shapes(N_SHAPES[dataset], random_state=0)


# -- noise, peers, cells ------------------------------------------------------


def plain_cnn(seed, epochs):
    from skorch import NeuralNetClassifier

    torch.manual_seed(seed)
    return NeuralNetClassifier(
        SmallCNN,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-2,
        max_epochs=epochs,
        batch_size=256,
        train_split=None,
        verbose=0,
        device=DEVICE,
    )


def noisy_labels(kind, rate, X, y, rng, reference=None):
    """Noisy labels and the mask of the flipped rows.

    ``reference`` (instance-dependent noise): the model whose 5-fold
    out-of-fold probabilities rank the classes; logistic regression on the
    flattened inputs by default.
    """
    if kind == "symmetric":
        wrong = rng.random(len(y)) < rate
        other = (y + rng.integers(1, N_CLASSES, len(y))) % N_CLASSES
        return np.where(wrong, other, y), wrong
    # Instance-dependent: the reference model's second likeliest class, with a
    # probability proportional to the image's ambiguity (scaled to ``rate``).
    if reference is None:
        reference, X = LogisticRegression(max_iter=2000), X.reshape(len(X), -1)
    proba = cross_val_predict(reference, X, y, cv=5, method="predict_proba")
    proba[np.arange(len(y)), y] = -1
    second = proba.argmax(axis=1)
    ambiguity = proba.max(axis=1)
    p = np.clip(rate * ambiguity / ambiguity.mean(), 0, 1)
    wrong = rng.random(len(y)) < p
    return np.where(wrong, second, y), wrong


# Where the CNNs train (``--device``); on CUDA the times are wall seconds
# (the host's CPU time says little of the device's work), on the CPU they are
# CPU seconds of this process.
DEVICE = "cpu"


def timed(fn):
    """``fn()`` and its seconds: CPU seconds on the CPU, wall on a GPU."""
    if DEVICE == "cpu":
        return cpu_timed(fn)
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - start


def run_cell(dataset, kind, rate, seed, epochs):
    from cleanlab.classification import CleanLearning
    from cleanlab.filter import find_label_issues

    images, y = load_images(dataset)
    X_train, X_test, y_train, y_test = train_test_split(
        images, y, test_size=0.3, random_state=seed, stratify=y
    )
    rng = np.random.default_rng(seed)
    # Pixels are a fair reference for the centred digits, not for the shapes
    # (shifted, scaled, rotated): there a short-trained CNN ranks the classes.
    reference = None if dataset == "digits" else plain_cnn(seed, 20)
    y_noisy, wrong = noisy_labels(kind, rate, X_train, y_train, rng, reference)
    y_noisy = y_noisy.astype(np.int64)
    row = {"noise": f"{kind} {rate:.0%}", "seed": seed, "wrong": int(wrong.sum())}
    clf, row["zerror_s"] = timed(
        lambda: ZErrorClassifier(module=SmallCNN, random_state=seed, device=DEVICE).fit(
            X_train, y_noisy
        )
    )
    row["zerror_acc"] = clf.score(X_test, y_test)
    row["zerror_f1"] = f1_score(wrong, clf.outlier_mask_)
    plain, row["plain_s"] = timed(lambda: plain_cnn(seed, epochs).fit(X_train, y_noisy))
    row["plain_acc"] = (plain.predict(X_test) == y_test).mean()
    proba, row["cleanlab_s"] = timed(
        lambda: cross_val_predict(
            plain_cnn(seed, epochs),
            X_train,
            y_noisy,
            cv=5,
            method="predict_proba",
        )
    )
    issues = find_label_issues(y_noisy, proba)
    row["cleanlab_f1"] = f1_score(wrong, issues)
    cl, row["cleanlearning_s"] = timed(
        lambda: CleanLearning(plain_cnn(seed, epochs), cv_n_folds=5, seed=seed).fit(
            X_train, y_noisy
        )
    )
    row["cleanlearning_acc"] = (cl.predict(X_test) == y_test).mean()
    oracle = plain_cnn(seed, epochs).fit(X_train, y_train.astype(np.int64))
    row["oracle_acc"] = (oracle.predict(X_test) == y_test).mean()
    return row


def embeddings(seed, epochs):
    """Train the extractor on clean labels; embed the other rows.

    Returns the extractor's CPU seconds and, for the noisy part and the test
    part, the embeddings and true labels.
    """
    images, y = load_images("embeddings")
    X_pre, X_rest, y_pre, y_rest = train_test_split(
        images, y, train_size=0.4, random_state=seed, stratify=y
    )
    X_train, X_test, y_train, y_test = train_test_split(
        X_rest, y_rest, test_size=1 / 3, random_state=seed, stratify=y_rest
    )
    extractor, seconds = timed(lambda: plain_cnn(seed, epochs).fit(X_pre, y_pre))
    module = extractor.module_.eval()
    with torch.no_grad():
        E_train, E_test = (
            module.embed(torch.as_tensor(X)).numpy() for X in (X_train, X_test)
        )
    return seconds, E_train, y_train, E_test, y_test


def run_embedding_cell(data, kind, rate, seed):
    from cleanlab.classification import CleanLearning
    from cleanlab.filter import find_label_issues

    _, E_train, y_train, E_test, y_test = data
    rng = np.random.default_rng(seed)
    # Instance-dependent flips: the confusions of the tutorial's linear probe.
    reference = LogisticRegression()
    y_noisy, wrong = noisy_labels(kind, rate, E_train, y_train, rng, reference)
    row = {"noise": f"{kind} {rate:.0%}", "seed": seed, "wrong": int(wrong.sum())}
    clf, row["zerror_s"] = timed(
        lambda: ZErrorClassifier(random_state=seed).fit(E_train, y_noisy)
    )
    row["zerror_acc"] = clf.score(E_test, y_test)
    row["zerror_f1"] = f1_score(wrong, clf.outlier_mask_)
    proba, row["cleanlab_s"] = timed(
        lambda: cross_val_predict(
            LogisticRegression(), E_train, y_noisy, cv=5, method="predict_proba"
        )
    )
    row["cleanlab_f1"] = f1_score(wrong, find_label_issues(y_noisy, proba))
    cl, row["cleanlearning_s"] = timed(
        lambda: CleanLearning(LogisticRegression(), seed=seed).fit(E_train, y_noisy)
    )
    row["cleanlearning_acc"] = cl.score(E_test, y_test)
    logistic, row["logistic_s"] = timed(
        lambda: LogisticRegression().fit(E_train, y_noisy)
    )
    row["logistic_acc"] = logistic.score(E_test, y_test)
    mlp, row["mlp_s"] = timed(
        lambda: MLPClassifier(random_state=seed).fit(E_train, y_noisy)
    )
    row["mlp_acc"] = mlp.score(E_test, y_test)
    oracle = MLPClassifier(random_state=seed).fit(E_train, y_train)
    row["oracle_acc"] = oracle.score(E_test, y_test)
    return row


def parse_cell(text):
    kind, rate = text.split(":")
    return kind, float(rate)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", choices=sorted(CELLS), default="digits", help="the part to run"
    )
    parser.add_argument(
        "--cells",
        type=parse_cell,
        nargs="+",
        help="noise cells as kind:rate (symmetric or instance); the part's panel",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--quick", action="store_true", help="the first cell, 20 epochs"
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="where the CNNs of digits and shapes train (cuda: wall-clock times)",
    )
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = args.device
    torch.set_num_threads(1)
    threadpool_limits(1)
    cells = args.cells or CELLS[args.dataset]
    cells = cells[:1] if args.quick else cells
    epochs = 20 if args.quick else 100
    rows, extractor_s = [], {}
    for seed in args.seeds:
        if args.dataset == "embeddings":
            # ConvergenceWarning: the defaults' own iteration budgets, kept.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                data = embeddings(seed, epochs)
                extractor_s[seed] = round(data[0], 1)
                rows += [run_embedding_cell(data, k, r, seed) for k, r in cells]
        else:
            rows += [run_cell(args.dataset, k, r, seed, epochs) for k, r in cells]
    import cleanlab
    import sklearn
    import skorch

    print(
        f"python {platform.python_version()}, torch {torch.__version__}, skorch "
        f"{skorch.__version__}, scikit-learn {sklearn.__version__}, cleanlab "
        f"{cleanlab.__version__}; one torch and BLAS thread; {args.dataset}; device "
        f"{args.device}; seeds "
        f"{args.seeds}\n"
    )
    if extractor_s:
        print(f"extractor CPU s per seed: {extractor_s}\n")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        cells_text = [
            f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()
        ]
        print("| " + " | ".join(cells_text) + " |")


if __name__ == "__main__":
    main()
