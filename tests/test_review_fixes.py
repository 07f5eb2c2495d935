"""Regression tests for problems found in review: state, dtypes, defaults and files."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from neuro import SGD, Activation, Conv2D, Dense, Flatten, Network, SoftmaxCrossEntropy, Tanh, backend
from neuro.data import load_csv
from neuro.functional import conv as conv_functional
from neuro.optimizers import Adam


def test_concurrent_predict_on_a_cnn_is_exact(monkeypatch, assert_unchanged):
    monkeypatch.setattr(conv_functional, "INFERENCE_CHUNK", 2 * 6 * 6 * 18)  # several chunks per call
    net = Network((6, 6, 2), "softmax_crossentropy", SGD(), seed=0)
    net.add(Conv2D(4, 3, padding="same", activation="relu")).add(Flatten()).add(Dense(3, "softmax"))
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((20, 6, 6, 2)).astype(np.float32) for _ in range(2)]
    expected = [net.predict(x) for x in xs]
    wrong = []

    def worker(i):
        for _ in range(20):
            if not np.array_equal(net.predict(xs[i]), expected[i]):
                wrong.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    with assert_unchanged(net.layers[0]):  # predicting kept nothing on the layer
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert wrong == []


def test_conv_padding_border_is_clean_when_the_split_changes():
    rng = np.random.default_rng(1)
    layer = Conv2D(2, 3, strides=2, padding="same")
    layer.build((6, 6, 1), rng)
    fresh = Conv2D(2, 3, strides=2, padding="same")
    fresh.build((5, 5, 1), np.random.default_rng(9))
    fresh.params = {k: v.copy() for k, v in layer.params.items()}
    layer.forward(rng.standard_normal((2, 6, 6, 1)).astype(np.float32) + 5, training=True)  # pads (0, 1)
    x = rng.standard_normal((2, 5, 5, 1)).astype(np.float32)  # pads (1, 1): the same 7x7 buffer size
    np.testing.assert_array_equal(layer.forward(x, training=True)[0], fresh.forward(x, training=True)[0])


def test_network_keeps_its_own_dtype(tmp_path):
    with backend.dtype_scope("float64"):
        net64 = Network((3,), "mse", Adam(1e-2), seed=0).add(Dense(2, "tanh"))
    x = np.random.default_rng(0).standard_normal((4, 3))
    net64.fit(x, np.zeros((4, 2)), verbose=0)
    assert net64.predict(x).dtype == np.float64  # the global dtype is float32 again
    net64.save(tmp_path / "n.h5")
    loaded = Network.load(tmp_path / "n.h5")
    assert loaded.layers[0].params["kernel"].dtype == np.float64
    assert loaded.optimizer.slots[0]["m"].dtype == np.float64
    net32 = Network((3,), "mse", SGD(), seed=0).add(Dense(2, "tanh"))
    with backend.dtype_scope("float64"):
        assert net32.predict(x).dtype == np.float32


def test_default_metrics_follow_the_loss(rng):
    x = rng.standard_normal((8, 4, 4, 1)).astype(np.float32)
    auto = Network((4, 4, 1), "mse", SGD(0.01), seed=0).add(Conv2D(1, 3, padding="same"))
    hist = auto.fit(x, x, batch_size=4, epochs=1, verbose=0)  # an autoencoder: no accuracy to compute
    assert set(hist.history) == {"loss"}
    clf = Network((3,), "softmax_crossentropy", SGD(), seed=0).add(Dense(2, "softmax"))
    assert set(clf.evaluate(rng.standard_normal((4, 3)), [0, 1, 0, 1])) == {"loss", "accuracy"}


@pytest.mark.parametrize("how", ["loss", "class_weight", "binary"])
def test_a_batch_whose_targets_all_weigh_zero_adds_nothing(rng, how):
    """Class weights of 0 for every target of a batch: its loss term and gradient are 0 and training goes on,
    as with sample weights of 0 and as in Keras (it stopped with "loss became nan": 0/0)."""
    x = rng.standard_normal((8, 3))
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    binary = how == "binary"
    loss = SoftmaxCrossEntropy(class_weights=[0.0, 1.0]) if how == "loss" else ("bce" if binary else "crossentropy")
    cw = None if how == "loss" else {0: 0.0, 1: 1.0}

    def fit(xs, ys):
        net = Network((3,), loss, SGD(0.1), seed=0).add(Dense(1, "sigmoid") if binary else Dense(2, "softmax"))
        h = net.fit(xs, ys, batch_size=4, shuffle=False, verbose=0, class_weight=cw)
        return net, h

    both, h = fit(x, y)
    second, h2 = fit(x[4:], y[4:])
    assert both.optimizer.iterations == 2
    assert h["loss"] == pytest.approx(h2["loss"], rel=1e-6)
    for a, b in zip(both.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the first batch's zero gradient moved nothing


def test_an_optimizer_trains_one_network():
    opt = SGD(0.1)
    first = Network((3,), "mse", opt)
    with pytest.raises(ValueError, match="optimizer already trains another model"):
        Network((3,), "mse", opt)
    assert first.optimizer is opt


class Swish(Activation):
    """x·sigmoid(βx), a user-written activation."""

    key = "swish"

    def __init__(self, beta: float = 1.0, name=None) -> None:
        super().__init__(name=name)
        self.beta = beta

    def forward(self, x, training=False, rng=None, inplace=False):
        s = 1 / (1 + np.exp(-self.beta * x))
        return x * s, ((x, s) if training else None)

    def backward(self, grad, ctx):
        x, s = self._require(ctx)
        return grad * (s + self.beta * x * s * (1 - s))

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


def test_custom_activations_load_through_custom_objects(tmp_path, rng):
    net = Network((3,), "mse", SGD(), seed=0)
    net.add(Dense(4, Swish(2.0))).add(Swish(0.5)).add(Dense(1))
    net.class_names = np.array(["only"])  # arrays of names are saved as lists of str
    net.save(tmp_path / "s.h5")
    loaded = Network.load(tmp_path / "s.h5", custom_objects={"Swish": Swish})
    x = rng.standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    assert loaded.layers[0].activation.beta == 2.0 and loaded.layers[1].beta == 0.5
    assert loaded.class_names == ["only"]


def test_save_refuses_an_unsaveable_learning_rate_and_follows_the_umask(tmp_path):
    net = Network((3,), "mse", SGD(lambda step: 0.1), seed=0).add(Dense(1))
    with pytest.raises(TypeError, match="learning_rate must be a number or a neuro.schedules schedule"):
        net.save(tmp_path / "x.h5")
    assert list(tmp_path.iterdir()) == []
    ok = Network((3,), "mse", SGD(0.1), seed=np.int64(3)).add(Dense(1))
    old = os.umask(0o022)
    try:
        ok.save(tmp_path / "ok.h5")
    finally:
        os.umask(old)
    assert (tmp_path / "ok.h5").stat().st_mode & 0o777 == 0o644


def test_activation_inference_keeps_no_training_context(rng, assert_unchanged):
    act = Tanh()
    x = rng.standard_normal((2, 3))
    _, train_ctx = act.forward(x, training=True)
    with assert_unchanged(act):
        y, ctx = act.forward(x)
    assert ctx is None
    with pytest.raises(RuntimeError, match=r"needs the context returned by forward\(x, training=True\)"):
        act.backward(np.ones((2, 3)), ctx)
    np.testing.assert_allclose(act.backward(np.ones((2, 3)), train_ctx), 1 - y**2, rtol=1e-6)


def test_csv_target_column_out_of_range(tmp_path):
    (tmp_path / "d.csv").write_text("1,2,0\n3,4,1\n")
    with pytest.raises(ValueError, match=r"target_column must be in \[-3, 2\] for 3 columns, got 3"):
        load_csv(tmp_path / "d.csv", target_column=3)
