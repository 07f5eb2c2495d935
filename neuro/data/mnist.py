"""Readers of the IDX format of the MNIST files, plain or gzip-compressed, with bounded reads.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values, big-endian, row-major. The reader parses the header first,
refuses a declared data size above ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`, 1 GiB) before reading
any value, then reads exactly the declared number of bytes, streaming a gzip file through its decompressor,
and refuses a file that holds more (or less) than declared. A gzip file is recognised by its magic bytes,
whatever its name.
"""

from __future__ import annotations

import gzip
import math
import os
import pathlib
import zlib
from typing import BinaryIO

import numpy as np

from neuro.data._files import open_regular

DEFAULT_MAX_BYTES = 2**30
"""Largest data section (in bytes, after decompression) :func:`load_idx` reads unless told otherwise."""

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CHUNK = 1 << 20


def _read_exact(f: BinaryIO, n: int) -> bytes:
    """Read up to ``n`` bytes (fewer only at the end of the stream)."""
    parts, got = [], 0
    while got < n:
        b = f.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def _read_idx(f: BinaryIO, name: str, max_bytes: int, plain_size: int | None) -> np.ndarray:
    magic = _read_exact(f, 4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES or magic[3] == 0:
        raise ValueError(f"path must name an IDX file, got {name!r} with a bad header {magic.hex()!r}")
    dtype = _IDX_TYPES[magic[2]]
    ndim = magic[3]
    dims = _read_exact(f, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"{name!r} is truncated inside its IDX header ({ndim} dimensions declared)")
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    expected = math.prod(shape) * dtype.itemsize
    if expected > max_bytes:
        raise ValueError(
            f"{name!r} declares shape {shape} of {dtype.name}, {expected:,} data bytes, more than "
            f"max_bytes={max_bytes:,}; pass a larger max_bytes to read it"
        )
    header = 4 + 4 * ndim
    if plain_size is not None and plain_size - header != expected:
        raise ValueError(
            f"{name!r} must hold {expected} data bytes for shape {shape}, got {plain_size - header}"
        )
    data = np.empty(expected, dtype=np.uint8)
    view = memoryview(data)
    got = 0
    while got < expected:
        k = f.readinto(view[got : min(expected, got + _CHUNK)])
        if not k:
            raise ValueError(
                f"{name!r} must hold {expected} data bytes for shape {shape}, got {got} (truncated)"
            )
        got += k
    if f.read(1):
        raise ValueError(
            f"{name!r} must hold {expected} data bytes for shape {shape}, got more (trailing data after them)"
        )
    return data.view(dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def load_idx(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read one IDX file (gzip-compressed or plain) into an array of its stored type and shape.

    Args:
        path: the file; compression is detected from its first bytes.
        max_bytes: largest data section accepted, in bytes after decompression; checked against the
            header before any value is read.

    Returns:
        The values, native byte order (uint8, int8, int16, int32, float32 or float64).

    Shape:
        As declared by the header, e.g. ``(N, 28, 28)`` for MNIST images, ``(N,)`` for labels.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: for a special file, a bad header, a declared size above ``max_bytes``, a data section
            shorter or longer than declared, or a corrupt or truncated gzip stream; naming the path.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")
    name = os.fspath(path)
    with open_regular(path) as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        if not compressed:
            return _read_idx(raw, name, int(max_bytes), os.fstat(raw.fileno()).st_size)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                return _read_idx(f, name, int(max_bytes), None)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise ValueError(f"{name!r} is a corrupt or truncated gzip file: {exc}") from None


def load_mnist(
    directory: str | os.PathLike, kind: str = "t10k", normalize: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST images and labels from ``directory``.

    Args:
        directory: folder with ``{kind}-images-idx3-ubyte[.gz]`` and ``{kind}-labels-idx1-ubyte[.gz]``.
        kind: ``"t10k"`` (test set) or ``"train"``.
        normalize: scale pixels to float32 in [0, 1] (else keep uint8).

    Returns:
        ``(images, labels)``: images channels-last, labels int64.

    Shape:
        images ``(N, 28, 28, 1)``; labels ``(N,)``.

    Raises:
        FileNotFoundError: when a file is missing.
        ValueError: for an unreadable file (see :func:`load_idx`) or images and labels that do not match.
    """
    directory = pathlib.Path(directory)

    def find(stem: str) -> pathlib.Path:
        for name in (f"{kind}-{stem}", f"{kind}-{stem}.gz"):
            if (directory / name).exists():
                return directory / name
        raise FileNotFoundError(f"directory {str(directory)!r} has no {kind}-{stem}[.gz]")

    images = load_idx(find("images-idx3-ubyte"))
    labels = load_idx(find("labels-idx1-ubyte")).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"images {images.shape} and labels {labels.shape} do not match")
    images = images[..., None]
    if normalize:
        images = images.astype(np.float32) / np.float32(255)
    return images, labels
