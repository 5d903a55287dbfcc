"""The audit's output folder: never costs anyone data, even racing or signalled."""

import json
import os
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from sk_zerror import _audit, _output_folder, _report
from sk_zerror._cli import main
from sk_zerror._output_folder import (
    LOCK,
    MARKER,
    OutputClaim,
    check_output_folder,
    claim_output_folder,
)
from sk_zerror._table import AuditError

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")


def snapshot(folder):
    """Every file under ``folder`` with its bytes (hidden files included)."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A project folder holding data.csv and a notes file, as a user's would."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    frame = pd.DataFrame({"sample_id": [f"S{i}" for i in range(60)]})
    frame["a"], frame["b"] = X[:, 0], X[:, 1]
    frame["y"] = X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=60)
    frame.loc[[3, 30], "y"] += 20
    project = tmp_path / "project"
    project.mkdir()
    frame.to_csv(project / "data.csv", index=False)
    (project / "notes.txt").write_text("my lab notes\n")
    (project / "raw").mkdir()
    (project / "raw" / "instrument.log").write_bytes(b"\x00\x01binary")
    monkeypatch.chdir(project)
    return project


def audit(*args):
    return main(["audit", *map(str, args), "--epochs", "2", "--sigma", "3", "--quiet"])


@pytest.mark.parametrize(
    "out, message",
    [
        (".", "is the current directory"),
        ("{project}", "is the current directory"),
        ("{tmp}", "contains the input file"),
        ("raw/..", "is the current directory"),
    ],
)
def test_a_folder_holding_the_input_or_the_working_directory_is_refused(
    workspace, capsys, out, message
):
    before = snapshot(workspace.parent)
    out = out.format(project=workspace, tmp=workspace.parent)
    assert audit("data.csv", "--target", "y", "--out", out, "--force") == 2
    err = capsys.readouterr().err
    assert message in err and "choose a new folder with --out" in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(workspace.parent) == before


def test_the_folder_of_the_input_file_is_refused_from_elsewhere(
    workspace, tmp_path, capsys, monkeypatch
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    before = snapshot(tmp_path)
    code = audit(workspace / "data.csv", "--target", "y", "--out", workspace, "--force")
    assert code == 2
    assert "contains the input file" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_the_home_directory_is_refused(workspace, tmp_path, capsys, monkeypatch):
    home = tmp_path / "users" / "me"
    home.mkdir(parents=True)
    (home / ".bashrc").write_text("export PATH\n")
    monkeypatch.setenv("HOME", str(home))
    before = snapshot(tmp_path)
    for out in (home, home.parent):
        assert audit("data.csv", "--target", "y", "--out", out, "--force") == 2
        assert "your home directory" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_a_folder_not_written_by_an_audit_is_never_replaced(workspace, capsys):
    before = snapshot(workspace)
    code = audit("data.csv", "--target", "y", "--out", "raw", "--force")
    assert code == 2
    assert "was not written by sk-zerror audit" in capsys.readouterr().err
    assert snapshot(workspace) == before


def test_a_fake_marker_does_not_make_a_folder_replaceable(workspace, capsys):
    (workspace / "raw" / MARKER).write_text(json.dumps({"kind": "other"}))
    before = snapshot(workspace)
    assert audit("data.csv", "--target", "y", "--out", "raw", "--force") == 2
    assert "was not written by sk-zerror audit" in capsys.readouterr().err
    assert snapshot(workspace) == before


def test_an_earlier_audit_is_replaced_only_with_force(workspace, capsys):
    assert audit("data.csv", "--target", "y", "--out", "report") == 0
    marker = json.loads((workspace / "report" / MARKER).read_text())
    assert set(marker["files"]) == {
        p.name for p in (workspace / "report").iterdir()
    } - {MARKER}
    capsys.readouterr()
    earlier = snapshot(workspace)
    assert audit("data.csv", "--target", "y", "--out", "report") == 2
    assert "holds an earlier audit; use --force" in capsys.readouterr().err
    assert snapshot(workspace) == earlier
    code = main(
        ["audit", "data.csv", "--target", "y", "--out", "report", "--force"]
        + ["--epochs", "2", "--sigma", "3"]
    )
    assert code == 0
    assert "replacing the earlier audit in report" in capsys.readouterr().err
    after = snapshot(workspace)
    assert {k: v for k, v in after.items() if not k.startswith("report/")} == {
        k: v for k, v in earlier.items() if not k.startswith("report/")
    }
    # No staging or backup folder left behind.
    assert sorted(p.name for p in workspace.iterdir()) == [
        "data.csv",
        "notes.txt",
        "raw",
        "report",
    ]


def test_a_file_added_to_an_earlier_audit_keeps_it_from_being_replaced(
    workspace, capsys
):
    assert audit("data.csv", "--target", "y", "--out", "report") == 0
    (workspace / "report" / "my_comments.txt").write_text("row 3 checked\n")
    before = snapshot(workspace)
    assert audit("data.csv", "--target", "y", "--out", "report", "--force") == 2
    err = capsys.readouterr().err
    assert "holds files an earlier audit did not write (my_comments.txt)" in err
    assert snapshot(workspace) == before


def test_neighbouring_hidden_folders_survive_the_swap(workspace):
    # The old code removed a sibling named ".report.old" without asking.
    (workspace / ".report.old").mkdir()
    (workspace / ".report.old" / "precious.txt").write_text("keep")
    assert audit("data.csv", "--target", "y", "--out", "report") == 0
    assert audit("data.csv", "--target", "y", "--out", "report", "--force") == 0
    assert (workspace / ".report.old" / "precious.txt").read_text() == "keep"
    hidden = sorted(p.name for p in workspace.iterdir() if p.name.startswith("."))
    assert hidden == [".report.old"]


def test_a_failed_write_keeps_the_earlier_audit(workspace, capsys, monkeypatch):
    assert audit("data.csv", "--target", "y", "--out", "report") == 0
    before = snapshot(workspace)

    def broken(result, folder):
        raise OSError("No space left on device")

    monkeypatch.setattr("sk_zerror._report._figures", broken)
    assert audit("data.csv", "--target", "y", "--out", "report", "--force") == 2
    assert "cannot write the output folder report: No space left" in (
        capsys.readouterr().err
    )
    assert snapshot(workspace) == before
    assert not [p for p in workspace.iterdir() if "staging" in p.name]


def test_symbolic_links_and_files_are_refused(workspace, capsys):
    (workspace / "link").symlink_to(workspace / "raw")
    before = snapshot(workspace)
    assert audit("data.csv", "--target", "y", "--out", "link", "--force") == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert audit("data.csv", "--target", "y", "--out", "notes.txt", "--force") == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert snapshot(workspace) == before


def test_an_empty_folder_is_used(workspace):
    (workspace / "empty").mkdir()
    assert audit("data.csv", "--target", "y", "--out", "empty") == 0
    assert (workspace / "empty" / "report.html").exists()
    umask = os.umask(0)
    os.umask(umask)
    assert (workspace / "empty").stat().st_mode & 0o777 == 0o777 & ~umask


def test_an_unwritable_place_is_refused_before_training(workspace, monkeypatch):
    monkeypatch.setattr(
        "sk_zerror._output_folder.os.access", lambda path, mode: path != workspace
    )
    with pytest.raises(AuditError, match="is not writable; choose another folder"):
        check_output_folder("sub/report", force=False)


def test_check_output_folder_says_when_it_replaces(workspace):
    assert check_output_folder("new", force=False)[1] is False
    assert audit("data.csv", "--target", "y", "--out", "report") == 0
    assert check_output_folder("report", force=True)[1] is True


def test_of_audits_claiming_one_new_folder_together_exactly_one_wins(workspace):
    threads, barrier = 8, threading.Barrier(8)
    outcomes = [None] * threads

    def claim(i):
        barrier.wait()
        try:
            outcomes[i] = claim_output_folder("new/report", force=False)
        except AuditError as exc:
            outcomes[i] = str(exc)

    workers = [threading.Thread(target=claim, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    claims = [o for o in outcomes if isinstance(o, OutputClaim)]
    assert len(claims) == 1
    for message in set(outcomes) - set(claims):
        assert "is being written by another sk-zerror audit (process" in message
    assert os.listdir(workspace / "new" / "report") == [LOCK]
    claims[0].release()
    # Nothing of the audits is left: no lock, no file. A folder that a losing
    # audit made while racing for the same new path may stay behind, empty
    # (the winner removes the folders it made and those missing when it began).
    left = [p for p in (workspace / "new").rglob("*") if not p.is_dir()]
    assert left == []


def test_a_folder_claimed_by_a_running_audit_is_refused(workspace, capsys):
    claim = claim_output_folder("report", force=False)
    before = snapshot(workspace)
    for force in ([], ["--force"]):
        assert audit("data.csv", "--target", "y", "--out", "report", *force) == 2
        err = capsys.readouterr().err
        assert re.search(
            r"output folder report is being written by another sk-zerror audit "
            rf"\(process {os.getpid()} on .*\): wait for it to finish or choose "
            "another folder with --out",
            err,
        )
        assert len(err.strip().splitlines()) == 1
        assert snapshot(workspace) == before
    claim.release()
    assert audit("data.csv", "--target", "y", "--out", "report") == 0


def test_the_lock_of_a_stopped_audit_is_named_with_the_fix(workspace):
    finished = subprocess.Popen(["true"])
    finished.wait()
    (workspace / "report").mkdir()
    lock = {"token": "x", "pid": finished.pid, "host": socket.gethostname()}
    (workspace / "report" / LOCK).write_text(json.dumps(lock))
    with pytest.raises(
        AuditError,
        match=rf"process {finished.pid} no longer runs, so delete report/{LOCK}",
    ):
        check_output_folder("report", force=True)


def add_a_file_after(monkeypatch, module, name):
    """The user writes report/mine.txt just after ``module.name`` runs."""
    original = getattr(module, name)

    def then_add(*args, **kwargs):
        value = original(*args, **kwargs)
        (Path("report") / "mine.txt").write_text("my notes\n")
        return value

    monkeypatch.setattr(module, name, then_add)


@pytest.mark.parametrize("earlier", [False, True])
def test_a_file_added_during_the_audit_is_never_deleted(
    workspace, capsys, monkeypatch, earlier
):
    if earlier:
        assert audit("data.csv", "--target", "y", "--out", "report") == 0
    before = snapshot(workspace)
    add_a_file_after(monkeypatch, _audit, "fit_audit")  # during training
    assert audit("data.csv", "--target", "y", "--out", "report", "--force") == 2
    err = capsys.readouterr().err
    assert (
        "files appeared in the output folder report during the audit (mine.txt); "
        "it was left as it was and nothing was written" in err
    )
    assert snapshot(workspace) == {**before, "report/mine.txt": b"my notes\n"}
    assert sorted(p.name for p in workspace.iterdir()) == [
        "data.csv",
        "notes.txt",
        "raw",
        "report",
    ]


def test_a_file_added_during_the_swap_is_kept_beside_the_report(
    workspace, capsys, monkeypatch
):
    assert audit("data.csv", "--target", "y", "--out", "report") == 0
    capsys.readouterr()
    # After the last check, before the old folder is moved away.
    add_a_file_after(monkeypatch, _output_folder, "_replaceable")
    assert audit("data.csv", "--target", "y", "--out", "report", "--force") == 0
    err = capsys.readouterr().err
    kept = [p for p in workspace.iterdir() if p.name.startswith(".report.old-")]
    assert len(kept) == 1 and os.listdir(kept[0]) == ["mine.txt"]
    assert f"are kept in {kept[0].name}" in err
    assert (workspace / "report" / "report.html").exists()
    assert LOCK not in os.listdir(workspace / "report")


def test_a_signal_during_the_swap_lets_it_finish(workspace, capsys, monkeypatch):
    received = []
    previous = signal.signal(signal.SIGTERM, lambda *a: received.append(a))
    try:
        original = _output_folder._replaceable

        def signalled(claim):
            os.kill(os.getpid(), signal.SIGTERM)
            return original(claim)

        monkeypatch.setattr(_output_folder, "_replaceable", signalled)
        assert audit("data.csv", "--target", "y", "--out", "report") == 0
        assert (workspace / "report" / "report.html").exists()
        # Just before the swap, the same signal stops the audit.
        monkeypatch.setattr(_output_folder, "_replaceable", original)
        original_render = _report.render_html

        def render_then_signal(*args, **kwargs):
            page = original_render(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGTERM)
            return page

        monkeypatch.setattr(_report, "render_html", render_then_signal)
        before = snapshot(workspace)
        code = audit("data.csv", "--target", "y", "--out", "report", "--force")
        assert code == 143
        assert "interrupted (SIGTERM); nothing was written" in capsys.readouterr().err
        assert snapshot(workspace) == before
        assert sorted(p.name for p in workspace.iterdir()) == [
            "data.csv",
            "notes.txt",
            "raw",
            "report",
        ]
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == []  # every signal went to the audit's handler
