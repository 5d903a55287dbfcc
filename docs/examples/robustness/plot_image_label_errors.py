# ruff: noqa: E402
"""
================================================
Label errors in images in one training run
================================================

cleanlab finds label errors from out-of-fold probabilities: K fits of the
network, then one more to train on the cleaned labels. With a convolutional
network that is K + 1 trainings. :class:`~sk_zerror.ZErrorClassifier` takes
any torch module and any input skorch takes, here images of shape
(n, 1, 8, 8), and one ``fit`` gives both the network and the list of rows
whose labels it refused (``outlier_mask_``).
"""

# %%
# Digits as images, 20% of the training labels wrong
# --------------------------------------------------
# scikit-learn's digits, kept as 8x8 images with one channel. A fifth of the
# training labels are replaced by another digit at random; the test labels
# are clean.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

X, y = load_digits(return_X_y=True)
images = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
X_train, X_test, y_train, y_test = train_test_split(
    images, y, test_size=0.3, random_state=0, stratify=y
)
rng = np.random.default_rng(0)
wrong = rng.random(len(y_train)) < 0.2
y_noisy = np.where(wrong, (y_train + rng.integers(1, 10, len(y_train))) % 10, y_train)
print(f"{wrong.sum()} of {len(y_train)} training labels are wrong")

# %%
# A small convolutional network
# -----------------------------
# Any ``torch.nn.Module`` whose output is one logit per class. A class is
# instantiated with ``module__<name>`` arguments (skorch's convention).

from torch import nn

from sk_zerror import ZErrorClassifier


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


clf = ZErrorClassifier(module=SmallCNN, module__channels=16, random_state=0)
clf.fit(X_train, y_noisy)
flagged = clf.outlier_mask_
hits = (flagged & wrong).sum()
print(f"test accuracy on clean labels: {clf.score(X_test, y_test):.3f}")
print(
    f"flagged {flagged.sum()} training images: precision "
    f"{hits / flagged.sum():.2f}, recall {hits / wrong.sum():.2f}"
)

# %%
# The flagged images
# ------------------
# The most suspicious training images (the lowest ``outlier_scores_`` among
# the flagged ones), with the label they were given and the one the network
# finds likely. Most are plain digits with a wrong label: the rows to fix.

order = np.flatnonzero(flagged)[np.argsort(clf.outlier_scores_[flagged])][:12]
likely = clf.predict(X_train[order])
fig, axes = plt.subplots(2, 6, figsize=(8, 3.4))
for ax, row, label in zip(axes.ravel(), order, likely, strict=False):
    ax.imshow(X_train[row, 0], cmap="gray_r")
    colour = "tab:red" if wrong[row] else "tab:green"
    ax.set_title(f"given {y_noisy[row]}, likely {label}", fontsize=8, color=colour)
    ax.axis("off")
fig.suptitle("Flagged training images (red: the label was wrong)")
fig.tight_layout()
plt.show()
