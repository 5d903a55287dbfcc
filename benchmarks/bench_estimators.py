"""Benchmarks of ZErrorRegressor and ZErrorClassifier (issue 3).

Three studies, each against plain baselines trained on the same data with the
same network (the estimators' default MLP, built by ``_baselines.mlp``),
optimizer, learning rate, batch size and epochs:

``overhead``
    Fit time of the estimators against a plain skorch net (``MSELoss`` or
    ``CrossEntropyLoss``). Plain and Z-Error fits alternate, after one
    discarded warm-up fit of each. Reported: the whole ``fit`` (the
    estimator's includes input validation and the whole-set ledger pass),
    and the training loop alone (the sum of skorch's per-epoch ``dur``).
    A third net, plain skorch fed a whole batch at a time (as the estimators
    feed theirs), separates the cost of the loss from that of data loading.
``regression``
    ``make_friedman1`` with gross errors (plus or minus 5 to 15 target
    standard deviations) added to 10, 20 and 30% of the *training* targets;
    test RMSE on clean targets, and precision, recall and F1 of
    ``outlier_mask_`` against the corrupted rows.
``classification``
    scikit-learn's digits (X / 16) with 20 and 40% of the *training* labels
    flipped to another class at random; test accuracy on clean labels, and
    precision, recall and F1 of ``outlier_mask_`` against the flipped rows.

The regression compares the robust setting (``center="median",
scale="mad"``), the note's exact setting (``zscore_of="target"``, mean/std,
sigma 2, linear annealing from 10 over all epochs), the estimator's defaults,
plain MSE, a skorch net with ``HuberLoss`` on robustly standardised targets,
and the oracle: plain MSE on the uncorrupted rows only. The classification
compares the defaults, the robust setting, the note's two-tailed setting,
plain cross-entropy and the clean-rows oracle. One extra robust setting per
task (``TUNED_ROBUST``, ``TUNED_ROBUST_CLASSIFIER``) was chosen on seed 0
only; the other seeds were not looked at before it was fixed.

Every run is seeded (data, corruption and network); with several seeds the
tables give the median and the min-max spread. Torch runs on ``--threads``
threads (default 1: the timings are less noisy on a shared 2-core machine).

Examples
--------
The recorded tables of ``docs/benchmarks/estimators.md``::

    python benchmarks/bench_estimators.py --out bench_estimators

A smoke run in well under a minute::

    python benchmarks/bench_estimators.py --quick --out /tmp/bench_estimators
"""

import argparse
import gc
import json
import statistics
import time
from functools import partial
from pathlib import Path

import numpy as np
import sklearn
import skorch
import torch
from _baselines import PlainMLPRegressor, mlp, net_params
from _common import detection, environment, spread, summarise, timed, write_results
from _noise import add_gross_errors, corrupt_labels
from sklearn.datasets import load_digits, make_classification, make_friedman1
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.dataset import Dataset

from sk_zerror import ZErrorClassifier, ZErrorRegressor

STUDIES = ("overhead", "regression", "classification")
HIDDEN = (100,)
LR = 1e-2
BATCH_SIZE = 256
# The issue's targets.
MAX_OVERHEAD = 1.15
MAX_RMSE_RATIO = 1.10
# Gross target errors, in standard deviations of the clean training targets.
ERROR_SIZE = (5.0, 15.0)
# A threshold no finite z-score reaches: the Z-Error loss is then plain MSE or
# cross-entropy (the estimators' constraints refuse inf).
NO_MASK = 1e9
# The robust regression setting tuned on seed 0 only (test RMSE against the
# oracle, all three error rates); the other seeds are reported untouched.
TUNED_ROBUST = dict(sigma=3.0, sigma_start=5.0)
# Likewise for the classifier (test accuracy, both flip rates, seed 0 only).
TUNED_ROBUST_CLASSIFIER = dict(sigma=1.0, sigma_start=None, window="running")

FULL = dict(
    seeds=3,
    overhead_rows=20_000,
    overhead_epochs=20,
    overhead_repeats=5,
    reg_train=4000,
    reg_test=2000,
    reg_epochs=100,
    reg_rates=(0.1, 0.2, 0.3),
    clf_epochs=100,
    clf_rates=(0.2, 0.4),
)
QUICK = dict(
    seeds=1,
    overhead_rows=2000,
    overhead_epochs=3,
    overhead_repeats=2,
    reg_train=600,
    reg_test=400,
    reg_epochs=15,
    reg_rates=(0.1, 0.2, 0.3),
    clf_epochs=10,
    clf_rates=(0.2, 0.4),
)


def zerror_params(epochs, seed):
    """The training settings every Z-Error estimator here shares with the nets."""
    return dict(
        hidden_layer_sizes=HIDDEN,
        lr=LR,
        batch_size=BATCH_SIZE,
        max_epochs=epochs,
        random_state=seed,
    )


# -- overhead ---------------------------------------------------------------


class BatchDataset(Dataset):
    """skorch's Dataset, indexed a whole batch at a time, as the estimators' is.

    The DataLoader otherwise indexes and collates row by row, which for a
    small MLP costs about as much as the network; a batch here holds the same
    rows, values and dtypes as row-wise collation would give. Use it with
    :func:`whole_batch` as the DataLoader's ``collate_fn``.
    """

    def __getitems__(self, indices):
        index = np.asarray(indices, dtype=np.int64)
        X = torch.as_tensor(self.X[index])
        if self.y is None:
            # Row by row, skorch yields a dummy tensor([0.]) per row.
            return X, torch.zeros(len(index), 1)
        return X, torch.as_tensor(self.y[index])


def whole_batch(batch):
    """DataLoader ``collate_fn`` for :class:`BatchDataset`: already a batch."""
    return batch


def plain_net(task, n_features, n_outputs, epochs, seed, batched):
    torch.manual_seed(seed)
    net_class, criterion = {
        "regressor": (NeuralNetRegressor, torch.nn.MSELoss),
        "classifier": (NeuralNetClassifier, torch.nn.CrossEntropyLoss),
    }[task]
    loader = (
        dict(
            dataset=BatchDataset,
            iterator_train__collate_fn=whole_batch,
            iterator_valid__collate_fn=whole_batch,
        )
        if batched
        else {}
    )
    return net_class(
        mlp(n_features, n_outputs, HIDDEN),
        criterion=criterion,
        **net_params(LR, BATCH_SIZE, epochs),
        **loader,
    )


def overhead_data(task, n_rows, seed):
    if task == "regressor":
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n_rows, 20)).astype(np.float32)
        y = np.sin(2 * X[:, 0]) + X[:, 1:6].sum(axis=1) + 0.1 * rng.normal(size=n_rows)
        # The plain net gets the targets the estimator trains on: standardised.
        y_plain = ((y - y.mean()) / y.std()).astype(np.float32).reshape(-1, 1)
        return X, y, y_plain, 1
    X, y = make_classification(
        n_rows, 20, n_informative=10, n_classes=5, random_state=seed
    )
    return X.astype(np.float32), y, y.astype(np.int64), 5


def time_fit(fit):
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    net = fit()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "loop_s": float(sum(net.history[:, "dur"]))}


def fit_for_overhead(net, task, X, y, y_plain, n_outputs, epochs, seed):
    if net == "zerror":
        estimator = {"regressor": ZErrorRegressor, "classifier": ZErrorClassifier}
        # The same work as the plain net: every epoch, one run.
        one_run = dict(early_stopping=False, retrain_without_outliers=False)
        params = {**zerror_params(epochs, seed), **one_run}
        return estimator[task](**params).fit(X, y).net_
    batched = net == "skorch_batched"
    plain = plain_net(task, X.shape[1], n_outputs, epochs, seed, batched)
    return plain.fit(X, y_plain)


def run_overhead(config, seed=0):
    rows = []
    epochs = config["overhead_epochs"]
    names = ["skorch", "skorch_batched", "zerror"]
    for task in ("regressor", "classifier"):
        X, y, y_plain, n_outputs = overhead_data(task, config["overhead_rows"], seed)
        fits = {
            name: partial(
                fit_for_overhead, name, task, X, y, y_plain, n_outputs, epochs, seed
            )
            for name in names
        }
        for fit in fits.values():  # warm-up, discarded
            fit()
        for repeat in range(config["overhead_repeats"]):
            # Alternate the order so that drifting machine load hits all alike.
            for name in names if repeat % 2 == 0 else names[::-1]:
                timing = time_fit(fits[name])
                rows.append({"task": task, "net": name, "repeat": repeat, **timing})
            print(f"  overhead {task} repeat {repeat} done", flush=True)
    return rows


def summarise_overhead(rows):
    """Medians per net, their ratios to plain skorch, and the paired spread.

    The ``*_pair_min``/``*_pair_max`` ratios compare fits of the same repeat,
    run back to back: their spread shows how much the machine's load moved.
    """
    out = []
    metrics = ("wall_s", "cpu_s", "loop_s")
    for task in ("regressor", "classifier"):
        by_net = {}
        for row in rows:
            if row["task"] == task:
                by_net.setdefault(row["net"], {})[row["repeat"]] = row
        median = {
            net: {k: statistics.median(r[k] for r in runs.values()) for k in metrics}
            for net, runs in by_net.items()
        }
        for net, runs in by_net.items():
            entry = {"task": task, "net": net, **median[net]}
            for k in metrics:
                name = k.removesuffix("_s")
                pairs = [r[k] / by_net["skorch"][i][k] for i, r in runs.items()]
                entry[name + "_ratio"] = median[net][k] / median["skorch"][k]
                entry[name + "_pair_min"] = min(pairs)
                entry[name + "_pair_max"] = max(pairs)
                entry[name + "_ratio_to_batched"] = (
                    median[net][k] / median["skorch_batched"][k]
                )
            out.append(entry)
    return out


# -- regression -------------------------------------------------------------


def regression_models(epochs, seed):
    common = zerror_params(epochs, seed)
    return {
        "robust (median/mad)": ZErrorRegressor(center="median", scale="mad", **common),
        "robust, tuned (sigma=3, sigma_start=5)": ZErrorRegressor(
            center="median", scale="mad", **TUNED_ROBUST, **common
        ),
        "note (target, mean/std, anneal all)": ZErrorRegressor(
            zscore_of="target",
            center="mean",
            scale="std",
            sigma=2.0,
            sigma_start=10.0,
            anneal_epochs=epochs,
            **common,
        ),
        "default (residual, mean/std)": ZErrorRegressor(**common),
        "plain MSE": ZErrorRegressor(sigma=NO_MASK, sigma_start=None, **common),
    }


def regression_row(method, prediction, y_test, mask, truth, seconds):
    rmse = float(np.sqrt(np.mean((prediction - y_test) ** 2)))
    return {
        "method": method,
        "test_rmse": rmse,
        **detection(mask, truth),
        "fit_s": seconds,
    }


def run_regression(config, seeds):
    rows = []
    epochs = config["reg_epochs"]
    n_train, n_test = config["reg_train"], config["reg_test"]
    for seed in seeds:
        X, y = make_friedman1(
            n_train + n_test, n_features=10, noise=1.0, random_state=seed
        )
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=n_test, random_state=seed
        )
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        for rate in config["reg_rates"]:
            rng = np.random.default_rng([seed, round(100 * rate)])
            y_noisy, truth = add_gross_errors(y_train, rate, rng, ERROR_SIZE)
            found = []
            oracle = ZErrorRegressor(
                sigma=NO_MASK, sigma_start=None, **zerror_params(epochs, seed)
            )
            _, seconds = timed(oracle.fit, X_train[~truth], y_noisy[~truth])
            found.append(
                regression_row(
                    "oracle (clean rows, MSE)",
                    oracle.predict(X_test),
                    y_test,
                    None,
                    truth,
                    seconds,
                )
            )
            for method, model in regression_models(epochs, seed).items():
                _, seconds = timed(model.fit, X_train, y_noisy)
                mask = None if method == "plain MSE" else model.outlier_mask_
                found.append(
                    regression_row(
                        method, model.predict(X_test), y_test, mask, truth, seconds
                    )
                )
            huber = PlainMLPRegressor(
                loss="huber",
                hidden=HIDDEN,
                lr=LR,
                batch_size=BATCH_SIZE,
                epochs=epochs,
                seed=seed,
            )
            _, seconds = timed(huber.fit, X_train, y_noisy)
            found.append(
                regression_row(
                    "Huber (delta=1)",
                    huber.predict(X_test),
                    y_test,
                    None,
                    truth,
                    seconds,
                )
            )
            for row in found:
                row["rmse_ratio_to_oracle"] = row["test_rmse"] / found[0]["test_rmse"]
                rows.append({"seed": seed, "error_rate": rate, **row})
            print(f"  regression seed {seed} rate {rate:.0%} done", flush=True)
    return rows


# -- classification ---------------------------------------------------------


def classification_models(epochs, seed):
    common = zerror_params(epochs, seed)
    return {
        "default (mean/std, lower tail)": ZErrorClassifier(**common),
        "robust (median/mad)": ZErrorClassifier(center="median", scale="mad", **common),
        "robust, tuned (sigma=1, no anneal, running)": ZErrorClassifier(
            center="median", scale="mad", **TUNED_ROBUST_CLASSIFIER, **common
        ),
        "note (mean/std, both tails, anneal all)": ZErrorClassifier(
            tail="both", anneal_epochs=epochs, **common
        ),
        "plain CE": ZErrorClassifier(sigma=NO_MASK, sigma_start=None, **common),
    }


def run_classification(config, seeds):
    rows = []
    epochs = config["clf_epochs"]
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    for seed in seeds:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.3, stratify=y, random_state=seed
        )
        for rate in config["clf_rates"]:
            rng = np.random.default_rng([seed, round(100 * rate)])
            y_noisy = corrupt_labels(y_train, "symmetric", rate, rng)
            truth = y_noisy != y_train
            models = {
                "oracle (clean rows, CE)": ZErrorClassifier(
                    sigma=NO_MASK, sigma_start=None, **zerror_params(epochs, seed)
                ),
                **classification_models(epochs, seed),
            }
            for method, model in models.items():
                oracle = method.startswith("oracle")
                keep = ~truth if oracle else slice(None)
                _, seconds = timed(model.fit, X_train[keep], y_noisy[keep])
                scored = not (oracle or method == "plain CE")
                rows.append(
                    {
                        "seed": seed,
                        "flip_rate": rate,
                        "method": method,
                        "test_accuracy": accuracy_score(y_test, model.predict(X_test)),
                        **detection(model.outlier_mask_ if scored else None, truth),
                        "fit_s": seconds,
                    }
                )
            print(f"  classification seed {seed} rate {rate:.0%} done", flush=True)
    return rows


# -- report -----------------------------------------------------------------


def markdown(summary):
    lines = []
    if "overhead" in summary:
        lines += [
            "| task | net | fit CPU s | fit wall s | CPU ratio (pairs) "
            "| wall ratio (pairs) | loop ratio | CPU ratio to skorch_batched |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for e in summary["overhead"]:
            lines.append(
                f"| {e['task']} | {e['net']} | {e['cpu_s']:.2f} | {e['wall_s']:.2f} "
                f"| {e['cpu_ratio']:.2f}x ({e['cpu_pair_min']:.2f}-"
                f"{e['cpu_pair_max']:.2f}) "
                f"| {e['wall_ratio']:.2f}x ({e['wall_pair_min']:.2f}-"
                f"{e['wall_pair_max']:.2f}) "
                f"| {e['loop_ratio']:.2f}x | {e['cpu_ratio_to_batched']:.2f}x |"
            )
        lines.append("")
    if "regression" in summary:
        lines += [
            "| errors | method | test RMSE | RMSE / oracle | precision | recall | F1 |",
            "|---|---|---|---|---|---|---|",
        ]
        for e in summary["regression"]:
            lines.append(
                f"| {e['error_rate']:.0%} | {e['method']} "
                f"| {spread(e, 'test_rmse', '.3f')} "
                f"| {spread(e, 'rmse_ratio_to_oracle', '.2f')} "
                f"| {spread(e, 'precision', '.2f')} | {spread(e, 'recall', '.2f')} "
                f"| {spread(e, 'f1', '.2f')} |"
            )
        lines.append("")
    if "classification" in summary:
        lines += [
            "| flipped | method | test accuracy | precision | recall | F1 |",
            "|---|---|---|---|---|---|",
        ]
        for e in summary["classification"]:
            lines.append(
                f"| {e['flip_rate']:.0%} | {e['method']} "
                f"| {spread(e, 'test_accuracy', '.3f')} "
                f"| {spread(e, 'precision', '.2f')} | {spread(e, 'recall', '.2f')} "
                f"| {spread(e, 'f1', '.2f')} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run, < 1 min")
    parser.add_argument(
        "--seeds", type=int, default=None, help="seeds 0..N-1 (default 3, quick 1)"
    )
    parser.add_argument(
        "--study", choices=(*STUDIES, "all"), default="all", help="what to run"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=None, help="folder for results")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    config = dict(QUICK if args.quick else FULL)
    if args.seeds is not None:
        config["seeds"] = args.seeds
    seeds = list(range(config["seeds"]))
    studies = STUDIES if args.study == "all" else (args.study,)
    env = environment(
        torch,
        skorch,
        sklearn,
        np,
        threads=torch.get_num_threads(),
        seeds=seeds,
        argv=argv,
        with_load_average=True,
    )
    print(json.dumps(env), flush=True)

    started = time.perf_counter()
    raw, summary = {}, {}
    if "overhead" in studies:
        raw["overhead"] = run_overhead(config)
        summary["overhead"] = summarise_overhead(raw["overhead"])
    if "regression" in studies:
        raw["regression"] = run_regression(config, seeds)
        summary["regression"] = summarise(
            raw["regression"],
            ("error_rate", "method"),
            ("test_rmse", "rmse_ratio_to_oracle", "precision", "recall", "f1"),
        )
    if "classification" in studies:
        raw["classification"] = run_classification(config, seeds)
        summary["classification"] = summarise(
            raw["classification"],
            ("flip_rate", "method"),
            ("test_accuracy", "precision", "recall", "f1"),
        )
    elapsed = time.perf_counter() - started
    tables = markdown(summary)
    print(tables)
    print(f"total {elapsed:.0f} s", flush=True)

    if args.out is not None:
        result = {
            "mode": "quick" if args.quick else "full",
            "seeds": seeds,
            "config": config,
            "targets": {
                "max_overhead": MAX_OVERHEAD,
                "max_rmse_ratio": MAX_RMSE_RATIO,
            },
            "environment": env,
            "elapsed_s": elapsed,
            "summary": summary,
        }
        write_results(args.out, raw, result, tables)


if __name__ == "__main__":
    main()
