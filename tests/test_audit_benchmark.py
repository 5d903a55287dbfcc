"""Smoke test of benchmarks/bench_audit.py (the audit command on real tables)."""

import csv
import json

import pytest

pytest.importorskip("vega_datasets")
pytest.importorskip("statsmodels")


def _read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_bench_audit_quick(tmp_path, run_benchmark):
    run_benchmark("bench_audit.py", "--quick", "--out", tmp_path, timeout=300)
    (case,) = _read_csv(tmp_path / "cases.csv")
    assert case["case"] == "cars: Weight_in_lbs" and case["errors"] == "injected"
    assert int(case["rows"]) == 406 and int(case["injected"]) == 20
    flagged = int(case["flagged"])
    assert float(case["flagged_share"]) == pytest.approx(flagged / 406)
    assert 0.0 <= float(case["precision"]) <= 1.0
    assert 0.0 <= float(case["recall"]) <= 1.0 and float(case["cpu_s"]) > 0
    startup = {
        row["command"]: float(row["wall_s_median"])
        for row in _read_csv(tmp_path / "startup.csv")
    }
    assert set(startup) == {"audit --help", "argument error (--sigma nan)"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["environment"]["quick"] is True
    assert summary["environment"]["seeds"] == [0]
    tables = (tmp_path / "tables.md").read_text()
    assert "| cars: Weight_in_lbs | injected | 406 |" in tables
