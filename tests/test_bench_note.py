"""Smoke test of the scripts that reproduce the technical note's batch-size study."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

STUDIES = Path(__file__).resolve().parents[1] / "benchmarks" / "studies"
SCRIPTS = ("bench_note_batch_size.py", "bench_note_fit_stability.py")


def _read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_note_scripts_quick(tmp_path):
    # Both scripts at once: each is single-threaded, and the suite has 2 cores.
    runs = []
    for script in SCRIPTS:
        out = tmp_path / Path(script).stem
        command = [
            sys.executable,
            str(STUDIES / script),
            "--quick",
            "--out",
            str(out),
            "--figures",
            str(out / "figures"),
        ]
        runs.append(
            (
                script,
                subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                ),
            )
        )
    for script, process in runs:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, f"{script} failed:\n{stderr}"
        assert "|" in stdout, f"{script} printed no table"

    detection = tmp_path / "bench_note_batch_size"
    summary = _read_csv(detection / "note_batch_size_summary.csv")
    assert summary
    for row in summary:
        for stat in ("median", "min", "max"):
            for metric in ("precision", "recall", "f1"):
                assert 0.0 <= float(row[f"{metric}_{stat}"]) <= 1.0
    report = json.loads((detection / "note_batch_size.json").read_text())
    assert {"python", "torch", "numpy", "scipy", "machine", "command"} <= set(
        report["environment"]
    )
    assert report["findings"]
    assert all(0.0 <= row["f1_median"] <= 1.0 for row in report["summary"])
    assert sorted(p.name for p in (detection / "figures").glob("*.png")) == [
        "note_batch_size_f1.png",
        "note_batch_size_precision_recall.png",
    ]

    stability = tmp_path / "bench_note_fit_stability"
    summary = _read_csv(stability / "note_fit_stability_summary.csv")
    assert summary
    for row in summary:
        for fit in ("gauss", "skew"):
            spread = float(row[f"{fit}_cutoff_std_median"])
            assert math.isfinite(spread) and spread >= 0.0
            assert 0.0 <= float(row[f"{fit}_failure_rate_median"]) <= 1.0
    report = json.loads((stability / "note_fit_stability.json").read_text())
    assert report["environment"]["quick"] is True
    assert (stability / "figures" / "note_fit_stability.png").is_file()
