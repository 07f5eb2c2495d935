"""Activations against PyTorch (forward and backward, float64), finite differences, and ``get``."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

import neuro
from neuro import activations
from neuro.activations import LeakyReLU, Linear, ReLU, Sigmoid, Softmax, Tanh

pytestmark = pytest.mark.usefixtures("float64")

RTOL = 1e-10
#: Only differences below the smallest normal numbers are forgiven (e.g. sigmoid(-720): neuro returns the
#: subnormal exp(-720), PyTorch flushes 1/(1 + exp(720)) = 1/inf to 0).
ATOL = 1e-300

# (id, neuro factory, PyTorch oracle taking (torch.nn.functional, tensor))
CASES = [
    ("linear", Linear, lambda F, t: t * 1.0),
    ("relu", ReLU, lambda F, t: F.relu(t)),
    ("leaky_relu", LeakyReLU, lambda F, t: F.leaky_relu(t, 0.01)),
    ("leaky_relu_0.2", lambda: LeakyReLU(alpha=0.2), lambda F, t: F.leaky_relu(t, 0.2)),
    ("leaky_relu_0", lambda: LeakyReLU(0.0), lambda F, t: F.leaky_relu(t, 0.0)),
    ("sigmoid", Sigmoid, lambda F, t: F.sigmoid(t)),
    ("softmax", Softmax, lambda F, t: F.softmax(t, dim=-1)),
    ("tanh", Tanh, lambda F, t: F.tanh(t)),
]
IDS = [c[0] for c in CASES]

#: Tanh's derivative 1 − y² is computed from the output y; where |x| ≳ 5 it cancels, so a 1-ulp difference
#: between NumPy's and PyTorch's tanh (NumPy's is not correctly rounded) becomes an absolute difference of
#: about 2·eps·|g| in the gradient. The backward formula itself is checked exactly in
#: ``test_tanh_backward_formula_matches_torch``.
BACKWARD_ABS_EPS = {"tanh": 4 * np.finfo(np.float64).eps}


def backward_atol(name, g):
    return BACKWARD_ABS_EPS[name] * float(np.max(np.abs(g))) if name in BACKWARD_ABS_EPS else ATOL
FACTORIES = [c[1] for c in CASES]

EXTREME = np.array(
    [
        [1e4, -1e4, 750.0, -750.0, 0.0, 1.5],
        [-1e4, -1e4, -750.0, 0.0, 750.0, 1e4],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [750.0, 750.0, -750.0, -720.0, 1e4, -40.0],
        [-1e4, -1e4, -1e4, -1e4, -1e4, -1e4],
        [1e4, 1e4, 1e4, -1e4, 40.0, -0.0],
    ]
)


@contextlib.contextmanager
def strict_fp():
    """Turn every warning into an error and make overflow, invalid and division by zero raise.

    Underflow to zero (exp(-1e4) = 0) is the correct IEEE result and not an error.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            yield


def torch_forward_backward(torch, oracle, x, g):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = oracle(torch.nn.functional, t)
    (y * torch.tensor(g, dtype=torch.float64)).sum().backward()
    return y.detach().numpy(), t.grad.numpy()


def neuro_forward_backward(act, x, g):
    x_in = x.copy()
    y = act.forward(x_in, training=True)
    np.testing.assert_array_equal(x_in, x)  # inplace=False must not touch the input
    return y, act.backward(g.copy())


# -- against PyTorch -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 4, 5)], ids=["2d", "4d"])
@pytest.mark.parametrize(("name", "factory", "oracle"), CASES, ids=IDS)
def test_matches_torch_random(torch, rng, name, factory, oracle, shape):
    x = 3.0 * rng.standard_normal(shape)
    x.reshape(-1)[::7] = 0.0  # the kink of the ReLUs: PyTorch's convention is derivative 0 / alpha
    g = rng.standard_normal(shape)
    y, dx = neuro_forward_backward(factory(), x, g)
    y_ref, dx_ref = torch_forward_backward(torch, oracle, x, g)
    assert y.shape == shape and dx.shape == shape
    np.testing.assert_allclose(y, y_ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx, dx_ref, rtol=RTOL, atol=backward_atol(name, g))


@pytest.mark.parametrize(("name", "factory", "oracle"), CASES, ids=IDS)
def test_matches_torch_extreme_inputs_without_warnings(torch, rng, name, factory, oracle):
    g = rng.standard_normal(EXTREME.shape)
    with strict_fp():
        y, dx = neuro_forward_backward(factory(), EXTREME, g)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    y_ref, dx_ref = torch_forward_backward(torch, oracle, EXTREME, g)
    np.testing.assert_allclose(y, y_ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx, dx_ref, rtol=RTOL, atol=ATOL)


def test_tanh_backward_formula_matches_torch(torch, rng):
    """Given the same output y, neuro's backward is PyTorch's tanh_backward g·(1 − y²) to ~1 ulp.

    (1 − y²) cancels for |y| near 1: it must not be computed as 1 − y·y with y·y rounded first.
    """
    x = 3.0 * rng.standard_normal((6, 5))
    g = rng.standard_normal(x.shape)
    act = Tanh()
    y = act.forward(x, training=True)
    ref = torch.ops.aten.tanh_backward(torch.tensor(g), torch.tensor(y)).numpy()
    np.testing.assert_allclose(act.backward(g), ref, rtol=1e-14, atol=0)


def test_leaky_relu_definition():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    g = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    default = LeakyReLU()
    assert default.alpha == 0.01
    np.testing.assert_array_equal(default.forward(x, training=True), [-0.02, -0.005, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(default.backward(g), [0.01, 0.02, 0.03, 4.0, 5.0])
    custom = LeakyReLU(alpha=0.25)
    np.testing.assert_array_equal(custom.forward(x, training=True), [-0.5, -0.125, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(custom.backward(g), [0.25, 0.5, 0.75, 4.0, 5.0])
    assert custom.get_config() == {"name": "leaky_relu", "class": "LeakyReLU", "alpha": 0.25}


def test_sigmoid_no_overflow_and_exact_limits():
    x = np.array([-1e4, -1e3, -750.0, -40.0, 0.0, 40.0, 750.0, 1e3, 1e4])
    act = Sigmoid()
    with strict_fp():
        y = act.forward(x, training=True)
        dx = act.backward(np.ones_like(x))
    assert y[0] == 0.0 and y[-1] == 1.0 and y[4] == 0.5
    assert np.all((y >= 0) & (y <= 1))
    np.testing.assert_allclose(y[3], 1 / (1 + np.exp(40.0)), rtol=1e-14)
    np.testing.assert_allclose(y[5], 1 / (1 + np.exp(-40.0)), rtol=1e-15)
    assert dx[4] == 0.25
    np.testing.assert_array_equal(dx[[0, 1, 2, -3, -2, -1]], 0.0)


def test_softmax_extreme_rows_finite_and_exact():
    x = np.array(
        [
            [1e4, -1e4, 0.0],
            [1e4, 1e4, -1e4],
            [-1e4, -1e4, -1e4],
            [1e4, 1e4, 1e4],
        ]
    )
    act = Softmax()
    with strict_fp():
        y = act.forward(x, training=True)
        dx = act.backward(np.array([[1.0, 2.0, 3.0]] * 4))
    expected = np.array(
        [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3]]
    )
    np.testing.assert_array_equal(y, expected)
    # y·(g − Σ g y): exactly 0 for a one-hot row, ±0.25 for the half/half row
    np.testing.assert_array_equal(dx[0], 0.0)
    np.testing.assert_array_equal(dx[1], [-0.25, 0.25, 0.0])
    assert np.all(np.isfinite(dx))


def test_softmax_is_along_last_axis(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    y = Softmax().forward(x.copy())
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(y[1, 2, 3], np.exp(x[1, 2, 3]) / np.exp(x[1, 2, 3]).sum(), rtol=1e-14)


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_inference_forward_leaves_no_cache(rng, factory):
    act = factory()
    x = rng.standard_normal((3, 4))
    act.forward(x, training=False)
    with pytest.raises(RuntimeError, match="training=True"):
        act.backward(np.ones_like(x))


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_inplace_forward_matches(rng, factory):
    x = rng.standard_normal((4, 5))
    expected = factory().forward(x.copy(), training=True)
    act = factory()
    y = act.forward(x.copy(), training=True, inplace=True)
    np.testing.assert_array_equal(y, expected)
    g = rng.standard_normal(x.shape)
    ref = factory()
    ref.forward(x.copy(), training=True)
    np.testing.assert_array_equal(act.backward(g), ref.backward(g))


# -- finite differences ---------------------------------------------------------------------------------
@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_check_gradients(rng, factory):
    x = rng.standard_normal((5, 6))
    x += np.where(x >= 0, 0.1, -0.1)  # keep the ReLU kinks farther than eps from every entry
    report = neuro.check_gradients(factory(), x)
    assert set(report.errors) == {"input"}
    assert report.max_error < 1e-7, report


# -- get --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        ("relu", ReLU),
        ("ReLU", ReLU),
        ("leaky_relu", LeakyReLU),
        ("LeakyReLU", LeakyReLU),
        ("leaky-relu", LeakyReLU),
        ("leakyrelu", LeakyReLU),
        ("sigmoid", Sigmoid),
        ("Tanh", Tanh),
        ("softmax", Softmax),
        ("linear", Linear),
        ("identity", Linear),
        ("none", Linear),
        (None, Linear),
        (Tanh, Tanh),
    ],
)
def test_get_names_and_aliases(spec, cls):
    act = activations.get(spec)
    assert type(act) is cls
    assert act.get_config()["name"] == cls.key


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_get_config_round_trip(factory):
    act = factory()
    again = activations.get(act.get_config())
    assert type(again) is type(act) and again is not act
    assert again.get_config() == act.get_config()


def test_get_config_dict_with_arguments():
    act = activations.get({"name": "leaky_relu", "alpha": 0.3})
    assert isinstance(act, LeakyReLU) and act.alpha == 0.3
    np.testing.assert_array_equal(act.forward(np.array([-1.0, 2.0])), [-0.3, 2.0])


def test_get_copies_instances_without_sharing_cache(rng):
    original = LeakyReLU(0.2)
    x = rng.standard_normal((3, 4))
    original.forward(x, training=True)
    copy_ = activations.get(original)
    assert copy_ is not original and isinstance(copy_, LeakyReLU) and copy_.alpha == 0.2
    # the copy has not run forward: it must not inherit the original's cache
    with pytest.raises(RuntimeError):
        copy_.backward(np.ones_like(x))
    # the two never share a cache: a forward on one leaves the other's backward unchanged
    g = rng.standard_normal(x.shape)
    before = original.backward(g)
    copy_.forward(-x, training=True)
    np.testing.assert_array_equal(original.backward(g), before)
    np.testing.assert_array_equal(copy_.backward(g), np.where(-x > 0, g, 0.2 * g))


def test_get_unknown_name():
    with pytest.raises(ValueError, match="activation"):
        activations.get("swishy")


@pytest.mark.parametrize("bad", [3, 1.5, ["relu"], object()])
def test_get_bad_type(bad):
    with pytest.raises(TypeError, match="activation"):
        activations.get(bad)


def test_get_rejects_a_config_without_name():
    with pytest.raises(ValueError, match="activation config must have a 'name' key"):
        activations.get({"alpha": 0.1})
