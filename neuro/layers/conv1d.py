"""1-D convolution over sequences (channels-last), with strides, dilation and causal padding."""

from __future__ import annotations

from typing import Any

from neuro import initializers, registry
from neuro import regularizers as regularizers_mod
from neuro._validation import positive_int
from neuro.functional import sequence as S
from neuro.layers.activated import ActivatedLayer
from neuro.layers.base import is_shape

PADDINGS_1D = ("valid", "same", "causal")


@registry.register(aliases=("Convolution1D",))
class Conv1D(ActivatedLayer):
    """1-D convolution ``y = f(x ⋆ W + b)`` along time (cross-correlation, as every library).

    Args:
        filters: output channels (> 0).
        kernel_size: k (> 0).
        strides: s (> 0, default 1).
        padding: ``"valid"`` (no padding), ``"same"`` (``ceil(T / s)`` outputs, an odd total's extra cell on
            the right) or ``"causal"`` (``(k − 1)·d`` zeros on the left: output t sees inputs up to t).
        dilation_rate: d (> 0, default 1): the kernel reads steps ``t·s + j·d``.
        activation: activation name or object; ``None`` (default) means linear.
        kernel_initializer: initializer of the kernel (default Glorot uniform, as Keras).
        bias_initializer: initializer of the bias (default zeros).
        kernel_regularizer: optional penalty on this layer's kernel (an :class:`~neuro.regularizers.L1` /
            :class:`~neuro.regularizers.L2`, or a name); it replaces the model's ``regularizer`` here.
        bias_regularizer: optional penalty on the bias.
        name: optional layer name.

    Shape:
        - input: ``(N, T, C)``; output: ``(N, To, filters)``, ``To = (T + pad − (k − 1)·d − 1) // s + 1``.
        - kernel ``(k, C, filters)``; bias ``(filters,)``.

    Raises:
        ValueError: for ``filters``, ``kernel_size``, ``strides`` or ``dilation_rate`` that are not positive
            integers, an unknown ``padding``, activation, initializer or regularizer, or a (dilated) kernel
            longer than the input with ``padding="valid"``.

    Gradient: with G = dL/dz: dL/dW = windowsᵀ·G, dL/db = Σ G, and dL/dx adds G·W[j]ᵀ back onto the steps each
    kernel offset j read (see :func:`neuro.functional.sequence.conv1d_backward`).
    """

    regularizable = ("kernel",)
    supports_masking = False

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        strides: int = 1,
        padding: str = "valid",
        dilation_rate: int = 1,
        activation: Any = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        name: str | None = None,
    ) -> None:
        super().__init__(activation=activation, name=name)
        self.filters = positive_int(filters, "filters", error=ValueError)
        self.kernel_size = positive_int(_one(kernel_size), "kernel_size", error=ValueError)
        self.strides = positive_int(_one(strides), "strides", error=ValueError)
        self.dilation_rate = positive_int(_one(dilation_rate), "dilation_rate", error=ValueError)
        if not isinstance(padding, str) or padding.lower() not in PADDINGS_1D:
            raise ValueError(f"padding must be one of {PADDINGS_1D}, got {padding!r}")
        self.padding = padding.lower()
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers_mod.get(kernel_regularizer)
        self.bias_regularizer = regularizers_mod.get(bias_regularizer)

    def _pads(self, steps: int) -> tuple[int, int]:
        return S.conv1d_pads(self.padding, steps, self.kernel_size, self.strides, self.dilation_rate)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if not is_shape(input_shape) or len(input_shape) != 2 or min(input_shape) < 1:
            raise ValueError(f"Conv1D expects input_shape (timesteps, channels), got {input_shape}")
        steps = input_shape[0]
        out = S.conv1d_length(steps, self.kernel_size, self.strides, self.dilation_rate, self._pads(steps))
        if out < 1:
            span = (self.kernel_size - 1) * self.dilation_rate + 1
            raise ValueError(
                f"the kernel spans {span} steps (kernel_size {self.kernel_size}, dilation_rate "
                f"{self.dilation_rate}), more than the {steps} of the input with padding='{self.padding}'"
            )
        return (out, self.filters)

    def param_specs(self, input_shape: Any) -> dict[str, Any]:
        return {
            "kernel": ((self.kernel_size, input_shape[-1], self.filters), self.kernel_initializer),
            "bias": ((self.filters,), self.bias_initializer),
        }

    def affine_forward(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        return S.conv1d(
            x,
            self.params["kernel"],
            self.params["bias"],
            self.strides,
            self.dilation_rate,
            self._pads(x.shape[1]),
            training,
        )

    def affine_backward(self, grad: Any, ctx: Any) -> Any:
        ctx = self._require(ctx)
        with self.accumulate() as g:
            return S.conv1d_backward(
                grad, ctx, self.params["kernel"], g["kernel"], g["bias"], self.need_input_grad
            )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "dilation_rate": self.dilation_rate,
            "kernel_initializer": registry.serialize(self.kernel_initializer),
            "bias_initializer": registry.serialize(self.bias_initializer),
            **self.regularizer_config(),
        }


def _one(value: Any) -> Any:
    """Keras also accepts a 1-tuple for 1-D sizes."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        return value[0]
    return value
