"""Your own losses and metrics: a SampleLoss subclass (per-sample values and their gradient) trains, passes
the gradient check, weighs samples, saves and loads through neuro.register; a plain function is a metric
(one number per batch or one value per sample, weighted); bad ones get errors naming them."""

from __future__ import annotations

import numpy as np
import pytest

import neuro
from neuro import Dense, Network, SampleLoss
from neuro.backend import get_array_module
from neuro.metrics import FunctionMetric


@neuro.register
class SquaredLogError(SampleLoss):
    """``l_i = Σ_j (log(1 + ŷ_ij) − log(1 + y_ij))²``. Gradient: ∂l_i/∂ŷ_ij = 2·(log(1+ŷ) − log(1+y))/(1+ŷ)."""

    def sample_losses(self, y_pred, y_true):
        xp = get_array_module(y_pred)
        d = xp.log1p(y_pred) - xp.log1p(y_true)
        return (d * d).sum(axis=1)

    def sample_gradients(self, y_pred, y_true):
        xp = get_array_module(y_pred)
        return 2 * (xp.log1p(y_pred) - xp.log1p(y_true)) / (1 + y_pred)


def _data(n=12):
    rng = np.random.default_rng(0)
    return rng.random((n, 3)).astype(np.float32), rng.random((n, 2)).astype(np.float32)


def test_a_sample_loss_passes_the_gradient_check_and_averages_over_samples():
    loss = SquaredLogError()
    rng = np.random.default_rng(1)
    y_pred, y_true = rng.random((5, 2)), rng.random((5, 2))
    report = neuro.check_gradients(loss, y_pred, y_true)
    assert report.max_error < 1e-7, report
    expected = np.mean(((np.log1p(y_pred) - np.log1p(y_true)) ** 2).sum(axis=1))
    assert loss(y_pred, y_true) == pytest.approx(expected, rel=1e-12)
    w = np.array([1.0, 0.0, 2.0, 1.0, 0.5])
    per = ((np.log1p(y_pred) - np.log1p(y_true)) ** 2).sum(axis=1)
    assert loss.forward(y_pred, y_true, sample_weight=w) == pytest.approx((w * per).sum() / w.sum(), rel=1e-12)


def test_a_model_trains_with_it_and_saves_and_loads(tmp_path):
    x, y = _data()
    net = Network((3,), SquaredLogError(), "adam", seed=0)
    net.add(Dense(2, activation="softplus"))
    before = net.evaluate(x, y)["loss"]
    net.fit(x, y, epochs=20, batch_size=4, verbose=0)
    assert net.evaluate(x, y)["loss"] < before
    net.save(tmp_path / "m.h5")
    loaded = Network.load(tmp_path / "m.h5")
    assert isinstance(loaded.loss, SquaredLogError)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    report = neuro.check_gradients(net, x.astype(np.float64), y.astype(np.float64))
    assert report.max_error < 1e-6, report


def test_bad_sample_losses_are_named():
    class Wrong(SampleLoss):
        def sample_losses(self, y_pred, y_true):
            return (y_pred - y_true) ** 2  # one value per output, not per sample

        def sample_gradients(self, y_pred, y_true):
            return (y_pred - y_true)[:, :1]

    y_pred, y_true = np.ones((4, 2)), np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"Wrong.sample_losses must return one value per sample, an array of shape "
                                         r"\(4,\), got \(4, 2\)"):
        Wrong()(y_pred, y_true)
    with pytest.raises(ValueError, match=r"Wrong.sample_gradients must return an array shaped like y_pred "
                                         r"\(4, 2\), got \(4, 1\)"):
        Wrong().backward(y_pred, y_true)


def test_weights_per_step_are_refused_by_a_per_sample_loss():
    y_pred, y_true = np.ones((2, 3, 2)), np.zeros((2, 3, 2))

    class PerSample(SampleLoss):
        def sample_losses(self, y_pred, y_true):
            return ((y_pred - y_true) ** 2).reshape(len(y_pred), -1).sum(axis=1)

        def sample_gradients(self, y_pred, y_true):
            return 2 * (y_pred - y_true)

    mask = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"PerSample gives one loss per sample, but the weights are per step "
                                         r"\(2, 3\)"):
        PerSample().forward(y_pred, y_true, sample_weight=mask)
    assert PerSample().forward(y_pred, y_true, sample_weight=np.array([1.0, 3.0])) == pytest.approx(6.0)


def test_a_plain_function_as_a_loss_says_what_to_write():
    def my_loss(y_true, y_pred):
        return ((y_true - y_pred) ** 2).mean()

    with pytest.raises(TypeError, match=r"loss 'my_loss' is a function; neuro needs its gradient too: subclass "
                                        r"neuro.losses.SampleLoss"):
        Network((3,), my_loss, "sgd")


def max_error(y_true, y_pred):
    """One value per sample."""
    return np.abs(y_true - y_pred).max(axis=1)


def mean_error(y_true, y_pred):
    """One number per batch (its mean)."""
    return float(np.abs(y_true - y_pred).mean())


def test_a_function_is_a_metric_averaged_over_samples():
    x, y = _data(10)
    net = Network((3,), "mse", "sgd", seed=0)
    net.add(Dense(2))
    logs = net.evaluate(x, y, batch_size=3, metrics=[max_error, mean_error])
    p = np.asarray(net.predict(x), dtype=np.float64)
    assert logs["max_error"] == pytest.approx(np.abs(y - p).max(axis=1).mean(), rel=1e-6)
    assert logs["mean_error"] == pytest.approx(np.abs(y - p).mean(), rel=1e-6)  # batch means, by batch size
    w = np.linspace(0.0, 1.0, 10)
    weighted = net.evaluate(x, y, batch_size=4, metrics=[max_error], sample_weight=w)
    per = np.abs(y - p).max(axis=1)
    assert weighted["max_error"] == pytest.approx((w * per).sum() / w.sum(), rel=1e-6)
    history = net.fit(x, y, epochs=2, verbose=0, metrics=[max_error])
    assert len(history.history["max_error"]) == 2


def test_bad_metric_functions_are_named():
    def broken(y_true, y_pred):
        raise KeyError("no such column")

    def wrong_shape(y_true, y_pred):
        return np.zeros((len(y_true), 5))

    def words(y_true, y_pred):
        return "good"

    y_pred, y_true = np.zeros((4, 2)), np.ones((4, 2))
    with pytest.raises(TypeError, match=r"metric function 'broken' raised KeyError: 'no such column'"):
        FunctionMetric(broken).update(y_pred, y_true)
    with pytest.raises(ValueError, match=r"metric function 'wrong_shape' must return one number or one value per "
                                         r"sample \(4,\), got shape \(4, 5\)"):
        FunctionMetric(wrong_shape).update(y_pred, y_true)
    with pytest.raises(TypeError, match=r"metric function 'words' must return numbers, got str"):
        FunctionMetric(words).update(y_pred, y_true)
    with pytest.raises(TypeError, match=r"fn must be a function fn\(y_true, y_pred\), got int"):
        FunctionMetric(3)


def test_function_metrics_merge_over_processes_exactly():
    a, b = FunctionMetric(max_error), FunctionMetric(max_error)
    rng = np.random.default_rng(0)
    y1, p1, y2, p2 = (rng.random((n, 2)) for n in (3, 3, 5, 5))
    a.update(p1, y1)
    b.update(p2, y2)
    merged = a.merge([a.state(), b.state()])
    both = FunctionMetric(max_error)
    both.update(np.concatenate([p1, p2]), np.concatenate([y1, y2]))
    assert merged.result() == pytest.approx(both.result(), rel=1e-15)
