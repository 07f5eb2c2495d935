"""Busy machines: unless the user chose the thread count, fit gives neuro's pool and the BLAS as many threads
as there are free cores, and restores them afterwards; the load sample reads /proc/stat."""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest

from neuro import Dense, Network, backend


@pytest.fixture
def adaptive(monkeypatch):
    """The default (adapting) thread setting with 2 threads, whatever the machine and the other tests."""
    monkeypatch.setattr(backend, "_threads_fixed", False)
    before = backend.get_num_threads()
    backend._resize(2)
    yield
    backend._resize(before)


@contextlib.contextmanager
def _fit_in_another_thread():
    """A fit running in another thread for the block; ``end()`` ends it (at the latest, the block's end)."""
    inside, done = threading.Event(), threading.Event()

    def other_fit():
        with backend.busy_aware_threads():
            inside.set()
            done.wait(5)

    t = threading.Thread(target=other_fit)
    t.start()

    def end():
        done.set()
        t.join(5)

    try:
        assert inside.wait(5)
        yield end
    finally:
        end()


def _fit_seeing_threads(monkeypatch, free):
    seen = []
    monkeypatch.setattr(backend, "free_cores", lambda: free)
    blas = []
    monkeypatch.setattr(backend, "_blas_threads", lambda n: blas.append(n) or 2)
    net = Network((3,), "mse", "sgd", seed=0)
    net.add(Dense(2))

    from neuro.callbacks import Callback

    class Watch(Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(backend.get_num_threads())

    net.fit(np.zeros((4, 3)), np.zeros((4, 2)), batch_size=2, verbose=0, callbacks=[Watch()])
    return seen, blas


def test_fit_uses_the_free_cores_and_restores_the_threads(adaptive, monkeypatch):
    seen, blas = _fit_seeing_threads(monkeypatch, free=1)
    assert seen == [1, 1]  # one core busy: one thread for the fit
    assert blas == [1, 2]  # the BLAS on one thread, and back to what it had
    assert backend.get_num_threads() == 2


def test_all_cores_free_keeps_the_threads_and_neuro_splits_the_products(adaptive, monkeypatch):
    seen, blas = _fit_seeing_threads(monkeypatch, free=2)
    assert seen == [2, 2] and blas == [1, 2]
    assert not backend._gemm_split


def test_a_chosen_thread_count_is_kept(adaptive, monkeypatch):
    monkeypatch.setattr(backend, "_threads_fixed", True)
    seen, blas = _fit_seeing_threads(monkeypatch, free=1)
    assert seen == [2, 2] and blas == [1, 2]


def test_products_are_split_only_during_a_fit_and_nested_fits_restore_once(monkeypatch):
    blas = []
    monkeypatch.setattr(backend, "_blas_threads", lambda n: blas.append(n) or 3)
    with backend.busy_aware_threads():
        assert backend._gemm_split
        with backend.busy_aware_threads():  # an evaluate inside a fit, or a second fit in another thread
            assert backend._gemm_split
        assert backend._gemm_split and blas == [1]
    assert not backend._gemm_split and blas == [1, 3]


def test_without_an_openblas_to_talk_to_products_are_not_split(monkeypatch):
    monkeypatch.setattr(backend, "_blas_threads", lambda n: None)
    with backend.busy_aware_threads():
        assert not backend._gemm_split
    before = backend.get_num_threads()
    backend._resize(2)
    try:  # the caller runs the pieces itself: the BLAS may run threads of its own
        assert not backend.parallel_blocks(lambda a, b, slot: None, 3)
    finally:
        backend._resize(before)
    assert not any(backend._claims.values())


def test_parallel_blocks_outside_a_fit_puts_the_blas_on_one_thread_meanwhile(monkeypatch):
    blas, seen = [], []
    monkeypatch.setattr(backend, "_blas_threads", lambda n: blas.append(n) or 2)
    before = backend.get_num_threads()
    backend._resize(2)
    try:
        assert backend.parallel_blocks(lambda a, b, slot: seen.append((a, b, slot)), 5)
    finally:
        backend._resize(before)
    assert sorted(seen) == [(0, 2, 0), (2, 5, 1)]
    assert blas == [1, 2] and not backend._gemm_split and not any(backend._claims.values())


def test_a_time_loop_outside_a_fit_on_this_thread_changes_nothing(monkeypatch):
    """Another thread's fit does not make this thread's recurrent predict touch the BLAS: the settings a
    fit leaves behind are its own to undo."""
    blas = []
    monkeypatch.setattr(backend, "_blas_threads", lambda n: blas.append(n) or 2)
    before = backend.get_num_threads()
    backend._resize(2)
    try:
        with _fit_in_another_thread(), backend.blas_threads_for_steps():  # this thread is not in a fit
            assert backend._gemm_split
    finally:
        backend._resize(before)
    assert blas == [1, 2] and not backend._gemm_split and not any(backend._claims.values())


def test_a_time_loop_inside_a_fit_gives_the_blas_its_threads_back(monkeypatch):
    blas = []
    monkeypatch.setattr(backend, "_blas_threads", lambda n: blas.append(n) or 4)
    before = backend.get_num_threads()
    backend._resize(2)
    try:
        with backend.busy_aware_threads():
            with backend.blas_threads_for_steps():
                assert not backend._gemm_split
            assert backend._gemm_split
    finally:
        backend._resize(before)
    assert blas == [1, 2, 1, 4]  # neuro's 2 threads (not more than the user's 4), and back


def test_set_num_threads_marks_the_count_as_chosen(monkeypatch):
    monkeypatch.setattr(backend, "_threads_fixed", False)
    before = backend.get_num_threads()
    try:
        backend.set_num_threads(1)
        assert backend._threads_fixed
    finally:
        backend._resize(before)


def _fake_proc_stat(monkeypatch, *samples, own=0.0):
    """/proc/stat reads give ``samples`` in turn (two CPUs, 0 and 1); this process has used ``own`` CPU
    seconds more at each later reading."""
    import io

    samples = iter(samples)
    real_open = open
    clock = iter([0.0, own, 2 * own, 3 * own])

    def fake_open(path, *args, **kwargs):
        if path == "/proc/stat":
            return io.StringIO(next(samples))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(backend.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(backend, "_own_cpu_seconds", lambda: next(clock))
    monkeypatch.setattr(backend, "_last_free", None)
    monkeypatch.setattr(backend, "_load_mark", None)


def _stat(busy0, busy1, total):
    """A /proc/stat text: cpu0 and cpu1 busy for the given jiffies of ``total`` each."""
    return (
        f"cpu  1 0 0 1 0 0 0 0\ncpu0 {busy0} 0 0 {total - busy0} 0 0 0 0\n"
        f"cpu1 {busy1} 0 0 {total - busy1} 0 0 0 0\nintr 1 2 3\n"
    )


def test_free_cores_reads_proc_stat(monkeypatch):
    """Two samples of /proc/stat: cpu0 busy all the time (another process), cpu1 idle."""
    _fake_proc_stat(monkeypatch, _stat(100, 0, 100), _stat(105, 0, 105))
    monkeypatch.setattr(backend, "LOAD_SAMPLE", 0.0)
    assert backend.free_cores() == 1
    assert backend.free_cores() == 1  # cached: /proc/stat is not read again within LOAD_INTERVAL


def test_free_cores_leaves_out_this_process_own_work(monkeypatch):
    """Both cores busy for 50 jiffies of 50, 50 of them this process's own (its threads between fits): one
    core's worth of other work, so one core is free."""
    tick = backend.os.sysconf("SC_CLK_TCK")
    _fake_proc_stat(monkeypatch, _stat(0, 0, 0), _stat(50, 50, 50), own=50 / tick)
    monkeypatch.setattr(backend, "LOAD_SAMPLE", 0.0)
    assert backend.free_cores() == 1
    _fake_proc_stat(monkeypatch, _stat(0, 0, 0), _stat(50, 50, 50), own=100 / tick)
    assert backend.free_cores() == 2  # all of it this process's own: both cores free


def test_a_recent_reading_saves_the_sample_sleep(monkeypatch):
    """A reading LOAD_SAMPLE or more old (taken at import or when the last fit ended) starts the sample, so
    free_cores does not sleep; an older one than LOAD_WINDOW is not used, and the sample sleeps."""
    slept = []
    monkeypatch.setattr(backend.time, "sleep", slept.append)
    _fake_proc_stat(monkeypatch, _stat(0, 0, 0), _stat(50, 0, 50))
    backend._mark_load()
    mark_time, own, times = backend._load_mark
    monkeypatch.setattr(backend, "_load_mark", (mark_time - backend.LOAD_SAMPLE, own, times))
    assert backend.free_cores() == 1 and slept == []

    _fake_proc_stat(monkeypatch, _stat(0, 0, 0), _stat(0, 0, 0), _stat(0, 50, 50))
    backend._mark_load()
    mark_time, own, times = backend._load_mark
    monkeypatch.setattr(backend, "_load_mark", (mark_time - backend.LOAD_WINDOW - 1, own, times))
    assert backend.free_cores() == 1 and slept == [pytest.approx(backend.LOAD_SAMPLE, abs=0.01)]


def test_fit_leaves_a_reading_for_the_next_sample(adaptive, monkeypatch):
    monkeypatch.setattr(backend, "_load_mark", None)
    _fit_seeing_threads(monkeypatch, free=2)
    assert backend._load_mark is not None and set(backend._load_mark[2]) == backend.os.sched_getaffinity(0)


def test_the_blas_thread_count_can_be_set_and_restored():
    before = backend._blas_threads(1)
    if before is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS neuro can talk to")
    try:
        assert backend._blas_threads(before) == 1
    finally:
        backend._blas_threads(before)


class _FakeLibc:
    def __init__(self):
        self.calls = []

    def gnu_get_libc_version(self):
        return b"2.36"

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return 1


def test_the_first_fit_sets_glibc_malloc_thresholds_once(monkeypatch):
    """M_MMAP_THRESHOLD (-3) and M_TRIM_THRESHOLD (-1) of glibc, set once per process."""
    import ctypes

    libc = _FakeLibc()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: libc)
    monkeypatch.setattr(backend, "_malloc_tuned", False)
    monkeypatch.delenv("NEURO_MALLOPT", raising=False)
    net = Network((3,), "mse", "sgd", seed=0)
    net.add(Dense(2))
    net.fit(np.zeros((4, 3)), np.zeros((4, 2)), batch_size=2, verbose=0)
    net.fit(np.zeros((4, 3)), np.zeros((4, 2)), batch_size=2, verbose=0)
    assert libc.calls == [(-3, backend.MALLOC_THRESHOLDS[0]), (-1, backend.MALLOC_THRESHOLDS[1])]


def test_neuro_mallopt_0_leaves_malloc_alone(monkeypatch):
    import ctypes

    libc = _FakeLibc()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: libc)
    monkeypatch.setattr(backend, "_malloc_tuned", False)
    monkeypatch.setenv("NEURO_MALLOPT", "0")
    backend._tune_malloc()
    assert libc.calls == [] and backend._malloc_tuned


def test_without_glibc_malloc_is_left_alone(monkeypatch):
    import ctypes

    class Other:  # a C library without glibc's version function (musl, macOS)
        def mallopt(self, param, value):
            raise AssertionError("mallopt called on a C library that is not glibc")

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Other())
    monkeypatch.setattr(backend, "_malloc_tuned", False)
    monkeypatch.delenv("NEURO_MALLOPT", raising=False)
    backend._tune_malloc()
    assert backend._malloc_tuned


@pytest.fixture
def one_blas_thread():
    """A fit's setting on the real OpenBLAS: one BLAS thread, products split over neuro's threads."""
    before = backend._blas_threads(1)
    if before is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS neuro can talk to")
    backend._blas_threads(before)
    threads = backend.get_num_threads()
    with backend.busy_aware_threads():
        yield
    backend._resize(threads)


@pytest.mark.parametrize(
    "m, k, n", [(300, 256, 40), (40, 256, 300), (128, 784, 500), (3136, 64, 288), (257, 1024, 256)]
)
def test_split_products_equal_one_product_bitwise(one_blas_thread, m, k, n):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    assert m * k * n >= backend.MIN_PARALLEL_PRODUCT
    backend._resize(1)
    whole = backend.matmul(a, b)
    for threads in (2, 3, 5):
        backend._resize(threads)
        out = np.full((m, n), np.nan, np.float32)
        assert backend.matmul(a, b, out=out) is out
        np.testing.assert_array_equal(out, whole)
        np.testing.assert_array_equal(backend.matmul(np.asfortranarray(a), b), whole)  # another layout
    np.testing.assert_allclose(whole, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    ("units", "split"), [((24, 0), "rows"), ((0, 64), "columns"), ((0, 0), None), ((64, 64), "rows")]
)
def test_products_are_cut_only_where_this_machines_blas_keeps_the_bits(one_blas_thread, monkeypatch, units, split):
    """The cuts :func:`_cut_units` found (rows, columns; 0: none) decide the side a product is cut along: the
    larger side where both keep the bits, the other where only that one does, none where neither does (on
    an AMD EPYC, OpenBLAS keeps them for rows cut at multiples of 24 and for no column cut tried)."""
    calls = []
    real = np.matmul
    assert backend._blas_now == 1  # (a fit's setting)

    def spy(a, b, out=None):
        calls.append((a.shape, b.shape))
        return real(a, b, out=out)

    monkeypatch.setattr(backend, "_cut_found", units)
    backend._resize(2)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 256), dtype=np.float32)
    b = rng.standard_normal((256, 300), dtype=np.float32)
    monkeypatch.setattr(backend.np, "matmul", spy)
    out = backend.matmul(a, b)
    monkeypatch.setattr(backend.np, "matmul", real)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-4)
    if split is None:
        assert calls == [((300, 256), (256, 300))]
    elif split == "rows":  # cut at the multiple of the unit nearest to half
        unit = units[0]
        assert sorted(calls) == sorted([((unit * round(150 / unit), 256), (256, 300)),
                                        ((300 - unit * round(150 / unit), 256), (256, 300))])  # fmt: skip
    else:
        assert sorted(calls) == [((300, 256), (256, 128)), ((300, 256), (256, 172))]


def test_a_product_into_a_fortran_ordered_out_or_of_a_matrix_with_its_transpose_is_not_cut(one_blas_thread):
    """NumPy turns a product into a Fortran-ordered ``out`` into the transposed one (a row cut becomes a
    column cut) and a·aᵀ into a symmetric rank-k update: neither sums as its blocks would, so neither is cut
    (5,721 of 240,000 entries and 9,423 of 360,000 differed from one thread's on an AMD EPYC)."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((600, 700), dtype=np.float32)
    b = rng.standard_normal((700, 400), dtype=np.float32)
    backend._resize(1)
    whole_f = np.asfortranarray(np.empty((600, 400), np.float32))
    backend.matmul(a, b, out=whole_f)
    gram = backend.matmul(a, a.T)
    backend._resize(2)
    out_f = np.asfortranarray(np.empty((600, 400), np.float32))
    backend.matmul(a, b, out=out_f)
    np.testing.assert_array_equal(out_f, whole_f)
    np.testing.assert_array_equal(backend.matmul(a, a.T), gram)


def test_the_cuts_found_keep_every_bit_here(one_blas_thread):
    """What :func:`_cut_units` found on this machine holds for shapes it did not try (a cut at each multiple
    that leaves blocks :func:`matmul` would make), and it found a way to cut."""
    rows, columns = backend._cut_units()
    assert rows or columns  # OpenBLAS's Haswell kernels keep them at 24 rows, its SkylakeX ones at 16 and 16
    rng = np.random.default_rng(3)
    for m, k, n in ((517, 333, 411), (203, 1777, 190), (650, 806, 745)):
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        whole = a @ b
        for unit, axis in ((rows, 0), (columns, 1)):
            for cut in range(unit, whole.shape[axis] - unit + 1, unit) if unit else ():
                if cut * k * (n if axis == 0 else m) < backend.MIN_PARALLEL_PRODUCT // 2:
                    continue  # a block matmul never makes
                if axis == 0:
                    assert np.array_equal(a[:cut] @ b, whole[:cut]) and np.array_equal(a[cut:] @ b, whole[cut:])
                else:
                    assert np.array_equal(a @ b[:, :cut], whole[:, :cut])
                    assert np.array_equal(a @ b[:, cut:], whole[:, cut:])


def _mlp():
    net = Network((784,), "softmax_crossentropy", "adam", seed=0)
    net.add(Dense(500, "tanh"))
    net.add(Dense(300, "tanh"))
    net.add(Dense(10, "softmax"))
    return net


def _cnn():
    from neuro import Conv2D, Flatten

    net = Network((12, 12, 3), "softmax_crossentropy", "adam", seed=0)
    net.add(Conv2D(32, 3, padding="same", activation="relu"))
    net.add(Conv2D(16, 3, padding="same"))  # no activation in the pieces: dL/db from the whole gradient
    net.add(Conv2D(16, 3, padding="same", activation="tanh"))
    net.add(Flatten())
    net.add(Dense(10, "softmax"))
    return net


@pytest.mark.parametrize("kept_bytes", [None, 0])  # 0: the backward's pieces on the calling thread
@pytest.mark.parametrize("make, shape", [(_mlp, (784,)), (_cnn, (12, 12, 3))])
def test_training_is_bitwise_the_same_on_one_and_two_threads(make, shape, kept_bytes, monkeypatch):
    """neuro's threads split the products and a convolution's pieces, each on one BLAS thread: neither
    neuro's thread count nor the one NumPy's OpenBLAS was given changes a bit (the MLP's 128×784·784×500
    products on two OpenBLAS threads differ from one thread's in the last bits)."""
    from neuro.functional import conv as conv_functional

    blas_before = backend._blas_threads(1)
    if blas_before is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS neuro can talk to")
    monkeypatch.setattr(backend, "_threads_fixed", backend._threads_fixed)  # set_num_threads below sets it
    monkeypatch.setattr(conv_functional, "TRAIN_CHUNK", 2 * 12 * 12 * 27)  # pieces of 2 samples
    monkeypatch.setattr(conv_functional, "TRAIN_PIECE", 2 * 12 * 12 * 27)
    if kept_bytes is not None:
        monkeypatch.setattr(conv_functional, "MAX_KEPT_PIECES_BYTES", kept_bytes)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((256, *shape)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 256)]
    _assert_same_weights_on_one_two_and_three_threads(make, x, y, 128, 2, blas_before)


def _assert_same_weights_on_one_two_and_three_threads(make, x, y, batch_size, epochs, blas_before):
    """Train ``make()`` on 1, 2 and 3 of neuro's threads (OpenBLAS on as many, at most 2, as OMP_NUM_THREADS
    would set it) and compare every parameter bitwise; the thread counts are put back."""
    weights = []
    before = backend.get_num_threads()
    try:
        for threads in (1, 2, 3):
            backend.set_num_threads(threads)
            backend._blas_threads(min(threads, 2))
            net = make()
            net.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
            weights.append([p.copy() for layer in net.leaf_layers() for p in layer.params.values()])
    finally:
        backend._resize(before)
        backend._blas_threads(blas_before)
    for other in weights[1:]:
        for a, b in zip(weights[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_claims_never_go_below_zero_and_other_threads_fits_keep_one_blas_thread(monkeypatch):
    """A claim taken back twice (after an interrupt) stays at zero; a time loop gets the BLAS's threads only
    when every running fit is in a time loop of its own thread."""
    blas = []
    monkeypatch.setattr(backend, "_blas_threads", lambda n: blas.append(n) or 4)
    before = backend.get_num_threads()
    backend._resize(2)
    try:
        backend._claim("fit", -1)  # nothing was claimed
        assert not any(backend._claims.values()) and blas == []
        with backend.busy_aware_threads():
            with _fit_in_another_thread() as end_other:
                with backend.blas_threads_for_steps():  # the other thread's fit is in no time loop
                    assert backend._gemm_split and blas == [1]
                end_other()
                with backend.blas_threads_for_steps():  # this thread's fit alone now
                    assert not backend._gemm_split and blas == [1, 2]
    finally:
        backend._resize(before)
    assert blas == [1, 2, 1, 4] and not any(backend._claims.values())


def test_a_large_predict_and_evaluate_split_the_products_and_put_everything_back(monkeypatch):
    """Above one small batch, predict and evaluate run as a fit does (one BLAS thread, products split by
    neuro): the same bits on one and two threads, and the BLAS count is back afterwards."""
    seen = []
    real_matmul = backend.matmul

    def spy(a, b, out=None):
        seen.append(backend._gemm_split)
        return real_matmul(a, b, out)

    import sys

    monkeypatch.setattr(backend, "matmul", spy)
    monkeypatch.setattr(sys.modules["neuro.functional.linear"], "matmul", spy)
    net = _mlp()
    x = np.random.default_rng(3).standard_normal((600, 784)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[np.random.default_rng(4).integers(0, 10, 600)]
    before = backend.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            backend._resize(threads)
            seen.clear()
            outs.append((net.predict(x), net.evaluate(x, y, verbose=0)))
            if backend._blas_threads(backend._blas_threads(1) or 1) is not None:
                assert seen and all(seen)  # the fit's setting (a pool of one thread splits nothing)
            net.predict(x[:3])  # one small batch: nothing around it
    finally:
        backend._resize(before)
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    assert outs[0][1] == outs[1][1]
    assert not backend._gemm_split and not any(backend._claims.values())


def test_a_dense_layers_two_gradient_products_run_side_by_side_in_a_fit(monkeypatch):
    """During a fit on two threads, dL/dW and dL/dx of a Dense layer are two whole products handed out at
    once (the training above is bitwise that of one thread)."""
    import importlib

    linear_functional = importlib.import_module("neuro.functional.linear")  # (the package exports linear())
    if backend._blas_threads(1) is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS neuro can talk to")
    monkeypatch.setattr(backend, "_threads_fixed", backend._threads_fixed)
    calls = []
    real = linear_functional.parallel_blocks
    monkeypatch.setattr(linear_functional, "parallel_blocks", lambda fn, n: calls.append(n) or real(fn, n))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((256, 784)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 256)]
    before = backend.get_num_threads()
    try:
        backend.set_num_threads(2)
        _mlp().fit(x, y, batch_size=128, epochs=1, verbose=0)
    finally:
        backend._resize(before)
    assert calls and set(calls) == {2}  # the second layer's (the first has no dL/dx to compute)


def _float64_mlp():
    with backend.dtype_scope("float64"):
        net = Network((100,), "softmax_crossentropy", "sgd", seed=0)
    net.add(Dense(300, "tanh"))
    net.add(Dense(10, "softmax"))
    return net


def _wide_mlp():  # a last batch of one sample: (1, 1500)·(1500, 1500), a matrix-vector product
    net = Network((1500,), "softmax_crossentropy", "sgd", seed=0)
    net.add(Dense(1500, "tanh"))
    net.add(Dense(10, "softmax"))
    return net


def _regression_head():  # dL/dW of Dense(1): (1500, 2048)·(2048, 1), a matrix-vector product
    net = Network((1500,), "mse", "sgd", seed=0)
    net.add(Dense(1))
    return net


@pytest.mark.parametrize(
    "make, n, features, classes, batch",
    [(_float64_mlp, 200, 100, 10, 200), (_wide_mlp, 5, 1500, 10, 2), (_regression_head, 2048, 1500, 0, 2048)],
    ids=["float64", "a batch of one", "a Dense(1) head"],
)
def test_float64_and_matrix_vector_products_train_bitwise_alike_on_one_two_and_three_threads(
    make, n, features, classes, batch, monkeypatch
):
    """Products neuro does not split (their blocks would sum some entries in another order than the whole):
    float64 ones, and those with one row or one column (OpenBLAS's matrix-vector routine)."""
    blas_before = backend._blas_threads(1)
    if blas_before is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS neuro can talk to")
    monkeypatch.setattr(backend, "_threads_fixed", backend._threads_fixed)
    rng = np.random.default_rng(0)
    dtype = np.float64 if make is _float64_mlp else np.float32
    x = rng.standard_normal((n, features)).astype(dtype)
    y = np.eye(classes, dtype=dtype)[rng.integers(0, classes, n)] if classes else x[:, :1] * 0.5
    _assert_same_weights_on_one_two_and_three_threads(make, x, y, batch, 1, blas_before)


def test_a_thread_count_set_during_a_fit_outlives_it(adaptive, monkeypatch):
    """A fit on a busy machine put back the count it found when it ended, over the user's
    set_num_threads(n) made during it (from a callback or another thread)."""
    from neuro.callbacks import Callback

    monkeypatch.setattr(backend, "free_cores", lambda: 1)
    monkeypatch.setattr(backend, "_blas_threads", lambda n: 2)

    class Choose(Callback):
        def on_batch_end(self, batch, logs=None):
            backend.set_num_threads(3)

    net = Network((3,), "mse", "sgd", seed=0)
    net.add(Dense(2))
    net.fit(np.zeros((4, 3)), np.zeros((4, 2)), batch_size=2, verbose=0, callbacks=[Choose()])
    assert backend.get_num_threads() == 3
