"""Sphinx configuration of the dlmath book.

Build with ``make html`` (sources in ``book/``, this file at the top level, output in
``_build/html``).  The build is strict: a failing cell, a Sphinx warning or a broken
cross-reference fails it.

Environment variables
---------------------
DLMATH_NB_EXECUTION
    myst-nb execution mode: ``cache`` (default; unchanged chapters are not re-run),
    ``force`` (re-run everything) or ``off``.
DLMATH_CHAPTERS
    Comma-separated chapter file names (without ``.md``) to build alone, for quick
    work on one chapter, e.g. ``DLMATH_CHAPTERS=01_conv_arithmetic``.  Cross-references
    into the chapters left out are then not checked.
DLMATH_BUILD_JOBS
    How many notebooks execute at once in a build (default: the usable cores, at most
    4; ``1`` executes them one by one as Sphinx reads them).  See ``book/_ext``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BOOK = ROOT / "book"
sys.path.insert(0, str(BOOK / "_ext"))  # local extensions

project = "dlmath"
author = "The dlmath authors"
copyright = "2026, the dlmath authors"
release = "0.1.0"

root_doc = "index"
extensions = [
    "myst_nb",
    "dlmath_preexec",    # book/_ext: notebooks execute in parallel before the read
    "sphinx_book_theme",
    "sphinx_proof",
    "sphinxcontrib.bibtex",
    "sphinx_design",
    "sphinx_copybutton",
    "sphinx_togglebutton",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
]
exclude_patterns = ["_build", "_ext", "**.ipynb_checkpoints", "README.md", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# --- strictness -------------------------------------------------------------------
nitpicky = True
suppress_warnings: list[str] = []

# --- partial builds (DLMATH_CHAPTERS) -------------------------------------------------
_only = [c.strip() for c in os.environ.get("DLMATH_CHAPTERS", "").split(",") if c.strip()]
if _only:
    _all = sorted(p.stem for p in (BOOK / "chapters").glob("*.md"))
    _unknown = sorted(set(_only) - set(_all))
    if _unknown:
        raise ValueError(f"DLMATH_CHAPTERS names unknown chapters {_unknown}; known: {_all}")
    exclude_patterns += [f"chapters/{c}.md" for c in _all if c not in _only]
    suppress_warnings += ["ref.ref", "ref.doc", "ref.any", "toc.excluded", "myst.xref_missing",
                          "bibtex.missing_field"]

# --- MyST and notebooks ---------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "substitution"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

nb_execution_mode = os.environ.get("DLMATH_NB_EXECUTION", "cache")
if nb_execution_mode not in {"cache", "force", "off", "auto", "inline"}:
    raise ValueError(f"DLMATH_NB_EXECUTION must be cache, force, off, auto or inline, "
                     f"got {nb_execution_mode!r}")


def _package_fingerprint() -> str:
    """Hash of the dlmath sources: a chapter's outputs are only as fresh as the code."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "dlmath").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# jupyter-cache keys a notebook by its code cells only, so a change in dlmath would not
# re-execute an unchanged chapter.  The cache therefore lives in a folder named after the
# package's fingerprint: change the code and every chapter re-executes (Sphinx re-reads all
# documents because this setting changed), while expensive training results are still
# reused from the results store wherever the code they depend on did not change.
_BUILD = Path(os.environ.get("DLMATH_BUILDDIR", ROOT / "_build")).resolve()
_CACHES = _BUILD / ".jupyter_cache"
nb_execution_cache_path = str(_CACHES / _package_fingerprint())
if _CACHES.is_dir():  # keep only the cache of the current code
    import shutil

    for _old in _CACHES.iterdir():
        if _old.is_dir() and str(_old) != nb_execution_cache_path:
            shutil.rmtree(_old, ignore_errors=True)

# Training results (dlmath.engine.train's store), reused across builds; the kernels inherit this.
os.environ.setdefault("DLMATH_CACHE_DIR", str(_BUILD / ".dlmath-cache"))
nb_execution_timeout = 1800  # seconds per cell: training cells on a 2-core CPU
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# Markdown outputs (glued tables) are parsed as MyST: $math$ and {ref} roles work in them.
nb_render_markdown_format = "myst"
nb_kernel_rgx_aliases = {".*": "dlmath"}  # every chapter runs in the project's kernel
nb_render_image_options = {"align": "center"}
nb_mime_priority_overrides = [("html", "image/svg+xml", 5)]

# --- bibliography and proofs ----------------------------------------------------------
bibtex_bibfiles = [str(BOOK / "references.bib")]
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"
proof_minimal_theme = False

# --- math, offline --------------------------------------------------------------------
# MathJax is served from the site itself (shipped by the sphinx-mathjax-offline package),
# so equations render with no network.
_mathjax = importlib.util.find_spec("sphinx-mathjax-offline")
if _mathjax is None or not _mathjax.submodule_search_locations:
    raise RuntimeError("sphinx-mathjax-offline is not installed: run `make install`")
html_static_path = [str(Path(list(_mathjax.submodule_search_locations)[0]) / "static")]
mathjax_path = "mathjax/tex-chtml.js"

# --- HTML -----------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "dlmath"
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
}
# Light mode: figures are drawn for a white page (and an empty mode logs a console error).
html_context = {"default_mode": "light"}
html_last_updated_fmt = ""
numfig = True
math_numfig = True
math_eqref_format = "({number})"
