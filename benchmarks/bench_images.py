"""Label errors in images: one ZErrorClassifier fit against K-fold cleanlab.

scikit-learn's digits as 1x8x8 images, a small CNN, label noise on the
training split (symmetric, or instance-dependent: flipped to the class a
reference model finds second likeliest, more often for ambiguous images),
clean test labels. For each cell:

- ``zerror``: ``ZErrorClassifier(module=CNN)`` at its defaults: test
  accuracy, detection F1 of ``outlier_mask_``, fit CPU time (one fit);
- ``plain``: the same CNN trained by skorch (Adam, lr 1e-2, 100 epochs,
  batch 256, every row): test accuracy;
- ``cleanlab``: ``find_label_issues`` on 5-fold out-of-fold probabilities of
  the plain CNN: detection F1, CPU time of the 5 fits;
- ``cleanlearning``: cleanlab's ``CleanLearning`` around the plain CNN (5
  folds, then a fit on the kept rows): test accuracy, CPU time;
- ``oracle``: the plain CNN on the true labels: test accuracy.

``python benchmarks/bench_images.py [--seeds 0 1] [--quick]``; prints
Markdown.
"""

import argparse
import platform
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import cross_val_predict, train_test_split
from torch import nn

from sk_zerror import ZErrorClassifier

CELLS = [("symmetric", 0.2), ("symmetric", 0.4), ("instance", 0.2)]


class SmallCNN(nn.Module):
    def __init__(self, channels=16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * channels * 16, 10),
        )

    def forward(self, X):
        return self.body(X)


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
    )


def noisy_labels(kind, rate, X, y, rng):
    if kind == "symmetric":
        wrong = rng.random(len(y)) < rate
        other = (y + rng.integers(1, 10, len(y))) % 10
        return np.where(wrong, other, y), wrong
    # Instance-dependent: the reference model's second likeliest class, with a
    # probability proportional to the image's ambiguity (scaled to ``rate``).
    proba = cross_val_predict(
        LogisticRegression(max_iter=2000),
        X.reshape(len(X), -1),
        y,
        cv=5,
        method="predict_proba",
    )
    proba[np.arange(len(y)), y] = -1
    second = proba.argmax(axis=1)
    ambiguity = proba.max(axis=1)
    p = np.clip(rate * ambiguity / ambiguity.mean(), 0, 1)
    wrong = rng.random(len(y)) < p
    return np.where(wrong, second, y), wrong


def cpu_timed(fn):
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def run_cell(kind, rate, seed, epochs):
    from cleanlab.classification import CleanLearning
    from cleanlab.filter import find_label_issues

    X, y = load_digits(return_X_y=True)
    images = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    X_train, X_test, y_train, y_test = train_test_split(
        images, y, test_size=0.3, random_state=seed, stratify=y
    )
    rng = np.random.default_rng(seed)
    y_noisy, wrong = noisy_labels(kind, rate, X_train, y_train, rng)
    y_noisy = y_noisy.astype(np.int64)
    row = {"noise": f"{kind} {rate:.0%}", "seed": seed, "wrong": int(wrong.sum())}
    clf, row["zerror_s"] = cpu_timed(
        lambda: ZErrorClassifier(module=SmallCNN, random_state=seed).fit(
            X_train, y_noisy
        )
    )
    row["zerror_acc"] = clf.score(X_test, y_test)
    row["zerror_f1"] = f1_score(wrong, clf.outlier_mask_)
    plain, row["plain_s"] = cpu_timed(
        lambda: plain_cnn(seed, epochs).fit(X_train, y_noisy)
    )
    row["plain_acc"] = (plain.predict(X_test) == y_test).mean()
    proba, row["cleanlab_s"] = cpu_timed(
        lambda: cross_val_predict(
            plain_cnn(seed, epochs), X_train, y_noisy, cv=5, method="predict_proba"
        )
    )
    issues = find_label_issues(y_noisy, proba)
    row["cleanlab_f1"] = f1_score(wrong, issues)
    cl, row["cleanlearning_s"] = cpu_timed(
        lambda: CleanLearning(plain_cnn(seed, epochs), cv_n_folds=5, seed=seed).fit(
            X_train, y_noisy
        )
    )
    row["cleanlearning_acc"] = (cl.predict(X_test) == y_test).mean()
    oracle = plain_cnn(seed, epochs).fit(X_train, y_train.astype(np.int64))
    row["oracle_acc"] = (oracle.predict(X_test) == y_test).mean()
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--quick", action="store_true", help="one cell, 20 epochs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cells = CELLS[:1] if args.quick else CELLS
    epochs = 20 if args.quick else 100
    rows = [run_cell(k, r, s, epochs) for s in args.seeds for k, r in cells]
    import cleanlab
    import sklearn
    import skorch

    print(
        f"python {platform.python_version()}, torch {torch.__version__}, skorch "
        f"{skorch.__version__}, scikit-learn {sklearn.__version__}, cleanlab "
        f"{cleanlab.__version__}; one torch thread; seeds {args.seeds}\n"
    )
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
