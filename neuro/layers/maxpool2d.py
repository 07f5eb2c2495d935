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
        rows, cols = slices[0]
        out = x[:, rows, cols, :].copy()
        if not training:
            self._argmax = self._x_shape = None
            for rows, cols in slices[1:]:
                xp.maximum(out, x[:, rows, cols, :], out=out)
            return out
        idx_type = np.uint8 if len(slices) <= 256 else np.int32
        argmax = xp.zeros(out.shape, dtype=idx_type)
        for k, (rows, cols) in enumerate(slices[1:], start=1):
            v = x[:, rows, cols, :]
            larger = v > out  # strict: the first maximum keeps the window
            xp.copyto(argmax, idx_type(k), where=larger)
            xp.copyto(out, v, where=larger)
        self._argmax, self._x_shape = argmax, x.shape
        return out

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
        for k, (rows, cols) in enumerate(self._window_slices(dx.shape[1], dx.shape[2])):
            target = dx[:, rows, cols, :]
            if overlapping:
                target += grad * (argmax == idx_type(k))
            else:  # each input element lies in at most one window: write, do not add
                xp.multiply(grad, argmax == idx_type(k), out=target)
        return dx

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": self.pool_size, "stride": self.stride}
