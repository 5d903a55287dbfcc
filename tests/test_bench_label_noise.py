import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_label_noise.py"


def test_bench_label_noise_quick(tmp_path):
    pytest.importorskip("cleanlab")
    out = tmp_path / "label_noise.csv"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    rows = list(csv.DictReader(out.open()))
    assert rows
    f1 = [
        float(value)
        for row in rows
        for key, value in row.items()
        if key.lower().startswith("f1") and value not in ("", None)
    ]
    assert f1 and all(0.0 <= v <= 1.0 for v in f1 if not math.isnan(v))
