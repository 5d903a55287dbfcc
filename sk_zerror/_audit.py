"""Data audit: fit a robust Z-Error model to a table and list suspicious rows."""

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from skorch.callbacks import Callback

from ._classifier import ZErrorClassifier
from ._regressor import ZErrorRegressor

# Column names that identify a row rather than describe it.
ID_PATTERN = re.compile(r"^(id|identifier|key|index|name)$|(^|[_\s])id$", re.IGNORECASE)
MAX_CATEGORIES = 50
MAX_CLASS_LEVELS = 10


class AuditError(ValueError):
    """A problem with the user's input: reported with exit code 2."""


@dataclass
class AuditResult:
    """What an audit found, ready to be written out."""

    task: str
    model: Pipeline
    table: object  # pandas DataFrame of every audited row, most severe first
    n_rows: int
    used_columns: list
    id_columns: list
    notes: list = field(default_factory=list)
    sigma: float = 2.0
    epochs: int = 100
    features: object = None  # the feature columns of the audited rows
    labels: object = None  # their targets

    @property
    def flagged(self):
        return self.table[self.table["flagged"]]

    @property
    def estimator(self):
        return self.model.steps[-1][1]


def _pandas():
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise AuditError(
            "sk-zerror audit needs pandas: pip install 'sk-zerror[cli]'."
        ) from exc
    return pd


def load_table(path):
    """Read a CSV or Parquet file; AuditError with a clear message otherwise."""
    pd = _pandas()
    path = Path(path)
    if not path.exists():
        raise AuditError(f"no such file: {path}")
    if path.is_dir():
        raise AuditError(f"{path} is a folder, not a data file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".tsv", ""):
            return pd.read_csv(path, sep=None, engine="python")
    except ImportError as exc:
        raise AuditError(f"cannot read {path}: {exc}") from None
    except Exception as exc:  # the readers raise many kinds of errors
        raise AuditError(f"cannot read {path} as {suffix or 'CSV'}: {exc}") from None
    raise AuditError(
        f"unsupported file type {suffix!r} for {path}: use .csv or .parquet"
    )


def infer_task(y):
    """Classification for labels (non-numeric, boolean, or few integer levels)."""
    pd = _pandas()
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = y.dropna().to_numpy(dtype=float)
    integer = np.all(values == np.round(values))
    if integer and len(np.unique(values)) <= MAX_CLASS_LEVELS:
        return "classification"
    return "regression"


def split_columns(frame, target):
    """Numeric, categorical and id columns; skipped columns with reasons."""
    pd = _pandas()
    numeric, categorical, ids, notes = [], [], [], []
    for column in frame.columns:
        if column == target:
            continue
        series = frame[column]
        if ID_PATTERN.search(str(column)):
            ids.append(column)
        elif pd.api.types.is_bool_dtype(series):
            categorical.append(column)
        elif pd.api.types.is_numeric_dtype(series):
            if series.notna().any():
                numeric.append(column)
            else:
                notes.append(f"column {column!r} is empty and was not used")
        elif series.nunique(dropna=True) <= MAX_CATEGORIES:
            categorical.append(column)
        else:
            notes.append(
                f"column {column!r} has {series.nunique()} distinct text values "
                f"(more than {MAX_CATEGORIES}) and was not used"
            )
    return numeric, categorical, ids, notes


class EpochProgress(Callback):
    """A progress bar over epochs on stderr (tqdm when installed)."""

    def __init__(self, total, stream=None):
        self.total = total
        self.stream = stream

    def on_train_begin(self, net, **kwargs):
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover - depends on the install
            self.bar_ = None
            return
        self.bar_ = tqdm(
            total=self.total,
            desc="training",
            unit="epoch",
            file=self.stream or sys.stderr,
            leave=False,
            disable=None,
        )

    def on_epoch_end(self, net, **kwargs):
        if self.bar_ is not None:
            row = net.history[-1]
            self.bar_.set_postfix(
                sigma=f"{row.get('sigma', float('nan')):.2f}",
                masked=f"{row.get('masked_fraction', 0.0):.1%}",
            )
            self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        if self.bar_ is not None:
            self.bar_.close()


def build_model(task, numeric, categorical, *, sigma, epochs, seed, progress):
    """Standardised features and the robust Z-Error estimator."""
    features = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                numeric,
            ),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                categorical,
            ),
        ]
    )
    options = dict(
        sigma=sigma,
        center="median",
        scale="mad",
        max_epochs=epochs,
        batch_size=256,
        # A small, regularised network: an audit must not fit the errors it
        # should find. On the demo this lifts precision from 0.24 to 0.67-0.87
        # at the same recall (0.8), against a (64, 64) network with 1e-4 decay.
        hidden_layer_sizes=(32,),
        lr=1e-3,
        weight_decay=1e-2,
        random_state=seed,
        callbacks=[EpochProgress(epochs)] if progress else None,
    )
    estimator = (
        ZErrorRegressor(**options)
        if task == "regression"
        else ZErrorClassifier(**options)
    )
    return Pipeline([("features", features), ("model", estimator)])


def audit_frame(
    frame, target, *, task="auto", sigma=2.0, epochs=100, seed=0, progress=False
):
    """Fit the robust model to ``frame`` and rank its rows by severity.

    Returns an :class:`AuditResult`; raises :class:`AuditError` for input the
    audit cannot use.
    """
    pd = _pandas()
    if target not in frame.columns:
        raise AuditError(
            f"target column {target!r} not found; columns are: "
            + ", ".join(map(str, frame.columns))
        )
    notes = []
    y_all = frame[target]
    missing = y_all.isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        shown = ", ".join(map(str, rows[:20])) + (" ..." if len(rows) > 20 else "")
        notes.append(
            f"{len(rows)} row(s) have no target and were left out of training: "
            f"rows {shown}"
        )
    kept = frame.loc[~missing]
    y = kept[target]
    if y.nunique() < 2:
        raise AuditError(
            f"target column {target!r} has {y.nunique()} distinct value(s) in "
            f"{len(y)} row(s); an audit needs at least two"
        )
    task = infer_task(y) if task == "auto" else task
    numeric, categorical, ids, column_notes = split_columns(frame, target)
    notes += column_notes
    if not numeric and not categorical:
        raise AuditError(
            "no usable feature column: every column other than the target is "
            "an id, empty, or free text"
        )
    if task == "regression" and not pd.api.types.is_numeric_dtype(y):
        raise AuditError(
            f"target column {target!r} is not numeric; use --task classification"
        )
    model = build_model(
        task,
        numeric,
        categorical,
        sigma=sigma,
        epochs=epochs,
        seed=seed,
        progress=progress,
    )
    features = kept[numeric + categorical]
    model.fit(features, y.to_numpy())
    est = model.steps[-1][1]
    table = pd.DataFrame({"row": np.flatnonzero(~missing)})
    for column in ids:
        table[column] = kept[column].to_numpy()
    table[target] = y.to_numpy()
    table["prediction"] = model.predict(features)
    if task == "classification":
        proba = model.predict_proba(features)
        given = np.searchsorted(est.classes_, y.to_numpy())
        table["probability_of_label"] = proba[np.arange(len(y)), given]
    table["z_score"] = est.outlier_scores_
    table["masked_fraction"] = est.outlier_frequency_
    table["flagged"] = est.outlier_mask_
    severity = (
        -est.outlier_scores_
        if task == "classification"
        else np.abs(est.outlier_scores_)
    )
    table = table.iloc[np.argsort(-severity, kind="stable")].reset_index(drop=True)
    return AuditResult(
        task=task,
        model=model,
        table=table,
        n_rows=len(frame),
        used_columns=numeric + categorical,
        id_columns=ids,
        notes=notes,
        sigma=sigma,
        epochs=epochs,
        features=features,
        labels=y.to_numpy(),
    )
