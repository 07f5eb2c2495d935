"""neuro._atomic.atomic_write: the old file or the complete new one; permissions, symlinks, names, errors."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import signal
import stat
import time

import h5py
import numpy as np
import pytest

from neuro import _atomic
from neuro._atomic import TMP_SUFFIX, atomic_write, temp_name_pattern

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def write_bytes(data: bytes):
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return write


def write_h5(value: float):
    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f["x"] = np.full((3,), value)

    return write


def read_h5(path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["x"][()]


def leftovers(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(TMP_SUFFIX))


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def alarm():
    """Fail a test that blocks (a named pipe opened for writing) instead of hanging the run."""

    def on_alarm(signum, frame):
        raise TimeoutError("blocked")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------------------------------------------
# the ordinary path


def test_creates_a_new_file_with_the_umask_default(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "m.h5", write_h5(1.0))
    finally:
        os.umask(old)
    assert read_h5(tmp_path / "m.h5").tolist() == [1.0, 1.0, 1.0]
    assert stat.S_IMODE(os.stat(tmp_path / "m.h5").st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_replaces_an_existing_file(tmp_path, umask_022):
    target = tmp_path / "m.h5"
    atomic_write(target, write_h5(1.0))
    atomic_write(str(target), write_h5(2.0))
    assert read_h5(target).tolist() == [2.0, 2.0, 2.0]
    assert sorted(os.listdir(tmp_path)) == ["m.h5"]


def test_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    atomic_write("rel.h5", write_h5(3.0))
    assert read_h5(tmp_path / "rel.h5").tolist() == [3.0, 3.0, 3.0]


def test_temporary_file_is_private_beside_the_target_and_named_by_the_pattern(tmp_path):
    seen = {}

    def write(tmp: str) -> None:
        seen["tmp"] = tmp
        seen["mode"] = stat.S_IMODE(os.stat(tmp).st_mode)
        seen["size"] = os.path.getsize(tmp)
        write_h5(1.0)(tmp)

    atomic_write(tmp_path / "m.h5", write)
    assert os.path.dirname(seen["tmp"]) == str(tmp_path)
    assert seen["mode"] == 0o600 and seen["size"] == 0
    assert re.fullmatch(r"\.m\.h5\.[0-9a-f]{12}\.neuro-tmp", os.path.basename(seen["tmp"]))
    assert temp_name_pattern(tmp_path / "m.h5").fullmatch(os.path.basename(seen["tmp"]))
    assert not os.path.exists(seen["tmp"])


def test_fsyncs_the_file_then_the_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(_atomic.os, "fsync", fsync)
    atomic_write(tmp_path / "m.h5", write_h5(1.0))
    assert synced == ["file", "dir"]


# ---------------------------------------------------------------------------------------------------------
# permissions, owner, symlinks


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644, 0o660, 0o604])
def test_overwriting_keeps_the_permission_bits(tmp_path, umask_022, mode):
    target = tmp_path / "m.h5"
    atomic_write(target, write_h5(1.0))
    os.chmod(target, mode)
    atomic_write(target, write_h5(2.0))
    assert stat.S_IMODE(os.stat(target).st_mode) == mode
    assert read_h5(target)[0] == 2.0


def test_set_user_id_bits_are_not_carried_over(tmp_path):
    target = tmp_path / "m.h5"
    atomic_write(target, write_h5(1.0))
    os.chmod(target, 0o4755)
    atomic_write(target, write_h5(2.0))
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755


@pytest.mark.skipif(not IS_ROOT, reason="changing a file's owner needs root")
def test_root_overwriting_keeps_owner_and_group(tmp_path):
    target = tmp_path / "m.h5"
    atomic_write(target, write_h5(1.0))
    os.chown(target, 65534, 65534)
    atomic_write(target, write_h5(2.0))
    st = os.stat(target)
    assert (st.st_uid, st.st_gid) == (65534, 65534)


def test_writes_through_a_symlink_and_keeps_it(tmp_path):
    real_dir = tmp_path / "store"
    real_dir.mkdir()
    real = real_dir / "model-v1.h5"
    atomic_write(real, write_h5(1.0))
    os.chmod(real, 0o600)
    link = tmp_path / "latest.h5"
    os.symlink(os.path.relpath(real, tmp_path), link)
    atomic_write(link, write_h5(2.0))
    assert os.path.islink(link)
    assert os.readlink(link) == os.path.join("store", "model-v1.h5")
    assert read_h5(real).tolist() == [2.0, 2.0, 2.0]
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o600
    assert leftovers(tmp_path) == [] and leftovers(real_dir) == []


def test_chain_of_symlinks_is_followed_to_the_end(tmp_path):
    real = tmp_path / "real.h5"
    atomic_write(real, write_h5(1.0))
    os.symlink("real.h5", tmp_path / "a.h5")
    os.symlink("a.h5", tmp_path / "b.h5")
    atomic_write(tmp_path / "b.h5", write_h5(5.0))
    assert os.path.islink(tmp_path / "a.h5") and os.path.islink(tmp_path / "b.h5")
    assert read_h5(real)[0] == 5.0


def test_dangling_symlink_creates_its_target_as_open_would(tmp_path):
    os.symlink("made.h5", tmp_path / "link.h5")
    atomic_write(tmp_path / "link.h5", write_h5(4.0))
    assert os.path.islink(tmp_path / "link.h5")
    assert read_h5(tmp_path / "made.h5")[0] == 4.0


def test_symlink_loop_is_an_error_naming_the_target(tmp_path):
    os.symlink("loop2.h5", tmp_path / "loop1.h5")
    os.symlink("loop1.h5", tmp_path / "loop2.h5")
    target = str(tmp_path / "loop1.h5")
    with pytest.raises(OSError, match=re.escape(repr(target))) as info:
        atomic_write(target, write_h5(1.0))
    assert info.value.errno == errno.ELOOP
    assert leftovers(tmp_path) == []


def test_write_protected_file_is_refused(tmp_path):
    target = tmp_path / "m.h5"
    atomic_write(target, write_h5(1.0))
    os.chmod(target, 0o444)
    with pytest.raises(PermissionError, match=rf"Permission denied.*: {re.escape(repr(str(target)))}$"):
        atomic_write(target, write_h5(2.0))
    assert read_h5(target)[0] == 1.0
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o444
    assert leftovers(tmp_path) == []


def test_write_protected_check_for_an_ordinary_user_uses_access(tmp_path, monkeypatch):
    target = tmp_path / "m.h5"
    atomic_write(target, write_h5(1.0))
    monkeypatch.setattr(_atomic, "_is_root", lambda: False)
    monkeypatch.setattr(_atomic, "_access", lambda p, mode: p != str(target))
    with pytest.raises(PermissionError, match=rf"\[Errno 13\] Permission denied: {re.escape(repr(str(target)))}"):
        atomic_write(target, write_h5(2.0))
    assert read_h5(target)[0] == 1.0


def test_read_only_folder_for_an_ordinary_user_names_the_target(tmp_path, monkeypatch):
    target = tmp_path / "m.h5"
    monkeypatch.setattr(_atomic, "_is_root", lambda: False)
    monkeypatch.setattr(_atomic, "_access", lambda p, mode: p != str(tmp_path))
    with pytest.raises(PermissionError, match=r"folder cannot be written\): " + re.escape(repr(str(target)))):
        atomic_write(target, write_h5(1.0))
    assert os.listdir(tmp_path) == []


def test_failure_to_create_the_temporary_file_names_the_target(tmp_path, monkeypatch):
    """A read-only file system, or a folder root may not write: the error names the target, not the temp."""
    real_open = os.open

    def refusing_open(name, flags, *args, **kwargs):
        if str(name).endswith(TMP_SUFFIX) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", name)
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(_atomic.os, "open", refusing_open)
    target = str(tmp_path / "m.h5")
    with pytest.raises(OSError, match=rf"^\[Errno {errno.EROFS}\] Read-only file system: {re.escape(repr(target))}$"):
        atomic_write(target, write_h5(1.0))


def _run_as_nobody(fn):
    """Run fn() in a forked child with uid/gid 65534; return the repr of what it raised (or 'ok')."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                fn()
                result = "ok"
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                result = f"{type(exc).__name__}: {exc}"
            os.write(write_end, result.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


@pytest.mark.skipif(not IS_ROOT, reason="dropping to another user needs root")
def test_real_ordinary_user_read_only_folder_and_write_protected_file(tmp_path):
    import tempfile

    base = tempfile.mkdtemp(prefix="neuro-atomic-")
    try:
        os.chmod(base, 0o755)  # root's folder: nobody may enter, not write
        target = os.path.join(base, "m.h5")
        result = _run_as_nobody(lambda: atomic_write(target, write_bytes(b"new")))
        assert result == f"PermissionError: [Errno 13] Permission denied (the folder cannot be written): {target!r}"

        os.chmod(base, 0o777)
        with open(target, "wb") as fh:
            fh.write(b"old")
        os.chmod(target, 0o644)  # root's file: nobody may not write it
        result = _run_as_nobody(lambda: atomic_write(target, write_bytes(b"new")))
        assert result == f"PermissionError: [Errno 13] Permission denied: {target!r}"
        with open(target, "rb") as fh:
            assert fh.read() == b"old"
        assert leftovers(base) == []

        os.chmod(target, 0o666)  # now nobody may write it: replaced, mode kept
        assert _run_as_nobody(lambda: atomic_write(target, write_bytes(b"new"))) == "ok"
        with open(target, "rb") as fh:
            assert fh.read() == b"new"
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o666
    finally:
        for name in os.listdir(base):
            os.unlink(os.path.join(base, name))
        os.rmdir(base)


# ---------------------------------------------------------------------------------------------------------
# errors name the target


def test_missing_folder_names_the_target(tmp_path):
    target = str(tmp_path / "no" / "such" / "m.h5")
    with pytest.raises(FileNotFoundError, match=rf"^\[Errno 2\] No such file or directory: {re.escape(repr(target))}$"):
        atomic_write(target, write_h5(1.0))


def test_folder_component_that_is_a_file_names_the_target(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    target = str(tmp_path / "file" / "m.h5")
    with pytest.raises(NotADirectoryError, match=re.escape(repr(target))):
        atomic_write(target, write_h5(1.0))


def test_target_that_is_a_folder_names_the_target(tmp_path):
    (tmp_path / "d.h5").mkdir()
    for target in (str(tmp_path / "d.h5"), str(tmp_path / "d.h5") + "/"):
        with pytest.raises(IsADirectoryError, match=rf"^\[Errno 21\] Is a directory: {re.escape(repr(target))}$"):
            atomic_write(target, write_h5(1.0))
    assert os.listdir(tmp_path / "d.h5") == []
    assert leftovers(tmp_path) == []


def test_target_that_is_a_named_pipe_is_refused_without_blocking(tmp_path, alarm):
    target = str(tmp_path / "pipe.h5")
    os.mkfifo(target)
    with pytest.raises(OSError, match=rf"not a regular file; refusing to replace it: {re.escape(repr(target))}"):
        atomic_write(target, write_h5(1.0))
    assert stat.S_ISFIFO(os.stat(target).st_mode)


def test_writer_errors_are_rewritten_to_name_the_target(tmp_path):
    target = str(tmp_path / "m.h5")

    def write(tmp: str) -> None:
        raise OSError(errno.ENOSPC, f"No space left on device while writing {tmp}", tmp)

    with pytest.raises(OSError, match="No space left") as info:
        atomic_write(target, write)
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == target
    assert TMP_SUFFIX not in str(info.value) and target in str(info.value)
    assert leftovers(tmp_path) == []


def test_h5py_errors_in_the_writer_name_the_target(tmp_path):
    target = str(tmp_path / "m.h5")

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f["x"] = 1.0
            f["x"] = 2.0  # h5py: name already exists

    with pytest.raises(Exception) as info:  # h5py's own type (ValueError/OSError depending on version)
        atomic_write(target, write)
    assert TMP_SUFFIX not in str(info.value)

    def write_elsewhere(tmp: str) -> None:
        h5py.File(os.path.join(tmp, "inner.h5"), "w")  # tmp is a file: h5py names it in its message

    with pytest.raises(OSError) as info:
        atomic_write(target, write_elsewhere)
    assert TMP_SUFFIX not in str(info.value)
    assert os.path.join(target, "inner.h5") in str(info.value)
    assert leftovers(tmp_path) == []


def test_chained_causes_are_rewritten_too(tmp_path):
    target = str(tmp_path / "m.h5")

    def write(tmp: str) -> None:
        try:
            raise FileNotFoundError(errno.ENOENT, "gone", tmp)
        except OSError as exc:
            raise RuntimeError(f"could not write {tmp}") from exc

    with pytest.raises(RuntimeError, match=rf"^could not write {re.escape(target)}$") as info:
        atomic_write(target, write)
    assert info.value.__cause__.filename == target


# ---------------------------------------------------------------------------------------------------------
# interrupted saves


def _fail_after_partial_bytes(tmp: str) -> None:
    with open(tmp, "wb") as fh:
        fh.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 1000)
    raise ValueError("failed midway")


def _fail_after_complete_h5(tmp: str) -> None:
    write_h5(9.0)(tmp)
    raise ValueError("failed after writing")


def _fail_inside_h5(tmp: str) -> None:
    with h5py.File(tmp, "w") as f:
        f["x"] = np.full((3,), 9.0)
        raise ValueError("failed inside h5py")


def _interrupt_inside_h5(tmp: str) -> None:
    with h5py.File(tmp, "w") as f:
        f["x"] = np.full((3,), 9.0)
        raise KeyboardInterrupt


def _fail_at_once(tmp: str) -> None:
    raise ValueError("failed at once")


def _writer_deletes_its_file(tmp: str) -> None:
    os.unlink(tmp)


@pytest.mark.parametrize(
    "write, error",
    [
        (_fail_at_once, ValueError),
        (_fail_after_partial_bytes, ValueError),
        (_fail_inside_h5, ValueError),
        (_fail_after_complete_h5, ValueError),
        (_interrupt_inside_h5, KeyboardInterrupt),
        (_writer_deletes_its_file, FileNotFoundError),
    ],
)
def test_interrupted_write_leaves_the_old_file_and_nothing_else(tmp_path, write, error):
    target = tmp_path / "m.h5"
    atomic_write(target, write_h5(1.0))
    os.chmod(target, 0o640)
    before = os.stat(target)
    with pytest.raises(error):
        atomic_write(target, write)
    assert read_h5(target).tolist() == [1.0, 1.0, 1.0]
    after = os.stat(target)
    assert (after.st_ino, after.st_mtime_ns, stat.S_IMODE(after.st_mode)) == (
        before.st_ino,
        before.st_mtime_ns,
        0o640,
    )
    assert sorted(os.listdir(tmp_path)) == ["m.h5"]


@pytest.mark.parametrize("step", ["fsync", "fchmod", "replace"])
def test_failure_after_the_writer_leaves_the_old_file_and_nothing_else(tmp_path, monkeypatch, step):
    target = tmp_path / "m.h5"
    atomic_write(target, write_h5(1.0))

    def fail(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error", args[0] if isinstance(args[0], str) else None)

    monkeypatch.setattr(_atomic.os, step, fail)
    with pytest.raises(OSError, match="Input/output error") as info:
        atomic_write(target, write_h5(2.0))
    assert TMP_SUFFIX not in str(info.value)
    monkeypatch.undo()
    assert read_h5(target)[0] == 1.0
    assert sorted(os.listdir(tmp_path)) == ["m.h5"]


def test_interrupt_during_replace_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "m.h5"
    atomic_write(target, write_h5(1.0))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_atomic.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, write_h5(2.0))
    monkeypatch.undo()
    assert read_h5(target)[0] == 1.0
    assert sorted(os.listdir(tmp_path)) == ["m.h5"]


# ---------------------------------------------------------------------------------------------------------
# long names


def _name_max(folder) -> int:
    return os.pathconf(folder, "PC_NAME_MAX")


@pytest.mark.parametrize("length", [200, 231, 232, 246, 255])
def test_long_legal_names_work(tmp_path, length):
    name_max = _name_max(tmp_path)
    if length > name_max:
        pytest.skip(f"this file system allows {name_max} bytes")
    name = "m" * (length - 3) + ".h5"
    seen = {}

    def write(tmp: str) -> None:
        seen["tmp"] = os.path.basename(tmp)
        write_h5(float(length))(tmp)

    atomic_write(tmp_path / name, write)
    assert read_h5(tmp_path / name)[0] == float(length)
    assert len(seen["tmp"].encode()) <= name_max
    assert temp_name_pattern(tmp_path / name).fullmatch(seen["tmp"])
    assert sorted(os.listdir(tmp_path)) == [name]


def test_long_names_of_multibyte_characters_fit_in_bytes(tmp_path):
    name = "é" * 120 + ".h5"  # 243 bytes
    seen = {}

    def write(tmp: str) -> None:
        seen["tmp"] = os.path.basename(tmp)
        write_bytes(b"x")(tmp)

    atomic_write(tmp_path / name, write)
    assert len(seen["tmp"].encode()) <= _name_max(tmp_path)
    assert (tmp_path / name).read_bytes() == b"x"


def test_different_long_names_get_different_temporary_prefixes(tmp_path):
    a = temp_name_pattern(tmp_path / ("m" * 240 + "a.h5"))
    b = temp_name_pattern(tmp_path / ("m" * 240 + "b.h5"))
    assert a.pattern != b.pattern


def test_too_long_name_is_an_error_naming_the_target(tmp_path):
    target = str(tmp_path / ("m" * (_name_max(tmp_path) + 1)))
    with pytest.raises(OSError, match=rf"File name too long: {re.escape(repr(target))}") as info:
        atomic_write(target, write_bytes(b"x"))
    assert info.value.errno == errno.ENAMETOOLONG
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------------------
# stale temporary files


def _age(path, seconds: float = 3600) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past), follow_symlinks=False)


def test_stale_temporary_files_of_the_same_target_are_removed(tmp_path):
    target = tmp_path / "m.h5"
    stale = [tmp_path / ".m.h5.0123456789ab.neuro-tmp", tmp_path / ".m.h5.ffffffffffff.neuro-tmp"]
    others = [
        ".m.h5.0123456789ab.neuro-tmp.bak",  # not the exact pattern
        ".m.h5.0123456789AB.neuro-tmp",  # upper-case hex: not neuro's
        ".m.h5.0123456789a.neuro-tmp",  # 11 digits
        ".m.h5.xyz.neuro-tmp",
        "m.h5.0123456789ab.neuro-tmp",  # no leading dot
        ".other.h5.0123456789ab.neuro-tmp",  # another target
        ".m.h5.0123456789ab.0123456789ab.neuro-tmp",  # the temp of target 'm.h5.0123456789ab'
        ".m.h5.0123456789ab.tmp",  # the old naming
        "m.h5.bak",
    ]
    for path in stale:
        path.write_bytes(b"\0" * 1000)
        _age(path)
    for name in others:
        (tmp_path / name).write_bytes(b"keep")
        _age(tmp_path / name)
    atomic_write(target, write_h5(1.0))
    assert sorted(os.listdir(tmp_path)) == sorted(others + ["m.h5"])


def test_stale_temporary_files_of_a_long_target_name_are_removed(tmp_path):
    target = tmp_path / ("m" * 243 + ".h5")
    pattern = temp_name_pattern(target)
    prefix = _atomic._temp_prefix(target.name, _name_max(tmp_path))
    assert prefix.startswith("m" * 200) and re.fullmatch(r"m+~[0-9a-f]{8}", prefix)
    stale = tmp_path / f".{prefix}.0123456789ab.neuro-tmp"
    assert pattern.fullmatch(stale.name) and len(stale.name.encode()) <= _name_max(tmp_path)
    stale.write_bytes(b"\0")
    _age(stale)
    atomic_write(target, write_bytes(b"new"))
    assert sorted(os.listdir(tmp_path)) == [target.name]


def test_recent_locked_or_linked_temporary_files_are_left_alone(tmp_path):
    target = tmp_path / "m.h5"
    recent = tmp_path / ".m.h5.aaaaaaaaaaaa.neuro-tmp"  # maybe still being written
    recent.write_bytes(b"r")
    locked = tmp_path / ".m.h5.bbbbbbbbbbbb.neuro-tmp"  # HDF5 holds a lock on a file it writes
    locked.write_bytes(b"l")
    _age(locked)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"v")
    link = tmp_path / ".m.h5.cccccccccccc.neuro-tmp"  # a symlink is never neuro's
    os.symlink(victim, link)
    _age(link)
    folder = tmp_path / ".m.h5.dddddddddddd.neuro-tmp"
    folder.mkdir()
    _age(folder)
    fd = os.open(locked, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        atomic_write(target, write_h5(1.0))
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["m.h5", recent.name, locked.name, link.name, folder.name, "victim.txt"]
    )
    assert victim.read_bytes() == b"v"


@pytest.mark.skipif(
    os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() == "FALSE", reason="HDF5 file locking is turned off"
)
def test_a_file_held_open_by_an_h5py_writer_is_not_removed(tmp_path):
    target = tmp_path / "m.h5"
    busy = tmp_path / ".m.h5.eeeeeeeeeeee.neuro-tmp"
    with h5py.File(busy, "w") as f:  # HDF5 locks the file it writes (file locking on by default)
        f["x"] = 1.0
        _age(busy)
        f.flush()
        _age(busy)
        atomic_write(target, write_bytes(b"new"))
        assert busy.exists()
    _age(busy)
    atomic_write(target, write_bytes(b"newer"))  # closed and old: now it is stale
    assert sorted(os.listdir(tmp_path)) == ["m.h5"]


def test_killed_save_leftover_is_removed_by_the_next_save(tmp_path):
    """A save killed with SIGKILL in the middle of writing leaves its temporary file; the next save cleans it."""
    target = tmp_path / "m.h5"
    atomic_write(target, write_h5(1.0))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child

        def write(tmp: str) -> None:
            with h5py.File(tmp, "w") as f:
                f["x"] = np.zeros(1000)
                os.write(write_end, b"x")
                time.sleep(60)

        try:
            atomic_write(target, write)
        finally:
            os._exit(1)
    os.close(write_end)
    assert os.read(read_end, 1) == b"x"
    os.close(read_end)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    left = leftovers(tmp_path)
    assert len(left) == 1 and temp_name_pattern(target).fullmatch(left[0])
    assert read_h5(target)[0] == 1.0  # the old file is intact
    _age(tmp_path / left[0])  # the kill happened a while ago
    atomic_write(target, write_h5(2.0))
    assert sorted(os.listdir(tmp_path)) == ["m.h5"]
    assert read_h5(target)[0] == 2.0


def test_an_interrupt_as_the_temporary_file_is_opened_leaves_no_file_and_no_descriptor(tmp_path, monkeypatch):
    """A Ctrl-C handled as os.open returned (before the try that cleans up) left the temporary file and its
    open descriptor behind (about one interrupted save in 150)."""
    target = tmp_path / "model.h5"
    atomic_write(target, write_bytes(b"old"))
    real_open = os.open

    def open_then_interrupt(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if str(path).endswith(TMP_SUFFIX):
            raise KeyboardInterrupt  # the signal, delivered as the call returns
        return fd

    fds_before = set(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "open", open_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, write_bytes(b"new"))
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.h5"]
    assert target.read_bytes() == b"old"
    leaked = set(os.listdir("/proc/self/fd")) - fds_before
    assert not [os.readlink(f"/proc/self/fd/{fd}") for fd in leaked if os.path.exists(f"/proc/self/fd/{fd}")]


def test_a_failing_writer_keeps_its_own_descriptors_and_no_other_is_closed(tmp_path):
    """The leaked-descriptor cleanup ran on every failure and closed the writer's own still-open descriptor
    of the temporary file: the writer's file object then closed that number again, by then another file's
    (h5py flushed its metadata into a user's log)."""
    kept = []

    def writer(tmp):
        kept.append(open(tmp, "wb"))  # noqa: SIM115 - left open, as a writer failing without `with`
        raise ValueError("writer failed")

    with pytest.raises(ValueError, match="writer failed"):
        atomic_write(tmp_path / "model.h5", writer)
    fd = kept[0].fileno()
    os.fstat(fd)  # still the writer's: not closed under it
    kept[0].close()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
