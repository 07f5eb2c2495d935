"""One battery for every layer: a table of (layer factory, input shape, PyTorch reference) run through the
same checks. Adding a layer means adding a row to CASES (a layer with several inputs gives a list of shapes).

Checks: output shape; float64 values, input gradients and parameter gradients against PyTorch (autograd of
``Σ y·R`` for a fixed random R); finite-difference gradients of inputs and params (``neuro.check_gradients``);
two training calls then their backwards in reverse order (the gradients add up, each input gradient is its
call's own); inputs and incoming gradients never modified; non-contiguous inputs; inference keeps nothing on
the layer (any attribute, compared deeply); ``need_input_grad=False``; float32 stays float32; config round
trip and save/load inside a model; and the whole forward/backward on the strict stand-in device, equal to
NumPy bitwise and with no host reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import neuro
from neuro import backend, registry
from neuro.functional.conv import same_padding
from neuro.layers import (
    GRU,
    LSTM,
    Add,
    Average,
    AvgPool1D,
    AvgPool2D,
    BatchNorm,
    Bidirectional,
    Concatenate,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPool1D,
    GlobalMaxPooling2D,
    LayerNormalization,
    LeakyReLU,
    Linear,
    Masking,
    Maximum,
    MaxPool1D,
    MaxPool2D,
    Minimum,
    Multiply,
    ReLU,
    Reshape,
    Sigmoid,
    SimpleRNN,
    Softmax,
    Subtract,
    Tanh,
)


@dataclasses.dataclass
class Case:
    id: str
    make: Callable[[], Any]
    input_shape: Any  # one shape, or a list of shapes for a layer with several inputs
    #: torch reference: f(torch, layer, x, params) -> y, with params the layer's params as torch tensors
    ref: Callable[..., Any] | None
    positive: bool = False  # inputs away from kinks (ReLU, max pooling ties) for finite differences
    ids: int = 0  # > 0: the input is integer token ids in [0, ids) (Embedding)
    #: the compiled kernel set sums in another order (Winograd's 3×3 convolution): equal to NumPy's kernels
    #: and the strict stand-in to rounding, not bitwise
    regrouped: bool = False


# -- torch references (channels-last in, channels-last out) --------------------------------------------------
def _nchw(t):
    return t.permute(0, 3, 1, 2)


def _nhwc(t):
    return t.permute(0, 2, 3, 1)


def _act(torch, name, t, layer=None):
    f = torch.nn.functional
    return {
        "linear": lambda: t,
        "relu": lambda: f.relu(t),
        "leaky_relu": lambda: f.leaky_relu(t, layer.alpha if layer is not None else 0.01),
        "sigmoid": lambda: torch.sigmoid(t),
        "tanh": lambda: torch.tanh(t),
        "softmax": lambda: torch.softmax(t, dim=-1),
        "gelu": lambda: f.gelu(t, approximate="tanh" if layer is not None and layer.approximate else "none"),
        "elu": lambda: f.elu(t, layer.alpha if layer is not None else 1.0),
        "selu": lambda: f.selu(t),
        "swish": lambda: f.silu(t),
        "softplus": lambda: f.softplus(t, threshold=40.0),
        "softsign": lambda: f.softsign(t),
        # relu6(x + 3)/6: f.hardsigmoid's backward multiplies by a float32 1/6, off by 3e-8
        "hard_sigmoid": lambda: torch.clamp(t + 3.0, 0.0, 6.0) / 6.0,
        "exponential": lambda: torch.exp(t),
        "mish": lambda: f.mish(t),
    }[name]()


def _pad_same(torch, t, layer, value=0.0):
    """Pad an NCHW tensor as neuro's 'same' does (extra cell at the bottom / right)."""
    h, w = t.shape[2], t.shape[3]
    size = layer.kernel_size if hasattr(layer, "kernel_size") else layer.pool_size
    top, bottom = same_padding(h, size[0], layer.strides[0])
    left, right = same_padding(w, size[1], layer.strides[1])
    return torch.nn.functional.pad(t, (left, right, top, bottom), value=value)


def ref_dense(torch, layer, x, p):
    return _act(torch, layer.activation.key, x @ p["kernel"] + p["bias"], layer.activation)


def ref_conv(torch, layer, x, p):
    t = _nchw(x)
    if layer.padding == "same":
        t = _pad_same(torch, t, layer)
    z = torch.nn.functional.conv2d(t, p["kernel"].permute(3, 2, 0, 1), p["bias"], stride=layer.strides)
    return _act(torch, layer.activation.key, _nhwc(z), layer.activation)


def ref_maxpool(torch, layer, x, p):
    t = _nchw(x)
    if layer.padding == "same":
        t = _pad_same(torch, t, layer, value=-float("inf"))
    return _nhwc(torch.nn.functional.max_pool2d(t, layer.pool_size, layer.strides))


def ref_avgpool(torch, layer, x, p):
    t = _nchw(x)
    f = torch.nn.functional
    if layer.padding == "valid":
        return _nhwc(f.avg_pool2d(t, layer.pool_size, layer.strides))
    ones = torch.ones_like(t[:, :1])
    total = f.avg_pool2d(_pad_same(torch, t, layer), layer.pool_size, layer.strides)
    count = f.avg_pool2d(_pad_same(torch, ones, layer), layer.pool_size, layer.strides)
    return _nhwc(total / count)  # the mean over the cells inside the input only


def ref_gap(torch, layer, x, p):
    return x.mean(dim=(1, 2))


def ref_batchnorm(torch, layer, x, p):
    c = x.shape[-1]
    t = x.reshape(-1, c)
    y = torch.nn.functional.batch_norm(
        t, None, None, p["gamma"], p["beta"], training=True, eps=layer.epsilon
    )
    return y.reshape(x.shape)


def ref_flatten(torch, layer, x, p):
    return x.reshape(x.shape[0], -1)


def ref_gmp(torch, layer, x, p):
    return x.amax(dim=(1, 2))


def ref_reshape(torch, layer, x, p):
    return x.reshape(x.shape[0], *layer.output_shape)


def ref_activation(torch, layer, x, p):
    return _act(torch, layer.key, x, layer)


def _recurrence(torch, layer, x, p, step, n_states):
    """Run a cell written with torch ops over time, as the layer's arguments say (go_backwards,
    return_sequences)."""
    steps = range(x.shape[1] - 1, -1, -1) if layer.go_backwards else range(x.shape[1])
    states = [torch.zeros(x.shape[0], layer.units, dtype=x.dtype) for _ in range(n_states)]
    outs = []
    for t in steps:
        states = step(x[:, t], states)
        outs.append(states[0])
    return torch.stack(outs, dim=1) if layer.return_sequences else outs[-1]


def _bias(p):
    return p.get("bias", 0.0)


def ref_simple_rnn(torch, layer, x, p):
    act = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "linear": lambda a: a}[layer.activation]
    return _recurrence(torch, layer, x, p, lambda xt, s: [act(xt @ p["kernel"] + s[0] @ p["recurrent_kernel"] + _bias(p))], 1)


def ref_lstm(torch, layer, x, p):
    u = layer.units

    def step(xt, s):
        a = xt @ p["kernel"] + s[0] @ p["recurrent_kernel"] + _bias(p)
        i, f = torch.sigmoid(a[:, :u]), torch.sigmoid(a[:, u : 2 * u])
        g, o = torch.tanh(a[:, 2 * u : 3 * u]), torch.sigmoid(a[:, 3 * u :])
        c = f * s[1] + i * g
        return [o * torch.tanh(c), c]

    return _recurrence(torch, layer, x, p, step, 2)


def ref_gru(torch, layer, x, p):
    u = layer.units
    b = p["bias"]

    def step(xt, s):
        h = s[0]
        if layer.reset_after:
            xz = xt @ p["kernel"] + b[0]
            hz = h @ p["recurrent_kernel"] + b[1]
            z, r = torch.sigmoid(xz[:, :u] + hz[:, :u]), torch.sigmoid(xz[:, u : 2 * u] + hz[:, u : 2 * u])
            n = torch.tanh(xz[:, 2 * u :] + r * hz[:, 2 * u :])
        else:
            xz = xt @ p["kernel"] + b
            uz = p["recurrent_kernel"]
            z = torch.sigmoid(xz[:, :u] + h @ uz[:, :u])
            r = torch.sigmoid(xz[:, u : 2 * u] + h @ uz[:, u : 2 * u])
            n = torch.tanh(xz[:, 2 * u :] + (r * h) @ uz[:, 2 * u :])
        return [z * h + (1 - z) * n]

    return _recurrence(torch, layer, x, p, step, 1)


def ref_bidirectional(torch, layer, x, p):
    fw = {k[len("forward_"):]: v for k, v in p.items() if k.startswith("forward_")}
    bw = {k[len("backward_"):]: v for k, v in p.items() if k.startswith("backward_")}
    ref = {"LSTM": ref_lstm, "GRU": ref_gru, "SimpleRNN": ref_simple_rnn}[type(layer.forward_layer).__name__]
    a = ref(torch, layer.forward_layer, x, fw)
    b = ref(torch, layer.backward_layer, x, bw)
    if layer.forward_layer.return_sequences:
        b = torch.flip(b, dims=[1])
    return {"concat": lambda: torch.cat([a, b], dim=-1), "sum": lambda: a + b, "mul": lambda: a * b,
            "ave": lambda: (a + b) / 2}[layer.merge_mode]()


def ref_conv1d(torch, layer, x, p):
    from neuro.functional.sequence import conv1d_pads

    left, right = conv1d_pads(layer.padding, x.shape[1], layer.kernel_size, layer.strides, layer.dilation_rate)
    t = torch.nn.functional.pad(x.permute(0, 2, 1), (left, right))
    z = torch.nn.functional.conv1d(t, p["kernel"].permute(2, 1, 0), p["bias"], stride=layer.strides,
                                   dilation=layer.dilation_rate)
    return _act(torch, layer.activation.key, z.permute(0, 2, 1), layer.activation)


def ref_pool1d(torch, layer, x, p):
    as2d = type("L", (), {"pool_size": (1, layer.pool_size), "strides": (1, layer.strides), "padding": layer.padding})
    x4 = x[:, None]  # (N, 1, T, C): the 2-D references
    ref = ref_maxpool if "Max" in type(layer).__name__ else ref_avgpool
    return ref(torch, as2d, x4, p)[:, 0]


def ref_global_pool1d(torch, layer, x, p):
    return x.max(dim=1).values if "Max" in type(layer).__name__ else x.mean(dim=1)


def ref_layer_norm(torch, layer, x, p):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), p.get("gamma"), p.get("beta"), eps=layer.epsilon)


def ref_embedding(torch, layer, x, p):
    return p["embeddings"][x]


def ref_masking(torch, layer, x, p):
    return x * (x != layer.mask_value).any(dim=-1, keepdim=True)


def ref_merge(torch, layer, xs, p):
    kind = type(layer).__name__
    if kind == "Add":
        return sum(xs[1:], xs[0])
    if kind == "Subtract":
        return xs[0] - xs[1]
    if kind == "Multiply":
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out
    if kind == "Average":
        return sum(xs[1:], xs[0]) / len(xs)
    if kind == "Maximum":
        return torch.stack(xs).max(dim=0).values
    if kind == "Minimum":
        return torch.stack(xs).min(dim=0).values
    return torch.cat(xs, dim=layer.axis)


CASES = [
    Case("dense_tanh", lambda: Dense(5, "tanh"), (7,), ref_dense),
    Case("dense_linear", lambda: Dense(3), (4,), ref_dense),
    Case("dense_softmax", lambda: Dense(4, "softmax", kernel_initializer="glorot_normal"), (6,), ref_dense),
    Case("conv_valid", lambda: Conv2D(3, 3, activation="sigmoid"), (6, 5, 2), ref_conv),
    Case("conv_same_stride2", lambda: Conv2D(4, (3, 2), strides=2, padding="same"), (7, 6, 3), ref_conv),
    Case("conv_1x1", lambda: Conv2D(2, 1), (3, 3, 4), ref_conv),
    Case("conv_same_leaky", lambda: Conv2D(2, 3, padding="same", activation=LeakyReLU(0.2)), (5, 5, 1),
         ref_conv, positive=True),
    # the compiled window copy (8 channels or more; not 3×3 of stride 1, which is Winograd's)
    Case("conv_stride2_8ch", lambda: Conv2D(4, (3, 2), strides=2, padding="same", activation="relu"), (7, 6, 8),
         ref_conv),
    Case("conv_same_5x4_8ch", lambda: Conv2D(3, (5, 4), padding="same", activation="relu"), (5, 6, 8), ref_conv),
    # 3×3 of stride 1 on 8 channels or more: Winograd's F(2×2, 3×3) under the compiled kernels
    Case("conv_winograd_same", lambda: Conv2D(5, 3, padding="same", activation="tanh"), (6, 5, 8), ref_conv,
         regrouped=True),
    Case("conv_winograd_valid", lambda: Conv2D(9, 3, activation="sigmoid"), (7, 4, 10), ref_conv, regrouped=True),
    Case("maxpool_2x2", lambda: MaxPool2D(2), (6, 4, 3), ref_maxpool),
    Case("maxpool_overlap", lambda: MaxPool2D(3, strides=2), (7, 7, 2), ref_maxpool),
    Case("maxpool_same_odd", lambda: MaxPool2D(2, padding="same"), (5, 3, 2), ref_maxpool),
    Case("maxpool_same_stride1", lambda: MaxPool2D(3, strides=1, padding="same"), (4, 4, 1), ref_maxpool),
    Case("avgpool_2x2", lambda: AvgPool2D(2), (4, 6, 3), ref_avgpool),
    Case("avgpool_overlap", lambda: AvgPool2D((3, 2), strides=(2, 1)), (7, 5, 2), ref_avgpool),
    Case("avgpool_same_odd", lambda: AvgPool2D(2, padding="same"), (5, 3, 2), ref_avgpool),
    Case("avgpool_same_stride1", lambda: AvgPool2D(3, strides=1, padding="same"), (4, 5, 2), ref_avgpool),
    Case("global_avg_pool", lambda: GlobalAveragePooling2D(), (3, 4, 5), ref_gap),
    Case("global_max_pool", lambda: GlobalMaxPooling2D(), (3, 4, 5), ref_gmp),
    Case("batchnorm_dense", lambda: BatchNorm(), (6,), ref_batchnorm),
    Case("batchnorm_conv", lambda: BatchNorm(momentum=0.9, epsilon=1e-3), (3, 4, 2), ref_batchnorm),
    Case("batchnorm_sequence", lambda: BatchNorm(momentum=0.9), (5, 3), ref_batchnorm),
    Case("dropout", lambda: Dropout(0.3), (10,), None),
    Case("flatten", lambda: Flatten(), (3, 2, 4), ref_flatten),
    Case("reshape", lambda: Reshape((4, -1)), (3, 2, 4), ref_reshape),
    Case("reshape_to_image", lambda: Reshape((2, 3, 2)), (12,), ref_reshape),
    Case("relu", lambda: ReLU(), (9,), ref_activation, positive=True),
    Case("leaky_relu", lambda: LeakyReLU(0.1), (9,), ref_activation, positive=True),
    Case("sigmoid", lambda: Sigmoid(), (9,), ref_activation),
    Case("tanh", lambda: Tanh(), (3, 3), ref_activation),
    Case("softmax", lambda: Softmax(), (6,), ref_activation),
    Case("linear", lambda: Linear(), (5,), ref_activation),
    Case("gelu", lambda: neuro.activations.GELU(), (9,), ref_activation),
    Case("gelu_tanh", lambda: neuro.activations.GELU(approximate=True), (3, 3), ref_activation),
    Case("elu", lambda: neuro.activations.ELU(0.5), (9,), ref_activation),
    Case("selu", lambda: neuro.activations.SELU(), (9,), ref_activation),
    Case("swish", lambda: neuro.activations.Swish(), (3, 3), ref_activation),
    Case("softplus", lambda: neuro.activations.Softplus(), (9,), ref_activation),
    Case("softsign", lambda: neuro.activations.Softsign(), (9,), ref_activation),
    Case("hard_sigmoid", lambda: neuro.activations.HardSigmoid(), (9,), ref_activation),
    Case("exponential", lambda: neuro.activations.Exponential(), (9,), ref_activation),
    Case("mish", lambda: neuro.activations.Mish(), (2, 4), ref_activation),
    Case("dense_gelu", lambda: Dense(4, "gelu"), (5,), ref_dense),
    Case("dense_on_sequences", lambda: Dense(3, "tanh"), (4, 5), ref_dense),
    Case("add", lambda: Add(), [(3, 4), (3, 4), (3, 4)], ref_merge),
    Case("subtract", lambda: Subtract(), [(5,), (5,)], ref_merge),
    Case("multiply", lambda: Multiply(), [(2, 3), (2, 3), (2, 3)], ref_merge),
    Case("average", lambda: Average(), [(4,), (4,)], ref_merge),
    Case("maximum", lambda: Maximum(), [(6,), (6,), (6,)], ref_merge),
    Case("minimum", lambda: Minimum(), [(3, 2), (3, 2)], ref_merge),
    Case("concatenate", lambda: Concatenate(), [(2, 3), (2, 1), (2, 4)], ref_merge),
    Case("concatenate_axis1", lambda: Concatenate(axis=1), [(2, 3), (1, 3)], ref_merge),
    Case("simple_rnn", lambda: SimpleRNN(4), (5, 3), ref_simple_rnn),
    Case("simple_rnn_relu_seq", lambda: SimpleRNN(3, activation="relu", return_sequences=True), (4, 2),
         ref_simple_rnn, positive=True),
    Case("lstm_seq", lambda: LSTM(4, return_sequences=True), (5, 3), ref_lstm),
    Case("lstm_backwards", lambda: LSTM(3, go_backwards=True, unit_forget_bias=False), (4, 2), ref_lstm),
    Case("gru_seq", lambda: GRU(4, return_sequences=True), (5, 3), ref_gru),
    Case("gru_v1_backwards", lambda: GRU(3, reset_after=False, go_backwards=True, return_sequences=True), (4, 2),
         ref_gru),
    Case("bidirectional_lstm", lambda: Bidirectional(LSTM(3, return_sequences=True)), (4, 2), ref_bidirectional),
    Case("bidirectional_gru_sum", lambda: Bidirectional(GRU(3), merge_mode="sum"), (4, 2), ref_bidirectional),
    Case("conv1d_valid", lambda: Conv1D(3, 3, activation="tanh"), (7, 2), ref_conv1d),
    Case("conv1d_same_stride", lambda: Conv1D(2, 4, strides=2, padding="same"), (9, 3), ref_conv1d),
    Case("conv1d_causal_dilated", lambda: Conv1D(2, 3, padding="causal", dilation_rate=2), (8, 2), ref_conv1d),
    Case("maxpool1d", lambda: MaxPool1D(2), (6, 3), ref_pool1d),
    Case("avgpool1d_same", lambda: AvgPool1D(3, strides=2, padding="same"), (7, 2), ref_pool1d),
    Case("global_maxpool1d", lambda: GlobalMaxPool1D(), (5, 3), ref_global_pool1d),
    Case("global_avgpool1d", lambda: GlobalAveragePooling1D(), (5, 3), ref_global_pool1d),
    Case("layer_norm", lambda: LayerNormalization(epsilon=1e-3), (3, 5), ref_layer_norm),
    Case("layer_norm_unscaled", lambda: LayerNormalization(scale=False), (6,), ref_layer_norm),
    Case("masking", lambda: Masking(), (4, 3), ref_masking),
    Case("embedding", lambda: Embedding(7, 3), (5,), ref_embedding, ids=7),
]

IDS = [c.id for c in CASES]
BATCH = 5


def _multi(case: Case) -> bool:
    return isinstance(case.input_shape, list)


def _input(case: Case, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    shapes = case.input_shape if _multi(case) else [case.input_shape]
    xs = []
    if case.ids:
        return rng.integers(0, case.ids, (BATCH, *case.input_shape))
    for shape in shapes:
        x = rng.standard_normal((BATCH, *shape))
        if case.positive:  # keep values away from 0 so that finite differences never cross a kink
            x = np.where(x >= 0, x + 0.1, x - 0.1)
        xs.append(x.astype(dtype))
    return xs if _multi(case) else xs[0]


def _items(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _built(case: Case, dtype=np.float64, xp=np, seed=0):
    layer = case.make()
    layer.build(case.input_shape, np.random.default_rng(seed), dtype, xp)
    # non-trivial BatchNorm parameters and buffers
    if isinstance(layer, BatchNorm):
        rng = np.random.default_rng(seed + 1)
        for store in (layer.params, layer.buffers):
            for k in store:
                store[k][...] = backend.to_device(rng.uniform(0.5, 1.5, store[k].shape).astype(dtype), xp)
    return layer


def _rng(xp=np, seed=3):
    return backend.DeviceRNG(xp, np.random.default_rng(seed))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_output_shape(case):
    layer = _built(case)
    y, ctx = layer.forward(_input(case), training=True, rng=_rng())
    assert y.shape == (BATCH, *layer.output_shape) == (BATCH, *layer.compute_output_shape(case.input_shape))
    assert ctx is not None


@pytest.mark.parametrize("case", [c for c in CASES if c.ref is not None], ids=[c.id for c in CASES if c.ref])
def test_values_and_gradients_match_pytorch(case, torch):
    layer = _built(case)
    x = _input(case)
    y, ctx = layer.forward(x, training=True, rng=_rng())
    r = np.random.default_rng(9).standard_normal(y.shape)
    dx = layer.backward(r, ctx)
    txs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in _items(x)]
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in layer.params.items()}
    ty = case.ref(torch, layer, txs if _multi(case) else txs[0], tp)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    (ty * torch.tensor(r)).sum().backward()
    if case.ids:  # token ids have no gradient
        assert dx is None
    else:
        for d, t in zip(_items(dx), txs, strict=True):
            np.testing.assert_allclose(d, t.grad.numpy(), rtol=1e-9, atol=1e-11)
    for k, t in tp.items():
        np.testing.assert_allclose(layer.grads[k], t.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=k)


def test_dropout_values():
    layer = _built(next(c for c in CASES if c.id == "dropout"))
    x = _input(CASES[IDS.index("dropout")])
    y, mask = layer.forward(x, training=True, rng=_rng())
    u = np.random.default_rng(3).random(x.shape)  # the numbers the generator gives
    expected_mask = (u >= 0.3) / 0.7
    np.testing.assert_allclose(y, x * expected_mask, rtol=1e-15)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x), mask), expected_mask)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_finite_difference_gradients(case):
    layer = _built(case)
    report = neuro.check_gradients(layer, _input(case), max_entries=60)
    assert report.max_error < 1e-6, report
    inputs = {"input"} if not _multi(case) else {f"input{i}" for i in range(len(case.input_shape))}
    if case.ids:
        inputs = set()
    assert inputs | set(layer.params) <= set(report.errors)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_inference_keeps_nothing(case, assert_unchanged):
    layer = _built(case)
    x = _input(case)
    _, ctx = layer.forward(x, training=True, rng=_rng())  # a training step first: scratch may exist
    layer.backward(np.ones_like(layer.forward(x)[0]), ctx)
    with assert_unchanged(layer):  # every attribute, compared deeply (arrays bit for bit)
        y, none = layer.forward(x)
        np.testing.assert_array_equal(layer(x), y)
    assert none is None
    with pytest.raises(RuntimeError, match=r"needs the context returned by forward\(x, training=True\)"):
        layer.backward(np.ones_like(y), None)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_two_calls_then_backwards_in_reverse_order(case):
    """A shared layer: two training forwards, then the backwards in reverse order. The parameter gradients
    are the sum of the two calls', and each call's input gradient is its own (no scratch shared between
    the two contexts)."""
    x1, x2 = _input(case, seed=0), _input(case, seed=1)
    r1 = np.random.default_rng(5).standard_normal((BATCH, *_out_shape(case)))
    r2 = np.random.default_rng(6).standard_normal(r1.shape)
    single = []
    for x, r in ((x1, r1), (x2, r2)):
        layer = _built(case)
        _, ctx = layer.forward(x, training=True, rng=_rng())
        dx = layer.backward(r, ctx)
        single.append((dx, {k: g.copy() for k, g in layer.grads.items()}))
    layer = _built(case)
    _, ctx1 = layer.forward(x1, training=True, rng=_rng())
    _, ctx2 = layer.forward(x2, training=True, rng=_rng())
    layer.clear_grads()
    dx2 = layer.backward(r2, ctx2)
    dx1 = layer.backward(r1, ctx1)
    for got, want in ((dx1, single[0][0]), (dx2, single[1][0])):
        for g, w in zip(_items(got), _items(want), strict=True):
            if w is None:
                assert g is None
                continue
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g, single[0][1][k] + single[1][1][k], rtol=1e-12, atol=1e-13, err_msg=k)


def _out_shape(case: Case):
    return tuple(case.make().compute_output_shape(case.input_shape))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_inputs_and_gradients_are_never_modified_and_views_are_fine(case):
    layer = _built(case)
    x = _input(case)
    copies = [a.copy() for a in _items(x)]
    y, ctx = layer.forward(x, training=True, rng=_rng())
    g = np.random.default_rng(2).standard_normal(y.shape)
    g_copy = g.copy()
    dx = layer.backward(g, ctx)
    layer(x)
    for a, c in zip(_items(x), copies, strict=True):
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(g, g_copy)
    # the same values as non-contiguous views (every other row of a larger array, last axis reversed twice)
    views = []
    for a in _items(x):
        big = np.zeros((2 * len(a), *a.shape[1:]), dtype=a.dtype)
        big[::2] = a
        views.append(big[::2])
    assert not views[0].flags.c_contiguous
    fresh = _built(case)
    y2, ctx2 = fresh.forward(views if _multi(case) else views[0], training=True, rng=_rng())
    dx2 = fresh.backward(g[::1].copy(), ctx2)
    np.testing.assert_array_equal(y2, y)
    for u, v in zip(_items(dx2), _items(dx), strict=True):
        if v is None:
            assert u is None
            continue
        np.testing.assert_array_equal(u, v)
    for k in layer.grads:
        np.testing.assert_allclose(fresh.grads[k], layer.grads[k], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("case", [c for c in CASES if not isinstance(c.make(), neuro.Activation)],
                         ids=[c.id for c in CASES if not isinstance(c.make(), neuro.Activation)])
def test_need_input_grad_false(case):
    layer = _built(case)
    x = _input(case)
    y, ctx = layer.forward(x, training=True, rng=_rng())
    layer.backward(np.ones_like(y), ctx)
    expected = {k: g.copy() for k, g in layer.grads.items()}
    layer.need_input_grad = False
    y, ctx = layer.forward(x, training=True, rng=_rng())
    layer.clear_grads()
    assert layer.backward(np.ones_like(y), ctx) is None
    for k, g in expected.items():
        np.testing.assert_array_equal(layer.grads[k], g)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_stays_float32(case):
    layer = _built(case, np.float32)
    x = _input(case, np.float32)
    y, ctx = layer.forward(x, training=True, rng=_rng())
    assert y.dtype == np.float32
    assert layer(x).dtype == np.float32
    dx = layer.backward(np.ones_like(y), ctx)
    assert all(d is None or d.dtype == np.float32 for d in _items(dx))
    assert all(a.dtype == np.float32 for s in (layer.params, layer.grads, layer.buffers) for a in s.values())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_config_round_trip(case):
    layer = case.make()
    cfg = layer.get_config()
    assert type(layer).from_config(cfg).get_config() == cfg
    spec = registry.serialize(layer)
    again = registry.deserialize("layer", spec)
    assert type(again) is type(layer) and again.get_config() == cfg
    import json

    assert json.loads(json.dumps(spec)) == spec  # plain JSON values


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_save_load_round_trip(case, tmp_path):
    shapes = case.input_shape if _multi(case) else [case.input_shape]
    ins = [neuro.Input(shape, dtype="int64" if case.ids else None) for shape in shapes]
    h = case.make()(ins if _multi(case) else ins[0])
    if h.masked:  # a sequence with a mask: pooled over its valid steps
        h = GlobalAveragePooling1D()(h)
    elif len(h.sample_shape) > 1:
        h = Flatten()(h)
    model = neuro.Model(ins, Dense(2)(h), loss="mse", optimizer="sgd", seed=0)
    x = _input(case, np.float32)
    model.fit(x, np.zeros((BATCH, 2)), batch_size=2, epochs=1, verbose=0)
    model.save(tmp_path / "m.h5")
    loaded = neuro.Model.load(tmp_path / "m.h5")
    assert [type(a) for a in loaded.layers] == [type(a) for a in model.layers]
    assert [a.get_config() for a in loaded.layers] == [a.get_config() for a in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strict_device_equals_numpy_without_host_reads(case, dtype):
    strict = backend.get_device("strict")
    host = _built(case, dtype, np)
    dev = _built(case, dtype, strict)
    x = _input(case, dtype)
    y, ctx = host.forward(x, training=True, rng=_rng())
    r = np.random.default_rng(9).standard_normal(y.shape).astype(dtype)
    dx = host.backward(r, ctx)
    reads = backend.host_reads()
    xd = [backend.to_device(a, strict) for a in _items(x)]
    xd = xd if _multi(case) else xd[0]
    rd = backend.to_device(r, strict)
    yd, ctxd = dev.forward(xd, training=True, rng=_rng(strict))
    dxd = dev.backward(rd, ctxd)
    yi = dev(xd)
    assert backend.host_reads() == reads, "a forward or backward read from the device"
    same = _same_as_numpy_kernels(case, dtype)
    same(backend.to_numpy(yd), y)
    for u, v in zip(_items(dxd), _items(dx), strict=True):
        if v is None:
            assert u is None
            continue
        same(backend.to_numpy(u), v)
    same(backend.to_numpy(yi), host(x))
    for k in host.params:
        same(backend.to_numpy(dev.grads[k]), host.grads[k])
    for k in host.buffers:
        same(backend.to_numpy(dev.buffers[k]), host.buffers[k])


def _same_as_numpy_kernels(case, dtype):
    """The check that a result of the NumPy kernels (or the strict stand-in, which runs them) equals the
    host's: bitwise, or for a case the compiled kernels sum in another order, to its rounding (with the NumPy
    kernels on the host, bitwise too)."""
    if not case.regrouped or backend.get_kernels() != "numba":
        return np.testing.assert_array_equal
    tol = 1e-12 if dtype == np.float64 else 2e-5
    return lambda a, b: np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# -- kernel sets ------------------------------------------------------------------------------------------
@pytest.fixture
def kernel_sets():
    """Runs a function under each kernel set; restores the choice afterwards."""
    pytest.importorskip("numba")
    before = backend._kernel_request

    def run(fn):
        out = {}
        for name in ("numpy", "numba"):
            backend.set_kernels(name)
            out[name] = fn()
        return out

    yield run
    backend._kernel_request = before
    backend._kernels_on = None


def _forward_backward(case, dtype):
    layer = _built(case, dtype)
    x = _input(case, dtype)
    y, ctx = layer.forward(x, training=True, rng=_rng())
    r = np.random.default_rng(9).standard_normal(y.shape).astype(dtype)
    dx = layer.backward(r, ctx)
    return [y, *_items(dx), layer(x), *layer.grads.values(), *layer.buffers.values()]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_kernels_equal_numpy_kernels(case, dtype, kernel_sets):
    """Every layer gives bitwise the same values, gradients and buffers with numba's kernels as with
    NumPy's (the kernels do the same operations in the same order)."""
    found = kernel_sets(lambda: _forward_backward(case, dtype))
    for a, b in zip(found["numba"], found["numpy"], strict=True):
        if b is None:
            assert a is None
            continue
        if case.regrouped:  # Winograd's sums: to rounding, and not bitwise (else the case tests nothing)
            tol = 1e-12 if dtype == np.float64 else 2e-5
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
        else:
            np.testing.assert_array_equal(a, b)
    if case.regrouped:
        assert not np.array_equal(found["numba"][0], found["numpy"][0])
