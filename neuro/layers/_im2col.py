"""Helpers of the 2-D layers (Conv2D, MaxPool2D): argument checks, padding, im2col and col2im.

All images are channels-last, ``(N, H, W, C)``. ``im2col`` gathers every ``kh × kw`` window into
one row through a strided view (no Python loop over samples, pixels or windows); ``col2im_offsets``
sends gradients back by looping over the ``kh·kw`` kernel offsets only, each offset being one strided
slice of the image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral
from typing import Any

from neuro import backend

PADDINGS = ("valid", "same")


def to_pair(value: Any, arg: str) -> tuple[int, int]:
    """Return ``value`` as a pair of positive ints (an int ``k`` means ``(k, k)``).

    Args:
        value: an int or a sequence of two ints.
        arg: the argument name, used in the error message.

    Raises:
        ValueError: when ``value`` is not one or two positive integers.
    """
    items = (value, value) if _is_int(value) else value
    try:
        pair = tuple(items)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(_is_int(v) and v > 0 for v in pair):
        raise ValueError(
            f"{arg} must be a positive integer or a pair of positive integers, got {value!r}"
        )
    return int(pair[0]), int(pair[1])


def _is_int(v: Any) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def check_image_shape(input_shape: tuple[int, ...], layer: str) -> tuple[int, int, int]:
    """Check that a per-sample shape is ``(H, W, C)`` with positive sizes and return it.

    Raises:
        ValueError: for another rank or a size below 1.
    """
    if len(input_shape) != 3 or any(d < 1 for d in input_shape):
        raise ValueError(
            f"{layer} expects input_shape (height, width, channels) with positive sizes, "
            f"got input_shape={input_shape}"
        )
    h, w, c = input_shape
    return h, w, c


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Padding ``(before, after)`` of one axis for ``"same"``: ``ceil(size / stride)`` outputs.

    As in TensorFlow/Keras, an odd total puts the extra cell after (bottom / right).
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def window_view(x: Any, kh: int, kw: int, sh: int, sw: int) -> Any:
    """Strided view ``(N, Ho, Wo, kh, kw, C)`` of all the valid windows of ``x`` (no copy)."""
    n, h, w, c = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    s0, s1, s2, s3 = x.strides
    return backend.xp.lib.stride_tricks.as_strided(
        x, shape=(n, ho, wo, kh, kw, c), strides=(s0, s1 * sh, s2 * sw, s1, s2, s3)
    )


def im2col(x: Any, kh: int, kw: int, sh: int, sw: int) -> Any:
    """Return the windows of ``x`` (N, H, W, C) as rows: ``(N·Ho·Wo, kh·kw·C)``, C-contiguous.

    Columns are ordered ``(kernel row, kernel column, channel)``, matching
    ``kernel.reshape(kh·kw·C, F)``.
    A 1×1 kernel with stride 1 needs no copy.
    """
    n, h, w, c = x.shape
    if kh == kw == sh == sw == 1:
        return backend.xp.ascontiguousarray(x).reshape(n * h * w, c)
    view = window_view(x, kh, kw, sh, sw)
    return view.reshape(-1, kh * kw * c)  # the one copy


def offset_ranges(size: int, out: int, k: int, stride: int, before: int) -> tuple[int, int, int]:
    """For kernel offset ``k``: the window range ``[lo, hi)`` that lands inside the unpadded input, and
    the input index of window ``lo``.

    Window ``r`` reads padded index ``r·stride + k``, i.e. input index ``r·stride + k − before``.
    """
    lo = max(0, -(-(before - k) // stride))
    hi = min(out, (size - 1 + before - k) // stride + 1)
    return lo, hi, lo * stride + k - before


def col2im_offsets(
    offset_grad: Callable[[int], Any],
    image_shape: tuple[int, int, int, int],
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    pads: tuple[int, int, int, int],
    dtype: Any,
) -> Any:
    """Adjoint of :func:`im2col` for gradients given per kernel offset, cropped to the unpadded input.

    Args:
        offset_grad: ``offset_grad(k)`` returns the ``(N·Ho·Wo, C)`` gradient of the values that the
            windows read at kernel offset ``k = i·kw + j``; it may reuse one buffer, as each result is
            consumed before the next is asked for (offsets that read only padding are never asked for).
        image_shape: the unpadded input shape ``(N, H, W, C)``.
        kh, kw, sh, sw: kernel size and stride.
        pads: ``(top, bottom, left, right)`` padding of the forward pass.
        dtype: type of the result.

    Returns:
        A new ``(N, H, W, C)`` array. One strided add per kernel offset, whose inner axes are contiguous
        (this is why the gradient comes per offset rather than as im2col rows).
    """
    n, h, w, c = image_shape
    top, bottom, left, right = pads
    ho, wo = (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1
    out = backend.xp.zeros(image_shape, dtype=dtype)
    for i in range(kh):
        r0, r1, y0 = offset_ranges(h, ho, i, sh, top)
        if r0 >= r1:
            continue
        rows = slice(y0, y0 + (r1 - r0 - 1) * sh + 1, sh)
        for j in range(kw):
            c0, c1, x0 = offset_ranges(w, wo, j, sw, left)
            if c0 >= c1:
                continue
            cols = slice(x0, x0 + (c1 - c0 - 1) * sw + 1, sw)
            source = offset_grad(i * kw + j).reshape(n, ho, wo, c)[:, r0:r1, c0:c1, :]

            def add(start: int, stop: int, rows: slice = rows, cols: slice = cols, src: Any = source) -> None:
                out[start:stop, rows, cols, :] += src[start:stop]

            backend.parallel_for(add, n, 2 * source.size)
    return out
