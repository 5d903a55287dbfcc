# ruff: noqa: E402
"""
======================================
Tuning sigma with GridSearchCV
======================================

``sigma`` is an ordinary hyper-parameter of the Z-Error estimators, so
scikit-learn's :class:`~sklearn.model_selection.GridSearchCV` can choose it,
with the estimator inside a :class:`~sklearn.pipeline.Pipeline`. The catch is
the score: the validation folds hold the same errors as the training folds.
"""

# %%
# Data with gross target errors
# -----------------------------
# Friedman's regression problem, ten features of which five matter, with 10%
# of the targets shifted by 8 to 15 units. A clean copy of the test targets is
# kept aside to tell which model really learnt the function.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_friedman1
from sklearn.model_selection import train_test_split

X, y_clean = make_friedman1(n_samples=1000, noise=0.5, random_state=0)
rng = np.random.default_rng(0)
is_error = rng.random(len(y_clean)) < 0.1
y = y_clean.copy()
y[is_error] += rng.choice([-1, 1], size=is_error.sum()) * rng.uniform(
    8, 15, is_error.sum()
)
X_train, X_test, y_train, y_test, _, y_test_clean = train_test_split(
    X, y, y_clean, test_size=0.3, random_state=0
)

# %%
# A pipeline and a grid
# ---------------------
# The scaler and the network form one pipeline, so each fold scales with its
# own training part. The grid spans narrow to wide thresholds and, as a
# reference, a ``sigma`` so large that nothing is masked. Two scores are
# recorded for every candidate: the usual mean squared error, and the median
# absolute error, which a few gross errors in the validation fold cannot
# dominate. The search refits the best candidate by the latter.

from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_zerror import ZErrorRegressor

pipe = make_pipeline(
    StandardScaler(),
    ZErrorRegressor(
        center="median",
        scale="mad",
        # Each candidate masks at its own sigma from the first epoch (by
        # default the threshold opens from sigma_start=3).
        sigma_start=None,
        hidden_layer_sizes=(64,),
        max_epochs=80,
        random_state=0,
    ),
)
sigmas = [1.5, 3.0, 6.0, 1e6]
search = GridSearchCV(
    pipe,
    {"zerrorregressor__sigma": sigmas},
    scoring={
        "MSE": "neg_mean_squared_error",
        "median AE": "neg_median_absolute_error",
    },
    refit="median AE",
    cv=3,
)
search.fit(X_train, y_train)
print("best sigma by median absolute error:", search.best_params_)

# %%
# What each score prefers
# -----------------------
# We also score every ``sigma`` on the clean test targets, which a real
# project would not have.

from sklearn.base import clone
from sklearn.metrics import mean_squared_error

clean_mse = [
    mean_squared_error(
        y_test_clean,
        clone(pipe)
        .set_params(zerrorregressor__sigma=sigma)
        .fit(X_train, y_train)
        .predict(X_test),
    )
    for sigma in sigmas
]

labels = [f"{s:g}" if s < 1e6 else "no\nmasking" for s in sigmas]
results = search.cv_results_
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, values, title in zip(
    axes,
    [-results["mean_test_MSE"], -results["mean_test_median AE"], clean_mse],
    [
        "CV mean squared error\n(noisy folds)",
        "CV median absolute error\n(noisy folds)",
        "test mean squared error\n(clean targets)",
    ],
    strict=True,
):
    ax.bar(labels, values, color="tab:blue")
    ax.bar(labels[int(np.argmin(values))], min(values), color="tab:orange")
    ax.set_title(title)
    ax.set_xlabel("sigma")
axes[0].set_ylabel("lower is better")
fig.tight_layout()
plt.show()

# %%
# Both scores rank the candidates much as the clean targets do: masking
# matters (the model that masks nothing is by far the worst), and a ``sigma``
# of 3 robust standard deviations does best: 1.5 refuses too many good rows,
# 6 lets too many errors in. Mind the scale, though. The
# cross-validated mean squared error is mostly made of the gross errors in the
# validation folds, which no model can predict: it is several times the clean
# error, and the candidates differ by a few percent of it, so with fewer
# folds or more errors its choice becomes a matter of chance. The median
# absolute error measures what the models got right. When choosing ``sigma``
# on data with errors, score with a robust metric, or on a validation set that
# has been checked by hand.
