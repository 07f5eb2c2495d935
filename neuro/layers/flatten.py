"""Flatten every sample to one axis."""

from __future__ import annotations

import math
from typing import Any

from neuro.layers.base import Layer


class Flatten(Layer):
    """Reshape ``(N, d1, d2, ...)`` to ``(N, d1·d2·…)`` (row-major, no copy for contiguous input).

    Args:
        name: optional layer name.

    Shape:
        - input: ``(N, d1, ..., dk)`` with k ≥ 1; output: ``(N, d1·…·dk)``.

    Gradient: dL/dx = dL/dy reshaped to the input shape.
    """

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name)
        self._x_shape: tuple[int, ...] | None = None

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) < 1 or any(d < 1 for d in input_shape):
            raise ValueError(
                f"Flatten expects input_shape with at least one axis and positive sizes, "
                f"got input_shape={input_shape}"
            )
        return (math.prod(input_shape),)

    def forward(self, x: Any, training: bool = False) -> Any:
        self._x_shape = x.shape if training else None
        return x.reshape(x.shape[0], -1)

    def backward(self, grad: Any) -> Any:
        if self._x_shape is None:
            raise RuntimeError("Flatten.backward called without a forward pass with training=True")
        return grad.reshape(self._x_shape) if self.need_input_grad else None
