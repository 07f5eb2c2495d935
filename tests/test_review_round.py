"""Regressions found by the reviews of the graph API, the losses and the training loop (each test fails on
the code before its fix)."""

from __future__ import annotations

import numpy as np

from neuro import Dense, Input, Model


def test_an_output_whose_weights_are_all_zero_leaves_the_logged_loss_finite():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 4)).astype("float32")
    y1, y2 = rng.integers(0, 3, 30), rng.standard_normal((30, 2)).astype("float32")
    inp = Input((4,))
    h = Dense(8, activation="relu")(inp)
    m = Model(inp, [Dense(3, activation="softmax", name="cls")(h), Dense(2, name="aux")(h)], seed=0)
    m.compile(loss=["sparse_categorical_crossentropy", "mse"], optimizer="sgd")
    hist = m.fit(x, [y1, y2], batch_size=10, epochs=2, verbose=0,
                 sample_weight={"cls": np.ones(30), "aux": np.zeros(30)})
    assert np.isfinite(hist["loss"]).all()
    np.testing.assert_allclose(hist["loss"], hist["cls_loss"], rtol=1e-6)  # aux adds nothing
    assert np.isnan(hist["aux_loss"]).all()  # nothing of it was measured
