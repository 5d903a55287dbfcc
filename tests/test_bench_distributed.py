"""Smoke test of benchmarks/bench_distributed.py (simulated ranks, gloo timings)."""

import csv
import itertools
import json
import math

import pytest

RANKS = {1, 2, 4, 8}
TASKS = {"regression", "classification, 2 classes", "classification, 10 classes"}


def _read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_bench_distributed_quick(tmp_path, run_benchmark):
    run = run_benchmark(
        "bench_distributed.py", "--quick", "--out", tmp_path, timeout=180
    )

    rows = _read_csv(tmp_path / "detection.csv")
    configurations = {
        (r["task"], r["statistics"], float(r["sigma"]), int(r["ranks"])) for r in rows
    }
    assert configurations == set(
        itertools.product(TASKS, {"mean/std", "median/MAD"}, {2.0, 1.5}, RANKS)
    )
    for row in rows:
        assert int(row["rows_per_rank"]) * int(row["ranks"]) == 256
        for metric in ("precision", "recall", "f1", "disagreement"):
            assert 0.0 <= float(row[metric]) <= 1.0
        if row["ranks"] == "1":
            # One rank is the global batch itself.
            assert float(row["disagreement"]) == 0.0

    def f1(task, ranks, statistics="mean/std", sigma="2.0"):
        (row,) = [
            r
            for r in rows
            if (r["task"], r["statistics"], r["sigma"], r["ranks"])
            == (task, statistics, sigma, str(ranks))
        ]
        return float(row["f1"])

    # 8 ranks leave about 3 rows per class and rank with 10 classes: the
    # small-batch regime must show in the detection score.
    task = "classification, 10 classes"
    assert f1(task, 8) < f1(task, 1) - 0.1

    sync = _read_csv(tmp_path / "sync.csv")
    assert {(int(r["batch"]), int(r["n_classes"])) for r in sync} == {
        (256, 2),
        (256, 100),
    }
    for row in sync:
        assert row["world"] == "2" and row["rows_per_rank"] == "128"
        # The synced sums and gathered pairs reproduced the global batch.
        assert row["stats_match"] == "True" and row["mask_match"] == "True"
        times = {k: float(v) for k, v in row.items() if k.endswith("_us")}
        assert len(times) == 14
        assert all(math.isfinite(t) and t > 0 for t in times.values())
        for clock in ("", "_cpu"):
            assert float(row[f"allreduce{clock}_ratio_to_shard_loss"]) == (
                pytest.approx(
                    times[f"allreduce_stats{clock}_us"]
                    / times[f"zerror_loss_shard{clock}_us"]
                )
            )

    summary = json.loads((tmp_path / "summary.json").read_text())
    env = summary["environment"]
    assert {"command", "python", "torch", "numpy", "machine", "seeds"} <= set(env)
    assert env["quick"] is True and env["sync"]["world"] == 2
    tables = (tmp_path / "tables.md").read_text()
    assert "| classification, 10 classes | mean/std | 2 |" in tables
    assert "| 256 | 100 |" in tables and "FAILED" not in tables
    assert tables in run.stdout
