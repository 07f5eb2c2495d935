"""ONNX export (the optional extra ``neuro[onnx]``): ONNX Runtime's output equals ``Network.predict`` for every
built-in layer and activation, the reference CNN and MLP, both dtypes; clear errors for what has no
converter."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import neuro  # noqa: E402
import neuro.onnx as neuro_onnx  # noqa: E402
from neuro import (  # noqa: E402
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    LeakyReLU,
    Linear,
    MaxPool2D,
    Network,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from neuro import head as head_mod  # noqa: E402
from neuro.backend import dtype_scope, to_numpy  # noqa: E402
from neuro.data.scaling import Scaler  # noqa: E402
from neuro.layers.base import Layer  # noqa: E402
from neuro.losses import BinaryCrossEntropy  # noqa: E402

F32 = {"rtol": 1e-5, "atol": 1e-6}
F64 = {"rtol": 1e-12, "atol": 1e-13}


# -- helpers ----------------------------------------------------------------------------------------------
def session(model):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def run_onnx(net, x, **kwargs):
    model = neuro_onnx.to_model(net, **kwargs)
    onnx.checker.check_model(model, full_check=True)  # with shape inference: the declared shapes hold
    return session(model).run(["output"], {"input": x})[0]


def build(input_shape, layers, loss="mse", seed=0):
    """A network around ``layers`` with non-zero biases and BatchNorm parameters."""
    net = Network(input_shape, loss, "adam", seed=seed)
    for layer in layers:
        net.add(layer)
    rng = np.random.default_rng(seed + 1)
    for layer in net.layers:
        for key, p in layer.params.items():
            if key in ("bias", "beta"):
                p[...] = rng.normal(0.0, 0.3, p.shape)
            elif key == "gamma":
                p[...] = rng.uniform(0.5, 1.5, p.shape)
    return net


def inputs(net, n=4, seed=2):
    x = np.random.default_rng(seed).standard_normal((n, *net.input_shape))
    return x.astype(net.dtype)


def assert_matches(net, x=None, tol=None, **kwargs):
    x = inputs(net) if x is None else x
    ref = to_numpy(net.predict(x))
    out = run_onnx(net, x, **kwargs)
    assert out.dtype == ref.dtype == np.dtype(net.dtype)
    assert out.shape == ref.shape == (len(x), *net.output_shape)
    np.testing.assert_allclose(out, ref, **(tol or (F64 if net.dtype == np.float64 else F32)))
    return out


def reference_cnn():
    return build(
        (28, 28, 1),
        [
            Conv2D(32, 3, padding="same", activation="relu"),
            Conv2D(64, 3, padding="same", activation="relu"),
            MaxPool2D(2),
            Dropout(0.5),
            Flatten(),
            Dense(128, "relu"),
            Dropout(0.25),
            Dense(10, "softmax"),
        ],
        loss="crossentropy",
    )


def reference_mlp():
    return build(
        (784,), [Dense(500, "tanh"), Dense(300, "tanh"), Dense(10, "softmax")], loss="softmax_crossentropy"
    )


# -- dense and activations --------------------------------------------------------------------------------
ACTIVATIONS = [Linear, ReLU, lambda: LeakyReLU(0.2), Sigmoid, Tanh, Softmax]
ACT_IDS = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]


@pytest.mark.parametrize("make", ACTIVATIONS, ids=ACT_IDS)
def test_activation_inside_dense(make):
    assert_matches(build((6,), [Dense(5, make()), Dense(4, make())]))


@pytest.mark.parametrize("make", ACTIVATIONS, ids=ACT_IDS)
def test_activation_standalone(make):
    assert_matches(build((6,), [Dense(5), make(), Dense(3), make()]))


@pytest.mark.parametrize("make", ACTIVATIONS, ids=ACT_IDS)
def test_activation_on_images(make):
    # a softmax on an image is over its channels, whichever layout the graph holds there
    assert_matches(build((5, 6, 3), [Conv2D(4, 3, activation=make()), make(), MaxPool2D(2), make()]))


def test_activation_only_network_is_an_identity_graph():
    net = build((3, 4), [Linear(), Dropout(0.3)])
    model = neuro_onnx.to_model(net)
    assert [n.op_type for n in model.graph.node] == ["Identity"]
    assert_matches(net)


# -- convolution and pooling ------------------------------------------------------------------------------
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("stride", [(1, 1), (2, 1), (2, 2), (3, 2)])
@pytest.mark.parametrize("kernel", [3, (2, 3), 1])
def test_conv2d(padding, stride, kernel):
    net = build((7, 9, 2), [Conv2D(3, kernel, strides=stride, padding=padding, activation="relu")])
    assert_matches(net)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv2d_then_flatten_keeps_channels_last_order(padding):
    net = build((7, 6, 3), [Conv2D(4, 3, strides=(2, 1), padding=padding), Flatten(), Dense(5, "tanh")])
    assert_matches(net)
    ops = [n.op_type for n in neuro_onnx.to_model(net).graph.node]
    assert ops == ["Transpose", "Conv", "Transpose", "Flatten", "Gemm", "Tanh"]


POOLS = [  # pool, stride, padding
    (2, None, "valid"),
    (2, None, "same"),
    (3, 2, "valid"),  # overlapping
    (3, 2, "same"),
    ((2, 3), (1, 2), "same"),
    ((2, 1), (3, 2), "valid"),  # gaps between windows
    ((2, 1), (3, 2), "same"),
]


@pytest.mark.parametrize("pool,stride,padding", POOLS)
@pytest.mark.parametrize("kind", [MaxPool2D, AvgPool2D])
def test_pooling(kind, pool, stride, padding):
    # negative inputs: a max-pool window at the border must not see the padding as 0
    net = build((7, 9, 2), [kind(pool, stride, padding)])
    x = inputs(net) - 3.0
    assert_matches(net, x)


def test_global_max_pooling_after_conv_and_alone():
    from neuro.layers import GlobalMaxPooling2D

    assert_matches(build((6, 5, 3), [Conv2D(4, 3), GlobalMaxPooling2D(), Dense(2)]))
    assert_matches(build((6, 5, 3), [GlobalMaxPooling2D()]))


def test_global_average_pooling_after_conv_and_alone():
    assert_matches(build((5, 7, 3), [GlobalAveragePooling2D()]))
    assert_matches(build((9, 7, 2), [Conv2D(6, 3, padding="same"), GlobalAveragePooling2D(), Dense(2)]))


# -- batch norm, dropout, flatten -------------------------------------------------------------------------
def trained_one_step(input_shape, layers):
    net = build(input_shape, layers)
    x = inputs(net, n=16, seed=5) * 2.0 + 1.5
    y = np.random.default_rng(6).standard_normal((16, *net.output_shape)).astype(net.dtype)
    net.fit(x, y, batch_size=16, epochs=1, verbose=0)
    bn = next(layer for layer in net.layers if isinstance(layer, BatchNorm))
    mean, var = (to_numpy(bn.buffers[k]) for k in ("running_mean", "running_var"))
    assert np.abs(mean).min() > 1e-3 and np.abs(var - 1).max() > 1e-2  # not the initial statistics
    return net


def test_batchnorm_after_dense():
    net = trained_one_step((6,), [Dense(5), BatchNorm(momentum=0.2), ReLU(), Dense(3)])
    assert_matches(net, inputs(net) * 2.0 + 1.5)


def test_batchnorm_after_conv2d():
    net = trained_one_step(
        (6, 5, 2), [Conv2D(4, 3, padding="same"), BatchNorm(momentum=0.2, epsilon=1e-3), ReLU(), Flatten()]
    )
    assert_matches(net, inputs(net) * 2.0 + 1.5)


def test_batchnorm_on_a_sequence():
    from neuro import Conv1D

    net = trained_one_step((7, 3), [Conv1D(4, 3, padding="same"), BatchNorm(), Dense(2)])
    assert_matches(net)


def test_batchnorm_on_the_input_image():
    net = trained_one_step((4, 5, 3), [BatchNorm(momentum=0.0), Flatten(), Dense(2)])
    assert_matches(net, inputs(net) * 2.0 + 1.5)


def test_dropout_is_dropped():
    net = build((8,), [Dense(6, "relu"), Dropout(0.5), Dense(3), Dropout(0.1)])
    assert_matches(net)
    assert "Dropout" not in {n.op_type for n in neuro_onnx.to_model(net).graph.node}


def test_flatten_of_any_rank():
    assert_matches(build((3, 4), [Flatten(), Dense(2)]))
    assert_matches(build((2, 3, 4), [Flatten()]))
    assert_matches(build((5,), [Flatten(), Dense(2)]))


def test_reshape_in_channels_last_order():
    from neuro.layers import Reshape

    assert_matches(build((12,), [Dense(24), Reshape((2, 3, 4)), Conv2D(2, 2), Flatten(), Dense(3)]))
    assert_matches(build((2, 3, 4), [Conv2D(4, 1), Reshape((6, -1)), Dense(2)]))
    assert_matches(build((6,), [Reshape((3, 2))]))


def test_image_output_is_channels_last():
    net = build((6, 6, 2), [Conv2D(3, 3, padding="same"), MaxPool2D(2), Conv2D(5, 1)])
    out = assert_matches(net)
    assert out.shape == (4, 3, 3, 5)


# -- reference networks and heads -------------------------------------------------------------------------
def test_reference_cnn():
    net = reference_cnn()
    assert isinstance(net.head, head_mod.FusedHead)
    assert_matches(net, inputs(net, n=8))
    ops = [n.op_type for n in neuro_onnx.to_model(net).graph.node]
    assert ops == [
        "Transpose", "Conv", "Relu", "Conv", "Relu", "MaxPool", "Transpose", "Flatten",
        "Gemm", "Relu", "Gemm", "Softmax",
    ]  # fmt: skip


def test_reference_mlp():
    net = reference_mlp()
    out = assert_matches(net, inputs(net, n=16))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_linear_output_with_softmax_crossentropy_gets_the_loss_link():
    net = build((6,), [Dense(8, "relu"), Dense(4)], loss="softmax_crossentropy")
    assert isinstance(net.head, head_mod.LinkHead)
    out = assert_matches(net)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert neuro_onnx.to_model(net).graph.node[-1].op_type == "Softmax"


def test_linear_image_output_with_link_softmax_over_channels():
    net = build((4, 4, 2), [Conv2D(3, 3, padding="same")], loss="softmax_crossentropy")
    assert isinstance(net.head, head_mod.LinkHead)
    assert_matches(net)


def test_sigmoid_output_with_binary_crossentropy():
    net = build((5,), [Dense(4, "tanh"), Dense(1, "sigmoid")], loss="bce")
    assert isinstance(net.head, head_mod.FusedHead)
    assert_matches(net)
    # a linear output with bce on logits: predict gives σ(z), so does the graph (bce on probabilities after
    # a linear output is refused when the network is built)
    assert_matches(build((5,), [Dense(4, "tanh"), Dense(1)], loss=BinaryCrossEntropy(from_logits=True)))


def test_sigmoid_link_of_a_logits_taking_binary_loss():
    net = build((5,), [Dense(3)], loss=BinaryCrossEntropy(from_logits=True))
    assert isinstance(net.head, head_mod.LinkHead)
    assert_matches(net)
    assert neuro_onnx.to_model(net).graph.node[-1].op_type == "Sigmoid"


def test_trained_network_matches():
    net = build(
        (8, 8, 1),
        [Conv2D(4, 3, activation="relu"), MaxPool2D(2), Flatten(), Dense(3)],
        "softmax_crossentropy",
    )
    x = inputs(net, n=32)
    y = np.random.default_rng(3).integers(0, 3, 32)
    net.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert_matches(net, x)


# -- float64 ----------------------------------------------------------------------------------------------
def test_float64_mlp(float64):
    net = build(
        (20,), [Dense(16, "tanh"), BatchNorm(), Dense(8, LeakyReLU(0.1)), Dense(4, "softmax")], "crossentropy"
    )
    assert net.dtype == np.float64
    assert_matches(net)
    model = neuro_onnx.to_model(net)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_float64_cnn(float64, padding):
    # ONNX Runtime's CPU provider has no float64 Conv / AveragePool: the graph computes them from slices
    layers = [
        Conv2D(4, 3, strides=(2, 1), padding=padding, activation="relu"),
        BatchNorm(),
        MaxPool2D(3, 2, padding),
        Conv2D(5, (2, 1), strides=(1, 2), padding=padding),
        AvgPool2D(2, 1, padding),
        Conv2D(3, 1),
    ]
    net = build((17, 15, 2), layers)
    assert_matches(net, inputs(net) - 1.0)
    ops = {n.op_type for n in neuro_onnx.to_model(net).graph.node}
    assert not ops & {"Conv", "AveragePool", "MaxPool", "Transpose"}
    assert_matches(build((9, 7, 3), [Conv2D(4, 3, padding=padding), GlobalAveragePooling2D(), Dense(2)]))
    assert_matches(build((6, 6, 2), [Conv2D(4, 3, padding=padding), MaxPool2D(2), Flatten(), Dense(3)]))


def test_float64_reference_cnn(float64):
    net = reference_cnn()
    assert_matches(net, inputs(net, n=2))


# -- the file and its interface ---------------------------------------------------------------------------
def test_export_writes_a_checked_file_with_a_symbolic_batch(tmp_path):
    net = reference_cnn()
    net.class_names = [str(i) for i in range(10)]
    path = tmp_path / "cnn.onnx"
    assert neuro_onnx.export(net, path) is None
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == 17
    assert model.producer_name == "neuro"
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "input" and out.name == "output"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert in_dims == ["N", 28, 28, 1] and out_dims == ["N", 10]
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["class_names"]) == net.class_names
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 3):
        x = inputs(net, n=n)
        np.testing.assert_allclose(sess.run(None, {"input": x})[0], to_numpy(net.predict(x)), **F32)


@pytest.mark.parametrize("opset", [13, 18, 21])
def test_opsets(opset):
    net = build(
        (7, 7, 2), [Conv2D(3, 3, padding="same"), AvgPool2D(2, padding="same"), GlobalAveragePooling2D()]
    )
    model = neuro_onnx.to_model(net, opset=opset)
    assert model.opset_import[0].version == opset
    assert model.ir_version == onnx.helper.find_min_ir_version_for(list(model.opset_import))
    assert_matches(net, opset=opset)


@pytest.mark.parametrize("opset", [12, 10_000, 17.0, True, "17"])
def test_opset_out_of_range(opset):
    with pytest.raises(ValueError, match="opset must be an integer in"):
        neuro_onnx.to_model(reference_mlp(), opset=opset)


def test_missing_onnx_package_is_a_clear_import_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    msg = r"ONNX export needs the onnx package: pip install 'neuro\[onnx\]'"
    with pytest.raises(ImportError, match=msg):
        neuro_onnx.export(build((3,), [Dense(2)]), tmp_path / "m.onnx")
    with pytest.raises(ImportError, match=msg):
        neuro_onnx.to_model(build((3,), [Dense(2)]))
    assert not (tmp_path / "m.onnx").exists()


# -- what cannot be exported ------------------------------------------------------------------------------
class Doubler(Layer):
    def forward(self, x, training=False, rng=None):
        return 2 * x, (True if training else None)

    def backward(self, grad, ctx):
        return 2 * grad


def test_custom_layer_is_a_clear_error(tmp_path):
    net = build((4,), [Dense(3), Doubler(name="twice"), Dense(2)])
    msg = r"^cannot export layer 1 \(Doubler, name 'twice'\) to ONNX: no converter for Doubler$"
    with pytest.raises(ValueError, match=msg):
        neuro_onnx.export(net, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_subclass_of_a_builtin_layer_is_not_taken_for_it():
    class MyDense(Dense):
        pass

    net = build((4,), [MyDense(3, name="mine")])
    with pytest.raises(ValueError, match=r"layer 0 \(MyDense, name 'mine'\).*no converter for MyDense"):
        neuro_onnx.to_model(net)


def test_custom_activation_inside_dense_is_a_clear_error():
    class Cube(neuro.Activation):
        key = "cube"

        def _f(self, x, inplace):
            return x**3, x

        def backward(self, grad, ctx):
            return 3 * grad * ctx**2

    net = build((4,), [Dense(3), Dense(2, activation=Cube())])
    msg = r"cannot export layer 1 \(Dense, name 'dense_1'\) to ONNX: no converter for its activation Cube"
    with pytest.raises(ValueError, match=msg):
        neuro_onnx.to_model(net)
    net = build((4,), [Dense(3), Cube()])
    with pytest.raises(ValueError, match=r"layer 1 \(Cube, name 'cube'\).*no converter for Cube"):
        neuro_onnx.to_model(net)


def test_network_on_the_strict_device():
    net = reference_mlp().to("strict")
    x = inputs(net)
    ref = to_numpy(net.predict(x))
    np.testing.assert_allclose(run_onnx(net, x), ref, **F32)


def test_empty_network_is_a_clear_error():
    with pytest.raises(ValueError, match="no layers"):
        neuro_onnx.to_model(Network((3,), "mse", "adam"))


# -- scalers ----------------------------------------------------------------------------------------------
def scaled_network(dtype="float32"):
    with dtype_scope(dtype):
        net = build((5,), [Dense(4, "tanh"), Dense(2)])
    rng = np.random.default_rng(9)
    in_scaler = Scaler.fit("standardize", rng.normal(3.0, 2.0, (50, 5)))
    out_scaler = Scaler.fit("normalize", rng.normal(-1.0, 5.0, (50, 2)))
    x = rng.normal(3.0, 2.0, (6, 5)).astype(net.dtype)
    return net, in_scaler, out_scaler, x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scalers_are_part_of_the_graph(dtype):
    net, in_scaler, out_scaler, x = scaled_network(dtype)
    bare = to_numpy(net.predict(in_scaler.transform(x)))
    net.input_scaler, net.output_scaler = in_scaler, out_scaler
    out = assert_matches(net, x)  # predict applies them, and so does the graph
    tol = F64 if dtype == "float64" else {"rtol": 1e-5, "atol": 1e-5}
    np.testing.assert_allclose(out, out_scaler.inverse_transform(bare), **tol)
    np.testing.assert_allclose(run_onnx(net, in_scaler.transform(x), scalers=False), bare, **tol)


def test_only_one_scaler():
    net, in_scaler, out_scaler, x = scaled_network()
    net.input_scaler = in_scaler
    assert_matches(net, x)
    net.input_scaler, net.output_scaler = None, out_scaler
    assert_matches(net, x)


def test_scaler_of_the_wrong_shape_or_kind():
    net, _, _, _ = scaled_network()
    net.output_scaler = Scaler("normalize", np.zeros(3), np.ones(3))
    with pytest.raises(
        ValueError, match=r"output_scaler.*\(3,\) does not end the network's sample shape \(2,\)"
    ):
        neuro_onnx.to_model(net)
    net.output_scaler = object()
    with pytest.raises(
        ValueError, match="cannot export output_scaler .object. to ONNX: expected a neuro.data.Scaler"
    ):
        neuro_onnx.to_model(net)
    with pytest.raises(TypeError, match="scalers must be True or False"):
        neuro_onnx.to_model(net, scalers="omit")


def test_scalers_of_a_model_with_several_inputs_or_outputs_and_an_input_returned():
    """predict scales the input of a model with one input and the output of a model with one output; the
    graph wrote either scaler only with one of each, and returned different numbers silently. A model that
    returns its input failed onnx's checker (the output took the input's name)."""
    rng = np.random.default_rng(3)
    x = neuro.Input((5,), name="x")
    two_out = neuro.Model(x, {"a": Dense(2, name="a")(x), "b": Dense(3, name="b")(x)}, seed=0)
    two_out.input_scaler = Scaler.fit("standardize", rng.normal(3.0, 2.0, (50, 5)))
    u, v = neuro.Input((5,), name="u"), neuro.Input((4,), name="v")
    two_in = neuro.Model([u, v], Dense(2, name="out")(neuro.Concatenate()([u, v])), seed=0)
    two_in.output_scaler = Scaler.fit("normalize", rng.normal(-1.0, 5.0, (50, 2)))
    echo = neuro.Model(x, [x, Dense(2, name="d")(x)], seed=0)
    xs = rng.normal(3.0, 2.0, (6, 5)).astype(np.float32)
    vs = rng.normal(size=(6, 4)).astype(np.float32)
    for model, feed, names, want in (
        (two_out, {"x": xs}, ["a", "b"], two_out.predict(xs)),
        (two_in, {"u": xs, "v": vs}, ["out"], [two_in.predict([xs, vs])]),
        (echo, {"x": xs}, ["x_output", "d"], echo.predict(xs)),
    ):
        onnx_model = neuro_onnx.to_model(model)
        onnx.checker.check_model(onnx_model, full_check=True)
        got = session(onnx_model).run(names, feed)
        want = list(want.values()) if isinstance(want, dict) else want
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, to_numpy(w), **F32)
