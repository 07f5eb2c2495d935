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
