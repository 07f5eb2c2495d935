"""Network: the softmax/cross-entropy pairings, whole-network gradients, training, seeds, errors."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import neuro
from neuro import (
    L1,
    L2,
    SGD,
    CrossEntropy,
    Dense,
    Network,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
)


def _data(rng, n=16, d=6, c=4):
    return rng.standard_normal((n, d)), rng.integers(0, c, size=n)


def _pair_net(loss, last_activation, seed=3, hidden="tanh"):
    net = Network((6,), loss, SGD(0.1), seed=seed)
    net.add(Dense(5, hidden)).add(Dense(4, last_activation))
    return net


# -- the three softmax / cross-entropy pairings ------------------------------------------------------------
@pytest.mark.usefixtures("float64")
def test_softmax_crossentropy_pairings_agree(rng):
    x, y = _data(rng)
    nets = [
        _pair_net(SoftmaxCrossEntropy(), "softmax"),
        _pair_net(SoftmaxCrossEntropy(), "linear"),
        _pair_net(CrossEntropy(), "softmax"),
    ]
    weights = nets[0].get_weights()
    for net in nets[1:]:
        net.set_weights(weights)
    losses = [net.compute_gradients(x, y) for net in nets]
    grads = [[g.copy() for g in net.grads] for net in nets]
    preds = [net.predict(x) for net in nets]
    for other in range(1, 3):
        assert losses[other] == pytest.approx(losses[0], rel=1e-12)
        for a, b in zip(grads[0], grads[other], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(preds[other], preds[0], rtol=1e-12)
    np.testing.assert_allclose(preds[0].sum(axis=1), 1.0, rtol=1e-12)
    # and the value is the plain cross-entropy of the predicted probabilities
    p = preds[0]
    assert losses[0] == pytest.approx(-np.log(p[np.arange(len(y)), y]).mean(), rel=1e-12)


@pytest.mark.usefixtures("float64")
def test_softmax_output_with_crossentropy_never_divides_by_zero():
    net = Network((2,), "crossentropy", SGD(0.1), seed=0)
    net.add(Dense(3, "softmax"))
    net.set_weights([np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]]), np.zeros(3)])
    x = np.array([[1.0, 0.0], [1.0, 0.0]])
    y = np.array([1, 2])  # the true classes get probability exactly 0
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        loss = net.compute_gradients(x, y)
    assert np.isfinite(loss) and loss == pytest.approx(1.5e4, rel=1e-12)
    assert all(np.all(np.isfinite(g)) for g in net.grads)


# -- whole-network finite differences ------------------------------------------------------------------------
NETWORKS = {
    "hidden_softmax": lambda: [Dense(5, "softmax"), Dense(4, "leaky_relu"), Dense(3, "softmax")],
    "sigmoid_tanh_linear": lambda: [Dense(5, "sigmoid"), Dense(4, "tanh"), Dense(3, "linear")],
    "activation_layers": lambda: [Dense(5, None), neuro.Tanh(), Dense(3, None), Softmax()],
    "relu_linear": lambda: [Dense(7, "relu"), Dense(3, "linear")],
}


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize(
    ("layers", "loss"),
    [
        (layers, loss)
        for layers in sorted(NETWORKS)
        for loss in ("softmax_crossentropy", "crossentropy", "mse", "mae")
        # cross-entropy on probabilities needs a softmax output
        if loss != "crossentropy" or layers in ("hidden_softmax", "activation_layers")
    ],
)
def test_network_gradients_match_finite_differences(layers, loss, rng):
    net = Network((6,), loss, SGD(0.1), seed=1)
    for layer in NETWORKS[layers]():
        net.add(layer)
    x = rng.standard_normal((8, 6))
    y = rng.integers(0, 3, size=8) if "crossentropy" in loss else rng.standard_normal((8, 3))
    report = neuro.check_gradients(net, x, y)
    assert report.max_error < 1e-6, report


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("regularizer", [L1(0.03), L2(0.05)])
def test_regularized_network_gradients(regularizer, rng):
    net = Network((6,), "softmax_crossentropy", SGD(0.1), regularizer=regularizer, seed=2)
    net.add(Dense(5, "tanh")).add(Dense(3, "softmax"))
    x, y = rng.standard_normal((10, 6)), rng.integers(0, 3, size=10)
    report = neuro.check_gradients(net, x, y)
    assert report.max_error < 1e-6, report
    # the reported loss includes the penalty
    plain = Network((6,), "softmax_crossentropy", SGD(0.1), seed=2)
    plain.add(Dense(5, "tanh")).add(Dense(3, "softmax"))
    plain.set_weights(net.get_weights())
    k0, k1 = net.layers[0].params["kernel"], net.layers[1].params["kernel"]
    penalty = float(regularizer.penalty(k0)) + float(regularizer.penalty(k1))
    assert net.evaluate(x, y)["loss"] == pytest.approx(plain.evaluate(x, y)["loss"] + penalty)


@pytest.mark.usefixtures("float64")
def test_binary_crossentropy_sigmoid_output_fused(rng):
    net = Network((4,), "binary_crossentropy", SGD(0.1), seed=0)
    net.add(Dense(3, "tanh")).add(Dense(1, "sigmoid"))
    x, y = rng.standard_normal((12, 4)), rng.integers(0, 2, size=12).astype(float)
    # fused with the output layer's own sigmoid: the loss sees the logits of that layer
    assert isinstance(net.head, neuro.head.FusedHead)
    assert net.head.activation is net.layers[-1].activation
    assert neuro.check_gradients(net, x, y).max_error < 1e-6
    p = net.predict(x)[:, 0]
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert net.evaluate(x, y, metrics=())["loss"] == pytest.approx(expected, rel=1e-10)
    classes, probs = net.predict_class(x)
    np.testing.assert_array_equal(classes, (p >= 0.5).astype(int))
    np.testing.assert_allclose(probs, np.where(p >= 0.5, p, 1 - p))


# -- training -----------------------------------------------------------------------------------------------
def _digits():
    pytest.importorskip("sklearn")
    from neuro.data import load_digits, train_test_split

    x, y = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    return x_train, y_train, x_test, y_test


def test_digits_reach_95_percent():
    x_train, y_train, x_test, y_test = _digits()
    net = Network((64,), "softmax_crossentropy", SGD(0.05, momentum=0.9), seed=0)
    net.add(Dense(64, "relu")).add(Dense(10, "softmax"))
    history = net.fit(x_train, y_train, batch_size=32, epochs=15, verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    result = net.evaluate(x_test, y_test)
    assert result["accuracy"] >= 0.95, result


def _train(seed, x, y):
    net = Network((64,), "softmax_crossentropy", SGD(0.05, momentum=0.9), seed=seed)
    net.add(Dense(32, "relu")).add(neuro.Dropout(0.2)).add(Dense(10, "softmax"))
    hist = net.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return net.get_weights(), hist.history


def test_same_seed_gives_bitwise_identical_run():
    x, y, _, _ = _digits()
    x, y = x[:400], y[:400]
    w1, h1 = _train(7, x, y)
    w2, h2 = _train(7, x, y)
    w3, _ = _train(8, x, y)
    assert h1 == h2
    for a, b in zip(w1, w2, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(w1[0], w3[0])


def test_history_and_validation_keys(rng):
    x, y = _data(rng, n=40)
    net = _pair_net("softmax_crossentropy", "softmax")
    hist = net.fit(x, y, epochs=3, batch_size=8, validation_data=(x, y), verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert hist.epoch == [0, 1, 2] and all(len(v) == 3 for v in hist.history.values())
    # the validation figures are exactly what evaluate reports after the last epoch
    assert hist["val_loss"][-1] == pytest.approx(net.evaluate(x, y)["loss"], rel=1e-6)


def test_evaluate_is_exact_over_ragged_batches(rng):
    x, y = _data(rng, n=23)
    net = _pair_net("softmax_crossentropy", "softmax")
    whole = net.evaluate(x, y, batch_size=100)
    ragged = net.evaluate(x, y, batch_size=5)
    assert ragged["loss"] == pytest.approx(whole["loss"], rel=1e-6)
    assert ragged["accuracy"] == whole["accuracy"]


def test_class_weights_evaluate_matches_weighted_mean(rng):
    x, y = _data(rng, n=23)
    w = [1.0, 2.0, 0.5, 3.0]
    net = _pair_net(SoftmaxCrossEntropy(class_weights=w), "softmax")
    p = net.predict(x).astype(np.float64)
    wy = np.asarray(w)[y]
    expected = -(wy * np.log(p[np.arange(len(y)), y])).sum() / wy.sum()
    assert net.evaluate(x, y, batch_size=4, metrics=())["loss"] == pytest.approx(expected, rel=1e-5)


def test_nan_loss_stops_training_with_weights_from_before_the_batch(rng):
    x = rng.standard_normal((24, 6))
    y = rng.standard_normal(24)
    y[8:16] = 1e30  # finite targets whose squared error overflows float32 in the second batch

    def make():
        return Network((6,), "mse", SGD(0.01), seed=0).add(Dense(5, "tanh")).add(Dense(1, None))

    net, ref = make(), make()
    ref.fit(x[:8], y[:8], batch_size=8, epochs=1, shuffle=False, metrics=(), verbose=0)
    with pytest.raises(FloatingPointError, match=r"loss became inf at epoch 1, batch 2 \(learning rate 0.01\); training stopped"):
        with np.errstate(over="ignore"):
            net.fit(x, y, batch_size=8, epochs=1, shuffle=False, metrics=(), verbose=0)
    for a, b in zip(net.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_verbose_output(rng, capsys):
    x, y = _data(rng, n=20)
    net = _pair_net("softmax_crossentropy", "softmax")
    net.fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    net.fit(x, y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert out.count("\n") == 2 and "Epoch 2/2" in out and "loss:" in out and "\r" not in out
    net.fit(x, y, epochs=3, verbose=1)  # not a terminal: one line per epoch, no redrawn bar
    out = capsys.readouterr().out
    assert out.count("\n") == 3 and "\r" not in out


# -- inference ----------------------------------------------------------------------------------------------
def test_predict_leaves_no_cache_and_predict_class_names(rng, assert_unchanged):
    x, y = _data(rng)
    net = _pair_net("softmax_crossentropy", "softmax")
    net.fit(x, y, batch_size=8, epochs=1, verbose=0)  # the layers have grads and scratch space now
    with contextlib.ExitStack() as stack:  # inference keeps nothing on the layers and changes nothing
        for layer in net.layers:
            stack.enter_context(assert_unchanged(layer))
            stack.enter_context(assert_unchanged(layer.activation))
        p = net.predict(x, batch_size=5)
    assert p.shape == (16, 4) and p.dtype == np.float32
    ids, probs = net.predict_class(x)
    np.testing.assert_array_equal(ids, p.argmax(axis=1))
    np.testing.assert_allclose(probs, p.max(axis=1))
    net.class_names = ["a", "b", "c", "d"]
    names, _ = net.predict_class(x)
    assert list(names) == [net.class_names[i] for i in ids]


def test_linear_output_with_softmax_crossentropy_predicts_probabilities(rng):
    x, _ = _data(rng)
    net = _pair_net("softmax_crossentropy", "linear")
    p = net.predict(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(p > 0)


def test_summary_and_weights(rng):
    net = _pair_net("softmax_crossentropy", "softmax")
    text = str(net)
    assert "Dense" in text and "(None, 5)" in text and "(None, 4)" in text
    assert "Total params: 59" in text  # 6*5+5 + 5*4+4
    weights = net.get_weights()
    assert [w.shape for w in weights] == [(6, 5), (5,), (5, 4), (4,)]
    with pytest.raises(ValueError, match=r"weights must be a list of 4 arrays, got 3"):
        net.set_weights(weights[:3])
    bad = list(weights)
    bad[2] = np.zeros((4, 5))
    with pytest.raises(ValueError, match=r"weights\[2\].*\(5, 4\).*\(4, 5\)"):
        net.set_weights(bad)


# -- bad input ----------------------------------------------------------------------------------------------
@pytest.fixture
def net():
    return _pair_net("softmax_crossentropy", "softmax")


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "error", "match"),
    [
        (np.zeros((4, 5)), np.zeros(4, int), {}, ValueError, r"x must have shape \(N, 6\), got \(4, 5\)"),
        (np.array([["a"] * 6]), np.zeros(1, int), {}, TypeError, r"x must hold numbers"),
        (np.full((4, 6), np.nan), np.zeros(4, int), {}, ValueError, r"x contains NaN or inf"),
        (np.zeros((4, 6)), np.zeros(3, int), {}, ValueError, r"y must have one row per sample of x \(4\), got 3"),
        (np.zeros((4, 6)), np.array([0, 1, 2, 4]), {}, ValueError, r"y class ids must be in \[0, 3\], got values in \[0, 4\]"),
        (np.zeros((4, 6)), np.array([0, -1, 2, 3]), {}, ValueError, r"y class ids must be in \[0, 3\], got values in \[-1, 3\]"),
        (np.zeros((4, 6)), np.array([0.0, 1.5, 2.0, 3.0]), {}, ValueError, r"y class ids must be integers"),
        (np.zeros((4, 6)), np.zeros((4, 3)), {}, ValueError, r"y must be class ids of shape \(N,\) or one-hot rows of shape \(N, 4\)"),
        (np.zeros((4, 6)), np.zeros(4, int), {"batch_size": 0}, ValueError, r"batch_size must be a positive integer, got 0"),
        (np.zeros((4, 6)), np.zeros(4, int), {"epochs": -1}, ValueError, r"epochs must be a positive integer, got -1"),
        (np.zeros((4, 6)), np.zeros(4, int), {"batch_size": 2.5}, TypeError, r"batch_size must be a positive integer, got 2.5"),
    ],
)
def test_fit_rejects_bad_input(net, x, y, kwargs, error, match):
    with pytest.raises(error, match=match):
        net.fit(x, y, verbose=0, **kwargs)


def test_bad_names_and_layers():
    with pytest.raises(ValueError, match=r"activation must be one of \[.*'relu'.*\], got 'relux'"):
        Dense(3, "relux")
    with pytest.raises(ValueError, match=r"loss must be one of .*got 'not_a_loss'"):
        Network((3,), "not_a_loss", SGD())
    with pytest.raises(ValueError, match=r"units must be a positive integer, got 0"):
        Dense(0)
    with pytest.raises(ValueError, match=r"input_shape must be a tuple of positive integers"):
        Network((0,), "mse", SGD())
    net = Network((4,), "mse", SGD())
    with pytest.raises(ValueError, match=r"cannot add Conv2D \(layer 0\) after output shape \(4,\)"):
        net.add(neuro.Conv2D(3, 2))
    with pytest.raises(TypeError, match=r"layer must be a neuro Layer, got str"):
        net.add("dense")
    with pytest.raises(ValueError, match=r"val_x must have shape \(N, 3\), got \(2, 2\)"):
        Network((3,), "mse", SGD()).add(Dense(1)).fit(
            np.zeros((2, 3)), np.zeros(2), validation_data=(np.zeros((2, 2)), np.zeros(2)), verbose=0
        )


def test_predict_rejects_bad_input(net):
    with pytest.raises(ValueError, match=r"x must have shape \(N, 6\), got \(6,\)"):
        net.predict(np.zeros(6))
    with pytest.raises(ValueError, match=r"x contains NaN or inf"):
        net.predict(np.full((1, 6), np.inf))


def test_sigmoid_activation_layer_alone_is_fused_with_bce(rng):
    net = Network((3,), "binary_crossentropy", SGD(0.1), seed=0)
    net.add(Dense(1, None)).add(Sigmoid())
    # fused with the standalone Sigmoid layer: the loss sees the Dense layer's output
    assert isinstance(net.head, neuro.head.FusedHead)
    assert net.head.activation is net.layers[-1]
    x, y = rng.standard_normal((6, 3)), rng.integers(0, 2, size=6).astype(float)
    with neuro.backend.dtype_scope("float64"):
        assert neuro.check_gradients(net, x, y).max_error < 1e-6


def test_overflowing_gradients_stop_training_before_the_update():
    net = Network((1,), "mse", SGD(0.1), seed=0).add(Dense(1, None))
    net.set_weights([np.array([[1e-30]]), np.zeros(1)])
    x = np.full((4, 1), 1e38)  # finite inputs and a finite loss, but x·dL/dz overflows float32
    y = np.zeros(4)
    before = net.get_weights()
    with pytest.raises(FloatingPointError, match=r"gradients became non-finite at epoch 1, batch 1"):
        with np.errstate(over="ignore"):
            net.fit(x, y, batch_size=4, metrics=(), verbose=0)
    for a, b in zip(before, net.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("y", [np.array([0.0, 1.0, 2.0, 0.0]), np.array([0, 1, -1, 1])], ids=["above", "below"])
def test_binary_crossentropy_refuses_targets_outside_unit_interval(y):
    net = Network((3,), "binary_crossentropy", SGD(0.1), seed=0).add(Dense(1, "sigmoid"))
    x = np.zeros((4, 3))
    before = net.get_weights()
    lo, hi = y.min(), y.max()
    match = rf"y must hold labels in \[0, 1\] for binary cross-entropy, got values in \[{lo:g}, {hi:g}\]; "
    with pytest.raises(ValueError, match=match):
        net.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=match):
        net.evaluate(x, y)
    with pytest.raises(ValueError, match=match.replace("y must", "val_y must")):
        net.fit(x, np.zeros(4), validation_data=(x, y), verbose=0)
    for a, b in zip(before, net.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
