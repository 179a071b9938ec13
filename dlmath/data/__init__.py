"""Data sets of the book: generated, or shipped inside a package; never downloaded.

The functions live in submodules by kind (``toy``: 2-D classification sets; ``handwritten``:
scikit-learn's bundled handwritten digits; ``loaders``: MNIST/CIFAR-10 files from a local
directory; ``boxes``: the red/green box images; ``words``: the CMU pronouncing dictionary)
and are re-exported here on first use, so ``dlmath.data.digits()`` works directly.  No
submodule is named like a function it exports: importing a submodule sets the package
attribute of that name, which would otherwise hide the function.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_SUBMODULES = ("toy", "handwritten", "loaders", "boxes", "words", "tensors")


def __getattr__(name: str) -> Any:
    # Lazy re-export: find `name` in the __all__ of the first submodule that defines it.
    if name.startswith("_"):
        raise AttributeError(f"module 'dlmath.data' has no attribute {name!r}")
    for sub in _SUBMODULES:
        try:
            module = import_module(f"dlmath.data.{sub}")
        except ModuleNotFoundError as err:
            if err.name == f"dlmath.data.{sub}":
                continue
            raise
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"module 'dlmath.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    names: list[str] = []
    for sub in _SUBMODULES:
        try:
            names += list(getattr(import_module(f"dlmath.data.{sub}"), "__all__", ()))
        except ModuleNotFoundError:
            continue
    return sorted(set(names) | set(globals()))
