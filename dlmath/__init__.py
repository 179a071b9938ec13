"""dlmath: the mathematics of deep learning, executable.

The package is laid out by contract:

* the mathematics, one module per topic, public and stable: ``conv``, ``toeplitz``,
  ``params``, ``softmax``, ``mlp``, ``hopfield``, ``attention``, ``graphs``,
  ``equivariance``, ``regularisation``, ``transformer_cost``, ``decoding``, ``metrics``;
* ``check``, which judges answers (numbers, formulas, tensors, networks) to the exercises
  that end every chapter;
* ``models`` (the networks), ``engine`` (training, the results store, devices) and
  ``data`` (every data set: generated, shipped inside a package, or read from local files);
* ``dlmath._book``: code that only the book's chapters use (private).

Modules are imported on first use, so ``import dlmath`` is cheap and ``dlmath.conv`` works
without a separate import; ``dir(dlmath)`` lists the public modules.  Nothing is printed or
configured on import.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

#: The public modules and subpackages, in the order of the book.
MODULES = ("conv", "toeplitz", "params", "equivariance", "softmax", "mlp", "hopfield",
           "attention", "graphs", "regularisation", "transformer_cost", "decoding", "metrics",
           "check", "models", "engine", "data")

__all__ = ["device", "__version__", *MODULES]


def __getattr__(name: str) -> Any:
    # Lazy access: ``dlmath.conv`` imports ``dlmath/conv.py`` on first use.
    if name == "device":
        from dlmath.engine.hardware import device

        return device
    if name in MODULES or name == "_book":
        return import_module(f"dlmath.{name}")
    raise AttributeError(f"module 'dlmath' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({"device", "__version__", "MODULES", *MODULES})
