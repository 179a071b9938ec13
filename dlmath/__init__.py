"""dlmath: the mathematics of deep learning, executable.

Each topic is one module (``dlmath.conv``, ``dlmath.toeplitz``, ``dlmath.params``, ...).
Modules are imported on first use, so ``import dlmath`` is cheap and ``dlmath.conv``
works without a separate import.  Nothing is printed or configured on import.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from dlmath._device import device

__version__ = "0.1.0"

__all__ = ["device", "__version__"]


def __getattr__(name: str) -> ModuleType:
    # Lazy access to submodules: ``dlmath.conv`` imports ``dlmath/conv.py`` on first use.
    if name.startswith("_"):
        raise AttributeError(f"module 'dlmath' has no attribute {name!r}")
    try:
        return import_module(f"dlmath.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"dlmath.{name}":
            raise AttributeError(f"module 'dlmath' has no attribute {name!r}") from None
        raise
