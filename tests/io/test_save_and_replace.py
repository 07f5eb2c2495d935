"""Saving cleanly and loading while others save: a full disk or a file-size limit during a save is an
OSError naming the path, the old file stays, nothing is left behind and the process goes on (HDF5 never
sees the failing write); a path ending in a separator is refused; a load while another process saves over
the same path sees the old file or the new one.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from neuro import Dense, ModelFileError, Network
from neuro import _h5safe as h5s
from neuro._atomic import TMP_SUFFIX, atomic_write


def _net(width: int = 30) -> Network:
    net = Network((5,), "mse", "adam", seed=0)
    net.add(Dense(width, "tanh")).add(Dense(2))
    return net


def _run(script: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run a Python script in a fresh process (a crash at exit shows as a negative return code)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=os.getcwd(),
    )


# -- a full disk, a file-size limit ---------------------------------------------------------------------------
_FULL_DISK = """
    import errno, os, sys
    import numpy as np
    import neuro._atomic as atomic
    from neuro import Dense, Network

    folder = sys.argv[1]
    path = os.path.join(folder, "model.h5")
    small = Network((5,), "mse", "adam", seed=0)
    small.add(Dense(2))
    small.save(path)
    before = open(path, "rb").read()
    big = Network((5,), "mse", "adam", seed=1)
    big.add(Dense(300, "tanh")).add(Dense(2))

    real_write = os.write
    written = [0]

    def full_disk(fd, data):  # the disk fills up after 2000 bytes of the file
        if written[0] >= 2000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_write(fd, bytes(data[:2000 - written[0]]))
        written[0] += n
        return n

    atomic.os.write = full_disk
    for attempt in range(3):
        written[0] = 0
        try:
            big.save(path)
        except OSError as exc:
            print("error", type(exc).__name__, exc.errno, str(exc))
        assert open(path, "rb").read() == before, "the old file changed"
        assert sorted(os.listdir(folder)) == ["model.h5"], os.listdir(folder)
    atomic.os.write = real_write
    for i in range(3):  # the process goes on: later saves and loads work
        big.save(path)
        big.save(os.path.join(folder, f"other{i}.h5"))
    loaded = Network.load(path)
    x = np.ones((2, 5))
    assert np.array_equal(loaded.predict(x), big.predict(x))
    print("done")
"""


def test_a_full_disk_during_save_is_an_oserror_naming_the_path_and_the_process_goes_on(tmp_path):
    result = _run(_FULL_DISK, str(tmp_path))
    path = str(tmp_path / "model.h5")
    expected = f"error OSError {errno.ENOSPC} [Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}: {path!r}"
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert result.stdout.splitlines() == [expected] * 3 + ["done"], result.stdout + result.stderr
    assert result.stderr == ""


_SIZE_LIMIT = """
    import os, resource, sys
    import numpy as np
    from neuro import Dense, Network

    folder = sys.argv[1]
    path = os.path.join(folder, "model.h5")
    small = Network((5,), "mse", "sgd", seed=0)
    small.add(Dense(2))
    small.save(path)
    before = open(path, "rb").read()
    big = Network((5,), "mse", "adam", seed=1)
    big.add(Dense(300, "tanh")).add(Dense(2))
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 4096, resource.RLIM_INFINITY))
    for attempt in range(3):
        try:
            big.save(path)
        except OSError as exc:
            print("error", type(exc).__name__, exc.errno, str(exc))
        assert open(path, "rb").read() == before, "the old file changed"
        assert sorted(os.listdir(folder)) == ["model.h5"], os.listdir(folder)
    for i in range(3):  # files within the limit are still written, and the process exits cleanly
        small.save(os.path.join(folder, f"small{i}.h5"))
    assert np.array_equal(Network.load(os.path.join(folder, "small2.h5")).predict(np.ones((1, 5))),
                          small.predict(np.ones((1, 5))))
    print("done")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE as Linux applies it")
def test_a_file_size_limit_during_save_is_an_oserror_naming_the_path_and_the_process_goes_on(tmp_path):
    result = _run(_SIZE_LIMIT, str(tmp_path))
    path = str(tmp_path / "model.h5")
    expected = f"error OSError {errno.EFBIG} [Errno {errno.EFBIG}] {os.strerror(errno.EFBIG)}: {path!r}"
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert result.stdout.splitlines() == [expected] * 3 + ["done"], result.stdout + result.stderr
    assert result.stderr == ""


def test_the_file_image_is_what_hdf5_writes_to_disk(tmp_path):
    """Building the file in memory changes nothing in the file: it loads and predicts identically."""
    net = _net()
    net.fit(np.ones((4, 5)), np.zeros((4, 2)), verbose=0)
    net.save(tmp_path / "m.h5")
    loaded = Network.load(tmp_path / "m.h5")
    x = np.linspace(-1, 1, 10).reshape(2, 5)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    assert loaded.optimizer.iterations == 1
    assert sorted(os.listdir(tmp_path)) == ["m.h5"]


# -- a path that names a folder -------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["/", "//", "/."])
def test_a_path_ending_in_a_separator_is_refused(tmp_path, suffix):
    target = str(tmp_path / "results") + suffix
    with pytest.raises(IsADirectoryError, match=r"names a folder; give a file name\): '.*results"):
        _net().save(target)
    assert os.listdir(tmp_path) == []
    (tmp_path / "results").write_bytes(b"old")  # an existing file of that name is not replaced either
    with pytest.raises(IsADirectoryError, match="ends with a separator"):
        atomic_write(target, lambda tmp: None)
    assert (tmp_path / "results").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["results"]


def test_a_folder_with_a_trailing_separator_keeps_the_plain_message(tmp_path):
    (tmp_path / "d").mkdir()
    target = str(tmp_path / "d") + "/"
    with pytest.raises(IsADirectoryError, match=rf"^\[Errno 21\] Is a directory: '{target}'$"):
        _net().save(target)
    assert os.listdir(tmp_path / "d") == [] and not [n for n in os.listdir(tmp_path) if TMP_SUFFIX in n]


# -- loading while another process saves ----------------------------------------------------------------------
def test_a_path_replaced_between_the_check_and_the_open_is_opened_again(tmp_path, monkeypatch):
    """Deterministic: the file is atomically replaced right after open_model_file checked it."""
    path = tmp_path / "m.h5"
    old, new = _net(30), _net(7)
    old.save(path)
    new.save(tmp_path / "new.h5")
    real_stat = os.stat
    swaps = {"left": 1}

    def stat_then_replace(p, *args, **kwargs):
        st = real_stat(p, *args, **kwargs)
        if swaps["left"] and os.fspath(p) == str(path):
            swaps["left"] -= 1
            os.replace(tmp_path / "new.h5", path)  # what a save in another process does
        return st

    monkeypatch.setattr(os, "stat", stat_then_replace)
    loaded = Network.load(path)
    monkeypatch.undo()
    assert swaps["left"] == 0
    assert loaded.layers[0].units == 7  # the new file, whole
    np.testing.assert_array_equal(loaded.predict(np.ones((1, 5))), new.predict(np.ones((1, 5))))


def test_a_path_replaced_at_every_attempt_is_refused_after_a_bounded_number_of_tries(tmp_path, monkeypatch):
    path = tmp_path / "m.h5"
    _net().save(path)
    real_stat = os.stat
    copies = [tmp_path / f"c{i}.h5" for i in range(h5s.OPEN_ATTEMPTS)]
    for c in copies:
        _net().save(c)
    calls = {"n": 0}

    def always_replaced(p, *args, **kwargs):
        st = real_stat(p, *args, **kwargs)
        if os.fspath(p) == str(path) and calls["n"] < len(copies):
            os.replace(copies[calls["n"]], path)
            calls["n"] += 1
        return st

    monkeypatch.setattr(os, "stat", always_replaced)
    with pytest.raises(
        ModelFileError, match=f"was replaced by another file while it was being opened, {h5s.OPEN_ATTEMPTS} times"
    ):
        Network.load(path)


_SAVER = """
    import sys, time
    from neuro import Dense, Network

    path, seconds = sys.argv[1], float(sys.argv[2])
    nets = []
    for width in (30, 7):
        net = Network((5,), "mse", "adam", seed=0)
        net.add(Dense(width, "tanh")).add(Dense(2))
        nets.append(net)
    print("ready", flush=True)
    start, i = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        nets[i % 2].save(path)
        i += 1
    print(i)
"""


def test_loads_while_another_process_saves_over_the_path_see_the_old_or_the_new_file(tmp_path):
    path = tmp_path / "m.h5"
    _net().save(path)
    saver = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_SAVER), str(path), "2.5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert saver.stdout.readline().strip() == "ready"
        widths, loads = set(), 0
        start = time.perf_counter()
        while time.perf_counter() - start < 2.0:
            widths.add(Network.load(path).layers[0].units)  # never a ModelFileError
            loads += 1
    finally:
        saves = int(saver.communicate(timeout=60)[0].strip() or 0)
    assert saver.returncode == 0
    assert widths <= {30, 7} and loads > 20 and saves > 20, (widths, loads, saves)
