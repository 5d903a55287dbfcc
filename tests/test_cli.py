import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from sk_zerror._cli import DEMO_ERRORS, main, make_demo_table

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")


@pytest.fixture
def table_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    frame = pd.DataFrame(X, columns=["temperature", "pressure", "dose"])
    frame["site"] = rng.choice(["north", "south"], size=300)
    frame.insert(0, "sample_id", [f"S{i}" for i in range(300)])
    frame["y"] = (
        2 * X[:, 0] - X[:, 1] + (frame["site"] == "north") + 0.1 * rng.normal(size=300)
    )
    frame.loc[[5, 50, 150], "y"] += 15.0
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def run(args):
    return main([str(a) for a in args])


def test_audit_finds_the_corrupted_rows_and_writes_every_output(
    table_csv, tmp_path, capsys
):
    out = tmp_path / "report"
    before = table_csv.read_bytes()
    code = run(
        ["audit", table_csv, "--target", "y", "--epochs", 60, "--out", out, "--quiet"]
    )
    assert code == 0
    assert table_csv.read_bytes() == before
    flagged = pd.read_csv(out / "flagged.csv")
    assert {5, 50, 150} <= set(flagged["row"])
    assert list(flagged.columns) == [
        "row",
        "sample_id",
        "y",
        "prediction",
        "z_score",
        "masked_fraction",
        "hint",
    ]
    assert flagged["z_score"].abs().is_monotonic_decreasing
    assert flagged.loc[flagged["row"] == 50, "sample_id"].item() == "S50"
    everything = pd.read_csv(out / "all_rows.csv")
    assert everything["flagged"].sum() == len(flagged)
    report = (out / "report.md").read_text()
    assert f"{len(flagged)} of 300 audited rows flagged" in report
    assert f"Top {min(len(flagged), 20)} of {len(flagged)} flagged rows" in report
    assert "lies beyond sigma = 5 robust standard deviations on average" in report
    assert "sample_id" in report and "![zscores.png](zscores.png)" in report
    assert (out / "zscores.png").stat().st_size > 1000
    assert (out / "sigma_schedule.png").exists()
    assert (out / "report.html").stat().st_size > 1000
    assert "rows flagged; report:" in capsys.readouterr().out


def test_binary_classification_audit_draws_the_class_distributions(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    label = np.where(X[:, 0] + X[:, 1] > 0, "active", "inactive")
    label[:10] = np.where(label[:10] == "active", "inactive", "active")
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "label": label})
    path = tmp_path / "assay.parquet"
    frame.to_parquet(path)
    out = tmp_path / "out"
    assert (
        run(
            [
                "audit",
                path,
                "--target",
                "label",
                "--epochs",
                60,
                "--out",
                out,
                "--quiet",
            ]
        )
        == 0
    )
    flagged = pd.read_csv(out / "flagged.csv")
    assert "probability_of_label" in flagged.columns
    # Nearly every flag is a flipped label; flips that land near the class
    # boundary are ambiguous and may stay unflagged.
    assert np.isin(flagged["row"], range(10)).sum() >= 5
    assert np.isin(flagged["row"], range(10)).mean() >= 0.8
    assert (out / "class_distributions.png").exists()
    assert "Task: classification;" in (out / "report.md").read_text()


def test_missing_targets_are_left_out_and_reported(table_csv, tmp_path):
    frame = pd.read_csv(table_csv)
    frame.loc[[3, 7], "y"] = np.nan
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    assert (
        run(["audit", path, "--target", "y", "--epochs", 5, "--out", out, "--quiet"])
        == 0
    )
    report = (out / "report.md").read_text()
    assert "2 row(s) with a missing target were left out of training: rows 3, 7" in (
        report
    )
    rows = pd.read_csv(out / "all_rows.csv")["row"]
    assert len(rows) == 298 and not {3, 7} & set(rows)
    left_out = pd.read_csv(out / "left_out.csv")
    assert left_out["row"].tolist() == [3, 7]
    assert left_out["reason"].tolist() == ["missing target"] * 2


def test_multiclass_audit_ranks_across_classes_and_draws_the_confusion(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(450, 2))
    angle = np.arctan2(X[:, 1], X[:, 0])
    label = np.array(["red", "green", "blue"])[
        ((angle + np.pi) // (2 * np.pi / 3)).astype(int) % 3
    ]
    flipped = rng.choice(450, 15, replace=False)
    label[flipped] = np.where(label[flipped] == "red", "blue", "red")
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "colour": label})
    path = tmp_path / "colours.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    code = run(
        ["audit", path, "--target", "colour", "--epochs", 40, "--out", out, "--quiet"]
    )
    assert code == 0
    everything = pd.read_csv(out / "all_rows.csv")
    # Flagged rows first, each part by the label score, most negative first.
    assert everything["flagged"].is_monotonic_decreasing
    flagged = everything[everything["flagged"]]
    assert flagged["score"].is_monotonic_increasing
    assert everything[~everything["flagged"]]["score"].is_monotonic_increasing
    assert len(flagged) >= 8 and np.isin(flagged["row"], flipped).mean() >= 0.7
    assert (flagged["likely_label"] != flagged["colour"]).all()
    assert (out / "label_confusion.png").stat().st_size > 1000
    assert "flagged labels: " in (out / "report.md").read_text()
    assert (out / "label_scores.png").stat().st_size > 1000


def test_dates_become_features(tmp_path):
    rng = np.random.default_rng(4)
    days = pd.date_range("2020-01-01", periods=400, freq="D")
    season = np.sin(2 * np.pi * days.day_of_year / 365.25)
    frame = pd.DataFrame(
        {
            "date": days.strftime("%Y-%m-%d"),
            "noise": rng.normal(size=400),
            "temperature": 10 + 8 * season + 0.3 * rng.normal(size=400),
        }
    )
    frame.loc[[10, 200], "temperature"] += 30
    path = tmp_path / "weather.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    code = run(
        ["audit", path, "--target", "temperature", "--epochs", 60, "--out", out]
        + ["--quiet"]
    )
    assert code == 0
    report = (out / "report.md").read_text()
    assert "date column 'date' became the features date_time, date_season_sin" in (
        report
    )
    assert "distinct text values" not in report
    flagged = pd.read_csv(out / "flagged.csv")
    assert {10, 200} <= set(flagged["row"])


def test_progress_lines_off_a_terminal_and_quiet(
    table_csv, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr("sk_zerror._audit.PROGRESS_SECONDS", 0.0)
    args = ["audit", table_csv, "--target", "y", "--epochs", 3, "--sigma", 3]
    assert run(args + ["--out", tmp_path / "a"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("training:")]
    # One line per epoch at a zero interval, and a last one at the end.
    assert [line.split(",")[0] for line in lines] == [
        "training: epoch 1/3",
        "training: epoch 2/3",
        "training: epoch 3/3",
        "training: epoch 3/3",
    ]
    assert "masked" in lines[0] and "\r" not in err
    assert run(args + ["--out", tmp_path / "b", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_batch_size_and_device_reach_the_model(table_csv, tmp_path):
    out = tmp_path / "out"
    code = run(
        ["audit", table_csv, "--target", "y", "--epochs", 2, "--batch-size", 50]
        + ["--device", "cpu", "--out", out, "--quiet"]
    )
    assert code == 0
    assert "epochs: 2; batch size: 50; device: cpu." in (out / "report.md").read_text()


def write_table(path, kind):
    rng = np.random.default_rng(5)
    n = 120
    x = rng.normal(size=n)
    frames = {
        "csv": pd.DataFrame({"a": x, "y": 2 * x + rng.normal(size=n)}),
        "constant": pd.DataFrame({"a": x, "y": 4.0}),
        "ids": pd.DataFrame({"id": np.arange(n), "y": x}),
        "inf": pd.DataFrame({"a": x, "y": np.where(np.arange(n) == 3, np.inf, x)}),
        "binary": pd.DataFrame({"a": x, "y": (x > 0).astype(int)}),
        "all_nan": pd.DataFrame({"a": x, "y": np.nan}),
        "two_rows": pd.DataFrame({"a": [1.0, 2.0], "y": [1.0, 3.0]}),
    }
    if kind == "one_column":  # the separator sniffer used to split the header
        pd.DataFrame({"y": x}).to_csv(path, index=False)
    elif kind == "repeated_target":  # pandas renames the copy y.1
        path.write_text("a,y,y\n" + "".join(f"{v},{v},{v}\n" for v in x))
    elif kind == "latin1":
        frame = pd.DataFrame({"site": ["Montréal", "Québec"] * (n // 2), "y": x})
        frame.to_csv(path, index=False, encoding="latin-1")
    elif kind == "classes":  # 10,000 classes of 5 rows: out of memory before
        labels = np.repeat([f"class{i}" for i in range(10_000)], 5)
        frame = pd.DataFrame({"a": np.arange(len(labels)) % 7, "y": labels})
        frame.to_csv(path, index=False)
    elif kind == "nested_target":
        path = path.with_suffix(".parquet")
        pd.DataFrame({"a": x, "y": [[v, v] for v in x]}).to_parquet(path)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "blank":
        path.write_text("\n\n")
    elif kind == "header":
        path.write_text("a,b,y\n")
    elif kind == "xlsx":
        path = path.with_suffix(".xlsx")
        path.write_text("not a spreadsheet")
    elif kind == "parquet_garbage":
        path = path.with_suffix(".parquet")
        path.write_bytes(b"definitely not parquet")
    elif kind in frames:
        frames[kind].to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "kind, extra, message",
    [
        (None, [], "no such file: "),
        ("xlsx", [], "unsupported file type '.xlsx'"),
        ("empty", [], "the file .* is empty"),
        ("blank", [], "is empty \\(only blank lines\\)"),
        ("header", [], "has a header \\(3 columns\\) but no data rows"),
        ("csv", ["--target", "nope"], "target column 'nope' not found"),
        ("constant", [], "has 1 distinct value"),
        ("ids", [], "no usable feature column"),
        ("all_nan", [], "all 120 values of target column 'y' are missing"),
        ("two_rows", [], "only 2 row\\(s\\) have a usable target .* at least 10"),
        (
            "binary",
            ["--task", "regression"],
            "only 2 distinct values \\(0, 1\\): these are class labels.*"
            "--task classification",
        ),
        (
            "csv",
            ["--task", "classification"],
            "looks continuous \\(120 distinct non-integer numbers\\).*"
            "--task regression",
        ),
        ("parquet_garbage", [], "cannot read .* as parquet"),
        ("csv", ["--sigma", "nan"], "--sigma: must be a finite number > 0, got nan"),
        ("csv", ["--sigma", "inf"], "--sigma: must be a finite number > 0, got inf"),
        ("csv", ["--sigma", "0"], "--sigma: must be a finite number > 0, got 0"),
        ("csv", ["--sigma", "lots"], "--sigma: must be 'auto' or a number"),
        ("csv", ["--epochs", "0"], "--epochs: must be a whole number >= 1, got 0"),
        ("csv", ["--batch-size", "x"], "--batch-size: must be a whole number"),
        ("csv", ["--device", "tpu"], "--device: must be cpu, cuda, cuda:N or auto"),
        ("csv", ["--out", "."], "output folder . is the current directory"),
        (
            "one_column",
            [],
            "the file .* has one column \\('y'\\): an audit learns the target "
            "from other columns, so there is nothing to learn from",
        ),
        (
            "repeated_target",
            [],
            "the header names the target column 'y' 2 times; the copies would be "
            "learnt from as features",
        ),
        (
            "latin1",
            [],
            "can't decode byte 0xe9 .*; give the file's encoding with --encoding "
            "\\(e.g. --encoding latin-1 or --encoding cp1252\\), or save it as UTF-8",
        ),
        (
            "classes",
            [],
            "target column 'y' has 10000 classes; an audit handles at most 50",
        ),
        (
            "nested_target",
            [],
            "target column 'y' holds lists or structures \\(nested values\\)",
        ),
        (
            "csv",
            ["--sigma", "1e-300"],
            "--sigma: must be between 0.1 and 1000 robust standard deviations, got "
            "1e-300",
        ),
        ("csv", ["--sigma", "1e308"], "--sigma: must be between 0.1 and 1000"),
        ("csv", ["--encoding", "klingon"], "--encoding: unknown encoding 'klingon'"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(
    tmp_path, capsys, monkeypatch, kind, extra, message
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data.csv"
    if kind is not None:
        path = write_table(path, kind)
    args = ["audit", str(path)] + (extra if "--target" in extra else ["--target", "y"])
    args += [a for a in extra if a not in ("--target", "nope")]
    if "--out" not in extra:
        args += ["--out", str(tmp_path / "out")]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert main(args + ["--force", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_a_batch_larger_than_the_table_is_all_its_rows(table_csv, tmp_path):
    # --batch-size 1000000000 on 300 rows was killed for its memory.
    out = tmp_path / "out"
    code = run(
        ["audit", table_csv, "--target", "y", "--epochs", 1, "--quiet"]
        + ["--batch-size", 1_000_000_000, "--out", out]
    )
    assert code == 0
    report = (out / "report.md").read_text()
    assert "epochs: 1; batch size: 300; device: cpu." in report
    assert "batch-size 1000000000 is more than the 300 audited rows" in report


def test_non_finite_and_unreadable_targets_are_left_out_and_listed(tmp_path):
    rng = np.random.default_rng(6)
    x = rng.normal(size=150)
    y = (3 * x + 0.1 * rng.normal(size=150)).round(3).astype(object)
    y[4], y[9], y[12] = "n/a?", np.inf, "-inf"
    frame = pd.DataFrame({"a": x, "y": y})
    path = tmp_path / "odd.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    assert (
        run(["audit", path, "--target", "y", "--epochs", 5, "--out", out, "--quiet"])
        == 0
    )
    report = (out / "report.md").read_text()
    assert "task: regression" in report.lower()
    assert "1 row(s) with a target that is not a number were left out" in report
    assert (
        "2 row(s) with a non-finite target were left out of training: rows 9, 12"
        in (report)
    )
    left_out = pd.read_csv(out / "left_out.csv")
    assert left_out["row"].tolist() == [4, 9, 12]
    assert len(pd.read_csv(out / "all_rows.csv")) == 147


def test_small_tables_get_a_warning(tmp_path, capsys):
    rng = np.random.default_rng(7)
    x = rng.normal(size=30)
    path = tmp_path / "small.csv"
    pd.DataFrame({"a": x, "y": x + 0.1 * rng.normal(size=30)}).to_csv(path, index=False)
    out = tmp_path / "out"
    assert (
        run(["audit", path, "--target", "y", "--epochs", 2, "--out", out, "--quiet"])
        == 0
    )
    err = capsys.readouterr().err
    assert "sk-zerror: warning: only 30 rows: the robust centre and spread" in err
    assert "only 30 rows" in (out / "report.md").read_text()


def test_demo_table_injects_each_kind_of_error():
    table, truth, kinds = make_demo_table(seed=0)
    assert truth.sum() == 40 and list(table.columns[:2]) == ["id", "age"]
    for kind in DEMO_ERRORS:
        assert (kinds == kind).sum() == 10
    from sklearn.datasets import load_diabetes

    original = load_diabetes().target
    assert np.allclose(table["target"][~truth], original[~truth])
    slips = kinds == "decimal slip x10"
    assert np.allclose(table["target"][slips], 10 * original[slips])


def test_python_dash_m_is_the_same_command():
    result = subprocess.run(
        [sys.executable, "-m", "sk_zerror", "audit", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--target" in result.stdout and "built-in demo" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "--help"],
        ["audit", "--sigma", "nan"],
        ["audit", "--sigma", "1e308"],
        ["audit", "--encoding", "klingon"],
        ["audit", "data.csv"],
    ],
)
def test_help_and_argument_errors_import_no_heavy_library(args):
    # The start-up time of the command is that of numpy, not torch: measured
    # in benchmarks/bench_audit.py; here, which libraries were imported.
    code = (
        "import sys\n"
        "from sk_zerror._cli import main\n"
        f"main({args!r})\n"
        "heavy = {'torch', 'sklearn', 'scipy', 'pandas', 'skorch', 'matplotlib'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


ROOT = Path(__file__).resolve().parents[1]


def start_audit(args, cwd, prelude=""):
    """``sk-zerror audit ARGS`` in a subprocess, a progress line at every epoch.

    ``prelude`` is Python run before the command, to slow or gate a step.
    """
    code = "\n".join(
        [
            "import sys, time",
            "import sk_zerror._audit",
            "sk_zerror._audit.PROGRESS_SECONDS = 0.0",
            prelude,
            "from sk_zerror._cli import main",
            f"sys.exit(main({['audit', *map(str, args)]!r}))",
        ]
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process, start, timeout=240):
    """Read the process's stderr up to a line that starts with ``start``."""
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        lines = []
        for line in process.stderr:
            lines.append(line)
            if line.startswith(start):
                return lines
        raise AssertionError(f"no line starting {start!r}: {''.join(lines)}")
    finally:
        timer.cancel()


def files_under(folder):
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_training_stops_the_audit_and_writes_nothing(
    table_csv, tmp_path, signum, code
):
    # skorch's fit swallows KeyboardInterrupt: the audit used to go on and
    # write a report of the half-trained model over the earlier one.
    assert (
        run(
            ["audit", table_csv, "--target", "y", "--epochs", 1, "--quiet"]
            + ["--out", tmp_path / "report"]
        )
        == 0
    )
    before = files_under(tmp_path)
    process = start_audit(
        [table_csv, "--target", "y", "--epochs", 100_000, "--force"]
        + ["--out", "report"],
        cwd=tmp_path,
    )
    wait_for_line(process, "training: epoch")
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    name = signal.Signals(signum).name
    assert err.strip().splitlines()[-1] == (
        f"sk-zerror: interrupted ({name}); nothing was written"
    )
    assert "Traceback" not in err
    assert files_under(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "report"]


def test_sigterm_while_writing_leaves_no_staging_folder(table_csv, tmp_path):
    slow_figures = (
        "import sk_zerror._report as report\n"
        "def slow(result, folder):\n"
        "    print('writing figures', file=sys.stderr, flush=True)\n"
        "    time.sleep(120)\n"
        "report._figures = slow"
    )
    process = start_audit(
        [table_csv, "--target", "y", "--epochs", 1, "--out", "report"],
        cwd=tmp_path,
        prelude=slow_figures,
    )
    wait_for_line(process, "writing figures")
    assert [p.name for p in tmp_path.glob(".report.staging-*")]
    process.terminate()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "interrupted (SIGTERM); nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


def test_a_second_audit_into_a_claimed_folder_exits_2(table_csv, tmp_path, capsys):
    # The first audit holds the folder (new when it started) until told to
    # train; the second starts meanwhile.
    gate = (
        "import os, sk_zerror._audit as audit\n"
        "fit = audit.fit_audit\n"
        "def gated(*args, **kwargs):\n"
        "    print('claimed', file=sys.stderr, flush=True)\n"
        "    while not os.path.exists('go'):\n"
        "        time.sleep(0.05)\n"
        "    return fit(*args, **kwargs)\n"
        "audit.fit_audit = gated"
    )
    args = [table_csv, "--target", "y", "--epochs", 1, "--out", "report", "--quiet"]
    first = start_audit(args, cwd=tmp_path, prelude=gate)
    wait_for_line(first, "claimed")
    for force in ([], ["--force"]):
        assert run(["audit", *args[:-3], "--out", tmp_path / "report", *force]) == 2
        err = capsys.readouterr().err
        assert f"is being written by another sk-zerror audit (process {first.pid}" in (
            err
        )
        assert len(err.strip().splitlines()) == 1
    (tmp_path / "go").touch()
    out, err = first.communicate(timeout=240)
    assert first.returncode == 0, err
    assert "rows flagged; report: report/report.html" in out
    assert (tmp_path / "report" / "report.html").exists()
    assert not (tmp_path / "report" / ".sk-zerror-audit.lock").exists()
