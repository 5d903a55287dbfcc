"""Forward+backward time of the Z-Error losses, the plain losses and a loop.

For every configuration, three implementations are timed on one batch with
``torch.utils.benchmark.Timer`` (which synchronises CUDA around each block):

* the plain torch loss (``F.cross_entropy``, ``F.binary_cross_entropy_with_logits``
  or ``F.mse_loss``),
* the Z-Error loss of sk_zerror with its defaults,
* a naive per-class loop in the style of the technical note's listing
  (boolean indexing, mean and standard deviation class by class, then the
  masked loss), for the classification losses.

Before any timing, the loop is checked to give the same loss value as the
Z-Error loss on each benchmarked batch, so the speed-up compares like with like.

Examples
--------
The table recorded in ``docs/benchmarks/losses.md`` (CPU time of the timing thread,
as that machine was shared with other jobs)::

    python benchmarks/bench_losses.py --device cpu --clock cpu --repeats 7 \
        --out benchmarks/results/bench_losses.csv

A smoke run in a few seconds::

    python benchmarks/bench_losses.py --quick
"""

import argparse
import statistics
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import (
    environment,
    load_average,
    machine_description,
    write_csv,
    write_json,
)
from torch.utils.benchmark import Timer

from sk_zerror import ZErrorBCEWithLogitsLoss, ZErrorCrossEntropyLoss, ZErrorMSELoss

SIGMA = 2.0
# Share of samples turned into gross errors, so that the masks are not trivial.
OUTLIER_SHARE = 0.05
FULL_BATCHES = (64, 256, 4096)
FULL_CLASSES = (2, 10, 100, 1000)
QUICK_BATCHES = (256,)
QUICK_CLASSES = (2, 100)
# The configuration the targets of the issue are stated for.
TARGET_BATCH, TARGET_CLASSES = 256, 100
CE_VARIANTS = {
    'center="median"': dict(center="median"),
    'scale="mad"': dict(scale="mad"),
    'center="median", scale="mad"': dict(center="median", scale="mad"),
    'window="running"': dict(window="running"),
    "check_input=False": dict(check_input=False),
    "sample weights": dict(),
}
# Rows timed with per-sample weights (1 to 3), which enter the statistics.
WEIGHTED = {"sample weights"}
# The bounds: cross-entropy at 256 x 100, every cell of the grid, and
# the binary and regression losses against their plain torch losses.
TARGET_RATIO, GRID_RATIO, OTHER_RATIO, TARGET_SPEEDUP = 3.0, 3.5, 3.0, 10.0
FIELDS = [
    "loss",
    "variant",
    "batch",
    "n_classes",
    "device",
    "threads",
    "clock",
    "plain_us",
    "zerror_us",
    "loop_us",
    "ratio_to_plain",
    "speedup_over_loop",
]


# -- naive references -------------------------------------------------------


def _loop_class_mask(values, labels, n_classes, sigma):
    """Per-class inlier mask with a Python loop and boolean indexing.

    The note's listing, with the library's rules for the corner cases: the
    statistics are taken in float64, and a class with fewer than two members or
    no spread (at the input's rounding level) keeps all its members.
    """
    eps = 4 * torch.finfo(values.dtype).eps
    values = values.detach().to(torch.float64)
    mask = torch.zeros_like(values, dtype=torch.bool)
    for cls in range(n_classes):
        idx = labels == cls
        class_values = values[idx]
        if class_values.numel() == 0:
            continue
        if class_values.numel() < 2:
            mask[idx] = True
            continue
        mean = class_values.mean()
        std = class_values.std(unbiased=True)
        if not std > eps * mean.abs():
            mask[idx] = True
            continue
        mask[idx] = ((class_values - mean) / std).abs() <= sigma
    return mask


def _masked_mean(elementwise, mask):
    return (elementwise * mask).sum() / mask.sum().clamp(min=1)


def loop_cross_entropy(input, target, sigma=SIGMA):
    """Z-Error cross-entropy computed class by class (the naive reference)."""
    given = input.detach().gather(1, target.unsqueeze(1)).squeeze(1)
    mask = _loop_class_mask(given, target, input.shape[1], sigma)
    return _masked_mean(F.cross_entropy(input, target, reduction="none"), mask)


def loop_bce_with_logits(input, target, sigma=SIGMA):
    """Z-Error binary cross-entropy computed class by class, as in the note.

    The note z-scores the raw logit of each class; the library z-scores the
    given-class logit (its negative for label 0), which gives the same mask
    because negation is affine.
    """
    mask = _loop_class_mask(input, target.long(), 2, sigma)
    bce = F.binary_cross_entropy_with_logits(input, target, reduction="none")
    return _masked_mean(bce, mask)


# -- batches ----------------------------------------------------------------


def _generator(seed, *key):
    # One generator per configuration, on the CPU: the same data on any device.
    # crc32, not hash(): string hashes change from one process to the next.
    return torch.Generator().manual_seed(seed + zlib.crc32(repr(key).encode()))


def classification_batch(batch, n_classes, seed, device):
    """Logits (batch, n_classes) and labels, a few of them gross errors."""
    gen = _generator(seed, "ce", batch, n_classes)
    logits = torch.randn(batch, n_classes, generator=gen) * 2.0
    labels = torch.randint(0, n_classes, (batch,), generator=gen)
    wrong = torch.rand(batch, generator=gen) < OUTLIER_SHARE
    logits[wrong, labels[wrong]] -= 12.0
    return logits.to(device).requires_grad_(), labels.to(device)


def binary_batch(batch, seed, device):
    """One logit per sample and float 0/1 labels, a few of them flipped."""
    gen = _generator(seed, "bce", batch)
    labels = torch.randint(0, 2, (batch,), generator=gen).float()
    logits = (2 * labels - 1) * 2.0 + torch.randn(batch, generator=gen)
    flipped = torch.rand(batch, generator=gen) < OUTLIER_SHARE
    labels[flipped] = 1 - labels[flipped]
    return logits.to(device).requires_grad_(), labels.to(device)


def regression_batch(batch, seed, device):
    """Predictions and targets, a few targets with gross errors."""
    gen = _generator(seed, "mse", batch)
    target = torch.randn(batch, 1, generator=gen)
    prediction = target + 0.1 * torch.randn(batch, 1, generator=gen)
    wrong = torch.rand(batch, 1, generator=gen) < OUTLIER_SHARE
    target[wrong] += 25.0
    return prediction.to(device).requires_grad_(), target.to(device)


# -- timing -----------------------------------------------------------------


def forward_backward(loss_fn, input, target, *extra):
    """One training step of the loss alone: forward, then gradient of the input."""

    def step():
        loss = loss_fn(input, target, *extra)
        torch.autograd.grad(loss, input)

    return step


def median_times_us(steps, *, threads, repeats, min_run_time, clock):
    """Median time in microseconds of each of ``steps`` (a dict of callables).

    The steps take turns, one timed block each per repeat, so that a change in
    the machine's load during a row affects them alike.
    """
    for step in steps.values():
        for _ in range(3):  # warm-up: allocator, first-call dispatch, CUDA
            step()
    # Timer's default clock is the wall clock, with an accelerator synchronise
    # around each block; the thread's CPU time leaves out the time this thread
    # waited for a core, which is what a CPU shared with other jobs adds.
    kwargs = {"timer": time.thread_time} if clock == "cpu" else {}
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            timer = Timer(
                stmt="step()",
                globals={"step": step},
                num_threads=threads,
                label=name,
                **kwargs,
            )
            measurement = timer.blocked_autorange(min_run_time=min_run_time)
            times[name].extend(measurement.times)
    return {name: 1e6 * statistics.median(t) for name, t in times.items()}


def check_same_value(name, zerror, loop, input, target):
    """Fail loudly if the loop and the Z-Error loss disagree on this batch."""
    expected = loop(input, target)
    actual = zerror(input, target)
    if not torch.allclose(actual, expected, rtol=1e-5, atol=1e-7):
        raise AssertionError(
            f"{name}: the per-class loop gives {expected.item()!r} but the "
            f"Z-Error loss gives {actual.item()!r}."
        )


def configurations(quick):
    """(loss, variant, batch, n_classes) of every row, in table order."""
    batches = QUICK_BATCHES if quick else FULL_BATCHES
    classes = QUICK_CLASSES if quick else FULL_CLASSES
    rows = [("ZErrorCrossEntropyLoss", "", b, k) for b in batches for k in classes]
    rows += [
        ("ZErrorCrossEntropyLoss", variant, TARGET_BATCH, TARGET_CLASSES)
        for variant in CE_VARIANTS
    ]
    rows += [("ZErrorBCEWithLogitsLoss", "", b, 2) for b in batches]
    rows += [("ZErrorMSELoss", "", b, None) for b in batches]
    return rows


def run_configuration(loss, variant, batch, n_classes, args):
    """Time one row: the plain loss, the Z-Error loss and the loop."""
    device, seed = args.device, args.seed
    if loss == "ZErrorCrossEntropyLoss":
        input, target = classification_batch(batch, n_classes, seed, device)
        zerror = ZErrorCrossEntropyLoss(sigma=SIGMA, **CE_VARIANTS.get(variant, {}))
        plain, loop = F.cross_entropy, loop_cross_entropy
    elif loss == "ZErrorBCEWithLogitsLoss":
        input, target = binary_batch(batch, seed, device)
        zerror = ZErrorBCEWithLogitsLoss(sigma=SIGMA)
        plain, loop = F.binary_cross_entropy_with_logits, loop_bce_with_logits
    else:
        input, target = regression_batch(batch, seed, device)
        zerror = ZErrorMSELoss(sigma=SIGMA)
        plain, loop = F.mse_loss, None
    zerror = zerror.to(device)
    # The loop only implements the default mean/std batch statistics.
    if variant:
        loop = None
    if loop is not None:
        check_same_value(f"{loss} {batch}x{n_classes}", zerror, loop, input, target)

    extra = ()
    if variant in WEIGHTED:
        gen = torch.Generator().manual_seed(seed)
        extra = (torch.randint(1, 4, (batch,), generator=gen).float().to(device),)
    steps = {
        "plain": forward_backward(plain, input, target),
        "zerror": forward_backward(zerror, input, target, *extra),
    }
    if loop is not None:
        steps["loop"] = forward_backward(loop, input, target)
    us = median_times_us(
        steps,
        threads=args.threads,
        repeats=args.repeats,
        min_run_time=args.min_run_time,
        clock=args.clock,
    )
    plain_us, zerror_us, loop_us = us["plain"], us["zerror"], us.get("loop")
    return {
        "loss": loss,
        "variant": variant,
        "batch": batch,
        "n_classes": n_classes,
        "device": device,
        "threads": args.threads,
        "clock": args.clock,
        "plain_us": plain_us,
        "zerror_us": zerror_us,
        "loop_us": loop_us,
        "ratio_to_plain": zerror_us / plain_us,
        "speedup_over_loop": None if loop_us is None else loop_us / zerror_us,
    }


# -- reporting --------------------------------------------------------------


def run_environment(args, argv):
    machine = machine_description()
    if args.device.startswith("cuda"):
        machine += f"; GPU {torch.cuda.get_device_name(torch.device(args.device))}"
    return environment(
        np,
        torch,
        threads=args.threads,
        seeds=[args.seed],
        argv=argv,
        with_load_average=True,
        machine=machine,
        device=args.device,
        repeats=args.repeats,
        min_run_time_s=args.min_run_time,
        clock=args.clock,
        quick=args.quick,
    )


def _cell(value, fmt):
    return "-" if value is None else format(value, fmt)


def markdown_table(rows):
    lines = [
        "| loss | variant | batch | classes | plain (µs) | Z-Error (µs) "
        "| loop (µs) | Z-Error / plain | loop / Z-Error |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        variant = f"`{row['variant']}`" if row["variant"] else "default"
        lines.append(
            f"| {row['loss']} | {variant} | {row['batch']} "
            f"| {_cell(row['n_classes'], 'd')} | {row['plain_us']:.1f} "
            f"| {row['zerror_us']:.1f} | {_cell(row['loop_us'], '.1f')} "
            f"| {row['ratio_to_plain']:.2f} "
            f"| {_cell(row['speedup_over_loop'], '.1f')} |"
        )
    return "\n".join(lines)


def _verdict(value, bound, below=True):
    met = value <= bound if below else value >= bound
    return "met" if met else "MISSED"


def target_summary(rows):
    """The issue's targets, met or missed, each with its measured figure."""
    lines = []
    defaults = [row for row in rows if not row["variant"]]
    for row in defaults:
        if row["loss"] == "ZErrorCrossEntropyLoss" and (
            row["batch"],
            row["n_classes"],
        ) == (TARGET_BATCH, TARGET_CLASSES):
            ratio, speedup = row["ratio_to_plain"], row["speedup_over_loop"]
            lines.append(
                f"cross-entropy at {TARGET_BATCH} x {TARGET_CLASSES}: "
                f"{ratio:.2f}x plain (<= {TARGET_RATIO}: "
                f"{_verdict(ratio, TARGET_RATIO)}), {speedup:.1f}x faster than "
                f"the loop (>= {TARGET_SPEEDUP}: "
                f"{_verdict(speedup, TARGET_SPEEDUP, below=False)})"
            )
    grid = [r for r in defaults if r["loss"] == "ZErrorCrossEntropyLoss"]
    if grid:
        worst = max(grid, key=lambda r: r["ratio_to_plain"])
        lines.append(
            f"worst cross-entropy cell: {worst['ratio_to_plain']:.2f}x at "
            f"{worst['batch']} x {worst['n_classes']} (<= {GRID_RATIO}: "
            f"{_verdict(worst['ratio_to_plain'], GRID_RATIO)})"
        )
    for name in ("ZErrorBCEWithLogitsLoss", "ZErrorMSELoss"):
        cells = [r for r in defaults if r["loss"] == name]
        if cells:
            worst = max(cells, key=lambda r: r["ratio_to_plain"])
            lines.append(
                f"worst {name}: {worst['ratio_to_plain']:.2f}x at batch "
                f"{worst['batch']} (<= {OTHER_RATIO}: "
                f"{_verdict(worst['ratio_to_plain'], OTHER_RATIO)})"
            )
    weighted = [r for r in rows if r["variant"] in WEIGHTED]
    for row in weighted:
        lines.append(
            f"cross-entropy with sample weights: {row['ratio_to_plain']:.2f}x "
            f"(<= {TARGET_RATIO}: {_verdict(row['ratio_to_plain'], TARGET_RATIO)})"
        )
    return "\n".join(lines) if lines else "No target configuration was run."


def write_results(path, rows, env):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        write_json(path, {"environment": env, "rows": rows})
        return
    blank = [{k: "" if v is None else v for k, v in row.items()} for row in rows]
    write_csv(path, blank, FIELDS)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="batch 256 and 2/100 classes only, short timings: a smoke run",
    )
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    parser.add_argument(
        "--out", help="write the rows to this file: JSON if it ends in .json, else CSV"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed blocks per implementation (default 5, or 1 with --quick)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: these are small, latency-bound "
        "kernels, and one thread keeps the timings stable on a shared machine)",
    )
    parser.add_argument(
        "--min-run-time",
        type=float,
        default=None,
        help="seconds per timed block (default 0.2, or 0.02 with --quick)",
    )
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall clock (default), or the CPU time of the timing thread, which "
        "a busy shared CPU disturbs less; CPU only, and only with --threads 1",
    )
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.min_run_time is None:
        args.min_run_time = 0.02 if args.quick else 0.2
    if args.repeats < 1 or args.threads < 1 or args.min_run_time <= 0:
        parser.error("--repeats, --threads and --min-run-time must be positive.")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device.")
    if args.clock == "cpu" and (args.device != "cpu" or args.threads != 1):
        # A CUDA kernel or a second thread does work that this clock misses.
        parser.error("--clock cpu needs --device cpu and --threads 1.")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    env = run_environment(args, argv)
    print(" ".join(f"{k}={v}" for k, v in env.items()), file=sys.stderr)
    start = time.perf_counter()
    rows = [run_configuration(*config, args) for config in configurations(args.quick)]
    env["load_average_at_end"] = load_average()
    print(markdown_table(rows))
    print()
    print(target_summary(rows))
    print(
        f"({time.perf_counter() - start:.1f} s, load average at the end "
        f"{env['load_average_at_end']})",
        file=sys.stderr,
    )
    if args.out:
        write_results(args.out, rows, env)


if __name__ == "__main__":
    main()
