"""Batch normalization as stateless functions (the running statistics are the caller's buffers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from neuro import backend
from neuro.backend import compiled, get_array_module, kernel, parallel_for
from neuro.functional.linear import column_sums


def batch_norm_inference(x: Any, gamma: Any, beta: Any, mean: Any, var: Any, epsilon: float) -> Any:
    """``y = gamma · (x − mean) / sqrt(var + epsilon) + beta`` with fixed statistics, per last-axis feature.

    Args:
        x: input ``(N, F)`` or ``(N, H, W, F)``.
        gamma: scale ``(F,)``.
        beta: shift ``(F,)``.
        mean: the running mean ``(F,)``.
        var: the running variance ``(F,)``.
        epsilon: added to the variance.

    Returns:
        y, of the shape of x.
    """
    xp = get_array_module(x, gamma, beta, mean, var)
    scale = gamma / xp.sqrt(var + x.dtype.type(epsilon))
    shift = beta - mean * scale
    return x * scale + shift


def batch_norm_inference_backward(
    grad: Any,
    x: Any,
    gamma: Any,
    mean: Any,
    var: Any,
    epsilon: float,
    dgamma: Any,
    dbeta: Any,
    need_input_grad: bool = True,
) -> Any:
    """Gradients of :func:`batch_norm_inference` (fixed statistics): what a frozen batch norm's backward is.

    Gradient: with g = dL/dy, s = 1/sqrt(var + epsilon) and sums over every value of a feature:
    dL/dgamma = Σ g·(x − mean)·s, dL/dbeta = Σ g, and dL/dx = g·gamma·s (the statistics are constants).

    Args:
        grad: dL/dy, of the shape of ``x``.
        x: the forward's input ``(N, F)`` or ``(N, H, W, F)``.
        gamma: the scale ``(F,)``.
        mean: the running mean ``(F,)``.
        var: the running variance ``(F,)``.
        epsilon: added to the variance.
        dgamma: array ``(F,)`` the gamma gradient is written into.
        dbeta: array ``(F,)`` the beta gradient is written into.
        need_input_grad: compute dL/dx (else return ``None``).

    Returns:
        dL/dx of the shape of ``grad``, or ``None``.
    """
    xp = get_array_module(grad, x, gamma, mean, var)
    inv_std = 1.0 / xp.sqrt(var + x.dtype.type(epsilon))
    g = grad.reshape(-1, grad.shape[-1])
    column_sums(g, out=dbeta)
    dgamma[...] = xp.einsum("ij,ij->j", g, x.reshape(-1, x.shape[-1]) - mean) * inv_std
    if not need_input_grad:
        return None
    return grad * (gamma * inv_std)


def batch_norm_train(
    x: Any, gamma: Any, beta: Any, epsilon: float, reduce: Callable[[Any], Any] | None = None
) -> tuple[Any, Any, Any, Any]:
    """Normalize with the batch's statistics over every axis but the last.

    Args:
        x: input ``(N, F)`` or ``(N, ..., F)``; the m = N (or N·H·W) values of each feature are normalized.
        gamma: scale ``(F,)``.
        beta: shift ``(F,)``.
        epsilon: added to the variance.
        reduce: for statistics over several processes (synchronised batch norm): a function that sums a
            float64 array over the processes and returns the sum as a host NumPy array (the reductions of
            MPI go through the host). The mean is then that of the global batch (one reduction of the sums
            and counts), and the variance the two-pass one (a second reduction of the squared deviations from
            the global mean). ``None``: this batch alone.

    Returns:
        ``(y, mean, var, ctx)``: the output, the batch mean and *biased* variance per feature, and the
        context of :func:`batch_norm_backward`, whose third item is m, the number of values per feature
        (over every process with ``reduce``).
    """
    xp = get_array_module(x, gamma, beta)
    dt = x.dtype.type
    x2 = x.reshape(-1, x.shape[-1])
    fast = _fused(x2, gamma, beta)
    if reduce is None:
        m = x2.shape[0]
        mean = column_sums(x2) / dt(m)  # x2.mean(axis=0), its rows added in blocks
        xhat = _centered(x2, mean, fast)
        var = xp.einsum("ij,ij->j", xhat, xhat) / dt(m)
    else:
        local = xp.concatenate([x2.sum(axis=0, dtype=np.float64), xp.full((1,), float(x2.shape[0]))])
        sums = reduce(local)
        m = int(sums[-1])
        mean = backend.to_device((sums[:-1] / m).astype(dt), xp)
        xhat = _centered(x2, mean, fast)
        var = backend.to_device(
            (reduce(xp.einsum("ij,ij->j", xhat, xhat).astype(np.float64)) / m).astype(dt), xp
        )
    inv_std = 1.0 / xp.sqrt(var + dt(epsilon))
    y = xp.empty_like(xhat)
    if fast:
        parallel_for(lambda a, b: _normalize_kernel(xhat[a:b], inv_std, gamma, beta, y[a:b]), m, 3 * y.size)
    else:

        def normalize(a: int, b: int) -> None:
            xh, yp = xhat[a:b], y[a:b]
            xh *= inv_std
            xp.multiply(xh, gamma, out=yp)
            yp += beta

        _in_row_chunks(normalize, xhat, xp)
    return y.reshape(x.shape), mean, var, (xhat, inv_std, m, reduce)


def _fused(x2: Any, *vectors: Any, matrices: tuple = ()) -> bool:
    """Whether the batch norm's elementwise passes over the matrix ``x2`` run as compiled kernels (one pass
    each, the per-feature vectors read along each row): NumPy arrays of one dtype under the compiled kernel
    set. NumPy's passes broadcast a vector of F values along every row, F values a step, which is slow for
    the few channels of a convolution."""
    return (
        x2.ndim == 2
        and x2.shape[1] > 0
        and compiled(x2, *vectors, *matrices)
        and x2.flags.c_contiguous
        and all(v.dtype == x2.dtype for v in (*vectors, *matrices))
        # the kernels index a vector by the feature and a matrix as x2: other shapes take NumPy's path
        and all(v.shape == (x2.shape[1],) for v in vectors)
        and all(m.shape == x2.shape for m in matrices)
    )


def _centered(x2: Any, mean: Any, fast: bool) -> Any:
    """``x2 − mean``, a new matrix."""
    if not fast:
        return x2 - mean
    out = np.empty_like(x2)
    parallel_for(lambda a, b: _center_kernel(x2[a:b], mean, out[a:b]), x2.shape[0], 2 * x2.size)
    return out


@kernel
def _center_kernel(x, mean, out):
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = x[i, j] - mean[j]


@kernel
def _normalize_kernel(xhat, inv_std, gamma, beta, y):
    for i in range(xhat.shape[0]):  # normalize's three NumPy passes, in their order
        for j in range(xhat.shape[1]):
            t = xhat[i, j] * inv_std[j]
            xhat[i, j] = t
            y[i, j] = t * gamma[j] + beta[j]


#: Elementwise passes of the batch norm run this many elements at a time, so that a chunk stays in cache
#: from one pass to the next.
ROW_CHUNK = 1 << 16


def _in_row_chunks(fn: Callable[[int, int], None], a: Any, xp: Any) -> None:
    """``fn(start, stop)`` over chunks of rows of the matrix ``a`` (about :data:`ROW_CHUNK` elements each),
    the rows split over neuro's threads. Each pass is elementwise: the results are those of whole-array
    passes, bitwise."""
    rows = max(1, ROW_CHUNK // max(1, a.shape[1]))

    def part(start: int, stop: int) -> None:
        for c in range(start, stop, rows):
            fn(c, min(stop, c + rows))

    backend.parallel_for(part, a.shape[0], 4 * a.size, xp)


def batch_norm_backward(
    grad: Any, ctx: Any, gamma: Any, dgamma: Any, dbeta: Any, need_input_grad: bool = True
) -> Any:
    """Gradients of :func:`batch_norm_train`.

    Gradient: with g = dL/dy, x̂ the normalized input and m values per feature (sums over those m values):
    dL/dgamma = Σ g·x̂, dL/dbeta = Σ g, and
    dL/dx = gamma / (sqrt(var + epsilon) · m) · (m·g − Σ g − x̂ · Σ g·x̂).
    With a ``reduce`` in the forward, the two sums in dL/dx run over every process (one reduction); the
    parameter gradients stay this process's sums (the training step reduces them with the others).

    Args:
        grad: dL/dy, of the shape of the input.
        ctx: the context :func:`batch_norm_train` returned.
        gamma: the scale of the forward pass.
        dgamma: array ``(F,)`` the gamma gradient is written into.
        dbeta: array ``(F,)`` the beta gradient is written into.
        need_input_grad: compute dL/dx (else return ``None``).

    Returns:
        dL/dx of the shape of ``grad``, or ``None``.
    """
    xhat, inv_std, m, reduce = ctx
    xp = get_array_module(grad, gamma)
    g = grad.reshape(-1, grad.shape[-1])
    column_sums(g, out=dbeta)
    dgamma[...] = xp.einsum("ij,ij->j", g, xhat)
    if not need_input_grad:
        return None
    dt = grad.dtype.type
    if reduce is None:
        c_gamma, c_beta = dgamma / dt(m), dbeta / dt(m)  # the sums divided by m first
    else:
        f = g.shape[1]
        t = reduce(xp.concatenate([dbeta.astype(np.float64), dgamma.astype(np.float64)]))
        c_beta = backend.to_device((t[:f] / m).astype(dt), xp)
        c_gamma = backend.to_device((t[f:] / m).astype(dt), xp)
    scale = gamma * inv_std
    dx = xp.empty_like(xhat)
    if _fused(g, c_gamma, c_beta, scale, matrices=(xhat,)) and xhat.flags.c_contiguous:
        parallel_for(
            lambda a, b: _input_grad_kernel(g[a:b], xhat[a:b], c_gamma, c_beta, scale, dx[a:b]),
            g.shape[0],
            3 * g.size,
        )
        return dx.reshape(grad.shape)

    def input_grad(a: int, b: int) -> None:
        d = xp.multiply(xhat[a:b], c_gamma, out=dx[a:b])
        d += c_beta
        xp.subtract(g[a:b], d, out=d)
        d *= scale

    _in_row_chunks(input_grad, xhat, xp)
    return dx.reshape(grad.shape)


@kernel
def _input_grad_kernel(g, xhat, c_gamma, c_beta, scale, dx):
    for i in range(g.shape[0]):  # input_grad's four NumPy passes, in their order
        for j in range(g.shape[1]):
            d = xhat[i, j] * c_gamma[j]
            d = d + c_beta[j]
            d = g[i, j] - d
            dx[i, j] = d * scale[j]
