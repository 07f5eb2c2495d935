"""Batch normalization over the last axis (features after Dense, channels after Conv2D)."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro import backend
from neuro.layers.base import Layer


class BatchNorm(Layer):
    """Batch normalization ``y = gamma · (x − mean) / sqrt(var + epsilon) + beta``, per feature.

    Statistics are taken per feature of the last axis, over every other axis: over N for ``(N, F)``
    inputs (after Dense) and over N, H, W for ``(N, H, W, C)`` inputs (after Conv2D). Paper: Ioffe &
    Szegedy, 2015.

    In training the layer normalizes with the batch mean and the *biased* batch variance, and
    updates the running averages ``running = momentum · running + (1 − momentum) · batch``; the
    running variance is fed the *unbiased* batch variance (``var · m / (m − 1)``, m values per
    feature, as PyTorch does; with m = 1 the biased one, 0). In inference it normalizes with the
    running averages and changes nothing.
    PyTorch's ``momentum`` is ``1 − momentum`` here.

    Args:
        momentum: weight of the old running value, in [0, 1] (default 0.99).
        epsilon: positive number added to the variance (default 1e-5).
        name: optional layer name.

    Shape:
        - input: ``(N, F)`` or ``(N, H, W, C)``; output: same shape.
        - params ``gamma`` (ones) and ``beta`` (zeros), buffers ``running_mean`` (zeros) and
          ``running_var`` (ones): ``(F,)`` or ``(C,)``.

    Gradient: with g = dL/dy, x̂ = (x − mean) / sqrt(var + epsilon) and m values per feature
    (sums over those m values): dL/dgamma = Σ g·x̂, dL/dbeta = Σ g, and
    dL/dx = gamma / (sqrt(var + epsilon) · m) · (m·g − Σ g − x̂ · Σ g·x̂).
    """

    def __init__(
        self, momentum: float = 0.99, epsilon: float = 1e-5, name: str | None = None
    ) -> None:
        super().__init__(name=name)
        if (
            isinstance(momentum, bool)
            or not isinstance(momentum, (int, float))
            or not (0.0 <= momentum <= 1.0)
        ):
            raise ValueError(f"momentum must be a number in [0, 1], got {momentum!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
            raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self._xhat: Any = None
        self._inv_std: Any = None

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) not in (1, 3) or any(d < 1 for d in input_shape):
            raise ValueError(
                "BatchNorm expects input_shape (features,) or (height, width, channels) with "
                f"positive sizes, got input_shape={input_shape}"
            )
        return input_shape

    def _create_params(self, input_shape: tuple[int, ...], rng: np.random.Generator) -> None:
        xp, dt, f = backend.xp, backend.get_dtype(), input_shape[-1]
        self.params = {"gamma": xp.ones(f, dtype=dt), "beta": xp.zeros(f, dtype=dt)}
        self.buffers = {"running_mean": xp.zeros(f, dtype=dt), "running_var": xp.ones(f, dtype=dt)}

    def forward(self, x: Any, training: bool = False) -> Any:
        xp = backend.xp
        gamma, beta = self.params["gamma"], self.params["beta"]
        if not training:
            self._xhat = self._inv_std = None
            scale = gamma / xp.sqrt(self.buffers["running_var"] + self.epsilon)
            shift = beta - self.buffers["running_mean"] * scale
            return x * scale + shift
        x2 = x.reshape(-1, x.shape[-1])
        m = x2.shape[0]
        mean = x2.mean(axis=0)
        xhat = x2 - mean
        var = xp.einsum("ij,ij->j", xhat, xhat) / m  # biased batch variance
        inv_std = 1.0 / xp.sqrt(var + self.epsilon)
        xhat *= inv_std
        self._xhat, self._inv_std = xhat, inv_std
        mom = self.momentum
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        running_mean *= mom
        running_mean += (1.0 - mom) * mean
        running_var *= mom
        running_var += (1.0 - mom) * (m / (m - 1) if m > 1 else 1.0) * var  # unbiased
        y = xhat * gamma
        y += beta
        return y.reshape(x.shape)

    def backward(self, grad: Any) -> Any:
        xhat = self._xhat
        if xhat is None:
            raise RuntimeError(
                "BatchNorm.backward called without a forward pass with training=True"
            )
        xp = backend.xp
        g = grad.reshape(-1, grad.shape[-1])
        m = g.shape[0]
        g.sum(axis=0, out=self.grads["beta"])
        self.grads["gamma"][...] = xp.einsum("ij,ij->j", g, xhat)
        if not self.need_input_grad:
            return None
        # gamma / (sqrt(var + eps) · m) · (m·g − Σg − x̂·Σ(g·x̂)), with the sums divided by m first
        dx = xhat * (self.grads["gamma"] / m)
        dx += self.grads["beta"] / m
        xp.subtract(g, dx, out=dx)
        dx *= self.params["gamma"] * self._inv_std
        return dx.reshape(grad.shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}
