"""Weights files (Keras's ``save_weights`` / ``load_weights``): a round trip into a model of the same
architecture, a model file's weights read alike, other architectures and bad files refused with
ModelFileError naming the place, all or nothing, in bounded time and memory (hypothesis mutations)."""

from __future__ import annotations

import shutil
import time
import tracemalloc

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neuro
from neuro import BatchNorm, Conv2D, Dense, Flatten, Input, MaxPool2D, Model, ModelFileError, Network
from neuro.callbacks import ModelCheckpoint


def _net(seed=0, width=4):
    net = Network((5, 5, 1), "softmax_crossentropy", neuro.Adam(0.01), seed=seed)
    net.add(Conv2D(2, 3, padding="same", activation="relu")).add(BatchNorm()).add(MaxPool2D(2))
    net.add(Flatten()).add(Dense(width, "tanh")).add(Dense(3, "softmax"))
    return net


def _data():
    rng = np.random.default_rng(0)
    return rng.random((8, 5, 5, 1)).astype(np.float32), rng.integers(0, 3, 8)


def _same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights(), strict=True))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    net = _net()
    net.fit(*_data(), batch_size=4, epochs=2, verbose=0)
    path = tmp_path_factory.mktemp("weights") / "net.weights.h5"
    net.save_weights(path)
    return net, path


def test_weights_round_trip_into_a_model_of_the_same_architecture(trained, tmp_path):
    net, path = trained
    other = _net(seed=5)
    assert not _same(net, other)
    other.load_weights(path)
    assert _same(net, other)  # BatchNorm's moving statistics included
    x = _data()[0]
    np.testing.assert_array_equal(other.predict(x), net.predict(x))
    assert other.optimizer.iterations == 0  # the weights alone
    with h5py.File(path, "r") as f:
        assert set(f) == {"layers"} and f.attrs["format"] == "neuro-weights"
    net.save(tmp_path / "whole.h5")  # a model file's weights read alike
    third = _net(seed=9)
    third.load_weights(tmp_path / "whole.h5")
    assert _same(net, third)


def test_a_graph_model_in_float64_round_trips(tmp_path, float64):
    def make(seed):
        inp = Input((3,))
        h = Dense(4, activation="relu")(inp)
        return Model(inp, Dense(2)(neuro.Add()([h, Dense(4)(inp)])), seed=seed)

    a, b = make(0), make(1)
    a.save_weights(tmp_path / "g.weights.h5")
    b.load_weights(tmp_path / "g.weights.h5")
    assert _same(a, b) and b.get_weights()[0].dtype == np.float64


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: _net(width=6), r"layers/4/params/kernel: must have shape \(8, 6\), got \(8, 4\)"),
        (
            lambda: Network((5, 5, 1), "mse", "sgd").add(Flatten()).add(Dense(3)),
            r"layers: holds 6 layers; the model has 2 \(the architectures differ\)",
        ),
    ],
)
def test_another_architecture_is_refused_and_changes_nothing(trained, make, message):
    _, path = trained
    other = make()
    before = other.get_weights()
    with pytest.raises(ModelFileError, match=message):
        other.load_weights(path)
    assert all(np.array_equal(p, q) for p, q in zip(before, other.get_weights(), strict=True))


def test_a_bad_array_late_in_the_file_changes_nothing(trained, tmp_path):
    _, path = trained
    bad = tmp_path / "bad.weights.h5"
    shutil.copy(path, bad)
    with h5py.File(bad, "a") as f:
        kernel = f["layers/5/params/kernel"]
        kernel[0, 0] = np.nan
    other = _net(seed=3)
    before = other.get_weights()
    with pytest.raises(ModelFileError, match=r"layers/5/params/kernel: .*(NaN|finite)"):
        other.load_weights(bad)
    assert all(np.array_equal(p, q) for p, q in zip(before, other.get_weights(), strict=True))


def test_files_that_are_no_weights_are_refused(tmp_path):
    other = _net()
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("x", data=np.ones(3))
    with pytest.raises(ModelFileError, match=r"is not a neuro weights or model file \(format attribute None\)"):
        other.load_weights(plain)
    extra = tmp_path / "extra.weights.h5"
    other.save_weights(extra)
    with h5py.File(extra, "a") as f:
        f.create_group("optimizer")
    with pytest.raises(ModelFileError, match=r"has unexpected members 'optimizer'"):
        other.load_weights(extra)
    with pytest.raises(FileNotFoundError):
        other.load_weights(tmp_path / "missing.weights.h5")


def test_model_checkpoint_saves_weights_only_into_a_new_folder(tmp_path):
    net = _net()
    x, y = _data()
    target = tmp_path / "new" / "deeper" / "w{epoch:02d}.weights.h5"
    net.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[ModelCheckpoint(target, save_weights_only=True)])
    other = _net(seed=4)
    other.load_weights(tmp_path / "new" / "deeper" / "w02.weights.h5")
    assert _same(net, other)


def _mutations():
    flips = st.tuples(st.just("bytes"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8))
    dataset = st.tuples(
        st.just("dataset"),
        st.integers(0, 30),
        st.lists(st.integers(0, 6), max_size=3),
        st.sampled_from(["<f4", "<f8", "<i4", "|u1", ">f4", "<f2"]),
        st.sampled_from([1.0, 0.0, np.nan, np.inf, 1e300, -3.0]),
    )
    attr = st.tuples(st.just("attr"), st.sampled_from(["format", "format_version"]), st.one_of(st.integers(-5, 10**12), st.text(max_size=10)))
    return st.one_of(flips, dataset, attr)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutations())
def test_mutated_weights_files_load_or_raise_and_change_nothing(tmp_path, trained, mutation):
    _, valid = trained
    path = tmp_path / "m.weights.h5"
    shutil.copy(valid, path)
    try:
        if mutation[0] == "bytes":
            data = bytearray(path.read_bytes())
            for where, byte in mutation[1]:
                data[min(int(where * len(data)), len(data) - 1)] = byte
            path.write_bytes(bytes(data))
        else:
            with h5py.File(path, "a") as f:
                if mutation[0] == "attr":
                    f.attrs[mutation[1]] = mutation[2]
                else:
                    names = []
                    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
                    name = names[mutation[1] % len(names)]
                    del f[name]
                    with np.errstate(invalid="ignore", over="ignore"):
                        value = np.full(tuple(mutation[2]), mutation[4]).astype(mutation[3])
                    f.create_dataset(name, data=value)
    except (OSError, ValueError, TypeError, KeyError):  # h5py refused to write this mutation
        return
    net = _net(seed=7)
    before = net.get_weights()
    tracemalloc.start()
    start = time.perf_counter()
    try:
        net.load_weights(path)
        loaded = True
    except ModelFileError as exc:
        assert str(exc).startswith(f"model file '{path}'")
        loaded = False
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - start < 5
    assert peak < 64 * 2**20, f"{peak / 2**20:.1f} MiB"
    if loaded:
        assert all(np.isfinite(w).all() for w in net.get_weights())
        assert np.isfinite(net.predict(_data()[0])).all()
    else:
        assert all(np.array_equal(p, q) for p, q in zip(before, net.get_weights(), strict=True))


def test_a_model_files_version_is_checked_as_load_checks_it(trained, tmp_path):
    net, _ = trained
    path = tmp_path / "whole.h5"
    net.save(path)
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(ModelFileError, match="has format version 99; this neuro reads neuro-network files up to version 3"):
        _net().load_weights(path)
    with h5py.File(path, "a") as f:
        del f.attrs["format_version"]
    with pytest.raises(ModelFileError, match="format_version'?: is missing"):
        _net().load_weights(path)
