"""Detection of easy synthetic outliers versus batch size (the note's Figures 2, 4-6).

The technical note ("Experiments on batch outliers detection using synthetic
data") adds 10% easy outliers to synthetic regression and balanced binary
classification data, masks them at 1.5 and 2 sigma, once with the statistics
of each batch and once with the statistics of the whole dataset, and reads off
the detection score as a function of the batch size. Its "Limitations" section
concludes that batches should hold at least 96 samples, preferably 256.

This script repeats that study on fixed model outputs (no training: the batch
size effect is a property of the masking step alone) and adds what the note
does not have:

* running statistics (``window="running"`` of the library's losses, an
  exponential moving average across batches), fed batch by batch over several
  shuffled passes and scored in the last one;
* median/MAD statistics (``center="median", scale="mad"``), per batch, over the
  whole dataset and as running statistics;
* a diagnostic running variant computed here, not in the library, that
  averages the batch *variance* instead of the batch standard deviation.

Data
----
Regression: ``x ~ U(-3, 3)``, a fixed model ``f(x) = sin(x)`` and targets
``y = f(x) + e`` with ``e ~ N(0, 1)``; an outlier's ``e`` is
``+-(margin + |N(0, 1)|)``, at least ``margin`` inlier standard deviations away
(the loss z-scores the residual ``y - f(x)``).
Classification: balanced labels, inlier logits ``N(-2, 1)`` for class 0 and
``N(2, 1)`` for class 1; an outlier's logit lies on the wrong side, its
given-class logit being ``2 - margin - |N(0, 1)|``.

Examples
--------
The recorded tables of ``docs/benchmarks/note_batch_size.md``::

    python benchmarks/studies/bench_note_batch_size.py --out benchmarks/results

A smoke run in a few seconds::

    python benchmarks/studies/bench_note_batch_size.py --quick --out /tmp/note
"""

import argparse
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import scipy
import torch

from sk_zerror import ZErrorBCEWithLogitsLoss, ZErrorMSELoss, zscore_mask

# The shared helpers live in benchmarks/, one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import (  # noqa: E402
    detection,
    environment,
    machine_description,
    save_figure,
    spread,
    summarise,
    write_csv,
    write_json,
)

TASKS = ("regression", "classification")
SIGMAS = (1.5, 2.0)
FULL_BATCH_SIZES = (8, 16, 32, 64, 96, 128, 256, 512, 1024)
QUICK_BATCH_SIZES = (8, 32, 128, 512)
# Divisible by every full batch size (96 included): no ragged last batch.
FULL_SAMPLES = 12288
QUICK_SAMPLES = 2048
# The goal: running statistics at batch 32 within 0.02 F1 of the
# whole dataset; and the note's claim, read as "batch F1 within 0.02 of the
# whole dataset from 96 (preferably 256) on".
GOAL_BATCH, GOAL_GAP = 32, 0.02
NOTE_MINIMUM, NOTE_PREFERRED = 96, 256

# name -> (scope, center, scale, momentum); scope is "dataset", "batch",
# "running" (the library's loss) or "running_var" (this script's EMA of the
# variance). Momentum None means the --momentum default.
VARIANTS = {
    "whole mean/std": ("dataset", "mean", "std", None),
    "batch mean/std": ("batch", "mean", "std", None),
    "running mean/std": ("running", "mean", "std", None),
    "running mean/std, m=0.01": ("running", "mean", "std", 0.01),
    "running mean/variance (diagnostic)": ("running_var", "mean", "std", None),
    "running mean/variance, m=0.01 (diagnostic)": ("running_var", "mean", "std", 0.01),
    "whole median/MAD": ("dataset", "median", "mad", None),
    "batch median/MAD": ("batch", "median", "mad", None),
    "running median/MAD": ("running", "median", "mad", None),
}
STYLES = {
    "whole mean/std": dict(color="black", linestyle="--"),
    "batch mean/std": dict(color="tab:blue", marker="o"),
    "running mean/std": dict(color="tab:orange", marker="s"),
    "running mean/std, m=0.01": dict(color="tab:red", marker="^"),
    "running mean/variance (diagnostic)": dict(color="tab:purple", marker="x"),
    "running mean/variance, m=0.01 (diagnostic)": dict(color="tab:brown", marker="P"),
    "whole median/MAD": dict(color="grey", linestyle=":"),
    "batch median/MAD": dict(color="tab:green", marker="D"),
    "running median/MAD": dict(color="tab:olive", marker="v"),
}
METRICS = ("precision", "recall", "f1", "flagged")
RUN_FIELDS = ["task", "sigma", "variant", "batch_size", "seed", *METRICS]
SUMMARY_FIELDS = ["task", "sigma", "variant", "batch_size", "n_seeds"] + [
    f"{m}_{s}" for m in METRICS for s in ("median", "min", "max")
]


# -- data -------------------------------------------------------------------


def make_task(task, n_samples, outlier_share, margin, rng):
    """Synthetic model outputs with easy outliers.

    Returns
    -------
    data : dict
        ``values`` (float64, the quantity the loss z-scores: the residual, or
        the given-class logit), ``groups`` (int64: 0, or the label),
        ``n_groups``, ``is_outlier`` (bool) and the loss inputs ``input`` and
        ``target``.
    """
    is_outlier = np.zeros(n_samples, dtype=bool)
    is_outlier[rng.choice(n_samples, round(outlier_share * n_samples), False)] = True
    noise = rng.normal(size=n_samples)
    excess = margin + np.abs(rng.normal(size=n_samples))
    if task == "regression":
        x = rng.uniform(-3.0, 3.0, size=n_samples)
        sign = rng.choice([-1.0, 1.0], size=n_samples)
        residual = np.where(is_outlier, sign * excess, noise)
        prediction = np.sin(x)
        return dict(
            values=residual,
            groups=np.zeros(n_samples, dtype=np.int64),
            n_groups=1,
            is_outlier=is_outlier,
            input=prediction,
            target=prediction + residual,
        )
    labels = rng.permutation(np.arange(n_samples) % 2)
    given = np.where(is_outlier, 2.0 - excess, 2.0 + noise)
    return dict(
        values=given,
        groups=labels.astype(np.int64),
        n_groups=2,
        is_outlier=is_outlier,
        input=np.where(labels == 1, given, -given),
        target=labels.astype(np.float64),
    )


def batch_index(n_samples, batch_size, rng):
    """Shuffled batch membership of each sample, and the batches in order."""
    order = rng.permutation(n_samples)
    batches = [order[i : i + batch_size] for i in range(0, n_samples, batch_size)]
    index = np.empty(n_samples, dtype=np.int64)
    for b, members in enumerate(batches):
        index[members] = b
    return index, batches


# -- masking ----------------------------------------------------------------


def outlier_scores_static(data, groups, n_groups, center, scale):
    """Signed z-scores with the statistics of ``groups`` (dataset or batches)."""
    _, z = zscore_mask(
        torch.from_numpy(data["values"]),
        torch.from_numpy(groups),
        sigma=1.0,
        center=center,
        scale=scale,
        n_groups=n_groups,
        return_scores=True,
    )
    return z.numpy()


def running_scores_library(
    task, data, batch_size, passes, momentum, center, scale, rng
):
    """Z-scores of the last of ``passes`` shuffled passes through the loss."""
    cls = ZErrorMSELoss if task == "regression" else ZErrorBCEWithLogitsLoss
    loss = cls(
        SIGMAS[0],
        window="running",
        momentum=momentum,
        center=center,
        scale=scale,
        check_input=False,
    ).train()
    input_, target = torch.from_numpy(data["input"]), torch.from_numpy(data["target"])
    z = np.empty(len(input_))
    for _ in range(passes):
        for members in batch_index(len(input_), batch_size, rng)[1]:
            idx = torch.from_numpy(members)
            loss(input_[idx], target[idx])
            # The z-scores serve every sigma; they are exactly the loss's own.
            scores = loss.last_scores.reshape(-1)
            if not torch.equal(loss.last_mask.reshape(-1), scores.abs() <= SIGMAS[0]):
                raise AssertionError("last_scores disagree with last_mask.")
            z[members] = scores.numpy()
    return z


def running_scores_variance(data, batch_size, passes, momentum, rng):
    """Running statistics that average the batch variance, not its root.

    The same update as the library's (the current batch is folded in before
    its samples are scored; groups with fewer than two members are skipped),
    but the moving average is taken of the unbiased batch variance, which is
    an unbiased estimate of the population variance at any batch size.
    """
    values, groups, n_groups = data["values"], data["groups"], data["n_groups"]
    mean, var = np.zeros(n_groups), np.zeros(n_groups)
    seen = np.zeros(n_groups, dtype=bool)
    z = np.empty(len(values))
    for _ in range(passes):
        for members in batch_index(len(values), batch_size, rng)[1]:
            v, g = values[members], groups[members]
            count = np.bincount(g, minlength=n_groups)
            total = np.bincount(g, v, minlength=n_groups)
            batch_mean = total / np.maximum(count, 1)
            sq = np.bincount(g, (v - batch_mean[g]) ** 2, minlength=n_groups)
            batch_var = sq / np.maximum(count - 1, 1)
            usable = count >= 2
            blend = seen & usable
            mean = np.where(blend, (1 - momentum) * mean + momentum * batch_mean, mean)
            var = np.where(blend, (1 - momentum) * var + momentum * batch_var, var)
            fresh = usable & ~seen
            mean, var = (
                np.where(fresh, batch_mean, mean),
                np.where(fresh, batch_var, var),
            )
            seen |= usable
            scale = np.sqrt(var)
            safe = np.where(scale > 0, scale, 1.0)
            z[members] = np.where(seen[g], (v - mean[g]) / safe[g], 0.0)
    return z


def run_seed(task, seed, args):
    """Per-seed rows: every variant, batch size and sigma."""
    rng = np.random.default_rng([args.seed, seed, TASKS.index(task)])
    data = make_task(task, args.n_samples, args.outlier_share, args.margin, rng)
    n, n_groups = args.n_samples, data["n_groups"]
    rows = []

    def add(variant, batch_size, z):
        for sigma in args.sigmas:
            flagged = ~(np.abs(z) <= sigma)
            rows.append(
                dict(
                    task=task,
                    sigma=sigma,
                    variant=variant,
                    batch_size=batch_size,
                    seed=seed,
                    **detection(flagged, data["is_outlier"]),
                    flagged=float(flagged.mean()),
                )
            )

    for variant, (scope, center, scale, momentum) in VARIANTS.items():
        momentum = args.momentum if momentum is None else momentum
        if scope == "dataset":
            z = outlier_scores_static(data, data["groups"], n_groups, center, scale)
            add(variant, n, z)
            continue
        for batch_size in args.batch_sizes:
            # Shuffles of their own: adding a variant leaves the others as they were.
            key = zlib.crc32(variant.encode())
            rng = np.random.default_rng(
                [args.seed, seed, TASKS.index(task), key, batch_size]
            )
            if scope == "batch":
                index, batches = batch_index(n, batch_size, rng)
                groups = index * n_groups + data["groups"]
                z = outlier_scores_static(
                    data, groups, len(batches) * n_groups, center, scale
                )
            elif scope == "running":
                z = running_scores_library(
                    task, data, batch_size, args.passes, momentum, center, scale, rng
                )
            else:
                z = running_scores_variance(
                    data, batch_size, args.passes, momentum, rng
                )
            add(variant, batch_size, z)
    return rows


# -- summary ----------------------------------------------------------------


def summarise_runs(rows):
    """Median, min and max over seeds of every metric, per configuration."""
    keys = ("task", "sigma", "variant", "batch_size")
    return summarise(rows, keys, METRICS, median="_median")


def _lookup(summary):
    return {(r["task"], r["sigma"], r["variant"], r["batch_size"]): r for r in summary}


def _reference(center):
    """The whole-dataset variant with the same kind of statistics."""
    return "whole mean/std" if center == "mean" else "whole median/MAD"


def findings(summary, args):
    """The note's claim and the issue's goal, checked on the median F1.

    "Within" means an absolute F1 difference of at most ``GOAL_GAP`` from the
    whole-dataset masking with the same kind of statistics.
    """
    table = _lookup(summary)
    out = []
    for task in TASKS:
        for sigma in args.sigmas:

            def f1(variant, batch_size, task=task, sigma=sigma):
                return table[(task, sigma, variant, batch_size)]["f1_median"]

            item = dict(task=task, sigma=sigma, goal_gap=GOAL_GAP, batch={}, running={})
            for variant, (scope, center, *_rest) in VARIANTS.items():
                if scope == "dataset":
                    continue
                reference = _reference(center)
                ref = f1(reference, args.n_samples)
                if scope == "batch":
                    # Smallest batch size from which the F1 stays within the gap.
                    stable = None
                    for b in sorted(args.batch_sizes, reverse=True):
                        if abs(f1(variant, b) - ref) > GOAL_GAP:
                            break
                        stable = b
                    item["batch"][variant] = dict(
                        reference=reference, reference_f1=ref, within_gap_from=stable
                    )
                elif GOAL_BATCH in args.batch_sizes:
                    gap = ref - f1(variant, GOAL_BATCH)
                    item["running"][variant] = dict(
                        reference=reference,
                        reference_f1=ref,
                        batch_size=GOAL_BATCH,
                        f1=f1(variant, GOAL_BATCH),
                        gap=gap,
                        met=abs(gap) <= GOAL_GAP,
                    )
            out.append(item)
    return out


def _cell(row, metric):
    return spread(row, metric, ".3f", median="_median")


def markdown(summary, found, args):
    """F1 tables (median, min-max over seeds), one per task and sigma."""
    table = _lookup(summary)
    lines = []
    for task in TASKS:
        for sigma in args.sigmas:
            lines += [
                "",
                f"**{task.capitalize()}, {sigma:g} sigma: detection F1, median "
                f"(min-max) over {args.seeds} seeds.**",
                "",
                "| variant | "
                + " | ".join(str(b) for b in args.batch_sizes)
                + " | whole dataset |",
                "| --- |" + " ---: |" * (len(args.batch_sizes) + 1),
            ]
            for variant, (scope, *_rest) in VARIANTS.items():
                if scope == "dataset":
                    row = table[(task, sigma, variant, args.n_samples)]
                    cells = ["-"] * len(args.batch_sizes) + [_cell(row, "f1")]
                else:
                    cells = [
                        _cell(table[(task, sigma, variant, b)], "f1")
                        for b in args.batch_sizes
                    ] + ["-"]
                lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"**Precision / recall of batch mean/std masking (the note's method), "
        f"median over {args.seeds} seeds.**",
        "",
        "| task | sigma | "
        + " | ".join(str(b) for b in args.batch_sizes)
        + " | whole |",
        "| --- | ---: |" + " ---: |" * (len(args.batch_sizes) + 1),
    ]
    for task in TASKS:
        for sigma in args.sigmas:
            cells = []
            for variant, b in [("batch mean/std", b) for b in args.batch_sizes] + [
                ("whole mean/std", args.n_samples)
            ]:
                row = table[(task, sigma, variant, b)]
                cells.append(
                    f"{row['precision_median']:.2f} / {row['recall_median']:.2f}"
                )
            lines.append(f"| {task} | {sigma:g} | " + " | ".join(cells) + " |")
    lines += ["", "Findings (median F1):", ""]
    for item in found:
        lines.append(f"- {item['task']}, {item['sigma']:g} sigma:")
        for variant, res in item["batch"].items():
            stable = res["within_gap_from"]
            lines.append(
                f"  - {variant} within {GOAL_GAP} of {res['reference']} "
                f"({res['reference_f1']:.3f}) from batch "
                f"{stable if stable else 'none of the sizes run'} on"
            )
        for variant, goal in item["running"].items():
            verdict = "met" if goal["met"] else "MISSED"
            lines.append(
                f"  - {variant} at batch {goal['batch_size']}: F1 {goal['f1']:.3f} "
                f"against {goal['reference_f1']:.3f} for {goal['reference']} "
                f"(difference {-goal['gap']:+.3f}): goal {verdict}"
            )
    if args.quick:
        lines += ["", "(--quick: a smoke run; these numbers mean nothing.)"]
    return "\n".join(lines).lstrip("\n")


# -- figures ----------------------------------------------------------------


def figures(summary, args):
    """F1 of every variant, and precision/recall of the note's comparison."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = _lookup(summary)
    sizes = list(args.batch_sizes)
    written = []

    def panel_grid():
        fig, axes = plt.subplots(
            len(TASKS),
            len(args.sigmas),
            figsize=(5.2 * max(2, len(args.sigmas)), 4.0 * len(TASKS)),
            squeeze=False,
        )
        return fig, axes

    def decorate(ax, task, sigma, ylabel):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(b) for b in sizes], rotation=45)
        ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{task}, {sigma:g} sigma")
        ax.grid(True, alpha=0.3)

    fig, axes = panel_grid()
    for i, task in enumerate(TASKS):
        for j, sigma in enumerate(args.sigmas):
            ax = axes[i, j]
            for variant, (scope, *_rest) in VARIANTS.items():
                keys = [
                    (task, sigma, variant, args.n_samples if scope == "dataset" else b)
                    for b in sizes
                ]
                rows = [table[k] for k in keys]
                median = [r["f1_median"] for r in rows]
                ax.plot(sizes, median, label=variant, **STYLES[variant])
                ax.fill_between(
                    sizes,
                    [r["f1_min"] for r in rows],
                    [r["f1_max"] for r in rows],
                    color=STYLES[variant]["color"],
                    alpha=0.15,
                    linewidth=0,
                )
            for b in (NOTE_MINIMUM, NOTE_PREFERRED):
                ax.axvline(b, color="grey", linewidth=0.8, alpha=0.5)
            decorate(ax, task, sigma, "detection F1")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize="small")
    fig.suptitle(
        f"Easy outliers ({args.outlier_share:.0%}): F1 versus batch size, median "
        f"and min-max over {args.seeds} seeds (grey lines: the note's 96 and 256)"
    )
    fig.tight_layout(rect=(0, 0.08, 1, 0.96))
    written.append(save_figure(fig, Path(args.figures) / f"{args.name}_f1.png"))

    fig, axes = panel_grid()
    for i, task in enumerate(TASKS):
        for j, sigma in enumerate(args.sigmas):
            ax = axes[i, j]
            for variant in ("batch mean/std", "running mean/std"):
                color = STYLES[variant]["color"]
                for metric, style in (("precision", "-"), ("recall", "--")):
                    ax.plot(
                        sizes,
                        [
                            table[(task, sigma, variant, b)][f"{metric}_median"]
                            for b in sizes
                        ],
                        color=color,
                        linestyle=style,
                        marker=STYLES[variant]["marker"],
                        label=f"{variant}: {metric}",
                    )
            whole = table[(task, sigma, "whole mean/std", args.n_samples)]
            for metric, style in (("precision", "-"), ("recall", "--")):
                ax.axhline(
                    whole[f"{metric}_median"],
                    color="black",
                    linestyle=style,
                    linewidth=1,
                    label=f"whole mean/std: {metric}",
                )
            decorate(ax, task, sigma, "precision, recall")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize="small")
    fig.suptitle(
        "Batch versus whole-dataset masking (the note's Figures 2, 4-6): "
        f"median over {args.seeds} seeds"
    )
    fig.tight_layout(rect=(0, 0.08, 1, 0.96))
    written.append(
        save_figure(fig, Path(args.figures) / f"{args.name}_precision_recall.png")
    )
    return written


# -- reporting --------------------------------------------------------------


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
        n_samples=args.n_samples,
        outlier_share=args.outlier_share,
        margin=args.margin,
        passes=args.passes,
        momentum=args.momentum,
        sigmas=list(args.sigmas),
        batch_sizes=list(args.batch_sizes),
        quick=args.quick,
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_SAMPLES} samples, batch sizes {QUICK_BATCH_SIZES}, 1 seed, "
        "2 passes: a smoke run",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="number of seeds, each a new data set and new shuffles "
        "(default 5, or 1 with --quick)",
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument(
        "--out",
        default="benchmarks/results",
        help="folder for NAME_runs.csv, NAME_summary.csv, NAME.json and NAME.md",
    )
    parser.add_argument(
        "--figures",
        default="docs/_static/benchmarks",
        help="folder for the PNG figures, NAME_f1.png and NAME_precision_recall.png",
    )
    parser.add_argument(
        "--name",
        default="note_batch_size",
        help="stem of the output file names (default note_batch_size)",
    )
    parser.add_argument(
        "--n-samples",
        type=int,
        default=None,
        help=f"samples per data set (default {FULL_SAMPLES}, or {QUICK_SAMPLES} "
        "with --quick)",
    )
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=None, help="batch sizes to run"
    )
    parser.add_argument("--sigmas", type=float, nargs="+", default=list(SIGMAS))
    parser.add_argument("--outlier-share", type=float, default=0.1)
    parser.add_argument(
        "--margin",
        type=float,
        default=4.0,
        help="outliers lie at least this many inlier standard deviations "
        "from the inlier centre",
    )
    parser.add_argument(
        "--passes",
        type=int,
        default=None,
        help="shuffled passes for the running statistics; the last is scored "
        "(default 3, or 2 with --quick)",
    )
    parser.add_argument(
        "--momentum",
        type=float,
        default=0.1,
        help="momentum of the running statistics (the losses' default, 0.1)",
    )
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 5
    if args.n_samples is None:
        args.n_samples = QUICK_SAMPLES if args.quick else FULL_SAMPLES
    if args.batch_sizes is None:
        args.batch_sizes = QUICK_BATCH_SIZES if args.quick else FULL_BATCH_SIZES
    args.batch_sizes = tuple(sorted(set(args.batch_sizes)))
    if args.passes is None:
        args.passes = 2 if args.quick else 3
    if args.seeds < 1 or args.passes < 1 or min(args.batch_sizes) < 2:
        parser.error("--seeds and --passes must be >= 1, batch sizes >= 2.")
    if max(args.batch_sizes) > args.n_samples:
        parser.error("a batch size exceeds --n-samples.")
    if not 0.0 < args.outlier_share < 1.0 or not 0.0 < args.momentum <= 1.0:
        parser.error("--outlier-share must be in (0, 1), --momentum in (0, 1].")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    env = describe(args)
    print(" ".join(f"{k}={v}" for k, v in env.items()), file=sys.stderr)
    start = time.perf_counter()
    rows = []
    for task in TASKS:
        for seed in range(args.seeds):
            rows += run_seed(task, seed, args)
            print(
                f"{task} seed {seed} done ({time.perf_counter() - start:.0f} s)",
                file=sys.stderr,
            )
    summary = summarise_runs(rows)
    found = findings(summary, args)
    text = markdown(summary, found, args)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / f"{args.name}_runs.csv", rows, RUN_FIELDS)
    write_csv(out / f"{args.name}_summary.csv", summary, SUMMARY_FIELDS)
    env["figures"] = figures(summary, args)
    env["elapsed_s"] = round(time.perf_counter() - start, 1)
    write_json(
        out / f"{args.name}.json",
        {"environment": env, "findings": found, "summary": summary},
    )
    (out / f"{args.name}.md").write_text(text + "\n")
    print(f"({env['elapsed_s']:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
