"""2-D convolution (channels-last), computed as im2col and one matrix product (or, for 3×3 of stride 1 under
the compiled kernels, by Winograd's F(2×2, 3×3): :mod:`neuro.functional.winograd`)."""

from __future__ import annotations

from typing import Any

from neuro import functional as F
from neuro import initializers, registry
from neuro import regularizers as regularizers_mod
from neuro._keywords import renamed_attribute
from neuro._validation import positive_int
from neuro.functional import conv as conv_functional
from neuro.functional.conv import output_size
from neuro.layers._args import check_image_shape, padding_arg, to_pair
from neuro.layers.activated import ActivatedLayer
from neuro.layers.activation import ReLU, Sigmoid, Tanh

#: Activations whose backward needs only their output, applied to each training piece of the convolution.
_IN_PIECES = (ReLU, Tanh, Sigmoid)
_APPLIED = "applied in pieces"  # the activation's context when the convolution applied it


def _as_given(grad: Any, y: Any) -> Any:
    """The ``pre`` of a gradient that is dL/dz already (:meth:`Conv2D.preactivated_backward`)."""
    return grad


def _in_place(act: Any, z: Any) -> None:
    """Write ``act(z)`` over ``z`` (an activation may return a new array even when allowed not to)."""
    y, _ = act.forward(z, False, inplace=True)
    if y is not z:
        z[...] = y


@registry.register
class Conv2D(ActivatedLayer):
    """2-D convolution ``y = f(x ⋆ W + b)`` (cross-correlation, as in every deep-learning library).

    The windows of the (padded) input are gathered into a matrix ``X_col`` of shape
    ``(N·Ho·Wo, kh·kw·C)`` through a strided view, and the layer is then a Dense layer on those rows:
    ``Z = X_col · W_mat + b`` with ``W_mat = W.reshape(kh·kw·C, filters)`` (:func:`neuro.functional.conv2d`).
    Under the compiled kernels a 3×3 kernel of stride 1 on 8 input channels or more is computed by Winograd's
    F(2×2, 3×3) instead (:mod:`neuro.functional.winograd`): the same function with 2.25× fewer multiply-adds,
    equal to im2col's to rounding.

    Args:
        filters: number of output channels (> 0).
        kernel_size: ``k`` or ``(kh, kw)``, positive.
        strides: ``s`` or ``(sh, sw)``, positive (default 1); ``stride`` is its old name (deprecated).
        padding: ``"valid"`` (no padding, windows must fit in the input) or ``"same"`` (zero padding so that
            the output has ``ceil(H / sh) × ceil(W / sw)`` cells; an odd total padding puts the extra row /
            column at the bottom / right, as TensorFlow and Keras do).
        activation: activation name or object; ``None`` (the default, as in Keras) means linear.
        kernel_initializer: initializer of the kernel (default He-uniform, fan-in ``kh·kw·C``);
            ``weights_initializer`` is its old name (deprecated).
        bias_initializer: initializer of the bias (default zeros); ``biases_initializer`` is its old name
            (deprecated).
        kernel_regularizer: optional penalty on this layer's kernel (an :class:`~neuro.regularizers.L1` /
            :class:`~neuro.regularizers.L2`, or a name); it replaces the model's ``regularizer`` here.
        bias_regularizer: optional penalty on the bias.
        name: optional layer name.

    Shape:
        - input: ``(N, H, W, C)``; output: ``(N, Ho, Wo, filters)`` with ``Ho = (H − kh) // sh + 1`` for
          ``"valid"`` and ``Ho = ceil(H / sh)`` for ``"same"`` (likewise for W).
        - kernel ``W``: ``(kh, kw, C, filters)``; bias ``b``: ``(filters,)``.

    Raises:
        ValueError: for ``filters``, ``kernel_size`` or ``strides`` that are not positive integers (or pairs),
            an unknown ``padding``, activation, initializer or regularizer, or a kernel larger than the input
            with ``padding="valid"``.

    Gradient: with G = dL/dz (after the activation's backward) reshaped to ``(N·Ho·Wo, filters)``,
    dL/dW = X_colᵀ·G (reshaped to the kernel), dL/db = Σ_rows G, and dL/dx = col2im(G·W_matᵀ): every
    window's row is added back onto the input pixels it was read from (padding cropped).
    """

    regularizable = ("kernel",)
    supports_masking = False
    renamed_keywords = {
        "stride": "strides",
        "weights_initializer": "kernel_initializer",
        "biases_initializer": "bias_initializer",
    }
    stride = renamed_attribute("strides")
    weights_initializer = renamed_attribute("kernel_initializer")
    biases_initializer = renamed_attribute("bias_initializer")

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = (1, 1),
        padding: str = "valid",
        activation: Any = None,
        kernel_initializer: Any = "he_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        name: str | None = None,
    ) -> None:
        super().__init__(activation=activation, name=name)
        self.filters = positive_int(filters, "filters", error=ValueError)
        self.kernel_size = to_pair(kernel_size, "kernel_size")
        self.strides = to_pair(strides, "strides")
        self.padding = padding_arg(padding)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers_mod.get(kernel_regularizer)
        self.bias_regularizer = regularizers_mod.get(bias_regularizer)

    def _pads(self, h: int, w: int) -> tuple[int, ...]:
        return F.paddings(self.padding, h, w, self.kernel_size, self.strides)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, _ = check_image_shape(input_shape, "Conv2D")
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
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
            "kernel": ((kh, kw, input_shape[2], self.filters), self.kernel_initializer),
            "bias": ((self.filters,), self.bias_initializer),
        }

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        act = self.activation
        if not training or type(act) not in _IN_PIECES:
            return super().forward(x, training, rng, mask)
        # the activation is applied to each piece of the convolution while it is in cache (the CPU's
        # training path in pieces; elsewhere the convolution returns z and the activation follows)
        pads = self._pads(x.shape[1], x.shape[2])
        work = self.borrow_work()
        z, ctx = F.conv2d(
            x, self.params["kernel"], self.params["bias"], self.strides, pads, True, work,
            post=lambda zp: _in_place(act, zp),
        )  # fmt: skip
        if conv_functional.applied(ctx):
            return z, (ctx, _APPLIED)
        y, act_ctx = act.forward(z, True, inplace=True)
        return y, (ctx, act_ctx)

    def backward(self, grad: Any, ctx: Any) -> Any:
        affine_ctx, act_ctx = self._require(ctx)
        if act_ctx is not _APPLIED:
            return super().backward(grad, ctx)
        return self._backward_in_pieces(grad, affine_ctx, self.activation.backward)

    def preactivated_backward(self, grad: Any, ctx: Any) -> Any:
        affine_ctx, act_ctx = self._require(ctx)
        if act_ctx is not _APPLIED:
            return self.affine_backward(grad, affine_ctx)
        return self._backward_in_pieces(grad, affine_ctx, _as_given)

    def drop_activation_context(self, ctx: Any) -> Any:
        affine_ctx, act_ctx = ctx
        if act_ctx is _APPLIED:
            return conv_functional.without_output(affine_ctx), _APPLIED
        return affine_ctx, None

    def _backward_in_pieces(self, grad: Any, affine_ctx: Any, pre: Any) -> Any:
        """The backward pass of a forward that applied the activation piece by piece: ``pre(dL/dy, y)`` gives
        each piece's dL/dz."""
        with self.accumulate() as g:
            dx = F.conv2d_backward(
                grad, affine_ctx, self.params["kernel"], g["kernel"], g["bias"], self.need_input_grad, pre=pre
            )
        self.release_work(affine_ctx[-1])
        return dx

    def affine_forward(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        pads = self._pads(x.shape[1], x.shape[2])
        work = self.borrow_work() if training else None  # this context's own scratch, reused between steps
        return F.conv2d(x, self.params["kernel"], self.params["bias"], self.strides, pads, training, work)

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
            "strides": list(self.strides),
            "padding": self.padding,
            "kernel_initializer": registry.serialize(self.kernel_initializer),
            "bias_initializer": registry.serialize(self.bias_initializer),
            **self.regularizer_config(),
        }
