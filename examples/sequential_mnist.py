"""Sequential MNIST: an LSTM reads each image as a sequence of 28 rows of 28 pixels and classifies it from
its last state.

The network is ``LSTM(128) → Dense(10, softmax)``: the LSTM sees one row per step (28 inputs), carries its
state down the image, and only its final output goes to the classifier. Nothing convolutional: whatever it
learns about strokes it has to keep in its cell state. Adam with a cosine-decaying learning rate and
``global_clipnorm=1.0`` (the habit for recurrent networks: a rare large gradient through time cannot throw
the weights away).

By default it trains on 8,000 images of the MNIST test set that comes with the project
(``../shared/data/mnist``, a seeded 8,000 / 2,000 split) and reaches 97.7 % on the held-out 2,000 after the
default 15 epochs (about 25 seconds on two cores). Run:

    python examples/sequential_mnist.py
    python examples/sequential_mnist.py --data path/to/mnist --epochs 12
"""

from __future__ import annotations

import sys

import _common

from neuro import LSTM, Dense, Input, Model
from neuro.optimizers import Adam
from neuro.schedules import CosineDecay


def build(units: int = 128, seed: int = 0, steps: int = 1000) -> Model:
    """The sequence classifier.

    Args:
        units: the LSTM's state size.
        seed: seed of the weights and the shuffling.
        steps: training steps in all (the length of the learning-rate schedule).

    Returns:
        The model ``(N, 28, 28) → (N, 10)``, compiled with Adam and softmax cross-entropy.
    """
    rows = Input((28, 28), name="rows")
    h = LSTM(units, name="lstm")(rows)
    out = Dense(10, activation="softmax", name="digit")(h)
    optimizer = Adam(CosineDecay(2e-3, decay_steps=max(steps, 1), alpha=0.05), global_clipnorm=1.0)
    return Model(rows, out, loss="softmax_crossentropy", optimizer=optimizer, seed=seed, name="seq_mnist")


def main(argv: list[str] | None = None) -> int:
    """Train the LSTM on MNIST rows and print the held-out accuracy.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``).

    Returns:
        0, or 1 when no data was found.
    """
    p = _common.parser(
        "sequential_mnist",
        "An LSTM reading MNIST images row by row.",
        epochs=15,
        data_help="MNIST IDX folder or image folder (default: ../shared/data/mnist)",
    )
    p.add_argument("--units", type=_common.positive_int, default=128, help="LSTM units (default 128)")
    p.add_argument(
        "--batch-size", type=_common.positive_int, default=64, help="samples per step (default 64)"
    )
    args = p.parse_args(argv)
    path = _common.find_mnist(args.data)
    if path is None:
        return 1
    x_train, x_test, y_train, y_test = _common.mnist_arrays(path, args.limit, args.seed)
    x_train, x_test = x_train[..., 0], x_test[..., 0]  # (N, 28, 28): 28 steps of 28 pixels
    print(f"LSTM({args.units}) on {path}: {len(x_train)} training and {len(x_test)} held-out sequences")
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    model = build(args.units, args.seed, steps)
    model.summary()
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_test, y_test),
        verbose=2,
    )
    result = model.evaluate(x_test, y_test)
    print(f"held-out accuracy: {result['accuracy']:.4f} (loss {result['loss']:.4f})")
    _common.plot(history, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
