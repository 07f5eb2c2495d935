"""The training step's guard: a step that would make anything non-finite changes nothing, and predict is safe
from other threads while fit runs."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import neuro
from neuro.layers import BatchNorm, Dense, Dropout
from neuro.optimizers import SGD, Adadelta, Adam, RMSprop


def _net(optimizer, seed=0, device="numpy"):
    net = neuro.Network((4,), "mse", optimizer, seed=seed, device=device)
    net.add(Dense(8, "tanh")).add(BatchNorm()).add(Dense(2))
    return net


def _everything(net):
    """Params, buffers, optimizer state and step count, as host copies."""
    opt = net.optimizer.get_state()
    return net.get_weights(), opt["iterations"], [a for s in opt["slots"] for a in s.values()]


class _Snapshots(neuro.callbacks.Callback):
    def on_batch_begin(self, batch, logs):
        self.last = _everything(self.network)


@pytest.mark.parametrize(
    ("make", "lr"),
    [
        (lambda: SGD(0.01), 1e38),
        (lambda: SGD(0.01, momentum=0.9), 1e38),
        (lambda: SGD(0.01, momentum=0.9, nesterov=True), 1e38),
        (lambda: Adam(0.01), 1e38),
        (lambda: RMSprop(0.01), 1e38),
        (lambda: Adadelta(1.0), 1e10),
    ],
    ids=["sgd", "momentum", "nesterov", "adam", "rmsprop", "adadelta"],
)
@pytest.mark.parametrize("device", ["numpy", "strict"])
@pytest.mark.parametrize("kernels", ["numpy", "numba"])
def test_an_overflowing_update_changes_nothing(make, lr, device, kernels, monkeypatch):
    if kernels == "numba":
        pytest.importorskip("numba")
    monkeypatch.setattr(neuro.backend, "_kernel_request", kernels)
    monkeypatch.setattr(neuro.backend, "_kernels_on", None)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype(np.float32) * 100
    y = rng.standard_normal((32, 2)).astype(np.float32) * 100
    net = _net(make(), device=device)
    net.fit(x, y, batch_size=8, epochs=1, verbose=0)  # state exists before the bad steps
    net.optimizer.learning_rate = lr
    snaps = _Snapshots()
    with pytest.raises(FloatingPointError, match=r"at epoch \d+, batch \d+ \(learning rate [0-9.e+-]+\); training stopped and the weights are"):
        net.fit(x, y, batch_size=8, epochs=50, verbose=0, callbacks=[snaps])
    weights, iterations, state = _everything(net)
    w0, i0, s0 = snaps.last
    assert iterations == i0
    for a, b in zip(weights + state, w0 + s0, strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(np.isfinite(a).all() for a in weights + state)
    monkeypatch.setattr(neuro.backend, "_kernels_on", None)  # resolved again after the test


def test_the_guard_names_what_went_wrong():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 4)).astype(np.float32)
    net = _net(SGD(0.1))
    with pytest.raises(FloatingPointError, match=r"^the update made the weights or the optimizer state non-finite"):
        net.optimizer.learning_rate = 3e38
        net.fit(x * 1e3, rng.standard_normal((8, 2)) * 1e3, batch_size=8, epochs=5, verbose=0)
    net = _net(SGD(0.1))
    big = np.full((8, 2), 3e38, dtype=np.float32)
    with pytest.raises(FloatingPointError, match=r"^loss became inf at epoch 1, batch 1"):
        net.fit(x, big, batch_size=8, verbose=0)


def test_a_batch_of_padding_only_adds_nothing_and_training_goes_on():
    """A batch whose every step is masked has nothing to learn from: its loss term and gradient are 0 and the
    fit goes on, as in Keras (it stopped with "loss became nan": 0/0)."""

    def net():
        n = neuro.Network((5,), "softmax_crossentropy", SGD(0.1), seed=0)
        n.add(neuro.Embedding(10, 4, mask_zero=True)).add(neuro.LSTM(3, return_sequences=True))
        return n.add(Dense(4, "softmax"))

    x = np.array([[1, 2, 0, 0, 0], [3, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    y = np.zeros((4, 5), int)
    padded, plain = net(), net()
    h = padded.fit(x, y, batch_size=2, epochs=1, verbose=0, shuffle=False)
    h2 = plain.fit(x[:2], y[:2], batch_size=2, epochs=1, verbose=0, shuffle=False)
    assert padded.optimizer.iterations == 2
    assert h["loss"] == h2["loss"]  # the padding batch adds nothing to the epoch's mean
    for a, b in zip(padded.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # and its (zero) gradient moved no weight under plain SGD


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point (errstate is per thread)
@pytest.mark.parametrize("make", [lambda: Adadelta(1.0), lambda: Adam(0.01), lambda: RMSprop(0.01)])
def test_numpy_probe_sees_a_state_overflow_beside_a_zero_step(make, monkeypatch):
    """NumPy's stage takes dot products of its arrays in pairs: an infinite new state whose step is 0
    ((1 − β2)·g·g overflows, so the step g/sqrt(v) is 0 and the weight stays 0) makes the probe NaN (inf·0),
    never finite."""
    from neuro import backend

    monkeypatch.setattr(backend, "_kernel_request", backend._kernel_request)
    monkeypatch.setattr(backend, "_kernels_on", None)
    backend.set_kernels("numpy")
    opt = make()
    params, grads = [np.zeros(70_000, np.float32)], [np.zeros(70_000, np.float32)]
    grads[0][66_000] = 1e21  # in the second chunk: (1 − β2)·g·g overflows float32
    with np.errstate(all="ignore"):
        probe = opt.stage(params, grads)
    assert not np.isfinite(probe)
    assert not opt.staged_finite()
    assert not np.isfinite(opt._spare[0]["v"][66_000])
    assert np.isfinite(opt._steps[0]).all()  # the new weights alone are finite


def test_finite_values_whose_sum_overflows_are_not_a_failure():
    net = neuro.Network((1,), "mse", SGD(1e-30), seed=0)
    net.add(Dense(4))
    net.layers[0].params["kernel"][...] = 3e38  # finite, but their sum is not
    net.fit(np.zeros((2, 1)), np.zeros((2, 4)), batch_size=2, epochs=1, verbose=0)
    assert net.optimizer.iterations == 1


def _cnn(seed=0):
    net = neuro.Network((6,), "softmax_crossentropy", Adam(0.01), seed=seed)
    net.add(Dense(16, "relu")).add(BatchNorm()).add(Dropout(0.3)).add(Dense(3, "softmax"))
    return net


def test_predict_from_another_thread_during_fit():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((400, 6)).astype(np.float32)
    y = rng.integers(0, 3, 400)
    xq = x[:7]

    class Record(neuro.callbacks.Callback):
        def __init__(self):
            self.seen = []

        def on_train_begin(self, logs):
            self.seen.append(self.network.predict(xq).tobytes())

        def on_batch_end(self, batch, logs):
            self.seen.append(self.network.predict(xq).tobytes())

    reference = _cnn()
    rec = Record()
    reference.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[rec])
    boundaries = set(rec.seen)

    net = _cnn()
    seen: list[bytes] = []
    stop = threading.Event()

    def monitor():
        while not stop.is_set():
            seen.append(net.predict(xq).tobytes())

    thread = threading.Thread(target=monitor)
    thread.start()
    try:
        net.fit(x, y, batch_size=8, epochs=2, verbose=0)
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 5
    for a, b in zip(net.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # fit unaffected
    assert set(seen) <= boundaries  # every prediction is the network's between two steps


@pytest.mark.parametrize("clip", [{}, {"clipvalue": 0.5}, {"clipnorm": 1.0}, {"global_clipnorm": 1.0}])
def test_an_infinite_gradient_stops_fit_whatever_the_clipping(clip):
    """clipvalue once clipped an infinite gradient to its bound, and the step went through (the guard reads
    the update); a clipped gradient now stays non-finite, and the weights stay as they were."""
    import neuro
    from neuro.layers import Dense
    from neuro.losses import BinaryCrossEntropy
    from neuro.optimizers import SGD

    inp = neuro.Input((1,))
    model = neuro.Model(
        inp, Dense(1, name="d2")(Dense(1, name="d1")(inp)), loss=BinaryCrossEntropy(from_logits=True),
        optimizer=SGD(0.01, **clip), seed=0,
    )  # fmt: skip
    model.get_layer("d1").params["kernel"][...] = np.float32(1e-3)
    model.get_layer("d2").params["kernel"][...] = np.float32(10.0)
    x, y = np.full((1, 1), 3e38, np.float32), np.zeros((1, 1), np.float32)  # dL/dW1 = 3e39: inf, loss 3e36
    before = model.get_weights()
    with np.errstate(over="ignore"), pytest.raises(FloatingPointError, match="gradients became non-finite"):
        model.fit(x, y, batch_size=1, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


@pytest.mark.parametrize("clip", [{"clipvalue": 0.1}, {"clipnorm": 1.0}, {"global_clipnorm": 1.0}])
def test_clipping_leaves_the_given_gradients_alone(clip):
    from neuro.optimizers import SGD

    w, g = np.zeros(5, np.float32), np.arange(1.0, 6.0, dtype=np.float32)
    SGD(1.0, **clip).step([w], [g])
    assert np.array_equal(g, np.arange(1.0, 6.0, dtype=np.float32))
    assert np.abs(w).max() <= 1.0 and w.min() < 0  # clipped, then stepped
