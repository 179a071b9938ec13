"""Argument checks shared by every module of dlmath: one message style, one place.

Each check raises :class:`TypeError` for a value of the wrong kind and :class:`ValueError`
for a value of the right kind outside what is allowed; the message names the parameter,
what is allowed and what was given (``"kernel_size must be >= 1, got 0"``).  Integers of any
integral type (``numpy.int64``) are accepted as ints; ``bool`` never is (``True`` is not a
size), and a flag must be a ``bool`` (``"False"`` is not false).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["is_int", "check_int", "check_size", "check_number", "check_bool", "check_choice",
           "check_tensor", "check_callable", "int_tuple", "int_shape", "int_sequence",
           "check_fractions", "one_torch_thread", "MAX_ENTRIES", "check_entries", "check_seed",
           "check_dtype", "check_device", "check_generator"]

#: The most entries one tensor (or one model's parameters) that dlmath allocates may hold:
#: 2**31, i.e. 8 GiB of float32.  A size above it is a mistake (``10**12`` for ``10**2``), and
#: refusing it at once beats waiting for the allocator to fail or the machine to swap.
MAX_ENTRIES = 2**31


def is_int(x: object) -> bool:
    """Whether ``x`` is an integer of an integral type (``bool`` is not)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def check_int(name: str, value: object, minimum: int | None = None,
              maximum: int | None = None, *, allow_none: bool = False,
              limit: int | None = None) -> Any:
    """``value`` as a Python int, checked against ``minimum <= value <= maximum``.

    With ``allow_none`` a ``None`` (an optional limit) passes through unchanged.  ``limit``
    is a sanity bound rather than part of the range: a count so large that it must be a
    mistake (``10**12`` steps would run for days); it has a message of its own, so a value
    below ``minimum`` is still told ``>= minimum``.

    >>> check_int("stride", 2, 1)
    2
    >>> check_int("stride", 0, 1)
    Traceback (most recent call last):
    ...
    ValueError: stride must be >= 1, got 0
    >>> check_int("stride", 1.5)
    Traceback (most recent call last):
    ...
    TypeError: stride must be an int, got float 1.5
    >>> check_int("dim", 2, -2, 1)
    Traceback (most recent call last):
    ...
    ValueError: dim must be in [-2, 1], got 2
    >>> check_int("max_words", "all", 1, allow_none=True)
    Traceback (most recent call last):
    ...
    TypeError: max_words must be an int or None, got str 'all'
    >>> check_int("epochs", 10**12, 1, limit=10**6)
    Traceback (most recent call last):
    ...
    ValueError: epochs must be <= 1000000, got 1000000000000
    """
    if value is None and allow_none:
        return None
    if not is_int(value):
        kind = "an int or None" if allow_none else "an int"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ValueError(f"{name} must be in [{minimum}, {maximum}], got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    if limit is not None and value > limit:
        raise ValueError(f"{name} must be <= {limit}, got {value}")
    return value


def check_size(name: str, value: object, minimum: int = 1) -> Any:
    """An int ``>= minimum`` as a Python int, or a SymPy expression kept as it is.

    A size in a formula that also works symbolically (``conv_output_size(n, 3)`` with a
    symbol ``n``): an expression is rejected only when it is provably not an integer or
    provably below ``minimum``.

    >>> check_size("d_model", 512)
    512
    >>> import sympy
    >>> check_size("d_model", sympy.Symbol("d", positive=True, integer=True))
    d
    >>> check_size("d_model", 0)
    Traceback (most recent call last):
    ...
    ValueError: d_model must be >= 1, got 0
    """
    import sympy

    if isinstance(value, sympy.Basic):
        if not isinstance(value, sympy.Expr):
            raise TypeError(f"{name} must be an int or a sympy expression, got {value!r}")
        if value.is_integer is False:
            raise ValueError(f"{name} must be an integer, got {value}")
        if (value - minimum).is_negative:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
        return value
    if not is_int(value):
        raise TypeError(f"{name} must be an int or a sympy expression, "
                        f"got {type(value).__name__} {value!r}")
    return check_int(name, value, minimum)


def _interval(text: str) -> tuple[float, float, bool, bool]:
    """``"[0, 1)"`` as (low, high, low_open, high_open)."""
    low, high = (float(x) for x in text[1:-1].split(","))
    return low, high, text[0] == "(", text[-1] == ")"


def check_number(name: str, value: object, *, positive: bool = False,
                 nonnegative: bool = False, finite: bool = True,
                 interval: str | None = None) -> float:
    """``value`` as a float: a real number (not ``bool``), finite unless ``finite=False``.

    ``interval`` is written as in mathematics, ``"[0, 1)"`` (``inf`` allowed), and names
    itself in the message.

    >>> check_number("lr", 0.1, positive=True)
    0.1
    >>> check_number("tol", float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: tol must be a finite number, got nan
    >>> check_number("dropout", 1.0, interval="[0, 1)")
    Traceback (most recent call last):
    ...
    ValueError: dropout must be in [0, 1), got 1.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonnegative and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    if interval is not None:
        low, high, low_open, high_open = _interval(interval)
        if value < low or value > high or (low_open and value == low) or \
                (high_open and value == high):
            raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a ``bool`` (or ``numpy.bool_``); anything else is a TypeError.

    >>> check_bool("directed", "False")
    Traceback (most recent call last):
    ...
    TypeError: directed must be True or False, got str 'False'
    """
    kind = type(value)
    if isinstance(value, bool) or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def check_choice(name: str, value: object, choices: Collection[Any]) -> Any:
    """``value`` if it is one of ``choices``.

    >>> check_choice("mode", "max", ("max", "avg"))
    'max'
    >>> check_choice("mode", "sum", ("max", "avg"))
    Traceback (most recent call last):
    ...
    ValueError: mode must be one of 'max', 'avg', got 'sum'
    """
    try:
        ok = value in choices
    except TypeError:
        ok = False
    if not ok or isinstance(value, bool) and not any(isinstance(c, bool) for c in choices):
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_tensor(name: str, value: object, min_dim: int = 0, floating: bool = False, *,
                 real: bool = False, integer: bool = False, finite: bool = False,
                 nonempty: bool = False) -> Any:
    """``value`` if it is a ``torch.Tensor`` with at least ``min_dim`` dimensions.

    ``floating``: a floating-point (or complex) dtype; ``real``: not complex; ``integer``: an
    integer dtype (class indices, token ids; ``bool`` is not); ``finite``: no NaN or
    infinity (an input to a decision such as "is this matrix PSD?"); ``nonempty``: at least
    one entry.

    >>> import torch
    >>> check_tensor("z", torch.zeros(2), floating=True, real=True).shape
    torch.Size([2])
    >>> check_tensor("z", torch.zeros(2, dtype=torch.complex64), real=True)
    Traceback (most recent call last):
    ...
    TypeError: z must be real, got dtype torch.complex64
    >>> check_tensor("y", torch.zeros(2), integer=True)
    Traceback (most recent call last):
    ...
    TypeError: y must have an integer dtype, got torch.float32
    >>> check_tensor("A", torch.tensor([1.0, float("nan")]), finite=True)
    Traceback (most recent call last):
    ...
    ValueError: A must be finite (no NaN or infinity), got 1 non-finite entry
    """
    import torch

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimensions, got shape "
                         f"{tuple(value.shape)}")
    if floating and not (value.is_floating_point() or value.is_complex()):
        raise TypeError(f"{name} must have a floating-point dtype, got {value.dtype}")
    if real and value.is_complex():
        raise TypeError(f"{name} must be real, got dtype {value.dtype}")
    if integer and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        raise TypeError(f"{name} must have an integer dtype, got {value.dtype}")
    if nonempty and value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(value.shape)}")
    if finite and (value.is_floating_point() or value.is_complex()):
        bad = int((~torch.isfinite(value)).sum())
        if bad:
            raise ValueError(f"{name} must be finite (no NaN or infinity), got {bad} "
                             f"non-finite entr{'y' if bad == 1 else 'ies'}")
    return value


def check_entries(what: str, count: object, hint: str = "") -> int:
    """``count`` if a tensor (or model) of that many entries may be allocated (``MAX_ENTRIES``).

    ``what`` names the tensor and the sizes it comes from, so that the message says which
    argument was too large; ``hint`` says what to do instead.

    >>> check_entries("the (L, S) mask for L=3, S=4", 12)
    12
    >>> check_entries("the (L, S) mask for L=10**6, S=10**6", 10**12)
    Traceback (most recent call last):
    ...
    ValueError: the (L, S) mask for L=10**6, S=10**6 would hold 1000000000000 entries, ...
    """
    count = int(count)  # type: ignore[call-overload]
    if count > MAX_ENTRIES:
        raise ValueError(f"{what} would hold {count} entries, more than the {MAX_ENTRIES} "
                         f"(2**31) that dlmath allocates at once{'; ' + hint if hint else ''}")
    return count


def check_seed(name: str, value: object) -> int:
    """A seed for ``torch.manual_seed`` or ``numpy.random.default_rng``: an int in [0, 2**63).

    >>> check_seed("seed", 0)
    0
    >>> check_seed("seed", 0.5)
    Traceback (most recent call last):
    ...
    TypeError: seed must be an int, got float 0.5
    >>> check_seed("seed", -1)
    Traceback (most recent call last):
    ...
    ValueError: seed must be >= 0, got -1
    """
    value = check_int(name, value, 0)
    if value >= 2**63:
        raise ValueError(f"{name} must be < 2**63, got {value}")
    return value


def check_dtype(name: str, value: object, floating: bool = False) -> Any:
    """``value`` if it is a ``torch.dtype`` (a floating-point one with ``floating``).

    >>> import torch
    >>> check_dtype("dtype", torch.float64, floating=True)
    torch.float64
    >>> check_dtype("dtype", torch.int64, floating=True)
    Traceback (most recent call last):
    ...
    TypeError: dtype must be a floating-point torch.dtype (...), got torch.int64
    """
    import torch

    if not isinstance(value, torch.dtype):
        raise TypeError(f"{name} must be a torch.dtype, got {type(value).__name__} {value!r}")
    if floating and not value.is_floating_point:
        raise TypeError(f"{name} must be a floating-point torch.dtype (torch.float32, "
                        f"torch.float64, ...), got {value}")
    return value


def check_device(name: str, value: object, allow_none: bool = True) -> Any:
    """``value`` as a ``torch.device`` (``None`` passes through with ``allow_none``).

    >>> check_device("device", "cpu")
    device(type='cpu')
    >>> check_device("device", "gpu")
    Traceback (most recent call last):
    ...
    ValueError: device must name a torch device ('cpu', 'cuda', 'cuda:1', 'mps', ...), got 'gpu'
    """
    import torch

    if value is None and allow_none:
        return None
    if isinstance(value, torch.device):
        return value
    if not isinstance(value, str):
        kind = "a str, a torch.device or None" if allow_none else "a str or a torch.device"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    try:
        return torch.device(value)
    except RuntimeError:
        raise ValueError(f"{name} must name a torch device ('cpu', 'cuda', 'cuda:1', 'mps', "
                         f"...), got {value!r}") from None


def check_generator(name: str, value: object) -> Any:
    """``value`` if it is a ``torch.Generator`` or ``None`` (the global generator).

    >>> check_generator("generator", 0)
    Traceback (most recent call last):
    ...
    TypeError: generator must be a torch.Generator or None, got int 0
    """
    import torch

    if value is not None and not isinstance(value, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got "
                        f"{type(value).__name__} {value!r}")
    return value


def check_callable(name: str, value: object) -> Any:
    """``value`` if it is callable (a function, a module, a class)."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")
    return value


def int_tuple(name: str, value: object, n: int, minimum: int | None = None) -> tuple[int, ...]:
    """An int or a sequence of ``n`` ints as an ``n``-tuple, as torch reads ``kernel_size``.

    >>> int_tuple("kernel_size", 3, 2)
    (3, 3)
    >>> int_tuple("kernel_size", (3, 5), 2)
    (3, 5)
    >>> int_tuple("kernel_size", (3, 5, 1), 2)
    Traceback (most recent call last):
    ...
    ValueError: kernel_size must be an int or a sequence of 2 ints, got (3, 5, 1)
    """
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")
        return tuple(check_int(f"{name}[{i}]", v, minimum) for i, v in enumerate(value))
    return (check_int(name, value, minimum),) * n


def int_shape(name: str, value: object, axes: str = "(C, H, W)",
              minimum: int = 1) -> tuple[int, ...]:
    """A shape: a sequence of ints, one per axis named in ``axes``, each ``>= minimum``.

    >>> int_shape("input_shape", (3, 32, 32))
    (3, 32, 32)
    >>> int_shape("input_shape", (32, 32))
    Traceback (most recent call last):
    ...
    ValueError: input_shape must be (C, H, W), got (32, 32)
    """
    n = axes.count(",") + 1
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != n:
        raise ValueError(f"{name} must be {axes}, got {value!r}")
    return tuple(check_int(f"{name}[{i}]", v, minimum) for i, v in enumerate(value))


def int_sequence(name: str, values: object, minimum: int | None = 1,
                 min_len: int = 1) -> tuple[int, ...]:
    """A sequence of at least ``min_len`` ints, each ``>= minimum`` (widths, lengths, strides).

    >>> int_sequence("channels", [16, 32])
    (16, 32)
    >>> int_sequence("channels", [])
    Traceback (most recent call last):
    ...
    ValueError: channels must be a sequence of at least 1 int, got []
    >>> int_sequence("channels", [16, 0])
    Traceback (most recent call last):
    ...
    ValueError: channels[1] must be >= 1, got 0
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) \
            or len(values) < min_len:
        raise ValueError(f"{name} must be a sequence of at least {min_len} "
                         f"int{'s' if min_len != 1 else ''}, got {values!r}")
    return tuple(check_int(f"{name}[{i}]", v, minimum) for i, v in enumerate(values))


def check_fractions(name: str, values: object, parts: Sequence[str] | None = None, *,
                    positive: bool = False) -> tuple[float, ...]:
    """Shares of a whole: numbers ``>= 0`` (``> 0`` if ``positive``) that sum to 1.

    ``parts`` names the shares when their number is fixed (``("train", "val", "test")``).

    >>> check_fractions("fractions", [0.8, 0.1, 0.1], ("train", "val", "test"))
    (0.8, 0.1, 0.1)
    >>> check_fractions("fractions", (0.5, 0.6), positive=True)
    Traceback (most recent call last):
    ...
    ValueError: fractions must be positive and sum to 1, got (0.5, 0.6)
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values \
            or (parts is not None and len(values) != len(parts)):
        what = f"{len(parts)} numbers ({', '.join(parts)})" if parts else "numbers"
        raise ValueError(f"{name} must hold {what}, got {values!r}")
    fr = tuple(check_number(f"{name}[{i}]", v) for i, v in enumerate(values))
    if min(fr) < 0 or (positive and min(fr) == 0) or abs(sum(fr) - 1) > 1e-9:
        sign = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be {sign} and sum to 1, got {tuple(values)}")
    return fr


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run tiny tensor ops on one thread, restoring the setting afterwards.

    Intra-op threads only add overhead on tensors of a few dozen entries, and on a busy
    shared CPU they can make each call many times slower.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
