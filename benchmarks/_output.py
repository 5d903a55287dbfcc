"""Writing benchmark results."""

import csv
import json


def write_csv(path, rows, fields=None):
    """Write dict rows as CSV; ``fields`` default to the keys in first-seen order."""
    if fields is None:
        fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def write_results(folder, raw, result, tables):
    """``<name>.csv`` per list of rows in ``raw``, ``summary.json``, ``tables.md``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in raw.items():
        write_csv(folder / f"{name}.csv", rows)
    with open(folder / "summary.json", "w") as handle:
        json.dump(result, handle, indent=2)
    (folder / "tables.md").write_text(tables)
