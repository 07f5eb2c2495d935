"""What the examples share: their command-line options, finding MNIST, subsets, and the learning-curve plot.

Every example is run as ``python examples/NAME.py [--data PATH] [--epochs N] [--limit N] [--no-plot]`` and
exposes ``main(argv) -> int`` so that the tests can call it in-process.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

import numpy as np

from neuro.data import ArraySplit, DataSet, ImageDataSet, Split, load_mnist, train_test_split

EXAMPLES = pathlib.Path(__file__).resolve().parent
#: The MNIST test set that comes with the project (``../shared/data/mnist`` from the repository root).
SHARED_MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"

MNIST_HELP = (
    "MNIST not found. Give --data PATH: a folder with the IDX files t10k-images-idx3-ubyte[.gz] and "
    "t10k-labels-idx1-ubyte[.gz] (and optionally the train-* pair), as published on the MNIST page, or an "
    "image folder PATH/train/<class>/*.png (python -m neuro.data.idx_to_folder writes one from IDX files)."
)


def positive_int(text: str) -> int:
    """Parse a positive integer for argparse.

    Args:
        text: the command-line value.

    Returns:
        The integer.

    Raises:
        argparse.ArgumentTypeError: when ``text`` is not an integer above 0.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parser(name: str, description: str, epochs: int, data_help: str, limit: int | None = None) -> Any:
    """The options every example accepts.

    Args:
        name: the example's name (its PNG is ``examples/NAME.png`` by default).
        description: shown by ``--help``.
        epochs: the default number of epochs.
        data_help: what ``--data`` is, for ``--help``.
        limit: the default of ``--limit`` (``None``: all samples).

    Returns:
        An ``argparse.ArgumentParser``; add example-specific options before parsing.
    """
    p = argparse.ArgumentParser(prog=f"python examples/{name}.py", description=description)
    p.add_argument("--data", type=pathlib.Path, default=None, help=data_help)
    p.add_argument("--epochs", type=positive_int, default=epochs, help=f"training epochs (default {epochs})")
    p.add_argument(
        "--limit",
        type=int,
        default=limit,
        help="use only this many samples (default: "
        + ("all" if limit is None else f"{limit}; 0 means all")
        + ")",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of weights, shuffling and splits (default 0)")
    p.add_argument(
        "--plot",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write the learning curves to a PNG (needs matplotlib; default: yes)",
    )
    p.add_argument(
        "--plot-file",
        type=pathlib.Path,
        default=EXAMPLES / f"{name}.png",
        help=f"where the learning curves go (default examples/{name}.png)",
    )
    return p


def plot(history: Any, args: argparse.Namespace) -> None:
    """Write the learning curves of ``history`` to ``args.plot_file`` unless ``--no-plot`` was given.

    A missing matplotlib is reported and skipped, so that the example still finishes.

    Args:
        history: the :class:`neuro.History` that ``fit`` returned.
        args: the parsed options.
    """
    if not args.plot:
        return
    try:
        history.plot(args.plot_file)
    except ImportError as exc:
        print(f"note: no learning curves written ({exc})")
        return
    print(f"learning curves written to {args.plot_file}")


def take(limit: int | None, n: int, seed: int) -> np.ndarray | None:
    """Pick ``limit`` of ``n`` sample indices at random (sorted), or ``None`` for all.

    Args:
        limit: how many to keep; ``None`` or 0 keeps all.
        n: how many there are.
        seed: seed of the choice.

    Returns:
        The sorted indices, or ``None`` when every sample is kept.
    """
    if not limit or limit >= n:
        return None
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])


def is_idx_folder(path: pathlib.Path) -> bool:
    """Whether ``path`` is a folder holding MNIST-style IDX files (``*-images-idx3-ubyte[.gz]``).

    Args:
        path: the folder.
    """
    return path.is_dir() and any(path.glob("*-images-idx3-ubyte*"))


def is_image_folder(path: pathlib.Path) -> bool:
    """Whether ``path`` is a data set folder with a ``train/`` folder of class folders.

    Args:
        path: the folder.
    """
    return (path / "train").is_dir()


def find_mnist(data: pathlib.Path | None) -> pathlib.Path | None:
    """The MNIST folder to use: ``--data`` when given, else the shared copy when it is there.

    Args:
        data: the ``--data`` option.

    Returns:
        A folder of IDX files or an image folder, or ``None`` (after printing how to get MNIST).
    """
    path = data if data is not None else SHARED_MNIST
    if is_idx_folder(path) or is_image_folder(path):
        return path
    if data is not None:
        print(f"{data} holds neither MNIST IDX files nor a train/ image folder.")
    print(MNIST_HELP)
    return None


def subset(split: Split, rows: np.ndarray | None, augment: Any = None) -> ArraySplit:
    """A split of only the samples ``rows`` of ``split``, held in memory as float32.

    Args:
        split: any data set split.
        rows: sorted sample indices (``None``: all).
        augment: augmentation of the new split (see :class:`neuro.data.Augment`).

    Returns:
        An :class:`~neuro.data.ArraySplit`.
    """
    order = np.arange(len(split)) if rows is None else rows
    x, y = next(iter(split.batches(order, max(len(order), 1))))
    return ArraySplit(x, y, augment=augment)


def limit_data_set(data: DataSet, limit: int | None, seed: int, augment: Any = None) -> DataSet:
    """The data set with only ``limit`` training samples (validation and test shrink in proportion).

    Args:
        data: the data set.
        limit: training samples to keep; ``None`` or 0 keeps the data set as it is.
        seed: seed of the choice.
        augment: augmentation of the new training split.

    Returns:
        ``data`` itself, or a new :class:`~neuro.data.DataSet` of in-memory splits.
    """
    n = len(data.train)
    if not limit or limit >= n:
        return data

    def part(split: Split | None, k: int) -> ArraySplit | None:
        if split is None or len(split) == 0:
            return None
        return subset(split, take(max(1, k), len(split), seed))

    share = limit / n
    return DataSet(
        subset(data.train, take(limit, n, seed), augment),
        part(data.valid, round(len(data.valid) * share)),
        part(data.test, round(len(data.test) * share) if data.test is not None else 0),
        class_names=data.class_names,
    )


def mnist_arrays(path: pathlib.Path, limit: int | None, seed: int) -> tuple[np.ndarray, ...]:
    """Load MNIST from IDX files or an image folder as ``(x_train, x_test, y_train, y_test)``.

    With only the 10,000-image test set (``t10k-*``), 20 % of it is held out as the test split; with the
    ``train-*`` files too, those train and ``t10k-*`` tests. An image folder's ``test/`` is the test split
    (else 20 % of ``train/``).

    Args:
        path: a folder of IDX files or an image folder.
        limit: use only this many samples in all (``None``: all).
        seed: seed of the subset and of the split.

    Returns:
        ``(x_train, x_test, y_train, y_test)``: images float32 ``(N, 28, 28, 1)`` in [0, 1], labels int64.
    """
    test: tuple[np.ndarray, np.ndarray] | None = None
    if is_idx_folder(path):
        if any(path.glob("train-images-idx3-ubyte*")):
            x, y = load_mnist(path, kind="train")
            test = load_mnist(path, kind="t10k")
        else:
            x, y = load_mnist(path, kind="t10k")
    else:
        data = ImageDataSet.from_dir(path, channels=1)
        x, y = data.train.arrays()
        test = data.test.arrays() if data.test is not None else None
    if test is None:
        rows = take(limit, len(x), seed)
        if rows is not None:
            x, y = x[rows], y[rows]
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=seed)
        return x_train, x_test, y_train, y_test
    rows = take(limit, len(x), seed)
    x_test, y_test = test
    if rows is not None:
        x, y = x[rows], y[rows]
        keep = take(max(1, len(rows) // 4), len(x_test), seed)
        if keep is not None:
            x_test, y_test = x_test[keep], y_test[keep]
    return x, x_test, y, y_test
