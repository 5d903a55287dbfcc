"""Find injected label errors and gross target errors; compare with cleanlab.

Classification: labels of a bundled scikit-learn data set are corrupted at a
known rate, out-of-fold probabilities of an ordinary model are computed on the
noisy labels (StandardScaler + LogisticRegression, 5-fold
``cross_val_predict``), and the same probabilities go to

* ``find_label_outliers`` of sk_zerror, with its default ``sigma="auto"``
  and with a fixed ``sigma=2.0``,
* ``cleanlab.filter.find_label_issues`` with its defaults
  (``filter_by="prune_by_noise_rate"``).

The flagged rows are scored against the corrupted rows (F1, precision,
recall). Noise types:

* ``symmetric``: ``round(rate * n)`` rows drawn at random, each given one of
  the other classes uniformly;
* ``class``: class-dependent. With more than two classes, ``round(rate * n_c)``
  rows of every class ``c`` are given class ``(c + 1) % K``; with two classes,
  ``round(rate * n_1)`` rows of class 1 only are given class 0 (one-sided).

Regression: ``rate * n`` targets of the diabetes data are corrupted, in equal
shares, by a decimal slip (x10), a swap of the last two digits (126 -> 162),
a unit error (x2.2046, kilograms to pounds) and the target of another row.
Out-of-fold predictions of StandardScaler + Ridge go to ``find_outliers``
(median/MAD, sigma 2 and 3), to the note's mean/std rule (sigma 2) and to
Tukey's fences (1.5 IQR) on the residuals.

Examples
--------
The recorded tables of ``docs/benchmarks.md``::

    python benchmarks/bench_label_noise.py --out bench_label_noise.csv

A smoke run in under a minute::

    python benchmarks/bench_label_noise.py --quick

Noise realisations like those the defaults were chosen on (seeds 100-102,
never the reported 0-4, and two more data sets)::

    python benchmarks/bench_label_noise.py --datasets digits breast_cancer \\
        wine synthetic4 synthetic2 --seeds 100 101 102 --no-regression
"""

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import cleanlab
import numpy as np
import sklearn
import torch
from _common import detection, timed
from _noise import corrupt_labels, load_classification, rng_for
from cleanlab.filter import find_label_issues
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sk_zerror
from sk_zerror._outliers import find_label_outliers, find_outliers

FULL_RATES = (0.05, 0.1, 0.2, 0.3, 0.4)
QUICK_RATES = (0.1, 0.3)
NOISE_TYPES = ("symmetric", "class")
REGRESSION_RATES = (0.05, 0.1)
ERROR_KINDS = ("decimal slip", "digit swap", "unit error", "wrong row")
FIELDS = [
    "task",
    "dataset",
    "noise",
    "rate",
    "seed",
    "method",
    "f1",
    "precision",
    "recall",
    "n_flagged",
    "n_errors",
    "seconds",
]


def flag_rows(call, given, predicted, truth, **setting):
    """Run one detector; its flags and its result row for ``setting``."""
    flagged, seconds = timed(call, given, predicted)
    row = dict(
        setting,
        **detection(flagged, truth),
        n_flagged=int(flagged.sum()),
        n_errors=int(truth.sum()),
        seconds=seconds,
    )
    return flagged, row


LABEL_METHODS = {
    "ours (auto)": lambda labels, probs: find_label_outliers(labels, probs).mask,
    "ours (sigma=2)": lambda labels, probs: (
        find_label_outliers(labels, probs, sigma=2.0).mask
    ),
    "cleanlab": find_label_issues,
}


def run_classification(datasets, rates, seeds, rows):
    for name in datasets:
        X, y = load_classification(name)
        for noise in NOISE_TYPES:
            for rate in rates:
                for seed in seeds:
                    noisy = corrupt_labels(
                        y, noise, rate, rng_for(name, noise, rate, seed)
                    )
                    truth = noisy != y
                    model = make_pipeline(
                        StandardScaler(), LogisticRegression(max_iter=2000)
                    )
                    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
                    probs = cross_val_predict(
                        model, X, noisy, cv=cv, method="predict_proba"
                    )
                    for method, call in LABEL_METHODS.items():
                        _, row = flag_rows(
                            call,
                            noisy,
                            probs,
                            truth,
                            task="classification",
                            dataset=name,
                            noise=noise,
                            rate=rate,
                            seed=seed,
                            method=method,
                        )
                        rows.append(row)
                    done = rows[-len(LABEL_METHODS) :]
                    print(
                        f"{name} {noise} {rate:.0%} seed {seed}: "
                        + ", ".join(f"{r['method']} F1 {r['f1']:.3f}" for r in done),
                        file=sys.stderr,
                    )


def swap_last_digits(value):
    """``value`` with the last two of its three significant digits swapped."""
    exponent = np.floor(np.log10(abs(value))) - 2
    digits = str(int(round(abs(value) / 10**exponent)))
    swapped = int(digits[:-2] + digits[-1] + digits[-2])
    return np.sign(value) * swapped * 10**exponent, digits[-1] != digits[-2]


def corrupt_targets(y, rate, rng):
    """Targets with gross errors, and the kind of error of each row ("" if none)."""
    noisy = y.copy()
    kinds = np.full(len(y), "", dtype=object)
    rows = rng.choice(len(y), round(rate * len(y)), replace=False)
    for i, row in enumerate(rows):
        kind = ERROR_KINDS[i % len(ERROR_KINDS)]
        if kind == "decimal slip":
            noisy[row] = y[row] * 10
        elif kind == "unit error":
            noisy[row] = y[row] * 2.2046
        elif kind == "wrong row":
            other = rng.integers(len(y) - 1)
            noisy[row] = y[other + (other >= row)]
        else:
            noisy[row], changed = swap_last_digits(y[row])
            if not changed:
                continue
        kinds[row] = kind
    return noisy, kinds


def tukey_fences(residual):
    q1, q3 = np.percentile(residual, [25, 75])
    return (residual < q1 - 1.5 * (q3 - q1)) | (residual > q3 + 1.5 * (q3 - q1))


REGRESSION_METHODS = {
    "ours (median/MAD, sigma=2)": lambda y, pred: find_outliers(y, pred).mask,
    "ours (median/MAD, sigma=3)": lambda y, pred: (
        find_outliers(y, pred, sigma=3.0).mask
    ),
    "note (mean/std, sigma=2)": lambda y, pred: (
        find_outliers(y, pred, center="mean", scale="std").mask
    ),
    "Tukey fences (1.5 IQR)": lambda y, pred: tukey_fences(y - pred),
}


def run_regression(rates, seeds, rows, recalls):
    X, y = load_diabetes(return_X_y=True)
    for rate in rates:
        for seed in seeds:
            noisy, kinds = corrupt_targets(y, rate, rng_for("diabetes", rate, seed))
            truth = kinds != ""
            model = make_pipeline(StandardScaler(), Ridge())
            cv = KFold(5, shuffle=True, random_state=seed)
            pred = cross_val_predict(model, X, noisy, cv=cv)
            for method, call in REGRESSION_METHODS.items():
                flagged, row = flag_rows(
                    call,
                    noisy,
                    pred,
                    truth,
                    task="regression",
                    dataset="diabetes",
                    noise="gross errors",
                    rate=rate,
                    seed=seed,
                    method=method,
                )
                rows.append(row)
                for kind in ERROR_KINDS:
                    of_kind = kinds == kind
                    if of_kind.any():
                        recalls.setdefault((method, rate, kind), []).append(
                            float(flagged[of_kind].mean())
                        )


def median(values):
    return statistics.median(values)


def spread(values):
    return f"{median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def group(rows, *keys):
    out = {}
    for row in rows:
        out.setdefault(tuple(row[k] for k in keys), []).append(row)
    return out


def classification_table(rows):
    """Markdown: medians over seeds, F1 with [min, max]."""
    rows = [r for r in rows if r["task"] == "classification"]
    header = (
        "| data set | noise | rate | F1 ours (auto) | F1 cleanlab | F1 ours "
        "(sigma=2) | P ours / cleanlab | R ours / cleanlab | ms ours / "
        "cleanlab | auto >= cleanlab |"
    )
    lines = [header, "|" + "---|" * 10]
    wins = total = 0
    for (name, noise, rate), block in group(rows, "dataset", "noise", "rate").items():
        by = group(block, "method")

        def col(method, field, by=by):
            return [r[field] for r in by[(method,)]]

        ours, theirs = col("ours (auto)", "f1"), col("cleanlab", "f1")
        win = median(ours) >= median(theirs)
        wins += win
        total += 1
        lines.append(
            f"| {name} | {noise} | {rate:.0%} | {spread(ours)} | {spread(theirs)} "
            f"| {median(col('ours (sigma=2)', 'f1')):.3f} "
            f"| {median(col('ours (auto)', 'precision')):.2f} / "
            f"{median(col('cleanlab', 'precision')):.2f} "
            f"| {median(col('ours (auto)', 'recall')):.2f} / "
            f"{median(col('cleanlab', 'recall')):.2f} "
            f"| {1e3 * median(col('ours (auto)', 'seconds')):.1f} / "
            f"{1e3 * median(col('cleanlab', 'seconds')):.1f} "
            f"| {'yes' if win else '**no**'} |"
        )
    lines.append("")
    lines.append(f'Median F1 of `sigma="auto"` >= cleanlab\'s in {wins} of {total}.')
    return "\n".join(lines)


def regression_table(rows, recalls):
    rows = [r for r in rows if r["task"] == "regression"]
    header = "| rate | method | F1 | precision | recall | " + " | ".join(
        f"recall: {kind}" for kind in ERROR_KINDS
    )
    lines = [header + " |", "|" + "---|" * (5 + len(ERROR_KINDS))]
    for (rate, method), block in group(rows, "rate", "method").items():
        kinds = " | ".join(
            f"{median(recalls.get((method, rate, kind), [float('nan')])):.2f}"
            for kind in ERROR_KINDS
        )
        lines.append(
            f"| {rate:.0%} | {method} | {spread([r['f1'] for r in block])} "
            f"| {median([r['precision'] for r in block]):.2f} "
            f"| {median([r['recall'] for r in block]):.2f} | {kinds} |"
        )
    return "\n".join(lines)


def environment():
    return (
        f"sk_zerror {sk_zerror.__version__}, cleanlab {cleanlab.__version__}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
        f"torch {torch.__version__}, Python {platform.python_version()}, "
        f"{platform.machine()} {os.cpu_count()}-core CPU"
    )


def write(rows, path):
    path = Path(path)
    if path.suffix == ".json":
        path.write_text(json.dumps(rows, indent=1))
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (< 1 min)")
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["digits", "breast_cancer"],
        choices=["digits", "breast_cancer", "wine", "synthetic4", "synthetic2"],
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--no-regression", action="store_true")
    parser.add_argument("--out", help="write every run to this .csv or .json file")
    args = parser.parse_args(argv)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2, 3, 4])
    rates = QUICK_RATES if args.quick else FULL_RATES
    # The solvers' convergence warnings on noisy labels are expected.
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", module="sklearn")

    rows, recalls = [], {}
    start = time.perf_counter()
    run_classification(args.datasets, rates, seeds, rows)
    if not args.no_regression:
        run_regression(
            REGRESSION_RATES[-1:] if args.quick else REGRESSION_RATES,
            seeds,
            rows,
            recalls,
        )
    elapsed = time.perf_counter() - start

    print(f"{environment()}; seeds {seeds}; {elapsed:.0f} s in all.\n")
    print(classification_table(rows))
    if recalls:
        print()
        print(regression_table(rows, recalls))
    if args.out:
        write(rows, args.out)


if __name__ == "__main__":
    main()
