"""The losses with Keras's names (Huber, LogCosh, KLDivergence, Poisson, Hinge, SquaredHinge, CategoricalHinge,
CosineSimilarity): values and gradients against PyTorch (its own losses where it has them, Keras's formula
in torch ops where it does not) in float64, with sample weights and sequence masks; Keras's formulas written
out in NumPy; finite differences; label conversion, clipping and zero vectors; bad input; names; save and load.

neuro's convention is MeanSquaredError's: a loss sums over the last axis and averages over the positions (the
samples, and the steps of a sequence output; Σ w·loss / Σ w with weights). Keras averages an elementwise loss over the last axis, so for D outputs
neuro's value is Keras's times D; the row losses (CategoricalHinge, CosineSimilarity) agree with Keras.
"""

from __future__ import annotations

import numpy as np
import pytest

import neuro
from neuro import Dense, Network, backend, losses, registry
from neuro.losses import (
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    Poisson,
    SquaredHinge,
)

pytestmark = pytest.mark.usefixtures("float64")

RTOL = 1e-12
EPS = 1e-7  # Keras's backend.epsilon()


def _softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# -- the cases: data, and the per-value (or per-row) loss of Keras's formula in torch ops --------------------
def _data(name, rng, shape):
    """``(y_pred, y_true)`` of ``shape`` suited to the loss."""
    if name.startswith("huber") or name == "log_cosh":
        return 1.5 * rng.standard_normal(shape), rng.standard_normal(shape)
    if name == "kld":
        return _softmax(rng.standard_normal(shape)), _softmax(2 * rng.standard_normal(shape))
    if name == "poisson":
        return np.exp(0.5 * rng.standard_normal(shape)), rng.poisson(1.5, shape).astype(np.float64)
    if name in ("hinge", "squared_hinge", "hinge01", "squared_hinge01"):
        y = rng.choice([0.0, 1.0], shape) if name.endswith("01") else rng.choice([-1.0, 1.0], shape)
        return rng.standard_normal(shape), y
    if name == "categorical_hinge":
        ids = rng.integers(0, shape[-1], shape[:-1])
        return rng.standard_normal(shape), np.eye(shape[-1])[ids]
    if name == "cosine":
        return rng.standard_normal(shape), rng.standard_normal(shape)
    raise AssertionError(name)


def _hinge_labels(y):
    return 2 * y - 1 if np.all((y == 0) | (y == 1)) else y


def _torch_per(torch, name, p, y):
    """Keras's loss of each value (or each row, for the row losses) as a torch expression of p (autograd)."""
    f = torch.nn.functional
    yt = torch.tensor(y)
    if name == "huber":
        return f.huber_loss(p, yt, reduction="none", delta=1.0)
    if name == "huber_0.3":
        return f.huber_loss(p, yt, reduction="none", delta=0.3)
    if name == "log_cosh":
        return torch.log(torch.cosh(p - yt))
    if name == "kld":  # kl_div(log q, t) = t·(log t − log q), on Keras's clipped values
        return f.kl_div(torch.log(torch.clamp(p, EPS, 1.0)), torch.clamp(yt, EPS, 1.0), reduction="none")
    if name == "poisson":
        return f.poisson_nll_loss(p, yt, log_input=False, full=False, eps=EPS, reduction="none")
    if name.startswith("hinge"):
        return torch.clamp(1 - torch.tensor(_hinge_labels(y)) * p, min=0.0)
    if name.startswith("squared_hinge"):
        return torch.clamp(1 - torch.tensor(_hinge_labels(y)) * p, min=0.0) ** 2
    if name == "categorical_hinge":
        pos = (yt * p).sum(-1)
        neg = ((1 - yt) * p).max(-1).values
        return torch.clamp(neg - pos + 1, min=0.0)
    if name == "cosine":
        return -f.cosine_similarity(p, yt, dim=-1)
    raise AssertionError(name)


CASES = {
    "huber": Huber,
    "huber_0.3": lambda: Huber(delta=0.3),
    "log_cosh": LogCosh,
    "kld": KLDivergence,
    "poisson": Poisson,
    "hinge": Hinge,
    "hinge01": Hinge,
    "squared_hinge": SquaredHinge,
    "squared_hinge01": SquaredHinge,
    "categorical_hinge": CategoricalHinge,
    "cosine": CosineSimilarity,
}
NAMES = list(CASES)


def _torch_loss(torch, name, y_pred, y_true, weights=None):
    """neuro's reduction of the torch per-value losses: ``(Σ w·ℓ / Σw or Σ ℓ / n, dL/dŷ)``, n the positions
    of the output (every axis but the last: the samples, and a sequence's steps)."""
    p = torch.tensor(y_pred, requires_grad=True)
    per = _torch_per(torch, name, p, y_true)
    if weights is None:
        total = per.sum() / int(np.prod(y_pred.shape[:-1]))
    else:
        w = torch.tensor(weights).reshape(weights.shape + (1,) * (per.dim() - weights.ndim))
        total = (per * w).sum() / w.sum()
    total.backward()
    return total.item(), p.grad.numpy()


def _neuro_loss(loss, y_pred, y_true, weights=None):
    value = loss.forward(y_pred.copy(), y_true.copy(), sample_weight=weights)
    w = None if weights is None else losses._weights(weights, y_pred)
    p, y = y_pred.copy(), y_true.copy()
    g = loss.backward(p, y, w)
    np.testing.assert_array_equal(p, y_pred)  # inputs untouched
    np.testing.assert_array_equal(y, y_true)
    total, denom = loss.terms(y_pred, y_true, w)
    assert value == pytest.approx(float(total) / float(denom), rel=1e-15)
    return value, g


_EVERY_ELEMENTWISE = {
    **{name: (CASES[name], lambda rng, shape, name=name: _data(name, rng, shape)) for name in NAMES},
    "mse": (losses.MeanSquaredError, lambda rng, shape: (rng.standard_normal(shape), rng.standard_normal(shape))),
    "mae": (losses.MeanAbsoluteError, lambda rng, shape: (rng.standard_normal(shape), rng.standard_normal(shape))),
    "bce": (losses.BinaryCrossEntropy, lambda rng, shape: (rng.uniform(0.05, 0.95, shape), rng.uniform(0, 1, shape))),
    "bce_logits": (
        lambda: losses.BinaryCrossEntropy(from_logits=True),
        lambda rng, shape: (rng.standard_normal(shape), rng.uniform(0, 1, shape)),
    ),
    "class_weighted_bce": (
        lambda: losses.ClassWeightedBinaryCrossEntropy(class_weights=(0.5, 2.0)),
        lambda rng, shape: (rng.uniform(0.05, 0.95, shape[:-1] + (1,)), rng.integers(0, 2, shape[:-1] + (1,)) * 1.0),
    ),
}


@pytest.mark.parametrize("name", list(_EVERY_ELEMENTWISE))
def test_a_sequence_loss_is_the_mean_over_its_steps_whatever_the_weights_say(rng, name):
    """Every step of a sequence output is an item, as for the categorical losses: weights of 1 per step (a mask
    that masks nothing) or per sample give the unweighted loss and gradient, and a sample's weight counts once
    per step (the helper's repro: a mask that masked nothing divided the MSE by T)."""
    make, data = _EVERY_ELEMENTWISE[name]
    loss = make()
    y_pred, y_true = data(rng, (3, 5, 4))
    plain = loss.forward(y_pred, y_true)
    g = loss.backward(y_pred, y_true)
    for w in (np.ones((3, 5)), np.ones(3)):
        assert loss.forward(y_pred, y_true, sample_weight=w) == pytest.approx(plain, rel=1e-14)
        np.testing.assert_allclose(loss.backward(y_pred, y_true, w), g, rtol=1e-14, atol=1e-300)
    sw = rng.uniform(0.5, 2.0, 3)
    per_step = np.repeat(sw[:, None], 5, axis=1)
    assert loss.forward(y_pred, y_true, sample_weight=sw) == pytest.approx(
        loss.forward(y_pred, y_true, sample_weight=per_step), rel=1e-14
    )
    np.testing.assert_allclose(loss.backward(y_pred, y_true, sw), loss.backward(y_pred, y_true, per_step), rtol=1e-14)
    if name == "class_weighted_bce":  # its items weigh their class's weight: a weighted mean
        return
    # the unweighted loss is the mean over the 15 positions of each position's sum over the last axis
    one = [loss.forward(y_pred[i : i + 1, t : t + 1], y_true[i : i + 1, t : t + 1]) for i in range(3) for t in range(5)]
    assert plain == pytest.approx(np.mean(one), rel=1e-13)


@pytest.mark.parametrize("shape", [(7, 4), (7, 1), (3, 5, 4)], ids=["2d", "one_output", "sequence"])
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weights"])
@pytest.mark.parametrize("name", NAMES)
def test_matches_torch(torch, rng, name, shape, weighted):
    if name == "categorical_hinge" and shape[-1] == 1:
        shape = (7, 3)
    y_pred, y_true = _data(name, rng, shape)
    weights = None
    if weighted:  # sample weights, or for a sequence a mask of valid steps with weights
        weights = rng.uniform(0.2, 2.0, shape[:-1]) if len(shape) == 3 else rng.uniform(0.2, 2.0, shape[:1])
        if len(shape) == 3:
            weights[0, -2:] = 0.0
    value, grad = _neuro_loss(CASES[name](), y_pred, y_true, weights)
    ref_value, ref_grad = _torch_loss(torch, name, y_pred, y_true, weights)
    assert value == pytest.approx(ref_value, rel=RTOL, abs=1e-15)
    assert grad.shape == y_pred.shape
    np.testing.assert_allclose(grad, ref_grad, rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize("name", ["huber", "log_cosh", "poisson", "hinge", "squared_hinge", "kld"])
def test_flat_targets_fit_a_single_output(rng, name):
    y_pred, y_true = _data(name, rng, (6, 1))
    loss = CASES[name]()
    assert loss(y_pred, y_true.reshape(-1)) == loss(y_pred, y_true)
    np.testing.assert_array_equal(loss.backward(y_pred, y_true.reshape(-1)), loss.backward(y_pred, y_true))


# -- Keras's formulas in NumPy -------------------------------------------------------------------------------
def _keras_normalize(x):
    """Keras 3's ``ops.normalize``: ``x·min(rsqrt(Σx²), 1/epsilon)`` (a zero vector stays zero)."""
    with np.errstate(divide="ignore"):
        return x * np.minimum(1.0 / np.sqrt((x * x).sum(-1, keepdims=True)), 1.0 / EPS)


KERAS = {  # keras.losses.<name>(y_true, y_pred): one value per sample
    "huber": lambda y, p: np.where(np.abs(p - y) <= 1.0, 0.5 * (p - y) ** 2, np.abs(p - y) - 0.5).mean(-1),
    "log_cosh": lambda y, p: ((p - y) + np.logaddexp(0.0, -2 * (p - y)) - np.log(2.0)).mean(-1),
    "kld": lambda y, p: (np.clip(y, EPS, 1) * np.log(np.clip(y, EPS, 1) / np.clip(p, EPS, 1))).sum(-1),
    "poisson": lambda y, p: (p - y * np.log(p + EPS)).mean(-1),
    "hinge": lambda y, p: np.maximum(1 - _hinge_labels(y) * p, 0).mean(-1),
    "squared_hinge": lambda y, p: (np.maximum(1 - _hinge_labels(y) * p, 0) ** 2).mean(-1),
    "categorical_hinge": lambda y, p: np.maximum(((1 - y) * p).max(-1) - (y * p).sum(-1) + 1, 0),
    "cosine": lambda y, p: -(_keras_normalize(y) * _keras_normalize(p)).sum(-1),
}
ELEMENTWISE = {"huber", "log_cosh", "kld", "poisson", "hinge", "squared_hinge"}


@pytest.mark.parametrize("name", list(KERAS))
def test_keras_formula(rng, name):
    """Keras's value (``sum_over_batch_size``) times D for the elementwise losses, the same for the row
    losses; KLDivergence sums over the last axis in Keras too."""
    y_pred, y_true = _data(name, rng, (9, 4))
    value = CASES[name]()(y_pred, y_true)
    keras = KERAS[name](y_true, y_pred).mean()
    scale = 4 if name in ELEMENTWISE and name != "kld" else 1
    assert value == pytest.approx(keras * scale, rel=1e-13)


def test_log_cosh_is_accurate_for_tiny_and_huge_errors():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    d = np.array([1e-300, 1e-9, 1e-4, 0.3, 0.999, 1.0, 1.001, 5.0, 40.0, 1e5, 1e300])
    loss = LogCosh()
    per = [loss(np.array([[v]]), np.zeros((1, 1))) for v in d]
    want = [float(mpmath.log(mpmath.cosh(mpmath.mpf(v)))) if v < 1e4 else v - np.log(2.0) for v in d]
    np.testing.assert_allclose(per, want, rtol=4e-16)


# -- label conversion, clipping, zero vectors ----------------------------------------------------------------
@pytest.mark.parametrize("cls", [Hinge, SquaredHinge])
def test_hinge_converts_binary_labels_like_keras(rng, cls):
    y_pred = rng.standard_normal((8, 3))
    pm = rng.choice([-1.0, 1.0], (8, 3))
    loss = cls()
    assert loss(y_pred, (pm + 1) / 2) == loss(y_pred, pm)
    np.testing.assert_array_equal(loss.backward(y_pred, (pm + 1) / 2), loss.backward(y_pred, pm))
    ones = np.ones((8, 3))  # all 1: the same label either way
    margin = np.maximum(1 - y_pred, 0)
    assert loss(y_pred, ones) == pytest.approx((margin if cls is Hinge else margin**2).sum() / 8, rel=1e-15)
    np.testing.assert_array_equal(cls.labels(y_pred, np.zeros((8, 3))), -np.ones((8, 3)))


@pytest.mark.parametrize("cls", [Hinge, SquaredHinge])
@pytest.mark.parametrize("labels", [[-1.0, 0.0, 1.0], [2.0, 1.0], [0.5, 1.0]])
def test_hinge_refuses_other_labels(cls, labels):
    y = np.array(labels * 2)[:, None]
    with pytest.raises(ValueError, match=rf"y_true of {cls.__name__} must be labels -1/1, or 0/1 .*got values"):
        cls()(np.zeros_like(y), y)


def test_kld_clips_like_keras_and_has_no_gradient_where_clipped():
    y_pred = np.array([[0.0, 0.5, 0.5], [1e-9, 0.3, 1.0]])
    y_true = np.array([[0.0, 1.0, 0.0], [0.2, 0.8, 0.0]])
    loss = KLDivergence()
    assert loss(y_pred, y_true) == pytest.approx(KERAS["kld"](y_true, y_pred).mean(), rel=1e-14)
    g = loss.backward(y_pred, y_true)
    assert g[0, 0] == 0.0 and g[1, 0] == 0.0  # held by the clip at 1e-7
    assert g[1, 2] == pytest.approx(-EPS / 1.0 / 2)  # inside the clip (ŷ = 1): −t/p/m


def test_cosine_similarity_of_zero_vectors_is_zero_and_finite():
    y_pred = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0], [1e-9, 0.0, 0.0]])
    y_true = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    loss = CosineSimilarity()
    per = [loss(y_pred[i : i + 1], y_true[i : i + 1]) for i in range(3)]
    np.testing.assert_allclose(per, KERAS["cosine"](y_true, y_pred), rtol=1e-15)
    assert per[0] == 0.0 and per[1] == 0.0 and per[2] == pytest.approx(-0.01)  # 1e-9 / max(1e-9, 1e-7)
    g = loss.backward(y_pred, y_true)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[2], [-1e7 / 3, 0.0, 0.0])  # the floored norm: −t/(1e-7·m)


def test_cosine_similarity_along_another_axis(rng):
    y_pred, y_true = rng.standard_normal((4, 3, 5)), rng.standard_normal((4, 3, 5))
    moved = CosineSimilarity()(np.moveaxis(y_pred, 1, -1), np.moveaxis(y_true, 1, -1))
    for axis in (1, -2):
        loss = CosineSimilarity(axis=axis)
        assert loss(y_pred, y_true) == pytest.approx(moved, rel=1e-15)
        g = loss.backward(y_pred, y_true)
        np.testing.assert_allclose(
            np.moveaxis(g, 1, -1), CosineSimilarity().backward(np.moveaxis(y_pred, 1, -1), np.moveaxis(y_true, 1, -1))
        )
        report = neuro.check_gradients(loss, y_pred, y_true)
        assert report.max_error < 1e-7, report


# -- finite differences, float32, the strict device ----------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_check_gradients(rng, name):
    y_pred, y_true = _data(name, rng, (5, 3))
    if name.startswith(("hinge", "squared_hinge")):  # keep margins away from the kink at 1
        y_pred += np.where(np.abs(1 - _hinge_labels(y_true) * y_pred) < 0.05, 0.2, 0.0)
    report = neuro.check_gradients(CASES[name](), y_pred, y_true)
    assert set(report.errors) == {"y_pred"}
    assert report.max_error < 1e-7, report


@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32(rng, name):
    y_pred, y_true = (a.astype(np.float32) for a in _data(name, rng, (5, 3)))
    loss = CASES[name]()
    total, denom = loss.terms(y_pred, y_true)
    assert total.dtype == np.float32
    assert loss.backward(y_pred, y_true).dtype == np.float32
    w = np.linspace(0.5, 1.5, 5).astype(np.float32)
    assert loss.backward(y_pred, y_true, w).dtype == np.float32
    assert loss(y_pred, y_true) == pytest.approx(loss(y_pred.astype(np.float64), y_true.astype(np.float64)), rel=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_strict_device_equals_numpy_without_host_reads(rng, name):
    strict = backend.get_device("strict")
    y_pred, y_true = _data(name, rng, (5, 3))
    w = rng.uniform(0.5, 1.5, 5)
    loss = CASES[name]()
    dev = [backend.to_device(a, strict) for a in (y_pred, y_true, w)]
    reads = backend.host_reads()
    total, denom = loss.terms(dev[0], dev[1], dev[2])
    g = loss.backward(*dev)
    assert backend.host_reads() == reads, "the loss read from the device"
    want_total, want_denom = loss.terms(y_pred, y_true, w)
    assert backend.to_numpy(total) == want_total and backend.to_numpy(denom) == want_denom
    np.testing.assert_array_equal(backend.to_numpy(g), loss.backward(y_pred, y_true, w))


# -- inside a network, names, save and load ------------------------------------------------------------------
NETWORKS = {  # loss -> (last layer, target maker)
    "huber": ("linear", lambda rng, n: rng.standard_normal((n, 2))),
    "log_cosh": ("linear", lambda rng, n: rng.standard_normal((n, 2))),
    "kl_divergence": ("softmax", lambda rng, n: _softmax(rng.standard_normal((n, 2)))),
    "poisson": ("softplus", lambda rng, n: rng.poisson(2.0, (n, 2)).astype(np.float64)),
    "hinge": ("tanh", lambda rng, n: rng.choice([-1.0, 1.0], (n, 2))),
    "squared_hinge": ("linear", lambda rng, n: rng.choice([0.0, 1.0], (n, 2))),
    "categorical_hinge": ("linear", lambda rng, n: np.eye(2)[rng.integers(0, 2, n)]),
    "cosine_similarity": ("linear", lambda rng, n: rng.standard_normal((n, 2))),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_trains_saves_loads_and_predicts_identically(tmp_path, rng, name):
    last, targets = NETWORKS[name]
    loss = Huber(delta=0.5) if name == "huber" else name
    net = Network((3,), loss, "adam", seed=0)
    net.add(Dense(8, activation="gelu")).add(Dense(2, activation=last))
    x = rng.standard_normal((16, 3))
    y = targets(rng, 16)
    before = net.evaluate(x, y)["loss"]
    net.fit(x, y, batch_size=4, epochs=3, verbose=0)
    assert net.evaluate(x, y)["loss"] < before
    net.save(tmp_path / "m.h5")
    loaded = Network.load(tmp_path / "m.h5")
    assert type(loaded.loss) is type(net.loss) and loaded.loss.get_config() == net.loss.get_config()
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    assert loaded.evaluate(x, y) == net.evaluate(x, y)


@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        ("huber", Huber),
        ("huber_loss", Huber),
        ("log_cosh", LogCosh),
        ("logcosh", LogCosh),
        ("LogCosh", LogCosh),
        ("kl_divergence", KLDivergence),
        ("kld", KLDivergence),
        ("kullback_leibler_divergence", KLDivergence),
        ("poisson", Poisson),
        ("hinge", Hinge),
        ("squared_hinge", SquaredHinge),
        ("categorical_hinge", CategoricalHinge),
        ("cosine_similarity", CosineSimilarity),
    ],
)
def test_get_names(spec, cls):
    loss = losses.get(spec)
    assert type(loss) is cls
    again = losses.get(registry.serialize(loss))
    assert type(again) is cls and again.get_config() == loss.get_config()
    assert getattr(neuro, cls.__name__) is cls


def test_configs():
    assert Huber(0.5).get_config() == {"delta": 0.5}
    assert CosineSimilarity(axis=1).get_config() == {"axis": 1}
    assert losses.get({"class": "huber", "config": {"delta": 2}}).delta == 2.0
    assert repr(Huber(2)) == "Huber(delta=2.0)"


# -- bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("delta", [-1.0, 0.0, float("nan"), float("inf"), True, "1", None])
def test_huber_bad_delta(delta):
    with pytest.raises(ValueError, match=r"delta must be a finite number > 0, got"):
        Huber(delta=delta)


@pytest.mark.parametrize("axis", [1.0, "x", None, True])
def test_cosine_bad_axis_type(axis):
    with pytest.raises(ValueError, match=r"axis must be an integer"):
        CosineSimilarity(axis=axis)


@pytest.mark.parametrize("axis", [0, 2, -3])
def test_cosine_axis_out_of_range_when_called(rng, axis):
    y = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match=rf"axis of CosineSimilarity must be one of the axes 1..1 .*got {axis}"):
        CosineSimilarity(axis=axis)(y, y)


def test_poisson_refuses_negative_targets():
    with pytest.raises(ValueError, match=r"y_true of Poisson must be counts >= 0, got a minimum of -1.0"):
        Poisson()(np.ones((2, 1)), np.array([[1.0], [-1.0]]))


def test_kld_refuses_targets_outside_zero_one():
    with pytest.raises(ValueError, match=r"y_true of KLDivergence must be probabilities in \[0, 1\]"):
        KLDivergence()(np.full((2, 2), 0.5), np.array([[1.5, -0.5], [0.5, 0.5]]))


@pytest.mark.parametrize("cls", list({c for c in CASES.values() if isinstance(c, type)}), ids=lambda c: c.__name__)
def test_wrong_target_shape(rng, cls):
    with pytest.raises(ValueError, match=r"y_true must have the shape of y_pred \(4, 3\), got \(4, 2\)"):
        cls()(rng.uniform(0.1, 1, (4, 3)), np.ones((4, 2)))


def test_categorical_hinge_needs_rows():
    with pytest.raises(ValueError, match=r"y_pred of CategoricalHinge must have shape \(N, ..., classes\)"):
        CategoricalHinge()(np.zeros(4), np.zeros(4))


@pytest.mark.parametrize("cls", [CategoricalHinge, CosineSimilarity])
def test_row_losses_refuse_weights_over_the_vector_axis(rng, cls):
    y = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match=rf"sample_weight of {cls.__name__} "):
        cls().forward(y, y, sample_weight=np.ones((4, 3)))
