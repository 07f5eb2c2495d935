"""Activation functions as stateless forward/backward pairs.

Each ``f(x, inplace=False) -> (y, ctx)`` returns the output and what its backward needs (the output for
ReLU, Sigmoid, Tanh and Softmax, the sign mask for LeakyReLU); ``f_backward(grad, ctx) -> dL/dx``. The
array module comes from the arguments, so the same code runs on NumPy, CuPy and the strict stand-in.
"""

from __future__ import annotations

from typing import Any

from neuro.backend import get_array_module, parallel_for


def relu(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """``y = max(x, 0)``; ctx is y (y > 0 exactly where x > 0)."""
    xp = get_array_module(x)
    y = x if inplace else xp.empty_like(x)
    zero = x.dtype.type(0)

    def part(start: int, stop: int) -> None:
        xp.maximum(x[start:stop], zero, out=y[start:stop])

    parallel_for(part, len(x), x.size, xp)
    return y, y


def relu_backward(grad: Any, y: Any) -> Any:
    """dL/dx = dL/dy · [y > 0]."""
    xp = get_array_module(grad, y)
    out = xp.empty_like(grad)

    def part(start: int, stop: int) -> None:
        xp.multiply(grad[start:stop], y[start:stop] > 0, out=out[start:stop])

    parallel_for(part, len(grad), grad.size, xp)
    return out


def leaky_relu(x: Any, alpha: float, inplace: bool = False) -> tuple[Any, Any]:
    """``y = x`` for x > 0, ``alpha·x`` otherwise; ctx is the mask ``x > 0``."""
    xp = get_array_module(x)
    mask = x > 0
    return xp.where(mask, x, x * x.dtype.type(alpha)), mask


def leaky_relu_backward(grad: Any, mask: Any, alpha: float) -> Any:
    """dL/dx = dL/dy · (1 if x > 0 else alpha)."""
    xp = get_array_module(grad, mask)
    return xp.where(mask, grad, grad * grad.dtype.type(alpha))


def sigmoid(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """Overflow-free logistic function through exp(−|x|), which lies in (0, 1]; ctx is y."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    one = x.dtype.type(1)
    y = xp.where(x >= 0, one / (one + e), e / (one + e))
    return y, y


def sigmoid_backward(grad: Any, y: Any) -> Any:
    """dL/dx = dL/dy · y · (1 − y)."""
    return grad * y * (1 - y)


def tanh(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """Hyperbolic tangent; ctx is y."""
    xp = get_array_module(x)
    y = x if inplace else xp.empty_like(x)

    def part(start: int, stop: int) -> None:
        xp.tanh(x[start:stop], out=y[start:stop])

    parallel_for(part, len(x), x.size, xp)
    return y, y


def tanh_backward(grad: Any, y: Any) -> Any:
    """dL/dx = dL/dy · (1 − y)(1 + y) (not 1 − y·y: near |y| = 1 its rounding would cost many digits)."""
    xp = get_array_module(grad, y)
    out = xp.empty_like(grad)
    one = grad.dtype.type(1)

    def part(start: int, stop: int) -> None:
        ys, o = y[start:stop], out[start:stop]
        xp.subtract(one, ys, out=o)
        o *= ys + one
        o *= grad[start:stop]

    parallel_for(part, len(grad), 3 * grad.size, xp)
    return out


def softmax(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """Softmax along the last axis, shifted by the row maximum so that it never overflows; ctx is y."""
    xp = get_array_module(x)
    z = xp.subtract(x, x.max(axis=-1, keepdims=True), out=x if inplace else None)
    xp.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z, z


def softmax_backward(grad: Any, y: Any) -> Any:
    """The Jacobian-vector product dL/dx = y · (g − Σ_k g_k y_k), with g = dL/dy."""
    return y * (grad - (grad * y).sum(axis=-1, keepdims=True))


def log_softmax(x: Any) -> Any:
    """Log-softmax along the last axis: ``x − max − log Σ exp(x − max)`` (finite for finite x)."""
    xp = get_array_module(x)
    z = x - x.max(axis=-1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
