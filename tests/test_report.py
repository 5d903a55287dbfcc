"""The audit's outputs: the output folder never costs anyone data; the reports."""

import json
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

from sk_zerror._audit import AuditError
from sk_zerror._cli import main
from sk_zerror._report import MARKER, _markdown_table, check_output_folder

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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
        "sk_zerror._report.os.access", lambda path, mode: path != workspace
    )
    with pytest.raises(AuditError, match="is not writable; choose another folder"):
        check_output_folder("sub/report", force=False)


def test_check_output_folder_says_when_it_replaces(workspace):
    assert check_output_folder("new", force=False)[1] is False
    assert audit("data.csv", "--target", "y", "--out", "report") == 0
    assert check_output_folder("report", force=True)[1] is True


def test_markdown_cells_cannot_break_the_table():
    frame = pd.DataFrame(
        {"a|b": ["x | y", "line\nbreak", "<script>alert(1)</script>"], "n": [1, 2, 3]}
    )
    lines = _markdown_table(frame).splitlines()
    assert len(lines) == 5
    # Three cell separators on every line: no cell adds or removes one.
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 3 for line in lines)
    assert "x \\| y" in lines[2] and "line break" in lines[3]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in lines[4]


HOSTILE = "<img src=x onerror=\"document.body.setAttribute('data-pwned',1)\">"


@pytest.fixture
def hostile_audit(tmp_path):
    """An audit of a table whose ids, text cells and column names are markup."""
    rng = np.random.default_rng(3)
    n = 80
    X = rng.normal(size=(n, 2))
    frame = pd.DataFrame(
        {
            "sample_id": [f"S{i}" for i in range(n)],
            "<b>dose</b>": X[:, 0],
            "b": X[:, 1],
            "y": X[:, 0] + 0.1 * rng.normal(size=n),
        }
    )
    frame.loc[5, "sample_id"] = "<script>document.title='pwned'</script>"
    frame.loc[9, "sample_id"] = HOSTILE
    frame.loc[[5, 9, 20], "y"] += 25
    path = tmp_path / "hostile.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    code = main(
        ["audit", str(path), "--target", "y", "--out", str(out), "--quiet"]
        + ["--epochs", "40", "--sigma", "3"]
    )
    assert code == 0
    return out


def test_html_report_escapes_the_data_and_loads_nothing(hostile_audit):
    page = (hostile_audit / "report.html").read_text()
    assert "<script>document.title" not in page and "<img src=x" not in page
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page
    assert "&lt;b&gt;dose&lt;/b&gt;" in page
    # Every image is inline and nothing refers to another file or host.
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert page.count("data:image/png;base64,") == 2
    md = (hostile_audit / "report.md").read_text()
    assert "<script>" not in md and "<img" not in md


def chromium(*args):
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        return subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs chromium (apt-get install chromium)"
)
def test_html_report_renders_in_chromium_and_runs_no_injected_code(hostile_audit):
    page = hostile_audit / "report.html"
    flagged = pd.read_csv(hostile_audit / "flagged.csv")
    dom = chromium("--dump-dom", page.as_uri())
    assert "<title>sk-zerror audit report</title>" in dom
    assert not re.search(r"<body[^>]*data-pwned", dom)
    assert "<title>pwned" not in dom
    # The hostile ids arrive as text in the table.
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert f'<span id="shown">{len(flagged)}</span>' in dom
    assert dom.count("<tr><td>") == len(flagged)
    # Filtering and sorting from the address, as typing and clicking do.
    dom = chromium("--dump-dom", page.as_uri() + "#q=S20")
    assert '<span id="shown">1</span>' in dom
    dom = chromium("--dump-dom", page.as_uri() + "#sort=row&order=descending")
    rows = [int(r) for r in re.findall(r"<tr><td>(\d+)</td>", dom)]
    assert rows == sorted(flagged["row"], reverse=True)
    shot = hostile_audit / "screenshot.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
