"""2-D convolution (channels-last), computed as im2col and one matrix product."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro import backend, initializers
from neuro.layers._im2col import (
    PADDINGS,
    check_image_shape,
    col2im_offsets,
    im2col,
    same_padding,
    to_pair,
    window_view,
)
from neuro.layers.base import ActivatedLayer


class Conv2D(ActivatedLayer):
    """2-D convolution ``y = f(x ⋆ W + b)`` (cross-correlation, as in every deep-learning library).

    The windows of the (padded) input are gathered into a matrix ``X_col`` of shape
    ``(N·Ho·Wo, kh·kw·C)`` through a strided view, and the layer is then a Dense layer on those
    rows:
    ``Z = X_col · W_mat + b`` with ``W_mat = W.reshape(kh·kw·C, filters)``.

    Args:
        filters: number of output channels (> 0).
        kernel_size: ``k`` or ``(kh, kw)``, positive.
        stride: ``s`` or ``(sh, sw)``, positive (default 1).
        padding: ``"valid"`` (no padding, windows must fit in the input) or ``"same"`` (zero
            padding so that the output has ``ceil(H / sh) × ceil(W / sw)`` cells; an odd total
            padding puts the extra row / column at the bottom / right, as TensorFlow and Keras do).
        activation: activation name or object; ``None`` (the default, as in Keras) means linear.
        weights_initializer: initializer of the kernel (default He-uniform, fan-in ``kh·kw·C``).
        biases_initializer: initializer of the bias (default zeros).
        name: optional layer name.

    Shape:
        - input: ``(N, H, W, C)``; output: ``(N, Ho, Wo, filters)`` with
          ``Ho = (H − kh) // sh + 1`` for ``"valid"`` and ``Ho = ceil(H / sh)`` for ``"same"``
          (likewise for W).
        - kernel ``W``: ``(kh, kw, C, filters)``; bias ``b``: ``(filters,)``.

    Gradient: with G = dL/dz (after the activation's backward) reshaped to ``(N·Ho·Wo, filters)``,
    dL/dW = X_colᵀ·G (reshaped to the kernel), dL/db = Σ_rows G, and dL/dx = col2im(G·W_matᵀ): every
    window's row is added back onto the input pixels it was read from (padding cropped). It is computed
    per kernel offset (i, j) as G·W[i, j]ᵀ, so that each addition covers whole contiguous image rows.
    """

    regularizable = ("kernel",)

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
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters <= 0:
            raise ValueError(f"filters must be a positive integer, got {filters!r}")
        if not isinstance(padding, str) or padding.lower() not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.filters = int(filters)
        self.kernel_size = to_pair(kernel_size, "kernel_size")
        self.stride = to_pair(stride, "stride")
        self.padding = padding.lower()
        self.weights_initializer = initializers.get(weights_initializer)
        self.biases_initializer = initializers.get(biases_initializer)
        self._cols: Any = None
        self._x_shape: tuple[int, int, int, int] | None = None
        self._pads = (0, 0, 0, 0)

    # -- shapes --
    def _paddings(self, h: int, w: int) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` zero padding for an ``h × w`` input."""
        if self.padding == "valid":
            return 0, 0, 0, 0
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return (*same_padding(h, kh, sh), *same_padding(w, kw, sw))

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, _ = check_image_shape(input_shape, "Conv2D")
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if self.padding == "valid" and (kh > h or kw > w):
            raise ValueError(
                f"kernel_size {self.kernel_size} is larger than the input ({h}, {w}) with "
                "padding='valid'; expected kernel_size <= (height, width) of the input"
            )
        top, bottom, left, right = self._paddings(h, w)
        ho = (h + top + bottom - kh) // sh + 1
        wo = (w + left + right - kw) // sw + 1
        return ho, wo, self.filters

    def _create_params(self, input_shape: tuple[int, ...], rng: np.random.Generator) -> None:
        dt = backend.get_dtype()
        kh, kw = self.kernel_size
        shape = (kh, kw, input_shape[2], self.filters)
        self.params = {
            "kernel": backend.asarray(self.weights_initializer(shape, rng, dt)),
            "bias": backend.asarray(self.biases_initializer((self.filters,), rng, dt)),
        }

    # -- computation --
    #: Inference processes at most this many im2col entries at a time (samples in chunks), so that
    #: predicting on a large batch neither builds a huge window matrix nor leaves cache.
    _INFERENCE_CHUNK = 1 << 22

    def _work(self, name: str, shape: tuple[int, ...], dtype: Any, zeros: bool = False,
              store: dict | None = None) -> Any:
        """A buffer kept between batches of one shape: refilling it costs no allocation and no page faults.

        Training keeps them on the layer; inference passes its own ``store``, so that predicting never
        writes into the layer (and two threads may predict at once).
        """
        work = self.__dict__.setdefault("_buffers", {}) if store is None else store
        buf = work.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            xp = backend.xp
            buf = work[name] = xp.zeros(shape, dtype) if zeros else xp.empty(shape, dtype)
        return buf

    def _windows(self, x: Any, pads: tuple[int, int, int, int], store: dict | None) -> Any:
        """im2col of ``x`` padded by ``pads``: ``(N·Ho·Wo, kh·kw·C)``, written into buffers of ``store``
        (``None``: the layer's own)."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        n, h, w, c = x.shape
        top, bottom, left, right = pads
        padded = bool(top or bottom or left or right)
        if padded:
            # the border is zeroed once, when the buffer is made, and never written again (the key holds
            # the padding, so another split of the same padded size gets its own buffer)
            shape = (n, h + top + bottom, w + left + right, c)
            x_pad = self._work(f"pad{pads}", shape, x.dtype, zeros=True, store=store)
        else:
            x_pad = x
        if kh == kw == sh == sw == 1:
            if padded:
                x_pad[:, top : top + h, left : left + w, :] = x
            return im2col(x_pad, 1, 1, 1, 1)
        view = window_view(x_pad, kh, kw, sh, sw)
        rows = view.shape[0] * view.shape[1] * view.shape[2]
        cols = self._work("cols", (rows, kh * kw * c), x.dtype, store=store)
        cols6 = cols.reshape(view.shape)

        def copy(start: int, stop: int) -> None:
            if padded:
                x_pad[start:stop, top : top + h, left : left + w, :] = x[start:stop]
            backend.xp.copyto(cols6[start:stop], view[start:stop])

        backend.parallel_for(copy, n, cols.size)
        return cols

    def _affine_forward(self, x: Any, training: bool) -> Any:
        n, h, w, _ = x.shape
        pads = self._paddings(h, w)
        ho, wo, f = self.compute_output_shape(x.shape[1:])
        kernel = self.params["kernel"].reshape(-1, f)
        if training:
            cols = self._windows(x, pads, store=None)
            z = cols @ kernel
            self._cols, self._x_shape, self._pads = cols, x.shape, pads
        else:
            self._cols = self._x_shape = None
            store: dict = {}  # this call's own buffers
            step = max(1, self._INFERENCE_CHUNK // (ho * wo * kernel.shape[0]))
            if n <= step:
                z = self._windows(x, pads, store) @ kernel
            else:
                z = backend.xp.empty((n * ho * wo, f), dtype=x.dtype)
                for s in range(0, n, step):  # chunks of samples, each one matrix product
                    part = self._windows(x[s : s + step], pads, store)
                    backend.xp.matmul(part, kernel, out=z[s * ho * wo : (s + step) * ho * wo])
        z = z.reshape(n, ho, wo, f)
        bias = self.params["bias"]

        def add_bias(start: int, stop: int) -> None:
            z[start:stop] += bias

        backend.parallel_for(add_bias, n, z.size)
        return z

    def _affine_backward(self, grad: Any) -> Any:
        cols = self._cols
        if cols is None:
            raise RuntimeError("Conv2D.backward called without a forward pass with training=True")
        xp = backend.xp
        g = grad.reshape(-1, self.filters)
        kernel = self.params["kernel"]
        xp.matmul(cols.T, g, out=self.grads["kernel"].reshape(-1, self.filters))
        g.sum(axis=0, out=self.grads["bias"])
        if not self.need_input_grad:
            return None
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        c = kernel.shape[2]
        # the input gradient of the values read at offset (i, j) is G·W[i, j]ᵀ: one product per offset,
        # each written contiguously into one reused buffer, so that col2im adds whole image rows
        dcols = self._work("dcols", (g.shape[0], c), g.dtype)
        flat = kernel.reshape(kh * kw, c, self.filters)

        def offset_grad(k: int) -> Any:
            return xp.matmul(g, flat[k].T, out=dcols)

        return col2im_offsets(offset_grad, self._x_shape, kh, kw, sh, sw, self._pads, g.dtype)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "weights_initializer": self.weights_initializer.get_config(),
            "biases_initializer": self.biases_initializer.get_config(),
        }
