"""dlmath.data.loaders: MNIST IDX and CIFAR-10 batches, on small files written here."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import tracemalloc

import numpy as np
import pytest
import torch

from dlmath.data import cifar10, mnist, read_cifar_batch, read_idx


def assert_clean(err: Exception, path) -> None:
    """A refusal names the file and repeats no raw bytes: printable, no escapes."""
    msg = str(err)
    assert msg.startswith(str(path)) and msg.isprintable() and "\\x" not in msg, msg

# --- IDX ----------------------------------------------------------------------------------

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
          np.float64: 0x0E}


def idx_bytes(array: np.ndarray, code: int | None = None) -> bytes:
    """An IDX file written from the format's description (independent of the reader)."""
    code = _CODES[array.dtype.type] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("dtype", list(_CODES))
def test_read_idx_round_trips_every_type(tmp_path, dtype):
    rng = np.random.default_rng(0)
    a = (rng.normal(size=(3, 4, 2)) * 100).astype(dtype)
    path = tmp_path / "x.idx"
    path.write_bytes(idx_bytes(a))
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    np.testing.assert_array_equal(a, b)
    gz = tmp_path / "x.idx.gz"
    gz.write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(read_idx(gz), a)


def write_mnist(root, n_train=50, n_test=10, rows=4, cols=5, gz=False, classes=10):
    rng = np.random.default_rng(1)
    files = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, rows, cols), dtype=np.uint8)
        labels = (np.arange(n) % classes).astype(np.uint8)
        for kind, arr, dims in (("images", images, 3), ("labels", labels, 1)):
            name = f"{prefix}-{kind}-idx{dims}-ubyte"
            data = idx_bytes(arr)
            if gz:
                (root / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (root / name).write_bytes(data)
        files[prefix] = (images, labels)
    return files


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_and_splits(tmp_path, gz):
    files = write_mnist(tmp_path, gz=gz)
    d = mnist(tmp_path, val_fraction=0.2)
    assert d.sizes() == {"train": 40, "val": 10, "test": 10}
    assert d.train.inputs[0].shape == (40, 1, 4, 5) and d.train.inputs[0].dtype == torch.float32
    np.testing.assert_allclose(d.test.inputs[0][:, 0].numpy(), files["t10k"][0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(d.test.targets.numpy(), files["t10k"][1])
    # train + val are the training files, each image with its own label
    x = torch.cat([d.train.inputs[0], d.val.inputs[0]])[:, 0].numpy()
    y = torch.cat([d.train.targets, d.val.targets]).numpy()
    expected = {(im.tobytes(), int(lab)) for im, lab in zip(files["train"][0], files["train"][1])}
    assert {(np.rint(im * 255).astype(np.uint8).tobytes(), int(lab)) for im, lab in zip(x, y)} == expected
    assert np.bincount(d.val.targets.numpy(), minlength=10).tolist() == [1] * 10  # stratified


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make,match", [
    (lambda: b"\x00\x00", "too short for an IDX header"),
    (lambda: b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "does not start with two zero bytes"),
    (lambda: b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "unknown IDX type code 0x07"),
    (lambda: b"\x00\x00\x08\x00", "0 dimensions"),
    (lambda: b"\x00\x00\x08\x03" + struct.pack(">I", 2), "too short for a 3-d IDX header"),
    (lambda: idx_bytes(np.zeros((2, 3), np.uint8))[:-1], "promises 6 bytes of data .* holds 5"),
    (lambda: idx_bytes(np.zeros((2, 3), np.uint8)) + b"\x00", "promises 6 bytes of data .* holds more"),
    (lambda: b"\x1f\x8b" + b"not really gzip", "corrupt or truncated gzip data"),
    (lambda: gzip.compress(idx_bytes(np.zeros((2, 3), np.uint8)))[:-9], "corrupt or truncated gzip"),
    (lambda: b"\x00\x00\x08\x01" + struct.pack(">I", 2**31), "promises 2147483648 bytes .* 1 GiB limit"),
])
def test_read_idx_rejects_bad_files(tmp_path, make, match):
    with pytest.raises(ValueError, match=match):
        read_idx(_write(tmp_path / "bad", make()))


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_idx(tmp_path / "nothing")


def test_read_idx_stops_a_gzip_bomb_after_the_promised_bytes(tmp_path):
    # 3 promised bytes, then 2 GiB of zeros: 128 gzip members of 16 MiB each, 2 MB on disk
    zeros = gzip.compress(bytes(1 << 24))
    bomb = _write(tmp_path / "bomb.gz", gzip.compress(idx_bytes(np.arange(3, dtype=np.uint8)))
                  + zeros * 128)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"promises 3 bytes of data \(shape \(3,\)\) but "
                                             r"the file holds more"):
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 26                     # decompressed no further than one chunk


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("shape", [(2**32 - 1,), (65535, 65535, 65535), (40000, 30000)])
def test_read_idx_refuses_a_header_promising_more_than_the_limit(tmp_path, gz, shape):
    header = bytes([0, 0, 8, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape)
    data = header + bytes(100)
    path = _write(tmp_path / "huge", gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match=f"promises {int(np.prod(shape, dtype=object))} bytes "
                                         f"of data .* more than the 1 GiB limit"):
        read_idx(path)


def test_idx_messages_do_not_repeat_file_bytes(tmp_path):
    path = _write(tmp_path / "bad", b"\x1b[2J" + bytes(8))
    with pytest.raises(ValueError) as err:
        read_idx(path)
    assert_clean(err.value, path)
    assert "1b5b" not in str(err.value) and "two zero bytes" in str(err.value)
    # gzip's own messages quote bytes ("Not a gzipped file (b'..')"); ours do not
    path = _write(tmp_path / "bad.gz", gzip.compress(idx_bytes(np.zeros(3, np.uint8)))
                  + b"\x1b[2Jgarbage")
    with pytest.raises(ValueError, match="corrupt or truncated gzip data") as err:
        read_idx(path)
    assert_clean(err.value, path)


def test_mnist_rejects_inconsistent_files(tmp_path):
    write_mnist(tmp_path)
    # labels that do not match the number of images
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(9, np.uint8)))
    with pytest.raises(ValueError, match="holds 10 images but .* holds 9 labels"):
        mnist(tmp_path)
    # a label out of range
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(10, 12, np.uint8)))
    with pytest.raises(ValueError, match="label 12 is not in 0..9"):
        mnist(tmp_path)
    # an images file of the wrong kind (int32, magic 0x0C03)
    write_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((50, 4, 5), np.int32)))
    with pytest.raises(ValueError, match="expected unsigned bytes of shape \\(N, rows, cols\\)"):
        mnist(tmp_path)
    # training and test images of different sizes
    write_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((10, 5, 5), np.uint8)))
    with pytest.raises(ValueError, match="training images are"):
        mnist(tmp_path)
    with pytest.raises(ValueError, match="val_fraction"):
        mnist(tmp_path, val_fraction=1.0)


# --- CIFAR-10 --------------------------------------------------------------------------------

def cifar_images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


def write_batch(path, images, labels, protocol=2, byte_keys=True):
    # The documented layout: each row is the 1024 red, then green, then blue values, row-major.
    rows = np.concatenate([images[:, c].reshape(len(images), 1024) for c in range(3)], axis=1)
    k = (lambda s: s.encode()) if byte_keys else (lambda s: s)
    batch = {k("batch_label"): k("testing batch"), k("labels"): list(labels), k("data"): rows,
             k("filenames"): [k(f"img{i}.png") for i in range(len(labels))]}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)


@pytest.mark.parametrize("protocol,byte_keys", [(2, True), (2, False), (4, False), (5, True)])
def test_read_cifar_batch(tmp_path, protocol, byte_keys):
    images, labels = cifar_images(4, 0), [3, 0, 9, 3]
    write_batch(tmp_path / "b", images, labels, protocol, byte_keys)
    x, y = read_cifar_batch(tmp_path / "b")
    np.testing.assert_array_equal(x, images)
    assert y.tolist() == labels and y.dtype == np.int64


def test_cifar10_reads_all_batches(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    all_images = []
    for b in range(1, 6):
        imgs = cifar_images(10, b)
        all_images.append(imgs)
        write_batch(root / f"data_batch_{b}", imgs, [i % 10 for i in range(10)])
    write_batch(root / "test_batch", cifar_images(7, 9), [1] * 7)
    d = cifar10(tmp_path, val_fraction=0.2)
    assert d.sizes() == {"train": 40, "val": 10, "test": 7}
    assert d.train.inputs[0].shape == (40, 3, 32, 32)
    assert float(d.test.inputs[0].max()) <= 1.0
    np.testing.assert_allclose(d.test.inputs[0].numpy() * 255, cifar_images(7, 9), atol=1e-3)
    assert np.bincount(d.val.targets.numpy()).tolist() == [1] * 10   # stratified
    assert d.info["class_names"][3] == "cat"


class Malicious:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def test_a_malicious_pickle_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as f:
        pickle.dump({b"data": Malicious(marker), b"labels": [0]}, f, protocol=2)
    with pytest.raises(ValueError, match="refusing to load global (posix|os|nt).system"):
        read_cifar_batch(path)
    assert not marker.exists()
    # sanity check of the test itself: the ordinary unpickler would have run it
    with open(path, "rb") as f:
        pickle.load(f)
    assert marker.exists()


@pytest.mark.parametrize("payload,match", [
    ({"data": np.array([object()] * 3072, dtype=object).reshape(1, 3072), "labels": [0]},
     "refusing dtype 'O"),
    ({"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": print}, "refusing to load global (builtins|__builtin__).print"),
])
def test_other_forbidden_content(tmp_path, payload, match):
    path = tmp_path / "b"
    with open(path, "wb") as f:
        pickle.dump(payload, f, protocol=2)
    with pytest.raises(ValueError, match=match):
        read_cifar_batch(path)


@pytest.mark.parametrize("payload,match", [
    ([1, 2, 3], "a CIFAR-10 batch is a dict"),
    ({"data": np.zeros((2, 3072), np.uint8)}, "needs keys 'data' and 'labels'"),
    ({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, "must be uint8 of shape \\(N, 3072\\)"),
    ({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, "must be uint8"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "2 images but 1 labels"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, "labels must be in 0..9"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": "ab"}, "must be a list of ints"),
])
def test_malformed_batches(tmp_path, payload, match):
    path = tmp_path / "b"
    with open(path, "wb") as f:
        pickle.dump(payload, f, protocol=2)
    with pytest.raises(ValueError, match=match):
        read_cifar_batch(path)


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", b"\x80\x02}q\x00(X"])
def test_unreadable_batches(tmp_path, content):
    path = tmp_path / "b"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable CIFAR-10 batch|refusing"):
        read_cifar_batch(path)


def test_cifar10_missing_directory(tmp_path):
    with pytest.raises(ValueError, match="data_batch_1: no such file"):
        cifar10(tmp_path)
    with pytest.raises(ValueError, match="train_batches"):
        cifar10(tmp_path, train_batches=(6,))


# --- hand-assembled pickles: what numpy writes for an array, and what an attacker can write ---
# Protocol 3 opcodes (pickletools); an array is  _reconstruct(ndarray, (0,), b'b')  REDUCE, then
# BUILD (1, shape, dtype, is_fortran, raw); a dtype is  dtype('u1', False, True)  REDUCE, then
# BUILD (3, byte order, None, None, None, -1, -1, flags).

def op_global(module, name): return b"c" + f"{module}\n{name}\n".encode()
def op_str(text): b = text.encode(); return b"X" + struct.pack("<I", len(b)) + b   # noqa: E704
def op_bytes(data): return b"B" + struct.pack("<I", len(data)) + data               # noqa: E704
def op_int(n): return b"J" + struct.pack("<i", n)                                   # noqa: E704
def op_float(x): return b"G" + struct.pack(">d", x)                                 # noqa: E704
def op_tuple(*items): return b"(" + b"".join(items) + b"t"                          # noqa: E704
def op_list(*items): return b"](" + b"".join(items) + b"e"                          # noqa: E704
def op_call(f, *args): return f + op_tuple(*args) + b"R"                            # noqa: E704
def op_build(obj, state): return obj + state + b"b"                                 # noqa: E704


def op_batch(data, labels):
    return b"\x80\x03}(" + op_str("data") + data + op_str("labels") + labels + b"u."


def op_dtype_unbuilt(name):
    return op_call(op_global("numpy", "dtype"), op_str(name), b"\x89", b"\x88")


def op_dtype(name, order="|", flags=0, names=b"N"):
    state = op_tuple(op_int(3), op_str(order), b"N", names, b"N", op_int(-1), op_int(-1),
                     op_int(flags))
    return op_build(op_dtype_unbuilt(name), state)


def op_array_unbuilt(shape=(0,), typecode=b"b", cls=b"cnumpy\nndarray\n"):
    return op_call(op_global("numpy.core.multiarray", "_reconstruct"), cls,
                   op_tuple(*map(op_int, shape)), op_bytes(typecode))


def op_array(shape, dtype, raw, fortran=False):
    state = op_tuple(op_int(1), op_tuple(*map(op_int, shape)), dtype,
                     b"\x88" if fortran else b"\x89", raw if isinstance(raw, bytes) and
                     raw[:1] in (b"B", b"]") else op_bytes(raw))
    return op_build(op_array_unbuilt(), state)


def test_hand_assembled_batches_load_like_numpy_pickles(tmp_path):
    images = cifar_images(2, 5).reshape(2, 3072)
    fortran = np.asfortranarray(images)
    for data, labels, expected_labels in [
        (op_array((2, 3072), op_dtype("u1"), images.tobytes()), op_list(op_int(3), op_int(9)),
         [3, 9]),
        (op_array((2, 3072), op_dtype("u1"), fortran.tobytes(order="F"), fortran=True),
         op_array((2,), op_dtype("i8", ">"), np.array([7, 0], ">i8").tobytes()), [7, 0]),
    ]:
        raw = op_batch(data, labels)
        plain = pickle.loads(raw)           # the oracle: what numpy itself makes of these bytes
        np.testing.assert_array_equal(plain["data"], images)
        assert list(plain["labels"]) == expected_labels
        x, y = read_cifar_batch(_write(tmp_path / "b", raw))
        np.testing.assert_array_equal(x.reshape(2, 3072), images)
        assert y.tolist() == expected_labels and y.dtype == np.int64


def test_numpy_pickles_of_fortran_arrays_and_label_arrays_load(tmp_path):
    images = cifar_images(3, 6)
    rows = np.asfortranarray(images.reshape(3, 3072))
    for protocol in (2, 4, 5):
        for labels in (np.array([1, 2, 9]), np.array([1, 2, 9], ">u2"), [1, 2, 9]):
            path = tmp_path / "b"
            with open(path, "wb") as f:
                pickle.dump({"data": rows, "labels": labels}, f, protocol=protocol)
            x, y = read_cifar_batch(path)
            np.testing.assert_array_equal(x, images)
            assert y.tolist() == [1, 2, 9] and y.dtype == np.int64
    # and a gzip-compressed batch
    path.write_bytes(gzip.compress(path.read_bytes()))
    np.testing.assert_array_equal(read_cifar_batch(path)[0], images)
    # protocol 5 writes an array neither C- nor F-contiguous as _frombuffer(..., 'K', axes)
    cube = np.arange(24, dtype=np.uint8).reshape(3, 4, 2).transpose(1, 0, 2)
    with open(path, "wb") as f:
        pickle.dump({"data": cube, "labels": [0] * 4}, f, protocol=5)
    with pytest.raises(ValueError, match=r"got uint8 array of shape \(4, 3, 2\)"):
        read_cifar_batch(path)
    bad_axes = path.read_bytes().replace(b"K\x01K\x00K\x02", b"K\x01K\x01K\x02")
    with pytest.raises(ValueError, match="refusing _frombuffer: order must be"):
        read_cifar_batch(_write(path, bad_axes))


def test_a_python2_style_batch_loads(tmp_path):
    # The real CIFAR-10 files come from Python 2: str fields (SHORT_BINSTRING 'U', BINSTRING
    # 'T') read back as bytes, dtype('u1', 0, 1), keys b'data' and b'labels'.
    def py2(text): return b"U" + bytes([len(text)]) + text                          # noqa: E704
    images = cifar_images(2, 3).reshape(2, 3072)
    dtype = op_build(op_call(op_global("numpy", "dtype"), py2(b"u1"), b"K\x00", b"K\x01"),
                     op_tuple(b"K\x03", py2(b"|"), b"N", b"N", b"N", op_int(-1), op_int(-1),
                              b"K\x00"))
    empty = op_call(op_global("numpy.core.multiarray", "_reconstruct"),
                    op_global("numpy", "ndarray"), op_tuple(b"K\x00"), py2(b"b"))
    raw = images.tobytes()
    data = op_build(empty, op_tuple(b"K\x01", op_tuple(op_int(2), op_int(3072)), dtype, b"\x89",
                                    b"T" + struct.pack("<I", len(raw)) + raw))
    batch = (b"\x80\x02}(" + py2(b"batch_label") + py2(b"training batch 1 of 5") + py2(b"data")
             + data + py2(b"labels") + op_list(b"K\x06", b"K\x09") + b"u.")
    plain = pickle.loads(batch, encoding="bytes")              # the oracle
    np.testing.assert_array_equal(plain[b"data"], images)
    x, y = read_cifar_batch(_write(tmp_path / "data_batch_1", batch))
    np.testing.assert_array_equal(x.reshape(2, 3072), images)
    assert y.tolist() == [6, 9]


U1 = op_dtype("u1")
GOOD_DATA = op_array((2, 3072), U1, bytes(6144))
GOOD_LABELS = op_list(op_int(0), op_int(1))


@pytest.mark.parametrize("data,labels,match", [
    # (1) an array reduced but never built: numpy would hand out uninitialised memory
    (op_array_unbuilt((2, 3072), b"B"), GOOD_LABELS,
     "'data' is an array that the pickle creates but never fills .* uninitialised memory"),
    (GOOD_DATA, op_array_unbuilt((2,), b"l"), "'labels' is an array .* never fills"),
    # the ndarray class itself, called or reconstructed as something else
    (op_call(op_global("numpy", "ndarray"), op_tuple(op_int(2), op_int(3072)), op_str("B")),
     GOOD_LABELS, "refusing to call numpy.ndarray"),
    (op_array_unbuilt(cls=op_global("numpy", "dtype")), GOOD_LABELS,
     "refusing _reconstruct of anything but numpy.ndarray"),
    # (2) dtype states numpy would accept: object flags on uint8, fields, a wrong byte order
    (op_array((2, 3072), op_dtype("u1", flags=1), bytes(6144)), GOOD_LABELS,
     "refusing the state of dtype 'u1': .* object flags"),
    (op_array((2, 3072), op_dtype("u1", flags=0x3F), bytes(6144)), GOOD_LABELS,
     "refusing the state of dtype 'u1'"),
    (op_array((2, 3072), op_dtype("u1", names=op_tuple(op_str("f0"))), bytes(6144)),
     GOOD_LABELS, "refusing the state of dtype 'u1': only the byte order '\\|', without fields"),
    (op_array((2, 3072), op_dtype("u1", order="<"), bytes(6144)), GOOD_LABELS,
     "refusing the state of dtype 'u1'"),
    (op_array((2, 3072), op_dtype("i8", order="|"), bytes(6144 * 8)), GOOD_LABELS,
     "refusing the state of dtype 'i8': only the byte order '<' or '>'"),
    (op_build(op_dtype("u1"), op_tuple(op_int(3), op_str("|"), b"N", b"N", b"N", op_int(-1),
                                       op_int(-1), op_int(0))), GOOD_LABELS,
     "refusing dtype 'u1': its state is set twice"),
    (op_array((2, 3072), op_dtype_unbuilt("u1"), bytes(6144)), GOOD_LABELS,
     "dtype is not a plain numpy dtype with its state"),
    (op_array((2, 3072), op_dtype("O8"), bytes(6144)), GOOD_LABELS, "refusing dtype 'O8'"),
    (op_array((2, 3072), op_dtype("V8"), bytes(6144)), GOOD_LABELS, "refusing dtype 'V8'"),
    # array contents that do not match their shape, are objects, or are set twice
    (op_array((2, 3072), U1, bytes(10)), GOOD_LABELS, "needs 6144 bytes but the pickle gives 10"),
    (op_array((2, 3072), U1, op_list(op_int(1))), GOOD_LABELS, "not raw bytes"),
    (op_array((2, -3072), U1, bytes(6144)), GOOD_LABELS, "shape is not a tuple"),
    (op_build(GOOD_DATA, op_tuple(op_int(1), op_tuple(op_int(0)), U1, b"\x89", op_bytes(b""))),
     GOOD_LABELS, "contents are set twice"),
    # labels: floats are not truncated, bools are not ints, and the range is 0..9
    (GOOD_DATA, op_list(op_float(3.7), op_float(0.2)), "label 0 is float .*not labels"),
    (GOOD_DATA, op_list(op_int(1), b"\x88"), "label 1 is bool"),
    (GOOD_DATA, op_array((2,), op_dtype("f8", "<"), np.array([1.0, 2.0]).tobytes()),
     "'labels' must be ints, got float64 array of shape \\(2,\\)"),
    (GOOD_DATA, op_list(op_int(0), op_int(10)), "labels must be in 0..9, got 0..10"),
    (GOOD_DATA, op_list(op_int(-1), op_int(3)), "labels must be in 0..9, got -1..3"),
    (GOOD_DATA, op_list(op_int(0), b"\x8a\x0d" + (1 << 100).to_bytes(13, "little")),
     "got 0..a 101-bit integer"),
    (GOOD_DATA, op_array((2,), op_dtype("u8", "<"), np.array([0, 2**64 - 1], "<u8").tobytes()),
     "labels must be in 0..9, got 0..a 64-bit integer"),
    (GOOD_DATA, op_list(op_int(0)), "2 images but 1 labels"),
], ids=["unbuilt-data", "unbuilt-labels", "call-ndarray", "reconstruct-dtype",
        "dtype-object-flag", "dtype-all-flags", "dtype-fields", "dtype-u1-little-endian",
        "dtype-i8-no-order", "dtype-built-twice", "dtype-unbuilt", "dtype-object", "dtype-void",
        "short-bytes", "object-contents", "negative-shape", "array-built-twice",
        "float-labels", "bool-label", "float-label-array", "label-10", "label-minus-1",
        "label-2**100", "label-2**64-1", "too-few-labels"])
def test_hand_made_malicious_batches_are_refused(tmp_path, data, labels, match):
    path = _write(tmp_path / "data_batch_1", op_batch(data, labels))
    with pytest.raises(ValueError, match=match) as err:
        read_cifar_batch(path)
    assert_clean(err.value, path)


@pytest.mark.parametrize("raw,match", [
    (b"\x1b[2J\x1b[31mnot a pickle", "not a readable CIFAR-10 batch \\(malformed pickle"),
    (b"\x80\x03" + op_global("os\x1b[2J", "system") + b".", "load global with an unusual name"),
    (b"\x80\x03" + op_call(op_global("numpy", "dtype"), op_str("\x1b[2J"), b"\x89", b"\x88") + b".",
     "refusing dtype with an unusual name"),
    (b"\x80\x03}(" + op_str("\x1b[2J") + op_int(1) + op_str("batch_label") + op_int(2) + b"u.",
     "got 'batch_label', 1 other key"),
    (b"\x80\x03X\x03\x00\x00\x00\xff\xfe\x1b.", "malformed pickle, UnicodeDecodeError"),
    (b"\x80\x03" + op_str("x" * 40), "the pickle ends early"),
], ids=["escapes", "global-name", "dtype-name", "key-names", "bad-utf8", "truncated"])
def test_batch_messages_do_not_repeat_file_bytes(tmp_path, raw, match):
    path = _write(tmp_path / "b", raw)
    with pytest.raises(ValueError, match=match) as err:
        read_cifar_batch(path)
    assert_clean(err.value, path)


def test_cifar_batches_are_read_up_to_a_size_limit(tmp_path, monkeypatch):
    from dlmath.data import loaders
    write_batch(tmp_path / "b", cifar_images(2, 0), [0, 1])
    path = _write(tmp_path / "b.gz", gzip.compress((tmp_path / "b").read_bytes()))
    assert read_cifar_batch(path)[1].tolist() == [0, 1]
    monkeypatch.setattr(loaders, "_MAX_BYTES", 4096)
    with pytest.raises(ValueError, match="b.gz: holds more than the 1 GiB limit \\(after gzip decompression\\)"):
        read_cifar_batch(path)
