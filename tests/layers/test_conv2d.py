"""Conv2D: shapes, errors, finite-difference gradients and equivalence with PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuro import functional, registry
from neuro.functional import conv as conv_functional
from neuro.gradcheck import check_gradients
from neuro.layers.conv2d import Conv2D


def max_rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def assert_gradients(layer, x: np.ndarray) -> None:
    """Input and parameter gradients against central differences (every entry), in float64."""
    report = check_gradients(layer, x, max_entries=None)
    assert report.max_error < 1e-6, report


CONFIGS = [  # kernel, stride, padding
    ((3, 3), (1, 1), "valid"),
    ((3, 3), (1, 1), "same"),
    ((3, 2), (1, 1), "valid"),
    ((3, 2), (1, 1), "same"),
    ((3, 3), (2, 2), "valid"),
    ((3, 3), (2, 2), "same"),
    ((2, 3), (2, 1), "same"),
    ((4, 4), (2, 3), "same"),
    ((1, 1), (1, 1), "valid"),
]


@pytest.mark.parametrize("kernel,stride,padding", CONFIGS)
def test_finite_difference_gradients(float64, rng, kernel, stride, padding):
    layer = Conv2D(4, kernel, stride, padding, activation=None, bias_initializer="uniform")
    layer.build((7, 9, 3), rng)
    assert_gradients(layer, rng.standard_normal((2, 7, 9, 3)))


def test_finite_difference_gradients_with_activation(float64, rng):
    layer = Conv2D(3, 3, 2, "same", activation="tanh")
    layer.build((6, 5, 2), rng)
    assert_gradients(layer, rng.standard_normal((2, 6, 5, 2)))


@pytest.mark.parametrize("h,w", [(7, 9), (8, 8), (5, 4)])
@pytest.mark.parametrize("kernel,stride,padding", CONFIGS)
def test_output_shape(rng, h, w, kernel, stride, padding):
    layer = Conv2D(5, kernel, stride, padding)
    layer.build((h, w, 2), rng)
    if padding == "same":
        expected = (math.ceil(h / stride[0]), math.ceil(w / stride[1]), 5)
    else:
        expected = ((h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1, 5)
    assert layer.output_shape == expected
    y = layer(rng.standard_normal((3, h, w, 2)).astype(np.float32))
    assert y.shape == (3, *expected)
    assert y.dtype == np.float32
    assert layer.params["kernel"].shape == (*kernel, 2, 5)
    assert layer.params["bias"].shape == (5,)


def to_torch_conv(torch, layer: Conv2D, x: np.ndarray):
    """Run the same convolution in PyTorch (NCHW), with explicit (possibly asymmetric) padding."""
    tf = torch.nn.functional
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    wt = torch.tensor(layer.params["kernel"].transpose(3, 2, 0, 1), requires_grad=True)
    bt = torch.tensor(layer.params["bias"], requires_grad=True)
    top, bottom, left, right = functional.paddings(
        layer.padding, x.shape[1], x.shape[2], layer.kernel_size, layer.strides
    )
    yt = tf.conv2d(tf.pad(xt, (left, right, top, bottom)), wt, bt, stride=layer.strides)
    return xt, wt, bt, yt


@pytest.mark.parametrize("kernel,stride,padding", CONFIGS)
def test_matches_torch(float64, rng, torch, kernel, stride, padding):
    layer = Conv2D(6, kernel, stride, padding, activation=None, bias_initializer="uniform")
    layer.build((8, 7, 3), rng)
    x = rng.standard_normal((4, 8, 7, 3))
    y, ctx = layer.forward(x, training=True)
    g = rng.standard_normal(y.shape)
    dx = layer.backward(g, ctx)
    xt, wt, bt, yt = to_torch_conv(torch, layer, x)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    assert max_rel_err(y, yt.detach().numpy().transpose(0, 2, 3, 1)) < 1e-10
    assert max_rel_err(dx, xt.grad.numpy().transpose(0, 2, 3, 1)) < 1e-10
    assert max_rel_err(layer.grads["kernel"], wt.grad.numpy().transpose(2, 3, 1, 0)) < 1e-10
    assert max_rel_err(layer.grads["bias"], bt.grad.numpy()) < 1e-10


def test_same_padding_is_asymmetric_like_keras(float64, rng):
    assert functional.paddings("same", 8, 7, (3, 3), (2, 2)) == (0, 1, 1, 1)  # total 1 → extra row at the bottom
    assert functional.paddings("same", 5, 5, (4, 2), (1, 1)) == (1, 2, 0, 1)
    assert conv_functional.same_padding(8, 3, 2) == (0, 1)
    # observable on the layer: a 3×3 stride-2 "same" convolution of an 8×7 image with a kernel that only
    # reads its centre and its bottom-right cell sees padding below and right but not above
    layer = Conv2D(1, 3, 2, "same")
    layer.build((8, 7, 1), rng)
    layer.params["kernel"][...] = 0.0
    layer.params["kernel"][2, 2, 0, 0] = 1.0
    x = np.arange(1.0, 57.0).reshape(1, 8, 7, 1)
    y = layer(x)[0, :, :, 0]
    padded = np.pad(x[0, :, :, 0], ((0, 1), (1, 1)))  # top 0, bottom 1, left 1, right 1
    np.testing.assert_array_equal(y, padded[2::2, 2::2][:4, :4])


def test_linear_default_and_skip_input_grad(rng):
    layer = Conv2D(3, 3, padding="same")
    assert layer.activation.key == "linear"  # as Keras: an output layer never clips silently
    layer.build((5, 5, 2), rng)
    x = rng.standard_normal((2, 5, 5, 2)).astype(np.float32)
    y, ctx = layer.forward(x, training=True)
    assert (y < 0).any()
    dx = layer.backward(np.ones_like(y), ctx)
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert layer.grads["kernel"].dtype == np.float32
    layer.need_input_grad = False
    _, ctx = layer.forward(x, training=True)
    assert layer.backward(np.ones_like(y), ctx) is None


def test_inference_keeps_no_context(rng, assert_unchanged):
    layer = Conv2D(3, 3)
    layer.build((5, 5, 2), rng)
    x = rng.standard_normal((2, 5, 5, 2)).astype(np.float32)
    y_train, _ = layer.forward(x, training=True)
    with assert_unchanged(layer):  # params, grads and the training scratch space are left alone
        y, ctx = layer.forward(x)
        np.testing.assert_array_equal(layer(x), y)
        z, affine_ctx = layer.affine_forward(x)
    assert ctx is None and affine_ctx is None
    np.testing.assert_allclose(y, y_train, rtol=1e-6)
    np.testing.assert_array_equal(z, y)  # linear activation
    with pytest.raises(RuntimeError, match=r"needs the context returned by forward\(x, training=True\)"):
        layer.backward(np.ones((2, 3, 3, 3), np.float32), ctx)
    with pytest.raises(RuntimeError, match=r"needs the context returned by forward\(x, training=True\)"):
        layer.affine_backward(np.ones((2, 3, 3, 3), np.float32), affine_ctx)


@pytest.mark.parametrize(
    "kwargs,arg",
    [
        ({"filters": 0, "kernel_size": 3}, "filters"),
        ({"filters": 2.5, "kernel_size": 3}, "filters"),
        ({"filters": 2, "kernel_size": 0}, "kernel_size"),
        ({"filters": 2, "kernel_size": (3, -1)}, "kernel_size"),
        ({"filters": 2, "kernel_size": (3, 3, 3)}, "kernel_size"),
        ({"filters": 2, "kernel_size": "3"}, "kernel_size"),
        ({"filters": 2, "kernel_size": 3, "strides": 0}, "strides"),
        ({"filters": 2, "kernel_size": 3, "strides": (1, 1.5)}, "strides"),
        ({"filters": 2, "kernel_size": 3, "padding": "full"}, "padding"),
    ],
)
def test_constructor_errors(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        Conv2D(**kwargs)


@pytest.mark.parametrize(
    "layer,shape,arg",
    [
        (Conv2D(2, (3, 5)), (4, 4, 1), r"kernel_size \(3, 5\).*\(4, 4\)"),
        (Conv2D(2, 3), (28, 28), r"input_shape=\(28, 28\)"),
        (Conv2D(2, 3), (1, 28, 28, 1), "input_shape"),
        (Conv2D(2, 3), (0, 28, 1), "input_shape"),
    ],
)
def test_build_errors(rng, layer, shape, arg):
    with pytest.raises(ValueError, match=arg):
        layer.build(shape, rng)


def test_same_allows_kernel_larger_than_input(rng):
    layer = Conv2D(2, 5, padding="same")
    layer.build((3, 2, 1), rng)
    assert layer.output_shape == (3, 2, 2)


def test_config_round_trip():
    layer = Conv2D(8, (3, 2), 2, "same", activation="tanh")
    cfg = layer.get_config()
    assert cfg["kernel_size"] == [3, 2] and cfg["strides"] == [2, 2] and cfg["padding"] == "same"
    assert cfg["activation"] == {"class": "Tanh", "config": {}}
    assert Conv2D.from_config(cfg).get_config() == cfg
    assert registry.deserialize("layer", registry.serialize(layer)).get_config() == cfg
    cfg.pop("name")
    again = Conv2D(**cfg)
    assert again.get_config() == layer.get_config() | {"name": again.name}


def test_small_cnn_network_gradients(float64, rng):
    """Every CNN layer inside a Network: whole-network gradients (dropout masks rewound)."""
    from neuro import BatchNorm, Dense, Dropout, Flatten, MaxPool2D, Network

    net = Network((7, 6, 2), "softmax_crossentropy", "sgd", seed=0)
    net.add(Conv2D(3, 3, padding="same", activation="tanh", bias_initializer="uniform"))
    net.add(BatchNorm()).add(Conv2D(4, (2, 3), 2, "same", activation="tanh"))
    net.add(MaxPool2D(2, 1)).add(Dropout(0.3)).add(Flatten()).add(Dense(5, "softmax"))
    assert net.layers[0].need_input_grad is False
    x, y = rng.standard_normal((6, 7, 6, 2)), rng.integers(0, 5, size=6)
    report = check_gradients(net, x, y, max_entries=None)
    assert report.max_error < 1e-6, report


@pytest.mark.parametrize(("padding", "stride"), [("same", 1), ("valid", 2), ("same", 2)])
def test_inference_in_sample_chunks_matches_one_pass(monkeypatch, padding, stride):
    rng = np.random.default_rng(5)
    layer = Conv2D(4, (3, 2), strides=stride, padding=padding, activation="tanh")
    layer.build((7, 9, 3), rng)
    x = rng.standard_normal((11, 7, 9, 3)).astype(np.float32)
    whole = layer(x)
    monkeypatch.setattr(conv_functional, "INFERENCE_CHUNK", 3 * 7 * 9 * 6)  # a few samples a chunk
    chunked = layer(x)
    np.testing.assert_array_equal(chunked, whole)
    # training after chunked inference still matches a fresh forward
    np.testing.assert_allclose(layer.forward(x, training=True)[0], whole, rtol=1e-6)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize(("padding", "stride", "need_input_grad"), [("same", 1, True), ("valid", 2, True), ("same", 2, False)])
def test_training_in_pieces_of_samples_matches_one_window_matrix(float64, monkeypatch, kernels, padding, stride, need_input_grad):
    """Training on the CPU builds the window matrix a few samples at a time (the backward builds each piece
    again): the output, dL/dx, dL/dW and dL/db equal the one-matrix pass to rounding (the same rows and
    sums, dL/dW added piece by piece); finite differences hold, and threads change nothing."""
    from neuro import backend

    if kernels == "numba":
        pytest.importorskip("numba")
    monkeypatch.setattr(backend, "_kernel_request", kernels)
    monkeypatch.setattr(backend, "_kernels_on", None)
    rng = np.random.default_rng(6)

    def run(chunk, threads=1):
        monkeypatch.setattr(conv_functional, "TRAIN_CHUNK", chunk)
        monkeypatch.setattr(conv_functional, "TRAIN_PIECE", chunk)
        monkeypatch.setattr(backend, "MIN_PARALLEL_ELEMENTS", 0)
        before = backend.get_num_threads()
        backend._resize(threads)
        try:
            layer = Conv2D(4, (3, 2), strides=stride, padding=padding)
            layer.build((7, 9, 3), np.random.default_rng(5))
            layer.need_input_grad = need_input_grad
            x = np.random.default_rng(1).standard_normal((11, 7, 9, 3))
            z, ctx = layer.forward(x, training=True)
            g = np.random.default_rng(2).standard_normal(z.shape)
            layer.grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
            dx = layer.backward(g, ctx)
            return z, dx, {k: v.copy() for k, v in layer.grads.items()}, ctx
        finally:
            backend._resize(before)

    z1, dx1, g1, ctx1 = run(1 << 30)
    assert ctx1[0][4] is None  # one window matrix
    z2, dx2, g2, ctx2 = run(3 * 7 * 9 * 6)  # a few samples a piece, a shorter last piece
    assert ctx2[0][4] is not None and ctx2[0][4][1] < 11
    # the same sums, though not always bitwise: a BLAS may sum a product's entries in an order that depends
    # on its row count (OpenBLAS on an AMD EPYC does for float64)
    np.testing.assert_allclose(z2, z1, rtol=1e-13, atol=1e-14)
    if need_input_grad:
        np.testing.assert_allclose(dx2, dx1, rtol=1e-13, atol=1e-14)
    else:
        assert dx1 is None and dx2 is None
    for k in g1:
        np.testing.assert_allclose(g2[k], g1[k], rtol=1e-12, atol=1e-12)
    z3, dx3, g3, _ = run(3 * 7 * 9 * 6, threads=3)  # the same pieces on three threads: bitwise the same
    np.testing.assert_array_equal(z3, z2)
    if need_input_grad:
        np.testing.assert_array_equal(dx3, dx2)
    for k in g1:
        np.testing.assert_array_equal(g3[k], g2[k])
    monkeypatch.setattr(conv_functional, "TRAIN_CHUNK", 3 * 7 * 9 * 6)
    monkeypatch.setattr(conv_functional, "TRAIN_PIECE", 3 * 7 * 9 * 6)
    layer = Conv2D(4, (3, 2), strides=stride, padding=padding)
    layer.build((7, 9, 3), rng)
    assert_gradients(layer, rng.standard_normal((5, 7, 9, 3)))


def test_training_keeps_a_small_window_matrix_and_cuts_a_large_one_into_cache_sized_pieces():
    """The CPU keeps a window matrix of at most TRAIN_CHUNK entries whole (an image's first layer: 128 samples
    of 28×28 windows of 3×3×1), and builds a larger one in pieces of whole samples of at most TRAIN_PIECE
    entries, at least one sample (a sample of 32×32 windows of 3×3×16 is already larger)."""
    step = conv_functional._train_step
    assert step(np, 128, 28 * 28 * 9, 3, 3, 1, 1) == 128
    assert step(np, 129, conv_functional.TRAIN_CHUNK // 128, 3, 3, 1, 1) == conv_functional.TRAIN_PIECE // (
        conv_functional.TRAIN_CHUNK // 128
    )
    assert step(np, 128, 32 * 32 * 9 * 16, 3, 3, 1, 1) == 1
    assert step(np, 128, 1000, 3, 3, 1, 1) == 128  # 128,000 entries: whole
    assert step(np, 2000, 1000, 3, 3, 1, 1) == conv_functional.TRAIN_PIECE // 1000
    assert step(np, 2000, 1000, 1, 1, 1, 1) == 2000  # 1×1: the input itself, never copied


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_an_activation_applied_to_each_training_piece_equals_the_activation_after(float64, monkeypatch, kernels, activation):
    """In the CPU's training pieces, ReLU / Tanh / Sigmoid are applied to each piece while it is in cache:
    the output, dL/dx and dL/dW equal the convolution followed by the activation bitwise, dL/db (summed piece
    by piece) to rounding, and finite differences hold."""
    from neuro import backend
    from neuro.layers.activation import get as get_activation

    if kernels == "numba":
        pytest.importorskip("numba")
    monkeypatch.setattr(backend, "_kernel_request", kernels)
    monkeypatch.setattr(backend, "_kernels_on", None)
    monkeypatch.setattr(conv_functional, "TRAIN_CHUNK", 3 * 7 * 9 * 6)
    monkeypatch.setattr(conv_functional, "TRAIN_PIECE", 3 * 7 * 9 * 6)
    rng = np.random.default_rng(3)
    fused = Conv2D(4, (3, 2), padding="same", activation=activation)
    fused.build((7, 9, 3), np.random.default_rng(5))
    plain = Conv2D(4, (3, 2), padding="same")
    plain.build((7, 9, 3), np.random.default_rng(5))
    act = get_activation(activation)
    x = rng.standard_normal((11, 7, 9, 3))
    y, ctx = fused.forward(x, training=True)
    assert ctx[1] == "applied in pieces"
    z, zctx = plain.forward(x, training=True)
    y2, act_ctx = act.forward(z, True, inplace=True)
    np.testing.assert_array_equal(y, y2)
    g = rng.standard_normal(y.shape)
    for layer in (fused, plain):
        layer.grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
    dx = fused.backward(g, ctx)
    dx2 = plain.backward(act.backward(g, act_ctx), zctx)
    np.testing.assert_array_equal(dx, dx2)
    np.testing.assert_array_equal(fused.grads["kernel"], plain.grads["kernel"])
    np.testing.assert_allclose(fused.grads["bias"], plain.grads["bias"], rtol=1e-12, atol=1e-12)
    assert_gradients(fused, rng.standard_normal((5, 7, 9, 3)))
