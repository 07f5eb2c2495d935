"""Inverted dropout."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro import backend
from neuro.layers.base import Layer


class Dropout(Layer):
    """Inverted dropout: zero units with probability ``rate`` in training, scale the others up.

    The kept units are scaled by ``1 / (1 − rate)``, so that inference is the identity.
    Paper: Srivastava et al., 2014.

    The masks are drawn from the generator handed to :meth:`build` (the network's seeded one), so a
    network seed reproduces them.

    Args:
        rate: probability of dropping a unit, in [0, 1).
        name: optional layer name.

    Shape:
        - input: any shape ``(N, ...)``; output: same shape.

    Gradient: dL/dx = dL/dy · mask, with mask = [u ≥ rate] / (1 − rate) the one drawn in the
    forward pass.
    """

    def __init__(self, rate: float, name: str | None = None) -> None:
        super().__init__(name=name)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self._rng: np.random.Generator | None = None
        self._mask: Any = None

    def _create_params(self, input_shape: tuple[int, ...], rng: np.random.Generator) -> None:
        self._rng = rng

    def forward(self, x: Any, training: bool = False) -> Any:
        if not training:
            self._mask = None
            return x
        if self._rng is None:  # used without build: draw from an unseeded generator
            self._rng = np.random.default_rng()
        xp = backend.xp
        mask = backend.uniform(self._rng, x.shape, dtype=x.dtype)  # drawn in order: seeds repeat
        scale = x.dtype.type(1.0 / (1.0 - self.rate))
        rate = x.dtype.type(self.rate)
        y = xp.empty_like(x)

        def part(start: int, stop: int) -> None:
            m = mask[start:stop]
            xp.multiply(m >= rate, scale, out=m)
            xp.multiply(x[start:stop], m, out=y[start:stop])

        backend.parallel_for(part, len(x), 3 * x.size)
        self._mask = mask
        return y

    def backward(self, grad: Any) -> Any:
        if self._mask is None:
            raise RuntimeError("Dropout.backward called without a forward pass with training=True")
        if not self.need_input_grad:
            return None
        xp = backend.xp
        out = xp.empty_like(grad)
        mask = self._mask

        def part(start: int, stop: int) -> None:
            xp.multiply(grad[start:stop], mask[start:stop], out=out[start:stop])

        backend.parallel_for(part, len(grad), grad.size)
        return out

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}
