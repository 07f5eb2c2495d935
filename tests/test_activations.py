"""Activations against PyTorch (forward and backward, float64), finite differences, and ``get``."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

import neuro
from neuro import activations, registry
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
    y, ctx = act.forward(x_in, training=True)
    np.testing.assert_array_equal(x_in, x)  # inplace=False must not touch the input
    return y, act.backward(g.copy(), ctx)


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
    y, ctx = act.forward(x, training=True)
    ref = torch.ops.aten.tanh_backward(torch.tensor(g), torch.tensor(y)).numpy()
    np.testing.assert_allclose(act.backward(g, ctx), ref, rtol=1e-14, atol=0)


def test_leaky_relu_definition():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    g = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    default = LeakyReLU()
    assert default.alpha == 0.01
    y, ctx = default.forward(x, training=True)
    np.testing.assert_array_equal(y, [-0.02, -0.005, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(default.backward(g, ctx), [0.01, 0.02, 0.03, 4.0, 5.0])
    custom = LeakyReLU(alpha=0.25)
    y, ctx = custom.forward(x, training=True)
    np.testing.assert_array_equal(y, [-0.5, -0.125, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(custom.backward(g, ctx), [0.25, 0.5, 0.75, 4.0, 5.0])
    assert custom.name == "leaky_relu"
    assert custom.get_config() == {"alpha": 0.25}
    assert registry.serialize(custom) == {"class": "LeakyReLU", "config": {"alpha": 0.25}}


def test_sigmoid_no_overflow_and_exact_limits():
    x = np.array([-1e4, -1e3, -750.0, -40.0, 0.0, 40.0, 750.0, 1e3, 1e4])
    act = Sigmoid()
    with strict_fp():
        y, ctx = act.forward(x, training=True)
        dx = act.backward(np.ones_like(x), ctx)
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
        y, ctx = act.forward(x, training=True)
        dx = act.backward(np.array([[1.0, 2.0, 3.0]] * 4), ctx)
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
    y = Softmax()(x.copy())
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(y[1, 2, 3], np.exp(x[1, 2, 3]) / np.exp(x[1, 2, 3]).sum(), rtol=1e-14)


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_inference_forward_leaves_no_context(rng, factory, assert_unchanged):
    act = factory()
    x = rng.standard_normal((3, 4))
    x_before = x.copy()
    with assert_unchanged(act):
        y, ctx = act.forward(x, training=False)
        np.testing.assert_array_equal(act(x), y)
    assert ctx is None
    np.testing.assert_array_equal(x, x_before)
    with pytest.raises(RuntimeError, match=r"needs the context returned by forward\(x, training=True\)"):
        act.backward(np.ones_like(x), ctx)
    with assert_unchanged(act):  # a training forward keeps nothing on the activation either
        act.forward(x, training=True)


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_inplace_forward_matches(rng, factory):
    x = rng.standard_normal((4, 5))
    ref = factory()
    expected, ref_ctx = ref.forward(x.copy(), training=True)
    act = factory()
    y, ctx = act.forward(x.copy(), training=True, inplace=True)
    np.testing.assert_array_equal(y, expected)
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(act.backward(g, ctx), ref.backward(g, ref_ctx))


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
    assert act.name == cls.key
    assert registry.serialize(act)["class"] == cls.__name__


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_get_config_round_trip(factory):
    act = factory()
    again = activations.get(registry.serialize(act))
    assert type(again) is type(act) and again is not act
    assert again.get_config() == act.get_config()
    rebuilt = type(act).from_config(act.get_config())
    assert type(rebuilt) is type(act) and rebuilt.get_config() == act.get_config()


def test_get_config_dict_with_arguments():
    act = activations.get({"class": "LeakyReLU", "config": {"alpha": 0.3}})
    assert isinstance(act, LeakyReLU) and act.alpha == 0.3
    np.testing.assert_array_equal(act(np.array([-1.0, 2.0])), [-0.3, 2.0])
    again = activations.get({"class": "leaky_relu", "config": {"alpha": 0.3}})  # names are normalised
    assert isinstance(again, LeakyReLU) and again.alpha == 0.3


def test_get_copies_instances_without_sharing_state(rng, assert_unchanged):
    original = LeakyReLU(0.2)
    x = rng.standard_normal((3, 4))
    y, ctx = original.forward(x, training=True)
    copy_ = activations.get(original)
    assert copy_ is not original and isinstance(copy_, LeakyReLU) and copy_.alpha == 0.2
    # the copy has not run forward: without a context its backward refuses to run
    with pytest.raises(RuntimeError, match="training=True"):
        copy_.backward(np.ones_like(x), None)
    # the two share nothing: a forward on the copy leaves the original and its context as they were
    g = rng.standard_normal(x.shape)
    before = original.backward(g, ctx)
    with assert_unchanged(original):
        y_copy, ctx_copy = copy_.forward(-x, training=True)
    np.testing.assert_array_equal(original.backward(g, ctx), before)
    np.testing.assert_array_equal(copy_.backward(g, ctx_copy), np.where(-x > 0, g, 0.2 * g))
    np.testing.assert_array_equal(before, np.where(x > 0, g, 0.2 * g))


def test_get_unknown_name():
    with pytest.raises(ValueError, match=r"^activation must be one of \['elu', .*'leaky_relu', .*'tanh'\], got 'swishy'$"):
        activations.get("swishy")


@pytest.mark.parametrize("name", ["dense", "LSTM", "Flatten"])
def test_a_layer_that_is_no_activation_is_refused_by_name_or_class(name):
    """The error once named `layer` and offered every layer (or was Dense's own missing-units TypeError)."""
    from neuro import Dense, registry

    with pytest.raises(ValueError, match=rf"^activation must be one of \['elu', .*\], got '{name}'$"):
        Dense(3, activation=name)
    with pytest.raises(TypeError, match=r"^activation must be an Activation, its class or its name, got the class"):
        Dense(3, activation=registry.get_class("layer", name))


@pytest.mark.parametrize("bad", [3, 1.5, ["relu"], object()])
def test_get_bad_type(bad):
    with pytest.raises(TypeError, match="Activation"):
        activations.get(bad)


@pytest.mark.parametrize("spec", [{"alpha": 0.1}, {"name": "leaky_relu", "alpha": 0.1}, {"class": "LeakyReLU"}])
def test_get_rejects_a_config_without_class(spec):
    with pytest.raises(ValueError, match=r"spec must be \{'class': name, 'config'"):
        activations.get(spec)
