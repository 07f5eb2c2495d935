"""Activation functions, each with its hand-derived backward.

Activations are layers without parameters: they can be added to a network on their own
(``net.add(ReLU())``) or given to a Dense or Conv2D layer (``Dense(64, activation="relu")``). In training
mode they cache what the backward needs (the output for Sigmoid, Tanh and Softmax, a mask for the ReLUs).
"""

from __future__ import annotations

import copy
from typing import Any

from neuro import backend
from neuro.layers.base import Layer


class Activation(Layer):
    """Base class of activations: ``y = f(x)`` elementwise (Softmax: along the last axis)."""

    #: Registered name, used by ``get`` and in configs.
    key = ""

    def __init__(self) -> None:
        super().__init__(name=self.key)
        self._cache: Any = None

    def forward(self, x: Any, training: bool = False, inplace: bool = False) -> Any:
        """Apply the activation.

        Args:
            x: input of any shape.
            training: cache what ``backward`` needs (inference drops any cache).
            inplace: allowed to overwrite ``x`` (used by layers for their own fresh pre-activations).

        Returns:
            ``f(x)``, of the shape and dtype of ``x``.
        """
        raise NotImplementedError

    def backward(self, grad: Any) -> Any:
        """Return dL/dx from ``grad`` = dL/dy of the last training forward (the class's Gradient line).

        Raises:
            RuntimeError: when no training forward preceded it.
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """``{"name": key, "class": class name, **arguments}``; the class lets a loader find user classes."""
        return {"name": self.key, "class": type(self).__name__}

    def _require_cache(self) -> Any:
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called without a forward pass with training=True"
            )
        return self._cache


class Linear(Activation):
    """Identity: ``y = x``.

    Gradient: dL/dx = dL/dy.
    """

    key = "linear"

    def forward(self, x: Any, training: bool = False, inplace: bool = False) -> Any:
        self._cache = True if training else None
        return x

    def backward(self, grad: Any) -> Any:
        self._require_cache()  # like every activation: only after a forward with training=True
        return grad


class ReLU(Activation):
    """Rectified linear unit: ``y = max(x, 0)``.

    Gradient: dL/dx = dL/dy · [x > 0].
    """

    key = "relu"

    def forward(self, x: Any, training: bool = False, inplace: bool = False) -> Any:
        xp = backend.xp
        y = x if inplace else xp.empty_like(x)
        zero = x.dtype.type(0)

        def part(start: int, stop: int) -> None:
            xp.maximum(x[start:stop], zero, out=y[start:stop])

        backend.parallel_for(part, len(x), x.size)
        self._cache = y if training else None  # y > 0 exactly where x > 0
        return y

    def backward(self, grad: Any) -> Any:
        y = self._require_cache()
        xp = backend.xp
        out = xp.empty_like(grad)

        def part(start: int, stop: int) -> None:
            xp.multiply(grad[start:stop], y[start:stop] > 0, out=out[start:stop])

        backend.parallel_for(part, len(grad), grad.size)
        return out


class LeakyReLU(Activation):
    """Leaky rectified linear unit: ``y = x`` for ``x > 0``, ``alpha·x`` otherwise.

    Args:
        alpha: slope for non-positive inputs (default 0.01).

    Gradient: dL/dx = dL/dy · (1 if x > 0 else alpha).
    """

    key = "leaky_relu"

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: Any, training: bool = False, inplace: bool = False) -> Any:
        xp = backend.xp
        mask = x > 0
        y = xp.where(mask, x, x * x.dtype.type(self.alpha))
        self._cache = mask if training else None
        return y

    def backward(self, grad: Any) -> Any:
        mask = self._require_cache()
        xp = backend.xp
        return xp.where(mask, grad, grad * grad.dtype.type(self.alpha))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


class Sigmoid(Activation):
    """Logistic function ``y = 1 / (1 + exp(-x))``, evaluated without overflow for any finite x.

    Gradient: dL/dx = dL/dy · y · (1 − y).
    """

    key = "sigmoid"

    def forward(self, x: Any, training: bool = False, inplace: bool = False) -> Any:
        y = sigmoid(x)
        self._cache = y if training else None
        return y

    def backward(self, grad: Any) -> Any:
        y = self._require_cache()
        return grad * y * (1 - y)


class Tanh(Activation):
    """Hyperbolic tangent.

    Gradient: dL/dx = dL/dy · (1 − y²).
    """

    key = "tanh"

    def forward(self, x: Any, training: bool = False, inplace: bool = False) -> Any:
        xp = backend.xp
        y = x if inplace else xp.empty_like(x)

        def part(start: int, stop: int) -> None:
            xp.tanh(x[start:stop], out=y[start:stop])

        backend.parallel_for(part, len(x), x.size)
        self._cache = y if training else None
        return y

    def backward(self, grad: Any) -> Any:
        y = self._require_cache()
        xp = backend.xp
        out = xp.empty_like(grad)
        one = grad.dtype.type(1)

        def part(start: int, stop: int) -> None:
            # (1 − y)(1 + y), not 1 − y·y: for |y| near 1 the rounding of y·y would cost many digits
            ys, o = y[start:stop], out[start:stop]
            xp.subtract(one, ys, out=o)
            o *= ys + one
            o *= grad[start:stop]

        backend.parallel_for(part, len(grad), 3 * grad.size)
        return out


class Softmax(Activation):
    """Softmax along the last axis, shifted by the row maximum so that it never overflows.

    ``y_j = exp(x_j − max x) / Σ_k exp(x_k − max x)``. It may stand anywhere in a network; at the output in
    front of a cross-entropy loss the network fuses the two (see :mod:`neuro.losses`).

    Gradient (the Jacobian-vector product): dL/dx = y · (g − Σ_k g_k y_k), with g = dL/dy.
    """

    key = "softmax"

    def forward(self, x: Any, training: bool = False, inplace: bool = False) -> Any:
        y = softmax(x, inplace=inplace)
        self._cache = y if training else None
        return y

    def backward(self, grad: Any) -> Any:
        y = self._require_cache()
        return y * (grad - (grad * y).sum(axis=-1, keepdims=True))


def sigmoid(x: Any) -> Any:
    """Overflow-free logistic function: uses exp(−|x|), which lies in (0, 1]."""
    xp = backend.xp
    e = xp.exp(-xp.abs(x))
    one = x.dtype.type(1)
    return xp.where(x >= 0, one / (one + e), e / (one + e))


def softmax(x: Any, inplace: bool = False) -> Any:
    """Max-shifted softmax along the last axis."""
    xp = backend.xp
    z = xp.subtract(x, x.max(axis=-1, keepdims=True), out=x if inplace else None)
    xp.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def log_softmax(x: Any) -> Any:
    """Log-softmax along the last axis: ``x − max − log Σ exp(x − max)`` (finite for finite x)."""
    xp = backend.xp
    z = x - x.max(axis=-1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))


_REGISTRY: dict[str, type[Activation]] = {
    cls.key: cls for cls in (Linear, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax)
}
_ALIASES = {"leakyrelu": "leaky_relu", "identity": "linear", "none": "linear"}


def get(activation: str | Activation | dict | None) -> Activation:
    """Return a fresh activation object from a name, a config dict, an instance or ``None`` (linear).

    An instance is copied, so that two layers never share one cache.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else.
    """
    if activation is None:
        return Linear()
    if isinstance(activation, Activation):
        fresh = copy.copy(activation)
        fresh._cache = None  # the copy must not inherit (and so share) the original's cache
        return fresh
    if isinstance(activation, type) and issubclass(activation, Activation):
        return activation()
    if isinstance(activation, dict):
        cfg = dict(activation)
        if "name" not in cfg:
            raise ValueError(f"activation config must have a 'name' key, got {activation!r}")
        name = cfg.pop("name")
        cfg.pop("class", None)
        return _lookup(name)(**cfg)
    if isinstance(activation, str):
        return _lookup(activation)()
    raise TypeError(
        f"activation must be a name, an Activation or None, got {type(activation).__name__}"
    )


def _lookup(name: str) -> type[Activation]:
    key = name.lower().replace("-", "_")
    key = _ALIASES.get(key.replace("_", ""), key) if key not in _REGISTRY else key
    if key not in _REGISTRY:
        raise ValueError(f"activation must be one of {sorted(_REGISTRY)}, got {name!r}")
    return _REGISTRY[key]
