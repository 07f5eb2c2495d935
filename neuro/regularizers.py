"""Weight penalties added to the loss.

A network's regularizer acts on every parameter a layer lists in ``regularizable`` (kernels, never
biases or BatchNorm parameters). The penalty is added once per batch to the batch's mean loss, so it
is *not* divided by the batch size, and its gradient is added to the kernel gradients; the reported
loss is the value whose gradient the network computes.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from neuro import backend


class Regularizer:
    """Base class: ``penalty(w)`` and ``add_gradient(w, grad)`` (in place).

    Args:
        lam: strength λ, a finite number >= 0.

    Raises:
        ValueError: when ``lam`` is not a finite non-negative number.
    """

    def __init__(self, lam: float) -> None:
        ok = isinstance(lam, numbers.Real) and not isinstance(lam, bool) and math.isfinite(lam)
        if not ok or lam < 0:
            raise ValueError(f"lam must be a finite non-negative number, got {lam!r}")
        self.lam = float(lam)

    def penalty(self, w: Any) -> float:
        """Return the penalty of one weight array as a Python float."""
        raise NotImplementedError

    def add_gradient(self, w: Any, grad: Any) -> None:
        """Add d(penalty)/dw to ``grad`` in place."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Return ``{"name": "L1" or "L2", "lam": λ}``; :func:`get` rebuilds it."""
        return {"name": type(self).__name__, "lam": self.lam}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.lam})"


class L1(Regularizer):
    """L1 penalty ``λ · Σ|w|``.

    Gradient: λ · sign(w) (0 at w = 0).
    """

    def penalty(self, w: Any) -> float:
        return self.lam * float(backend.xp.abs(w).sum())

    def add_gradient(self, w: Any, grad: Any) -> None:
        step = backend.xp.sign(w)
        step *= w.dtype.type(self.lam)
        grad += step


class L2(Regularizer):
    """L2 penalty ``λ/2 · Σw²`` (weight decay λ, as ``weight_decay`` in torch.optim.SGD).

    Gradient: λ · w.
    """

    def penalty(self, w: Any) -> float:
        return 0.5 * self.lam * float((w * w).sum())

    def add_gradient(self, w: Any, grad: Any) -> None:
        grad += backend.xp.multiply(w, w.dtype.type(self.lam))


def get(regularizer: Regularizer | dict | None) -> Regularizer | None:
    """Return a regularizer from an instance, a config dict or ``None``.

    Raises:
        TypeError: for anything else.
        ValueError: for an unknown name in a config.
    """
    if regularizer is None or isinstance(regularizer, Regularizer):
        return regularizer
    if isinstance(regularizer, dict):
        cfg = dict(regularizer)
        name = cfg.pop("name")
        cls = {"l1": L1, "l2": L2}.get(str(name).lower())
        if cls is None:
            raise ValueError(f"regularizer must be one of ['L1', 'L2'], got {name!r}")
        return cls(**cfg)
    raise TypeError(f"regularizer must be L1, L2 or None, got {type(regularizer).__name__}")
