"""The ``sk-zerror audit`` command on real tables: flags, errors found, time.

Each case writes a table shipped inside an installed package (vega_datasets'
cars and Seattle weather, statsmodels' RAND health-insurance table,
scikit-learn's breast cancer and diabetes sets) to a CSV file, clean or with
injected errors, and runs the command on it as a user would
(``python -m sk_zerror audit FILE --target COLUMN --out DIR --quiet``), at
its defaults. On the clean tables it records the share of rows flagged (the
target: at most 3%); with injected errors, the precision and recall of the
flags against the injected rows; and for every run the child process's CPU
and wall time. A timing part runs the command on a synthetic 100,000-row
table and times ``--help``.

A baseline a user writes in five lines runs on the same tables in the same
process, from 5-fold out-of-fold predictions of scikit-learn's gradient
boosting: for labels, cleanlab's ``find_label_issues`` on the
``HistGradientBoostingClassifier`` probabilities (cleanlab's own recipe);
for numbers, robust z-scores of the ``HistGradientBoostingRegressor``
residuals (median and MAD) beyond 3.5. ``--peers-only`` runs the baseline
rows alone.

``--quick`` runs one small case for a few epochs: the smoke test.

    python benchmarks/bench_audit.py            # about 6 minutes of CPU
    python benchmarks/bench_audit.py --quick
"""

import os

# One thread for the in-process baseline too: OpenMP's gradient boosting
# spinning on a shared machine is many times slower.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import detection, environment, write_csv, write_results  # noqa: E402

import sk_zerror  # noqa: E402

SEEDS = (0, 1, 2)
THREADS = 1
# Share of rows of a real table that get an injected error.
ERROR_SHARE = 0.05


def run_command(args, *, cwd):
    """Run ``python -m sk_zerror ARGS``; its stdout, CPU and wall seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "sk_zerror", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result, cpu, wall


# -- tables and injected errors ---------------------------------------------


def cars():
    from vega_datasets import local_data

    return local_data.cars()


def weather():
    from vega_datasets import local_data

    return local_data.seattle_weather()


def health():
    import statsmodels.api as sm

    return sm.datasets.randhie.load_pandas().data


def breast_cancer():
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    table = data.frame.drop(columns="target")
    table["diagnosis"] = data.target_names[data.target]
    return table


def pounds_as_kilograms(values):
    return np.round(values / 2.2046)


def celsius_as_fahrenheit(values):
    return values * 9 / 5 + 32


def inject_unit_and_decimal(table, target, seed, unit=pounds_as_kilograms):
    """Half the injected rows in another unit, half decimal slips (x10, /10)."""
    rng = np.random.default_rng(seed)
    table = table.copy()
    rows = np.flatnonzero(table[target].notna())
    chosen = rng.choice(rows, int(ERROR_SHARE * len(table)), replace=False)
    units, slips = chosen[: len(chosen) // 2], chosen[len(chosen) // 2 :]
    values = table[target].to_numpy(dtype=float).copy()
    values[units] = unit(values[units])
    factor = np.where(rng.random(len(slips)) < 0.5, 10.0, 0.1)
    values[slips] = values[slips] * factor
    table[target] = values
    truth = np.zeros(len(table), dtype=bool)
    truth[chosen] = True
    return table, truth


def inject_count_digits(table, target, seed, n=200):
    """A typed extra digit in ``n`` counts: v becomes 10 v + d."""
    rng = np.random.default_rng(seed)
    table = table.copy()
    chosen = rng.choice(len(table), n, replace=False)
    values = table[target].to_numpy().copy()
    values[chosen] = 10 * values[chosen] + rng.integers(1, 10, n)
    table[target] = values
    truth = np.zeros(len(table), dtype=bool)
    truth[chosen] = True
    return table, truth


def inject_label_flips(table, target, seed):
    """A random other class for ``ERROR_SHARE`` of the rows."""
    rng = np.random.default_rng(seed)
    table = table.copy()
    labels = table[target].to_numpy().astype(object)
    classes = np.unique(labels)
    chosen = rng.choice(len(table), int(ERROR_SHARE * len(table)), replace=False)
    for row in chosen:
        labels[row] = rng.choice(classes[classes != labels[row]])
    table[target] = labels
    truth = np.zeros(len(table), dtype=bool)
    truth[chosen] = True
    return table, truth


def synthetic(n_rows, seed=0, n_features=10):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    table = pd.DataFrame(X, columns=[f"x{i}" for i in range(n_features)])
    table["y"] = X[:, 0] - 2 * X[:, 1] + np.sin(X[:, 2]) + 0.3 * rng.normal(size=n_rows)
    return table


# Name, table, target, injection (None: the table as shipped).
FULL_CASES = [
    ("cars: Miles_per_Gallon", cars, "Miles_per_Gallon", None),
    ("cars: Weight_in_lbs", cars, "Weight_in_lbs", None),
    ("cars: Weight_in_lbs", cars, "Weight_in_lbs", inject_unit_and_decimal),
    ("seattle weather: weather", weather, "weather", None),
    ("seattle weather: weather", weather, "weather", inject_label_flips),
    ("seattle weather: temp_max", weather, "temp_max", None),
    (
        "seattle weather: temp_max",
        weather,
        "temp_max",
        lambda table, target, seed: inject_unit_and_decimal(
            table, target, seed, unit=celsius_as_fahrenheit
        ),
    ),
    ("breast cancer: diagnosis", breast_cancer, "diagnosis", None),
    ("breast cancer: diagnosis", breast_cancer, "diagnosis", inject_label_flips),
    ("RAND health: mdvis", health, "mdvis", None),
    ("RAND health: mdvis", health, "mdvis", inject_count_digits),
]
QUICK_CASES = [
    ("cars: Weight_in_lbs", cars, "Weight_in_lbs", inject_unit_and_decimal),
]


# Cases for the out-of-fold gradient-boosting baseline: every table, the
# label ones through cleanlab, the numeric ones through robust z-scores.
PEER_CASES = FULL_CASES
LABEL_TARGETS = ("weather", "diagnosis")
# The modified z-score cut of Iglewicz and Hoaglin: |0.6745 (r - median) / MAD|.
ROBUST_Z_CUT = 3.5


def demo_table(table, target, seed):
    """The built-in demo (diabetes with 40 injected errors) and its truth."""
    from sk_zerror._cli import make_demo_table

    demo, truth, _ = make_demo_table(seed)
    return demo.drop(columns="id"), truth


def baseline_features(table, target):
    """One-hot features, dates as day of year and year, rows with a target."""
    features = table.drop(columns=target)
    dates = features.select_dtypes("datetime").columns
    for column in dates:
        features[f"{column}_day"] = features[column].dt.day_of_year
        features[f"{column}_time"] = features[column].dt.year
    return pd.get_dummies(features.drop(columns=dates), dtype=float)


def out_of_fold_flags(features, target_values, label, seed):
    """What a user writes in five lines: 5-fold gradient boosting, then a cut.

    Labels: cleanlab's ``find_label_issues`` on the out-of-fold
    probabilities. Numbers: robust z-scores of the out-of-fold residuals
    (median and MAD), flagged beyond ``ROBUST_Z_CUT``.
    """
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

    if label:
        from cleanlab.filter import find_label_issues

        _, labels = np.unique(target_values.astype(str), return_inverse=True)
        probs = cross_val_predict(
            HistGradientBoostingClassifier(random_state=seed),
            features,
            labels,
            cv=StratifiedKFold(5, shuffle=True, random_state=seed),
            method="predict_proba",
        )
        return find_label_issues(labels, probs)
    values = target_values.astype(float)
    predicted = cross_val_predict(
        HistGradientBoostingRegressor(random_state=seed),
        features,
        values,
        cv=KFold(5, shuffle=True, random_state=seed),
    )
    residual = values - predicted
    deviation = np.abs(residual - np.median(residual))
    return 0.6745 * deviation / np.median(deviation) > ROBUST_Z_CUT


def load_case(load, target, inject, seed):
    """A case's table and its injected rows (None for the table as shipped)."""
    table = load()
    if inject is None:
        return table, None
    return inject(table, target, seed)


def flags_row(name, inject, seed, flags, truth):
    """What a case's flags show: how many, and against injected rows, how right."""
    row = {
        "case": name,
        "errors": "injected" if inject is not None else "as shipped",
        "seed": seed,
        "rows": len(flags),
        "flagged": int(flags.sum()),
        "flagged_share": float(flags.mean()),
    }
    if truth is not None:
        row["injected"] = int(truth.sum())
        row.update(detection(flags, truth))
    return row


def peer_row(name, load, target, inject, seed):
    """The out-of-fold gradient-boosting baseline on one case."""
    table, truth = load_case(load, target, inject, seed)
    # Rows without a target are not audited (the command drops them too).
    known = table[target].notna().to_numpy()
    label = target in LABEL_TARGETS
    start = time.process_time()
    features = baseline_features(table, target)[known]
    flags = np.zeros(len(table), dtype=bool)
    flags[known] = out_of_fold_flags(
        features, table[target].to_numpy()[known], label, seed
    )
    method = (
        "cleanlab find_label_issues, out-of-fold HistGradientBoosting"
        if label
        else f"robust z > {ROBUST_Z_CUT} of out-of-fold HistGradientBoosting residuals"
    )
    cpu_s = round(time.process_time() - start, 1)
    return {
        **flags_row(name, inject, seed, flags, truth),
        "method": method,
        "cpu_s": cpu_s,
    }


def flagged_rows(folder):
    with open(folder / "flagged.csv", newline="") as handle:
        return np.array([int(row["row"]) for row in csv.DictReader(handle)], int)


def run_case(name, load, target, inject, seed, work, extra):
    table, truth = load_case(load, target, inject, seed)
    data = work / f"table_{seed}.csv"
    table.to_csv(data, index=False)
    out = work / "out"
    args = ["audit", data, "--target", target, "--out", out, "--force", "--quiet"]
    result, cpu, wall = run_command(args + ["--seed", seed, *extra], cwd=work)
    if result.returncode != 0:
        raise RuntimeError(f"{name}: {result.stderr.strip()}")
    flags = np.zeros(len(table), dtype=bool)
    flags[flagged_rows(out)] = True
    report = (out / "report.md").read_text()
    return {
        **flags_row(name, inject, seed, flags, truth),
        "cpu_s": round(cpu, 1),
        "wall_s": round(wall, 1),
        "log_target": "log(1 + " in report,
    }


def run_demo(seed, work, extra):
    out = work / "demo"
    args = ["audit", "--out", out, "--force", "--quiet", "--seed", seed, *extra]
    result, cpu, wall = run_command(args, cwd=work)
    if result.returncode != 0:
        raise RuntimeError(f"demo: {result.stderr.strip()}")
    line = re.search(
        r"(\d+) rows flagged, (\d+) of them injected: precision ([\d.]+), "
        r"recall ([\d.]+)",
        result.stdout,
    )
    return {
        "case": "demo (diabetes + 40 errors)",
        "errors": "injected",
        "seed": seed,
        "rows": 442,
        "flagged": int(line[1]),
        "flagged_share": int(line[1]) / 442,
        "cpu_s": round(cpu, 1),
        "wall_s": round(wall, 1),
        "log_target": "log(1 + " in (out / "report.md").read_text(),
        "injected": 40,
        "precision": int(line[2]) / max(int(line[1]), 1),
        "recall": int(line[2]) / 40,
    }


def run_timing(n_rows, work, extra):
    data = work / f"synthetic_{n_rows}.csv"
    synthetic(n_rows).to_csv(data, index=False)
    args = ["audit", data, "--target", "y", "--out", work / "timing", "--force"]
    result, cpu, wall = run_command(args + ["--quiet", *extra], cwd=work)
    if result.returncode != 0:
        raise RuntimeError(f"timing: {result.stderr.strip()}")
    report = (work / "timing" / "report.md").read_text()
    epochs = re.search(r"epochs: (\d+); batch size: (\d+)", report)
    return {
        "rows": n_rows,
        "columns": 10,
        "epochs": int(epochs[1]),
        "batch_size": int(epochs[2]),
        "cpu_s": round(cpu, 1),
        "wall_s": round(wall, 1),
    }


def run_startup(work, repeats):
    rows = []
    for label, args in [
        ("audit --help", ["audit", "--help"]),
        ("argument error (--sigma nan)", ["audit", "--sigma", "nan"]),
    ]:
        times = []
        for _ in range(repeats):
            _, cpu, wall = run_command(args, cwd=work)
            times.append(wall)
        rows.append(
            {"command": label, "wall_s_median": round(float(np.median(times)), 2)}
        )
    return rows


def mean(rows, key):
    values = [r[key] for r in rows if key in r]
    return float(np.mean(values)) if values else float("nan")


def tables(cases, timing, startup):
    lines = [
        "| table: target | errors | rows | flagged (mean over seeds) | precision "
        "| recall | log target | CPU s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    groups = {}
    for row in cases:
        groups.setdefault((row["case"], row["errors"]), []).append(row)
    for (case, errors), rows in groups.items():
        precision = mean(rows, "precision")
        recall = mean(rows, "recall")
        lines.append(
            f"| {case} | {errors} | {rows[0]['rows']} | "
            f"{mean(rows, 'flagged'):.1f} ({mean(rows, 'flagged_share'):.1%}) | "
            + ("-" if np.isnan(precision) else f"{precision:.2f}")
            + " | "
            + ("-" if np.isnan(recall) else f"{recall:.2f}")
            + f" | {'yes' if rows[0]['log_target'] else 'no'} | "
            f"{mean(rows, 'cpu_s'):.1f} |"
        )
    lines += ["", "| rows x columns | epochs | batch size | CPU s | wall s |"]
    lines += ["| --- | --- | --- | --- | --- |"]
    for row in timing:
        lines.append(
            f"| {row['rows']} x {row['columns']} | {row['epochs']} | "
            f"{row['batch_size']} | {row['cpu_s']} | {row['wall_s']} |"
        )
    lines += ["", "| command | wall s (median) |", "| --- | --- |"]
    lines += [f"| {r['command']} | {r['wall_s_median']} |" for r in startup]
    return "\n".join(lines) + "\n"


def peer_table(peers):
    lines = [
        "| table: target | errors | method | flagged (mean) | precision | recall "
        "| CPU s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    groups = {}
    for row in peers:
        groups.setdefault((row["case"], row["errors"]), []).append(row)
    for (case, errors), rows in groups.items():
        precision, recall = mean(rows, "precision"), mean(rows, "recall")
        lines.append(
            f"| {case} | {errors} | {rows[0]['method']} | "
            f"{mean(rows, 'flagged'):.1f} ({mean(rows, 'flagged_share'):.1%}) | "
            + ("-" if np.isnan(precision) else f"{precision:.2f}")
            + " | "
            + ("-" if np.isnan(recall) else f"{recall:.2f}")
            + f" | {mean(rows, 'cpu_s'):.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test")
    parser.add_argument(
        "--peers-only", action="store_true", help="only the peer's label rows"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "audit"
    )
    args = parser.parse_args(argv)
    extra = ["--epochs", "3"] if args.quick else []
    seeds = SEEDS[:1] if args.quick else SEEDS
    cases = QUICK_CASES if args.quick else FULL_CASES
    peer_cases = [] if args.quick else PEER_CASES
    if not args.quick:
        demo = ("demo (diabetes + 40 errors)", lambda: None, "target", demo_table)
        peer_cases = [*peer_cases, demo]
    peers = [
        peer_row(name, load, target, inject, seed)
        for name, load, target, inject in peer_cases
        for seed in seeds
    ]
    for row in peers:
        print(row, flush=True)
    if args.peers_only:
        args.out.mkdir(parents=True, exist_ok=True)
        write_csv(args.out / "peers.csv", peers)
        print(peer_table(peers))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name, load, target, inject in cases:
            # Clean tables too: the flags move with the training seed.
            for seed in seeds:
                rows.append(run_case(name, load, target, inject, seed, work, extra))
                print(rows[-1], flush=True)
        for seed in () if args.quick else seeds:
            rows.append(run_demo(seed, work, extra))
            print(rows[-1], flush=True)
        sizes = [] if args.quick else [20_000, 100_000]
        timing = [run_timing(n, work, extra) for n in sizes]
        startup = run_startup(work, repeats=1 if args.quick else 3)
    env = environment(
        pd,
        np,
        threads=THREADS,
        seeds=list(seeds),
        argv=argv,
        with_load_average=True,
        quick=args.quick,
    )
    text = tables(rows, timing, startup) + "\n" + peer_table(peers)
    write_results(
        args.out,
        {"cases": rows, "timing": timing, "startup": startup, "peers": peers},
        {"environment": env, "sk_zerror": sk_zerror.__version__},
        text,
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
