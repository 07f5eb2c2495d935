"""3×3 convolutions of stride 1 by Winograd's minimal filtering F(2×2, 3×3) (the compiled kernel set).

A 3×3 cross-correlation computes each 2×2 block of its output from a 4×4 tile of the padded input, 36
multiply-adds per block and channel pair in im2col's matrix product. Winograd's form (Lavin and Gray,
"Fast Algorithms for Convolutional Neural Networks", 2016) needs 16:

    Z_tile = Aᵀ [ (G W Gᵀ) ⊙ (Bᵀ D B) ] A

    Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]
    G  = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]
    Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]

with D a 4×4 input tile and W a 3×3 kernel slice. Every entry is 0, ±1 or ±½, so the transforms only add
(and halve, exactly). Summed over the input channels, each of the 16 tile positions ξν is one matrix
product, ``M[ξν] = V[ξν] · U[ξν]`` with ``V`` the transformed input tiles ``(tiles, C)`` and ``U`` the
transformed kernel ``(C, F)``: 16 products of ``tiles × C × F`` against im2col's one of
``4·tiles × 9C × F``, 2.25 times fewer multiply-adds.

The backward pass is two more such sets of products:

- dL/dx is the 3×3 correlation of dL/dz, padded by ``2 − p`` on each side where the forward padded by
  ``p``, with the kernel turned by 180° and its channel axes swapped: the forward again, with ``U``'s tile
  positions reversed and each ``U[ξν]`` transposed.
- dL/dW: with ``Z = Aᵀ (U ⊙ V) A``, dL/dU = ``(A dZ Aᵀ) ⊙ V`` tile by tile and dL/dW = ``Gᵀ (dL/dU) G``;
  summed over the tiles, ``dL/dU[ξν] = V[ξν]ᵀ · (A dZ Aᵀ)[ξν]``, 16 products ``(C, tiles)·(tiles, F)``.

The additions differ from im2col's (the sums over a window are regrouped), so these convolutions differ from
the NumPy kernel set's in the last bits: float64 results equal PyTorch's to 1e-12 (tested); in float32 the
output is about as close to exact as im2col's and the gradients 1.4–3 times further (about 1e-7 to 6e-7 of
the largest value). Work is done in pieces of whole samples, each piece's tiles transformed, multiplied
and transformed back while in cache, its products on one BLAS thread; the pieces depend on the shapes only
and dL/dW is summed in fixed groups of pieces, so the thread count never changes a result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from neuro.backend import blas_on_one_thread, compiled, kernel, parallel_blocks
from neuro.functional._work import piece_work, work_buffer
from neuro.functional.linear import column_sums

#: Convolutions with fewer input channels than this keep im2col: their products are too thin for the
#: transforms to pay (the first layer of an image network, C = 1 or 3).
MIN_CHANNELS = 8

#: Entries of one piece's transformed tiles (16 · tiles · max(C, F)): about 512 KiB of float32, so that a
#: piece's tiles are still in the core's cache when the products read them (at least one sample).
PIECE_ENTRIES = 1 << 17

#: Samples whose transformed tiles would exceed this many entries (large images) keep im2col, which builds
#: them in smaller pieces than one sample.
MAX_SAMPLE_ENTRIES = 1 << 21

#: The backward pass sums dL/dU in at most this many groups of consecutive pieces (each group's sum, 16·C·F
#: entries, made per call; the groups' sums are then added in order; the threads take whole groups).
MAX_GROUPS = 16
#: ... and in as many groups as fit in this many bytes (a 512-channel layer's share is 16 MiB: two groups).
MAX_GROUP_BYTES = 32 << 20

#: Marks the kept context of a training forward computed here (see :func:`neuro.functional.conv.conv2d`).
WINOGRAD = "winograd"


def usable(x: Any, kernel: Any, bias: Any, stride: tuple[int, int], pads: tuple[int, ...]) -> bool:
    """Whether :func:`conv2d` takes the convolution: compiled kernels on NumPy arrays of one float type (the
    input's too: an integer image takes NumPy's conversion), a 3×3 kernel of stride 1 on at least
    :data:`MIN_CHANNELS` channels, padding of at most 2 on every side (the input gradient's correlation pads
    by ``2 − p``), a non-empty batch, an output (and input) large enough for whole 2×2 tiles to cost at most
    0.8 of im2col's multiply-adds, and tiles of one sample of at most :data:`MAX_SAMPLE_ENTRIES` entries.

    Args:
        x: input ``(N, H, W, C)``.
        kernel: ``(kh, kw, C, F)``.
        bias: ``(F,)``.
        stride: ``(sh, sw)``.
        pads: ``(top, bottom, left, right)``.

    Returns:
        The answer.
    """
    kh, kw, c, f = kernel.shape
    if kh != 3 or kw != 3 or tuple(stride) != (1, 1) or c < MIN_CHANNELS or max(pads) > 2 or min(pads) < 0:
        return False
    if x.dtype != kernel.dtype or not compiled(x, kernel, bias):  # (integer images: NumPy's conversion)
        return False
    n, h, w, _ = x.shape
    ho, wo = h + pads[0] + pads[1] - 2, w + pads[2] + pads[3] - 2
    if n == 0 or ho < 1 or wo < 1:
        return False
    # whole 2×2 tiles: an output of 1 pixel (or 1×3) costs more multiply-adds than im2col's (16 > 9 per pixel)
    if 16 * _tiles(ho, wo) > 0.8 * 9 * ho * wo or 16 * _tiles(h, w) > 0.8 * 9 * h * w:
        return False
    tiles = max(_tiles(ho, wo), _tiles(h, w))
    return 16 * tiles * max(c, f) <= MAX_SAMPLE_ENTRIES


def _tiles(h: int, w: int) -> int:
    """2×2 output tiles of an ``h × w`` output, per sample."""
    return ((h + 1) // 2) * ((w + 1) // 2)


def _step(tiles: int, c: int, f: int) -> int:
    """Samples per piece."""
    return max(1, PIECE_ENTRIES // (16 * tiles * max(c, f)))


def kernel_tiles(w: Any) -> Any:
    """U = G W Gᵀ of every channel pair of a 3×3 kernel.

    Args:
        w: ``(3, 3, C, F)``.

    Shape:
        ``(3, 3, C, F)`` → ``(16, C, F)``, tile position ξν at ``4ξ + ν``.

    Returns:
        U, C-ordered.
    """
    half = w.dtype.type(0.5)

    def along_first(a: Any) -> list[Any]:  # G applied along a's first axis (3 → 4)
        return [a[0], (a[0] + a[1] + a[2]) * half, (a[0] - a[1] + a[2]) * half, a[2]]

    rows = along_first(w)  # 4 × (3, C, F)
    out = np.empty((4, 4, *w.shape[2:]), w.dtype)
    for i, r in enumerate(rows):
        for j, v in enumerate(along_first(r)):
            out[i, j] = v
    return out.reshape(16, *w.shape[2:])


def _flipped(u: Any) -> Any:
    """U of the kernel turned by 180° with its channel axes swapped (dL/dx's correlation): reversing a tap
    axis swaps G's first and last rows, so its tile positions 0 and 3 swap, along both axes."""
    order = np.array([3, 1, 2, 0])
    idx = (order[:, None] * 4 + order[None, :]).reshape(-1)
    return np.ascontiguousarray(u[idx].transpose(0, 2, 1))


def _weight_gradient(du: Any, out: Any) -> None:
    """dL/dW = Gᵀ (dL/dU) G, written into ``out`` ``(3, 3, C, F)`` from dL/dU ``(16, C, F)``."""
    half = du.dtype.type(0.5)
    d = du.reshape(4, 4, *du.shape[1:])

    def along_first(a: Any) -> list[Any]:  # Gᵀ applied along a's first axis (4 → 3)
        return [a[0] + (a[1] + a[2]) * half, (a[1] - a[2]) * half, (a[1] + a[2]) * half + a[3]]

    for i, r in enumerate(along_first(d)):
        for j, v in enumerate(along_first(r)):
            out[i, j] = v


@kernel
def _input_tiles(xp, v, th, tw):
    """V = Bᵀ D B of the ``th × tw`` 4×4 tiles of every sample of ``xp`` ``(n, ≥ 2·th + 2, ≥ 2·tw + 2, c)``
    (padded: every tile inside), tile ``(b, i, j)`` at row ``(b·th + i)·tw + j`` of ``v`` ``(16, tiles, c)``:
    first along the tile's rows, then along its columns."""
    c = xp.shape[3]
    r = np.empty((4, 4, c), xp.dtype)
    o = 0
    for b in range(xp.shape[0]):
        for i in range(th):
            y0 = 2 * i
            for j in range(tw):
                x0 = 2 * j
                for e in range(4):
                    for k in range(c):
                        d0 = xp[b, y0, x0 + e, k]
                        d1 = xp[b, y0 + 1, x0 + e, k]
                        d2 = xp[b, y0 + 2, x0 + e, k]
                        d3 = xp[b, y0 + 3, x0 + e, k]
                        r[0, e, k] = d0 - d2
                        r[1, e, k] = d1 + d2
                        r[2, e, k] = d2 - d1
                        r[3, e, k] = d1 - d3
                for a in range(4):
                    for k in range(c):
                        q0 = r[a, 0, k]
                        q1 = r[a, 1, k]
                        q2 = r[a, 2, k]
                        q3 = r[a, 3, k]
                        v[4 * a, o, k] = q0 - q2
                        v[4 * a + 1, o, k] = q1 + q2
                        v[4 * a + 2, o, k] = q2 - q1
                        v[4 * a + 3, o, k] = q1 - q3
                o += 1


@kernel
def _output_tiles(m, z, bias, th, tw):
    """Z = Aᵀ M A + bias of the 2×2 output tiles of every sample of ``z`` ``(n, 2·th, 2·tw, f)`` from ``m``
    ``(16, tiles, f)``: first along the tile's rows, then its columns."""
    f = z.shape[3]
    r = np.empty((2, 4, f), z.dtype)
    o = 0
    for b in range(z.shape[0]):
        for i in range(th):
            for j in range(tw):
                for e in range(4):
                    for k in range(f):
                        m1 = m[4 + e, o, k]
                        m2 = m[8 + e, o, k]
                        r[0, e, k] = m[e, o, k] + m1 + m2
                        r[1, e, k] = m1 - m2 - m[12 + e, o, k]
                for a in range(2):
                    for k in range(f):
                        q1 = r[a, 1, k]
                        q2 = r[a, 2, k]
                        z[b, 2 * i + a, 2 * j, k] = r[a, 0, k] + q1 + q2 + bias[k]
                        z[b, 2 * i + a, 2 * j + 1, k] = q1 - q2 - r[a, 3, k] + bias[k]
                o += 1


@kernel
def _gradient_tiles(g, t, th, tw):
    """A dZ Aᵀ of the 2×2 tiles of every sample of dL/dz ``g`` ``(n, 2·th, 2·tw, f)`` into ``t``
    ``(16, tiles, f)``: A's rows are ``[1, 0], [1, 1], [1, −1], [0, −1]``."""
    f = g.shape[3]
    r = np.empty((4, 2, f), g.dtype)
    o = 0
    for b in range(g.shape[0]):
        for i in range(th):
            for j in range(tw):
                for e in range(2):
                    for k in range(f):
                        q0 = g[b, 2 * i, 2 * j + e, k]
                        q1 = g[b, 2 * i + 1, 2 * j + e, k]
                        r[0, e, k] = q0
                        r[1, e, k] = q0 + q1
                        r[2, e, k] = q0 - q1
                        r[3, e, k] = -q1
                for a in range(4):
                    for k in range(f):
                        c0 = r[a, 0, k]
                        c1 = r[a, 1, k]
                        t[4 * a, o, k] = c0
                        t[4 * a + 1, o, k] = c0 + c1
                        t[4 * a + 2, o, k] = c0 - c1
                        t[4 * a + 3, o, k] = -c1
                o += 1


def _padded(x: Any, top: int, left: int, rows: int, cols: int, work: dict, name: str) -> Any:
    """``x`` ``(n, h, w, c)`` at rows ``top:top + h`` and columns ``left:left + w`` of a ``rows × cols``
    buffer of zeros (``x`` itself when that is the buffer), one per ``name``: its border is zeroed when it is
    made, and again when another region is written (one buffer, whatever the sizes seen)."""
    n, h, w, c = x.shape
    if (top, left, rows, cols) == (0, 0, h, w):
        return x
    buf = work.get(name)
    if buf is None or buf.shape != (n, rows, cols, c) or buf.dtype != x.dtype:
        buf = work[name] = np.zeros((n, rows, cols, c), x.dtype)
    elif work.get((name, "region")) != (top, left, h, w):  # another size or padding: the border again
        buf.fill(0)
    work[(name, "region")] = (top, left, h, w)
    buf[:, top : top + h, left : left + w] = x
    return buf


def _correlate(x: Any, u: Any, bias: Any, pads: tuple[int, ...], z: Any, work: dict) -> None:
    """``z = x ⋆ W + bias`` for the samples of ``x`` (one piece), ``u`` the kernel's tiles ``(16, C, F)``,
    through ``work``'s buffers: x padded so that every 4×4 tile lies inside, z through a buffer of whole
    tiles where its height or width is odd."""
    n, ho, wo, f = z.shape
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    c = x.shape[3]
    xp = _padded(x, pads[0], pads[2], 2 * th + 2, 2 * tw + 2, work, "x")
    v = work_buffer(work, "v", (16, n * th * tw, c), x.dtype, np)
    m = work_buffer(work, "m", (16, n * th * tw, f), x.dtype, np)
    _input_tiles(xp, v, th, tw)
    np.matmul(v, u, out=m)
    whole = z if (ho, wo) == (2 * th, 2 * tw) else work_buffer(work, "z", (n, 2 * th, 2 * tw, f), x.dtype, np)
    _output_tiles(m, whole, bias, th, tw)
    if whole is not z:
        z[...] = whole[:, :ho, :wo]


def conv2d(
    x: Any, kernel: Any, bias: Any, pads: tuple[int, ...], training: bool, work: dict | None,
    post: Callable[[Any], Any] | None,
) -> tuple[Any, Any]:  # fmt: skip
    """:func:`neuro.functional.conv2d` of a convolution :func:`usable` takes, in pieces of whole samples (each
    piece's activation ``post`` applied while in cache).

    Args:
        x: input ``(N, H, W, C)``.
        kernel: ``(3, 3, C, F)``.
        bias: ``(F,)``.
        pads: ``(top, bottom, left, right)``, each at most 2.
        training: return what :func:`conv2d_backward` needs.
        work: buffers reused between training calls (inference uses its own).
        post: an in-place elementwise activation for the pieces of a training pass, or ``None``.

    Shape:
        ``(N, H, W, C)`` → ``(N, H + top + bottom − 2, W + left + right − 2, F)``.

    Returns:
        ``(z, kept)``: kept is ``(x, step, z or None, WINOGRAD, U)`` in training (z where ``post`` was
        applied; U the kernel's tiles, for the backward pass), else ``None``.
    """
    x = np.ascontiguousarray(x)  # (a view: its copy, kept for the backward pass)
    n, h, w, c = x.shape
    f = kernel.shape[3]
    top, bottom, left, right = pads
    ho, wo = h + top + bottom - 2, w + left + right - 2
    z = np.empty((n, ho, wo, f), x.dtype)
    u = kernel_tiles(kernel)
    step = min(n, _step(_tiles(ho, wo), c, f))
    count = -(-n // step)
    store: dict = work if training and work is not None else {}  # inference writes nothing shared

    def pieces(first: int, last: int, slot: int = 0) -> None:  # in order, on one thread
        for k in range(first, last):
            s, e = k * step, min(n, (k + 1) * step)
            _correlate(x[s:e], u, bias, pads, z[s:e], piece_work(store, e - s == step, slot))
            if post is not None:
                post(z[s:e])

    if not parallel_blocks(pieces, count):
        with blas_on_one_thread():  # as in parallel_blocks: the products sum alike on any thread count
            pieces(0, count)
    if not training:
        return z, None
    return z, (x, step, z if post is not None else None, WINOGRAD, u)


def conv2d_backward(
    grad: Any, kept: tuple[Any, ...], dkernel: Any, dbias: Any, need_input_grad: bool,
    pads: tuple[int, ...], work: dict, pre: Callable[[Any, Any], Any] | None, dropped: object,
) -> Any:  # fmt: skip
    """Gradients of :func:`conv2d`, piece by piece: dL/dz (``pre(dL/dy, y)`` where the forward applied its
    activation), its share of dL/db, the piece's input tiles again and its share of
    dL/dU = Σ Vᵀ·(A dZ Aᵀ), and dL/dx as the correlation of dL/dz with the turned kernel.

    Args:
        grad: dL/dz ``(N, Ho, Wo, F)`` (dL/dy with ``pre``).
        kept: the forward's ``(x, step, y, WINOGRAD, U)``.
        dkernel: array dL/dW is written into.
        dbias: array dL/db is written into.
        need_input_grad: compute dL/dx (else return ``None``).
        pads: the forward's padding.
        work: the layer's buffers.
        pre: the activation's backward ``pre(dL/dy, y) → dL/dz``, or ``None``.
        dropped: the marker of a y that was not kept (``pre`` then ignores it).

    Returns:
        dL/dx ``(N, H, W, C)`` or ``None``.
    """
    x, step, y, _, u = kept
    n, h, w, c = x.shape
    _, ho, wo, f = grad.shape
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    back_pads = tuple(2 - p for p in pads)
    count = -(-n // step)
    dx = np.empty(x.shape, grad.dtype) if need_input_grad else None
    uf = _flipped(u) if need_input_grad else None
    zero_bias = np.zeros(c, grad.dtype)  # (adding 0.0 changes no sum)
    # dL/dU (and dL/db) are summed piece by piece within fixed groups of pieces, and the groups' sums in
    # order: the grouping depends on the shapes only, so the threads (which take whole groups) change nothing
    share = 16 * c * f * grad.dtype.itemsize
    per_group = -(-count // max(1, min(MAX_GROUPS, MAX_GROUP_BYTES // share)))
    groups = -(-count // per_group)
    du_groups = np.empty((groups, 16, c, f), grad.dtype)  # (not kept between steps)
    db_groups = np.empty((groups, f), grad.dtype) if pre is not None else None

    def run(first: int, last: int, slot: int = 0) -> None:  # groups first:last, in order, on one thread
        for group in range(first, last):
            scratch = work_buffer(piece_work(work, True, slot), "du", (16, c, f), grad.dtype, np)
            for k in range(group * per_group, min(count, (group + 1) * per_group)):
                s0, s1 = k * step, min(n, (k + 1) * step)
                own = piece_work(work, s1 - s0 == step, slot)
                opens = k == group * per_group
                if pre is None:
                    gp = np.ascontiguousarray(grad[s0:s1])
                else:  # the activation's backward, and dL/db, while the piece is in cache
                    gp = np.ascontiguousarray(pre(grad[s0:s1], None if y is dropped else y[s0:s1]))
                    gf = gp.reshape(-1, f)
                    if opens:
                        column_sums(gf, out=db_groups[group])
                    else:
                        np.add(db_groups[group], column_sums(gf), out=db_groups[group])
                tiles = (s1 - s0) * th * tw
                v = work_buffer(own, "v", (16, tiles, c), grad.dtype, np)
                t = work_buffer(own, "t", (16, tiles, f), grad.dtype, np)
                _input_tiles(_padded(x[s0:s1], pads[0], pads[2], 2 * th + 2, 2 * tw + 2, own, "x"), v, th, tw)
                _gradient_tiles(_padded(gp, 0, 0, 2 * th, 2 * tw, own, "g"), t, th, tw)
                vt = v.transpose(0, 2, 1)
                if opens:
                    np.matmul(vt, t, out=du_groups[group])
                else:
                    np.add(du_groups[group], np.matmul(vt, t, out=scratch), out=du_groups[group])
                if dx is not None:
                    back = piece_work(own, True, -1)  # dL/dx's tiles: a shape of their own
                    _correlate(gp, uf, zero_bias, back_pads, dx[s0:s1], back)

    if not parallel_blocks(run, groups):
        with blas_on_one_thread():  # as in parallel_blocks: the products sum alike on any thread count
            run(0, groups)
    du = du_groups[0]
    for group in range(1, groups):
        du += du_groups[group]
    if db_groups is not None:
        dbias[...] = db_groups[0]
        for group in range(1, groups):
            dbias += db_groups[group]
    else:
        column_sums(grad.reshape(-1, f), out=dbias)
    _weight_gradient(du, dkernel)
    return dx


__all__ = ["MIN_CHANNELS", "WINOGRAD", "conv2d", "conv2d_backward", "kernel_tiles", "usable"]
