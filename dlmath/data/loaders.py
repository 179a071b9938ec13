"""MNIST (IDX files) and CIFAR-10 (python batches) read from a local directory.

Scope: the real data sets of the source reports, for readers who have the files; the book
itself never downloads anything and runs on :func:`dlmath.data.digits`.

* :func:`read_idx` reads one IDX file (the format of MNIST, Fashion-MNIST, KMNIST),
  optionally gzip-compressed, and checks everything the format fixes: the two zero bytes,
  the type code, the number of dimensions, and that the file holds exactly the bytes the
  dimensions promise.  It reads the header first and then at most those bytes, so a small
  gzip file that expands without limit is refused after one byte too many, and a header
  that promises more than 1 GiB before anything is read.  :func:`mnist` reads the four
  files and splits off a validation set.
* :func:`read_cifar_batch` reads one CIFAR-10 "python version" batch.  Those files are
  Python pickles, and unpickling runs whatever code the file names; here a restricted
  unpickler builds only dicts, lists, strings, bytes and numbers, and refuses every other
  global (``os.system``, ``builtins.eval``, ...) before anything runs.  It never hands a
  numpy constructor or ``__setstate__`` anything from the file: the pickled array and dtype
  recipes produce placeholders, and an array is made (with :func:`numpy.frombuffer`, from
  bytes of exactly the right length) only from a complete, checked recipe.  An array that
  was never filled, a dtype with object flags or fields, float labels and labels outside
  ``0..9`` are refused.  :func:`cifar10` reads the five training batches and the test batch.

Every format error raises ``ValueError`` naming the file and what was wrong; the message
describes the problem in words and numbers and never repeats bytes of the file.

Chapter: :ref:`ch-training-cnns`.

References: LeCun, Cortes & Burges, "The MNIST database of handwritten digits" (file format
section of the web page); Krizhevsky, "Learning Multiple Layers of Features from Tiny
Images" (2009), and the CIFAR-10 web page for the python batch layout; the ``pickle``
module documentation, "Restricting Globals".
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dlmath._validate import check_int, check_number, check_seed, int_sequence, is_int
from dlmath.data.tensors import DataSplits, TensorSplit, stratified_split

__all__ = ["read_idx", "mnist", "read_cifar_batch", "cifar10", "CIFAR10_CLASSES"]

#: IDX type codes (third byte of the magic number) and the big-endian numpy dtypes they mean.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: The ten CIFAR-10 classes, in label order.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


#: The most bytes read from one file, after gzip decompression (the largest MNIST file is
#: 47 MB, a CIFAR-10 batch 31 MB).  Files are read in chunks of ``_CHUNK`` bytes.
_MAX_BYTES = 1 << 30
_MAX_TEXT = "the 1 GiB limit"
_CHUNK = 1 << 24


def _as_path(name: str, value: object) -> Path:
    """The argument ``name``, a file or directory given as a str or os.PathLike, as a Path."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike (such as pathlib.Path), got "
                        f"{type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise TypeError(f"{name} must name a path as text, got {type(text).__name__}")
    if not text:
        raise ValueError(f"{name} must not be empty (use '.' for the current directory)")
    return Path(text)


def _as_dir(name: str, value: object) -> Path:
    """The argument ``name`` as the Path of an existing directory."""
    path = _as_path(name, value)
    if not path.is_dir():
        raise ValueError(f"{name} {path}: no such directory")
    return path


def _open(path: Path):
    """``path`` opened for reading, through gzip if it starts with the gzip magic bytes."""
    if not path.is_file():
        raise ValueError(f"path {path}: no such file")
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _read(stream, n: int, path: Path) -> bytearray:
    """Up to ``n`` bytes of ``stream`` (fewer only at its end), in chunks: memory grows with
    the bytes actually there, never with what a header claims."""
    out = bytearray()
    try:
        while len(out) < n:
            chunk = stream.read(min(_CHUNK, n - len(out)))
            if not chunk:
                break
            out += chunk
    except (OSError, EOFError, zlib.error):
        # the messages of gzip and zlib may quote bytes of the file: keep only the fact
        what = "corrupt or truncated gzip data" if isinstance(stream, gzip.GzipFile) \
            else "read error"
        raise ValueError(f"{path}: {what}") from None
    return out


def _read_bytes(path: Path) -> bytearray:
    """The whole file (decompressed), refused beyond ``_MAX_BYTES``."""
    with _open(path) as f:
        raw = _read(f, _MAX_BYTES + 1, path)
    if len(raw) > _MAX_BYTES:
        raise ValueError(f"{path}: holds more than {_MAX_TEXT} (after gzip decompression)")
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file into a numpy array, checking its header and length.

    Explanation
    -----------
    An IDX file starts with a 4-byte magic number ``00 00 t d``: two zero bytes, a type
    code ``t`` (``0x08`` unsigned byte, ``0x09`` signed byte, ``0x0B`` int16, ``0x0C``
    int32, ``0x0D`` float32, ``0x0E`` float64) and the number of dimensions ``d``.  Then
    come ``d`` big-endian uint32 sizes and the data, big-endian, row-major.  MNIST images
    have magic ``0x00000803`` (unsigned bytes, 3 dimensions), labels ``0x00000801``.
    A file that starts with the gzip magic bytes is decompressed first.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    numpy.ndarray
        Native byte order, the shape the header gives.

    Raises
    ------
    TypeError
        If ``path`` is not a str or os.PathLike.
    ValueError
        If ``path`` is empty, the file is missing, too short for its header, has a bad
        magic number or type code, promises more than 1 GiB of data, or holds fewer or more data bytes
        than its sizes require (a gzip file is decompressed only that far).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = os.path.join(d, "labels-idx1-ubyte")
    >>> _ = open(p, "wb").write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_idx(p)
    array([7, 2, 1], dtype=uint8)
    >>> _ = open(p, "wb").write(bytes([0, 0, 8, 1, 0, 0, 0, 4, 7, 2, 1]))
    >>> read_idx(p)
    Traceback (most recent call last):
    ...
    ValueError: .../labels-idx1-ubyte: the header promises 4 bytes of data (shape (4,)) but the file holds 3

    See Also
    --------
    mnist : reads the four MNIST files.

    References
    ----------
    Chapter: :ref:`ch-training-cnns`.
    """
    path = _as_path("path", path)
    with _open(path) as f:
        magic = _read(f, 4, path)
        if len(magic) < 4:
            raise ValueError(f"{path}: {len(magic)} bytes is too short for an IDX header")
        if magic[0] != 0 or magic[1] != 0:
            raise ValueError(f"{path}: not an IDX file (its magic number does not start with "
                             f"two zero bytes)")
        code, ndim = magic[2], magic[3]
        if code not in _IDX_TYPES:
            raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}; allowed: "
                             f"{', '.join(f'0x{c:02x}' for c in _IDX_TYPES)}")
        if ndim == 0:
            raise ValueError(f"{path}: IDX header gives 0 dimensions")
        sizes = _read(f, 4 * ndim, path)
        if len(sizes) < 4 * ndim:
            raise ValueError(f"{path}: {4 + len(sizes)} bytes is too short for a {ndim}-d "
                             f"IDX header")
        shape = tuple(int(v) for v in np.frombuffer(sizes, ">u4"))
        dtype = np.dtype(_IDX_TYPES[code])
        expected = dtype.itemsize
        for n in shape:                               # exact: Python ints do not overflow
            expected *= n
        if expected > _MAX_BYTES:
            raise ValueError(f"{path}: the header promises {expected} bytes of data (shape "
                             f"{shape}), more than {_MAX_TEXT}")
        body = _read(f, expected, path)
        if len(body) < expected:
            raise ValueError(f"{path}: the header promises {expected} bytes of data (shape "
                             f"{shape}) but the file holds {len(body)}")
        if _read(f, 1, path):                         # stop at the first byte too many
            raise ValueError(f"{path}: the header promises {expected} bytes of data (shape "
                             f"{shape}) but the file holds more (data after them)")
    data = np.frombuffer(body, dtype).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        if (root / name).is_file():
            return root / name
    raise ValueError(f"{root}: no file {stem} (or {stem}.gz)")


def _mnist_pair(root: Path, prefix: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    ipath, lpath = _find(root, f"{prefix}-images-idx3-ubyte"), _find(root, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(ipath), read_idx(lpath)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{ipath}: expected unsigned bytes of shape (N, rows, cols) "
                         f"(magic 0x00000803), got {images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{lpath}: expected unsigned bytes of shape (N,) (magic 0x00000801), "
                         f"got {labels.dtype} of shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{ipath} holds {len(images)} images but {lpath} holds "
                         f"{len(labels)} labels")
    if labels.size and labels.max() >= num_classes:
        raise ValueError(f"{lpath}: label {int(labels.max())} is not in 0..{num_classes - 1}")
    return images, labels


def mnist(root: str | Path, *, val_fraction: float = 1 / 6, seed: int = 0,
          num_classes: int = 10) -> DataSplits:
    """MNIST-format digits from ``root``: train, validation (split off the training set), test.

    Explanation
    -----------
    Reads ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``) with
    :func:`read_idx`, checks that images are unsigned bytes of shape ``(N, rows, cols)``,
    labels unsigned bytes of shape ``(N,)`` with the same ``N`` and values below
    ``num_classes``, and that training and test images have the same size.  The validation
    set is a stratified ``val_fraction`` of the training files, fixed by ``seed``.

    Parameters
    ----------
    root : str or pathlib.Path
        Directory holding the four files.
    val_fraction : float
        In ``(0, 1)``.
    seed : int
        Seed of the validation split.
    num_classes : int
        Labels must be smaller; in ``[1, 256]`` (the labels are bytes).

    Returns
    -------
    DataSplits
        Inputs ``(N, 1, rows, cols)`` float32 in ``[0, 1]``, targets ``(N,)`` int64.

    Raises
    ------
    TypeError
        If ``root`` is not a str or os.PathLike, or ``seed`` or ``num_classes`` is not an int.
    ValueError
        If ``root`` is not a directory, ``val_fraction``, ``seed`` or ``num_classes`` is out
        of range, a file is missing or malformed (see :func:`read_idx`), or the files disagree.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> mnist(root)
    Traceback (most recent call last):
    ...
    ValueError: ...: no file train-images-idx3-ubyte (or train-images-idx3-ubyte.gz)

    See Also
    --------
    read_idx : one file.
    dlmath.data.digits : the small digits that ship with scikit-learn.

    References
    ----------
    Chapter: :ref:`ch-training-cnns`.
    """
    check_number("val_fraction", val_fraction, interval="(0, 1)")
    seed = check_seed("seed", seed)
    num_classes = check_int("num_classes", num_classes, 1, 256)
    root = _as_dir("root", root)
    xtr, ytr = _mnist_pair(root, "train", num_classes)
    xte, yte = _mnist_pair(root, "t10k", num_classes)
    if xtr.shape[1:] != xte.shape[1:]:
        raise ValueError(f"{root}: training images are {xtr.shape[1:]} but test images are "
                         f"{xte.shape[1:]}")
    tr, va = stratified_split(ytr, (1 - val_fraction, val_fraction), seed)

    def split(x: np.ndarray, y: np.ndarray) -> TensorSplit:
        images = torch.from_numpy(x.astype(np.float32) / 255.0)[:, None]   # (N, 1, rows, cols)
        return TensorSplit(images, torch.from_numpy(y.astype(np.int64)))

    info = {"name": f"MNIST-format files in {root}", "classes": num_classes,
            "size": list(xtr.shape[1:])}
    return DataSplits(split(xtr[tr], ytr[tr]), split(xtr[va], ytr[va]), split(xte, yte), info)


# --------------------------------------------------------------------------------------
# CIFAR-10: a restricted unpickler
# --------------------------------------------------------------------------------------

# The pickle of a numpy array (``ndarray.__reduce__``, protocols 2-4) is two recipes:
#   _reconstruct(numpy.ndarray, (0,), b'b')                         REDUCE: an empty array
#   BUILD (1, shape, dtype, is_fortran, raw bytes)                  its contents
# and a dtype likewise:
#   numpy.dtype('u1', False, True)                                  REDUCE
#   BUILD (3, byte order, None, None, None, -1, -1, 0)              plain: no subarray, fields,
#                                                                   size override or flags
# Protocol 5 writes ``_frombuffer(bytes, dtype, shape, order)`` instead.  Handing these to
# numpy trusts the file: a REDUCE of ``_reconstruct`` without BUILD is an array of
# uninitialised memory, and a dtype state with object flags makes numpy read bytes as
# pointers.  So the unpickler returns placeholders (`_Array`, `_Dtype`) whose
# ``__setstate__`` checks each state and builds the array itself from exactly
# ``prod(shape) * itemsize`` bytes; after loading, `_built` refuses an array never filled.

#: Dtypes a CIFAR batch may contain (kind and size; the byte order comes from the state).
_SAFE_DTYPES = {"b1", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8"}

#: Names that may appear in a message: short, printable, no quotes or escapes.
_PRINTABLE = re.compile(r"[A-Za-z0-9_.<>|=-]{1,64}")


class _Refused(pickle.UnpicklingError):
    """A refusal by this module; its message is ours and free of file bytes."""


def _text(x) -> str | None:
    # Python 2 pickles read with encoding="bytes" give str fields as bytes.
    if isinstance(x, bytes):
        return x.decode("latin1")
    return x if isinstance(x, str) else None


def _shown(x) -> str:
    """``x`` quoted if it is a short plain name, else a description (never file bytes)."""
    s = _text(x)
    return repr(s) if s is not None and _PRINTABLE.fullmatch(s) else "with an unusual name"


class _Dtype:
    """``numpy.dtype(name, ...)`` from the pickle: usable only once a plain state is set."""

    def __init__(self, name: str):
        self.name, self.dtype = name, None

    def __setstate__(self, state):
        if self.dtype is not None:
            raise _Refused(f"refusing dtype {self.name!r}: its state is set twice")
        order = _text(state[1]) if isinstance(state, tuple) and len(state) == 8 else None
        orders = ("|",) if self.name[1:] == "1" else ("<", ">")
        if order not in orders or state[0] != 3 or state[2:] != (None, None, None, -1, -1, 0):
            raise _Refused(f"refusing the state of dtype {self.name!r}: only the byte order "
                           f"{' or '.join(map(repr, orders))}, without fields, subarray, size "
                           f"override, object flags or metadata")
        self.dtype = np.dtype(order + self.name)


def _safe_dtype(spec, align=False, copy=False):
    name = _text(spec)
    if name is not None and name[:1] in ("<", ">", "|", "="):
        name = name[1:]                               # the state sets the byte order
    if name not in _SAFE_DTYPES:
        raise _Refused(f"refusing dtype {_shown(spec)}: only plain numeric dtypes "
                       f"({', '.join(sorted(_SAFE_DTYPES))})")
    return _Dtype(name)


def _array_from(raw, dtype, shape, order: str) -> np.ndarray:
    """The array of ``shape`` whose bytes are exactly ``raw``, after checking all four."""
    if not isinstance(dtype, _Dtype) or dtype.dtype is None:
        raise _Refused("refusing an array whose dtype is not a plain numpy dtype with its state")
    if not isinstance(shape, tuple) or len(shape) > 32 \
            or not all(is_int(n) and n >= 0 for n in shape):
        raise _Refused("refusing an array whose shape is not a tuple of at most 32 sizes >= 0")
    if not isinstance(raw, (bytes, bytearray)):
        raise _Refused("refusing an array whose contents are not raw bytes (object arrays "
                       "are not allowed)")
    expected = dtype.dtype.itemsize
    for n in shape:
        expected *= n
    if len(raw) != expected:
        raise _Refused(f"refusing an array of shape {shape} and dtype {dtype.dtype}: it needs "
                       f"{expected} bytes but the pickle gives {len(raw)}")
    array = np.frombuffer(raw, dtype.dtype).reshape(shape, order=order)
    return array.astype(dtype.dtype.newbyteorder("="))        # a native-order copy


class _Array:
    """``_reconstruct(numpy.ndarray, ...)`` from the pickle: empty until a checked BUILD."""

    def __init__(self, array: np.ndarray | None = None):
        self.array = array

    def __setstate__(self, state):
        if self.array is not None:
            raise _Refused("refusing an array whose contents are set twice")
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]                         # (version 1, shape, dtype, fortran, raw)
        if not isinstance(state, tuple) or len(state) != 4 \
                or state[2] not in (True, False, 0, 1):
            raise _Refused("refusing an array state: expected (1, shape, dtype, is_fortran, "
                           "raw bytes)")
        shape, dtype, fortran, raw = state
        self.array = _array_from(raw, dtype, shape, "F" if fortran else "C")


class _NdarrayClass:
    """The global ``numpy.ndarray``: only a marker for `_reconstruct`, never the class (whose
    constructor would hand out uninitialised memory)."""

    def __call__(self, *args):
        raise _Refused("refusing to call numpy.ndarray: arrays come only from their pickled "
                       "bytes")


_NDARRAY = _NdarrayClass()


def _safe_reconstruct(cls, shape, typecode):
    if cls is not _NDARRAY:
        raise _Refused("refusing _reconstruct of anything but numpy.ndarray")
    return _Array()                                   # shape and typecode are placeholders


def _safe_frombuffer(buf, dtype, shape, order="C", axis_order=None):
    # Protocol-5 pickles of numpy arrays: numpy._core.numeric._frombuffer(buffer, dtype, ...);
    # an array neither C- nor F-contiguous is its C-order buffer, then transposed ('K').
    if order in ("C", "F") and axis_order is None:
        return _Array(_array_from(buf, dtype, shape, order))
    if order == "K":
        array = _array_from(buf, dtype, shape, "C")
        if isinstance(axis_order, tuple) and all(is_int(a) for a in axis_order) \
                and sorted(axis_order) == list(range(array.ndim)):
            return _Array(array.transpose(axis_order))
    raise _Refused("refusing _frombuffer: order must be 'C', 'F', or 'K' with a permutation "
                   "of the axes")


def _safe_encode(text, encoding="utf-8", errors="strict"):
    # Python 3 pickles of bytes at protocol 2 use _codecs.encode(text, 'latin1').
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise _Refused("refusing _codecs.encode with an encoding other than latin1")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    """Build only data: every global must be one of the few this table allows."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _safe_frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _safe_frombuffer,
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _safe_dtype,
        ("_codecs", "encode"): _safe_encode,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            shown = f"{module}.{name}" if _PRINTABLE.fullmatch(f"{module}.{name}") \
                else "with an unusual name"
            raise _Refused(f"refusing to load global {shown}: a CIFAR-10 batch holds only "
                           f"dicts, lists, bytes and numpy arrays") from None


def _built(x, path: Path, what: str):
    """``x`` with a placeholder array replaced by its array; an unfilled one is refused."""
    if isinstance(x, _Array):
        if x.array is None:
            raise ValueError(f"{path}: {what} is an array that the pickle creates but never "
                             f"fills (no BUILD state): refusing uninitialised memory")
        return x.array
    return x


def _kind(x) -> str:
    if isinstance(x, np.ndarray):
        return f"{x.dtype} array of shape {x.shape}"
    return "numpy dtype" if isinstance(x, _Dtype) else type(x).__name__


def _number(v: int) -> str:
    return str(v) if abs(v) < 10**9 else f"a {abs(v).bit_length()}-bit integer"


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch (``data_batch_1`` ... ``test_batch``) safely.

    Explanation
    -----------
    A batch is a pickled dict with ``data``, a uint8 array of shape ``(N, 3072)`` (the red,
    then green, then blue 32×32 planes of each image, row-major), and ``labels``, ``N`` ints
    in ``0..9``.  The original files were written by Python 2, so keys may be bytes; both
    are accepted.  The pickle is read by a restricted unpickler that can only rebuild plain
    numeric numpy arrays and Python containers: a file that names any other global (for
    instance ``os.system`` through ``__reduce__``) is refused before any of it runs.  Arrays
    are made here from their pickled bytes, after checking dtype, shape and length; numpy
    never sees the pickle's recipes.  Labels must be ints (not floats or bools, which would
    be silently truncated) or an integer array.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    (images, labels)
        ``images`` uint8 of shape ``(N, 3, 32, 32)``, ``labels`` int64 of shape ``(N,)``.

    Raises
    ------
    TypeError
        If ``path`` is not a str or os.PathLike.
    ValueError
        If ``path`` is empty, the file is missing or over 1 GiB, is not a pickle, names a forbidden global,
        holds an array that is not fully built or a dtype that is not plain, or does not
        hold the data and labels described above.

    Examples
    --------
    >>> import tempfile, os, pickle, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "data_batch_1")
    >>> batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 7]}
    >>> with open(p, "wb") as f:
    ...     pickle.dump(batch, f, protocol=2)
    >>> images, labels = read_cifar_batch(p)
    >>> images.shape, labels.tolist()
    ((2, 3, 32, 32), [3, 7])

    See Also
    --------
    cifar10 : all six batches as train / validation / test.

    References
    ----------
    Chapter: :ref:`ch-training-cnns`.
    """
    path = _as_path("path", path)
    raw = _read_bytes(path)
    try:
        obj = _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _Refused as err:                           # our own words, no file bytes
        raise ValueError(f"{path}: {err}") from None
    except Exception as err:  # truncated or not a pickle; its message may quote file bytes
        truncated = isinstance(err, EOFError) or "truncated" in str(err)
        what = "the pickle ends early" if truncated else f"malformed pickle, {type(err).__name__}"
        raise ValueError(f"{path}: not a readable CIFAR-10 batch ({what})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: a CIFAR-10 batch is a dict, got {_kind(obj)}")
    batch = {_text(k): v for k, v in obj.items()}
    if "data" not in batch or "labels" not in batch:
        names = sorted(repr(k) for k in batch if k is not None and _PRINTABLE.fullmatch(k))
        others = len(batch) - len(names)
        got = ", ".join(names + ([f"{others} other key(s)"] if others else [])) or "no keys"
        raise ValueError(f"{path}: a CIFAR-10 batch needs keys 'data' and 'labels', got {got}")
    data = _built(batch["data"], path, "'data'")
    labels = _built(batch["labels"], path, "'labels'")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' must be uint8 of shape (N, 3072), got {_kind(data)}")
    if isinstance(labels, np.ndarray):
        if labels.dtype.kind not in "iu" or labels.ndim != 1:
            raise ValueError(f"{path}: 'labels' must be ints, got {_kind(labels)}")
        values = labels.tolist()                      # Python ints, exact
    elif isinstance(labels, (list, tuple)):
        values = labels
        bad = next((k for k, v in enumerate(values) if not is_int(v)), None)
        if bad is not None:
            raise ValueError(f"{path}: 'labels' must be ints, but label {bad} is "
                             f"{_kind(values[bad])} (floats and bools are not labels)")
    else:
        raise ValueError(f"{path}: 'labels' must be a list of ints, got {_kind(labels)}")
    if len(values) != data.shape[0]:
        raise ValueError(f"{path}: {data.shape[0]} images but {len(values)} labels")
    if values and (min(values) < 0 or max(values) > 9):
        raise ValueError(f"{path}: labels must be in 0..9, got "
                         f"{_number(min(values))}..{_number(max(values))}")
    return data.reshape(-1, 3, 32, 32), np.array(values, dtype=np.int64)


def cifar10(root: str | Path, *, val_fraction: float = 0.1, seed: int = 0,
            train_batches: Sequence[int] = (1, 2, 3, 4, 5)) -> DataSplits:
    """CIFAR-10 from the python batches in ``root`` (or ``root/cifar-10-batches-py``).

    Parameters
    ----------
    root : str or pathlib.Path
    val_fraction : float
        Stratified fraction of the training images held out for validation, in ``(0, 1)``.
    seed : int
        Seed of that split.
    train_batches : sequence of int
        Which of ``data_batch_1`` ... ``data_batch_5`` to read: distinct numbers in ``1..5``.

    Returns
    -------
    DataSplits
        Inputs ``(N, 3, 32, 32)`` float32 in ``[0, 1]``, targets ``(N,)`` int64; ``info``
        lists the class names.

    Raises
    ------
    TypeError
        If ``root`` is not a str or os.PathLike, ``seed`` is not an int or ``train_batches``
        is not a sequence of ints.
    ValueError
        If ``root`` is not a directory, ``val_fraction``, ``seed`` or ``train_batches`` is out
        of range, or a batch is missing or malformed (see :func:`read_cifar_batch`).

    Examples
    --------
    >>> import tempfile
    >>> cifar10(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    ValueError: ...data_batch_1: no such file; root must hold the CIFAR-10 python batches ...

    See Also
    --------
    read_cifar_batch : one batch, read safely.

    References
    ----------
    Chapter: :ref:`ch-training-cnns`.
    """
    check_number("val_fraction", val_fraction, interval="(0, 1)")
    seed = check_seed("seed", seed)
    if isinstance(train_batches, (str, bytes)) or not isinstance(train_batches, Sequence):
        raise TypeError(f"train_batches must be a sequence of ints among 1..5, got "
                        f"{type(train_batches).__name__}")
    batches = int_sequence("train_batches", train_batches, 1)
    if max(batches) > 5 or len(set(batches)) != len(batches):
        raise ValueError(f"train_batches must be distinct numbers among 1..5, got {batches!r}")
    root = _as_dir("root", root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = [f"data_batch_{b}" for b in batches] + ["test_batch"]
    missing = next((n for n in names if not (root / n).is_file()), None)
    if missing is not None:                           # before reading anything
        raise ValueError(f"{root / missing}: no such file; root must hold the CIFAR-10 python "
                         f"batches {', '.join(names)}")
    parts = [read_cifar_batch(root / name) for name in names[:-1]]
    xtr = np.concatenate([p[0] for p in parts])
    ytr = np.concatenate([p[1] for p in parts])
    xte, yte = read_cifar_batch(root / "test_batch")
    tr, va = stratified_split(ytr, (1 - val_fraction, val_fraction), seed)

    def split(x: np.ndarray, y: np.ndarray) -> TensorSplit:
        return TensorSplit(torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y))

    info = {"name": f"CIFAR-10 python batches in {root}", "classes": 10,
            "class_names": list(CIFAR10_CLASSES), "size": 32}
    return DataSplits(split(xtr[tr], ytr[tr]), split(xtr[va], ytr[va]), split(xte, yte), info)
