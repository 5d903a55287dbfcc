"""Why an audited row is suspect: plain hints, its feature values, near copies.

Pure functions on numbers and tables, used by the audit's report: a hint
names a data-entry error that would explain a flagged row (a decimal slip, a
unit factor, two swapped digits, a likely other label), the feature summary
shows the row's values as they are in the file, and the near-copy check
warns about a feature that predicts the target almost exactly.
"""

import math

import numpy as np

# Factors between the recorded target and the prediction that a data-entry
# error explains: the recorded value is the true one times the factor.
DECIMAL_FACTORS = (
    (10.0, "about 10x the prediction: a decimal slip?"),
    (100.0, "about 100x the prediction: a decimal slip (two places)?"),
    (1000.0, "about 1000x the prediction: a unit prefix (g/kg, mm/m, mL/L)?"),
    (0.1, "about 1/10 of the prediction: a decimal slip?"),
    (0.01, "about 1/100 of the prediction: a decimal slip (two places)?"),
    (0.001, "about 1/1000 of the prediction: a unit prefix (kg/g, m/mm, L/mL)?"),
)
UNIT_FACTORS = (
    (18.0, "about 18x the prediction: glucose in mg/dL for mmol/L?"),
    (1 / 18.0, "about 1/18 of the prediction: glucose in mmol/L for mg/dL?"),
    (2.54, "about 2.54x the prediction: centimetres for inches?"),
    (1 / 2.54, "about 1/2.54 of the prediction: inches for centimetres?"),
    (2.2046, "about 2.2x the prediction: pounds for kilograms?"),
    (0.4536, "about 0.45x the prediction: kilograms for pounds?"),
    (3.281, "about 3.28x the prediction: feet for metres?"),
    (1 / 3.281, "about 0.30x the prediction: metres for feet?"),
    (1.609, "about 1.61x the prediction: kilometres for miles?"),
    (1 / 1.609, "about 0.62x the prediction: miles for kilometres?"),
)
# Explanations named for one row, closest corrected value first: with a
# loose prediction, several factors may fit.
SHOWN_HINTS = 2
# |Spearman| correlation with the target above which a feature is a near copy.
NEAR_COPY = 0.99
# Share of rows whose label a category (or few-valued number) determines.
NEAR_COPY_PURITY = 0.99
# Feature values shown for a flagged row: the table's first columns, and
# then the columns where the row stands out most (robust z-score).
FIRST_COLUMNS = 4
STANDOUT_COLUMNS = 3
STANDOUT_Z = 3.0
# A table with at most this many feature columns shows all of them.
ALL_COLUMNS = 8


def format_number(value):
    """A number for people: integers as integers, no scientific notation.

    Four significant digits, except that the digits before the decimal
    point are all kept (123456.7 is "123457", not "1.235e+05"); tiny
    magnitudes (below 0.001) keep the exponent.
    """
    if value is None:
        return ""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value == round(value) and abs(value) < 1e15:
        return str(int(round(value)))
    magnitude = abs(value)
    if magnitude < 1e-3:
        return f"{value:.3g}"
    decimals = max(0, 3 - math.floor(math.log10(magnitude)))
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _swaps(value):
    """Values with two adjacent digits of ``value``'s digits exchanged."""
    negative = value < 0
    text = format_number(abs(value))
    if "e" in text:
        return []
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    found = []
    for a, b in zip(digits, digits[1:], strict=False):
        if b != a + 1 or text[a] == text[b] or (a == 0 and text[b] == "0"):
            continue
        swapped = text[:a] + text[b] + text[a] + text[b + 1 :]
        number = float(swapped)
        found.append(-number if negative else number)
    return found


def regression_hint(value, prediction, tolerance, *, log=False):
    """A data-entry error that would explain a recorded ``value``, or "".

    Parameters
    ----------
    value : float
        The recorded target.
    prediction : float
        The model's prediction for the row.
    tolerance : float
        Largest distance from the prediction at which a corrected value
        counts as explained: a few residual spreads of the clean rows, on
        the modelled scale (``log(1 + y)`` when ``log``).
    log : bool, default=False
        Whether the target was modelled as ``log(1 + y)``.

    Returns
    -------
    hint : str
        The (at most ``SHOWN_HINTS``) explanations whose corrected value lies
        within ``tolerance`` of the prediction and at most half as far from
        it as the recorded value, closest first, joined by "; or ": a
        decimal slip or unit prefix (x10, x100, x1000 and their inverses), a
        unit factor (mg/dL and mmol/L, inches, pounds, feet, miles), degrees
        Fahrenheit for Celsius or back, or two adjacent digits swapped; ""
        when none fits.
    """
    if not (np.isfinite(value) and np.isfinite(prediction)):
        return ""

    def scale(v):
        return math.log1p(v) if log else v

    def distance(candidate):
        if log and candidate <= -1:
            return math.inf
        return abs(scale(candidate) - scale(prediction))

    recorded = distance(value)
    if recorded <= tolerance:
        return ""

    def explains(candidate):
        gap = distance(candidate)
        return gap <= tolerance and gap < 0.5 * recorded

    candidates = [(value / f, text) for f, text in DECIMAL_FACTORS + UNIT_FACTORS]
    candidates += [
        ((value - 32) / 1.8, "degrees Fahrenheit where Celsius is expected?"),
        (value * 1.8 + 32, "degrees Celsius where Fahrenheit is expected?"),
    ]
    candidates += [(swap, "digits swapped?") for swap in _swaps(value)]
    fitting = sorted(
        ((distance(c), c, text) for c, text in candidates if explains(c)),
        key=lambda item: item[0],
    )
    return "; or ".join(
        f"{text} ({format_number(corrected)} would fit the prediction "
        f"{format_number(prediction)})"
        for _, corrected, text in fitting[:SHOWN_HINTS]
    )


def label_hint(label, likely_label, likely_probability, label_probability):
    """The label the model finds likely, with its probability, or ""."""
    if not likely_probability > label_probability:
        return ""
    return (
        f"the model finds {_label_text(likely_label)} likely "
        f"(probability {likely_probability:.2f}; "
        f"{_label_text(label)}: {label_probability:.2f})"
    )


def label_text(label):
    """A class label as text: whole-number floats without ".0"."""
    if isinstance(label, float | np.floating) and float(label).is_integer():
        return str(int(label))
    return str(label)


def _label_text(label):
    return repr(label_text(label))


def robust_zscores(features, numeric):
    """Each numeric feature's robust z-score per row (median, 1.4826 MAD).

    Columns without spread (MAD and standard deviation zero) score 0;
    missing cells score NaN.
    """
    scores = {}
    for column in numeric:
        values = features[column].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            continue
        center = np.median(finite)
        spread = 1.4826 * np.median(np.abs(finite - center))
        if spread == 0:
            spread = finite.std()
        scores[column] = (
            (values - center) / spread if spread > 0 else np.zeros(len(values))
        )
    return scores


def _cell(value):
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return format_number(value)
    return " ".join(str(value).split())


def feature_summary(cells, zscores, row):
    """One row's feature values as text: "name=value; ...".

    Parameters
    ----------
    cells : pandas DataFrame
        The feature columns as they are in the file, one row per audited row.
    zscores : dict
        Column name (as text) to robust z-scores (:func:`robust_zscores`).
    row : int
        Position of the row in ``cells``.

    Returns
    -------
    text : str
        Every column of a narrow table (at most ``ALL_COLUMNS``), else the
        first ``FIRST_COLUMNS`` and the ``STANDOUT_COLUMNS`` where the row
        lies furthest from the median (robust z-score beyond ``STANDOUT_Z``);
        each value beyond ``STANDOUT_Z`` carries its robust z-score.
    """
    columns = list(cells.columns)

    def z(column):
        value = zscores.get(str(column))
        return np.nan if value is None else float(value[row])

    if len(columns) <= ALL_COLUMNS:
        shown = columns
    else:
        far = sorted(
            (c for c in columns[FIRST_COLUMNS:] if abs(z(c)) > STANDOUT_Z),
            key=lambda c: -abs(z(c)),
        )
        shown = columns[:FIRST_COLUMNS] + far[:STANDOUT_COLUMNS]
    parts = []
    for column in shown:
        text = f"{' '.join(str(column).split())}={_cell(cells[column].iloc[row])}"
        if abs(z(column)) > STANDOUT_Z:
            text += f" (robust z {z(column):+.1f})"
        parts.append(text)
    if len(shown) < len(columns):
        parts.append(f"... {len(columns) - len(shown)} more columns")
    return "; ".join(parts)


def near_copies(features, numeric, categorical, y, task):
    """Features that predict the target almost exactly, with the evidence.

    Regression: numeric features whose Spearman correlation with the target
    is above ``NEAR_COPY`` in absolute value (a copy, a unit conversion, a
    logarithm). Classification: categorical features, and numeric ones with
    at most 50 values, whose value determines the label in at least
    ``NEAR_COPY_PURITY`` of the rows while taking fewer values than a
    quarter of the rows (not an identifier).

    Returns
    -------
    copies : list of (str, str)
        The column's name and why it is a near copy ("Spearman 0.998").
    """
    import pandas as pd

    found = []
    if task == "regression":
        target = pd.Series(np.asarray(y, dtype=float))
        for column in numeric:
            values = pd.Series(features[column].to_numpy(dtype=float))
            both = values.notna() & target.notna()
            if both.sum() < 3 or values[both].nunique() < 3:
                continue
            rho = values[both].corr(target[both], method="spearman")
            if np.isfinite(rho) and abs(rho) > NEAR_COPY:
                found.append((column, f"Spearman correlation {rho:+.3f}"))
        return found
    labels = pd.Series(np.asarray(y).astype(str))
    for column in [*categorical, *numeric]:
        values = pd.Series(features[column].to_numpy()).astype(str)
        levels = values.nunique()
        if levels < 2 or levels > min(50, len(values) / 4):
            continue
        counts = pd.crosstab(values, labels)
        purity = counts.max(axis=1).sum() / len(values)
        if purity >= NEAR_COPY_PURITY:
            found.append((column, f"its value gives the label in {purity:.1%} of rows"))
    return found
