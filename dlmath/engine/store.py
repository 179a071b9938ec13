"""The results store: expensive results on disk, keyed by what produced them.

Scope: what makes a rebuild of the book re-run exactly the work whose inputs changed, and
never serve a stored result that differs from what a fresh computation would give.

1. **What was asked.**  :class:`Ref` names a module-level callable (a model factory, a data
   function) by ``module:qualname`` together with its keyword arguments, and
   :func:`canonical` turns a Ref, a frozen config dataclass, numbers, strings, tuples and
   dicts into canonical JSON.  :func:`spec_key` is the SHA-256 of that JSON: equal configs
   give equal keys in every process, on every machine; nothing is pickled.
2. **Which code answered.**  :func:`code_sources` finds the source files behind a set of
   objects: the module of each callable, and, for ``dlmath`` modules, every ``dlmath``
   module they import (read from the source with :mod:`ast`, followed transitively).
   Installed packages count by their version, ``torch`` by ``torch.__version__``; a
   callable defined in a notebook cell or a script (``__main__``) counts by its own source
   text, the source of every ``__main__`` function and class it reads as a global (followed
   transitively), and the values of the other globals it reads (``WIDTH = 64``), so that
   editing a helper or a constant in another cell changes the fingerprint too.
   :func:`code_fingerprint` hashes all of it.  Edit a model's module and the experiments
   that use it get a new key; edit an unrelated chapter's module and they do not.
3. **What else answered.**  :func:`input_files` hashes the bytes of every data file or
   directory the spec names (a ``root=`` or ``path=`` argument of a Ref, any
   ``pathlib.Path``), and :func:`environment` records the numerics: Python, torch, the
   default dtype, the matmul precision, the CPU's instruction set, and on a GPU its model
   and the TF32 and cuDNN flags.  :func:`identity` gathers spec, code, inputs, environment
   and the keys of the results a result is derived from (``derived_from``: an evaluation
   of a trained model is keyed by the model's key); its :func:`spec_key` is the key.
4. **Where it lives, and why it can be trusted.**  An entry is the file
   ``<cache_dir>/<namespace>/<key>.pt``: the line ``DLMATH-STORE 2``, a one-line JSON
   header (namespace, key, creation time, the identity, and the payload's length, SHA-256
   and structure), the SHA-256 of that header, and the payload as :func:`torch.save`
   writes it.  :func:`save` writes a temporary file in the same directory, flushes it to
   disk and moves it into place with :func:`os.replace`, which is atomic: a writer killed
   at any moment leaves the old entry or the new one, whole, and at worst a stray ``.tmp``
   file that is never read.  :func:`load` checks the header's hash, the payload's length
   and hash (before anything is unpickled: ``torch.load`` does not check the CRCs of its
   archive), that the header was written for this key and for the identity asked for,
   then reads with ``torch.load(weights_only=True)`` (tensors and plain containers, no
   code) and checks the payload's structure.  Any failure is a miss with a
   :class:`StoreWarning` naming the entry and the reason, never a hit and never an error.
5. **Seeing and pruning it.**  :func:`entries` lists every entry (namespace, key, size,
   last use, code fingerprint, status), :func:`prune` removes abandoned temporary files,
   damaged entries, entries unused for a while and the old versions of a computation;
   ``python -m dlmath.engine.store list`` and ``... prune [--keep 1] [--older-than 30d]
   [--apply]`` do the same from a shell.

The directory is ``$DLMATH_CACHE_DIR`` if set (the book build sets it to
``_build/.dlmath-cache``), else ``~/.cache/dlmath``.  Delete it at any time.

Example: cache any computation, keyed by its arguments and the code it calls

>>> import tempfile
>>> from dlmath.conv import conv_output_size
>>> root = tempfile.mkdtemp()
>>> spec = Ref(conv_output_size, size=32, kernel_size=5, padding=2)
>>> payload, hit = cached("example", spec, lambda: {"n": spec()}, root=root)
>>> payload["n"], hit
(32, False)
>>> cached("example", spec, lambda: {"n": spec()}, root=root)[1]        # second time: a hit
True

Chapters: every chapter that trains (first :ref:`ch-training-cnns`).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import datetime
import dis
import enum
import functools
import hashlib
import importlib.metadata
import importlib.util
import inspect
import io
import json
import linecache
import os
import platform
import re
import sys
import sysconfig
import tempfile
import textwrap
import time
import types
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from dlmath._validate import check_bool, check_callable, check_int, check_number

__all__ = [
    "Ref",
    "canonical",
    "spec_key",
    "code_sources",
    "code_fingerprint",
    "input_files",
    "environment",
    "identity",
    "cache_dir",
    "entry_path",
    "load",
    "save",
    "cached",
    "StoreWarning",
    "Entry",
    "entries",
    "prune",
]

ENV = "DLMATH_CACHE_DIR"
_FORMAT = 2


# --------------------------------------------------------------------------------------
# What was asked: references to callables and canonical JSON
# --------------------------------------------------------------------------------------

def _resolve_callable(fn: Any) -> Callable:
    if isinstance(fn, types.ModuleType) or not callable(fn):
        raise TypeError(f"fn must be a callable (function or class), got {type(fn).__name__}")
    return fn


def _target(fn: Callable) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname:
        raise TypeError(f"fn {fn!r} has no __module__/__qualname__; pass a module-level "
                        f"function or class")
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise TypeError(f"fn {module}.{qualname} must be defined at module level (not a "
                        f"lambda or a nested function) so that it can be named and fingerprinted")
    return f"{module}:{qualname}"


class Ref:
    """A module-level callable plus keyword arguments, named so that it can be hashed.

    Explanation
    -----------
    ``Ref(fn, **kwargs)`` stands for the call ``fn(**kwargs)``.  It is identified by the
    text ``"module:qualname"`` of ``fn`` and the canonical JSON of ``kwargs`` (see
    :func:`canonical`), never by pickling: two Refs are equal, and hash equal, exactly when
    those agree.  ``fn`` must be a module-level function or class (a lambda or a nested
    function has no stable name).  Calling the Ref calls
    ``fn`` with the stored keyword arguments, plus any extra arguments given to the call.

    Parameters
    ----------
    fn : callable
        Module-level function or class.
    **kwargs
        JSON-like values: None, bool, int, float, str, tuples/lists, dicts with str keys,
        dataclass instances, other Refs, module-level callables.

    Raises
    ------
    TypeError
        If ``fn`` is a lambda or a nested function, or a keyword value cannot be made
        canonical (a tensor, an open file, an instance of an ordinary class, ...).

    Examples
    --------
    >>> from dlmath.conv import conv_output_size
    >>> r = Ref(conv_output_size, kernel_size=3, padding=1)
    >>> r
    Ref(dlmath.conv:conv_output_size, kernel_size=3, padding=1)
    >>> r(32), r(32, stride=2)
    (32, 16)
    >>> r == Ref(conv_output_size, padding=1, kernel_size=3)
    True
    >>> r.replace(kernel_size=5).kwargs
    {'kernel_size': 5, 'padding': 1}
    >>> Ref(lambda: 0)
    Traceback (most recent call last):
    ...
    TypeError: fn dlmath.engine.store.<lambda> must be defined at module level (not a lambda or a nested function) so that it can be named and fingerprinted

    See Also
    --------
    canonical, spec_key : the JSON and the hash that identify it.
    code_sources : the source files behind it.

    References
    ----------
    Chapter: :ref:`ch-training-cnns`.
    """

    __slots__ = ("fn", "target", "_kwargs", "_json")

    def __init__(self, fn: Callable, /, **kwargs: Any) -> None:
        fn = _resolve_callable(fn)
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "target", _target(fn))
        object.__setattr__(self, "_kwargs", dict(sorted(kwargs.items())))
        blob = {"__ref__": self.target, "kwargs": canonical(self._kwargs, "kwargs")}
        object.__setattr__(self, "_json", json.dumps(blob, sort_keys=True, separators=(",", ":")))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Ref is immutable; use .replace(**kwargs)")

    @property
    def kwargs(self) -> dict[str, Any]:
        """A copy of the keyword arguments."""
        return dict(self._kwargs)

    def replace(self, **kwargs: Any) -> Ref:
        """The same callable with some keyword arguments changed or added."""
        return Ref(self.fn, **{**self._kwargs, **kwargs})

    def __call__(self, *args: Any, **extra: Any) -> Any:
        return self.fn(*args, **{**self._kwargs, **extra})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and self._json == other._json

    def __hash__(self) -> int:
        return hash(self._json)

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self._kwargs.items())
        return f"Ref({self.target}{args})"

    def __reduce__(self):  # picklable when fn is importable
        return (_rebuild_ref, (self.fn, self._kwargs))


def _rebuild_ref(fn: Callable, kwargs: dict) -> Ref:
    return Ref(fn, **kwargs)


def canonical(obj: Any, where: str = "value") -> Any:
    """A JSON-compatible, canonical form of a config value.

    Explanation
    -----------
    None, bool, int, str are kept; floats are kept (JSON writes the shortest text that reads
    back to the same float); tuples and lists become lists; dicts (str keys only) keep their
    items, and :func:`json.dumps` with ``sort_keys`` orders them; a :class:`Ref` becomes
    ``{"__ref__": "module:qualname", "kwargs": ...}``; a dataclass instance becomes
    ``{"__dataclass__": "module:qualname", <field>: ...}``; a module-level function or class
    becomes ``{"__callable__": "module:qualname"}``; an enum member its class and name; a
    ``torch.dtype`` or ``torch.device`` its text, a ``pathlib.Path`` its text (the bytes it
    names count through :func:`input_files`).  Anything else raises, since it could not
    be identified across processes.

    Parameters
    ----------
    obj : object
    where : str
        Path of ``obj`` inside the config, for error messages.

    Returns
    -------
    object
        Made of None, bool, int, float, str, list and dict only.

    Raises
    ------
    TypeError
        If a value has no canonical form, or ``where`` is not a str.

    Examples
    --------
    >>> canonical({"lr": 0.1, "sizes": (3, 4)})
    {'lr': 0.1, 'sizes': [3, 4]}
    >>> canonical({"w": torch.zeros(2)})
    Traceback (most recent call last):
    ...
    TypeError: value['w'] is a Tensor, which has no canonical form; use numbers, strings, tuples, dicts, dataclasses or Ref

    See Also
    --------
    spec_key : its hash.
    """
    if not isinstance(where, str):
        raise TypeError(f"where must be a str (a label for error messages), got "
                        f"{type(where).__name__} {where!r}")
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, Ref):
        return {"__ref__": obj.target, "kwargs": canonical(obj._kwargs, f"{where}.kwargs")}
    if isinstance(obj, enum.Enum):
        return {"__enum__": _target(type(obj)), "name": obj.name}
    if isinstance(obj, (tuple, list)):
        return [canonical(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has a non-str key {k!r}; config dicts need str keys")
            out[k] = canonical(v, f"{where}[{k!r}]")
        return out
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {"__dataclass__": _target(type(obj))}
        for f in dataclasses.fields(obj):
            out[f.name] = canonical(getattr(obj, f.name), f"{where}.{f.name}")
        return out
    if isinstance(obj, (torch.dtype, torch.device)):
        return str(obj)
    if isinstance(obj, os.PathLike):          # a data file's path; its bytes: input_files
        return os.fspath(obj)
    if isinstance(obj, (types.FunctionType, type, types.BuiltinFunctionType)):
        return {"__callable__": _target(obj)}
    raise TypeError(f"{where} is a {type(obj).__name__}, which has no canonical form; use "
                    f"numbers, strings, tuples, dicts, dataclasses or Ref")


def spec_key(spec: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``spec``.

    Examples
    --------
    >>> spec_key({"a": 1, "b": (2, 3)}) == spec_key({"b": [2, 3], "a": 1})
    True
    >>> len(spec_key(None))
    64

    See Also
    --------
    canonical : the JSON that is hashed.
    """
    text = json.dumps(canonical(spec, "spec"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------------------
# Which code answered: source files and their fingerprint
# --------------------------------------------------------------------------------------

_INSTALLED = tuple({Path(p).resolve() for key in ("purelib", "platlib", "stdlib", "platstdlib")
                    if (p := sysconfig.get_paths().get(key))})


def _installed_version(module_name: str, file: str | None) -> str | None:
    """``package==version`` for a module of an installed package or the standard library."""
    top = module_name.split(".")[0]
    if top == "torch":
        return f"torch=={torch.__version__}"
    if file is None:
        return f"{top}==builtin"
    path = Path(file).resolve()
    if not any(path.is_relative_to(root) for root in _INSTALLED):
        return None
    if top == "dlmath":                       # an installed (non-editable) dlmath: its sources
        return None
    try:
        return f"{top}=={importlib.metadata.version(top)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{top}==python{sys.version_info.major}.{sys.version_info.minor}"


@functools.lru_cache(maxsize=256)
def _imports(source: str, module_name: str, is_package: bool) -> frozenset[str]:
    """Names of the modules that a source text imports (anywhere in the file)."""
    found: set[str] = set()
    package = module_name if is_package else module_name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)  # ``from pkg import submodule``
    return frozenset(m for m in found if m)


def _is_dlmath(name: str) -> bool:
    return name == "dlmath" or name.startswith("dlmath.")


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.lru_cache(maxsize=None)
def _distribution_version(top: str) -> str | None:
    """``dist==version`` of the installed distribution that provides a top-level module."""
    if top in sys.stdlib_module_names or top == "__future__":
        return None
    dists = _packages_distributions().get(top, [])
    for dist in [top, *dists]:
        try:
            return f"{dist}=={importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _add_imports(source: str, name: str, is_package: bool, out: dict[str, str]) -> None:
    # dlmath modules by their source (recursively); other packages by their version.
    for dep in sorted(_imports(source, name, is_package)):
        if _is_dlmath(dep):
            dep_file, _ = _module_file(dep)
            if dep_file is not None:
                _add_module(dep, dep_file, out)
            continue
        top = dep.split(".")[0]
        if top not in out:
            version = _distribution_version(top)
            if version is not None:
                out[top] = version


def _module_file(name: str) -> tuple[str | None, bool]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None, False
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None, False
    return spec.origin, spec.submodule_search_locations is not None


def _add_module(name: str, file: str | None, out: dict[str, str]) -> None:
    if name in out:
        return
    version = _installed_version(name, file)
    if version is not None:
        out[name.split(".")[0]] = version
        return
    if file is None:
        raise TypeError(f"cannot fingerprint module {name}: it has no source file")
    source = Path(file).read_text(encoding="utf-8")
    out[name] = hashlib.sha256(source.encode()).hexdigest()
    _add_imports(source, name, Path(file).name == "__init__.py", out)


# --- callables defined in a notebook or a script: ``__main__`` ---------------------------

_GLOBAL_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"})
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _code_globals(code: types.CodeType) -> set[str]:
    """Names a code object (and every code object nested in it) reads as globals."""
    names = {ins.argval for ins in dis.get_instructions(code) if ins.opname in _GLOBAL_LOADS}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_globals(const)
    return names


def _own_functions(cls: type) -> list[types.FunctionType]:
    """The functions written in a class's own body (not generated ones, not inherited)."""
    found = []
    for value in vars(cls).values():
        value = getattr(value, "__func__", value)                  # classmethod, staticmethod
        for fn in ((value.fget, value.fset, value.fdel) if isinstance(value, property)
                   else (value,)):
            if (isinstance(fn, types.FunctionType)
                    and fn.__qualname__.startswith(f"{cls.__qualname__}.")
                    and linecache.getlines(fn.__code__.co_filename)):
                found.append(fn)
    return found


def _class_source(cls: type) -> str:
    """The source of a class, found through its methods' code (a notebook cell's file)."""
    for fn in _own_functions(cls):
        lines = linecache.getlines(fn.__code__.co_filename)
        line = fn.__code__.co_firstlineno
        with contextlib.suppress(SyntaxError, ValueError):
            best = None
            for node in ast.walk(ast.parse("".join(lines))):
                if (isinstance(node, ast.ClassDef) and node.name == cls.__name__
                        and node.lineno <= line <= node.end_lineno
                        and (best is None or node.lineno > best.lineno)):
                    best = node                                 # the innermost such class
            if best is not None:
                first = min([best.lineno, *(d.lineno for d in best.decorator_list)])
                return "".join(lines[first - 1:best.end_lineno])
    with contextlib.suppress(OSError, TypeError):
        return inspect.getsource(cls)    # no methods: where inspect finds it (a script's file)
    # A class without methods in a notebook (a dataclass of settings, say): every top-level
    # ``class <name>`` of the cells this kernel has run.  After an edit that is the old and
    # the new text, so the fingerprint may change once too often, never once too rarely.
    found = set()
    for entry in list(linecache.cache.values()) if "." not in cls.__qualname__ else ():
        if len(entry) != 4 or entry[1] is not None:        # files on disk have an mtime
            continue
        text = "".join(entry[2])
        if f"class {cls.__name__}" not in text:
            continue
        with contextlib.suppress(SyntaxError, ValueError):
            for node in ast.parse(text).body:
                if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
                    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                    found.add("".join(entry[2][first - 1:node.end_lineno]))
    if not found:
        raise OSError(f"no source for {cls!r}")
    return "\n".join(sorted(found))


def _main_source(obj: Any) -> str:
    try:
        return _class_source(obj) if isinstance(obj, type) else inspect.getsource(obj)
    except (OSError, TypeError):
        raise TypeError(f"cannot fingerprint {obj!r}: its source is not available; "
                        f"define it in a module or in a notebook cell") from None


def _without_annotations(tree: ast.AST) -> ast.AST:
    """The tree with the annotations of function arguments and results removed."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None:
                    arg.annotation = None
    return tree


def _main_namespace(obj: Any) -> Mapping[str, Any]:
    """The globals a ``__main__`` callable runs with."""
    fns = [obj] if not isinstance(obj, type) else _own_functions(obj)
    for fn in fns:
        fn = inspect.unwrap(fn)
        if isinstance(getattr(fn, "__globals__", None), dict):
            return fn.__globals__
    return vars(sys.modules.get(obj.__module__, types.ModuleType("__main__")))


def _is_main(obj: Any) -> bool:
    """Defined in ``__main__`` (a notebook cell, a script), or in no module we know."""
    name = getattr(obj, "__module__", None) or ""
    return name == "__main__" or sys.modules.get(name) is None


def _name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None)}:{getattr(obj, '__qualname__', repr(obj))}"


def _value_form(value: Any, where: str, out: dict[str, str]) -> Any:
    """JSON that identifies a value a notebook's code reads as a global; adds the code behind it.

    Numbers, strings, None and bools as they are; tuples, lists, sets, dicts and dataclass
    instances item by item; a tensor or NumPy array by its dtype, shape and the SHA-256 of
    its bytes; an ``nn.Module`` by its repr and its ``state_dict``; a function, class or
    module by name (its code is added to ``out``); anything
    else by its repr, unless that repr holds a memory address (``<Foo object at 0x...>``),
    which would differ in every process: then a TypeError says what to do instead.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (torch.dtype, torch.device)):
        return str(value)
    if isinstance(value, Ref):
        _add_object(value, out)
        return canonical(value, where)
    if isinstance(value, enum.Enum):
        _add_object(type(value), out)
        return {"__enum__": _name(type(value)), "name": value.name}
    if isinstance(value, types.ModuleType):
        _add_object(value, out)
        return {"__module__": value.__name__}
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)):
        _add_object(value, out)
        return {"__code__": _name(value)}
    if isinstance(value, functools.partial):
        return {"__partial__": _value_form(value.func, f"{where}.func", out),
                "args": _value_form(value.args, f"{where}.args", out),
                "keywords": _value_form(value.keywords, f"{where}.keywords", out)}
    if isinstance(value, torch.Tensor) and value.layout == torch.strided:
        data = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        return {"__tensor__": str(value.dtype), "shape": list(value.shape),
                "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    if type(value).__module__ == "numpy" and hasattr(value, "tobytes") and hasattr(value, "dtype"):
        if value.dtype.hasobject:                            # pointers: go by the items
            return {"__ndarray__": "object", "items": _value_form(value.tolist(), where, out)}
        return {"__ndarray__": str(value.dtype), "shape": list(getattr(value, "shape", ())),
                "sha256": hashlib.sha256(value.tobytes()).hexdigest()}
    if isinstance(value, (set, frozenset)):
        items = [_value_form(v, f"{where}[...]", out) for v in value]
        return {"__set__": sorted(items, key=lambda v: json.dumps(v, sort_keys=True))}
    if isinstance(value, (tuple, list)):
        return [_value_form(v, f"{where}[{i}]", out) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {"__dict__": [[_value_form(k, f"{where} key", out),
                              _value_form(v, f"{where}[{k!r}]", out)] for k, v in value.items()]}
    if isinstance(value, torch.nn.Module):             # a network built in an earlier cell
        _add_object(type(value), out)
        return {"__nn_module__": _name(type(value)), "repr": repr(value),
                "state": _value_form(dict(value.state_dict()), f"{where}.state_dict()", out)}
    if dataclasses.is_dataclass(value):
        _add_object(type(value), out)
        return {"__dataclass__": _name(type(value)),
                **{f.name: _value_form(getattr(value, f.name), f"{where}.{f.name}", out)
                   for f in dataclasses.fields(value)}}
    text = repr(value)
    if _ADDRESS.search(text):
        raise TypeError(f"cannot fingerprint {where}, a {type(value).__name__} that the code "
                        f"reads as a global: its repr holds a memory address, so it would "
                        f"differ in every run; pass the value to the factory as a keyword "
                        f"argument of the Ref, or make it a number, string, tuple, dataclass "
                        f"or tensor")
    if type(value).__module__ != "builtins":
        _add_object(type(value), out)
    return {"__repr__": _name(type(value)), "text": text}


def _add_global(module: str, name: str, value: Any, out: dict[str, str]) -> None:
    """A global that a ``__main__`` callable reads: code by its source, data by its value."""
    key = f"{module}:{name}"
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)) and \
            _is_main(value):
        _add_main(value, out, key=key)
    elif isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type,
                            types.ModuleType)):
        _add_object(value, out)
    else:
        text = json.dumps(_value_form(value, key, out), sort_keys=True, separators=(",", ":"))
        out[key] = text if len(text) <= 200 else \
            f"sha256={hashlib.sha256(text.encode()).hexdigest()}"


def _add_main(obj: Any, out: dict[str, str], key: str | None = None) -> None:
    """A callable defined in ``__main__``: its source, and the globals it reads, transitively.

    The source is dedented (a method, a function defined under an ``if``) and compiled;
    the names its code loads as globals are looked up in the callable's own namespace:
    another ``__main__`` function or class counts by its source (followed in turn), a
    module or a callable of a module by that module, and any other value by its canonical
    form (:func:`canonical`), a tensor or array by the hash of its bytes, else by its repr.
    """
    key = key or _target(obj)
    if key in out:
        return
    source = _main_source(obj)
    out[key] = hashlib.sha256(source.encode()).hexdigest()
    text = textwrap.dedent(source)
    try:
        tree = _without_annotations(ast.parse(text))
        names = _code_globals(compile(tree, key, "exec", dont_inherit=True))
        _add_imports(text, "__main__", False, out)
    except SyntaxError:               # a lambda cut out of a longer line: its own code only
        code = getattr(inspect.unwrap(obj), "__code__", None)
        names = _code_globals(code) if code is not None else set()
    namespace = _main_namespace(obj)
    module = key.partition(":")[0]
    for name in sorted(names):
        if name in namespace and not name.startswith("__"):
            _add_global(module, name, namespace[name], out)


def _add_object(obj: Any, out: dict[str, str]) -> None:
    if obj is None or isinstance(obj, (bool, int, float, str, torch.dtype, torch.device,
                                       os.PathLike)):      # a path's bytes: input_files
        return
    if isinstance(obj, types.ModuleType):
        _add_module(obj.__name__, getattr(obj, "__file__", None), out)
        return
    if isinstance(obj, Ref):
        _add_object(obj.fn, out)
        for v in obj._kwargs.values():
            _add_object(v, out)
        return
    if isinstance(obj, (tuple, list)):
        for v in obj:
            _add_object(v, out)
        return
    if isinstance(obj, Mapping):
        for v in obj.values():
            _add_object(v, out)
        return
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        _add_object(type(obj), out)
        for f in dataclasses.fields(obj):
            _add_object(getattr(obj, f.name), out)
        return
    if isinstance(obj, enum.Enum):
        _add_object(type(obj), out)
        return
    if callable(obj):
        if _is_main(obj):                      # a notebook cell or a script
            _add_main(obj, out)
            return
        module = sys.modules[obj.__module__]
        file = getattr(module, "__file__", None)
        if file is None:                       # a built-in module: math, itertools, ...
            out.setdefault(module.__name__.split(".")[0], _installed_version(module.__name__,
                                                                               None))
            return
        _add_module(module.__name__, file, out)
        return
    raise TypeError(f"cannot fingerprint a {type(obj).__name__}")


def code_sources(*objects: Any) -> dict[str, str]:
    """The code behind some objects: module name -> SHA-256 of its source, or a version.

    Explanation
    -----------
    For a module, a callable (its module), a :class:`Ref` (its callable and every callable
    in its arguments) or a dataclass instance (its class and fields): each ``dlmath`` module
    counts by the hash of its source text, and brings in every ``dlmath`` module its
    source imports, transitively, and every installed package it imports as
    ``distribution==version`` (the imports are read with :mod:`ast`, nothing is run; the
    standard library is left out).  A callable of an installed package counts by that
    package's version (``torch`` as ``torch==<version>``); any other module file (a test
    file) counts by its source, like a dlmath module.  A callable defined in a notebook
    cell or a script (module ``__main__``) counts by its own source text (key
    ``"__main__:<name>"``) and by the globals its code reads (found in its compiled code,
    so local variables and attribute names never count): another ``__main__`` function or
    class by its source, followed in the same way; a module, or a function or class of a
    module, by that module as above; any other value by a canonical text of it (numbers,
    strings, tuples, dicts, dataclasses item by item, tensors and arrays by the hash of
    their bytes, anything else by its repr).  ``torch`` is always included.

    Parameters
    ----------
    *objects
        Modules, callables, Refs, dataclass instances, or containers of them.

    Returns
    -------
    dict
        Sorted by name.

    Raises
    ------
    TypeError
        If an object's source cannot be found, or a notebook's code reads a global whose
        repr holds a memory address (``<Foo object at 0x...>``; pass it as an argument).

    Examples
    --------
    >>> from dlmath.conv import conv_output_size
    >>> {'dlmath.conv', 'sympy', 'torch'} <= set(code_sources(conv_output_size))
    True
    >>> code_sources(conv_output_size)["sympy"].startswith("sympy==")
    True

    See Also
    --------
    code_fingerprint : one hash of all of it.
    """
    out: dict[str, str] = {"torch": f"torch=={torch.__version__}"}
    for obj in objects:
        _add_object(obj, out)
    return dict(sorted(out.items()))


def code_fingerprint(*objects: Any) -> str:
    """SHA-256 (hex) of :func:`code_sources` of the objects.

    Examples
    --------
    >>> from dlmath import conv
    >>> code_fingerprint(conv) == code_fingerprint(conv.conv_output_size)
    True

    See Also
    --------
    code_sources : what is hashed.
    """
    text = json.dumps(code_sources(*objects), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------------------
# What else answered: data files and the numerical environment
# --------------------------------------------------------------------------------------

#: An argument with such a name (``root``, ``path``, ``data_dir``, ``files``, ...) whose value
#: is a str names a data file or directory; a ``pathlib.Path`` value always does.
_PATH_NAME = re.compile(r"(?:^|_)(?:root|path|file|filename|fname|dir|directory|folder)s?$")
#: File times are coarse (one kernel tick): a file rewritten in the tick in which it was
#: hashed can keep its size and mtime.  A remembered hash is trusted only for a file last
#: changed this many seconds before it was hashed (as git does with its index).
_RACY_SECONDS = 2.0
_FILE_HASHES: dict[str, tuple[tuple[int, ...], float, str]] = {}


def _file_sha256(path: Path) -> str:
    st = path.stat()
    sig = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    known = _FILE_HASHES.get(str(path))
    if known is not None and known[0] == sig and st.st_mtime < known[1] - _RACY_SECONDS:
        return known[2]
    hashed_at = time.time()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    _FILE_HASHES[str(path)] = (sig, hashed_at, digest.hexdigest())
    return digest.hexdigest()


def _path_digest(text: str) -> str:
    """``sha256:<hex>`` of a file's bytes, or of every file under a directory, or why not."""
    path = Path(text).expanduser()
    try:
        if path.is_file():
            return f"sha256:{_file_sha256(path)}"
        if not path.is_dir():
            return "missing"
        digest, count = hashlib.sha256(), 0
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                file = Path(folder, name)
                rel = file.relative_to(path).as_posix()
                digest.update(f"{rel}\0{_file_sha256(file)}\n".encode())
                count += 1
        return f"sha256:{digest.hexdigest()} ({count} files)"
    except OSError as err:
        return f"unreadable: {err.strerror or err}"


def _find_paths(obj: Any, named: bool, out: dict[str, str]) -> None:
    if isinstance(obj, os.PathLike) or (named and isinstance(obj, str)):
        text = os.fspath(obj)
        if text not in out:
            out[text] = _path_digest(text)
    elif isinstance(obj, Ref):
        _find_paths(obj._kwargs, False, out)
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            _find_paths(v, isinstance(k, str) and bool(_PATH_NAME.search(k)), out)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            _find_paths(v, named, out)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            _find_paths(getattr(obj, f.name), bool(_PATH_NAME.search(f.name)), out)


def input_files(*objects: Any) -> dict[str, str]:
    """The data files behind some objects: path -> SHA-256 of the bytes it names.

    Explanation
    -----------
    A value that names a file or a directory is found anywhere in the objects (Refs'
    keyword arguments, dicts, dataclass fields, lists, and their canonical JSON): a
    ``pathlib.Path``, or a str under a name such as ``root``, ``path``, ``file``, ``dir``,
    ``fname``, ``data_dir``, ``image_files`` (pattern ``(^|_)(root|path|file|filename|fname|
    dir|directory|folder)s?$``).  A file counts by the SHA-256 of its bytes; a directory by
    the relative path and hash of every file under it; a path that does not exist as
    ``"missing"``.  Rewriting a label file under a loader's ``root`` thus changes the key of
    every result trained on it; touching it (a new mtime, the same bytes) does not.  Within
    a process a file's hash is reused while its size, times and inode stay the same (and it
    was last changed over two seconds before it was hashed: file times are coarse).

    Parameters
    ----------
    *objects
        Refs, dicts, dataclass instances, or containers of them.

    Returns
    -------
    dict
        Sorted by path, as given.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from dlmath.data import mnist
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "labels").write_bytes(b"\\x00\\x01")
    >>> digests = input_files(Ref(mnist, root=str(root)))
    >>> digests[str(root)][:7], digests[str(root)][-9:]
    ('sha256:', '(1 files)')
    >>> input_files({"root": "/no/such/dir", "name": "not a path"})
    {'/no/such/dir': 'missing'}

    See Also
    --------
    code_sources, environment : the other ingredients of a key (:func:`identity`).
    """
    out: dict[str, str] = {}
    for obj in objects:
        _find_paths(obj, False, out)
    return dict(sorted(out.items()))


def _backend_flag(dotted: str) -> Any:
    obj: Any = torch.backends
    try:
        for part in dotted.split("."):
            obj = getattr(obj, part)
    except Exception:  # noqa: BLE001 (a flag this build of torch does not have)
        return None
    return obj if obj is None or isinstance(obj, (bool, int, float, str)) else str(obj)


def _cpu_capability() -> str | None:
    """The vector instruction set torch's CPU kernels use (``"AVX2"``, ``"AVX512"``, ...)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # noqa: BLE001 (older torch)
        return None


#: Flags under ``torch.backends`` that change the numbers of CUDA kernels.
_CUDA_FLAGS = ("cuda.matmul.allow_fp16_reduced_precision_reduction",
               "cuda.matmul.allow_bf16_reduced_precision_reduction", "cudnn.enabled",
               "cudnn.deterministic", "cudnn.benchmark")


def _fp32_precision(op: str, legacy_tf32: Callable[[], bool]) -> str:
    """The precision float32 work of ``op`` (``"cuda.matmul"``, ``"cudnn.conv"``) runs in.

    torch has two APIs for it: the ``allow_tf32`` flags and ``fp32_precision`` settings
    (``"none"`` inherits from the parent, up to ``torch.backends.fp32_precision``), and
    reading a flag after the other API was used can raise.  The effective value is the
    first setting that is not ``"none"``, else what the legacy flag says; equal numerics
    give equal text however they were set.
    """
    parts = op.split(".")
    for i in range(len(parts), -1, -1):
        value = _backend_flag(".".join([*parts[:i], "fp32_precision"]))
        if value not in (None, "none"):
            return value
    try:
        return "tf32" if legacy_tf32() else "ieee"
    except Exception:  # noqa: BLE001
        return "unknown"


def environment(device: str | torch.device | None = None) -> dict[str, Any]:
    """The numerical environment a computation on ``device`` runs in.

    Explanation
    -----------
    Everywhere: the Python implementation and version, torch's version, the default
    dtype (``torch.set_default_dtype``), the float32 matmul precision, whether
    deterministic algorithms are enforced, the machine and the CPU's vector instruction
    set as torch reports it.  On CUDA also the GPU's name and compute capability, the
    CUDA and cuDNN versions, and the flags that change what kernels compute: the
    precision of float32 matmuls, convolutions and RNNs (TF32 or IEEE, however it was set:
    ``allow_tf32`` flags or ``fp32_precision``), reduced-precision reductions,
    ``cudnn.enabled``, ``cudnn.deterministic`` and ``cudnn.benchmark``.  On
    Apple's MPS the macOS version.  Each value is read when the function is called.

    Parameters
    ----------
    device : str or torch.device, optional
        Default :func:`dlmath.device`.

    Returns
    -------
    dict

    Examples
    --------
    >>> env = environment("cpu")
    >>> env["device"], env["default_dtype"]
    ('cpu', 'torch.float32')
    >>> "cudnn.conv.fp32" in env                        # GPU flags only for a GPU
    False

    See Also
    --------
    identity : where it enters the key.
    """
    from dlmath.engine.hardware import device as resolve_device

    dev = resolve_device(device)
    env: dict[str, Any] = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "torch": torch.__version__, "default_dtype": str(torch.get_default_dtype()),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "machine": platform.machine(), "cpu_capability": _cpu_capability(), "device": dev.type}
    if dev.type == "cuda":
        major, minor = torch.cuda.get_device_capability(dev)
        env.update({"gpu": torch.cuda.get_device_name(dev), "capability": f"{major}.{minor}",
                    "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()})
        env.update({flag: value for flag in _CUDA_FLAGS
                    if (value := _backend_flag(flag)) is not None})
        cudnn_tf32 = lambda: torch.backends.cudnn.allow_tf32
        env.update({
            "cuda.matmul.fp32": _fp32_precision(
                "cuda.matmul", lambda: torch.get_float32_matmul_precision() != "highest"),
            "cudnn.conv.fp32": _fp32_precision("cudnn.conv", cudnn_tf32),
            "cudnn.rnn.fp32": _fp32_precision("cudnn.rnn", cudnn_tf32)})
    elif dev.type == "mps":
        env["macos"] = platform.mac_ver()[0]
    return env


def _parent_key(parent: Any, where: str) -> str:
    key = parent if isinstance(parent, str) else getattr(parent, "key", None)
    if not isinstance(key, str):
        raise TypeError(f"{where} must be a key (str) or a result with a .key, such as a "
                        f"dlmath.engine.Result, got {type(parent).__name__}"
                        + (" whose key is None" if hasattr(parent, "key") else ""))
    if not re.fullmatch(r"[0-9a-f]{64}", key):
        raise ValueError(f"{where} must be a key: 64 lowercase hex digits, got {key!r}")
    return key


def _objects(name: str, value: Any) -> list[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list or tuple, got {type(value).__name__} {value!r}")
    return list(value)


def identity(spec: Any, *, code: Iterable[Any] = (), derived_from: Iterable[Any] = (),
             device: str | torch.device | None = None) -> dict[str, Any]:
    """Everything a stored result depends on, as canonical JSON; its key is its hash.

    Explanation
    -----------
    ``{"spec": canonical(spec), "code": code_fingerprint(spec, *code), "inputs":
    input_files(spec, *code), "environment": environment(device), "derived_from": [keys]}``.
    ``spec`` says what was asked, ``code`` which source answered, ``inputs`` the bytes of
    the data files it names, ``environment`` the numerics, and ``derived_from`` the keys of
    the results it was computed from (a :class:`dlmath.engine.Result`, or anything with a
    ``.key``), so that an evaluation of a trained model is recomputed whenever that model
    is.  :func:`spec_key` of it is the entry's key; the entry stores it and :func:`load`
    compares it with the one asked for.

    Parameters
    ----------
    spec : object
        Anything :func:`canonical` accepts.
    code : iterable
        Further modules or callables whose source the result depends on.
    derived_from : iterable
        Results (with a ``.key``) or keys.
    device : str or torch.device, optional
        Where it is computed; default :func:`dlmath.device`.

    Returns
    -------
    dict

    Examples
    --------
    >>> from dlmath.conv import conv_output_size
    >>> ident = identity(Ref(conv_output_size, size=8, kernel_size=3), device="cpu")
    >>> sorted(ident)
    ['code', 'derived_from', 'environment', 'inputs', 'spec']
    >>> ident["spec"]
    {'__ref__': 'dlmath.conv:conv_output_size', 'kwargs': {'kernel_size': 3, 'size': 8}}

    See Also
    --------
    cached : the key and the entry built from it.
    """
    code = _objects("code", code)
    derived_from = _objects("derived_from", derived_from)
    return {"spec": canonical(spec, "spec"), "code": code_fingerprint(spec, *code),
            "inputs": input_files(spec, *code), "environment": environment(device),
            "derived_from": [_parent_key(p, f"derived_from[{i}]")
                             for i, p in enumerate(derived_from)]}


# --------------------------------------------------------------------------------------
# Where it lives: atomic files
# --------------------------------------------------------------------------------------

def cache_dir() -> Path:
    """The store's root: ``$DLMATH_CACHE_DIR``, else ``~/.cache/dlmath``.

    Examples
    --------
    >>> isinstance(cache_dir(), Path)
    True
    """
    value = os.environ.get(ENV, "").strip()
    return Path(value).expanduser() if value else Path("~/.cache/dlmath").expanduser()


def _check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not value or not all(c.isalnum() or c in "-_."
                                                          for c in value) or value[0] == ".":
        raise ValueError(f"{what} must be a non-empty name of letters, digits, '-', '_' or "
                         f"'.' (not starting with '.'), got {value!r}")
    return value


def entry_path(namespace: str, key: str, root: str | Path | None = None) -> Path:
    """The file of an entry: ``<root>/<namespace>/<key>.pt``.

    Examples
    --------
    >>> entry_path("train", "ab12", root="/tmp/x").as_posix()
    '/tmp/x/train/ab12.pt'
    >>> entry_path("train", "../etc")
    Traceback (most recent call last):
    ...
    ValueError: key must be a non-empty name of letters, digits, '-', '_' or '.' (not starting with '.'), got '../etc'
    """
    return _root(root) / _check_name("namespace", namespace) / f"{_check_name('key', key)}.pt"


def _root(root: str | Path | None) -> Path:
    if root is None:
        return cache_dir()
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a str or a path, got {type(root).__name__} {root!r}")
    if not os.fspath(root):
        raise ValueError("root must be a directory, got ''")
    return Path(root)


class StoreWarning(UserWarning):
    """An entry of the results store was not used, and the result is recomputed."""


class _Unusable(Exception):
    """Why an entry cannot be used."""


_MAGIC = b"DLMATH-STORE 2\n"
_MAX_HEADER = 1 << 24                        # bytes; a header is a few kB
_STALE_TMP_SECONDS = 3600.0                  # save() removes temporaries older than this
_LEAVES = (type(None), bool, int, float, complex, str)


def _check_payload(value: Any, where: str) -> None:
    """Only what ``torch.load(weights_only=True)`` reads back as it was written."""
    if type(value) in _LEAVES or isinstance(value, torch.Tensor):
        return
    if type(value) in (list, tuple):
        for i, v in enumerate(value):
            _check_payload(v, f"{where}[{i}]")
        return
    if isinstance(value, dict) and type(value).__module__ in ("builtins", "collections") \
            and type(value).__name__ in ("dict", "OrderedDict"):
        for k, v in value.items():
            if type(k) not in _LEAVES:
                raise TypeError(f"{where} has a key of type {type(k).__name__}; use str or int")
            _check_payload(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"{where} is a {type(value).__name__}, which the store cannot read back "
                    f"safely; use tensors, None, bool, int, float, str, lists, tuples and "
                    f"dicts of them (a NumPy value: torch.from_numpy(a) or float(x))")


def _schema(value: Any) -> Any:
    """The structure of a payload: containers, leaf types, tensors' dtype and shape."""
    if isinstance(value, torch.Tensor):
        return f"tensor {str(value.dtype).removeprefix('torch.')} {list(value.shape)}"
    if isinstance(value, dict):
        return {"dict": [[repr(k), _schema(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [_schema(v) for v in value]}
    return type(value).__name__


def _schema_text(payload: Mapping[str, Any]) -> str:
    text = json.dumps(_schema(dict(payload)), separators=(",", ":"))
    return text if len(text) <= 2000 else f"sha256:{hashlib.sha256(text.encode()).hexdigest()}"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _difference(stored: Any, asked: Any, where: str = "") -> str:
    """Where two canonical JSON values first differ, in words."""
    if isinstance(stored, dict) and isinstance(asked, dict):
        for k in sorted(set(stored) | set(asked)):
            at = f"{where}.{k}" if where else k
            if k not in stored or k not in asked:
                return f"{at} is only in the {'entry' if k in stored else 'request'}"
            if _json(stored[k]) != _json(asked[k]):
                return _difference(stored[k], asked[k], at)
    if isinstance(stored, list) and isinstance(asked, list) and len(stored) == len(asked):
        for i, (a, b) in enumerate(zip(stored, asked)):
            if _json(a) != _json(b):
                return _difference(a, b, f"{where}[{i}]")

    def short(v: Any) -> str:
        text = _json(v)
        return text if len(text) <= 60 else text[:57] + "..."

    return f"{where or 'it'} is {short(stored)} in the entry but {short(asked)} was asked for"


def _read_entry(path: Path, payload: bool = True) -> tuple[dict[str, Any], bytes | None]:
    """The verified header and payload bytes of an entry file; raises _Unusable."""
    with open(path, "rb") as f:
        if f.read(len(_MAGIC)) != _MAGIC:
            raise _Unusable("it is not an entry of this store's format 2 (an older format, "
                            "or another file)")
        line = f.readline(_MAX_HEADER)
        digest = f.readline(66)
        if not line.endswith(b"\n") or not digest.endswith(b"\n"):
            raise _Unusable("its header is truncated")
        if hashlib.sha256(line[:-1]).hexdigest().encode() != digest[:-1]:
            raise _Unusable("its header is damaged (SHA-256 mismatch)")
        header = json.loads(line)
        if not payload:
            return header, None
        data = f.read()
    size, sha = header["payload"]["bytes"], header["payload"]["sha256"]
    if len(data) != size:
        raise _Unusable(f"it is truncated or padded ({len(data)} payload bytes, "
                        f"{size} written)")
    if hashlib.sha256(data).hexdigest() != sha:
        raise _Unusable("its payload is damaged (SHA-256 mismatch)")
    return header, data


def _check_header(header: Mapping[str, Any], namespace: str, key: str,
                  ident: Any = None) -> None:
    if header.get("format") != _FORMAT:
        raise _Unusable(f"it has format {header.get('format')!r}, not {_FORMAT}")
    if (header.get("namespace"), header.get("key")) != (namespace, key):
        raise _Unusable(f"it was written as {header.get('namespace')}/{header.get('key')} "
                        f"(copied or renamed)")
    stored = header.get("identity")
    if stored is not None and spec_key(stored) != key:
        raise _Unusable("its stored spec does not hash to its key")
    if ident is not None:
        asked = canonical(ident, "identity")
        if stored is None or _json(stored) != _json(asked):
            raise _Unusable("it was stored for another spec: "
                            + _difference(stored if stored is not None else {}, asked))


def _warn(path: Path, reason: str) -> None:
    warnings.warn(f"results store: not using entry {path} ({reason}); the result is "
                  f"recomputed", StoreWarning, stacklevel=3)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):      # not on Windows: nothing to do
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_stale_temporaries(folder: Path, older_than: float) -> list[Path]:
    removed, now = [], time.time()
    with contextlib.suppress(OSError):
        for item in os.scandir(folder):
            if item.name.startswith(".") and item.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    if now - item.stat().st_mtime > older_than:
                        os.unlink(item.path)
                        removed.append(Path(item.path))
    return removed


def save(namespace: str, key: str, payload: Mapping[str, Any],
         root: str | Path | None = None, *, identity: Any = None,
         lineage: str | None = None) -> Path:
    """Write an entry atomically: a temporary file in the same directory, then os.replace.

    Explanation
    -----------
    The file is ``DLMATH-STORE 2``, a one-line JSON header, the SHA-256 of that line, and
    the payload as :func:`torch.save` writes it.  The header holds the namespace, the key,
    the creation time, ``identity`` (what the key is the hash of; see :func:`identity`),
    and the payload's length, SHA-256 and structure; :func:`load` checks all of it before
    it unpickles anything.  The temporary file is flushed to disk before it replaces the
    entry, so a writer killed at any moment leaves the old entry or the new one, whole, and
    at worst a stray ``.<key>.<random>.tmp`` that is never read and is removed by a later
    save in the same directory (after an hour) or by :func:`prune`.

    Parameters
    ----------
    namespace, key : str
        File name parts (letters, digits, ``-``, ``_``, ``.``).
    payload : mapping
        str keys; tensors, None, bool, int, float, str, and lists, tuples and dicts of
        them (what ``torch.load(weights_only=True)`` reads back).
    root : str or pathlib.Path, optional
        Defaults to :func:`cache_dir`.
    identity : object, optional
        Canonical JSON whose :func:`spec_key` is ``key``.
    lineage : str, optional
        What :func:`prune` groups versions by (see :class:`Entry`); default the
        :func:`spec_key` of ``identity["spec"]``.

    Returns
    -------
    pathlib.Path
        The entry's file.

    Raises
    ------
    TypeError
        If the payload holds a value it cannot read back (a NumPy array, an object).
    ValueError
        If ``key`` is not the hash of ``identity``.
    OSError
        If the file cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> p = save("demo", "k1", {"x": torch.arange(3)}, root=root)
    >>> load("demo", "k1", root=root)["x"]
    tensor([0, 1, 2])
    >>> p.read_bytes()[:15]
    b'DLMATH-STORE 2\\n'

    See Also
    --------
    load, cached
    """
    if not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a mapping, got {type(payload).__name__}")
    for k in payload:
        if not isinstance(k, str):
            raise TypeError(f"payload keys must be str, got {k!r}")
    payload = dict(payload)
    _check_payload(payload, "payload")
    path = entry_path(namespace, key, root)
    if lineage is not None and not (isinstance(lineage, str)
                                    and re.fullmatch(r"[0-9a-f]{64}", lineage)):
        raise ValueError(f"lineage must be a key (64 lowercase hex digits), got {lineage!r}")
    if identity is not None:
        identity = canonical(identity, "identity")
        if spec_key(identity) != key:
            raise ValueError(f"key {key!r} is not spec_key(identity)")
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    spec = identity.get("spec") if isinstance(identity, dict) else None
    if lineage is None and spec is not None:
        lineage = spec_key(spec)
    header = {"format": _FORMAT, "namespace": namespace, "key": key,
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec="seconds"),
              "identity": identity, "lineage": lineage,
              "payload": {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                          "schema": _schema_text(payload)}}
    line = _json(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + line + b"\n" + hashlib.sha256(line).hexdigest().encode() + b"\n")
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)                # atomic on POSIX and Windows
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    _remove_stale_temporaries(path.parent, _STALE_TMP_SECONDS)
    return path


def load(namespace: str, key: str, root: str | Path | None = None, *, identity: Any = None,
         validate: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any] | None:
    """Read an entry after checking it, or None if it is missing or fails a check.

    Explanation
    -----------
    In order: the format line; the header's own SHA-256; the payload's length and SHA-256
    (before anything is unpickled, so a flipped bit, a truncated file or garbage is caught
    here); that the header was written for this namespace and key (not copied from
    another entry) and that its identity hashes to the key; that it equals ``identity``
    (the spec, code, data files and environment asked for); then
    ``torch.load(weights_only=True)``, which builds tensors and plain containers and runs
    no code; that the payload has the structure it was written with; and
    ``validate(payload)``, which may raise ``ValueError``, ``TypeError`` or ``KeyError``
    with a reason.  A missing entry returns None quietly; any other failure returns None
    with a :class:`StoreWarning` that names the entry and the reason, and the caller
    recomputes.  Nothing here raises.  A hit sets the file's mtime to now (for
    :func:`prune`).

    Parameters
    ----------
    namespace, key : str
    root : str or pathlib.Path, optional
        Defaults to :func:`cache_dir`.
    identity : object, optional
        What the entry must have been stored for (see :func:`identity`).
    validate : callable, optional
        ``validate(payload)``: raises if the payload does not make sense to the caller.

    Returns
    -------
    dict or None

    Examples
    --------
    >>> import tempfile, warnings
    >>> root = tempfile.mkdtemp()
    >>> load("demo", "nothing-here", root=root) is None
    True
    >>> path = save("demo", "k", {"x": torch.arange(3)}, root=root)
    >>> data = bytearray(path.read_bytes()); data[-40] ^= 1; _ = path.write_bytes(data)
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     print(load("demo", "k", root=root), w[0].category.__name__)
    None StoreWarning
    >>> str(w[0].message).endswith("(its payload is damaged (SHA-256 mismatch)); the result "
    ...                            "is recomputed")
    True

    See Also
    --------
    save, cached
    """
    path = entry_path(namespace, key, root)
    if validate is not None:
        check_callable("validate", validate)
    if identity is not None:
        identity = canonical(identity, "identity")
    try:
        header, data = _read_entry(path)
        _check_header(header, namespace, key, identity)
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or not all(isinstance(k, str) for k in payload):
            raise _Unusable(f"its payload is not a dict with str keys (a "
                            f"{type(payload).__name__})")
        if _schema_text(payload) != header["payload"]["schema"]:
            raise _Unusable("its payload does not have the structure it was written with")
        if validate is not None:
            try:
                validate(payload)
            except (ValueError, TypeError, KeyError, IndexError) as err:
                raise _Unusable(f"its payload does not fit the request ({err})") from None
    except (FileNotFoundError, NotADirectoryError):
        return None
    except _Unusable as err:
        _warn(path, str(err))
        return None
    except Exception as err:  # noqa: BLE001 (unreadable, foreign, unpicklable: recompute)
        _warn(path, f"{type(err).__name__}: {err}")
        return None
    with contextlib.suppress(OSError):
        os.utime(path)                       # last used: prune(older_than=...) keeps it
    return payload


def _save_or_warn(namespace: str, key: str, payload: Mapping[str, Any],
                  root: str | Path | None, ident: Any, lineage: str | None = None) -> None:
    try:
        save(namespace, key, payload, root, identity=ident, lineage=lineage)
    except OSError as err:
        warnings.warn(f"results store: could not write entry {namespace}/{key} "
                      f"({type(err).__name__}: {err}); the result is used but not stored",
                      StoreWarning, stacklevel=3)


def cached(namespace: str, spec: Any, compute: Callable[[], Mapping[str, Any]], *,
           code: Iterable[Any] = (), derived_from: Iterable[Any] = (),
           device: str | torch.device | None = None,
           validate: Callable[[dict[str, Any]], Any] | None = None,
           root: str | Path | None = None, refresh: bool = False
           ) -> tuple[dict[str, Any], bool]:
    """Load ``compute()``'s payload from the store, or compute and store it.

    Explanation
    -----------
    The key is :func:`spec_key` of :func:`identity`: it changes when the spec changes, when
    the source of any module behind the spec (its Refs and dataclasses) or behind ``code``
    changes, when a data file the spec names changes, when the numerical environment
    changes, and when a result in ``derived_from`` changes.  A result computed *from*
    another stored result (an evaluation of a trained model, say) names it in
    ``derived_from``: ``cached("rotation-eval", {"angles": A}, lambda: curves(result),
    code=[curves], derived_from=[result])`` is recomputed whenever ``result`` is retrained.
    An entry that fails any check of :func:`load` is recomputed with a
    :class:`StoreWarning`; an entry that cannot be written is returned with one.

    Parameters
    ----------
    namespace : str
        A directory of the store, e.g. ``"train"``.
    spec : object
        Anything :func:`canonical` accepts; identifies the computation.
    compute : callable
        ``compute() -> mapping`` (see :func:`save` for what it may hold).
    code : iterable
        Further modules or callables whose source the result depends on (a function
        defined in a notebook counts by its source and the globals it reads).
    derived_from : iterable
        Results (anything with a ``.key``, such as :class:`dlmath.engine.Result`) or keys
        this result is computed from.
    device : str or torch.device, optional
        Where ``compute`` runs, for :func:`environment`; default :func:`dlmath.device`.
    validate : callable, optional
        See :func:`load`.
    root : str or pathlib.Path, optional
        Defaults to :func:`cache_dir`.
    refresh : bool
        Recompute even if an entry exists.

    Returns
    -------
    (payload, hit)
        The payload, and whether it came from the store.

    See Also
    --------
    identity, save, load, entries, prune
    """
    check_callable("compute", compute)
    if validate is not None:
        check_callable("validate", validate)
    check_bool("refresh", refresh)
    derived_from = _objects("derived_from", derived_from)
    ident = identity(spec, code=code, derived_from=derived_from, device=device)
    key = spec_key(ident)
    if not refresh:
        payload = load(namespace, key, root, identity=ident, validate=validate)
        if payload is not None:
            return payload, True
    payload = compute()
    if not isinstance(payload, Mapping):
        raise TypeError(f"compute must return a mapping (a dict), got "
                        f"{type(payload).__name__}")
    payload = dict(payload)
    # the versions of one computation: same spec, from the versions of the same parents
    parents = [getattr(p, "lineage", None) or k for p, k in zip(derived_from,
                                                                ident["derived_from"])]
    lineage = spec_key({"spec": ident["spec"], "parents": parents}) if parents else None
    _save_or_warn(namespace, key, payload, root, ident, lineage)
    return payload, False


# --------------------------------------------------------------------------------------
# Seeing and pruning the store
# --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Entry:
    """One file of the store, as :func:`entries` finds it.

    Attributes
    ----------
    namespace, key : str
    path : pathlib.Path
    size : int
        Bytes.
    mtime : float
        When it was last written or loaded (seconds since the epoch).
    status : str
        ``"ok"``, ``"temporary"`` (a writer's file: in progress, or left by a killed
        one), or ``"damaged: <reason>"`` (never loaded; an older format counts here too).
    created : str, optional
        ISO time of writing, from the header.
    code : str, optional
        The code fingerprint it was computed with.
    lineage : str, optional
        :func:`spec_key` of its spec alone: the entries of one computation across code,
        data and environment versions share it.  For a result derived from others, of its
        spec and its parents' lineages (a parent's ``.lineage`` attribute, such as
        the ``lineage`` of a :class:`dlmath.engine.train.Result`, else its key): the evaluations of two
        different models are two lineages, those of one model retrained are one.
    derived_from : tuple of str
        Keys of the results it was computed from.
    """

    namespace: str
    key: str
    path: Path
    size: int
    mtime: float
    status: str
    created: str | None = None
    code: str | None = None
    lineage: str | None = None
    derived_from: tuple[str, ...] = ()


def _entry(folder: Path, item: os.DirEntry, verify: bool) -> Entry | None:
    name = item.name
    try:
        st = item.stat()
    except OSError:
        return None
    if name.startswith(".") and name.endswith(".tmp"):
        key = name[1:-4].rpartition(".")[0]
        return Entry(folder.name, key, Path(item.path), st.st_size, st.st_mtime, "temporary")
    if not name.endswith(".pt") or name.startswith("."):
        return None
    key = name[:-3]
    try:
        header, _ = _read_entry(Path(item.path), payload=verify)
        _check_header(header, folder.name, key)
    except FileNotFoundError:
        return None
    except (_Unusable, OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        reason = str(err) if isinstance(err, _Unusable) else f"{type(err).__name__}: {err}"
        return Entry(folder.name, key, Path(item.path), st.st_size, st.st_mtime,
                     f"damaged: {reason}")
    ident = header.get("identity") or {}
    return Entry(folder.name, key, Path(item.path), st.st_size, st.st_mtime, "ok",
                 header.get("created"), ident.get("code"), header.get("lineage"),
                 tuple(ident.get("derived_from") or ()))


def entries(root: str | Path | None = None, namespace: str | None = None, *,
            verify: bool = False) -> list[Entry]:
    """Every entry and temporary file of the store, by namespace and key.

    Parameters
    ----------
    root : str or pathlib.Path, optional
        Defaults to :func:`cache_dir`.
    namespace : str, optional
        Only this namespace.
    verify : bool
        Also read every payload and check its SHA-256 (slower); otherwise only headers.

    Returns
    -------
    list of Entry

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> _ = cached("demo", {"n": 1}, lambda: {"x": 1}, root=root, device="cpu")
    >>> [(e.namespace, e.status, len(e.key), len(e.code)) for e in entries(root)]
    [('demo', 'ok', 64, 64)]

    See Also
    --------
    prune
    """
    base = _root(root)
    check_bool("verify", verify)
    if namespace is not None:
        folders = [base / _check_name("namespace", namespace)]
    else:
        folders = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    found = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for item in sorted(os.scandir(folder), key=lambda i: i.name):
            entry = _entry(folder, item, verify)
            if entry is not None:
                found.append(entry)
    return found


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _seconds(name: str, value: Any) -> float | None:
    """None, a number of seconds, a timedelta, or text such as ``"90s"``, ``"12h"``, ``"30d"``."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smhdw]?)\s*", value)
        if match is None:
            raise ValueError(f"{name} must be a duration such as '90s', '10m', '12h', '30d' "
                             f"or '2w', got {value!r}")
        value = float(match[1]) * _UNITS[match[2] or "s"]
    return check_number(name, value, nonnegative=True)


def prune(root: str | Path | None = None, *, keep: int | None = None,
          older_than: Any = None, tmp_older_than: Any = 600, namespace: str | None = None,
          verify: bool = False, dry_run: bool = True) -> list[Entry]:
    """Remove what the store no longer needs; by default only say what that would be.

    Explanation
    -----------
    Removed are: temporary files not written to for ``tmp_older_than`` (left by killed
    writers); damaged entries and entries of an older format (never loaded anyway); with
    ``older_than``, entries not written or loaded for that long; with ``keep``, all but
    the ``keep`` most recently used entries of each lineage (one computation asked for
    again and again while its code, data or environment changed: the old versions).

    Parameters
    ----------
    root : str or pathlib.Path, optional
        Defaults to :func:`cache_dir`.
    keep : int, optional
        Entries to keep per lineage, at least 1.
    older_than : float, datetime.timedelta or str, optional
        Seconds, or text such as ``"30d"``, ``"12h"``.
    tmp_older_than : float, datetime.timedelta or str, optional
        Age of a temporary file that counts as abandoned; default ten minutes; None keeps
        them all.
    namespace : str, optional
        Only this namespace.
    verify : bool
        Check every payload's SHA-256 too (see :func:`entries`).
    dry_run : bool
        Only return what would be removed.

    Returns
    -------
    list of Entry
        What was (or would be) removed.

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> for n in (1, 2):                 # one lineage: the spec stays, the code changes
    ...     _ = save("demo", spec_key({"spec": 0, "v": n}), {"x": n}, root=root,
    ...              identity={"spec": 0, "v": n})
    >>> [e.status for e in prune(root, keep=1)]           # a dry run
    ['ok']
    >>> len(entries(root)), len(prune(root, keep=1, dry_run=False)), len(entries(root))
    (2, 1, 1)

    See Also
    --------
    entries
    """
    if keep is not None:
        keep = check_int("keep", keep, 1)
    older = _seconds("older_than", older_than)
    tmp_age = _seconds("tmp_older_than", tmp_older_than)
    check_bool("dry_run", dry_run)
    now = time.time()
    found = entries(root, namespace, verify=verify)
    doomed = {e.path: e for e in found
              if (e.status == "temporary" and tmp_age is not None and now - e.mtime > tmp_age)
              or e.status.startswith("damaged")
              or (e.status == "ok" and older is not None and now - e.mtime > older)}
    if keep is not None:
        lineages: dict[tuple[str, str], list[Entry]] = {}
        for e in found:
            if e.status == "ok" and e.path not in doomed:
                lineages.setdefault((e.namespace, e.lineage or e.key), []).append(e)
        for group in lineages.values():
            for e in sorted(group, key=lambda e: -e.mtime)[keep:]:
                doomed[e.path] = e
    removed = sorted(doomed.values(), key=lambda e: (e.namespace, e.key, str(e.path)))
    if not dry_run:
        for e in removed:
            with contextlib.suppress(FileNotFoundError):
                e.path.unlink()
    return removed


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _table(rows: list[Entry]) -> str:
    lines = [f"{'namespace':<24} {'key':<16} {'size':>9}  {'last used':<16}  {'code':<12}  status"]
    for e in rows:
        when = datetime.datetime.fromtimestamp(e.mtime).strftime("%Y-%m-%d %H:%M")
        lines.append(f"{e.namespace:<24} {e.key[:16]:<16} {_size(e.size):>9}  {when:<16}  "
                     f"{(e.code or '-')[:12]:<12}  {e.status}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dlmath.engine.store list|prune``: see and prune the results store.

    Examples
    --------
    >>> import tempfile
    >>> main(["list", "--root", tempfile.mkdtemp()])
    namespace                key                   size  last used         code          status
    0 entries, 0 temporary files, 0 damaged: 0 B in ...
    0
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m dlmath.engine.store",
                                     description="See and prune the dlmath results store.")
    sub = parser.add_subparsers(dest="command", required=True)
    prune_help = "remove abandoned, damaged and old entries (a dry run unless --apply)"
    for name, text in (("list", "list the entries"), ("prune", prune_help)):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--root", help=f"the store (default ${ENV} or ~/.cache/dlmath)")
        p.add_argument("--namespace", help="only this namespace (e.g. train)")
        p.add_argument("--verify", action="store_true",
                       help="also check every payload's SHA-256")
        if name == "prune":
            p.add_argument("--keep", type=int, help="entries to keep per lineage")
            p.add_argument("--older-than", help="remove entries unused this long: 30d, 12h")
            p.add_argument("--tmp-older-than", default="10m",
                           help="age of an abandoned temporary file (default 10m)")
            p.add_argument("--apply", action="store_true", help="remove (default: dry run)")
    args = parser.parse_args(argv)
    root = Path(args.root) if args.root else cache_dir()
    try:
        if args.command == "list":
            rows = entries(root, args.namespace, verify=args.verify)
            print(_table(rows))
            ok = sum(e.status == "ok" for e in rows)
            tmp = sum(e.status == "temporary" for e in rows)
            print(f"{_count(ok, 'entry', 'entries')}, {_count(tmp, 'temporary file')}, "
                  f"{len(rows) - ok - tmp} damaged: {_size(sum(e.size for e in rows))} in {root}")
            return 0
        rows = prune(root, keep=args.keep, older_than=args.older_than,
                     tmp_older_than=args.tmp_older_than, namespace=args.namespace,
                     verify=args.verify, dry_run=not args.apply)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    if rows:
        print(_table(rows))
    verb = "removed" if args.apply else "would remove (dry run; --apply to remove)"
    print(f"{verb}: {_count(len(rows), 'file')}, {_size(sum(e.size for e in rows))} in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
