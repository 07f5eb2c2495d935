"""Model files that describe graphs, from strangers: the loader checks the graph before it builds anything
(references in range and to earlier nodes only, so no cycle; every input used; every node feeding an
output; shapes that agree at every call, merges included; bounded counts and nesting) and refuses a bad one
with ModelFileError naming the place, in bounded time and memory. Mutated graph descriptions (hypothesis)
either load into a model that predicts or raise ModelFileError.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import tracemalloc

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neuro
from neuro import Add, Concatenate, Dense, Input, Model, ModelFileError


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    a, b = Input((4,), name="a"), Input((3,), name="b")
    h = Dense(5, activation="tanh")(a)
    g = Dense(5, activation="tanh")(b)
    s = Add()([h, g])
    out = Dense(2, activation="softmax", name="out")(Concatenate()([s, h]))
    m = Model([a, b], out, loss="crossentropy", optimizer="adam", seed=0)
    rng = np.random.default_rng(0)
    m.fit([rng.standard_normal((8, 4)), rng.standard_normal((8, 3))], rng.integers(0, 2, 8), verbose=0)
    path = tmp_path_factory.mktemp("graph") / "graph.h5"
    m.save(path)
    return path


def _edit(graph_file, tmp_path, change):
    path = tmp_path / "bad.h5"
    shutil.copy(graph_file, path)
    with h5py.File(path, "a") as f:
        cfg = json.loads(f.attrs["config"])
        change(cfg)
        f.attrs["config"] = json.dumps(cfg)
    return path


def _load_refused(path):
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelFileError) as info:
            Model.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 5
    assert peak < 32 * 2**20
    return str(info.value)


def _set(*keys_value):
    *keys, value = keys_value

    def change(cfg):
        target = cfg["graph"]
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return change


# node 0: dense(a), 1: dense_1(b), 2: add, 3: concatenate, 4: out
CASES = [
    ("a reference to a later node (a cycle)", _set("nodes", 2, "inbound", 0, ["node", 3, 0]),
     "graph.nodes[2].inbound[0] must be ['input', i] or ['node', j, k] naming an input or an output of an earlier"),
    ("a reference to itself", _set("nodes", 1, "inbound", 0, ["node", 1, 0]), "graph.nodes[1].inbound[0]"),
    ("an input index out of range", _set("nodes", 0, "inbound", 0, ["input", 7]), "graph.nodes[0].inbound[0]"),
    ("an output index out of range", _set("nodes", 2, "inbound", 0, ["node", 0, 3]), "graph.nodes[2].inbound[0]"),
    ("a layer index out of range", _set("nodes", 0, "layer", 99), "graph.nodes[0].layer must be an index of the 5 layers"),
    ("a negative layer index", _set("nodes", 0, "layer", -1), "graph.nodes[0].layer"),
    ("an unused input", _set("nodes", 1, "inbound", 0, ["input", 0]), "not used by any output"),
    ("an output that is no tensor", _set("outputs", 0, "dense"), "graph.outputs[0] must be"),
    ("shapes that disagree at a merge", _set("nodes", 2, "inbound", 1, ["input", 1]),
     "layer 'add' (Add) cannot take input of shape [(None, 5), (None, 3)]: Add needs inputs of one shape"),
    ("a one-tensor call with two tensors", _set("nodes", 0, "inbound", [["input", 0], ["input", 1]]),
     "a call on one tensor has one inbound tensor, got 2"),
    ("a node no output depends on", _set("outputs", [["node", 2, 0]]), "nodes that no output depends on"),
    ("an input shape of strings", _set("inputs", 0, "shape", ["4"]), "graph.inputs[0].shape must be a list"),
    ("an input of 10^12 values", _set("inputs", 0, "shape", [10**12]), "graph.inputs[0].shape"),
    ("an unknown input dtype", _set("inputs", 0, "dtype", "object"), "dtype must be one of"),
    ("extra keys in a node", _set("nodes", 0, "evil", 1), "graph.nodes[0] must be"),
    ("a graph that is a list", lambda cfg: cfg.__setitem__("graph", []), "graph must be an object"),
    ("too many nodes", lambda cfg: cfg["graph"].__setitem__("nodes", [{}] * 100_001), "at most 100000 nodes"),
    ("a layer called twice on different shapes", _set("nodes", 1, "layer", 0),
     "was first called on input of shape (None, 4) and now on (None, 3)"),
]


@pytest.mark.parametrize(("name", "change", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_graphs_are_refused_before_anything_is_built(graph_file, tmp_path, name, change, message):
    text = _load_refused(_edit(graph_file, tmp_path, change))
    assert message in text, text


def test_the_valid_file_loads_and_predicts(graph_file):
    m = Model.load(graph_file)
    rng = np.random.default_rng(1)
    assert neuro.to_numpy(m.predict([rng.standard_normal((3, 4)), rng.standard_normal((3, 3))])).shape == (3, 2)


def test_nesting_is_bounded(tmp_path):
    x = Input((2,))
    inner = Model(x, Dense(2)(x))
    for _ in range(17):
        y = Input((2,))
        inner = Model(y, inner(y))
    with pytest.raises(ValueError, match="models may be nested at most 16 deep"):
        inner.leaf_layers()


def _json_values():
    return st.recursive(
        st.none() | st.booleans() | st.integers(-3, 10) | st.text(max_size=8) | st.sampled_from(["input", "node"]),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
        max_leaves=8,
    )


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_graph_descriptions_load_or_raise_model_file_error(graph_file, tmp_path, data):
    with h5py.File(graph_file, "r") as f:
        cfg = json.loads(f.attrs["config"])
    paths = list(_paths(cfg["graph"]))[1:]
    path = data.draw(st.sampled_from(paths))
    value = data.draw(_json_values())
    target = cfg["graph"]
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    bad = tmp_path / "mutated.h5"
    shutil.copy(graph_file, bad)
    with h5py.File(bad, "a") as f:
        f.attrs["config"] = json.dumps(cfg)
    start = time.perf_counter()
    try:
        m = Model.load(bad)
    except ModelFileError:
        pass
    else:  # a harmless change (a name): the model must work
        xs = [np.zeros((2, *shape), dtype=np.float32) for shape in m.input_shapes]
        m.predict(xs)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    "outputs, message",
    [
        ({"kind": "dict", "keys": ["x", "x"]}, r"outputs\.keys must name the 2 outputs, each once, got \['x', 'x'\]"),
        ({"kind": "dict", "keys": ["x"]}, r"outputs\.keys must name the 2 outputs, each once"),
        ({"kind": "single", "keys": None}, r"outputs\.kind 'single' needs one output; the graph has 2"),
        ({"kind": "dict", "keys": None}, r"outputs\.keys must name the outputs of kind 'dict', and be null otherwise"),
        ({"kind": "list", "keys": ["p", "q"]}, r"outputs\.keys must name the outputs of kind 'dict'"),
    ],
)
def test_outputs_that_do_not_fit_the_graphs_outputs_are_refused(tmp_path, outputs, message):
    """Else predict dropped outputs silently: a dict with a key twice keeps one entry, 'single' the first."""
    a = Input((4,))
    h = Dense(3)(a)
    m = Model(a, {"p": Dense(2, activation="softmax")(h), "q": Dense(1)(h)}, loss=["crossentropy", "mse"], seed=0)
    good = tmp_path / "two.h5"
    m.save(good)
    assert set(Model.load(good).predict(np.ones((1, 4), np.float32))) == {"p", "q"}
    path = _edit(good, tmp_path, lambda cfg: cfg.__setitem__("outputs", outputs))
    assert re.search(message, _load_refused(path))


@pytest.mark.parametrize(
    "layer, key, value, message",
    [
        ("norm", "epsilon", 1e-300, r"layer 'norm' \(LayerNormalization\) epsilon: must be positive in float32 \(the "
                                    r"model's dtype\), got 1e-300, which becomes 0\.0$"),
        ("hidden", "activation", {"class": "LeakyReLU", "config": {"alpha": 1e300}},
         r"layer 'hidden' \(Dense\) activation alpha: must be finite in float32 \(the model's dtype\), got 1e\+300"),
        ("hidden", "activation", {"class": "ELU", "config": {"alpha": -1e300}}, r"activation alpha: must be finite"),
    ],
)
def test_layer_numbers_that_overflow_or_vanish_in_the_models_dtype_are_refused(tmp_path, layer, key, value, message):
    """Else the model loads and predicts NaN: LayerNormalization of a row of equal values with ε = 0, a
    LeakyReLU or ELU whose α is inf in float32."""
    x = Input((4,))
    h = Dense(3, activation="relu", name="hidden")(neuro.LayerNormalization(name="norm")(x))
    m = Model(x, Dense(2, activation="softmax")(h), loss="crossentropy", seed=0)
    good = tmp_path / "ok.h5"
    m.save(good)
    assert np.isfinite(Model.load(good).predict(np.zeros((1, 4), np.float32))).all()

    def change(cfg):
        (spec,) = [s for s in cfg["layers"] if s["config"].get("name") == layer]
        spec["config"][key] = value

    assert re.search(message, _load_refused(_edit(good, tmp_path, change)))


def test_an_input_scaler_on_integer_ids_is_refused(tmp_path):
    """The scaler would turn the ids into floats, which the Embedding refuses: every predict would fail."""
    ids = Input((5,), dtype="int64")
    h = neuro.GlobalAveragePooling1D()(neuro.Embedding(10, 3)(ids))
    m = Model(ids, Dense(2, activation="softmax")(h), loss="crossentropy", seed=0)
    good = tmp_path / "ids.h5"
    m.save(good)
    assert Model.load(good).predict(np.array([[1, 2, 3, 4, 5]])).shape == (1, 2)
    path = _edit(good, tmp_path, lambda cfg: cfg.__setitem__("input_scaler", {"kind": "standardize", "a": 0.0, "b": 1.0}))
    assert re.search(r"config\.input_scaler: scales the input, but the model's input holds int64 ids$", _load_refused(path))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("learning_rate", {"class": "ExponentialDecay", "config": {"initial_learning_rate": 1e300, "decay_steps": 1, "decay_rate": 1.0}},
         r"config\.optimizer\.learning_rate\.initial_learning_rate: must be finite in float32 \(the model's dtype\), got 1e\+300$"),
        ("weight_decay", 1e300, r"config\.optimizer\.weight_decay: must be finite in float32 \(the model's dtype\), got 1e\+300$"),
    ],
)
def test_optimizer_numbers_that_overflow_in_the_models_dtype_are_refused(tmp_path, key, value, message):
    """Else the file loads and the first training step fails (a schedule's 1e300 or a weight decay of 1e300 is
    inf in float32)."""
    x = Input((4,))
    m = Model(x, Dense(2, activation="softmax")(x), loss="crossentropy", optimizer="adamw", seed=0)
    good = tmp_path / "opt.h5"
    m.save(good)
    Model.load(good)
    path = _edit(good, tmp_path, lambda cfg: cfg["optimizer"]["config"].__setitem__(key, value))
    assert re.search(message, _load_refused(path))


@pytest.mark.parametrize(
    "where, name",
    [("layers", "note"), ("layers/0", "note"), ("layers/0/params", "note"), ("layers/0/params/kernel", "units"),
     ("optimizer/slots", "note"), ("optimizer/slots/0", "note"), ("optimizer/slots/0/m", "units")],
)
def test_attributes_the_loader_does_not_expect_are_refused_everywhere(tmp_path, where, name):
    """The file-format page promises it: neuro writes attributes on the root and the optimizer group only."""
    x = Input((4,))
    m = Model(x, Dense(2, activation="softmax")(x), loss="crossentropy", optimizer="adam", seed=0)
    m.fit(np.ones((4, 4), np.float32), np.array([0, 1, 0, 1]), verbose=0)
    path = tmp_path / "attrs.h5"
    m.save(path)
    with h5py.File(path, "a") as f:
        f[where].attrs[name] = 1
    message = _load_refused(path)
    assert where in message and ("unexpected attributes 'note'" in message or "has attributes" in message)
