"""Sequence operations as stateless forward/backward pairs: 1-D convolution (strides, dilation, causal
padding), mask-aware global pooling over time, and layer normalization.

Sequences are batch-first and channels-last, ``(N, T, C)``; a mask is ``(N, T)`` booleans, True for the
valid steps.
"""

from __future__ import annotations

from typing import Any

from neuro.backend import get_array_module, matmul


# -- 1-D convolution -----------------------------------------------------------------------------------------
def conv1d_pads(padding: str, steps: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """``(left, right)`` zero padding of a sequence of ``steps`` for ``"valid"``, ``"same"`` or ``"causal"``.

    ``"same"`` gives ``ceil(steps / stride)`` outputs with the extra cell of an odd total on the right (as
    TensorFlow and Keras); ``"causal"`` pads ``(kernel − 1)·dilation`` on the left only, so that output t
    sees inputs up to t.

    Args:
        padding: the mode.
        steps: the sequence length T.
        kernel: the kernel size k.
        stride: the stride s.
        dilation: the dilation d.

    Returns:
        ``(left, right)``.
    """
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return span - 1, 0
    out = -(-steps // stride)
    total = max((out - 1) * stride + span - steps, 0)
    return total // 2, total - total // 2


def conv1d_length(steps: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int]) -> int:
    """The number of outputs: ``(T + left + right − (k − 1)·d − 1) // s + 1``."""
    return (steps + pads[0] + pads[1] - (kernel - 1) * dilation - 1) // stride + 1


def conv1d(
    x: Any, kernel: Any, bias: Any, stride: int, dilation: int, pads: tuple[int, int], training: bool = False
) -> tuple[Any, Any]:
    """1-D cross-correlation ``z[n, t] = Σ_j x_pad[n, t·s + j·d]·W[j] + b``, as one matrix product of the
    windows (im2col along time) and the kernel.

    Args:
        x: input ``(N, T, C)``.
        kernel: ``(k, C, F)``.
        bias: ``(F,)``.
        stride: s.
        dilation: d.
        pads: ``(left, right)`` zero padding.
        training: keep the windows for :func:`conv1d_backward`.

    Shape:
        ``(N, T, C)`` → ``(N, To, F)`` with ``To`` as :func:`conv1d_length`.

    Returns:
        ``(z, ctx)``; ctx is ``None`` in inference.
    """
    xp = get_array_module(x, kernel, bias)
    n, steps, c = x.shape
    k, _, f = kernel.shape
    left, right = pads
    if left or right:
        xpad = xp.zeros((n, steps + left + right, c), dtype=x.dtype)
        xpad[:, left : left + steps] = x
    else:
        xpad = xp.ascontiguousarray(x)
    out = conv1d_length(steps, k, stride, dilation, pads)
    s0, s1, s2 = xpad.strides
    view = xp.lib.stride_tricks.as_strided(xpad, (n, out, k, c), (s0, s1 * stride, s1 * dilation, s2))
    cols = view.reshape(n * out, k * c)  # the one copy
    z = matmul(cols, kernel.reshape(k * c, f))
    z += bias
    ctx = (cols, x.shape, pads, stride, dilation) if training else None
    return z.reshape(n, out, f), ctx


def conv1d_backward(
    grad: Any, ctx: Any, kernel: Any, dkernel: Any, dbias: Any, need_input_grad: bool = True
) -> Any:
    """Gradients of :func:`conv1d`.

    With G = dL/dz reshaped to ``(N·To, F)``: dL/dW = colsᵀ·G, dL/db = Σ_rows G, and dL/dx adds each kernel
    offset j's ``G·W[j]ᵀ`` back onto the steps ``t·s + j·d`` it read (padding cropped).

    Args:
        grad: dL/dz ``(N, To, F)``.
        ctx: the context of the training forward.
        kernel: the kernel of the forward.
        dkernel: ``(k, C, F)`` to write the kernel gradient into.
        dbias: ``(F,)`` to write the bias gradient into.
        need_input_grad: compute dL/dx (else return ``None``).

    Returns:
        dL/dx ``(N, T, C)`` or ``None``.
    """
    cols, x_shape, (left, right), stride, dilation = ctx
    xp = get_array_module(grad, kernel)
    k, c, f = kernel.shape
    g = grad.reshape(-1, f)
    matmul(cols.T, g, out=dkernel.reshape(k * c, f))
    g.sum(axis=0, out=dbias)
    if not need_input_grad:
        return None
    n, steps, _ = x_shape
    out = grad.shape[1]
    dcols = matmul(g, kernel.reshape(k * c, f).T).reshape(n, out, k, c)
    dx = xp.zeros((n, steps + left + right, c), dtype=grad.dtype)
    for j in range(k):
        start = j * dilation
        dx[:, start : start + (out - 1) * stride + 1 : stride] += dcols[:, :, j]
    return xp.ascontiguousarray(dx[:, left : left + steps]) if left or right else dx


# -- global pooling over time ------------------------------------------------------------------------------
def global_avg_pool1d(x: Any, mask: Any = None, training: bool = False) -> tuple[Any, Any]:
    """Mean over the valid steps: ``y[n, c] = Σ_t m[n, t]·x[n, t, c] / Σ_t m[n, t]`` (0 for a sequence with
    no valid step).

    Args:
        x: input ``(N, T, C)``.
        mask: ``(N, T)`` booleans, or ``None`` (every step valid).
        training: keep the context.

    Returns:
        ``(y (N, C), ctx)``.
    """
    xp = get_array_module(x)
    if mask is None:
        return x.mean(axis=1), ((x.shape, None) if training else None)
    w = mask.astype(x.dtype)
    count = w.sum(axis=1, keepdims=True)
    inv = xp.where(count > 0, 1 / xp.maximum(count, 1), 0).astype(x.dtype)
    y = xp.einsum("ntc,nt->nc", x, w) * inv
    return y, ((x.shape, w * inv) if training else None)


def global_avg_pool1d_backward(grad: Any, ctx: Any) -> Any:
    """dL/dx[n, t, c] = dL/dy[n, c]·m[n, t] / Σ_t m[n, t] (1/T without a mask).

    Args:
        grad: dL/dy ``(N, C)``.
        ctx: the context of the training forward.

    Returns:
        dL/dx ``(N, T, C)``.
    """
    shape, weights = ctx
    xp = get_array_module(grad)
    if weights is None:
        return xp.broadcast_to((grad * grad.dtype.type(1.0 / shape[1]))[:, None, :], shape).copy()
    return grad[:, None, :] * weights[:, :, None]


def global_max_pool1d(x: Any, mask: Any = None, training: bool = False) -> tuple[Any, Any]:
    """Maximum over the valid steps (0 for a sequence with no valid step).

    Args:
        x: input ``(N, T, C)``.
        mask: ``(N, T)`` booleans, or ``None``.
        training: keep which step held each maximum (the first one on ties).

    Returns:
        ``(y (N, C), ctx)``.
    """
    xp = get_array_module(x)
    v = x if mask is None else xp.where(mask[:, :, None], x, -xp.inf)
    idx = v.argmax(axis=1)  # (N, C): the first maximum
    y = xp.take_along_axis(v, idx[:, None, :], axis=1)[:, 0, :]
    if mask is not None:  # a sequence without a valid step pools to 0
        valid = mask.any(axis=1)
        y = xp.where(valid[:, None], y, x.dtype.type(0))
    else:
        valid = None
    return y, ((x.shape, idx, valid) if training else None)


def global_max_pool1d_backward(grad: Any, ctx: Any) -> Any:
    """Each dL/dy[n, c] goes to the step that held the maximum; the others get 0.

    Args:
        grad: dL/dy ``(N, C)``.
        ctx: the context of the training forward.

    Returns:
        dL/dx ``(N, T, C)``.
    """
    shape, idx, valid = ctx
    xp = get_array_module(grad, idx)
    dx = xp.zeros(shape, dtype=grad.dtype)
    g = grad if valid is None else grad * valid[:, None]
    xp.put_along_axis(dx, idx[:, None, :], g[:, None, :], axis=1)
    return dx


# -- layer normalization -----------------------------------------------------------------------------------
def layer_norm(x: Any, gamma: Any, beta: Any, epsilon: float, training: bool = False) -> tuple[Any, Any]:
    """Normalize each sample (and step) over its last axis: ``y = γ·(x − μ)/sqrt(σ² + ε) + β``.

    Args:
        x: input ``(N, ..., F)``.
        gamma: scale ``(F,)`` (or ``None`` for 1).
        beta: shift ``(F,)`` (or ``None`` for 0).
        epsilon: added to the variance.
        training: keep x̂ and 1/σ for :func:`layer_norm_backward`.

    Returns:
        ``(y, ctx)``.
    """
    xp = get_array_module(x)
    mean = x.mean(axis=-1, keepdims=True)
    xhat = x - mean
    var = (xhat * xhat).mean(axis=-1, keepdims=True)
    inv_std = 1.0 / xp.sqrt(var + x.dtype.type(epsilon))
    xhat *= inv_std
    y = xhat * gamma if gamma is not None else xhat.copy()
    if beta is not None:
        y += beta
    return y, ((xhat, inv_std) if training else None)


def layer_norm_backward(
    grad: Any, ctx: Any, gamma: Any, dgamma: Any, dbeta: Any, need_input_grad: bool = True
) -> Any:
    """Gradients of :func:`layer_norm`.

    Gradient: with g = dL/dy, d̂ = g·γ and F features: dL/dγ = Σ g·x̂ and dL/dβ = Σ g (sums over every axis but
    the last), dL/dx = (1/σ)·(d̂ − mean(d̂) − x̂·mean(d̂·x̂)), the means over the last axis.

    Args:
        grad: dL/dy.
        ctx: the context of the training forward.
        gamma: the scale of the forward (or ``None``).
        dgamma: array ``(F,)`` for dL/dγ (or ``None``).
        dbeta: array ``(F,)`` for dL/dβ (or ``None``).
        need_input_grad: compute dL/dx.

    Returns:
        dL/dx or ``None``.
    """
    xhat, inv_std = ctx
    xp = get_array_module(grad)
    f = grad.shape[-1]
    g2, x2 = grad.reshape(-1, f), xhat.reshape(-1, f)
    if dgamma is not None:
        dgamma[...] = xp.einsum("ij,ij->j", g2, x2)
    if dbeta is not None:
        g2.sum(axis=0, out=dbeta)
    if not need_input_grad:
        return None
    d = grad * gamma if gamma is not None else grad
    mean_d = d.mean(axis=-1, keepdims=True)
    mean_dx = (d * xhat).mean(axis=-1, keepdims=True)
    dx = d - mean_d
    dx -= xhat * mean_dx
    dx *= inv_std
    return dx
