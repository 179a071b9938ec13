"""The results store: expensive results on disk, keyed by what produced them.

Scope: three things that together make a rebuild of the book re-run exactly the work whose
inputs changed, and nothing else.

1. **What was asked.**  :class:`Ref` names a module-level callable (a model factory, a data
   function) by ``module:qualname`` together with its keyword arguments, and
   :func:`canonical` turns a Ref, a frozen config dataclass, numbers, strings, tuples and
   dicts into canonical JSON.  :func:`spec_key` is the SHA-256 of that JSON: equal configs
   give equal keys in every process, on every machine; nothing is pickled.
2. **Which code answered.**  :func:`code_sources` finds the source files behind a set of
   objects: the module of each callable, and, for ``dlmath`` modules, every ``dlmath``
   module they import (read from the source with :mod:`ast`, followed transitively).
   Installed packages count by their version, ``torch`` by ``torch.__version__``; a
   callable defined in a notebook (``__main__``) counts by its own source text.
   :func:`code_fingerprint` hashes all of it.  Edit a model's module and the experiments
   that use it get a new key; edit an unrelated chapter's module and they do not.
3. **Where it lives.**  Entries are files ``<cache_dir>/<namespace>/<key>.pt`` written with
   :func:`torch.save` to a temporary file in the same directory and moved into place with
   :func:`os.replace`, which is atomic: a build killed mid-write leaves either no entry or a
   whole one (and at worst a stray ``.tmp`` file that is never read).  :func:`load` reads
   with ``torch.load(weights_only=True)`` (tensors and plain containers, no code), and
   treats an unreadable entry as missing, so it is recomputed instead of crashing.

The directory is ``$DLMATH_CACHE_DIR`` if set (the book build sets it to
``_build/.dlmath-cache``), else ``~/.cache/dlmath``.  Delete it at any time.

Example: cache any computation, keyed by its arguments and the code it calls

>>> import tempfile
>>> from dlmath.conv import conv_output_size
>>> root = tempfile.mkdtemp()
>>> spec = Ref(conv_output_size, size=32, kernel=5, padding=2)
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
import enum
import functools
import hashlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import sys
import sysconfig
import tempfile
import types
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "Ref",
    "canonical",
    "spec_key",
    "code_sources",
    "code_fingerprint",
    "cache_dir",
    "entry_path",
    "load",
    "save",
    "cached",
]

ENV = "DLMATH_CACHE_DIR"
_FORMAT = 1


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
    >>> r = Ref(conv_output_size, kernel=3, padding=1)
    >>> r
    Ref(dlmath.conv:conv_output_size, kernel=3, padding=1)
    >>> r(32), r(32, stride=2)
    (32, 16)
    >>> r == Ref(conv_output_size, padding=1, kernel=3)
    True
    >>> r.replace(kernel=5).kwargs
    {'kernel': 5, 'padding': 1}
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
    ``torch.dtype`` or ``torch.device`` its text.  Anything else raises, since it could not
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
        If a value has no canonical form.

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


def _add_object(obj: Any, out: dict[str, str]) -> None:
    if obj is None or isinstance(obj, (bool, int, float, str, torch.dtype, torch.device)):
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
        module = sys.modules.get(getattr(obj, "__module__", None) or "")
        file = getattr(module, "__file__", None) if module is not None else None
        if module is None or module.__name__ == "__main__" or file is None:
            try:                               # a notebook cell: its own source text
                source = inspect.getsource(obj)
            except (OSError, TypeError):
                raise TypeError(f"cannot fingerprint {obj!r}: its source is not available; "
                                f"define it in a module") from None
            out[_target(obj)] = hashlib.sha256(source.encode()).hexdigest()
            _add_imports(inspect.cleandoc(source), "__main__", False, out)
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
    file, a script) counts by its source, like a dlmath module; a callable defined in a
    notebook cell by its own source text.  ``torch`` is always included.

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
        If an object's source cannot be found.

    Examples
    --------
    >>> from dlmath.conv import conv_output_size
    >>> sorted(code_sources(conv_output_size))
    ['dlmath.conv', 'sympy', 'torch']
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
    base = Path(root) if root is not None else cache_dir()
    return base / _check_name("namespace", namespace) / f"{_check_name('key', key)}.pt"


def save(namespace: str, key: str, payload: Mapping[str, Any],
         root: str | Path | None = None) -> Path:
    """Write an entry atomically: a temporary file in the same directory, then os.replace.

    Parameters
    ----------
    namespace, key : str
        File name parts (letters, digits, ``-``, ``_``, ``.``).
    payload : mapping
        str keys; values that ``torch.load(weights_only=True)`` can read back: tensors,
        None, bool, int, float, str, lists, tuples and dicts of them.
    root : str or pathlib.Path, optional
        Defaults to :func:`cache_dir`.

    Returns
    -------
    pathlib.Path
        The entry's file.

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> p = save("demo", "k1", {"x": torch.arange(3)}, root=root)
    >>> load("demo", "k1", root=root)["x"]
    tensor([0, 1, 2])

    See Also
    --------
    load, cached
    """
    if not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a mapping, got {type(payload).__name__}")
    path = entry_path(namespace, key, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"__format__": _FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)                # atomic on POSIX and Windows
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def load(namespace: str, key: str, root: str | Path | None = None) -> dict[str, Any] | None:
    """Read an entry, or None if it is missing, unreadable or of another format.

    Examples
    --------
    >>> import tempfile
    >>> load("demo", "nothing-here", root=tempfile.mkdtemp()) is None
    True

    See Also
    --------
    save, cached
    """
    path = entry_path(namespace, key, root)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # missing, truncated, corrupt or foreign: recompute instead
        return None
    if not isinstance(payload, dict) or payload.pop("__format__", None) != _FORMAT:
        return None
    return payload


def cached(namespace: str, spec: Any, compute: Callable[[], Mapping[str, Any]], *,
           code: Iterable[Any] = (), root: str | Path | None = None,
           refresh: bool = False) -> tuple[dict[str, Any], bool]:
    """Load ``compute()``'s payload from the store, or compute and store it.

    Explanation
    -----------
    The key is :func:`spec_key` of ``{"spec": spec, "code": code_fingerprint(spec, *code)}``:
    it changes when the spec changes or when the source of any module behind the spec (its
    Refs and dataclasses) or behind ``code`` changes.

    Parameters
    ----------
    namespace : str
        A directory of the store, e.g. ``"train"``.
    spec : object
        Anything :func:`canonical` accepts; identifies the computation.
    compute : callable
        ``compute() -> mapping`` (see :func:`save` for what it may hold).
    code : iterable
        Further modules or callables whose source the result depends on.
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
    save, load, code_fingerprint
    """
    key = spec_key({"spec": spec, "code": code_fingerprint(spec, *code)})
    if not refresh:
        payload = load(namespace, key, root)
        if payload is not None:
            return payload, True
    payload = dict(compute())
    save(namespace, key, payload, root)
    return payload, False
