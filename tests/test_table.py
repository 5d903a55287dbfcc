"""The audit's table: reading files and typing columns, before any training."""

import numpy as np
import pytest

from sk_zerror._table import (
    AuditError,
    date_features,
    infer_task,
    load_table,
    read_dates,
    read_numbers,
    split_columns,
)

pd = pytest.importorskip("pandas")


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


def test_the_encoding_of_a_csv_file_can_be_given(frame, tmp_path):
    frame["site"] = np.where(frame["x"] > 0, "Montréal", "Québec")
    path = tmp_path / "latin.csv"
    frame.to_csv(path, index=False, encoding="latin-1")
    with pytest.raises(AuditError, match="--encoding latin-1"):
        load_table(path)
    table = load_table(path, encoding="latin-1")
    assert set(table["site"]) == {"Montréal", "Québec"}


def test_a_one_column_file_has_nothing_to_learn_from(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("y\n1.5\n2.5\n3.5\n")
    with pytest.raises(AuditError, match=r"has one column \('y'\)"):
        load_table(path)
    path.write_text("y;x\n1.5;2\n2.5;3\n")  # other separators are still found
    assert list(load_table(path).columns) == ["y", "x"]


def test_split_columns_gives_each_column_its_role():
    frame = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(60)],
            "dose": [str(i / 2) for i in range(60)],
            "site": ["north", "south", "east"] * 20,
            "day": pd.date_range("2020-01-01", periods=60).astype(str),
            "comment": [f"free text {i}" for i in range(60)],
            "empty": [None] * 60,
            "y": np.arange(60.0),
        }
    )
    features, numeric, categorical, ids, notes = split_columns(frame, "y")
    assert ids == ["sample_id"]
    assert numeric == [
        "dose",
        "day_time",
        "day_season_sin",
        "day_season_cos",
        "day_weekday",
    ]
    assert categorical == ["site"]
    assert features["dose"].iloc[3] == 1.5
    assert "y" not in features and "comment" not in features
    assert "column 'empty' is empty and was not used" in notes
    assert (
        "column 'comment' has 60 distinct text values (more than 50) and was "
        "not used" in notes
    )


def test_infer_task_reads_labels_and_measurements():
    assert infer_task(pd.Series(["cat", "dog"] * 5)) == "classification"
    assert infer_task(pd.Series([True, False] * 5)) == "classification"
    assert infer_task(pd.Series([0, 1, 2] * 5)) == "classification"
    assert infer_task(pd.Series(np.arange(40))) == "regression"
    assert infer_task(pd.Series([0.5, 1.25, 2.0] * 5)) == "regression"
