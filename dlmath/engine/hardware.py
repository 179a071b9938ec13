"""Where tensors live: the GPU when there is one (CUDA, else Apple's MPS), else the CPU.

The environment variable ``DLMATH_DEVICE`` overrides the choice (``cpu``, ``cuda``,
``cuda:1``, ``mps`` or ``auto``), so the same book builds on a laptop and on a GPU
machine without a change to any chapter.
"""

from __future__ import annotations

import os

import torch

__all__ = ["device"]

_ENV = "DLMATH_DEVICE"


def _mps_available() -> bool:
    """Whether Apple's Metal backend is usable (torch builds without it lack the module)."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the device dlmath computes on.

    Explanation
    -----------
    The choice is, in order: the argument ``prefer`` if given, else the environment
    variable ``DLMATH_DEVICE`` if set, else ``"auto"``.  ``"auto"`` means CUDA when
    ``torch.cuda.is_available()``, else Apple's MPS when
    ``torch.backends.mps.is_available()``, otherwise the CPU.  Asking for a CUDA or MPS
    device that is not there is an error rather than a silent fall-back, so a GPU run
    never quietly becomes a CPU run.

    Parameters
    ----------
    prefer : str or torch.device, optional
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:<index>"`` or ``"mps"``.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> device("cpu")
    device(type='cpu')
    >>> device("auto").type in {"cpu", "cuda", "mps"}
    True
    >>> device("tpu")
    Traceback (most recent call last):
    ...
    ValueError: device 'tpu' is not one of 'auto', 'cpu', 'cuda', 'cuda:<index>', 'mps'
    """
    source = "device"
    if prefer is None:
        prefer = os.environ.get(_ENV, "").strip() or "auto"
        source = _ENV if _ENV in os.environ else "device"
    if isinstance(prefer, torch.device):
        prefer = str(prefer)
    if not isinstance(prefer, str):
        raise TypeError(f"{source} must be a str or torch.device, got {type(prefer).__name__}")
    name = prefer.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise ValueError(f"{source} is 'mps' but no MPS device is available")
        return torch.device("mps")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"{source} is {prefer!r} but CUDA is not available on this machine")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"{source} is {prefer!r} but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
        return dev
    raise ValueError(
        f"{source} {prefer!r} is not one of 'auto', 'cpu', 'cuda', 'cuda:<index>', 'mps'"
    )
