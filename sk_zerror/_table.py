"""The audit's table: reading a CSV or Parquet file and typing its columns.

:func:`load_table` reads a file or raises :class:`AuditError` with one clear
line; :func:`split_columns` decides what each column is (a number, a date
made into numbers, a category, an id, or unusable, with a note saying why);
:func:`infer_task` and :func:`skewed_positive` read the target. Nothing here
trains: :mod:`sk_zerror._audit` plans and fits the audit on what this module
reads.
"""

import csv
import itertools
import re
from collections import Counter
from pathlib import Path

import numpy as np

# Column names that identify a row rather than describe it.
ID_PATTERN = re.compile(r"^(id|identifier|key|index|name)$|(^|[_\s])id$", re.IGNORECASE)
MAX_CATEGORIES = 50
MAX_CLASS_LEVELS = 10
# Classes a classification audit takes: its label-error counts and its
# confusion figure have one cell per pair of classes (the figure of 300
# classes took minutes to draw, that of 10,000 ran out of memory).
MAX_CLASSES = MAX_CATEGORIES
# A text column is read as numbers when at least this share of its filled
# cells are numbers; the others are reported as unreadable.
NUMERIC_SHARE = 0.9
# A text column is read as dates when this share of its filled cells look like
# dates (digits separated by -, / or .) and parse as such.
DATE_PATTERN = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T].*)?$")
# What Parquet's lists and structures become in a pandas column.
NESTED_TYPES = (list, tuple, dict, set, np.ndarray)
# The column separators of a CSV file, found from its header line.
CSV_SEPARATORS = ",;\t| "
# Kelly's skewness above which a non-negative target is modelled as log(1 + y)
# (when the log makes it more symmetric). On the clean car table's fuel
# economy (skewness 0.115) the log scale halves the flags, 21 to 12 of 398.
RIGHT_SKEW = 0.1
# Rows listed by number in a note before "...".
LISTED_ROWS = 20


class AuditError(ValueError):
    """A problem with the user's input: reported with exit code 2."""


def pandas_module():
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise AuditError(
            "sk-zerror audit needs pandas: pip install 'sk-zerror[cli]'."
        ) from exc
    return pd


def rows_text(rows):
    rows = list(rows)
    shown = ", ".join(map(str, rows[:LISTED_ROWS]))
    return shown + (" ..." if len(rows) > LISTED_ROWS else "")


def _read_csv(path, encoding):
    """A CSV file as a frame, its separator found from its header line."""
    pd = pandas_module()
    with open(path, encoding=encoding, errors="replace", newline="") as file:
        lines = (line for line in file if line.strip())
        header = next(lines, None)
        if header is None:
            raise AuditError(f"the file {path} is empty (only blank lines)")
        try:
            dialect = csv.Sniffer().sniff(header, delimiters=CSV_SEPARATORS)
        except csv.Error:
            name = header.strip().lstrip("\ufeff")
            raise AuditError(
                f"the file {path} has one column ({name[:40]!r}): an audit learns "
                "the target from other columns, so there is nothing to learn from "
                "(columns are separated by commas, semicolons, tabs, | or spaces)"
            ) from None
        # The header as a record: a quoted name may hold the separator or a
        # line break.
        names = next(csv.reader(itertools.chain([header], lines), dialect), [])
    counts = Counter(name.strip().lstrip("\ufeff") for name in names)
    table = pd.read_csv(
        path,
        sep=dialect.delimiter,
        skipinitialspace=dialect.skipinitialspace,
        encoding=encoding,
    )
    # pandas renames a repeated column name y to y.1: which were repeated.
    table.attrs["repeated_columns"] = {n: k for n, k in counts.items() if k > 1}
    return table


def load_table(path, *, encoding=None):
    """Read a CSV or Parquet file; AuditError with a clear message otherwise.

    Parameters
    ----------
    path : path-like
    encoding : str, default=None
        The text encoding of a CSV file; None reads UTF-8, with or without a
        byte-order mark.
    """
    pd = pandas_module()
    path = Path(path)
    if not path.exists():
        raise AuditError(f"no such file: {path}")
    if path.is_dir():
        raise AuditError(f"{path} is a folder, not a data file")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv", ".txt", ".tsv", ""):
        raise AuditError(
            f"unsupported file type {suffix!r} for {path}: use .csv or .parquet"
        )
    if path.stat().st_size == 0:
        raise AuditError(f"the file {path} is empty")
    try:
        if suffix in (".parquet", ".pq"):
            table = pd.read_parquet(path)
        else:
            table = _read_csv(path, encoding or "utf-8-sig")
    except AuditError:
        raise
    except ImportError as exc:
        raise AuditError(f"cannot read {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise AuditError(
            f"cannot read {path}: {exc}; give the file's encoding with --encoding "
            "(e.g. --encoding latin-1 or --encoding cp1252), or save it as UTF-8"
        ) from None
    except Exception as exc:  # the readers raise many kinds of errors
        message = " ".join(str(exc).split())
        raise AuditError(
            f"cannot read {path} as {suffix.lstrip('.') or 'CSV'}: {message}"
        ) from None
    first = table.columns[0] if len(table.columns) else None
    if isinstance(first, str) and first.startswith("\ufeff"):
        # A byte-order mark read as text (--encoding utf-8) is not in the name.
        table.columns = [first.lstrip("\ufeff"), *table.columns[1:]]
    if len(table) == 0:
        raise AuditError(
            f"the file {path} has a header ({len(table.columns)} columns) but "
            "no data rows"
        )
    return table


def is_text(series):
    pd = pandas_module()
    return pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)


def is_nested(series):
    """Whether a column holds lists, arrays or structures (Parquet's nested types)."""
    if not pandas_module().api.types.is_object_dtype(series):
        return False
    return any(isinstance(v, NESTED_TYPES) for v in series)


def read_numbers(series):
    """``series`` as floats when it holds numbers, with its unreadable cells.

    Returns ``(values, unreadable)``, where ``unreadable`` marks filled cells
    that are not numbers, or ``None`` when the column is not numeric (fewer
    than ``NUMERIC_SHARE`` of its filled cells are numbers).
    """
    pd = pandas_module()
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(float), np.zeros(len(series), dtype=bool)
    if not is_text(series):
        return None
    text = series.astype(object).where(series.notna(), None)
    filled = np.array([v is not None and str(v).strip() != "" for v in text])
    values = pd.to_numeric(
        pd.Series([str(v).strip() if v is not None else None for v in text]),
        errors="coerce",
    ).to_numpy(dtype=float)
    readable = ~np.isnan(values)
    if not filled.any() or readable[filled].mean() < NUMERIC_SHARE:
        return None
    return pd.Series(values, index=series.index), filled & ~readable


def read_dates(series):
    """``series`` as datetimes when it holds dates, else None."""
    pd = pandas_module()
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    if not is_text(series):
        return None
    filled = series.dropna().astype(str)
    if filled.empty or filled.str.match(DATE_PATTERN).mean() < NUMERIC_SHARE:
        return None
    dates = pd.to_datetime(series, errors="coerce", format="mixed")
    if dates.notna().sum() < NUMERIC_SHARE * len(filled):
        return None
    return dates


def date_features(name, dates):
    """Numbers a network can use from a date column: time, season, weekday.

    Constant ones are left out, and a column of 1 January dates (years coded
    as dates) gives only the time: its weekdays and season mean nothing.
    """
    pd = pandas_module()
    dates = pd.to_datetime(dates)
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert(None)
    year = dates.dt.year + (dates.dt.day_of_year - 1) / 365.25
    angle = 2 * np.pi * (dates.dt.day_of_year - 1) / 365.25
    derived = {
        f"{name}_time": year,
        f"{name}_season_sin": np.sin(angle),
        f"{name}_season_cos": np.cos(angle),
        f"{name}_weekday": dates.dt.day_of_week.astype(float),
    }
    if dates.dt.day_of_year.nunique(dropna=True) <= 1:
        # One calendar day a year (years coded as 1 January): only the time.
        derived = {f"{name}_time": year}
    return {
        key: value.astype(float)
        for key, value in derived.items()
        if value.nunique(dropna=True) > 1
    }


def infer_task(y):
    """Classification for labels (non-numeric, boolean, or few integer levels)."""
    pd = pandas_module()
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = y.dropna().to_numpy(dtype=float)
    integer = np.all(values == np.round(values))
    if integer and len(np.unique(values)) <= MAX_CLASS_LEVELS:
        return "classification"
    return "regression"


def split_columns(frame, target):
    """Feature frame and the column roles, with notes on what was changed.

    Returns ``features`` (numeric columns as floats, dates expanded to
    numbers, categories as text), the numeric and categorical feature names,
    the id columns and the notes.
    """
    pd = pandas_module()
    numeric, categorical, ids, notes = [], [], [], []
    features = {}
    for column in frame.columns:
        if column == target:
            continue
        series = frame[column]
        label = repr(str(column))
        if is_nested(series):
            notes.append(
                f"column {label} holds lists or structures (nested values) and "
                "was not used"
            )
            continue
        if ID_PATTERN.search(str(column)):
            ids.append(column)
            continue
        if series.notna().sum() == 0:
            notes.append(f"column {label} is empty and was not used")
            continue
        dates = read_dates(series)
        if dates is not None:
            derived = date_features(str(column), dates)
            features.update(derived)
            numeric += list(derived)
            notes.append(
                f"date column {label} became the features "
                + (", ".join(derived) or "(none: every date is the same)")
            )
            continue
        numbers = None if pd.api.types.is_bool_dtype(series) else read_numbers(series)
        if numbers is not None:
            values, unreadable = numbers
            finite = np.isfinite(values.to_numpy()) | values.isna().to_numpy()
            if unreadable.any() or not finite.all():
                bad = np.flatnonzero(unreadable | ~finite)
                notes.append(
                    f"column {label}: {len(bad)} cell(s) that are not finite "
                    f"numbers were treated as missing: rows {rows_text(bad)}"
                )
                values = values.where(np.isfinite(values))
            features[str(column)] = values
            numeric.append(str(column))
        elif series.nunique(dropna=True) <= MAX_CATEGORIES:
            text = series.astype(object).where(series.notna(), "(missing)")
            features[str(column)] = text.astype(str)
            categorical.append(str(column))
        else:
            notes.append(
                f"column {label} has {series.nunique()} distinct text values "
                f"(more than {MAX_CATEGORIES}) and was not used"
            )
    return pd.DataFrame(features, index=frame.index), numeric, categorical, ids, notes


def skewed_positive(y):
    """Whether a non-negative target is right-skewed enough to model as log(1+y).

    Kelly's skewness, from the 10%, 50% and 90% quantiles, is used: the gross
    errors being looked for barely move it, unlike the moment skewness. The log
    is taken when it brings the skewness closer to zero.
    """
    if np.min(y) < 0:
        return False

    def kelly(v):
        q10, q50, q90 = np.quantile(v, [0.1, 0.5, 0.9])
        return 0.0 if q90 == q10 else (q90 + q10 - 2 * q50) / (q90 - q10)

    raw, logged = kelly(y), kelly(np.log1p(y))
    return raw > RIGHT_SKEW and abs(logged) < abs(raw)
