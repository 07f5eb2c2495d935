"""Hostile input: mutated CSV, IDX (plain and gzip) and image bytes give a result or a ValueError, nothing else."""

from __future__ import annotations

import gzip
import io
import os
import struct
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from neuro.data import TabularDataSet, load_csv, load_idx, load_image_folder
from neuro.data.csv import read_csv_table

# NEURO_FUZZ_EXAMPLES=5000 runs a longer campaign; the default keeps the suite fast.
SETTINGS = settings(
    max_examples=int(os.environ.get("NEURO_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_INTERESTING = b'",;\t|\n\r\x00 e.-+\xef\xbb\xbf\xff'
_BYTE = st.one_of(st.integers(0, 255), st.sampled_from(list(_INTERESTING)))
_OPS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "truncate", "repeat"]),
        st.integers(0, 2**20),
        _BYTE,
    ),
    max_size=8,
)


def mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for kind, pos, value in ops:
        if kind == "insert":
            b.insert(pos % (len(b) + 1), value)
        elif not b:
            continue
        elif kind == "flip":
            b[pos % len(b)] ^= 1 << (value % 8)
        elif kind == "set":
            b[pos % len(b)] = value
        elif kind == "delete":
            del b[pos % len(b)]
        elif kind == "truncate":
            del b[pos % len(b) :]
        else:
            p = pos % len(b)
            b[p:p] = b[p : p + 1 + value % 16]
    return bytes(b)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


_CSVS = [
    b"a,b,y\n1,2,0.5\n3,4.5,1.5\n-5e3,6,2\n",
    b'\xef\xbb\xbff1;f2;label\n1;2;"cat; black"\n3;4;dog\n5;6;cat\n',
    b"1\t2\t0\r\n3\t4\t1\r\n5\t6\t0\r\n",
    b'"x","y","t",\n"1","2","3",\n"4","5","6",\n',
]


@SETTINGS
@given(base=st.sampled_from(_CSVS), ops=_OPS, nonfinite=st.sampled_from(["error", "keep", "drop"]))
def test_mutated_csv(workdir, base, ops, nonfinite):
    path = workdir / "m.csv"
    path.write_bytes(mutate(base, ops))
    try:
        x, y, names = load_csv(path, nonfinite=nonfinite)
    except ValueError:
        pass
    else:
        assert x.dtype == np.float32 and x.ndim == 2 and len(x) == len(y) and x.shape[1] >= 1
        assert y.dtype == np.int64 and len(names) >= 1
        if nonfinite != "keep":
            assert np.isfinite(x).all()
    try:
        table = read_csv_table(path, header=None, nonfinite=nonfinite)
    except ValueError:
        pass
    else:
        assert table.values.shape == (len(table), table.width) and len(table) >= 1
    try:
        data = TabularDataSet.from_csv(
            path, target_columns=-1, valid_frac=0.5, nonfinite=nonfinite, header=False
        )
    except ValueError:
        pass
    else:
        assert len(data.train) >= 1 and data.train.arrays()[0].dtype == np.float32


@SETTINGS
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_as_csv(workdir, data):
    path = workdir / "b.csv"
    path.write_bytes(data)
    try:
        load_csv(path, classification=False)
    except ValueError:
        pass


def _idx(arr):
    code = {np.uint8: 8, np.int16: 0x0B, np.float32: 0x0D}[arr.dtype.type]
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


_IDXS = [
    _idx(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)),
    _idx(np.arange(10, dtype=np.int16) - 5),
    _idx(np.linspace(0, 1, 6, dtype=np.float32).reshape(3, 2)),
]


@SETTINGS
@given(base=st.sampled_from(_IDXS), ops=_OPS, compress=st.booleans(), after=st.booleans())
def test_mutated_idx(workdir, base, ops, compress, after):
    # mutate the IDX bytes then compress, or compress then mutate the gzip stream
    if compress and after:
        data = mutate(gzip.compress(base), ops)
    else:
        data = mutate(base, ops)
        data = gzip.compress(data) if compress else data
    path = workdir / "m.idx"
    path.write_bytes(data)
    try:
        arr = load_idx(path, max_bytes=2**20)
    except ValueError:
        pass
    else:
        assert arr.dtype.isnative and arr.ndim >= 1


def _image_bytes(fmt):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


_IMAGES = {"png": _image_bytes("PNG"), "jpg": _image_bytes("JPEG"), "bmp": _image_bytes("BMP")}


@SETTINGS
@given(ext=st.sampled_from(sorted(_IMAGES)), ops=_OPS)
def test_mutated_image(workdir, ext, ops):
    folder = workdir / "imgs"
    (folder / "c").mkdir(parents=True, exist_ok=True)
    for old in (folder / "c").iterdir():
        old.unlink()
    (folder / "c" / f"x.{ext}").write_bytes(mutate(_IMAGES[ext], ops))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about some truncated files
        try:
            x, y, _ = load_image_folder(folder, size=(6, 5), max_pixels=200_000)
        except ValueError as exc:
            assert f"x.{ext}" in str(exc)  # the documented error names the file
        else:
            assert x.shape == (1, 6, 5, 3) and x.dtype == np.float32
            assert np.isfinite(x).all() and 0 <= x.min() and x.max() <= 1


# -- a helper's fuzz of the data loaders (this stop): six findings, each fixed -------------------------------
def test_a_csv_test_file_is_read_by_its_header_names(tmp_path):
    """The test file's features were taken by position: columns in another order were swapped silently, and
    columns of other names accepted."""
    from neuro.data import TabularDataSet

    (tmp_path / "train.csv").write_text("a,b,y\n1,100,0\n2,200,1\n3,300,0\n")
    (tmp_path / "test.csv").write_text("b,a,y\n100,1,0\n200,2,1\n")
    (tmp_path / "other.csv").write_text("p,q,y\n5,6,0\n7,8,1\n")
    ds = TabularDataSet.from_csv(tmp_path / "train.csv", target_columns="y", classification=True,
                                 test_path=tmp_path / "test.csv")
    np.testing.assert_array_equal(ds.test.arrays()[0], [[1, 100], [2, 200]])
    with pytest.raises(ValueError, match=r"test file '.*other.csv' has the feature columns \['p', 'q'\], but the "
                                         r"training data has \['a', 'b'\]"):
        TabularDataSet.from_csv(tmp_path / "train.csv", target_columns="y", classification=True,
                                test_path=tmp_path / "other.csv")
    # the target given by position: the test file's is found by the training header's name, wherever it is
    (tmp_path / "first.csv").write_text("y,b,a\n1,200,2\n0,100,1\n")
    ds = TabularDataSet.from_csv(tmp_path / "train.csv", target_columns=-1, classification=True,
                                 test_path=tmp_path / "first.csv")
    np.testing.assert_array_equal(ds.test.arrays()[0], [[2, 200], [1, 100]])
    np.testing.assert_array_equal(ds.test.arrays()[1], [1, 0])


def test_a_text_folder_refuses_links_it_cannot_follow_naming_them(tmp_path):
    """A link that loops or leads nowhere raised a raw OSError or FileNotFoundError."""
    from neuro.data import TextDataSet

    for make in (lambda p: os.symlink(p, p), lambda p: os.symlink(tmp_path / "nowhere", p)):
        root = tmp_path / f"r{len(os.listdir(tmp_path))}"
        (root / "a").mkdir(parents=True)
        (root / "a" / "x.txt").write_text("the cat sat\n")
        make(root / "a" / "y.txt")
        with pytest.raises(ValueError, match=r"y.txt' cannot be read: "):
            TextDataSet.from_dir(root, sequence_length=4)
    root = tmp_path / "loop"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.txt").write_text("the cat sat\n")
    os.symlink(root / "b", root / "b")
    with pytest.raises(ValueError, match=r"loop/b' cannot be read: Too many levels of symbolic links"):
        TextDataSet.from_dir(root, sequence_length=4)
    with pytest.raises(FileNotFoundError):  # no file at all: from_file's documented error
        TextDataSet.from_file(tmp_path / "missing.txt", sequence_length=2)


def test_idx_files_of_empty_arrays_with_huge_dimensions_and_empty_images(tmp_path):
    """An empty IDX array declaring huge other dimensions reached NumPy's reshape ("array is too big"), and
    idx_to_folder wrote class folders before Pillow refused 0-pixel images."""
    from neuro.data import load_idx
    from neuro.data.idx_to_folder import idx_to_folder

    path = tmp_path / "zero.idx"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 0, 2**32 - 1, 2**32 - 1))
    with pytest.raises(ValueError, match=r"zero.idx' declares shape \(0, 4294967295, 4294967295\) of uint8: empty, "
                                         r"but its other dimensions span"):
        load_idx(path)
    assert load_idx(_idx(tmp_path / "ok.idx", np.zeros((0, 28, 28), np.uint8))).shape == (0, 28, 28)
    images = tmp_path / "images"
    images.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 0, 5))
    labels = tmp_path / "labels"
    labels.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + b"\x01\x02")
    with pytest.raises(ValueError, match=r"with C in 1, 3, 4 and H, W >= 1, got uint8 \(2, 0, 5\)"):
        idx_to_folder(images, labels, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


def _idx(path, arr):
    path.write_bytes(bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes())
    return path


def test_a_lone_carriage_return_before_the_last_character_ends_a_line(tmp_path):
    """Lines end at a lone CR, as documented; one before a file's last character was left inside the line."""
    from neuro.data.csv import read_csv_table

    for data, values in ((b"0\r1", [0, 1]), (b"0\r1\r", [0, 1]), (b"0\n1\r2", [0, 1, 2]), (b"0\r\n1", [0, 1])):
        path = tmp_path / "cr.csv"
        path.write_bytes(data)
        assert read_csv_table(path, header=False).values.ravel().tolist() == values, data


def test_a_png_whose_checksum_sits_in_a_later_idat_chunk_is_checked(tmp_path):
    """One flipped pixel byte was read silently when the zlib stream's Adler-32 came in its own IDAT chunk
    (Pillow checks neither the chunks' CRCs nor that checksum); in one chunk it was refused."""
    import zlib

    from neuro.data import load_image_folder
    from neuro.data.images import ImageFileError

    rgb = np.random.default_rng(0).integers(0, 256, (16, 12, 3), dtype=np.uint8)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compress(b"".join(b"\0" + rgb[r].tobytes() for r in range(16)), 0)
    head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 12, 16, 8, 2, 0, 0, 0))
    good = head + chunk(b"IDAT", z[:-4]) + chunk(b"IDAT", z[-4:]) + chunk(b"IEND", b"")
    bad = bytearray(good)
    bad[bad.index(b"IDAT") + 4 + 2 + 5 + 50] ^= 0xFF
    for name, data in (("good", good), ("bad", bytes(bad))):
        (tmp_path / name / "c").mkdir(parents=True)
        (tmp_path / name / "c" / "x.png").write_bytes(data)
    x, _, _ = load_image_folder(tmp_path / "good")
    np.testing.assert_array_equal(np.round(x[0] * 255).astype(np.uint8), rgb)
    with pytest.raises(ImageFileError, match=r"its compressed pixel data is corrupt \(.*incorrect data check\)"):
        load_image_folder(tmp_path / "bad")
