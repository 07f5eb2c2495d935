"""2-D max pooling (channels-last) over valid windows."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro import backend
from neuro.layers._im2col import check_image_shape, to_pair
from neuro.layers.base import Layer


class MaxPool2D(Layer):
    """Maximum over each ``ph × pw`` window, windows placed every ``(sh, sw)`` cells (no padding).

    The maximum is computed by a small loop over the ``ph·pw`` window offsets, each offset being
    one strided slice of the whole batch; in training the loop also records which offset held the
    maximum.

    Args:
        pool_size: ``p`` or ``(ph, pw)``, positive (default ``(2, 2)``).
        stride: ``s`` or ``(sh, sw)``, positive; defaults to ``pool_size`` (non-overlapping
            windows). A stride smaller than the pool gives overlapping windows.
        name: optional layer name.

    Shape:
        - input: ``(N, H, W, C)``; output: ``(N, Ho, Wo, C)`` with ``Ho = (H − ph) // sh + 1`` and
          ``Wo = (W − pw) // sw + 1``; rows and columns that no window reaches are ignored.

    Gradient: each window's dL/dy goes to the one input element that was its maximum (the first
    maximum in row-major window order on ties, as ``argmax`` picks it); every other element gets 0.
    When windows overlap, an element that is the maximum of several windows receives the sum of
    their gradients.
    """

    def __init__(
        self,
        pool_size: int | tuple[int, int] = (2, 2),
        stride: int | tuple[int, int] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.pool_size = to_pair(pool_size, "pool_size")
        self.stride = self.pool_size if stride is None else to_pair(stride, "stride")
        self._argmax: Any = None
        self._x_shape: tuple[int, ...] | None = None

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        h, w, c = check_image_shape(input_shape, "MaxPool2D")
        (ph, pw), (sh, sw) = self.pool_size, self.stride
        if ph > h or pw > w:
            raise ValueError(
                f"pool_size {self.pool_size} is larger than the input ({h}, {w}); "
                "expected pool_size <= (height, width) of the input"
            )
        return (h - ph) // sh + 1, (w - pw) // sw + 1, c

    def _window_slices(self, h: int, w: int) -> list[tuple[slice, slice]]:
        """For each window offset (row-major), the row and column slices of its elements."""
        (ph, pw), (sh, sw) = self.pool_size, self.stride
        ho, wo = (h - ph) // sh + 1, (w - pw) // sw + 1
        return [
            (slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw))
            for i in range(ph)
            for j in range(pw)
        ]

    def forward(self, x: Any, training: bool = False) -> Any:
        xp = backend.xp
        slices = self._window_slices(x.shape[1], x.shape[2])
        (rows, cols), rest = slices[0], slices[1:]
        out = xp.empty((x.shape[0], *self._out_hw(x.shape), x.shape[3]), dtype=x.dtype)
        if not training:
            self._argmax = self._x_shape = None

            def pool(start: int, stop: int) -> None:
                o = out[start:stop]
                xp.copyto(o, x[start:stop, rows, cols, :])
                for r, c in rest:
                    xp.maximum(o, x[start:stop, r, c, :], out=o)

            backend.parallel_for(pool, len(x), x.size)
            return out
        idx_type = np.uint8 if len(slices) <= 256 else np.int32
        argmax = xp.zeros(out.shape, dtype=idx_type)
        if self.pool_size == self.stride == (2, 2):
            backend.parallel_for(lambda a, b: _pool2x2(x[a:b], out[a:b], argmax[a:b]), len(x), 2 * x.size)
            self._argmax, self._x_shape = argmax, x.shape
            return out

        def pool_argmax(start: int, stop: int) -> None:
            o, a = out[start:stop], argmax[start:stop]
            xp.copyto(o, x[start:stop, rows, cols, :])
            for k, (r, c) in enumerate(rest, start=1):
                v = x[start:stop, r, c, :]
                larger = v > o  # strict: the first maximum keeps the window
                xp.copyto(a, idx_type(k), where=larger)
                xp.copyto(o, v, where=larger)

        backend.parallel_for(pool_argmax, len(x), 2 * x.size)
        self._argmax, self._x_shape = argmax, x.shape
        return out

    def _out_hw(self, shape: tuple[int, ...]) -> tuple[int, int]:
        (ph, pw), (sh, sw) = self.pool_size, self.stride
        return (shape[1] - ph) // sh + 1, (shape[2] - pw) // sw + 1

    def backward(self, grad: Any) -> Any:
        argmax = self._argmax
        if argmax is None:
            raise RuntimeError(
                "MaxPool2D.backward called without a forward pass with training=True"
            )
        if not self.need_input_grad:
            return None
        xp = backend.xp
        (ph, pw), (sh, sw) = self.pool_size, self.stride
        overlapping = sh < ph or sw < pw
        dx = xp.zeros(self._x_shape, dtype=grad.dtype)
        idx_type = argmax.dtype.type
        slices = self._window_slices(dx.shape[1], dx.shape[2])

        def route(start: int, stop: int) -> None:
            g, a = grad[start:stop], argmax[start:stop]
            for k, (rows, cols) in enumerate(slices):
                target = dx[start:stop, rows, cols, :]
                if overlapping:
                    target += g * (a == idx_type(k))
                else:  # each input element lies in at most one window: write, do not add
                    xp.multiply(g, a == idx_type(k), out=target)

        backend.parallel_for(route, len(grad), dx.size)
        return dx

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": self.pool_size, "stride": self.stride}


def _pool2x2(x: Any, out: Any, argmax: Any) -> None:
    """2×2 windows, stride 2, in two pairwise steps: across columns, then across rows.

    Strict comparisons keep the first maximum in row-major order, so ``argmax`` (0..3 = 2·row + column)
    is what the general path gives, with plain ``maximum``/``greater`` passes instead of masked copies.
    """
    xp = backend.xp
    ho, wo = out.shape[1], out.shape[2]
    x = x[:, : 2 * ho, : 2 * wo, :]
    left, right = x[:, :, 0::2, :], x[:, :, 1::2, :]
    col = right > left  # per row of each window: is the right element the (first) maximum?
    rows = xp.maximum(left, right)
    top, bottom = rows[:, 0::2], rows[:, 1::2]
    below = bottom > top
    xp.maximum(top, bottom, out=out)
    # argmax = 2·below + (below ? col of the bottom row : col of the top row)
    xp.copyto(argmax, col[:, 0::2])
    xp.copyto(argmax, col[:, 1::2], where=below)
    argmax += below.view(np.uint8) * np.uint8(2)  # argmax is uint8 for 2×2 windows
