"""A small feed-forward network on MNIST: Flatten → Dense 32 ReLU → Dense 10 softmax.

Softmax cross-entropy, Adam with learning rate 0.003 and an L2 penalty on the kernels. The data is the MNIST
test set that comes with the project (``../shared/data/mnist``: 10,000 images, split 8,000 / 2,000), or
``--data``: a folder of IDX files or an image folder. Run:

    python examples/mnist_feedforward.py

It prints the held-out accuracy (about 0.94 after the default 10 epochs).
"""

from __future__ import annotations

import sys

import _common

from neuro import Dense, Flatten, Network
from neuro.losses import SoftmaxCrossEntropy
from neuro.optimizers import Adam
from neuro.regularizers import L2


def main(argv: list[str] | None = None) -> int:
    """Train on MNIST and print the held-out accuracy.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``).

    Returns:
        0, or 1 when no MNIST data was found.
    """
    p = _common.parser(
        "mnist_feedforward",
        "Feed-forward network on MNIST.",
        epochs=10,
        data_help="MNIST IDX folder or image folder (default: ../shared/data/mnist)",
    )
    args = p.parse_args(argv)
    path = _common.find_mnist(args.data)
    if path is None:
        return 1
    x_train, x_test, y_train, y_test = _common.mnist_arrays(path, args.limit, args.seed)
    print(f"MNIST from {path}: {len(x_train)} training and {len(x_test)} held-out images")

    net = Network(
        input_shape=x_train.shape[1:],
        loss=SoftmaxCrossEntropy(),
        optimizer=Adam(0.003),
        regularizer=L2(1e-4),
        seed=args.seed,
    )
    net.add(Flatten())
    net.add(Dense(32, activation="relu"))
    net.add(Dense(10, activation="softmax"))
    net.summary()
    history = net.fit(
        x_train, y_train, batch_size=32, epochs=args.epochs, validation_data=(x_test, y_test), verbose=2
    )
    result = net.evaluate(x_test, y_test)
    print(f"held-out accuracy: {result['accuracy']:.4f} (loss {result['loss']:.4f}, L2 penalty included)")
    _common.plot(history, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
