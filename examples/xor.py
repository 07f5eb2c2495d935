"""XOR with a 2-2-1 sigmoid network: the smallest problem a single layer cannot solve.

Binary cross-entropy, plain SGD with learning rate 0.1 on the full batch of four samples, kernels drawn
uniformly from [-1, 1) and zero biases. Run:

    python examples/xor.py

It prints the four predictions, which round to 0 1 1 0.
"""

from __future__ import annotations

import sys

import _common
import numpy as np

import neuro
from neuro import Dense, Network
from neuro.initializers import UniformBounded
from neuro.optimizers import SGD

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)
#: A seed whose initial weights lead SGD out of XOR's plateau (some seeds stay at 0.5 for every input).
SEED = 3


def build(seed: int = SEED) -> Network:
    """The 2-2-1 network with sigmoid units, uniform(-1, 1) kernels and zero biases.

    Args:
        seed: seed of the initial weights.

    Returns:
        The network, ready to fit.
    """
    net = Network(input_shape=(2,), loss="binary_crossentropy", optimizer=SGD(0.1), seed=seed)
    for units in (2, 1):
        net.add(
            Dense(
                units,
                activation="sigmoid",
                kernel_initializer=UniformBounded(-1, 1),
                bias_initializer="zeros",
            )
        )
    return net


def main(argv: list[str] | None = None) -> int:
    """Train on XOR and print the four predictions.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``).

    Returns:
        0 when the rounded predictions are 0 1 1 0, else 1.
    """
    p = _common.parser("xor", __doc__.splitlines()[0], epochs=5000, data_help="unused: XOR has four samples")
    p.set_defaults(seed=SEED)
    args = p.parse_args(argv)
    net = build(args.seed)
    history = net.fit(X, Y, batch_size=len(X), epochs=args.epochs, shuffle=False, verbose=0)
    pred = neuro.to_numpy(net.predict(X)).ravel()
    loss, accuracy = history["loss"][-1], history["accuracy"][-1]
    print(f"after {args.epochs} epochs: loss {loss:.4f}, accuracy {accuracy:.2f}")
    for x, p_ in zip(X, pred, strict=True):
        print(f"  {int(x[0])} xor {int(x[1])} -> {p_:.3f} (rounds to {round(float(p_))})")
    _common.plot(history, args)
    ok = [round(float(v)) for v in pred] == [0, 1, 1, 0]
    print("XOR solved" if ok else "XOR not solved: try more --epochs or another --seed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
