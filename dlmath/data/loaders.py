"""MNIST (IDX files) and CIFAR-10 (python batches) read from a local directory.

Scope: the real data sets of the source reports, for readers who have the files; the book
itself never downloads anything and runs on :func:`dlmath.data.digits`.

* :func:`read_idx` reads one IDX file (the format of MNIST, Fashion-MNIST, KMNIST),
  optionally gzip-compressed, and checks everything the format fixes: the two zero bytes,
  the type code, the number of dimensions, and that the file holds exactly the bytes the
  dimensions promise.  :func:`mnist` reads the four files and splits off a validation set.
* :func:`read_cifar_batch` reads one CIFAR-10 "python version" batch.  Those files are
  Python pickles, and unpickling runs whatever code the file names; here a restricted
  unpickler builds only dicts, lists, strings, bytes, numbers and plain numeric numpy
  arrays, and refuses every other global (``os.system``, ``builtins.eval``, ...) before
  anything runs.  :func:`cifar10` reads the five training batches and the test batch.

Every format error raises ``ValueError`` naming the file and what was wrong.

Chapter: :ref:`ch-training-cnns`.

References: LeCun, Cortes & Burges, "The MNIST database of handwritten digits" (file format
section of the web page); Krizhevsky, "Learning Multiple Layers of Features from Tiny
Images" (2009), and the CIFAR-10 web page for the python batch layout; the ``pickle``
module documentation, "Restricting Globals".
"""

from __future__ import annotations

import gzip
import io
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dlmath.data.tensors import DataSplits, TensorSplit, stratified_split

__all__ = ["read_idx", "mnist", "read_cifar_batch", "cifar10", "CIFAR10_CLASSES"]

#: IDX type codes (third byte of the magic number) and the big-endian numpy dtypes they mean.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: The ten CIFAR-10 classes, in label order.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":                       # gzip magic: decompress
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: corrupt gzip data ({err})") from None
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
    ValueError
        If the file is missing, too short for its header, has a bad magic number or
        type code, or holds fewer or more data bytes than its sizes require.

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
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (magic number {raw[:4].hex()} does not start "
                         f"with two zero bytes)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}; allowed: "
                         f"{', '.join(f'0x{c:02x}' for c in _IDX_TYPES)}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header gives 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for a {ndim}-d IDX header")
    shape = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: the header promises {expected} bytes of data (shape {shape}) "
                         f"but the file holds {len(raw) - header}")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
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
        Labels must be smaller.

    Returns
    -------
    DataSplits
        Inputs ``(N, 1, rows, cols)`` float32 in ``[0, 1]``, targets ``(N,)`` int64.

    Raises
    ------
    ValueError
        If a file is missing or malformed (see :func:`read_idx`), or the files disagree.

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
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    root = Path(root)
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

#: numpy dtypes a CIFAR batch may contain (no object arrays: they could hold anything).
_SAFE_DTYPES = {"u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8", "b1",
                "|u1", "|i1", "|b1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f4", "<f8",
                ">u2", ">i2", ">u4", ">i4", ">u8", ">i8", ">f4", ">f8"}


def _safe_reconstruct(cls, shape, typecode):
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}: only numpy.ndarray")
    return np.ndarray.__new__(np.ndarray, shape, typecode)


def _safe_dtype(spec, align=False, copy=False):
    if not isinstance(spec, (str, bytes)):
        raise pickle.UnpicklingError(f"refusing dtype {spec!r}")
    name = spec.decode("ascii") if isinstance(spec, bytes) else spec
    if name not in _SAFE_DTYPES:
        raise pickle.UnpicklingError(f"refusing dtype {name!r}: only plain numeric dtypes")
    return np.dtype(name, align, copy)


def _safe_frombuffer(buf, dtype, shape, order="C"):
    # Protocol-5 pickles of numpy arrays: numpy._core.numeric._frombuffer(buffer, dtype, ...).
    if not isinstance(buf, (bytes, bytearray)) or not isinstance(dtype, np.dtype) \
            or dtype.kind not in "biuf" or order not in ("C", "F") \
            or not all(isinstance(n, int) for n in shape):
        raise pickle.UnpicklingError("refusing _frombuffer: only plain numeric arrays")
    return np.frombuffer(bytes(buf), dtype).reshape(shape, order=order).copy()


def _safe_encode(text, encoding="utf-8", errors="strict"):
    # Python 3 pickles of bytes at protocol 2 use _codecs.encode(text, 'latin1').
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    """Build only data: every global must be one of the few this table allows."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _safe_frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _safe_frombuffer,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _safe_dtype,
        ("_codecs", "encode"): _safe_encode,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: a CIFAR-10 batch holds only "
                f"dicts, lists, bytes and numpy arrays") from None


def _key(k) -> str:
    return k.decode("latin1") if isinstance(k, bytes) else str(k)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch (``data_batch_1`` ... ``test_batch``) safely.

    Explanation
    -----------
    A batch is a pickled dict with ``data``, a uint8 array of shape ``(N, 3072)`` (the red,
    then green, then blue 32×32 planes of each image, row-major), and ``labels``, ``N`` ints
    in ``0..9``.  The original files were written by Python 2, so keys may be bytes; both
    are accepted.  The pickle is read by a restricted unpickler that can only rebuild plain
    numeric numpy arrays and Python containers: a file that names any other global (for
    instance ``os.system`` through ``__reduce__``) is refused before any of it runs.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    (images, labels)
        ``images`` uint8 of shape ``(N, 3, 32, 32)``, ``labels`` int64 of shape ``(N,)``.

    Raises
    ------
    ValueError
        If the file is missing, is not a pickle, names a forbidden global, or does not hold
        the data and labels described above.

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
    path = Path(path)
    raw = _read_bytes(path)
    try:
        obj = _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as err:
        if str(err).startswith("refusing"):
            raise ValueError(f"{path}: {err}") from None
        raise ValueError(f"{path}: not a readable CIFAR-10 batch ({err})") from None
    except Exception as err:  # truncated or not a pickle at all
        raise ValueError(f"{path}: not a readable CIFAR-10 batch ({type(err).__name__}: {err})"
                         ) from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: a CIFAR-10 batch is a dict, got {type(obj).__name__}")
    batch = {_key(k): v for k, v in obj.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{path}: a CIFAR-10 batch needs keys 'data' and 'labels', got "
                         f"{sorted(batch)}")
    data, labels = batch["data"], batch["labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: 'data' must be uint8 of shape (N, 3072), got {what}")
    if not isinstance(labels, (list, tuple, np.ndarray)):
        raise ValueError(f"{path}: 'labels' must be a list of ints, got {type(labels).__name__}")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: 'labels' must be a list of ints") from None
    if y.shape != (data.shape[0],):
        raise ValueError(f"{path}: {data.shape[0]} images but {y.size} labels")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{path}: labels must be in 0..9, got {int(y.min())}..{int(y.max())}")
    return data.reshape(-1, 3, 32, 32), y


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
        Which of ``data_batch_1`` ... ``data_batch_5`` to read.

    Returns
    -------
    DataSplits
        Inputs ``(N, 3, 32, 32)`` float32 in ``[0, 1]``, targets ``(N,)`` int64; ``info``
        lists the class names.

    Raises
    ------
    ValueError
        If a batch is missing or malformed (see :func:`read_cifar_batch`).

    Examples
    --------
    >>> import tempfile
    >>> cifar10(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    ValueError: ...data_batch_1: no such file

    See Also
    --------
    read_cifar_batch : one batch, read safely.

    References
    ----------
    Chapter: :ref:`ch-training-cnns`.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    if not train_batches or any(b not in (1, 2, 3, 4, 5) for b in train_batches):
        raise ValueError(f"train_batches must be among 1..5, got {tuple(train_batches)!r}")
    parts = [read_cifar_batch(root / f"data_batch_{b}") for b in train_batches]
    xtr = np.concatenate([p[0] for p in parts])
    ytr = np.concatenate([p[1] for p in parts])
    xte, yte = read_cifar_batch(root / "test_batch")
    tr, va = stratified_split(ytr, (1 - val_fraction, val_fraction), seed)

    def split(x: np.ndarray, y: np.ndarray) -> TensorSplit:
        return TensorSplit(torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y))

    info = {"name": f"CIFAR-10 python batches in {root}", "classes": 10,
            "class_names": list(CIFAR10_CLASSES), "size": 32}
    return DataSplits(split(xtr[tr], ytr[tr]), split(xtr[va], ytr[va]), split(xte, yte), info)
