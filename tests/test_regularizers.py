"""Regularizers: penalty values, gradients against formulas and finite differences, configs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuro import registry, regularizers


def _weights(rng, shape=(4, 3, 2)):
    w = rng.standard_normal(shape)
    w[np.abs(w) < 0.05] = 0.5  # keep L1 away from its kink at 0 for finite differences
    return np.asarray(w)


def test_l1_penalty_and_gradient_formulas(float64, rng):
    w = _weights(rng)
    reg = regularizers.L1(0.03)
    assert float(reg.penalty(w)) == pytest.approx(0.03 * np.abs(w).sum(), rel=1e-14)
    grad = rng.standard_normal(w.shape)
    expected = grad + 0.03 * np.sign(w)
    reg.add_gradient(w, grad)
    np.testing.assert_allclose(grad, expected, rtol=1e-15)


def test_l2_penalty_and_gradient_formulas(float64, rng):
    w = _weights(rng)
    reg = regularizers.L2(0.2)
    assert float(reg.penalty(w)) == pytest.approx(0.5 * 0.2 * (w**2).sum(), rel=1e-14)
    grad = rng.standard_normal(w.shape)
    expected = grad + 0.2 * w
    reg.add_gradient(w, grad)
    np.testing.assert_allclose(grad, expected, rtol=1e-15)


def test_penalty_is_a_sum_not_a_mean(rng):
    w = np.ones((10, 10), dtype=np.float32)
    assert float(regularizers.L2(1.0).penalty(w)) == pytest.approx(50.0)
    assert float(regularizers.L1(1.0).penalty(w)) == pytest.approx(100.0)
    for reg in (regularizers.L1(1.0), regularizers.L2(1.0)):
        p = reg.penalty(w)  # a 0-d value in the weights' dtype, on their device (nothing read back)
        assert np.ndim(p) == 0 and p.dtype == np.float32


@pytest.mark.parametrize("reg", [regularizers.L1(0.07), regularizers.L2(0.3)], ids=repr)
def test_gradient_matches_finite_differences(float64, rng, reg):
    w = _weights(rng)
    analytic = np.zeros_like(w)
    reg.add_gradient(w, analytic)
    numeric = np.zeros_like(w)
    eps = 1e-6
    for idx in np.ndindex(w.shape):
        orig = w[idx]
        w[idx] = orig + eps
        plus = float(reg.penalty(w))
        w[idx] = orig - eps
        minus = float(reg.penalty(w))
        w[idx] = orig
        numeric[idx] = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_l1_gradient_is_zero_at_zero():
    w = np.array([-2.0, 0.0, 3.0], dtype=np.float32)
    grad = np.zeros(3, dtype=np.float32)
    regularizers.L1(0.5).add_gradient(w, grad)
    np.testing.assert_array_equal(grad, [-0.5, 0.0, 0.5])


@pytest.mark.parametrize("reg", [regularizers.L1(0.1), regularizers.L2(0.1)], ids=repr)
def test_add_gradient_in_place_keeps_float32(reg, rng):
    w = rng.standard_normal((5, 4)).astype(np.float32)
    grad = np.ones((5, 4), dtype=np.float32)
    w_before = w.copy()
    reg.add_gradient(w, grad)
    assert grad.dtype == np.float32
    assert not np.array_equal(grad, np.ones((5, 4)))
    np.testing.assert_array_equal(w, w_before)


def test_zero_strength_is_a_no_op(rng):
    w = rng.standard_normal((3, 3))
    grad = np.zeros((3, 3))
    for reg in (regularizers.L1(0), regularizers.L2(0.0)):
        assert float(reg.penalty(w)) == 0.0
        reg.add_gradient(w, grad)
    np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize("reg", [regularizers.L1(0.01), regularizers.L2(2)], ids=repr)
def test_config_round_trip(reg):
    cfg = reg.get_config()
    assert cfg == {"lam": reg.lam}
    spec = registry.serialize(reg)
    assert spec == {"class": type(reg).__name__, "config": cfg}
    for again in (regularizers.get(spec), type(reg).from_config(cfg)):
        assert type(again) is type(reg) and again is not reg
        assert again.lam == reg.lam
    lower = regularizers.get({"class": type(reg).__name__.lower(), "config": {"lam": 0.5}})
    assert type(lower) is type(reg) and lower.lam == 0.5


def test_get_variants():
    reg = regularizers.L2(0.1)
    assert regularizers.get(reg) is reg
    assert regularizers.get(None) is None
    with pytest.raises(ValueError, match=r"regularizer must be one of \['L1', 'L2'\], got 'L3'"):
        regularizers.get({"class": "L3", "config": {"lam": 0.1}})
    with pytest.raises(ValueError, match=r"regularizer must be one of \['L1', 'L2'\], got 'L3'"):
        regularizers.get("L3")
    with pytest.raises(ValueError, match="regularizer spec must be"):
        regularizers.get({"name": "L2", "lam": 0.1})  # the old config format
    for name in ("l2", "L2"):  # a name (or a class) alone gives the default strength, 0.01 as in Keras
        by_name = regularizers.get(name)
        assert type(by_name) is regularizers.L2 and by_name.lam == 0.01
    by_class = regularizers.get(regularizers.L1)
    assert type(by_class) is regularizers.L1 and by_class.lam == 0.01
    with pytest.raises(TypeError, match="regularizer must be a name or a Regularizer, got float"):
        regularizers.get(0.1)


@pytest.mark.parametrize("lam", [-0.1, math.nan, math.inf, True, "0.1", None])
@pytest.mark.parametrize("cls", [regularizers.L1, regularizers.L2])
def test_bad_lam(cls, lam):
    with pytest.raises(ValueError, match=r"^lam must be a finite non-negative number, got "):
        cls(lam)


def test_compile_keeps_the_models_regularizer_unless_told_otherwise():
    """A regularizer given to the constructor survives compile (Keras's compile takes none; the model's once
    fell back to None there, training on without its penalty); compile(regularizer=None) removes it."""
    import neuro
    from neuro.regularizers import L2

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    inp = neuro.Input((3,))
    model = neuro.Model(inp, neuro.Dense(2)(inp), regularizer=L2(10.0), seed=0)
    model.compile("mse", "sgd")
    assert isinstance(model.regularizer, L2) and model.regularizer.lam == 10.0
    kernel = model.layers[-1].params["kernel"]
    penalty = 10.0 / 2 * float(np.sum(kernel.astype(np.float64) ** 2))
    data_loss = float(np.sum((model.predict(x) - y) ** 2)) / len(x)  # summed over outputs
    assert model.evaluate(x, y, verbose=0)["loss"] == pytest.approx(data_loss + penalty, rel=1e-5)
    model.compile("mae", "sgd")  # another loss: the penalty stays
    assert isinstance(model.regularizer, L2)
    net = neuro.Network((3,), regularizer=L2(0.5), seed=0)
    net.add(neuro.Dense(2))
    net.compile("mse", "adam")
    assert isinstance(net.regularizer, L2) and net.regularizer.lam == 0.5
    model.compile("mse", "sgd", regularizer=None)
    assert model.regularizer is None
