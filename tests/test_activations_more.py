"""The activations with Keras's names (GELU, ELU, SELU, Swish/SiLU, Softplus, Softsign, HardSigmoid,
Exponential, Mish) and the error function under GELU: values and gradients against PyTorch in float64,
alone and inside Dense; high-precision references (mpmath) in the tails; finite differences; float32 stays
float32; names, configs, bad arguments; save and load inside a network.

Where PyTorch's own formula cancels (GELU as ``x·(1 + erf(x/√2))/2`` for x ≪ 0, ``1 + tanh(u)`` in its tanh
form, ``1/(1+|x|) − |x|/(1+|x|)²`` in autograd of softsign), its result carries an absolute error of a few
units of 1e-16 that neuro's forms do not; those comparisons allow that absolute error, and the tails are
checked against mpmath to near full precision instead.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import pytest

import neuro
from neuro import Dense, Network, activations, registry
from neuro import functional as F
from neuro.activations import (
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

pytestmark = pytest.mark.usefixtures("float64")

RTOL = 1e-12
EPS = np.finfo(np.float64).eps

# (id, neuro factory, PyTorch oracle taking (torch.nn.functional, tensor), absolute slack in units of eps·|x|
# for PyTorch's cancelling forms)
CASES = [
    ("gelu", GELU, lambda f, t: f.gelu(t), 4),
    ("gelu_tanh", lambda: GELU(approximate=True), lambda f, t: f.gelu(t, approximate="tanh"), 4),
    ("elu", ELU, lambda f, t: f.elu(t), 0),
    ("elu_0.3", lambda: ELU(alpha=0.3), lambda f, t: f.elu(t, alpha=0.3), 0),
    ("selu", SELU, lambda f, t: f.selu(t), 0),
    ("swish", Swish, lambda f, t: f.silu(t), 0),
    # PyTorch returns x itself beyond its threshold (20 by default, off by exp(-x)); neuro's softplus is exact
    ("softplus", Softplus, lambda f, t: f.softplus(t, threshold=40.0), 0),
    ("softsign", Softsign, lambda f, t: f.softsign(t), 4),
    ("hard_sigmoid", HardSigmoid, lambda f, t: f.hardsigmoid(t), 0),
    ("exponential", Exponential, lambda f, t: t.exp(), 0),
    ("mish", Mish, lambda f, t: f.mish(t), 4),
]
IDS = [c[0] for c in CASES]
FACTORIES = [c[1] for c in CASES]


@contextlib.contextmanager
def strict_fp():
    """Every warning is an error; overflow, invalid operations and division by zero raise (underflow is
    the correct IEEE result and allowed)."""
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
    g_in = g.copy()
    y, ctx = act.forward(x_in, training=True)
    np.testing.assert_array_equal(x_in, x)  # inplace=False must not touch the input
    dx = act.backward(g_in, ctx)
    np.testing.assert_array_equal(g_in, g)
    return y, dx


def exact_hard_sigmoid_grad(name, torch_grad, g):
    """PyTorch's hardsigmoid backward multiplies by ``1.0f / 6.0f``, a float32 constant, also in float64
    (a relative error of 3e-8); keep its mask (where it is not 0) with the exact g/6."""
    return np.where(torch_grad != 0, g / 6.0, 0.0) if name == "hard_sigmoid" else torch_grad


def assert_close(actual, desired, slack, scale):
    """``|a − d| ≤ RTOL·|d| + slack·eps·scale`` elementwise (slack 0: relative only)."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    bound = RTOL * np.abs(desired) + slack * EPS * np.abs(scale)
    bad = ~(np.abs(actual - desired) <= bound)
    assert not bad.any(), (
        f"{bad.sum()} values differ, worst at {np.argmax(np.abs(actual - desired) - bound)}: "
        f"{actual[bad][:4]} vs {desired[bad][:4]}"
    )


# -- the error function -----------------------------------------------------------------------------------
def _grid():
    dense = np.linspace(-30.0, 30.0, 240_001)
    logs = np.logspace(-310, math.log10(30.0), 20_000)
    edges = np.array([0.0, -0.0, 0.46875, 4.0, 1e-300, 5e-324, 26.5, 27.0, 1e300, np.finfo(np.float64).max])
    near = np.concatenate([np.nextafter(edges[2:4], 0.0), np.nextafter(edges[2:4], 9.0)])
    grid = np.concatenate([dense, logs, edges, near])
    return np.concatenate([grid, -grid])


def test_erf_matches_math_erf_everywhere():
    x = _grid()
    got = F.erf(x)
    want = np.array([math.erf(v) for v in x])
    assert got.dtype == np.float64
    normal = np.abs(want) >= np.finfo(np.float64).tiny
    rel = np.abs(got[normal] - want[normal]) / np.abs(want[normal])
    assert rel.max() < 1e-15, (rel.max(), x[normal][np.argmax(rel)])
    # subnormal results (x below 2e-308) hold fewer digits: within a few of the smallest subnormal
    assert np.all(np.abs(got[~normal] - want[~normal]) <= 4 * np.finfo(np.float64).smallest_subnormal)
    assert np.all(np.abs(got) <= 1.0)


def test_erfc_matches_math_erfc_relative_to_itself_in_the_tail():
    x = _grid()
    got = F.erfc(x)
    want = np.array([math.erfc(v) for v in x])
    normal = want >= np.finfo(np.float64).tiny  # erfc(x > 26.55) is subnormal, then 0: fewer digits exist
    rel = np.abs(got[normal] - want[normal]) / want[normal]
    assert rel.max() < 1e-15, (rel.max(), x[normal][np.argmax(rel)])
    assert np.all(np.abs(got[~normal] - want[~normal]) <= 2 * np.finfo(np.float64).smallest_subnormal * 1e3)
    assert F.erfc(np.array([26.0]))[0] == pytest.approx(math.erfc(26.0), rel=1e-15)


def test_erf_special_values():
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0])
    np.testing.assert_array_equal(F.erf(x), [1.0, -1.0, np.nan, 0.0, -0.0])
    np.testing.assert_array_equal(F.erfc(x), [0.0, 2.0, np.nan, 1.0, 1.0])
    assert np.signbit(F.erf(np.array([-0.0]))[0])
    with strict_fp():
        F.erf(np.array([1e308, -1e308, 5e-324]))
        F.erfc(np.array([1e308, -1e308, 5e-324]))


def test_erf_float32_stays_float32_and_is_float32_accurate():
    x = np.linspace(-8, 8, 20_001).astype(np.float32)
    for fn, ref in ((F.erf, math.erf), (F.erfc, math.erfc)):
        got = fn(x)
        assert got.dtype == np.float32
        want = np.array([ref(float(v)) for v in x])
        assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-30)) < 2e-6


# -- against PyTorch ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 4, 5)], ids=["2d", "4d"])
@pytest.mark.parametrize(("name", "factory", "oracle", "slack"), CASES, ids=IDS)
def test_matches_torch_random(torch, rng, name, factory, oracle, slack, shape):
    x = 3.0 * rng.standard_normal(shape)
    x.reshape(-1)[::7] = 0.0
    x.reshape(-1)[3::11] = 3.0  # the corners of the hard sigmoid: PyTorch's derivative there is 0
    x.reshape(-1)[5::11] = -3.0
    g = rng.standard_normal(shape)
    y, dx = neuro_forward_backward(factory(), x, g)
    y_ref, dx_ref = torch_forward_backward(torch, oracle, x, g)
    dx_ref = exact_hard_sigmoid_grad(name, dx_ref, g)
    assert y.shape == shape and dx.shape == shape
    assert_close(y, y_ref, slack, x)
    assert_close(dx, dx_ref, slack, g * (1 + np.abs(x)))


EXTREME = np.array(
    [
        [1e4, -1e4, 750.0, -750.0, 0.0, 1.5],
        [-1e4, -40.0, -750.0, 0.0, 40.0, 1e4],
        [1e150, -1e150, 1e300, -1e300, 5e-324, -5e-324],
    ]
)


@pytest.mark.parametrize(("name", "factory", "oracle", "slack"), CASES, ids=IDS)
def test_extreme_inputs_without_warnings(torch, rng, name, factory, oracle, slack):
    x = EXTREME if name != "exponential" else np.clip(EXTREME, -1e4, 700.0)  # exp(750) is inf
    g = rng.standard_normal(x.shape)
    with strict_fp():
        y, dx = neuro_forward_backward(factory(), x, g)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    y_ref, dx_ref = torch_forward_backward(torch, oracle, x, g)
    dx_ref = exact_hard_sigmoid_grad(name, dx_ref, g)
    if name == "softsign":  # autograd of x/(1+|x|) cancels for large |x| (relative error |x|·eps)
        dx_ref = g / (1 + np.abs(x)) / (1 + np.abs(x))
    finite = np.isfinite(y_ref) & np.isfinite(dx_ref) & (np.abs(x) < 1e100)  # PyTorch overflows on x³, x²
    assert_close(y[finite], y_ref[finite], slack, x[finite])
    assert_close(dx[finite], dx_ref[finite], slack, g[finite])


def test_exponential_overflows_to_inf_as_numpy():
    with np.errstate(over="ignore"):
        y, ctx = Exponential().forward(np.array([710.0, -800.0]), training=True)
    assert y[0] == np.inf and y[1] == 0.0


# -- high-precision references in the tails ------------------------------------------------------------------
def _mp_refs():
    """For each activation, ``x -> (y, dy/dx, scale)`` in 50 digits; scale is the sum of the magnitudes of
    the derivative's terms (where they cancel, near a minimum of GELU or Mish, no float can do better than
    a few eps times it)."""
    mpmath = pytest.importorskip("mpmath")
    mp = mpmath.mp
    mp.dps = 50
    c = mpmath.sqrt(2 / mp.pi)
    k = mpmath.mpf("0.044715")

    def sig(v):
        return 1 / (1 + mpmath.exp(-v))

    def gelu(v):
        cdf, pdf = mpmath.ncdf(v), mpmath.npdf(v)
        return v * cdf, cdf + v * pdf, cdf + abs(v * pdf)

    def gelu_tanh(v):
        u = c * (v + k * v**3)
        s = sig(2 * u)
        term = v * s * (1 - s) * 2 * c * (1 + 3 * k * v**2)
        return v * s, s + term, s + abs(term)

    def swish(v):
        s = sig(v)
        return v * s, s + v * s * (1 - s), s + abs(v * s * (1 - s))

    def mish(v):
        t = mpmath.tanh(mpmath.log1p(mpmath.exp(v)))
        term = v * sig(v) * (1 - t**2)
        return v * t, t + term, abs(t) + abs(term)

    alpha = mpmath.mpf("1.6732632423543772848170429916717")
    scale = mpmath.mpf("1.0507009873554804934193349852946")

    def plain(f, df):
        return lambda v: (f(v), df(v), abs(df(v)))

    return {
        "gelu": gelu,
        "gelu_tanh": gelu_tanh,
        "elu": plain(lambda v: v if v > 0 else mpmath.expm1(v), lambda v: 1 if v > 0 else mpmath.exp(v)),
        "selu": plain(
            lambda v: scale * v if v > 0 else scale * alpha * mpmath.expm1(v),
            lambda v: scale if v > 0 else scale * alpha * mpmath.exp(v),
        ),
        "swish": swish,
        "softplus": plain(lambda v: mpmath.log1p(mpmath.exp(v)), sig),
        "softsign": plain(lambda v: v / (1 + abs(v)), lambda v: 1 / (1 + abs(v)) ** 2),
        "exponential": plain(mpmath.exp, mpmath.exp),
        "mish": mish,
    }


TAIL = np.concatenate([-np.geomspace(1e-12, 37.0, 300), np.geomspace(1e-12, 37.0, 300), [0.0]])


def _tail_tolerance(name, x):
    """neuro's relative error bound. Both GELU forms round their argument first (x/√2 before erfc, u =
    √(2/π)(x + 0.044715x³) before σ(2u)); the result's relative sensitivity to that argument is about x²
    (erfc) or |2u| (σ far out), so that rounding alone costs that many eps in the far negative tail."""
    base = 8e-16
    if name == "gelu":
        return base * (1 + x * x)
    if name == "gelu_tanh":
        u = np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)
        return base * (1 + 2 * np.abs(u) + x * x)
    return base + 0 * x


@pytest.mark.parametrize(
    "name", ["gelu", "gelu_tanh", "elu", "selu", "swish", "softplus", "softsign", "exponential", "mish"]
)
def test_tails_match_high_precision(name):
    refs = _mp_refs()
    factory = dict(zip(IDS, FACTORIES, strict=True))[name]
    x = TAIL if name != "exponential" else np.clip(TAIL, -37, 37)
    y, dx = neuro_forward_backward(factory(), x, np.ones_like(x))
    want = np.array([[float(w) for w in refs[name](neuro_mp(v))] for v in x])
    tol = _tail_tolerance(name, x)
    tiny = np.finfo(np.float64).tiny
    for got, ref, scale in ((y, want[:, 0], np.abs(want[:, 0])), (dx, want[:, 1], want[:, 2])):
        normal = scale >= tiny
        rel = np.abs(got[normal] - ref[normal]) / scale[normal]
        assert np.all(rel <= tol[normal]), (x[normal][np.argmax(rel / tol[normal])], rel.max())


def neuro_mp(v):
    import mpmath

    return mpmath.mpf(float(v))


# -- inside Dense -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "factory", "oracle", "slack"), CASES, ids=IDS)
def test_inside_dense_matches_torch(torch, rng, name, factory, oracle, slack):
    layer = Dense(4, activation=factory())
    layer.build((5,), rng, np.float64)
    layer.params["bias"][...] = rng.normal(0.0, 0.5, 4)
    x = rng.standard_normal((6, 5))
    y, ctx = layer.forward(x, training=True)
    g = rng.standard_normal(y.shape)
    dx = layer.backward(g, ctx)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.params["kernel"], requires_grad=True)
    tb = torch.tensor(layer.params["bias"], requires_grad=True)
    tz = tx @ tw + tb
    tz.retain_grad()
    ty = oracle(torch.nn.functional, tz)
    (ty * torch.tensor(g)).sum().backward()
    if name == "hard_sigmoid":  # the chain rule from the exact dL/dz
        dz = exact_hard_sigmoid_grad(name, tz.grad.numpy(), g)
        tx.grad, tw.grad, tb.grad = (torch.tensor(a) for a in (dz @ layer.params["kernel"].T, x.T @ dz, dz.sum(0)))
    z = x @ layer.params["kernel"] + layer.params["bias"]
    assert_close(y, ty.detach().numpy(), slack, z)
    assert_close(dx, tx.grad.numpy(), slack + 1, np.abs(g).sum() * 10)
    assert_close(layer.grads["kernel"], tw.grad.numpy(), slack + 1, np.abs(g).sum() * 10)
    assert_close(layer.grads["bias"], tb.grad.numpy(), slack + 1, np.abs(g).sum() * 10)


@pytest.mark.parametrize(
    "name", ["gelu", "elu", "selu", "swish", "silu", "softplus", "softsign", "hard_sigmoid", "exponential", "mish"]
)
def test_keras_names_inside_dense(name):
    net = Network((3,), "mse", "sgd", seed=0)
    net.add(Dense(4, activation=name)).add(Dense(1))
    assert net.layers[0].activation.name == ("swish" if name == "silu" else name)
    x = np.random.default_rng(0).standard_normal((5, 3))
    assert np.all(np.isfinite(net.predict(x)))


# -- finite differences, dtypes, contexts ------------------------------------------------------------------
@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_check_gradients(rng, factory):
    x = 2.0 * rng.standard_normal((5, 6))
    x += np.where(x >= 0, 0.1, -0.1)
    x[np.abs(np.abs(x) - 3.0) < 0.05] += 0.2  # away from the corners of the hard sigmoid
    report = neuro.check_gradients(factory(), x, max_entries=None)
    assert set(report.errors) == {"input"}
    assert report.max_error < 1e-8, report


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_float32_stays_float32(rng, factory):
    x = (3 * rng.standard_normal((4, 5))).astype(np.float32)
    act = factory()
    y, ctx = act.forward(x, training=True)
    dx = act.backward(np.ones_like(y), ctx)
    assert y.dtype == np.float32 and dx.dtype == np.float32
    y64, ctx64 = factory().forward(x.astype(np.float64), training=True)
    np.testing.assert_allclose(y, y64, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(dx, factory().backward(np.ones_like(y64), ctx64), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_inference_keeps_nothing_and_inplace_matches(rng, factory, assert_unchanged):
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
    y_in, ctx_in = factory().forward(x.copy(), training=True, inplace=True)
    y_ref, ctx_ref = factory().forward(x.copy(), training=True)
    np.testing.assert_array_equal(y_in, y_ref)
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(act.backward(g, ctx_in), act.backward(g, ctx_ref))


def test_hard_sigmoid_is_keras3s_definition(torch):
    x = np.array([-4.0, -3.0, -1.5, 0.0, 0.6, 3.0, 7.0])
    y = HardSigmoid()(x)
    np.testing.assert_array_equal(y, np.clip(x + 3.0, 0.0, 6.0) / 6.0)  # relu6(x + 3) / 6
    np.testing.assert_allclose(y, np.clip(x / 6 + 0.5, 0.0, 1.0), rtol=1e-15)
    np.testing.assert_array_equal(y, torch.nn.functional.hardsigmoid(torch.tensor(x)).numpy())


def test_gelu_tails_are_accurate_where_the_erf_form_cancels():
    x = np.array([-10.0, -20.0, -37.0])
    y = GELU()(x)
    want = np.array([v * 0.5 * math.erfc(-v * math.sqrt(0.5)) for v in x])
    np.testing.assert_allclose(y, want, rtol=1e-13)
    assert np.all(y < 0)  # (1 + erf(x/√2)) would be exactly 0 here


# -- names and configs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        ("gelu", GELU),
        ("GELU", GELU),
        ("elu", ELU),
        ("selu", SELU),
        ("swish", Swish),
        ("silu", Swish),
        ("SiLU", Swish),
        ("softplus", Softplus),
        ("softsign", Softsign),
        ("hard_sigmoid", HardSigmoid),
        ("HardSigmoid", HardSigmoid),
        ("hard-sigmoid", HardSigmoid),
        ("exponential", Exponential),
        ("mish", Mish),
    ],
)
def test_get_names_and_aliases(spec, cls):
    act = activations.get(spec)
    assert type(act) is cls
    assert act.name == cls.key
    assert registry.serialize(act)["class"] == cls.__name__
    assert getattr(neuro, cls.__name__) is cls and getattr(activations, cls.__name__) is cls


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_config_round_trip(factory):
    act = factory()
    again = activations.get(registry.serialize(act))
    assert type(again) is type(act) and again is not act and again.get_config() == act.get_config()


def test_arguments_in_the_config():
    assert GELU().get_config() == {"approximate": False}
    assert GELU(approximate="tanh").get_config() == {"approximate": True}
    assert GELU(approximate="none").approximate is False
    assert ELU(0.5).get_config() == {"alpha": 0.5}
    act = activations.get({"class": "gelu", "config": {"approximate": True}})
    assert isinstance(act, GELU) and act.approximate is True


@pytest.mark.parametrize("bad", ["yes", 1, 0.0, None, "TANH"])
def test_gelu_bad_approximate(bad):
    with pytest.raises(ValueError, match=r"approximate must be False, True, 'none' or 'tanh', got"):
        GELU(approximate=bad)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1", True, None])
def test_elu_bad_alpha(bad):
    with pytest.raises(ValueError, match=r"alpha must be a finite number, got"):
        ELU(alpha=bad)


# -- save and load --------------------------------------------------------------------------------------------
def test_network_with_every_new_activation_saves_loads_and_predicts_identically(tmp_path, rng):
    net = Network((4,), "mse", "adam", seed=0)
    for factory in FACTORIES:
        net.add(Dense(3, activation=factory()))
    net.add(Softsign()).add(Mish()).add(GELU(approximate=True)).add(Dense(2))
    x = rng.standard_normal((8, 4))
    net.fit(x, rng.standard_normal((8, 2)), batch_size=4, epochs=1, verbose=0)
    net.save(tmp_path / "m.h5")
    loaded = Network.load(tmp_path / "m.h5")
    assert [type(a.activation) for a in loaded.layers if hasattr(a, "activation")] == [
        type(a.activation) for a in net.layers if hasattr(a, "activation")
    ]
    assert [a.get_config() for a in loaded.layers] == [a.get_config() for a in net.layers]
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
