"""A training step is applied whole or not at all: an exception (a KeyboardInterrupt, as Ctrl-C gives) injected
at every line the step executes — forward, backward, the optimizer's stage, the check, the commit — leaves the
parameters, buffers, optimizer state and step count all exactly as before the step or all exactly as after it
(never between), under both kernel sets. A real SIGINT during the commit finishes the commit before it stops fit."""

from __future__ import annotations

import os
import pathlib
import signal
import sys

import numpy as np
import pytest

import neuro
from neuro import BatchNorm, Dense, Dropout, Input, Model, backend
from neuro.optimizers import Adadelta, Adam

PACKAGE = str(pathlib.Path(neuro.__file__).resolve().parent)


def _model(optimizer):
    x = Input((5,))
    h = BatchNorm()(Dense(8, activation="tanh")(x))
    out = Dense(3, activation="softmax")(Dropout(0.2)(h))
    return Model(x, out, loss="crossentropy", optimizer=optimizer, seed=0)


def _batch():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((6, 5)).astype(np.float32)], [rng.integers(0, 3, 6)]


def _state(model):
    opt = model.optimizer.get_state()
    arrays = [np.array(a) for layer in model.leaf_layers() for a in (*layer.params.values(), *layer.buffers.values())]
    slots = [np.array(s[k]) for s in opt["slots"] for k in sorted(s)]
    return arrays, slots, opt["iterations"]


def _same(a, b):
    (wa, sa, ia), (wb, sb, ib) = a, b
    return (
        ia == ib
        and len(sa) == len(sb)
        and all(np.array_equal(u, v) for u, v in zip(wa, wb, strict=True))
        and all(np.array_equal(u, v) for u, v in zip(sa, sb, strict=True))
    )


class _Injector:
    """A trace function that raises KeyboardInterrupt at the k-th line neuro executes (or only counts)."""

    def __init__(self, at=None):
        self.at, self.count, self.fired = at, 0, False

    def __call__(self, frame, event, arg):
        if not frame.f_code.co_filename.startswith(PACKAGE):
            return None
        return self._line

    def _line(self, frame, event, arg):
        if event == "line" and not self.fired:
            self.count += 1
            if self.at is not None and self.count == self.at:
                self.fired = True
                raise KeyboardInterrupt(f"injected at line {self.count}")
        return self._line


def _step(make, injector):
    model = _model(make())
    xs, ys = _batch()
    model.train_step(xs, ys)  # a first step: the optimizer has state, the spare buffers exist
    before = _state(model)
    sys.settrace(injector)
    try:
        model.train_step(xs, ys)
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(None)
    return before, _state(model)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("make", [lambda: Adam(0.01, weight_decay=0.01), lambda: Adadelta(1.0)], ids=["adamw", "adadelta"])
def test_an_exception_at_any_line_of_a_step_leaves_it_before_or_after(make, kernels, monkeypatch):
    if kernels == "numba":
        pytest.importorskip("numba")
    monkeypatch.setattr(backend, "_kernel_request", kernels)
    monkeypatch.setattr(backend, "_kernels_on", None)
    counter = _Injector()
    before, after = _step(make, counter)
    assert not _same(before, after)  # the clean step changes something
    lines = counter.count
    assert lines > 100
    outcomes = {"before": 0, "after": 0}
    for k in range(1, lines + 1):
        got_before, got = _step(make, _Injector(at=k))
        assert _same(got_before, before)
        if _same(got, before):
            outcomes["before"] += 1
        elif _same(got, after):
            outcomes["after"] += 1
        else:
            pytest.fail(f"an exception at line {k} of {lines} left the step half applied")
    assert outcomes["before"] > 0 and outcomes["after"] > 0, outcomes
    monkeypatch.setattr(backend, "_kernels_on", None)


def test_an_exception_anywhere_in_a_numpy_stage_of_several_chunks_leaves_the_step_whole(monkeypatch):
    """NumPy's kernels stage chunk by chunk: with chunks of 16 values every parameter is cut in several, and
    an exception at any line of the step leaves it all before or all after."""
    from neuro import optimizers

    monkeypatch.setattr(backend, "_kernel_request", "numpy")
    monkeypatch.setattr(backend, "_kernels_on", None)
    monkeypatch.setattr(optimizers, "_CHUNK", 16)
    make = lambda: Adam(0.01, weight_decay=0.01)  # noqa: E731
    counter = _Injector()
    before, after = _step(make, counter)
    assert not _same(before, after)
    for k in range(1, counter.count + 1):
        got_before, got = _step(make, _Injector(at=k))
        assert _same(got_before, before)
        if not (_same(got, before) or _same(got, after)):
            pytest.fail(f"an exception at line {k} of {counter.count} left the step half applied")
    monkeypatch.setattr(backend, "_kernels_on", None)


def test_a_sigint_during_the_commit_finishes_it(monkeypatch):
    """A real SIGINT sent from inside the commit: the commit finishes, then KeyboardInterrupt is raised."""
    model = _model(Adam(0.01))
    xs, ys = _batch()
    model.train_step(xs, ys)
    reference = _model(Adam(0.01))
    reference.train_step(xs, ys)
    reference.train_step(xs, ys)
    opt = model.optimizer
    real_commit = type(opt).commit

    sent = []

    def commit_with_a_signal(self, params):
        if not sent:  # once: arrives now, in the middle of the step's commit
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)
        real_commit(self, params)

    monkeypatch.setattr(type(opt), "commit", commit_with_a_signal)
    with pytest.raises(KeyboardInterrupt):
        model.train_step(xs, ys)
    assert _same(_state(model), _state(reference))  # the whole step, as a clean one


def test_saves_from_another_thread_during_fit_are_each_one_steps_state(tmp_path):
    """A thread saves again and again while fit runs: every file loads, and in each the weights, buffers,
    optimizer state and step count are those fit had after one and the same step."""
    import threading
    import time

    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    model = _model(Adam(0.01))
    stop = threading.Event()
    written = []

    def saver():
        k = 0
        while not stop.is_set():
            path = tmp_path / f"m{k}.h5"
            model.save(path)
            written.append(path)
            k += 1

    states = {0: _state(model)}

    class Record(neuro.callbacks.Callback):  # the state after each step, as fit leaves it
        def on_batch_end(self, batch, logs=None):
            states[model.optimizer.iterations] = _state(model)
            time.sleep(0.002)  # the saver gets the model's lock now and then, whatever the machine's load

    thread = threading.Thread(target=saver)
    thread.start()
    try:
        model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[Record()])
    finally:
        stop.set()
        thread.join()
    assert len(written) >= 3
    seen = set()
    for path in written:
        loaded = Model.load(path)
        got = _state(loaded)
        assert _same(got, states[got[2]]), f"{path.name} mixes steps"
        seen.add(got[2])
    assert len(seen) >= 2  # files from different moments of the run


def test_fit_inside_a_callback_is_refused():
    model = _model(Adam(0.01))
    x, y = _batch()

    class Nested(neuro.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.network.fit(x[0], y[0], verbose=0)

    with pytest.raises(RuntimeError, match=r"fit is already running on this model \(fit called from a callback, or from another thread\?\)"):
        model.fit(x[0], y[0], epochs=2, verbose=0, callbacks=[Nested()])


def test_a_callback_sees_the_model_under_keras_name_too():
    seen = []

    class Keras(neuro.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(self.model)

    model = _model(Adam(0.01))
    x, y = _batch()
    model.fit(x[0], y[0], verbose=0, callbacks=[Keras()])
    assert seen == [model]


def test_two_threads_fitting_one_model_at_once_the_second_is_refused(monkeypatch):
    """The guard checked _fitting, prepared the data, and only then set it: two fits started at the same
    moment both ran, interleaving their steps, and the first to end dropped the other's class weights."""
    import threading

    from neuro.training import adapters

    net = neuro.Network((3,), "mse", "sgd", seed=0)
    net.add(neuro.Dense(2))
    x, y = np.ones((8, 3)), np.zeros((8, 2))
    real, entered, release = adapters.training_sources, threading.Event(), threading.Event()
    calls = []

    def slow(*args, **kwargs):  # the first fit waits inside its data preparation
        calls.append(1)
        if len(calls) == 1:
            entered.set()
            assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(adapters, "training_sources", slow)
    first = threading.Thread(target=lambda: net.fit(x, y, epochs=1, verbose=0))
    first.start()
    try:
        assert entered.wait(30)
        with pytest.raises(RuntimeError, match=r"^fit is already running on this model"):
            net.fit(x, y, epochs=1, verbose=0)
    finally:
        release.set()
        first.join(30)
    assert len(calls) == 1 and not net._fitting and net.optimizer.iterations == 1
    net.fit(x, y, epochs=1, verbose=0)  # free again
    assert net.optimizer.iterations == 2
