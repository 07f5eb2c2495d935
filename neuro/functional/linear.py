"""The affine map of a Dense layer as a stateless forward/backward pair."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro.backend import (
    MIN_PARALLEL_PRODUCT,
    device_name,
    get_array_module,
    get_num_threads,
    matmul,
    parallel_blocks,
)


def linear(x: Any, kernel: Any, bias: Any, training: bool = False) -> tuple[Any, Any]:
    """``z = x·W + b`` on the last axis of x.

    Args:
        x: input ``(N, ..., in)``.
        kernel: W ``(in, units)``.
        bias: b ``(units,)``.
        training: keep x in the returned context for :func:`linear_backward`.

    Shape:
        x ``(N, ..., in)``, W ``(in, units)``, b ``(units,)`` → z ``(N, ..., units)``.

    Returns:
        ``(z, ctx)``; ctx is x in training, else ``None``.
    """
    get_array_module(x, kernel, bias)  # one device for all
    if x.ndim == 2:  # the common case, without the reshapes (a single-sample predict feels each call)
        z = matmul(x, kernel)
    else:
        z = matmul(x.reshape(-1, x.shape[-1]), kernel).reshape(*x.shape[:-1], kernel.shape[1])
    z += bias
    return z, (x if training else None)


def linear_backward(
    grad: Any, x: Any, kernel: Any, dkernel: Any, dbias: Any, need_input_grad: bool = True
) -> Any:
    """With G = dL/dz: dL/dW = xᵀ·G (into ``dkernel``), dL/db = Σ_batch G (into ``dbias``), dL/dx = G·Wᵀ.

    For inputs of rank 3 and more, the sums run over every axis but the last (the rows of x and G reshaped
    to ``(-1, in)`` and ``(-1, units)``).

    Args:
        grad: G = dL/dz ``(N, ..., units)``.
        x: the input of the forward pass ``(N, ..., in)`` (its context).
        kernel: W ``(in, units)``.
        dkernel: array ``(in, units)`` the kernel gradient is written into.
        dbias: array ``(units,)`` the bias gradient is written into.
        need_input_grad: compute dL/dx (else return ``None``).

    Returns:
        dL/dx ``(N, ..., in)`` or ``None``.
    """
    xp = get_array_module(grad, x, kernel)  # one device for all
    x2, g2 = x.reshape(-1, x.shape[-1]), grad.reshape(-1, grad.shape[-1])
    shape = (*grad.shape[:-1], kernel.shape[0])
    macs = x2.size * g2.shape[1]
    if need_input_grad and xp is np and get_num_threads() == 2 and macs >= MIN_PARALLEL_PRODUCT:
        # on two threads, dL/dW and dL/dx side by side, each product whole on one thread (the same sums as
        # when they are split: see neuro.backend.matmul), one hand-over instead of one per product; with
        # more threads each product is split over all of them
        dx: list[Any] = []

        def both(start: int, stop: int, slot: int) -> None:
            for k in range(start, stop):
                if k == 0:
                    matmul(x2.T, g2, out=dkernel)
                else:
                    dx.append(matmul(g2, kernel.T))

        if parallel_blocks(both, 2):
            column_sums(g2, out=dbias)
            return dx[0].reshape(shape)
    matmul(x2.T, g2, out=dkernel)
    column_sums(g2, out=dbias)
    if not need_input_grad:
        return None
    return matmul(g2, kernel.T).reshape(shape)


#: :func:`column_sums` adds the rows of a NumPy matrix in blocks once it has at least this many block rows.
BLOCKED_SUM_ROWS = 8


def column_sums(a: Any, out: Any = None) -> Any:
    """Σ over the rows of a matrix ``(M, F)``: ``a.sum(axis=0)``, in blocks on the CPU.

    NumPy adds the rows of a C-ordered matrix one at a time, F values per step: with few columns (F ≤ 128:
    a batch norm's or a convolution's channels) that is 8–10× slower than memory allows. Here the matrix is
    read as rows of about 1,024 values, summed (each of those sums runs over every B-th row), and the B
    partial sums added in order; a remainder of fewer than B rows is added last. The order depends on the
    shape only, so the thread count and the kernel set never change the result; a small matrix is summed
    as before.

    Args:
        a: the matrix ``(M, F)``.
        out: optional array ``(F,)`` for the result.

    Returns:
        The sums ``(F,)``.
    """
    m, f = a.shape
    b = 1024 // f if f else 0  # rows per block row
    host = device_name(get_array_module(a)) != "cupy"  # NumPy and its strict stand-in alike, bitwise
    if not host or b < 8 or m < BLOCKED_SUM_ROWS * b or not a.flags.c_contiguous:
        return a.sum(axis=0, out=out)
    q = m // b
    total = a[: q * b].reshape(q, b * f).sum(axis=0).reshape(b, f).sum(axis=0, out=out)
    if q * b < m:
        total += a[q * b :].sum(axis=0)
    return total
