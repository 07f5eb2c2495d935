"""neuro's main demo: train a small network on real handwritten digits and report held-out accuracy.

The data are scikit-learn's bundled 8×8 digits (1,797 real samples, no download). Run:

    python examples/demo.py
"""

from __future__ import annotations

import argparse
import sys
import time

import neuro
from neuro import Dense, Network
from neuro.data import load_digits, train_test_split
from neuro.optimizers import Adam


def main(argv: list[str] | None = None) -> int:
    """Train on the digits and print the held-out accuracy.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``): ``--epochs N`` (default 30).

    Returns:
        The exit status (0).
    """
    p = argparse.ArgumentParser(prog="python examples/demo.py", description="neuro's demo on real digits.")
    p.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    args = p.parse_args(argv)
    x, y = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    print(f"neuro {neuro.__version__}: {len(x_train)} training and {len(x_test)} held-out digits")

    net = Network(input_shape=(64,), loss="softmax_crossentropy", optimizer=Adam(1e-3), seed=0)
    net.add(Dense(128, activation="relu"))
    net.add(Dense(64, activation="relu"))
    net.add(Dense(10, activation="softmax"))
    net.summary()

    start = time.perf_counter()
    net.fit(x_train, y_train, batch_size=32, epochs=args.epochs, validation_data=(x_test, y_test), verbose=2)
    took = time.perf_counter() - start

    result = net.evaluate(x_test, y_test)
    classes, probs = net.predict_class(x_test[:5])
    print(f"trained in {took:.1f} s")
    print(f"first five held-out digits: predicted {classes.tolist()}, true {y_test[:5].tolist()}")
    print(f"held-out accuracy: {result['accuracy']:.4f} (loss {result['loss']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
