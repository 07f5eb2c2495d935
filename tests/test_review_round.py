"""Regressions found by the reviews of the graph API, the losses and the training loop (each test fails on
the code before its fix)."""

from __future__ import annotations

import numpy as np
import pytest

import neuro
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


def test_building_a_second_model_never_renames_the_first_ones_layers(tmp_path):
    """Keras's habit of reusing a trained layer in a new model (a decoder cut out of an autoencoder) renamed
    the layer in the first model, which then held two layers named 'dense' and saved a file it could not
    load; an Input was renamed too, changing the first model's input names."""
    inp = Input((6,))
    enc, dec = Dense(2), Dense(6)
    ae = Model(inp, dec(enc(inp)), loss="mse", optimizer="adam", seed=0)
    names = [layer.name for layer in ae.layers]
    assert names == ["dense", "dense_1"]
    code = Input((2,))
    decoder = Model(code, dec(code))
    assert [layer.name for layer in ae.layers] == names
    assert [layer.name for layer in decoder.layers] == ["dense_1"]
    ae.save(tmp_path / "ae.h5")
    assert [layer.name for layer in Model.load(tmp_path / "ae.h5").layers] == names
    i1 = Input((2,))
    m1 = Model(i1, Dense(1)(i1))
    first = list(m1.input_names)
    i0 = Input((2,))
    Model([i0, i1], Dense(1)(neuro.Concatenate()([i0, i1])))
    assert m1.input_names == first


def test_two_layers_named_by_two_models_meet_with_an_error_that_says_what_to_do():
    a_in, b_in = Input((3,)), Input((3,))
    a, b = Dense(3), Dense(3)
    Model(a_in, a(a_in))
    Model(b_in, b(b_in))  # both default-named 'dense', each in its own model
    x = Input((3,))
    with pytest.raises(ValueError, match=r"two layers are named 'dense' \(Dense and Dense\); layer names must be "
                                         r"unique in a model; their default names were given by the models"):
        Model(x, b(a(x)))


def test_two_nested_models_without_names_get_unique_ones(tmp_path):
    def block():
        i = Input((3,))
        return Model(i, Dense(3)(i))

    x = Input((3,))
    outer = Model(x, block()(block()(x)), loss="mse", optimizer="sgd", seed=0)
    assert [layer.name for layer in outer.layers] == ["model", "model_1"]
    outer.save(tmp_path / "m.h5")
    again = Model.load(tmp_path / "m.h5")
    data = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(again.predict(data), outer.predict(data))
