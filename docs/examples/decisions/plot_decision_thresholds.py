# ruff: noqa: E402
"""
================================================
Decision thresholds from the class distributions
================================================

A binary classifier predicts the positive class when its score passes a
threshold, by default a probability of 0.5 (a logit of 0). When the classes
are imbalanced, or their scores unequally spread, that default is rarely the
best cut. This example compares three ways to move it:

* :class:`~sk_zerror.ZThresholdCalibrator` puts the threshold where the two
  classes' score densities cross, after masking each class's outliers (the
  note's *best cutoff*): Gaussians of the logits (``method="gaussian"``) or
  skew-normals of the probabilities (``method="skewnorm"``);
* scikit-learn's :class:`~sklearn.model_selection.TunedThresholdClassifierCV`
  searches the threshold that maximises a chosen score;
* the default threshold, for reference.
"""

# %%
# Imbalanced data with some label noise
# -------------------------------------
# One sample in eight is positive, and 3% of the training labels are flipped.
# The test labels are clean.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

X, y = make_classification(
    n_samples=3000,
    n_features=8,
    n_informative=4,
    weights=[0.875],
    class_sep=1.0,
    random_state=0,
)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
rng = np.random.default_rng(0)
flipped = rng.random(len(y_train)) < 0.03
y_train = np.where(flipped, 1 - y_train, y_train)
print(f"positives: {y_train.mean():.1%} of the training labels")

# %%
# Four classifiers
# ----------------
# All four wrap the same Z-Error network. The calibrators fit the network on
# each of three folds, gather the out-of-fold scores of the whole training
# set, compute the threshold from them, and then refit the network on all the
# data. :class:`~sklearn.model_selection.TunedThresholdClassifierCV` does the
# same with a search over thresholds for the best balanced accuracy.

from sklearn.model_selection import TunedThresholdClassifierCV

from sk_zerror import ZErrorClassifier, ZThresholdCalibrator

network = ZErrorClassifier(hidden_layer_sizes=(32,), max_epochs=40, random_state=0)
models = {
    "default (logit 0)": network,
    "ZThresholdCalibrator, gaussian": ZThresholdCalibrator(
        network, method="gaussian", cv=3, random_state=0
    ),
    "ZThresholdCalibrator, skewnorm": ZThresholdCalibrator(
        network, method="skewnorm", cv=3, random_state=0
    ),
    "TunedThresholdClassifierCV": TunedThresholdClassifierCV(
        network, scoring="balanced_accuracy", cv=3, random_state=0
    ),
}
for model in models.values():
    model.fit(X_train, y_train)

# %%
# The thresholds each method chose, as probabilities of the positive class
# (the calibrators also give theirs on the logit scale, in
# ``decision_threshold_``):

gaussian = models["ZThresholdCalibrator, gaussian"]
skewnorm = models["ZThresholdCalibrator, skewnorm"]
print("default:      0.500")
print(f"gaussian:     {gaussian.probability_threshold_:.3f}")
print(f"skew-normal:  {skewnorm.probability_threshold_:.3f}")
print(f"tuned:        {models['TunedThresholdClassifierCV'].best_threshold_:.3f}")

# %%
# The class distributions and the cutoff
# --------------------------------------
# :func:`~sk_zerror.plotting.plot_class_distributions` draws the logits of the
# two classes on the test set, a Gaussian fitted to each, and the calibrated
# cutoff. Where the two densities cross depends on their centres and spreads,
# not on a convention: when the scores of one class spread wider than those of
# the other, the crossing moves away from the midpoint, towards the narrower
# class.

from sk_zerror.plotting import plot_class_distributions

fig, ax = plt.subplots(figsize=(8, 4.5))
plot_class_distributions(gaussian, X_test, y_test, ax=ax)
ax.axvline(0.0, color="0.5", linestyle=":", label="default cutoff 0")
ax.legend()
fig.tight_layout()

# %%
# Scores on the clean test labels
# -------------------------------
# Balanced accuracy weighs both classes equally; precision and recall are
# those of the positive class.

from sklearn.metrics import balanced_accuracy_score, precision_score, recall_score

metrics = {
    "balanced accuracy": balanced_accuracy_score,
    "precision": precision_score,
    "recall": recall_score,
}
results = {
    name: [metric(y_test, model.predict(X_test)) for metric in metrics.values()]
    for name, model in models.items()
}
for name, values in results.items():
    print(f"{name:32}", "  ".join(f"{v:.3f}" for v in values))

fig, ax = plt.subplots(figsize=(9, 4.5))
width = 0.2
positions = np.arange(len(metrics))
for i, (name, values) in enumerate(results.items()):
    ax.bar(positions + (i - 1.5) * width, values, width, label=name)
ax.set_xticks(positions, list(metrics))
ax.set_ylim(0, 1)
ax.set_title("Test scores by thresholding method")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2, fontsize="small")
fig.tight_layout()
plt.show()

# %%
# When to use which
# -----------------
# The calibrated cutoffs need no metric: they follow from the shape of the two
# classes' score distributions, and masking each class's outliers first keeps
# mislabelled samples from dragging the densities. They suit the case where
# both kinds of error matter about equally and there is no agreed metric.
# When one kind of error costs more, say so with a metric and let
# :class:`~sklearn.model_selection.TunedThresholdClassifierCV` optimise it,
# or fix a known threshold with
# :class:`~sklearn.model_selection.FixedThresholdClassifier`. Either way, a
# threshold estimated on the whole training set (out of fold) or a large
# validation set is far steadier than one estimated on a single batch.
