"""check_gradients and compute_gradients, as a reviewer broke them: the branches of a backward that fit uses,
nested models checked as layers, tiny true gradients, the state a check leaves, scaled inputs."""

from __future__ import annotations

import numpy as np
import pytest

import neuro
from neuro import BatchNorm, Dense, Input, Model, Sequential, initializers


class Scale(neuro.Layer):
    """``y = x·s``; with ``bug``, the scale's gradient is doubled when the input's is not wanted (a model's
    first layer in fit). Gradient: ds = Σ G·x, dx = G·s."""

    def __init__(self, bug: bool = False, name: str | None = None) -> None:
        super().__init__(name=name)
        self.bug = bug

    def compute_output_shape(self, s):
        return s

    def param_specs(self, s):
        return {"scale": ((s[-1],), initializers.get("ones"))}

    def forward(self, x, training=False, rng=None):
        return x * self.params["scale"], (x if training else None)

    def backward(self, grad, ctx):
        with self.accumulate() as g:
            factor = 2.0 if self.bug and not self.need_input_grad else 1.0
            (factor * grad * ctx).sum(axis=0, out=g["scale"])
        return grad * self.params["scale"] if self.need_input_grad else None


class RunningCenter(neuro.Layer):
    """Training: m ← 0.9·m + 0.1·mean(x), y = x − m (a forward that updates a buffer and reads it).
    Gradient: dx = G − 0.1·ΣG/N."""

    def compute_output_shape(self, s):
        return s

    def buffer_specs(self, s):
        return {"mean": ((s[-1],), initializers.get("ones"))}

    def forward(self, x, training=False, rng=None):
        if not training:
            return x - self.buffers["mean"], None
        self.buffers["mean"][...] = 0.9 * self.buffers["mean"] + 0.1 * x.mean(axis=0)
        return x - self.buffers["mean"], len(x)

    def backward(self, grad, ctx):
        return grad - 0.1 * grad.sum(axis=0) / ctx if self.need_input_grad else None


class NoInputGradient(neuro.Layer):
    """Forgets to return dL/dx."""

    def compute_output_shape(self, s):
        return s

    def forward(self, x, training=False, rng=None):
        return x * 2, None

    def backward(self, grad, ctx):
        return None


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, 3)), rng.standard_normal((6, 2))


def _mse(*layers, seed=0):
    m = Sequential([Input((3,)), *layers], seed=seed)
    m.compile(loss="mse", optimizer="adam")
    return m


def test_the_backward_branch_fit_uses_is_checked(data):
    """check_gradients always asked for the input's gradient, so a first layer's other branch (the one fit
    runs) was never checked: a doubled gradient passed at 1e-9."""
    x, y = data
    assert neuro.check_gradients(Scale(bug=True), x).errors["scale"] > 0.1
    assert neuro.check_gradients(_mse(Scale(bug=True), Dense(2)), x, y).errors["0.scale.scale"] > 0.1
    assert neuro.check_gradients(_mse(Scale(), Dense(2)), x, y).max_error < 1e-7


def test_a_nested_model_checked_as_a_layer_checks_its_layers_weights(data):
    """A nested model used as a layer has no weights of its own: only its input gradient was checked."""
    x, _ = data
    i = Input((3,))
    block = Model(i, Dense(2)(Scale(bug=True)(i)))
    j = Input((3,))
    as_layer = Model(j, block(j)).layers[0]
    report = neuro.check_gradients(as_layer, x)
    assert report.errors["scale.scale"] > 0.1, report
    assert report.errors["dense.kernel"] < 1e-7


def test_a_missing_input_gradient_is_an_error(data):
    x, y = data
    with pytest.raises(ValueError, match=r"^the backward pass gave no gradient for input input \(None\)"):
        neuro.check_gradients(_mse(NoInputGradient(), Dense(2)), x, y)


def test_gradients_below_the_finite_differences_resolution_are_no_false_alarm(data):
    """A Dense bias before BatchNorm has a gradient of exactly 0 (1e-16 computed); the finite difference is
    noise of 4e-10, which was reported as an error of 4e-2."""
    x, _ = data
    m = Sequential([Input((3,)), Dense(4), BatchNorm(), Dense(1)], seed=0)
    m.compile(loss="mse", optimizer="sgd")
    report = neuro.check_gradients(m, x, np.random.default_rng(1).standard_normal((6, 1)))
    assert report.max_error < 1e-7, report
    bad = Sequential([Input((3,)), Scale(bug=True), BatchNorm(), Dense(1)], seed=0)  # still caught there
    bad.compile(loss="mse", optimizer="sgd")
    assert neuro.check_gradients(bad, x, np.ones((6, 1))).errors["0.scale.scale"] > 0.1


def test_buffers_are_restored_between_evaluations_of_a_layer(data):
    x, y = data
    assert neuro.check_gradients(RunningCenter(), x).max_error < 1e-7
    assert neuro.check_gradients(_mse(RunningCenter(), Dense(2)), x, y).max_error < 1e-7


def test_the_check_leaves_the_optimizer_state_and_an_unbuilt_layer_as_they_were(data):
    x, y = data
    m = _mse(Dense(4), Dense(2))
    m.fit(x, y, epochs=1, verbose=0)
    m.layers[0].trainable = False
    state = m.optimizer.get_state()
    neuro.check_gradients(m, x, y)
    after = m.optimizer.get_state()
    assert [{k: v.dtype for k, v in s.items()} for s in after["slots"]] == [
        {k: v.dtype for k, v in s.items()} for s in state["slots"]
    ]
    for s, t in zip(state["slots"], after["slots"], strict=True):
        for k in s:
            np.testing.assert_array_equal(s[k], t[k])
    d = Dense(3, activation="tanh")
    neuro.check_gradients(d, x)
    assert not d.built  # free to join a float32 model
    _mse(d, Dense(2)).fit(x.astype(np.float32), y.astype(np.float32), epochs=1, verbose=0)


class Broken(NoInputGradient):
    def backward(self, grad, ctx):
        raise ValueError("broken backward")


def test_a_failing_check_rewinds_the_models_generator(data):
    x, y = data
    m = _mse(neuro.Dropout(0.5), Broken(), Dense(2))
    state = m.rng.bit_generator.state
    with pytest.raises(ValueError, match="broken backward"):
        neuro.check_gradients(m, x, y)  # the forward drew dropout masks, the backward raised
    assert m.rng.bit_generator.state == state


def test_integer_data_for_a_float_input_is_checked(data):
    x, y = data
    report = neuro.check_gradients(_mse(Dense(2)), (x * 10).astype(np.int64), y)
    assert "input input" in report.errors and report.max_error < 1e-7


def test_input_gradients_are_in_the_units_of_the_data_given():
    """With an input scaler, compute_gradients returned the gradient with respect to the scaled input, and
    check_gradients reported an input error of 0.92."""
    from neuro.data import TabularDataSet

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)) * [10.0, 0.1, 3.0] + 5
    y = x @ np.array([[0.1], [2.0], [0.3]])
    with neuro.backend.dtype_scope("float64"):
        m = Sequential([Input((3,)), Dense(4, activation="tanh"), Dense(1)], seed=0)
    m.compile(loss="mse", optimizer="sgd")
    m.fit(TabularDataSet.from_arrays(x, y).standardize_input(), epochs=1, verbose=0)
    assert neuro.check_gradients(m, x[:6], y[:6]).max_error < 1e-6
    _, (g,) = m.compute_gradients(x[:6], y[:6], input_gradients=True)
    e, up, down = 1e-6, x[:6].copy(), x[:6].copy()
    up[0, 1] += e
    down[0, 1] -= e
    numeric = (m.compute_gradients(up, y[:6]) - m.compute_gradients(down, y[:6])) / (2 * e)
    assert g[0, 1] == pytest.approx(numeric, rel=1e-5)


def test_a_large_loss_does_not_hide_a_wrong_small_gradient():
    """The first resolution floor (100·ε·|L|/eps, 2e-2 at a loss of 1e6) reported 0 for a doubled gradient of
    0.026: central differences resolve it to 1e-4 there."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3))
    i = Input((3,))
    m = Model(i, [Dense(1)(i), Dense(1)(Scale(bug=True, name="s")(i))], loss=["mse", "mse"], optimizer="sgd", seed=0)
    y1 = np.full((6, 1), 1000.0)  # a loss of about 1e6
    y2 = neuro.to_numpy(m.predict(x)[1]) + 0.01 * rng.standard_normal((6, 1))
    assert neuro.check_gradients(m, x, [y1, y2]).errors["1.s.scale"] > 0.1


def test_an_unbuilt_nested_model_checked_as_a_layer():
    """A deep copy of a nested model shares its nodes: the check built the original's layers and looked for
    the copy's weights (KeyError 'kernel'). It is built in place (a copy from its config would lose
    subclasses and settings its config does not hold)."""
    from neuro.graph import Functional

    i = Input((3,))
    inner = Model(i, Dense(2, activation="tanh")(Dense(4)(i)))
    j = Input((3,))
    unbuilt = Functional.from_config(Model(j, inner(j)).layers[0].get_config())
    assert not unbuilt.built
    report = neuro.check_gradients(unbuilt, np.random.default_rng(0).standard_normal((5, 3)))
    assert report.max_error < 1e-7 and len(report.errors) == 5  # the input, two kernels, two biases


def test_no_false_alarm_on_a_convolutions_bias_before_batch_norm_on_pixel_data():
    """The bias's true gradient is 0; the backward computes it as a sum of cancelling terms (up to 7e-9 with
    pixels of 0..255) and the finite differences see 3e-9 of noise: reported up to 0.6."""
    from neuro import Conv2D, Flatten

    for seed in range(4):
        rng = np.random.default_rng(seed)
        net = Sequential([Input((8, 8, 3)), Conv2D(8, 3), BatchNorm(), Flatten(), Dense(1)], seed=seed)
        net.compile(loss="mse", optimizer="sgd")
        base = rng.uniform(60, 200, (4, 1, 1, 3)) + np.linspace(0, 30, 8)[None, :, None, None]
        x = np.clip(base + 5 * rng.standard_normal((4, 8, 8, 3)), 0, 255).astype(np.uint8)
        assert neuro.check_gradients(net, x, rng.standard_normal((4, 1))).max_error < 1e-6


def test_a_sign_flip_beside_a_large_loss_is_caught_and_large_entries_are_no_false_alarm():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3))

    class Flipped(Scale):
        def backward(self, grad, ctx):
            dx = super().backward(grad, ctx)
            self.grads["scale"] *= -1.0
            return dx

    i = Input((3,))
    m = Model(i, [Dense(1)(i), Dense(1)(Flipped(name="s")(i))], loss=["mse", "mse"], optimizer="sgd", seed=0)
    y2 = neuro.to_numpy(m.predict(x)[1]) + 0.002 * rng.standard_normal((6, 1))  # small gradients
    assert neuro.check_gradients(m, x, [np.full((6, 1), 1000.0), y2]).errors["1.s.scale"] > 0.1
    # entries of 1e5: x ± eps rounds, and the differences divide by the step actually taken
    y = 1e5 + rng.standard_normal((8, 1))
    assert neuro.check_gradients(neuro.losses.MeanSquaredError(), y + rng.standard_normal((8, 1)), y).max_error < 1e-8


def test_unresolvable_gradients_are_nan_and_huge_entries_do_not_divide_by_zero():
    """Beside a loss of 1e10 the differences' noise exceeds a small layer's gradients: the array was reported
    0 (perfect) whatever its backward did; it is NaN (not checked). An entry of 1.7e12 does not move by
    1e-6: the step was 0 (ZeroDivisionError)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3))
    i = Input((3,))
    m = Model(i, [Dense(1)(i), Dense(1)(Scale(bug=True, name="s")(i))], loss=["mse", "mse"], optimizer="sgd", seed=0)
    y2 = neuro.to_numpy(m.predict(x)[1]) + 0.002 * rng.standard_normal((6, 1))
    report = neuro.check_gradients(m, x, [np.full((6, 1), 1e5), y2])
    assert np.isnan(report.errors["1.s.scale"])
    y = np.full((4, 1), 1.7e12)
    report = neuro.check_gradients(neuro.losses.MeanSquaredError(), y + rng.standard_normal((4, 1)) * 1e3, y)
    assert report.max_error < 1e-6


def test_a_nan_of_the_second_branch_is_kept():
    """Python's max([0.0, nan]) is 0.0: an unresolvable second branch was dropped from the report."""
    from neuro import gradcheck

    arr = np.array([0.5, -0.25])

    def f():  # a huge objective: the differences' noise dwarfs the gradient 1e-3
        return 1e16 + 1e-3 * float(arr.sum())

    numeric, _ = gradcheck._numeric(f, arr, 1e-6, np.arange(2))
    report = gradcheck.GradientReport()
    gradcheck._compare("w", f, arr, [numeric.copy(), np.full(2, 1e-3)], 1e-6, None, np.random.default_rng(0), report)
    assert np.isnan(report.errors["w"])
