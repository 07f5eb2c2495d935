"""Flatten every sample to one axis."""

from __future__ import annotations

import math
from typing import Any

from neuro import registry
from neuro.layers.base import Layer


@registry.register
class Flatten(Layer):
    """Reshape ``(N, d1, d2, ...)`` to ``(N, d1·d2·…)`` (row-major, no copy for contiguous input).

    Args:
        name: optional layer name.

    Shape:
        - input: ``(N, d1, ..., dk)`` with k ≥ 1; output: ``(N, d1·…·dk)``.

    Raises:
        ValueError: for an input without an axis beyond the batch.

    Gradient: dL/dx = dL/dy reshaped to the input shape.
    """

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) < 1 or any(d < 1 for d in input_shape):
            raise ValueError(
                "Flatten expects input_shape with at least one axis and positive sizes, "
                f"got input_shape={input_shape}"
            )
        return (math.prod(input_shape),)

    def forward(self, x: Any, training: bool = False, rng: Any = None) -> tuple[Any, Any]:
        return x.reshape(x.shape[0], math.prod(x.shape[1:])), (x.shape if training else None)

    def backward(self, grad: Any, ctx: Any) -> Any:
        shape = self._require(ctx)
        return grad.reshape(shape) if self.need_input_grad else None
