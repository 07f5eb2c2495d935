"""Dropout and Flatten: statistics, reproducibility, gradients, shapes and errors."""

from __future__ import annotations

import numpy as np
import pytest

from neuro import backend
from neuro.gradcheck import check_gradients
from neuro.layers.dropout import Dropout
from neuro.layers.flatten import Flatten


# -- Dropout --
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_statistics_and_scale(rng, rate):
    layer = Dropout(rate)
    layer.build((1000,), rng)
    x = np.ones((1000, 1000), np.float32)
    y, _ = layer.forward(x, training=True)
    assert y.dtype == np.float32
    kept = y != 0
    n, p = x.size, 1 - rate
    assert abs(kept.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)  # 5 standard deviations
    np.testing.assert_allclose(y[kept], np.float32(1 / (1 - rate)), rtol=1e-6)


def test_dropout_backward_uses_the_forward_mask(rng):
    layer = Dropout(0.3)
    layer.build((20,), rng)
    x = rng.standard_normal((50, 20)).astype(np.float32) + 5  # never 0
    y, ctx = layer.forward(x, training=True)
    mask = y / x
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(g, ctx)
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, g * mask, rtol=1e-6)
    assert set(np.unique(np.round(mask, 5))) <= {0.0, np.round(np.float32(1 / 0.7), 5)}


def test_dropout_finite_difference(float64, rng):
    # check_gradients rewinds the generator it passes to forward before each evaluation, so the mask repeats
    layer = Dropout(0.4)
    layer.build((3, 4), np.random.default_rng(7))
    report = check_gradients(layer, rng.standard_normal((5, 3, 4)), max_entries=None)
    assert report.max_error < 1e-6, report


def test_dropout_inference_is_identity(rng, assert_unchanged):
    layer = Dropout(0.5)
    layer.build((10,), rng)
    x = rng.standard_normal((4, 10)).astype(np.float32)
    with assert_unchanged(layer):
        y, ctx = layer.forward(x)
        assert layer(x) is x
    assert y is x
    assert ctx is None
    with pytest.raises(RuntimeError, match=r"needs the context returned by forward\(x, training=True\)"):
        layer.backward(x, ctx)


def test_dropout_same_seed_same_mask():
    def masks(seed: int) -> list[np.ndarray]:
        layer = Dropout(0.5)
        layer.build((8, 8, 2), np.random.default_rng(0))
        device_rng = backend.DeviceRNG(np, np.random.default_rng(seed))  # what a seeded network passes
        x = np.ones((4, 8, 8, 2), np.float32)
        return [layer.forward(x, training=True, rng=device_rng)[0] for _ in range(2)]

    a, b, c = masks(3), masks(3), masks(4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])  # a fresh mask at each step
    assert not np.array_equal(a[0], c[0])


def test_dropout_rate_zero_and_skip_input_grad(rng):
    layer = Dropout(0.0)
    layer.build((5,), rng)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    y, ctx = layer.forward(x, training=True)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(layer.backward(x, ctx), x)
    layer.need_input_grad = False
    assert layer.backward(x, ctx) is None


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, "0.5", None])
def test_dropout_rate_errors(rate):
    with pytest.raises(ValueError, match="rate"):
        Dropout(rate)


@pytest.mark.parametrize("shape", [(5,), (4, 4, 3)])
def test_dropout_output_shape(rng, shape):
    layer = Dropout(0.5)
    layer.build(shape, rng)
    assert layer.output_shape == shape
    assert layer.get_config() == {"name": "dropout", "rate": 0.5}


# -- Flatten --
@pytest.mark.parametrize("shape", [(6,), (3, 4), (7, 9, 2), (2, 3, 4, 5)])
def test_flatten_shapes_and_backward(rng, shape):
    layer = Flatten()
    layer.build(shape, rng)
    size = int(np.prod(shape))
    assert layer.output_shape == (size,)
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    y, ctx = layer.forward(x, training=True)
    assert y.shape == (3, size) and y.dtype == np.float32
    np.testing.assert_array_equal(y, x.reshape(3, -1))
    dx = layer.backward(y * 2, ctx)
    np.testing.assert_array_equal(dx, x * 2)
    layer.need_input_grad = False
    assert layer.backward(y, ctx) is None


def test_flatten_finite_difference(float64, rng):
    assert check_gradients(Flatten(), rng.standard_normal((2, 3, 4))).max_error < 1e-6


def test_flatten_inference_keeps_no_context(rng, assert_unchanged):
    layer = Flatten()
    layer.build((2, 2), rng)
    layer.forward(np.ones((1, 2, 2)), training=True)
    with assert_unchanged(layer):
        y, ctx = layer.forward(np.ones((1, 2, 2)))
        np.testing.assert_array_equal(layer(np.ones((1, 2, 2))), y)
    assert ctx is None
    np.testing.assert_array_equal(y, np.ones((1, 4)))
    with pytest.raises(RuntimeError, match=r"needs the context returned by forward\(x, training=True\)"):
        layer.backward(np.ones((1, 4)), ctx)


@pytest.mark.parametrize("shape", [(), (3, 0, 2), (-1,)])
def test_flatten_build_errors(rng, shape):
    with pytest.raises(ValueError, match="input_shape"):
        Flatten().build(shape, rng)
