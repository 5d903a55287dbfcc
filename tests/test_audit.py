"""The audit's checks before training: columns, targets and settings."""

import numpy as np
import pytest

from sk_zerror._audit import (
    AuditError,
    date_features,
    prepare_audit,
    read_dates,
    read_numbers,
    skewed_positive,
)

pd = pytest.importorskip("pandas")


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    return pd.DataFrame({"x": x, "y": 2 * x + 0.1 * rng.normal(size=200)})


def test_a_numeric_feature_with_stray_text_stays_numeric(frame):
    frame["dose"] = frame["x"].round(2).astype(str).astype(object)
    frame.loc[[4, 17], "dose"] = ["n/a?", "<0.1"]
    plan = prepare_audit(frame, "y")
    assert "dose" in plan.numeric and "dose" not in plan.categorical
    assert plan.features["dose"].isna().sum() == 2
    assert (
        "column 'dose': 2 cell(s) that are not finite numbers were treated as "
        "missing: rows 4, 17" in plan.notes
    )


def test_read_numbers_refuses_mostly_text_columns():
    assert read_numbers(pd.Series(["a", "b", "1", None])) is None
    assert read_numbers(pd.Series(["1.5", "2", "x", None] * 10)) is None
    values, unreadable = read_numbers(pd.Series(["1.5", "2"] * 10 + ["x", None]))
    assert unreadable.tolist() == [False] * 20 + [True, False]
    assert np.isnan(values.iloc[20:]).all()
    assert values.iloc[0] == 1.5


def test_dates_parse_and_constant_parts_are_dropped():
    text = pd.Series(["2012-01-01", "2012-06-15", "2013-03-02", None])
    dates = read_dates(text)
    assert dates.dt.year.tolist()[:3] == [2012, 2012, 2013]
    assert read_dates(pd.Series(["12.5", "13.1"])) is None
    assert read_dates(pd.Series(["north", "south"])) is None
    new_years = pd.Series(pd.to_datetime(["1970-01-01", "1971-01-01", "1972-01-01"]))
    assert list(date_features("Year", new_years)) == ["Year_time"]
    days = pd.Series(pd.date_range("2020-01-01", periods=30, freq="D"))
    assert list(date_features("day", days)) == [
        "day_time",
        "day_season_sin",
        "day_season_cos",
        "day_weekday",
    ]


def test_skewed_positive_targets_are_modelled_on_the_log_scale(frame):
    rng = np.random.default_rng(1)
    assert skewed_positive(rng.lognormal(size=1000))
    assert skewed_positive(rng.poisson(0.8, size=1000) * rng.lognormal(size=1000))
    assert not skewed_positive(rng.normal(10, 1, size=1000))
    assert not skewed_positive(rng.normal(size=1000))  # negative values
    counts = frame.assign(y=rng.poisson(np.exp(1 + frame["x"])))
    plan = prepare_audit(counts, "y")
    assert plan.log_target and any("log(1 + y)" in note for note in plan.notes)
    assert not prepare_audit(frame, "y").log_target


def test_text_labels_stay_labels(frame):
    frame["grade"] = np.where(frame["x"] > 0, "1", "2")
    plan = prepare_audit(frame, "grade", task="classification")
    assert plan.task == "classification" and set(plan.y) == {"1", "2"}


def test_tiny_classes_are_named_in_a_warning(frame):
    frame["kind"] = np.where(frame["x"] > 0, "big", "small")
    frame.loc[:2, "kind"] = "rare"
    plan = prepare_audit(frame, "kind")
    assert plan.warnings == [
        "class(es) 'rare' have fewer than 5 rows; their labels cannot be checked "
        "against a class distribution and are rarely flagged"
    ]


def test_defaults_follow_the_table_size(frame):
    plan = prepare_audit(frame, "y")
    assert (plan.epochs, plan.batch_size) == (150, 256)
    big = pd.concat([frame] * 150, ignore_index=True)  # 30,000 rows
    plan = prepare_audit(big, "y")
    assert plan.batch_size == 512 and plan.epochs == 51
    plan = prepare_audit(big, "y", epochs=7, batch_size=64)
    assert (plan.epochs, plan.batch_size) == (7, 64)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"sigma": "fdr"}, "--sigma must be 'auto' or a number > 0, got 'fdr'"),
        ({"sigma": float("nan")}, "--sigma must be a finite number > 0, got nan"),
        ({"sigma": -1.0}, "--sigma must be a finite number > 0, got -1.0"),
        ({"device": "tpu"}, "--device tpu: device='tpu' is not a torch device"),
    ],
)
def test_settings_are_checked(frame, settings, message):
    with pytest.raises(
        AuditError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        prepare_audit(frame, "y", **settings)


def test_cuda_is_refused_where_there_is_none(frame):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(AuditError, match="--device cuda: .*CUDA is not available"):
        prepare_audit(frame, "y", device="cuda")
