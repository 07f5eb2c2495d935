"""IDX files (MNIST): plain and gzip, bounded reads, truncation, trailing data, and idx_to_folder."""

from __future__ import annotations

import gzip
import pathlib
import runpy
import struct
import sys
import time
import tracemalloc

import numpy as np
import pytest

from neuro.data import ImageDataSet, load_idx, load_mnist
from neuro.data.idx_to_folder import idx_to_folder, main

MNIST_DIR = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(arr, shape=None, extra=b""):
    shape = arr.shape if shape is None else shape
    header = bytes([0, 0, _CODES[arr.dtype.type], len(shape)]) + b"".join(struct.pack(">I", d) for d in shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes() + extra


def _write(path, data, compress):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_round_trip(tmp_path, compress, rng):
    images = rng.integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, size=5).astype(np.uint8)
    suffix = ".gz" if compress else ""
    _write(tmp_path / f"t10k-images-idx3-ubyte{suffix}", idx_bytes(images), compress)
    _write(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", idx_bytes(labels), compress)
    x, y = load_mnist(tmp_path)
    assert x.shape == (5, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x[..., 0], images.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(y, labels)
    raw, _ = load_mnist(tmp_path, normalize=False)
    assert raw.dtype == np.uint8


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [True, False])
def test_every_idx_type_in_native_order(tmp_path, dtype, compress):
    arr = (np.arange(24).reshape(2, 3, 4) - (10 if dtype not in (np.uint8,) else 0)).astype(dtype)
    out = load_idx(_write(tmp_path / "a.idx", idx_bytes(arr), compress))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)


def test_gzip_detected_by_content_not_name(tmp_path):
    arr = np.arange(6, dtype=np.uint8)
    np.testing.assert_array_equal(load_idx(_write(tmp_path / "plain-name", idx_bytes(arr), True)), arr)
    np.testing.assert_array_equal(load_idx(_write(tmp_path / "x.gz", idx_bytes(arr), False)), arr)


def test_bad_headers(tmp_path):
    with pytest.raises(
        ValueError, match=r"path must name an IDX file, got '.*bad' with a bad header '01020304'"
    ):
        load_idx(_write(tmp_path / "bad", b"\x01\x02\x03\x04", False))
    with pytest.raises(ValueError, match=r"with a bad header ''"):
        load_idx(_write(tmp_path / "empty", b"", True))
    with pytest.raises(ValueError, match=r"is truncated inside its IDX header \(3 dimensions declared\)"):
        load_idx(_write(tmp_path / "hdr", bytes([0, 0, 8, 3, 0, 0, 0, 1]), False))
    with pytest.raises(ValueError, match=r"with a bad header '00000800'"):
        load_idx(_write(tmp_path / "zero-dims", bytes([0, 0, 8, 0]), False))


@pytest.mark.parametrize("compress", [True, False])
def test_short_and_long_data(tmp_path, compress):
    short = bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2])
    with pytest.raises(ValueError, match=r"must hold 5 data bytes for shape \(5,\), got 2"):
        load_idx(_write(tmp_path / "short", short, compress))
    long = idx_bytes(np.arange(3, dtype=np.uint8), extra=b"\x00")
    with pytest.raises(
        ValueError,
        match=r"must hold 3 data bytes for shape \(3,\), got (4|more \(trailing data after them\))",
    ):
        load_idx(_write(tmp_path / "long", long, compress))


def test_truncated_or_corrupt_gzip_is_a_value_error(tmp_path):
    data = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    for cut in (len(data) - 4, len(data) // 2, 12):
        path = _write(tmp_path / f"cut{cut}.gz", data[:cut], False)
        with pytest.raises(ValueError, match=rf"cut{cut}.gz'"):
            load_idx(path)
    corrupt = bytearray(data)
    corrupt[-6] ^= 0xFF  # the CRC
    with pytest.raises(ValueError, match=r"is a corrupt or truncated gzip file"):
        load_idx(_write(tmp_path / "crc.gz", bytes(corrupt), False))
    with pytest.raises(ValueError, match=r"is a corrupt or truncated gzip file"):
        load_idx(_write(tmp_path / "garbage.gz", data + b"garbage!", False))


def test_gzip_bomb_fails_before_reading(tmp_path):
    # 60,000 × 280 × 280 declared (4.7 TB); the stream holds a few zero bytes.
    header = bytes([0, 0, 8, 3]) + b"".join(struct.pack(">I", d) for d in (60000, 2800, 2800))
    path = _write(tmp_path / "bomb.gz", header + bytes(10**6), True)
    assert path.stat().st_size < 5000
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(
        ValueError,
        match=r"declares shape \(60000, 2800, 2800\) of uint8, 470,400,000,000 data bytes, more than max_bytes=1,073,741,824",
    ):
        load_idx(path)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 2 * 2**20  # parsed the header only


def test_content_beyond_the_declared_size_is_streamed_and_stopped(tmp_path):
    # declares 1,000 bytes within the limit, then holds 20 MB more: the reader stops after one extra byte.
    header = bytes([0, 0, 8, 1]) + struct.pack(">I", 1000)
    path = _write(tmp_path / "more.gz", header + bytes(20 * 2**20), True)
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"must hold 1000 data bytes for shape \(1000,\), got more"):
        load_idx(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * 2**20  # never the 20 MB


def test_max_bytes(tmp_path):
    path = _write(tmp_path / "a", idx_bytes(np.arange(100, dtype=np.int32)), False)
    assert load_idx(path, max_bytes=400).shape == (100,)
    with pytest.raises(ValueError, match=r"400 data bytes, more than max_bytes=399; pass a larger max_bytes"):
        load_idx(path, max_bytes=399)
    with pytest.raises(ValueError, match=r"max_bytes must be a positive integer, got 0"):
        load_idx(path, max_bytes=0)


def test_missing_files_and_mismatch(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"has no t10k-images-idx3-ubyte\[.gz\]"):
        load_mnist(tmp_path)
    _write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((3, 2, 2), np.uint8)), False)
    _write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(2, np.uint8)), False)
    with pytest.raises(
        ValueError,
        match=r"images \(3, 2, 2\) \('.*t10k-images-idx3-ubyte'\) and labels \(2,\) \('.*t10k-labels-idx1-ubyte'\) "
        r"do not match: expected \(N, height, width\) images and N labels",
    ):
        load_mnist(tmp_path)


@pytest.mark.skipif(not MNIST_DIR.exists(), reason="the shared MNIST folder is absent")
def test_real_mnist_test_set():
    x, y = load_mnist(MNIST_DIR)
    assert x.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(y), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    assert 0.0 <= x.min() and x.max() == 1.0


def test_idx_to_folder_writes_a_readable_image_folder(tmp_path, rng, capsys):
    images = rng.integers(0, 256, size=(6, 5, 4)).astype(np.uint8)
    labels = np.array([3, 1, 3, 0, 1, 3], dtype=np.uint8)
    ipath = _write(tmp_path / "i.gz", idx_bytes(images), True)
    lpath = _write(tmp_path / "l", idx_bytes(labels), False)
    out = tmp_path / "out"
    assert main([str(ipath), str(lpath), str(out)]) == 0
    assert "wrote 6 images" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "train" / "3").iterdir()) == ["00000.png", "00002.png", "00005.png"]
    data = ImageDataSet.from_dir(out)
    assert data.class_names == ["0", "1", "3"] and data.input_shape == (5, 4, 1)
    x, y = data.train.arrays()
    order = np.argsort(labels, kind="stable")
    np.testing.assert_array_equal(y, [0, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(np.rint(x[..., 0] * 255).astype(np.uint8), images[order])
    with pytest.raises(ValueError, match=r"already holds files; pass overwrite=True \(--overwrite\)"):
        idx_to_folder(ipath, lpath, out)
    assert main([str(ipath), str(lpath), str(out)]) == 1
    assert "already holds files" in capsys.readouterr().err
    assert idx_to_folder(ipath, lpath, out, split="test") == 6
    with pytest.raises(
        ValueError, match=r"labels_path must hold 6 integer labels \(one per image\), got uint8 \(3,\)"
    ):
        idx_to_folder(ipath, _write(tmp_path / "l3", idx_bytes(labels[:3]), False), tmp_path / "o2")
    with pytest.raises(ValueError, match=r"split must be 'train' or 'test', got 'valid'"):
        idx_to_folder(ipath, lpath, tmp_path / "o3", split="valid")


@pytest.mark.filterwarnings("ignore:'neuro.data.idx_to_folder' found in sys.modules:RuntimeWarning")
def test_idx_to_folder_runs_as_a_module(tmp_path, monkeypatch):
    ipath = _write(tmp_path / "i", idx_bytes(np.zeros((2, 3, 3), np.uint8)), False)
    lpath = _write(tmp_path / "l", idx_bytes(np.array([1, 2], np.uint8)), False)
    monkeypatch.setattr(
        sys, "argv", ["idx_to_folder", str(ipath), str(lpath), str(tmp_path / "o"), "--split", "test"]
    )
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("neuro.data.idx_to_folder", run_name="__main__")
    assert exit_info.value.code == 0
    assert (tmp_path / "o" / "test" / "2" / "00001.png").is_file()


# -- labels are class ids, pixels are scaled by their type ---------------------------------------------------
def _mnist(tmp_path, images, labels):
    _write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images), False)
    _write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(labels), True)


@pytest.mark.parametrize(
    ("labels", "shown"),
    [
        (np.array([0, 1.7, 2], np.float32), r"1\.7000000476837158 at index 1"),
        (np.array([0, 1, 1e20], np.float64), r"1e\+20 at index 2"),
        (np.array([np.nan, 1, 2], np.float64), r"nan at index 0"),
        (np.array([0, -1, 2], np.int8), r"-1 at index 1"),
        (np.array([0, 1, -3], np.int32), r"-3 at index 2"),
    ],
)
def test_mnist_labels_must_be_class_ids(tmp_path, labels, shown):
    # they were truncated: 1.7 -> 1, 1e20 -> -9223372036854775808, and negative ids were kept
    _mnist(tmp_path, np.zeros((3, 2, 2), np.uint8), labels)
    with pytest.raises(
        ValueError, match=rf"t10k-labels-idx1-ubyte.gz' must hold class ids \(whole numbers >= 0\), got {shown}$"
    ):
        load_mnist(tmp_path)


def test_mnist_labels_stored_as_whole_floats_are_class_ids(tmp_path):
    _mnist(tmp_path, np.zeros((3, 2, 2), np.uint8), np.array([0.0, 9.0, 3.0], np.float64))
    _, y = load_mnist(tmp_path)
    assert y.dtype == np.int64 and y.tolist() == [0, 9, 3]


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (np.array([0, 51, 255], np.uint8), [0.0, 0.2, 1.0]),  # 8-bit: / 255
        (np.array([0, 51, 255], np.int16), [0.0, 0.2, 1.0]),  # 8-bit values in a wider integer type: / 255
        (np.array([0, 51, 255], np.int32), [0.0, 0.2, 1.0]),
        (np.array([0.0, 0.5, 2.5], np.float32), [0.0, 0.5, 2.5]),  # float: as stored (was divided by 255)
        (np.array([-1.0, 0.25, 1e30], np.float64), [-1.0, 0.25, 1e30]),
    ],
)
def test_mnist_pixels_are_scaled_by_their_type(tmp_path, stored, expected):
    _mnist(tmp_path, np.stack([stored.reshape(1, 3)] * 2), np.array([0, 1], np.uint8))
    x, _ = load_mnist(tmp_path)
    assert x.dtype == np.float32 and x.shape == (2, 1, 3, 1)
    np.testing.assert_array_equal(x[0, 0, :, 0], np.array(expected, np.float32) if stored.dtype.kind == "f" else stored.astype(np.float32) / np.float32(255))
    np.testing.assert_allclose(x[1, 0, :, 0], expected, rtol=1e-6)
    raw, _ = load_mnist(tmp_path, normalize=False)
    assert raw.dtype == stored.dtype
    np.testing.assert_array_equal(raw[0, 0, :, 0], stored)


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        (np.array([0, 1000, 5], np.int16), r"holds int16 pixels in \[0, 1000\]; normalize=True divides integer pixels in \[0, 255\]"),
        (np.array([0, -3, 5], np.int8), r"holds int8 pixels in \[-3, 5\]; normalize=True divides"),
        (np.array([0, np.nan, 5], np.float32), r"holds the pixel value nan at index \(0, 0, 1, 0\), which is not a finite float32"),
        (np.array([0, 1, np.inf], np.float64), r"holds the pixel value inf at index \(0, 0, 2, 0\)"),
        (np.array([0, 1e39, 5], np.float64), r"holds the pixel value 1e\+39 at index \(0, 0, 1, 0\), which is not a finite float32"),
    ],
)
def test_mnist_pixels_outside_their_rule_are_an_error(tmp_path, stored, message):
    _mnist(tmp_path, np.stack([stored.reshape(1, 3)] * 2), np.array([0, 1], np.uint8))
    with pytest.raises(ValueError, match=rf"t10k-images-idx3-ubyte' {message}"):
        load_mnist(tmp_path)
    raw, _ = load_mnist(tmp_path, normalize=False)
    np.testing.assert_array_equal(raw[0, 0, :, 0], stored)


def test_an_idx_header_with_too_many_dimensions_names_the_file(tmp_path):
    path = _write(tmp_path / "dims", bytes([0, 0, 8, 255]) + struct.pack(">I", 1) * 255 + b"\x07", False)
    with pytest.raises(
        ValueError, match=r"'.*dims' declares 255 dimensions in its IDX header \(magic '000008ff'\); at most 32 are supported"
    ):
        load_idx(path)
    deep = _write(tmp_path / "deep", bytes([0, 0, 8, 32]) + struct.pack(">I", 1) * 32 + b"\x07", False)
    assert load_idx(deep).shape == (1,) * 32


def test_idx_to_folder_refuses_negative_labels(tmp_path):
    ipath = _write(tmp_path / "i", idx_bytes(np.zeros((3, 2, 2), np.uint8)), False)
    lpath = _write(tmp_path / "l", idx_bytes(np.array([0, -1, -2], np.int8)), False)
    message = (
        r"labels_path must hold class ids >= 0, got -1 at index 1: class folders are ordered by name, and names "
        r"of negative numbers do not sort in their numeric order \(-1, -2, 0\)"
    )
    with pytest.raises(ValueError, match=message):
        idx_to_folder(ipath, lpath, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert main([str(ipath), str(lpath), str(tmp_path / "out")]) == 1
