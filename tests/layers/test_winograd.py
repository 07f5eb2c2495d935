"""Winograd's F(2×2, 3×3) for 3×3 convolutions of stride 1 under the compiled kernels: which convolutions take
it, and its values and gradients against PyTorch (float64 to 1e-12), in pieces and on threads."""

from __future__ import annotations

import numpy as np
import pytest

from neuro import backend
from neuro.functional import conv as conv_functional
from neuro.functional import winograd
from neuro.layers.conv2d import Conv2D

pytest.importorskip("numba")
torch = pytest.importorskip("torch")


@pytest.fixture
def numba_kernels(monkeypatch):
    monkeypatch.setattr(backend, "_kernel_request", "numba")
    monkeypatch.setattr(backend, "_kernels_on", None)


def _layer(filters, padding, activation, c, h, w, dtype=np.float64):
    layer = Conv2D(filters, 3, padding=padding, activation=activation)
    layer.build((h, w, c), np.random.default_rng(0), dtype)
    return layer


def _torch_reference(layer, x, g, pads):
    k = torch.tensor(layer.params["kernel"].astype(np.float64), requires_grad=True)
    b = torch.tensor(layer.params["bias"].astype(np.float64), requires_grad=True)
    t = torch.tensor(x.astype(np.float64), requires_grad=True)
    top, bottom, left, right = pads
    tp = torch.nn.functional.pad(t.permute(0, 3, 1, 2), (left, right, top, bottom))
    z = torch.nn.functional.conv2d(tp, k.permute(3, 2, 0, 1), b).permute(0, 2, 3, 1)
    y = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda a: a}[
        layer.activation.key
    ](z)
    (y * torch.tensor(g.astype(np.float64))).sum().backward()
    return y.detach().numpy(), t.grad.numpy(), k.grad.numpy(), b.grad.numpy()


def test_only_3x3_convolutions_of_stride_1_on_8_channels_or_more_take_it(numba_kernels):
    x8 = np.zeros((2, 6, 6, 8), np.float32)
    k8 = np.zeros((3, 3, 8, 4), np.float32)
    b = np.zeros(4, np.float32)
    same = (1, 1, 1, 1)
    assert winograd.usable(x8, k8, b, (1, 1), same)
    assert winograd.usable(x8, k8, b, (1, 1), (0, 0, 0, 0))
    assert winograd.usable(x8, k8, b, (1, 1), (2, 0, 1, 2))
    assert winograd.usable(x8[:, ::-1], k8, b, (1, 1), same)  # a view: copied first
    assert not winograd.usable(x8, k8, b, (1, 1), (3, 1, 1, 1))  # dL/dx would pad by −1
    assert not winograd.usable(x8, k8, b, (2, 2), same)
    assert not winograd.usable(x8[..., :7], k8[:, :, :7], b, (1, 1), same)  # 7 channels: im2col
    assert not winograd.usable(x8, np.zeros((3, 2, 8, 4), np.float32), b, (1, 1), same)
    assert not winograd.usable(x8, np.zeros((5, 5, 8, 4), np.float32), b, (1, 1), same)
    assert not winograd.usable(x8.astype(np.float16), k8.astype(np.float16), b.astype(np.float16), (1, 1), same)
    assert not winograd.usable(x8, k8.astype(np.float64), b, (1, 1), same)  # mixed: NumPy's path
    big = np.zeros((1, 512, 512, 8), np.float32)  # tiles of one sample too large for a piece: im2col
    assert not winograd.usable(big, k8, b, (1, 1), same)
    backend.set_kernels("numpy")
    try:
        assert not winograd.usable(x8, k8, b, (1, 1), same)
    finally:
        backend.set_kernels("auto")


@pytest.mark.parametrize(
    ("shape", "filters", "padding", "activation"),
    [
        ((3, 7, 6, 8), 5, "same", "relu"),
        ((2, 8, 9, 9), 16, "valid", "tanh"),
        ((5, 5, 5, 12), 3, "same", "linear"),
        ((1, 2, 3, 8), 4, "same", "sigmoid"),  # every tile at the border, a tile cut by the edge
        ((4, 4, 5, 8), 8, "valid", "relu"),  # a 2×3 output: one row of tiles, the last cut
    ],
)
@pytest.mark.parametrize("threads", [1, 3])
def test_values_and_gradients_equal_pytorch(numba_kernels, shape, filters, padding, activation, threads):
    """Output, dL/dx, dL/dW and dL/db of a layer (its activation applied in the pieces) equal PyTorch's to
    1e-12; inference gives bitwise the training output; the forward took Winograd's path."""
    n, h, w, c = shape
    before = backend.get_num_threads()
    backend._resize(threads)
    try:
        layer = _layer(filters, padding, activation, c, h, w)
        rng = np.random.default_rng(1)
        x = rng.standard_normal(shape)
        y, ctx = layer.forward(x, training=True)
        assert ctx[0][4][3] == winograd.WINOGRAD
        g = rng.standard_normal(y.shape)
        dx = layer.backward(g, ctx)
        pads = layer._pads(h, w)
        ty, tdx, tdk, tdb = _torch_reference(layer, x, g, pads)
        np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(dx, tdx, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(layer.grads["kernel"], tdk, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(layer.grads["bias"], tdb, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(layer(x), y)
    finally:
        backend._resize(before)


@pytest.mark.parametrize("pads", [(2, 0, 1, 2), (0, 2, 2, 0), (2, 2, 2, 2)])
def test_any_padding_up_to_two_equals_pytorch(numba_kernels, pads):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 7, 8))
    kernel, bias = rng.standard_normal((3, 3, 8, 6)), rng.standard_normal(6)
    z, ctx = conv_functional.conv2d(x, kernel, bias, (1, 1), pads, training=True, work={})
    assert ctx[4][3] == winograd.WINOGRAD
    g = rng.standard_normal(z.shape)
    dk, db = np.empty_like(kernel), np.empty_like(bias)
    dx = conv_functional.conv2d_backward(g, ctx, kernel, dk, db)
    layer = Conv2D(6, 3)
    layer.build((5, 7, 8), rng, np.float64)
    layer.params["kernel"][...], layer.params["bias"][...] = kernel, bias
    ty, tdx, tdk, tdb = _torch_reference(layer, x, g, pads)
    for a, b in ((z, ty), (dx, tdx), (dk, tdk), (db, tdb)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_pieces_and_threads_change_nothing_but_rounding(numba_kernels, monkeypatch, activation):
    """Pieces of a few samples (a shorter last one) give what one piece gives, to rounding (the products
    have other row counts); on 1 and 3 threads the same pieces give bitwise the same results; the layer's
    gradients equal central finite differences."""

    def run(entries, threads):
        monkeypatch.setattr(winograd, "PIECE_ENTRIES", entries)
        before = backend.get_num_threads()
        backend._resize(threads)
        try:
            layer = _layer(4, "same", activation, 8, 6, 5)
            rng = np.random.default_rng(7)
            x = rng.standard_normal((11, 6, 5, 8))
            y, ctx = layer.forward(x, training=True)
            dx = layer.backward(rng.standard_normal(y.shape), ctx)
            return ctx[0][4][1], [y, dx, *(v.copy() for v in layer.grads.values())]
        finally:
            backend._resize(before)

    step_one, one = run(1 << 30, 1)
    step, pieces = run(16 * 9 * 8 * 3, 1)  # three samples a piece: 3, 3, 3 and 2
    assert step_one == 11 and step == 3
    for a, b in zip(pieces, one, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    _, threaded = run(16 * 9 * 8 * 3, 3)
    for a, b in zip(threaded, pieces, strict=True):
        np.testing.assert_array_equal(a, b)
    from tests.layers.test_conv2d import assert_gradients

    layer = _layer(3, "same", "tanh", 8, 4, 5)
    assert_gradients(layer, np.random.default_rng(8).standard_normal((2, 4, 5, 8)))


def test_float32_error_against_im2col(numba_kernels):
    """In float32, Winograd's output is about as close to exact as im2col's and its gradients at most a few
    times further (1.4–3× measured), all within 1e-6 of the largest value: the reference CNN's second layer."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 28, 28, 32))
    kernel, bias = 0.1 * rng.standard_normal((3, 3, 32, 64)), np.zeros(64)
    g = rng.standard_normal((4, 28, 28, 64))

    def run(dtype):
        z, ctx = conv_functional.conv2d(*(a.astype(dtype) for a in (x, kernel, bias)), (1, 1), (1, 1, 1, 1),
                                        training=True, work={})  # fmt: skip
        dk, db = np.empty(kernel.shape, dtype), np.empty(bias.shape, dtype)
        dx = conv_functional.conv2d_backward(g.astype(dtype), ctx, kernel.astype(dtype), dk, db)
        return z, dx, dk

    exact = run(np.float64)  # (Winograd's too: 1e-12 of PyTorch's)
    wino = run(np.float32)
    backend.set_kernels("numpy")
    try:
        im2col = run(np.float32)
    finally:
        backend.set_kernels("auto")
    for w, i, e, bound in zip(wino, im2col, exact, (2, 4, 4), strict=True):
        err_w, err_i = np.abs(w - e).max(), np.abs(i - e).max()
        assert err_w < bound * err_i and err_w < 1e-6 * np.abs(e).max(), (err_w, err_i)
    assert not np.array_equal(wino[0], im2col[0])


def test_kernel_tiles_are_g_w_gt():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 3, 4, 5))
    g = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    expected = np.einsum("ar,rsck,es->aeck", g, w, g).reshape(16, 4, 5)
    np.testing.assert_allclose(winograd.kernel_tiles(w), expected, rtol=1e-15, atol=1e-15)


def test_an_empty_batch_an_integer_image_and_one_pixel_outputs_keep_im2col(numba_kernels):
    """An empty batch divided by a piece of 0 samples; an integer image was multiplied into an integer
    output (uint8: NumPy's cast error); a 1-pixel output costs Winograd 16 multiply-adds for im2col's 9
    (3.4× slower on a 3×3 valid convolution of 256 channels): all keep the im2col path."""
    layer = Conv2D(4, 3, padding="same")
    layer.build((6, 6, 8), np.random.default_rng(0))
    assert layer(np.zeros((0, 6, 6, 8), np.float32)).shape == (0, 6, 6, 4)
    k, b = layer.params["kernel"], layer.params["bias"]
    x8 = np.random.default_rng(1).integers(0, 255, (2, 6, 6, 8)).astype(np.uint8)
    z, _ = conv_functional.conv2d(x8, k, b, (1, 1), (1, 1, 1, 1))
    z_float, _ = conv_functional.conv2d(x8.astype(np.float32), k, b, (1, 1), (1, 1, 1, 1))
    assert z.dtype == np.float32
    np.testing.assert_allclose(z, z_float, rtol=1e-5, atol=1e-3)
    for shape, pads in (((2, 3, 3, 8), (0, 0, 0, 0)), ((2, 1, 1, 8), (1, 1, 1, 1)), ((2, 1, 3, 8), (0, 0, 0, 0))):
        assert not winograd.usable(np.zeros(shape, np.float32), k, b, (1, 1), pads), shape
    assert winograd.usable(np.zeros((2, 4, 4, 8), np.float32), k, b, (1, 1), (0, 0, 0, 0))  # a 2×2 output


def test_predict_and_gradients_are_the_same_on_any_thread_count(numba_kernels):
    """Run on the calling thread (one neuro thread), the pieces' products used OpenBLAS's own threads, which
    sum otherwise than the one-thread products of neuro's blocks: predict and compute_gradients (outside a
    fit) changed with set_num_threads."""
    import neuro

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16, 16, 64)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    before = backend.get_num_threads()
    found = []
    try:
        for threads in (1, 2):
            backend.set_num_threads(threads)
            net = neuro.Network((16, 16, 64), "softmax_crossentropy", "sgd", seed=0)
            net.add(Conv2D(128, 3, padding="same", activation="relu")).add(Conv2D(32, 3, padding="same"))
            net.add(neuro.GlobalAveragePooling2D()).add(neuro.Dense(10, "softmax"))
            net.compute_gradients(x, y)
            found.append([net.predict(x), *(g.copy() for g in net.grads)])
    finally:
        backend.set_num_threads(before)
    for a, b in zip(*found, strict=True):
        np.testing.assert_array_equal(a, b)


def _kept_bytes(obj) -> int:
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(_kept_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_kept_bytes(v) for v in obj)
    return 0


def test_a_wide_layer_keeps_its_work_bounded(numba_kernels):
    """dL/dU's group sums were kept between steps, 16 of 16·C·F each: 72 MiB for a 256-channel layer (and
    256 MiB at 512), where the pieces' own buffers take a few: now at most 32 MiB of groups, made per call."""
    before = backend.get_num_threads()
    backend._resize(1)
    try:
        layer = Conv2D(256, 3, padding="same", activation="relu")
        layer.build((14, 14, 256), np.random.default_rng(0))
        x = np.ones((16, 14, 14, 256), np.float32)
        y, ctx = layer.forward(x, training=True)
        assert ctx[0][4][3] == winograd.WINOGRAD
        layer.backward(np.ones_like(y), ctx)
        assert _kept_bytes(layer._work_pool) < 24 << 20, _kept_bytes(layer._work_pool)
    finally:
        backend._resize(before)


def test_buffers_of_other_sizes_are_one_buffer_and_never_stale(numba_kernels):
    """The zero-bordered copies were kept one per input size (179 arrays after sizes 8 to 64); one per name
    now, its border zeroed again when another region is written: sizes up and down give the NumPy kernels'
    values to rounding."""
    rng = np.random.default_rng(3)
    kernel, bias = rng.standard_normal((3, 3, 8, 4)), rng.standard_normal(4)
    work: dict = {}
    for h, w, pads in ((9, 7, (1, 1, 1, 1)), (6, 6, (1, 1, 1, 1)), (9, 7, (0, 0, 0, 0)), (5, 9, (2, 1, 0, 2)),
                       (9, 7, (1, 1, 1, 1)), (12, 10, (1, 1, 1, 1)), (6, 6, (1, 1, 1, 1))):  # fmt: skip
        x = rng.standard_normal((3, h, w, 8))
        z, ctx = conv_functional.conv2d(x, kernel, bias, (1, 1), pads, training=True, work=work)
        assert ctx[4][3] == winograd.WINOGRAD
        g = rng.standard_normal(z.shape)
        dk, db = np.empty_like(kernel), np.empty_like(bias)
        dx = conv_functional.conv2d_backward(g, ctx, kernel, dk, db)
        backend.set_kernels("numpy")
        try:
            z0, ctx0 = conv_functional.conv2d(x, kernel, bias, (1, 1), pads, training=True, work={})
            dk0, db0 = np.empty_like(kernel), np.empty_like(bias)
            dx0 = conv_functional.conv2d_backward(g, ctx0, kernel, dk0, db0)
        finally:
            backend.set_kernels("numba")
        for a, b in ((z, z0), (dx, dx0), (dk, dk0), (db, db0)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    arrays = []

    def collect(d):
        for v in d.values():
            if isinstance(v, dict):
                collect(v)
            elif isinstance(v, np.ndarray):
                arrays.append(v)

    collect(work)
    assert len(arrays) <= 16, len(arrays)


def test_a_predict_beside_a_recurrent_fit_keeps_one_blas_thread(numba_kernels):
    """Another thread's fit in a recurrent time loop (its steps claim OpenBLAS's threads back) put OpenBLAS
    on two threads under a predict's pieces too: 6,793 of 65,536 outputs changed in their last bits."""
    import threading

    user_blas = backend._blas_threads(2)  # the user's count: two, so that a claim has something to change
    if user_blas is None:
        pytest.skip("no OpenBLAS neuro can talk to")
    before = backend.get_num_threads()
    backend._resize(2)
    go, done = threading.Event(), threading.Event()

    def recurrent_fit():
        backend._claim("fit", 1)
        backend._claim("steps", 1)
        go.set()
        done.wait()
        backend._claim("steps", -1)
        backend._claim("fit", -1)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 32, 32, 64)).astype(np.float32)
    k = (0.1 * rng.standard_normal((3, 3, 64, 64))).astype(np.float32)
    b = np.zeros(64, np.float32)
    try:
        alone = conv_functional.conv2d(x, k, b, (1, 1), (1, 1, 1, 1))[0]
        thread = threading.Thread(target=recurrent_fit)
        thread.start()
        go.wait()
        try:
            with backend.blas_on_one_thread():
                assert backend._blas_now == 1
            beside = conv_functional.conv2d(x, k, b, (1, 1), (1, 1, 1, 1))[0]
        finally:
            done.set()
            thread.join()
        np.testing.assert_array_equal(beside, alone)
    finally:
        backend._resize(before)
        backend._blas_threads(user_blas)
