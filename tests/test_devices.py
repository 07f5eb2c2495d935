"""Devices: arrays choose their library, the strict stand-in finds hidden host transfers, networks move as a
whole, and a training step reads the device a constant number of times."""

from __future__ import annotations

import numpy as np
import pytest

import neuro
from neuro import backend
from neuro._strict import HostTransferError
from neuro.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D

STRICT = backend.get_device("strict")


def _cnn(device="numpy", seed=0, extra_dense=0, optimizer="adam"):
    net = neuro.Network((8, 8, 1), "softmax_crossentropy", optimizer, seed=seed, device=device)
    net.add(Conv2D(4, 3, padding="same", activation="relu")).add(BatchNorm()).add(MaxPool2D(2))
    net.add(Dropout(0.25)).add(Flatten())
    for _ in range(extra_dense):
        net.add(Dense(8, "tanh"))
    net.add(Dense(3, "softmax"))
    return net


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, n)


def _state(net):
    opt = net.optimizer.get_state()
    return net.get_weights(), opt["iterations"], [a for s in opt["slots"] for a in s.values()]


def _assert_same_state(a, b):
    wa, ia, sa = a
    wb, ib, sb = b
    assert ia == ib
    for u, v in zip(wa + sa, wb + sb, strict=True):
        np.testing.assert_array_equal(u, v)


# -- the strict stand-in ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "trip",
    [
        lambda a: np.asarray(a),
        lambda a: float(a.sum()),
        lambda a: int(a[0]),
        lambda a: bool(a.sum() > 0),
        lambda a: a.sum().item(),
        lambda a: a.tolist(),
        lambda a: a.tobytes(),
        lambda a: f"{a.sum():.3f}",
        lambda a: np.sum(a),
        lambda a: np.concatenate([a, a]),
        lambda a: np.add(a, np.ones(3)),
        lambda a: a + np.ones(3),
        lambda a: np.ones(3) * a,
        lambda a: STRICT.add(a, np.ones(3)),
        lambda a: a.__setitem__(slice(None), np.zeros(3)),
    ],
)
def test_strict_arrays_refuse_implicit_host_trips(trip):
    a = backend.to_device(np.arange(3.0), STRICT)
    with pytest.raises(HostTransferError, match="strict-device array"):
        trip(a)


def test_strict_arrays_allow_device_math_and_count_reads():
    a = backend.to_device(np.arange(6.0).reshape(2, 3), STRICT)
    b = STRICT.exp(a) * np.float32(2) + 1.0
    assert isinstance(np.exp(a), type(a)) and isinstance(np.float64(2) * a, type(a))  # ufuncs run on the device
    b[0, 1] = 5.0
    before = backend.host_reads()
    out = backend.to_numpy(b.sum(axis=0))
    assert backend.host_reads() == before + 1
    expected = np.exp(np.arange(6.0).reshape(2, 3)) * 2 + 1
    expected[0, 1] = 5.0
    np.testing.assert_allclose(out, expected.sum(axis=0))


def test_get_array_module_and_mixing_devices():
    a = backend.to_device(np.ones(2), STRICT)
    assert backend.get_array_module(np.ones(2), 3.0, None) is np
    assert backend.get_array_module(a, 1) is STRICT
    with pytest.raises(backend.DeviceMismatchError, match="arrays from two devices met in one call: numpy and strict"):
        backend.get_array_module(np.ones(2), a)


def test_bad_device_names():
    net = _cnn()
    with pytest.raises(ValueError, match=r"device must be one of \['numpy', 'cupy', 'strict'\] .*got 'tpu'"):
        net.to("tpu")
    with pytest.raises(ValueError, match="device must be one of"):
        neuro.Network((2,), "mse", "sgd", device=3)


def test_cupy_missing_is_a_clear_error():
    pytest.importorskip("numpy")
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"device 'cupy' needs CuPy.*pip install 'neuro\[gpu\]'"):
            backend.get_device("cupy")
    else:  # pragma: no cover - machines with CuPy
        pytest.skip("CuPy is installed here")


def test_data_on_another_device_is_refused():
    net = _cnn()
    x, _ = _data(4)
    with pytest.raises(backend.DeviceMismatchError, match="x is on device 'strict' but the network is on 'numpy'"):
        net.predict(backend.to_device(x, STRICT))


# -- training on the strict device --------------------------------------------------------------------------
def test_strict_training_equals_numpy_bitwise():
    x, y = _data()
    host, dev = _cnn(), _cnn("strict")
    h1 = host.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.25)
    h2 = dev.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.25)
    assert h1.history == h2.history
    _assert_same_state(_state(host), _state(dev))
    p = dev.predict(x)
    assert backend.get_array_module(p) is STRICT
    np.testing.assert_array_equal(backend.to_numpy(p), host.predict(x))
    assert dev.evaluate(x, y) == host.evaluate(x, y)


@pytest.mark.parametrize("pool", [(2, 2), (3, 1)], ids=["2x2", "overlapping"])
def test_strict_training_of_a_relu_fused_with_its_pooling_equals_numpy_bitwise(pool):
    """A ReLU whose output only a max pooling reads: the pooling applies the ReLU's backward (the fusion);
    the device path of both (no host read on the strict device) trains as NumPy's."""

    def cnn(device):
        net = neuro.Network((8, 8, 1), "softmax_crossentropy", "adam", seed=0, device=device)
        net.add(Conv2D(4, 3, padding="same", activation="relu")).add(MaxPool2D(pool[0], strides=pool[1]))
        return net.add(Flatten()).add(Dense(3, "softmax"))

    x, y = _data()
    x -= 0.5  # windows whose maximum after the ReLU is 0
    host, dev = cnn("numpy"), cnn("strict")
    assert [s.relu_input for s in dev.graph.steps] == [False, True, False, False]
    h1 = host.fit(x, y, batch_size=16, epochs=2, verbose=0)
    h2 = dev.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert h1.history == h2.history
    _assert_same_state(_state(host), _state(dev))


def _reads_of_one_epoch(extra_dense, n=64, batch=16):
    x, y = _data(n)
    net = _cnn("strict", extra_dense=extra_dense)
    before = backend.host_reads()
    net.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    return backend.host_reads() - before


def test_host_reads_per_step_are_a_constant():
    steps = 4
    shallow, deep = _reads_of_one_epoch(0), _reads_of_one_epoch(5)
    # one read per step (the finiteness guard), plus the checks of x and y and the epoch's loss and metric
    assert shallow == deep
    assert shallow - steps == _reads_of_one_epoch(0, n=128) - 2 * steps
    assert shallow - steps <= 6


def test_move_to_strict_and_back_gives_the_same_predictions():
    x, y = _data()
    net = _cnn()
    net.fit(x, y, batch_size=16, epochs=1, verbose=0)
    before = net.predict(x)
    state = _state(net)
    net.to("strict")
    assert net.device == "strict"
    assert all(backend.get_array_module(a) is STRICT for layer in net.layers for a in layer.params.values())
    np.testing.assert_array_equal(backend.to_numpy(net.predict(x)), before)
    net.fit(x, y, batch_size=16, epochs=1, verbose=0)  # trains there
    net.to("numpy")
    ref = _cnn()
    ref.fit(x, y, batch_size=16, epochs=2, verbose=0)
    _assert_same_state(_state(ref), _state(net))
    assert state[1] < _state(net)[1]


@pytest.mark.parametrize(("save_on", "load_on"), [("strict", "numpy"), ("numpy", "strict"), ("strict", "strict")])
def test_save_on_one_device_load_on_another(tmp_path, save_on, load_on):
    x, y = _data()
    net = _cnn(save_on)
    net.fit(x, y, batch_size=16, epochs=1, verbose=0)
    net.save(tmp_path / "m.h5")
    loaded = neuro.Network.load(tmp_path / "m.h5", device=load_on)
    assert loaded.device == load_on
    np.testing.assert_array_equal(backend.to_numpy(loaded.predict(x)), backend.to_numpy(net.predict(x)))
    # and training resumes identically
    net.fit(x, y, batch_size=16, epochs=1, verbose=0)
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)
    np.testing.assert_array_equal(backend.to_numpy(loaded.predict(x)), backend.to_numpy(net.predict(x)))


def test_moving_during_fit_and_adding_after_training_are_refused():
    x, y = _data(16)
    net = _cnn()

    class Mover(neuro.callbacks.Callback):
        def on_batch_end(self, batch, logs):
            self.network.to("strict")

    with pytest.raises(RuntimeError, match="cannot move the network to 'strict' while fit is running on 'numpy'"):
        net.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[Mover()])
    net.fit(x, y, batch_size=8, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"cannot add Dense after training started: the optimizer holds state"):
        net.add(Dense(2))


def test_strict_training_equals_numpy_bitwise_on_batches_large_enough_for_blocks_and_pieces():
    """Column sums in blocks (a convolution's bias gradient, batch norm's statistics) and a convolution's
    window matrix in pieces took other paths on the strict device: 15 bias entries differed after one step,
    and 1,065 of 1,152 kernel-gradient entries of a batch of 128."""
    rng = np.random.default_rng(0)

    def run(device, shape, n, layers):
        x = rng.standard_normal((n, *shape)).astype(np.float32)
        y = np.arange(n) % 2
        net = neuro.Network(shape, "crossentropy", "sgd", seed=0, device=device)
        for layer in layers():
            net.add(layer)
        net.add(neuro.Flatten()).add(neuro.Dense(2, activation="softmax"))
        net.fit(x, y, batch_size=n, verbose=0, shuffle=False)
        return net.get_weights()

    cases = [
        ((20, 20, 3), 4, lambda: [neuro.Conv2D(16, 3, padding="same"), neuro.BatchNorm()]),
        # 7 channels: im2col in pieces under either kernel set (8 would take Winograd's path under numba's)
        ((28, 28, 7), 128, lambda: [neuro.Conv2D(8, 3, padding="same")]),
    ]
    for shape, n, layers in cases:
        state = rng.bit_generator.state
        on_numpy = run("numpy", shape, n, layers)
        rng.bit_generator.state = state
        on_strict = run("strict", shape, n, layers)
        for a, b in zip(on_numpy, on_strict, strict=True):
            np.testing.assert_array_equal(a, b)


def test_strict_device_data_shuffles_and_r2_reads_no_host():
    """Shuffled batches of data already on the strict device indexed it with a host array, and R² asked
    np.ndim of a strict array: both raised HostTransferError in legitimate use."""
    from neuro import backend

    strict = backend.get_device("strict")
    net = neuro.Network((4,), "mse", "sgd", device="strict", seed=0)
    net.add(neuro.Dense(2))
    rng = np.random.default_rng(0)
    xs = backend.to_device(rng.standard_normal((8, 4)).astype("f4"), strict)
    ys = backend.to_device(rng.standard_normal((8, 2)).astype("f4"), strict)
    history = net.fit(xs, ys, batch_size=4, verbose=0, metrics=["r2"])
    assert np.isfinite(history["loss"][0]) and np.isfinite(history["r2"][0])
