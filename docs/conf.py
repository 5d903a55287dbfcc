"""Sphinx configuration of the sk_zerror documentation.

Build the site, warnings as errors, from the repository root::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

This runs every gallery example (about 80 s of CPU), as CI does.
``SK_ZERROR_DOCS_QUICK=1`` shows the gallery's code and text without running
the examples (the test suite's build, half a minute).
"""

import os
from pathlib import Path

import torch

import sk_zerror

QUICK = os.environ.get("SK_ZERROR_DOCS_QUICK", "0") not in ("", "0")
HERE = Path(__file__).resolve().parent

# The gallery's networks are small: on a shared CPU one thread trains them
# several times faster than competing threads do.
torch.set_num_threads(1)

project = "sk_zerror"
author = "sk_zerror developers"
copyright = "sk_zerror developers"
release = sk_zerror.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# Straight quotes: the docstrings' option lists ({"mean", "median"}) are code.
smartquotes = False
root_doc = "index"
templates_path = ["_templates"]
# examples/ holds the gallery's sources; sphinx-gallery renders them into
# auto_examples/, which is what the site shows.
exclude_patterns = ["_build", "examples", "README.md", "**.ipynb_checkpoints"]

# -- autodoc, autosummary, numpydoc -------------------------------------------

autosummary_generate = True
# The page's table of contents names methods without their class: "fit()".
toc_object_entries_show_parents = "hide"
autodoc_default_options = {"member-order": "bysource"}
# The class pages list the methods themselves (see _templates/autosummary).
numpydoc_show_class_members = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# Docstrings write shapes such as "(n_features_in_,)", which reST reads as a
# link named n_features_in: point it at scikit-learn's glossary entry.
rst_epilog = """
.. _n_features_in: https://scikit-learn.org/stable/glossary.html#term-n_features_in_
"""

# -- MyST (docs/benchmarks/*.md and any other Markdown page) -----------------

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# -- sphinx-gallery ------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "subsection_order": [
        "examples/robustness",
        "examples/training",
        "examples/decisions",
        "examples/data_quality",
    ],
    "within_subsection_order": "FileNameSortKey",
    "filename_pattern": r"/plot_",
    "plot_gallery": "False" if QUICK else "True",
    "doc_module": ("sk_zerror",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"sk_zerror": None},
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "matplotlib_animations": False,
}

# -- HTML ----------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sk_zerror {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "logo": {"text": "sk_zerror"},
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
    # Not on the gallery's pages: their code is 88 columns wide and needs the room.
    "secondary_sidebar_items": {
        page: ["page-toc"]
        for page in [
            "index",
            "comparison",
            "benchmarks/*",
            "user_guide/*",
            "api/*",
            "gen_modules/*",
        ]
    },
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {
    "index": [],
    "comparison": [],
    "benchmarks/*": [],
}
