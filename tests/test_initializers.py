"""Initializers: fans, sample statistics against the formulas, seeding, dtype, configs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuro import initializers, registry

DENSE = (784, 500)
CONV = (3, 3, 32, 64)


@pytest.mark.parametrize(
    ("shape", "fans"),
    [
        (DENSE, (784, 500)),
        (CONV, (3 * 3 * 32, 3 * 3 * 64)),
        ((5, 4, 3), (20, 15)),  # Conv1D kernel (k, in, out)
        ((7,), (7, 7)),
        ((), (1, 1)),
        ([np.int64(3), np.int64(2)], (3, 2)),
    ],
)
def test_compute_fans(shape, fans):
    got = initializers.compute_fans(shape)
    assert got == fans
    assert all(type(f) is int for f in got)


def _fan_avg(shape):
    fan_in, fan_out = initializers.compute_fans(shape)
    return (fan_in + fan_out) / 2


# name -> (distribution, std as a function of the shape)
VARIANCE_SCALING = {
    "GlorotNormal": ("normal", lambda s: math.sqrt(1 / _fan_avg(s))),
    "GlorotUniform": ("uniform", lambda s: math.sqrt(1 / _fan_avg(s))),
    "HeNormal": ("normal", lambda s: math.sqrt(2 / initializers.compute_fans(s)[0])),
    "HeUniform": ("uniform", lambda s: math.sqrt(2 / initializers.compute_fans(s)[0])),
    "LecunNormal": ("normal", lambda s: math.sqrt(1 / initializers.compute_fans(s)[0])),
    "LecunUniform": ("uniform", lambda s: math.sqrt(1 / initializers.compute_fans(s)[0])),
}


def _check_normal(w, mean, std):
    n = w.size
    assert abs(w.mean() - mean) < 5 * std / math.sqrt(n)
    assert w.std() == pytest.approx(std, rel=6 / math.sqrt(2 * n))


def _check_uniform(w, low, high):
    n = w.size
    assert w.min() >= low
    assert w.max() < high
    width = high - low
    assert w.min() < low + 0.002 * width and w.max() > high - 0.002 * width
    assert abs(w.mean() - (low + high) / 2) < 5 * (width / math.sqrt(12)) / math.sqrt(n)
    assert w.std() == pytest.approx(width / math.sqrt(12), rel=6 / math.sqrt(n))


@pytest.mark.parametrize("shape", [DENSE, CONV], ids=["dense", "conv"])
@pytest.mark.parametrize("name", sorted(VARIANCE_SCALING))
def test_variance_scaling_statistics(name, shape, rng):
    distribution, std_of = VARIANCE_SCALING[name]
    std = std_of(shape)
    w = initializers.get(name)(shape, rng, np.float64)
    assert w.shape == shape
    if distribution == "normal":
        _check_normal(w, 0.0, std)
    else:
        limit = math.sqrt(3) * std
        _check_uniform(w, -limit, limit)


def test_explicit_limits():
    # the documented closed forms, for a Dense (784, 500) and a Conv2D (3, 3, 32, 64) kernel
    assert initializers.HeUniform().std(DENSE) * math.sqrt(3) == pytest.approx(math.sqrt(6 / 784))
    assert initializers.GlorotUniform().std(CONV) * math.sqrt(3) == pytest.approx(math.sqrt(6 / (288 + 576)))
    assert initializers.GlorotNormal().std(DENSE) == pytest.approx(math.sqrt(2 / 1284))
    assert initializers.HeNormal().std(CONV) == pytest.approx(math.sqrt(2 / 288))
    assert initializers.LecunNormal().std(CONV) == pytest.approx(math.sqrt(1 / 288))
    assert initializers.LecunUniform().std(DENSE) * math.sqrt(3) == pytest.approx(math.sqrt(3 / 784))


@pytest.mark.parametrize("shape", [DENSE, CONV], ids=["dense", "conv"])
def test_fixed_distributions(shape, rng):
    _check_normal(initializers.Normal()(shape, rng, np.float64), 0.0, 0.01)
    _check_normal(initializers.NormalScaled(2.0, 0.5)(shape, rng, np.float64), 2.0, 0.5)
    _check_uniform(initializers.Uniform()(shape, rng, np.float64), -0.01, 0.01)
    _check_uniform(initializers.UniformBounded(-2.0, 3.0)(shape, rng, np.float64), -2.0, 3.0)


def test_constants(rng):
    np.testing.assert_array_equal(initializers.Zeros()((3, 2), rng), np.zeros((3, 2)))
    np.testing.assert_array_equal(initializers.Ones()((4,), rng), np.ones(4))
    np.testing.assert_array_equal(initializers.Constant(0.25)(CONV, rng), np.full(CONV, 0.25))


ALL = registry.names("initializer")


def test_all_initializers_are_registered():
    assert ALL == [
        "Constant",
        "GlorotNormal",
        "GlorotUniform",
        "HeNormal",
        "HeUniform",
        "LecunNormal",
        "LecunUniform",
        "Normal",
        "NormalScaled",
        "Ones",
        "Orthogonal",
        "RandomNormal",
        "RandomUniform",
        "TruncatedNormal",
        "Uniform",
        "UniformBounded",
        "Zeros",
    ]


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_values_and_dtype(name):
    init = initializers.get(name)
    a = init(CONV, np.random.default_rng(7), np.float32)
    b = init(CONV, np.random.default_rng(7), np.float32)
    c = init(CONV, np.random.default_rng(7), np.float64)
    assert a.dtype == np.float32 and c.dtype == np.float64 and a.shape == CONV
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c.astype(np.float32))
    if name not in ("Constant", "Zeros", "Ones"):
        d = init(CONV, np.random.default_rng(8), np.float32)
        assert not np.array_equal(a, d)


def test_default_dtype_follows_backend(float64, rng):
    assert initializers.HeUniform()((3, 2), rng).dtype == np.float64


def test_default_dtype_is_float32(rng):
    assert initializers.GlorotNormal()((3, 2), rng).dtype == np.float32


def test_draws_from_the_given_generator():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    first = initializers.HeNormal()((10, 10), rng)
    assert rng.bit_generator.state != state
    second = initializers.HeNormal()((10, 10), rng)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize(
    "init",
    [
        initializers.Constant(0.5),
        initializers.NormalScaled(1.0, 0.2),
        initializers.UniformBounded(-1.0, 2.0),
        initializers.HeUniform(),
        initializers.Zeros(),
        initializers.Ones(),
        initializers.Normal(),
        initializers.Uniform(),
    ],
    ids=lambda i: type(i).__name__,
)
def test_config_round_trip(init, rng):
    cfg = init.get_config()
    assert "name" not in cfg
    spec = registry.serialize(init)
    assert spec == {"class": type(init).__name__, "config": cfg}
    for again in (initializers.get(spec), type(init).from_config(cfg)):
        assert type(again) is type(init) and again is not init
        assert again.get_config() == cfg
        np.testing.assert_array_equal(
            again((4, 3), np.random.default_rng(1)), init((4, 3), np.random.default_rng(1))
        )


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("he_uniform", initializers.HeUniform),
        ("HeUniform", initializers.HeUniform),
        ("glorot_normal", initializers.GlorotNormal),
        ("lecun_uniform", initializers.LecunUniform),
        ("zeros", initializers.Zeros),
        ("uniform_bounded", initializers.UniformBounded),
    ],
)
def test_get_by_name(name, cls):
    assert type(initializers.get(name)) is cls


def test_get_rejects_unknown():
    with pytest.raises(ValueError, match="initializer must be one of .*got 'identity'"):
        initializers.get("identity")
    with pytest.raises(TypeError, match="initializer must be a name or an Initializer, got float"):
        initializers.get(0.5)


@pytest.mark.parametrize(
    ("make", "arg"),
    [
        (lambda: initializers.NormalScaled(0.0, -1.0), "std"),
        (lambda: initializers.NormalScaled(0.0, math.nan), "std"),
        (lambda: initializers.NormalScaled(math.inf, 1.0), "mean"),
        (lambda: initializers.UniformBounded(1.0, 1.0), "high"),
        (lambda: initializers.UniformBounded(2.0, 1.0), "high"),
        (lambda: initializers.UniformBounded(None, 1.0), "low"),
        (lambda: initializers.Constant("a"), "value"),
    ],
)
def test_bad_arguments(make, arg):
    with pytest.raises(ValueError, match=rf"^{arg} must be .*got "):
        make()


def test_orthogonal_is_orthonormal_with_its_gain_and_refuses_vectors():
    rng = np.random.default_rng(0)
    wide = initializers.Orthogonal()((4, 16), rng, np.float64)  # a recurrent kernel (u, 4u)
    np.testing.assert_allclose(wide @ wide.T, np.eye(4), atol=1e-12)
    tall = initializers.Orthogonal(gain=2.0)((3, 3, 8, 5), rng, np.float64)
    flat = tall.reshape(-1, 5)
    np.testing.assert_allclose(flat.T @ flat, 4 * np.eye(5), atol=1e-12)
    with pytest.raises(ValueError, match=r"Orthogonal needs a shape of at least 2 axes, got \(5,\)"):
        initializers.Orthogonal()((5,), rng)
    with pytest.raises(ValueError, match="gain must be a finite number"):
        initializers.Orthogonal(gain=float("inf"))
