"""Writing an audit's outputs: the CSV files, the figures and both reports.

Everything is written into a staging folder next to the output folder
claimed before training (:mod:`sk_zerror._output_folder`, which also checks
that folder and swaps the staging folder into place), so an interrupted run
leaves the old outputs intact.
"""

import base64
import html
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ._audit import row_values
from ._escape import markdown_code, markdown_text, write_csv
from ._hints import format_number
from ._interrupt import held
from ._output_folder import MARKER, MARKER_KIND, claim_output_folder, swap_into_place
from ._table import AuditError

# Rows of flagged.csv shown in report.md and report.html.
MARKDOWN_ROWS = 20
HTML_ROWS = 1000


class _Scores(tuple):
    """Scores and flags for plot_zscores, without a band (no threshold)."""

    @property
    def scores(self):
        return self[0]

    @property
    def mask(self):
        return self[1]


def _figure_captions(result):
    """What each figure of the report plots, by file name."""
    est = result.estimator
    captions = {
        "sigma_schedule.png": (
            "sigma (left axis) and the share of rows masked (right axis) in each "
            "epoch of the first training run, the one over every row"
        ),
        "class_distributions.png": (
            "for two classes: the distributions of the network's logit for the "
            "rows of each given class, with the decision cutoff"
        ),
        "label_confusion.png": (
            "the flagged rows counted by given label (rows) and the label the "
            "model finds likely (columns)"
        ),
    }
    if result.task == "regression":
        captions["zscores.png"] = (
            "histogram of z_score (each row's mean residual z-score over the "
            f"first run), flagged rows in red, dashed lines at ±{est.sigma:g}"
        )
    else:
        captions["label_scores.png"] = (
            "histogram of score (the given label's log-odds z-scored within "
            "its class; negative: less confident than the class's typical "
            "row), flagged rows in red; the count of flags, not a cut on the "
            "score, decides"
        )
    return captions


def _figures(result, folder):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import (
        plot_class_distributions,
        plot_label_confusion,
        plot_sigma_schedule,
        plot_zscores,
    )

    est = result.estimator

    def label_scores(ax):
        scores = _Scores((est.outlier_scores_, est.outlier_mask_))
        plot_zscores(scores, ax=ax)
        ax.set_xlabel("score: z-score of the given label's log-odds in its class")
        ax.set_title("Label scores (negative: doubtful label), flagged in red")

    if result.task == "regression":
        drawings = [("zscores.png", lambda ax: plot_zscores(result.model, ax=ax))]
    else:
        drawings = [("label_scores.png", label_scores)]
    drawings.append(
        ("sigma_schedule.png", lambda ax: plot_sigma_schedule(result.model, ax=ax))
    )
    if result.task == "classification":
        if len(est.classes_) == 2:
            drawings.append(
                (
                    "class_distributions.png",
                    lambda ax: plot_class_distributions(
                        result.model, result.features, result.labels, ax=ax
                    ),
                )
            )
        flagged = result.flagged
        drawings.append(
            (
                "label_confusion.png",
                lambda ax: plot_label_confusion(
                    flagged[result.target].to_numpy(),
                    flagged["likely_label"].to_numpy(),
                    labels=est.classes_,
                    ax=ax,
                ),
            )
        )
    names = []
    for name, draw in drawings:
        fig, ax = plt.subplots(figsize=(7, 4))
        draw(ax)
        fig.tight_layout()
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)
        names.append(name)
    return names


def _cell_text(value):
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, float | np.floating | int | np.integer):
        return format_number(value)
    return str(value)


def _markdown_cell(value):
    """A table cell that cannot break the table or inject markup."""
    return markdown_text(_cell_text(value))


def _markdown_table(frame):
    header = "| " + " | ".join(_markdown_cell(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = [
        "| " + " | ".join(_markdown_cell(v) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


def _summary_lines(result):
    """The report's settings and findings, as plain sentences."""
    flagged = result.flagged
    sigma = (
        "None (no in-batch masking)"
        if result.sigma is None
        else ", ".join(f"{v:g}" for v in np.atleast_1d(result.sigma))
    )
    lines = [
        f"Task: {result.task}; rows in the file: {result.n_rows}; rows audited: "
        f"{len(result.table)}; epochs: {result.epochs}; batch size: "
        f"{result.batch_size}; device: {result.device}.",
        f"Model: {type(result.estimator).__name__} at its defaults except the "
        f"options given on the command line; sigma = {sigma}.",
        f"Flag rule: {result.rule}.",
        result.training,
        f"{len(flagged)} of {len(result.table)} audited rows flagged "
        f"({len(flagged) / max(len(result.table), 1):.1%}).",
        "Features used: " + (", ".join(map(str, result.used_columns)) or "none") + ".",
        "Id columns (reported, not learnt from): "
        + (", ".join(map(str, result.id_columns)) or "none")
        + ".",
    ]
    return [line for line in lines if line]


def _column_definitions(result):
    """(column, meaning) for every column of the flagged-rows table."""
    target = str(result.target)
    scale = "log(1 + target)" if result.log_target else "the target"
    rows = [
        ("row", "0-based position of the row in the input file's data"),
        *((str(c), "id column, as in the file") for c in result.id_columns),
        (target, "the recorded target, as in the file"),
    ]
    if result.task == "regression":
        rows += [
            (
                "prediction",
                "the fitted network's prediction for the row, on the target's "
                "own scale (the retrained network, when there was a retrain)",
            ),
            (
                "z_score",
                f"the row's residual of {scale} (recorded minus predicted), "
                "z-scored in each training batch against the batch's median and "
                "MAD, averaged over the first training run (outlier_scores_); "
                "positive: the recorded value is too high",
            ),
        ]
    else:
        rows += [
            (
                "likely_label",
                "the class other than the given one that the fitted network "
                "finds most likely",
            ),
            (
                "probability_of_likely_label",
                "the network's probability of likely_label",
            ),
            ("probability_of_label", "the network's probability of the given label"),
            (
                "score",
                "z-score of the given label's log-odds (averaged over training) "
                "among the rows of the same given class (outlier_scores_); "
                "negative: less confident in its label than the class's typical "
                "row; scores of different classes do not compare",
            ),
        ]
    rows += [
        (
            "masked_fraction",
            "share of the first training run's epochs in which the row was "
            "masked (left out of the loss) in its batch (outlier_frequency_); "
            "near 1: refused from the start; nan (empty in the CSV files) for a "
            "row held out of that run to decide when to stop",
        ),
        (
            "hint",
            "a data-entry error that would explain the row, where one fits: a "
            "decimal slip, a unit factor, swapped digits, a likely other label "
            "(a guess to check, not a finding)",
        ),
        (
            "feature values",
            "the row's other columns as in the file (all of a narrow table; "
            "else the first columns and those where the row lies furthest from "
            "the median, with their robust z-score)",
        ),
    ]
    return rows


def _shown_rows(result, limit):
    """The first ``limit`` flagged rows, with their feature values."""
    shown = result.shown_flagged.head(limit).copy()
    shown["feature values"] = row_values(result, range(len(shown)))
    return shown


def _note_items(notes):
    """Notes as (text, nested): lines indented in the source nest."""
    return [(note.strip(), note[:1].isspace()) for note in notes]


def render_report(result, command, figures, extra=()):
    """The report's markdown text."""
    from . import __version__

    flagged = result.shown_flagged
    shown = _shown_rows(result, MARKDOWN_ROWS)
    summary = _summary_lines(result)
    lines = [
        "# sk-zerror audit report",
        "",
        f"Command: {markdown_code(command)}  ",
        f"sk_zerror {__version__}.",
        "",
        *(f"- {markdown_text(line, block=True)}" for line in summary),
    ]
    for note, nested in _note_items([*result.notes, *extra]):
        lines.append(f"{'  ' if nested else ''}- {markdown_text(note, block=True)}")
    lines += ["", "## Most suspicious rows", ""]
    if len(flagged):
        lines += [
            f"Top {len(shown)} of {len(flagged)} flagged rows; all of them are in "
            "flagged.csv, every audited row in all_rows.csv.",
            "",
            _markdown_table(shown),
        ]
    else:
        lines.append("No row flagged; every audited row is in all_rows.csv.")
    lines += ["", "### Columns", ""]
    lines += [
        f"- {markdown_code(name)}: {markdown_text(meaning, block=True)}"
        for name, meaning in _column_definitions(result)
    ]
    if len(result.left_out):
        lines += [
            "",
            "## Rows left out of the audit",
            "",
            _markdown_table(result.left_out),
        ]
    lines += ["", "`row` is the 0-based position of the row in the input file's data."]
    lines += ["", "## Figures", ""]
    captions = _figure_captions(result)
    for name in figures:
        lines += [f"![{name}]({name})", "", f"{name}: {captions.get(name, '')}.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


HTML_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em}
code{background:#f3f3f3;padding:0 .2em;word-break:break-all}
table{border-collapse:collapse;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left}
th{background:#eef;cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
tr:nth-child(even) td{background:#fafafa}
input{font-size:1em;padding:.2em;width:20em}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}
"""

# Sorts the flagged-rows table by a clicked column (numbers as numbers) and
# filters it by the text typed in the box; #sort=COLUMN&q=TEXT in the
# address does the same on load. It reads and writes only text content.
HTML_SCRIPT = """
(function(){
var table=document.getElementById("flagged");
if(!table){return;}
var body=table.tBodies[0],heads=table.tHead.rows[0].cells;
var box=document.getElementById("filter"),count=document.getElementById("shown");
function key(cell){var t=cell.textContent,n=parseFloat(t);
  return (t.trim()!==""&&isFinite(t))?n:t.toLowerCase();}
function sortBy(i,dir){var rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);
    if(typeof x!==typeof y){x=String(x);y=String(y);}
    return (x<y?-1:x>y?1:0)*dir;});
  rows.forEach(function(r){body.appendChild(r);});
  for(var j=0;j<heads.length;j++){heads[j].removeAttribute("aria-sort");}
  heads[i].setAttribute("aria-sort",dir>0?"ascending":"descending");}
function filter(){var q=box.value.toLowerCase(),n=0;
  Array.prototype.forEach.call(body.rows,function(r){
    var hit=r.textContent.toLowerCase().indexOf(q)>=0;
    r.hidden=!hit;if(hit){n++;}});
  count.textContent=String(n);}
Array.prototype.forEach.call(heads,function(h,i){h.addEventListener("click",
  function(){sortBy(i,h.getAttribute("aria-sort")==="ascending"?-1:1);});});
box.addEventListener("input",filter);
var params=new URLSearchParams(location.hash.slice(1));
if(params.has("sort")){for(var i=0;i<heads.length;i++){
  if(heads[i].textContent===params.get("sort")){
    sortBy(i,params.get("order")==="descending"?-1:1);}}}
if(params.has("q")){box.value=params.get("q");}
filter();
})();
"""

# Nothing may load from the network: images are inline, style and script too.
HTML_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'"
)


def _html_table(frame, table_id=None):
    e = html.escape
    attribute = f' id="{table_id}"' if table_id else ""
    head = "".join(f'<th scope="col">{e(str(c))}</th>' for c in frame.columns)
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{e(_cell_text(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return (
        f"<table{attribute}><thead><tr>{head}</tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody></table>"
    )


def _html_notes(notes):
    """Notes as list items; indented lines nest under the one before."""
    e = html.escape
    items = []
    for note, nested in _note_items(notes):
        if nested and items:
            items[-1].append(note)
        else:
            items.append([note])
    return [
        f"<li>{e(first)}"
        + ("<ul>" + "".join(f"<li>{e(n)}</li>" for n in rest) + "</ul>" if rest else "")
        + "</li>"
        for first, *rest in items
    ]


def render_html(result, command, folder, figures, extra=()):
    """The self-contained ``report.html``: escaped data, inline figures."""
    from . import __version__

    e = html.escape
    flagged = result.shown_flagged
    shown = _shown_rows(result, HTML_ROWS)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{HTML_POLICY}">',
        "<title>sk-zerror audit report</title>",
        f"<style>{HTML_STYLE}</style></head><body>",
        "<h1>sk-zerror audit report</h1>",
        f"<p>Command: <code>{e(command)}</code><br>sk_zerror {e(__version__)}</p>",
        "<h2>Summary</h2><ul>",
        *(f"<li>{e(line)}</li>" for line in _summary_lines(result)),
        *_html_notes([*result.notes, *extra]),
        "</ul>",
    ]
    if figures:
        parts.append("<h2>Figures</h2>")
    captions = _figure_captions(result)
    for name in figures:
        data = base64.b64encode((folder / name).read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img alt="{e(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{e(name)}: {e(captions.get(name, ''))}</figcaption>"
            "</figure>"
        )
    parts.append("<h2>Flagged rows</h2>")
    if len(flagged):
        more = (
            f" (the first {len(shown)} of {len(flagged)}; all in flagged.csv)"
            if len(shown) < len(flagged)
            else " (also in flagged.csv)"
        )
        parts += [
            f"<p>{len(flagged)} flagged rows, most suspicious first{e(more)}. "
            "Click a column to sort; type to filter.</p>",
            '<p><label>Filter: <input id="filter" type="search" '
            'placeholder="any text in the row"></label> '
            f'<span id="shown">{len(shown)}</span> rows shown</p>',
            _html_table(shown, "flagged"),
        ]
    else:
        parts.append("<p>No row flagged.</p>")
    parts.append("<h3>Columns</h3><dl>")
    parts += [
        f"<dt><code>{e(name)}</code></dt><dd>{e(meaning)}</dd>"
        for name, meaning in _column_definitions(result)
    ]
    parts.append("</dl>")
    if len(result.left_out):
        parts += ["<h2>Rows left out of the audit</h2>", _html_table(result.left_out)]
    parts.append(
        "<p><code>row</code> is the 0-based position of the row in the input "
        "file's data.</p>"
    )
    parts += [f"<script>{HTML_SCRIPT}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"


def write_outputs(
    result, out, *, force, command, inputs=(), extra_notes=(), claim=None
):
    """Write the outputs into a staging folder, then move it into place.

    ``claim`` is the :class:`OutputClaim` taken before training; without
    one, the folder is claimed now and released at the end.
    """
    if claim is not None:
        return _write_claimed(result, claim, command, extra_notes)
    claim = claim_output_folder(out, force=force, inputs=inputs)
    try:
        return _write_claimed(result, claim, command, extra_notes)
    finally:
        claim.release()


def _write_claimed(result, claim, command, extra_notes):
    out, staging = claim.out, None
    try:
        with held():
            staging = Path(
                tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent)
            )
        # mkdtemp makes a private folder; the outputs get the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
        write_csv(result.shown_flagged, staging / "flagged.csv")
        write_csv(result.table, staging / "all_rows.csv")
        if len(result.left_out):
            write_csv(result.left_out, staging / "left_out.csv")
        figures = _figures(result, staging)
        report = render_report(result, command, figures, extra_notes)
        (staging / "report.md").write_text(report, encoding="utf-8")
        page = render_html(result, command, staging, figures, extra_notes)
        (staging / "report.html").write_text(page, encoding="utf-8")
        files = sorted(p.name for p in staging.iterdir())
        marker = {"kind": MARKER_KIND, "command": command, "files": files}
        (staging / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        swap_into_place(staging, claim)
    except OSError as exc:
        raise AuditError(f"cannot write the output folder {out}: {exc}") from None
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out
