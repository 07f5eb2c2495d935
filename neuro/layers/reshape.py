"""Reshape every sample to a given shape (Keras's ``Reshape``)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from neuro import registry
from neuro.layers.base import Layer

#: The most axes a target shape may have (NumPy's arrays have at most 64, the batch axis included).
MAX_RANK = 32


@registry.register
class Reshape(Layer):
    """Reshape each sample ``(d1, ..., dk)`` to ``target_shape`` (row-major, as NumPy's and Keras's
    ``Reshape``: no copy for contiguous input). One entry of ``target_shape`` may be ``-1``, taken from the
    others.

    Args:
        target_shape: the shape of a sample afterwards, without the batch axis: 1 to 32 positive integers,
            at most one ``-1``.
        name: optional layer name.

    Shape:
        - input: ``(N, d1, ..., dk)``; output: ``(N, *target_shape)``, with as many values per sample.

    Raises:
        ValueError: for a ``target_shape`` that is not a tuple of positive integers with at most one ``-1``,
            or that holds another number of values than the input's sample.

    Gradient: dL/dx = dL/dy reshaped to the input shape.
    """

    def __init__(self, target_shape: Any, name: str | None = None) -> None:
        super().__init__(name=name)
        shape = (target_shape,) if isinstance(target_shape, numbers.Integral) else target_shape
        try:
            shape = tuple(shape)
        except TypeError:
            shape = None
        if (
            shape is None
            or not 1 <= len(shape) <= MAX_RANK
            or any(
                isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral) or (d < 1 and d != -1)
                for d in shape
            )
            or sum(d == -1 for d in shape) > 1
        ):
            raise ValueError(
                f"target_shape must be a tuple of 1 to {MAX_RANK} positive integers (one of them may be -1), "
                f"without the batch axis, got {target_shape!r}"
            )
        self.target_shape = tuple(int(d) for d in shape)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        size = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if known == 0 or size % known:
                raise ValueError(
                    f"Reshape cannot make target_shape {self.target_shape} of an input of shape "
                    f"{tuple(input_shape)} ({size} values per sample)"
                )
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if known != size:
            raise ValueError(
                f"Reshape's target_shape {self.target_shape} holds {known} values, but the input of shape "
                f"{tuple(input_shape)} holds {size} per sample"
            )
        return self.target_shape

    def forward(self, x: Any, training: bool = False, rng: Any = None) -> tuple[Any, Any]:
        # the target shape itself (-1 resolved per call): a layer without weights is called unbuilt, or on
        # inputs of several shapes
        return x.reshape(x.shape[0], *self.target_shape), (x.shape if training else None)

    def backward(self, grad: Any, ctx: Any) -> Any:
        shape = self._require(ctx)
        return grad.reshape(shape) if self.need_input_grad else None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": list(self.target_shape)}
