"""The affine map of a Dense layer as a stateless forward/backward pair."""

from __future__ import annotations

from typing import Any

from neuro.backend import get_array_module


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
    z = x @ kernel
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
    xp = get_array_module(grad, x, kernel)
    x2, g2 = x.reshape(-1, x.shape[-1]), grad.reshape(-1, grad.shape[-1])
    xp.matmul(x2.T, g2, out=dkernel)
    g2.sum(axis=0, out=dbias)
    return grad @ kernel.T if need_input_grad else None
