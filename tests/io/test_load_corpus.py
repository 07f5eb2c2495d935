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


def _both(*mutations):
    def mutate(f, tmp):
        for m in mutations:
            m(f, tmp)

    return mutate


def _values(name, dtype="<f8", **at):
    """Replace dataset ``name`` by its values in ``dtype``, with ``at`` (index string -> value) set."""

    def mutate(f, tmp):
        data = f[name][()].astype(dtype)
        for index, value in at.items():
            data[tuple(int(i) for i in index.strip("_").split("_"))] = value
        _replace(f, name, data=data)

    return mutate


def _fill(name, fill_time, written=None, chunks=True):
    """Replace dataset ``name`` by one of its shape whose storage is written only where ``written`` says."""

    def mutate(f, tmp):
        data = f[name][()]
        del f[name]
        kwargs = {"chunks": (1, *data.shape[1:])} if chunks else {}
        ds = f.create_dataset(name, shape=data.shape, dtype=data.dtype, fillvalue=0.5, fill_time=fill_time, **kwargs)
        if written is not None:
            ds[written] = data[written]

    return mutate


def _loss_cfg(key, value):
    def mutate(f, tmp):
        cfg = _config(f)
        cfg["loss"]["config"][key] = value
        _set_config(f, cfg)

    return mutate


def _optimizer_cfg(key, value):
    def mutate(f, tmp):
        cfg = _config(f)
        cfg["optimizer"]["config"][key] = value
        _set_config(f, cfg)

    return mutate


def _scaler(kind, a, b):
    return {"kind": kind, "a": a, "b": b}


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
    # values beyond the model's dtype (float32): checked after the conversion, derived quantities too
    ("float64 kernel of 1e300", _values("layers/4/params/kernel", _1_2=1e300), "layers/4/params/kernel: holds 1e+300 at index (1, 2), beyond the range of float32 (it would become inf)"),
    ("running mean of 1e300", _values("layers/1/buffers/running_mean", _0=1e300), "layers/1/buffers/running_mean: holds 1e+300 at index (0,), beyond the range of float32"),
    ("running variance of 1e300", _values("layers/1/buffers/running_var", _1=1e300), "layers/1/buffers/running_var: holds 1e+300 at index (1,), beyond the range of float32"),
    ("optimizer slot of -1e300", _values("optimizer/slots/4/m", _0_0=-1e300), "optimizer/slots/4/m: holds -1e+300 at index (0, 0), beyond the range of float32"),
    ("input scaler b of 1e300", _config_key("input_scaler", _scaler("standardize", 0.0, 1e300)), "config.input_scaler: b must be finite and positive in float32 (the model's dtype); b at index () is inf (from 1e+300)"),
    ("input scaler b of 1e-300", _config_key("input_scaler", _scaler("standardize", 0.0, 1e-300)), "config.input_scaler: b must be finite and positive in float32 (the model's dtype); b at index () is 0.0 (from 1e-300)"),
    ("output scaler a of 1e300", _config_key("output_scaler", _scaler("normalize", [0.0, 1e300, 0.0], [1.0, 1.0, 1.0])), "config.output_scaler: a must be finite in float32 (the model's dtype); a at index (1,) is inf (from 1e+300)"),
    ("scaler whose inverse overflows", _config_key("input_scaler", _scaler("standardize", [0.0], [1e-39])), "config.input_scaler: 1 / b must be finite in float32 (the model's dtype); 1 / b at index (0,) is inf"),
    ("epsilon 1e-300 with a zero variance", _both(_layer_cfg(1, "epsilon", 1e-300), _values("layers/1/buffers/running_var", "<f4", _0=0.0)), "layer 'batchnorm' (BatchNorm) epsilon: must be positive in float32 (the model's dtype), got 1e-300, which becomes 0.0"),
    ("statistics whose scale overflows", _both(_layer_cfg(1, "epsilon", 1e-30), _values("layers/1/buffers/running_var", "<f4", _0=0.0), _values("layers/1/params/gamma", "<f4", _0=1e30)), "layers/1: layer 'batchnorm' (BatchNorm): gamma / sqrt(running_var + epsilon) overflows in float32 at index (0,)"),
    ("class weight of 1e300", _loss_cfg("class_weights", [1.0, 1e300, 1.0]), "config.loss.class_weights: must be finite in float32 (the model's dtype); weight 1 is 1e+300, which becomes inf"),
    ("class weight of 1e-300", _loss_cfg("class_weights", [1.0, 1.0, 1e-300]), "config.loss.class_weights: a positive weight must stay positive in float32 (the model's dtype); weight 2 is 1e-300, which becomes 0.0"),
    ("class weights all zero", _loss_cfg("class_weights", [0.0, 0, 0.0]), "config.loss.class_weights: must not all be zero (every loss would divide by zero), got [0.0, 0.0, 0.0]"),
    ("learning rate of 1e300", _optimizer_cfg("learning_rate", 1e300), "config.optimizer.learning_rate: must be finite and >= 0 in float32 (the model's dtype), got 1e+300, which becomes inf"),
    ("regularizer strength of 1e300", _config_key("regularizer", {"class": "L2", "config": {"lam": 1e300}}), "config.regularizer.lam: must be finite in float32 (the model's dtype), got 1e+300, which becomes inf"),
    ("metrics a number", _config_key("metrics", 5), "config.metrics: must be null or metric names (a name, lists or an object of them, at most 1000 names of at most 100 characters)"),
    ("metrics a long name", _config_key("metrics", ["m" * 101]), "config.metrics: must be null or metric names"),
    ("metrics too many", _config_key("metrics", ["mae"] * 1001), "config.metrics: must be null or metric names"),
    ("metrics an unknown name", _config_key("metrics", ["nope"]), "config.metrics: metric must be one of"),
    ("loss weight of 1e300", _config_key("loss_weights", [1e300]), "config.loss_weights[0]: must be finite in float32 (the model's dtype), got 1e+300, which becomes inf"),
    ("optimizer epsilon of 1e-300", _optimizer_cfg("epsilon", 1e-300), "config.optimizer.epsilon: must be finite and positive in float32 (the model's dtype), got 1e-300, which becomes 0.0"),
    # storage that was never written
    ("chunks never written (fill_time never)", _fill("layers/4/params/kernel", "never"), "layers/4/params/kernel: has 8 of its 8 chunks never written"),
    ("chunks partly written", _fill("layers/4/params/kernel", "ifset", written=slice(0, 3)), "layers/4/params/kernel: has 5 of its 8 chunks never written"),
    ("contiguous storage never written", _fill("layers/1/buffers/running_mean", "never", chunks=False), "layers/1/buffers/running_mean: was never written"),
    ("optimizer slot never written", _fill("optimizer/slots/4/v", "alloc"), "optimizer/slots/4/v: has 8 of its 8 chunks never written"),
    # state that does not fit the model
    ("input scaler of the wrong width", _config_key("input_scaler", _scaler("standardize", [0.0] * 3, [1.0] * 3)), "config.input_scaler: has features of shape (3,), which must be the end of the model's input shape (5, 5, 1)"),
    ("output scaler of the wrong width", _config_key("output_scaler", _scaler("normalize", [0.0] * 4, [1.0] * 4)), "config.output_scaler: has features of shape (4,), which must be the end of the model's output shape (3,)"),
    ("class weights of the wrong length", _loss_cfg("class_weights", [1.0, 2.0]), "config.loss.class_weights: must hold one weight per class of output 0 (3), got 2"),
    ("negative Adam second moment", _values("optimizer/slots/6/v", "<f4", _0_1=-1e-3), "optimizer/slots/6/v: must not be negative, got -0.001"),
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
    return st.one_of(byte_flips, json_edit, attr_edit, dataset_edit, _fit_mutations())


def _fit_mutations():
    """Files whose arrays, storage or state may not fit the model: values beyond its dtype (float32), fill
    values and unwritten storage, other chunk layouts of the same values, state of the wrong width."""
    dataset = st.integers(0, 60)
    cast = st.tuples(
        st.just("cast"),
        dataset,
        st.floats(0, 1),
        st.sampled_from([1e300, -1e300, 3.5e38, -1e39, 1e-300, 1e-46, 0.0, 1.0]),  # beyond float32, or exact in it
    )
    fill = st.tuples(
        st.just("fill"),
        dataset,
        st.sampled_from(["never", "alloc", "ifset"]),
        st.sampled_from([0.0, 0.5, float("nan"), -1.0]),
        st.floats(0, 1),  # the share of rows written
        st.booleans(),  # chunked
        st.booleans(),  # gzip
    )
    chunks = st.tuples(
        st.just("chunks"),
        dataset,
        st.lists(st.floats(0, 1), min_size=4, max_size=4),  # chunk size per axis, as a share of the axis
        st.booleans(),  # gzip
        st.booleans(),  # shuffle
        st.booleans(),  # fletcher32
    )
    state = st.tuples(
        st.just("state"),
        st.sampled_from(["input_scaler", "output_scaler", "class_weights", "class_names"]),
        st.integers(-1, 5),  # the width (-1: the model's whole input or output shape)
        st.sampled_from([1.0, 2.0, 1e300, 1e-300, 1e-39, 0.5]),
    )
    return st.one_of(cast, fill, chunks, state)


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
        elif kind == "dataset":
            name = _dataset_names(f)[mutation[1] % len(_dataset_names(f))]
            _replace(f, name, data=np.ones(tuple(mutation[2]), dtype=mutation[3]))
        else:
            _apply_fit_mutation(f, mutation)


def _dataset_names(f) -> list[str]:
    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return sorted(names)


def _apply_fit_mutation(f, mutation) -> None:
    kind = mutation[0]
    if kind == "state":
        _, key, width, value = mutation
        cfg = _config(f)
        if key in ("input_scaler", "output_scaler"):
            shape = (5, 5, 1) if key == "input_scaler" else (3,)
            shape = shape if width < 0 else (width,)
            cfg[key] = _scaler("standardize", np.zeros(shape).tolist(), np.full(shape, value).tolist())
        elif key == "class_weights":
            cfg["loss"]["config"]["class_weights"] = [value] * (3 if width < 0 else width)
        else:
            cfg["class_names"] = [f"c{i}" for i in range(3 if width < 0 else width)]
        _set_config(f, cfg)
        return
    names = _dataset_names(f)
    name = names[mutation[1] % len(names)]
    data = f[name][()]
    if kind == "cast":
        flat = data.astype("<f8").ravel()
        flat[min(int(mutation[2] * flat.size), flat.size - 1)] = mutation[3]
        _replace(f, name, data=flat.reshape(data.shape))
    elif kind == "fill":
        _, _, fill_time, fillvalue, share, chunked, gzip = mutation
        del f[name]
        kwargs = {"chunks": (1, *data.shape[1:])} if chunked and data.ndim else {}
        if gzip and kwargs:
            kwargs["compression"] = "gzip"
        ds = f.create_dataset(name, shape=data.shape, dtype=data.dtype, fillvalue=fillvalue, fill_time=fill_time, **kwargs)
        rows = int(round(share * (data.shape[0] if data.ndim else 1)))
        if data.ndim and rows:
            ds[:rows] = data[:rows]
        elif not data.ndim and rows:
            ds[()] = data
    else:  # the same values, chunked
        _, _, shares, gzip, shuffle, fletcher32 = mutation
        chunk = tuple(max(1, int(round(share * n))) for share, n in zip(shares, data.shape, strict=False)) or None
        del f[name]
        f.create_dataset(
            name,
            data=data,
            chunks=chunk if data.ndim else None,
            compression="gzip" if gzip and data.ndim else None,
            shuffle=shuffle and bool(data.ndim),
            fletcher32=fletcher32 and bool(data.ndim),
        )


def _load_bounded(path, must_name: str = ""):
    """``Network.load(path)`` in under 5 s and 64 MiB: the network, or ``None`` for a ModelFileError (whose
    message must contain ``must_name``)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        net = Network.load(path)
    except ModelFileError as exc:
        assert must_name in str(exc)
        net = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - start < 5
    assert peak < 64 * 2**20, f"{peak / 2**20:.1f} MiB"
    return net


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutations())
def test_mutated_files_load_or_raise_model_file_error(tmp_path, valid_file, mutation):
    path = tmp_path / "m.h5"
    shutil.copy(valid_file, path)
    try:
        _apply(path, mutation)
    except (OSError, ValueError, TypeError, KeyError):  # h5py refused to write this mutation: nothing to load
        return
    net = _load_bounded(path)
    if net is not None:
        out = net.predict(np.zeros((2, *net.input_shape), dtype=net.dtype))
        assert out.shape[0] == 2


@pytest.fixture(scope="module")
def reference(valid_file):
    """What the valid file's network predicts, and the inputs it predicts for."""
    x = np.random.default_rng(3).standard_normal((4, 5, 5, 1))
    return x, Network.load(valid_file).predict(x)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_fit_mutations())
def test_files_that_may_not_fit_the_model_load_a_usable_model_or_raise(tmp_path, valid_file, reference, mutation):
    """Values beyond float32, fill values and unwritten storage, other chunk layouts and state of the wrong
    width: either ModelFileError, or a model that predicts finite values (the saved ones when only the chunk
    layout changed) and trains on."""
    path = tmp_path / "m.h5"
    shutil.copy(valid_file, path)
    with h5py.File(path, "a") as f:
        _apply_fit_mutation(f, mutation)
    start = time.perf_counter()
    try:
        net = Network.load(path)
    except ModelFileError as exc:
        assert str(exc).startswith(f"model file '{path}'")
        return
    finally:
        assert time.perf_counter() - start < 5
    x, expected = reference
    out = net.predict(x)
    assert np.isfinite(out).all(), mutation
    if mutation[0] == "chunks" or (mutation[0] == "fill" and mutation[4] == 1.0):
        np.testing.assert_array_equal(out, expected)
    net.fit(x, np.array([0, 1, 2, 1]), batch_size=4, verbose=0)  # raises FloatingPointError on NaN or inf
    assert all(np.isfinite(w).all() for w in net.get_weights())


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
    # the chain runs through the graph as 0.2 ran it; the optimizer's second moment is now squared in
    # torch's order, ((1 − β2)·g)·g where 0.2 took (g·g)·(1 − β2), which moves the last bits of the step
    for i, w in enumerate(net.get_weights()):
        np.testing.assert_allclose(w, resumed[f"arr_{i}"], rtol=1e-6, atol=1e-9)


# -- chunk counts ---------------------------------------------------------------------------------------------
def _chunked_kernel_file(path: pathlib.Path, n_in: int, units: int, chunk, written: bool) -> pathlib.Path:
    """A Dense network whose kernel is stored in chunks of shape ``chunk`` (gzip), written or not."""
    net = Network((n_in,), "mse", "sgd", seed=0)
    net.add(Dense(units))
    net.save(tmp := path.with_suffix(".tmp"))
    with h5py.File(tmp, "r") as src, h5py.File(path, "w") as f:  # a fresh file: no space left by the old kernel
        for key, value in src.attrs.items():
            f.attrs[key] = value
        f.copy(src["optimizer"], "optimizer")
        f["layers/0/params/bias"] = src["layers/0/params/bias"][()]
        f.create_group("layers/0/buffers")
        kernel = src["layers/0/params/kernel"][()]
        ds = f.create_dataset("layers/0/params/kernel", shape=kernel.shape, dtype="<f4", chunks=chunk, compression="gzip")
        if written:
            ds[...] = kernel
    tmp.unlink()
    return path


def _load_refused_quickly(path, message):
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(ModelFileError) as info:
        Network.load(path)
    assert time.perf_counter() - start < 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 64 * 1024  # KiB: HDF5's memory too
    assert str(info.value) == f"model file '{path}', layers/0/params/kernel: {message}"


def test_a_small_file_with_200_000_one_element_chunks_is_refused_before_hdf5_reads_them(tmp_path):
    # HDF5 spends about 3.7 KB and 2.5 µs per chunk it reads: 200,000 chunks were 740 MB, 2 million 6 GB
    path = _chunked_kernel_file(tmp_path / "m.h5", 500, 400, (1, 1), written=False)
    assert path.stat().st_size < 20_000
    _load_refused_quickly(
        path, "is split into 200000 chunks of shape (1, 1) (dataset shape (500, 400)); at most 65536 are accepted"
    )


def test_more_chunks_than_the_file_has_bytes_are_refused(tmp_path):
    path = _chunked_kernel_file(tmp_path / "m.h5", 150, 200, (1, 1), written=False)
    size = path.stat().st_size
    assert size < 30_000
    _load_refused_quickly(
        path,
        f"is split into 30000 chunks of shape (1, 1) (dataset shape (150, 200)); more than a {size}-byte file "
        "can hold (a written chunk takes at least one byte)",
    )


def test_more_than_max_chunks_written_chunks_are_refused(tmp_path):
    path = _chunked_kernel_file(tmp_path / "m.h5", 350, 200, (1, 1), written=True)
    _load_refused_quickly(
        path, "is split into 70000 chunks of shape (1, 1) (dataset shape (350, 200)); at most 65536 are accepted"
    )


def test_chunks_are_bounded_over_the_whole_file(tmp_path, monkeypatch):
    from neuro import _h5safe

    net = Network((10,), "mse", "adam", seed=0)
    net.add(Dense(8)).add(Dense(3))
    net.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        for name in ("layers/0/params/kernel", "layers/1/params/kernel"):
            data = f[name][()]
            _replace(f, name, data=data, chunks=(1, 1))
    assert Network.load(tmp_path / "m.h5").layers[0].units == 8  # 80 + 24 chunks are fine
    monkeypatch.setattr(_h5safe, "MAX_TOTAL_CHUNKS", 100)
    with pytest.raises(ModelFileError, match=r"layers/1/params/kernel: the datasets are split into more than 100 chunks in all \(104 so far\)"):
        Network.load(tmp_path / "m.h5")


def test_values_that_fit_the_model_dtype_load(tmp_path):
    """Nothing is refused for being large or small in float64 when the model computes in float64."""
    with neuro.backend.dtype_scope("float64"):
        net = Network((4,), neuro.CrossEntropy(class_weights=[1.0, 1e-300, 2.0]), neuro.Adam(1e-3, epsilon=1e-300), seed=0)
        net.add(Dense(5)).add(BatchNorm(epsilon=1e-300)).add(Dense(3, "softmax"))
    net.fit(np.ones((4, 4)), np.array([0, 1, 2, 0]), verbose=0)
    net.input_scaler = neuro.data.Scaler("standardize", [0.0, 1e300, 0.0, 0.0], [1.0, 1e-300, 1.0, 1.0])
    net.output_scaler = neuro.data.Scaler("normalize", [1e300, 0.0, 0.0], [2.0, 1.0, 1.0])
    net.layers[0].params["kernel"][0, 0] = 1e300
    net.save(tmp_path / "m.h5")
    loaded = Network.load(tmp_path / "m.h5")
    assert loaded.dtype == np.float64 and loaded.layers[0].params["kernel"][0, 0] == 1e300
    assert loaded.input_scaler == net.input_scaler and loaded.output_scaler == net.output_scaler
    np.testing.assert_array_equal(loaded.loss.class_weights, [1.0, 1e-300, 2.0])


def test_a_scaler_of_a_model_with_several_inputs_is_not_checked_against_one_of_them(tmp_path):
    a, b = neuro.Input((3,)), neuro.Input((2,))
    model = neuro.Model([a, b], Dense(2)(neuro.Concatenate()([a, b])), loss="mse", optimizer="sgd", seed=0)
    model.input_scaler = neuro.data.Scaler("standardize", [0.0] * 7, [1.0] * 7)  # not applied with two inputs
    model.save(tmp_path / "m.h5")
    assert neuro.Model.load(tmp_path / "m.h5").input_scaler == model.input_scaler


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=120),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30,
)
_METRIC_NAMES = st.sampled_from(["accuracy", "acc", "mae", "mse", "top3", "auc", "precision", "nope", "", "a" * 101])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metrics=_JSON | _METRIC_NAMES | st.lists(_METRIC_NAMES, max_size=4) | st.lists(st.lists(_METRIC_NAMES, max_size=3), max_size=3)
       | st.dictionaries(st.sampled_from(["dense", "dense_1", "out", "x"]), _METRIC_NAMES | st.lists(_METRIC_NAMES, max_size=3), max_size=3))
def test_any_saved_metrics_load_or_raise_model_file_error(tmp_path, valid_file, metrics):
    """The `metrics` key (new in this version) from a stranger's file: JSON of any shape, names known and
    unknown, keys of outputs and not. Each file loads a model that evaluates with those metrics or raises
    ModelFileError naming config.metrics (or config), in bounded time and memory."""
    path = tmp_path / "m.h5"
    shutil.copy(valid_file, path)
    with h5py.File(path, "a", libver="latest") as f:
        cfg = _config(f)
        cfg["metrics"] = metrics
        _set_config(f, cfg)
    net = _load_bounded(path, must_name="config")
    if net is not None:
        x = np.zeros((2, *net.input_shape), dtype=net.dtype)
        y = np.eye(net.output_shapes[0][-1], dtype=net.dtype)[[0, 1]]  # one-hot rows: every metric reads them
        logs = net.evaluate(x, y)
        assert "loss" in logs
