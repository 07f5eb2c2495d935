"""The reference CNN on MNIST, trained from an image folder, saved to HDF5, reloaded and evaluated.

Conv2D 32 3×3 same ReLU → Conv2D 64 3×3 same ReLU → MaxPool2D 2 → Dropout 0.5 → Flatten → Dense 128 ReLU →
Dropout 0.25 → Dense 10 softmax; Adam 0.001, batches of 128.

The data is read as an image folder (``train/<class>/*.png``, ``test/<class>/*.png``) by
:meth:`neuro.data.ImageDataSet.from_dir`. Given IDX files (by default the MNIST test set that comes with the
project, ``../shared/data/mnist``), the example first writes them out as such a folder in a temporary
directory with :func:`neuro.data.idx_to_folder.idx_to_folder` and moves a seeded fifth of the images to
``test/`` (a fifth of each digit, rounded up digit by digit: 7,997 / 2,003 of the 10,000 images). Run:

    python examples/mnist_cnn.py

It prints the test accuracy of the reloaded model (about 0.98 after the default 3 epochs) and a few test
images' predicted class names with their probability.
"""

from __future__ import annotations

import pathlib
import shutil
import sys
import tempfile

import _common
import numpy as np

import neuro
from neuro import Conv2D, Dense, Dropout, Flatten, MaxPool2D, Network
from neuro.data import ImageDataSet, train_test_split
from neuro.data.idx_to_folder import idx_to_folder
from neuro.optimizers import Adam


def _idx_pair(folder: pathlib.Path, kind: str) -> tuple[pathlib.Path, pathlib.Path]:
    images = sorted(folder.glob(f"{kind}-images-idx3-ubyte*"))[0]
    labels = sorted(folder.glob(f"{kind}-labels-idx1-ubyte*"))[0]
    return images, labels


def write_image_folder(idx: pathlib.Path, out: pathlib.Path, limit: int | None, seed: int) -> None:
    """Write MNIST IDX files as ``out/train/<digit>/*.png`` and ``out/test/<digit>/*.png``.

    With the ``train-*`` files present they fill ``train/`` and ``t10k-*`` fills ``test/``; with only
    ``t10k-*``, a seeded fifth of each digit's images is moved from ``train/`` to ``test/`` (a stratified
    split, so that every test class is a training class).

    Args:
        idx: the folder of IDX files.
        out: the (empty) folder to write.
        limit: keep only this many training images (``None``: all).
        seed: seed of the subset and of the split.
    """
    has_train = any(idx.glob("train-images-idx3-ubyte*"))
    idx_to_folder(*_idx_pair(idx, "train" if has_train else "t10k"), out, split="train")
    if has_train:
        idx_to_folder(*_idx_pair(idx, "t10k"), out, split="test")
    files = sorted((out / "train").glob("*/*.png"))
    keep = _common.take(limit, len(files), seed)
    if keep is not None:
        for i in np.setdiff1d(np.arange(len(files)), keep):
            files[i].unlink()
    for folder in sorted((out / "train").iterdir()):
        in_class = sorted(folder.iterdir())
        if not in_class:  # the limit took every image of this digit
            folder.rmdir()
        elif not has_train and len(in_class) > 1:
            _, moved = train_test_split(in_class, test_size=0.2, random_state=seed)
            (out / "test" / folder.name).mkdir(parents=True)
            for f in moved:
                shutil.move(f, out / "test" / folder.name / f.name)


def build(input_shape: tuple[int, ...], n_classes: int, seed: int) -> Network:
    """The reference CNN.

    Args:
        input_shape: ``(height, width, channels)`` of the images.
        n_classes: the number of classes.
        seed: seed of the weights, shuffling and dropout.

    Returns:
        The network, ready to fit.
    """
    net = Network(input_shape, loss="softmax_crossentropy", optimizer=Adam(0.001), seed=seed)
    net.add(Conv2D(32, (3, 3), padding="same", activation="relu"))
    net.add(Conv2D(64, (3, 3), padding="same", activation="relu"))
    net.add(MaxPool2D((2, 2)))
    net.add(Dropout(0.5))
    net.add(Flatten())
    net.add(Dense(128, activation="relu"))
    net.add(Dropout(0.25))
    net.add(Dense(n_classes, activation="softmax"))
    return net


def main(argv: list[str] | None = None) -> int:
    """Train the CNN from an image folder, save, reload, evaluate and predict a few test images.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``).

    Returns:
        0, or 1 when no MNIST data was found.
    """
    p = _common.parser(
        "mnist_cnn",
        "The reference CNN on MNIST, from an image folder.",
        epochs=3,
        data_help="MNIST IDX folder or image folder with train/ and test/ (default: ../shared/data/mnist)",
    )
    p.add_argument("--save", type=pathlib.Path, default=None, help="keep the model file here (.h5)")
    args = p.parse_args(argv)
    path = _common.find_mnist(args.data)
    if path is None:
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = path
        if not _common.is_image_folder(path):
            folder = pathlib.Path(tmp) / "mnist"
            write_image_folder(path, folder, args.limit, args.seed)
            print(f"wrote the IDX files of {path} as an image folder in {folder}")
        data = ImageDataSet.from_dir(folder, channels=1, valid_frac=0.1, seed=args.seed)
        if folder is path:
            data = _common.limit_data_set(data, args.limit, args.seed)
        test = data.test if data.test is not None else data.valid
        print(f"{data!r}; classes {data.class_names}")

        net = build(data.input_shape, len(data.class_names or []), args.seed)
        net.summary()
        history = net.fit(data, batch_size=128, epochs=args.epochs, verbose=2)

        model = args.save or pathlib.Path(tmp) / "mnist_cnn.h5"
        net.save(model)
        loaded = Network.load(model)
        print(f"saved to {model} ({model.stat().st_size / 1024:.0f} KiB) and loaded back")

        result = loaded.evaluate(test)
        print(f"test accuracy of the reloaded model on {len(test)} images: {result['accuracy']:.4f}")
        x, y = test.arrays()
        same = np.array_equal(neuro.to_numpy(loaded.predict(x[:64])), neuro.to_numpy(net.predict(x[:64])))
        print(f"the reloaded model predicts exactly as the trained one: {same}")
        some = np.sort(np.random.default_rng(args.seed).choice(len(x), size=min(5, len(x)), replace=False))
        names, probs = loaded.predict_class(x[some])  # class names, as the network keeps data.class_names
        for i, name, prob in zip(some, names, probs, strict=True):
            true = loaded.class_names[y[i]] if loaded.class_names else y[i]
            print(f"  test image {i}: predicted {name!r} with probability {prob:.3f} (true {true!r})")
    _common.plot(history, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
