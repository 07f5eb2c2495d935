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

from neuro import registry
from neuro._keywords import KeywordChecked, quiet
from neuro.backend import get_array_module


class Regularizer(KeywordChecked):
    """Base class: ``penalty(w)`` and ``add_gradient(w, grad)`` (in place).

    Args:
        lam: strength λ, a finite number >= 0 (default 0.01, Keras's default; Keras's L2 adds λ·Σw², this
            library's λ/2·Σw², so Keras's ``L2(λ)`` is ``L2(2λ)`` here).

    Raises:
        ValueError: when ``lam`` is not a finite non-negative number.
    """

    def __init__(self, lam: float = 0.01) -> None:
        ok = isinstance(lam, numbers.Real) and not isinstance(lam, bool) and math.isfinite(lam)
        if not ok or lam < 0:
            raise ValueError(f"lam must be a finite non-negative number, got {lam!r}")
        self.lam = float(lam)

    def penalty(self, w: Any) -> float:
        """Return the penalty of one weight array, as a 0-d array on its device (nothing is read).

        Args:
            w: a weight array (a kernel), of any shape.

        Returns:
            The penalty, in the dtype of ``w``; it is not divided by the batch size.
        """
        raise NotImplementedError

    def add_gradient(self, w: Any, grad: Any) -> None:
        """Add d(penalty)/dw to ``grad`` in place (each subclass states its formula under "Gradient").

        Args:
            w: the weight array.
            grad: the loss gradient of ``w``, of its shape; the penalty's gradient is added to it.
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Return ``{"lam": λ}``; ``from_config`` rebuilds it."""
        return {"lam": self.lam}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        """Rebuild a regularizer from :meth:`get_config`'s output.

        Args:
            config: ``{"lam": λ}``, as :meth:`get_config` returns it.

        Returns:
            A new regularizer of this class.
        """
        with quiet():  # a saved config may use old keyword spellings
            return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.lam})"


class L1(Regularizer):
    """L1 penalty ``λ · Σ|w|``.

    Gradient: λ · sign(w) (0 at w = 0).
    """

    def penalty(self, w: Any) -> float:
        return get_array_module(w).abs(w).sum() * w.dtype.type(self.lam)

    def add_gradient(self, w: Any, grad: Any) -> None:
        step = get_array_module(w).sign(w)
        step *= w.dtype.type(self.lam)
        grad += step


class L2(Regularizer):
    """L2 penalty ``λ/2 · Σw²`` (weight decay λ, as ``weight_decay`` in torch.optim.SGD).

    Gradient: λ · w.
    """

    def penalty(self, w: Any) -> float:
        return (w * w).sum() * w.dtype.type(0.5 * self.lam)

    def add_gradient(self, w: Any, grad: Any) -> None:
        grad += get_array_module(w, grad).multiply(w, w.dtype.type(self.lam))


registry.set_base("regularizer", Regularizer)
registry.register(L1)
registry.register(L2)


def get(regularizer: Regularizer | dict | str | None) -> Regularizer | None:
    """Return a regularizer from an instance, a serialized spec, a name or ``None``.

    Args:
        regularizer: a :class:`Regularizer` (returned as it is), a ``{"class": name, "config": {...}}`` spec,
            a name (``"l1"``, ``"l2"``, with the default λ), a :class:`Regularizer` class, or ``None``.

    Returns:
        The regularizer, or ``None`` for ``None`` (no penalty).

    Raises:
        TypeError: for anything else.
        ValueError: for an unknown name.
    """
    if regularizer is None:
        return None
    return registry.get("regularizer", regularizer, Regularizer)
