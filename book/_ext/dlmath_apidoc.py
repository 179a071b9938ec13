"""The API reference, generated from each module's ``__all__`` when the book is built.

A page of ``book/api/`` holds a title and one directive::

    .. dlmath-module:: dlmath.conv

which documents the module: its docstring, a summary table, and every name of its
``__all__`` with autodoc (``autofunction``, ``autoclass`` or ``autodata``).  For a package
(``models``, ``engine``, ``data``) it documents each submodule of the package's
``_SUBMODULES`` in a section of its own.  The names come from ``__all__`` at build time, so a
new public function appears in the reference and a removed one disappears with no edit to
the pages; a page that changes is rebuilt because it depends on the module's source files.

A name is documented once, in the module that defines it; a module that lists a name from
another public module (``dlmath.engine.train`` re-exports ``Ref`` from
``dlmath.engine.store``) links to it instead.  Cross-references to such an alias, or to a
name through the package that re-exports it (``dlmath.engine.run``, ``dlmath.data.digits``:
how a reader calls them), resolve to the documented object; a reference to a field of a
dataclass or NamedTuple (``Result.key``), which the class's "Attributes" section describes,
resolves to the class.

The set of pages is checked against ``dlmath.MODULES``: a public module without a page (or
a page without a module) fails the build.
"""

from __future__ import annotations

import inspect
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.ext.autosummary import Autosummary, extract_summary
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode, nested_parse_with_titles

PACKAGE = "dlmath"


def submodules(name: str) -> list[str]:
    """The modules documented on the page of ``name``: its submodules for a package."""
    module = import_module(name)
    subs = getattr(module, "_SUBMODULES", None)
    return [f"{name}.{s}" for s in subs] if subs else [name]


def _home(obj: Any, listed_in: str) -> str:
    """The module whose page documents ``obj``: where it is defined, if that is public."""
    defined = getattr(obj, "__module__", None)
    if (inspect.isclass(obj) or inspect.isroutine(obj)) and defined and defined != listed_in \
            and defined.startswith(PACKAGE + ".") and "._" not in defined:
        return defined
    return listed_in


def _kind(obj: Any) -> str:
    if inspect.isclass(obj):
        return "class"
    if inspect.isroutine(obj):
        return "function"
    return "data"


def module_lines(name: str, module: ModuleType) -> list[str]:
    """reStructuredText documenting ``module`` (named ``name``): its ``__all__``."""
    names = list(getattr(module, "__all__", ()))
    lines = [f".. automodule:: {name}", ""]
    if not names:
        return lines
    lines += [".. dlmath-autosummary::", "   :nosignatures:", ""]
    lines += [f"   {n}" for n in names]  # the current module is set by automodule
    lines.append("")
    for n in names:
        obj = getattr(module, n)
        home = _home(obj, name)
        if home != name:
            role = "class" if inspect.isclass(obj) else "func"
            lines += [f"``{n}`` is re-exported from :mod:`{home}`: see "
                      f":py:{role}:`{home}.{n}`.", ""]
            continue
        kind = _kind(obj)
        signature = ""
        if kind == "class" and issubclass(obj, tuple) and hasattr(obj, "_fields"):
            # a NamedTuple: autodoc cannot evaluate the string annotations of its generated
            # __new__; its docstring describes the fields with their types
            signature = f"({', '.join(obj._fields)})"
        lines.append(f".. auto{kind}:: {name}.{n}{signature}")
        if kind == "class":
            lines.append("   :members:")
        lines.append("")
    return lines


class Summary(Autosummary):
    """``autosummary`` whose line for a constant is its ``#:`` comment, not its type's docstring."""

    def get_items(self, names: list[str]) -> list[tuple[str, str, str, str]]:
        items = []
        for display, sig, summary, real in super().get_items(names):
            modname, _, attr = real.rpartition(".")
            try:
                obj = getattr(import_module(modname), attr)
            except (ImportError, AttributeError, ValueError):
                obj = None
            if obj is not None and _kind(obj) == "data":
                doc = ModuleAnalyzer.for_module(modname).find_attr_docs().get(("", attr))
                summary = extract_summary(list(doc), self.state.document.settings) if doc else ""
            items.append((display, sig, summary, real))
        return items


def _skip_namedtuple_fields(app: Sphinx, what: str, name: str, obj: Any, skip: bool,
                            options: Any) -> bool | None:
    """A NamedTuple's fields are described in its docstring, not as "Alias for field number"."""
    if what == "class" and (getattr(obj, "__doc__", None) or "").startswith("Alias for field"):
        return True
    return None


class ModuleDirective(SphinxDirective):
    """``.. dlmath-module:: dlmath.conv``: the reference of one public module or package."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        try:
            package = import_module(name)
        except Exception as err:  # a broken module: one error on its page, not a crash
            raise self.error(f"dlmath-module: cannot import {name}: {err!r}") from err
        lines: list[str] = []
        subs = submodules(name)
        if subs == [name]:
            lines += module_lines(name, package)
        else:
            lines += [f".. automodule:: {name}", ""]
            for sub in subs:
                title = f"``{sub}``"
                lines += [title, "-" * len(title), ""]
                lines += module_lines(sub, import_module(sub))
        for sub in subs:  # rebuild the page when a module it documents changes
            source = getattr(import_module(sub), "__file__", None)
            if source:
                self.env.note_dependency(source)
        source, line = self.get_source_info()
        content = StringList(lines, source=f"{source}:<dlmath-module {name}>")
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, content, container)
        return container.children


def _lookup(dotted: str) -> tuple[Any, Any, str] | None:
    """``(object, parent, name)`` for ``dlmath.mod.Class.attr``; object None for a field."""
    parts = dotted.split(".")
    for k in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = import_module(".".join(parts[:k]))
        except ImportError:
            continue
        parent = None
        for i, attr in enumerate(parts[k:]):
            parent, last = obj, i == len(parts) - k - 1
            fields = (*getattr(obj, "__dataclass_fields__", ()), *getattr(obj, "_fields", ()))
            if last and inspect.isclass(obj) and attr in fields:
                return None, obj, attr  # a field: described in its class's docstring
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                return None
        return obj, parent, parts[-1]
    return None


def _resolve_alias(app: Sphinx, env, node: pending_xref, contnode: nodes.Node):
    """A reference to a documented object under another name: to the object's entry.

    ``dlmath.engine.run`` (re-exported by the package) and ``dlmath.engine.train.Ref``
    (re-exported from the store) lead to the object's own entry; a field of a dataclass or a
    NamedTuple (``Result.key``), described in the class's Attributes, to the class.
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    modname, classname = node.get("py:module"), node.get("py:class")
    candidates = [target]
    if modname:
        candidates += [f"{modname}.{classname}.{target}"] if classname else []
        candidates.append(f"{modname}.{target}")
    domain = env.get_domain("py")
    for full in candidates:
        if not full.startswith(PACKAGE + "."):
            continue
        found = _lookup(full)
        if found is None:
            continue
        obj, parent, _ = found
        if obj is None or not (inspect.isclass(obj) or inspect.isroutine(obj)):
            obj = parent  # a field or a class-level value: its class
        defined = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if not defined or not qualname or not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        entry = domain.objects.get(f"{defined}.{qualname}")
        if entry is None:
            continue
        return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id,
                            contnode, f"{defined}.{qualname}")
    return None


def _check_pages(app: Sphinx) -> None:
    """Every public module has a page in book/api/ and every page a module."""
    api = Path(app.srcdir) / "api"
    modules = import_module(PACKAGE).MODULES
    pages = {p.stem for p in api.glob("*.rst")} - {"index"}
    missing, stale = sorted(set(modules) - pages), sorted(pages - set(modules))
    if missing or stale:
        raise ExtensionError(
            f"book/api/ does not match dlmath.MODULES: add a page (a title and "
            f"'.. dlmath-module:: dlmath.NAME') for {missing}, remove {stale}, and list the "
            f"pages in book/api/index.rst")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("dlmath-module", ModuleDirective)
    app.add_directive("dlmath-autosummary", Summary)
    app.connect("autodoc-skip-member", _skip_namedtuple_fields)
    app.connect("missing-reference", _resolve_alias)
    app.connect("builder-inited", _check_pages)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
