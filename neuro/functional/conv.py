"""2-D convolution as stateless functions: padding, im2col, col2im and conv2d.

All images are channels-last, ``(N, H, W, C)``. ``im2col`` gathers every ``kh × kw`` window into
one row through a strided view (no Python loop over samples, pixels or windows); ``col2im_offsets``
sends gradients back by looping over the ``kh·kw`` kernel offsets only, each offset being one strided
slice of the image.

The input gradient of :func:`conv2d_backward` is one matrix product ``G·W_matᵀ`` per chunk of samples
(window rows of every kernel offset at once), sent back onto the image offset by offset. With the compiled
kernel set (:mod:`neuro.backend`) that scatter is a compiled loop that adds in the same order: bitwise the
same results. With that set a 3×3 convolution of stride 1 on enough channels runs Winograd's F(2×2, 3×3)
instead (:mod:`neuro.functional.winograd`: 2.25× fewer multiply-adds, other sums in the last bits).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from neuro.backend import (
    compiled,
    device_name,
    get_array_module,
    get_num_threads,
    kernel,
    matmul,
    parallel_blocks,
    parallel_for,
)
from neuro.functional import winograd
from neuro.functional._work import piece_work, work_buffer
from neuro.functional.linear import column_sums


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
    return get_array_module(x).lib.stride_tricks.as_strided(
        x, shape=(n, ho, wo, kh, kw, c), strides=(s0, s1 * sh, s2 * sw, s1, s2, s3)
    )


def im2col(x: Any, kh: int, kw: int, sh: int, sw: int) -> Any:
    """Return the windows of ``x`` (N, H, W, C) as rows: ``(N·Ho·Wo, kh·kw·C)``, C-contiguous.

    Columns are ordered ``(kernel row, kernel column, channel)``, matching
    ``kernel.reshape(kh·kw·C, F)``.
    A 1×1 kernel with stride 1 needs no copy.

    Args:
        x: input ``(N, H, W, C)``, already padded (only valid windows are taken).
        kh: kernel height.
        kw: kernel width.
        sh: vertical stride.
        sw: horizontal stride.

    Shape:
        ``(N, H, W, C)`` → ``(N·Ho·Wo, kh·kw·C)``, ``Ho = (H − kh) // sh + 1``, ``Wo = (W − kw) // sw + 1``.

    Returns:
        The window matrix: a new array, or for a 1×1 kernel with stride 1 x reshaped (no copy when x is
            C-contiguous).
    """
    n, h, w, c = x.shape
    if kh == kw == sh == sw == 1:
        return get_array_module(x).ascontiguousarray(x).reshape(n * h * w, c)
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
    xp: Any,
    out: Any = None,
) -> Any:
    """Adjoint of :func:`im2col` for gradients given per kernel offset, cropped to the unpadded input.

    Args:
        offset_grad: ``offset_grad(k)`` returns the ``(N·Ho·Wo, C)`` gradient of the values that the
            windows read at kernel offset ``k = i·kw + j``; it may reuse one buffer, as each result is
            consumed before the next is asked for (offsets that read only padding are never asked for).
        image_shape: the unpadded input shape ``(N, H, W, C)``.
        kh: kernel height.
        kw: kernel width.
        sh: vertical stride.
        sw: horizontal stride.
        pads: ``(top, bottom, left, right)`` padding of the forward pass.
        dtype: type of the result.
        xp: the array module.
        out: an ``(N, H, W, C)`` array to add into (``None``: a new one of zeros).

    Returns:
        ``out``, or a new ``(N, H, W, C)`` array. One strided add per kernel offset, whose inner axes are
        contiguous (this is why the gradient comes per offset rather than as im2col rows).
    """
    n, h, w, c = image_shape
    top, bottom, left, right = pads
    ho, wo = (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1
    if out is None:
        out = xp.zeros(image_shape, dtype=dtype)
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

            parallel_for(add, n, 2 * source.size, xp)
    return out


def paddings(
    padding: str, h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int]
) -> tuple[int, ...]:
    """``(top, bottom, left, right)`` zero padding of an ``h × w`` input for ``"valid"`` or ``"same"``.

    ``"same"`` pads as TensorFlow does (``ceil(size / stride)`` outputs, an odd total puts the extra cell at
    the bottom / right); ``"valid"`` pads nothing.

    Args:
        padding: ``"valid"`` or ``"same"`` (any other string is treated as ``"same"``).
        h: input height.
        w: input width.
        kernel: ``(kh, kw)``.
        stride: ``(sh, sw)``.

    Returns:
        ``(top, bottom, left, right)``.
    """
    if padding == "valid":
        return 0, 0, 0, 0
    return (*same_padding(h, kernel[0], stride[0]), *same_padding(w, kernel[1], stride[1]))


def output_size(size: int, kernel: int, stride: int, before: int, after: int) -> int:
    """Number of windows along one axis of length ``size`` padded by ``before`` and ``after``."""
    return (size + before + after - kernel) // stride + 1


#: The compiled window copy is used from this many channels: below it (an image's first layer, 1 or 3
#: channels) NumPy's strided copy trains the reference CNN as fast (1,282–1,350 against 1,294–1,328
#: samples/s at one thread, A/B in one process), and the kernel's compiling (0.28 s) stays out of its
#: first step.
COMPILED_COPY_CHANNELS = 8


def windows(x: Any, kh: int, kw: int, sh: int, sw: int, pads: tuple[int, ...], work: dict) -> Any:
    """im2col of ``x`` padded by ``pads``: ``(N·Ho·Wo, kh·kw·C)``, written into buffers of ``work``.

    The padded copy's border is zeroed once, when its buffer is made, and never written again (the key holds
    the padding, so another padding of the same padded size gets its own buffer).
    """
    xp = get_array_module(x)
    n, h, w, c = x.shape
    top, bottom, left, right = pads
    fast = c >= COMPILED_COPY_CHANNELS and compiled(x) and x.flags.c_contiguous
    if fast and not (kh == kw == sh == sw == 1):
        ho, wo = output_size(h, kh, sh, top, bottom), output_size(w, kw, sw, left, right)
        cols = work_buffer(work, "cols", (n * ho * wo, kh * kw * c), x.dtype, xp)
        per = ho * wo

        def gather(start: int, stop: int) -> None:  # the same values as the NumPy copy below
            _im2col_kernel(x[start:stop].reshape(-1), cols[start * per : stop * per], stop - start, h, w, c,
                           kh, kw, sh, sw, top, left, ho, wo)  # fmt: skip

        parallel_for(gather, n, cols.size, xp)
        return cols
    padded = bool(top or bottom or left or right)
    if padded:
        shape = (n, h + top + bottom, w + left + right, c)
        x_pad = work_buffer(work, f"pad{tuple(pads)}", shape, x.dtype, xp, zeros=True)
    else:
        x_pad = x
    if kh == kw == sh == sw == 1:
        if padded:
            x_pad[:, top : top + h, left : left + w, :] = x
        return im2col(x_pad, 1, 1, 1, 1)
    view = window_view(x_pad, kh, kw, sh, sw)
    rows = view.shape[0] * view.shape[1] * view.shape[2]
    cols = work_buffer(work, "cols", (rows, kh * kw * c), x.dtype, xp)
    cols6 = cols.reshape(view.shape)

    def copy(start: int, stop: int) -> None:
        if padded:
            x_pad[start:stop, top : top + h, left : left + w, :] = x[start:stop]
        xp.copyto(cols6[start:stop], view[start:stop])

    parallel_for(copy, n, cols.size, xp)
    return cols


@kernel
def _im2col_kernel(xf, cols, n, h, w, c, kh, kw, sh, sw, top, left, ho, wo):
    """:func:`windows` of the C-ordered ``(n, h, w, c)`` input flattened to ``xf``: each window row copied as
    one run of kw·C values where it lies inside the input, padding written as zeros."""
    run = kw * c
    for b in range(n):
        for i in range(ho):
            for j in range(wo):
                row = cols[(b * ho + i) * wo + j]
                x0 = j * sw - left
                for di in range(kh):
                    yy = i * sh + di - top
                    seg = row[di * run : (di + 1) * run]  # slices from 0: the copies vectorize
                    if yy < 0 or yy >= h:
                        for t in range(run):
                            seg[t] = 0.0
                    elif x0 >= 0 and x0 + kw <= w:
                        start = ((b * h + yy) * w + x0) * c
                        src = xf[start : start + run]
                        for t in range(run):
                            seg[t] = src[t]
                    else:
                        for dj in range(kw):
                            xx = x0 + dj
                            part = seg[dj * c : (dj + 1) * c]
                            if xx < 0 or xx >= w:
                                for t in range(c):
                                    part[t] = 0.0
                            else:
                                start = ((b * h + yy) * w + xx) * c
                                src = xf[start : start + c]
                                for t in range(c):
                                    part[t] = src[t]


#: Inference processes at most this many im2col entries at a time (samples in chunks), so that predicting
#: on a large batch never builds a huge window matrix.
INFERENCE_CHUNK = 1 << 22

#: On the CPU, training keeps a window matrix of at most this many entries whole, for the backward pass (about
#: 4 MiB of float32: an image's first layer, whose matrix is cheap to keep and dear to build twice).
TRAIN_CHUNK = 1 << 20
#: A larger one is built this many entries at a time (whole samples, at least one), so that each piece is
#: still in the core's own cache when its matrix product reads it (512 KiB of float32); the backward pass
#: builds each piece again instead of keeping the whole matrix (N·Ho·Wo·kh·kw·C entries).
TRAIN_PIECE = 1 << 17


def conv2d(
    x: Any,
    kernel: Any,
    bias: Any,
    stride: tuple[int, int],
    pads: tuple[int, ...],
    training: bool = False,
    work: dict | None = None,
    post: Callable[[Any], Any] | None = None,
) -> tuple[Any, Any]:
    """2-D cross-correlation ``z = x ⋆ W + b``, channels-last, as im2col and one matrix product.

    Training on the CPU keeps a small window matrix (:data:`TRAIN_CHUNK` entries) whole; a larger one is built
    in pieces of whole samples (:data:`TRAIN_PIECE` entries), each multiplied and given its bias while it is
    in cache, and x is kept instead of the matrix: :func:`conv2d_backward` builds each piece again. The
    pieces depend on the shapes only, so the thread count never changes a result.
    A 3×3 convolution of stride 1 that :func:`neuro.functional.winograd.usable` takes (compiled kernels, at
    least 8 input channels) is computed by Winograd's F(2×2, 3×3) instead, also in pieces of samples.
    There ``post`` (an elementwise activation written in place, whose backward needs only its output) is
    applied to each piece of z while it is in cache: :func:`applied` then tells from the context that z
    is ``post(z)``, and :func:`conv2d_backward` takes dL/d(post(z)) with the activation's backward ``pre``.

    Args:
        x: input ``(N, H, W, C)``.
        kernel: ``(kh, kw, C, F)``.
        bias: ``(F,)``.
        stride: ``(sh, sw)``.
        pads: ``(top, bottom, left, right)`` zero padding.
        training: keep what :func:`conv2d_backward` needs in the returned context.
        work: buffers reused between training calls (the caller's); inference always uses its own.
        post: an in-place elementwise activation for the pieces of a training pass (see above), or ``None``.

    Shape:
        ``(N, H, W, C)`` → ``(N, Ho, Wo, F)``, ``Ho = (H + top + bottom − kh) // sh + 1`` (likewise Wo).

    Returns:
        ``(z, ctx)``; ctx is ``None`` in inference.
    """
    xp = get_array_module(x, kernel, bias)
    n, h, w, _ = x.shape
    kh, kw, _, f = kernel.shape
    sh, sw = stride
    top, bottom, left, right = pads
    ho, wo = output_size(h, kh, sh, top, bottom), output_size(w, kw, sw, left, right)
    if winograd.usable(x, kernel, bias, (sh, sw), pads):  # 3×3, stride 1: Winograd's F(2×2, 3×3)
        work = {} if work is None and training else work
        z, kept = winograd.conv2d(x, kernel, bias, tuple(pads), training, work, post if training else None)
        return z, (None if kept is None else (None, x.shape, tuple(pads), tuple(stride), kept, work))
    kmat = kernel.reshape(-1, f)
    ctx = None
    if training:
        work = {} if work is None else work
        step = _train_step(xp, n, ho * wo * kmat.shape[0], kh, kw, sh, sw)
        if step >= n:  # one window matrix, kept for the backward pass
            cols = windows(x, kh, kw, sh, sw, pads, work)
            z = matmul(cols, kmat)
            ctx = (cols, x.shape, tuple(pads), tuple(stride), None, work)
        else:  # pieces of samples, each built and multiplied while in cache; the backward builds them again
            z = xp.empty((n * ho * wo, f), dtype=x.dtype)
            rows = ho * wo

            def pieces(first: int, last: int, slot: int = 0) -> None:  # in order, on one thread
                for k in range(first, last):
                    s, e = k * step, min(n, (k + 1) * step)
                    part = windows(x[s:e], kh, kw, sh, sw, pads, piece_work(work, e - s == step, slot))
                    zp = matmul(part, kmat, out=z[s * rows : e * rows])  # split only on the calling thread
                    zp += bias  # the bias (and the activation) while the piece is in cache
                    if post is not None:
                        post(zp)

            count = -(-n // step)
            if not parallel_blocks(pieces, count):
                pieces(0, count)
            z = z.reshape(n, ho, wo, f)
            kept = (x, step, z if post is not None else None)
            return z, (None, x.shape, tuple(pads), tuple(stride), kept, work)
    else:
        store: dict = {}  # this call's own buffers: inference writes nothing shared
        step = max(1, INFERENCE_CHUNK // (ho * wo * kmat.shape[0]))
        if n <= step:
            z = matmul(windows(x, kh, kw, sh, sw, pads, store), kmat)
        else:
            z = xp.empty((n * ho * wo, f), dtype=x.dtype)
            for s in range(0, n, step):  # chunks of samples, each one matrix product
                part = windows(x[s : s + step], kh, kw, sh, sw, pads, store)
                matmul(part, kmat, out=z[s * ho * wo : (s + step) * ho * wo])
    z = z.reshape(n, ho, wo, f)

    def add_bias(start: int, stop: int) -> None:
        z[start:stop] += bias

    parallel_for(add_bias, n, z.size, xp)
    return z, ctx


#: In a training context, in place of the output the convolution applied its ``post`` activation to, once that
#: output is no longer kept (:func:`without_output`).
_DROPPED = object()


def without_output(ctx: Any) -> Any:
    """The context of a training :func:`conv2d` without the output of its ``post`` activation (pieces path),
    for a backward pass given dL/dz, whose ``pre`` ignores the output (it is then given ``None``): the output
    need not be kept until the backward pass.

    Args:
        ctx: the context of a training :func:`conv2d`.

    Returns:
        The context, the output left out (``ctx`` itself when the activation was not applied in pieces).
    """
    cols, shape, pads, stride, pieces, work = ctx
    if pieces is None or pieces[2] is None:
        return ctx
    return cols, shape, pads, stride, (pieces[0], pieces[1], _DROPPED, *pieces[3:]), work


def applied(ctx: Any) -> bool:
    """Whether the training :func:`conv2d` that made ``ctx`` applied its ``post`` activation (pieces path).

    Args:
        ctx: the context of a training :func:`conv2d`.

    Returns:
        The answer.
    """
    return ctx[4] is not None and ctx[4][2] is not None


def _train_step(xp: Any, n: int, entries: int, kh: int, kw: int, sh: int, sw: int) -> int:
    """Samples per piece of a training window matrix of ``entries`` per sample (``n``: one piece)."""
    if device_name(xp) == "cupy" or kh == kw == sh == sw == 1:  # a GPU takes the whole batch; 1×1: no copy
        return n
    return n if n * entries <= TRAIN_CHUNK else max(1, TRAIN_PIECE // entries)


def conv2d_backward(
    grad: Any, ctx: Any, kernel: Any, dkernel: Any, dbias: Any, need_input_grad: bool = True,
    pre: Callable[[Any, Any], Any] | None = None,
) -> Any:  # fmt: skip
    """Gradients of :func:`conv2d`.

    With G = dL/dz reshaped to ``(N·Ho·Wo, F)``: dL/dW = X_colᵀ·G (reshaped to the kernel), dL/db = Σ_rows G,
    and dL/dx = col2im(G·W_matᵀ): every window's row is added back onto the input pixels it was read from
    (padding cropped). G·W_matᵀ is one matrix product per chunk of samples, added back kernel offset by
    kernel offset.

    Args:
        grad: dL/dz ``(N, Ho, Wo, F)``.
        ctx: the context of the training forward.
        kernel: the kernel of the forward pass.
        dkernel: array the kernel gradient is written into.
        dbias: array the bias gradient is written into.
        need_input_grad: compute dL/dx (else return ``None``).
        pre: when the forward pass applied its ``post`` activation (:func:`applied`), that activation's
            backward ``pre(dL/dy, y) → dL/dz``, applied piece by piece; ``grad`` is then dL/dy.

    Returns:
        dL/dx ``(N, H, W, C)`` or ``None``.
    """
    cols, x_shape, pads, (sh, sw), pieces, work = ctx
    xp = get_array_module(grad, kernel)
    kh, kw, c, f = kernel.shape
    g = grad.reshape(-1, f)
    n, h, w, _ = x_shape
    top, bottom, left, right = pads
    ho, wo = output_size(h, kh, sh, top, bottom), output_size(w, kw, sw, left, right)
    rows = ho * wo
    if pieces is not None:  # the forward pass kept x: each piece of windows is built again
        if (pieces[2] is None) != (pre is None):
            raise ValueError("pre must be given exactly when the forward pass applied its activation")
        if len(pieces) > 3:  # Winograd's
            return winograd.conv2d_backward(grad, pieces, dkernel, dbias, need_input_grad, pads, work, pre,
                                            _DROPPED)  # fmt: skip
        return _conv2d_backward_pieces(grad, pieces, kernel, dkernel, dbias, need_input_grad, pads, (sh, sw),
                                       work, pre)
    matmul(cols.T, g, out=dkernel.reshape(-1, f))
    column_sums(g, out=dbias)
    if not need_input_grad:
        return None
    kmat_t = kernel.reshape(kh * kw * c, f).T
    dx = xp.zeros(x_shape, dtype=g.dtype)
    step = max(1, BACKWARD_CHUNK // (rows * kh * kw * c))  # samples per product: its result stays in cache
    dcols = work_buffer(work, "dcols", (min(step, n) * rows, kh * kw * c), g.dtype, xp)
    fast = compiled(g, dx)
    for s0 in range(0, n, step):
        s1 = min(n, s0 + step)
        d = matmul(g[s0 * rows : s1 * rows], kmat_t, out=dcols[: (s1 - s0) * rows])
        _add_windows_back(d, dx[s0:s1], kernel.shape, (sh, sw), pads, (ho, wo), fast, xp)
    return dx


def _add_windows_back(
    d: Any, out: Any, kshape: tuple[int, ...], stride: tuple[int, int], pads: tuple[int, ...],
    out_size: tuple[int, int], fast: bool, xp: Any,
) -> None:  # fmt: skip
    """col2im: add the window rows ``d`` of the samples of ``out`` back onto the input pixels they were read
    from — with the compiled scatter, or one strided add per kernel offset (the same additions, in the same
    order)."""
    kh, kw, c, _ = kshape
    (sh, sw), (ho, wo) = stride, out_size
    if fast:
        top, left = pads[0], pads[2]
        scatter = lambda a, b: _col2im_kernel(d, out, kh, kw, sh, sw, top, left, ho, wo, a, b)  # noqa: E731
        parallel_for(scatter, len(out), d.size)
    else:
        block = lambda k: d[:, k * c : (k + 1) * c]  # noqa: E731
        col2im_offsets(block, out.shape, kh, kw, sh, sw, pads, d.dtype, xp, out=out)


#: The input gradient's matrix product covers at most this many window entries at a time (samples in chunks).
BACKWARD_CHUNK = 1 << 21


def _conv2d_backward_pieces(
    grad: Any, pieces: tuple[Any, int, Any], kernel: Any, dkernel: Any, dbias: Any, need_input_grad: bool,
    pads: tuple[int, ...], stride: tuple[int, int], work: dict, pre: Callable[[Any, Any], Any] | None,
) -> Any:  # fmt: skip
    """:func:`conv2d_backward` of a forward pass that built its windows in pieces: piece by piece, the windows
    again, their share of dL/dW (``X_colᵀ·G`` summed piece by piece, in order) and of dL/dx; with ``pre``,
    G of each piece is first ``pre(dL/dy, y)`` and dL/db is summed piece by piece too."""
    x, step, y = pieces
    xp = get_array_module(grad, x)
    kh, kw, c, f = kernel.shape
    g = grad.reshape(-1, f)
    n, ho, wo = len(x), grad.shape[1], grad.shape[2]
    rows = ho * wo
    dk = dkernel.reshape(-1, f)
    count = -(-n // step)
    kmat_t = kernel.reshape(kh * kw * c, f).T
    dx = xp.zeros(x.shape, dtype=g.dtype) if need_input_grad else None
    fast = compiled(g, x)
    # dL/dW (and dL/db) are added up piece by piece, in piece order, whatever the threads: the first block
    # adds its pieces straight in; the other blocks keep each piece's share, added in order afterwards
    kept: list[int] = []
    parts: Any = None
    db_parts: Any = None

    def pieces(first: int, last: int, slot: int = 0) -> None:  # in order, on one thread
        # the first block adds its later pieces' shares into dL/dW through one scratch product
        scratch = work_buffer(work, "dkernel_piece", dk.shape, g.dtype, xp) if first == 0 else None
        for k in range(first, last):
            s0, s1 = k * step, min(n, (k + 1) * step)
            part = windows(x[s0:s1], kh, kw, *stride, pads, piece_work(work, s1 - s0 == step, slot))
            if pre is None:
                gp = g[s0 * rows : s1 * rows]
            else:  # the activation's backward, and dL/db, while the piece is in cache
                gp = pre(grad[s0:s1], None if y is _DROPPED else y[s0:s1]).reshape(-1, f)
                if k == 0:
                    column_sums(gp, out=dbias)
                elif first > 0:
                    column_sums(gp, out=db_parts[k])
                else:
                    xp.add(dbias, column_sums(gp), out=dbias)
            if k == 0:  # (matmul splits a product only where the pieces run on the calling thread alone)
                matmul(part.T, gp, out=dk)
            elif first > 0:  # a later block: the piece's share is kept
                matmul(part.T, gp, out=parts[k])
            else:
                xp.add(dk, matmul(part.T, gp, out=scratch), out=dk)
            if first > 0:
                kept.append(k)
            if dx is not None:
                dcols = work_buffer(work, ("dcols", slot), (min(step, n) * rows, kh * kw * c), g.dtype, xp)
                d = matmul(gp, kmat_t, out=dcols[: (s1 - s0) * rows])
                _add_windows_back(d, dx[s0:s1], kernel.shape, stride, pads, (ho, wo), fast, xp)

    ran = False
    if get_num_threads() > 1 and dk.size * count * g.dtype.itemsize <= MAX_KEPT_PIECES_BYTES:
        parts = work_buffer(work, "dkernel_pieces", (count, *dk.shape), g.dtype, xp)
        db_parts = work_buffer(work, "dbias_pieces", (count, f), g.dtype, xp) if pre is not None else None
        ran = parallel_blocks(pieces, count)
    if not ran:
        kept.clear()
        pieces(0, count)
    for k in sorted(kept):
        dk += parts[k]
        if db_parts is not None:
            dbias += db_parts[k]
    if pre is None:
        column_sums(g, out=dbias)
    return dx


#: The most bytes of per-piece dL/dW shares the backward pass in pieces keeps to run its pieces on several
#: threads (a large kernel cut in many pieces runs them on the calling thread, its products split instead).
MAX_KEPT_PIECES_BYTES = 32 << 20


@kernel
def _col2im_kernel(dcols, dx, kh, kw, sh, sw, top, left, ho, wo, start, stop):
    """:func:`col2im_offsets` of the column blocks of ``dcols`` for samples ``start:stop``: the same
    additions, offset by offset."""
    h, w, c = dx.shape[1], dx.shape[2], dx.shape[3]
    for b in range(start, stop):
        for di in range(kh):
            for dj in range(kw):
                base = (di * kw + dj) * c
                for i in range(ho):
                    y = i * sh + di - top
                    if y < 0 or y >= h:
                        continue
                    for j in range(wo):
                        xx = j * sw + dj - left
                        if xx < 0 or xx >= w:
                            continue
                        src = dcols[(b * ho + i) * wo + j, base : base + c]  # from 0: vectorizes
                        t = dx[b, y, xx]
                        for ch in range(c):
                            t[ch] += src[ch]
