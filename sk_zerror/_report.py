"""Writing an audit's outputs: flagged.csv, report.md and the figures."""

import shutil
import tempfile
from pathlib import Path

import numpy as np

from ._audit import AuditError


def prepare_output_folder(out, force):
    """Refuse to overwrite a non-empty folder unless ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AuditError(f"output path {out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise AuditError(
            f"output folder {out} already exists and is not empty; "
            "use --force to replace it"
        )
    return out


def _figures(result, folder):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import plot_class_distributions, plot_sigma_schedule, plot_zscores

    names = []
    for name, draw in [
        ("zscores.png", lambda ax: plot_zscores(result.model, ax=ax)),
        ("sigma_schedule.png", lambda ax: plot_sigma_schedule(result.model, ax=ax)),
    ]:
        fig, ax = plt.subplots(figsize=(7, 4))
        draw(ax)
        fig.tight_layout()
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)
        names.append(name)
    est = result.estimator
    if result.task == "classification" and len(est.classes_) == 2:
        fig, ax = plt.subplots(figsize=(7, 4))
        plot_class_distributions(result.model, result.features, result.labels, ax=ax)
        fig.tight_layout()
        fig.savefig(folder / "class_distributions.png", dpi=100)
        plt.close(fig)
        names.append("class_distributions.png")
    return names


def _markdown_table(frame, limit=20):
    frame = frame.head(limit)
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = []
    for _, row in frame.iterrows():
        cells = [
            f"{v:.4g}" if isinstance(v, float | np.floating) else str(v) for v in row
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join([header, rule, *rows])


def render_report(result, command, figures, extra=()):
    """The report's markdown text."""
    from . import __version__

    flagged = result.flagged
    lines = [
        "# sk-zerror audit report",
        "",
        f"Command: `{command}`  ",
        f"sk_zerror {__version__}; task: **{result.task}**; rows: {result.n_rows}; "
        f"sigma: {result.sigma}; epochs: {result.epochs}.",
        "",
        "A robust Z-Error network (median/MAD statistics, annealed sigma) was fitted "
        "to the table. Rows whose "
        + ("residual" if result.task == "regression" else "given-label logit")
        + f" lies more than {result.sigma} robust standard deviations from the "
        "typical row in a final pass over all rows are flagged: re-measure or "
        "correct them.",
        "",
        f"**{len(flagged)} of {len(result.table)} rows flagged** "
        f"({len(flagged) / max(len(result.table), 1):.1%}).",
        "",
        f"Features used: {', '.join(map(str, result.used_columns))}.  ",
        f"Id columns (reported, not learnt from): "
        f"{', '.join(map(str, result.id_columns)) or 'none'}.",
    ]
    for note in [*result.notes, *extra]:
        lines.append(f"\n- {note}")
    lines += ["", "## Most suspicious rows", "", _markdown_table(flagged), ""]
    lines += ["`row` is the 0-based position of the row in the input file's data.", ""]
    lines += ["## Figures", ""]
    lines += [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"


def write_outputs(result, out, *, force, command, extra_notes=()):
    """Write everything into a temporary folder, then move it into place."""
    out = prepare_output_folder(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        result.flagged.to_csv(staging / "flagged.csv", index=False)
        result.table.to_csv(staging / "all_rows.csv", index=False)
        figures = _figures(result, staging)
        report = render_report(result, command, figures, extra_notes)
        (staging / "report.md").write_text(report, encoding="utf-8")
        if out.exists():
            backup = out.with_name(f".{out.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            out.rename(backup)
            staging.rename(out)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
