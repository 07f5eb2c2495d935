"""BatchNorm: finite-difference gradients, running statistics and equivalence with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from neuro.gradcheck import check_gradients
from neuro.layers.batchnorm import BatchNorm


def max_rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def randomize_params(layer, rng) -> None:
    layer.params["gamma"][...] = rng.uniform(0.5, 2.0, layer.params["gamma"].shape)
    layer.params["beta"][...] = rng.standard_normal(layer.params["beta"].shape)


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5, 2), (3, 2, 1, 3)])
def test_finite_difference_gradients(float64, rng, shape):
    layer = BatchNorm()
    layer.build(shape[1:], rng)
    randomize_params(layer, rng)
    report = check_gradients(layer, rng.standard_normal(shape) * 3 + 1, max_entries=None)
    assert report.max_error < 1e-6, report


def torch_bn(torch, layer: BatchNorm, rank: int):
    cls = torch.nn.BatchNorm1d if rank == 2 else torch.nn.BatchNorm2d
    bn = cls(layer.params["gamma"].size, eps=layer.epsilon, momentum=1 - layer.momentum)
    bn = bn.double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(layer.params["gamma"]))
        bn.bias.copy_(torch.tensor(layer.params["beta"]))
    return bn


@pytest.mark.parametrize("shape", [(16, 5), (4, 6, 5, 3)])
def test_matches_torch_train_and_inference(float64, rng, torch, assert_unchanged, shape):
    layer = BatchNorm(momentum=0.9, epsilon=1e-3)
    layer.build(shape[1:], rng)
    randomize_params(layer, rng)
    bn = torch_bn(torch, layer, len(shape))
    perm = (0, 3, 1, 2) if len(shape) == 4 else (0, 1)
    back = (0, 2, 3, 1) if len(shape) == 4 else (0, 1)
    for step in range(4):
        x = rng.standard_normal(shape) * (step + 1) + step
        g = rng.standard_normal(shape)
        y, ctx = layer.forward(x, training=True)
        layer.clear_grads()  # a new step: the backward writes its gradients (later calls would add)
        dx = layer.backward(g, ctx)
        xt = torch.tensor(x.transpose(perm), requires_grad=True)
        bn.train()
        bn.zero_grad()
        yt = bn(xt)
        yt.backward(torch.tensor(g.transpose(perm)))
        assert max_rel_err(y, yt.detach().numpy().transpose(back)) < 1e-10
        assert max_rel_err(dx, xt.grad.numpy().transpose(back)) < 1e-10
        assert max_rel_err(layer.grads["gamma"], bn.weight.grad.numpy()) < 1e-10
        assert max_rel_err(layer.grads["beta"], bn.bias.grad.numpy()) < 1e-10
        assert max_rel_err(layer.buffers["running_mean"], bn.running_mean.numpy()) < 1e-10
        assert max_rel_err(layer.buffers["running_var"], bn.running_var.numpy()) < 1e-10
    x = rng.standard_normal(shape)
    bn.eval()
    expected = bn(torch.tensor(x.transpose(perm))).detach().numpy().transpose(back)
    before = {k: v.copy() for k, v in layer.buffers.items()}
    with assert_unchanged(layer):  # inference changes nothing: params, buffers, grads
        y, ctx = layer.forward(x)
        assert max_rel_err(y, expected) < 1e-10
        np.testing.assert_array_equal(layer(x), y)
    assert ctx is None
    for k, v in layer.buffers.items():
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(RuntimeError, match=r"needs the context returned by forward\(x, training=True\)"):
        layer.backward(rng.standard_normal(shape), ctx)


def test_running_statistics_formula(float64, rng):
    layer = BatchNorm(momentum=0.8)
    layer.build((3, 3, 2), rng)
    x = rng.standard_normal((5, 3, 3, 2))
    _, ctx = layer.forward(x, training=True)
    assert ctx is not None
    flat = x.reshape(-1, 2)
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.2 * flat.mean(0), rtol=1e-12)
    np.testing.assert_allclose(
        layer.buffers["running_var"], 0.8 + 0.2 * flat.var(0, ddof=1), rtol=1e-12
    )


def test_init_float32_and_skip_input_grad(rng):
    layer = BatchNorm()
    layer.build((4, 4, 3), rng)
    assert set(layer.params) == {"gamma", "beta"} and layer.regularizable == ()
    assert set(layer.buffers) == {"running_mean", "running_var"}
    np.testing.assert_array_equal(layer.params["gamma"], 1)
    np.testing.assert_array_equal(layer.buffers["running_var"], 1)
    assert layer.count_params() == 12  # running statistics included, as Keras counts them
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    y, ctx = layer.forward(x, training=True)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert layer.buffers["running_var"].dtype == np.float32
    dx = layer.backward(np.ones_like(y), ctx)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    assert layer.forward(x)[0].dtype == np.float32
    assert layer(x).dtype == np.float32
    layer.need_input_grad = False
    _, ctx = layer.forward(x, training=True)
    assert layer.backward(np.ones_like(y), ctx) is None
    assert layer.grads["gamma"].dtype == np.float32


def test_batch_of_one_does_not_crash(float64):
    layer = BatchNorm()
    layer.build((3,))
    y, _ = layer.forward(np.ones((1, 3)), training=True)
    np.testing.assert_array_equal(y, 0)


@pytest.mark.parametrize(
    "kwargs,arg",
    [
        ({"momentum": 1.5}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"momentum": "0.9"}, "momentum"),
        ({"epsilon": 0}, "epsilon"),
        ({"epsilon": -1e-5}, "epsilon"),
    ],
)
def test_constructor_errors(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        BatchNorm(**kwargs)


@pytest.mark.parametrize("shape", [(), (0,), (4, 0)])  # any rank >= 1 is taken (sequences, volumes)
def test_build_errors(rng, shape):
    with pytest.raises(ValueError, match="input_shape"):
        BatchNorm().build(shape, rng)


@pytest.mark.parametrize("shape", [(7,), (6, 3), (5, 4, 3), (2, 3, 4, 5)])
def test_output_shape(rng, shape):
    layer = BatchNorm()
    layer.build(shape, rng)
    assert layer.output_shape == shape
    assert layer.params["gamma"].shape == (shape[-1],)
