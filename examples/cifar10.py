"""The original neuro's CIFAR-10 network, trained from an image folder with horizontal-flip augmentation.

Conv2D 32 → Conv2D 32 → MaxPool2D 2 → Conv2D 64 → Conv2D 64 → MaxPool2D 2 → Conv2D 64 → Flatten →
Dense 64 ReLU → Dense 10 softmax (3×3 "same" convolutions with ReLU), Adam 0.001, batches of 64; every
training image is flipped left–right with probability 1/2 each time it is drawn.

CIFAR-10 is not bundled. Get the *binary version* (``cifar-10-binary.tar.gz``, 163 MB, from the CIFAR-10 page
of the University of Toronto), unpack it, and let this example write it out as an image folder once::

    tar xzf cifar-10-binary.tar.gz
    python examples/cifar10.py --from-binary cifar-10-batches-bin --data cifar10

which writes ``cifar10/train/<class>/*.png`` (50,000 images) and ``cifar10/test/<class>/*.png`` (10,000) and
trains. Later runs need only ``--data cifar10``. Any folder of that layout works. By default the example
trains for 3 epochs on 5,000 of the training images, a couple of minutes on two cores (``--limit 0`` uses
all 50,000: several minutes an epoch).
"""

from __future__ import annotations

import pathlib
import sys

import _common
import numpy as np

from neuro import Conv2D, Dense, Flatten, MaxPool2D, Network
from neuro.data import Augment, ImageDataSet
from neuro.optimizers import Adam

#: Bytes of one record of the binary version: the label, then 1,024 red, 1,024 green and 1,024 blue values.
RECORD = 1 + 3 * 32 * 32
HOW_TO = """No --data given: nothing to train. CIFAR-10 is not bundled; to get it as an image folder:

  1. download the binary version, cifar-10-binary.tar.gz (163 MB), from the CIFAR-10 page of the
     University of Toronto, and unpack it: tar xzf cifar-10-binary.tar.gz
  2. python examples/cifar10.py --from-binary cifar-10-batches-bin --data cifar10
     writes cifar10/train/<class>/*.png and cifar10/test/<class>/*.png, then trains;
     later runs need only --data cifar10.

Any folder with train/<class>/ and test/<class>/ sub-folders of images works too."""
BATCHES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}


def from_binary(source: pathlib.Path, out: pathlib.Path) -> int:
    """Write the binary version of CIFAR-10 as ``out/train/<class>/*.png`` and ``out/test/<class>/*.png``.

    Args:
        source: the unpacked ``cifar-10-batches-bin`` folder (``data_batch_1.bin`` … ``data_batch_5.bin``,
            ``test_batch.bin`` and optionally ``batches.meta.txt`` with the class names).
        out: the data set folder to write.

    Returns:
        The number of images written.

    Raises:
        FileNotFoundError: when a batch file is missing.
        ValueError: when a file's size is not a whole number of records.
    """
    from PIL import Image

    meta = source / "batches.meta.txt"
    names = [n.strip() for n in meta.read_text().splitlines() if n.strip()] if meta.exists() else []
    count = 0
    for split, files in BATCHES.items():
        for file in files:
            raw = np.fromfile(source / file, dtype=np.uint8)
            if raw.size % RECORD:
                raise ValueError(f"{source / file} must hold {RECORD}-byte records, got {raw.size} bytes")
            records = raw.reshape(-1, RECORD)
            images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # planes → (H, W, RGB)
            for label, image in zip(records[:, 0], images, strict=True):
                name = names[label] if label < len(names) else str(label)
                folder = out / split / name
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.ascontiguousarray(image)).save(folder / f"{count:05d}.png")
                count += 1
    return count


def build(input_shape: tuple[int, ...], n_classes: int, seed: int) -> Network:
    """The CIFAR-10 network.

    Args:
        input_shape: ``(height, width, channels)`` of the images.
        n_classes: the number of classes.
        seed: seed of the weights and the shuffling.

    Returns:
        The network, ready to fit.
    """
    net = Network(input_shape, loss="softmax_crossentropy", optimizer=Adam(0.001), seed=seed)
    for filters in (32, 32, "pool", 64, 64, "pool", 64):
        if filters == "pool":
            net.add(MaxPool2D((2, 2)))
        else:
            net.add(Conv2D(filters, (3, 3), padding="same", activation="relu"))
    net.add(Flatten())
    net.add(Dense(64, activation="relu"))
    net.add(Dense(n_classes, activation="softmax"))
    return net


def main(argv: list[str] | None = None) -> int:
    """Train on an image folder of CIFAR-10 (or say how to get one) and print the test accuracy.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0, also when no data was given.
    """
    p = _common.parser(
        "cifar10",
        "The CIFAR-10 network with flip augmentation, from an image folder.",
        epochs=3,
        data_help="image folder with train/<class>/ and test/<class>/ sub-folders",
        limit=5_000,
    )
    p.add_argument(
        "--from-binary",
        type=pathlib.Path,
        default=None,
        help="first write the unpacked binary version (cifar-10-batches-bin) as an image folder at --data",
    )
    args = p.parse_args(argv)
    if args.data is None:
        print(HOW_TO)
        return 0
    if args.from_binary is not None:
        n = from_binary(args.from_binary, args.data)
        print(f"wrote {n} images from {args.from_binary} to {args.data}")

    flip = Augment(hflip=True)
    # with a limit, decode only the images used (lazy), then hold those in memory
    data = ImageDataSet.from_dir(
        args.data, valid_frac=0.1, seed=args.seed, augment=flip, lazy=bool(args.limit)
    )
    data = _common.limit_data_set(data, args.limit, args.seed, augment=flip)
    test = data.test if data.test is not None else data.valid
    print(f"{data!r}; classes {data.class_names}")

    net = build(data.input_shape, len(data.class_names or []), args.seed)
    net.summary()
    history = net.fit(data, batch_size=64, epochs=args.epochs, verbose=2)
    result = net.evaluate(test)
    print(f"test accuracy on {len(test)} images: {result['accuracy']:.4f} (loss {result['loss']:.4f})")
    _common.plot(history, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
