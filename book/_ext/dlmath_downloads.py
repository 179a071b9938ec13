"""Every notebook page can be downloaded as the executed ``.ipynb``, with all of its cells.

sphinx-book-theme's download menu offers an ``.ipynb`` when the page context names one
(``ipynb_source``, a path under ``_sources``).  For each page that is a notebook (myst-nb wrote
``<builddir>/jupyter_execute/<docname>.ipynb`` for it), this extension writes
``_sources/<docname>.ipynb``: the chapter's source read as a notebook (every cell, the hidden
ones too) with the outputs of its execution merged from the build's execution cache.  (The copy
myst-nb leaves in ``jupyter_execute`` has no outputs when the notebook came from the cache.)
Its kernel is the project's (``dlmath``, installed by ``make install``), so it runs top to bottom
in a fresh kernel on a reader's machine; ``tests/browser/test_downloads.py`` runs two.
"""

from __future__ import annotations

from pathlib import Path

KERNELSPEC = {"display_name": "Python (dlmath)", "language": "python", "name": "dlmath"}


def is_notebook(app, docname: str) -> bool:
    """Whether myst-nb read ``docname`` as a notebook."""
    return (Path(app.outdir).parent / "jupyter_execute" / f"{docname}.ipynb").is_file()


def executed(source: Path, cache_path: str | None):
    """The notebook of ``source`` with its outputs from the execution cache, or None."""
    import jupytext
    from jupyter_cache import get_cache

    if not cache_path or not Path(cache_path).is_dir():
        return None
    nb = jupytext.read(source)
    try:
        _, merged = get_cache(cache_path).merge_match_into_notebook(nb)
    except KeyError:          # not executed with this code (e.g. execution off)
        return None
    merged.metadata["kernelspec"] = dict(KERNELSPEC)
    return merged


def _page_context(app, pagename, templatename, context, doctree):
    if app.builder.format != "html" or not is_notebook(app, pagename):
        return
    nb = executed(Path(app.env.doc2path(pagename)), app.env.mystnb_config.execution_cache_path)
    if nb is None:
        return
    import nbformat

    dest = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    # before sphinx-book-theme builds its header buttons (priority 501)
    app.connect("html-page-context", _page_context, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


__all__ = ["is_notebook", "executed", "KERNELSPEC"]
