"""The ``sk-zerror`` command: ``sk-zerror audit [DATA] --target COLUMN``."""

import argparse
import codecs
import math
import re
import shlex
import signal
import sys
from pathlib import Path

import numpy as np

from ._interrupt import Interrupted, stop_on_signals

DEMO_ERRORS = ("decimal slip x10", "digit swap", "unit error /18", "wrong row")
# --sigma, in robust standard deviations: below 0.1 nearly every row is
# masked and flagged, above 1000 none is, and far beyond the histogram of the
# scores cannot be drawn.
SIGMA_RANGE = (0.1, 1000.0)


def make_demo_table(seed=0, per_kind=10):
    """Diabetes with data-entry errors of the kinds the note lists.

    Returns the table (an ``id`` column, ten features, ``target``), the
    boolean mask of corrupted rows and the kind of error of each row.
    Digit swaps and wrong rows are drawn among those that move the value by
    at least 60 (about one standard deviation of the target): smaller ones
    are indistinguishable from the data's own noise.
    """
    import pandas as pd
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True)
    table = data.frame.copy()
    y = table["target"].to_numpy().copy()
    rng = np.random.default_rng(seed)
    kind = np.array([""] * len(y), dtype=object)
    free = np.ones(len(y), dtype=bool)

    def take(candidates, n):
        chosen = rng.choice(np.flatnonzero(candidates & free), n, replace=False)
        free[chosen] = False
        return chosen

    digits = np.array([str(int(v)) for v in y])
    swapped = np.array(
        [int(d[1] + d[0] + d[2:]) if len(d) > 1 else int(d) for d in digits]
    )
    rows = take(np.ones(len(y), dtype=bool), per_kind)
    y[rows], kind[rows] = y[rows] * 10, DEMO_ERRORS[0]
    rows = take(np.abs(swapped - y) >= 60, per_kind)
    y[rows], kind[rows] = swapped[rows], DEMO_ERRORS[1]
    rows = take(np.ones(len(y), dtype=bool), per_kind)
    y[rows], kind[rows] = np.round(y[rows] / 18, 1), DEMO_ERRORS[2]
    rows = take(np.ones(len(y), dtype=bool), per_kind)
    donors = np.array(
        [rng.choice(np.flatnonzero(np.abs(y - y[r]) >= 60)) for r in rows]
    )
    y[rows], kind[rows] = y[donors], DEMO_ERRORS[3]
    table["target"] = y
    table.insert(0, "id", [f"patient-{i:03d}" for i in range(len(y))])
    return pd.DataFrame(table), kind != "", kind


def _demo_score(result, truth, kinds):
    flagged = np.zeros(len(truth), dtype=bool)
    flagged[result.flagged["row"].to_numpy()] = True
    tp = int((flagged & truth).sum())
    precision = tp / max(flagged.sum(), 1)
    recall = tp / max(truth.sum(), 1)
    lines = [
        f"demo: {int(truth.sum())} injected errors, {int(flagged.sum())} rows flagged, "
        f"{tp} of them injected: precision {precision:.2f}, recall {recall:.2f}"
    ]
    for kind in DEMO_ERRORS:
        rows = kinds == kind
        lines.append(
            f"  {kind:<17} found {int((flagged & rows).sum())} of {int(rows.sum())}"
        )
    return lines


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line on stderr, exit code 2 (no usage dump)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _sigma(text):
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be 'auto' or a number > 0, got {text!r}"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    low, high = SIGMA_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"must be between {low:g} and {high:g} robust standard deviations, "
            f"got {text}"
        )
    return value


def _encoding(text):
    try:
        return codecs.lookup(text).name
    except LookupError:
        raise argparse.ArgumentTypeError(
            f"unknown encoding {text!r}; e.g. utf-8, latin-1, cp1252"
        ) from None


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number >= 1, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


def _device(text):
    if text in ("cpu", "cuda", "auto") or re.fullmatch(r"cuda:\d+", text):
        return text
    raise argparse.ArgumentTypeError(f"must be cpu, cuda, cuda:N or auto, got {text!r}")


def build_parser():
    parser = _Parser(
        prog="sk-zerror",
        description="Robust neural networks with the Z-Error Loss.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )
    audit = commands.add_parser(
        "audit",
        help="list the rows of a table that a robust model refuses to learn",
        description=(
            "Fit a robust Z-Error network to a CSV or Parquet table and report the "
            "rows whose target it refuses to learn (likely data-entry errors). "
            "Without DATA, run the built-in demo on scikit-learn's diabetes set "
            "with injected errors. The input file is only read; the outputs go "
            "to a new folder."
        ),
    )
    audit.add_argument(
        "data", nargs="?", help="CSV or Parquet file (omit for the demo)"
    )
    audit.add_argument("--target", help="name of the target column")
    audit.add_argument(
        "--task", choices=["auto", "regression", "classification"], default="auto"
    )
    audit.add_argument(
        "--sigma",
        type=_sigma,
        default="auto",
        help="the estimator's sigma, from 0.1 to 1000 (regression: the masking "
        "and the flag threshold; classification: the masking threshold), or "
        "'auto' (default): the estimator's default, 5 for regression and 2 for "
        "classification",
    )
    audit.add_argument(
        "--epochs",
        type=_positive_int,
        help="the estimator's max_epochs, both training runs together "
        "(default: the estimator's, 100)",
    )
    audit.add_argument(
        "--batch-size",
        type=_positive_int,
        help="the estimator's batch_size (default: the estimator's, 256; at "
        "most the number of rows)",
    )
    audit.add_argument(
        "--encoding",
        type=_encoding,
        help="text encoding of a CSV file (default: utf-8), e.g. latin-1 or cp1252",
    )
    audit.add_argument(
        "--device",
        type=_device,
        default="cpu",
        help="cpu (default), cuda, cuda:N, or auto (CUDA when available)",
    )
    audit.add_argument("--seed", type=int, default=0, help="random seed")
    audit.add_argument("--out", help="output folder (default: audit_<name>)")
    audit.add_argument(
        "--force",
        action="store_true",
        help="replace the output folder of an earlier audit",
    )
    audit.add_argument(
        "--quiet", action="store_true", help="no progress bar or progress lines"
    )
    return parser


def run_audit(args, command):
    # The heavy stack (pandas, scikit-learn, torch) is imported only now,
    # after the arguments are parsed.
    from ._audit import fit_audit, prepare_audit
    from ._output_folder import check_output_folder, claim_output_folder
    from ._report import write_outputs
    from ._table import load_table

    demo = args.data is None
    if demo:
        table, truth, kinds = make_demo_table(args.seed)
        target, name, inputs = "target", "demo", ()
    else:
        table = load_table(args.data, encoding=args.encoding)
        target, name, inputs = args.target, Path(args.data).stem, (args.data,)
    out = args.out or f"audit_{name}"
    # Everything is checked before the minutes of training.
    check_output_folder(out, force=args.force, inputs=inputs)
    plan = prepare_audit(
        table,
        target,
        task=args.task,
        sigma=args.sigma,
        epochs=args.epochs,
        batch_size=args.batch_size,
        device=args.device,
    )
    for warning in plan.warnings:
        print(f"sk-zerror: warning: {warning}", file=sys.stderr)
    claim = None
    try:
        # The folder is ours from now on: a second audit into it is refused.
        claim = claim_output_folder(out, force=args.force, inputs=inputs)
        if claim.replacing and not args.quiet:
            print(f"replacing the earlier audit in {out}", file=sys.stderr)
        result = fit_audit(plan, seed=args.seed, progress=not args.quiet)
        for warning in result.warnings[len(plan.warnings) :]:
            print(f"sk-zerror: warning: {warning}", file=sys.stderr)
        extra = []
        if demo:
            extra = _demo_score(result, truth, kinds)
        folder = write_outputs(
            result,
            out,
            force=args.force,
            command=command,
            inputs=inputs,
            extra_notes=extra,
            claim=claim,
        )
    finally:
        if claim is not None:
            claim.release()
    if claim.kept is not None:
        print(
            f"sk-zerror: warning: files that appeared in {out} while the report "
            f"was moved into place are kept in {claim.kept}",
            file=sys.stderr,
        )
    for line in extra:
        print(line)
    print(
        f"{len(result.flagged)} of {len(result.table)} rows flagged; "
        f"report: {folder / 'report.html'} (also report.md)"
    )
    return 0


def main(argv=None):
    """Entry point of ``sk-zerror``; returns the exit code.

    0 when the report is written, 2 for bad input (one line on stderr, before
    any training), 130 on SIGINT (Ctrl-C) and 143 on SIGTERM, at any point,
    with nothing written and an earlier report left as it was.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or an argument error already printed
        return exc.code
    if args.data is not None and not args.target:
        print(
            "sk-zerror audit: error: --target COLUMN is required with a data file "
            "(see sk-zerror audit --help)",
            file=sys.stderr,
        )
        return 2
    command = "sk-zerror " + " ".join(shlex.quote(a) for a in argv)
    try:
        with stop_on_signals():
            from ._table import AuditError

            try:
                return run_audit(args, command)
            except AuditError as exc:
                print(f"sk-zerror: error: {exc}", file=sys.stderr)
                return 2
    except KeyboardInterrupt:  # before the handlers were in place
        exc = Interrupted(signal.SIGINT)
    except Interrupted as interrupted:
        exc = interrupted
    print(f"sk-zerror: interrupted ({exc.name}); nothing was written", file=sys.stderr)
    return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
