"""Folders of images, one sub-folder per class, read with Pillow into compact per-batch splits.

Layout: ``path/train/<class>/<image>`` and optionally ``path/test/<class>/<image>`` (for
:meth:`ImageDataSet.from_dir`), or ``root/<class>/<image>`` (for :func:`load_image_folder`). Class names are
the sub-folder names, sorted; files are read in sorted name order. Files and folders whose names start with
``.`` are ignored, and so are files whose extension is not one of ``.png .jpg .jpeg .bmp .gif .tif .tiff
.webp``.

Pixel values:

- **8-bit** images (the usual PNG, JPEG, BMP) are stored as uint8 and converted per batch to float32 times
  ``scale`` (default ``1/255``, giving [0, 1]).
- **16-bit** images (16-bit grayscale PNG or TIFF) are stored as uint16 and converted with
  ``scale · 255/65535`` (so the default gives [0, 1]: 65535 → 1.0 and 40000 → 0.61). 8-bit images in the same
  data set are stored as ``value · 257`` so that both depths share one range. Pillow reads 16-bit *colour*
  PNGs as 8-bit RGB.
- **Float** images (32-bit float TIFF) are stored as float32 and kept as stored, whatever ``scale`` is; 8-bit
  and 16-bit images in the same data set are then stored already scaled. A float image holding NaN or an
  infinity is refused (naming the file and the pixel).

Truncated files are refused: a PNG whose compressed pixel data stops before its last row (which Pillow
would silently fill with zeros) is checked against the rows its header declares. Entries that cannot be
examined (a symbolic link that loops, a folder that cannot be read) are unusable files like the others:
refused, or skipped with ``on_error="skip"``.

Safety: an image whose decoded size exceeds ``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`, 2**26 ≈ 67
million pixels) is refused from its header, before any pixel is decoded; a JPEG larger than ``image_size``
is decoded at a reduced scale (Pillow's ``draft``) first, so the limit applies to that reduced size. Pillow's
own decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, twice of which is refused when the file is
opened) applies as well. Special files (named pipes, devices, sockets) are never opened: they are refused
(or skipped with ``on_error="skip"``). Reading never writes to disk.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import struct
import warnings
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuro.data._files import open_regular
from neuro.data.augment import Augment
from neuro.data.dataset import DataSet, Split, check_batch_size, check_fraction, check_order, split_indices

DEFAULT_MAX_PIXELS = 2**26
"""Largest decoded image, in pixels (width × height), read unless ``max_pixels`` says otherwise."""

_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_FORMATS = ("PNG", "JPEG", "MPO", "BMP", "DIB", "GIF", "TIFF", "WEBP")  # those this Pillow has are used
_MODES_8 = {
    "1": 1, "L": 1, "LA": 2, "La": 2, "P": 3, "PA": 4, "RGB": 3, "RGBX": 3, "YCbCr": 3, "LAB": 3,
    "HSV": 3, "CMYK": 3, "RGBA": 4, "RGBa": 4,
}  # fmt: skip
_MODES_16 = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_CONVERT = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_STORAGE = {"8": np.dtype(np.uint8), "16": np.dtype(np.uint16), "F": np.dtype(np.float32)}
_STORAGE_DEPTH = {v: k for k, v in _STORAGE.items()}
_DEPTH_ORDER = {"8": 0, "16": 1, "F": 2}
_DEPTH_NAME = {"8": "8-bit", "16": "16-bit", "F": "float"}


class ImageFileError(ValueError):
    """An image file that cannot be used: unreadable, corrupt, special, too large or of an unknown mode."""


class ImageSkippedWarning(UserWarning):
    """Warned for each image skipped with ``on_error="skip"``."""


_pillow: list[Any] = []


def _pil() -> Any:
    """Return ``PIL.Image`` with its plugins loaded (and the formats this Pillow can open noted)."""
    if not _pillow:
        try:
            from PIL import Image
        except ImportError as exc:  # pragma: no cover - Pillow is a dependency
            raise ImportError("reading images needs Pillow: pip install pillow") from exc
        Image.init()
        _pillow.extend([Image, tuple(f for f in _FORMATS if f in Image.OPEN)])
    return _pillow[0]


def check_image_size(value: Any, name: str = "image_size") -> tuple[int, int] | None:
    """Return ``value`` as ``(height, width)``: ``None``, a positive int (a square) or a pair of them.

    Args:
        value: the size.
        name: the argument's name, for the error.

    Returns:
        ``None`` or ``(height, width)``.

    Raises:
        ValueError: when ``value`` is not a positive integer or a pair of positive integers.
    """
    if value is None:
        return None

    def ok(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0

    if ok(value):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(ok(v) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(
        f"{name} must be a positive integer or a pair (height, width) of positive integers, got {value!r}"
    )


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class _Spec:
    """How to decode: target size, channels, limit, storage dtype and the scale of stored floats."""

    size: tuple[int, int] | None  # (height, width) to resize to
    channels: int | None
    max_pixels: int
    storage: np.dtype = _STORAGE["8"]
    scale: float = 1 / 255


def _mode_info(mode: str) -> tuple[str, int] | None:
    """Return ``(depth, natural channels)`` of a Pillow mode, or ``None`` when unsupported."""
    if mode in _MODES_8:
        return "8", _MODES_8[mode]
    if mode in _MODES_16:
        return "16", 1
    if mode == "F":
        return "F", 1
    return None


def _open(path: str, spec: _Spec) -> tuple[Any, Any]:
    """Open ``path`` with Pillow (header only), apply the JPEG draft and the pixel limit."""
    fh = open_regular(path)
    try:
        im = _pil().open(fh, formats=_pillow[1])
    except BaseException:
        fh.close()
        raise
    try:
        if spec.size is not None and im.format in ("JPEG", "MPO"):
            h, w = spec.size
            if im.size[0] > w and im.size[1] > h:
                im.draft(None, (w, h))  # decode at 1/2, 1/4 or 1/8 scale, no smaller than the target
        width, height = im.size
        if width * height > spec.max_pixels:
            raise ImageFileError(
                f"image {path!r} is {width}×{height} = {width * height:,} pixels, more than "
                f"max_pixels={spec.max_pixels:,}; pass a larger max_pixels to read it"
            )
        if width <= 0 or height <= 0:
            raise ImageFileError(f"image {path!r} has an empty size {width}×{height}")
        if _mode_info(im.mode) is None:
            raise ImageFileError(f"image {path!r} has the unsupported mode {im.mode!r}")
    except BaseException:
        im.close()
        fh.close()
        raise
    return fh, im


def _guard(path: str, action: str, fn: Any, *args: Any) -> Any:
    """Run ``fn``; turn any failure of the file or of Pillow into an :class:`ImageFileError`."""
    try:
        return fn(*args)
    except ImageFileError:
        raise
    except ValueError as exc:  # includes NotRegularFileError
        if str(exc).startswith(repr(path)):
            raise ImageFileError(str(exc)) from None
        raise ImageFileError(f"image {path!r} cannot be {action}: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # Pillow's decoders raise OSError, SyntaxError, struct.error, EOFError...
        raise ImageFileError(f"image {path!r} cannot be {action}: {type(exc).__name__}: {exc}") from exc


def _probe_unguarded(path: str, spec: _Spec) -> tuple[int, int, str, int]:
    fh, im = _open(path, spec)
    with fh, im:
        depth, channels = _mode_info(im.mode)  # type: ignore[misc]
        if im.mode == "P" and "transparency" in im.info:
            channels = 4
        return im.size[1], im.size[0], depth, channels


def _probe(path: str, spec: _Spec) -> tuple[int, int, str, int]:
    """Return ``(height, width, depth, channels)`` of the decoded image, reading only its header."""
    return _guard(path, "read", _probe_unguarded, path, spec)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type: grey, RGB, palette, grey+alpha, RGBA
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_BLOCK = 1 << 16


def _png_data_size(width: int, height: int, depth: int, colour: int, interlace: int) -> tuple[int, int]:
    """(bytes of decompressed pixel data, bytes per row or 0 when interlaced) a PNG header declares."""
    bits = depth * _PNG_CHANNELS.get(colour, 4)
    if interlace != 1:
        row = 1 + (width * bits + 7) // 8  # a filter byte and the pixels
        return height * row, row
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        w, h = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if w > 0 and h > 0:
            total += h * (1 + (w * bits + 7) // 8)
    return total, 0


_CHUNK_HEAD = struct.Struct(">I4s")
_IHDR = struct.Struct(">IIBBBBB")


def _check_png_data(fd: int, path: str) -> None:
    """Refuse a PNG whose IDAT data decompresses to fewer bytes than its header's rows need, or whose
    compressed data fails its checksum.

    Pillow decodes a short file without an error and leaves the missing rows zero, and it checks neither the
    chunks' CRCs nor the zlib stream's Adler-32 when that sits in a later IDAT chunk. The file is read with
    ``os.pread`` (the descriptor's position, which Pillow reads from, does not move) in blocks of
    :data:`_INFLATE_BLOCK` bytes, and decompression goes on to the end of the zlib stream (where zlib checks
    its Adler-32), stopping early once a block more than the image needs came out, so the work and the memory
    are bounded by the image's declared size and the block.
    """
    buf = os.pread(fd, _INFLATE_BLOCK, 0)  # most files are read whole by this one call
    if buf[:8] != _PNG_SIGNATURE or buf[12:16] != b"IHDR" or len(buf) < 33:
        return  # Pillow read it as a PNG anyway: leave it to Pillow
    need, row = _png_data_size(*_IHDR.unpack_from(buf, 16)[:4], buf[28])
    got, base, pos = 0, 0, 33  # bytes inflated; file offset of buf[0]; position in buf
    over = need + _INFLATE_BLOCK  # more than this came out: stop (the checksum is not worth more work)
    inflater = zlib.decompressobj()
    in_idat = False
    try:
        while True:
            if pos + 8 > len(buf):  # read on (a chunk header, or data, past the block)
                base, pos = base + pos, 0
                buf = os.pread(fd, _INFLATE_BLOCK, base)
                if len(buf) < 8:
                    break
            length, kind = _CHUNK_HEAD.unpack_from(buf, pos)
            if kind != b"IDAT":
                if in_idat:
                    break  # the IDAT chunks are consecutive: the pixel data ended
                pos += 12 + length
                continue
            in_idat = True
            pos += 8
            left = length
            while left and got <= over and not inflater.eof:
                if pos >= len(buf):
                    base, pos = base + pos, 0
                    buf = os.pread(fd, _INFLATE_BLOCK, base)
                    if not buf:
                        break
                block = buf[pos : pos + left]
                pos += len(block)
                left -= len(block)
                while block and got <= over and not inflater.eof:
                    got += len(inflater.decompress(block, _INFLATE_BLOCK))
                    block = inflater.unconsumed_tail
            if inflater.eof or got > over:
                break  # the stream ended (its checksum checked), or it gave more than enough
            pos += left + 4
    except zlib.error as exc:
        raise ImageFileError(
            f"image {path!r} cannot be decoded: its compressed pixel data is corrupt ({exc})"
        ) from None
    if need and got < need:
        if row:
            stops = f"its pixel data stops after {got // row} of {need // row} rows"
        else:
            stops = f"its (interlaced) pixel data stops after {got} of {need} bytes"
        raise ImageFileError(
            f"image {path!r} cannot be decoded: {stops} (a truncated file; Pillow would fill the rest with "
            "zeros)"
        )


def _check_finite(arr: np.ndarray, path: str) -> None:
    """Refuse float pixels that are NaN or infinite, naming the first one."""
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0][:2])
        raise ImageFileError(
            f"image {path!r} holds a non-finite pixel value ({arr[r, c].ravel()[0]}) at row {r}, column {c}; "
            "float images are kept as stored, so they must be finite"
        )


def _decode_unguarded(path: str, spec: _Spec) -> np.ndarray:
    image = _pil()
    fh, im = _open(path, spec)
    with fh, im:
        if im.format == "PNG":
            _check_png_data(fh.fileno(), path)
        depth, natural = _mode_info(im.mode)  # type: ignore[misc]
        if im.mode == "P" and "transparency" in im.info:
            natural = 4
        c = spec.channels or natural
        h, w = spec.size if spec.size is not None else (im.size[1], im.size[0])
        if _DEPTH_ORDER[depth] > _DEPTH_ORDER[_STORAGE_DEPTH[spec.storage]]:
            raise ImageFileError(
                f"image {path!r} has {_DEPTH_NAME[depth]} pixels but the data set holds "
                f"{spec.storage} images (did the file change after the folder was listed?)"
            )
        if depth == "8":
            if im.mode != _CONVERT[c]:
                try:
                    im = im.convert(_CONVERT[c])
                except ValueError:  # no direct conversion: go through RGB(A)
                    im = im.convert("RGBA" if natural in (2, 4) else "RGB").convert(_CONVERT[c])
        elif c not in (1, 3):
            raise ImageFileError(
                f"image {path!r} has {_DEPTH_NAME[depth]} pixels, which convert to 1 or 3 "
                f"channels only, not channels={c}"
            )
        elif im.mode not in ("I;16", "I", "F"):
            im = im.convert("I")
        if depth == "F":
            _check_finite(np.asarray(im), path)  # before resizing: the file's own rows and columns
        if im.size != (w, h):
            im = im.resize((w, h), image.Resampling.BILINEAR)
        arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if depth == "16":
        if arr.dtype != np.uint16:
            if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 65535):
                raise ImageFileError(
                    f"image {path!r} holds integers in [{int(arr.min())}, {int(arr.max())}], outside the "
                    "16-bit range [0, 65535]"
                )
            arr = arr.astype(np.uint16)
        if c == 3:
            arr = np.repeat(arr, 3, axis=2)
    elif depth == "F":
        arr = arr.astype(np.float32, copy=False)
        if c == 3:
            arr = np.repeat(arr, 3, axis=2)
    if arr.shape != (h, w, c):
        raise ImageFileError(f"image {path!r} decodes to shape {arr.shape}, expected {(h, w, c)}")
    return _store(arr, depth, spec)


def _store(arr: np.ndarray, depth: str, spec: _Spec) -> np.ndarray:
    """Convert decoded pixels to the storage dtype (see the module docstring)."""
    if spec.storage == np.uint8:
        return arr
    if spec.storage == np.uint16:
        return arr if depth == "16" else arr.astype(np.uint16) * np.uint16(257)
    if depth == "F":
        return arr
    factor = spec.scale if depth == "8" else spec.scale * 255 / 65535
    return np.multiply(arr, np.float32(factor), dtype=np.float32)


def _decode(path: str, spec: _Spec) -> np.ndarray:
    """Decode one image to ``(height, width, channels)`` in the storage dtype."""
    return _guard(path, "decoded", _decode_unguarded, path, spec)


def _batch_factor(spec: _Spec) -> float:
    """The factor turning stored values into the float32 batch values."""
    if spec.storage == np.uint8:
        return spec.scale
    if spec.storage == np.uint16:
        return spec.scale * 255 / 65535
    return 1.0


def _class_folders(root: pathlib.Path, on_error: str = "raise") -> list[tuple[str, pathlib.Path]]:
    out = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError as exc:  # a symbolic link that loops, say: perhaps a class folder, unusable
            _skip_or_raise(
                ImageFileError(f"entry {entry.path!r} of folder {str(root)!r} cannot be examined: {exc}"),
                on_error,
            )
            continue
        if is_dir:
            out.append((entry.name, pathlib.Path(entry.path)))
    return out


def _image_files(folder: pathlib.Path) -> list[str]:
    out = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") or os.path.splitext(entry.name)[1].lower() not in _EXTENSIONS:
            continue
        try:
            if entry.is_dir():
                continue
        except OSError:  # a symbolic link that loops: the probe refuses (or skips) it, naming it
            pass
        out.append(entry.path)  # special files are refused (or skipped) by the probe, never opened
    return out


def _skip_or_raise(exc: ImageFileError, on_error: str) -> None:
    if on_error == "raise":
        raise exc
    warnings.warn(f"skipping: {exc}", ImageSkippedWarning, stacklevel=4)


@dataclass
class _Listing:
    """The usable files of one folder of class folders, after probing their headers."""

    paths: list[str]
    labels: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    depths: list[str]
    channels: np.ndarray


def _list_folder(
    root: pathlib.Path, classes: list[str] | None, spec: _Spec, on_error: str, what: str
) -> tuple[_Listing, list[str]]:
    """List and probe ``root/<class>/*``; ``classes`` fixes the class ids (a test folder), else sorted."""
    folders = _class_folders(root, on_error)
    if not folders:
        raise ValueError(
            f"{what} folder {str(root)!r} holds no class sub-folders (expected {what}/<class>/<image>)"
        )
    if classes is None:
        classes = [name for name, _ in folders]
    else:
        for name, _ in folders:
            if name not in classes:
                raise ValueError(
                    f"class {name!r} of {what} folder {str(root)!r} is not a class of the training folder "
                    f"(classes: {classes})"
                )
    paths: list[str] = []
    labels, heights, widths, depths, channels = [], [], [], [], []
    for name, folder in folders:
        files = _image_files(folder)
        if not files:
            raise ValueError(f"class folder {str(folder)!r} holds no image files")
        label = classes.index(name)
        found = 0
        for path in files:
            try:
                h, w, depth, c = _probe(path, spec)
            except ImageFileError as exc:
                _skip_or_raise(exc, on_error)
                continue
            paths.append(path)
            labels.append(label)
            heights.append(h)
            widths.append(w)
            depths.append(depth)
            channels.append(c)
            found += 1
        if not found:
            raise ValueError(f"class folder {str(folder)!r} holds no readable images (all were skipped)")
    listing = _Listing(
        paths,
        np.asarray(labels, dtype=np.int64),
        np.asarray(heights, dtype=np.int64),
        np.asarray(widths, dtype=np.int64),
        depths,
        np.asarray(channels, dtype=np.int64),
    )
    return listing, classes


def _settle(
    listings: Sequence[_Listing], image_size: tuple[int, int] | None, channels: int | None, spec: _Spec
) -> _Spec:
    """Fix the common image shape, channel count and storage dtype of all listed files."""
    paths = [p for li in listings for p in li.paths]
    if image_size is None:
        hw = np.concatenate([np.stack([li.heights, li.widths], axis=1) for li in listings])
        differ = np.flatnonzero((hw != hw[0]).any(axis=1))
        if differ.size:
            i = int(differ[0])
            raise ValueError(
                f"images differ in size: {paths[0]!r} is {hw[0][0]}×{hw[0][1]} (height×width) but "
                f"{paths[i]!r} is {hw[i][0]}×{hw[i][1]}; pass image_size=(height, width) to resize them"
            )
        image_size = (int(hw[0][0]), int(hw[0][1]))
    depths = [d for li in listings for d in li.depths]
    if channels is None:
        ch = np.concatenate([li.channels for li in listings])
        differ = np.flatnonzero(ch != ch[0])
        if differ.size:
            i = int(differ[0])
            raise ValueError(
                f"images have different channel counts: {paths[0]!r} has {ch[0]} but {paths[i]!r} has "
                f"{ch[i]}; pass channels=1 (grayscale), 3 (RGB) or 4 (RGBA) to convert them"
            )
        channels = int(ch[0])
    if channels not in (1, 3):
        for p, d in zip(paths, depths, strict=True):
            if d != "8":
                raise ValueError(
                    f"image {p!r} has {_DEPTH_NAME[d]} pixels, which convert to 1 or 3 "
                    f"channels only; pass channels=1 or channels=3, got {channels}"
                )
    storage = _STORAGE["F"] if "F" in depths else _STORAGE["16"] if "16" in depths else _STORAGE["8"]
    return _Spec(image_size, channels, spec.max_pixels, storage, spec.scale)


def _decode_many(paths: list[str], spec: _Spec, on_error: str, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``paths`` into one preallocated array; return it and the mask of the files kept."""
    h, w = spec.size  # type: ignore[misc]
    out = np.empty((len(paths), h, w, spec.channels), dtype=spec.storage)
    ok = np.ones(len(paths), dtype=bool)
    errors: list[tuple[int, ImageFileError]] = []

    def work(start: int, stop: int) -> None:
        for i in range(start, stop):
            try:
                out[i] = _decode(paths[i], spec)
            except ImageFileError as exc:
                ok[i] = False
                errors.append((i, exc))
                if on_error == "raise":
                    return

    chunk = 256
    spans = [(s, min(s + chunk, len(paths))) for s in range(0, len(paths), chunk)]
    if workers > 1 and len(spans) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="neuro-images") as pool:
            for f in [pool.submit(work, a, b) for a, b in spans]:
                f.result()
    else:
        for a, b in spans:
            work(a, b)
    for _, exc in sorted(errors, key=lambda e: e[0]):
        _skip_or_raise(exc, on_error)
    if not ok.all():  # compact in place: the kept rows move down, no second array
        keep = np.flatnonzero(ok)
        for k, i in enumerate(keep):
            if k != i:
                out[k] = out[i]
        out = out[: len(keep)]
    return out, ok


class _Files:
    """The files of a lazy split, decoded on demand."""

    def __init__(self, paths: list[str], spec: _Spec) -> None:
        self.paths = paths
        self.spec = spec

    def load(self, rows: np.ndarray) -> np.ndarray:
        h, w = self.spec.size  # type: ignore[misc]
        out = np.empty((len(rows), h, w, self.spec.channels), dtype=self.spec.storage)
        for k, r in enumerate(rows):
            out[k] = _decode(self.paths[r], self.spec)
        return out


class ImageSplit(Split):
    """A split of an image data set: images in memory (uint8/uint16/float32) or files decoded per batch.

    Built by :meth:`ImageDataSet.from_dir`; not meant to be constructed directly.

    Args:
        source: the stored images ``(N, H, W, C)`` or a lazy file source.
        labels: int64 class ids ``(N,)`` of the source's images.
        index: the rows of the source forming this split, or ``None`` for all.
        factor: the factor turning stored values into float32 batch values.
        n_classes: the number of classes when targets are one-hot rows, else ``None`` (class ids).
        augment: augmentation applied by ``batches(..., augment=True)``, or ``None``.
        workers: decoding threads of a lazy split.
        input_shape: ``(H, W, C)``.
    """

    def __init__(
        self,
        source: np.ndarray | _Files,
        labels: np.ndarray,
        index: np.ndarray | None,
        factor: float,
        n_classes: int | None,
        augment: Augment | None,
        workers: int,
        input_shape: tuple[int, int, int],
    ) -> None:
        self._source = source
        self._labels = labels
        self._index = index
        self._factor = np.float32(factor)
        self._n_classes = n_classes
        self._augment = augment
        self._workers = workers
        self._shape = input_shape

    def __len__(self) -> int:
        return len(self._labels) if self._index is None else len(self._index)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(height, width, channels)`` of one image."""
        return self._shape

    @property
    def lazy(self) -> bool:
        """Whether images are decoded from their files per batch."""
        return isinstance(self._source, _Files)

    @property
    def nbytes(self) -> int:
        """Bytes of the stored images this split reads from (shared with the other splits of the same
        folder; 0 when lazy)."""
        return 0 if isinstance(self._source, _Files) else int(self._source.nbytes)

    @property
    def storage_dtype(self) -> np.dtype:
        """The dtype images are held (or decoded) in: uint8, uint16 or float32."""
        return self._source.spec.storage if isinstance(self._source, _Files) else self._source.dtype

    def _targets(self, rows: np.ndarray) -> np.ndarray:
        ids = self._labels[rows]
        if self._n_classes is None:
            return ids
        y = np.zeros((len(ids), self._n_classes), dtype=np.float32)
        y[np.arange(len(ids)), ids] = 1
        return y

    def _finish(self, stored: np.ndarray, rows: np.ndarray, aug: Augment | None, rng: Any) -> tuple:
        x = np.multiply(stored, self._factor, dtype=np.float32)
        if aug is not None:
            x = aug.apply(x, rng)
        return x, self._targets(rows)

    def batches(
        self,
        order: np.ndarray,
        batch_size: int,
        augment: bool = False,
        rng: np.random.Generator | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(x, y)`` batches in the order of ``order`` (see :meth:`Split.batches`).

        A lazy split decodes each batch in a small thread pool, prefetching the next batches while the
        current one is used; the batches equal those of an in-memory split of the same files.

        Args:
            order: 1-D integer array of sample indices of this split.
            batch_size: samples per batch.
            augment: apply the split's augmentation (only the training split has one; else a no-op).
            rng: generator for the augmentation; required when augmenting.

        Yields:
            ``(x, y)``: x float32 ``(B, H, W, C)`` (stored values times the scale); y int64 class ids
            ``(B,)`` or float32 one-hot rows ``(B, classes)``.

        Raises:
            ValueError: for a bad ``order`` or ``batch_size``, a missing ``rng``, or (lazy) an image that
                cannot be decoded.
        """
        order = check_order(order, len(self))
        batch_size = check_batch_size(batch_size)
        aug = self._augment if augment else None
        if aug is not None and not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator when augment=True, got {rng!r}")
        windows = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
        if self._index is not None:
            windows = [self._index[wd] for wd in windows]
        if isinstance(self._source, _Files):
            return self._lazy(windows, aug, rng)
        return self._memory(windows, aug, rng)

    def _memory(self, windows: list[np.ndarray], aug: Augment | None, rng: Any) -> Iterator[tuple]:
        for rows in windows:
            yield self._finish(self._source[rows], rows, aug, rng)

    def _lazy(self, windows: list[np.ndarray], aug: Augment | None, rng: Any) -> Iterator[tuple]:
        source = self._source
        ahead = max(2, self._workers)
        with ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="neuro-images") as pool:
            pending: deque = deque()
            todo = iter(windows)

            def submit() -> None:
                rows = next(todo, None)
                if rows is not None:
                    pending.append((rows, pool.submit(source.load, rows)))

            for _ in range(ahead):
                submit()
            try:
                while pending:
                    rows, future = pending.popleft()
                    submit()
                    yield self._finish(future.result(), rows, aug, rng)
            finally:
                for _, future in pending:
                    future.cancel()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the whole split as ``(x float32, y)``, in stored order, without augmentation.

        Returns:
            ``(x, y)`` with ``len(self)`` rows.
        """
        n = len(self)
        if n == 0:
            return np.empty((0, *self._shape), dtype=np.float32), self._targets(np.empty(0, dtype=np.intp))
        return next(iter(self.batches(np.arange(n), n)))

    def _class_ids(self) -> np.ndarray:
        return self._labels if self._index is None else self._labels[self._index]

    def __repr__(self) -> str:
        return f"ImageSplit({len(self)} images, input_shape={self._shape}, lazy={self.lazy})"


class ImageDataSet(DataSet):
    """Images from a folder of class folders, kept compact and converted to float32 per batch.

    Build one with :meth:`from_dir`. See the module docstring for pixel depths, limits and safety.

    Attributes:
        train, valid, test: the splits (:class:`ImageSplit`; ``test`` is ``None`` without a test/ folder).
        class_names: the class folder names, sorted (class id = index).
        input_scaler, output_scaler: ``None`` (pixels are scaled by ``scale``).
        image_size: ``(height, width)``.
        channels: channels per image.
        storage_dtype: how the images are held: uint8, uint16 or float32.
        scale: the factor applied to 8-bit values (see :meth:`from_dir`).
    """

    image_size: tuple[int, int] | None = None
    channels: int | None = None
    storage_dtype: np.dtype | None = None
    scale: float | None = None
    _spec: _Spec | None = None  # how from_dir decoded the images (what load_images repeats)
    _resizes: bool = False  # whether from_dir was given an image_size

    @classmethod
    def from_dir(
        cls,
        path: str | os.PathLike,
        image_size: int | tuple[int, int] | None = None,
        channels: int | None = None,
        valid_frac: float = 0.0,
        one_hot: bool = False,
        scale: float = 1 / 255,
        seed: int | None = 0,
        augment: Augment | dict | None = None,
        lazy: bool = False,
        on_error: str = "raise",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        workers: int = 2,
    ) -> ImageDataSet:
        """Read ``path/train/<class>/*`` (and ``path/test/<class>/*`` when present).

        Args:
            path: the data set folder.
            image_size: ``(height, width)`` (or one int for a square) to resize every image to (bilinear);
                ``None`` requires all images to share one size.
            channels: 1, 2, 3 or 4 to convert every image to L, LA, RGB or RGBA; ``None`` requires all
                images to have the same channel count.
            valid_frac: share of the training images held out for validation, in [0, 1): the last
                ``valid_frac`` of a permutation seeded by ``seed``.
            one_hot: targets as float32 one-hot rows instead of int64 class ids.
            scale: factor applied to 8-bit values per batch (16-bit ones get ``scale·255/65535``; float
                images are kept as stored).
            seed: seed of the validation permutation.
            augment: random augmentation of the training split, applied only by
                ``train.batches(..., augment=True, rng=...)``: an :class:`~neuro.data.Augment` or a dict of
                its fields (``hflip``, ``vflip``, ``rotate``, ``rotate_p``, ``shift``; flips and rotation
                with probabilities).
            lazy: keep only the file list and decode each batch when it is asked for (in a thread pool
                that prefetches the next batches); for folders larger than memory.
            on_error: ``"raise"`` on an unreadable, corrupt, special or too large image file, or ``"skip"``
                it with an :class:`ImageSkippedWarning`. A lazy data set checks headers when built; an
                image that fails to decode later raises during ``batches``.
            max_pixels: largest decoded image accepted, in pixels.
            workers: threads decoding images (when loading, and per batch when lazy).

        Returns:
            The data set.

        Shape:
            batches: x ``(B, H, W, C)`` float32; y ``(B,)`` int64 or ``(B, classes)`` float32.

        Raises:
            FileNotFoundError: when ``path`` or ``path/train`` does not exist.
            TypeError: for an ``augment`` of the wrong type.
            ValueError: for a bad argument (naming it), a train/ folder without class folders, an empty
                class folder, a test class that is not a training class, an unusable image (naming the
                file; unless skipped), images of different sizes without ``image_size`` or of different
                channel counts without ``channels``.
        """
        image_size = check_image_size(image_size, "image_size")
        if channels is not None and (
            isinstance(channels, bool)
            or not isinstance(channels, (int, np.integer))
            or channels not in (1, 2, 3, 4)
        ):
            raise ValueError(f"channels must be None, 1, 2, 3 or 4, got {channels!r}")
        valid_frac = check_fraction(valid_frac, "valid_frac")
        if not isinstance(one_hot, bool):
            raise ValueError(f"one_hot must be True or False, got {one_hot!r}")
        scale = _check_scale(scale)
        aug = Augment.coerce(augment)
        if not isinstance(lazy, bool):
            raise ValueError(f"lazy must be True or False, got {lazy!r}")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        max_pixels = _positive_int(max_pixels, "max_pixels")
        workers = _positive_int(workers, "workers")

        root = pathlib.Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"path {str(root)!r} is not a folder")
        train_dir = root / "train"
        if not train_dir.is_dir():
            raise FileNotFoundError(
                f"path {str(root)!r} has no train/ folder (expected {str(train_dir)!r}/<class>/<image>)"
            )
        spec = _Spec(image_size, None if channels is None else int(channels), max_pixels, scale=scale)
        train, classes = _list_folder(train_dir, None, spec, on_error, "train")
        test = None
        test_dir = root / "test"
        if test_dir.is_dir():
            test, _ = _list_folder(test_dir, classes, spec, on_error, "test")
        spec = _settle([train] if test is None else [train, test], image_size, spec.channels, spec)

        train_src, train_labels = _source(train, spec, lazy, on_error, workers)
        if len(train_labels) == 0 or any(not (train_labels == k).any() for k in range(len(classes))):
            missing = [c for k, c in enumerate(classes) if not (train_labels == k).any()]
            raise ValueError(f"class folders {missing} under {str(train_dir)!r} hold no readable images")
        shape = (spec.size[0], spec.size[1], spec.channels)  # type: ignore[index]
        factor = _batch_factor(spec)
        n_classes = len(classes) if one_hot else None
        train_idx, valid_idx = split_indices(len(train_labels), valid_frac, seed)
        common = dict(factor=factor, n_classes=n_classes, workers=workers, input_shape=shape)
        train_split = ImageSplit(
            train_src, train_labels, None if len(valid_idx) == 0 else train_idx, augment=aug, **common
        )
        valid_split = ImageSplit(train_src, train_labels, valid_idx, augment=None, **common)
        test_split = None
        if test is not None:
            test_src, test_labels = _source(test, spec, lazy, on_error, workers)
            test_split = ImageSplit(test_src, test_labels, None, augment=None, **common)
        data = cls(train_split, valid_split, test_split, classes)
        data.image_size = spec.size
        data.channels = spec.channels
        data.storage_dtype = spec.storage
        data.scale = scale
        data._spec = spec
        data._resizes = image_size is not None
        return data

    def load_images(
        self, paths: str | os.PathLike | Sequence[str | os.PathLike], resize: bool | None = None
    ) -> np.ndarray:
        """Read image files for prediction, converted exactly as this data set's images are.

        Each file is decoded to the data set's channels (L, LA, RGB or RGBA), resized (bilinear) to its
        ``image_size`` and scaled as its batches are, so ``net.predict(data.load_images(paths))`` sees what
        training saw: an image of a file that is also in the data set comes out bitwise equal to its row in
        the data set's batches. A file deeper than the data set's images (a 16-bit PNG for a data set of
        8-bit ones) is scaled by its own depth into the same range (see the module docstring). The values
        are raw, as the splits hand them out: a model trained on the data set applies its input scaler.
        Files are recognised by their contents, whatever their extension; a lazy data set reads the same way
        (building one with ``lazy=True`` reads only the headers of its folder, a quick way to get the
        conversion for a few files).

        Args:
            paths: one path, or a sequence of paths.
            resize: resize images of another size to ``image_size``. ``None`` (default): as the data set
                does, that is when :meth:`from_dir` was given an ``image_size``; without one, its images all
                had one size, and a file of another size is refused. ``True`` always resizes; ``False``
                always refuses another size.

        Returns:
            float32 images, one per path, in the order given.

        Shape:
            ``(N, H, W, C)`` with ``(H, W)`` the data set's ``image_size`` and ``C`` its ``channels``; one
            path gives ``(1, H, W, C)``.

        Raises:
            FileNotFoundError: for a path that does not exist, naming it.
            TypeError: for a path that is not a string or path, or a ``resize`` that is not a bool or None.
            ValueError: for a data set not built by :meth:`from_dir`, and (as
                :class:`~neuro.data.images.ImageFileError`, naming the file) an unreadable, corrupt or special
                file, a size it may not be resized from, too many pixels, or pixels that do not convert to
                the data set's channels.

        Examples:
            >>> x = data.load_images(["new/cat.jpg", "new/dog.png"])   # doctest: +SKIP
            >>> net.predict_class(x)                                    # doctest: +SKIP
        """
        spec = self._spec
        if spec is None or spec.size is None or spec.channels is None:
            raise ValueError(
                f"load_images needs an ImageDataSet built by ImageDataSet.from_dir (it repeats how that read "
                f"its images); this {type(self).__name__} was built directly"
            )
        if resize is not None and not isinstance(resize, bool):
            raise TypeError(f"resize must be None, True or False, got {resize!r}")
        resize = self._resizes if resize is None else resize
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        try:
            items = list(paths)
        except TypeError:
            kind = type(paths).__name__
            raise TypeError(f"paths must be a path or a sequence of paths, got {kind}") from None
        names = []
        for p in items:
            if not isinstance(p, (str, os.PathLike)):
                raise TypeError(f"paths must hold strings or path objects, got {type(p).__name__} {p!r}")
            names.append(os.fspath(p))
        h, w = spec.size
        out = np.empty((len(names), h, w, spec.channels), dtype=np.float32)
        for k, path in enumerate(names):
            out[k] = self._load_one(path, spec, resize)
        return out

    def load_image_vec(self, paths: str | os.PathLike | Sequence[str | os.PathLike]) -> np.ndarray:
        """The original neuro's name of :meth:`load_images`: read image files as this data set reads its own.

        Args:
            paths: one path, or a sequence of paths.

        Returns:
            float32 images ``(N, H, W, C)``, as :meth:`load_images` returns them.
        """
        return self.load_images(paths)

    @staticmethod
    def _load_one(path: str, spec: _Spec, resize: bool) -> np.ndarray:
        """One file as the float32 values a batch holds: decoded with the data set's spec (or a deeper
        storage when the file is deeper), times the batch factor."""
        if not os.path.lexists(path):
            raise FileNotFoundError(f"image {path!r} does not exist")
        height, width, depth, _ = _probe(path, spec)
        h, w = spec.size  # type: ignore[misc]
        if not resize and (height, width) != (h, w):
            raise ImageFileError(
                f"image {path!r} is {height}×{width} (height×width) but the data set's images are {h}×{w}; "
                "pass resize=True to resize it (bilinear), as from_dir(image_size=...) resizes"
            )
        if _DEPTH_ORDER[depth] > _DEPTH_ORDER[_STORAGE_DEPTH[spec.storage]]:
            spec = dataclasses.replace(spec, storage=_STORAGE[depth])
        stored = _decode(path, spec)
        return np.multiply(stored, np.float32(_batch_factor(spec)), dtype=np.float32)

    def _peek(self) -> tuple[np.ndarray, np.ndarray]:
        rows = np.zeros(1, dtype=np.intp)  # no image is decoded: its shape and dtype are known
        return np.empty((1, *self.input_shape), dtype=np.float32), self.train._targets(rows)  # type: ignore[attr-defined]

    def _summary_rows(self) -> list[tuple[str, str]]:
        rows = super()._summary_rows()
        if self.image_size is not None:
            h, w = self.image_size
            c = self.channels
            stored = f"stored as {self.storage_dtype}"
            if self.scale is not None and self.storage_dtype != np.float32:
                stored += f", times {_scale_text(self.scale)} per batch"
            lazy = "decoded per batch (lazy)" if getattr(self.train, "lazy", False) else "in memory"
            resized = "resized" if self._resizes else "as read"
            channels = f"{c} channel{'s' if c != 1 else ''}"
            rows.append(("images", f"{h}×{w} ({resized}), {channels}, {stored}, {lazy}"))
        augment = getattr(self.train, "_augment", None)
        rows.append(("augment", "none" if augment is None else _augment_text(augment)))
        return rows


def _scale_text(scale: float) -> str:
    inverse = 1 / scale
    if abs(inverse - round(inverse)) < 1e-9 * inverse:
        return f"1/{round(inverse)}"
    return f"{scale:.4g}"


def _augment_text(aug: Augment) -> str:
    parts = []
    if aug.hflip > 0:
        parts.append(f"hflip p={aug.hflip:g}")
    if aug.vflip > 0:
        parts.append(f"vflip p={aug.vflip:g}")
    if aug.rotate > 0 and aug.rotate_p > 0:
        parts.append(f"rotate ±{aug.rotate:g}° p={aug.rotate_p:g}")
    if aug.shift > 0:
        parts.append(f"shift ±{aug.shift:g}")
    return ", ".join(parts) + " (training split)"


def _check_scale(scale: Any) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    if not (math.isfinite(float(scale)) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    return float(scale)


def _source(
    listing: _Listing, spec: _Spec, lazy: bool, on_error: str, workers: int
) -> tuple[np.ndarray | _Files, np.ndarray]:
    if lazy:
        return _Files(listing.paths, spec), listing.labels
    images, ok = _decode_many(listing.paths, spec, on_error, workers)
    return images, listing.labels[ok]


def load_image_folder(
    root: str | os.PathLike,
    size: int | tuple[int, int] | None = None,
    grayscale: bool = False,
    on_error: str = "raise",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load every image under ``root/<class>/`` into one float32 array.

    Pixel values follow the module docstring with ``scale = 1/255``: 8-bit and 16-bit images land in
    [0, 1], float images are kept as stored. For a compact, batch-wise alternative use
    :meth:`ImageDataSet.from_dir`.

    Args:
        root: folder whose sub-folders name the classes (sorted → ids 0, 1, …).
        size: ``(height, width)``, or one int for a square, to resize to; ``None`` requires all images to
            share one size.
        grayscale: one channel (L) instead of three (RGB).
        on_error: ``"raise"`` or ``"skip"`` (with a warning) unusable image files.
        max_pixels: largest decoded image accepted, in pixels.

    Returns:
        ``(images, labels, class_names)``: images float32, labels int64.

    Shape:
        images ``(N, H, W, C)`` with ``C`` 1 or 3; labels ``(N,)``.

    Raises:
        FileNotFoundError: when ``root`` is not a folder.
        ValueError: for a bad ``size`` (not a positive int or a pair of them), an empty class folder, an
            unusable image (naming it) or images of different sizes without ``size``.
    """
    size = check_image_size(size, "size")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    max_pixels = _positive_int(max_pixels, "max_pixels")
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"root {str(root)!r} is not a folder")
    spec = _Spec(size, 1 if grayscale else 3, max_pixels)
    listing, classes = _list_folder(root, None, spec, on_error, "root")
    spec = _settle([listing], size, spec.channels, spec)
    images, ok = _decode_many(listing.paths, spec, on_error, 2)
    x = np.multiply(images, np.float32(_batch_factor(spec)), dtype=np.float32)
    return x, listing.labels[ok], classes
