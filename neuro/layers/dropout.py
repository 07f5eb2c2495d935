"""Inverted dropout."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from neuro import backend, registry
from neuro import functional as F
from neuro.layers.base import Layer


@registry.register
class Dropout(Layer):
    """Inverted dropout: zero units with probability ``rate`` in training, scale the others up.

    The kept units are scaled by ``1 / (1 − rate)``, so that inference is the identity.
    Paper: Srivastava et al., 2014.

    The masks are drawn on the device of the input, from the :class:`~neuro.backend.DeviceRNG` a network
    passes to ``forward`` (its seeded one), so a network seed reproduces them on the same device.

    Args:
        rate: probability of dropping a unit, in [0, 1).
        name: optional layer name.

    Shape:
        - input: any shape ``(N, ...)``; output: same shape.

    Raises:
        ValueError: for a ``rate`` that is not a number in [0, 1).

    Gradient: dL/dx = dL/dy · mask, with mask = [u ≥ rate] / (1 − rate) the one drawn in the forward pass.
    """

    def __init__(self, rate: float, name: str | None = None) -> None:
        super().__init__(name=name)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)

    supports_masking = True

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        if not training:
            return x, None
        if rng is None:  # used outside a network: an unseeded generator of x's device
            rng = backend.DeviceRNG(backend.get_array_module(x), np.random.default_rng())
        return F.dropout(x, self.rate, rng.random(x.shape, x.dtype))

    def backward(self, grad: Any, ctx: Any) -> Any:
        mask = self._require(ctx)
        return F.dropout_backward(grad, mask) if self.need_input_grad else None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}
