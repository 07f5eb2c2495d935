"""Saving and loading networks: exact round trips, exact resumption, atomic writes, safe loading."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from neuro import L2, BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ModelFileError, Network, ReLU
from neuro.initializers import Constant
from neuro.layers import Layer
from neuro.optimizers import Adam


def _cnn(seed=0):
    net = Network((8, 8, 1), "softmax_crossentropy", Adam(1e-3), regularizer=L2(1e-4), seed=seed)
    net.add(Conv2D(4, (3, 2), padding="same", activation="leaky_relu")).add(BatchNorm())
    net.add(MaxPool2D()).add(Dropout(0.2)).add(Flatten()).add(Dense(6, None)).add(ReLU())
    net.add(Dense(3, "softmax"))
    return net


@pytest.fixture
def data(rng):
    return rng.random((30, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, size=30)


def test_round_trip_predicts_identically_and_resumes_exactly(tmp_path, data):
    x, y = data
    net = _cnn()
    net.class_names = ["a", "b", "c"]
    net.fit(x, y, batch_size=8, epochs=1, verbose=0)
    net.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert f.attrs["format"] == "neuro-network" and f.attrs["format_version"] == 3
    loaded = Network.load(tmp_path / "m.h5")
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    assert str(loaded) == str(net)
    assert loaded.class_names == ["a", "b", "c"]
    assert loaded.optimizer.iterations == net.optimizer.iterations == 4
    h1 = net.fit(x, y, batch_size=8, epochs=2, verbose=0)
    h2 = loaded.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert h1.history == h2.history
    for a, b in zip(net.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_failed_save_leaves_the_old_file_intact(tmp_path, data, monkeypatch):
    x, y = data
    net = _cnn()
    path = tmp_path / "m.h5"
    net.save(path)
    before = path.read_bytes()
    net.fit(x, y, epochs=1, verbose=0)

    def broken(self):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Adam, "get_state", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        net.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]  # no temporary file left behind


def test_loading_rejects_foreign_files(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ModelFileError, match=r"^model file '.*foreign\.h5'.*is not a neuro network file") as info:
        Network.load(foreign)
    assert isinstance(info.value, ValueError) and info.value.path == str(foreign)


def test_loading_rejects_unknown_classes(tmp_path):
    path = tmp_path / "m.h5"
    _cnn().save(path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["config"])
        config["layers"][0]["class"] = "os.system"
        f.attrs["config"] = json.dumps(config)
    with pytest.raises(
        ModelFileError,
        match=r"^model file '.*m\.h5', config\.layers\[0\] \(os\.system\): .*layer must be one of \[.*\], got 'os\.system'",
    ) as info:
        Network.load(path)
    assert isinstance(info.value, ValueError) and info.value.where.startswith("config.layers[0]")


class Scale(Layer):
    """A user-written layer: y = a·x with one trainable scalar."""

    def __init__(self, name=None):
        super().__init__(name=name)

    def param_specs(self, input_shape):
        return {"a": ((1,), Constant(2.0))}

    def forward(self, x, training=False, rng=None):
        return x * self.params["a"], (x if training else None)

    def backward(self, grad, ctx):
        x = self._require(ctx)
        self.grads["a"][...] = (grad * x).sum()
        return grad * self.params["a"]


def test_custom_layers_load_through_custom_objects(tmp_path, rng):
    net = Network((3,), "mse", "sgd", seed=0).add(Dense(2, "tanh")).add(Scale())
    np.testing.assert_array_equal(net.layers[1].params["a"], [2.0])  # drawn from its param_specs
    net.layers[1].params["a"][...] = 3.0
    net.save(tmp_path / "c.h5")
    with pytest.raises(ModelFileError, match="'Scale'"):
        Network.load(tmp_path / "c.h5")
    loaded = Network.load(tmp_path / "c.h5", custom_objects={"Scale": Scale})
    assert isinstance(loaded.layers[1], Scale)
    np.testing.assert_array_equal(loaded.layers[1].params["a"], [3.0])
    x = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    # and it trains: its gradient reaches the saved scalar
    y = rng.standard_normal((4, 2)).astype(np.float32)
    loaded.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert loaded.layers[1].params["a"][0] != 3.0


def test_float64_networks_stay_float64(tmp_path, float64, rng):
    net = Network((3,), "mse", "sgd", seed=0).add(Dense(2, "tanh"))
    net.save(tmp_path / "d.h5")
    from neuro import backend

    with backend.dtype_scope("float32"):
        loaded = Network.load(tmp_path / "d.h5")
    assert loaded.layers[0].params["kernel"].dtype == np.float64
