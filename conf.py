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
    "sphinx.ext.autodoc",       # the API reference (book/api), from the docstrings
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "dlmath_apidoc",            # book/_ext: one page per public module, names from __all__
    "dlmath_downloads",         # book/_ext: each executed notebook offered as .ipynb
    "dlmath_cellstats",         # book/_ext: how much of its work each chapter shows
    "dlmath_cards",             # book/_ext: the landing page's chapter cards
    "dlmath_proofs",            # book/_ext: the definitions and theorems by title
]
exclude_patterns = ["_build", "_ext", "_static", "**.ipynb_checkpoints", "README.md", "Thumbs.db", ".DS_Store"]
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
    _partial_suppress = ["ref.ref", "ref.doc", "ref.any", "ref.term", "toc.excluded",
                         "myst.xref_missing", "bibtex.missing_field"]
    suppress_warnings += _partial_suppress


def setup(app):
    """Keep the partial-build suppressions when ``-D suppress_warnings=...`` replaces the list."""
    def _extend(app, config):
        if _only:
            config.suppress_warnings = [*config.suppress_warnings,
                                        *(w for w in _partial_suppress
                                          if w not in config.suppress_warnings)]
    app.connect("config-inited", _extend)


# --- MyST and notebooks ---------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "substitution"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

nb_execution_mode = os.environ.get("DLMATH_NB_EXECUTION", "cache")
if nb_execution_mode not in {"cache", "force", "off", "auto", "inline"}:
    raise ValueError(f"DLMATH_NB_EXECUTION must be cache, force, off, auto or inline, "
                     f"got {nb_execution_mode!r}")


# jupyter-cache keys a notebook by its code cells only, so a change in dlmath or in the
# environment would not re-execute an unchanged chapter.  The cache therefore lives in a folder
# named after the package's sources and the environment (Python, installed distributions,
# TORCH_SPEC, device; book/_ext/dlmath_cachekey.py): change any of them and every chapter
# re-executes (Sphinx re-reads all documents because this setting changed), while expensive
# training results are still reused from the results store wherever their own keys allow.
# A broken installation fails here, even when every notebook is cached.
import dlmath_cachekey  # noqa: E402  (book/_ext)

dlmath_cachekey.smoke_import()
_BUILD = Path(os.environ.get("DLMATH_BUILDDIR", ROOT / "_build")).resolve()
_CACHES = _BUILD / ".jupyter_cache"
nb_execution_cache_path = str(_CACHES / dlmath_cachekey.cache_key(ROOT))
if _CACHES.is_dir():  # keep only the cache of the current code
    import shutil

    for _old in _CACHES.iterdir():
        if _old.is_dir() and str(_old) != nb_execution_cache_path:
            shutil.rmtree(_old, ignore_errors=True)

# Training results (dlmath.engine.train's store), reused across builds; the kernels inherit this.
os.environ.setdefault("DLMATH_CACHE_DIR", str(_BUILD / ".dlmath-cache"))
os.environ.setdefault("DLMATH_PROGRESS", "0")   # no progress bars in the rendered chapters
nb_execution_timeout = 1800  # seconds per cell: training cells on a 2-core CPU
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# Markdown outputs (glued tables) are parsed as MyST: $math$ and {ref} roles work in them.
nb_render_markdown_format = "myst"
nb_kernel_rgx_aliases = {".*": "dlmath"}  # every chapter runs in the project's kernel
nb_render_image_options = {"align": "center"}
nb_mime_priority_overrides = [("html", "image/svg+xml", 5)]

# --- API reference (book/api, book/_ext/dlmath_apidoc.py) ------------------------------
# Numpy-style docstrings; "Explanation" is the house section after the summary.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
# "Attributes" is laid out like "Parameters" (a field list whose types are text), not as
# attribute entries whose types Sphinx would try to resolve ("int, optional").
napoleon_custom_sections = ["Explanation", ("Attributes", "params_style")]
napoleon_use_param = False       # types stay text: "int or sympy.Expr", "(N, d) tensor"
napoleon_use_rtype = False
autosummary_generate = False      # summary tables only: the pages document every name
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
add_module_names = False
python_maximum_signature_line_length = 88
autodoc_inherit_docstrings = False  # not torch's docstring of nn.Module.forward
# The ``>>>`` examples of the docstrings are tested by pytest (``make doctest``) in their
# module's namespace; the doctest builder tests only the book's ``{doctest}`` blocks.
doctest_test_doctest_blocks = ""
# Types from packages with no inventory offline (no intersphinx: the build uses no network).
# Python's builtins resolve without one; everything of dlmath must resolve.
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|sympy|numpy|collections\.abc|pathlib|typing|json|os|ast)(\..*)?"),
]

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
html_static_path = [str(Path(list(_mathjax.submodule_search_locations)[0]) / "static"),
                    str(BOOK / "_static")]
html_css_files = ["dlmath.css"]        # book/_static: the errata cards, the landing page
html_js_files = ["errata-filter.js"]   # book/_static: filter the errata by report and verdict
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
