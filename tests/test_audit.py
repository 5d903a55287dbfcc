"""The audit: checks before training, the estimator it fits, its flags."""

import copy
import io

import numpy as np
import pytest

from sk_zerror import ZErrorClassifier, ZErrorRegressor
from sk_zerror._audit import (
    EpochProgress,
    build_model,
    fit_audit,
    prepare_audit,
)
from sk_zerror._cli import main
from sk_zerror._table import AuditError, load_table, skewed_positive

pd = pytest.importorskip("pandas")


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


def test_settings_left_unset_stay_the_estimators_defaults(frame):
    plan = prepare_audit(frame, "y")
    assert (plan.sigma, plan.epochs, plan.batch_size, plan.device) == (
        "auto",
        None,
        None,
        None,
    )
    plan = prepare_audit(frame, "y", epochs=7, batch_size=64, sigma=3.0)
    assert (plan.epochs, plan.batch_size, plan.sigma) == (7, 64, 3.0)


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


# -- the fitted estimator's flags are the audit's ------------------------------


@pytest.fixture
def regression_table():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(240, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["site"] = rng.choice(["north", "south"], size=240)
    frame["y"] = X[:, 0] - 2 * X[:, 1] + (frame["site"] == "north") + 0.1 * X[:, 2]
    frame.loc[[4, 40, 90, 200], "y"] += [12.0, -15.0, 20.0, 9.0]
    frame = frame.drop(index=[10, 11]).reset_index(drop=True)  # rows renumbered
    frame.loc[[17, 18], "y"] = np.nan  # left out: audited rows != file rows
    return frame


@pytest.fixture
def label_table():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 2))
    angle = np.arctan2(X[:, 1], X[:, 0])
    label = np.array(["red", "green", "blue"])[
        ((angle + np.pi) // (2 * np.pi / 3)).astype(int) % 3
    ]
    flipped = rng.choice(300, 15, replace=False)
    label[flipped] = np.where(label[flipped] == "red", "blue", "red")
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "colour": label})
    frame.loc[[3, 33], "colour"] = None
    return frame


def refit(result, plan, seed):
    """The estimator fitted by hand on the same encoded table and settings."""
    expected = build_model(plan, seed=seed)
    y = np.log1p(plan.y) if plan.log_target else result.labels
    return expected.fit(plan.features, y).steps[-1][1]


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_the_audit_flags_are_the_estimators_outlier_mask(
    task, regression_table, label_table
):
    frame, target = (
        (regression_table, "y") if task == "regression" else (label_table, "colour")
    )
    plan = prepare_audit(frame, target, epochs=12)
    assert plan.task == task
    result = fit_audit(plan, seed=3)
    est = result.estimator
    rows = np.flatnonzero(plan.kept)  # file row of each audited row
    flagged = set(result.flagged["row"])
    assert flagged == set(rows[est.outlier_mask_])
    assert 0 < len(flagged) < len(rows)
    # The same table and settings fitted by hand give the same mask.
    assert flagged == set(rows[refit(result, plan, seed=3).outlier_mask_])
    # Flagged rows first, then by outlier_scores_.
    table = result.table
    score = dict(zip(rows, est.outlier_scores_, strict=True))
    ranked = np.array([score[r] for r in table["row"]])
    assert table["flagged"].tolist() == sorted(table["flagged"], reverse=True)
    for part in (table["flagged"].to_numpy(), ~table["flagged"].to_numpy()):
        if task == "regression":
            assert np.all(np.diff(np.abs(ranked[part])) <= 0)
        else:
            assert np.all(np.diff(ranked[part]) >= 0)  # most negative first
    column = "z_score" if task == "regression" else "score"
    np.testing.assert_allclose(table[column], ranked, rtol=0, atol=0)
    np.testing.assert_allclose(
        table["masked_fraction"],
        [dict(zip(rows, est.outlier_frequency_, strict=True))[r] for r in table["row"]],
    )


def test_the_audit_fits_the_estimator_at_its_defaults(frame):
    model = build_model(prepare_audit(frame, "y"), seed=5)
    est = model.steps[-1][1]
    assert est.get_params() == ZErrorRegressor(random_state=5).get_params()
    frame["kind"] = np.where(frame["x"] > 0, "big", "small")
    est = build_model(prepare_audit(frame, "kind"), seed=5).steps[-1][1]
    assert est.get_params() == ZErrorClassifier(random_state=5).get_params()


@pytest.mark.parametrize(
    "options, expected",
    [
        ([], {}),
        (["--sigma", "auto"], {}),
        (
            ["--sigma", "3.5", "--epochs", "4", "--batch-size", "50"]
            + ["--device", "cpu"],
            {"sigma": 3.5, "max_epochs": 4, "batch_size": 50, "device": "cpu"},
        ),
        (["--epochs", "2"], {"max_epochs": 2}),
    ],
)
def test_cli_options_reach_the_estimators_parameters(
    frame, tmp_path, monkeypatch, options, expected
):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    fitted = []

    def fake_fit(plan, *, seed=0, progress=False, **kwargs):
        fitted.append(build_model(plan, seed=seed).steps[-1][1])
        raise AuditError("stop before training")

    monkeypatch.setattr("sk_zerror._audit.fit_audit", fake_fit)
    code = main(
        ["audit", str(path), "--target", "y", "--out", str(tmp_path / "o")]
        + ["--quiet", "--seed", "9", *options]
    )
    assert code == 2
    params = ZErrorRegressor(random_state=9, **expected).get_params()
    assert fitted[-1].get_params() == params


def test_progress_counts_both_training_runs(regression_table):
    stream = io.StringIO()
    plan = prepare_audit(regression_table, "y", epochs=6)
    result = fit_audit(plan, seed=0, progress=True, stream=stream, interval=0.0)
    est = result.estimator
    assert len(est.run_histories_) == 2  # a first run and a retrain
    lines = stream.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        f"training: epoch {i}/6" for i in range(1, 7)
    ] + ["training: epoch 6/6"]
    first = len(est.run_histories_[0])
    assert "sigma" in lines[first - 1] and "masked" in lines[first - 1]
    assert "retrain without the flagged rows" in lines[first]
    # Shared, not copied, by the estimator's copy of its callbacks.
    progress = EpochProgress(6)
    assert copy.deepcopy([progress])[0] is progress


def test_progress_counts_a_whole_retrain_after_a_whole_first_run(label_table):
    # The classifier's first run trains every epoch (too few to stop early),
    # so the retrain gets a whole run too: the total grows to both.
    stream = io.StringIO()
    plan = prepare_audit(label_table, "colour", epochs=3)
    result = fit_audit(plan, seed=0, progress=True, stream=stream, interval=0.0)
    assert [len(h) for h in result.estimator.run_histories_] == [3, 3]
    lines = [line.split(",")[0] for line in stream.getvalue().splitlines()]
    assert lines == [f"training: epoch {i}/3" for i in range(1, 4)] + [
        f"training: epoch {i}/6" for i in range(4, 7)
    ] + ["training: epoch 6/6"]


def test_a_byte_order_mark_is_not_part_of_the_first_name(frame, tmp_path):
    frame.insert(0, "id", [f"r{i}" for i in range(len(frame))])
    path = tmp_path / "excel.csv"
    frame.to_csv(path, index=False, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbfid,")
    for encoding in (None, "utf-8"):
        table = load_table(path, encoding=encoding)
        assert list(table.columns) == ["id", "x", "y"]
    assert prepare_audit(table, "y").ids == ["id"]


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
