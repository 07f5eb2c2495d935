"""MaxPool2D: shapes, errors, tie rule, finite-difference gradients and equivalence with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import neuro
from neuro import functional, registry
from neuro.gradcheck import check_gradients
from neuro.layers.pooling import MaxPool2D


def max_rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


CONFIGS = [  # pool, stride
    ((2, 2), None),
    ((3, 3), None),
    ((2, 3), (2, 3)),
    ((3, 3), (2, 2)),  # overlapping
    ((2, 2), (1, 1)),  # overlapping
    ((2, 1), (3, 2)),  # gaps between windows
]


@pytest.mark.parametrize("pool,stride", CONFIGS)
def test_finite_difference_gradients(float64, rng, pool, stride):
    layer = MaxPool2D(pool, stride)
    layer.build((7, 9, 2), rng)
    # distinct values far apart, so that ±eps never changes which element is the maximum
    x = rng.permutation(2 * 7 * 9 * 2).reshape(2, 7, 9, 2) * 0.1
    report = check_gradients(layer, x.astype(np.float64), max_entries=None)
    assert report.max_error < 1e-6, report


@pytest.mark.parametrize("h,w", [(7, 9), (8, 8), (3, 3)])
@pytest.mark.parametrize("pool,stride", CONFIGS)
def test_output_shape(rng, h, w, pool, stride):
    layer = MaxPool2D(pool, stride)
    layer.build((h, w, 3), rng)
    s = pool if stride is None else stride
    expected = ((h - pool[0]) // s[0] + 1, (w - pool[1]) // s[1] + 1, 3)
    assert layer.output_shape == expected
    x = rng.standard_normal((2, h, w, 3)).astype(np.float32)
    y, ctx = layer.forward(x, training=True)
    assert y.shape == (2, *expected) and y.dtype == np.float32
    dx = layer.backward(np.ones_like(y), ctx)
    assert dx.shape == x.shape and dx.dtype == np.float32


@pytest.mark.parametrize("pool,stride", CONFIGS)
def test_matches_torch(float64, rng, torch, pool, stride):
    layer = MaxPool2D(pool, stride)
    layer.build((8, 9, 3), rng)
    x = rng.standard_normal((4, 8, 9, 3))
    y, _ = layer.forward(x, training=True)
    y_inference = layer(x)
    g = rng.standard_normal(y.shape)
    _, ctx = layer.forward(x, training=True)
    dx = layer.backward(g, ctx)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, pool, stride=layer.strides)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    expected = yt.detach().numpy().transpose(0, 2, 3, 1)
    assert max_rel_err(y, expected) < 1e-10
    assert max_rel_err(y_inference, expected) < 1e-10
    assert max_rel_err(dx, xt.grad.numpy().transpose(0, 2, 3, 1)) < 1e-10


def test_ties_send_gradient_to_first_maximum(float64):
    layer = MaxPool2D(2)
    layer.build((4, 4, 1))
    x = np.zeros((1, 4, 4, 1))
    x[0, 2:, 2:, 0] = [[1.0, 5.0], [5.0, 5.0]]
    _, ctx = layer.forward(x, training=True)
    dx = layer.backward(np.arange(1.0, 5.0).reshape(1, 2, 2, 1), ctx)[0, :, :, 0]
    expected = np.zeros((4, 4))
    expected[0, 0], expected[0, 2], expected[2, 0], expected[2, 3] = 1, 2, 3, 4
    np.testing.assert_array_equal(dx, expected)


def test_overlapping_windows_accumulate(float64):
    layer = MaxPool2D(2, 1)
    layer.build((3, 3, 1))
    x = np.zeros((1, 3, 3, 1))
    x[0, 1, 1, 0] = 1.0  # the maximum of all four windows
    _, ctx = layer.forward(x, training=True)
    dx = layer.backward(np.ones((1, 2, 2, 1)), ctx)
    assert dx[0, 1, 1, 0] == 4.0 and dx.sum() == 4.0
    x[0, 1, 1, 0] = 0.0  # all tied: each window's first element (its top-left corner)
    _, ctx = layer.forward(x, training=True)
    dx = layer.backward(np.ones((1, 2, 2, 1)), ctx)[0, :, :, 0]
    np.testing.assert_array_equal(dx, [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_inference_keeps_no_context_and_skip_input_grad(rng, assert_unchanged):
    layer = MaxPool2D()
    layer.build((4, 4, 1), rng)
    x = rng.standard_normal((2, 4, 4, 1)).astype(np.float32)
    with assert_unchanged(layer):
        y, ctx = layer.forward(x)
        np.testing.assert_array_equal(layer(x), y)
    assert ctx is None
    with pytest.raises(RuntimeError, match=r"needs the context returned by forward\(x, training=True\)"):
        layer.backward(np.ones((2, 2, 2, 1), np.float32), ctx)
    layer.need_input_grad = False
    _, ctx = layer.forward(x, training=True)
    assert layer.backward(np.ones((2, 2, 2, 1), np.float32), ctx) is None


@pytest.mark.parametrize(
    "kwargs,arg",
    [
        ({"pool_size": 0}, "pool_size"),
        ({"pool_size": (2, 2, 2)}, "pool_size"),
        ({"pool_size": True}, "pool_size"),
        ({"strides": -1}, "strides"),
        ({"strides": (1, 0)}, "strides"),
        ({"padding": "full"}, "padding"),
    ],
)
def test_constructor_errors(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        MaxPool2D(**kwargs)


@pytest.mark.parametrize(
    "layer,shape,arg",
    [
        (MaxPool2D(3), (2, 8, 1), r"pool_size \(3, 3\).*\(2, 8\)"),
        (MaxPool2D(), (8, 8), r"input_shape=\(8, 8\)"),
        (MaxPool2D(), (8, -8, 1), "input_shape"),
    ],
)
def test_build_errors(rng, layer, shape, arg):
    with pytest.raises(ValueError, match=arg):
        layer.build(shape, rng)


def test_config():
    assert MaxPool2D(3, 2).get_config() == {
        "name": "maxpool2d",
        "pool_size": [3, 3],
        "strides": [2, 2],
        "padding": "valid",
    }
    assert MaxPool2D((2, 3)).strides == (2, 3)
    layer = MaxPool2D((2, 3), 1, "same", name="pool")
    again = registry.deserialize("layer", registry.serialize(layer))
    assert type(again) is MaxPool2D and again.get_config() == layer.get_config()
    assert MaxPool2D.from_config(layer.get_config()).get_config() == layer.get_config()
    assert neuro.MaxPool2D is MaxPool2D
    assert registry.get_class("layer", "max_pool_2d") is MaxPool2D


SAME_CONFIGS = [  # pool, stride
    ((2, 2), None),
    ((3, 3), None),
    ((3, 3), (2, 2)),
    ((2, 3), (1, 2)),
    ((4, 2), (3, 1)),
]


@pytest.mark.parametrize("pool,stride", SAME_CONFIGS)
def test_same_padding_matches_torch_with_minus_inf_padding(float64, rng, torch, pool, stride):
    layer = MaxPool2D(pool, stride, padding="same")
    layer.build((7, 8, 2), rng)
    s = pool if stride is None else stride
    assert layer.output_shape == (-(-7 // s[0]), -(-8 // s[1]), 2)
    x = rng.standard_normal((3, 7, 8, 2))
    y, ctx = layer.forward(x, training=True)
    assert y.shape == (3, *layer.output_shape)
    np.testing.assert_array_equal(layer(x), y)
    g = rng.standard_normal(y.shape)
    dx = layer.backward(g, ctx)
    top, bottom, left, right = functional.paddings("same", 7, 8, pool, s)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    padded = torch.nn.functional.pad(xt, (left, right, top, bottom), value=-np.inf)
    yt = torch.nn.functional.max_pool2d(padded, pool, stride=s)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    assert max_rel_err(y, yt.detach().numpy().transpose(0, 2, 3, 1)) < 1e-10
    assert max_rel_err(dx, xt.grad.numpy().transpose(0, 2, 3, 1)) < 1e-10
    assert np.all(np.isfinite(y))  # the padding is never the maximum


@pytest.mark.parametrize("pool,stride", SAME_CONFIGS)
def test_same_padding_finite_difference_gradients(float64, rng, pool, stride):
    layer = MaxPool2D(pool, stride, padding="same")
    layer.build((5, 6, 2), rng)
    x = rng.permutation(2 * 5 * 6 * 2).reshape(2, 5, 6, 2) * 0.1
    report = check_gradients(layer, x.astype(np.float64), max_entries=None)
    assert report.max_error < 1e-6, report


@pytest.mark.parametrize("shape", [(3, 6, 8, 2), (2, 5, 7, 3)])
def test_2x2_fast_path_routes_like_argmax_with_many_ties(shape):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=shape).astype(np.float32)  # values 0..2: ties everywhere
    layer = MaxPool2D(2)
    layer.build(shape[1:])
    y, ctx = layer.forward(x, training=True)
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(g, ctx)
    n, h, w, c = shape
    ho, wo = h // 2, w // 2
    windows = x[:, : 2 * ho, : 2 * wo].reshape(n, ho, 2, wo, 2, c).transpose(0, 1, 3, 5, 2, 4)
    first = windows.reshape(n, ho, wo, c, 4).argmax(axis=-1)  # numpy: first maximum, row-major
    expected = np.zeros_like(x)
    for k in range(4):
        a, b = divmod(k, 2)
        expected[:, a : 2 * ho : 2, b : 2 * wo : 2] = np.where(first == k, g, 0)
    np.testing.assert_array_equal(y, windows.max(axis=(-2, -1)))
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("shape", [(3, 32, 32, 16), (2, 32, 32, 8), (2, 64, 64, 4), (2, 7, 9, 16), (2, 32, 32, 300)])
def test_global_average_pooling_of_large_images_reads_them_in_blocks(shape):
    """Images of many pixels and few channels are summed in blocks of pixels (NumPy's mean over (H, W) added
    C values a step, 4x slower); the result is the mean, in float32 closer to the exact one than NumPy's.
    The first three shapes take the blocks, the last two NumPy's mean; float16 keeps NumPy's wider sums."""
    from neuro.functional import pooling as P

    x = np.random.default_rng(0).standard_normal(shape)
    np.testing.assert_allclose(P.global_avg_pool2d(x)[0], x.mean(axis=(1, 2)), rtol=1e-13, atol=1e-15)
    x32 = x.astype(np.float32)
    y = P.global_avg_pool2d(x32)[0]
    assert y.dtype == np.float32 and y.shape == (shape[0], shape[3])
    exact = x32.astype(np.float64).mean(axis=(1, 2))
    assert np.abs(y - exact).max() <= np.abs(x32.mean(axis=(1, 2)) - exact).max() + 1e-7
    x16 = (x * 100).astype(np.float16)
    np.testing.assert_array_equal(P.global_avg_pool2d(x16)[0], x16.mean(axis=(1, 2)))


def test_global_average_pooling_in_blocks_is_the_same_on_the_strict_device():
    from neuro import backend
    from neuro.functional import pooling as P

    x = np.random.default_rng(1).random((2, 32, 32, 16)).astype(np.float32)
    strict = backend.to_device(x, backend.get_device("strict"))
    assert np.array_equal(P.global_avg_pool2d(x)[0], backend.to_numpy(P.global_avg_pool2d(strict)[0]))
