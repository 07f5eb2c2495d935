"""Optimizers against torch.optim over 100 steps, state save/restore, configs and argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuro import optimizers, registry, schedules

SHAPES = [(4, 3), (3,), (2, 3, 2, 2)]
N_STEPS = 100

# (id, neuro factory, torch factory taking the parameter list)
CASES = [
    ("sgd", lambda: optimizers.SGD(0.05), lambda t, ps: t.optim.SGD(ps, lr=0.05)),
    (
        "sgd_momentum",
        lambda: optimizers.SGD(0.02, momentum=0.9),
        lambda t, ps: t.optim.SGD(ps, lr=0.02, momentum=0.9),
    ),
    (
        "sgd_nesterov",
        lambda: optimizers.SGD(0.02, momentum=0.8, nesterov=True),
        lambda t, ps: t.optim.SGD(ps, lr=0.02, momentum=0.8, nesterov=True),
    ),
    ("adam", lambda: optimizers.Adam(0.01), lambda t, ps: t.optim.Adam(ps, lr=0.01)),
    (
        "adam_custom",
        lambda: optimizers.Adam(0.003, beta_1=0.5, beta_2=0.9, epsilon=1e-3),
        lambda t, ps: t.optim.Adam(ps, lr=0.003, betas=(0.5, 0.9), eps=1e-3),
    ),
    # torch's defaults differ (alpha=0.99, rho=0.9): pass ours explicitly
    (
        "rmsprop",
        lambda: optimizers.RMSprop(0.01),
        lambda t, ps: t.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-8),
    ),
    (
        "rmsprop_custom",
        lambda: optimizers.RMSprop(0.002, rho=0.7, epsilon=1e-4),
        lambda t, ps: t.optim.RMSprop(ps, lr=0.002, alpha=0.7, eps=1e-4),
    ),
    (
        "adadelta",
        lambda: optimizers.Adadelta(),
        lambda t, ps: t.optim.Adadelta(ps, lr=1.0, rho=0.95, eps=1e-6),
    ),
    (
        "adadelta_custom",
        lambda: optimizers.Adadelta(0.5, rho=0.8, epsilon=1e-4),
        lambda t, ps: t.optim.Adadelta(ps, lr=0.5, rho=0.8, eps=1e-4),
    ),
]
IDS = [c[0] for c in CASES]


def _params(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.standard_normal(s)) for s in SHAPES]


def _grads(n_steps: int, seed: int = 1) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[np.asarray(rng.standard_normal(s)) for s in SHAPES] for _ in range(n_steps)]


def _run_torch(torch, make_torch, params, grad_seq, lr_at=None):
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = make_torch(torch, tparams)
    for step, grads in enumerate(grad_seq):
        if lr_at is not None:
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
        for tp, g in zip(tparams, grads, strict=True):
            tp.grad = torch.tensor(g)
        opt.step()
    return [tp.detach().numpy() for tp in tparams]


@pytest.mark.parametrize(("name", "make", "make_torch"), CASES, ids=IDS)
def test_matches_torch(float64, torch, name, make, make_torch):
    params, grad_seq = _params(), _grads(N_STEPS)
    expected = _run_torch(torch, make_torch, params, grad_seq)
    opt = make()
    for grads in grad_seq:
        opt.step(params, grads)
    assert opt.iterations == N_STEPS
    for p, e in zip(params, expected, strict=True):
        assert p.dtype == np.float64
        np.testing.assert_allclose(p, e, rtol=1e-9, atol=0)


SCHEDULES = [
    schedules.StepDecay(1.0, decay_rate=0.5, step_size=30),
    schedules.ExponentialDecay(1.0, decay_rate=0.1, decay_steps=100),
    schedules.CosineDecay(1.0, decay_steps=80, alpha=0.1),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize(
    ("name", "make_base", "make_torch"),
    [
        (
            "sgd_momentum",
            lambda lr: optimizers.SGD(lr, momentum=0.9),
            lambda t, ps: t.optim.SGD(ps, lr=0.1, momentum=0.9),
        ),
        ("adam", lambda lr: optimizers.Adam(lr), lambda t, ps: t.optim.Adam(ps, lr=0.1)),
    ],
    ids=["sgd_momentum", "adam"],
)
def test_schedule_matches_torch(float64, torch, schedule, name, make_base, make_torch):
    def lr_at(step):
        return 0.01 * schedule(step)

    params, grad_seq = _params(), _grads(N_STEPS)
    expected = _run_torch(torch, make_torch, params, grad_seq, lr_at=lr_at)
    opt = make_base(lr_at)
    seen = []
    for grads in grad_seq:
        seen.append(opt.current_learning_rate())
        opt.step(params, grads)
    assert seen == [lr_at(s) for s in range(N_STEPS)]
    for p, e in zip(params, expected, strict=True):
        np.testing.assert_allclose(p, e, rtol=1e-9, atol=0)


def test_schedule_object_is_evaluated_at_zero_based_step():
    sched = schedules.StepDecay(0.1, decay_rate=0.5, step_size=2)
    opt = optimizers.SGD(sched)
    p, g = [np.asarray(np.zeros(2))], [np.asarray(np.ones(2))]
    rates = []
    for _ in range(5):
        rates.append(opt.current_learning_rate())
        opt.step(p, g)
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


@pytest.mark.parametrize(("name", "make", "make_torch"), CASES, ids=IDS)
def test_state_round_trip_resumes_exactly(float64, name, make, make_torch):
    grad_seq = _grads(N_STEPS)
    straight = _params()
    opt = make()
    for grads in grad_seq:
        opt.step(straight, grads)

    resumed = _params()
    first = make()
    for grads in grad_seq[:37]:
        first.step(resumed, grads)
    state = first.get_state()
    del first
    second = optimizers.get(registry.serialize(make()))
    second.set_state(state, resumed)
    assert second.iterations == 37
    for grads in grad_seq[37:]:
        second.step(resumed, grads)
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_state_with_schedule_resumes_exactly(float64):
    sched = schedules.CosineDecay(0.05, decay_steps=60)
    grad_seq = _grads(80)
    straight, resumed = _params(), _params()
    opt = optimizers.Adam(sched)
    for grads in grad_seq:
        opt.step(straight, grads)
    first = optimizers.Adam(sched)
    for grads in grad_seq[:50]:
        first.step(resumed, grads)
    second = optimizers.get(registry.serialize(first))
    assert second.learning_rate == sched
    second.set_state(first.get_state(), resumed)
    for grads in grad_seq[50:]:
        second.step(resumed, grads)
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_get_state_is_a_copy_in_numpy(float64):
    opt = optimizers.Adam()
    params = _params()
    opt.step(params, _grads(1)[0])
    state = opt.get_state()
    assert state["iterations"] == 1
    assert [sorted(s) for s in state["slots"]] == [["m", "v"]] * len(SHAPES)
    assert all(isinstance(a, np.ndarray) for s in state["slots"] for a in s.values())
    state["slots"][0]["m"][...] = 123.0
    assert not np.any(opt.slots[0]["m"] == 123.0)
    opt2 = optimizers.Adam()
    opt2.set_state(state)
    state["slots"][0]["m"][...] = 7.0
    assert np.all(opt2.slots[0]["m"] == 123.0)


def test_set_state_checks_the_state_against_the_params(float64):
    opt = optimizers.Adam()
    params = _params()
    opt.step(params, _grads(1)[0])
    state = opt.get_state()
    fresh = optimizers.Adam()
    fresh.set_state(state, params)  # fits
    assert fresh.iterations == 1
    with pytest.raises(ValueError, match="slots must hold one dict per parameter"):
        fresh.set_state(state, params[:2])
    wrong_shape = {"iterations": 1, "slots": [dict(s) for s in state["slots"]]}
    wrong_shape["slots"][0]["m"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"slots\[0\]\['m'\] must have shape \(4, 3\), got \(2, 2\)"):
        fresh.set_state(wrong_shape, params)
    wrong_names = {"iterations": 1, "slots": [{"m": s["m"]} for s in state["slots"]]}
    with pytest.raises(ValueError, match=r"slots\[0\] must hold \['m', 'v'\]"):
        fresh.set_state(wrong_names, params)
    with pytest.raises(ValueError, match="iterations must be a non-negative integer"):
        fresh.set_state({"iterations": -1, "slots": []}, params)


@pytest.mark.parametrize(("name", "make", "make_torch"), CASES, ids=IDS)
def test_stage_changes_nothing_until_commit(float64, name, make, make_torch):
    grad_seq = _grads(3)
    params, reference = _params(), _params()
    opt, ref = make(), make()
    for grads in grad_seq[:2]:
        opt.step(params, grads)
        ref.step(reference, grads)
    before = [p.copy() for p in params]
    state = opt.get_state()
    opt.stage(params, grad_seq[2])  # staged, never committed: discarded
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p, b)
    assert opt.iterations == 2
    for s, s0 in zip(opt.get_state()["slots"], state["slots"], strict=True):
        for k in s0:
            np.testing.assert_array_equal(s[k], s0[k])
    opt.stage(params, grad_seq[2])
    opt.commit(params)  # stage + commit is step
    ref.step(reference, grad_seq[2])
    assert opt.iterations == ref.iterations == 3
    for p, r in zip(params, reference, strict=True):
        np.testing.assert_array_equal(p, r)


def test_slot_names():
    p, g = [np.asarray(np.ones(3))], [np.asarray(np.ones(3))]
    expected = {
        "sgd": set(),
        "sgd_momentum": {"velocity"},
        "adam": {"m", "v"},
        "rmsprop": {"v"},
        "adadelta": {"u", "v"},
    }
    makers = dict((c[0], c[1]) for c in CASES)
    for name, slots in expected.items():
        opt = makers[name]()
        opt.step([x.copy() for x in p], g)
        assert set(opt.slots[0]) == slots, name


@pytest.mark.parametrize(("name", "make", "make_torch"), CASES, ids=IDS)
def test_float32_stays_float32_in_place_and_grads_untouched(name, make, make_torch):
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    before = [p.copy() for p in params]
    ids = [id(p) for p in params]
    grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads_copy = [g.copy() for g in grads]
    opt = make()
    for _ in range(3):
        opt.step(params, grads)
    assert [id(p) for p in params] == ids
    for p, b, g, gc in zip(params, before, grads, grads_copy, strict=True):
        assert p.dtype == np.float32
        assert not np.array_equal(p, b)
        np.testing.assert_array_equal(g, gc)
    for slot in opt.slots:
        assert all(a.dtype == np.float32 for a in slot.values())


def test_adam_first_step_moves_each_weight_by_about_lr(float64):
    # with bias correction, m̂/sqrt(v̂) = g/|g| on step 1, so every weight moves by lr (up to ε)
    params = _params()
    before = [p.copy() for p in params]
    optimizers.Adam(0.01).step(params, _grads(1)[0])
    for p, b in zip(params, before, strict=True):
        np.testing.assert_allclose(np.abs(p - b), 0.01, rtol=1e-5)


@pytest.mark.parametrize(("name", "make", "make_torch"), CASES, ids=IDS)
def test_config_round_trip(name, make, make_torch):
    opt = make()
    cfg = opt.get_config()
    assert "name" not in cfg
    spec = registry.serialize(opt)
    assert spec == {"class": type(opt).__name__, "config": cfg}
    for again in (optimizers.get(spec), type(opt).from_config(cfg)):
        assert type(again) is type(opt) and again is not opt
        assert again.get_config() == cfg


def test_config_with_schedule_round_trip():
    sched = schedules.ExponentialDecay(0.1, decay_rate=0.5, decay_steps=10)
    opt = optimizers.RMSprop(sched, rho=0.8)
    cfg = opt.get_config()
    assert cfg["learning_rate"] == {
        "class": "ExponentialDecay",
        "config": {"initial_learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 10, "staircase": False},
    }
    for again in (optimizers.get(registry.serialize(opt)), optimizers.RMSprop.from_config(cfg)):
        assert isinstance(again.learning_rate, schedules.ExponentialDecay)
        assert again.learning_rate == sched
        assert again.get_config() == cfg


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", optimizers.SGD),
        ("adam", optimizers.Adam),
        ("Adam", optimizers.Adam),
        ("rmsprop", optimizers.RMSprop),
        ("RMSprop", optimizers.RMSprop),
        ("rms_prop", optimizers.RMSprop),
        ("adadelta", optimizers.Adadelta),
    ],
)
def test_get_by_name(name, cls):
    opt = optimizers.get(name)
    assert type(opt) is cls
    assert optimizers.get(opt) is opt


def test_defaults_match_torch_defaults():
    assert optimizers.Adam().get_config() == {
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-8,
    }
    assert optimizers.RMSprop().get_config() == {
        "learning_rate": 0.001,
        "rho": 0.9,
        "epsilon": 1e-8,
    }
    assert optimizers.Adadelta().get_config() == {
        "learning_rate": 1.0,
        "rho": 0.95,
        "epsilon": 1e-6,
    }


def test_get_rejects_unknown():
    with pytest.raises(ValueError, match="optimizer must be one of .*got 'nadam'"):
        optimizers.get("nadam")
    with pytest.raises(ValueError, match=r"optimizer spec must be \{'class': name, 'config'"):
        optimizers.get({"learning_rate": 0.1})
    with pytest.raises(ValueError, match=r"optimizer spec must be \{'class': name, 'config'"):
        optimizers.get({"name": "Adam", "learning_rate": 0.1})  # the old config format
    with pytest.raises(TypeError, match="optimizer must be a name or an Optimizer, got int"):
        optimizers.get(3)


@pytest.mark.parametrize(
    ("cls", "kwargs", "arg"),
    [
        (optimizers.SGD, {"learning_rate": -0.1}, "learning_rate"),
        (optimizers.SGD, {"learning_rate": True}, "learning_rate"),
        (optimizers.SGD, {"learning_rate": math.nan}, "learning_rate"),
        (optimizers.SGD, {"learning_rate": math.inf}, "learning_rate"),
        (optimizers.SGD, {"learning_rate": "0.1"}, "learning_rate"),
        (optimizers.SGD, {"momentum": 1.0}, "momentum"),
        (optimizers.SGD, {"momentum": -0.5}, "momentum"),
        (optimizers.SGD, {"nesterov": True}, "nesterov"),
        (optimizers.Adam, {"learning_rate": -1e-300}, "learning_rate"),
        (optimizers.Adam, {"beta_1": 1.0}, "beta_1"),
        (optimizers.Adam, {"beta_1": -0.1}, "beta_1"),
        (optimizers.Adam, {"beta_2": 1.5}, "beta_2"),
        (optimizers.Adam, {"epsilon": 0.0}, "epsilon"),
        (optimizers.Adam, {"epsilon": None}, "epsilon"),
        (optimizers.RMSprop, {"rho": 1.0}, "rho"),
        (optimizers.RMSprop, {"epsilon": -1e-8}, "epsilon"),
        (optimizers.Adadelta, {"rho": -0.1}, "rho"),
        (optimizers.Adadelta, {"epsilon": 0}, "epsilon"),
    ],
)
def test_bad_arguments(cls, kwargs, arg):
    with pytest.raises(ValueError, match=rf"^{arg}") as info:
        cls(**kwargs)
    if arg != "nesterov":  # the message names the argument, the expected and the actual value
        assert "must be" in str(info.value)
        assert str(info.value).endswith(f"got {kwargs[arg]!r}")


def test_numpy_scalars_are_accepted():
    opt = optimizers.Adam(np.float32(0.01), beta_1=np.float64(0.8))
    assert opt.learning_rate == pytest.approx(0.01)
    assert opt.beta1 == 0.8
    assert isinstance(opt.learning_rate, float)


@pytest.mark.parametrize(
    ("name", "temporaries"),
    [("sgd", 1), ("sgd_momentum", 1), ("sgd_nesterov", 1), ("adam", 1), ("rmsprop", 1), ("adadelta", 2)],
)
def test_updates_are_allocation_light(name, temporaries):
    tracemalloc = pytest.importorskip("tracemalloc")
    make = dict((c[0], c[1]) for c in CASES)[name]
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(50_000).astype(np.float32)]
    grads = [rng.standard_normal(50_000).astype(np.float32)]
    opt = make()
    opt.step(params, grads)  # creates the state
    tracemalloc.start()
    try:
        opt.step(params, grads)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < (temporaries + 0.5) * params[0].nbytes


def test_learning_rates_and_settings_are_checked_wherever_they_come_from():
    """A review's findings: each was accepted and trained wrongly, failed later without naming the argument,
    or made a model that saved and did not load."""
    import json

    import neuro
    from neuro import schedules
    from neuro.callbacks import LearningRateScheduler
    from neuro.optimizers import SGD, Adam

    with pytest.raises(TypeError, match="nesterov must be True or False, got 'no'"):
        SGD(0.1, momentum=0.9, nesterov="no")
    assert SGD(0.1, momentum=0.9, nesterov=np.bool_(True)).nesterov is True
    with pytest.raises(TypeError, match=r"got the class CosineDecay \(make one: CosineDecay\(...\)\)"):
        SGD(schedules.CosineDecay)
    w = [np.ones(3)]
    for bad in (-0.1, float("nan"), "fast"):
        with pytest.raises(ValueError, match="learning_rate .* must give a finite rate >= 0, gave"):
            SGD(lambda step, bad=bad: bad).step(w, [np.ones(3)])  # gradient ascent, NaN, or a crash
    assert np.array_equal(w[0], np.ones(3))
    SGD(lambda step: 0.0).step(w, [np.ones(3)])  # a decay may end at 0
    opt = Adam(0.01)
    opt.learning_rate = np.float32(0.001)  # Keras's habit: set it on the optimizer
    assert type(opt.learning_rate) is float and json.dumps(opt.get_config())
    with pytest.raises(ValueError, match="learning_rate must be a finite number >= 0, got -1"):
        opt.learning_rate = -1
    opt.learning_rate = 0  # as torch and Keras: a warm-up starts there
    assert SGD(0).get_config()["learning_rate"] == 0.0
    inp = neuro.Input((2,))
    with pytest.raises(ValueError, match=r"optimizer epsilon must be finite and positive in float32 .* 1e-50"):
        neuro.Model(inp, neuro.Dense(1)(inp), loss="mse", optimizer=Adam(0.01, epsilon=1e-50))
    model = neuro.Model(inp, neuro.Dense(1)(inp), loss="mse", optimizer=SGD(schedules.ExponentialDecay(0.1, 1, 0.5)))
    x = np.ones((4, 2), np.float32)
    with pytest.raises(TypeError, match="LearningRateScheduler needs a numeric learning_rate, got a schedule"):
        model.fit(x, x[:, :1], epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: lr)])
    assert isinstance(model.optimizer.learning_rate, schedules.ExponentialDecay)
    model.compile("mse", SGD(0.1))  # a warm-up from 0, logged as Keras 3 logs it
    history = model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: 1e-3 * e)])
    assert history.history["learning_rate"] == [0.0, 0.001]


def test_a_state_set_without_parameters_keeps_its_float_type():
    """set_state(state) without params once cast a float64 state to the default float32: the resumed
    training was no longer bitwise."""
    from neuro.optimizers import Adam

    rng = np.random.default_rng(0)
    grads = [[rng.standard_normal(50)] for _ in range(6)]
    straight, resumed = [rng.standard_normal(50)], None
    resumed = [straight[0].copy()]
    a, b = Adam(0.01), Adam(0.01)
    for g in grads:
        a.step(straight, g)
    for g in grads[:3]:
        b.step(resumed, g)
    c = Adam(0.01)
    c.set_state(b.get_state())
    assert c.slots[0]["m"].dtype == np.float64
    for g in grads[3:]:
        c.step(resumed, g)
    assert np.array_equal(straight[0], resumed[0])


def test_work_arrays_of_threads_that_ended_are_dropped(monkeypatch):
    """NumPy's rules keep work arrays per calling thread: 100 request threads each training once left 400
    arrays (26 MiB for a 1 MiB model) that nothing freed."""
    import threading

    from neuro import backend

    monkeypatch.setattr(backend, "_kernel_request", "numpy")
    monkeypatch.setattr(backend, "_kernels_on", None)
    opt = optimizers.Adadelta(1.0)
    params = [np.ones((70, 3)), np.ones(5)]
    grads = [np.full((70, 3), 0.1), np.full(5, 0.1)]
    lock, all_staged = threading.Lock(), threading.Barrier(8)

    def train_once():
        with lock:
            opt.stage(params, grads)
            opt.commit(params)
        all_staged.wait(30)  # every thread alive until all have staged: no ident is reused

    threads = [threading.Thread(target=train_once) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len({k[3] for k in opt._scratch}) == 8
    opt.tmp(np.empty(7))  # the next work array made drops the arrays of every thread that ended
    assert {k[3] for k in opt._scratch} == {threading.get_ident()}
    backend._kernels_on = None


def test_work_arrays_are_made_from_many_threads_at_once():
    """The purge of ended threads' arrays iterated the dict while pool threads inserted into it, and two
    threads deleted the same key: 'dictionary changed size during iteration', KeyError."""
    import sys
    import threading

    opt = optimizers.Adadelta(1.0)
    errors: list[BaseException] = []
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for round_ in range(20):
            def work(k=round_):
                try:
                    for n in range(1, 30):
                        opt.tmp(np.empty(n + k), 0)
                except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                    errors.append(exc)

            threads = [threading.Thread(target=work) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
    finally:
        sys.setswitchinterval(old)
    assert errors == []
