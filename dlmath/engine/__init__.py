"""The training engine: one loop for every experiment, its results store, and where it runs.

``train`` (:func:`run` a frozen :class:`TrainConfig`, several seeds at once), ``store`` (results
on disk keyed by the config and the source of the code behind it), ``ensemble`` (several trained
sequence models decoded as one) and ``hardware`` (:func:`device`: CUDA, Apple's MPS or the CPU).
Every public name is re-exported here on first use: ``from dlmath.engine import run, TrainConfig``.
"""

from __future__ import annotations

from dlmath._lazy import lazy_exports

_SUBMODULES = ("train", "store", "ensemble", "hardware")

__getattr__, __dir__ = lazy_exports(__name__, _SUBMODULES)
