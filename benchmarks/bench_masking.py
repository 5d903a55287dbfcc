"""The masking ablation of issue 23: what each part of the Z-Error fit earns.

Every variant of ``PANEL`` (or of the whole factorial, ``variants()``, with
``--variants all``) is fitted on every cell of a panel that holds
nonlinear problems beside near-linear tables, next to scikit-learn's MLPs at
their own defaults and the other peers a user would run. Choose on the tuning
seeds (0 1), report on the held-out seeds (2 3), which played no part in
choosing. The mechanisms the library does not have yet are prototyped here,
through public parameters and skorch callbacks, never by editing the library.

A variant is ``mechanism|stopping|retrain``:

mechanism (when the in-batch mask acts)
    ``first``: at ``sigma`` from the first step (the classifier's current
    rule); ``nomask``: never (sigma held infinite by a callback, so the
    ledger, its flags and the retrain are kept); ``anneal``: the note's, from
    10 down to ``sigma`` over the run's ceiling of epochs; ``warm10`` and
    ``warm20``: after a fixed warm-up of 10 or 20 epochs; ``plateau``: held
    off until the training loss flattens (:class:`MaskAfterPlateau`: its
    best of the last 5 epochs less than 1% below the best before them);
    ``late``: held off until it nearly stops improving (0.1% over 10 epochs).
stopping
    ``es``: the hold-out early stopping (``early_stopping=True``), ceiling
    300 epochs; ``conv``: scikit-learn's MLP rule on the training loss (not
    improved by ``tol=1e-4`` for 10 epochs), ceiling 300; ``fixed``: 100
    epochs, no stopping rule.
retrain
    ``rt``: ``retrain_without_outliers=True``; ``nort``: False.

``current`` is the estimator at today's defaults. The regressor's masking
target is its own ``sigma=5`` (two-sided); the classifier's ``sigma=2``
(lower tail). The regressor's ``first`` is ``sigma_start=None``; its
``current`` anneals 3 -> 5 over the first half of the epochs.

``classification``: two moons, circles (2000 rows, half test), a 3 x 3
checkerboard (2000 rows, half test), breast cancer, digits, wine (30% test);
training labels clean, 20% symmetric flips, 20% instance-dependent flips
(rows drawn with probability rising with their ambiguity under an out-of-fold
15-nearest-neighbour model, flipped to a class that model finds plausible),
and with ``--sym40`` 40% symmetric flips on moons and breast cancer.
Accuracy on the clean test labels; F1 of ``outlier_mask_`` against the
flipped training rows.

``regression``: Friedman #1 (1000 rows), diabetes, a linear set (1000 rows,
targets around 50); clean, 20% gross errors (plus or minus 5 to 15 target
standard deviations), 20% decimal slips (target x 10). RMSE on the clean test
targets; F1 of ``outlier_mask_`` against the corrupted rows.

Features are standardised on the training split; errors are injected into
the training split only. Fit times are CPU seconds of the fitting process,
with one thread for torch and BLAS. The results (``raw.csv``, one row per
cell, seed and model; ``tables.md``, the targets per variant and the
per-cell tables; ``environment.md``) go to ``benchmarks/results/<--out>``.

Examples
--------
The panel (``PANEL``: ten variants per task) on the tuning seeds, then on the
held-out seeds; each seed can run in its own process (``--out`` per seed)
and ``--summarise`` joins the raw files. ``--variants all`` fits the whole
factorial; ``--no-peers`` adds variants to a run that already has the peers::

    python benchmarks/bench_masking.py --seeds 0 1 --out tuning
    python benchmarks/bench_masking.py --seeds 2 3 --out heldout
    python benchmarks/bench_masking.py --summarise \\
        benchmarks/results/tuning/raw.csv --seeds 0 1 --out tuning
"""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import ast  # noqa: E402
import csv  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import skorch  # noqa: E402
import torch  # noqa: E402
from cleanlab.regression.learn import (  # noqa: E402
    CleanLearning as RegressionCleanLearning,
)
from sklearn.compose import TransformedTargetRegressor  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_wine,
    make_circles,
    make_friedman1,
    make_moons,
)
from sklearn.ensemble import (  # noqa: E402
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.linear_model import HuberRegressor, LogisticRegression  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    StratifiedKFold,
    cross_val_predict,
    train_test_split,
)
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from skorch.callbacks import Callback, EarlyStopping  # noqa: E402

import sk_zerror  # noqa: E402
from sk_zerror import ZErrorClassifier, ZErrorRegressor  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CEILING = 300
FIXED_EPOCHS = 100
TOL = 1e-4
N_ITER_NO_CHANGE = 10

MECHANISMS = ("first", "nomask", "anneal", "warm10", "warm20", "plateau")
STOPPINGS = ("es", "conv", "fixed")
RETRAINS = ("rt", "nort")

# -- prototypes of the mechanisms, as skorch callbacks ----------------------


def _infinite_like(criterion):
    return np.full(tuple(criterion.sigma.shape), np.inf).squeeze()[()]


class MaskAfterPlateau(Callback):
    """Hold the Z-Error loss's sigma infinite until the training loss flattens.

    Placed after the estimator's ``sigma_scheduler``, it overrides the
    scheduler's sigma at the start of each epoch until it fires. It fires at
    the end of the first epoch at which the best training loss of the last
    ``patience`` epochs is less than ``rel`` (relatively) below the best loss
    before them; from the next epoch on the scheduler's sigma rules.
    ``patience=None`` never fires: no masking at all, while the ledger, its
    flags and the retrain go on as usual. The epoch it fired at is recorded
    in the history as ``mask_trigger``.
    """

    def __init__(self, patience=5, rel=0.01):
        self.patience = patience
        self.rel = rel

    def on_train_begin(self, net, **kwargs):
        self.losses_ = []
        self.fired_ = False

    def on_epoch_begin(self, net, **kwargs):
        if not self.fired_:
            net.criterion_.set_sigma(_infinite_like(net.criterion_))
            net.history.record("sigma", math.inf)

    def on_epoch_end(self, net, **kwargs):
        if self.fired_ or self.patience is None:
            return
        self.losses_.append(float(net.history[-1, "train_loss"]))
        k = self.patience
        if len(self.losses_) > k:
            before = min(self.losses_[:-k])
            recent = min(self.losses_[-k:])
            if before - recent < self.rel * abs(before):
                self.fired_ = True
                net.history.record("mask_trigger", len(net.history) - 1)


def convergence_stopping():
    """scikit-learn's MLP rule: the training loss has not improved by ``tol``."""
    return EarlyStopping(
        monitor="train_loss",
        patience=N_ITER_NO_CHANGE,
        threshold=TOL,
        threshold_mode="abs",
        lower_is_better=True,
        load_best=False,
        sink=lambda *a, **k: None,
    )


def variant_params(task, name):
    """Constructor parameters of a variant ``mechanism|stopping|retrain``.

    ``+key=value`` suffixes set further parameters (Python literals), e.g.
    ``current+max_epochs=200+anneal_epochs=50``.
    """
    name, *extra = name.split("+")
    overrides = {}
    for item in extra:
        key, value = item.split("=", 1)
        overrides[key] = ast.literal_eval(value)
    params = _variant_params(task, name)
    params.update(overrides)
    return params


def _variant_params(task, name):
    if name == "current":
        return {}
    mechanism, stopping, retrain = name.split("|")
    params = {"retrain_without_outliers": retrain == "rt", "callbacks": []}
    if task == "regression":
        params["sigma_start"] = None
    if stopping == "es":
        params.update(early_stopping=True, max_epochs=CEILING)
    elif stopping == "conv":
        params.update(early_stopping=False, max_epochs=CEILING)
        params["callbacks"].append(("convergence", convergence_stopping()))
    else:
        params.update(early_stopping=False, max_epochs=FIXED_EPOCHS)
    if mechanism == "nomask":
        params["callbacks"].insert(0, ("no_mask", MaskAfterPlateau(patience=None)))
    elif mechanism == "anneal":
        params.update(sigma_start=10.0, anneal_epochs=params["max_epochs"])
    elif mechanism.startswith("warm"):
        params["warmup_epochs"] = int(mechanism[4:])
    elif mechanism == "plateau":
        params["callbacks"].insert(0, ("plateau", MaskAfterPlateau()))
    elif mechanism == "late":
        late = MaskAfterPlateau(patience=N_ITER_NO_CHANGE, rel=0.001)
        params["callbacks"].insert(0, ("plateau", late))
    return params


def variants():
    """Every ablation variant (the full factorial), ``current`` first."""
    return (
        ["current"]
        + [f"{m}|{s}|{r}" for m in MECHANISMS for s in STOPPINGS for r in RETRAINS]
        + [f"late|{s}|{r}" for s in ("es", "conv") for r in RETRAINS]
    )


# What --quick fits: enough to run every code path in a minute.
QUICK = {
    "classification": ["current", "nomask|es|rt", "plateau|conv|rt"],
    "regression": ["current", "first|conv|rt"],
}

# The panel's variants: each mechanism with the stopping rule that suits the
# task (the classifier's hold-out, the regressor's convergence), and the
# stopping and retrain axes around the mechanisms that matter most. The whole
# factorial costs three times as much (``--variants all``).
PANEL = {
    "classification": [
        "current",
        "first|es|rt",
        "nomask|es|rt",
        "nomask|conv|rt",
        "nomask|es|nort",
        "anneal|es|rt",
        "warm20|es|rt",
        "plateau|es|rt",
        "plateau|conv|rt",
        "plateau|es|nort",
    ],
    "regression": [
        "current",
        "first|fixed|rt",
        "first|conv|rt",
        "first|conv|nort",
        "first|es|rt",
        "nomask|conv|rt",
        "anneal|conv|rt",
        "warm20|conv|rt",
        "plateau|conv|rt",
        "plateau|fixed|rt",
    ],
}


# -- data -------------------------------------------------------------------

CLASSIFICATION = ("moons", "circles", "checkerboard", "breast_cancer", "digits", "wine")
REGRESSION = ("friedman1", "diabetes", "linear")
# Added for the second held-out panel: a real multi-class table (Seattle
# weather), a real regression table (cars' fuel economy), and Friedman #1
# with heavy-tailed noise (Student's t, 2 degrees of freedom) on clean rows.
EXTRA_CLASSIFICATION = ("weather",)
EXTRA_REGRESSION = ("cars", "friedman1_t")


def checkerboard(n, seed, cells=3):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, cells, size=(n, 2))
    y = (np.floor(X[:, 0]) + np.floor(X[:, 1])).astype(int) % 2
    return X, y


def classification_split(name, seed):
    if name == "moons":
        X, y = make_moons(2000, noise=0.15, random_state=seed)
        test = 0.5
    elif name == "circles":
        X, y = make_circles(2000, noise=0.1, factor=0.5, random_state=seed)
        test = 0.5
    elif name == "checkerboard":
        X, y = checkerboard(2000, seed)
        test = 0.5
    elif name == "weather":
        X, y = seattle_weather()
        test = 0.3
    else:
        loader = {
            "breast_cancer": load_breast_cancer,
            "digits": load_digits,
            "wine": load_wine,
        }[name]
        X, y = loader(return_X_y=True)
        test = 0.3
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=test, stratify=y, random_state=seed
    )
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), ytr, scaler.transform(Xte), yte


def seattle_weather():
    """vega_datasets' Seattle weather: 4 measurements and the day of year."""
    from vega_datasets import local_data

    table = local_data.seattle_weather()
    day = table["date"].dt.day_of_year.to_numpy()
    X = np.column_stack(
        [
            table[["precipitation", "temp_max", "temp_min", "wind"]].to_numpy(),
            np.sin(2 * np.pi * day / 365.25),
            np.cos(2 * np.pi * day / 365.25),
        ]
    )
    _, y = np.unique(table["weather"], return_inverse=True)
    return X, y


def cars_fuel_economy():
    """vega_datasets' cars: miles per gallon from the numeric columns and origin."""
    from vega_datasets import local_data

    table = local_data.cars().dropna(subset=["Miles_per_Gallon", "Horsepower"])
    numeric = table[
        [
            "Cylinders",
            "Displacement",
            "Horsepower",
            "Weight_in_lbs",
            "Acceleration",
        ]
    ].to_numpy(dtype=float)
    year = table["Year"].dt.year.to_numpy(dtype=float)[:, None]
    origin = (table["Origin"].to_numpy()[:, None] == ["USA", "Europe"]).astype(float)
    X = np.hstack([numeric, year, origin])
    return X, table["Miles_per_Gallon"].to_numpy(dtype=float)


def pair_flips(y, rate, rng):
    """Class-pair flips: each flipped row gets the next class, c -> c + 1."""
    n_classes = int(y.max()) + 1
    rows = rng.choice(len(y), round(rate * len(y)), replace=False)
    noisy = y.copy()
    noisy[rows] = (y[rows] + 1) % n_classes
    return noisy


def ambiguity_flips(X, y, rate, rng):
    """Instance-dependent flips: ambiguous rows, to plausible classes.

    Out-of-fold probabilities of a 15-nearest-neighbour model on the clean
    labels; ``round(rate * n)`` rows drawn without replacement with
    probability proportional to ``1 - p(clean label)`` (plus a floor), each
    given a class drawn from the model's probabilities of the other classes.
    """
    n_classes = int(y.max()) + 1
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    probs = cross_val_predict(
        KNeighborsClassifier(15), X, y, cv=cv, method="predict_proba"
    )
    others = probs.copy()
    others[np.arange(len(y)), y] = 0.0
    weight = others.sum(axis=1) + 0.02
    rows = rng.choice(
        len(y), round(rate * len(y)), replace=False, p=weight / weight.sum()
    )
    noisy = y.copy()
    for row in rows:
        p = others[row] + 1e-3
        p[y[row]] = 0.0
        noisy[row] = rng.choice(n_classes, p=p / p.sum())
    return noisy


def symmetric_flips(y, rate, rng):
    n_classes = int(y.max()) + 1
    rows = rng.choice(len(y), round(rate * len(y)), replace=False)
    noisy = y.copy()
    noisy[rows] = (y[rows] + rng.integers(1, n_classes, len(rows))) % n_classes
    return noisy


def classification_cells(quick=False, heavy=False):
    if quick:
        return [("moons", "clean"), ("moons", "inst20")]
    cells = [(d, n) for d in CLASSIFICATION for n in ("clean", "sym20", "inst20")]
    if heavy:
        cells += [(d, "sym40") for d in ("moons", "breast_cancer")]
    return cells


def noisy_labels(X, y, noise, seed, dataset):
    if noise == "clean":
        return y.copy()
    rng = np.random.default_rng([seed, sum(map(ord, dataset + noise))])
    rate = int(noise.lstrip("abcdefghijklmnopqrstuvwxyz")) / 100
    if noise.startswith("sym"):
        return symmetric_flips(y, rate, rng)
    if noise.startswith("pair"):
        return pair_flips(y, rate, rng)
    return ambiguity_flips(X, y, rate, rng)


def regression_split(name, seed):
    """Standardised train and test features, training and test targets.

    ``friedman1_t``: Friedman #1 with Student's t noise (2 degrees of
    freedom) on the training targets and noise-free test targets, so that
    the RMSE measures the regression function, not the test set's own heavy
    tail (t with 2 degrees of freedom has no variance).
    """
    if name == "friedman1":
        X, y = make_friedman1(1000, noise=1.0, random_state=seed)
    elif name == "friedman1_t":
        X, y = make_friedman1(1000, noise=0.0, random_state=seed)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed)
        ytr = ytr + np.random.default_rng([seed, 11]).standard_t(2, len(ytr))
        scaler = StandardScaler().fit(Xtr)
        return scaler.transform(Xtr), ytr, scaler.transform(Xte), yte
    elif name == "diabetes":
        X, y = load_diabetes(return_X_y=True)
    elif name == "cars":
        X, y = cars_fuel_economy()
    else:
        rng = np.random.default_rng([seed, 7])
        X = rng.normal(size=(1000, 10))
        w = rng.normal(size=10)
        y = 50.0 + 10.0 * X @ w / np.linalg.norm(w) + rng.normal(0, 2.0, 1000)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed)
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), ytr, scaler.transform(Xte), yte


def regression_cells(quick=False):
    if quick:
        return [("friedman1", "clean"), ("friedman1", "slip20")]
    return [(d, n) for d in REGRESSION for n in ("clean", "gross20", "slip20")]


def noisy_targets(y, noise, seed, dataset):
    truth = np.zeros(len(y), dtype=bool)
    if noise == "clean":
        return y.copy(), truth
    rng = np.random.default_rng([seed, sum(map(ord, dataset + noise))])
    rate = int(noise.lstrip("abcdefghijklmnopqrstuvwxyz")) / 100
    rows = rng.choice(len(y), round(rate * len(y)), replace=False)
    truth[rows] = True
    noisy = y.copy()
    if noise.startswith("gross"):
        shift = rng.uniform(5, 15, len(rows)) * y.std()
        noisy[rows] += rng.choice([-1.0, 1.0], len(rows)) * shift
    elif noise.startswith("unit"):
        # Another unit (pounds and kilograms): half the rows x 2.2046, half /.
        factor = np.where(rng.random(len(rows)) < 0.5, 2.2046, 1 / 2.2046)
        noisy[rows] *= factor
    else:
        noisy[rows] *= 10.0
    return noisy, truth


# -- one fit ----------------------------------------------------------------


def cpu_fit(model, X, y):
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    return time.process_time() - start


def run_lengths(model):
    histories = getattr(model, "run_histories_", None)
    if not histories:
        return "", ""
    epochs = "+".join(str(len(h)) for h in histories)
    triggers = []
    for h in histories:
        found = [e.get("mask_trigger") for e in h if "mask_trigger" in e]
        triggers.append(str(found[0]) if found else "-")
    return epochs, "+".join(triggers)


def f1_of(mask, truth):
    if mask is None or not truth.any():
        return math.nan
    return float(f1_score(truth, mask, zero_division=0.0))


def flagged_clean(mask, truth):
    if mask is None:
        return math.nan
    return float(np.mean(mask[~truth]))


def classification_peers(dataset, noise):
    from cleanlab.classification import CleanLearning

    peers = {
        "MLPClassifier": lambda s: MLPClassifier(max_iter=2000, random_state=s),
        "MLPClassifier(es)": lambda s: MLPClassifier(
            early_stopping=True, max_iter=2000, random_state=s
        ),
        "LogisticRegression": lambda s: LogisticRegression(max_iter=5000),
        "CleanLearning(LR)": lambda s: CleanLearning(
            LogisticRegression(max_iter=5000), seed=s
        ),
    }
    if noise != "clean":
        peers["CleanLearning(MLP)"] = lambda s: CleanLearning(
            MLPClassifier(max_iter=2000, random_state=s), seed=s
        )
    if dataset in ("breast_cancer", "wine", "moons"):
        peers["HistGradientBoosting"] = lambda s: HistGradientBoostingClassifier(
            random_state=s
        )
    return peers


def regression_peers(dataset):
    peers = {
        "MLPRegressor": lambda s: TransformedTargetRegressor(
            MLPRegressor(max_iter=2000, random_state=s), transformer=StandardScaler()
        ),
        "HuberRegressor": lambda s: HuberRegressor(max_iter=1000),
        "CleanLearning(reg)": lambda s: RegressionCleanLearning(seed=s),
    }
    if dataset in ("friedman1", "diabetes"):
        peers["HistGradientBoosting"] = lambda s: HistGradientBoostingRegressor(
            random_state=s
        )
    return peers


def model_mask(model):
    """The training rows a fitted model calls wrong, or None (no such notion).

    ``outlier_mask_`` (the Z-Error estimators), ``label_issues_mask``
    (cleanlab's regression ``CleanLearning``), ``outliers_``
    (``HuberRegressor``), ``label_issues_df`` (cleanlab's classification
    ``CleanLearning``).
    """
    for attribute in ("outlier_mask_", "label_issues_mask", "outliers_"):
        if hasattr(model, attribute):
            return np.asarray(getattr(model, attribute))
    issues = getattr(model, "label_issues_df", None)
    return None if issues is None else np.asarray(issues["is_label_issue"])


def cell_data(task, dataset, noise, seed):
    """Training features, noisy targets, corrupted rows, test features and targets."""
    if task == "classification":
        Xtr, ytr_clean, Xte, yte = classification_split(dataset, seed)
        ytr = noisy_labels(Xtr, ytr_clean, noise, seed, dataset)
        return Xtr, ytr, ytr != ytr_clean, Xte, yte
    Xtr, ytr_clean, Xte, yte = regression_split(dataset, seed)
    ytr, truth = noisy_targets(ytr_clean, noise, seed, dataset)
    return Xtr, ytr, truth, Xte, yte


def held_out_score(task, model, X, y):
    """Accuracy (classification) or RMSE (regression) on the clean test set."""
    if task == "classification":
        return float(np.mean(model.predict(X) == y))
    return float(np.sqrt(np.mean((model.predict(X) - y) ** 2)))


def cell_rows(task, dataset, noise, seed, names, peers=True):
    """One row per model fitted on one cell and seed: the variants ``names``,
    then (with ``peers``) the peers and, on noisy cells, the oracle."""
    Xtr, ytr, truth, Xte, yte = cell_data(task, dataset, noise, seed)
    estimator = ZErrorClassifier if task == "classification" else ZErrorRegressor
    base = dict(task=task, dataset=dataset, noise=noise, seed=seed)
    models = {
        n: (lambda s, n=n: estimator(random_state=s, **variant_params(task, n)))
        for n in names
    }
    if peers and task == "classification":
        models.update(classification_peers(dataset, noise))
    elif peers:
        models.update(regression_peers(dataset))
    if peers and noise != "clean":
        models["oracle"] = None
    rows = []
    for name, factory in models.items():
        X, y = Xtr, ytr
        if name == "oracle":
            model = estimator(
                sigma=1e6, retrain_without_outliers=False, random_state=seed
            )
            X, y = Xtr[~truth], ytr[~truth]
        else:
            model = factory(seed)
        seconds = cpu_fit(model, X, y)
        mask = None if name == "oracle" else model_mask(model)
        epochs, trigger = run_lengths(model)
        # scikit-learn's iterations where there are no run histories (the
        # MLPRegressor inside its target transformer).
        inner = getattr(model, "regressor_", model)
        rows.append(
            dict(
                base,
                model=name,
                score=held_out_score(task, model, Xte, yte),
                f1=f1_of(mask, truth),
                flagged_clean=flagged_clean(mask, truth),
                fit_cpu_s=seconds,
                epochs=epochs or getattr(inner, "n_iter_", ""),
                trigger=trigger,
            )
        )
    return rows


# -- summaries --------------------------------------------------------------

FIELDS = (
    "task dataset noise seed model score f1 flagged_clean fit_cpu_s epochs trigger"
).split()

CLASSIFICATION_NEURAL = ("MLPClassifier", "MLPClassifier(es)", "CleanLearning(MLP)")
REGRESSION_ROBUST = ("HuberRegressor", "MLPRegressor", "CleanLearning(reg)")


def read_rows(paths):
    rows = []
    for path in paths:
        with open(path) as handle:
            for row in csv.DictReader(handle):
                for key in ("score", "f1", "flagged_clean", "fit_cpu_s"):
                    row[key] = (
                        float(row[key]) if row[key] not in ("", "nan") else math.nan
                    )
                row["seed"] = int(row["seed"])
                rows.append(row)
    return rows


def _index(rows):
    return {
        (r["task"], r["dataset"], r["noise"], r["seed"], r["model"]): r for r in rows
    }


def nomask_twin(name):
    if not name.count("|") == 2 or "+" in name:
        return None
    return "|".join(["nomask"] + name.split("|")[1:])


def _fmt(values, fmt=".3f"):
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return "-"
    return format(statistics.mean(values), fmt)


def variant_checks(rows, task):
    """Per variant: its target checks over the panel's cells and seeds.

    Returns a list of dicts: the variant, then per check the worst margin
    (negative = a miss), the number of missed cell-seeds, and mean scores.
    """
    index = _index(rows)
    ours = sorted(
        {
            r["model"]
            for r in rows
            if r["task"] == task
            and (r["model"].startswith("current") or "|" in r["model"])
        },
        key=lambda n: (not n.startswith("current"), n),
    )
    cells = sorted(
        {(r["dataset"], r["noise"], r["seed"]) for r in rows if r["task"] == task}
    )
    out = []
    for name in ours:
        clean_margin, nomask_margin, noisy_margin, f1s, ratios = [], [], [], [], []
        clean_scores, noisy_scores, flagged = [], [], []
        for dataset, noise, seed in cells:
            key = (task, dataset, noise, seed)
            row = index.get(key + (name,))
            if row is None:
                continue
            twin = index.get(key + (nomask_twin(name),)) if nomask_twin(name) else None
            if task == "classification":
                mlp = index[key + ("MLPClassifier",)]
                ratios.append(row["fit_cpu_s"] / mlp["fit_cpu_s"])
                if noise == "clean":
                    clean_scores.append(row["score"])
                    clean_margin.append(row["score"] - (mlp["score"] - 0.005))
                    if twin is not None:
                        nomask_margin.append(row["score"] - twin["score"])
                    flagged.append(row["flagged_clean"])
                else:
                    noisy_scores.append(row["score"])
                    best = max(
                        index[key + (p,)]["score"]
                        for p in CLASSIFICATION_NEURAL
                        if key + (p,) in index
                    )
                    noisy_margin.append(row["score"] - best)
                    f1s.append(row["f1"])
            else:
                mlp = index[key + ("MLPRegressor",)]
                ratios.append(row["fit_cpu_s"] / mlp["fit_cpu_s"])
                if noise == "clean":
                    clean_scores.append(row["score"] / mlp["score"])
                    clean_margin.append(1.02 - row["score"] / mlp["score"])
                    if twin is not None:
                        nomask_margin.append(
                            (twin["score"] - row["score"]) / twin["score"]
                        )
                    flagged.append(row["flagged_clean"])
                else:
                    best = min(
                        index[key + (p,)]["score"]
                        for p in REGRESSION_ROBUST
                        if key + (p,) in index
                    )
                    noisy_scores.append(row["score"] / best)
                    noisy_margin.append(1.0 - row["score"] / best)
                    f1s.append(row["f1"])
        if not ratios:
            continue
        out.append(
            dict(
                variant=name,
                clean=_fmt(clean_scores),
                clean_worst=min(clean_margin) if clean_margin else math.nan,
                clean_misses=sum(m < 0 for m in clean_margin),
                vs_nomask_worst=min(nomask_margin) if nomask_margin else math.nan,
                noisy=_fmt(noisy_scores),
                noisy_mean_margin=statistics.mean(noisy_margin)
                if noisy_margin
                else math.nan,
                noisy_misses=sum(m < 0 for m in noisy_margin),
                f1=_fmt(f1s),
                f1_misses=sum(f < 0.95 for f in f1s) if task == "regression" else "",
                flagged_clean=_fmt(flagged),
                time_ratio=statistics.median(ratios),
                n=len(ratios),
            )
        )
    return out


def checks_table(checks, task):
    if task == "classification":
        head = (
            "| variant | clean acc | worst clean - (MLP - 0.005) | misses | "
            "worst vs nomask twin | noisy acc | mean noisy - best neural peer | "
            "misses | F1 | clean rows flagged | time / MLP |"
        )
    else:
        head = (
            "| variant | clean RMSE / MLPR | worst 1.02 - ratio | misses | "
            "worst rel. gain vs nomask twin | noisy RMSE / best(Huber, MLPR) | "
            "mean 1 - ratio | misses | F1 | F1 < 0.95 | clean rows flagged | "
            "time / MLPR |"
        )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for c in checks:
        cells = [
            c["variant"].replace("|", " / "),
            c["clean"],
            f"{c['clean_worst']:+.3f}",
            str(c["clean_misses"]),
            f"{c['vs_nomask_worst']:+.3f}"
            if np.isfinite(c["vs_nomask_worst"])
            else "-",
            c["noisy"],
            f"{c['noisy_mean_margin']:+.3f}",
            str(c["noisy_misses"]),
            c["f1"],
        ]
        if task == "regression":
            cells.append(str(c["f1_misses"]))
        cells += [c["flagged_clean"], f"{c['time_ratio']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _by_cell(rows, task, models, key):
    """``key`` of each of ``models`` per (dataset, noise) cell, over the seeds."""
    groups = {}
    for r in rows:
        if r["task"] == task and r["model"] in models:
            groups.setdefault((r["dataset"], r["noise"]), {}).setdefault(
                r["model"], []
            ).append(r[key])
    return groups


def _table_head(columns):
    """The header lines of a per-cell table with one column per model."""
    head = (
        "| dataset | noise | "
        + " | ".join(c.replace("|", " / ") for c in columns)
        + " |"
    )
    return [head, "|" + "---|" * (len(columns) + 2)]


def cell_table(rows, task, models):
    """Mean score (min-max over seeds) per cell, for ``models`` and the peers."""
    peers = (
        [
            "MLPClassifier",
            "MLPClassifier(es)",
            "CleanLearning(MLP)",
            "LogisticRegression",
            "CleanLearning(LR)",
            "HistGradientBoosting",
            "oracle",
        ]
        if task == "classification"
        else [
            "MLPRegressor",
            "HuberRegressor",
            "CleanLearning(reg)",
            "HistGradientBoosting",
            "oracle",
        ]
    )
    columns = list(models) + peers
    lines = _table_head(columns)
    for (dataset, noise), by_model in _by_cell(rows, task, columns, "score").items():
        cells = []
        for c in columns:
            values = by_model.get(c)
            if not values:
                cells.append("-")
            elif len(values) == 1:
                cells.append(f"{values[0]:.3f}")
            else:
                low, high = min(values), max(values)
                cells.append(f"{statistics.mean(values):.3f} ({low:.3f}-{high:.3f})")
        lines.append(f"| {dataset} | {noise} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def f1_table(rows, task, models):
    noisy = [r for r in rows if r["noise"] != "clean"]
    lines = _table_head(models)
    for (dataset, noise), by_model in _by_cell(noisy, task, models, "f1").items():
        cells = [_fmt(by_model.get(m, [])) for m in models]
        lines.append(f"| {dataset} | {noise} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(rows, featured=None):
    parts = []
    for task in ("classification", "regression"):
        if not any(r["task"] == task for r in rows):
            continue
        checks = variant_checks(rows, task)
        parts.append(f"## {task}: targets per variant\n\n" + checks_table(checks, task))
        names = featured or [c["variant"] for c in checks][:4]
        names = [
            n for n in names if any(r["model"] == n and r["task"] == task for r in rows)
        ]
        parts.append(
            f"## {task}: per cell (mean, min-max over seeds)\n\n"
            + cell_table(rows, task, names)
        )
        f1_models = names + (
            ["CleanLearning(LR)", "CleanLearning(MLP)"]
            if task == "classification"
            else ["HuberRegressor", "CleanLearning(reg)"]
        )
        parts.append(
            f"## {task}: outlier_mask_ F1 on noisy cells\n\n"
            + f1_table(rows, task, f1_models)
        )
    return "\n\n".join(parts) + "\n"


def environment(seeds, argv):
    import cleanlab

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return (
        f"- command: `python {' '.join(argv)}`\n"
        f"- seeds: {' '.join(map(str, seeds))}\n"
        f"- python {platform.python_version()}, sk_zerror {sk_zerror.__version__}, "
        f"torch {torch.__version__}, skorch {skorch.__version__}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
        f"cleanlab {cleanlab.__version__}\n"
        f"- machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, one thread per fit, load average at start {load}\n"
    )


# -- main -------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="two cells of moons and Friedman #1, three variants or two",
    )
    parser.add_argument(
        "--out",
        default="masking",
        help="folder under benchmarks/results/ (or an absolute path)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help="variants to fit (default: PANEL; all: the whole factorial)",
    )
    parser.add_argument(
        "--no-peers",
        action="store_true",
        help="fit only the variants (to add them to a run that has the peers)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="skip the cells already in --out"
    )
    parser.add_argument(
        "--datasets", nargs="+", default=None, help="only these data sets"
    )
    parser.add_argument(
        "--noises",
        nargs="+",
        default=None,
        help="these noises instead (symNN, instNN, pairNN; grossNN, slipNN, unitNN)",
    )
    parser.add_argument(
        "--sym40", action="store_true", help="add 40%% flips on two tables"
    )
    parser.add_argument("--tasks", nargs="+", default=["classification", "regression"])
    parser.add_argument(
        "--summarise",
        nargs="+",
        default=None,
        metavar="CSV",
        help="only write the tables of these raw CSV files",
    )
    parser.add_argument(
        "--featured",
        nargs="+",
        default=None,
        help="variants shown in the per-cell tables",
    )
    args = parser.parse_args(argv)
    argv = sys.argv if argv is None else ["benchmarks/bench_masking.py", *argv]
    out = RESULTS / args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.summarise:
        rows = [r for r in read_rows(args.summarise) if r["seed"] in args.seeds]
        (out / "tables.md").write_text(report(rows, args.featured))
        print((out / "tables.md").read_text())
        return
    torch.set_num_threads(1)
    if args.variants == ["all"]:
        args.variants = variants()
    (out / "environment.md").write_text(environment(args.seeds, argv))
    raw = out / "raw.csv"
    done = set()
    if args.resume and raw.exists():
        done = {(r["dataset"], r["noise"], r["seed"]) for r in read_rows([raw])}
    else:
        with open(raw, "w", newline="") as handle:
            csv.DictWriter(handle, FIELDS).writeheader()
    jobs = []
    if "classification" in args.tasks:
        cells = classification_cells(args.quick, args.sym40)
        if args.datasets or args.noises:
            cells = [
                (d, n)
                for d in args.datasets or CLASSIFICATION
                for n in args.noises or ("clean", "sym20", "inst20")
                if d in CLASSIFICATION + EXTRA_CLASSIFICATION
            ]
        jobs += [("classification", c) for c in cells]
    if "regression" in args.tasks:
        cells = regression_cells(args.quick)
        if args.datasets or args.noises:
            cells = [
                (d, n)
                for d in args.datasets or REGRESSION
                for n in args.noises or ("clean", "gross20", "slip20")
                if d in REGRESSION + EXTRA_REGRESSION
            ]
        jobs += [("regression", c) for c in cells]
    for seed in args.seeds:
        for task, (dataset, noise) in jobs:
            if (dataset, noise, seed) in done:
                continue
            start = time.perf_counter()
            names = args.variants or (QUICK if args.quick else PANEL)[task]
            rows = cell_rows(task, dataset, noise, seed, names, peers=not args.no_peers)
            with open(raw, "a", newline="") as handle:
                csv.DictWriter(handle, FIELDS).writerows(rows)
            print(
                f"{dataset} {noise} seed {seed}: {time.perf_counter() - start:.0f} s",
                flush=True,
            )
    if not args.no_peers:
        rows = read_rows([raw])
        (out / "tables.md").write_text(report(rows, args.featured))
    print(f"results in {out}")


if __name__ == "__main__":
    main()
