"""Reading HDF5 model files from strangers safely: nothing outside the file, bounded work, one error type.

This module knows nothing about networks. The model loader calls it in this order::

    with open_model_file(path) as f:      # a regular HDF5 file, opened read-only
        report = audit(f, path)           # every object checked before any array is read
        config = read_json_attr(f, "config", path, max_bytes=MAX_CONFIG_BYTES, max_depth=MAX_JSON_DEPTH)
        ...                               # validate the config, compute the expected shapes
        kernel = read_array(f, "layers/0/params/kernel", path, shape=(5, 4))

What :func:`audit` refuses (each with a :class:`~neuro.errors.ModelFileError` naming the object):

* soft links, external links and user-defined links (only plain hard links are followed, so loading never
  opens another file), objects reachable through more than one hard link (no cycles, no aliasing), named
  datatypes and link names that are empty, ``.``, contain ``/`` or are longer than :data:`MAX_NAME_BYTES`;
* datasets with external storage (raw data in another file), virtual datasets (data from other HDF5 files),
  any filter other than gzip (deflate, id 1), shuffle (2) and fletcher32 (3) -- unknown filters would make
  HDF5 search its plugin folders --, datasets whose elements are not plain integers or floats of at most 8
  bytes (no strings, objects, references, compounds, variable-length or enum data) and datasets with a null
  dataspace;
* datasets that declare more bytes than the file can hold: without gzip ``file_size + 1 MiB``, with gzip
  ``file_size * 1100 + 1 MiB`` (deflate's largest ratio is about 1032:1), and the same bound for the sum
  over all datasets and for one chunk, so that a small file cannot make the reader allocate gigabytes;
* chunked datasets split into more than :data:`MAX_CHUNKS` chunks, or into more chunks than the file has
  bytes (a written chunk takes at least one), and files with more than :data:`MAX_TOTAL_CHUNKS` chunks in
  all: HDF5's time and memory grow with the number of chunks (about 3 KB each), whatever their size;
* a filter applied twice in one dataset's pipeline (gzip twice escapes the size bound above);
* more than :data:`MAX_OBJECTS` objects or :data:`MAX_ATTRIBUTES` attributes, groups nested deeper than
  :data:`MAX_DEPTH`;
* attributes of any type other than integers, floats, booleans and strings, attributes larger than
  :data:`MAX_ATTR_BYTES` (``attr_limits`` gives single attribute names their own limit; the ``config``
  attribute gets :data:`MAX_CONFIG_BYTES`), variable-length string attributes that are not scalars, that
  live in dense (fractal-heap) or shared attribute storage, or whose heap record is inconsistent.

Variable-length strings (h5py's default for ``str`` attributes, so the JSON config) are never read by HDF5
here: HDF5 trusts the length in a string's heap ID (allocating up to 4 GB before it compares it with the
stored object) and loops forever on a global heap whose free-space record has size 0, neither of which can
be interrupted from Python. :func:`read_json_attr`, :func:`read_scalar_attr` and :func:`audit` find the
attribute's heap ID in the object header themselves, check it against its heap collection and read exactly
the string's bytes with ``os.pread`` (files opened with another driver than ``sec2`` fall back to HDF5).

:func:`read_array` also refuses storage that was never written and a chunk that does not hold exactly its
shape's bytes (:func:`_check_chunk_sizes`: HDF5 fills the rest of a short chunk's buffer with whatever memory
held).

Every exception raised while reading (h5py's ``OSError``/``RuntimeError``/``KeyError``, ``TypeError``,
``UnicodeDecodeError``, ``MemoryError``, ``RecursionError``, ...) is turned into ``ModelFileError`` by
:func:`guard`; only a missing file, a folder and an unreadable file (``FileNotFoundError``,
``IsADirectoryError``, ``PermissionError``) escape :func:`open_model_file` as themselves.

h5py is imported inside the functions, so that ``import neuro`` stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import math
import os
import re
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from neuro.errors import ModelFileError

if TYPE_CHECKING:
    import h5py

__all__ = [
    "ALLOWED_FILTERS",
    "GZIP_MAX_RATIO",
    "MAX_ATTRIBUTES",
    "MAX_ATTR_BYTES",
    "MAX_CHUNKS",
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_JSON_DEPTH",
    "MAX_NAME_BYTES",
    "MAX_OBJECTS",
    "MAX_TOTAL_CHUNKS",
    "OPEN_ATTEMPTS",
    "SIZE_SLACK",
    "AuditReport",
    "array_info",
    "audit",
    "check_no_extra",
    "get_group",
    "guard",
    "json_depth",
    "max_declared_bytes",
    "open_model_file",
    "read_array",
    "read_json_attr",
    "read_scalar_attr",
]

MAX_OBJECTS = 10_000
"""Most groups and datasets (links) a file may hold."""
MAX_ATTRIBUTES = 10_000
"""Most attributes a file may hold, over all its objects."""
MAX_DEPTH = 16
"""Deepest group nesting (the root's members are at depth 1)."""
MAX_ATTR_BYTES = 1 << 20
"""Largest attribute (1 MiB), unless ``attr_limits`` names it."""
MAX_CONFIG_BYTES = 16 << 20
"""Largest ``config`` attribute (16 MiB of JSON text)."""
MAX_JSON_DEPTH = 32
"""Deepest nesting of JSON arrays and objects."""
MAX_JSON_INT_DIGITS = 100
"""Longest integer literal in JSON text (a 128-bit generator state has 39 digits)."""
MAX_NAME_BYTES = 1024
"""Longest name of a group, dataset or attribute, in UTF-8 bytes."""
GZIP_MAX_RATIO = 1100
"""Largest plausible expansion of gzip data (deflate's maximum is about 1032:1)."""
SIZE_SLACK = 1 << 20
"""Bytes a dataset may declare beyond what the file's size implies (1 MiB)."""
ALLOWED_FILTERS = {1: "gzip", 2: "shuffle", 3: "fletcher32"}
"""HDF5 filter ids a dataset may use."""
MAX_CHUNKS = 65_536
"""Most chunks one dataset may be split into (HDF5's work and memory grow with the count)."""
MAX_TOTAL_CHUNKS = 262_144
"""Most chunks over all the datasets of a file."""
OPEN_ATTEMPTS = 16
"""How often :func:`open_model_file` opens a path that keeps being replaced while it is opened."""

_DEFAULT_ATTR_LIMITS = {"config": MAX_CONFIG_BYTES}
# a string literal, or an unterminated one up to the end: the optional closing quote means a match never
# fails once started, so the scan is linear even for adversarial text
_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKET_STEP = np.zeros(256, dtype=np.int8)  # +1 for an opening bracket, −1 for a closing one, by byte
_BRACKET_STEP[np.frombuffer(b"[{", dtype=np.uint8)] = 1
_BRACKET_STEP[np.frombuffer(b"]}", dtype=np.uint8)] = -1


# ---------------------------------------------------------------------------------------------------------
# errors


def _describe(exc: BaseException) -> str:
    """A short description of an exception raised while reading, for a ModelFileError's message."""
    if isinstance(exc, MemoryError):
        return "too large to read (out of memory)"
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    text = str(exc).strip() or "no details"
    if len(text) > 300:
        text = text[:300] + "..."
    return f"cannot be read ({type(exc).__name__}: {text})"


@contextlib.contextmanager
def guard(
    path: str | os.PathLike, where: str, *, keep: tuple[type[BaseException], ...] = ()
) -> Iterator[None]:
    """Turn every exception raised inside the block into a :class:`ModelFileError`.

    ``ModelFileError`` passes unchanged; so do exceptions that are not :class:`Exception` subclasses
    (``KeyboardInterrupt``, ``SystemExit``), also when a library wrapped one in an error of its own (h5py's
    lock turns a Ctrl-C into a ``SystemError`` whose context is the interrupt: the interrupt is raised).
    Anything else -- h5py's ``OSError``/``RuntimeError``/``KeyError``/``ValueError``, ``TypeError``,
    ``UnicodeDecodeError``, ``MemoryError``, ``RecursionError`` -- is re-raised as
    ``ModelFileError(path, where, ...)`` chained to the original.

    A ``FileNotFoundError`` raised *while reading* an open file means the file refers to another file, so it
    is converted too unless listed in ``keep``; :func:`open_model_file` keeps ``FileNotFoundError``,
    ``IsADirectoryError`` and ``PermissionError`` for the model file itself.

    Args:
        path: the model file, named in the message.
        where: the place inside the file, named in the message.
        keep: exception types to re-raise unchanged.

    Raises:
        ModelFileError: for any ``Exception`` raised in the block, except the types in ``keep``.
    """
    handled = sys.exc_info()[1]  # an exception being handled already (load called in an except block)
    try:
        yield
    except ModelFileError:
        raise
    except Exception as exc:
        if keep and isinstance(exc, keep):
            raise
        stop = _interrupt_behind(exc, handled)
        if stop is not None:  # h5py's Cython lock turns a Ctrl-C into a SystemError with it as its context
            raise stop from None
        raise ModelFileError(path, where, _describe(exc)) from exc


def _interrupt_behind(exc: BaseException, handled: BaseException | None) -> BaseException | None:
    """A ``KeyboardInterrupt`` (or other non-``Exception``) that arrived inside the block and that a library
    turned into an error of its own (in ``exc``'s chain of causes and contexts), which must stay an interrupt;
    ``handled``, an exception the caller was already handling when the block began (a load inside
    ``except KeyboardInterrupt:``), and its chain are not such an interrupt."""
    before: set[int] = set()
    e = handled
    while e is not None and id(e) not in before:
        before.add(id(e))
        e = e.__context__
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc.__cause__, exc.__context__]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen or id(e) in before:  # what was there before the block stays out
            continue
        seen.add(id(e))
        if not isinstance(e, Exception):
            return e
        todo += [e.__cause__, e.__context__]
    return None


def _place(name: str | bytes | None) -> str:
    """An object's path inside the file as messages show it: ``layers/0/params/kernel``, or ``/``."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "backslashreplace")
    name = (name or "").strip("/")
    return name or "/"


def _join(parent: str, child: str) -> str:
    return child if parent == "/" else f"{parent}/{child}"


def _attr_place(obj_place: str, name: str) -> str:
    return f"attribute {name!r}" if obj_place == "/" else f"{obj_place} attribute {name!r}"


# ---------------------------------------------------------------------------------------------------------
# opening


def open_model_file(path: str | os.PathLike) -> h5py.File:
    """Open an HDF5 model file read-only, refusing anything that is not a regular file without blocking.

    The path is checked with :func:`os.stat` before anything opens it, so a named pipe, a device or a socket
    is refused instead of blocking the caller. The file is opened read-only without HDF5's file locking
    (so files on read-only media open), and its size is not limited (nothing is read here but the
    superblock). External links are never followed by this module; call :func:`audit` before reading.

    The check and the open are two steps: a path swapped for a named pipe between them could still block,
    so after opening, the opened file is compared with the checked one (device and inode). When they differ
    and the opened file is a regular file, the path was replaced atomically (another process saved over it):
    the open is tried again, up to :data:`OPEN_ATTEMPTS` times, so the caller gets the old file or the new
    one, each complete. Anything else that differs is refused.

    Args:
        path: the model file.

    Returns:
        The open ``h5py.File`` (use it as a context manager to close it).

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        IsADirectoryError: when ``path`` is a folder.
        PermissionError: when ``path`` cannot be read.
        ModelFileError: when ``path`` is not a regular file, not an HDF5 file, truncated, or replaced
            :data:`OPEN_ATTEMPTS` times in a row while it was opened.
    """
    fspath = os.fspath(path)
    for _ in range(OPEN_ATTEMPTS):
        f = _open_once(path, fspath)
        if f is not None:
            return f
    raise ModelFileError(
        path, "", f"was replaced by another file while it was being opened, {OPEN_ATTEMPTS} times in a row"
    )


def _open_once(path: str | os.PathLike, fspath: Any) -> h5py.File | None:
    """One check-then-open of :func:`open_model_file`; ``None`` when the path was replaced in between."""
    st = os.stat(fspath)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), fspath)
    if not stat.S_ISREG(st.st_mode):
        kind = _file_kind(st.st_mode)
        raise ModelFileError(path, "", f"is not a regular file ({kind}); refusing to open it")
    import h5py

    try:
        f = h5py.File(fspath, "r", locking=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:
        if _identity(fspath) != (st.st_dev, st.st_ino):
            return None  # replaced while HDF5 opened it (a file being written is never renamed into place)
        raise ModelFileError(path, "", f"is not a readable HDF5 file ({_describe(exc)})") from exc
    try:
        opened = os.fstat(f.id.get_vfd_handle())
    except Exception:  # a driver without a file descriptor: nothing to compare
        return f
    if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(opened.st_mode):
        f.close()
        if stat.S_ISREG(opened.st_mode):
            return None  # atomically replaced (a save renamed a new file into place): open the new one
        raise ModelFileError(path, "", "was replaced by another file while it was being opened")
    return f


def _identity(fspath: Any) -> tuple[int, int] | None:
    try:
        st = os.stat(fspath)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


# ---------------------------------------------------------------------------------------------------------
# the audit


@dataclasses.dataclass
class AuditReport:
    """What :func:`audit` found in a file that passed it.

    Attributes:
        file_size: the file's size in bytes.
        groups: the path of every group (``/`` for the root), in the order visited.
        datasets: for every dataset's path, its declared shape and dtype (native byte order).
        declared_bytes: the sum of all datasets' declared sizes.
        chunks: the number of chunks all chunked datasets are split into.
    """

    file_size: int
    groups: list[str] = dataclasses.field(default_factory=list)
    datasets: dict[str, tuple[tuple[int, ...], np.dtype]] = dataclasses.field(default_factory=dict)
    declared_bytes: int = 0
    chunks: int = 0


def max_declared_bytes(file_size: int, *, compressed: bool) -> int:
    """The most bytes a dataset in a file of ``file_size`` bytes may declare.

    Args:
        file_size: the file's size in bytes.
        compressed: whether the dataset uses gzip (which may expand by up to about 1032:1).

    Returns:
        ``file_size * GZIP_MAX_RATIO + SIZE_SLACK`` when compressed, else ``file_size + SIZE_SLACK``.
    """
    return file_size * (GZIP_MAX_RATIO if compressed else 1) + SIZE_SLACK


def audit(
    f: h5py.File,
    path: str | os.PathLike,
    *,
    max_objects: int = MAX_OBJECTS,
    max_attributes: int = MAX_ATTRIBUTES,
    max_depth: int = MAX_DEPTH,
    max_attr_bytes: int = MAX_ATTR_BYTES,
    attr_limits: Mapping[str, int] | None = None,
) -> AuditReport:
    """Check every object of an open file before any array is read; see the module's docstring for the rules.

    Links are listed and inspected without being followed (only hard links are opened), so an external
    link, external storage or a virtual dataset is refused without the file it names ever being opened.

    Args:
        f: the file from :func:`open_model_file`.
        path: the model file, named in messages.
        max_objects: most groups and datasets.
        max_attributes: most attributes over all objects.
        max_depth: deepest group nesting.
        max_attr_bytes: largest attribute in bytes, unless ``attr_limits`` names it.
        attr_limits: own byte limits for attributes of the given names (on any object); defaults to
            ``{"config": MAX_CONFIG_BYTES}``.

    Returns:
        An :class:`AuditReport` listing the groups and the datasets' shapes and dtypes.

    Raises:
        ModelFileError: naming the first object (or attribute) that breaks a rule.
    """
    import h5py

    limits = dict(_DEFAULT_ATTR_LIMITS if attr_limits is None else attr_limits)
    with guard(path, ""):
        file_size = int(f.id.get_filesize())
        root = h5py.h5o.open(f.id, b"/")
        root_info = h5py.h5o.get_info(root)
        strings = _VlenStrings.for_file(f.id)
    report = AuditReport(file_size=file_size)
    counts = {"objects": 0, "attributes": 0}
    visited = {root_info.addr}
    stack: list[tuple[Any, str, int]] = [(root, "/", 0)]
    total_limit = max_declared_bytes(file_size, compressed=True)
    while stack:
        gid, place, depth = stack.pop()
        report.groups.append(place)
        with guard(path, place):
            _audit_attributes(gid, place, path, max_attributes, max_attr_bytes, limits, counts, strings)
            entries = _list_links(gid, place, path, max_objects - counts["objects"], max_objects)
        counts["objects"] += len(entries)
        children = []
        for raw_name, link_type in entries:
            with guard(path, place):
                name = _check_name(raw_name, place, path, "member")
            child = _join(place, name)
            with guard(path, child):
                if link_type != h5py.h5l.TYPE_HARD:
                    raise ModelFileError(path, child, _link_problem(link_type))
                obj = h5py.h5o.open(gid, raw_name)
                info = h5py.h5o.get_info(obj)
                if info.rc != 1 or info.addr in visited:
                    raise ModelFileError(
                        path, child, "is reachable through more than one link; each object must have one name"
                    )
                visited.add(info.addr)
                if info.type == h5py.h5o.TYPE_GROUP:
                    if depth + 1 > max_depth:
                        raise ModelFileError(path, child, f"groups are nested deeper than {max_depth} levels")
                    children.append((obj, child, depth + 1))
                elif info.type == h5py.h5o.TYPE_DATASET:
                    shape, dtype, declared = _check_dataset(obj, child, path, file_size)
                    report.datasets[child] = (shape, dtype)
                    report.declared_bytes += declared
                    report.chunks += _chunk_count(obj, shape)
                    if report.chunks > MAX_TOTAL_CHUNKS:
                        raise ModelFileError(
                            path,
                            child,
                            f"the datasets are split into more than {MAX_TOTAL_CHUNKS} chunks in all "
                            f"({report.chunks} so far)",
                        )
                    if report.declared_bytes > total_limit:
                        raise ModelFileError(
                            path,
                            child,
                            f"the datasets declare {report.declared_bytes} bytes in all, more than a "
                            f"{file_size}-byte file can hold",
                        )
                    _audit_attributes(
                        obj, child, path, max_attributes, max_attr_bytes, limits, counts, strings
                    )
                elif info.type == h5py.h5o.TYPE_NAMED_DATATYPE:
                    raise ModelFileError(path, child, "is a named datatype; refused")
                else:
                    raise ModelFileError(path, child, f"is an object of unknown type {info.type}; refused")
        stack.extend(reversed(children))
    return report


def _list_links(
    gid: Any, place: str, path: str | os.PathLike, budget: int, limit: int
) -> list[tuple[bytes, int]]:
    """The (name, link type) of every member of a group, refusing more than ``budget`` of them."""
    entries: list[tuple[bytes, int]] = []

    def visit(name: bytes, info: Any) -> bool | None:
        entries.append((name, int(info.type)))
        return True if len(entries) > budget else None

    gid.links.iterate(visit, info=True)
    if len(entries) > budget:
        raise ModelFileError(path, place, f"the file holds more than {limit} groups and datasets")
    return entries


def _check_name(raw: bytes, place: str, path: str | os.PathLike, what: str) -> str:
    if len(raw) > MAX_NAME_BYTES:
        raise ModelFileError(path, place, f"a {what} name is longer than {MAX_NAME_BYTES} bytes")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(path, place, f"{what} name {raw!r} is not valid UTF-8") from None
    if what == "member" and (not name or name == "." or "/" in name):
        raise ModelFileError(path, place, f"{what} name {name!r} is not a plain name")
    return name


def _link_problem(link_type: int) -> str:
    import h5py

    if link_type == h5py.h5l.TYPE_SOFT:
        return "is a soft link; links are refused (only plain groups and datasets are allowed)"
    if link_type == h5py.h5l.TYPE_EXTERNAL:
        return "is an external link to another file; refused (loading never opens another file)"
    return f"is a user-defined link (type {link_type}); refused"


def _audit_attributes(
    obj: Any,
    place: str,
    path: str | os.PathLike,
    max_attributes: int,
    max_attr_bytes: int,
    limits: Mapping[str, int],
    counts: dict[str, int],
    strings: _VlenStrings | None,
) -> None:
    import h5py

    n = int(h5py.h5a.get_num_attrs(obj))
    counts["attributes"] += n
    if counts["attributes"] > max_attributes:
        raise ModelFileError(path, place, f"the file holds more than {max_attributes} attributes")
    for i in range(n):
        aid = h5py.h5a.open(obj, index=i)
        name = _check_name(aid.name, place, path, "attribute")
        where = _attr_place(place, name)
        limit = limits.get(name, max_attr_bytes)
        with guard(path, where):
            _check_attribute(obj, aid, where, path, limit, strings)


def _check_attribute(
    obj: Any, aid: Any, where: str, path: str | os.PathLike, limit: int, strings: _VlenStrings | None
) -> None:
    import h5py

    tid = aid.get_type()
    cls = tid.get_class()
    if tid.committed():
        raise ModelFileError(path, where, "uses a named datatype; refused")
    space = aid.get_space()
    extent = space.get_simple_extent_type()
    if extent == h5py.h5s.NULL:
        raise ModelFileError(path, where, "has no value (null dataspace)")
    if extent not in (h5py.h5s.SCALAR, h5py.h5s.SIMPLE):
        raise ModelFileError(path, where, "has an unknown dataspace")
    if cls == h5py.h5t.STRING and tid.is_variable_str():
        if extent != h5py.h5s.SCALAR:
            raise ModelFileError(path, where, "variable-length strings must be scalars")
        if strings is None:  # no file descriptor: HDF5 reads it
            nbytes = len(_read_vlen_string(aid))
        else:  # located and checked, not read
            try:
                nbytes = strings.locate(int(h5py.h5o.get_info(obj).addr), aid.name)[1]
            except _Corrupt as exc:
                raise ModelFileError(path, where, str(exc)) from None
        if nbytes > limit:
            raise ModelFileError(path, where, f"holds {nbytes} bytes; the limit is {limit}")
        return
    if cls not in (h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.STRING) and not (
        cls == h5py.h5t.ENUM and tid.dtype.kind == "b"
    ):
        raise ModelFileError(path, where, f"has an unsupported type ({_type_name(cls)}); refused")
    nbytes = int(space.get_simple_extent_npoints()) * int(tid.get_size())
    if nbytes > limit:
        raise ModelFileError(path, where, f"declares {nbytes} bytes; the limit is {limit}")


def _read_vlen_string(aid: Any) -> bytes:
    """HDF5's own read of a scalar variable-length string attribute: only for files without a descriptor."""
    import h5py

    out = np.empty((), dtype=h5py.string_dtype("ascii"))
    aid.read(out, mtype=h5py.h5t.py_create(out.dtype))
    value = out[()]
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------------------------------------
# variable-length strings, read without HDF5
#
# HDF5 keeps a variable-length string in a "global heap collection" and the attribute holds only a heap ID
# (length, collection address, object index). HDF5's own read trusts both: a heap ID whose length field says
# 4 GB makes it allocate 4 GB before it notices the mismatch, and a collection whose free-space object has
# size 0 makes it loop forever (H5HG__cache_heap_deserialize) -- neither can be interrupted from Python. So
# neuro reads these strings itself: it finds the attribute message in the object header, checks the heap ID
# against the collection, and reads exactly the bytes of the object, all bounded by the file's size.

_MAX_HEADER_CHUNKS = 4096
_MAX_HEAP_OBJECTS = 65_536
_WHOLE_HEAP_BYTES = 1 << 20


class _Corrupt(Exception):
    """A structural problem found while reading HDF5 metadata by hand."""


def _align8(n: int) -> int:
    return (n + 7) & ~7


class _VlenStrings:
    """Reads scalar variable-length string attributes of one file straight from its bytes."""

    def __init__(self, fid: Any) -> None:
        fcpl = fid.get_create_plist()
        self.sizeof_addr, self.sizeof_size = (int(n) for n in fcpl.get_sizes())
        self.base = int(fcpl.get_userblock())
        self.fd = int(fid.get_vfd_handle())
        self.size = os.fstat(self.fd).st_size
        self._headers: dict[int, tuple[dict[bytes, Any], bool]] = {}
        self._heaps: dict[int, dict[int, tuple[int, int]]] = {}

    @classmethod
    def for_file(cls, obj_id: Any) -> _VlenStrings | None:
        """The reader for the file of a low-level object, or None when its driver has no file descriptor."""
        import h5py

        fid = h5py.h5i.get_file_id(obj_id)
        if fid.get_access_plist().get_driver() != h5py.h5fd.SEC2:
            return None
        return cls(fid)

    def _read(self, addr: int, n: int) -> bytes:
        if addr < 0 or n < 0 or self.base + addr + n > self.size:
            raise _Corrupt(f"metadata at address {addr} (+{n} bytes) lies outside the file")
        data = os.pread(self.fd, n, self.base + addr)
        if len(data) != n:
            raise _Corrupt(f"metadata at address {addr} is cut short")
        return data

    def _uint(self, data: bytes, offset: int, width: int) -> int:
        if offset + width > len(data):
            raise _Corrupt("a metadata field is cut short")
        return int.from_bytes(data[offset : offset + width], "little")

    def _messages(self, addr: int) -> Iterator[tuple[int, int, bytes]]:
        """(type, flags, body) of every message of the object header at ``addr``, continuations included."""
        first = self._read(addr, min(16, max(self.size - self.base - addr, 0)))
        if first[:4] == b"OHDR":
            if len(first) < 7 or first[4] != 2:
                raise _Corrupt("unknown object header version")
            flags = first[5]
            pos = 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
            width = 1 << (flags & 0x03)
            prefix = self._read(addr, pos + width)
            pending = [(addr + pos + width, self._uint(prefix, pos, width))]
            version, msg_header = 2, 6 if flags & 0x04 else 4
        elif first[:1] == b"\x01" and len(first) >= 16:
            pending = [(addr + 16, self._uint(first, 8, 4))]
            version, msg_header = 1, 8
        else:
            raise _Corrupt("unknown object header version")
        seen: set[int] = set()
        while pending:
            start, length = pending.pop(0)
            if start in seen or len(seen) >= _MAX_HEADER_CHUNKS:
                raise _Corrupt("object header continuations loop")
            seen.add(start)
            data = self._read(start, length)
            pos = 0
            while pos + msg_header <= len(data):
                if version == 1:
                    mtype, size = self._uint(data, pos, 2), self._uint(data, pos + 2, 2)
                    mflags = data[pos + 4]
                else:
                    mtype, size, mflags = data[pos], self._uint(data, pos + 1, 2), data[pos + 3]
                body_start = pos + msg_header
                if body_start + size > len(data):
                    raise _Corrupt("an object header message runs past its chunk")
                body = data[body_start : body_start + size]
                if mtype == 0x10:  # continuation: (address, length) of the next chunk
                    cont = self._uint(body, 0, self.sizeof_addr)
                    clen = self._uint(body, self.sizeof_addr, self.sizeof_size)
                    if version == 2:
                        if self._read(cont, 4) != b"OCHK" or clen < 8:
                            raise _Corrupt("bad object header continuation chunk")
                        pending.append((cont + 4, clen - 8))  # signature and checksum around the messages
                    else:
                        pending.append((cont, clen))
                yield mtype, mflags, body
                pos = body_start + size

    def _attributes(self, addr: int) -> tuple[dict[bytes, Any], bool]:
        """The compact attribute messages of an object by name, and whether attributes may live elsewhere."""
        if addr in self._headers:
            return self._headers[addr]
        found: dict[bytes, Any] = {}
        elsewhere = False
        undefined = (1 << (8 * self.sizeof_addr)) - 1
        for mtype, mflags, body in self._messages(addr):
            if mtype == 0x15:  # attribute info: a defined fractal heap address means dense storage
                pos = 2 + (2 if len(body) > 1 and body[1] & 0x01 else 0)
                if self._uint(body, pos, self.sizeof_addr) != undefined:
                    elsewhere = True
            elif mtype == 0x0C:
                if mflags & 0x02:  # a shared message, stored in another place
                    elsewhere = True
                    continue
                name, entry = self._parse_attribute(body)
                found[name] = _Corrupt("the attribute is stored twice") if name in found else entry
        self._headers[addr] = (found, elsewhere)
        return found, elsewhere

    def _parse_attribute(self, body: bytes) -> tuple[bytes, Any]:
        """(name, heap ID or None when the attribute is not a variable-length string) of a message."""
        version = body[0] if body else 0
        if version not in (1, 2, 3):
            raise _Corrupt("unknown attribute message version")
        name_size, dt_size, ds_size = (self._uint(body, 2 + 2 * i, 2) for i in range(3))
        pad = _align8 if version == 1 else (lambda n: n)
        pos = 9 if version == 3 else 8
        name = body[pos : pos + name_size]
        pos += pad(name_size)
        dtype = body[pos : pos + dt_size]
        pos += pad(dt_size) + pad(ds_size)
        if len(name) != name_size or not name or name[-1] != 0:
            raise _Corrupt("an attribute name is malformed")
        name = name[:-1]
        if len(dtype) < 8 or dtype[0] & 0x0F != 9 or dtype[1] & 0x0F != 1:
            return name, None  # not a variable-length string
        if version >= 2 and body[1] & 0x03:
            return name, _Corrupt("the attribute uses a shared datatype or dataspace")
        width = self.sizeof_addr
        if len(body) < pos + 8 + width:
            return name, _Corrupt("the attribute's value is cut short")
        length = self._uint(body, pos, 4)
        return name, (length, self._uint(body, pos + 4, width), self._uint(body, pos + 4 + width, 4))

    def _heap(self, addr: int) -> dict[int, tuple[int, int]]:
        """The objects of the global heap collection at ``addr``: index -> (data address, size)."""
        if addr in self._heaps:
            return self._heaps[addr]
        header_size = _align8(8 + self.sizeof_size)
        head = self._read(addr, 8 + self.sizeof_size)
        if head[:4] != b"GCOL" or head[4] != 1:
            raise _Corrupt("a string points at something that is not a global heap")
        size = self._uint(head, 8, self.sizeof_size)
        if size < header_size:
            raise _Corrupt("a global heap collection is too small")
        whole = self._read(addr, size) if size <= _WHOLE_HEAP_BYTES else None
        self._read(addr + size - 1, 1)  # the collection lies inside the file
        objects: dict[int, tuple[int, int]] = {}
        obj_header = _align8(8 + self.sizeof_size)
        pos = header_size
        for _ in range(_MAX_HEAP_OBJECTS):
            if pos + obj_header > size:
                break
            head = whole[pos : pos + obj_header] if whole is not None else self._read(addr + pos, obj_header)
            index, obj_size = self._uint(head, 0, 2), self._uint(head, 8, self.sizeof_size)
            if index == 0:  # free space: its size includes its header
                if obj_size < obj_header:
                    raise _Corrupt("a global heap collection is corrupt (empty free space)")
                pos += obj_size
                continue
            if pos + obj_header + obj_size > size:
                raise _Corrupt("a global heap object runs past its collection")
            if index in objects:
                raise _Corrupt("a global heap collection holds an object twice")
            objects[index] = (addr + pos + obj_header, obj_size)
            pos += obj_header + _align8(obj_size)
        else:
            raise _Corrupt(f"a global heap collection holds more than {_MAX_HEAP_OBJECTS} objects")
        self._heaps[addr] = objects
        return objects

    def locate(self, header_addr: int, name: bytes) -> tuple[int, int]:
        """(data address, size in bytes) of the scalar variable-length string attribute ``name``."""
        found, elsewhere = self._attributes(header_addr)
        entry = found.get(name)
        if isinstance(entry, _Corrupt):
            raise entry
        if entry is None:
            if elsewhere:
                raise _Corrupt("strings in dense or shared attribute storage are not supported")
            raise _Corrupt("the attribute's message was not found in its object header")
        length, heap_addr, index = entry
        if length == 0:
            return 0, 0
        obj = self._heap(heap_addr).get(index)
        if obj is None:
            raise _Corrupt("the string's global heap object is missing")
        if obj[1] != length:
            raise _Corrupt(f"the string's length ({length}) does not match its heap object ({obj[1]} bytes)")
        return obj

    def read(self, header_addr: int, name: bytes, max_bytes: int) -> bytes:
        """The bytes of a scalar variable-length string attribute, refusing more than ``max_bytes``."""
        addr, size = self.locate(header_addr, name)
        if size > max_bytes:
            raise _Corrupt(f"holds {size} bytes; the limit is {max_bytes}")
        return self._read(addr, size) if size else b""


def _vlen_string(obj_id: Any, name: bytes, path: str | os.PathLike, where: str, max_bytes: int) -> bytes:
    """Read a scalar variable-length string attribute of a low-level object safely (see _VlenStrings)."""
    import h5py

    reader = _VlenStrings.for_file(obj_id)
    if reader is None:  # a file in memory or another driver: HDF5 reads it (use open_model_file instead)
        aid = h5py.h5a.open(obj_id, name)
        raw = _read_vlen_string(aid)
        if len(raw) > max_bytes:
            raise ModelFileError(path, where, f"holds {len(raw)} bytes; the limit is {max_bytes}")
        return raw
    try:
        return reader.read(int(h5py.h5o.get_info(obj_id).addr), name, max_bytes)
    except _Corrupt as exc:
        raise ModelFileError(path, where, str(exc)) from None


def _type_name(cls: int) -> str:
    import h5py

    names = {
        h5py.h5t.INTEGER: "integer",
        h5py.h5t.FLOAT: "float",
        h5py.h5t.TIME: "time",
        h5py.h5t.STRING: "string",
        h5py.h5t.BITFIELD: "bitfield",
        h5py.h5t.OPAQUE: "opaque",
        h5py.h5t.COMPOUND: "compound",
        h5py.h5t.REFERENCE: "reference",
        h5py.h5t.ENUM: "enum",
        h5py.h5t.VLEN: "variable-length",
        h5py.h5t.ARRAY: "array",
    }
    return names.get(cls, f"class {cls}")


def _check_dataset(
    dsid: Any, where: str, path: str | os.PathLike, file_size: int
) -> tuple[tuple[int, ...], np.dtype, int]:
    """Check one dataset's storage, filters, type and declared size; return (shape, dtype, bytes)."""
    import h5py

    dcpl = dsid.get_create_plist()
    layout = dcpl.get_layout()
    if layout == h5py.h5d.VIRTUAL:
        raise ModelFileError(path, where, "is a virtual dataset (its data comes from other files); refused")
    if layout not in (h5py.h5d.COMPACT, h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED):
        raise ModelFileError(path, where, f"has an unknown storage layout ({layout}); refused")
    if dcpl.get_external_count():
        raise ModelFileError(path, where, "uses external storage (its data lives in another file); refused")
    codes = [int(dcpl.get_filter(i)[0]) for i in range(dcpl.get_nfilters())]
    for code in codes:
        if code not in ALLOWED_FILTERS:
            raise ModelFileError(
                path,
                where,
                f"uses filter id {code}; only gzip (1), shuffle (2) and fletcher32 (3) are allowed",
            )
    for code in set(codes):
        if codes.count(code) > 1:  # gzip twice inflates past the size bound (a 28 KB file held 1 GiB)
            name, times = ALLOWED_FILTERS[code], codes.count(code)
            raise ModelFileError(path, where, f"applies the {name} filter {times} times; once at most")
    tid = dsid.get_type()
    cls = tid.get_class()
    if tid.committed():
        raise ModelFileError(path, where, "uses a named datatype; refused")
    if cls not in (h5py.h5t.INTEGER, h5py.h5t.FLOAT):
        raise ModelFileError(path, where, f"must hold numbers, but its type is {_type_name(cls)}")
    dtype = np.dtype(tid.dtype).newbyteorder("=")
    if dtype.kind not in "iuf" or dtype.itemsize > 8:
        raise ModelFileError(path, where, f"has an unsupported number type ({dtype})")
    space = dsid.get_space()
    extent = space.get_simple_extent_type()
    if extent == h5py.h5s.NULL:
        raise ModelFileError(path, where, "has no data (null dataspace)")
    if extent not in (h5py.h5s.SCALAR, h5py.h5s.SIMPLE):
        raise ModelFileError(path, where, "has an unknown dataspace")
    shape = tuple(int(n) for n in space.shape) if extent == h5py.h5s.SIMPLE else ()
    declared = math.prod(shape) * dtype.itemsize
    limit = max_declared_bytes(file_size, compressed=1 in codes)
    if declared > limit:
        raise ModelFileError(
            path,
            where,
            f"declares shape {shape} of {dtype} ({declared} bytes), "
            f"more than a {file_size}-byte file can hold",
        )
    if layout == h5py.h5d.CHUNKED:
        chunk = tuple(int(n) for n in dcpl.get_chunk())
        chunk_bytes = math.prod(chunk) * dtype.itemsize
        if chunk_bytes > limit:
            raise ModelFileError(
                path,
                where,
                f"declares chunks of {chunk_bytes} bytes, more than a {file_size}-byte file can hold",
            )
        count = _chunks_of(shape, chunk)
        if count > MAX_CHUNKS or count > file_size:
            why = (
                f"at most {MAX_CHUNKS} are accepted"
                if count > MAX_CHUNKS
                else f"more than a {file_size}-byte file can hold (a written chunk takes at least one byte)"
            )
            raise ModelFileError(
                path, where, f"is split into {count} chunks of shape {chunk} (dataset shape {shape}); {why}"
            )
    return shape, dtype, declared


def _chunks_of(shape: tuple[int, ...], chunk: tuple[int, ...]) -> int:
    """The number of chunks of shape ``chunk`` that cover a dataset of shape ``shape``."""
    if len(chunk) != len(shape) or any(c < 1 for c in chunk):
        return 0 if 0 in shape else math.prod(shape)  # a malformed chunk shape: count it at the worst
    return math.prod(-(-n // c) for n, c in zip(shape, chunk, strict=True))


def _chunk_count(dsid: Any, shape: tuple[int, ...]) -> int:
    """The number of chunks a dataset is split into (0 when it is not chunked)."""
    import h5py

    dcpl = dsid.get_create_plist()
    if dcpl.get_layout() != h5py.h5d.CHUNKED:
        return 0
    return _chunks_of(shape, tuple(int(n) for n in dcpl.get_chunk()))


def _check_chunk_sizes(dsid: Any, where: str, path: str | os.PathLike, itemsize: int, file_size: int) -> None:
    """Refuse a chunked dataset any of whose stored chunks does not hold exactly its chunk's bytes.

    HDF5 reads a chunk that stores fewer bytes than its shape needs (raw, or gzip data that inflates to
    fewer) into a buffer whose rest keeps whatever memory held, and inflates gzip data without a bound. So
    each chunk is read raw first and its size checked: its fletcher32 checksum (4 bytes) taken off when that
    filter applies to it, its gzip data inflated with a cap of the chunk's size plus one byte. The checksum
    itself is HDF5's to check when it reads the data.
    """
    import h5py

    dcpl = dsid.get_create_plist()
    if dcpl.get_layout() != h5py.h5d.CHUNKED:
        return
    chunk = tuple(int(n) for n in dcpl.get_chunk())
    need = math.prod(chunk) * itemsize
    codes = [int(dcpl.get_filter(i)[0]) for i in range(dcpl.get_nfilters())]
    for i in range(int(dsid.get_num_chunks())):
        info = dsid.get_chunk_info(i)
        at = tuple(int(n) for n in info.chunk_offset)
        if int(info.size) > file_size:
            raise ModelFileError(
                path, where, f"stores a chunk (at {at}) of {info.size} bytes in a {file_size}-byte file"
            )
        mask, data = dsid.read_direct_chunk(at)
        data = data[: int(info.size)]  # an unfiltered chunk comes back at its shape's size, whatever it holds
        active = [code for k, code in enumerate(codes) if not (int(mask) >> k) & 1]
        if 3 in active:  # fletcher32: the last 4 bytes are the checksum
            data = data[:-4] if len(data) >= 4 else b""
        size = len(data)
        if 1 in active:
            inflate = zlib.decompressobj()
            try:
                size = len(inflate.decompress(data, need + 1))
            except zlib.error:
                raise ModelFileError(path, where, f"has a chunk (at {at}) that is not gzip data") from None
            if not inflate.eof:  # more than the chunk's bytes, or a stream cut short
                problem = f"has a chunk (at {at}) whose gzip data does not inflate to exactly {need} bytes"
                raise ModelFileError(path, where, problem)
        if size != need:
            raise ModelFileError(
                path,
                where,
                f"stores a chunk (at {at}) of {size} bytes where its chunk shape {chunk} needs {need} (HDF5 "
                "would leave the rest as uninitialised memory)",
            )


def _check_written(dsid: Any, where: str, path: str | os.PathLike, shape: tuple[int, ...]) -> None:
    """Refuse a dataset whose storage was never (or only partly) written.

    HDF5 does not read storage that was never allocated: it returns the fill value, or -- with
    ``fill_time="never"`` -- leaves the caller's buffer as it was (whatever memory held). A file written by
    neuro stores every array whole, so unwritten storage means a file that does not hold its arrays.
    """
    import h5py

    if math.prod(shape) == 0:
        return
    dcpl = dsid.get_create_plist()
    layout = dcpl.get_layout()
    if layout == h5py.h5d.CHUNKED:
        expected = _chunks_of(shape, tuple(int(n) for n in dcpl.get_chunk()))
        stored = int(dsid.get_num_chunks())
        if stored < expected:
            raise ModelFileError(
                path,
                where,
                f"has {expected - stored} of its {expected} chunks never written (HDF5 would return "
                "fill values or uninitialised memory for them)",
            )
    elif layout == h5py.h5d.CONTIGUOUS and int(dsid.get_storage_size()) == 0:
        raise ModelFileError(
            path,
            where,
            "was never written (no storage allocated; HDF5 would return fill values or uninitialised memory)",
        )


# ---------------------------------------------------------------------------------------------------------
# attributes


def _open_attr(obj: Any, name: str, path: str | os.PathLike) -> tuple[Any, str]:
    """The low-level attribute ``name`` of a high-level object, and its place; missing -> ModelFileError."""
    import h5py

    where = _attr_place(_place(obj.name), name)
    with guard(path, where):
        raw = name.encode("utf-8")
        if not h5py.h5a.exists(obj.id, raw):
            raise ModelFileError(path, where, "is missing")
        return h5py.h5a.open(obj.id, raw), where


def _read_string_attr(obj_id: Any, aid: Any, where: str, path: str | os.PathLike, max_bytes: int) -> str:
    import h5py

    tid = aid.get_type()
    if tid.get_class() != h5py.h5t.STRING:
        raise ModelFileError(path, where, f"must be a string, got {_type_name(tid.get_class())}")
    if aid.get_space().get_simple_extent_type() != h5py.h5s.SCALAR:
        raise ModelFileError(path, where, f"must be a single string, got shape {aid.shape}")
    if tid.is_variable_str():
        raw = _vlen_string(obj_id, aid.name, path, where, max_bytes)
    else:
        size = int(tid.get_size())
        if size > max_bytes:
            raise ModelFileError(path, where, f"declares {size} bytes; the limit is {max_bytes}")
        out = np.empty((), dtype=f"S{size}")
        aid.read(out)
        raw = bytes(out[()])
    if len(raw) > max_bytes:
        raise ModelFileError(path, where, f"holds {len(raw)} bytes; the limit is {max_bytes}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(path, where, "is not valid UTF-8 text") from None


def read_json_attr(
    obj: h5py.Group | h5py.Dataset,
    name: str,
    path: str | os.PathLike,
    *,
    max_bytes: int = MAX_CONFIG_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Read a JSON text attribute with bounded size, nesting and values.

    The attribute must be a scalar string (fixed or variable length) of at most ``max_bytes`` UTF-8 bytes.
    Its nesting depth is measured by scanning brackets outside string literals *before* parsing, so deep
    nesting cannot exhaust the parser's recursion. NaN, Infinity, -Infinity, numbers that overflow to
    infinity, integer literals longer than :data:`MAX_JSON_INT_DIGITS` digits and duplicate object keys are
    refused.

    Args:
        obj: the group, file or dataset holding the attribute.
        name: the attribute's name.
        path: the model file, named in messages.
        max_bytes: the largest text accepted, in bytes.
        max_depth: the deepest nesting of arrays and objects accepted.

    Returns:
        The parsed value (dicts, lists, str, int, float, bool, None).

    Raises:
        ModelFileError: when the attribute is missing, not a scalar string, too large, not UTF-8, nested too
            deeply, holds a non-finite number or is not valid JSON.
    """
    import json  # loaded with the first model file, not on `import neuro`

    aid, where = _open_attr(obj, name, path)
    with guard(path, where):
        text = _read_string_attr(obj.id, aid, where, path, max_bytes)
        depth = json_depth(text)
        if depth > max_depth:
            raise ModelFileError(path, where, f"JSON is nested {depth} levels deep; the limit is {max_depth}")
        try:
            return json.loads(
                text,
                parse_constant=_refuse_constant,
                parse_float=_finite_float,
                parse_int=_bounded_int,
                object_pairs_hook=_unique_keys,
            )
        except _JSONValueError as exc:
            raise ModelFileError(path, where, str(exc)) from None
        except json.JSONDecodeError as exc:
            raise ModelFileError(path, where, f"is not valid JSON ({exc})") from None


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text, counting brackets outside string literals.

    Args:
        text: JSON text (not necessarily valid).

    Returns:
        The maximum depth; 0 for a scalar. Text that is not valid JSON gets a depth that is at least its
        real one's bound, which is all a pre-parse check needs.
    """
    skeleton = _STRING_RE.sub("", text).encode("utf-8", "surrogatepass")
    steps = _BRACKET_STEP[np.frombuffer(skeleton, dtype=np.uint8)]  # one byte a character
    if steps.size == 0:
        return 0
    depth_type = np.int32 if steps.size < 2**31 else np.int64  # a depth never passes the text's length
    return int(max(np.cumsum(steps, dtype=depth_type).max(), 0))


class _JSONValueError(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _JSONValueError(f"JSON holds the non-finite number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _JSONValueError(f"JSON holds the number {text[:40]}, which overflows to infinity")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise _JSONValueError(f"JSON holds an integer of more than {MAX_JSON_INT_DIGITS} digits")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _JSONValueError(f"JSON object has the key {key[:80]!r} twice")
        out[key] = value
    return out


def read_scalar_attr(
    obj: h5py.Group | h5py.Dataset,
    name: str,
    path: str | os.PathLike,
    kind: Literal["int", "float", "str"],
    *,
    min_value: float | None = 0,
    max_value: float | None = 2**63 - 1,
    max_bytes: int = MAX_ATTR_BYTES,
) -> int | float | str:
    """Read one scalar attribute of a given kind, with range checks.

    Args:
        obj: the group, file or dataset holding the attribute.
        name: the attribute's name.
        path: the model file, named in messages.
        kind: ``"int"`` (an HDF5 integer; booleans and floats are refused), ``"float"`` (an HDF5 float or
            integer; must be finite) or ``"str"`` (a UTF-8 string, fixed or variable length).
        min_value: the smallest number accepted (``None``: no bound); the default refuses negative counters.
        max_value: the largest number accepted (``None``: no bound).
        max_bytes: the longest string accepted, in bytes.

    Returns:
        A Python ``int``, ``float`` or ``str``.

    Raises:
        ModelFileError: when the attribute is missing, not a scalar of the kind asked for, out of range,
            too long or not valid UTF-8.
        ValueError: when ``kind`` is none of the above (a programming error).
    """
    import h5py

    if kind not in ("int", "float", "str"):
        raise ValueError(f"kind must be 'int', 'float' or 'str', got {kind!r}")
    aid, where = _open_attr(obj, name, path)
    with guard(path, where):
        if kind == "str":
            return _read_string_attr(obj.id, aid, where, path, max_bytes)
        tid = aid.get_type()
        cls = tid.get_class()
        allowed = (h5py.h5t.INTEGER,) if kind == "int" else (h5py.h5t.INTEGER, h5py.h5t.FLOAT)
        if cls not in allowed or tid.get_size() > 8:
            raise ModelFileError(path, where, f"must be an {kind}, got {_type_name(cls)}")
        if aid.get_space().get_simple_extent_type() != h5py.h5s.SCALAR:
            raise ModelFileError(path, where, f"must be a single {kind}, got shape {aid.shape}")
        dtype = np.dtype(tid.dtype).newbyteorder("=")
        out = np.empty((), dtype=dtype)
        aid.read(out)
        value: int | float = int(out[()]) if kind == "int" else float(out[()])
        if kind == "float" and not math.isfinite(value):
            raise ModelFileError(path, where, f"must be finite, got {value}")
        if min_value is not None and value < min_value:
            raise ModelFileError(path, where, f"must be at least {min_value}, got {value}")
        if max_value is not None and value > max_value:
            raise ModelFileError(path, where, f"must be at most {max_value}, got {value}")
        return value


# ---------------------------------------------------------------------------------------------------------
# groups and arrays


def _open_path(parent: Any, name: str, path: str | os.PathLike) -> tuple[Any, str]:
    """Open ``name`` (components separated by ``/``) below ``parent`` through hard links only."""
    import h5py

    place = _place(parent.name)
    if not isinstance(name, str) or not name or name.startswith("/"):
        raise ValueError(f"name must be a relative path inside the group, got {name!r}")
    cur = parent.id
    for part in name.split("/"):
        if part in ("", "."):
            raise ValueError(f"name must be a relative path inside the group, got {name!r}")
        child = _join(place, part)
        with guard(path, child):
            if not isinstance(cur, h5py.h5g.GroupID):
                raise ModelFileError(path, place, "must be a group")
            raw = part.encode("utf-8")
            if not cur.links.exists(raw):
                raise ModelFileError(path, child, "is missing")
            link_type = cur.links.get_info(raw).type
            if link_type != h5py.h5l.TYPE_HARD:
                raise ModelFileError(path, child, _link_problem(link_type))
            cur = h5py.h5o.open(cur, raw)
        place = child
    return cur, place


def get_group(parent: h5py.Group, name: str, path: str | os.PathLike) -> h5py.Group:
    """The group ``name`` below ``parent``, reached through hard links only.

    Args:
        parent: a group or the file.
        name: a relative path such as ``"layers/0"``.
        path: the model file, named in messages.

    Returns:
        The ``h5py.Group``.

    Raises:
        ModelFileError: when the group is missing, reached through a link, or is not a group.
    """
    import h5py

    obj, place = _open_path(parent, name, path)
    if not isinstance(obj, h5py.h5g.GroupID):
        raise ModelFileError(path, place, "must be a group")
    return h5py.Group(obj)


def _dataset(parent: h5py.Group | h5py.Dataset, name: str | None, path: str | os.PathLike) -> tuple[Any, str]:
    import h5py

    if name is None:
        if not isinstance(parent, h5py.Dataset):
            raise TypeError("name may only be None when a dataset is given")
        return parent.id, _place(parent.name)
    obj, place = _open_path(parent, name, path)
    if not isinstance(obj, h5py.h5d.DatasetID):
        raise ModelFileError(path, place, "must be an array (dataset), got a group")
    return obj, place


def array_info(
    parent: h5py.Group | h5py.Dataset, name: str | None, path: str | os.PathLike
) -> tuple[tuple[int, ...], np.dtype]:
    """The declared shape and dtype of a dataset, after the same checks :func:`audit` makes; reads nothing.

    Args:
        parent: a group (or the file), or the dataset itself when ``name`` is ``None``.
        name: a relative path such as ``"params/kernel"``, or ``None``.
        path: the model file, named in messages.

    Returns:
        ``(shape, dtype)``, the dtype in native byte order.

    Raises:
        ModelFileError: when the dataset is missing, not a dataset, or breaks an audit rule.
    """
    dsid, place = _dataset(parent, name, path)
    with guard(path, place):
        shape, dtype, _ = _check_dataset(dsid, place, path, _file_size_of(parent))
    return shape, dtype


def _file_size_of(obj: Any) -> int:
    return int(obj.file.id.get_filesize())


def read_array(
    parent: h5py.Group | h5py.Dataset,
    name: str | None,
    path: str | os.PathLike,
    *,
    shape: tuple[int, ...] | None,
    dtypes: Iterable[str] = ("float32", "float64"),
    finite: bool = True,
    nonneg: bool = False,
    cast: str | np.dtype | None = None,
) -> np.ndarray:
    """Read one array after checking everything that can be checked without reading it.

    Before reading: the dataset exists and is reached through hard links only; its layout, filters and
    type pass :func:`audit`'s rules (the number of chunks included); its declared shape *equals* ``shape``
    (a ``(1,)`` dataset never fills a ``(5, 4)`` kernel); its dtype is one of ``dtypes``; its declared size
    is plausible for the file's size (:func:`max_declared_bytes`), so a chunked dataset that declares
    gigabytes but stores nothing is refused before anything is allocated; and all its storage was written
    (HDF5 returns fill values, or with ``fill_time="never"`` uninitialised memory, for storage that never
    was). After reading, and after the conversion to ``cast`` when given: float values are finite (when
    ``finite``; so a float64 ``1e300`` read for float32 is refused) and no value is negative (when
    ``nonneg``).

    Args:
        parent: a group (or the file), or the dataset itself when ``name`` is ``None``.
        name: a relative path such as ``"layers/0/params/kernel"``, or ``None``.
        path: the model file, named in messages.
        shape: the exact shape required; ``None`` accepts any shape (still bounded by the file's size).
        dtypes: the dtype names accepted, compared in native byte order (``">f4"`` counts as float32).
        finite: refuse NaN and infinities in float arrays.
        nonneg: refuse negative values.
        cast: the dtype to convert the values to before they are checked; ``None`` keeps the file's.

    Returns:
        A C-contiguous, native-endian array of the dataset's dtype (of ``cast`` when given).

    Raises:
        ModelFileError: when any check fails or the data cannot be read (corrupt, bad checksum).
    """
    import h5py

    dsid, place = _dataset(parent, name, path)
    allowed = [np.dtype(d).newbyteorder("=").name for d in dtypes]
    with guard(path, place):
        file_size = _file_size_of(parent)
        declared_shape, dtype, _ = _check_dataset(dsid, place, path, file_size)
        if dtype.name not in allowed:
            raise ModelFileError(path, place, f"must have dtype {' or '.join(allowed)}, got {dtype.name}")
        if shape is not None and declared_shape != tuple(shape):
            raise ModelFileError(path, place, f"must have shape {tuple(shape)}, got {declared_shape}")
        _check_written(dsid, place, path, declared_shape)
        _check_chunk_sizes(dsid, place, path, dtype.itemsize, file_size)
        if int(h5py.h5a.get_num_attrs(dsid)):  # neuro writes none on its arrays
            raise ModelFileError(path, place, "has attributes; a model file's arrays have none")
        out = np.empty(declared_shape, dtype=dtype)
        if out.size:
            dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
        stored = out
        if cast is not None and np.dtype(cast) != dtype:
            with np.errstate(over="ignore", invalid="ignore"):
                out = stored.astype(np.dtype(cast))
        if out.dtype.kind == "f" and finite:
            bad = ~np.isfinite(out)
            if bad.any():
                index = tuple(int(i) for i in np.argwhere(bad)[0])
                value = stored[index]
                if stored is out or not np.isfinite(value):
                    problem = f"holds a non-finite value ({value}) at index {index}"
                else:
                    problem = (
                        f"holds {float(value)!r} at index {index}, beyond the range of {out.dtype.name} "
                        f"(it would become {out[index]})"
                    )
                raise ModelFileError(path, place, problem)
        if nonneg:
            negative = out < 0
            if negative.any():
                index = tuple(int(i) for i in np.argwhere(negative)[0])
                raise ModelFileError(path, place, f"must not be negative, got {out[index]} at index {index}")
    return out


def check_no_extra(
    group: h5py.Group,
    expected_names: Iterable[str],
    path: str | os.PathLike,
    *,
    expected_attrs: Iterable[str] | None = None,
) -> None:
    """Refuse members (and, when asked, attributes) of a group that the caller does not expect.

    Args:
        group: a group or the file.
        expected_names: the member names allowed (missing ones are not an error here).
        path: the model file, named in messages.
        expected_attrs: the attribute names allowed; ``None`` does not check attributes.

    Raises:
        ModelFileError: naming the group and the first unexpected names (sorted).
    """
    import h5py

    place = _place(group.name)
    with guard(path, place):
        links = _list_links(group.id, place, path, MAX_OBJECTS, MAX_OBJECTS)
        names = [_check_name(raw, place, path, "member") for raw, _ in links]
        extra = sorted(set(names) - set(expected_names))
        if extra:
            raise ModelFileError(path, place, f"has unexpected members {_few(extra)}")
        if expected_attrs is not None:
            n = int(h5py.h5a.get_num_attrs(group.id))
            if n > MAX_ATTRIBUTES:
                raise ModelFileError(path, place, f"has more than {MAX_ATTRIBUTES} attributes")
            attrs = [
                _check_name(h5py.h5a.open(group.id, index=i).name, place, path, "attribute") for i in range(n)
            ]
            extra = sorted(set(attrs) - set(expected_attrs))
            if extra:
                raise ModelFileError(path, place, f"has unexpected attributes {_few(extra)}")


def _few(names: list[str], n: int = 5) -> str:
    shown = ", ".join(repr(name[:80]) for name in names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")
