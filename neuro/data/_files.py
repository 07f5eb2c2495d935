"""Opening data files safely: regular files only, never blocking on a pipe or a device."""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFileError(ValueError):
    """Raised for a path that names a pipe, device, socket or directory instead of a regular file."""


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: str | os.PathLike) -> os.stat_result:
    """Return ``os.stat(path)`` if ``path`` is a regular file (symbolic links followed).

    Args:
        path: the file.

    Returns:
        Its ``stat`` result.

    Raises:
        FileNotFoundError: when it does not exist.
        NotRegularFileError: (a ValueError) when it is a pipe, a device, a socket or a directory.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFileError(f"{os.fspath(path)!r} is {_kind(st.st_mode)}, expected a regular file")
    return st


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open a regular file for binary reading without ever blocking on a special file.

    The path is checked with ``stat`` first, so a named pipe is never opened; the file is then opened with
    ``O_NONBLOCK`` and checked again through its descriptor, so a file swapped for a pipe in between cannot
    block either.

    Args:
        path: the file.

    Returns:
        A buffered binary reader; close it (or use it in a ``with`` block).

    Raises:
        FileNotFoundError, PermissionError: as ``open`` raises them.
        NotRegularFileError: (a ValueError) when ``path`` is not a regular file.
    """
    check_regular(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(f"{os.fspath(path)!r} is {_kind(st.st_mode)}, expected a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
