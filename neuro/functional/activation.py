"""Activation functions as stateless forward/backward pairs.

Each ``f(x, inplace=False) -> (y, ctx)`` returns the output and what its backward needs (the output for
ReLU, Sigmoid, Tanh and Softmax, the sign mask for LeakyReLU); ``f_backward(grad, ctx) -> dL/dx``. The
array module comes from the arguments, so the same code runs on NumPy, CuPy and the strict stand-in.
"""

from __future__ import annotations

from typing import Any

from neuro.backend import get_array_module, parallel_for, parallel_map


def relu(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """``y = max(x, 0)``; ctx is y (y > 0 exactly where x > 0).

    Args:
        x: input of any shape ``(N, ...)``.
        inplace: write y over x (x is then lost).

    Shape:
        y has the shape of x.

    Returns:
        ``(y, y)``: the output and its context for :func:`relu_backward`.
    """
    xp = get_array_module(x)
    y = x if inplace else xp.empty_like(x)
    zero = x.dtype.type(0)
    parallel_map(lambda a, out: xp.maximum(a, zero, out=out), y, x)
    return y, y


def relu_backward(grad: Any, y: Any) -> Any:
    """dL/dx = dL/dy · [y > 0].

    Args:
        grad: dL/dy, of the shape of y.
        y: the output of :func:`relu` (its context).

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
    xp = get_array_module(grad, y)
    return parallel_map(lambda g, a, out: xp.multiply(g, a > 0, out=out), xp.empty_like(grad), grad, y)


def leaky_relu(x: Any, alpha: float, inplace: bool = False) -> tuple[Any, Any]:
    """``y = x`` for x > 0, ``alpha·x`` otherwise; ctx is the mask ``x > 0``.

    Args:
        x: input of any shape ``(N, ...)``.
        alpha: slope for x ≤ 0.
        inplace: accepted for a uniform signature; the result is always a new array.

    Shape:
        y and the boolean mask have the shape of x.

    Returns:
        ``(y, mask)``.
    """
    xp = get_array_module(x)
    mask = x > 0
    return xp.where(mask, x, x * x.dtype.type(alpha)), mask


def leaky_relu_backward(grad: Any, mask: Any, alpha: float) -> Any:
    """dL/dx = dL/dy · (1 if x > 0 else alpha).

    Args:
        grad: dL/dy, of the shape of x.
        mask: the boolean ``x > 0`` from :func:`leaky_relu`.
        alpha: the slope of the forward pass.

    Returns:
        dL/dx, of the shape of ``grad``.
    """
    xp = get_array_module(grad, mask)
    return xp.where(mask, grad, grad * grad.dtype.type(alpha))


def sigmoid(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """Overflow-free logistic function through exp(−|x|), which lies in (0, 1]; ctx is y.

    ``y = 1/(1 + e^−x)`` for x ≥ 0 and ``e^x/(1 + e^x)`` otherwise.

    Args:
        x: input of any shape ``(N, ...)``.
        inplace: accepted for a uniform signature; the result is always a new array.

    Shape:
        y has the shape of x.

    Returns:
        ``(y, y)``: the output and its context for :func:`sigmoid_backward`.
    """
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    one = x.dtype.type(1)
    y = xp.where(x >= 0, one / (one + e), e / (one + e))
    return y, y


def sigmoid_backward(grad: Any, y: Any) -> Any:
    """dL/dx = dL/dy · y · (1 − y).

    Args:
        grad: dL/dy, of the shape of y.
        y: the output of :func:`sigmoid` (its context).

    Returns:
        dL/dx, of the shape of ``grad``.
    """
    return grad * y * (1 - y)


def tanh(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """Hyperbolic tangent; ctx is y.

    Args:
        x: input of any shape ``(N, ...)``.
        inplace: write y over x (x is then lost).

    Shape:
        y has the shape of x.

    Returns:
        ``(y, y)``: the output and its context for :func:`tanh_backward`.
    """
    xp = get_array_module(x)
    y = x if inplace else xp.empty_like(x)
    parallel_map(xp.tanh, y, x)
    return y, y


def tanh_backward(grad: Any, y: Any) -> Any:
    """dL/dx = dL/dy · (1 − y)(1 + y) (not 1 − y·y: near |y| = 1 its rounding would cost many digits).

    Args:
        grad: dL/dy, of the shape of y.
        y: the output of :func:`tanh` (its context).

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
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
    """Softmax along the last axis, shifted by the row maximum so that it never overflows; ctx is y.

    ``y_k = exp(x_k − max x) / Σ_j exp(x_j − max x)``.

    Args:
        x: input ``(..., K)``; the softmax runs over its last axis.
        inplace: write y over x (x is then lost).

    Shape:
        y has the shape of x; each row along the last axis sums to 1.

    Returns:
        ``(y, y)``: the output and its context for :func:`softmax_backward`.
    """
    xp = get_array_module(x)
    z = xp.subtract(x, x.max(axis=-1, keepdims=True), out=x if inplace else None)
    xp.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z, z


def softmax_backward(grad: Any, y: Any) -> Any:
    """The Jacobian-vector product dL/dx = y · (g − Σ_k g_k y_k), with g = dL/dy.

    Args:
        grad: g = dL/dy ``(..., K)``.
        y: the output of :func:`softmax` (its context), of the shape of ``grad``.

    Returns:
        dL/dx, of the shape of ``grad``.
    """
    return y * (grad - (grad * y).sum(axis=-1, keepdims=True))


def log_softmax(x: Any) -> Any:
    """Log-softmax along the last axis: ``x − max − log Σ exp(x − max)`` (finite for finite x).

    Args:
        x: input ``(..., K)``.

    Shape:
        The result has the shape of x.

    Returns:
        ``log softmax(x)``, a new array.
    """
    xp = get_array_module(x)
    z = x - x.max(axis=-1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
