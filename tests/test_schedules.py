"""Learning-rate schedules: formulas, agreement with torch's schedulers, configs and argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuro import optimizers, registry, schedules

STEPS = range(0, 250)


def test_constant():
    s = schedules.Constant(0.03)
    assert [s(t) for t in (0, 1, 10_000)] == [0.03, 0.03, 0.03]


def test_step_decay_formula():
    s = schedules.StepDecay(0.1, decay_rate=0.5, step_size=3)
    assert [s(t) for t in range(8)] == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025], rel=1e-15
    )


def test_exponential_decay_formula():
    s = schedules.ExponentialDecay(0.2, decay_rate=0.25, decay_steps=4)
    for t in STEPS:
        assert s(t) == pytest.approx(0.2 * 0.25 ** (t / 4), rel=1e-14)
    assert s(4) == pytest.approx(0.05, rel=1e-15)


def test_cosine_decay_formula():
    s = schedules.CosineDecay(0.1, decay_steps=100, alpha=0.2)
    for t in STEPS:
        frac = min(t, 100) / 100
        expected = 0.1 * (0.8 * 0.5 * (1 + math.cos(math.pi * frac)) + 0.2)
        assert s(t) == pytest.approx(expected, rel=1e-14)
    assert s(0) == pytest.approx(0.1, rel=1e-15)
    assert s(50) == pytest.approx(0.1 * 0.6, rel=1e-14)
    assert s(100) == s(1000) == pytest.approx(0.02, rel=1e-14)
    assert schedules.CosineDecay(1.0, decay_steps=10)(10) == pytest.approx(0.0, abs=1e-16)


def _torch_rates(torch, make_scheduler, n):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0)
    sched = make_scheduler(torch, opt)
    rates = []
    for _ in range(n):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(rates)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            schedules.StepDecay(1.0, decay_rate=0.3, step_size=7),
            lambda t, o: t.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.3),
        ),
        (
            schedules.ExponentialDecay(1.0, decay_rate=0.5, decay_steps=10),
            lambda t, o: t.optim.lr_scheduler.ExponentialLR(o, gamma=0.5 ** (1 / 10)),
        ),
        (
            schedules.CosineDecay(1.0, decay_steps=60, alpha=0.1),
            lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, T_max=60, eta_min=0.1),
        ),
    ],
    ids=["StepLR", "ExponentialLR", "CosineAnnealingLR"],
)
def test_matches_torch_schedulers(torch, ours, theirs):
    n = 60 + 1 if isinstance(ours, schedules.CosineDecay) else 100  # torch's cosine cycles after T_max
    expected = _torch_rates(torch, theirs, n)
    np.testing.assert_allclose([ours(t) for t in range(n)], expected, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(
    "schedule",
    [
        schedules.Constant(0.5),
        schedules.StepDecay(0.1, 0.5, 10),
        schedules.ExponentialDecay(0.1, 1000, 0.96),
        schedules.CosineDecay(0.1, 500, alpha=0.05),
    ],
    ids=lambda s: type(s).__name__,
)
def test_config_round_trip(schedule):
    cfg = schedule.get_config()
    assert "name" not in cfg
    spec = registry.serialize(schedule)
    assert spec == {"class": type(schedule).__name__, "config": cfg}
    for again in (schedules.get(spec), type(schedule).from_config(cfg)):
        assert again == schedule
        assert again is not schedule
        assert again.get_config() == cfg
        assert [again(t) for t in (0, 7, 999)] == [schedule(t) for t in (0, 7, 999)]
    assert schedules.get(schedule) is schedule


def test_config_contents():
    assert schedules.StepDecay(0.1, 0.5, 10).get_config() == {
        "initial_learning_rate": 0.1,
        "decay_rate": 0.5,
        "step_size": 10,
    }
    assert schedules.CosineDecay(0.1, 500).get_config() == {
        "initial_learning_rate": 0.1,
        "decay_steps": 500,
        "alpha": 0.0,
    }


def test_get_variants():
    assert schedules.get(
        {"class": "step_decay", "config": {"initial_learning_rate": 1.0, "decay_rate": 0.5, "step_size": 2}}
    ) == schedules.StepDecay(1.0, 0.5, 2)
    assert schedules.get(0.01) == schedules.Constant(0.01)
    with pytest.raises(ValueError, match=r"schedule must be one of \[.*'StepDecay'\], got 'Linear'"):
        schedules.get({"class": "Linear", "config": {}})
    with pytest.raises(ValueError, match=r"schedule spec must be \{'class': name, 'config'"):
        schedules.get({"initial_learning_rate": 1.0})
    with pytest.raises(ValueError, match=r"schedule spec must be \{'class': name, 'config'"):
        schedules.get({"name": "StepDecay", "initial_learning_rate": 1.0, "decay_rate": 0.5, "step_size": 2})
    with pytest.raises(ValueError, match=r"schedule must be one of .*got 'cosine'"):
        schedules.get("cosine")
    with pytest.raises(TypeError, match="decay_steps"):
        schedules.get("cosine_decay")  # a name alone gives no arguments
    with pytest.raises(TypeError, match="schedule must be .* got list"):
        schedules.get([0.1])


def test_optimizer_uses_schedule_with_iterations():
    sched = schedules.ExponentialDecay(0.1, 2, 0.5)
    opt = optimizers.Adam(sched)
    p, g = [np.zeros(3, dtype=np.float32)], [np.ones(3, dtype=np.float32)]
    for step in range(5):
        assert opt.current_learning_rate() == sched(step)
        opt.step(p, g)
    opt.set_state({"iterations": 40, "slots": opt.get_state()["slots"]})
    assert opt.current_learning_rate() == sched(40)


@pytest.mark.parametrize(
    ("make", "arg"),
    [
        (lambda: schedules.Constant(0), "learning_rate"),
        (lambda: schedules.Constant(-1.0), "learning_rate"),
        (lambda: schedules.Constant(math.inf), "learning_rate"),
        (lambda: schedules.StepDecay(0, 0.5, 10), "initial_learning_rate"),
        (lambda: schedules.StepDecay(0.1, 0.0, 10), "decay_rate"),
        (lambda: schedules.StepDecay(0.1, 0.5, 0), "step_size"),
        (lambda: schedules.StepDecay(0.1, 0.5, 2.5), "step_size"),
        (lambda: schedules.StepDecay(0.1, 0.5, True), "step_size"),
        (lambda: schedules.ExponentialDecay(0.1, 10, -0.5), "decay_rate"),
        (lambda: schedules.ExponentialDecay(0.1, 0, 0.5), "decay_steps"),
        (lambda: schedules.CosineDecay(None, 10), "initial_learning_rate"),
        (lambda: schedules.CosineDecay(0.1, 0), "decay_steps"),
        (lambda: schedules.CosineDecay(0.1, 10, alpha=1.5), "alpha"),
        (lambda: schedules.CosineDecay(0.1, 10, alpha=-0.1), "alpha"),
    ],
)
def test_bad_arguments(make, arg):
    with pytest.raises(ValueError, match=rf"^{arg} must be .*, got "):
        make()
