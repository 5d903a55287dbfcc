"""Data-parallel statistics: what per-rank masking loses, what syncing costs.

Under data parallelism each of ``W`` processes (ranks) sees ``B / W`` rows of
a global batch of ``B``. Z-scoring on the rank's own rows is the small-batch
regime of the technical note's "Limitations"; synchronising the statistics
gives every rank the global batch's. This script measures both sides:

1. **Detection** (simulated ranks, no processes): every global batch of 256
   rows is split into ``W`` = 2, 4, 8 equal shards, each z-scored on its own
   statistics with :func:`sk_zerror.zscore_mask` (per-rank statistics), and
   compared with z-scoring the whole batch (``W`` = 1: what synchronised
   statistics give). Mean/std and median/MAD, at sigma 2 and 1.5, on

   * regression-like data: standard normal residuals, 10% of them gross
     errors (``_noise.add_gross_errors``: +-5 to 15 standard deviations);
     both tails tested;
   * classification-like data: the given-class logit of a simulated model
     (true class ``N(margin, 1)``, other classes ``N(0, 1)``), 10% of the
     labels flipped (``_noise.corrupt_labels``, symmetric), z-scored per given
     class, lower tail (the classifier's default), with 2 and 10 classes.

   The detection score is the F1 of the refused rows against the corrupted
   ones, over every row of the seed's data; ``disagreement`` is the share of
   rows whose decision differs from the global batch's.

2. **Synchronisation cost** on CPU: a 2-process gloo group on 127.0.0.1
   (``torch.multiprocessing.spawn``) times one ``all_reduce`` of the
   (n_groups, 3, 1) float64 tensor of per-class (count, sum, sum of squares),
   one ``all_reduce`` of the local row count (MAX: the padding length), and
   one ``all_gather`` of the (value, group) float64 pairs padded to the
   largest local batch, for global batches of 256 and 4096 rows and 2, 10,
   100 classes. Beside them, in one process, the forward+backward time of
   :class:`sk_zerror.ZErrorCrossEntropyLoss` on the global batch and on one
   rank's shard. Before timing, each rank checks on an uneven split that the
   all-reduced sums give the global batch's z-scores and that the gathered
   pairs give :func:`~sk_zerror.zscore_mask`'s median/MAD mask of the global
   batch (``stats_match``, ``mask_match``).

Only the loopback interface is used; nothing leaves the machine.

Examples
--------
The tables of ``docs/benchmarks/distributed.md``::

    python benchmarks/bench_distributed.py --out benchmarks/results/distributed

A smoke run in a few seconds::

    python benchmarks/bench_distributed.py --quick --out /tmp/distributed
"""

import argparse
import datetime
import functools
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from _common import (
    detection,
    environment,
    load_average,
    spread,
    summarise,
    write_results,
)
from _noise import add_gross_errors, corrupt_labels, rng_for

from sk_zerror import ZErrorCrossEntropyLoss, zscore_mask

LOOPBACK = "127.0.0.1"
GLOBAL_BATCH = 256
RANKS = (1, 2, 4, 8)
SIGMAS = (2.0, 1.5)
ERROR_RATE = 0.1
# Given-class logit of a clean row, in standard deviations above the others.
LOGIT_MARGIN = 4.0
# task -> (number of classes, tail); regression has one group.
TASKS = {
    "regression": (1, "both"),
    "classification, 2 classes": (2, "lower"),
    "classification, 10 classes": (10, "lower"),
}
STATISTICS = {"mean/std": ("mean", "std"), "median/MAD": ("median", "mad")}
METRICS = ("precision", "recall", "f1", "disagreement")
SYNC_WORLD = 2
FULL_SYNC = dict(batches=(256, 4096), classes=(2, 10, 100), repeats=15, number=200)
QUICK_SYNC = dict(batches=(256,), classes=(2, 100), repeats=3, number=20)
TIMINGS = ("allreduce_stats", "allreduce_count", "allgather_pairs")


# -- 1. detection with simulated ranks --------------------------------------


def make_values(task, n_rows, seed):
    """The quantity the loss z-scores, its group and which rows are corrupted.

    Returns
    -------
    values : ndarray of float64, shape (n_rows,)
    groups : ndarray of int64, shape (n_rows,)
        0 in regression, the given (possibly flipped) label in classification.
    truth : ndarray of bool, shape (n_rows,)
        True for the gross errors or flipped labels.
    """
    n_classes, _ = TASKS[task]
    rng = rng_for("bench_distributed", task, seed)
    if n_classes == 1:
        values, truth = add_gross_errors(rng.normal(size=n_rows), ERROR_RATE, rng)
        return values, np.zeros(n_rows, dtype=np.int64), truth
    labels = rng.integers(0, n_classes, n_rows)
    given = corrupt_labels(labels, "symmetric", ERROR_RATE, rng)
    logits = rng.normal(size=(n_rows, n_classes))
    logits[np.arange(n_rows), labels] += LOGIT_MARGIN
    return logits[np.arange(n_rows), given], given.astype(np.int64), given != labels


def shard_groups(groups, n_classes, ranks, batch=GLOBAL_BATCH):
    """Group index of every row when each batch's ``ranks`` shards keep their own.

    Rows are taken in order: batch ``b`` is rows ``[b * batch, (b + 1) * batch)``
    and its shard ``r`` the ``r``-th of ``ranks`` equal slices of it (the data
    are exchangeable, so order is as good as a shuffle).
    """
    shard = np.arange(len(groups)) // (batch // ranks)
    return shard * n_classes + groups, (len(groups) // (batch // ranks)) * n_classes


def flagged_rows(values, groups, n_groups, sigma, center, scale, tail):
    """Rows :func:`zscore_mask` refuses, each z-scored within its group."""
    mask = zscore_mask(
        torch.from_numpy(values),
        torch.from_numpy(groups),
        sigma=sigma,
        center=center,
        scale=scale,
        tail=tail,
        n_groups=n_groups,
    )
    return ~mask.numpy()


def detection_rows(seed, n_batches):
    """Detection scores of every task, statistic, sigma and number of ranks."""
    rows = []
    for task, (n_classes, tail) in TASKS.items():
        values, classes, truth = make_values(task, n_batches * GLOBAL_BATCH, seed)
        for name, (center, scale) in STATISTICS.items():
            for sigma in SIGMAS:
                flags = {}
                for ranks in RANKS:
                    groups, n_groups = shard_groups(classes, n_classes, ranks)
                    flags[ranks] = flagged_rows(
                        values, groups, n_groups, sigma, center, scale, tail
                    )
                    rows.append(
                        dict(
                            task=task,
                            statistics=name,
                            sigma=sigma,
                            ranks=ranks,
                            rows_per_rank=GLOBAL_BATCH // ranks,
                            seed=seed,
                            **detection(flags[ranks], truth),
                            disagreement=float(np.mean(flags[ranks] != flags[1])),
                        )
                    )
    return rows


def detection_table(summary, n_seeds):
    """F1 per number of ranks, one line per task, statistics and sigma."""
    lookup = {(e["task"], e["statistics"], e["sigma"], e["ranks"]): e for e in summary}
    head = " | ".join(
        "global (W=1, 256 rows)" if w == 1 else f"W={w} ({GLOBAL_BATCH // w} rows)"
        for w in RANKS
    )
    lines = [
        f"**Detection F1, per-rank statistics at W simulated ranks against the "
        f"global batch of {GLOBAL_BATCH}: median (min-max) over {n_seeds} seeds; "
        f"last column: share of rows decided differently from the global batch "
        f"at W={RANKS[-1]}, median.**",
        "",
        f"| task | statistics | sigma | {head} | disagreement W={RANKS[-1]} |",
        "| --- | --- | ---: |" + " ---: |" * (len(RANKS) + 1),
    ]
    for task in TASKS:
        for name in STATISTICS:
            for sigma in SIGMAS:
                cells = [
                    spread(lookup[(task, name, sigma, w)], "f1", ".3f") for w in RANKS
                ]
                last = lookup[(task, name, sigma, RANKS[-1])]["disagreement"]
                lines.append(
                    f"| {task} | {name} | {sigma:g} | "
                    + " | ".join(cells)
                    + f" | {last:.3f} |"
                )
    return "\n".join(lines)


# -- 2. the cost of synchronising -------------------------------------------


def free_loopback_port():
    """A TCP port free on 127.0.0.1 at the time of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def class_sums(values, groups, n_classes):
    """Per-class (count, sum, sum of squares): the (n_classes, 3, 1) float64 sums."""
    sums = torch.zeros(n_classes, 3, 1, dtype=torch.float64)
    sums[:, 0, 0].index_add_(0, groups, torch.ones_like(values))
    sums[:, 1, 0].index_add_(0, groups, values)
    sums[:, 2, 0].index_add_(0, groups, values * values)
    return sums


def zscores_from_sums(values, groups, sums):
    """Z-scores of ``values`` against the mean and unbiased std of ``sums``."""
    count, total, square = sums[:, 0, 0], sums[:, 1, 0], sums[:, 2, 0]
    mean = total / count
    std = ((square - total * mean) / (count - 1)).sqrt()
    return (values - mean[groups]) / std[groups]


def synthetic_logits(batch, n_classes, seed):
    """Logits (float64) of one synthetic global batch and its given labels.

    The true class's logit is ``N(LOGIT_MARGIN, 1)``, the others ``N(0, 1)``;
    ``ERROR_RATE`` of the given labels are moved to the next class.
    """
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n_classes, (batch,), generator=generator)
    logits = torch.randn(batch, n_classes, generator=generator, dtype=torch.float64)
    logits[torch.arange(batch), labels] += LOGIT_MARGIN
    wrong = torch.rand(batch, generator=generator) < ERROR_RATE
    return logits, torch.where(wrong, (labels + 1) % n_classes, labels)


def check_global_statistics(rank, world, batch, n_classes):
    """On an uneven split, synced sums and gathered pairs give the global result.

    Returns ``(stats_match, mask_match)``, each true on every rank.
    """
    logits, labels = synthetic_logits(batch, n_classes, seed=batch + n_classes)
    values = logits[torch.arange(batch), labels]
    sizes = [batch // world + 5] + [(batch - batch // world - 5) // (world - 1)] * (
        world - 1
    )
    sizes[-1] += batch - sum(sizes)
    start = sum(sizes[:rank])
    own = slice(start, start + sizes[rank])
    local_values, local_labels = values[own], labels[own]

    sums = class_sums(local_values, local_labels, n_classes)
    dist.all_reduce(sums)
    _, expected_z = zscore_mask(
        values, labels, sigma=2.0, n_groups=n_classes, return_scores=True
    )
    # Classes with fewer than two rows in the global batch have no statistics
    # (zscore_mask scores them 0); every other row is compared.
    usable = sums[local_labels, 0, 0] >= 2
    stats_match = torch.allclose(
        zscores_from_sums(local_values, local_labels, sums)[usable],
        expected_z[own][usable],
        rtol=1e-9,
        atol=1e-9,
    )

    longest = torch.tensor([sizes[rank]])
    dist.all_reduce(longest, op=dist.ReduceOp.MAX)
    pairs = torch.full((int(longest), 2), -1.0, dtype=torch.float64)
    pairs[: sizes[rank], 0] = local_values
    pairs[: sizes[rank], 1] = local_labels.to(torch.float64)
    gathered = [torch.empty_like(pairs) for _ in range(world)]
    dist.all_gather(gathered, pairs)
    everything = torch.cat(gathered)
    kept = everything[everything[:, 1] >= 0]  # padding rows carry group -1
    robust = dict(sigma=2.0, center="median", scale="mad", n_groups=n_classes)
    synced = zscore_mask(kept[:, 0], kept[:, 1].to(torch.int64), **robust)
    mask_match = torch.equal(synced[own], zscore_mask(values, labels, **robust)[own])

    verdict = torch.tensor([int(stats_match), int(mask_match)])
    dist.all_reduce(verdict, op=dist.ReduceOp.MIN)
    return bool(verdict[0]), bool(verdict[1])


def time_collective(operation, repeats, number):
    """Median over ``repeats`` of the wall and CPU microseconds per call.

    Each repeat starts from a barrier, so the ranks enter together; the
    slowest rank's median is kept.
    """
    for _ in range(max(5, number // 10)):
        operation()
    wall, cpu = [], []
    for _ in range(repeats):
        dist.barrier()
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(number):
            operation()
        wall.append((time.perf_counter() - start_wall) / number * 1e6)
        cpu.append((time.process_time() - start_cpu) / number * 1e6)
    slowest = torch.tensor([statistics.median(wall), statistics.median(cpu)])
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    return float(slowest[0]), float(slowest[1])


def sync_worker(rank, world, port, settings, result_path):
    """One rank of the gloo group: check, then time the collectives."""
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://{LOOPBACK}:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        rows = []
        for batch in settings["batches"]:
            for n_classes in settings["classes"]:
                stats_match, mask_match = check_global_statistics(
                    rank, world, batch, n_classes
                )
                local = batch // world
                sums = torch.zeros(n_classes, 3, 1, dtype=torch.float64)
                count = torch.tensor([local])
                pairs = torch.zeros(local, 2, dtype=torch.float64)
                gathered = [torch.empty_like(pairs) for _ in range(world)]
                operations = {
                    "allreduce_stats": functools.partial(dist.all_reduce, sums),
                    "allreduce_count": functools.partial(
                        dist.all_reduce, count, op=dist.ReduceOp.MAX
                    ),
                    "allgather_pairs": functools.partial(
                        dist.all_gather, gathered, pairs
                    ),
                }
                row = dict(
                    batch=batch,
                    n_classes=n_classes,
                    world=world,
                    rows_per_rank=local,
                    stats_match=stats_match,
                    mask_match=mask_match,
                )
                for name, operation in operations.items():
                    wall, cpu = time_collective(
                        operation, settings["repeats"], settings["number"]
                    )
                    row[f"{name}_us"] = wall
                    row[f"{name}_cpu_us"] = cpu
                rows.append(row)
        if rank == 0:
            Path(result_path).write_text(json.dumps(rows))
    finally:
        dist.destroy_process_group()


def collective_times(settings):
    """Rows of the gloo timings, from a fresh 2-process group on 127.0.0.1."""
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "rows.txt"
        mp.spawn(
            sync_worker,
            args=(SYNC_WORLD, free_loopback_port(), settings, str(result)),
            nprocs=SYNC_WORLD,
            join=True,
        )
        return json.loads(result.read_text())


def loss_time_us(batch, n_classes, repeats, number, zerror=True):
    """Median wall and CPU microseconds of one forward+backward, one thread."""
    logits, labels = synthetic_logits(batch, n_classes, seed=batch * n_classes)
    logits = logits.float().requires_grad_(True)
    loss = ZErrorCrossEntropyLoss(sigma=2.0) if zerror else F.cross_entropy

    def step():
        logits.grad = None
        loss(logits, labels).backward()

    for _ in range(max(5, number // 10)):
        step()
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(number):
            step()
        wall.append((time.perf_counter() - start_wall) / number * 1e6)
        cpu.append((time.process_time() - start_cpu) / number * 1e6)
    return statistics.median(wall), statistics.median(cpu)


def sync_rows(settings):
    """Collective timings beside the loss's own, one row per configuration."""
    rows = collective_times(settings)
    for row in rows:
        for label, batch in (("global", row["batch"]), ("shard", row["rows_per_rank"])):
            for name, zerror in (("zerror", True), ("plain", False)):
                wall, cpu = loss_time_us(
                    batch,
                    row["n_classes"],
                    settings["repeats"],
                    settings["number"],
                    zerror=zerror,
                )
                row[f"{name}_loss_{label}_us"] = wall
                row[f"{name}_loss_{label}_cpu_us"] = cpu
        for clock in ("", "_cpu"):
            shard_loss = row[f"zerror_loss_shard{clock}_us"]
            reduce = row[f"allreduce_stats{clock}_us"]
            gather = (
                row[f"allreduce_count{clock}_us"] + row[f"allgather_pairs{clock}_us"]
            )
            row[f"allreduce{clock}_ratio_to_shard_loss"] = reduce / shard_loss
            row[f"allgather{clock}_ratio_to_shard_loss"] = gather / shard_loss
    return rows


def sync_table(rows):
    """Microseconds of each collective beside those of the loss."""
    lines = [
        f"**Synchronisation on CPU, {SYNC_WORLD} gloo processes on 127.0.0.1: "
        "CPU microseconds per call of the calling process (wall microseconds in "
        "brackets), median over repeats, slowest rank; ZErrorCrossEntropyLoss "
        "and plain cross-entropy forward+backward in one process on the global "
        "batch and on one rank's shard; ratios of CPU times to the shard's "
        "ZErrorCrossEntropyLoss.**",
        "",
        "| batch | classes | all_reduce stats | all_reduce count | all_gather "
        "pairs | loss, global batch | loss, shard | plain CE, shard | "
        "all_reduce / loss | (count + all_gather) / loss | checks |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]

    def cell(row, name):
        return f"{row[name + '_cpu_us']:.0f} ({row[name + '_us']:.0f})"

    names = (
        "allreduce_stats",
        "allreduce_count",
        "allgather_pairs",
        "zerror_loss_global",
        "zerror_loss_shard",
        "plain_loss_shard",
    )
    for row in rows:
        checks = "ok" if row["stats_match"] and row["mask_match"] else "FAILED"
        lines.append(
            f"| {row['batch']} | {row['n_classes']} | "
            + " | ".join(cell(row, name) for name in names)
            + f" | {row['allreduce_cpu_ratio_to_shard_loss']:.2f} | "
            f"{row['allgather_cpu_ratio_to_shard_loss']:.2f} | {checks} |"
        )
    return "\n".join(lines)


# -- main -------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 seed, 8 global batches, batch 256 and 2/100 classes for the "
        "timings, few repeats: a smoke run",
    )
    parser.add_argument(
        "--seeds", type=int, default=None, help="seeds (default 5, 1 with --quick)"
    )
    parser.add_argument(
        "--n-batches",
        type=int,
        default=None,
        help=f"global batches of {GLOBAL_BATCH} rows per seed "
        "(default 64, 8 with --quick)",
    )
    parser.add_argument(
        "--skip-sync", action="store_true", help="only the detection study"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmarks/results/distributed"),
        help="folder for detection.csv, detection_summary.csv, sync.csv, "
        "summary.json and tables.md",
    )
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 5
    if args.n_batches is None:
        args.n_batches = 8 if args.quick else 64
    if args.seeds < 1 or args.n_batches < 1:
        parser.error("--seeds and --n-batches must be >= 1.")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    settings = QUICK_SYNC if args.quick else FULL_SYNC
    env = environment(
        torch,
        np,
        threads=1,
        seeds=list(range(args.seeds)),
        argv=argv,
        with_load_average=True,
        quick=args.quick,
        global_batch=GLOBAL_BATCH,
        n_batches=args.n_batches,
        error_rate=ERROR_RATE,
        logit_margin=LOGIT_MARGIN,
        sync=None if args.skip_sync else dict(settings, world=SYNC_WORLD),
        gpu="none used",
    )
    print(" ".join(f"{k}={v}" for k, v in env.items()), file=sys.stderr)
    start = time.perf_counter()

    rows = []
    for seed in range(args.seeds):
        rows += detection_rows(seed, args.n_batches)
    summary = summarise(rows, ("task", "statistics", "sigma", "ranks"), METRICS)
    tables = [detection_table(summary, args.seeds)]
    raw = {"detection": rows, "detection_summary": summary}
    print(f"detection done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)

    if not args.skip_sync:
        raw["sync"] = sync_rows(settings)
        tables.append(sync_table(raw["sync"]))
    env["load_average_at_end"] = load_average()
    env["elapsed_s"] = round(time.perf_counter() - start, 1)
    if args.quick:
        tables.append("(--quick: a smoke run; these numbers mean nothing.)")
    text = "\n\n".join(tables) + "\n"
    print(text)
    write_results(
        args.out,
        raw,
        {"environment": env, "detection": summary, "sync": raw.get("sync")},
        text,
    )
    print(f"({env['elapsed_s']:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
