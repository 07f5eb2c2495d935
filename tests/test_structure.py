"""The floor plan: every module imports only its own floor and the floors below (imports inside functions
included), no import cycles, CuPy imported by the backend alone, one registry for every family, and user
classes that save like built-ins."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

import neuro
from neuro import registry

PACKAGE = pathlib.Path(neuro.__file__).parent


def _imports() -> dict[str, set[str]]:
    modules = {}
    for f in PACKAGE.rglob("*.py"):
        rel = f.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        modules[name] = f
    graph: dict[str, set[str]] = {}
    for name, f in modules.items():
        deps: set[str] = set()
        package = name if f.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text())):  # every import, at any depth
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    deps.add(full if full in modules else base)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        # a module importing its own package (or the package's own __init__ importing submodules) is not
        # a dependency between floors
        graph[name] = {
            d for d in deps if d in modules and d != name and not name.startswith(d + ".") and d != "neuro"
        }
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                found.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return found


def test_no_import_cycles():
    graph = _imports()
    assert "neuro.models" in graph and "neuro.io" in graph
    assert _cycles(graph) == []


#: The floors of ARCHITECTURE.md, lowest first: a module may import its own floor and those below.
FLOORS = [
    ("ground", ["neuro._version", "neuro.errors", "neuro.registry", "neuro._strict", "neuro.backend",
                "neuro._validation", "neuro._atomic", "neuro._h5safe",
                "neuro._keywords"]),
    ("math", ["neuro.functional", "neuro.initializers", "neuro.regularizers", "neuro.schedules",
              "neuro.optimizers", "neuro.metrics", "neuro.losses", "neuro.data"]),
    ("layers", ["neuro.layers", "neuro.activations"]),
    ("graph", ["neuro.graph"]),
    ("heads", ["neuro.head"]),
    ("training", ["neuro.training", "neuro.callbacks", "neuro.distributed", "neuro.gradcheck"]),
    ("files", ["neuro.io", "neuro.onnx"]),
    ("models", ["neuro.models", "neuro.sklearn"]),
]


def _floor(module: str) -> int | None:
    best, found = -1, None
    for i, (_, prefixes) in enumerate(FLOORS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, found = len(p), i
    return found


def test_every_module_has_a_floor():
    missing = [m for m in _imports() if m != "neuro" and _floor(m) is None]
    assert missing == [], f"modules without a floor in FLOORS: {missing}"


def test_imports_go_down_the_floors_only():
    upward = [
        f"{m} ({FLOORS[_floor(m)][0]}) imports {d} ({FLOORS[_floor(d)][0]})"
        for m, deps in _imports().items()
        if m != "neuro"
        for d in deps
        if _floor(d) is not None and _floor(d) > _floor(m)
    ]
    assert upward == []


def test_the_floor_check_finds_an_upward_import():
    assert _floor("neuro.layers.dense") < _floor("neuro.graph") < _floor("neuro.models.model")
    assert _floor("neuro.io") > _floor("neuro.training.loop")


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


@pytest.mark.parametrize("library", ["cupy", "numba"])
def test_only_the_backend_imports_cupy_or_numba(library):
    users = [
        f.relative_to(PACKAGE).as_posix()
        for f in PACKAGE.rglob("*.py")
        if library in {
            (a.name.split(".")[0])
            for n in ast.walk(ast.parse(f.read_text()))
            if isinstance(n, ast.Import)
            for a in n.names
        } | {
            (n.module or "").split(".")[0]
            for n in ast.walk(ast.parse(f.read_text()))
            if isinstance(n, ast.ImportFrom)
        }
        or f'import_module("{library}")' in f.read_text()
    ]
    assert users == ["backend.py"]


def test_importing_neuro_does_not_import_numba():
    import subprocess
    import sys

    code = "import sys, numpy, neuro; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("family", "spellings", "cls"),
    [
        ("optimizer", ["rms_prop", "RMSprop", "rmsprop", "RMS-Prop"], neuro.RMSprop),
        ("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy", "CrossEntropy"], neuro.CrossEntropy),
        ("loss", ["softmax_crossentropy", "SoftmaxCrossEntropy", "softmax_cross_entropy"], neuro.SoftmaxCrossEntropy),
        ("loss", ["mse", "mean_squared_error", "MeanSquaredError"], neuro.MeanSquaredError),
        ("loss", ["bce", "binary_crossentropy"], neuro.BinaryCrossEntropy),
        ("layer", ["leaky_relu", "LeakyReLU", "leakyrelu"], neuro.LeakyReLU),
        ("layer", ["max_pooling_2d", "MaxPool2D", "MaxPooling2D"], neuro.MaxPool2D),
        ("layer", ["global_average_pooling_2d", "GlobalAvgPool2D"], neuro.GlobalAveragePooling2D),
        ("initializer", ["he_uniform", "HeUniform"], neuro.initializers.HeUniform),
        ("schedule", ["step_decay", "StepDecay"], neuro.schedules.StepDecay),
        ("regularizer", ["l2", "L2"], neuro.L2),
        ("metric", ["f1", "F1Score", "f1_score"], neuro.metrics.F1Score),
    ],
)
def test_one_name_normalising_lookup(family, spellings, cls):
    for name in spellings:
        assert registry.get_class(family, name) is cls


def test_every_family_accepts_names_everywhere():
    net = neuro.Network((3,), "sparse_categorical_crossentropy", "rms_prop", regularizer="l2", seed=0)
    net.add(neuro.Dense(4, "leaky_relu", kernel_initializer="glorot_uniform")).add(neuro.Dense(2, "softmax"))
    assert isinstance(net.loss, neuro.CrossEntropy) and isinstance(net.optimizer, neuro.RMSprop)
    assert isinstance(net.layers[0].activation, neuro.LeakyReLU)
    with pytest.raises(ValueError, match=r"optimizer must be one of \['Adadelta', 'Adam', 'AdamW', 'RMSprop', 'SGD'\], got 'rmsprob'"):
        neuro.optimizers.get("rmsprob")


def _every_registered():
    for family in registry.FAMILIES:
        if family in ("metric", "model"):  # not described by a config
            continue
        for name in registry.names(family):
            cls = registry.get_class(family, name)
            if cls is neuro.Functional:  # made from a graph; tests/test_graph.py saves nested models
                continue
            yield family, cls


@pytest.mark.parametrize(("family", "cls"), list(_every_registered()), ids=lambda v: getattr(v, "__name__", v))
def test_every_class_rebuilds_from_its_config(family, cls):
    required = {
        "Dense": {"units": 3}, "Conv2D": {"filters": 2, "kernel_size": 3}, "Dropout": {"rate": 0.5},
        "Conv1D": {"filters": 2, "kernel_size": 3}, "Embedding": {"input_dim": 5, "output_dim": 2},
        "LSTM": {"units": 3}, "GRU": {"units": 3}, "SimpleRNN": {"units": 3}, "Bidirectional": {"layer": neuro.LSTM(2)},
        "Reshape": {"target_shape": (2, -1)},
        "initializer.Constant": {"value": 0.5}, "schedule.Constant": {"learning_rate": 0.1}, "StepDecay": {"initial_learning_rate": 0.1, "decay_rate": 0.5, "step_size": 2},
        "ExponentialDecay": {"initial_learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 2},
        "CosineDecay": {"initial_learning_rate": 0.1, "decay_steps": 3}, "L1": {"lam": 0.1}, "L2": {"lam": 0.1},
        "PiecewiseConstantDecay": {"boundaries": [2], "values": [0.1, 0.01]},
    }
    obj = cls(**required.get(f"{family}.{cls.__name__}", required.get(cls.__name__, {})))
    cfg = obj.get_config()
    again = cls.from_config(cfg)
    assert type(again) is cls and again.get_config() == cfg
    assert registry.deserialize(family, registry.serialize(obj)).get_config() == cfg


def test_a_user_class_registers_with_one_decorator_and_saves_like_a_built_in(tmp_path):
    @neuro.register
    class ScaledSwish(neuro.Activation):
        """``y = x·σ(βx)``. Gradient: dL/dx = g·(σ + βx·σ(1 − σ))."""

        key = "scaled_swish"

        def __init__(self, beta: float = 1.0, name=None):
            super().__init__(name=name)
            self.beta = float(beta)

        def _f(self, x, inplace):
            s = neuro.functional.sigmoid(self.beta * x)[0]
            return x * s, (x, s)

        def backward(self, grad, ctx):
            x, s = self._require(ctx)
            return grad * (s + self.beta * x * s * (1 - s))

        def get_config(self):
            return {**super().get_config(), "beta": self.beta}

    net = neuro.Network((3,), "mse", "sgd", seed=0)
    net.add(neuro.Dense(4, ScaledSwish(2.0))).add(ScaledSwish(0.5)).add(neuro.Dense(1))
    report = neuro.check_gradients(net, np.random.default_rng(0).standard_normal((5, 3)), np.zeros((5, 1)))
    assert report.max_error < 1e-6
    net.save(tmp_path / "m.h5")
    loaded = neuro.Network.load(tmp_path / "m.h5")
    assert isinstance(loaded.layers[1], ScaledSwish) and loaded.layers[1].beta == 0.5
    assert loaded.layers[0].activation.beta == 2.0
    x = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    with pytest.raises(ValueError, match="is already registered"):

        @neuro.register(aliases=("ScaledSwish",))
        class Other(neuro.Activation):
            pass

    with pytest.raises(TypeError, match="cannot register 'int'"):
        neuro.register(int)
