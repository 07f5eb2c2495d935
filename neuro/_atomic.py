"""Replacing a file atomically: the old file or the complete new one, never a half-written one or none.

:func:`atomic_write` lets a writer fill a temporary file beside the target, flushes it to disk, renames it
over the target in one step and flushes the folder, so that a crash or a power loss at any moment leaves
either the previous file or the new one. It behaves like ``open(path, "w")`` where that matters to users:

* a symlink is written through: its target is replaced and the link keeps pointing at the new file (as
  Keras and NumPy do);
* an existing file keeps its permission bits (``0o600`` stays ``0o600``; set-user-ID, set-group-ID and
  sticky bits are dropped) and, as far as the caller may, its owner and group; a new file gets
  ``0o666 & ~umask``. While it is written, the temporary file is ``0o600``, so a private model is never
  readable by others;
* a write-protected file is refused with ``PermissionError``. For an ordinary user this is
  ``os.access(target, W_OK)``; **root** can write any file, so as root a file without any write bit
  (``chmod a-w``) is refused instead, which is what a user who protected a file means;
* a missing folder, a folder that cannot be written and a target that is a folder raise
  ``FileNotFoundError``, ``PermissionError`` and ``IsADirectoryError``; so does a path that ends with a
  separator (``"results/"``) or whose last component is ``.`` or ``..``: it names a folder, and is never
  taken for the file ``results``. Every error names the target path the caller gave, never the temporary
  file (the writer's own exceptions are rewritten to name the target).

:func:`atomic_write_bytes` writes bytes made beforehand (a model file's image built in memory) with plain
file I/O, so that a full disk or a file-size limit is an ``OSError`` (``ENOSPC``, ``EFBIG``) naming the
target, raised by Python itself: no library ever sees the failing write (HDF5 is left in a broken state by
one, and crashes the process later).

Unlike ``open``, replacing a file needs write permission on its folder, not on the file alone.

The temporary file is ``.<name>.<12 hex digits>.neuro-tmp`` in the target's folder (same file system, so
the rename is atomic). ``<name>`` is the target's name, shortened and followed by ``~`` and 8 hex digits of
its hash when the whole temporary name would exceed the file system's name limit, so that any legal target
name works. A save killed before it could clean up (``SIGKILL``, a crash, a power loss) leaves such a file;
the next save to the same path removes every file of exactly that pattern for that target, unless it is
still being written: a file that another process holds an HDF5 write lock on (``flock``), or that was
modified in the last :data:`STALE_AFTER_S` seconds, is left alone.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import time
from collections.abc import Callable

__all__ = ["STALE_AFTER_S", "TMP_SUFFIX", "atomic_write", "atomic_write_bytes", "temp_name_pattern"]

TMP_SUFFIX = ".neuro-tmp"
"""The suffix of every temporary file neuro writes."""
STALE_AFTER_S = 10.0
"""Seconds after its last modification from which a leftover temporary file counts as abandoned."""

_RANDOM_HEX = 12
_WRITE_BLOCK = 1 << 24  # bytes handed to one os.write call
_HASH_HEX = 8
_DEFAULT_NAME_MAX = 255

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Write a file by calling ``write(tmp_path)`` and renaming the result over ``path`` in one step.

    ``write`` must create or overwrite the file it is given (for example with ``h5py.File(tmp_path, "w")``);
    it is called with an existing, empty file. When ``write`` or any later step raises -- any exception,
    ``KeyboardInterrupt`` included --, the temporary file is removed, the previous file at ``path`` is left
    untouched and the exception propagates (its message naming ``path``, not the temporary file).

    Args:
        path: the file to create or replace; a symlink is written through to its target.
        write: a callable that writes the complete new contents to the path it is given.

    Raises:
        FileNotFoundError: when the folder of ``path`` does not exist.
        NotADirectoryError: when a component of the folder is not a folder.
        IsADirectoryError: when ``path`` is a folder.
        PermissionError: when the folder cannot be written, or ``path`` is write-protected (see the module's
            docstring for root).
        OSError: when ``path`` exists but is not a regular file (a device, a named pipe), when its name is
            too long, or when writing fails (disk full, ...).
    """
    shown = os.fsdecode(os.fspath(path))
    target = os.path.realpath(shown)
    folder, name = os.path.split(target)
    folder = folder or "."
    existing = _preflight(target, folder, name, shown)
    name_max = _name_max(folder)
    prefix = _temp_prefix(name, name_max)
    _remove_stale(folder, prefix)

    made: list[str] = []  # the temporary file, once its name is chosen (created or about to be)
    held = False  # whether os.open's descriptor reached this frame (and was closed here)
    try:
        os.close(_create_temp(folder, prefix, shown, made))
        held = True
        tmp = made[0]
        write(tmp)
        _finish_temp(tmp, existing, shown)
        os.replace(tmp, target)
    except BaseException as exc:
        if made:
            if not held:  # an interrupt as os.open returned: its descriptor reached no one (and no writer
                _close_leaked(made[0])  # has opened the file yet, so every descriptor of it is that one)
            try:
                os.unlink(made[0])
            except FileNotFoundError:
                pass
            except OSError:  # pragma: no cover - nothing more can be done; the original error matters
                pass
            _scrub(exc, made[0], shown)
        raise
    _fsync_dir(folder, shown)


def atomic_write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> None:
    """Replace ``path`` atomically by a file holding exactly ``data``, written with plain file I/O.

    Everything :func:`atomic_write` promises holds (permissions, symlinks, the old file kept on any error,
    no temporary file left). The bytes are written with ``os.write`` in blocks, so a full disk or a
    file-size limit (``RLIMIT_FSIZE``) raises ``OSError`` with ``errno`` ``ENOSPC`` or ``EFBIG`` naming
    ``path``, and nothing else in the process is affected.

    Args:
        path: the file to create or replace; a symlink is written through to its target.
        data: the complete new contents.

    Raises:
        FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError: as :func:`atomic_write`.
        OSError: when writing fails (``ENOSPC``: the disk is full, ``EFBIG``: the file-size limit, ``EIO``),
            naming ``path``.
    """
    shown = os.fsdecode(os.fspath(path))
    view = memoryview(data).cast("B")

    def write(tmp: str) -> None:
        flags = os.O_WRONLY | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(tmp, flags)
        except OSError as exc:
            raise _error(exc.errno or errno.EIO, shown, exc.strerror) from None
        try:
            done = 0
            while done < len(view):
                n = os.write(fd, view[done : done + _WRITE_BLOCK])
                if n <= 0:  # pragma: no cover - a write that makes no progress: the device is full
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                done += n
        except OSError as exc:
            raise _error(exc.errno or errno.EIO, shown, exc.strerror) from None
        finally:
            try:
                os.close(fd)
            except OSError as exc:  # pragma: no cover - NFS reports a failed write at close
                raise _error(exc.errno or errno.EIO, shown, exc.strerror) from None

    atomic_write(path, write)


def temp_name_pattern(path: str | os.PathLike) -> re.Pattern[str]:
    """The pattern of the names of the temporary files :func:`atomic_write` uses for ``path``.

    Args:
        path: a target path (symlinks are resolved, as :func:`atomic_write` does).

    Returns:
        A compiled pattern that matches exactly ``.<prefix>.<12 hex digits>.neuro-tmp`` for this target.
    """
    target = os.path.realpath(os.fsdecode(os.fspath(path)))
    folder, name = os.path.split(target)
    return _pattern(_temp_prefix(name, _name_max(folder or ".")))


# ---------------------------------------------------------------------------------------------------------


def _error(code: int, shown: str, detail: str | None = None) -> OSError:
    """An OSError of the subclass ``code`` maps to (FileNotFoundError, PermissionError, ...), naming shown."""
    return OSError(code, detail or os.strerror(code), shown)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _access(path: str, mode: int) -> bool:
    if os.access in os.supports_effective_ids:
        return os.access(path, mode, effective_ids=True)
    return os.access(path, mode)


def _names_a_folder(shown: str) -> bool:
    """Whether a path names a folder by its spelling: a trailing separator, or ``.``/``..`` at its end."""
    seps = tuple(c for c in (os.sep, os.altsep) if c)
    return shown.endswith(seps) or os.path.basename(shown) in ("", ".", "..")


def _preflight(target: str, folder: str, name: str, shown: str) -> os.stat_result | None:
    """Check what ``open(path, "w")`` would check; return the existing file's stat, or None."""
    try:
        folder_st = os.stat(folder)
    except OSError as exc:
        raise _error(exc.errno or errno.EIO, shown, exc.strerror) from None
    if not stat.S_ISDIR(folder_st.st_mode):
        raise _error(errno.ENOTDIR, shown)
    if not name:
        raise _error(errno.EISDIR, shown)
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise _error(exc.errno or errno.EIO, shown, exc.strerror) from None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise _error(errno.EISDIR, shown)
    if _names_a_folder(shown):  # "results/": never the file "results"
        raise _error(
            errno.EISDIR,
            shown,
            "Is a directory (the path ends with a separator, '.' or '..', so it names a folder; "
            "give a file name)",
        )
    if existing is not None:
        if not stat.S_ISREG(existing.st_mode):
            raise _error(errno.EINVAL, shown, "not a regular file; refusing to replace it")
        if _is_root():
            if not existing.st_mode & 0o222:
                raise _error(errno.EACCES, shown, "Permission denied (the file is write-protected)")
        elif not _access(target, os.W_OK):
            raise _error(errno.EACCES, shown)
    if len(os.fsencode(name)) > _name_max(folder):
        raise _error(errno.ENAMETOOLONG, shown)
    if not _is_root() and not _access(folder, os.W_OK | os.X_OK):
        raise _error(errno.EACCES, shown, "Permission denied (the folder cannot be written)")
    return existing


def _name_max(folder: str) -> int:
    try:
        value = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return _DEFAULT_NAME_MAX
    return value if isinstance(value, int) and value > 0 else _DEFAULT_NAME_MAX


def _temp_prefix(name: str, name_max: int) -> str:
    """The target-name part of the temporary name, shortened (with a hash) to fit ``name_max`` bytes."""
    budget = name_max - (2 + _RANDOM_HEX + len(TMP_SUFFIX))  # ".<prefix>.<random><suffix>"
    if len(os.fsencode(name)) <= budget:
        return name
    import hashlib  # only for names too long to keep whole: not worth its 2 ms on `import neuro`

    digest = hashlib.blake2b(os.fsencode(name), digest_size=_HASH_HEX // 2).hexdigest()
    keep = max(budget - 1 - _HASH_HEX, 0)
    stem = name
    while len(os.fsencode(stem)) > keep:
        stem = stem[:-1]
    return f"{stem}~{digest}"


def _pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(prefix)}\.[0-9a-f]{{{_RANDOM_HEX}}}{re.escape(TMP_SUFFIX)}", re.DOTALL)


def _remove_stale(folder: str, prefix: str) -> None:
    """Remove this target's abandoned temporary files (exact pattern, regular, ours, unlocked, not recent)."""
    pattern = _pattern(prefix)
    start = f".{prefix}."
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return  # a folder we may write but not list: nothing to clean
    now = time.time()
    for entry in entries:
        if not (entry.name.startswith(start) and pattern.fullmatch(entry.name)):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < STALE_AFTER_S:
            continue
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid() and not _is_root():
            continue
        _remove_if_unlocked(entry.path, st)


def _remove_if_unlocked(path: str, st: os.stat_result) -> None:
    if fcntl is None:  # pragma: no cover - Windows: no locks to ask
        try:
            os.unlink(path)
        except OSError:
            pass
        return
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # a writer (HDF5 locks files it writes) still has it open
        try:
            os.unlink(path)
        except OSError:
            pass
    finally:
        os.close(fd)


def _create_temp(folder: str, prefix: str, shown: str, made: list[str]) -> int:
    """Create a new private temporary file in ``folder`` and return its descriptor; its name is put in
    ``made`` *before* it is created, so that an interrupt arriving as ``os.open`` returns (before anything
    holds the descriptor) still leaves the caller the name to clean up."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(16):
        made[:] = [os.path.join(folder, f".{prefix}.{os.urandom(_RANDOM_HEX // 2).hex()}{TMP_SUFFIX}")]
        try:
            return os.open(made[0], flags, 0o600)
        except FileExistsError:  # another's file: not ours to remove
            made.clear()
            continue
        except OSError as exc:
            made.clear()
            raise _error(exc.errno or errno.EIO, shown, exc.strerror) from None
    raise _error(errno.EEXIST, shown, "could not find a free temporary name")  # pragma: no cover


def _close_leaked(tmp: str) -> None:
    """Close this process's descriptors of the temporary file ``tmp`` (its random name is ours alone): one an
    interrupt left open between ``os.open`` returning and the caller holding it (Linux's ``/proc/self/fd``;
    elsewhere nothing is done)."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return
    for entry in fds:
        try:
            if os.readlink(f"/proc/self/fd/{entry}") == tmp:
                os.close(int(entry))
        except (OSError, ValueError):
            continue


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it (not thread-safe for a moment)
    os.umask(mask)
    return mask


def _finish_temp(tmp: str, existing: os.stat_result | None, shown: str) -> None:
    """Give the written temporary file its final owner and mode, and flush it to disk (errors name shown)."""
    try:
        _finish_temp_fd(tmp, existing)
    except OSError as exc:
        raise _error(exc.errno or errno.EIO, shown, exc.strerror) from None


def _finish_temp_fd(tmp: str, existing: os.stat_result | None) -> None:
    fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if existing is None:
            mode = 0o666 & ~_umask()
        else:
            mode = stat.S_IMODE(existing.st_mode) & 0o777
            current = os.fstat(fd)
            owner = (existing.st_uid, existing.st_gid)
            if hasattr(os, "fchown") and (current.st_uid, current.st_gid) != owner:
                uid = existing.st_uid if _is_root() else -1
                try:
                    os.fchown(fd, uid, existing.st_gid)
                except OSError:
                    pass  # not a member of the file's group: the folder's default group stays
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        else:  # pragma: no cover - Windows
            os.chmod(tmp, mode)
        os.fsync(fd)  # the bytes are on disk before the target's name points at them
    finally:
        os.close(fd)


def _fsync_dir(folder: str, shown: str) -> None:
    """Flush the folder, so that the rename survives a power loss."""
    if not hasattr(os, "O_DIRECTORY"):  # pragma: no cover - Windows: directories cannot be opened
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return  # a folder we may write but not read (mode -wx): nothing to flush with
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EROFS):
            raise _error(exc.errno or errno.EIO, shown, exc.strerror) from None
    finally:
        os.close(fd)


def _scrub(exc: BaseException, tmp: str, shown: str) -> None:
    """Rewrite an exception (and its causes) so that its message names ``shown`` instead of ``tmp``."""
    tmp_base, shown_base = os.path.basename(tmp), os.path.basename(shown)

    def fix(value: object) -> object:
        if isinstance(value, str):
            return value.replace(tmp, shown).replace(tmp_base, shown_base)
        if isinstance(value, bytes):
            return value.replace(os.fsencode(tmp), os.fsencode(shown))
        return value

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        try:
            current.args = tuple(fix(a) for a in current.args)
            if isinstance(current, OSError):
                # only fields that are set: a filename2 set to None would print as "-> None"
                for field in ("filename", "filename2", "strerror"):
                    if getattr(current, field) is not None:
                        setattr(current, field, fix(getattr(current, field)))
        except (AttributeError, TypeError):  # pragma: no cover - an exception with read-only fields
            pass
        current = current.__cause__ or current.__context__
