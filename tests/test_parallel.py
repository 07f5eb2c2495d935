"""The threaded elementwise passes give exactly what the inline ones give."""

from __future__ import annotations

import numpy as np
import pytest

from neuro import SGD, BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, Network, backend
from neuro.optimizers import Adadelta, Adam, RMSprop


def _run(threads, monkeypatch, optimizer):
    monkeypatch.setattr(backend, "MIN_PARALLEL_ELEMENTS", 0)  # thread even the tiny test arrays
    backend.set_num_threads(threads)
    try:
        net = Network((9, 7, 2), "softmax_crossentropy", optimizer, seed=4)
        net.add(Conv2D(5, (3, 2), padding="same", activation="relu")).add(BatchNorm())
        net.add(MaxPool2D((2, 2))).add(Dropout(0.3)).add(Conv2D(4, 2, strides=2, activation="tanh"))
        net.add(Flatten()).add(Dense(6, "tanh")).add(Dense(3, "softmax"))
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((13, 9, 7, 2)), rng.integers(0, 3, 13)
        hist = net.fit(x, y, batch_size=5, epochs=2, verbose=0)
        return net.get_weights(), hist.history, net.predict(x)
    finally:
        backend.set_num_threads(backend._default_threads())


@pytest.mark.parametrize(
    "make", [lambda: SGD(0.1, momentum=0.9), lambda: Adam(1e-2), lambda: RMSprop(1e-2), lambda: Adadelta()]
)
def test_threads_change_nothing(monkeypatch, make):
    w1, h1, p1 = _run(1, monkeypatch, make())
    w3, h3, p3 = _run(3, monkeypatch, make())
    assert h1 == h3
    np.testing.assert_array_equal(p1, p3)
    for a, b in zip(w1, w3, strict=True):
        np.testing.assert_array_equal(a, b)


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        backend.set_num_threads(0)


@pytest.fixture
def pool(monkeypatch):
    """Thread even the tiny test arrays; yields ``backend._resize`` to choose the thread count. Afterwards the
    test's patches are undone and a fresh pool of the thread count from before is left in place."""
    monkeypatch.setattr(backend, "MIN_PARALLEL_ELEMENTS", 0)
    before = backend.get_num_threads()
    yield backend._resize
    monkeypatch.undo()
    old, backend._pool = backend._pool, None
    if old is not None:
        old.shutdown()
    backend._resize(before)


def test_parallel_for_returns_or_raises_only_when_every_part_has_finished(pool):
    """The calling thread's part fails at once, another part is still working: parallel_for raises only
    after that part has finished, so no worker writes after the caller moved on."""
    import threading
    import time

    pool(2)
    finished = threading.Event()

    def work(start, stop):
        if start == 0:
            raise KeyboardInterrupt  # the caller's own part (an interrupt, as Ctrl-C would give)
        time.sleep(0.2)
        finished.set()

    with pytest.raises(KeyboardInterrupt):
        backend.parallel_for(work, 2, 10)
    assert finished.is_set()

    def fail_in_worker(start, stop):
        if start == 1:
            raise ValueError("a worker's part failed")

    with pytest.raises(ValueError, match="a worker's part failed"):
        backend.parallel_for(fail_in_worker, 2, 10)


def test_the_pool_serves_one_caller_at_a_time_and_never_nests(pool):
    """Two threads calling at once: the second runs its work alone instead of waiting for the pool; work
    that calls parallel_for from a pool thread runs inline there (it would otherwise wait for itself)."""
    import threading

    pool(3)
    inside, release = threading.Event(), threading.Event()
    parts: list[tuple[int, int, str]] = []

    def slow(start, stop):
        parts.append((start, stop, threading.current_thread().name))
        if start == 0:
            inside.set()
            release.wait(5)

    t = threading.Thread(target=backend.parallel_for, args=(slow, 6, 10))
    t.start()
    assert inside.wait(5)
    other: list[tuple[int, int, str]] = []
    backend.parallel_for(lambda a, b: other.append((a, b, threading.current_thread().name)), 6, 10)
    assert other == [(0, 6, threading.current_thread().name)]  # alone, at once
    release.set()
    t.join(5)
    assert sorted(p[:2] for p in parts) == [(0, 2), (2, 4), (4, 6)]
    assert {p[2] for p in parts if p[0] > 0} <= {"neuro-worker"}

    nested: list[tuple[int, int]] = []

    def outer(start, stop):
        if start > 0:
            backend.parallel_for(lambda a, b: nested.append((a, b)), 4, 10)

    backend.parallel_for(outer, 3, 10)
    assert sorted(nested) == [(0, 4), (0, 4)]  # each worker ran the inner loop whole


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_makes_its_own_pool(pool):
    import os

    pool(2)
    backend.parallel_for(lambda a, b: None, 2, 10)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # the child: its parent's worker thread does not exist here
        import signal

        signal.alarm(20)  # a child waiting for a worker that is not there dies instead of hanging
        code = 1
        try:
            out = np.zeros(2)

            def fill(a, b):
                out[a:b] = 1

            backend.parallel_for(fill, 2, 10)
            code = 0 if out.tolist() == [1.0, 1.0] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_pool_smaller_than_the_thread_count_still_runs_every_part(pool, monkeypatch):
    pool(2)
    backend.parallel_for(lambda a, b: None, 2, 10)  # a pool of one worker
    monkeypatch.setattr(backend, "_num_threads", 4)  # as a count changed while the pool was in use
    out = np.zeros(8)

    def fill(a, b):
        out[a:b] += 1

    backend.parallel_for(fill, 8, 10)
    assert out.tolist() == [1.0] * 8


def test_a_pool_being_replaced_is_not_used_and_never_hangs(pool, monkeypatch):
    import threading

    pool(2)
    old = backend._Pool(2)
    old.shutdown()
    monkeypatch.setattr(backend, "_pool", old)  # a caller that read the pool just before a resize
    out = np.zeros(8)
    done = threading.Event()

    def run():
        backend.parallel_for(lambda a, b: out.__setitem__(slice(a, b), 1), 8, 10)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(10)
    assert out.tolist() == [1.0] * 8


def test_resizing_while_another_thread_works_loses_no_part(pool):
    import threading

    stop = threading.Event()
    totals: list[float] = []

    def work():
        while not stop.is_set():
            out = np.zeros(12)
            backend.parallel_for(lambda a, b, out=out: out.__setitem__(slice(a, b), 1), 12, 10)
            totals.append(out.sum())

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        for k in range(200):
            pool(2 + k % 3)
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive() and totals and set(totals) == {12.0}


def test_a_part_written_down_but_never_handed_over_is_not_waited_for():
    """What an interrupt between writing a part down and handing it over leaves: the wait returns (the part
    never ran) instead of waiting forever; a part still in the queue is taken back and never runs."""
    import threading
    import time

    w = backend._Worker()
    assert w.wait(10**9, False) is None  # written down, never put in the queue
    release = threading.Event()
    first, second = 10**9 + 1, 10**9 + 2
    w.jobs.put((first, lambda a, b: release.wait(5), 0, 1))  # keeps the worker busy
    deadline = time.monotonic() + 5
    while w.taken != first and time.monotonic() < deadline:
        time.sleep(0.001)
    ran: list[int] = []
    w.jobs.put((second, lambda a, b: ran.append(a), 0, 1))  # queued behind it
    assert w._take_back(second)
    release.set()
    assert w.wait(first, True) is None
    w.jobs.put((first + 10, lambda a, b: None, 0, 1))
    assert w.wait(first + 10, True) is None  # the worker goes on with later parts
    assert ran == []
    w.jobs.put(None)


def test_parts_left_with_a_worker_that_ended_run_on_the_caller(pool):
    """A worker that has ended (its pool shut down under a caller that had already checked it) leaves no part
    undone: the caller runs what is still in its queue."""
    pool(2)
    backend.parallel_for(lambda a, b: None, 2, 10)
    for w in backend._pool.workers:  # the workers end, the pool is not marked closed
        w.jobs.put(None)
        w.thread.join(5)
    out = np.zeros(8)
    backend.parallel_for(lambda a, b: out.__setitem__(slice(a, b), 1), 8, 10)
    assert out.tolist() == [1.0] * 8


def test_a_report_is_kept_until_its_caller_collects_it():
    """A finished part's report stays with the worker until collected: a wait interrupted after the worker
    woke it loses nothing."""
    import time

    w = backend._Worker()
    w.jobs.put((7, lambda a, b: None, 0, 1))
    deadline = time.monotonic() + 5
    while 7 not in w.done and time.monotonic() < deadline:
        time.sleep(0.001)
    w.wakeups.get(timeout=5)  # the wake-up consumed, as by a wait that was then interrupted
    assert w.wait(7, True) is None
    w.jobs.put((8, lambda a, b: 1 / 0, 0, 1))
    assert isinstance(w.wait(8, True), ZeroDivisionError)
    w.jobs.put(None)
