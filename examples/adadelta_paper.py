"""The network of the Adadelta paper on MNIST: Dense 500 tanh → Dense 300 tanh → Dense 10 softmax.

Zeiler (2012), "ADADELTA: an adaptive learning rate method", trains this network with Adadelta (ρ 0.95,
ε 1e-6, no learning rate to tune) on mini-batches of 100. The data is the MNIST test set that comes with
the project (``../shared/data/mnist``: 10,000 images, split 8,000 / 2,000), or ``--data``: a folder of IDX
files or an image folder. Run:

    python examples/adadelta_paper.py

It prints the held-out accuracy (about 0.96 after the default 10 epochs).
"""

from __future__ import annotations

import sys

import _common

from neuro import Dense, Flatten, Network
from neuro.optimizers import Adadelta


def main(argv: list[str] | None = None) -> int:
    """Train the paper's network and print the held-out accuracy.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``).

    Returns:
        0, or 1 when no MNIST data was found.
    """
    p = _common.parser(
        "adadelta_paper",
        "The Adadelta paper's MNIST network.",
        epochs=10,
        data_help="MNIST IDX folder or image folder (default: ../shared/data/mnist)",
    )
    args = p.parse_args(argv)
    path = _common.find_mnist(args.data)
    if path is None:
        return 1
    x_train, x_test, y_train, y_test = _common.mnist_arrays(path, args.limit, args.seed)
    print(f"MNIST from {path}: {len(x_train)} training and {len(x_test)} held-out images")

    optimizer = Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-6)
    net = Network(x_train.shape[1:], loss="softmax_crossentropy", optimizer=optimizer, seed=args.seed)
    net.add(Flatten())
    net.add(Dense(500, activation="tanh", kernel_initializer="glorot_uniform"))
    net.add(Dense(300, activation="tanh", kernel_initializer="glorot_uniform"))
    net.add(Dense(10, activation="softmax", kernel_initializer="glorot_uniform"))
    net.summary()
    history = net.fit(
        x_train, y_train, batch_size=100, epochs=args.epochs, validation_data=(x_test, y_test), verbose=2
    )
    result = net.evaluate(x_test, y_test)
    print(f"held-out accuracy: {result['accuracy']:.4f} (loss {result['loss']:.4f})")
    _common.plot(history, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
