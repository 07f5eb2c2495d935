"""The fused output heads: softmax with cross-entropy and sigmoid with binary cross-entropy, on logits.

With T the effective targets and D the normaliser of :mod:`neuro.losses` (one-hot rows and D = m in the
plain case), these are the design note's formulas: the loss ``−Σ T·log softmax(z) / D`` and the gradient
``(softmax(z)·Σ_c T − T) / D``, which is ``(Ŷ − Y)/m`` for one-hot targets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro.backend import get_array_module
from neuro.functional.activation import log_softmax, sigmoid


def softmax_cross_entropy_sum(z: Any, t: Any) -> Any:
    """``−Σ_{i,c} T[i, c]·log_softmax(z)[i, c]`` (a 0-d array on z's device).

    Args:
        z: logits ``(N, K)``.
        t: effective targets T ``(N, K)`` (one-hot rows in the plain case).

    Returns:
        The summed cross-entropy, not yet divided by the normaliser D.

    A class of target 0 adds 0 even where its log-probability is −inf (a logit of −inf, masked logits, or
    logits ±3e38 apart), as in PyTorch's ``cross_entropy`` of class ids (0·(−inf) would be NaN); a class of
    target > 0 there makes the loss inf, as PyTorch's.
    """
    lp = log_softmax(z)
    xp = get_array_module(lp)
    with np.errstate(invalid="ignore"):  # 0·(−inf) is NaN, replaced next
        xp.multiply(t, lp, out=lp)
    xp.copyto(lp, lp.dtype.type(0), where=t == 0)
    return -lp.sum()


def softmax_cross_entropy_backward(p: Any, t: Any, inv_denom: Any) -> Any:
    """dL/dz = (p·Σ_c T − T) / D, with p = softmax(z) and ``inv_denom`` = 1/D.

    Args:
        p: softmax(z) ``(N, K)`` (not modified).
        t: effective targets T ``(N, K)``.
        inv_denom: 1/D, a scalar or 0-d array on the device.

    Returns:
        dL/dz ``(N, K)``, a new array.
    """
    g = p * t.sum(axis=-1, keepdims=True)
    g -= t
    g *= inv_denom
    return g


def sigmoid_binary_cross_entropy_sum(z: Any, y: Any, weights: Any = None) -> Any:
    """``Σ w·(max(z, 0) − z·y + log(1 + e^−|z|))`` (PyTorch's ``BCEWithLogitsLoss``, summed).

    Args:
        z: logits, any shape ``(N, ...)``.
        y: targets in [0, 1], of the shape of z.
        weights: optional weights broadcasting over z.

    Returns:
        The summed binary cross-entropy (a 0-d array on z's device), not yet divided by m.
    """
    xp = get_array_module(z, y)
    per = xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
    return (per if weights is None else per * weights).sum()


def sigmoid_binary_cross_entropy_backward(z: Any, y: Any, m: int, p: Any = None) -> Any:
    """dL/dz = (σ(z) − y)/m; ``p`` = σ(z) when already known.

    Args:
        z: logits, any shape ``(N, ...)``.
        y: targets in [0, 1], of the shape of z.
        m: the number of samples (the loss is the mean over them).
        p: σ(z) if already computed (else it is computed from z).

    Returns:
        dL/dz, a new array of the shape of z.
    """
    g = (sigmoid(z)[0] if p is None else p) - y
    g *= g.dtype.type(1.0 / m)
    return g
