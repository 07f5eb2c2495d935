"""neuro._h5safe: hand-made hostile HDF5 files are refused with ModelFileError, before anything is read."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuro._h5safe import (
    MAX_ATTR_BYTES,
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    MAX_OBJECTS,
    array_info,
    audit,
    check_no_extra,
    get_group,
    guard,
    json_depth,
    max_declared_bytes,
    open_model_file,
    read_array,
    read_json_attr,
    read_scalar_attr,
)
from neuro.errors import ModelFileError


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so that no guard turns it into a ModelFileError."""


@contextlib.contextmanager
def time_limit(seconds: int = 10):
    """Fail instead of running on (for Python code: HDF5's C code cannot be interrupted, see fifo_sentinel)."""

    def on_alarm(signum, frame):
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


_WATCH_FIFOS = r"""
import os, select, sys
print("READY", flush=True)
while not select.select([sys.stdin], [], [], 0.005)[0]:
    for fifo in sys.argv[1:]:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # succeeds only while someone has it open to read
        except OSError:
            continue
        print("OPENED", fifo, flush=True)
        os.close(fd)
"""


@contextlib.contextmanager
def fifo_sentinel(*fifos):
    """Record every opening of the named pipes, from another process, and unblock whoever opened one.

    HDF5 opens files in C while holding the GIL, and it retries an open() that a signal interrupts, so
    neither an alarm nor a thread can stop it from blocking on a named pipe; a process that opens the pipe's
    other end can, and its success proves that the pipe was opened.
    """
    opened: list[str] = []
    proc = subprocess.Popen(
        [sys.executable, "-S", "-c", _WATCH_FIFOS, *map(str, fifos)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "READY\n"
    try:
        yield opened
    finally:
        out, _ = proc.communicate(timeout=30)
        opened.extend(line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("OPENED "))


def msg(path, where: str, problem: str) -> str:
    """The start of the message ModelFileError(path, where, ...) has, as a regex, followed by ``problem``."""
    place = f", {re.escape(where)}" if where else ""
    return rf"^model file {re.escape(repr(str(path)))}{place}: {problem}"


def open_and_audit(path, **kwargs):
    with time_limit(), open_model_file(path) as f:
        return audit(f, path, **kwargs)


def make(path, build, **file_kwargs):
    with h5py.File(path, "w", **file_kwargs) as f:
        build(f)
    return path


def valid_model(f) -> None:
    """A file shaped like neuro's: a JSON config, params, buffers and optimizer slots."""
    f.attrs["format"] = "neuro-network"
    f.attrs["format_version"] = 1
    f.attrs["config"] = '{"layers": [{"class": "Dense", "config": {"units": 4}}], "seed": 3}'
    f["layers/0/params/kernel"] = np.arange(20, dtype=np.float32).reshape(5, 4) / 10
    f["layers/0/params/bias"] = np.zeros(4, np.float32)
    f["layers/1/buffers/running_var"] = np.ones(4, np.float32)
    opt = f.create_group("optimizer")
    opt.attrs["iterations"] = 7
    opt.attrs["n_slots"] = 1
    opt["slots/0/m"] = np.full((5, 4), 0.5, np.float32)


# ---------------------------------------------------------------------------------------------------------
# ModelFileError and guard


def test_model_file_error_names_file_and_place():
    err = ModelFileError("x.h5", "layers/0/params/kernel", "must have shape (5, 4), got (1,)")
    assert str(err) == "model file 'x.h5', layers/0/params/kernel: must have shape (5, 4), got (1,)"
    assert (err.path, err.where, err.problem) == ("x.h5", "layers/0/params/kernel", "must have shape (5, 4), got (1,)")
    assert isinstance(err, ValueError)
    assert str(ModelFileError(b"y.h5", "", "is not HDF5")) == "model file 'y.h5': is not HDF5"
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.where == err.where


def test_guard_converts_everything_but_model_file_errors_and_interrupts():
    for exc in (KeyError("k"), TypeError("t"), OSError("h5"), MemoryError(), RecursionError(), FileNotFoundError(2, "x")):
        with pytest.raises(ModelFileError, match=msg("f.h5", "a/b", "")) as info:
            with guard("f.h5", "a/b"):
                raise exc
        assert info.value.__cause__ is exc
    with pytest.raises(ModelFileError, match=msg("f.h5", "a/b", "too large to read")):
        with guard("f.h5", "a/b"):
            raise MemoryError
    original = ModelFileError("f.h5", "c", "own")
    with pytest.raises(ModelFileError) as info:
        with guard("f.h5", "a/b"):
            raise original
    assert info.value is original
    with pytest.raises(KeyboardInterrupt):
        with guard("f.h5", "a/b"):
            raise KeyboardInterrupt
    with pytest.raises(FileNotFoundError):
        with guard("f.h5", "a/b", keep=(FileNotFoundError,)):
            raise FileNotFoundError(2, "x")


def test_importing_the_safety_layer_does_not_import_h5py():
    code = textwrap.dedent(
        """
        import sys
        import neuro
        before = "h5py" in sys.modules
        import neuro._h5safe, neuro._atomic, neuro.errors
        print(before, "h5py" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == out[1]


# ---------------------------------------------------------------------------------------------------------
# opening


def test_valid_file_passes_and_reads(tmp_path):
    path = make(tmp_path / "ok.h5", valid_model)
    with time_limit(), open_model_file(path) as f:
        report = audit(f, path)
        assert report.datasets["layers/0/params/kernel"] == ((5, 4), np.dtype("float32"))
        assert "optimizer/slots/0" in report.groups and report.declared_bytes == 80 + 16 + 16 + 80
        config = read_json_attr(f, "config", path)
        assert config == {"layers": [{"class": "Dense", "config": {"units": 4}}], "seed": 3}
        assert read_scalar_attr(f, "format", path, "str") == "neuro-network"
        opt = get_group(f, "optimizer", path)
        assert read_scalar_attr(opt, "n_slots", path, "int") == 1
        kernel = read_array(f, "layers/0/params/kernel", path, shape=(5, 4))
        assert kernel.dtype == np.float32 and kernel.flags.c_contiguous and kernel[4, 3] == np.float32(1.9)
        assert read_array(get_group(f, "layers/1", path), "buffers/running_var", path, shape=(4,), nonneg=True).sum() == 4
        assert array_info(opt, "slots/0/m", path) == ((5, 4), np.dtype("float32"))
        check_no_extra(f, ["layers", "optimizer"], path, expected_attrs=["format", "format_version", "config"])
        check_no_extra(opt, ["slots"], path, expected_attrs=["iterations", "n_slots"])


def test_missing_file_and_folder_keep_their_types(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_model_file(tmp_path / "none.h5")
    with pytest.raises(IsADirectoryError, match=re.escape(str(tmp_path))):
        open_model_file(tmp_path)


def test_named_pipe_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.h5"
    os.mkfifo(path)
    link = tmp_path / "link-to-pipe.h5"
    os.symlink(path, link)
    with fifo_sentinel(path) as opened:
        with time_limit(5), pytest.raises(ModelFileError, match=msg(path, "", r"is not a regular file \(a named pipe\)")):
            open_model_file(path)
        with time_limit(5), pytest.raises(ModelFileError, match=msg(link, "", r"is not a regular file \(a named pipe\)")):
            open_model_file(link)
    assert opened == []


def test_character_device_is_refused(tmp_path):
    with time_limit(5), pytest.raises(ModelFileError, match=msg("/dev/zero", "", r"is not a regular file \(a character device\)")):
        open_model_file("/dev/zero")


@pytest.mark.parametrize(
    "content",
    [b"", b"not an hdf5 file at all\n" * 100, b"\x89HDF\r\n\x1a\n" + b"\xff" * 200, b"PK\x03\x04" + bytes(5000)],
    ids=["empty", "text", "bad-superblock", "zip"],
)
def test_bytes_that_are_not_hdf5_are_refused(tmp_path, content):
    path = tmp_path / "bad.h5"
    path.write_bytes(content)
    with time_limit(), pytest.raises(ModelFileError, match=msg(path, "", r"is not a readable HDF5 file \(")):
        open_model_file(path)


def _open_audit_read_everything(path) -> None:
    with time_limit(), open_model_file(path) as f:
        audit(f, path)
        read_json_attr(f, "config", path)
        for name in ("layers/0/params/kernel", "optimizer/slots/0/m"):
            read_array(f, name, path, shape=(5, 4))


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_truncated_file_is_refused(tmp_path, keep, libver):
    full = make(tmp_path / "full.h5", valid_model, libver=libver)
    data = full.read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelFileError, match=msg(path, "", "")[:-2]):
        _open_audit_read_everything(path)


# ---------------------------------------------------------------------------------------------------------
# nothing outside the file


@pytest.fixture
def elsewhere(tmp_path):
    """Files outside the model file: a named pipe, a secret text file and an HDF5 file.

    The pipe is watched for the whole test: the test fails if anything opened it (and is not left blocked).
    """
    other = tmp_path / "elsewhere"
    other.mkdir()
    os.mkfifo(other / "pipe.h5")
    (other / "secret.txt").write_bytes(b"TOP SECRET " * 40)
    with h5py.File(other / "source.h5", "w") as f:
        f["d"] = np.arange(20, dtype=np.float64).reshape(5, 4)
    with fifo_sentinel(other / "pipe.h5") as opened:
        yield other
    assert opened == [], "a file outside the model file was opened"


def test_the_pipe_sentinel_sees_plain_h5py_follow_links(tmp_path):
    """The harness is not vacuous: plain h5py opens the pipe behind an external link and external storage."""
    pipe = tmp_path / "pipe.h5"
    os.mkfifo(pipe)

    def build(f):
        f["elink"] = h5py.ExternalLink(str(pipe), "/d")
        f.create_dataset("external", shape=(10,), dtype="u1", external=[(str(pipe), 0, 10)])

    path = make(tmp_path / "links.h5", build)
    for read in (lambda f: f["elink"], lambda f: f["external"][()]):
        with fifo_sentinel(pipe) as opened:
            with h5py.File(path, "r") as f, contextlib.suppress(Exception):
                read(f)
        assert opened == [str(pipe)]


def test_soft_link_is_refused(tmp_path):
    def build(f):
        valid_model(f)
        f["layers/0/params/alias"] = h5py.SoftLink("/layers/0/params/kernel")

    path = make(tmp_path / "soft.h5", build)
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/alias", "is a soft link; links are refused")):
        open_and_audit(path)
    with time_limit(), open_model_file(path) as f:  # read_array checks every step, even without the audit
        with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/alias", "is a soft link")):
            read_array(f, "layers/0/params/alias", path, shape=(5, 4))


@pytest.mark.parametrize("target", ["pipe.h5", "source.h5"])
def test_external_link_is_refused_without_opening_the_other_file(tmp_path, elsewhere, target):
    def build(f):
        valid_model(f)
        f["layers/0/params/kernel2"] = h5py.ExternalLink(str(elsewhere / target), "/d")

    path = make(tmp_path / "elink.h5", build)
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/kernel2", "is an external link to another file; refused")):
        open_and_audit(path)  # a pipe as the target would block here if the link were followed
    with time_limit(), open_model_file(path) as f:
        with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/kernel2", "is an external link")):
            read_array(f, "layers/0/params/kernel2", path, shape=(5, 4))
        with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/kernel2", "is an external link")):
            get_group(f, "layers/0/params/kernel2", path)


def test_external_link_as_a_group_is_refused(tmp_path, elsewhere):
    def build(f):
        valid_model(f)
        f["layers/1/params"] = h5py.ExternalLink(str(elsewhere / "source.h5"), "/")

    path = make(tmp_path / "elink-group.h5", build)
    with pytest.raises(ModelFileError, match=msg(path, "layers/1/params", "is an external link")):
        open_and_audit(path)
    with time_limit(), open_model_file(path) as f:
        with pytest.raises(ModelFileError, match=msg(path, "layers/1/params", "is an external link")):
            read_array(f, "layers/1/params/d", path, shape=(5, 4))


@pytest.mark.parametrize("target", ["secret.txt", "pipe.h5"])
def test_external_storage_is_refused_and_the_other_file_never_read(tmp_path, elsewhere, target):
    def build(f):
        valid_model(f)
        f.create_dataset("layers/0/params/weights", shape=(100,), dtype="u1", external=[(str(elsewhere / target), 0, 100)])

    path = make(tmp_path / "external.h5", build)
    if target == "secret.txt":  # the hazard is real: plain h5py hands out the other file's bytes
        with h5py.File(path, "r") as f:
            assert f["layers/0/params/weights"][:10].tobytes() == b"TOP SECRET"
    where = "layers/0/params/weights"
    with pytest.raises(ModelFileError, match=msg(path, where, r"uses external storage \(its data lives in another file\); refused")):
        open_and_audit(path)
    with time_limit(), open_model_file(path) as f:
        for check in (
            lambda: read_array(f, where, path, shape=(100,), dtypes=["uint8"]),
            lambda: array_info(f, where, path),
        ):
            with pytest.raises(ModelFileError, match=msg(path, where, "uses external storage")) as info:
                check()
            assert "SECRET" not in str(info.value)


@pytest.mark.parametrize("target", ["source.h5", "pipe.h5"])
def test_virtual_dataset_is_refused_without_opening_its_sources(tmp_path, elsewhere, target):
    def build(f):
        valid_model(f)
        layout = h5py.VirtualLayout(shape=(5, 4), dtype="f8")
        layout[:] = h5py.VirtualSource(str(elsewhere / target), "d", shape=(5, 4))
        f.create_virtual_dataset("layers/0/params/vkernel", layout)

    path = make(tmp_path / "vds.h5", build)
    if target == "source.h5":
        with h5py.File(path, "r") as f:
            assert f["layers/0/params/vkernel"][4, 3] == 19.0
    where = "layers/0/params/vkernel"
    with pytest.raises(ModelFileError, match=msg(path, where, r"is a virtual dataset \(its data comes from other files\); refused")):
        open_and_audit(path)
    with time_limit(), open_model_file(path) as f:
        with pytest.raises(ModelFileError, match=msg(path, where, "is a virtual dataset")):
            read_array(f, where, path, shape=(5, 4), dtypes=["float64"])


def _lookup3(data: bytes) -> int:
    """Bob Jenkins' lookup3 hashlittle (initval 0): the checksum of HDF5's version-2 metadata."""
    m = 0xFFFFFFFF

    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & m

    length = len(data)
    a = b = c = (0xDEADBEEF + length) & m
    i = 0
    while length > 12:
        a = (a + int.from_bytes(data[i : i + 4], "little")) & m
        b = (b + int.from_bytes(data[i + 4 : i + 8], "little")) & m
        c = (c + int.from_bytes(data[i + 8 : i + 12], "little")) & m
        a = (a - c) & m; a ^= rot(c, 4); c = (c + b) & m  # noqa: E702
        b = (b - a) & m; b ^= rot(a, 6); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= rot(b, 8); b = (b + a) & m  # noqa: E702
        a = (a - c) & m; a ^= rot(c, 16); c = (c + b) & m  # noqa: E702
        b = (b - a) & m; b ^= rot(a, 19); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= rot(b, 4); b = (b + a) & m  # noqa: E702
        i += 12
        length -= 12
    if length == 0:
        return c
    tail = data[i:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c ^= b; c = (c - rot(b, 14)) & m  # noqa: E702
    a ^= c; a = (a - rot(c, 11)) & m  # noqa: E702
    b ^= a; b = (b - rot(a, 25)) & m  # noqa: E702
    c ^= b; c = (c - rot(b, 16)) & m  # noqa: E702
    a ^= c; a = (a - rot(c, 4)) & m  # noqa: E702
    b ^= a; b = (b - rot(a, 14)) & m  # noqa: E702
    c ^= b; c = (c - rot(b, 24)) & m  # noqa: E702
    return c


def test_user_defined_link_is_refused(tmp_path):
    """h5py cannot create a user-defined link: write a soft link, then patch its type byte and checksum."""
    def build(f):
        f["a"] = np.arange(3.0)
        f["udlink"] = h5py.SoftLink("/zz")

    plain = make(tmp_path / "plain.h5", build, track_order=True)
    data = bytearray(plain.read_bytes())
    at = data.find(b"udlink")
    # link message: version 1, flags (bit 3: type present), type 1 (soft), creation order (8 bytes), length
    pos = next(p for p in range(at - 14, at) if data[p] == 1 and data[p - 2] == 1 and data[p - 1] & 0x08)
    start = max(data.rfind(b"OHDR", 0, at), data.rfind(b"OCHK", 0, at))
    end = next(e for e in range(at, len(data) - 4) if _lookup3(bytes(data[start:e])) == int.from_bytes(data[e : e + 4], "little"))
    data[pos] = 65  # a user-defined link class
    data[end : end + 4] = _lookup3(bytes(data[start:end])).to_bytes(4, "little")
    path = tmp_path / "udlink.h5"
    path.write_bytes(bytes(data))
    with h5py.File(path, "r") as f:
        assert f.id.links.get_info(b"udlink").type == 65
    with pytest.raises(ModelFileError, match=msg(path, "udlink", r"is a user-defined link \(type 65\); refused")):
        open_and_audit(path)


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"compression": 30000, "allow_unknown_filter": True}, 30000),
        ({"compression": "lzf"}, 32000),
        ({"scaleoffset": 2}, 6),
        ({"compression": 32001, "allow_unknown_filter": True}, 32001),  # blosc's id: a plugin HDF5 would load
    ],
    ids=["unknown-30000", "lzf", "scaleoffset", "blosc-id"],
)
def test_filters_other_than_gzip_shuffle_fletcher32_are_refused(tmp_path, kwargs, code):
    def build(f):
        valid_model(f)
        f.create_dataset("layers/0/params/filtered", data=np.ones((5, 4), np.float32), chunks=(5, 4), **kwargs)

    path = make(tmp_path / "filter.h5", build)
    where = "layers/0/params/filtered"
    problem = rf"uses filter id {code}; only gzip \(1\), shuffle \(2\) and fletcher32 \(3\) are allowed"
    with pytest.raises(ModelFileError, match=msg(path, where, problem)):
        open_and_audit(path)
    with time_limit(), open_model_file(path) as f, pytest.raises(ModelFileError, match=msg(path, where, problem)):
        read_array(f, where, path, shape=(5, 4))


def test_gzip_shuffle_and_fletcher32_are_allowed(tmp_path):
    def build(f):
        valid_model(f)
        f.create_dataset(
            "layers/2/params/kernel", data=np.ones((50, 40), np.float32), chunks=(10, 40), compression="gzip", shuffle=True, fletcher32=True
        )

    path = make(tmp_path / "gzip.h5", build)
    with time_limit(), open_model_file(path) as f:
        audit(f, path)
        assert read_array(f, "layers/2/params/kernel", path, shape=(50, 40)).sum() == 2000


def test_corrupted_compressed_data_is_a_model_file_error(tmp_path):
    def build(f):
        valid_model(f)
        f.create_dataset("layers/2/params/kernel", data=np.arange(4000, dtype=np.float32), chunks=(4000,), compression="gzip", fletcher32=True)

    path = make(tmp_path / "gzip.h5", build)
    with h5py.File(path, "r") as f:
        offset = f["layers/2/params/kernel"].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 20 : offset + 40] = b"\xaa" * 20
    path.write_bytes(bytes(data))
    with time_limit(), open_model_file(path) as f:
        audit(f, path)
        # found by the chunk's size check (it inflates the chunk itself) before HDF5 reads it
        with pytest.raises(ModelFileError, match=msg(path, "layers/2/params/kernel", r"has a chunk \(at \(0,\)\) that is not gzip data$")):
            read_array(f, "layers/2/params/kernel", path, shape=(4000,))


# ---------------------------------------------------------------------------------------------------------
# bounded work


def test_chunked_dataset_declaring_far_more_than_it_stores_is_refused_before_reading(tmp_path):
    def build(f):
        valid_model(f)
        f.create_dataset("layers/0/params/big", shape=(750_000_000,), dtype="f4", chunks=(1_000_000,))

    path = make(tmp_path / "declared.h5", build)
    size = os.path.getsize(path)
    where = "layers/0/params/big"
    problem = rf"declares shape \(750000000,\) of float32 \(3000000000 bytes\), more than a {size}-byte file can hold"
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=msg(path, where, problem)):
        open_and_audit(path)
    with time_limit(), open_model_file(path) as f:  # without the audit too
        with pytest.raises(ModelFileError, match=msg(path, where, problem)):
            read_array(f, where, path, shape=(750_000_000,))
    assert time.perf_counter() - start < 2


def test_gzip_dataset_may_declare_up_to_the_gzip_ratio(tmp_path):
    def build(f):
        valid_model(f)
        f.create_dataset("layers/0/params/zeros", data=np.zeros(2_000_000, np.float32), chunks=(500_000,), compression="gzip")

    path = make(tmp_path / "zeros.h5", build)
    size = os.path.getsize(path)
    assert 8_000_000 > max_declared_bytes(size, compressed=False)  # too much without gzip...
    with time_limit(), open_model_file(path) as f:
        audit(f, path)  # ...but plausible with it
        assert read_array(f, "layers/0/params/zeros", path, shape=(2_000_000,)).any() == 0


def test_datasets_declaring_too_much_in_all_are_refused(tmp_path):
    def build(f):
        valid_model(f)
        for i in range(5):
            f.create_dataset(f"layers/{i + 2}/params/kernel", shape=(1_000_000,), dtype="f8", chunks=(100_000,), compression="gzip")

    path = make(tmp_path / "sum.h5", build)
    size = os.path.getsize(path)
    assert 8_000_000 < max_declared_bytes(size, compressed=True) < 5 * 8_000_000
    with pytest.raises(ModelFileError, match=rf"^model file {re.escape(repr(str(path)))}, layers/\d/params/kernel: the datasets declare \d+ bytes in all"):
        open_and_audit(path)


def test_huge_chunk_is_refused(tmp_path):
    def build(f):
        valid_model(f)
        f.create_dataset("layers/0/params/c", shape=(10,), maxshape=(None,), dtype="f4", chunks=(200_000_000,))

    path = make(tmp_path / "chunk.h5", build)
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/c", r"declares chunks of 800000000 bytes")):
        open_and_audit(path)


def test_100_megabyte_attribute_is_refused_before_it_is_read(tmp_path):
    path = make(tmp_path / "bigattr.h5", lambda f: (valid_model(f), f["optimizer"].attrs.create("junk", np.zeros(25_000_000, np.float32))), libver="latest")
    assert os.path.getsize(path) > 100_000_000
    problem = rf"declares 100000000 bytes; the limit is {MAX_ATTR_BYTES}"
    with pytest.raises(ModelFileError, match=msg(path, "optimizer attribute 'junk'", problem)):
        open_and_audit(path)
    # bounded memory: a fresh process that audits the file stays far below the attribute's size
    code = textwrap.dedent(
        f"""
        import resource
        from neuro._h5safe import open_model_file, audit
        from neuro.errors import ModelFileError
        import numpy, h5py
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            with open_model_file({str(path)!r}) as f:
                audit(f, "x")
        except ModelFileError:
            pass
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
        """
    )
    grown_kib = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert grown_kib < 30_000
    path.unlink()


def test_100_megabyte_string_config_is_refused(tmp_path):
    text = '{"pad": "' + "x" * 100_000_000 + '"}'
    path = make(tmp_path / "bigconfig.h5", lambda f: (valid_model(f), f.attrs.__setitem__("config", text)))
    problem = rf"holds 100000011 bytes; the limit is {MAX_CONFIG_BYTES}"
    with pytest.raises(ModelFileError, match=msg(path, "attribute 'config'", problem)):
        open_and_audit(path)
    with time_limit(), open_model_file(path) as f, pytest.raises(ModelFileError, match=msg(path, "attribute 'config'", problem)):
        read_json_attr(f, "config", path)
    path.unlink()


def test_fixed_length_string_attribute_larger_than_its_limit_is_refused(tmp_path):
    def build(f):
        valid_model(f)
        f["optimizer"].attrs["note"] = np.bytes_(b"y" * 2_000_000)

    path = make(tmp_path / "fixed.h5", build, libver="latest")
    problem = rf"declares 2000000 bytes; the limit is {MAX_ATTR_BYTES}"
    with pytest.raises(ModelFileError, match=msg(path, "optimizer attribute 'note'", problem)):
        open_and_audit(path)
    open_and_audit(path, attr_limits={"note": 3_000_000})  # a limit of its own


def test_strings_in_dense_attribute_storage_are_refused(tmp_path):
    """A large attribute moves all of an object's attributes to a fractal heap, which neuro does not parse."""

    def build(f):
        valid_model(f)
        f["optimizer"].attrs["note"] = np.bytes_(b"y" * 100_000)
        f["optimizer"].attrs["name"] = "adam"

    path = make(tmp_path / "dense.h5", build, libver="latest")
    problem = r"strings in dense or shared attribute storage are not supported"
    with pytest.raises(ModelFileError, match=msg(path, "optimizer attribute 'name'", problem)):
        open_and_audit(path)


def test_too_many_objects_are_refused(tmp_path):
    def build(f):
        for i in range(MAX_OBJECTS + 1):
            f.create_group(str(i))

    path = make(tmp_path / "many.h5", build)
    with pytest.raises(ModelFileError, match=msg(path, "/", f"the file holds more than {MAX_OBJECTS} groups and datasets")):
        open_and_audit(path)
    path = make(tmp_path / "some.h5", lambda f: [f.create_group(f"g/{i}") for i in range(60)])
    with pytest.raises(ModelFileError, match=msg(path, "g", "the file holds more than 50 groups and datasets")):
        open_and_audit(path, max_objects=50)


def test_too_many_attributes_are_refused(tmp_path):
    def build(f):
        valid_model(f)
        for i in range(30):
            f["layers/0/params/kernel"].attrs[f"a{i}"] = i

    path = make(tmp_path / "attrs.h5", build)
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/kernel", "the file holds more than 20 attributes")):
        open_and_audit(path, max_attributes=20)


def test_deep_nesting_is_refused(tmp_path):
    deep = "/".join(["g"] * (MAX_DEPTH + 1))
    path = make(tmp_path / "deep.h5", lambda f: f.create_group(deep))
    with pytest.raises(ModelFileError, match=msg(path, deep, f"groups are nested deeper than {MAX_DEPTH} levels")):
        open_and_audit(path)
    path = make(tmp_path / "ok.h5", lambda f: f.create_group("/".join(["g"] * MAX_DEPTH)))
    open_and_audit(path)


# ---------------------------------------------------------------------------------------------------------
# objects neuro never writes


@pytest.mark.parametrize(
    "data, kind",
    [
        (np.array(["a", "b"], dtype=h5py.string_dtype()), "string"),
        (np.array([b"ab", b"cd"]), "string"),
        (np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]), "compound"),
        (np.array([True, False]), "enum"),
        (np.array([np.arange(2), np.arange(3)], dtype=h5py.vlen_dtype(np.int64)), "variable-length"),
        (np.zeros(2, dtype="V4"), "opaque"),
        (np.zeros(2, dtype="c8"), "compound"),
    ],
    ids=["vlen-str", "bytes", "compound", "bool", "vlen-int", "opaque", "complex"],
)
def test_datasets_that_are_not_numbers_are_refused(tmp_path, data, kind):
    def build(f):
        valid_model(f)
        f["layers/0/params/odd"] = data

    path = make(tmp_path / "odd.h5", build)
    problem = f"must hold numbers, but its type is {kind}"
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/odd", problem)):
        open_and_audit(path)
    with time_limit(), open_model_file(path) as f, pytest.raises(ModelFileError, match=msg(path, "layers/0/params/odd", problem)):
        read_array(f, "layers/0/params/odd", path, shape=data.shape)


def test_reference_dataset_is_refused(tmp_path):
    def build(f):
        valid_model(f)
        f.create_dataset("layers/0/params/refs", data=[f["layers"].ref], dtype=h5py.ref_dtype)

    path = make(tmp_path / "refs.h5", build)
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/refs", "must hold numbers, but its type is reference")):
        open_and_audit(path)


def test_object_reference_attribute_is_refused(tmp_path):
    path = make(tmp_path / "refattr.h5", lambda f: (valid_model(f), f.attrs.__setitem__("r", f["layers"].ref)))
    with pytest.raises(ModelFileError, match=msg(path, "attribute 'r'", r"has an unsupported type \(reference\); refused")):
        open_and_audit(path)


def test_vlen_string_array_attribute_is_refused(tmp_path):
    path = make(tmp_path / "strs.h5", lambda f: (valid_model(f), f["optimizer"].attrs.__setitem__("names", ["a", "b"])))
    with pytest.raises(ModelFileError, match=msg(path, "optimizer attribute 'names'", "variable-length strings must be scalars")):
        open_and_audit(path)


def test_named_datatypes_are_refused(tmp_path):
    def named(f):
        valid_model(f)
        f["mytype"] = np.dtype("f4")

    path = make(tmp_path / "named.h5", named)
    with pytest.raises(ModelFileError, match=msg(path, "mytype", "is a named datatype; refused")):
        open_and_audit(path)

    def uses_named(f):
        valid_model(f)
        f["t/mytype"] = np.dtype("f4")
        f.create_dataset("layers/0/params/w", shape=(2,), dtype=f["t/mytype"])

    path = make(tmp_path / "uses.h5", uses_named)
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/w", "uses a named datatype; refused")):
        open_and_audit(path, max_depth=MAX_DEPTH)


def test_object_with_two_names_is_refused(tmp_path):
    def build(f):
        valid_model(f)
        f["layers/1/params/kernel"] = f["layers/0/params/kernel"]  # a second hard link

    path = make(tmp_path / "twice.h5", build)
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/kernel", "is reachable through more than one link")):
        open_and_audit(path)


def test_group_cycle_is_refused(tmp_path):
    def build(f):
        valid_model(f)
        f["layers/0/loop"] = f["layers"]

    path = make(tmp_path / "cycle.h5", build)
    with pytest.raises(ModelFileError, match=msg(path, "layers", "is reachable through more than one link")):
        open_and_audit(path)


def test_non_utf8_name_is_refused(tmp_path):
    path = make(tmp_path / "name.h5", lambda f: (valid_model(f), f.create_group(b"bad\xffname")))
    with pytest.raises(ModelFileError, match=msg(path, "/", r"member name b'bad\\xffname' is not valid UTF-8")):
        open_and_audit(path)


def test_null_dataspace_is_refused(tmp_path):
    path = make(tmp_path / "null.h5", lambda f: (valid_model(f), f.create_dataset("layers/0/params/e", data=h5py.Empty("f4"))))
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/e", r"has no data \(null dataspace\)")):
        open_and_audit(path)


# ---------------------------------------------------------------------------------------------------------
# variable-length strings: HDF5 would hang or allocate gigabytes; neuro reads them itself


def _run_isolated(path, body: str, timeout: int = 60) -> str:
    """Run ``body`` on the file in a fresh process (HDF5's own failure would hang in C, beyond any alarm)."""
    code = textwrap.dedent(
        f"""
        import resource
        from neuro._h5safe import open_model_file, audit, read_json_attr
        from neuro.errors import ModelFileError
        path = {str(path)!r}
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            with open_model_file(path) as f:
        {textwrap.indent(textwrap.dedent(body), " " * 8)}
            print("OK")
        except ModelFileError as exc:
            print(exc)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=True)
    message, grown_kib = done.stdout.strip().rsplit("\n", 1)
    assert int(grown_kib) < 50_000, "reading grew the process by more than 50 MB"
    return message


def _heap_layout(data: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """The first global heap collection's address and its objects as (offset of header, index, size)."""
    start = data.find(b"GCOL")
    size = int.from_bytes(data[start + 8 : start + 16], "little")
    objects, pos = [], 16
    while pos + 16 <= size:
        index, obj_size = int.from_bytes(data[start + pos : start + pos + 2], "little"), int.from_bytes(data[start + pos + 8 : start + pos + 16], "little")
        objects.append((start + pos, index, obj_size))
        if index == 0:
            break
        pos += 16 + (obj_size + 7) // 8 * 8
    return start, objects


def test_string_whose_heap_id_claims_gigabytes_is_refused_without_allocating(tmp_path):
    path = make(tmp_path / "len.h5", valid_model)
    data = bytearray(path.read_bytes())
    heap, objects = _heap_layout(bytes(data))
    config_len = len(b'{"layers": [{"class": "Dense", "config": {"units": 4}}], "seed": 3}')
    (index,) = [i for _, i, size in objects if size == config_len]
    heap_id = config_len.to_bytes(4, "little") + heap.to_bytes(8, "little") + index.to_bytes(4, "little")
    assert data.count(heap_id) == 1
    at = data.find(heap_id)
    data[at : at + 4] = (2**31 - 1).to_bytes(4, "little")  # HDF5 would allocate 2 GB before comparing
    path.write_bytes(bytes(data))
    problem = f"the string's length ({2**31 - 1}) does not match its heap object ({config_len} bytes)"
    assert _run_isolated(path, "audit(f, path)") == f"model file {str(path)!r}, attribute 'config': {problem}"
    assert _run_isolated(path, "read_json_attr(f, 'config', path)") == f"model file {str(path)!r}, attribute 'config': {problem}"


def test_heap_with_an_empty_free_space_object_is_refused_without_hanging(tmp_path):
    path = make(tmp_path / "heap.h5", valid_model)
    data = bytearray(path.read_bytes())
    _, objects = _heap_layout(bytes(data))
    free_at, index, _ = objects[-1]
    assert index == 0
    data[free_at + 8 : free_at + 16] = bytes(8)  # HDF5 loops forever on a free-space object of size 0
    path.write_bytes(bytes(data))
    problem = "a global heap collection is corrupt (empty free space)"
    assert _run_isolated(path, "audit(f, path)") == f"model file {str(path)!r}, attribute 'config': {problem}"
    assert _run_isolated(path, "read_json_attr(f, 'config', path)") == f"model file {str(path)!r}, attribute 'config': {problem}"


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_strings_are_read_identically_to_h5py(tmp_path, libver):
    values = {"config": '{"a": [1, 2, "\u00e9"]}', "empty": "", "long": "x" * 300_000, "format": "neuro-network"}

    def build(f):
        valid_model(f)
        for key, value in values.items():
            f["optimizer"].attrs[key] = value
        f.attrs["config"] = values["config"]

    path = make(tmp_path / "strings.h5", build, libver=libver)
    with time_limit(), open_model_file(path) as f:
        audit(f, path, attr_limits={"long": 400_000})
        opt = get_group(f, "optimizer", path)
        for key, value in values.items():
            assert read_scalar_attr(opt, key, path, "str", max_bytes=400_000) == value == opt.attrs[key]
        assert read_json_attr(f, "config", path) == {"a": [1, 2, "é"]}


# ---------------------------------------------------------------------------------------------------------
# JSON attributes


def _with_config(tmp_path, value, name="c.h5"):
    return make(tmp_path / name, lambda f: (valid_model(f), f.attrs.__setitem__("config", value)))


def _read_config(path, **kwargs):
    with time_limit(), open_model_file(path) as f:
        return read_json_attr(f, "config", path, **kwargs)


def test_deeply_nested_json_is_refused_before_parsing(tmp_path):
    path = _with_config(tmp_path, "[" * 200_000 + "]" * 200_000)
    with pytest.raises(ModelFileError, match=msg(path, "attribute 'config'", "JSON is nested 200000 levels deep; the limit is 32")):
        _read_config(path)
    path = _with_config(tmp_path, '{"a": ' * 40 + "1" + "}" * 40, "obj.h5")
    with pytest.raises(ModelFileError, match=msg(path, "attribute 'config'", "JSON is nested 40 levels deep; the limit is 32")):
        _read_config(path)
    assert _read_config(path, max_depth=40)["a"]["a"]["a"] is not None


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path):
    text = '{"name": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{"}'
    assert json_depth(text) == 1
    assert _read_config(_with_config(tmp_path, text))["name"].startswith("[[[")


def test_json_depth_scan_is_linear_for_hostile_text():
    start = time.perf_counter()
    assert json_depth('"\\"' * 2_000_000) == 0  # one unterminated string of escaped quotes
    assert json_depth('"' + "\\" * 3_000_001) == 0
    assert time.perf_counter() - start < 2


def test_json_depth_of_a_config_at_the_size_limit_takes_a_few_bytes_a_character():
    """The scan of a 16 MiB config built per-character arrays of int64 (16 bytes a character); it now reads
    one int8 step a character and sums them in int32 (under 12 bytes a character at its peak)."""
    import tracemalloc

    text = "[" * 31 + "[]," * 5_500_000 + "[]" + "]" * 31
    tracemalloc.start()
    try:
        assert json_depth(text) == 32
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 * len(text), peak


@pytest.mark.parametrize(
    "text, problem",
    [
        ('{"lr": NaN}', "JSON holds the non-finite number NaN"),
        ('{"lr": Infinity}', "JSON holds the non-finite number Infinity"),
        ('[-Infinity]', "JSON holds the non-finite number -Infinity"),
        ('{"lr": 1e999}', "JSON holds the number 1e999, which overflows to infinity"),
        ('{"units": ' + "9" * 5000 + "}", "JSON holds an integer of more than 100 digits"),
        ('{"a": 1, "a": 2}', "JSON object has the key 'a' twice"),
        ('{"a": 1,}', r"is not valid JSON \((Illegal trailing comma|Expecting property name)"),
        ('{"a": ', r"is not valid JSON \("),
        ("", r"is not valid JSON \("),
    ],
)
def test_bad_json_is_refused(tmp_path, text, problem):
    path = _with_config(tmp_path, text)
    with pytest.raises(ModelFileError, match=msg(path, "attribute 'config'", problem)):
        _read_config(path)


@pytest.mark.parametrize(
    "value, problem",
    [
        (np.int64(3), "must be a string, got integer"),
        (np.array(["a", "b"], dtype=h5py.string_dtype()), r"must be a single string, got shape \(2,\)"),
        (np.bytes_(b'{"a": "\xff"}'), "is not valid UTF-8 text"),
    ],
)
def test_config_that_is_not_one_utf8_string_is_refused(tmp_path, value, problem):
    path = _with_config(tmp_path, value)
    with pytest.raises(ModelFileError, match=msg(path, "attribute 'config'", problem)):
        _read_config(path)


def test_invalid_utf8_in_a_variable_length_string_is_refused(tmp_path):
    path = _with_config(tmp_path, "X" * 20)
    data = path.read_bytes()
    assert data.count(b"X" * 20) == 1
    path.write_bytes(data.replace(b"X" * 20, b"\xff" * 20))
    with pytest.raises(ModelFileError, match=msg(path, "attribute 'config'", "is not valid UTF-8 text")):
        _read_config(path)


def test_missing_json_attribute(tmp_path):
    path = make(tmp_path / "noconfig.h5", lambda f: f.create_group("layers"))
    with pytest.raises(ModelFileError, match=msg(path, "attribute 'config'", "is missing")):
        _read_config(path)
    with time_limit(), open_model_file(path) as f:
        with pytest.raises(ModelFileError, match=msg(path, "layers attribute 'rng_state'", "is missing")):
            read_json_attr(f["layers"], "rng_state", path)


def test_fixed_length_json_is_read(tmp_path):
    path = _with_config(tmp_path, np.bytes_(b'{"units": [1, 2.5, null, true, "\xc3\xa9"]}'))
    assert _read_config(path) == {"units": [1, 2.5, None, True, "é"]}


# ---------------------------------------------------------------------------------------------------------
# scalar attributes


def _with_attrs(tmp_path, **attrs):
    def build(f):
        valid_model(f)
        for key, value in attrs.items():
            f["optimizer"].attrs[key] = value

    return make(tmp_path / "attrs.h5", build)


@pytest.mark.parametrize(
    "value, kind, kwargs, problem",
    [
        (-1, "int", {}, "must be at least 0, got -1"),
        (10**6, "int", {"max_value": 1000}, "must be at most 1000, got 1000000"),
        (np.uint64(2**64 - 1), "int", {}, f"must be at most {2**63 - 1}, got {2**64 - 1}"),
        (2.5, "int", {}, "must be an int, got float"),
        ("7", "int", {}, "must be an int, got string"),
        (True, "int", {}, "must be an int, got enum"),
        (np.array([1, 2]), "int", {}, r"must be a single int, got shape \(2,\)"),
        (float("nan"), "float", {}, "must be finite, got nan"),
        (-0.5, "float", {}, "must be at least 0, got -0.5"),
        (3, "str", {}, "must be a string, got integer"),
        ("x" * 100, "str", {"max_bytes": 10}, "holds 100 bytes; the limit is 10"),
    ],
)
def test_bad_scalar_attributes_are_refused(tmp_path, value, kind, kwargs, problem):
    path = _with_attrs(tmp_path, value=value)
    with time_limit(), open_model_file(path) as f:
        with pytest.raises(ModelFileError, match=msg(path, "optimizer attribute 'value'", problem)):
            read_scalar_attr(f["optimizer"], "value", path, kind, **kwargs)


def test_good_scalar_attributes(tmp_path):
    path = _with_attrs(tmp_path, i=np.int32(5), u=np.uint8(200), x=2.5, s="héllo", neg=-3)
    with time_limit(), open_model_file(path) as f:
        opt = f["optimizer"]
        assert read_scalar_attr(opt, "i", path, "int") == 5 and type(read_scalar_attr(opt, "i", path, "int")) is int
        assert read_scalar_attr(opt, "u", path, "int") == 200
        assert read_scalar_attr(opt, "x", path, "float") == 2.5
        assert read_scalar_attr(opt, "i", path, "float") == 5.0
        assert read_scalar_attr(opt, "s", path, "str") == "héllo"
        assert read_scalar_attr(opt, "neg", path, "int", min_value=None) == -3
        with pytest.raises(ModelFileError, match=msg(path, "optimizer attribute 'nope'", "is missing")):
            read_scalar_attr(opt, "nope", path, "int")
        with pytest.raises(ValueError, match="kind must be"):
            read_scalar_attr(opt, "i", path, "list")


# ---------------------------------------------------------------------------------------------------------
# arrays


def _array_file(tmp_path, **arrays):
    def build(f):
        valid_model(f)
        for key, value in arrays.items():
            f[f"layers/0/params/{key}"] = value

    return make(tmp_path / "arrays.h5", build)


def _read(path, name, **kwargs):
    with time_limit(), open_model_file(path) as f:
        return read_array(f, f"layers/0/params/{name}", path, **kwargs)


def test_broadcastable_shape_is_refused(tmp_path):
    path = _array_file(tmp_path, k1=np.ones((1,), np.float32), kt=np.ones((4, 5), np.float32), k0=np.float32(1))
    for name, got in (("k1", r"\(1,\)"), ("kt", r"\(4, 5\)"), ("k0", r"\(\)")):
        with pytest.raises(ModelFileError, match=msg(path, f"layers/0/params/{name}", rf"must have shape \(5, 4\), got {got}$")):
            _read(path, name, shape=(5, 4))


def test_wrong_dtype_is_refused(tmp_path):
    path = _array_file(tmp_path, ints=np.ones((5, 4), np.int64), half=np.ones((5, 4), np.float16))
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/ints", "must have dtype float32 or float64, got int64")):
        _read(path, "ints", shape=(5, 4))
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/half", "must have dtype float32 or float64, got float16")):
        _read(path, "half", shape=(5, 4))
    assert _read(path, "ints", shape=(5, 4), dtypes=["int64"]).sum() == 20


@pytest.mark.parametrize("bad, shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_non_finite_values_are_refused(tmp_path, bad, shown):
    kernel = np.ones((5, 4), np.float32)
    kernel[1, 2] = bad
    path = _array_file(tmp_path, bad=kernel)
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/bad", rf"holds a non-finite value \({shown}\) at index \(1, 2\)")):
        _read(path, "bad", shape=(5, 4))
    assert np.isnan(_read(path, "bad", shape=(5, 4), finite=False)[1, 2]) == (shown == "nan")


def test_negative_values_are_refused_when_asked(tmp_path):
    var = np.ones(6)
    var[3] = -0.5
    path = _array_file(tmp_path, running_var=var, zero=np.array([0.0, -0.0]))
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/running_var", r"must not be negative, got -0.5 at index \(3,\)")):
        _read(path, "running_var", shape=(6,), nonneg=True)
    assert _read(path, "running_var", shape=(6,))[3] == -0.5
    assert _read(path, "zero", shape=(2,), nonneg=True).tolist() == [0.0, 0.0]


def test_values_are_checked_after_the_cast(tmp_path):
    big = np.ones((5, 4))
    big[2, 1] = -1e300
    tiny = np.full((2,), 1e-300)
    path = _array_file(tmp_path, big=big, tiny=tiny)
    with pytest.raises(
        ModelFileError,
        match=msg(path, "layers/0/params/big", r"holds -1e\+300 at index \(2, 1\), beyond the range of float32 \(it would become -inf\)$"),
    ):
        _read(path, "big", shape=(5, 4), cast="float32")
    assert _read(path, "big", shape=(5, 4), cast="float64")[2, 1] == -1e300
    out = _read(path, "tiny", shape=(2,), cast="float32", nonneg=True)  # an underflow to 0 is a float32 value
    assert out.dtype == np.float32 and out.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("fill_time", ["never", "alloc", "ifset"])
@pytest.mark.parametrize("chunks", [None, (2, 2)])
def test_storage_that_was_never_written_is_refused(tmp_path, fill_time, chunks):
    def build(f):
        valid_model(f)
        f.create_dataset("layers/0/params/empty", shape=(5, 4), dtype="<f4", chunks=chunks, fill_time=fill_time, fillvalue=1.5)
        part = f.create_dataset("layers/0/params/part", shape=(5, 4), dtype="<f4", chunks=(1, 4), fill_time=fill_time)
        part[:2] = 1.0

    path = make(tmp_path / "fill.h5", build)
    problem = r"has 6 of its 6 chunks never written" if chunks else r"was never written \(no storage allocated"
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/empty", problem)):
        _read(path, "empty", shape=(5, 4))
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/part", r"has 3 of its 5 chunks never written")):
        _read(path, "part", shape=(5, 4))


@pytest.mark.parametrize(
    "filters, stored, problem",
    [
        ((), 16, r"stores a chunk \(at \(0, 0\)\) of 16 bytes where its chunk shape \(5, 4\) needs 80 \(HDF5 would leave "
                 r"the rest as uninitialised memory\)$"),
        (("gzip",), 16, r"stores a chunk \(at \(0, 0\)\) of 16 bytes where its chunk shape \(5, 4\) needs 80"),
        (("gzip",), 4000, r"has a chunk \(at \(0, 0\)\) whose gzip data does not inflate to exactly 80 bytes$"),
        (("gzip", "fletcher32"), 16, r"stores a chunk \(at \(0, 0\)\) of 16 bytes where"),
        (("shuffle", "gzip"), 79, r"stores a chunk \(at \(0, 0\)\) of 79 bytes where"),
    ],
    ids=["raw, short", "gzip, short", "gzip, inflating past the chunk", "fletcher32 and gzip, short", "shuffle, short"],
)
def test_a_chunk_that_does_not_hold_its_shapes_bytes_is_refused(tmp_path, filters, stored, problem):
    """HDF5 reads a short chunk into a buffer whose rest keeps whatever memory held (heap pointers became
    weights), and inflates gzip data without a bound."""
    import zlib

    def build(f):
        valid_model(f)
        del f["layers/0/params/kernel"]
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((5, 4))
        for name in filters:
            {"gzip": lambda: dcpl.set_deflate(4), "shuffle": dcpl.set_shuffle, "fletcher32": dcpl.set_fletcher32}[name]()
        ds = h5py.h5d.create(f["layers/0/params"].id, b"kernel", h5py.h5t.IEEE_F32LE, h5py.h5s.create_simple((5, 4)), dcpl=dcpl)
        data = np.ones(stored // 4 + 1, "<f4").tobytes()[:stored]
        if "gzip" in filters:
            data = zlib.compress(data)
        if "fletcher32" in filters:
            data += b"\0\0\0\0"
        ds.write_direct_chunk((0, 0), data)

    path = make(tmp_path / "short.h5", build)
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/kernel", problem)):
        _read(path, "kernel", shape=(5, 4))


def test_a_chunk_whose_filter_is_skipped_is_checked_as_stored(tmp_path):
    """A chunk written with the gzip filter masked off holds raw bytes: it reads as written."""

    def build(f):
        valid_model(f)
        del f["layers/0/params/kernel"]
        ds = f["layers/0/params"].create_dataset("kernel", shape=(5, 4), dtype="<f4", chunks=(5, 4), compression="gzip")
        ds.id.write_direct_chunk((0, 0), np.arange(20, dtype="<f4").tobytes(), filter_mask=1)

    path = make(tmp_path / "masked.h5", build)
    assert _read(path, "kernel", shape=(5, 4)).ravel().tolist() == list(range(20))


def test_a_filter_applied_twice_is_refused(tmp_path):
    """gzip twice inflated a 28 KB file's chunk to 1 GiB before any size bound applied."""

    def build(f):
        valid_model(f)
        del f["layers/0/params/kernel"]
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((5, 4))
        dcpl.set_deflate(4)
        dcpl.set_deflate(4)
        h5py.h5d.create(f["layers/0/params"].id, b"kernel", h5py.h5t.IEEE_F32LE, h5py.h5s.create_simple((5, 4)), dcpl=dcpl)
        f["layers/0/params/kernel"][...] = 1.0

    path = make(tmp_path / "twice.h5", build)
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/kernel", r"applies the gzip filter 2 times; once at most$")):
        _read(path, "kernel", shape=(5, 4))


def test_chunk_counts_are_bounded_in_the_audit(tmp_path, monkeypatch):
    from neuro import _h5safe

    def build(f):
        valid_model(f)
        f.create_dataset("many", data=np.zeros((40, 30), np.float32), chunks=(1, 1))

    path = make(tmp_path / "chunks.h5", build)
    assert open_and_audit(path).chunks == 1200
    monkeypatch.setattr(_h5safe, "MAX_CHUNKS", 1000)
    with pytest.raises(ModelFileError, match=msg(path, "many", r"is split into 1200 chunks of shape \(1, 1\) \(dataset shape \(40, 30\)\); at most 1000 are accepted$")):
        open_and_audit(path)


def test_big_endian_data_is_returned_native_and_contiguous(tmp_path):
    path = _array_file(tmp_path, be=np.arange(20, dtype=">f8").reshape(5, 4))
    out = _read(path, "be", shape=(5, 4))
    assert out.dtype == np.dtype("float64") and out.dtype.isnative and out.flags.c_contiguous
    assert out[4, 3] == 19.0


def test_missing_and_misplaced_arrays(tmp_path):
    path = _array_file(tmp_path)
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/nope", "is missing")):
        _read(path, "nope", shape=(5, 4))
    with pytest.raises(ModelFileError, match=msg(path, "layers/7", "is missing")):
        with time_limit(), open_model_file(path) as f:
            read_array(f, "layers/7/params/kernel", path, shape=(5, 4))
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params", r"must be an array \(dataset\), got a group")):
        with time_limit(), open_model_file(path) as f:
            read_array(f, "layers/0/params", path, shape=(5, 4))
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/kernel", "must be a group")):
        with time_limit(), open_model_file(path) as f:
            get_group(f, "layers/0/params/kernel", path)
    with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/kernel", "must be a group")):
        with time_limit(), open_model_file(path) as f:
            read_array(f, "layers/0/params/kernel/deeper", path, shape=(5, 4))


def test_dataset_object_can_be_given_directly(tmp_path):
    path = _array_file(tmp_path)
    with time_limit(), open_model_file(path) as f:
        assert read_array(f["layers/0/params/kernel"], None, path, shape=(5, 4)).shape == (5, 4)
        with pytest.raises(ModelFileError, match=msg(path, "layers/0/params/kernel", r"must have shape \(4, 5\)")):
            read_array(f["layers/0/params/kernel"], None, path, shape=(4, 5))


def test_unexpected_members_and_attributes_are_refused(tmp_path):
    def build(f):
        valid_model(f)
        f["layers/0/params/zzz"] = np.ones(2)
        f["layers/0/params/aaa"] = np.ones(2)
        f["layers/0/params"].attrs["note"] = "x"

    path = make(tmp_path / "extra.h5", build)
    with time_limit(), open_model_file(path) as f:
        params = get_group(f, "layers/0/params", path)
        with pytest.raises(ModelFileError, match=msg(path, "layers/0/params", "has unexpected members 'aaa', 'zzz'$")):
            check_no_extra(params, ["kernel", "bias"], path)
        check_no_extra(params, ["kernel", "bias", "aaa", "zzz"], path)
        with pytest.raises(ModelFileError, match=msg(path, "layers/0/params", "has unexpected attributes 'note'$")):
            check_no_extra(params, ["kernel", "bias", "aaa", "zzz"], path, expected_attrs=[])


# ---------------------------------------------------------------------------------------------------------
# mutated files: ModelFileError or success, nothing else, in bounded time


def _fuzz_base(libver: str, compress: bool) -> bytes:
    import io

    buf = io.BytesIO()
    with h5py.File(buf, "w", libver=libver) as f:
        valid_model(f)
        kwargs = {"chunks": (5, 4), "compression": "gzip", "shuffle": True, "fletcher32": True} if compress else {}
        f.create_dataset("layers/2/params/kernel", data=np.linspace(-1, 1, 20).reshape(5, 4), **kwargs)
        f.attrs["rng_state"] = '{"bit_generator": "PCG64", "state": {"state": 1, "inc": 3}}'
    return buf.getvalue()


FUZZ_BASES = [_fuzz_base("earliest", False), _fuzz_base("latest", True)]
FUZZ_ARRAYS = [("layers/0/params/kernel", (5, 4)), ("layers/0/params/bias", (4,)), ("optimizer/slots/0/m", (5, 4)), ("layers/2/params/kernel", (5, 4))]


@st.composite
def mutated_files(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(FUZZ_BASES)))
    n = len(data)
    for pos, value in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), min_size=1, max_size=8)):
        data[pos] = value
    if draw(st.booleans()) and draw(st.booleans()):  # a quarter of the files are also cut short
        del data[draw(st.integers(0, n - 1)) :]
    return bytes(data)


def _load_everything(path) -> None:
    with open_model_file(path) as f:
        audit(f, path)
        read_json_attr(f, "config", path)
        read_json_attr(f, "rng_state", path)
        opt = get_group(f, "optimizer", path)
        read_scalar_attr(opt, "n_slots", path, "int")
        read_scalar_attr(opt, "iterations", path, "int")
        read_scalar_attr(f, "format", path, "str")
        for name, shape in FUZZ_ARRAYS:
            read_array(f, name, path, shape=shape)
        check_no_extra(f, ["layers", "optimizer"], path)


def test_unmutated_fuzz_bases_load(tmp_path):
    for i, base in enumerate(FUZZ_BASES):
        path = tmp_path / f"base{i}.h5"
        path.write_bytes(base)
        _load_everything(path)


@pytest.fixture
def fuzz_watchdog():
    """A hang inside HDF5's C code cannot be interrupted: end the run with a traceback instead of hanging."""
    faulthandler.dump_traceback_later(600, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


FUZZ_EXAMPLES = int(os.environ.get("NEURO_FUZZ_EXAMPLES", "1000"))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=mutated_files())
def test_mutated_files_raise_only_model_file_error(tmp_path, fuzz_watchdog, data):
    path = tmp_path / f"fuzz-{time.monotonic_ns()}.h5"
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        with time_limit(10):
            _load_everything(path)
    except ModelFileError as exc:
        assert str(exc).startswith(f"model file {str(path)!r}")
    finally:
        path.unlink()
    assert time.perf_counter() - start < 10


def _wrapped_interrupt_passes(tmp_path):
    """A Ctrl-C arriving inside guard, wrapped by h5py's lock in a SystemError, comes out as itself."""
    from neuro._h5safe import guard

    interrupt = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt) as caught:
        with guard(tmp_path / "m.h5", "layers/1"):
            try:
                raise interrupt
            except KeyboardInterrupt:
                raise SystemError("<cyfunction FastRLock.__exit__> returned a result with an exception set")  # noqa: B904
    assert caught.value is interrupt


def test_an_interrupt_a_library_wrapped_in_its_own_error_stays_an_interrupt(tmp_path):
    """h5py's Cython lock turned a Ctrl-C during load into a SystemError whose context is the
    KeyboardInterrupt: guard made it a ModelFileError (a ValueError), which code falling back to retraining
    caught, and a good file was called unreadable."""
    from neuro._h5safe import guard

    _wrapped_interrupt_passes(tmp_path)
    with pytest.raises(ModelFileError, match=r"layers/1: cannot be read \(SystemError: broken\)"):
        with guard(tmp_path / "m.h5", "layers/1"):
            try:
                raise ValueError("inner")
            except ValueError:
                raise SystemError("broken")  # noqa: B904


def test_a_load_inside_an_except_keyboardinterrupt_block_still_names_a_bad_file(tmp_path):
    """The interrupt being handled when load began is the context of every error inside: guard took it for
    one that arrived during the load, and raised it instead of the ModelFileError of a corrupt file."""
    from neuro._h5safe import guard

    earlier = KeyboardInterrupt()
    try:
        raise earlier
    except KeyboardInterrupt:
        with pytest.raises(ModelFileError, match=r"layers/1: cannot be read \(RuntimeError: corrupt\)"):
            with guard(tmp_path / "m.h5", "layers/1"):
                raise RuntimeError("corrupt")  # noqa: B904 - as h5py raises it, context and all
        _wrapped_interrupt_passes(tmp_path)  # one arriving inside the block still is one
