"""dlmath.data.loaders: MNIST IDX and CIFAR-10 batches, on small files written here."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from dlmath.data import cifar10, mnist, read_cifar_batch, read_idx

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
    (lambda: idx_bytes(np.zeros((2, 3), np.uint8)) + b"\x00", "promises 6 bytes of data .* holds 7"),
    (lambda: b"\x1f\x8b" + b"not really gzip", "corrupt gzip data"),
])
def test_read_idx_rejects_bad_files(tmp_path, make, match):
    with pytest.raises(ValueError, match=match):
        read_idx(_write(tmp_path / "bad", make()))


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_idx(tmp_path / "nothing")


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
