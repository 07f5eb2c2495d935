"""2-D pooling layers (channels-last): MaxPool2D, AvgPool2D and GlobalAveragePooling2D."""

from __future__ import annotations

from typing import Any

from neuro import functional as F
from neuro import registry
from neuro.functional.conv import output_size
from neuro.layers._args import check_image_shape, padding_arg, to_pair
from neuro.layers.base import Layer


class _Pool2D(Layer):
    """Windows of ``pool_size`` every ``stride`` cells, ``"valid"`` or ``"same"`` padding."""

    _op = ""

    def __init__(
        self,
        pool_size: int | tuple[int, int] = (2, 2),
        stride: int | tuple[int, int] | None = None,
        padding: str = "valid",
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.pool_size = to_pair(pool_size, "pool_size")
        self.stride = self.pool_size if stride is None else to_pair(stride, "stride")
        self.padding = padding_arg(padding)

    def _pads(self, h: int, w: int) -> tuple[int, ...]:
        return F.paddings(self.padding, h, w, self.pool_size, self.stride)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, c = check_image_shape(input_shape, type(self).__name__)
        (ph, pw), (sh, sw) = self.pool_size, self.stride
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
            "stride": list(self.stride),
            "padding": self.padding,
        }


@registry.register(aliases=("MaxPooling2D",))
class MaxPool2D(_Pool2D):
    """Maximum over each ``ph × pw`` window, windows placed every ``(sh, sw)`` cells.

    Args:
        pool_size: ``p`` or ``(ph, pw)``, positive (default ``(2, 2)``).
        stride: ``s`` or ``(sh, sw)``, positive; defaults to ``pool_size`` (non-overlapping windows). A
            stride smaller than the pool gives overlapping windows.
        padding: ``"valid"`` (rows and columns that no window reaches are ignored) or ``"same"``
            (``ceil(H / sh)`` outputs; the padding counts as −inf, so it is never the maximum).
        name: optional layer name.

    Shape:
        - input: ``(N, H, W, C)``; output: ``(N, Ho, Wo, C)`` with ``Ho = (H − ph) // sh + 1`` for
          ``"valid"`` and ``ceil(H / sh)`` for ``"same"`` (likewise Wo).

    Gradient: each window's dL/dy goes to the one input element that was its maximum (the first maximum in
    row-major window order on ties, as ``argmax`` picks it); every other element gets 0. When windows
    overlap, an element that is the maximum of several windows receives the sum of their gradients.
    """

    def forward(self, x: Any, training: bool = False, rng: Any = None) -> tuple[Any, Any]:
        return F.max_pool2d(x, self.pool_size, self.stride, self._pads(x.shape[1], x.shape[2]), training)

    def backward(self, grad: Any, ctx: Any) -> Any:
        ctx = self._require(ctx)
        return F.max_pool2d_backward(grad, ctx) if self.need_input_grad else None


@registry.register(aliases=("AveragePooling2D",))
class AvgPool2D(_Pool2D):
    """Mean over each ``ph × pw`` window, windows placed every ``(sh, sw)`` cells.

    Args:
        pool_size: ``p`` or ``(ph, pw)``, positive (default ``(2, 2)``).
        stride: ``s`` or ``(sh, sw)``, positive; defaults to ``pool_size``.
        padding: ``"valid"`` or ``"same"``; with ``"same"`` a window at the border averages only the cells
            inside the input (as Keras; PyTorch's ``count_include_pad=False``).
        name: optional layer name.

    Shape:
        - input: ``(N, H, W, C)``; output: ``(N, Ho, Wo, C)`` as for :class:`MaxPool2D`.

    Gradient: each window's dL/dy divided by the number of input cells it averages goes to each of them;
    overlapping windows add up.
    """

    def forward(self, x: Any, training: bool = False, rng: Any = None) -> tuple[Any, Any]:
        return F.avg_pool2d(x, self.pool_size, self.stride, self._pads(x.shape[1], x.shape[2]), training)

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
