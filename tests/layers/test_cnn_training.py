"""A small CNN learns scikit-learn's real handwritten digits."""

from __future__ import annotations

import pytest

from neuro import Conv2D, Dense, Flatten, MaxPool2D, Network
from neuro.optimizers import Adam


def test_small_cnn_reaches_97_percent_on_digits():
    pytest.importorskip("sklearn")
    from neuro.data import load_digits, train_test_split

    x, y = load_digits(images=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    net = Network((8, 8, 1), "softmax_crossentropy", Adam(3e-3), seed=0)
    net.add(Conv2D(16, (3, 3), padding="same", activation="relu"))
    net.add(MaxPool2D((2, 2)))
    net.add(Flatten())
    net.add(Dense(10, "softmax"))
    history = net.fit(x_train, y_train, batch_size=32, epochs=15, verbose=0)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    result = net.evaluate(x_test, y_test)
    assert result["accuracy"] >= 0.97, result
