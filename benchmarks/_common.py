"""What every benchmark script shares: the run's description, writers, timing,
detection scores and summaries over seeds.

Each ``bench_*.py`` is its experiment plus a ``main``; this module holds the
rest, so that the scripts describe their runs, time their fits, score their
masks and write their results the same way.
"""

import csv
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

import sk_zerror

# -- the run ----------------------------------------------------------------


def cpu_model():
    """The CPU model from /proc/cpuinfo, else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine_description():
    """CPU model, architecture and usable cores, in one line."""
    return f"{cpu_model()} ({platform.machine()}), {usable_cores()} usable cores"


def versions(*modules):
    """Python's version and each module's ``__version__``, keyed by module name."""
    found = {"python": platform.python_version()}
    found.update((module.__name__, module.__version__) for module in modules)
    return found


def load_average():
    """The 1, 5 and 15-minute load averages, rounded (None off Unix)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def command(argv=None):
    """The command line that ran the script (``argv``: its arguments, if given)."""
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    return " ".join(["python", sys.argv[0], *args])


def environment(*modules, threads, seeds, argv=None, with_load_average=False, **extra):
    """The description of a run that every script records with its results.

    Parameters
    ----------
    *modules : module
        Libraries the run depends on, besides sk_zerror; their versions are
        recorded under their module names, after Python's.
    threads : int
        Threads the run was allowed (torch's, or BLAS's for scikit-learn).
    seeds : int or list of int
        The seeds run, or how many.
    argv : list of str, optional
        The script's arguments when ``main`` got them, else ``sys.argv``'s.
    with_load_average : bool, default=False
        Record the load averages at the start (``load_average_at_start``):
        for scripts whose timings the machine's load moves.
    **extra
        Further fields of the script's own (its settings); they come last and
        may replace a default one, such as ``machine``.

    Returns
    -------
    dict
        ``command``, ``python``, ``sk_zerror`` and each module's version,
        ``machine``, ``threads``, ``seeds``, then the extra fields.
    """
    env = {"command": command(argv), **versions(sk_zerror, *modules)}
    env["machine"] = machine_description()
    env["threads"] = threads
    env["seeds"] = seeds
    if with_load_average:
        env["load_average_at_start"] = load_average()
    env.update(extra)
    return env


# -- writers ----------------------------------------------------------------


def write_csv(path, rows, fields=None):
    """Write dict rows as CSV; ``fields`` default to the keys in first-seen order."""
    if fields is None:
        fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def write_json(path, result):
    """Write ``result`` as indented JSON."""
    with open(path, "w") as handle:
        json.dump(result, handle, indent=2)


def save_figure(fig, path):
    """Save a matplotlib figure as a 110 dpi PNG, then close it; the path, as text."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def write_results(folder, raw, result, tables):
    """``<name>.csv`` per list of rows in ``raw``, ``summary.json``, ``tables.md``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in raw.items():
        write_csv(folder / f"{name}.csv", rows)
    write_json(folder / "summary.json", result)
    (folder / "tables.md").write_text(tables)


# -- timing and scoring -----------------------------------------------------


def timed(function, *args, **kwargs):
    """``function(*args, **kwargs)`` and its wall time in seconds."""
    start = time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - start


def cpu_timed(function, *args, **kwargs):
    """``function(*args, **kwargs)`` and the CPU seconds this process spent on it.

    Other processes on the machine do not inflate it the way they inflate
    wall time.
    """
    start = time.process_time()
    out = function(*args, **kwargs)
    return out, time.process_time() - start


def detection(mask, truth):
    """Precision, recall and F1 of a boolean outlier mask (NaN without a mask).

    Zero where undefined: precision when nothing is flagged, recall when
    nothing is an outlier, F1 when both.
    """
    if mask is None:
        return {"precision": np.nan, "recall": np.nan, "f1": np.nan}
    p, r, f, _ = precision_recall_fscore_support(
        truth, mask, average="binary", zero_division=0.0
    )
    return {"precision": float(p), "recall": float(r), "f1": float(f)}


def score_mask(mask, truth):
    """:func:`detection` and the share of rows flagged (``flagged``).

    NaN scores when nothing was corrupted (no F1 to compute) or there is no
    mask; ``flagged`` is NaN only without a mask.
    """
    found = detection(mask if truth.any() else None, truth)
    found["flagged"] = np.nan if mask is None else float(np.mean(mask))
    return found


# -- summaries over seeds ---------------------------------------------------


def summarise(rows, keys, metrics, *, median=""):
    """Median, min and max of each metric over the seeds, per group of keys.

    Each entry holds the keys, ``n_seeds``, and per metric ``<metric><median>``,
    ``<metric>_min`` and ``<metric>_max`` over its finite values (None when
    it has none). Groups come in the order they first appear in ``rows``.
    """
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for key, members in groups.items():
        entry = dict(zip(keys, key, strict=True))
        entry["n_seeds"] = len(members)
        for metric in metrics:
            values = [m[metric] for m in members if np.isfinite(m[metric])]
            names = (metric + median, metric + "_min", metric + "_max")
            if values:
                stats = (statistics.median(values), min(values), max(values))
            else:
                stats = (None, None, None)
            entry.update(zip(names, stats, strict=True))
        out.append(entry)
    return out


def spread(entry, metric, fmt, *, median=""):
    """``median (min-max)`` of a summarised metric, ``-`` when it has none.

    The range only when there was more than one seed; ``median`` is the
    suffix :func:`summarise` gave the medians.
    """
    if entry[metric + median] is None:
        return "-"
    text = format(entry[metric + median], fmt)
    if entry["n_seeds"] > 1:
        low, high = entry[metric + "_min"], entry[metric + "_max"]
        text += f" ({format(low, fmt)}-{format(high, fmt)})"
    return text
