"""The package's layout: what ``dir(dlmath)`` lists, lazy imports, and the re-exports of
``dlmath.data``, ``dlmath.engine`` and ``dlmath.models`` that no submodule import can hide."""

from __future__ import annotations

import importlib

import pytest

import dlmath

PACKAGES = ("data", "engine", "models")


def _submodules(package: str) -> dict[str, object]:
    pkg = importlib.import_module(f"dlmath.{package}")
    return {sub: importlib.import_module(f"dlmath.{package}.{sub}") for sub in pkg._SUBMODULES}


# --- dlmath itself ------------------------------------------------------------------------------

def test_dir_lists_the_public_modules_only():
    names = set(dir(dlmath))
    assert set(dlmath.MODULES) <= names
    assert {"device", "__version__"} <= names
    dlmath._book                                        # noqa: B018  (imported now, still hidden)
    assert "_book" not in dir(dlmath)
    assert not {n for n in dir(dlmath) if n.startswith("_")} - {"__version__"}


@pytest.mark.parametrize("name", dlmath.MODULES)
def test_every_public_module_imports(name):
    module = importlib.import_module(f"dlmath.{name}")
    assert getattr(dlmath, name) is module
    assert module.__doc__, f"dlmath.{name} has no module docstring"


def test_lazy_attributes_and_unknown_names():
    assert dlmath._book is importlib.import_module("dlmath._book")
    assert dlmath.device is importlib.import_module("dlmath.engine.hardware").device
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        dlmath.nonexistent  # noqa: B018


# --- the subpackages with lazy re-exports ---------------------------------------------------------

@pytest.mark.parametrize("package", PACKAGES)
def test_no_submodule_is_named_like_an_exported_name(package):
    # ``import dlmath.<package>.<sub>`` sets the package attribute <sub>; were <sub> also an
    # exported name, that name would be hidden from then on.
    exported = {name for module in _submodules(package).values() for name in module.__all__}
    assert not exported & set(_submodules(package))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves_to_its_definition_after_all_imports(package):
    pkg = importlib.import_module(f"dlmath.{package}")
    for sub, module in _submodules(package).items():       # every submodule imported first
        for name in module.__all__:
            assert getattr(pkg, name) is getattr(module, name), (sub, name)


@pytest.mark.parametrize("package", PACKAGES)
def test_dir_lists_the_exports_and_unknown_names_raise(package):
    pkg = importlib.import_module(f"dlmath.{package}")
    subs = _submodules(package)
    assert {name for module in subs.values() for name in module.__all__} | set(subs) == set(dir(pkg))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pkg.nope  # noqa: B018
    with pytest.raises(AttributeError):
        pkg._private  # noqa: B018


@pytest.mark.parametrize("package, name, home", [
    ("data", "digits", "dlmath.data.handwritten"),
    ("data", "TensorSplit", "dlmath.data.tensors"),
    ("engine", "run", "dlmath.engine.train"),
    ("engine", "device", "dlmath.engine.hardware"),
    ("models", "GPT", "dlmath.models.gpt"),
    ("models", "three_block_cnn", "dlmath.models.zoo"),
])
def test_names_come_from_their_submodule(package, name, home):
    assert getattr(importlib.import_module(f"dlmath.{package}"), name).__module__ == home
