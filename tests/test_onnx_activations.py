"""ONNX export of the activations with Keras's names: ONNX Runtime's output equals ``Network.predict`` inside
Dense, standalone, after a convolution and on inputs far into the tails, in float32 (ONNX's own operators) and
float64 (neuro's formulas, the error function as Cody's approximations); the opsets; the operators written."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import neuro.onnx as neuro_onnx  # noqa: E402
from neuro import Conv2D, Dense, Flatten, Network  # noqa: E402
from neuro.activations import (  # noqa: E402
    ELU,
    GELU,
    SELU,
    Exponential,
    HardSigmoid,
    Mish,
    Softplus,
    Softsign,
    Swish,
)
from neuro.backend import dtype_scope, to_numpy  # noqa: E402

F32 = {"rtol": 1e-5, "atol": 1e-6}
F64 = {"rtol": 1e-12, "atol": 1e-13}

ACTIVATIONS = {
    "gelu": GELU,
    "gelu_tanh": lambda: GELU(approximate=True),
    "elu": lambda: ELU(0.7),
    "selu": SELU,
    "swish": Swish,
    "softplus": Softplus,
    "softsign": Softsign,
    "hard_sigmoid": HardSigmoid,
    "exponential": Exponential,
    "mish": Mish,
}
IDS = list(ACTIVATIONS)
MAKERS = list(ACTIVATIONS.values())


def session(model):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def run_onnx(net, x, **kwargs):
    model = neuro_onnx.to_model(net, **kwargs)
    onnx.checker.check_model(model, full_check=True)
    return session(model).run(["output"], {"input": x})[0]


def build(input_shape, layers, seed=0):
    net = Network(input_shape, "mse", "adam", seed=seed)
    for layer in layers:
        net.add(layer)
    rng = np.random.default_rng(seed + 1)
    for layer in net.layers:
        if "bias" in layer.params:
            layer.params["bias"][...] = rng.normal(0.0, 0.3, layer.params["bias"].shape)
    return net


def assert_matches(net, x, **kwargs):
    ref = to_numpy(net.predict(x))
    out = run_onnx(net, x, **kwargs)
    assert out.dtype == ref.dtype == np.dtype(net.dtype)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, **(F64 if net.dtype == np.float64 else F32))


def inputs(net, n=5, seed=2, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal((n, *net.input_shape))).astype(net.dtype)


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    with dtype_scope(request.param):
        yield request.param


@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_inside_dense(dtype, make):
    net = build((6,), [Dense(5, make()), Dense(4, make())])
    assert_matches(net, inputs(net))


@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_standalone(dtype, make):
    net = build((6,), [Dense(5), make(), Dense(3), make()])
    assert_matches(net, inputs(net))


@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_after_a_convolution(dtype, make):
    net = build((5, 6, 2), [Conv2D(3, 3, activation=make()), make(), Flatten(), Dense(2)])
    assert_matches(net, inputs(net))


@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_tails_and_extremes(dtype, make):
    """Standalone, on inputs far out: ±40 and beyond, where erfc, softplus and the tanh forms have their
    tails (exponential stays below its overflow)."""
    net = build((12,), [make()])
    values = [-60.0, -37.0, -20.0, -8.0, -3.0, -0.7, 0.0, 1e-6, 0.5, 5.0, 20.0, 40.0]
    x = np.array([values, [-v for v in values]], dtype=net.dtype)
    if isinstance(net.layers[0], Exponential):
        x = np.clip(x, -80, 80 if dtype == "float32" else 700)
    assert_matches(net, x)


@pytest.mark.parametrize("opset", [13, 18, 21])
def test_opsets(dtype, opset):
    net = build((6,), [Dense(5, GELU()), Mish(), Dense(4, "hard_sigmoid"), Softplus()])
    model = neuro_onnx.to_model(net, opset=opset)
    assert model.opset_import[0].version == opset
    assert_matches(net, inputs(net), opset=opset)


def _ops(net):
    return {n.op_type for n in neuro_onnx.to_model(net).graph.node}


def test_float32_uses_onnx_operators():
    ops = _ops(build((4,), [GELU(), ELU(), SELU(), Softplus(), Softsign(), HardSigmoid(), Exponential()]))
    assert {"Erf", "Elu", "Selu", "Softplus", "Softsign", "HardSigmoid", "Exp"} <= ops
    assert "Gelu" not in ops
    assert {"Tanh", "Softplus"} <= _ops(build((4,), [Mish()]))
    assert "Tanh" in _ops(build((4,), [GELU(approximate=True)]))
    assert {"Sigmoid", "Mul"} == _ops(build((4,), [Swish()]))


def test_float64_writes_operators_onnx_runtime_runs_in_float64():
    with dtype_scope("float64"):
        net = build((4,), [GELU(), ELU(), SELU(), Softplus(), Softsign(), HardSigmoid(), Mish(), GELU(True)])
        ops = _ops(net)
    assert not ops & {"Erf", "Elu", "Selu", "Softplus", "Softsign", "HardSigmoid", "Gelu"}


def test_exported_file_runs(tmp_path):
    net = build((6,), [Dense(5, "gelu"), Dense(3, "silu"), Dense(2, "softplus")])
    path = tmp_path / "m.onnx"
    neuro_onnx.export(net, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = inputs(net)
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], to_numpy(net.predict(x)), **F32)
