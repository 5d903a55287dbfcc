import csv
import math

import pytest


def test_bench_label_noise_quick(tmp_path, run_benchmark):
    pytest.importorskip("cleanlab")
    out = tmp_path / "label_noise.csv"
    run_benchmark("bench_label_noise.py", "--quick", "--out", out, timeout=300)
    rows = list(csv.DictReader(out.open()))
    assert rows
    f1 = [
        float(value)
        for row in rows
        for key, value in row.items()
        if key.lower().startswith("f1") and value not in ("", None)
    ]
    assert f1 and all(0.0 <= v <= 1.0 for v in f1 if not math.isnan(v))
