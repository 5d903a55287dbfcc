"""Writing benchmark results."""

import csv


def write_csv(path, rows, fields=None):
    """Write dict rows as CSV; ``fields`` default to the keys in first-seen order."""
    if fields is None:
        fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
