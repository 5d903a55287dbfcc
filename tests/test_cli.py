import subprocess
import sys

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


def run(args, capsys=None):
    code = main([str(a) for a in args])
    return code


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
        "flagged",
    ]
    assert flagged["z_score"].abs().is_monotonic_decreasing
    assert flagged.loc[flagged["row"] == 50, "sample_id"].item() == "S50"
    report = (out / "report.md").read_text()
    assert f"**{len(flagged)} of 300 rows flagged**" in report
    assert "sample_id" in report and "![zscores.png](zscores.png)" in report
    assert (out / "zscores.png").stat().st_size > 1000
    assert (out / "sigma_schedule.png").exists()
    assert "rows flagged; report:" in capsys.readouterr().out


def test_existing_output_is_kept_without_force(table_csv, tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code = run(["audit", table_csv, "--target", "y", "--out", out, "--epochs", 2])
    assert code == 2
    assert "already exists and is not empty; use --force" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    code = run(
        [
            "audit",
            table_csv,
            "--target",
            "y",
            "--out",
            out,
            "--epochs",
            2,
            "--force",
            "--quiet",
        ]
    )
    assert code == 0
    assert not (out / "keep.txt").exists() and (out / "report.md").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


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
    # Every flag is a flipped label; flips that land near the class boundary
    # are ambiguous and may stay unflagged.
    assert set(flagged["row"]) <= set(range(10)) and len(flagged) >= 4
    assert (out / "class_distributions.png").exists()
    assert "task: **classification**" in (out / "report.md").read_text()


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
    assert "2 row(s) have no target and were left out of training: rows 3, 7" in report
    rows = pd.read_csv(out / "all_rows.csv")["row"]
    assert len(rows) == 298 and not {3, 7} & set(rows)


@pytest.mark.parametrize(
    "make, args, message",
    [
        (None, ["audit", "missing.csv", "--target", "y"], "no such file: "),
        ("text", ["audit", "{path}", "--target", "y"], "unsupported file type '.xlsx'"),
        (
            "csv",
            ["audit", "{path}", "--target", "nope"],
            "target column 'nope' not found",
        ),
        ("constant", ["audit", "{path}", "--target", "y"], "has 1 distinct value"),
        ("ids", ["audit", "{path}", "--target", "y"], "no usable feature column"),
        ("csv", ["audit", "{path}"], "--target COLUMN is required"),
        (
            "csv",
            ["audit", "{path}", "--target", "y", "--sigma", "0"],
            "--sigma must be > 0",
        ),
        ("parquet_garbage", ["audit", "{path}", "--target", "y"], "cannot read"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path, capsys, make, args, message):
    path = tmp_path / "data.csv"
    if make == "text":
        path = tmp_path / "data.xlsx"
        path.write_text("not a spreadsheet")
    elif make == "csv":
        pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 5.0]}).to_csv(
            path, index=False
        )
    elif make == "constant":
        pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [4.0, 4.0, 4.0]}).to_csv(
            path, index=False
        )
    elif make == "ids":
        pd.DataFrame({"id": [1, 2, 3], "y": [1.0, 2.0, 3.0]}).to_csv(path, index=False)
    elif make == "parquet_garbage":
        path = tmp_path / "data.parquet"
        path.write_bytes(b"definitely not parquet")
    args = [a.replace("{path}", str(path)) for a in args]
    code = main(args + ["--out", str(tmp_path / "out"), "--quiet"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


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
