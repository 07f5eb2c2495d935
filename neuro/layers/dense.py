"""Fully connected layer."""

from __future__ import annotations

from typing import Any

from neuro import functional as F
from neuro import initializers, registry
from neuro._validation import positive_int
from neuro.layers.activated import ActivatedLayer
from neuro.layers.base import is_shape


@registry.register
class Dense(ActivatedLayer):
    """Fully connected layer ``y = f(x·W + b)``.

    Args:
        units: number of outputs (> 0).
        activation: activation name or object; ``None`` (the default, as in Keras and PyTorch) means linear,
            so that an output layer never clips silently.
        weights_initializer: initializer of the kernel (default He-uniform).
        biases_initializer: initializer of the bias (default zeros).
        name: optional layer name.

    Shape:
        - input: ``(N, in)``; output: ``(N, units)``. As in Keras, an input of higher rank
          ``(N, ..., in)`` is transformed along its last axis: output ``(N, ..., units)``.
        - kernel ``W``: ``(in, units)``; bias ``b``: ``(units,)``.

    Gradient: with G = dL/dz (after the activation's backward), dL/dW = xᵀ·G, dL/db = Σ_batch G (sums over
    every axis but the last), dL/dx = G·Wᵀ.
    """

    regularizable = ("kernel",)

    def __init__(
        self,
        units: int,
        activation: Any = None,
        weights_initializer: Any = "he_uniform",
        biases_initializer: Any = "zeros",
        name: str | None = None,
    ) -> None:
        super().__init__(activation=activation, name=name)
        self.units = positive_int(units, "units", error=ValueError)
        self.weights_initializer = initializers.get(weights_initializer)
        self.biases_initializer = initializers.get(biases_initializer)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if not is_shape(input_shape) or len(input_shape) < 1 or min(input_shape) < 1:
            raise ValueError(f"Dense expects inputs of shape (..., features) per sample, got {input_shape}")
        return (*input_shape[:-1], self.units)

    def param_specs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        return {
            "kernel": ((input_shape[-1], self.units), self.weights_initializer),
            "bias": ((self.units,), self.biases_initializer),
        }

    def affine_forward(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        return F.linear(x, self.params["kernel"], self.params["bias"], training)

    def affine_backward(self, grad: Any, ctx: Any) -> Any:
        x = self._require(ctx)
        with self.accumulate() as g:
            return F.linear_backward(
                grad, x, self.params["kernel"], g["kernel"], g["bias"], self.need_input_grad
            )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "weights_initializer": registry.serialize(self.weights_initializer),
            "biases_initializer": registry.serialize(self.biases_initializer),
        }
