"""Busy machines: unless the user chose the thread count, fit gives neuro's pool and the BLAS as many threads
as there are free cores, and restores them afterwards; the load sample reads /proc/stat."""

from __future__ import annotations

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
    assert blas == [1, 2]  # the BLAS too, and back to what it had
    assert backend.get_num_threads() == 2


def test_all_cores_free_changes_nothing(adaptive, monkeypatch):
    seen, blas = _fit_seeing_threads(monkeypatch, free=2)
    assert seen == [2, 2] and blas == []


def test_a_chosen_thread_count_is_kept(adaptive, monkeypatch):
    monkeypatch.setattr(backend, "_threads_fixed", True)
    seen, blas = _fit_seeing_threads(monkeypatch, free=1)
    assert seen == [2, 2] and blas == []


def test_set_num_threads_marks_the_count_as_chosen(monkeypatch):
    monkeypatch.setattr(backend, "_threads_fixed", False)
    before = backend.get_num_threads()
    try:
        backend.set_num_threads(1)
        assert backend._threads_fixed
    finally:
        backend._resize(before)


def test_free_cores_reads_proc_stat(monkeypatch):
    """Two samples of /proc/stat: cpu0 busy all the time (another process), cpu1 idle."""
    samples = iter(
        [
            "cpu  1 0 0 1 0 0 0 0\ncpu0 100 0 0 0 0 0 0 0\ncpu1 0 0 0 100 0 0 0 0\n",
            "cpu  1 0 0 1 0 0 0 0\ncpu0 105 0 0 0 0 0 0 0\ncpu1 0 0 0 105 0 0 0 0\n",
        ]
    )

    import io

    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/stat":
            return io.StringIO(next(samples))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(backend.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(backend, "_last_free", None)
    monkeypatch.setattr(backend, "LOAD_SAMPLE", 0.0)
    assert backend.free_cores() == 1
    assert backend.free_cores() == 1  # cached: /proc/stat is not read again within LOAD_INTERVAL


def test_the_blas_thread_count_can_be_set_and_restored():
    before = backend._blas_threads(1)
    if before is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS neuro can talk to")
    try:
        assert backend._blas_threads(before) == 1
    finally:
        backend._blas_threads(before)
