"""The fused output heads: softmax with cross-entropy and sigmoid with binary cross-entropy, on logits.

With T the effective targets and D the normaliser of :mod:`neuro.losses` (one-hot rows and D = m in the
plain case), these are the design note's formulas: the loss ``−Σ T·log softmax(z) / D`` and the gradient
``(softmax(z)·Σ_c T − T) / D``, which is ``(Ŷ − Y)/m`` for one-hot targets.
"""

from __future__ import annotations

from typing import Any

from neuro.backend import get_array_module
from neuro.functional.activation import log_softmax, sigmoid


def softmax_cross_entropy_sum(z: Any, t: Any) -> Any:
    """``−Σ_{i,c} T[i, c]·log_softmax(z)[i, c]`` (a 0-d array on z's device)."""
    return -(t * log_softmax(z)).sum()


def softmax_cross_entropy_backward(p: Any, t: Any, inv_denom: Any) -> Any:
    """dL/dz = (p·Σ_c T − T) / D, with p = softmax(z) and ``inv_denom`` = 1/D."""
    g = p * t.sum(axis=-1, keepdims=True)
    g -= t
    g *= inv_denom
    return g


def sigmoid_binary_cross_entropy_sum(z: Any, y: Any) -> Any:
    """``Σ max(z, 0) − z·y + log(1 + e^−|z|)`` (PyTorch's ``BCEWithLogitsLoss``, summed)."""
    xp = get_array_module(z, y)
    return (xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))).sum()


def sigmoid_binary_cross_entropy_backward(z: Any, y: Any, m: int, p: Any = None) -> Any:
    """dL/dz = (σ(z) − y)/m; ``p`` = σ(z) when already known."""
    g = (sigmoid(z)[0] if p is None else p) - y
    g *= g.dtype.type(1.0 / m)
    return g
