"""2-D pooling (channels-last) as stateless forward/backward pairs: max, average and global average.

Windows are visited by a small loop over the ``ph·pw`` window offsets, each offset one strided slice of the
whole batch; nothing loops over samples, pixels or windows. ``"same"`` padding pads as Conv2D does
(TensorFlow's rule: ``ceil(H / sh)`` outputs, an odd total padding puts the extra cell at the bottom / right);
max pooling pads with −inf and average pooling averages over the cells inside the input only (Keras's rule).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro.backend import compiled, device_name, get_array_module, kernel, parallel_for
from neuro.functional.conv import output_size


def window_slices(
    h: int, w: int, pool: tuple[int, int], stride: tuple[int, int]
) -> list[tuple[slice, slice]]:
    """For each window offset (row-major), the row and column slices of its elements in an ``h × w`` image."""
    (ph, pw), (sh, sw) = pool, stride
    ho, wo = output_size(h, ph, sh, 0, 0), output_size(w, pw, sw, 0, 0)
    return [
        (slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw))
        for i in range(ph)
        for j in range(pw)
    ]


def _pad(x: Any, pads: tuple[int, ...], value: float) -> Any:
    """A copy of ``x`` with ``(top, bottom, left, right)`` cells of ``value`` around each image."""
    xp = get_array_module(x)
    top, bottom, left, right = pads
    n, h, w, c = x.shape
    out = xp.full((n, h + top + bottom, w + left + right, c), value, dtype=x.dtype)
    out[:, top : top + h, left : left + w, :] = x
    return out


def _crop(dx: Any, pads: tuple[int, ...]) -> Any:
    top, bottom, left, right = pads
    h, w = dx.shape[1] - top - bottom, dx.shape[2] - left - right
    return get_array_module(dx).ascontiguousarray(dx[:, top : top + h, left : left + w, :])


def max_pool2d(
    x: Any,
    pool: tuple[int, int],
    stride: tuple[int, int],
    pads: tuple[int, ...] = (0, 0, 0, 0),
    training: bool = False,
    relu_input: bool = False,
) -> tuple[Any, Any]:
    """Maximum over each window: its first NaN if it holds one, else its first largest element in row-major
    window order (−0 and +0 tie), as ``numpy.argmax`` picks it; y is that element, bit for bit, with either
    kernel set.

    Args:
        x: input ``(N, H, W, C)``.
        pool: ``(ph, pw)``.
        stride: ``(sh, sw)``.
        pads: ``(top, bottom, left, right)``, padded with −inf.
        training: record the offset of each window's maximum in the returned context.
        relu_input: x is ``relu(z)`` and :func:`max_pool2d_backward` is to return dL/dz, not dL/dx: a window
            whose maximum is not above 0 records its offset plus ``ph·pw``, and its gradient reaches its
            maximum multiplied by 0. That is ``relu_backward`` applied to the pooling's dL/dx, whose only
            non-zero elements are the windows' maxima: dL/dz = dL/dx · [x > 0] there (the same values,
            an infinite gradient times 0 included).

    Shape:
        ``(N, H, W, C)`` → ``(N, Ho, Wo, C)``, ``Ho = (H + top + bottom − ph) // sh + 1`` (likewise Wo).

    Returns:
        ``(y, ctx)``; ctx is ``None`` in inference.
    """
    xp = get_array_module(x)
    padded = any(pads)
    if padded:
        x = _pad(x, pads, -np.inf)
    n, h, w, c = x.shape
    if compiled(x):
        return _max_pool2d_compiled(x, pool, stride, pads, training, relu_input)
    slices = window_slices(h, w, pool, stride)
    (rows, cols), rest = slices[0], slices[1:]
    ho, wo = output_size(h, pool[0], stride[0], 0, 0), output_size(w, pool[1], stride[1], 0, 0)
    out = xp.empty((n, ho, wo, c), dtype=x.dtype)
    two = tuple(pool) == tuple(stride) == (2, 2)
    if not training:

        def pool_max(start: int, stop: int) -> None:
            o = out[start:stop]
            if two:
                _pool2x2(x[start:stop], o)
                return
            xp.copyto(o, x[start:stop, rows, cols, :])
            for r, cl in rest:
                v = x[start:stop, r, cl, :]
                _take_where(_replaces(v, o, xp), v, o, xp)

        parallel_for(pool_max, n, x.size, xp)
        return out, None
    idx_type = _offset_type(len(slices), relu_input)
    argmax = xp.zeros(out.shape, dtype=idx_type)

    def pool_argmax(start: int, stop: int) -> None:
        o, a = out[start:stop], argmax[start:stop]
        if two:
            _pool2x2(x[start:stop], o, a)
        else:
            xp.copyto(o, x[start:stop, rows, cols, :])
            for k, (r, cl) in enumerate(rest, start=1):
                v = x[start:stop, r, cl, :]
                larger = _replaces(v, o, xp)
                a += (idx_type(k) - a) * larger  # k where v takes the place (a < k: no wrap-around)
                _take_where(larger, v, o, xp)
        if relu_input:  # o is the element at the offset: the ReLU's [y > 0] (a NaN is not above 0)
            a += xp.logical_not(o > 0).view(np.uint8) * idx_type(len(slices))

    parallel_for(pool_argmax, n, 2 * x.size, xp)
    return out, (argmax, x.shape, tuple(pads), tuple(pool), tuple(stride), relu_input)


def max_pool2d_backward(grad: Any, ctx: Any) -> Any:
    """Each window's dL/dy goes to the input element that was its maximum; every other element gets 0.

    When windows overlap, an element that is the maximum of several windows receives the sum of their
    gradients.

    Args:
        grad: dL/dy ``(N, Ho, Wo, C)``.
        ctx: the context of the training :func:`max_pool2d`.

    Returns:
        dL/dx ``(N, H, W, C)``, the padding cropped.
    """
    argmax, padded_shape, pads, pool, stride, relu_input = ctx
    xp = get_array_module(grad, argmax)
    overlapping = stride[0] < pool[0] or stride[1] < pool[1]
    if compiled(grad, argmax):
        return _max_pool2d_backward_compiled(grad, argmax, padded_shape, pads, pool, stride, overlapping)
    _, hp, wp, _ = padded_shape
    covers = (grad.shape[1] * stride[0], grad.shape[2] * stride[1]) == (hp, wp)
    tiled = tuple(stride) == tuple(pool) and covers
    # windows that tile the image write every cell below: no zeroing pass first
    dx = xp.empty(padded_shape, dtype=grad.dtype) if tiled else xp.zeros(padded_shape, dtype=grad.dtype)
    idx_type = argmax.dtype.type
    slices = window_slices(padded_shape[1], padded_shape[2], pool, stride)
    bits = np.dtype(f"u{grad.dtype.itemsize}")  # a float's bits times 1 or 0: the value, or exactly +0

    def route(start: int, stop: int) -> None:
        g, a = grad[start:stop], argmax[start:stop]
        if relu_input:  # offsets of p = ph·pw and more: a ReLU's windows whose maximum is not above 0
            p = idx_type(len(slices))  # at most 128 in uint8 offsets (see _offset_type)
            dead = a >= p
            g = g * xp.logical_not(dead)  # g·0 there, NaN for an infinite g, as the ReLU's backward
            a = a - dead.view(np.uint8) * p
        gb = g.view(bits)
        for k, (rows, cols) in enumerate(slices):
            target = dx[start:stop, rows, cols, :]
            if overlapping:
                target += (gb * (a == idx_type(k))).view(grad.dtype)
            else:  # each input element lies in at most one window: write, do not add
                xp.multiply(gb, a == idx_type(k), out=target.view(bits))

    parallel_for(route, len(grad), dx.size, xp)
    return _crop(dx, pads) if any(pads) else dx


def _max_pool2d_compiled(
    x: Any, pool: tuple[int, int], stride: tuple[int, int], pads: tuple[int, ...], training: bool,
    relu_input: bool = False,
) -> tuple[Any, Any]:  # fmt: skip
    """:func:`max_pool2d` with the compiled kernel (``x`` already padded): one pass over each window."""
    n, h, w, c = x.shape
    ho, wo = output_size(h, pool[0], stride[0], 0, 0), output_size(w, pool[1], stride[1], 0, 0)
    out = np.empty((n, ho, wo, c), dtype=x.dtype)
    idx_type = _offset_type(pool[0] * pool[1], training and relu_input)
    argmax = np.empty(out.shape if training else (0, 0, 0, 0), dtype=idx_type)
    (ph, pw), (sh, sw) = pool, stride
    relu = training and relu_input
    if training:  # (two kernels: a first training step compiles the one it runs)
        run = lambda a, b: _max_pool_record_kernel(x, out, argmax, ph, pw, sh, sw, relu, a, b)  # noqa: E731
    else:
        run = lambda a, b: _max_pool_kernel(x, out, ph, pw, sh, sw, a, b)  # noqa: E731
    parallel_for(run, n, x.size)
    return out, ((argmax, x.shape, tuple(pads), tuple(pool), tuple(stride), relu) if training else None)


@kernel
def _max_pool_kernel(x, out, ph, pw, sh, sw, start, stop):
    """Maximum of each window: its first NaN, else its first largest element, as the NumPy path."""
    c = x.shape[3]
    for b in range(start, stop):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                o = out[b, i, j]
                first = x[b, i * sh, j * sw]
                for ch in range(c):
                    o[ch] = first[ch]
                for k in range(1, ph * pw):
                    v = x[b, i * sh + k // pw, j * sw + k % pw]
                    for ch in range(c):
                        if not v[ch] <= o[ch] and o[ch] == o[ch]:  # _replaces: larger, or a first NaN
                            o[ch] = v[ch]


@kernel
def _max_pool_record_kernel(x, out, argmax, ph, pw, sh, sw, relu, start, stop):
    """:func:`_max_pool_kernel` recording each maximum's offset in its window; with ``relu``, the offset
    plus ``ph·pw`` where the maximum is not above 0."""
    c = x.shape[3]
    for b in range(start, stop):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                o = out[b, i, j]
                a = argmax[b, i, j]
                first = x[b, i * sh, j * sw]
                for ch in range(c):
                    o[ch] = first[ch]
                    a[ch] = 0
                for k in range(1, ph * pw):
                    v = x[b, i * sh + k // pw, j * sw + k % pw]
                    for ch in range(c):
                        if not v[ch] <= o[ch] and o[ch] == o[ch]:  # _replaces: larger, or a first NaN
                            o[ch] = v[ch]
                            a[ch] = k
                if relu:
                    for ch in range(c):
                        if not o[ch] > 0:
                            a[ch] += ph * pw


def _max_pool2d_backward_compiled(
    grad: Any, argmax: Any, padded_shape: tuple[int, ...], pads: tuple[int, ...], pool: tuple[int, int],
    stride: tuple[int, int], overlapping: bool,
) -> Any:  # fmt: skip
    """:func:`max_pool2d_backward` with the compiled kernel: windows that tile the image are written whole
    (no zeroing pass), overlapping ones add."""
    n, hp, wp, _ = padded_shape
    (ph, pw), (sh, sw) = pool, stride
    ho, wo = grad.shape[1], grad.shape[2]
    tiled = (sh, sw) == (ph, pw) and (ho * sh, wo * sw) == (hp, wp)  # every cell in exactly one window
    dx = np.empty(padded_shape, grad.dtype) if tiled else np.zeros(padded_shape, grad.dtype)
    step = _max_pool_backward_overlapping_kernel if overlapping else _max_pool_backward_kernel
    parallel_for(lambda a, b: step(grad, argmax, dx, ph, pw, sh, sw, a, b), n, dx.size)
    return _crop(dx, pads) if any(pads) else dx


@kernel
def _max_pool_backward_kernel(grad, argmax, dx, ph, pw, sh, sw, start, stop):
    """Each window's gradient to its maximum, windows that do not overlap: their cells written whole (0 where
    not the maximum). An offset plus ``ph·pw`` (a ReLU's window whose maximum is not above 0) sends the
    gradient times 0."""
    c = grad.shape[3]
    p = ph * pw
    zero = grad.dtype.type(0)
    for b in range(start, stop):
        for i in range(grad.shape[1]):
            for j in range(grad.shape[2]):
                g, a = grad[b, i, j], argmax[b, i, j]
                for di in range(ph):
                    for dj in range(pw):
                        k = di * pw + dj
                        t = dx[b, i * sh + di, j * sw + dj]
                        for ch in range(c):
                            ak = a[ch]
                            t[ch] = g[ch] if ak == k else (g[ch] * zero if ak == k + p else zero)


@kernel
def _max_pool_backward_overlapping_kernel(grad, argmax, dx, ph, pw, sh, sw, start, stop):
    """:func:`_max_pool_backward_kernel` of overlapping windows: added, offset by offset as the NumPy path
    does (the same sums, in its order)."""
    c = grad.shape[3]
    p = ph * pw
    zero = grad.dtype.type(0)
    for b in range(start, stop):
        for di in range(ph):
            for dj in range(pw):
                k = di * pw + dj
                for i in range(grad.shape[1]):
                    for j in range(grad.shape[2]):
                        g, a = grad[b, i, j], argmax[b, i, j]
                        t = dx[b, i * sh + di, j * sw + dj]
                        for ch in range(c):
                            if a[ch] == k:
                                t[ch] += g[ch]
                            elif a[ch] == k + p:
                                t[ch] += g[ch] * zero


def _offset_type(offsets: int, relu_input: bool) -> Any:
    """The integer type of a pooling's recorded offsets: ``uint8`` while they fit (twice as many with
    ``relu_input``), else ``int32``."""
    return np.uint8 if offsets * (2 if relu_input else 1) <= 256 else np.int32


def _replaces(v: Any, o: Any, xp: Any) -> Any:
    """Where ``v`` takes the place of the running maximum ``o`` of a window: ``v > o``, or ``v`` is a NaN and
    ``o`` is not (so a window's maximum is its first NaN if it holds one, else its first largest element in
    row-major order, as ``numpy.argmax`` picks it; −0 and +0 tie)."""
    return xp.greater(o == o, v <= o)


def _take_where(mask: Any, v: Any, o: Any, xp: Any, out: Any = None) -> None:
    """``out = v`` where ``mask``, else ``o``, bit for bit (NaNs and the sign of a zero kept):
    ``o + (v − o)·mask`` on the floats' bits as unsigned integers (modulo 2^bits), 3–4× faster than a masked
    copy. ``out`` (``None``: ``o`` itself, in place) must not overlap ``v`` or ``o`` otherwise."""
    bits = np.dtype(f"u{o.dtype.itemsize}")
    if out is None:
        d = xp.subtract(v.view(bits), o.view(bits))
        d *= mask
        ob = o.view(bits)
        ob += d
        return
    ob = out.view(bits)
    xp.subtract(v.view(bits), o.view(bits), out=ob)
    ob *= mask
    ob += o.view(bits)


def _pool2x2(x: Any, out: Any, argmax: Any = None) -> None:
    """2×2 windows, stride 2, in two pairwise steps: across columns, then across rows.

    Each step keeps the first of two elements unless the second takes its place (:func:`_replaces`), so
    ``out`` holds the element at ``argmax`` (0..3 = 2·row + column), bit for bit, as the general path and the
    compiled kernel give it (their order: the first NaN of the window, else its first maximum).
    """
    xp = get_array_module(x)
    ho, wo = out.shape[1], out.shape[2]
    x = x[:, : 2 * ho, : 2 * wo, :]
    left, right = x[:, :, 0::2, :], x[:, :, 1::2, :]
    col = _replaces(right, left, xp)  # per row of each window: does the right element win?
    rows = xp.empty(left.shape, left.dtype)  # (n, 2·ho, wo, c)
    _take_where(col, right, left, xp, out=rows)
    top, bottom = rows[:, 0::2], rows[:, 1::2]
    below = _replaces(bottom, top, xp)
    _take_where(below, bottom, top, xp, out=out)
    if argmax is None:
        return
    # argmax = 2·below + (below ? col of the bottom row : col of the top row), in bytes (argmax is uint8
    # for 2×2 windows, a bool 0 or 1): the choice as t ^ ((t ^ b) & below), 13× faster than a masked copy
    t, b, m = col[:, 0::2].view(np.uint8), col[:, 1::2].view(np.uint8), below.view(np.uint8)
    xp.bitwise_xor(t, b, out=argmax)
    xp.bitwise_and(argmax, m, out=argmax)
    xp.bitwise_xor(argmax, t, out=argmax)
    xp.add(argmax, m, out=argmax)
    xp.add(argmax, m, out=argmax)


def avg_pool2d(
    x: Any,
    pool: tuple[int, int],
    stride: tuple[int, int],
    pads: tuple[int, ...] = (0, 0, 0, 0),
    training: bool = False,
) -> tuple[Any, Any]:
    """Mean over each window, counting only the cells inside the input (padding is not averaged).

    Args:
        x: input ``(N, H, W, C)``.
        pool: ``(ph, pw)``.
        stride: ``(sh, sw)``.
        pads: ``(top, bottom, left, right)``.
        training: return the context :func:`avg_pool2d_backward` needs.

    Shape:
        ``(N, H, W, C)`` → ``(N, Ho, Wo, C)`` as for :func:`max_pool2d`.

    Returns:
        ``(y, ctx)``; ctx is ``None`` in inference.
    """
    xp = get_array_module(x)
    n, h, w, c = x.shape
    padded = any(pads)
    xpad = _pad(x, pads, 0.0) if padded else x
    hp, wp = xpad.shape[1], xpad.shape[2]
    slices = window_slices(hp, wp, pool, stride)
    ho, wo = output_size(hp, pool[0], stride[0], 0, 0), output_size(wp, pool[1], stride[1], 0, 0)
    inv = _inverse_counts(h, w, pool, stride, pads, ho, wo, x.dtype, xp)
    out = xp.empty((n, ho, wo, c), dtype=x.dtype)

    def pool_sum(start: int, stop: int) -> None:
        o = out[start:stop]
        (r0, c0), rest = slices[0], slices[1:]
        xp.copyto(o, xpad[start:stop, r0, c0, :])
        for r, cl in rest:
            o += xpad[start:stop, r, cl, :]
        o *= inv

    parallel_for(pool_sum, n, xpad.size, xp)
    ctx = (x.shape, tuple(pads), tuple(pool), tuple(stride), inv) if training else None
    return out, ctx


def _inverse_counts(
    h: int,
    w: int,
    pool: tuple[int, int],
    stride: tuple[int, int],
    pads: tuple[int, ...],
    ho: int,
    wo: int,
    dtype: Any,
    xp: Any,
) -> Any:
    """``1 / (number of input cells in each window)``, shaped ``(Ho, Wo, 1)`` (a scalar without padding)."""
    if not any(pads):
        return dtype.type(1.0 / (pool[0] * pool[1])) if hasattr(dtype, "type") else 1.0 / (pool[0] * pool[1])
    cnt = window_counts(h, w, pool, stride, pads, ho, wo)
    return xp.asarray((1.0 / cnt)[:, :, None].astype(dtype))


def window_counts(
    h: int, w: int, pool: tuple[int, int], stride: tuple[int, int], pads: tuple[int, ...], ho: int, wo: int
) -> np.ndarray:
    """How many cells of the unpadded ``h × w`` input each of the ``Ho × Wo`` windows covers.

    Args:
        h: input height.
        w: input width.
        pool: ``(ph, pw)``.
        stride: ``(sh, sw)``.
        pads: ``(top, bottom, left, right)``.
        ho: number of window rows.
        wo: number of window columns.

    Returns:
        A host array ``(Ho, Wo)`` of positive integers.
    """
    top, _, left, _ = pads

    def counts(size: int, out: int, p: int, s: int, before: int) -> np.ndarray:
        start = np.arange(out) * s - before
        return np.minimum(start + p, size) - np.maximum(start, 0)

    return np.outer(counts(h, ho, pool[0], stride[0], top), counts(w, wo, pool[1], stride[1], left))


def avg_pool2d_backward(grad: Any, ctx: Any) -> Any:
    """Each window's dL/dy, divided by its cell count, goes to every input cell of the window.

    Overlapping windows add their shares; padding cells receive nothing (they are cropped).

    Args:
        grad: dL/dy ``(N, Ho, Wo, C)``.
        ctx: the context of the training :func:`avg_pool2d`.

    Returns:
        dL/dx ``(N, H, W, C)``.
    """
    x_shape, pads, pool, stride, inv = ctx
    xp = get_array_module(grad)
    n, h, w, c = x_shape
    top, bottom, left, right = pads
    shape = (n, h + top + bottom, w + left + right, c)
    slices = window_slices(shape[1], shape[2], pool, stride)
    g = grad * inv
    dx = xp.zeros(shape, dtype=grad.dtype)

    def spread(start: int, stop: int) -> None:
        gs = g[start:stop]
        for rows, cols in slices:
            dx[start:stop, rows, cols, :] += gs

    parallel_for(spread, n, dx.size, xp)
    return _crop(dx, pads) if any(pads) else dx


def global_avg_pool2d(x: Any, training: bool = False) -> tuple[Any, Any]:
    """Mean over the height and width of each channel, ``(N, H, W, C)`` → ``(N, C)``; ctx: the input shape.

    Args:
        x: input ``(N, H, W, C)``.
        training: return the input shape as the context (else ``None``).

    Shape:
        ``(N, H, W, C)`` → ``(N, C)``.

    Returns:
        ``(y, ctx)``.
    """
    n, h, w, c = x.shape
    m = h * w
    b = 1024 // c if c else 0  # pixels per block row: each sample read as rows of about 1,024 values
    host = device_name(get_array_module(x)) != "cupy"  # NumPy and its strict stand-in alike, bitwise
    wide = x.dtype in (np.float32, np.float64)  # float16 sums overflow: NumPy's mean widens them
    if host and wide and b >= 8 and m % b == 0 and m >= 8 * b and x.flags.c_contiguous:
        # NumPy adds the pixels of (N, H, W, C) one at a time, C values a step (slow for few channels)
        sums = x.reshape(n, m // b, b * c).sum(axis=1).reshape(n, b, c).sum(axis=1)
        return sums / x.dtype.type(m), (x.shape if training else None)
    return x.mean(axis=(1, 2)), (x.shape if training else None)


def global_avg_pool2d_backward(grad: Any, x_shape: tuple[int, ...]) -> Any:
    """dL/dx[n, i, j, c] = dL/dy[n, c] / (H·W).

    Args:
        grad: dL/dy ``(N, C)``.
        x_shape: the input shape ``(N, H, W, C)`` (the forward context).

    Returns:
        dL/dx ``(N, H, W, C)``, a new array.
    """
    xp = get_array_module(grad)
    n, h, w, c = x_shape
    scale = grad.dtype.type(1.0 / (h * w))
    return xp.broadcast_to((grad * scale)[:, None, None, :], x_shape).copy()
