"""Readers of the IDX format of the MNIST files, plain or gzip-compressed, with bounded reads.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values, big-endian, row-major. The reader parses the header first,
refuses more than :data:`MAX_DIMS` dimensions and a declared data size above ``max_bytes`` (default
:data:`DEFAULT_MAX_BYTES`, 1 GiB) before reading any value, then reads exactly the declared number of bytes,
streaming a gzip file through its decompressor, and refuses a file that holds more (or less) than declared.
A gzip file is recognised by its magic bytes, whatever its name.

:func:`load_mnist` takes labels that are class ids: integers ``>= 0`` (integer types, or floats holding
whole numbers); anything else is an error naming the file and the first bad label. With ``normalize=True``
it scales pixels by their type, as the image folders of :mod:`neuro.data.images` do: integer pixels are
8-bit values in [0, 255] (``uint8``, or a wider integer type holding them) divided by 255, so [0, 1]; float
pixels are kept as stored (in float32). Integer pixels outside [0, 255] and float pixels that are NaN,
infinite or beyond float32 are errors naming the file (``normalize=False`` returns the stored values).
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
MAX_DIMS = 32
"""Most dimensions an IDX header may declare."""

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
    if ndim > MAX_DIMS:
        raise ValueError(
            f"{name!r} declares {ndim} dimensions in its IDX header (magic {magic.hex()!r}); at most "
            f"{MAX_DIMS} are supported"
        )
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
    span = math.prod(max(d, 1) for d in shape) * dtype.itemsize  # an empty array of huge other dimensions
    if span > max_bytes:
        raise ValueError(
            f"{name!r} declares shape {shape} of {dtype.name}: empty, but its other dimensions span {span:,} "
            f"bytes, more than max_bytes={max_bytes:,}"
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
        normalize: scale pixels to float32 by their type (see the module docstring): integer pixels in
            [0, 255] divided by 255, float pixels kept as stored; ``False`` keeps the stored values and type.

    Returns:
        ``(images, labels)``: images channels-last, labels int64 class ids.

    Shape:
        images ``(N, 28, 28, 1)``; labels ``(N,)``.

    Raises:
        FileNotFoundError: when a file is missing.
        ValueError: for an unreadable file (see :func:`load_idx`), images and labels that do not match,
            labels that are not integers ``>= 0``, or (``normalize=True``) pixels outside the range of
            their type's rule; each naming the file.
    """
    if not isinstance(normalize, (bool, np.bool_)):
        raise TypeError(f"normalize must be True or False, got {normalize!r}")
    directory = pathlib.Path(directory)

    def find(stem: str) -> pathlib.Path:
        for name in (f"{kind}-{stem}", f"{kind}-{stem}.gz"):
            if (directory / name).exists():
                return directory / name
        raise FileNotFoundError(f"directory {str(directory)!r} has no {kind}-{stem}[.gz]")

    images_path, labels_path = find("images-idx3-ubyte"), find("labels-idx1-ubyte")
    images = load_idx(images_path)
    labels = class_ids(load_idx(labels_path), str(labels_path))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"images {images.shape} ({str(images_path)!r}) and labels {labels.shape} ({str(labels_path)!r}) "
            "do not match: expected (N, height, width) images and N labels"
        )
    images = images[..., None]
    if normalize:
        images = scale_pixels(images, str(images_path))
    return images, labels


def class_ids(labels: np.ndarray, name: str) -> np.ndarray:
    """Labels as int64 class ids, refusing anything that is not a whole number ``>= 0``.

    Args:
        labels: the stored labels (any IDX type).
        name: the file, for errors.

    Returns:
        int64 labels of the same shape.

    Raises:
        ValueError: for a negative label, or a float label that is not a whole number (1.7, NaN, inf) or
            beyond 2**53; naming the file, the index and the value.
    """
    if labels.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(labels) | (labels != np.floor(labels)) | (labels < 0) | (labels > 2.0**53)
    else:
        bad = labels < 0
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        value = labels[index].item()
        raise ValueError(
            f"{name!r} must hold class ids (whole numbers >= 0), got {value!r} at index "
            f"{index[0] if len(index) == 1 else index}"
        )
    return labels.astype(np.int64)


def scale_pixels(images: np.ndarray, name: str) -> np.ndarray:
    """Pixels as float32 by their type's rule: integers in [0, 255] divided by 255, floats as stored.

    Args:
        images: the stored pixels.
        name: the file, for errors.

    Returns:
        float32 pixels of the same shape.

    Raises:
        ValueError: for integer pixels outside [0, 255], or float pixels that are NaN, infinite or beyond
            float32; naming the file and the first such pixel.
    """
    if images.dtype.kind in "iu":
        if images.size and images.dtype != np.uint8 and (int(images.min()) < 0 or int(images.max()) > 255):
            low, high = int(images.min()), int(images.max())
            raise ValueError(
                f"{name!r} holds {images.dtype} pixels in [{low}, {high}]; normalize=True divides integer "
                "pixels in [0, 255] (8-bit values) by 255 and keeps float pixels as stored; pass "
                "normalize=False to get the stored values"
            )
        return images.astype(np.float32) / np.float32(255)
    with np.errstate(over="ignore"):
        out = images.astype(np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name!r} holds the pixel value {images[index].item()!r} at index {index}, which is not a "
            "finite float32; float pixels are kept as stored, so they must be finite"
        )
    return out
