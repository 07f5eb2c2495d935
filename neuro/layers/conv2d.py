"""2-D convolution (channels-last), computed as im2col and one matrix product."""

from __future__ import annotations

from typing import Any

from neuro import functional as F
from neuro import initializers, registry
from neuro._validation import positive_int
from neuro.functional.conv import output_size
from neuro.layers._args import check_image_shape, padding_arg, to_pair
from neuro.layers.activated import ActivatedLayer


@registry.register
class Conv2D(ActivatedLayer):
    """2-D convolution ``y = f(x ⋆ W + b)`` (cross-correlation, as in every deep-learning library).

    The windows of the (padded) input are gathered into a matrix ``X_col`` of shape
    ``(N·Ho·Wo, kh·kw·C)`` through a strided view, and the layer is then a Dense layer on those rows:
    ``Z = X_col · W_mat + b`` with ``W_mat = W.reshape(kh·kw·C, filters)`` (:func:`neuro.functional.conv2d`).

    Args:
        filters: number of output channels (> 0).
        kernel_size: ``k`` or ``(kh, kw)``, positive.
        stride: ``s`` or ``(sh, sw)``, positive (default 1).
        padding: ``"valid"`` (no padding, windows must fit in the input) or ``"same"`` (zero padding so that
            the output has ``ceil(H / sh) × ceil(W / sw)`` cells; an odd total padding puts the extra row /
            column at the bottom / right, as TensorFlow and Keras do).
        activation: activation name or object; ``None`` (the default, as in Keras) means linear.
        weights_initializer: initializer of the kernel (default He-uniform, fan-in ``kh·kw·C``).
        biases_initializer: initializer of the bias (default zeros).
        name: optional layer name.

    Shape:
        - input: ``(N, H, W, C)``; output: ``(N, Ho, Wo, filters)`` with ``Ho = (H − kh) // sh + 1`` for
          ``"valid"`` and ``Ho = ceil(H / sh)`` for ``"same"`` (likewise for W).
        - kernel ``W``: ``(kh, kw, C, filters)``; bias ``b``: ``(filters,)``.

    Gradient: with G = dL/dz (after the activation's backward) reshaped to ``(N·Ho·Wo, filters)``,
    dL/dW = X_colᵀ·G (reshaped to the kernel), dL/db = Σ_rows G, and dL/dx = col2im(G·W_matᵀ): every
    window's row is added back onto the input pixels it was read from (padding cropped).
    """

    regularizable = ("kernel",)
    supports_masking = False

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = (1, 1),
        padding: str = "valid",
        activation: Any = None,
        weights_initializer: Any = "he_uniform",
        biases_initializer: Any = "zeros",
        name: str | None = None,
    ) -> None:
        super().__init__(activation=activation, name=name)
        self.filters = positive_int(filters, "filters", error=ValueError)
        self.kernel_size = to_pair(kernel_size, "kernel_size")
        self.stride = to_pair(stride, "stride")
        self.padding = padding_arg(padding)
        self.weights_initializer = initializers.get(weights_initializer)
        self.biases_initializer = initializers.get(biases_initializer)

    def _pads(self, h: int, w: int) -> tuple[int, ...]:
        return F.paddings(self.padding, h, w, self.kernel_size, self.stride)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, _ = check_image_shape(input_shape, "Conv2D")
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if self.padding == "valid" and (kh > h or kw > w):
            raise ValueError(
                f"kernel_size {self.kernel_size} is larger than the input ({h}, {w}) with "
                "padding='valid'; expected kernel_size <= (height, width) of the input"
            )
        top, bottom, left, right = self._pads(h, w)
        return output_size(h, kh, sh, top, bottom), output_size(w, kw, sw, left, right), self.filters

    def param_specs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        kh, kw = self.kernel_size
        return {
            "kernel": ((kh, kw, input_shape[2], self.filters), self.weights_initializer),
            "bias": ((self.filters,), self.biases_initializer),
        }

    def affine_forward(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        pads = self._pads(x.shape[1], x.shape[2])
        work = self.borrow_work() if training else None  # this context's own scratch, reused between steps
        return F.conv2d(x, self.params["kernel"], self.params["bias"], self.stride, pads, training, work)

    def affine_backward(self, grad: Any, ctx: Any) -> Any:
        ctx = self._require(ctx)
        with self.accumulate() as g:
            dx = F.conv2d_backward(
                grad, ctx, self.params["kernel"], g["kernel"], g["bias"], self.need_input_grad
            )
        self.release_work(ctx[-1])  # the context is consumed: its scratch may serve the next one
        return dx

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": self.padding,
            "weights_initializer": registry.serialize(self.weights_initializer),
            "biases_initializer": registry.serialize(self.biases_initializer),
        }
