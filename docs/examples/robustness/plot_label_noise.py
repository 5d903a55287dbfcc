# ruff: noqa: E402
"""
===============================
Label noise in classification
===============================

Some training labels are simply wrong: a sample of class 0 recorded as class 1.
:class:`~sk_zerror.ZErrorClassifier` models, in every batch, the given-class
logits of each class by a Gaussian of their own and leaves out of the loss the
samples far below their class's centre: those much less confident in their
recorded label than the rest of their class. This example shows which samples
it refuses, and what that does to the accuracy on clean test labels.
"""

# %%
# Flipped labels on two moons
# ---------------------------
# 10% of the training labels are flipped at random. The test labels are left
# clean, so that the test accuracy measures what was learnt about the truth.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons
from sklearn.model_selection import train_test_split

X, y = make_moons(n_samples=2000, noise=0.15, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
rng = np.random.default_rng(0)
flipped = rng.random(len(y_train)) < 0.1
y_noisy = np.where(flipped, 1 - y_train, y_train)
print(f"{flipped.sum()} of {len(y_train)} training labels flipped")

# %%
# A plain network and a Z-Error network
# -------------------------------------
# The same network twice, both trained for all their epochs
# (``early_stopping=False``), so that only the loss differs: once with the
# plain cross-entropy (a ``sigma`` of a million masks nothing, and nothing is
# retrained) and once at the Z-Error classifier's defaults (``sigma=2`` on
# the median and MAD of each class's given-class logits, then a second
# network trained without the flagged rows). Only the lower tail is tested
# (``tail="lower"``), so a correctly labelled sample that the network is very
# sure of is never refused.

from sk_zerror import ZErrorClassifier

network = dict(
    hidden_layer_sizes=(64, 64), max_epochs=100, early_stopping=False, random_state=0
)
plain = ZErrorClassifier(
    sigma=1e6, sigma_start=None, retrain_without_outliers=False, **network
)
zerror = ZErrorClassifier(**network)
plain.fit(X_train, y_noisy)
zerror.fit(X_train, y_noisy)

flagged = zerror.outlier_mask_
hits = (flagged & flipped).sum()
print(f"test accuracy, plain:   {plain.score(X_test, y_test):.3f}")
print(f"test accuracy, Z-Error: {zerror.score(X_test, y_test):.3f}")
print(
    f"flagged {flagged.sum()} rows: precision {hits / flagged.sum():.2f}, "
    f"recall {hits / flipped.sum():.2f}"
)

# %%
# Most refused samples are flipped ones: each sits among samples of the other
# class, where the network, which did not learn from it, is confident of the
# other label. Correctly labelled samples where the moons overlap are refused
# too; they are ambiguous for any model.

xx, yy = np.meshgrid(np.linspace(-1.6, 2.6, 200), np.linspace(-1.1, 1.6, 200))
grid = np.column_stack([xx.ravel(), yy.ravel()])
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
for ax, model, title in zip(
    axes,
    [plain, zerror],
    ["plain cross-entropy", "Z-Error loss, defaults"],
    strict=True,
):
    proba = model.predict_proba(grid)[:, 1].reshape(xx.shape)
    ax.contourf(xx, yy, proba, levels=20, cmap="RdBu_r", alpha=0.35)
    ax.contour(xx, yy, proba, levels=[0.5], colors="black", linewidths=1)
    ax.scatter(*X_train[~flipped].T, c=y_noisy[~flipped], cmap="RdBu_r", s=6)
    ax.scatter(
        *X_train[flipped].T,
        c=y_noisy[flipped],
        cmap="RdBu_r",
        s=30,
        marker="x",
        label="flipped label",
    )
    ax.set_title(title)
axes[1].scatter(
    *X_train[flagged].T,
    s=70,
    facecolors="none",
    edgecolors="black",
    label="refused (outlier_mask_)",
)
axes[0].legend(loc="lower left", fontsize="small")
axes[1].legend(loc="lower left", fontsize="small")
fig.tight_layout()

# %%
# On these two moons the plain network does not suffer: the flipped labels
# are scattered at random and average out, and it is the more accurate of the
# two. The Z-Error classifier's first, masked run and its retrain without the
# flagged rows share the 100 epochs, 50 each, and the retrained network's
# boundary is still nearly straight (twice the epochs narrow the gap without
# closing it). Its value on these data is the list of the rows to fix.
#
# When the network can memorise the noise
# ---------------------------------------
# With more features and a network large enough to memorise single samples
# (two layers of 128 units, 200 epochs, no early stopping), the flipped
# labels do harm. We train both networks at increasing noise rates on a
# ten-dimensional problem and measure the accuracy on clean test labels.

from sklearn.datasets import make_classification

X, y = make_classification(
    n_samples=2000, n_features=10, n_informative=5, class_sep=1.5, random_state=0
)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
rates = [0.0, 0.1, 0.2, 0.3]
large = dict(hidden_layer_sizes=(128, 128), max_epochs=200)
plain.set_params(**large)
zerror.set_params(**large)
accuracy = {"plain cross-entropy": [], "Z-Error loss, defaults": []}
for rate in rates:
    flipped = rng.random(len(y_train)) < rate
    y_noisy = np.where(flipped, 1 - y_train, y_train)
    for name, model in zip(accuracy, [plain, zerror], strict=True):
        accuracy[name].append(model.fit(X_train, y_noisy).score(X_test, y_test))
    print(
        f"{rate:.0%} flipped: plain {accuracy['plain cross-entropy'][-1]:.3f}, "
        f"Z-Error {accuracy['Z-Error loss, defaults'][-1]:.3f}"
    )

fig, ax = plt.subplots(figsize=(7, 4))
for name, scores in accuracy.items():
    ax.plot(rates, scores, marker="o", label=name)
ax.set_xlabel("share of flipped training labels")
ax.set_ylabel("accuracy on clean test labels")
ax.set_title("Accuracy under label noise")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# The plain network memorises the flipped labels and loses accuracy as the
# noise grows; the Z-Error network, which refuses them, loses less.
# Early stopping on a hold-out, which the classifier does by default, is the
# other guard against memorising; :ref:`choosing` discusses ``sigma``, and
# :ref:`sphx_glr_auto_examples_training_plot_grid_search_sigma.py` tunes it.
