"""Data loaders: IDX (MNIST), CSV, image folders, and the helpers."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from conftest import MNIST_DIR

from neuro.data import load_csv, load_idx, load_image_folder, load_mnist, one_hot, train_test_split


def _write_idx(path, arr, compress):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress, rng):
    images = rng.integers(0, 256, size=(5, 28, 28))
    labels = rng.integers(0, 10, size=5)
    suffix = ".gz" if compress else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, compress)
    x, y = load_mnist(tmp_path)
    assert x.shape == (5, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[..., 0] * 255, images, atol=1e-4)
    np.testing.assert_array_equal(y, labels)


def test_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="must name an IDX file"):
        load_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]))
    with pytest.raises(ValueError, match="must hold 5 data bytes"):
        load_idx(tmp_path / "short")
    with pytest.raises(FileNotFoundError, match="has no t10k-images"):
        load_mnist(tmp_path)


@pytest.mark.skipif(not MNIST_DIR.exists(), reason="the shared MNIST folder is absent")
def test_real_mnist_test_set():
    x, y = load_mnist(MNIST_DIR)
    assert x.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(
        np.bincount(y), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    )
    assert 0.0 <= x.min() and x.max() == 1.0


def test_csv_with_header_and_class_names(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,kind\n1,2,cat\n3,4.5,dog\n5,6,cat\n")
    x, y, names = load_csv(tmp_path / "d.csv", target_column="kind")
    np.testing.assert_allclose(x, [[1, 2], [3, 4.5], [5, 6]])
    np.testing.assert_array_equal(y, [0, 1, 0])
    assert names == ["cat", "dog"]
    (tmp_path / "r.csv").write_text("1,2,0.5\n3,4,1.5\n")
    x, y, names = load_csv(tmp_path / "r.csv", classification=False)
    np.testing.assert_allclose(y, [0.5, 1.5])
    assert names is None
    (tmp_path / "bad.csv").write_text("1,2,0\n3,0\n")
    with pytest.raises(ValueError, match="row 2 must have 3 fields, got 2"):
        load_csv(tmp_path / "bad.csv")


def test_image_folder(tmp_path, rng):
    pil = pytest.importorskip("PIL.Image")
    for cls in ("b_dog", "a_cat"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            arr = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
            pil.fromarray(arr).save(tmp_path / cls / f"{i}.png")
    x, y, names = load_image_folder(tmp_path)
    assert x.shape == (4, 6, 5, 3) and names == ["a_cat", "b_dog"]
    np.testing.assert_array_equal(y, [0, 0, 1, 1])
    x, _, _ = load_image_folder(tmp_path, size=(4, 4), grayscale=True)
    assert x.shape == (4, 4, 4, 1)


def test_split_and_one_hot():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    xtr, ytr, xte, yte = train_test_split(x, y, test_fraction=0.3, seed=1)
    assert len(xte) == 3 and sorted(np.concatenate([ytr, yte]).tolist()) == list(range(10))
    np.testing.assert_array_equal(xtr[:, 0] // 2, ytr)
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"ids must be in \[0, 2\]"):
        one_hot(np.array([3]), 3)
