"""Timing, scoring and summarising benchmark rows over seeds."""

import statistics
import time

import numpy as np
from sklearn.metrics import precision_recall_fscore_support


def timed(function, *args, **kwargs):
    """``function(*args, **kwargs)`` and its wall time in seconds."""
    start = time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - start


def detection(mask, truth):
    """Precision, recall and F1 of a boolean outlier mask (NaN without a mask)."""
    if mask is None:
        return {"precision": np.nan, "recall": np.nan, "f1": np.nan}
    p, r, f, _ = precision_recall_fscore_support(
        truth, mask, average="binary", zero_division=0.0
    )
    return {"precision": float(p), "recall": float(r), "f1": float(f)}


def summarise(rows, keys, metrics):
    """Median, min and max of each metric over the seeds, per group of keys."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for key, members in groups.items():
        entry = dict(zip(keys, key, strict=True))
        entry["n_seeds"] = len(members)
        for metric in metrics:
            values = [m[metric] for m in members if np.isfinite(m[metric])]
            if values:
                entry[metric] = statistics.median(values)
                entry[metric + "_min"] = min(values)
                entry[metric + "_max"] = max(values)
            else:
                entry[metric] = entry[metric + "_min"] = entry[metric + "_max"] = None
        out.append(entry)
    return out


def spread(entry, metric, fmt):
    """``median (min-max)`` of a summarised metric, ``-`` when it has none."""
    if entry[metric] is None:
        return "-"
    text = format(entry[metric], fmt)
    if entry["n_seeds"] > 1:
        low, high = entry[metric + "_min"], entry[metric + "_max"]
        text += f" ({format(low, fmt)}-{format(high, fmt)})"
    return text
