"""check_gradients itself: it must fail a wrong gradient, whatever way it is wrong, and refuse what it cannot
check instead of reporting a clean 0."""

from __future__ import annotations

import math

import numpy as np
import pytest

import neuro
from neuro.layers import Dense, Flatten


class _NaNBias(Dense):
    def affine_backward(self, grad, ctx):
        dx = super().affine_backward(grad, ctx)
        self.grads["bias"][...] = np.nan
        return dx


class _InfKernelEntry(Dense):
    def affine_backward(self, grad, ctx):
        dx = super().affine_backward(grad, ctx)
        self.grads["kernel"][0, 0] = np.inf
        return dx


class _FlatGradient(Flatten):
    def backward(self, grad, ctx):
        return grad  # (N, 24) instead of the input's (N, 3, 4, 2)


class _NoGradient(Flatten):
    def backward(self, grad, ctx):
        return None


X = np.random.default_rng(0).standard_normal((4, 5))


@pytest.mark.parametrize("cls", [_NaNBias, _InfKernelEntry])
def test_a_non_finite_gradient_fails_the_check(cls):
    """Python's max() skipped a NaN error that was not first: a NaN bias gradient reported max_error 1e-10."""
    report = neuro.check_gradients(cls(3), X)
    assert math.isinf(report.max_error)
    assert not report.max_error < 1e-6


def test_a_non_finite_gradient_fails_the_check_of_a_network(float64):
    net = neuro.Network((5,), "mse", "sgd", seed=0)
    net.add(Dense(4, activation="tanh"))
    net.add(_NaNBias(1))
    report = neuro.check_gradients(net, X, np.zeros((4, 1)))
    assert math.isinf(report.max_error)
    assert [k for k, v in report.errors.items() if not v < 1e-6] == ["1._nanbias.bias"]


def test_a_gradient_of_another_shape_or_none_is_refused():
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 2))
    with pytest.raises(ValueError, match=r"the gradient of input has shape \(2, 24\), expected \(2, 3, 4, 2\)"):
        neuro.check_gradients(_FlatGradient(), x)
    with pytest.raises(ValueError, match=r"the backward pass gave no gradient for input \(None\), expected"):
        neuro.check_gradients(_NoGradient(), x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": 0}, "eps must be a finite number > 0, got 0"),
        ({"eps": -1e-6}, "eps must be a finite number > 0, got -1e-06"),
        ({"eps": math.nan}, "eps must be a finite number > 0, got nan"),
        ({"max_entries": 0}, "max_entries must be a whole number >= 1 or None, got 0"),
        ({"max_entries": -5}, "max_entries must be a whole number >= 1 or None, got -5"),
        ({"max_entries": 2.5}, "max_entries must be a whole number >= 1 or None, got 2.5"),
        ({"seed": -1}, "seed must be a whole number >= 0, got -1"),
        ({"seed": True}, "seed must be a whole number >= 0, got True"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        neuro.check_gradients(Dense(3), X, **kwargs)


def test_nothing_to_check_is_refused():
    with pytest.raises(ValueError, match=r"x must hold at least one sample, got shape \(0, 5\)"):
        neuro.check_gradients(Dense(3), X[:0])
    with pytest.raises(ValueError, match=r"found nothing to check: no float input .* \(x of shape \(4, 3\)\)"):
        neuro.check_gradients(Flatten(), np.arange(12).reshape(4, 3))


def test_a_right_gradient_still_passes(float64):
    report = neuro.check_gradients(Dense(3, activation="tanh"), X)
    assert set(report.errors) == {"input", "kernel", "bias"} and report.max_error < 1e-7
