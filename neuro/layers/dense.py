"""Fully connected layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro import backend, initializers
from neuro.layers.base import ActivatedLayer


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
        - input: ``(N, in)``; output: ``(N, units)``.
        - kernel ``W``: ``(in, units)``; bias ``b``: ``(units,)``.

    Gradient: with G = dL/dz (after the activation's backward), dL/dW = xᵀ·G, dL/db = Σ_batch G,
    dL/dx = G·Wᵀ.
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
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.weights_initializer = initializers.get(weights_initializer)
        self.biases_initializer = initializers.get(biases_initializer)
        self._x: Any = None

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense expects inputs of shape (features,) per sample, got {input_shape}; "
                "add a Flatten layer before it"
            )
        return (self.units,)

    def _create_params(self, input_shape: tuple[int, ...], rng: np.random.Generator) -> None:
        dt = backend.get_dtype()
        shape = (input_shape[0], self.units)
        self.params = {
            "kernel": backend.asarray(self.weights_initializer(shape, rng, dt)),
            "bias": backend.asarray(self.biases_initializer((self.units,), rng, dt)),
        }

    def _affine_forward(self, x: Any, training: bool) -> Any:
        z = x @ self.params["kernel"]
        z += self.params["bias"]
        self._x = x if training else None
        return z

    def _affine_backward(self, grad: Any) -> Any:
        x = self._x
        if x is None:
            raise RuntimeError("Dense.backward called without a forward pass with training=True")
        xp = backend.xp
        xp.matmul(x.T, grad, out=self.grads["kernel"])
        grad.sum(axis=0, out=self.grads["bias"])
        return grad @ self.params["kernel"].T if self.need_input_grad else None

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "weights_initializer": self.weights_initializer.get_config(),
            "biases_initializer": self.biases_initializer.get_config(),
        }
