"""Z-Error estimators against their peers on noisy targets and labels (issue 6).

Every network in this study is the same MLP (the estimators' default,
``_baselines.mlp``: hidden (100,), ReLU, Adam, lr 1e-2, batch 128, the same
epochs), trained on standardised features; only the loss and the handling of
suspicious rows differ. Errors are injected into the *training* split only;
the test split is clean.

``regression``
    ``make_friedman1`` (10 features, noise 1) and scikit-learn's diabetes,
    with plus or minus 5 to 15 target standard deviations added to 0 to 40%
    of the training targets. Methods: ZErrorRegressor with the note's
    setting (``zscore_of="target"``, mean/std, sigma 2 annealed from 10 over
    all epochs) and two robust settings (median/MAD with the defaults, and
    with ``sigma=3, sigma_start=5``); a plain skorch MLP on MSE and on
    ``HuberLoss``; scikit-learn's ``HuberRegressor`` and ``RANSACRegressor``
    (linear, as shipped); cleanlab's regression ``CleanLearning`` wrapping
    the plain MLP (its defaults: 5 folds, a search over the fraction to drop,
    5 bootstraps); and the oracle, the plain MLP on the clean rows only.
    Reported: test RMSE, its ratio to the oracle, and detection precision,
    recall and F1 of ``outlier_mask_``, ``HuberRegressor.outliers_``,
    ``~RANSACRegressor.inlier_mask_`` and cleanlab's label issues.
``classification``
    Digits, breast cancer and a synthetic 4-class set, with 0 to 40%
    symmetric or class-dependent label noise (``_noise.corrupt_labels``).
    Methods: ZErrorClassifier (defaults, and the robust setting of
    ``bench_estimators``), the plain MLP on cross-entropy and on generalized
    cross-entropy (q = 0.7), cleanlab's ``CleanLearning`` wrapping the plain
    MLP, ``find_label_outliers`` on the same out-of-fold probabilities
    followed by a refit on the kept rows, and the clean-rows oracle.
    Reported: test accuracy, label-error detection F1 and the training cost
    (cleanlab and ``find_label_outliers`` need K cross-validation fits and a
    final fit; ZErrorClassifier one fit).

Seeds fix the data split, the corruption and every network. Tables give the
median and the min-max over seeds.

Examples
--------
The recorded tables and figures of ``docs/benchmarks/peers.md`` (the two studies
can run side by side on two cores)::

    python benchmarks/bench_peers.py --study regression --out peers_reg \\
        --figures docs/_static/benchmarks
    python benchmarks/bench_peers.py --study classification --out peers_clf \\
        --figures docs/_static/benchmarks

A smoke run in under a minute::

    python benchmarks/bench_peers.py --quick --out /tmp/peers
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import cleanlab
import numpy as np
import sklearn
import skorch
import torch
from _baselines import PlainMLPClassifier, PlainMLPRegressor
from _common import (
    environment,
    save_figure,
    score_mask,
    spread,
    summarise,
    timed,
    write_results,
)
from _noise import add_gross_errors, corrupt_labels, load_classification, rng_for
from bench_estimators import TUNED_ROBUST, TUNED_ROBUST_CLASSIFIER
from cleanlab.classification import CleanLearning
from cleanlab.regression.learn import CleanLearning as RegressionCleanLearning
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.linear_model import HuberRegressor, RANSACRegressor
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.preprocessing import StandardScaler

from sk_zerror import ZErrorClassifier, ZErrorRegressor, find_label_outliers

STUDIES = ("regression", "classification")
HIDDEN = (100,)
LR = 1e-2
BATCH_SIZE = 128
# The issue's goals.
MAX_RMSE_RATIO = 1.05
GOAL_RATE = 0.3

FULL = dict(
    seeds=3,
    rates=(0.0, 0.1, 0.2, 0.3, 0.4),
    epochs=100,
    folds=5,
    friedman_rows=(1000, 1000),
    regression_sets=("friedman", "diabetes"),
    classification_sets=("digits", "breast_cancer", "synthetic4"),
)
QUICK = dict(
    seeds=1,
    rates=(0.0, 0.3),
    epochs=4,
    folds=3,
    friedman_rows=(300, 200),
    regression_sets=("friedman",),
    classification_sets=("breast_cancer",),
)

REGRESSION_ZERROR = {
    "Z-Error, note (target, mean/std)": dict(
        zscore_of="target", center="mean", scale="std", sigma=2.0, sigma_start=10.0
    ),
    "Z-Error, robust (median/MAD)": dict(center="median", scale="mad"),
    "Z-Error, robust (median/MAD, sigma=3, start 5)": dict(
        center="median", scale="mad", **TUNED_ROBUST
    ),
    # Chosen on seeds 100-102 (never the reported 0-2) among constant sigma
    # 2, 2.5, 3 and annealing 5 -> 3, 3 -> 2: annealing from a wide sigma lets
    # the errors into the first epochs, which breaks down at 30-40% errors.
    "Z-Error, robust (median/MAD, sigma=2.5, constant)": dict(
        center="median", scale="mad", sigma=2.5, sigma_start=None
    ),
}
CLASSIFICATION_ZERROR = {
    "Z-Error, defaults": {},
    "Z-Error, robust (median/MAD, sigma=1, running)": dict(
        center="median", scale="mad", **TUNED_ROBUST_CLASSIFIER
    ),
}


def training_params(config, seed):
    """Keyword arguments of the plain MLPs and of the Z-Error estimators."""
    plain = dict(
        hidden=HIDDEN, lr=LR, batch_size=BATCH_SIZE, epochs=config["epochs"], seed=seed
    )
    zerror = dict(
        hidden_layer_sizes=HIDDEN,
        lr=LR,
        batch_size=BATCH_SIZE,
        max_epochs=config["epochs"],
        random_state=seed,
    )
    return plain, zerror


# -- regression -------------------------------------------------------------


def regression_data(name, seed, friedman_rows):
    if name == "friedman":
        n_train, n_test = friedman_rows
        X, y = make_friedman1(
            n_train + n_test, n_features=10, noise=1.0, random_state=seed
        )
        split = dict(test_size=n_test)
    else:
        X, y = load_diabetes(return_X_y=True)
        split = dict(test_size=0.3)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, random_state=seed, **split
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def regression_methods(config, seed):
    """name -> (estimator, function returning its outlier mask or None)."""
    net, zerror = training_params(config, seed)
    methods = {
        name: (ZErrorRegressor(**zerror, **params), lambda m: m.outlier_mask_)
        for name, params in REGRESSION_ZERROR.items()
    }
    methods.update(
        {
            "MLP, MSE": (PlainMLPRegressor(loss="mse", **net), None),
            "MLP, Huber": (PlainMLPRegressor(loss="huber", **net), None),
            "HuberRegressor": (HuberRegressor(max_iter=1000), lambda m: m.outliers_),
            "RANSACRegressor": (
                RANSACRegressor(random_state=seed),
                lambda m: ~m.inlier_mask_,
            ),
            "cleanlab CleanLearning (MLP)": (
                RegressionCleanLearning(
                    PlainMLPRegressor(loss="mse", **net),
                    cv_n_folds=config["folds"],
                    seed=seed,
                ),
                lambda m: m.get_label_issues()["is_label_issue"].to_numpy(),
            ),
        }
    )
    return methods


def run_regression(config, seeds):
    rows = []
    for name in config["regression_sets"]:
        for seed in seeds:
            X, X_test, y, y_test = regression_data(name, seed, config["friedman_rows"])
            for rate in config["rates"]:
                noisy, truth = add_gross_errors(y, rate, rng_for(name, rate, seed))
                oracle = PlainMLPRegressor(**training_params(config, seed)[0])
                fits = {"oracle (MLP, MSE, clean rows)": (oracle, None)}
                fits.update(regression_methods(config, seed))
                found = []
                for method, (model, get_mask) in fits.items():
                    keep = ~truth if method.startswith("oracle") else slice(None)
                    _, seconds = timed(model.fit, X[keep], noisy[keep])
                    pred = model.predict(X_test)
                    mask = None if get_mask is None else np.asarray(get_mask(model))
                    found.append(
                        {
                            "dataset": name,
                            "rate": rate,
                            "seed": seed,
                            "method": method,
                            "test_rmse": float(np.sqrt(np.mean((pred - y_test) ** 2))),
                            **score_mask(mask, truth),
                            "fit_s": seconds,
                        }
                    )
                for row in found:
                    row["rmse_ratio"] = row["test_rmse"] / found[0]["test_rmse"]
                rows += found
                print(f"  regression {name} seed {seed} {rate:.0%} done", flush=True)
    return rows


# -- classification ---------------------------------------------------------


def classification_data(name, seed):
    X, y = load_classification(name)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=seed
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def noise_settings(rates):
    """(noise, rate) pairs; rate 0 once, as noise "none"."""
    out = [("none", 0.0)] if 0.0 in rates else []
    return out + [(n, r) for n in ("symmetric", "class") for r in rates if r > 0]


def classification_fits(config, seed, X, noisy, truth):
    """Fit every method; yields (method, model or None, mask, seconds)."""
    net, zerror = training_params(config, seed)
    model, seconds = timed(PlainMLPClassifier(**net).fit, X[~truth], noisy[~truth])
    yield "oracle (MLP, CE, clean rows)", model, None, seconds
    for loss in ("ce", "gce"):
        model, seconds = timed(PlainMLPClassifier(loss=loss, **net).fit, X, noisy)
        yield f"MLP, {loss.upper()}", model, None, seconds
    for name, params in CLASSIFICATION_ZERROR.items():
        model, seconds = timed(ZErrorClassifier(**zerror, **params).fit, X, noisy)
        yield name, model, model.outlier_mask_, seconds

    # Out-of-fold probabilities of the plain MLP, shared by cleanlab and ours.
    cv = StratifiedKFold(config["folds"], shuffle=True, random_state=seed)
    probs, cv_seconds = timed(
        cross_val_predict,
        PlainMLPClassifier(**net),
        X,
        noisy,
        cv=cv,
        method="predict_proba",
    )
    cleaner = CleanLearning(
        PlainMLPClassifier(**net), seed=seed, cv_n_folds=config["folds"]
    )
    _, seconds = timed(cleaner.fit, X, noisy, pred_probs=probs)
    mask = cleaner.get_label_issues()["is_label_issue"].to_numpy()
    yield "cleanlab CleanLearning (MLP)", cleaner, mask, cv_seconds + seconds

    result, seconds = timed(find_label_outliers, noisy, probs)
    keep = ~result.mask
    refit, refit_seconds = timed(PlainMLPClassifier(**net).fit, X[keep], noisy[keep])
    yield (
        "find_label_outliers + refit (MLP)",
        refit,
        result.mask,
        cv_seconds + seconds + refit_seconds,
    )


def run_classification(config, seeds):
    rows = []
    for name in config["classification_sets"]:
        for seed in seeds:
            X, X_test, y, y_test = classification_data(name, seed)
            for noise, rate in noise_settings(config["rates"]):
                rng = rng_for(name, noise, rate, seed)
                noisy = y if noise == "none" else corrupt_labels(y, noise, rate, rng)
                truth = noisy != y
                for method, model, mask, seconds in classification_fits(
                    config, seed, X, noisy, truth
                ):
                    rows.append(
                        {
                            "dataset": name,
                            "noise": noise,
                            "rate": rate,
                            "seed": seed,
                            "method": method,
                            "test_accuracy": accuracy_score(
                                y_test, model.predict(X_test)
                            ),
                            **score_mask(mask, truth),
                            "fit_s": seconds,
                        }
                    )
                print(
                    f"  classification {name} {noise} {rate:.0%} seed {seed} done",
                    flush=True,
                )
    return rows


# -- report -----------------------------------------------------------------


def wide_table(summary, keys, metric, fmt):
    """One row per value of ``keys``, one column per method that has ``metric``."""
    methods = list(dict.fromkeys(e["method"] for e in summary if e[metric] is not None))
    groups = {}
    for e in summary:
        groups.setdefault(tuple(e[k] for k in keys), {})[e["method"]] = e
    lines = [
        "| " + " | ".join([*keys, *methods]) + " |",
        "|" + "---|" * (len(keys) + len(methods)),
    ]
    for key, by_method in groups.items():
        if all(by_method.get(m, {}).get(metric) is None for m in methods):
            continue
        labels = [f"{v:.0%}" if isinstance(v, float) else str(v) for v in key]
        cells = [
            spread(by_method[m], metric, fmt) if m in by_method else "-"
            for m in methods
        ]
        lines.append("| " + " | ".join(labels + cells) + " |")
    return lines


def regression_table(summary):
    lines = [
        "| data set | errors | method | test RMSE | RMSE / oracle | precision "
        "| recall | F1 | fit s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        lines.append(
            f"| {e['dataset']} | {e['rate']:.0%} | {e['method']} "
            f"| {spread(e, 'test_rmse', '.2f')} | {spread(e, 'rmse_ratio', '.2f')} "
            f"| {spread(e, 'precision', '.2f')} | {spread(e, 'recall', '.2f')} "
            f"| {spread(e, 'f1', '.2f')} | {e['fit_s']:.1f} |"
        )
    return lines


def classification_table(summary):
    lines = [
        "| data set | noise | rate | method | test accuracy | precision | recall "
        "| F1 | fit s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        lines.append(
            f"| {e['dataset']} | {e['noise']} | {e['rate']:.0%} | {e['method']} "
            f"| {spread(e, 'test_accuracy', '.3f')} "
            f"| {spread(e, 'precision', '.2f')} | {spread(e, 'recall', '.2f')} "
            f"| {spread(e, 'f1', '.2f')} | {e['fit_s']:.1f} |"
        )
    return lines


def regression_goals(summary):
    """Best Z-Error RMSE ratio at the goal rate, and F1 against each peer."""
    lines = []
    by = {(e["dataset"], e["rate"], e["method"]): e for e in summary}
    for name in dict.fromkeys(e["dataset"] for e in summary):
        at_goal = [by[k] for k in by if k[0] == name and k[1] == GOAL_RATE]
        ours = [e for e in at_goal if e["method"].startswith("Z-Error, robust")]
        if ours:
            best = min(ours, key=lambda e: e["rmse_ratio"])
            verdict = "met" if best["rmse_ratio"] <= MAX_RMSE_RATIO else "missed"
            lines.append(
                f"- {name}, {GOAL_RATE:.0%} errors: best robust Z-Error "
                f"RMSE / oracle {best['rmse_ratio']:.3f} ({best['method']}): "
                f"goal <= {MAX_RMSE_RATIO} {verdict}"
            )
        peers = ("cleanlab CleanLearning (MLP)", "RANSACRegressor", "HuberRegressor")
        for method in REGRESSION_ZERROR:
            for peer in peers:
                wins = total = 0
                for (d, rate, m), theirs in by.items():
                    if d != name or m != peer or theirs["f1"] is None:
                        continue
                    total += 1
                    wins += by[(d, rate, method)]["f1"] >= theirs["f1"]
                if total:
                    lines.append(
                        f"- {name}: {method} detection F1 >= {peer} at {wins} "
                        f"of {total} error rates"
                    )
    return lines


def classification_goals(summary):
    """Detection F1 of ours against cleanlab's, counted over the settings."""
    by = {(e["dataset"], e["noise"], e["rate"], e["method"]): e for e in summary}
    ours = [
        "Z-Error, defaults",
        "Z-Error, robust (median/MAD, sigma=1, running)",
        "find_label_outliers + refit (MLP)",
    ]
    lines = []
    for method in ours:
        wins = total = acc_wins = 0
        for (d, noise, rate, m), theirs in by.items():
            if m != "cleanlab CleanLearning (MLP)" or theirs["f1"] is None:
                continue
            mine = by[(d, noise, rate, method)]
            total += 1
            wins += mine["f1"] >= theirs["f1"]
            acc_wins += mine["test_accuracy"] >= theirs["test_accuracy"]
        lines.append(
            f"- {method}: detection F1 >= cleanlab in {wins} of {total} noisy "
            f"settings; test accuracy >= cleanlab in {acc_wins} of {total}"
        )
    return lines


def method_colors(summary):
    """One colour per method, the same in every panel and figure."""
    methods = dict.fromkeys(e["method"] for e in summary)
    return {m: f"C{i % 10}" for i, m in enumerate(methods)}


def errorbar_line(ax, entries, metric, label, color):
    """Median of ``metric`` against the error rate (%), min-max as error bars."""
    ax.errorbar(
        [100 * e["rate"] for e in entries],
        [e[metric] for e in entries],
        yerr=[
            [e[metric] - e[metric + "_min"] for e in entries],
            [e[metric + "_max"] - e[metric] for e in entries],
        ],
        marker="o",
        capsize=3,
        label=label,
        color=color,
    )


def plot_regression(summary, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(e["dataset"] for e in summary))
    colors = method_colors(summary)
    fig, axes = plt.subplots(2, len(names), figsize=(6 * len(names), 8), squeeze=False)
    for col, name in enumerate(names):
        entries = [e for e in summary if e["dataset"] == name]
        for method in dict.fromkeys(e["method"] for e in entries):
            line = sorted(
                (e for e in entries if e["method"] == method), key=lambda e: e["rate"]
            )
            for row, metric in enumerate(("rmse_ratio", "f1")):
                points = [e for e in line if e[metric] is not None]
                if not points or (
                    metric == "rmse_ratio" and method.startswith("oracle")
                ):
                    continue
                errorbar_line(axes[row, col], points, metric, method, colors[method])
        axes[0, col].set_yscale("log")
        axes[0, col].axhline(MAX_RMSE_RATIO, color="grey", linestyle=":", lw=1)
        axes[0, col].set_title(f"{name}: test RMSE / clean-rows oracle")
        axes[0, col].set_ylabel("RMSE / oracle (log scale)")
        axes[1, col].set_title(f"{name}: detection of corrupted rows")
        axes[1, col].set_ylabel("F1")
        axes[1, col].set_ylim(0, 1.02)
        for ax in axes[:, col]:
            ax.set_xlabel("training targets with gross errors (%)")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def plot_classification(summary, metric, ylabel, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(e["dataset"] for e in summary))
    colors = method_colors(summary)
    noises = ("symmetric", "class")
    fig, axes = plt.subplots(
        len(noises), len(names), figsize=(5 * len(names), 8), squeeze=False
    )
    for col, name in enumerate(names):
        for row, noise in enumerate(noises):
            ax = axes[row, col]
            entries = [
                e
                for e in summary
                if e["dataset"] == name and e["noise"] in (noise, "none")
            ]
            for method in dict.fromkeys(e["method"] for e in entries):
                line = sorted(
                    (
                        e
                        for e in entries
                        if e["method"] == method and e[metric] is not None
                    ),
                    key=lambda e: e["rate"],
                )
                if not line:
                    continue
                errorbar_line(ax, line, metric, method, colors[method])
            ax.set_title(f"{name}, {noise} noise")
            ax.set_xlabel("training labels flipped (%)")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run, < 1 min")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1")
    parser.add_argument(
        "--study", choices=(*STUDIES, "all"), default="all", help="what to run"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=None, help="folder for results")
    parser.add_argument(
        "--figures", type=Path, default=None, help="folder for the PNG figures"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="cleanlab")
    warnings.filterwarnings("ignore", category=sklearn.exceptions.ConvergenceWarning)
    config = dict(QUICK if args.quick else FULL)
    if args.seeds is not None:
        config["seeds"] = args.seeds
    seeds = list(range(config["seeds"]))
    studies = STUDIES if args.study == "all" else (args.study,)
    env = environment(
        torch,
        skorch,
        sklearn,
        cleanlab,
        np,
        threads=torch.get_num_threads(),
        seeds=seeds,
        argv=argv,
    )
    print(json.dumps(env), flush=True)

    started = time.perf_counter()
    raw, summary, lines = {}, {}, []
    metrics = ("precision", "recall", "f1", "flagged", "fit_s")
    if "regression" in studies:
        raw["regression"] = run_regression(config, seeds)
        summary["regression"] = summarise(
            raw["regression"],
            ("dataset", "rate", "method"),
            ("test_rmse", "rmse_ratio", *metrics),
        )
        for metric, fmt in (("rmse_ratio", ".2f"), ("f1", ".2f")):
            lines += [f"{metric}:", ""]
            lines += wide_table(summary["regression"], ("dataset", "rate"), metric, fmt)
            lines.append("")
        lines += regression_table(summary["regression"]) + [""]
        lines += regression_goals(summary["regression"]) + [""]
    if "classification" in studies:
        raw["classification"] = run_classification(config, seeds)
        summary["classification"] = summarise(
            raw["classification"],
            ("dataset", "noise", "rate", "method"),
            ("test_accuracy", *metrics),
        )
        keys = ("dataset", "noise", "rate")
        for metric, fmt in (("test_accuracy", ".3f"), ("f1", ".2f"), ("fit_s", ".1f")):
            lines += [f"{metric}:", ""]
            lines += wide_table(summary["classification"], keys, metric, fmt)
            lines.append("")
        lines += classification_table(summary["classification"]) + [""]
        lines += classification_goals(summary["classification"]) + [""]
    elapsed = time.perf_counter() - started
    tables = "\n".join(lines)
    print(tables)
    print(f"total {elapsed:.0f} s", flush=True)

    if args.figures is not None:
        args.figures.mkdir(parents=True, exist_ok=True)
        if "regression" in summary:
            plot_regression(
                summary["regression"], args.figures / "peers_regression.png"
            )
        if "classification" in summary:
            plot_classification(
                summary["classification"],
                "test_accuracy",
                "test accuracy",
                args.figures / "peers_classification_accuracy.png",
            )
            plot_classification(
                summary["classification"],
                "f1",
                "label-error detection F1",
                args.figures / "peers_classification_detection.png",
            )
    if args.out is not None:
        result = {
            "mode": "quick" if args.quick else "full",
            "seeds": seeds,
            "config": config,
            "environment": env,
            "elapsed_s": elapsed,
            "summary": summary,
        }
        write_results(args.out, raw, result, tables)


if __name__ == "__main__":
    main()
