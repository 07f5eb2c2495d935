"""Readers of the IDX format of the MNIST files (plain or gzip-compressed)."""

from __future__ import annotations

import gzip
import os
import pathlib

import numpy as np

_IDX_TYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into an array of its stored type and shape.

    Raises:
        ValueError: when the header is not a valid IDX header or the data size does not match it.
    """
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"path must name an IDX file, got {str(path)!r} with a bad header")
    dtype = np.dtype(_IDX_TYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"path {str(path)!r} must hold {expected} data bytes for shape {shape}, "
            f"got {len(data) - header}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist(
    directory: str | os.PathLike, kind: str = "t10k", normalize: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST images and labels from ``directory``.

    Args:
        directory: folder with ``{kind}-images-idx3-ubyte[.gz]`` and ``{kind}-labels-idx1-ubyte[.gz]``.
        kind: ``"t10k"`` (test set) or ``"train"``.
        normalize: scale pixels to float32 in [0, 1] (else keep uint8).

    Returns:
        ``(images, labels)``: images ``(N, 28, 28, 1)`` channels-last, labels ``(N,)`` int64.

    Raises:
        FileNotFoundError: when a file is missing.
    """
    directory = pathlib.Path(directory)

    def find(stem: str) -> pathlib.Path:
        for name in (f"{kind}-{stem}", f"{kind}-{stem}.gz"):
            if (directory / name).exists():
                return directory / name
        raise FileNotFoundError(f"directory {str(directory)!r} has no {kind}-{stem}[.gz]")

    images = load_idx(find("images-idx3-ubyte"))
    labels = load_idx(find("labels-idx1-ubyte")).astype(np.int64)
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"images {images.shape} and labels {labels.shape} do not match")
    images = images[..., None]
    if normalize:
        images = images.astype(np.float32) / np.float32(255)
    return images, labels
