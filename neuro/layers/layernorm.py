"""Layer normalization: each sample (and each step of a sequence) normalized over its features."""

from __future__ import annotations

import numbers
from typing import Any

from neuro import initializers, registry
from neuro.functional import sequence as S
from neuro.layers.base import Layer, is_shape


@registry.register
class LayerNormalization(Layer):
    """``y = γ·(x − μ)/sqrt(σ² + ε) + β`` with μ, σ² the mean and variance of each position's features (the
    last axis): the same in training and inference, no running statistics. Paper: Ba et al., 2016.

    Args:
        axis: the axis normalized over; only the last one, ``-1``, is supported.
        epsilon: added to the variance (default 1e-3, as Keras), > 0.
        center: learn the shift β (default True).
        scale: learn the scale γ (default True).
        name: optional layer name.

    Shape:
        - input: ``(N, ..., F)``; output: the same; gamma and beta ``(F,)``.

    Raises:
        ValueError: for an ``axis`` other than -1 or an ``epsilon`` that is not a positive number.
        TypeError: for a ``center`` or ``scale`` that is not a bool.

    Gradient: with g = dL/dy and d̂ = g·γ: dL/dγ = Σ g·x̂, dL/dβ = Σ g, dL/dx = (d̂ − mean(d̂) − x̂·mean(d̂·x̂))/σ,
    the means over the last axis (see :func:`neuro.functional.sequence.layer_norm_backward`).
    """

    supports_masking = True

    def __init__(
        self,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if axis not in (-1, [-1], (-1,)):
            raise ValueError(f"axis must be -1 (the last axis), got {axis!r}")
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, numbers.Real)
            or not 0 < epsilon < float("inf")
        ):
            raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
        for flag, value in (("center", center), ("scale", scale)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be True or False, got {value!r}")
        self.axis, self.epsilon, self.center, self.scale = -1, float(epsilon), center, scale

    def compute_output_shape(self, input_shape: Any) -> Any:
        if not is_shape(input_shape) or len(input_shape) < 1:
            raise ValueError(f"LayerNormalization expects at least one feature axis, got {input_shape}")
        return input_shape

    def param_specs(self, input_shape: Any) -> dict[str, Any]:
        f = (input_shape[-1],)
        specs = {}
        if self.scale:
            specs["gamma"] = (f, initializers.Ones())
        if self.center:
            specs["beta"] = (f, initializers.Zeros())
        return specs

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        return S.layer_norm(x, self.params.get("gamma"), self.params.get("beta"), self.epsilon, training)

    def backward(self, grad: Any, ctx: Any) -> Any:
        ctx = self._require(ctx)
        with self.accumulate() as g:
            return S.layer_norm_backward(
                grad, ctx, self.params.get("gamma"), g.get("gamma"), g.get("beta"), self.need_input_grad
            )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }
