"""dlmath.data (the package): lazy re-exports that no submodule import can hide."""

from __future__ import annotations

import importlib

import pytest

import dlmath.data as data


def test_no_submodule_is_named_like_an_exported_name():
    # ``import dlmath.data.<sub>`` sets the package attribute <sub>; were <sub> also an
    # exported function, the function would be hidden from then on.
    exported = set()
    for sub in data._SUBMODULES:
        module = importlib.import_module(f"dlmath.data.{sub}")
        exported |= set(module.__all__)
    assert not exported & set(data._SUBMODULES)


def test_every_exported_name_resolves_to_its_definition_after_all_imports():
    for sub in data._SUBMODULES:
        module = importlib.import_module(f"dlmath.data.{sub}")
        for name in module.__all__:
            assert getattr(data, name) is getattr(module, name), (sub, name)
    assert callable(data.digits) and data.digits.__module__ == "dlmath.data.handwritten"


def test_dir_lists_the_exports_and_unknown_names_raise():
    assert {"digits", "two_moons", "TensorSplit", "mnist"} <= set(dir(data))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        data.nope
    with pytest.raises(AttributeError):
        data._private
