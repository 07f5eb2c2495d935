"""Batch normalization as stateless functions (the running statistics are the caller's buffers)."""

from __future__ import annotations

from typing import Any

from neuro.backend import get_array_module


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


def batch_norm_train(x: Any, gamma: Any, beta: Any, epsilon: float) -> tuple[Any, Any, Any, Any]:
    """Normalize with the batch's statistics over every axis but the last.

    Args:
        x: input ``(N, F)`` or ``(N, H, W, F)``; the m = N (or N·H·W) values of each feature are normalized.
        gamma: scale ``(F,)``.
        beta: shift ``(F,)``.
        epsilon: added to the variance.

    Returns:
        ``(y, mean, var, ctx)``: the output, the batch mean and *biased* variance per feature, and the
        context of :func:`batch_norm_backward`.
    """
    xp = get_array_module(x, gamma, beta)
    x2 = x.reshape(-1, x.shape[-1])
    m = x2.shape[0]
    mean = x2.mean(axis=0)
    xhat = x2 - mean
    var = xp.einsum("ij,ij->j", xhat, xhat) / x.dtype.type(m)
    inv_std = 1.0 / xp.sqrt(var + x.dtype.type(epsilon))
    xhat *= inv_std
    y = xhat * gamma
    y += beta
    return y.reshape(x.shape), mean, var, (xhat, inv_std)


def batch_norm_backward(
    grad: Any, ctx: Any, gamma: Any, dgamma: Any, dbeta: Any, need_input_grad: bool = True
) -> Any:
    """Gradients of :func:`batch_norm_train`.

    Gradient: with g = dL/dy, x̂ the normalized input and m values per feature (sums over those m values):
    dL/dgamma = Σ g·x̂, dL/dbeta = Σ g, and
    dL/dx = gamma / (sqrt(var + epsilon) · m) · (m·g − Σ g − x̂ · Σ g·x̂).

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
    xhat, inv_std = ctx
    xp = get_array_module(grad, gamma)
    g = grad.reshape(-1, grad.shape[-1])
    m = g.shape[0]
    g.sum(axis=0, out=dbeta)
    dgamma[...] = xp.einsum("ij,ij->j", g, xhat)
    if not need_input_grad:
        return None
    # the sums divided by m first
    dx = xhat * (dgamma / grad.dtype.type(m))
    dx += dbeta / grad.dtype.type(m)
    xp.subtract(g, dx, out=dx)
    dx *= gamma * inv_std
    return dx.reshape(grad.shape)
