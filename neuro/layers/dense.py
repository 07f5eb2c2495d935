"""Fully connected layer."""

from __future__ import annotations

from typing import Any

from neuro import functional as F
from neuro import initializers, registry
from neuro import regularizers as regularizers_mod
from neuro._keywords import renamed_attribute
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
        kernel_initializer: initializer of the kernel (default He-uniform); ``weights_initializer`` is its
            old name (deprecated).
        bias_initializer: initializer of the bias (default zeros); ``biases_initializer`` is its old name
            (deprecated).
        kernel_regularizer: optional penalty on this layer's kernel (an :class:`~neuro.regularizers.L1` /
            :class:`~neuro.regularizers.L2`, or a name); it replaces the model's ``regularizer`` here.
        bias_regularizer: optional penalty on the bias.
        name: optional layer name.

    Shape:
        - input: ``(N, in)``; output: ``(N, units)``. As in Keras, an input of higher rank
          ``(N, ..., in)`` is transformed along its last axis: output ``(N, ..., units)``.
        - kernel ``W``: ``(in, units)``; bias ``b``: ``(units,)``.

    Raises:
        ValueError: for ``units`` that is not a positive integer, an unknown activation, initializer or
            regularizer, or an input without a feature axis.

    Gradient: with G = dL/dz (after the activation's backward), dL/dW = xᵀ·G, dL/db = Σ_batch G (sums over
    every axis but the last), dL/dx = G·Wᵀ.
    """

    regularizable = ("kernel",)
    renamed_keywords = {"weights_initializer": "kernel_initializer", "biases_initializer": "bias_initializer"}
    weights_initializer = renamed_attribute("kernel_initializer")
    biases_initializer = renamed_attribute("bias_initializer")

    def __init__(
        self,
        units: int,
        activation: Any = None,
        kernel_initializer: Any = "he_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        name: str | None = None,
    ) -> None:
        super().__init__(activation=activation, name=name)
        self.units = positive_int(units, "units", error=ValueError)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers_mod.get(kernel_regularizer)
        self.bias_regularizer = regularizers_mod.get(bias_regularizer)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if not is_shape(input_shape) or len(input_shape) < 1 or min(input_shape) < 1:
            raise ValueError(f"Dense expects inputs of shape (..., features) per sample, got {input_shape}")
        return (*input_shape[:-1], self.units)

    def param_specs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        return {
            "kernel": ((input_shape[-1], self.units), self.kernel_initializer),
            "bias": ((self.units,), self.bias_initializer),
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
            "kernel_initializer": registry.serialize(self.kernel_initializer),
            "bias_initializer": registry.serialize(self.bias_initializer),
            **self.regularizer_config(),
        }
