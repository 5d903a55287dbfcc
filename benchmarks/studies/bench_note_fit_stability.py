"""Gaussian versus skew-normal class fits by batch size (the note's Figure 3).

The technical note fits each class's outputs with a Gaussian in logit space, or
with a skew-normal distribution in probability space (after the sigmoid), and
takes the intersection of the two class densities as the decision cutoff
("Infer the best cutoff threshold decision", listing 4). Its Figure 3 shows
the "statistical stable regions" of the two fits as a function of batch size
on balanced synthetic data, and its "Limitations" section asks for batches of
at least 96, preferably 256.

This script repeats the fits of listing 4 batch by batch on the note's own
synthetic data (balanced labels, class logits ``N(-2, 1)`` and ``N(2, 1)``, no
outliers): each class is first masked at ``--sigma`` (2 by default, as in the
listing) with :func:`sk_zerror.zscore_mask`, then

* Gaussian: mean and standard deviation of the inlier logits of each class,
  cutoff at the intersection of the two densities nearest the midpoint;
* skew-normal: ``scipy.stats.skewnorm.fit`` to the inlier probabilities of each
  class, cutoff at the intersection found by ``brentq`` on [0.001, 0.999],
  falling back to the midpoint of the class means where there is no sign
  change (the note's fallback).

By symmetry the true cutoff is logit 0, probability 0.5. For every batch size
the spread across batches (standard deviation) of the cutoff, in probability,
and of the class-1 location is reported, the location in units of the class's
own spread (from a fit to ``--n-samples`` outputs), so that the two spaces
compare.

Examples
--------
The recorded tables of ``docs/benchmarks/note_fit_stability.md``::

    python benchmarks/studies/bench_note_fit_stability.py --out benchmarks/results

A smoke run in a few seconds::

    python benchmarks/studies/bench_note_fit_stability.py --quick --out /tmp/note
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy
import torch
from scipy.optimize import brentq
from scipy.stats import skewnorm

from sk_zerror import zscore_mask

# The shared helpers live in benchmarks/, one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import (  # noqa: E402
    environment,
    machine_description,
    save_figure,
    spread,
    summarise,
    timed,
    write_csv,
    write_json,
)

FULL_BATCH_SIZES = (8, 16, 32, 64, 96, 128, 256, 512, 1024)
QUICK_BATCH_SIZES = (8, 64, 512)
CLASS_MEAN, CLASS_STD = 2.0, 1.0
TRUE_CUTOFF = 0.5
IQR_TO_STD = 1.349
# A fitted skew-normal shape beyond this is the fit running off to a
# half-normal (shape -> +-inf), which small samples nearly always do.
DIVERGED_SHAPE = 1e3
# A cutoff further than this from the true 0.5 is a crossing of the two
# densities in a tail, not between the classes.
WILD_CUTOFF = 0.1
# Spreads of the probability cutoff read as "stable" in the findings.
TOLERANCES = (0.02, 0.01)
NOTE_MINIMUM, NOTE_PREFERRED = 96, 256

BATCH_FIELDS = [
    "seed",
    "batch_size",
    "batch",
    "gauss_ok",
    "gauss_loc1",
    "gauss_cutoff_prob",
    "gauss_ms",
    "skew_ok",
    "skew_loc1",
    "skew_mean1",
    "skew_shape1",
    "skew_cutoff_prob",
    "skew_fallback",
    "skew_ms",
]
# Per seed and batch size: spreads across batches and rates.
SEED_METRICS = (
    "gauss_cutoff_std",
    "skew_cutoff_std",
    "gauss_cutoff_robust",
    "skew_cutoff_robust",
    "gauss_cutoff_bias",
    "skew_cutoff_bias",
    "gauss_loc_rel_std",
    "skew_mean_rel_std",
    "skew_loc_rel_std",
    "skew_shape_diverged_rate",
    "gauss_wild_rate",
    "skew_wild_rate",
    "gauss_failure_rate",
    "skew_failure_rate",
    "skew_fallback_rate",
    "gauss_ms",
    "skew_ms",
)
SEED_FIELDS = ["seed", "batch_size", "n_batches", *SEED_METRICS]
SUMMARY_FIELDS = ["batch_size", "n_seeds"] + [
    f"{m}_{s}" for m in SEED_METRICS for s in ("median", "min", "max")
]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def make_batch(batch_size, rng):
    """Balanced labels (i.i.d.) and class logits N(-2, 1) / N(2, 1)."""
    labels = rng.integers(0, 2, size=batch_size)
    logits = rng.normal(np.where(labels == 1, CLASS_MEAN, -CLASS_MEAN), CLASS_STD)
    return logits, labels


def class_inliers(values, labels, sigma):
    """The inlier values of class 0 and class 1 (listing 4's first step)."""
    mask = zscore_mask(
        torch.from_numpy(values), torch.from_numpy(labels), sigma=sigma, n_groups=2
    ).numpy()
    return values[mask & (labels == 0)], values[mask & (labels == 1)]


def gaussian_fit(logits, labels, sigma):
    """Listing 4's Gaussian cutoff: class means and spreads, in logit space."""
    x0, x1 = class_inliers(logits, labels, sigma)
    if len(x0) < 2 or len(x1) < 2:
        return None
    mu0, sd0, mu1, sd1 = x0.mean(), x0.std(), x1.mean(), x1.std()
    if sd0 == 0 or sd1 == 0:
        return None
    a = 1 / (2 * sd0**2) - 1 / (2 * sd1**2)
    b = mu1 / sd1**2 - mu0 / sd0**2
    c = mu0**2 / (2 * sd0**2) - mu1**2 / (2 * sd1**2) - np.log(sd1 / sd0)
    roots = np.roots([a, b, c])
    roots = np.real(roots[np.isreal(roots)])
    if len(roots) == 0:
        return None
    cutoff = roots[np.argmin(np.abs(roots - (mu0 + mu1) / 2))]
    return dict(loc1=mu1, scale1=sd1, cutoff_prob=sigmoid(cutoff))


def skewnorm_fit(logits, labels, sigma):
    """Listing 4's skew-normal cutoff, in probability space."""
    p0, p1 = class_inliers(sigmoid(logits), labels, sigma)
    if len(p0) < 2 or len(p1) < 2:
        return None
    with warnings.catch_warnings():
        # Small samples make the shape estimate run off to infinity, with
        # overflow and convergence warnings on the way: the fit is what it is.
        warnings.simplefilter("ignore")
        fit0, fit1 = skewnorm.fit(p0), skewnorm.fit(p1)
        fallback = False
        try:
            cutoff = brentq(
                lambda x: skewnorm.pdf(x, *fit0) - skewnorm.pdf(x, *fit1), 0.001, 0.999
            )
        except ValueError:
            fallback = True
            cutoff = (p0.mean() + p1.mean()) / 2
        mean1, var1 = skewnorm.stats(*fit1, moments="mv")
    return dict(
        loc1=fit1[1],
        mean1=float(mean1),
        scale1=float(np.sqrt(var1)),
        shape1=fit1[0],
        cutoff_prob=cutoff,
        fallback=fallback,
    )


def reference_scales(args):
    """Class-1 spreads of both fits on one large sample: the location units."""
    rng = np.random.default_rng([args.seed, 10**6])
    logits, labels = make_batch(args.n_samples, rng)
    gauss = gaussian_fit(logits, labels, args.sigma)
    skew = skewnorm_fit(logits, labels, args.sigma)
    return dict(
        gauss_scale1=float(gauss["scale1"]),
        skew_scale1=float(skew["scale1"]),
        gauss_cutoff_prob=float(gauss["cutoff_prob"]),
        skew_cutoff_prob=float(skew["cutoff_prob"]),
        skew_shape1=float(skew["shape1"]),
    )


def run_seed(seed, args):
    """One row per batch: both fits."""
    rows = []
    for batch_size in args.batch_sizes:
        rng = np.random.default_rng([args.seed, seed, batch_size])
        for batch in range(args.n_batches):
            logits, labels = make_batch(batch_size, rng)
            gauss, gauss_s = timed(gaussian_fit, logits, labels, args.sigma)
            skew, skew_s = timed(skewnorm_fit, logits, labels, args.sigma)
            nan = float("nan")
            rows.append(
                dict(
                    seed=seed,
                    batch_size=batch_size,
                    batch=batch,
                    gauss_ok=gauss is not None,
                    gauss_loc1=gauss["loc1"] if gauss else nan,
                    gauss_cutoff_prob=gauss["cutoff_prob"] if gauss else nan,
                    gauss_ms=1000 * gauss_s,
                    skew_ok=skew is not None,
                    skew_loc1=skew["loc1"] if skew else nan,
                    skew_mean1=skew["mean1"] if skew else nan,
                    skew_shape1=skew["shape1"] if skew else nan,
                    skew_cutoff_prob=skew["cutoff_prob"] if skew else nan,
                    skew_fallback=bool(skew and skew["fallback"]),
                    skew_ms=1000 * skew_s,
                )
            )
    return rows


def _std(values):
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def _robust_spread(values):
    """Interquartile range / 1.349: the std of normal data, blind to wild fits."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan")
    q1, q3 = np.percentile(values, [25, 75])
    return float((q3 - q1) / IQR_TO_STD)


def _wild_rate(values):
    """Share of the fitted cutoffs further than WILD_CUTOFF from the truth."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan")
    return float(np.mean(np.abs(values - TRUE_CUTOFF) > WILD_CUTOFF))


def _median(values):
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else float("nan")


def per_seed(rows, ref):
    """Spreads across the batches of one seed and batch size."""
    keyed = {}
    for row in rows:
        keyed.setdefault((row["seed"], row["batch_size"]), []).append(row)
    out = []
    for (seed, batch_size), group in keyed.items():

        def col(name, group=group):
            return [r[name] for r in group]

        ok = [r for r in group if r["skew_ok"]]
        out.append(
            dict(
                seed=seed,
                batch_size=batch_size,
                n_batches=len(group),
                gauss_cutoff_std=_std(col("gauss_cutoff_prob")),
                skew_cutoff_std=_std(col("skew_cutoff_prob")),
                gauss_cutoff_robust=_robust_spread(col("gauss_cutoff_prob")),
                skew_cutoff_robust=_robust_spread(col("skew_cutoff_prob")),
                gauss_cutoff_bias=_median(col("gauss_cutoff_prob")) - TRUE_CUTOFF,
                skew_cutoff_bias=_median(col("skew_cutoff_prob")) - TRUE_CUTOFF,
                gauss_loc_rel_std=_std(col("gauss_loc1")) / ref["gauss_scale1"],
                skew_mean_rel_std=_std(col("skew_mean1")) / ref["skew_scale1"],
                skew_loc_rel_std=_std(col("skew_loc1")) / ref["skew_scale1"],
                skew_shape_diverged_rate=(
                    float(np.mean([abs(r["skew_shape1"]) > DIVERGED_SHAPE for r in ok]))
                    if ok
                    else 0.0
                ),
                gauss_wild_rate=_wild_rate(col("gauss_cutoff_prob")),
                skew_wild_rate=_wild_rate(col("skew_cutoff_prob")),
                gauss_failure_rate=1 - np.mean(col("gauss_ok")),
                skew_failure_rate=1 - np.mean(col("skew_ok")),
                skew_fallback_rate=(
                    float(np.mean([r["skew_fallback"] for r in ok])) if ok else 0.0
                ),
                gauss_ms=_median(col("gauss_ms")),
                skew_ms=_median(col("skew_ms")),
            )
        )
    return out


def summarise_seeds(seed_rows):
    """Median, min and max over seeds, per batch size."""
    return summarise(seed_rows, ("batch_size",), SEED_METRICS, median="_median")


def findings(summary):
    """Smallest batch size from which each cutoff spread stays within tolerance."""
    out = {}
    for fit in ("gauss", "skew"):
        for kind in ("std", "robust"):
            for tolerance in TOLERANCES:
                stable = None
                for row in sorted(summary, key=lambda r: -r["batch_size"]):
                    spread = row[f"{fit}_cutoff_{kind}_median"]
                    if spread is None or spread > tolerance:
                        break
                    stable = row["batch_size"]
                out[f"{fit}_cutoff_{kind}<={tolerance}_from"] = stable
    return out


def _cell(row, metric, fmt=".3f"):
    return spread(row, metric, fmt, median="_median")


def markdown(summary, found, ref, args):
    lines = [
        f"**Spread across {args.n_batches} batches of the probability cutoff and "
        f"of the class-1 location; median (min-max) over {args.seeds} seeds.**",
        "",
        "| batch | cutoff std, Gaussian | cutoff std, skew-normal "
        "| cutoff IQR/1.349, Gaussian | cutoff IQR/1.349, skew-normal "
        "| location std / class spread, Gaussian "
        "| mean std / class spread, skew-normal "
        "| loc std / class spread, skew-normal |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in summary:
        lines.append(
            f"| {row['batch_size']} | {_cell(row, 'gauss_cutoff_std')} "
            f"| {_cell(row, 'skew_cutoff_std')} "
            f"| {_cell(row, 'gauss_cutoff_robust')} "
            f"| {_cell(row, 'skew_cutoff_robust')} "
            f"| {_cell(row, 'gauss_loc_rel_std')} "
            f"| {_cell(row, 'skew_mean_rel_std')} "
            f"| {_cell(row, 'skew_loc_rel_std', '.2g')} |"
        )
    lines += [
        "",
        f"**Bias, failures and cost; median over {args.seeds} seeds.**",
        "",
        "| batch | cutoff bias, Gaussian | cutoff bias, skew-normal "
        f"| shape beyond {DIVERGED_SHAPE:g}, skew-normal "
        f"| cutoff off by > {WILD_CUTOFF}, Gaussian "
        f"| cutoff off by > {WILD_CUTOFF}, skew-normal "
        "| no fit, Gaussian | no fit, skew-normal "
        "| brentq fallback, skew-normal | ms per batch, Gaussian "
        "| ms per batch, skew-normal |",
        "| ---: |" + " ---: |" * 10,
    ]
    for row in summary:
        lines.append(
            f"| {row['batch_size']} | {row['gauss_cutoff_bias_median']:+.4f} "
            f"| {row['skew_cutoff_bias_median']:+.4f} "
            f"| {row['skew_shape_diverged_rate_median']:.0%} "
            f"| {row['gauss_wild_rate_median']:.0%} "
            f"| {row['skew_wild_rate_median']:.0%} "
            f"| {row['gauss_failure_rate_median']:.0%} "
            f"| {row['skew_failure_rate_median']:.0%} "
            f"| {row['skew_fallback_rate_median']:.0%} "
            f"| {row['gauss_ms_median']:.2f} | {row['skew_ms_median']:.1f} |"
        )
    lines += [
        "",
        f"Reference fits on {args.n_samples} outputs: cutoff "
        f"{ref['gauss_cutoff_prob']:.4f} (Gaussian) and "
        f"{ref['skew_cutoff_prob']:.4f} (skew-normal), skew-normal shape "
        f"{ref['skew_shape1']:.3g}; class-1 spread {ref['gauss_scale1']:.3f} "
        f"(logit) and {ref['skew_scale1']:.4f} (probability).",
        "",
        "Smallest batch size from which the median cutoff spread stays within "
        "a tolerance (probability units):",
        "",
    ]
    for kind, label in (("std", "std"), ("robust", "IQR/1.349")):
        for tolerance in TOLERANCES:
            gauss = found[f"gauss_cutoff_{kind}<={tolerance}_from"]
            skew = found[f"skew_cutoff_{kind}<={tolerance}_from"]
            lines.append(
                f"- {label} <= {tolerance}: Gaussian from {gauss or 'none'}, "
                f"skew-normal from {skew or 'none'}"
            )
    if args.quick:
        lines += ["", "(--quick: a smoke run; these numbers mean nothing.)"]
    return "\n".join(lines)


def figures(summary, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["batch_size"] for r in summary]

    def series(ax, metric, label, **style):
        median = [r[f"{metric}_median"] for r in summary]
        ax.plot(sizes, median, label=label, **style)
        ax.fill_between(
            sizes,
            [r[f"{metric}_min"] for r in summary],
            [r[f"{metric}_max"] for r in summary],
            color=style["color"],
            alpha=0.15,
            linewidth=0,
        )

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ax = axes[0]
    series(
        ax, "gauss_cutoff_std", "Gaussian (logit space)", color="tab:blue", marker="o"
    )
    series(
        ax,
        "skew_cutoff_std",
        "skew-normal (probability space)",
        color="tab:red",
        marker="s",
    )
    series(
        ax,
        "gauss_cutoff_robust",
        "Gaussian, IQR/1.349",
        color="tab:blue",
        marker="o",
        linestyle="--",
        markerfacecolor="none",
    )
    series(
        ax,
        "skew_cutoff_robust",
        "skew-normal, IQR/1.349",
        color="tab:red",
        marker="s",
        linestyle="--",
        markerfacecolor="none",
    )
    ax.set_yscale("log")
    ax.set_ylabel("spread of the cutoff across batches (probability)")
    ax.set_title("Decision cutoff")
    ax = axes[1]
    series(ax, "gauss_loc_rel_std", "Gaussian mean", color="tab:blue", marker="o")
    series(ax, "skew_mean_rel_std", "skew-normal mean", color="tab:red", marker="s")
    series(
        ax,
        "skew_loc_rel_std",
        "skew-normal loc parameter",
        color="tab:orange",
        marker="^",
    )
    ref = np.array(sizes, dtype=float)
    ax.plot(
        ref,
        1 / np.sqrt(ref / 2),
        color="grey",
        linestyle=":",
        label="1/sqrt(B/2), guide slope",
    )
    ax.set_yscale("log")
    ax.set_ylabel("std of the class-1 location / class spread")
    ax.set_title("Class-1 location")
    ax = axes[2]
    series(
        ax,
        "skew_fallback_rate",
        "skew-normal: brentq fallback",
        color="tab:red",
        marker="s",
    )
    series(
        ax, "skew_failure_rate", "skew-normal: no fit", color="tab:orange", marker="^"
    )
    series(ax, "gauss_failure_rate", "Gaussian: no fit", color="tab:blue", marker="o")
    series(
        ax,
        "skew_wild_rate",
        f"skew-normal: cutoff off by > {WILD_CUTOFF}",
        color="tab:brown",
        marker="D",
    )
    series(
        ax,
        "gauss_wild_rate",
        f"Gaussian: cutoff off by > {WILD_CUTOFF}",
        color="tab:cyan",
        marker="D",
    )
    series(
        ax,
        "skew_shape_diverged_rate",
        f"skew-normal: |shape| > {DIVERGED_SHAPE:g}",
        color="tab:purple",
        marker="x",
    )
    ax.set_ylabel("share of batches")
    ax.set_title("Degenerate fits")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(b) for b in sizes], rotation=45)
        ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
        ax.set_xlabel("batch size")
        for b in (NOTE_MINIMUM, NOTE_PREFERRED):
            ax.axvline(b, color="grey", linewidth=0.8, alpha=0.5)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(
        f"Gaussian versus skew-normal fits by batch size ({args.n_batches} batches, "
        f"median and min-max over {args.seeds} seeds; grey lines: 96 and 256)"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return [save_figure(fig, Path(args.figures) / "note_fit_stability.png")]


def describe(args):
    """The run's environment and settings."""
    return environment(
        torch,
        np,
        scipy,
        threads=torch.get_num_threads(),
        seeds=args.seeds,
        machine=machine_description() + ", no GPU used",
        base_seed=args.seed,
        n_batches=args.n_batches,
        n_samples=args.n_samples,
        sigma=args.sigma,
        batch_sizes=list(args.batch_sizes),
        quick=args.quick,
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"batch sizes {QUICK_BATCH_SIZES}, 4 batches, 1 seed: a smoke run",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="number of seeds (default 5, or 1 with --quick)",
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument(
        "--out",
        default="benchmarks/results",
        help="folder for note_fit_stability_{batches,seeds,summary}.csv, .json and .md",
    )
    parser.add_argument(
        "--figures", default="docs/_static/benchmarks", help="folder for the PNG figure"
    )
    parser.add_argument(
        "--n-batches",
        type=int,
        default=None,
        help="batches per batch size and seed (default 40, or 4 with --quick)",
    )
    parser.add_argument(
        "--n-samples",
        type=int,
        default=None,
        help="size of the reference sample that sets the location units "
        "(default 12288, or 3072 with --quick)",
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument(
        "--sigma", type=float, default=2.0, help="inlier mask before the fits"
    )
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 5
    if args.n_samples is None:
        args.n_samples = 3072 if args.quick else 12288
    if args.n_batches is None:
        args.n_batches = 4 if args.quick else 40
    if args.batch_sizes is None:
        args.batch_sizes = QUICK_BATCH_SIZES if args.quick else FULL_BATCH_SIZES
    args.batch_sizes = tuple(sorted(set(args.batch_sizes)))
    if args.seeds < 1 or args.n_batches < 2 or min(args.batch_sizes) < 2:
        parser.error("--seeds must be >= 1, --n-batches >= 2, batch sizes >= 2.")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    env = describe(args)
    print(" ".join(f"{k}={v}" for k, v in env.items()), file=sys.stderr)
    start = time.perf_counter()
    ref = reference_scales(args)
    rows = []
    for seed in range(args.seeds):
        rows += run_seed(seed, args)
        print(
            f"seed {seed} done ({time.perf_counter() - start:.0f} s)", file=sys.stderr
        )
    seed_rows = per_seed(rows, ref)
    summary = summarise_seeds(seed_rows)
    found = findings(summary)
    text = markdown(summary, found, ref, args)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "note_fit_stability_batches.csv", rows, BATCH_FIELDS)
    write_csv(out / "note_fit_stability_seeds.csv", seed_rows, SEED_FIELDS)
    write_csv(out / "note_fit_stability_summary.csv", summary, SUMMARY_FIELDS)
    env["figures"] = figures(summary, args)
    env["elapsed_s"] = round(time.perf_counter() - start, 1)
    write_json(
        out / "note_fit_stability.json",
        {"environment": env, "reference": ref, "findings": found, "summary": summary},
    )
    (out / "note_fit_stability.md").write_text(text + "\n")
    print(f"({env['elapsed_s']:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
