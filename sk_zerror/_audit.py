"""Data audit: fit a robust Z-Error model to a table and list suspicious rows.

Two steps, so that every check on the input runs before the first epoch:
:func:`prepare_audit` reads the table's columns, the target and the settings
and raises :class:`AuditError` with one clear line for anything it cannot
use; :func:`fit_audit` encodes the features, fits a
:class:`~sk_zerror.ZErrorRegressor` or :class:`~sk_zerror.ZErrorClassifier`
at its defaults (only the options the user gave are passed on) and reports:
the flags are the fitted estimator's ``outlier_mask_`` and the ranking its
``outlier_scores_``.
"""

import sys
import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from skorch.callbacks import Callback

from ._base import resolve_device
from ._classifier import ZErrorClassifier
from ._cli import SIGMA_RANGE
from ._hints import (
    feature_summary,
    label_hint,
    label_text,
    near_copies,
    regression_hint,
    robust_zscores,
)
from ._regressor import ZErrorRegressor
from ._table import (
    MAX_CLASSES,
    AuditError,
    infer_task,
    is_nested,
    is_text,
    pandas_module,
    read_numbers,
    rows_text,
    skewed_positive,
    split_columns,
)

MIN_ROWS = 10
SMALL_TABLE = 100
SMALL_CLASS = 5
# Flagged labels above this share of the rows mean overlapping classes.
OVERLAP_SHARE = 0.1
# A regression hint's corrected value must lie within this many robust
# standard deviations of the clean rows' residuals from the prediction.
HINT_SPREADS = 3.0
# Seconds between two progress lines when stderr is not a terminal.
PROGRESS_SECONDS = 5.0


@dataclass
class AuditPlan:
    """A validated audit, ready to train."""

    task: str
    target: str
    frame_rows: int
    kept: np.ndarray  # bool per input row: audited
    y: np.ndarray  # targets of the audited rows (labels or floats)
    features: object  # pandas DataFrame of the audited rows' features
    numeric: list
    categorical: list
    ids: list
    id_values: object  # pandas DataFrame of the id columns, audited rows
    left_out: object  # pandas DataFrame: row, reason, value
    notes: list
    warnings: list
    sigma: object  # "auto" (the estimator's default) or a number
    epochs: object  # int, or None: the estimator's default
    batch_size: object  # int, or None: the estimator's default
    device: object  # str, or None: the estimator's default
    log_target: bool = False
    cells: object = None  # pandas DataFrame: the audited rows' feature cells


@dataclass
class AuditResult:
    """What an audit found, ready to be written out."""

    task: str
    target: str
    model: object  # fitted sklearn Pipeline
    table: object  # pandas DataFrame of every audited row, most severe first
    n_rows: int
    used_columns: list
    id_columns: list
    left_out: object
    rule: str
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    sigma: object = "auto"  # the estimator's sigma (a number) after fitting
    epochs: int = 0  # the estimator's max_epochs
    batch_size: int = 0
    device: str = "cpu"
    features: object = None  # the feature columns of the audited rows
    labels: object = None  # their targets
    cells: object = None  # their feature cells as in the file
    training: str = ""  # how the estimator trained, in words
    log_target: bool = False  # the target was modelled as log(1 + y)

    @property
    def flagged(self):
        return self.table[self.table["flagged"]]

    @property
    def shown_flagged(self):
        """The flagged rows without the (constant) ``flagged`` column."""
        return self.flagged.drop(columns="flagged")

    @property
    def estimator(self):
        return self.model.steps[-1][1]


def _target_values(frame, target, task):
    """The target as numbers or labels, and why each unusable row is left out."""
    pd = pandas_module()
    y = frame[target]
    label = repr(str(target))
    missing = y.isna().to_numpy()
    if missing.all():
        raise AuditError(
            f"all {len(y)} values of target column {label} are missing; nothing "
            "to audit: choose another --target"
        )
    reasons = np.where(missing, "missing target", "")
    numbers = None if pd.api.types.is_bool_dtype(y) else read_numbers(y)
    if task == "classification" and is_text(y):
        numbers = None  # text labels stay labels, even "1", "2", "3"
    if numbers is None:
        if task == "regression":
            raise AuditError(
                f"target column {label} is not numeric (e.g. "
                f"{y.dropna().iloc[0]!r}); use --task classification or --task auto"
            )
        return y, reasons
    values, unreadable = numbers
    values = values.to_numpy()
    reasons = np.where(unreadable, "target that is not a number", reasons)
    reasons = np.where(np.isinf(values), "non-finite target", reasons)
    return pd.Series(np.where(reasons == "", values, np.nan), index=y.index), reasons


def _check_classes(y, target):
    label = repr(str(target))
    pd = pandas_module()
    counts = y.value_counts()
    if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        values = y.to_numpy(dtype=float)
        integer = np.all(values == np.round(values))
        if not integer or len(counts) > MAX_CLASSES:
            raise AuditError(
                f"target column {label} looks continuous ({len(counts)} distinct "
                f"{'numbers' if integer else 'non-integer numbers'}) and cannot be "
                "audited as class labels; use --task regression or --task auto"
            )
    elif len(counts) > MAX_CLASSES and (counts < SMALL_CLASS).mean() > 0.5:
        raise AuditError(
            f"target column {label} has {len(counts)} distinct values, most of "
            f"them in fewer than {SMALL_CLASS} rows: these are not class labels"
        )
    elif len(counts) > MAX_CLASSES:
        raise AuditError(
            f"target column {label} has {len(counts)} classes; an audit handles at "
            f"most {MAX_CLASSES} (its label-error counts and confusion figure grow "
            "with the square of the number of classes): group the rare classes, "
            "or audit a subset of them"
        )
    small = counts[counts < SMALL_CLASS]
    warnings = []
    if len(small):
        warnings.append(
            f"class(es) {', '.join(repr(str(c)) for c in small.index[:10])} have "
            f"fewer than {SMALL_CLASS} rows; their labels cannot be checked "
            "against a class distribution and are rarely flagged"
        )
    return warnings


def _check_device(device):
    try:
        return resolve_device(device)
    except ValueError as exc:
        raise AuditError(f"--device {device}: {exc}") from None


def prepare_audit(
    frame,
    target,
    *,
    task="auto",
    sigma="auto",
    epochs=None,
    batch_size=None,
    device=None,
):
    """Check the table and the settings; everything that can fail before training.

    ``sigma="auto"`` and the settings left at None take the estimator's
    defaults. Returns an :class:`AuditPlan`; raises :class:`AuditError` with
    one line that names the problem for input the audit cannot use.
    """
    pd = pandas_module()
    if target not in frame.columns:
        raise AuditError(
            f"target column {target!r} not found; columns are: "
            + ", ".join(map(str, frame.columns))
        )
    label = repr(str(target))
    repeated = dict(frame.attrs.get("repeated_columns", {}))
    repeated.update(frame.columns[frame.columns.duplicated()].value_counts() + 1)
    if target in repeated:
        raise AuditError(
            f"the header names the target column {label} {repeated[target]} times; "
            "the copies would be learnt from as features (a copy of the target): "
            "rename or remove them"
        )
    if frame.columns.duplicated().any():
        twice = frame.columns[frame.columns.duplicated()][0]
        raise AuditError(
            f"column name {str(twice)!r} appears {repeated[twice]} times; rename "
            "the copies"
        )
    if is_nested(frame[target]):
        raise AuditError(
            f"target column {label} holds lists or structures (nested values); an "
            "audit needs one number or label per row"
        )
    if isinstance(sigma, str) and sigma != "auto":
        raise AuditError(f"--sigma must be 'auto' or a number > 0, got {sigma!r}")
    if not isinstance(sigma, str) and not (np.isfinite(sigma) and sigma > 0):
        raise AuditError(f"--sigma must be a finite number > 0, got {sigma}")
    low, high = SIGMA_RANGE
    if not isinstance(sigma, str) and not low <= sigma <= high:
        raise AuditError(f"--sigma must be between {low:g} and {high:g}, got {sigma}")
    device = None if device is None else _check_device(device)
    notes, warnings = [], []
    for name, count in repeated.items():
        notes.append(
            f"column name {str(name)!r} appears {count} times in the header; pandas "
            f"named the copies {', '.join(f'{name}.{k}' for k in range(1, count))}"
        )
    y, reasons = _target_values(frame, target, task)
    kept = reasons == ""
    left_out = pd.DataFrame(
        {
            "row": np.flatnonzero(~kept),
            "reason": reasons[~kept],
            target: frame[target].to_numpy()[~kept],
        }
    )
    for reason in np.unique(reasons[~kept]):
        rows = np.flatnonzero(reasons == reason)
        notes.append(
            f"{len(rows)} row(s) with a {reason} were left out of training: "
            f"rows {rows_text(rows)}"
        )
    y = y[kept]
    if len(y) < MIN_ROWS:
        raise AuditError(
            f"only {len(y)} row(s) have a usable target in column {label}; an "
            f"audit needs at least {MIN_ROWS}, and a few hundred for flags to mean "
            "much"
        )
    if y.nunique() < 2:
        raise AuditError(
            f"target column {label} has {y.nunique()} distinct value(s) in "
            f"{len(y)} row(s); an audit needs at least two"
        )
    task = infer_task(y) if task == "auto" else task
    if task == "regression" and y.nunique() <= 2:
        shown = ", ".join(f"{v:g}" for v in sorted(y.unique()))
        raise AuditError(
            f"target column {label} has only {y.nunique()} distinct values "
            f"({shown}): these are class labels, and a regression audit would "
            "flag one class as errors; use --task classification or --task auto"
        )
    if task == "classification":
        warnings += _check_classes(y, target)
    if len(y) < SMALL_TABLE:
        warnings.append(
            f"only {len(y)} rows: the robust centre and spread of so few rows "
            "are rough, so read the flags as hints to check, not verdicts"
        )
    features, numeric, categorical, ids, column_notes = split_columns(frame, target)
    notes += column_notes
    if not numeric and not categorical:
        raise AuditError(
            "no usable feature column: every column other than the target is "
            "an id, empty, or free text"
        )
    values = y.to_numpy()
    log_target = False
    if task == "regression":
        values = values.astype(float)
        log_target = skewed_positive(values)
        if log_target:
            notes.append(
                f"the target is non-negative and right-skewed, so it was modelled "
                f"as log(1 + {target}), where its noise is closer to symmetric; "
                "the z-scores are those of the log residuals"
            )
    elif pd.api.types.is_bool_dtype(y) or is_text(y):
        values = y.astype(str).to_numpy()
    warnings += _near_copy_warnings(
        features.loc[kept], numeric, categorical, values, task
    )
    n = len(values)
    if batch_size is not None and batch_size > n:
        notes.append(
            f"--batch-size {batch_size} is more than the {n} audited rows: each "
            f"batch holds all {n}"
        )
        batch_size = n
    return AuditPlan(
        task=task,
        target=target,
        frame_rows=len(frame),
        kept=kept,
        y=values,
        features=features.loc[kept].reset_index(drop=True),
        numeric=numeric,
        categorical=categorical,
        ids=ids,
        id_values=frame.loc[kept, ids].reset_index(drop=True),
        left_out=left_out,
        notes=notes,
        warnings=warnings,
        sigma=sigma,
        epochs=epochs,
        batch_size=batch_size,
        device=device,
        log_target=log_target,
        cells=frame.loc[
            kept, [c for c in frame.columns if c != target and c not in ids]
        ].reset_index(drop=True),
    )


def _near_copy_warnings(features, numeric, categorical, y, task):
    return [
        f"column {str(column)!r} predicts the target almost exactly ({why}): "
        "a copy or transform of it (e.g. its log or another unit)? The model "
        "then learns the target from it and flags only rows where the two "
        "disagree; leave it out of the table unless it is a real measurement"
        for column, why in near_copies(features, numeric, categorical, y, task)
    ]


class EpochProgress(Callback):
    """Progress over the epochs of every training run, on stderr.

    The estimators copy their callbacks for each training run (the first
    run over every row, then the retrain without the flagged rows); this
    callback is shared rather than copied, so its count runs on over both
    runs, out of ``total``, the estimator's ``max_epochs`` (the runs' total),
    or out of the first run's epochs and the retrain's when these exceed it
    (a classifier whose first run trained every epoch retrains a whole run).
    A bar on a terminal; off a terminal (a pipe, a log file) a plain line
    every ``interval`` seconds. :meth:`close` ends it (the last line).
    """

    def __init__(self, total, stream=None, interval=PROGRESS_SECONDS):
        self.total = total
        self.stream = stream
        self.interval = interval

    def __deepcopy__(self, memo):
        return self

    def on_train_begin(self, net, **kwargs):
        if getattr(self, "run_", 0):
            self.run_ += 1
            self.total_ = max(self.total_, self.epoch_ + net.max_epochs)
            if self.bar_ is not None:
                self.bar_.total = self.total_
                self.bar_.refresh()
            return
        self.run_ = 1
        self.total_ = self.total
        self.stream_ = self.stream or sys.stderr
        self.start_ = self.last_ = time.monotonic()
        self.epoch_ = 0
        self.row_ = {}
        self.bar_ = None
        if getattr(self.stream_, "isatty", lambda: False)():
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - depends on the install
                return
            self.bar_ = tqdm(
                total=self.total,
                desc="training",
                unit="epoch",
                file=self.stream_,
                leave=False,
            )

    def _state(self):
        if self.run_ > 1:
            return "retrain without the flagged rows"
        sigma = np.max(np.atleast_1d(self.row_.get("sigma", np.nan)))
        return f"sigma {sigma:.2f}, masked {self.row_.get('masked_fraction', 0.0):.1%}"

    def _line(self):
        elapsed = time.monotonic() - self.start_
        return (
            f"training: epoch {self.epoch_}/{self.total_}, {self._state()}, "
            f"{elapsed:.0f} s"
        )

    def on_epoch_end(self, net, **kwargs):
        self.epoch_ += 1
        self.row_ = net.history[-1]
        if self.bar_ is not None:
            self.bar_.set_postfix_str(self._state())
            self.bar_.update(1)
        elif time.monotonic() - self.last_ >= self.interval:
            self.last_ = time.monotonic()
            print(self._line(), file=self.stream_, flush=True)

    def close(self):
        """End the progress: close the bar, or print the last line."""
        if not getattr(self, "run_", 0):
            return
        if self.bar_ is not None:
            self.bar_.close()
        elif self.epoch_:
            print(self._line(), file=self.stream_, flush=True)
        self.run_ = 0


def build_model(plan, *, seed, progress=None):
    """The features' encoding and the Z-Error estimator at its defaults.

    Numeric columns are imputed with their median and standardised,
    categorical ones one-hot encoded. The estimator gets ``random_state``
    and only the settings the user gave: ``sigma`` (a number; ``"auto"`` is
    the estimator's default), ``max_epochs``, ``batch_size`` and ``device``.
    """
    features = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                plan.numeric,
            ),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                plan.categorical,
            ),
        ]
    )
    given = {
        "sigma": None if isinstance(plan.sigma, str) else float(plan.sigma),
        "max_epochs": plan.epochs,
        "batch_size": plan.batch_size,
        "device": plan.device,
    }
    options = {key: value for key, value in given.items() if value is not None}
    if progress is not None:
        options["callbacks"] = [progress]
    estimator = (
        ZErrorRegressor(random_state=seed, **options)
        if plan.task == "regression"
        else ZErrorClassifier(random_state=seed, **options)
    )
    return Pipeline([("features", features), ("model", estimator)])


def _flag_rule(task, est, log_target):
    """The fitted estimator's rule for ``outlier_mask_``, in words."""
    if task == "regression":
        scale = " of log(1 + target)" if log_target else ""
        return (
            f"rows whose residual{scale} (recorded minus predicted), z-scored in "
            "each training batch against the batch's median and MAD, lies beyond "
            f"sigma = {est.sigma:g} robust standard deviations on average over "
            "the first training run, which saw every row (the estimator's "
            "outlier_mask_; z_score is that mean)"
        )
    return (
        "labels the model finds likely wrong (the estimator's outlier_mask_): "
        "each row's class probabilities are averaged over its training batches "
        "(and over the retrain, if any); find_label_outliers(count='stratified') "
        "estimates from them how many labels of each given class belong to "
        "each other class, more among the ambiguous rows than the clear ones, "
        "and flags that many rows of each pair, the least likely labels first; "
        "no sigma enters the count"
    )


def _training_text(task, est, n_rows, log_target):
    """How the estimator trained, with its sigma, in words."""
    histories = est.run_histories_
    first = len(histories[0])
    scale = " of log(1 + target)" if log_target else ""
    if task == "regression":
        what = (
            f"rows whose residual{scale} lies beyond sigma robust standard "
            "deviations from the batch's median"
        )
    else:
        what = (
            "rows whose given-class logit lies more than sigma robust standard "
            "deviations below the median of their class in the batch"
        )
    if est.sigma is None:
        text = (
            f"Training: a first network trains {first} epoch(s) on every row, "
            "masking nothing within the batches (sigma=None, the classifier's "
            "default); masked_fraction is therefore 0"
        )
    else:
        sigma = np.atleast_1d(est.sigma)
        target = ", ".join(f"{v:g}" for v in sigma)
        if est.sigma_start is None:
            schedule = f"sigma = {target} throughout"
        else:
            anneal = (
                est.max_epochs // 2 if est.anneal_epochs is None else est.anneal_epochs
            )
            schedule = (
                f"sigma moving from {est.sigma_start:g} to {target} over {anneal} "
                "epochs"
            )
        text = (
            f"Training: a first network trains {first} epoch(s) on every row, "
            f"masking in each batch (left out of the loss) the {what}, {schedule}; "
            "masked_fraction is the share of its epochs in which a row was masked"
        )
    if getattr(est, "early_stopping", False) and "valid_loss" in histories[0][-1]:
        text += (
            f"; it stops when the loss of the {est.validation_fraction:.0%} of "
            "rows held out has not improved for "
            f"{est.n_iter_no_change} epochs"
        )
    if len(histories) > 1:
        kept = n_rows - int(np.count_nonzero(est.outlier_mask_))
        text += (
            f". A second network, trained from scratch for {len(histories[1])} "
            f"epoch(s) on the rows not flagged (about {kept}), gives the "
            + ("predictions" if task == "regression" else "probabilities")
        )
    return text + f" (max_epochs = {est.max_epochs}, shared by the two runs)."


def _pairs_note(given, likely, mask, shown=5):
    """The flagged labels by (given → likely) class pair, in words."""
    if not mask.any():
        return "no label flagged"
    pairs = {}
    for a, b in zip(given[mask], likely[mask], strict=True):
        pairs[(a, b)] = pairs.get((a, b), 0) + 1
    ranked = sorted(pairs.items(), key=lambda item: -item[1])[:shown]
    return f"flagged labels: {int(mask.sum())}; most as (given → likely class) " + (
        ", ".join(f"{label_text(a)} → {label_text(b)}: {n}" for (a, b), n in ranked)
    )


def _as_integers(values):
    """Float values that are all whole numbers as int64 (labels, counts)."""
    values = np.asarray(values)
    if (
        values.dtype.kind == "f"
        and len(values)
        and np.all(np.isfinite(values))
        and np.all(values == np.round(values))
        and np.abs(values).max() < 2**53
    ):
        return values.astype(np.int64)
    return values


def fit_audit(plan, *, seed=0, progress=False, stream=None, interval=None):
    """Fit the estimator on a prepared audit and report its flags.

    The flags are the fitted estimator's ``outlier_mask_``; the rows are
    ranked flagged first, then by ``outlier_scores_`` (regression: largest
    absolute z-score first; classification: most negative first).

    Returns an :class:`AuditResult` whose table holds every audited row,
    most suspicious first.
    """
    pd = pandas_module()
    model = build_model(plan, seed=seed)
    est = model.steps[-1][1]
    callback = None
    if progress:
        callback = EpochProgress(
            est.max_epochs, stream, PROGRESS_SECONDS if interval is None else interval
        )
        est.set_params(callbacks=[callback])
    labels = _as_integers(plan.y)
    y = np.log1p(plan.y) if plan.log_target else labels
    try:
        model.fit(plan.features, y)
    finally:
        if callback is not None:
            callback.close()
    mask = np.asarray(est.outlier_mask_, dtype=bool)
    scores = np.asarray(est.outlier_scores_, dtype=float)
    notes, warnings = list(plan.notes), list(plan.warnings)
    table = pd.DataFrame({"row": np.flatnonzero(plan.kept)})
    for column in plan.ids:
        table[column] = plan.id_values[column].to_numpy()
    table[plan.target] = labels
    hints = np.full(len(mask), "", dtype=object)
    if plan.task == "regression":
        fitted = model.predict(plan.features)
        prediction = np.expm1(fitted) if plan.log_target else fitted
        table["prediction"] = prediction
        table["z_score"] = scores
        residuals = (y - fitted)[~mask]
        spread = 1.4826 * np.median(np.abs(residuals - np.median(residuals)))
        tolerance = HINT_SPREADS * (spread if spread > 0 else np.std(residuals))
        for i in np.flatnonzero(mask):
            hints[i] = regression_hint(
                float(plan.y[i]), float(prediction[i]), tolerance, log=plan.log_target
            )
        order = np.lexsort((-np.abs(scores), ~mask))
    else:
        proba = model.predict_proba(plan.features)
        given = np.searchsorted(est.classes_, labels)
        rows = np.arange(len(given))
        others = proba.copy()
        others[rows, given] = -np.inf
        likely = others.argmax(axis=1)
        table["likely_label"] = est.classes_[likely]
        table["probability_of_likely_label"] = proba[rows, likely]
        table["probability_of_label"] = proba[rows, given]
        table["score"] = scores
        for i in np.flatnonzero(mask):
            hints[i] = label_hint(
                labels[i],
                est.classes_[likely[i]],
                proba[i, likely[i]],
                proba[i, given[i]],
            )
        order = np.lexsort((scores, ~mask))
        notes.append(_pairs_note(labels, est.classes_[likely], mask))
        share = mask.mean()
        if share > OVERLAP_SHARE:
            warnings.append(
                f"the model flags {share:.0%} of the labels: its classes overlap "
                "(the other columns barely tell them apart), so many flags are "
                "rows between two classes rather than wrong labels; see the "
                "class pairs in label_confusion.png"
            )
    table["masked_fraction"] = est.outlier_frequency_
    table["hint"] = hints
    table["flagged"] = mask
    table = table.iloc[order].reset_index(drop=True)
    return AuditResult(
        task=plan.task,
        target=plan.target,
        model=model,
        table=table,
        n_rows=plan.frame_rows,
        used_columns=plan.numeric + plan.categorical,
        id_columns=plan.ids,
        left_out=plan.left_out,
        rule=_flag_rule(plan.task, est, plan.log_target),
        notes=warnings + notes,
        warnings=warnings,
        sigma=est.sigma,
        epochs=est.max_epochs,
        batch_size=est.batch_size,
        device=est.device,
        features=plan.features,
        labels=labels,
        cells=plan.cells,
        training=_training_text(plan.task, est, len(mask), plan.log_target),
        log_target=plan.log_target,
    )


def row_values(result, rows):
    """Feature values of ``rows`` (positions in ``result.table``), as text."""
    if result.cells is None:
        return [""] * len(rows)
    pd = pandas_module()
    features = result.features
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(features[c])]
    zscores = robust_zscores(features, numeric)
    # The cells are in the order of the audited rows' numbers.
    audited = result.table["row"].to_numpy()
    positions = np.searchsorted(np.sort(audited), audited[np.asarray(rows, int)])
    return [feature_summary(result.cells, zscores, i) for i in positions]


def audit_frame(frame, target, *, seed=0, progress=False, **settings):
    """:func:`prepare_audit` then :func:`fit_audit`: the whole audit of a frame."""
    return fit_audit(
        prepare_audit(frame, target, **settings), seed=seed, progress=progress
    )
