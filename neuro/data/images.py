"""Folders of images, one sub-folder per class (``root/cat/1.png``, ``root/dog/2.jpg``…)."""

from __future__ import annotations

import os
import pathlib

import numpy as np

_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_image_folder(
    root: str | os.PathLike,
    size: tuple[int, int] | None = None,
    grayscale: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load every image under ``root/<class>/`` into one array.

    Args:
        root: folder whose sub-folders name the classes (sorted alphabetically → ids 0, 1, …).
        size: ``(height, width)`` to resize to; ``None`` requires all images to share one size.
        grayscale: load one channel instead of RGB.

    Returns:
        ``(images, labels, class_names)``: images float32 in [0, 1], ``(N, H, W, C)``; labels int64.

    Raises:
        ImportError: when Pillow is missing.
        ValueError: when the folder holds no images or sizes differ without ``size``.
    """
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("load_image_folder needs Pillow: pip install pillow") from exc
    root = pathlib.Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    images, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in _EXTENSIONS:
                continue
            with Image.open(file) as im:
                im = im.convert("L" if grayscale else "RGB")
                if size is not None:
                    im = im.resize((size[1], size[0]))
                arr = np.asarray(im, dtype=np.float32) / np.float32(255)
            if arr.ndim == 2:
                arr = arr[..., None]
            if images and arr.shape != images[0].shape:
                raise ValueError(
                    f"image {str(file)!r} has shape {arr.shape}, expected {images[0].shape}; "
                    "pass size=(height, width) to resize"
                )
            images.append(arr)
            labels.append(label)
    if not images:
        raise ValueError(f"root {str(root)!r} holds no images in class sub-folders")
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes
