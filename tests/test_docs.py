"""The documentation: API reference coverage, docstrings, guide doctests, build."""

import contextlib
import dataclasses
import doctest
import importlib.util
import inspect
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sk_zerror
import sk_zerror.plotting
from sk_zerror._cli import build_parser

DOCS = Path(__file__).resolve().parent.parent / "docs"

PUBLIC = sorted(
    [
        (name, getattr(sk_zerror, name))
        for name in sk_zerror.__all__
        if name != "__version__"
    ]
    + [
        (name, getattr(sk_zerror.plotting, name)) for name in sk_zerror.plotting.__all__
    ],
    key=lambda item: item[0],
)
PUBLIC_IDS = [name for name, _ in PUBLIC]

# Public names without an Examples section, each with the reason.
NO_EXAMPLES = {
    # Result containers: their examples are those of the functions returning them.
    "Cutoff": "returned by gaussian_cutoff and skewnorm_cutoff",
    "OutlierResult": "returned by find_outliers and find_label_outliers",
    "ZErrorOutput": "returned by the losses' evaluate",
}


def _api_reference_text():
    return "\n".join(path.read_text() for path in sorted(DOCS.glob("api/*.rst")))


def _documented_names(section):
    """Names of a numpydoc parameter list; "a, b, c" documents three at once."""
    return {
        name.strip().lstrip("*")
        for entry in section
        for name in entry.name.split(",")
        if name.strip()
    }


@pytest.mark.parametrize(("name", "obj"), PUBLIC, ids=PUBLIC_IDS)
def test_public_name_in_api_reference(name, obj):
    listed = re.search(rf"^\s+~?{re.escape(name)}\s*$", _api_reference_text(), re.M)
    assert listed, f"{name} is public but not listed in any docs/api/*.rst autosummary"


@pytest.mark.parametrize(("name", "obj"), PUBLIC, ids=PUBLIC_IDS)
def test_public_docstring_is_numpydoc(name, obj):
    docscrape = pytest.importorskip("numpydoc.docscrape")
    doc = docscrape.NumpyDocString(inspect.getdoc(obj) or "")
    assert doc["Summary"], f"{name} has no one-line summary"
    if dataclasses.is_dataclass(obj) or hasattr(obj, "_fields"):
        # A result container (dataclass or named tuple) documents its fields
        # as attributes.
        expected = set(
            obj._fields
            if hasattr(obj, "_fields")
            else (field.name for field in dataclasses.fields(obj))
        )
        documented = _documented_names(doc["Attributes"])
        section = "Attributes"
    else:
        expected = {
            parameter.name
            for parameter in inspect.signature(obj).parameters.values()
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        }
        documented = _documented_names(doc["Parameters"])
        section = "Parameters"
    missing = sorted(expected - documented)
    assert not missing, f"{name}: {missing} not documented under {section}"
    if name not in NO_EXAMPLES:
        examples = "\n".join(doc["Examples"])
        assert ">>>" in examples, f"{name} has no doctest in an Examples section"


# The hand-written pages; the gallery's and the API's pages are generated.
GUIDE_PAGES = sorted([*DOCS.glob("*.rst"), *DOCS.glob("user_guide/*.rst")])


@pytest.mark.parametrize(
    "path",
    [p for p in GUIDE_PAGES if ">>>" in p.read_text()],
    ids=lambda p: str(p.relative_to(DOCS)),
)
def test_guide_doctests(path):
    failures, attempted = doctest.testfile(
        str(path),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert attempted > 0
    assert failures == 0, f"{failures} doctest(s) failed in {path.name}"


def test_audit_options_documented():
    audit = next(
        action
        for action in build_parser()._subparsers._group_actions
        if "audit" in getattr(action, "choices", {})
    ).choices["audit"]
    guide = (DOCS / "user_guide" / "audit.rst").read_text()
    options = [
        option
        for action in audit._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]
    assert options
    missing = [option for option in options if f"``{option}" not in guide]
    assert not missing, f"options not described in user_guide/audit.rst: {missing}"


@pytest.mark.parametrize(
    "path",
    sorted((DOCS / "examples").glob("**/plot_*.py")),
    ids=lambda p: p.name,
)
def test_gallery_example_has_title_and_figure(path):
    source = path.read_text()
    docstring = re.search(r'^"""\n(=+)\n(.+)\n(=+)\n', source, re.M)
    assert docstring, f"{path.name} does not open with a titled docstring"
    rule, title, closing = docstring.groups()
    assert len(rule) >= len(title) and rule == closing
    assert "plt.show()" in source or "savefig" in source
    compile(source, str(path), "exec")


README = DOCS.parent / "README.md"


def _readme_python_blocks():
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)


def _run_block(code):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    return out.getvalue().split()


def test_readme_regressor_example_prints_what_it_says():
    (code,) = [b for b in _readme_python_blocks() if "ZErrorRegressor(" in b]
    # Every error flagged; the first, masked run refused 5% (the 15 errors).
    assert _run_block(code) == ["True", "0.05"]


def test_readme_loss_example_prints_what_it_says():
    (code,) = [b for b in _readme_python_blocks() if "ZErrorMSELoss(" in b]
    weight, errors_masked = _run_block(code)
    assert float(weight) == pytest.approx(3.0, abs=0.05)
    assert errors_masked == "True"


DOCS_PACKAGES = (
    "sphinx",
    "numpydoc",
    "sphinx_gallery",
    "pydata_sphinx_theme",
    "myst_parser",
)


@pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in DOCS_PACKAGES),
    reason="needs the docs extra: pip install -e '.[docs]'",
)
def test_docs_build_quick(tmp_path):
    """The site builds with warnings as errors, gallery not run (about 30 s)."""
    source = tmp_path / "docs"
    # A copy, so that the generated gallery and API pages of a full build in
    # docs/ are left alone.
    shutil.copytree(
        DOCS,
        source,
        ignore=shutil.ignore_patterns("_build", "auto_examples", "gen_modules"),
    )
    out = tmp_path / "html"
    env = {**os.environ, "SK_ZERROR_DOCS_QUICK": "1", "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q"]
    result = subprocess.run(
        [*command, "-b", "html", str(source), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    for page in [
        "index.html",
        "user_guide/method.html",
        "api/index.html",
        "gen_modules/sk_zerror.ZErrorRegressor.html",
        "auto_examples/index.html",
        "comparison.html",
        "benchmarks/index.html",
        "benchmarks/defaults.html",
        "benchmarks/archive.html",
    ]:
        assert (out / page).is_file(), f"{page} was not built"
    home = (out / "index.html").read_text()
    assert "Z-Error" in home


BENCHMARK_SCRIPTS = sorted(
    [
        *(DOCS.parent / "benchmarks").glob("bench_*.py"),
        *(DOCS.parent / "benchmarks" / "studies").glob("bench_*.py"),
    ]
)


@pytest.mark.parametrize("script", BENCHMARK_SCRIPTS, ids=lambda p: p.name)
def test_each_benchmark_has_its_page(script):
    """One page per benchmark, naming its script, listed in the index."""
    name = script.stem.removeprefix("bench_")
    page = DOCS / "benchmarks" / f"{name}.md"
    assert page.is_file(), f"{script.name} has no page docs/benchmarks/{name}.md"
    relative = script.relative_to(DOCS.parent).as_posix()
    assert relative in page.read_text(), f"{page.name} does not name {relative}"
    index = (DOCS / "benchmarks" / "index.md").read_text()
    assert f"]({name}.md)" in index, f"{name}.md is not in the benchmarks index"
    assert re.search(rf"^{re.escape(name)}$", index, re.M), (
        f"{name} is not in the benchmarks index's toctree"
    )
