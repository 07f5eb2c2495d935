"""Pooling layers (channels-last): MaxPool2D, AvgPool2D and GlobalAveragePooling2D for images; MaxPool1D,
AvgPool1D, GlobalMaxPool1D and GlobalAveragePooling1D (mask-aware) for sequences."""

from __future__ import annotations

import numbers
from typing import Any

from neuro import functional as F
from neuro import registry
from neuro._keywords import renamed_attribute
from neuro.functional import sequence as S
from neuro.functional.conv import output_size
from neuro.layers._args import check_image_shape, padding_arg, to_pair
from neuro.layers.base import Layer, defined_by


class _Pool2D(Layer):
    """Windows of ``pool_size`` every ``strides`` cells, ``"valid"`` or ``"same"`` padding."""

    _op = ""
    renamed_keywords = {"stride": "strides"}
    stride = renamed_attribute("strides")

    def __init__(
        self,
        pool_size: int | tuple[int, int] = (2, 2),
        strides: int | tuple[int, int] | None = None,
        padding: str = "valid",
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.pool_size = to_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else to_pair(strides, "strides")
        self.padding = padding_arg(padding)

    def _pads(self, h: int, w: int) -> tuple[int, ...]:
        return F.paddings(self.padding, h, w, self.pool_size, self.strides)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, c = check_image_shape(input_shape, type(self).__name__)
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        if self.padding == "valid" and (ph > h or pw > w):
            raise ValueError(
                f"pool_size {self.pool_size} is larger than the input ({h}, {w}); "
                "expected pool_size <= (height, width) of the input"
            )
        top, bottom, left, right = self._pads(h, w)
        return output_size(h, ph, sh, top, bottom), output_size(w, pw, sw, left, right), c

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
        }


@registry.register(aliases=("MaxPooling2D",))
class MaxPool2D(_Pool2D):
    """Maximum over each ``ph × pw`` window, windows placed every ``(sh, sw)`` cells.

    Args:
        pool_size: ``p`` or ``(ph, pw)``, positive (default ``(2, 2)``).
        strides: ``s`` or ``(sh, sw)``, positive; defaults to ``pool_size`` (non-overlapping windows). A
            stride smaller than the pool gives overlapping windows. ``stride`` is its old name (deprecated).
        padding: ``"valid"`` (rows and columns that no window reaches are ignored) or ``"same"``
            (``ceil(H / sh)`` outputs; the padding counts as −inf, so it is never the maximum, except in a
            window whose cells are all −inf: there the first cell, padding, takes it, and the window's
            gradient is lost where PyTorch gives it to the first cell inside).
        name: optional layer name.

    Shape:
        - input: ``(N, H, W, C)``; output: ``(N, Ho, Wo, C)`` with ``Ho = (H − ph) // sh + 1`` for
          ``"valid"`` and ``ceil(H / sh)`` for ``"same"`` (likewise Wo).

    A window's maximum is its first NaN if it holds one (NaN propagates, as in PyTorch), else its first
    largest element in row-major window order (−0 and +0 tie), as ``numpy.argmax`` picks it; the output is
    that element, bit for bit, with either kernel set.

    Raises:
        ValueError: for a ``pool_size`` or ``strides`` that are not positive integers (or pairs), an unknown
            ``padding``, or a window larger than the input with ``padding="valid"``.

    Gradient: each window's dL/dy goes to the one input element that was its maximum; every other element
    gets 0. When windows overlap, an element that is the maximum of several windows receives the sum of their
    gradients.
    """

    #: The graph may run the backward of a ReLU before this layer here (see :meth:`forward`'s ``relu_input``
    #: and :func:`takes_relu_input`).
    takes_relu_input = True

    def forward(
        self, x: Any, training: bool = False, rng: Any = None, relu_input: bool = False
    ) -> tuple[Any, Any]:
        """Pool x; with ``relu_input`` (given by the graph when x is a ReLU's output that only this node
        reads) the backward pass returns dL/dz of that ReLU's input z instead of dL/dx (see
        :func:`neuro.functional.max_pool2d`), and the layer before skips its activation's backward."""
        pads = self._pads(x.shape[1], x.shape[2])
        return F.max_pool2d(x, self.pool_size, self.strides, pads, training, relu_input)

    def backward(self, grad: Any, ctx: Any) -> Any:
        ctx = self._require(ctx)
        return F.max_pool2d_backward(grad, ctx) if self.need_input_grad else None


@registry.register(aliases=("AveragePooling2D",))
class AvgPool2D(_Pool2D):
    """Mean over each ``ph × pw`` window, windows placed every ``(sh, sw)`` cells.

    Args:
        pool_size: ``p`` or ``(ph, pw)``, positive (default ``(2, 2)``).
        strides: ``s`` or ``(sh, sw)``, positive; defaults to ``pool_size``. ``stride`` is its old name
            (deprecated).
        padding: ``"valid"`` or ``"same"``; with ``"same"`` a window at the border averages only the cells
            inside the input (as Keras; PyTorch's ``count_include_pad=False``).
        name: optional layer name.

    Shape:
        - input: ``(N, H, W, C)``; output: ``(N, Ho, Wo, C)`` as for :class:`MaxPool2D`.

    Raises:
        ValueError: for a ``pool_size`` or ``strides`` that are not positive integers (or pairs), an unknown
            ``padding``, or a window larger than the input with ``padding="valid"``.

    Gradient: each window's dL/dy divided by the number of input cells it averages goes to each of them;
    overlapping windows add up.
    """

    def forward(self, x: Any, training: bool = False, rng: Any = None) -> tuple[Any, Any]:
        return F.avg_pool2d(x, self.pool_size, self.strides, self._pads(x.shape[1], x.shape[2]), training)

    def backward(self, grad: Any, ctx: Any) -> Any:
        ctx = self._require(ctx)
        return F.avg_pool2d_backward(grad, ctx) if self.need_input_grad else None


@registry.register(aliases=("GlobalAvgPool2D",))
class GlobalAveragePooling2D(Layer):
    """Mean of each channel over height and width.

    Args:
        name: optional layer name.

    Shape:
        - input: ``(N, H, W, C)``; output: ``(N, C)``.

    Gradient: dL/dx[n, i, j, c] = dL/dy[n, c] / (H·W).
    """

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (check_image_shape(input_shape, "GlobalAveragePooling2D")[2],)

    def forward(self, x: Any, training: bool = False, rng: Any = None) -> tuple[Any, Any]:
        return F.global_avg_pool2d(x, training)

    def backward(self, grad: Any, ctx: Any) -> Any:
        ctx = self._require(ctx)
        return F.global_avg_pool2d_backward(grad, ctx) if self.need_input_grad else None


@registry.register(aliases=("GlobalMaxPool2D",))
class GlobalMaxPooling2D(Layer):
    """Maximum of each channel over height and width (Keras's ``GlobalMaxPooling2D``).

    Args:
        name: optional layer name.

    Shape:
        - input: ``(N, H, W, C)``; output: ``(N, C)``.

    Gradient: dL/dy[n, c] goes to the cell that held the maximum (the first in row-major order on ties, a
    NaN being the maximum where there is one); the others get 0.
    """

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (check_image_shape(input_shape, "GlobalMaxPooling2D")[2],)

    def forward(self, x: Any, training: bool = False, rng: Any = None) -> tuple[Any, Any]:
        n, h, w, c = x.shape
        y, ctx = S.global_max_pool1d(x.reshape(n, h * w, c), None, training)  # the cells as one axis
        return y, ((ctx, x.shape) if training else None)

    def backward(self, grad: Any, ctx: Any) -> Any:
        inner, shape = self._require(ctx)
        return S.global_max_pool1d_backward(grad, inner).reshape(shape) if self.need_input_grad else None


# -- sequences ---------------------------------------------------------------------------------------------
def _one_int(value: Any, name: str) -> int:
    """A positive int, also given as a 1-tuple (Keras accepts both for 1-D sizes)."""
    one = value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value
    if isinstance(one, bool) or not isinstance(one, numbers.Integral) or one < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(one)


class _Pool1D(Layer):
    """Windows of ``pool_size`` steps every ``strides`` steps along time, computed as 2-D pooling of a
    ``(N, 1, T, C)`` view."""

    def __init__(
        self, pool_size: int = 2, strides: int | None = None, padding: str = "valid", name: str | None = None
    ) -> None:
        super().__init__(name=name)
        self.pool_size = _one_int(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _one_int(strides, "strides")
        self.padding = padding_arg(padding)

    def _pads(self, steps: int) -> tuple[int, ...]:
        return F.paddings(self.padding, 1, steps, (1, self.pool_size), (1, self.strides))

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 2 or min(input_shape) < 1:
            raise ValueError(
                f"{type(self).__name__} expects input_shape (timesteps, channels), got {input_shape}"
            )
        steps, c = input_shape
        if self.padding == "valid" and self.pool_size > steps:
            raise ValueError(f"pool_size {self.pool_size} is larger than the {steps} steps of the input")
        _, _, left, right = self._pads(steps)
        return output_size(steps, self.pool_size, self.strides, left, right), c

    def forward(self, x: Any, training: bool = False, rng: Any = None) -> tuple[Any, Any]:
        pads = self._pads(x.shape[1])
        y, ctx = self._pool(x[:, None], (1, self.pool_size), (1, self.strides), pads, training)
        return y[:, 0], ctx

    def backward(self, grad: Any, ctx: Any) -> Any:
        ctx = self._require(ctx)
        return self._pool_backward(grad[:, None], ctx)[:, 0] if self.need_input_grad else None

    def get_config(self) -> dict[str, Any]:
        cfg = {"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}
        return {**super().get_config(), **cfg}


@registry.register(aliases=("MaxPooling1D",))
class MaxPool1D(_Pool1D):
    """Maximum over each window of ``pool_size`` steps, windows every ``strides`` steps.

    Args:
        pool_size: steps per window (default 2).
        strides: steps between windows (default ``pool_size``).
        padding: ``"valid"`` or ``"same"`` (padding never wins the maximum, except over steps that are all
            −inf; see :class:`MaxPool2D`).
        name: optional layer name.

    Shape:
        - input: ``(N, T, C)``; output: ``(N, To, C)``, ``To = (T − p) // s + 1`` (valid) or ``ceil(T / s)``.

    Raises:
        ValueError: for a ``pool_size`` or ``strides`` that are not positive integers, an unknown ``padding``,
            or a window longer than the input with ``padding="valid"``.

    Gradient: each window's dL/dy goes to the step that held its maximum (the first on ties).
    """

    @staticmethod
    def _pool(*args: Any) -> Any:
        return F.max_pool2d(*args)

    @staticmethod
    def _pool_backward(grad: Any, ctx: Any) -> Any:
        return F.max_pool2d_backward(grad, ctx)


@registry.register(aliases=("AveragePooling1D", "AvgPooling1D"))
class AvgPool1D(_Pool1D):
    """Mean over each window of ``pool_size`` steps (with ``"same"``, over the steps inside the input).

    Args:
        pool_size: steps per window (default 2).
        strides: steps between windows (default ``pool_size``).
        padding: ``"valid"`` or ``"same"``.
        name: optional layer name.

    Shape:
        - input: ``(N, T, C)``; output: ``(N, To, C)``.

    Raises:
        ValueError: for a ``pool_size`` or ``strides`` that are not positive integers, an unknown ``padding``,
            or a window longer than the input with ``padding="valid"``.

    Gradient: each window's dL/dy divided by its step count goes to each of its steps.
    """

    @staticmethod
    def _pool(*args: Any) -> Any:
        return F.avg_pool2d(*args)

    @staticmethod
    def _pool_backward(grad: Any, ctx: Any) -> Any:
        return F.avg_pool2d_backward(grad, ctx)


class _GlobalPool1D(Layer):
    """Pooling over all the (valid) steps of a sequence: ``(N, T, C)`` → ``(N, C)``; takes a mask."""

    supports_masking = True

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 2 or min(input_shape) < 1:
            raise ValueError(
                f"{type(self).__name__} expects input_shape (timesteps, channels), got {input_shape}"
            )
        return (input_shape[1],)

    def output_masked(self, inputs_masked: list[bool]) -> bool:
        return False  # the time axis is gone

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        return None


@registry.register(aliases=("GlobalAvgPool1D",))
class GlobalAveragePooling1D(_GlobalPool1D):
    """Mean of each channel over the valid steps (every step without a mask).

    Args:
        name: optional layer name.

    Shape:
        - input: ``(N, T, C)`` (and a mask ``(N, T)``); output: ``(N, C)``.

    Gradient: dL/dx[n, t, c] = dL/dy[n, c]·m[n, t] / Σ_t m[n, t].
    """

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        return S.global_avg_pool1d(x, mask, training)

    def backward(self, grad: Any, ctx: Any) -> Any:
        ctx = self._require(ctx)
        return S.global_avg_pool1d_backward(grad, ctx) if self.need_input_grad else None


@registry.register(aliases=("GlobalMaxPooling1D",))
class GlobalMaxPool1D(_GlobalPool1D):
    """Maximum of each channel over the valid steps.

    Args:
        name: optional layer name.

    Shape:
        - input: ``(N, T, C)`` (and a mask ``(N, T)``); output: ``(N, C)``.

    Gradient: dL/dy[n, c] goes to the step that held the maximum (the first on ties; when every valid step
    holds −inf, masked steps count as −inf too and the first step of all takes it).
    """

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        return S.global_max_pool1d(x, mask, training)

    def backward(self, grad: Any, ctx: Any) -> Any:
        ctx = self._require(ctx)
        return S.global_max_pool1d_backward(grad, ctx) if self.need_input_grad else None


def takes_relu_input(layer: Any) -> bool:
    """Whether the graph may have ``layer`` apply the backward of the ReLU before it (``relu_input``): a
    layer whose class sets ``takes_relu_input`` in the same body as the ``forward`` and ``backward`` it
    runs (:class:`MaxPool2D`; a subclass that overrides either one is not, unless it sets the flag again).

    Args:
        layer: any layer.

    Returns:
        The answer.
    """
    if not getattr(layer, "takes_relu_input", False):
        return False
    cls = type(layer)
    own = defined_by(cls, "takes_relu_input")
    return defined_by(cls, "forward") is own and defined_by(cls, "backward") is own
