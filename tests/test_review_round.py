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


def test_layers_named_by_separate_models_meet_in_a_third_and_every_model_keeps_unique_names(tmp_path):
    """An ensemble built in a loop, an autoencoder made of an encoder's and a decoder's layers: layers each
    named 'dense' by their own models meet in one model. The one that clashes moves to a name no live layer
    holds, so that the new model and the old ones all keep names unique in them (and save and load)."""
    inp = Input((4,))
    members = [Model(inp, Dense(1)(Dense(8)(inp))) for _ in range(3)]
    with pytest.warns(UserWarning, match=r"^layer 'dense(_1)?' \(Dense\), whose default name was given when a "
                                         r"model was built with it, is renamed 'dense_\d+': another layer of this "
                                         r"model holds that name"):
        ens = Model(inp, neuro.Average()([m.outputs[0] for m in members]), loss="mse", optimizer="sgd")
    for m in [*members, ens]:
        names = [layer.name for layer in m.leaf_layers()]
        assert len(set(names)) == len(names), names
    assert [layer.name for layer in members[0].layers] == ["dense", "dense_1"]  # the first keeps its names
    ens.save(tmp_path / "ens.h5")
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(Model.load(tmp_path / "ens.h5").predict(x), ens.predict(x))
    for k, m in enumerate(members):
        m.compile("mse", "sgd")
        m.save(tmp_path / f"m{k}.h5")
        Model.load(tmp_path / f"m{k}.h5")


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


def test_a_nested_models_mask_goes_on_in_the_outer_model():
    """The mask an Embedding makes inside a nested model was dropped at its boundary: the pooling and the LSTM
    after it read the padding (0.015 off the masked mean)."""
    rng = np.random.default_rng(0)
    tok = rng.integers(1, 8, (6, 5))
    tok[0, 3:] = 0
    tok[1, 1:] = 0
    y = rng.integers(0, 3, 6)

    def models():
        emb, lstm, out = neuro.Embedding(8, 3, mask_zero=True), neuro.LSTM(4), Dense(3, activation="softmax")
        ti = Input((5,), dtype="int64")
        inner = Model(ti, emb(ti), name="inner")
        to = Input((5,), dtype="int64")
        nested = Model(to, out(lstm(inner(to))), loss="crossentropy", optimizer="sgd", seed=0)
        fi = Input((5,), dtype="int64")
        flat = Model(fi, out(lstm(emb(fi))), loss="crossentropy", optimizer="sgd", seed=0)
        return nested, flat

    nested, flat = models()
    np.testing.assert_array_equal(nested.predict(tok), flat.predict(tok))
    pooled_in = Input((5,), dtype="int64")
    inner = nested.layers[0]
    pooled = Model(pooled_in, neuro.GlobalAveragePooling1D()(inner(pooled_in)))
    table = inner.graph.layers[0].params["embeddings"]
    want = np.stack([table[t][t != 0].mean(0) for t in tok])
    np.testing.assert_allclose(pooled.predict(tok), want, rtol=1e-6)
    start = [w.copy() for w in flat.get_weights()]  # the two share their layers
    nested.fit(tok, y, batch_size=3, epochs=2, verbose=0, shuffle=False)
    w_nested = [w.copy() for w in nested.get_weights()]
    flat.set_weights(start)
    flat.fit(tok, y, batch_size=3, epochs=2, verbose=0, shuffle=False)
    assert not np.array_equal(w_nested[0], start[0])  # the inner embedding trained
    for a, b in zip(w_nested, flat.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def _diverging(callbacks):
    from neuro.callbacks import EarlyStopping, LearningRateScheduler

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype("float32")
    y = x @ rng.standard_normal((4, 1)).astype("float32")
    m = neuro.Sequential([Input((4,)), Dense(1)], seed=1)
    m.compile(loss="mse", optimizer=neuro.SGD(0.05))
    es = EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
    boom = LearningRateScheduler(lambda ep, lr: 0.05 if ep < 3 else 1e30)  # epoch 4 diverges
    return m, es, (x, y, [es, boom, *callbacks])


def test_terminate_on_nan_ends_training_as_keras_and_returns_the_history(capsys):
    """With TerminateOnNaN a refused step ends training: the epoch's logs and on_train_end run (best weights
    restored) and fit returns its History; fit raised FloatingPointError and lost both."""
    m, es, (x, y, cbs) = _diverging([neuro.callbacks.TerminateOnNaN()])
    h = m.fit(x, y, batch_size=8, epochs=10, verbose=0, callbacks=cbs)
    assert "terminating training (TerminateOnNaN)" in capsys.readouterr().out
    assert h.epoch == [0, 1, 2, 3] and m.history is h
    assert h.params["epochs"] == 10 and h.model is m
    assert all(np.array_equal(a, b) for a, b in zip(es.best_weights, m.get_weights(), strict=True))


def test_without_terminate_on_nan_the_error_carries_the_finished_epochs():
    m, es, (x, y, cbs) = _diverging([])
    with pytest.raises(FloatingPointError, match=r"^loss became inf at epoch 4, batch 2") as info:
        m.fit(x, y, batch_size=8, epochs=10, verbose=0, callbacks=cbs)
    assert info.value.history.epoch == [0, 1, 2] and m.history is info.value.history
    assert len(info.value.history["loss"]) == 3


def test_on_train_end_gets_the_last_epochs_logs():
    seen = {}

    class Spy(neuro.callbacks.Callback):
        def on_train_end(self, logs=None):
            seen.update(logs)

    x = np.ones((4, 2), np.float32)
    m = neuro.Sequential([Input((2,)), Dense(1)], seed=0)
    m.compile(loss="mse", optimizer="sgd")
    h = m.fit(x, np.ones((4, 1)), epochs=2, verbose=0, callbacks=[Spy()])
    assert seen == {"loss": h["loss"][-1]}


@pytest.mark.parametrize(("n", "split", "n_val"), [(10, 0.25, 3), (3, 0.2, 1), (10, 0.3, 3), (100, 0.1, 10)])
def test_validation_split_holds_out_what_keras_holds_out(n, split, n_val):
    """Keras trains on the first floor(n·(1 − split)) samples; neuro held out int(n·split), one fewer for
    10 samples and 0.25, and refused 3 samples with 0.2."""
    seen = []

    class Count(neuro.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(logs["val_loss"])

    x = np.arange(n, dtype=np.float32)[:, None]
    y = np.zeros((n, 1), np.float32)
    m = neuro.Sequential([Input((1,)), Dense(1, kernel_initializer="ones")], seed=0)
    m.compile(loss="mse", optimizer=neuro.SGD(0.0))
    m.fit(x, y, batch_size=n, epochs=1, verbose=0, validation_split=split, callbacks=[Count()])
    tail = x[n - n_val :, 0]
    assert seen[0] == pytest.approx(np.mean(tail**2), rel=1e-6)  # the last n_val samples, no others


def test_nesting_a_model_with_a_regularizer_says_that_it_does_not_carry_over():
    from neuro.regularizers import L2

    i = Input((4,))
    enc = Model(i, Dense(3, activation="tanh")(i), regularizer=L2(10.0))
    a = Input((4,))
    with pytest.warns(UserWarning, match=r"model 'model' has regularizer=L2\(.*\), which acts when it is trained "
                                         r"itself: inside another model its layers follow the outer model's"):
        outer = Model(a, Dense(1)(enc(a)), loss="mse", optimizer="sgd", seed=0)
    assert not outer.has_penalty()


def test_predict_class_refuses_outputs_that_are_not_one_class_distribution():
    """A regression output was thresholded at 0.5 (its 'probabilities' 1.585), a multi-label one argmaxed."""
    x = np.ones((3, 4), np.float32)
    reg = neuro.Sequential([Input((4,)), Dense(1)], seed=0)
    reg.compile(loss="mse", optimizer="sgd")
    with pytest.raises(ValueError, match=r"^predict_class needs an output of class probabilities \(softmax rows, "
                                         r"a sigmoid, or a model trained with a cross-entropy\), got one trained "
                                         r"with MeanSquaredError on an output that is neither; use predict$"):
        reg.predict_class(x)
    for loss in ("categorical_hinge", "kld"):  # a softmax classifier trained otherwise is still one
        soft = neuro.Sequential([Input((4,)), Dense(3, activation="softmax")], seed=0)
        soft.compile(loss=loss, optimizer="sgd")
        assert soft.predict_class(x)[0].shape == (3,)
    multi = neuro.Sequential([Input((4,)), Dense(3, activation="sigmoid")], seed=0)
    multi.compile(loss="bce", optimizer="sgd")
    with pytest.raises(ValueError, match=r"this output \(BinaryCrossEntropy on 3 values\) is multi-label"):
        multi.predict_class(x)
    one = neuro.Sequential([Input((4,)), Dense(1, activation="sigmoid")], seed=0)
    one.compile(loss="bce", optimizer="sgd")
    ids, prob = one.predict_class(x)
    assert ids.shape == (3,) and np.all((prob >= 0.5) & (prob <= 1))


def test_compiled_metric_names_are_saved_and_others_are_named_as_not_saved(tmp_path):
    """`evaluate` gave {'loss', 'mae'} before a save and {'loss'} after the load: the metrics were not saved."""
    i = Input((3,))
    m = Model(i, Dense(2)(i), loss="mse", optimizer="sgd", metrics=["mae"], seed=0)
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    m.save(tmp_path / "m.h5")
    assert Model.load(tmp_path / "m.h5").evaluate(x, y) == m.evaluate(x, y)
    m.compile("mse", neuro.SGD(), metrics=[lambda t, p: 0.0])
    with pytest.warns(UserWarning, match="the model's metrics are not saved: a file holds names only"):
        m.save(tmp_path / "f.h5")
    assert set(Model.load(tmp_path / "f.h5").evaluate(x, y)) == {"loss"}


@pytest.mark.parametrize("weight", ["2", None, -2.0, float("nan"), float("inf"), True])
@pytest.mark.parametrize("loss", ["crossentropy", "bce"])
def test_class_weight_values_are_checked_naming_the_argument(weight, loss):
    binary = loss == "bce"
    m = neuro.Sequential([Input((4,)), Dense(1, activation="sigmoid") if binary else Dense(3, activation="softmax")])
    m.compile(loss=loss, optimizer="sgd")
    y = np.array([0, 1, 0, 1]) if binary else np.array([0, 1, 2, 1])
    with pytest.raises(ValueError, match=r"^class_weight must map class ids to finite weights >= 0, got .* for class 1$"):
        m.fit(np.zeros((4, 4)), y, class_weight={1: weight}, verbose=0)


def test_loss_arguments_take_numpy_numbers_and_name_bad_ones():
    assert neuro.losses.CrossEntropy(label_smoothing=np.float32(0.25)).label_smoothing == 0.25
    with pytest.raises(ValueError, match=r"^class_weights must be two finite weights >= 0 \(w0, w1\), got 'ab'$"):
        neuro.losses.ClassWeightedBinaryCrossEntropy(class_weights="ab")


@pytest.mark.parametrize("n", [1, 3])
def test_a_categorical_loss_called_directly_spreads_sample_weights_over_the_steps(n):
    """Per-sample weights on sequence predictions: a uniform weight gave 4 times the loss for one sample and
    a broadcast error for three; (N, C) weights on rows gave a raw broadcast error."""
    rng = np.random.default_rng(0)
    z, ids = rng.standard_normal((n, 4, 3)), rng.integers(0, 3, (n, 4))
    loss = neuro.losses.SoftmaxCrossEntropy()
    assert loss.forward(z, ids, np.full(n, 2.0)) == pytest.approx(loss.forward(z, ids), rel=1e-14)
    np.testing.assert_allclose(loss.backward(z, ids, np.full(n, 2.0)), loss.backward(z, ids), rtol=1e-14)
    w = rng.uniform(0.5, 2, n)
    assert loss.forward(z, ids, w) == pytest.approx(loss.forward(z, ids, np.repeat(w[:, None], 4, 1)), rel=1e-14)
    with pytest.raises(ValueError, match=r"sample_weight of SoftmaxCrossEntropy weighs the positions \(3,\) of "
                                         r"y_pred \(3, 3\): it must have the shape of their leading axes, got \(3, 3\)"):
        loss.forward(rng.standard_normal((3, 3)), np.array([0, 1, 2]), np.ones((3, 3)))


def test_inputs_given_as_a_dict_are_named_by_their_keys_or_refused():
    """The keys of a dict of inputs were thrown away: data keyed by them was refused, and with the keys of two
    named inputs swapped, the data went to the other input ([1, 1] for [-1, -1])."""
    a, b = Input((2,), name="a"), Input((2,), name="b")
    with pytest.raises(ValueError, match=r"^inputs given as a dict are matched to data by name: the key 'b' holds "
                                         r"the input named 'a'; use the key 'a', or name the Input 'b'"):
        Model({"b": a, "a": b}, neuro.Subtract()([a, b]))
    a, b = Input((2,)), Input((2,))
    m = Model({"left": a, "right": b}, neuro.Subtract()([a, b]))
    assert m.input_names == ["left", "right"]
    out = m.predict({"right": np.zeros((1, 2)), "left": np.ones((1, 2))})
    np.testing.assert_array_equal(out, [[1.0, 1.0]])


def test_wrong_counts_of_inputs_outputs_and_weights_are_named():
    """A list of two arrays for a one-input model was stacked into one ("x must have shape (N, 3), got
    (2, 8, 3)"), a sample_weight list of 3 for 2 outputs gave a shape error, a wrong key a bare KeyError."""
    i = Input((3,))
    m = Model(i, Dense(2)(i), loss="mse", optimizer="sgd", seed=0)
    x, y = np.ones((8, 3)), np.ones((8, 2))
    with pytest.raises(ValueError, match=r"^x: the model has 1 input \('input'\), got a list of 2 arrays of 2 axes "
                                         r"each, as for 2 inputs$"):
        m.predict([x, x])
    with pytest.raises(ValueError, match=r"^y: the model has 1 output \('dense'\), got a list of 2 arrays"):
        m.fit(x, [y, y], verbose=0)
    assert m.predict([np.ones(3), np.ones(3)]).shape == (2, 2)  # a list of samples is still one batch
    h = Dense(4)(i)
    two = Model(i, [Dense(1, name="p")(h), Dense(1, name="q")(h)], loss="mse", optimizer="sgd", seed=0)
    w = np.ones(8)
    with pytest.raises(ValueError, match=r"^sample_weight must be one array for every output, a list of 2 \(one "
                                         r"per output \['p', 'q'\]\) or a dict keyed by output name, got a list of 3$"):
        two.fit(x, [np.ones((8, 1))] * 2, sample_weight=[w, w, w], verbose=0)
    outer_in = Input((3,))
    with pytest.raises(ValueError, match=r"^inputs is a dict with keys \['ii'\]; expected exactly the input names"):
        m({"ii": outer_in})


def test_a_network_refuses_a_model_added_twice_naming_the_graph_way():
    """It trained, then save() said 'a layer is used both inside a nested model and outside it' (false), and
    the loader refuses a repeated layer in a chain."""
    bi = Input((3,))
    blk = Model(bi, Dense(3)(bi), name="blk")
    net = neuro.Network((3,), "mse", "sgd").add(blk)
    with pytest.raises(ValueError, match=r"^model 'blk' is already in this network; a chain calls each layer "
                                         r"once: to use it twice, build a neuro.Model that calls it twice$"):
        net.add(blk)
    x = Input((3,))
    twice = Model(x, Dense(1)(blk(blk(x))), loss="mse", optimizer="sgd", seed=0)  # the graph way works
    assert twice.predict(np.ones((2, 3))).shape == (2, 1)


def test_deepcopy_gives_a_model_of_its_own():
    """copy.deepcopy(model) raised TypeError: cannot pickle 'module' object."""
    import copy

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 3, 16)
    i = Input((4,))
    m = Model(i, Dense(3, activation="softmax")(Dense(5, activation="relu")(i)), loss="crossentropy",
              optimizer="adam", metrics=["accuracy"], seed=0)
    m.fit(x, y, epochs=2, batch_size=8, verbose=0)
    c = copy.deepcopy(m)
    for a, b in zip(m.get_weights(), c.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    m.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    c.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)  # the same state: the same step
    for a, b in zip(m.get_weights(), c.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    c.layers[0].params["kernel"][...] = 0  # and its own arrays
    assert np.any(m.layers[0].params["kernel"] != 0)


def test_validation_data_may_be_a_list_of_three_as_in_keras():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal((8, 1)).astype(np.float32)
    m = neuro.Sequential([Input((3,)), Dense(1)], seed=0)
    m.compile(loss="mse", optimizer=neuro.SGD(0.0))
    w = np.r_[np.ones(4), np.zeros(4)]
    h = m.fit(x, y, epochs=1, verbose=0, validation_data=[x, y, w])
    assert h["val_loss"][0] == pytest.approx(m.evaluate(x[:4], y[:4])["loss"], rel=1e-6)


def test_an_own_training_loop_keeps_the_optimizer_state_across_a_freeze():
    """compute_gradients + optimizer.step(model.params, model.grads) is documented to give fit's weights; after
    a layer was frozen the optimizer silently restarted every parameter from zero state (0.119 off)."""
    from neuro.losses import CrossEntropy

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((48, 6)), rng.integers(0, 3, 48)

    def mk():
        return neuro.Sequential([Input((6,)), Dense(8, activation="tanh", name="a"), Dense(3)], seed=0,
                                loss=CrossEntropy(from_logits=True), optimizer=neuro.SGD(0.1, momentum=0.9))

    own, fitted = mk(), mk()

    def steps():
        for s in range(0, 48, 16):
            own.compute_gradients(x[s : s + 16], y[s : s + 16])
            own.optimizer.step(own.params, own.grads)

    steps()
    fitted.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for m in (own, fitted):
        m.get_layer("a").trainable = False
    steps()
    fitted.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(own.get_weights(), fitted.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_terminate_on_nan_ends_a_distributed_fit_too(capsys):
    m, es, (x, y, cbs) = _diverging([neuro.callbacks.TerminateOnNaN()])
    h = m.fit(x, y, batch_size=8, epochs=10, verbose=0, callbacks=cbs, distributed=True)
    assert h.epoch == [0, 1, 2, 3]
    assert "terminating training (TerminateOnNaN)" in capsys.readouterr().out


def test_terminate_on_nan_ends_the_failed_batch_with_a_nan_loss():
    ends = []

    class Spy(neuro.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(logs["loss"])

    m, es, (x, y, cbs) = _diverging([neuro.callbacks.TerminateOnNaN(), Spy()])
    m.fit(x, y, batch_size=8, epochs=10, verbose=0, callbacks=cbs)
    assert np.isnan(ends[-1]) and np.isfinite(ends[:-1]).all()


def test_a_replaced_parameter_array_is_named_with_the_fix():
    """params['kernel'] = w.T (a PyTorch habit) predicted through the view and failed in fit with 'params must
    be C-contiguous arrays' (no layer named); the torch layout gave a raw matmul error."""
    m = neuro.Sequential([Input((6,)), Dense(8, name="a"), Dense(3)], seed=0, loss="mse", optimizer="sgd")
    w = m.get_layer("a").params["kernel"].copy()
    m.get_layer("a").params["kernel"] = np.ascontiguousarray(w.T).T
    with pytest.raises(ValueError, match=r"^layer 'a' params\['kernel'\] must be a C-contiguous float32 array of "
                                         r"shape \(6, 8\) on the model's device, got an array of shape \(6, 8\), "
                                         r"dtype float32, not C-contiguous \(a transposed view\?\); assign into it"):
        m.fit(np.ones((4, 6)), np.ones((4, 3)), verbose=0)
    m.get_layer("a").params["kernel"] = np.ascontiguousarray(w.T)
    with pytest.raises(ValueError, match=r"got an array of shape \(8, 6\), dtype float32; assign into it "
                                         r"\(params\['kernel'\]\[...\] = w\) or use set_weights$"):
        m.predict(np.ones((4, 6)))


def test_a_layer_called_on_arrays_computes_in_its_dtype():
    """An average pool of integers divided in integers ([0, 0] for [1.5, 5.5]); a float32 Dense returned
    float64 for float64 data; a fresh layer called on float16 data built float16 weights."""
    np.testing.assert_array_equal(neuro.AvgPool1D(2)(np.array([[[1], [2], [4], [7]]])).ravel(), [1.5, 5.5])
    fresh = Dense(3)
    assert fresh(np.ones((2, 4), np.float16)).dtype == np.float32
    assert fresh.params["kernel"].dtype == np.float32
    assert fresh(np.ones((2, 4), np.float64)).dtype == np.float32
    assert neuro.MaxPool2D(2)(np.ones((1, 4, 4, 1), np.float64)).dtype == np.float64  # no weights: as given


def test_small_input_forms_that_are_taken(monkeypatch):
    """float16 data under numba's kernels took the compiled path and raised numba's NotImplementedError; a
    list of 0-d sample weights for a two-output model was refused as a wrong count; a class weight of 10**400
    gave a bare OverflowError."""
    from neuro import backend

    pytest.importorskip("numba")
    monkeypatch.setattr(backend, "_kernel_request", backend._kernel_request)
    monkeypatch.setattr(backend, "_kernels_on", None)
    backend.set_kernels("numba")
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 3)).astype(np.float16)
    assert neuro.MaxPool2D(2)(x).dtype == np.float16
    i = Input((3,))
    h = Dense(4)(i)
    two = Model(i, [Dense(1, name="p")(h), Dense(1, name="q")(h)], loss="mse", optimizer="sgd", seed=0)
    two.fit(np.ones((3, 3)), [np.ones((3, 1))] * 2, sample_weight=[np.float64(1.0)] * 3, verbose=0)
    m = neuro.Sequential([Input((4,)), Dense(3, activation="softmax")])
    m.compile(loss="crossentropy", optimizer="sgd")
    with pytest.raises(ValueError, match=r"^class_weight must map class ids to finite weights >= 0"):
        m.fit(np.zeros((3, 4)), np.array([0, 1, 2]), class_weight={0: 10**400}, verbose=0)


def test_deepcopy_takes_classes_of_ones_own_and_keeps_the_metrics():
    """A subclassed optimizer or activation made deepcopy fail with 'passed in custom_objects', and metric
    functions were dropped with a warning about saving."""
    import copy
    import warnings

    class MyOpt(neuro.SGD):
        pass

    class MyTanh(neuro.activations.Tanh):
        pass

    i = Input((3,))
    m = Model(i, Dense(1, activation=MyTanh())(i), loss="mse", optimizer=MyOpt(0.1),
              metrics=[lambda t, p: 0.0], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = copy.deepcopy(m)
    assert type(c.optimizer) is MyOpt and type(c.layers[0].activation) is MyTanh
    x, y = np.ones((2, 3)), np.ones((2, 1))
    assert c.evaluate(x, y) == m.evaluate(x, y)


def test_a_moved_name_never_lands_on_a_name_given_by_hand():
    """A moved layer took 'dense_1', which its own model's layer had been named by hand: that model then held
    two layers named 'dense_1' and saved a file it could not load."""
    i = Input((4,))
    d = Dense(3)
    a = Model(i, Dense(2, name="dense_1")(d(i)), loss="mse", optimizer="sgd")
    j = Input((4,))
    b = Model(j, Dense(4)(j))
    k = Input((4,))
    with pytest.warns(UserWarning, match=r"is renamed 'dense_\d+'"):  # a name no live layer holds
        Model(k, d(b.leaf_layers()[-1](k)))
    names = [layer.name for layer in a.leaf_layers()]
    assert len(set(names)) == len(names), names


def test_a_layer_on_another_device_is_named_when_the_model_is_built():
    """A nested model on NumPy inside a strict-device model was accepted and failed at the first step with
    'move the data or the network'."""
    i = Input((3,))
    enc = Model(i, Dense(2)(i))
    o = Input((3,))
    with pytest.raises(ValueError, match=r"^layer 'dense' holds its kernel on device 'numpy' \(another model's\); "
                                         r"this model is on 'strict'"):
        Model(o, Dense(1)(enc(o)), loss="mse", optimizer="sgd", device="strict")


def test_an_epoch_of_which_nothing_weighs_logs_zero_in_fit_and_nan_in_evaluate():
    """Each batch's loss was 0 (nothing weighs), but the epoch's logged loss was NaN (Keras: 0)."""
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    y = np.array([0, 1] * 4)
    m = neuro.Sequential([Input((3,)), Dense(2, activation="softmax")], seed=0)
    m.compile(loss="crossentropy", optimizer="sgd")
    h = m.fit(x, y, batch_size=4, verbose=0, class_weight={0: 0.0, 1: 0.0})
    assert h["loss"] == [0.0]
    assert np.isnan(m.evaluate(x, y, sample_weight=np.zeros(8))["loss"])


def test_check_gradients_skips_the_padding_steps_of_a_masking_layer():
    """A finite difference there measures the jump of the mask (an entry moved off mask_value makes the step
    valid): check_gradients reported an input error of 1.0 (or 0.5 on the layer alone) for correct code."""
    from neuro import LSTM, Masking

    x = np.random.default_rng(0).standard_normal((4, 5, 2))
    x[:, 3:] = 0.0
    x[0, 1, 0] = 0.0  # one feature of a valid step at mask_value: checked, no jump there
    i = Input((5, 2))
    m = Model(i, Dense(1)(LSTM(3)(Masking()(i))), loss="mse", optimizer="sgd", seed=0)
    report = neuro.check_gradients(m, x, np.zeros((4, 1)))
    assert report.errors["input input"] < 1e-7, report
    inner = neuro.Sequential([Input((5, 2)), Masking(), LSTM(3)])  # the Masking inside a nested model
    j = Input((5, 2))
    nested = Model(j, Dense(1)(inner(j)), loss="mse", optimizer="sgd", seed=0)
    assert neuro.check_gradients(nested, x, np.zeros((4, 1))).errors["input input"] < 1e-7
    assert neuro.check_gradients(Masking(), x).errors["input"] < 1e-7
    x[:, 1] = 0.5  # another mask_value: its steps are skipped, the zero steps are valid and checked
    assert neuro.check_gradients(Masking(mask_value=0.5), x).errors["input"] < 1e-7


def test_a_model_file_with_metric_names_is_compiled_once(tmp_path, monkeypatch):
    """The loader compiled such a model twice (once without the names, once with them)."""
    m = neuro.Sequential([Input((3,)), Dense(2, activation="softmax")], seed=0)
    m.compile(loss="crossentropy", optimizer="adam", metrics=["accuracy"])
    m.save(tmp_path / "m.h5")
    calls = []
    compile_ = Model.compile
    monkeypatch.setattr(Model, "compile", lambda self, *a, **k: calls.append(1) or compile_(self, *a, **k))
    loaded = Model.load(tmp_path / "m.h5")
    assert len(calls) == 1
    assert loaded.compiled_metrics == ["accuracy"]
    x, y = np.ones((4, 3), np.float32), np.array([0, 1, 0, 1])
    assert set(loaded.evaluate(x, y)) == {"loss", "accuracy"}


def test_optimizer_state_given_in_fortran_order_trains_as_in_c_order(kernel_set):
    """set_state kept a Fortran-ordered array (a PyTorch state's ``.T``); after the first commit it was the
    buffer the kernels wrote the next state into through a flat copy, so the state went stale silently
    (weights 0.002 off)."""
    from neuro.optimizers import Adam

    rng = np.random.default_rng(0)
    w0, m0, v0 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.random((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(4)]

    def run(order):
        w, opt = w0.copy(), Adam(0.01)
        state = {"m": np.array(m0, order=order), "v": np.array(v0, order=order)}
        opt.set_state({"iterations": 5, "slots": [state]}, params=[w])
        for g in grads:
            opt.step([w], [g])
        return w, opt.get_state()["slots"][0]["m"]

    (wc, mc), (wf, mf) = run("C"), run("F")
    np.testing.assert_array_equal(wf, wc)
    np.testing.assert_array_equal(mf, mc)
    assert not np.array_equal(mc, m0)


def test_gradients_of_other_shapes_are_refused_by_every_kernel_set(kernel_set):
    """The compiled update indexed each gradient by its parameter's entries: gradients given in the wrong
    order read (and trained on) memory past the end of the smaller array."""
    from neuro.optimizers import Adam

    w, b = np.zeros((3, 4)), np.zeros(4)
    with pytest.raises(ValueError, match=r"^grads\[0\] must have the shape of params\[0\] \(3, 4\), got \(4,\)$"):
        Adam(0.1).step([w, b], [np.ones(4), np.ones((3, 4))])
    with pytest.raises(ValueError, match=r"^grads must hold one gradient per parameter \(2\), got 1$"):
        Adam(0.1).step([w, b], [np.ones((3, 4))])
    assert not w.any() and not b.any()


def test_elementwise_kernels_broadcast_as_numpy_and_write_nothing_else(kernel_set):
    """The compiled activation backward passes and dropout indexed every array by the first's entries: a
    mask or output meant to broadcast gave garbage (and dropout wrote past its mask's end)."""
    import neuro.functional as F

    rng = np.random.default_rng(0)
    g, y = rng.standard_normal((4, 5)), rng.uniform(0.1, 0.9, (1, 5))
    for fn, ref in (
        (F.sigmoid_backward, g * y * (1 - y)),
        (F.tanh_backward, g * (1 - y * y)),
        (F.relu_backward, g * (y > 0)),
    ):
        np.testing.assert_allclose(fn(g, y), ref, rtol=1e-15)
    buf = np.full(20, 0.9)
    out, _ = F.dropout(np.ones((3, 4)), 0.5, buf[:4].reshape(1, 4))
    np.testing.assert_array_equal(out, np.full((3, 4), 2.0))
    np.testing.assert_array_equal(buf[4:], 0.9)


def test_only_float_work_takes_the_compiled_kernels(kernel_set):
    """``compiled`` said yes to integer and complex arrays: a complex ReLU backward failed to compile under
    numba ("KernelError"), where NumPy's path computes it."""
    import neuro.functional as F
    from neuro import backend

    c = np.array([1 + 2j, -1 - 1j, 3j, 2])
    np.testing.assert_array_equal(F.relu_backward(c, c), c * (c > 0))
    assert not backend.compiled(np.arange(3)) and not backend.compiled(c)
    assert backend.compiled(np.ones(3), np.arange(3)) == (kernel_set == "numba")


def test_scatter_sums_on_the_strict_device_read_nothing_and_equal_numpys():
    """Embedding's backward (flatnonzero) and the confusion metrics (bincount) read from the device at every
    step on CuPy, uncounted by the strict device; scatter_sums reads nothing and gives NumPy's sums."""
    import neuro.functional as F
    from neuro import backend

    strict = backend.get_device("strict")
    rng = np.random.default_rng(0)
    for keys in (rng.integers(0, 9, 40), np.arange(9)[::-1].copy(), np.full(5, 3), np.zeros(0, np.int64)):
        g = rng.standard_normal((len(keys), 4))
        g[:2] = -0.0  # a sum of -0.0 stays -0.0
        ref = F.embedding_backward(g, keys, np.empty((9, 4)))
        reads = backend.host_reads()
        out = F.embedding_backward(backend.to_device(g, strict), backend.to_device(keys, strict),
                                   strict.empty((9, 4)))
        ints = backend.scatter_sums(backend.to_device(keys, strict), strict.ones(len(keys), dtype=np.int64), 9)
        assert backend.host_reads() == reads
        got = backend.to_numpy(out)
        np.testing.assert_array_equal(got, ref)
        assert (np.signbit(got) == np.signbit(ref)).all()
        np.testing.assert_array_equal(backend.to_numpy(ints), np.bincount(keys, minlength=9))
    # and each read CuPy would make is counted
    reads = backend.host_reads()
    a = backend.to_device(np.arange(4), strict)
    strict.flatnonzero(a), strict.bincount(a), a[a > 1], strict.where(a > 1)
    a[a > 2] = 0  # CuPy counts the mask's true values on the host for an assignment too
    assert backend.host_reads() == reads + 5
    a[1:3], strict.where(a > 1, a, 0)  # slices and three-argument where stay on the device
    assert backend.host_reads() == reads + 5
    a.nonzero(), a.compress(a > 1), strict.setdiff1d(a, a)  # methods and the set functions too
    assert backend.host_reads() == reads + 8


def test_confusion_metrics_on_the_strict_device_read_only_their_result():
    from neuro import backend, metrics

    strict = backend.get_device("strict")
    rng = np.random.default_rng(1)
    p, y, w = rng.random((300, 4)), rng.integers(0, 4, 300), rng.uniform(0.1, 1.0, 300)
    for weights in (None, w):
        host, dev = metrics.F1Score(), metrics.F1Score()
        reads = backend.host_reads()
        for i in range(0, 300, 100):
            part = None if weights is None else weights[i : i + 100]
            host.update(p[i : i + 100], y[i : i + 100], part)
            dev.update(*(backend.to_device(a, strict) for a in (p[i : i + 100], y[i : i + 100])),
                       None if part is None else backend.to_device(part, strict))
        assert backend.host_reads() == reads
        np.testing.assert_array_equal(backend.to_numpy(dev.matrix), host.matrix)  # bitwise, weights too
        assert dev.result() == host.result()


def test_load_model_is_kerass_name_for_loading_a_model_file(tmp_path):
    m = neuro.Sequential([Input((3,)), Dense(2)], seed=0)
    m.compile(loss="mse", optimizer="adam")
    m.save(tmp_path / "m.h5")
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(neuro.load_model(tmp_path / "m.h5").predict(x), m.predict(x))
    assert "load_model" in neuro.__all__


@pytest.mark.parametrize("name", ["Adam", "RMSprop", "Adadelta"])
def test_second_moments_are_taken_in_torchs_order_and_stay_finite_where_torchs_do(name, kernel_set, torch):
    """(g·g)·(1 − β2) overflowed float32 from |g| ≈ 1.8e19, where torch's addcmul, ((1 − β2)·g)·g, stays
    finite (to about 5.8e20 for Adam): the step was refused (fit stopped) or, committed, left v = inf."""
    from neuro import optimizers

    w0, g = np.array([1.0, 1.0], np.float32), np.array([2e19, 1.0], np.float32)
    kw = {"Adam": {}, "RMSprop": {"rho": 0.9}, "Adadelta": {"rho": 0.9}}[name]
    lr = 1.0 if name == "Adadelta" else 0.1
    w = w0.copy()
    opt = getattr(optimizers, name)(lr, **kw)
    opt.stage([w], [g])
    assert opt.staged_finite()
    opt.commit([w])
    tw = torch.tensor(w0, requires_grad=True)
    targs = {"Adam": {}, "RMSprop": {"alpha": 0.9, "eps": 1e-7}, "Adadelta": {"rho": 0.9, "eps": 1e-6}}[name]
    topt = getattr(torch.optim, name)([tw], lr=lr, **targs)
    tw.grad = torch.tensor(g)
    topt.step()
    # Adadelta takes sqrt((u + ε)/(v + ε)) with one square root: here the ratio (2.5e-44) is subnormal in
    # float32 and keeps 5 digits (its docstring says so); torch takes two roots
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-4 if name == "Adadelta" else 1e-6)


@pytest.mark.parametrize("curve", ["ROC", "PR"])
def test_auc_counts_tied_infinite_scores_as_ties(curve):
    """Ties were found with np.diff, and inf − inf is NaN ("different"): tied infinite scores were ranked
    by their order in the data (ROC 1.0 or 0.5 for the same data, instead of 0.75)."""
    from neuro import metrics

    for big in (np.inf, -np.inf):
        for labels in ([1, 0, 0], [0, 1, 0], [1, 0, 1]):
            values = []
            for s in ([big, big, 0.0], [np.sign(big) * 1e30, np.sign(big) * 1e30, 0.0]):
                m = metrics.AUC(curve)
                m.update(np.array(s).reshape(-1, 1), np.array(labels).reshape(-1, 1))
                values.append(m.result())
            assert values[0] == values[1], (big, labels, values)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probability_losses_clamp_the_log_at_minus_100_in_float32_too(dtype, torch):
    """The floor was applied to p, at exp(−100), which is subnormal in float32 (its log −99.98): BCE of a
    hard 0 gave 99.983 where torch's BCELoss gives 100."""
    from neuro import losses

    p, y = np.array([[0.0], [1.0], [0.3]], dtype), np.array([[1.0], [0.0], [1.0]], dtype)
    ref = torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(y), reduction="sum").item()
    assert losses.BinaryCrossEntropy().forward(p, y) * 3 == pytest.approx(ref, rel=1e-6)
    rows = np.array([[0.0, 1.0], [0.5, 0.5]], dtype)
    assert losses.CrossEntropy().forward(rows, np.array([0, 1])) == pytest.approx((100 - np.log(0.5)) / 2, rel=1e-6)
    # integer and boolean predictions (a direct call) still give a number
    assert losses.BinaryCrossEntropy().forward(np.array([[0], [1]]), y[:2]) == pytest.approx(100.0)
    assert losses.CrossEntropy().forward(np.array([[True, False]]), np.array([1])) == pytest.approx(100.0)


def test_softmax_cross_entropy_of_a_certain_class_is_zero_not_nan(torch):
    """Class ids became one-hot rows, and a class of target 0 with log-probability −inf added 0·(−inf) = NaN
    (torch's cross_entropy of class ids: 0)."""
    from neuro import losses

    for z in (np.array([[0.0, -np.inf]]), np.array([[3e38, -3e38]], np.float32)):
        ref = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor([0])).item()
        with np.errstate(over="ignore"):
            assert losses.SoftmaxCrossEntropy().forward(z, np.array([0])) == ref == 0.0
            assert losses.CrossEntropy(from_logits=True).forward(z, np.array([0])) == 0.0
            # a target on the class of log-probability −inf is an infinite loss, as torch's (also smoothed)
            assert losses.SoftmaxCrossEntropy().forward(z, np.array([1])) == np.inf
            smoothed = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor([0]), label_smoothing=0.1)
            assert losses.SoftmaxCrossEntropy(label_smoothing=0.1).forward(z, np.array([0])) == smoothed.item()
    nan = losses.SoftmaxCrossEntropy().forward(np.array([[np.nan, 0.0]]), np.array([1]))
    assert np.isnan(nan)  # a NaN logit still makes the loss NaN


def test_batch_norm_kernels_take_numpys_path_for_vectors_of_other_shapes(kernel_set):
    """batch_norm_train's compiled passes indexed gamma and beta by the feature without checking their
    length: a (1,) gamma read past its end (NumPy broadcasts it), a (2,) one for 3 features gave garbage
    (NumPy refuses it)."""
    from neuro.functional.normalization import batch_norm_train

    x = np.random.default_rng(0).standard_normal((6, 3))
    y = batch_norm_train(x, np.full(1, 2.0), np.full(1, 0.5), 1e-5)[0]
    ref = batch_norm_train(x, np.full(3, 2.0), np.full(3, 0.5), 1e-5)[0]
    np.testing.assert_array_equal(y, ref)
    with pytest.raises(ValueError, match="could not be broadcast"):
        batch_norm_train(x, np.full(2, 2.0), np.full(2, 0.5), 1e-5)


def test_learning_rate_scheduler_takes_a_schedule_of_the_epoch_alone():
    """Keras 3 calls schedule(epoch, lr) and falls back to schedule(epoch); neuro raised TypeError."""
    from neuro.callbacks import LearningRateScheduler

    x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
    def untold(fn):  # a decorator without functools.wraps: the signature is (*args, **kwargs)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        return wrapper

    for schedule in (lambda e: 0.1 * 0.5**e, lambda e, lr: 0.1 * 0.5**e, untold(lambda e: 0.1 * 0.5**e)):
        m = neuro.Sequential([Input((3,)), Dense(1)], seed=0)
        m.compile(loss="mse", optimizer="sgd")
        h = m.fit(x, y, epochs=3, verbose=0, callbacks=[LearningRateScheduler(schedule)])
        assert h["learning_rate"] == [0.1, 0.05, 0.025]
    with pytest.raises(TypeError, match=r"^schedule must take \(epoch, lr\) or \(epoch\), got a callable of "
                                        r"signature \(\)$"):
        LearningRateScheduler(lambda: 0.1)


def test_kerass_random_initializers_have_kerass_defaults():
    """"uniform" and "normal" are the original neuro's ±0.01 and 0.01; Keras's defaults (±0.05, stddev
    0.05, truncated at two standard deviations) had no initializer."""
    from neuro import initializers

    rng = np.random.default_rng(0)
    u = initializers.get("random_uniform")((400, 500), rng, np.float64)
    n = initializers.get("random_normal")((400, 500), rng, np.float64)
    t = initializers.get("truncated_normal")((400, 500), rng, np.float64)
    assert -0.05 <= u.min() < -0.0499 and 0.0499 < u.max() < 0.05
    assert n.std() == pytest.approx(0.05, rel=0.01)
    assert np.abs(t).max() <= 0.1 and t.std() == pytest.approx(0.05 * 0.8796, rel=0.01)
    again = initializers.get("truncated_normal")((400, 500), np.random.default_rng(0), np.float64)
    np.testing.assert_array_equal(initializers.get("random_uniform")((400, 500), np.random.default_rng(0),
                                                                     np.float64), u)
    assert again.shape == t.shape
    spec = {"class": "RandomUniform", "config": initializers.RandomUniform(-1.0, 2.0).get_config()}
    assert repr(initializers.get(spec)) == "RandomUniform(minval=-1.0, maxval=2.0)"
    with pytest.raises(ValueError, match=r"^stddev must be a finite number >= 0, got -1$"):
        initializers.TruncatedNormal(stddev=-1)


def test_lstm_unit_forget_bias_draws_its_gates_as_keras():
    """The base initializer was drawn on (4u,) and the forget slice overwritten: a fan-based bias
    initializer saw a fan of 4u (limit sqrt(6/16)) where Keras's draws (u,) and (2u,) (sqrt(6/4), sqrt(6/8))."""
    from neuro import LSTM

    i = Input((3, 2))
    b = Model(i, LSTM(64, bias_initializer="he_uniform")(i), seed=0).leaf_layers()[0].params["bias"]
    assert np.abs(b[:64]).max() > np.sqrt(6 / 256) and np.abs(b[:64]).max() <= np.sqrt(6 / 64)
    np.testing.assert_array_equal(b[64:128], 1.0)
    assert np.abs(b[128:]).max() > np.sqrt(6 / 256) and np.abs(b[128:]).max() <= np.sqrt(6 / 128)


def test_every_schedule_takes_an_integral_float_step_count():
    """ExponentialDecay took decay_steps=1000.0, CosineDecay and StepDecay refused it."""
    from neuro.schedules import CosineDecay, ExponentialDecay, StepDecay

    assert CosineDecay(0.1, 1000.0).decay_steps == ExponentialDecay(0.1, 1000.0, 0.9).decay_steps == 1000
    assert StepDecay(0.1, 0.5, 10.0).step_size == 10
    with pytest.raises(ValueError, match=r"^decay_steps must be a whole number of updates >= 1, got 10\.5$"):
        CosineDecay(0.1, 10.5)


def test_learning_rate_scheduler_names_a_schedule_that_returns_no_number():
    """With a hidden signature, float(None) raised inside the two-argument try: the schedule was called
    again with one argument and failed with 'missing 1 required positional argument'."""
    from neuro.callbacks import LearningRateScheduler

    def untold(fn):
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        return wrapper

    m = neuro.Sequential([Input((3,)), Dense(1)], seed=0)
    m.compile(loss="mse", optimizer="sgd")
    forgot = untold(lambda epoch, lr: lr if epoch < 1 else None)
    with pytest.raises(ValueError, match=r"^schedule must return a number \(the learning rate\), got None at epoch 1$"):
        m.fit(np.ones((4, 3)), np.zeros((4, 1)), epochs=2, verbose=0, callbacks=[LearningRateScheduler(forgot)])
