"""The audit's checks before training: columns, targets and settings."""

import numpy as np
import pytest

from sk_zerror._audit import (
    AuditError,
    date_features,
    load_table,
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
        ({"sigma": 1e-300}, "--sigma must be between 0.1 and 1000, got 1e-300"),
        ({"sigma": 1e308}, "--sigma must be between 0.1 and 1000, got 1e.308"),
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


def test_a_byte_order_mark_is_not_part_of_the_first_name(frame, tmp_path):
    frame.insert(0, "id", [f"r{i}" for i in range(len(frame))])
    path = tmp_path / "excel.csv"
    frame.to_csv(path, index=False, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbfid,")
    for encoding in (None, "utf-8"):
        table = load_table(path, encoding=encoding)
        assert list(table.columns) == ["id", "x", "y"]
    assert prepare_audit(table, "y").ids == ["id"]


def test_the_encoding_of_a_csv_file_can_be_given(frame, tmp_path):
    frame["site"] = np.where(frame["x"] > 0, "Montréal", "Québec")
    path = tmp_path / "latin.csv"
    frame.to_csv(path, index=False, encoding="latin-1")
    with pytest.raises(AuditError, match="--encoding latin-1"):
        load_table(path)
    table = load_table(path, encoding="latin-1")
    assert set(table["site"]) == {"Montréal", "Québec"}


def test_nested_columns_are_left_out_with_a_note(frame, tmp_path):
    frame["tags"] = [["a", "b"]] * len(frame)
    frame["point"] = [{"lat": 1.0, "lon": 2.0}] * len(frame)
    frame["sample_id"] = [[i] for i in range(len(frame))]
    path = tmp_path / "nested.parquet"
    frame.to_parquet(path)
    plan = prepare_audit(load_table(path), "y")
    assert plan.numeric == ["x"] and plan.categorical == [] and plan.ids == []
    for column in ("tags", "point", "sample_id"):
        assert (
            f"column '{column}' holds lists or structures (nested values) and was "
            "not used" in plan.notes
        )


def test_repeated_column_names(frame, tmp_path):
    path = tmp_path / "repeated.csv"
    path.write_text(
        "x,x,y\n"
        + "".join(f"{a},{a},{b}\n" for a, b in zip(frame.x, frame.y, strict=True))
    )
    plan = prepare_audit(load_table(path), "y")
    assert plan.numeric == ["x", "x.1"]
    assert (
        "column name 'x' appears 2 times in the header; pandas named the copies x.1"
        in plan.notes
    )
    with pytest.raises(AuditError, match="names the target column 'x' 2 times"):
        prepare_audit(load_table(path), "x")
    twice = pd.concat([frame, frame[["x"]]], axis=1)  # as Parquet allows
    with pytest.raises(AuditError, match="column name 'x' appears 2 times; rename"):
        prepare_audit(twice, "y")


def test_a_one_column_file_has_nothing_to_learn_from(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("y\n1.5\n2.5\n3.5\n")
    with pytest.raises(AuditError, match=r"has one column \('y'\)"):
        load_table(path)
    path.write_text("y;x\n1.5;2\n2.5;3\n")  # other separators are still found
    assert list(load_table(path).columns) == ["y", "x"]


@pytest.mark.parametrize(
    "labels, message",
    [
        (
            np.repeat([f"c{i}" for i in range(60)], 10),
            "target column 'label' has 60 classes; an audit handles at most 50",
        ),
        (
            np.repeat([f"c{i}" for i in range(300)], 2),
            "300 distinct values, most of them in fewer than 5 rows",
        ),
        (np.repeat(np.arange(60), 10), r"looks continuous \(60 distinct numbers\)"),
    ],
)
def test_too_many_classes_are_refused_before_training(labels, message):
    frame = pd.DataFrame({"x": np.arange(len(labels)) % 7, "label": labels})
    with pytest.raises(AuditError, match=message):
        prepare_audit(frame, "label", task="classification")


def test_the_batch_is_at_most_the_rows(frame):
    plan = prepare_audit(frame, "y", batch_size=1_000_000_000)
    assert plan.batch_size == 200
    assert (
        "--batch-size 1000000000 is more than the 200 audited rows: each batch "
        "holds all 200" in plan.notes
    )
