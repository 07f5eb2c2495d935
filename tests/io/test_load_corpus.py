"""Model files from strangers: a corpus of hand-made bad files, each refused by ``Network.load`` with
ModelFileError naming the place, in bounded time and memory; mutated valid files (hypothesis) either load
into a network that predicts or raise ModelFileError; the version-1 fixture loads and predicts as recorded.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import time
import tracemalloc

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neuro
from neuro import ModelFileError, Network
from neuro.layers import BatchNorm, Conv2D, Dense, Flatten, MaxPool2D

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"


def _valid(path: pathlib.Path) -> pathlib.Path:
    net = Network((5, 5, 1), "softmax_crossentropy", neuro.Adam(0.01), seed=1)
    net.add(Conv2D(2, 3, padding="same", activation="relu")).add(BatchNorm()).add(MaxPool2D(2))
    net.add(Flatten()).add(Dense(4, "tanh")).add(Dense(3, "softmax"))
    rng = np.random.default_rng(0)
    net.fit(rng.random((8, 5, 5, 1)), rng.integers(0, 3, 8), batch_size=4, verbose=0)
    net.class_names = ["a", "b", "c"]
    net.save(path)
    return path


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory):
    return _valid(tmp_path_factory.mktemp("valid") / "model.h5")


def _config(f):
    return json.loads(f.attrs["config"])


def _set_config(f, cfg):
    f.attrs["config"] = json.dumps(cfg)


def _replace(f, name, **kwargs):
    del f[name]
    f.create_dataset(name, **kwargs)


def _layer_cfg(index, key, value):
    def mutate(f, tmp):
        cfg = _config(f)
        cfg["layers"][index]["config"][key] = value
        _set_config(f, cfg)

    return mutate


def _external_storage(f, tmp):
    secret = tmp / "secret.txt"
    secret.write_bytes(b"0123456789abcdef" * 8)
    shape = f["layers/4/params/bias"].shape
    _replace(f, "layers/4/params/bias", shape=shape, dtype="<f4", external=[(str(secret), 0, 16)])


def _external_link(f, tmp):
    with h5py.File(tmp / "other.h5", "w") as g:
        g["x"] = np.zeros(4, np.float32)
    del f["layers/4/params/bias"]
    f["layers/4/params/bias"] = h5py.ExternalLink(str(tmp / "other.h5"), "/x")


def _soft_link(f, tmp):
    del f["layers/5/params/bias"]
    f["layers/5/params/bias"] = h5py.SoftLink("/layers/4/params/bias")


def _virtual(f, tmp):
    with h5py.File(tmp / "source.h5", "w") as g:
        g["x"] = np.zeros(4, np.float32)
    layout = h5py.VirtualLayout(shape=(4,), dtype="<f4")
    layout[:] = h5py.VirtualSource(str(tmp / "source.h5"), "x", shape=(4,))
    del f["layers/4/params/bias"]
    f.create_virtual_dataset("layers/4/params/bias", layout)


def _lzf(f, tmp):
    data = f["layers/4/params/kernel"][()]
    _replace(f, "layers/4/params/kernel", data=data, compression="lzf")


def _string_dataset(f, tmp):
    _replace(f, "layers/4/params/bias", data=np.array([b"abcd"] * 4))


def _object_attribute(f, tmp):
    f["layers"].attrs.create("x", np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]))


def _huge_attribute(f, tmp):
    f.create_group("notes").attrs["note"] = np.zeros(100 * 2**20 // 8)  # a 100 MB attribute (dense storage)


def _empty_chunked(f, tmp):
    del f["layers/4/params/kernel"]
    f.create_dataset("layers/4/params/kernel", shape=(30000, 30000), dtype="<f4", chunks=(1000, 1000))


def _declared_kernel(shape):
    def mutate(f, tmp):
        _replace(f, "layers/4/params/kernel", data=np.zeros(shape, np.float32))

    return mutate


def _nan_weight(f, tmp):
    data = f["layers/4/params/kernel"][()]
    data[1, 2] = np.nan
    _replace(f, "layers/4/params/kernel", data=data)


def _negative_variance(f, tmp):
    data = f["layers/1/buffers/running_var"][()]
    data[0] = -1
    _replace(f, "layers/1/buffers/running_var", data=data)


def _missing_slot(f, tmp):
    del f["optimizer/slots/3/v"]


def _wrong_slot(f, tmp):
    _replace(f, "optimizer/slots/3/m", data=np.zeros((2, 2), np.float32))


def _attr(group, name, value):
    def mutate(f, tmp):
        f[group].attrs[name] = value

    return mutate


def _top_attr(name, value):
    def mutate(f, tmp):
        f.attrs[name] = value

    return mutate


def _config_key(key, value):
    def mutate(f, tmp):
        cfg = _config(f)
        cfg[key] = value
        _set_config(f, cfg)

    return mutate


def _input_shape(value):
    def mutate(f, tmp):
        cfg = _config(f)
        cfg["graph"]["inputs"][0]["shape"] = value
        _set_config(f, cfg)

    return mutate


def _nested_config(f, tmp):
    f.attrs["config"] = "[" * 100000 + "]" * 100000


def _extra_dataset(f, tmp):
    f["layers/4/params/extra"] = np.zeros(3, np.float32)


def _missing_dataset(f, tmp):
    del f["layers/4/params/bias"]


def _unknown_class(name):
    def mutate(f, tmp):
        cfg = _config(f)
        cfg["layers"][2]["class"] = name
        _set_config(f, cfg)

    return mutate


CORPUS = [
    ("external storage", _external_storage, "external storage"),
    ("external link", _external_link, "external link"),
    ("soft link", _soft_link, "soft link"),
    ("virtual dataset", _virtual, "virtual dataset"),
    ("unknown filter", _lzf, "filter"),
    ("10^12 units", _layer_cfg(4, "units", 10**12), "layers/4/params/kernel: must have shape (8, 1000000000000)"),
    ("negative kernel size", _layer_cfg(0, "kernel_size", [-3, 3]), "config.layers[0] (Conv2D): kernel_size must be a positive integer"),
    ("string for an integer", _layer_cfg(4, "units", "4"), "config.layers[4] (Dense): units must be a positive integer"),
    ("unknown config key", _layer_cfg(4, "evil", 1), "config.layers[4] (Dense)"),
    ("missing optimizer slot", _missing_slot, "optimizer/slots/3"),
    ("kernel of the wrong shape", _declared_kernel((3, 4)), "layers/4/params/kernel: must have shape (8, 4) for Dense 'dense' after input shape (8,), got (3, 4)"),
    ("broadcastable (1,) kernel", _declared_kernel((1,)), "layers/4/params/kernel: must have shape (8, 4) for Dense 'dense' after input shape (8,), got (1,)"),
    ("string dtype", _string_dataset, "layers/4/params/bias"),
    ("compound attribute", _object_attribute, "layers"),
    ("100 MB attribute", _huge_attribute, "notes"),
    ("huge slot count", _attr("optimizer", "n_slots", 10**9), "optimizer"),
    ("chunked dataset declaring 3.6 GB", _empty_chunked, "layers/4/params/kernel"),
    ("wrong-shaped optimizer slot", _wrong_slot, "optimizer/slots/3/m: must have shape"),
    ("NaN weight", _nan_weight, "layers/4/params/kernel: holds a non-finite value"),
    ("negative running variance", _negative_variance, "layers/1/buffers/running_var: must not be negative"),
    ("newer version", _top_attr("format_version", 99), "has format version 99; this neuro reads versions up to 3"),
    ("not a neuro file", _top_attr("format", "keras"), "is not a neuro network file"),
    ("'Layer' as a class", _unknown_class("Layer"), "config.layers[2] (Layer): layer must be one of"),
    ("unknown class", _unknown_class("os.system"), "config.layers[2] (os.system): layer must be one of"),
    ("deeply nested config", _nested_config, "config"),
    ("config of the wrong type", _input_shape("5"), "graph.inputs[0].shape must be a list of 1 to 8 positive integers"),
    ("unknown top-level key", _config_key("code", "import os"), "config: has unknown keys ['code']"),
    ("class names of the wrong width", _config_key("class_names", ["a"]), "config.class_names: must be a list of 3 strings"),
    ("extra dataset", _extra_dataset, "layers/4/params"),
    ("missing dataset", _missing_dataset, "layers/4/params/bias"),
    ("negative iterations", _attr("optimizer", "iterations", -1), "optimizer"),
    ("garbage generator state", _top_attr("rng_state", '{"bit_generator": "MT19937"}'), "rng_state"),
    ("NaN in the config", _top_attr("config", '{"input_shape": [NaN]}'), "config"),
]


@pytest.mark.parametrize(("name", "mutate", "message"), CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_files_raise_model_file_error(tmp_path, valid_file, name, mutate, message):
    path = tmp_path / "bad.h5"
    shutil.copy(valid_file, path)
    with h5py.File(path, "a", libver="latest") as f:  # latest: attributes may exceed 64 KiB
        mutate(f, tmp_path)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelFileError) as info:
            Network.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 5
    assert peak < 32 * 2**20, f"{name}: {peak / 2**20:.1f} MiB"
    text = str(info.value)
    assert text.startswith(f"model file '{path}'"), text
    assert message in text, text


def test_not_hdf5_truncated_missing_folder_and_pipe(tmp_path, valid_file):
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ModelFileError, match="is not a readable HDF5 file"):
        Network.load(tmp_path / "text.h5")
    data = valid_file.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="cut.h5"):
        Network.load(tmp_path / "cut.h5")
    with pytest.raises(FileNotFoundError):
        Network.load(tmp_path / "missing.h5")
    with pytest.raises(IsADirectoryError):
        Network.load(tmp_path)
    os.mkfifo(tmp_path / "pipe.h5")
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match="is not a regular file"):
        Network.load(tmp_path / "pipe.h5")
    assert time.perf_counter() - start < 2


def test_the_external_storage_target_is_never_read(tmp_path, valid_file):
    path = tmp_path / "bad.h5"
    shutil.copy(valid_file, path)
    with h5py.File(path, "a") as f:
        shape = f["layers/4/params/bias"].shape
        del f["layers/4/params/bias"]
        # a FIFO as the external file: reading it would block forever
        os.mkfifo(tmp_path / "fifo")
        f.create_dataset("layers/4/params/bias", shape=shape, dtype="<f4", external=[(str(tmp_path / "fifo"), 0, 16)])
    with pytest.raises(ModelFileError, match="external storage"):
        Network.load(path)


def test_version_1_fixture_loads_and_predicts_as_recorded():
    net = Network.load(FIXTURES / "model_v1.h5")
    expected = np.load(FIXTURES / "model_v1_expected.npz")
    np.testing.assert_array_equal(net.predict(expected["x"]), expected["pred"])
    assert net.class_names == ["a", "b", "c"]
    assert net.optimizer.iterations == 8 and isinstance(net.regularizer, neuro.L2)
    net.fit(expected["x"], np.array([0, 1, 2, 0]), verbose=0)  # and it trains on


# -- mutations ------------------------------------------------------------------------------------------------
def _mutations():
    byte_flips = st.tuples(st.just("bytes"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8))
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-(10**13), 10**13) | st.floats(allow_nan=False) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=6,
    )
    json_edit = st.tuples(st.just("json"), st.integers(0, 200), json_values)
    attr_edit = st.tuples(
        st.just("attr"),
        st.sampled_from(["format_version", "format", "rng_state", "optimizer/iterations", "optimizer/n_slots"]),
        st.one_of(st.integers(-(10**12), 10**12), st.text(max_size=10), st.floats()),
    )
    dataset_edit = st.tuples(
        st.just("dataset"),
        st.integers(0, 30),
        st.lists(st.integers(0, 6), min_size=0, max_size=3),
        st.sampled_from(["<f4", "<f8", "<i4", "|u1", ">f4", "<f2"]),
    )
    return st.one_of(byte_flips, json_edit, attr_edit, dataset_edit)


def _paths(value, prefix=()):
    """Every (path, value) inside a JSON value."""
    yield prefix, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _apply(path: pathlib.Path, mutation) -> None:
    kind = mutation[0]
    if kind == "bytes":
        data = bytearray(path.read_bytes())
        for where, byte in mutation[1]:
            data[min(int(where * len(data)), len(data) - 1)] = byte
        path.write_bytes(bytes(data))
        return
    with h5py.File(path, "a") as f:
        if kind == "json":
            cfg = _config(f)
            places = list(_paths(cfg))
            where, _ = places[mutation[1] % len(places)]
            if not where:
                cfg = mutation[2]
            else:
                parent = cfg
                for k in where[:-1]:
                    parent = parent[k]
                parent[where[-1]] = mutation[2]
            _set_config(f, cfg)
        elif kind == "attr":
            group, _, name = mutation[1].rpartition("/")
            (f[group] if group else f).attrs[name] = mutation[2]
        else:
            names = []
            f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            name = sorted(names)[mutation[1] % len(names)]
            _replace(f, name, data=np.ones(tuple(mutation[2]), dtype=mutation[3]))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutations())
def test_mutated_files_load_or_raise_model_file_error(tmp_path, valid_file, mutation):
    path = tmp_path / "m.h5"
    shutil.copy(valid_file, path)
    try:
        _apply(path, mutation)
    except (OSError, ValueError, TypeError, KeyError):  # h5py refused to write this mutation: nothing to load
        return
    tracemalloc.start()
    start = time.perf_counter()
    try:
        net = Network.load(path)
    except ModelFileError:
        net = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - start < 5
    assert peak < 64 * 2**20, f"{peak / 2**20:.1f} MiB"
    if net is not None:
        out = net.predict(np.zeros((2, *net.input_shape), dtype=net.dtype))
        assert out.shape[0] == 2


@pytest.mark.parametrize("fail_after", [0, 1, 5, 12])
@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_an_interrupted_save_leaves_the_previous_file_and_nothing_else(tmp_path, valid_file, monkeypatch, fail_after, error):
    path = tmp_path / "model.h5"
    shutil.copy(valid_file, path)
    before = path.read_bytes()
    net = Network.load(path)
    net.fit(np.zeros((4, 5, 5, 1)), np.zeros(4, dtype=int), verbose=0)
    calls = {"n": 0}
    original = h5py.Group.create_dataset

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > fail_after:
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(type(error)):
        net.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.h5"]
    Network.load(path).predict(np.zeros((1, 5, 5, 1)))


def test_the_version_2_fixture_loads_predicts_as_recorded_and_resumes_as_0_2_did():
    """``model_v2.h5`` was written by neuro 0.2 (a chain whose two Dense layers were both named "dense");
    ``model_v2_expected.npz`` holds its predictions and ``model_v2_resumed.npz`` its weights after one
    more unshuffled epoch in 0.2 (made by running 0.2's code on the fixture's network)."""
    net = Network.load(FIXTURES / "model_v2.h5")
    expected = np.load(FIXTURES / "model_v2_expected.npz")
    assert [layer.name for layer in net.layers] == ["conv2d", "batchnorm", "maxpool2d", "flatten", "dense", "dense_1"]
    assert net.class_names == ["a", "b", "c"] and isinstance(net.regularizer, neuro.L2)
    np.testing.assert_array_equal(neuro.to_numpy(net.predict(expected["x"])), expected["predictions"])
    net.fit(expected["train_x"], expected["train_y"], batch_size=4, epochs=1, verbose=0, shuffle=False)
    resumed = np.load(FIXTURES / "model_v2_resumed.npz")
    for i, w in enumerate(net.get_weights()):  # bitwise: the chain runs through the graph as 0.2 ran it
        np.testing.assert_array_equal(w, resumed[f"arr_{i}"])
