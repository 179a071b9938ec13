"""Lazy re-exports for dlmath's packages: ``dlmath.data.digits`` without importing every data set.

A package lists its submodules; :func:`lazy_exports` returns the package's ``__getattr__``
and ``__dir__``, which find a name in the ``__all__`` of the first submodule that defines it
and import that submodule on first use.  No submodule may be named like a name it exports:
importing a submodule sets the package attribute of that name, which would hide the export
(the tests check this for every package).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any


def lazy_exports(package: str, submodules: Sequence[str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` re-exporting its submodules' ``__all__``."""
    def exports(sub: str) -> tuple[str, ...]:
        return tuple(getattr(import_module(f"{package}.{sub}"), "__all__", ()))

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return import_module(f"{package}.{name}")
        if not name.startswith("_"):
            for sub in submodules:
                if name in exports(sub):
                    return getattr(import_module(f"{package}.{sub}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        names = {name for sub in submodules for name in exports(sub)}
        return sorted(names | set(submodules))

    return __getattr__, __dir__
