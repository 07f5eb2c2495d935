"""Write the images of an IDX file pair (MNIST layout) as PNG files in class folders.

Usage::

    python -m neuro.data.idx_to_folder IMAGES_IDX LABELS_IDX OUT_DIR [--split train] [--overwrite]

writes ``OUT_DIR/<split>/<label>/NNNNN.png`` (``NNNNN`` the sample's index, zero-padded to at least five
digits), a layout :meth:`neuro.data.ImageDataSet.from_dir` reads.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

import numpy as np

from neuro.data.mnist import load_idx


def idx_to_folder(
    images_path: str | os.PathLike,
    labels_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    split: str = "train",
    overwrite: bool = False,
) -> int:
    """Write each image of an IDX file as ``out_dir/split/<label>/<index>.png``.

    Args:
        images_path: IDX file of uint8 images (plain or gzip).
        labels_path: IDX file of integer labels ``>= 0``, one per image.
        out_dir: the data set folder (created if needed).
        split: the sub-folder to fill, ``"train"`` or ``"test"``.
        overwrite: allow writing into a ``split`` folder that already holds files.

    Returns:
        The number of images written.

    Shape:
        images ``(N, H, W)`` or ``(N, H, W, C)`` with C in 1, 3, 4; labels ``(N,)``.

    Raises:
        ValueError: for a bad ``split``, unreadable IDX files, images that are not uint8 or of another
            shape, labels that do not match the images or are negative (folder names would not sort in
            their numeric order), or a non-empty target folder without ``overwrite``.
    """
    from PIL import Image

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images = load_idx(images_path)
    labels = load_idx(labels_path)
    bad_channels = images.ndim == 4 and images.shape[3] not in (1, 3, 4)
    empty = images.ndim in (3, 4) and min(images.shape[1:3]) == 0  # no pixel: PNG cannot hold it
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or bad_channels or empty:
        raise ValueError(
            f"images_path must hold uint8 images (N, H, W) or (N, H, W, C) with C in 1, 3, 4 and H, W >= 1, "
            f"got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(images):
        raise ValueError(
            f"labels_path must hold {len(images)} integer labels (one per image), got "
            f"{labels.dtype} {labels.shape}"
        )
    if len(labels) and int(labels.min()) < 0:
        i = int(np.argmax(labels < 0))
        raise ValueError(
            f"labels_path must hold class ids >= 0, got {int(labels[i])} at index {i}: class folders are "
            "ordered by name, and names of negative numbers do not sort in their numeric order "
            "(-1, -2, 0)"
        )
    target = pathlib.Path(out_dir) / split
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise ValueError(f"folder {str(target)!r} already holds files; pass overwrite=True (--overwrite)")
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    width = max(5, len(str(len(images) - 1)))
    # folder names padded to one width, so that their sorted order (the class ids of an ImageDataSet) is the
    # labels' numeric order also with 11 or more classes ("02" before "10")
    digits = len(str(int(labels.max()))) if len(labels) else 1
    for label in np.unique(labels):
        (target / f"{int(label):0{digits}d}").mkdir(parents=True, exist_ok=True)
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(img).save(target / f"{int(label):0{digits}d}" / f"{i:0{width}d}.png")
    return len(images)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        0 on success, 1 on an error (printed to stderr).
    """
    parser = argparse.ArgumentParser(
        prog="python -m neuro.data.idx_to_folder",
        description="Write the images of an IDX pair as OUT_DIR/<split>/<label>/NNNNN.png.",
    )
    parser.add_argument("images", help="IDX file of images (plain or .gz)")
    parser.add_argument("labels", help="IDX file of labels (plain or .gz)")
    parser.add_argument("out_dir", help="data set folder to write into")
    parser.add_argument(
        "--split", default="train", choices=("train", "test"), help="sub-folder (default train)"
    )
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty split folder")
    args = parser.parse_args(argv)
    try:
        n = idx_to_folder(args.images, args.labels, args.out_dir, args.split, args.overwrite)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {n} images to {os.path.join(args.out_dir, args.split)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
