"""Losses against PyTorch (values and input gradients, float64), fused paths, finite differences, errors.

Convention: every loss sums over the outputs of a sample and averages over the N samples, so e.g.
MSE = ``mse_loss(reduction="sum") / N``; the categorical losses follow ``torch.nn.functional.cross_entropy``
(``reduction="mean"``, class weights, label smoothing, class ids or probability targets).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

import neuro
from neuro import functional, losses, registry
from neuro.activations import Softmax
from neuro.losses import (
    BinaryCrossEntropy,
    CrossEntropy,
    MeanAbsoluteError,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)

pytestmark = pytest.mark.usefixtures("float64")

RTOL = 1e-10
N, C = 7, 4
WEIGHTS = np.array([0.5, 2.0, 1.0, 3.0])


@contextlib.contextmanager
def strict_fp():
    """Every warning is an error; overflow, invalid operations and division by zero raise."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            yield


def softmax(x):
    """Softmax along the last axis (the output of ``neuro.functional.softmax`` without its context)."""
    return functional.softmax(x)[0]


def tt(torch, a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def value_and_grad(torch, fn, x):
    """PyTorch oracle: ``fn(tensor)`` and its gradient with respect to ``x``."""
    t = tt(torch, x, grad=True)
    out = fn(t)
    out.backward()
    return out.item(), t.grad.numpy()


def assert_close(actual, desired, rtol=RTOL):
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=0)


def make_targets(kind, rng, n=N, c=C):
    """Return ``(y_true for neuro, target for torch)`` of the given kind."""
    ids = rng.integers(0, c, size=n)
    ids[:c] = np.arange(c)  # every class present
    if kind == "ids":
        return ids, ids
    if kind == "float_ids":  # integral floats are accepted as ids
        return ids.astype(np.float64), ids
    if kind == "onehot":
        onehot = np.eye(c)[ids]
        return onehot, onehot
    if kind == "soft":
        soft = softmax(rng.standard_normal((n, c)))
        return soft, soft
    raise AssertionError(kind)


def torch_target(torch, target):
    target = np.asarray(target)
    if target.ndim == 1:
        return torch.tensor(target, dtype=torch.long)
    return tt(torch, target)


TARGET_KINDS = ["ids", "float_ids", "onehot", "soft"]
CONFIGS = [
    pytest.param(None, 0.0, id="plain"),
    pytest.param(WEIGHTS, 0.0, id="weights"),
    pytest.param(None, 0.1, id="smooth"),
    pytest.param(WEIGHTS, 0.2, id="weights+smooth"),
    pytest.param(WEIGHTS, 1.0, id="weights+smooth1"),
]


def torch_ce_kwargs(torch, weights, smoothing):
    return {"weight": None if weights is None else tt(torch, weights), "label_smoothing": smoothing}


# -- regression ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(N, 1), (N, 3)])
def test_mse_matches_torch(torch, rng, shape):
    pred, y = rng.standard_normal(shape), rng.standard_normal(shape)
    F = torch.nn.functional
    ref, ref_grad = value_and_grad(torch, lambda t: F.mse_loss(t, tt(torch, y), reduction="sum") / N, pred)
    loss = MeanSquaredError()
    assert_close(loss(pred, y), ref)
    assert_close(loss.backward(pred, y), ref_grad)
    total, denom = loss.terms(pred, y)
    assert np.ndim(total) == 0
    assert denom == N
    assert_close(float(total), ref * N)


@pytest.mark.parametrize("shape", [(N, 1), (N, 3)])
def test_mae_matches_torch(torch, rng, shape):
    pred, y = rng.standard_normal(shape), rng.standard_normal(shape)
    y.reshape(-1)[::4] = pred.reshape(-1)[::4]  # exact ties: sign(0) = 0, as PyTorch
    F = torch.nn.functional
    ref, ref_grad = value_and_grad(torch, lambda t: F.l1_loss(t, tt(torch, y), reduction="sum") / N, pred)
    loss = MeanAbsoluteError()
    grad = loss.backward(pred, y)
    assert_close(loss(pred, y), ref)
    assert_close(grad, ref_grad)
    assert np.all(grad.reshape(-1)[::4] == 0.0)


@pytest.mark.parametrize("loss", [MeanSquaredError(), MeanAbsoluteError(), BinaryCrossEntropy()])
def test_regression_accepts_flat_targets_for_single_output(rng, loss):
    pred = rng.uniform(0.1, 0.9, (N, 1))
    y = rng.uniform(0.0, 1.0, N)
    assert_close(loss(pred, y), loss(pred, y.reshape(-1, 1)))
    assert_close(loss.backward(pred, y), loss.backward(pred, y.reshape(-1, 1)))


# -- binary cross-entropy -------------------------------------------------------------------------------
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_bce_matches_torch(torch, rng, soft):
    pred = rng.uniform(0.02, 0.98, (N, 3))
    y = rng.uniform(0, 1, (N, 3)) if soft else rng.integers(0, 2, (N, 3)).astype(np.float64)
    F = torch.nn.functional

    def ref_fn(t):
        return F.binary_cross_entropy(t, tt(torch, y), reduction="sum") / N

    ref, ref_grad = value_and_grad(torch, ref_fn, pred)
    loss = BinaryCrossEntropy()
    assert_close(loss(pred, y), ref)
    assert_close(loss.backward(pred, y), ref_grad)


def test_bce_probabilities_zero_and_one(torch):
    """log is clamped at −100 as in PyTorch; gradients are finite thanks to the 1e-12 guard."""
    pred = np.array([[0.0, 1.0, 0.0, 1.0, 0.0, 1.0], [1e-50, 1.0 - 1e-16, 0.5, 0.0, 1.0, 0.3]])
    y = np.array([[0.0, 1.0, 1.0, 0.0, 0.3, 0.7], [1.0, 0.0, 1.0, 0.0, 1.0, 0.3]])
    F = torch.nn.functional
    n = len(pred)

    def ref_fn(t):
        return F.binary_cross_entropy(t, tt(torch, y), reduction="sum") / n

    ref, ref_grad = value_and_grad(torch, ref_fn, pred)
    loss = BinaryCrossEntropy()
    with strict_fp():
        value = loss(pred, y)
        grad = loss.backward(pred, y)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert_close(value, ref)
    # where the guard acts, neuro divides by exactly 1e-12 (documented); PyTorch by float32(1e-12)
    guarded = pred * (1 - pred) < 1e-12
    assert guarded.sum() == 10  # all but the 0.5 and 0.3 entries
    assert_close(grad[~guarded], ref_grad[~guarded])
    assert_close(grad[guarded], ref_grad[guarded], rtol=1e-8)
    assert_close(grad[guarded], ((pred - y) / (n * 1e-12))[guarded], rtol=1e-15)
    # p = 0 with y = 1 costs exactly the clamp: 100 (per entry, before the mean)
    assert_close(loss(np.array([[0.0]]), np.array([[1.0]])), 100.0, rtol=1e-14)
    assert loss(np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]])) == 0.0


@pytest.mark.parametrize("extreme", [False, True], ids=["random", "pm1e4"])
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_bce_logits_match_torch(torch, rng, soft, extreme):
    z = 3.0 * rng.standard_normal((N, 3))
    if extreme:
        z[:, 0] = 1e4 * np.where(np.arange(N) % 2, 1.0, -1.0)
        z[::3, 1] = -1e4
        z[1::3, 2] = 0.0
    y = rng.uniform(0, 1, (N, 3)) if soft else rng.integers(0, 2, (N, 3)).astype(np.float64)
    F = torch.nn.functional

    def ref_fn(t):
        return F.binary_cross_entropy_with_logits(t, tt(torch, y), reduction="sum") / N

    ref, ref_grad = value_and_grad(torch, ref_fn, z)
    loss = BinaryCrossEntropy()
    with strict_fp():
        value = loss.forward_logits(z, y)
        grad = loss.backward_logits(z, y)
        grad_given_pred = loss.backward_logits(z, y, loss.link(z))
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert_close(value, ref)
    assert_close(grad, ref_grad)
    np.testing.assert_array_equal(grad_given_pred, grad)


def test_bce_logits_agree_with_probabilities(rng):
    z = 2.0 * rng.standard_normal((N, 2))
    y = rng.integers(0, 2, (N, 2))
    loss = BinaryCrossEntropy()
    p = loss.link(z)
    assert_close(loss.forward_logits(z, y), loss(p, y))
    assert_close(loss.backward_logits(z, y), loss.backward(p, y) * p * (1 - p), rtol=1e-9)


# -- categorical --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("weights", "smoothing"), CONFIGS)
@pytest.mark.parametrize("kind", TARGET_KINDS)
def test_softmax_crossentropy_matches_torch(torch, rng, kind, weights, smoothing):
    z = 2.0 * rng.standard_normal((N, C))
    y, target = make_targets(kind, rng)
    kw = torch_ce_kwargs(torch, weights, smoothing)
    F = torch.nn.functional

    def ref_fn(t):
        return F.cross_entropy(t, torch_target(torch, target), **kw)

    ref, ref_grad = value_and_grad(torch, ref_fn, z)
    loss = SoftmaxCrossEntropy(class_weights=weights, label_smoothing=smoothing)
    assert_close(loss(z, y), ref)
    assert_close(loss.backward(z, y), ref_grad)
    # the fused path of CrossEntropy is the same function of the logits
    fused = CrossEntropy(class_weights=weights, label_smoothing=smoothing)
    assert_close(fused.forward_logits(z, y), ref)
    assert_close(fused.backward_logits(z, y), ref_grad)
    assert_close(fused.backward_logits(z, y, softmax(z)), ref_grad)


def torch_ce_on_probabilities(torch, logp, target, weights, smoothing):
    """−Σ T·log p / D with PyTorch's weight / label-smoothing semantics, without renormalising p.

    ``cross_entropy(log p)`` has the same value when the rows of p sum to 1, but its gradient with respect to
    p carries the extra term of log_softmax's renormalisation; this is the loss CrossEntropy defines.
    """
    F = torch.nn.functional
    n, c = logp.shape
    w = torch.ones(c, dtype=torch.float64) if weights is None else tt(torch, weights)
    target = np.asarray(target)
    if target.ndim == 1:
        ids = torch.tensor(target, dtype=torch.long)
        nll = F.nll_loss(logp, ids, weight=w)  # Σ w[t_i]·(−log p[i, t_i]) / Σ w[t_i]
        smooth = -(logp * w).sum() / w[ids].sum()
        return (1 - smoothing) * nll + smoothing / c * smooth
    y = (1 - smoothing) * tt(torch, target) + smoothing / c
    return -(logp * y * w).sum() / n


@pytest.mark.parametrize(("weights", "smoothing"), CONFIGS)
@pytest.mark.parametrize("kind", TARGET_KINDS)
def test_crossentropy_on_probabilities_matches_torch(torch, rng, kind, weights, smoothing):
    p = softmax(1.5 * rng.standard_normal((N, C)))
    y, target = make_targets(kind, rng)
    F = torch.nn.functional
    loss = CrossEntropy(class_weights=weights, label_smoothing=smoothing)
    value, grad = loss(p, y), loss.backward(p, y)
    # value: PyTorch's own cross_entropy on log p (log_softmax(log p) = log p as rows sum to 1)
    ce = F.cross_entropy(
        torch.log(tt(torch, p)), torch_target(torch, target), **torch_ce_kwargs(torch, weights, smoothing)
    )
    assert_close(value, ce.item())
    # gradient: autograd of −Σ T·log p / D written with nll_loss and PyTorch's smoothing semantics
    ref, ref_grad = value_and_grad(
        torch, lambda t: torch_ce_on_probabilities(torch, torch.log(t), target, weights, smoothing), p
    )
    assert_close(value, ref)
    assert_close(grad, ref_grad)


def test_weighted_ids_and_onehot_normalise_differently(rng):
    """PyTorch semantics: ids divide by Σ w[t_i], probability (one-hot) rows by N."""
    z = rng.standard_normal((N, C))
    ids, _ = make_targets("ids", rng)
    loss = SoftmaxCrossEntropy(class_weights=WEIGHTS)
    total_ids, denom_ids = loss.terms(z, ids)
    total_hot, denom_hot = loss.terms(z, np.eye(C)[ids])
    assert float(denom_ids) == pytest.approx(WEIGHTS[ids].sum(), rel=1e-15)
    assert denom_hot == N
    assert_close(float(total_ids), float(total_hot))


def test_crossentropy_extreme_logits(torch):
    z = np.array(
        [
            [1e4, -1e4, 0.0, -1e4],
            [-1e4, -1e4, -1e4, -1e4],
            [1e4, 1e4, -1e4, 0.0],
            [0.0, 1e4, -1e4, 5.0],
        ]
    )
    ids = np.array([0, 2, 3, 1])
    F = torch.nn.functional
    for weights, smoothing in [(None, 0.0), (WEIGHTS, 0.1)]:
        kw = torch_ce_kwargs(torch, weights, smoothing)
        for y, target in [(ids, ids), (np.eye(C)[ids], np.eye(C)[ids])]:
            ref, ref_grad = value_and_grad(
                torch, lambda t, tg=target, kw=kw: F.cross_entropy(t, torch_target(torch, tg), **kw), z
            )
            for loss_cls in (SoftmaxCrossEntropy, CrossEntropy):
                loss = loss_cls(class_weights=weights, label_smoothing=smoothing)
                with strict_fp():
                    value = loss.forward_logits(z, y)
                    grad = loss.backward_logits(z, y)
                assert np.isfinite(value) and np.all(np.isfinite(grad))
                assert_close(value, ref)
                assert_close(grad, ref_grad)
    # unsmoothed, a 2e4 margin against the target costs exactly 2e4
    assert SoftmaxCrossEntropy()(np.array([[-1e4, 1e4]]), np.array([0])) == 2e4


@pytest.mark.parametrize(("weights", "smoothing"), CONFIGS)
def test_crossentropy_probabilities_zero_and_one(torch, weights, smoothing):
    """p of exactly 0 and 1: log clamped at −100, gradient guarded by 1e-12; finite, no warnings."""
    p = np.array(
        [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.25, 0.25]]
    )
    ids = np.array([0, 2, 3, 1])  # row 1 gives probability 0 to its target
    F = torch.nn.functional
    kw = torch_ce_kwargs(torch, weights, smoothing)
    loss = CrossEntropy(class_weights=weights, label_smoothing=smoothing)
    for y in (ids, np.eye(C)[ids]):
        with strict_fp():
            value = loss(p, y)
            grad = loss.backward(p, y)
        assert np.isfinite(value) and np.all(np.isfinite(grad))
        # PyTorch on the clamped log: log_softmax(max(log p, −100)) = max(log p, −100) to ~1e-44
        clamped = torch.log(tt(torch, p)).clamp(min=-100.0)
        ref = F.cross_entropy(clamped, torch_target(torch, y), **kw).item()
        assert_close(value, ref)
        t, denom = loss.effective_targets(y, C, np.float64)
        assert_close(grad, -t / (denom * np.maximum(p, 1e-12)))
    # a certain, correct prediction costs nothing
    assert CrossEntropy()(np.array([[0.0, 1.0]]), np.array([1])) == 0.0
    assert_close(CrossEntropy()(np.array([[0.0, 1.0]]), np.array([0])), 100.0, rtol=1e-14)


@pytest.mark.parametrize(("weights", "smoothing"), CONFIGS)
@pytest.mark.parametrize("kind", ["ids", "onehot", "soft"])
def test_three_softmax_crossentropy_pairings_agree(rng, kind, weights, smoothing):
    """SoftmaxCrossEntropy(z) = CrossEntropy fused on z = CrossEntropy(softmax(z)) through Softmax."""
    z = 1.5 * rng.standard_normal((N, C))
    y, _ = make_targets(kind, rng)
    sce = SoftmaxCrossEntropy(class_weights=weights, label_smoothing=smoothing)
    ce = CrossEntropy(class_weights=weights, label_smoothing=smoothing)
    act = Softmax()
    p, ctx = act.forward(z.copy(), training=True)
    assert p.min() > 1e-4  # not tiny: the unfused chain divides by p

    values = [sce(z, y), ce.forward_logits(z, y), ce(p, y)]
    assert_close(values[1], values[0])
    assert_close(values[2], values[0])

    g_sce = sce.backward(z, y)
    g_fused = ce.backward_logits(z, y)
    g_chain = act.backward(ce.backward(p, y), ctx)
    assert_close(g_fused, g_sce)
    np.testing.assert_allclose(g_chain, g_sce, rtol=1e-9, atol=1e-13 * np.abs(g_sce).max())
    # and it is the design note's (Ŷ − Y)/m for unweighted, unsmoothed one-hot targets
    if kind == "onehot" and weights is None and smoothing == 0.0:
        assert_close(g_sce, (p - y) / N)


# -- finite differences ---------------------------------------------------------------------------------
def _well_conditioned(name, rng):
    """``(loss, x, y)``: probabilities bounded away from 0 and 1, no MAE ties."""
    if name == "mse":
        return MeanSquaredError(), rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    if name == "mae":
        x = rng.standard_normal((6, 3))
        return MeanAbsoluteError(), x, x + rng.choice([-1.0, 1.0], x.shape) * rng.uniform(0.1, 1, x.shape)
    if name == "bce":
        y = rng.uniform(0, 1, (6, 3))
        return BinaryCrossEntropy(), rng.uniform(0.1, 0.9, (6, 3)), y
    kind, cfg = name.split(":")[1:]
    weights, smoothing = {"plain": (None, 0.0), "ws": (WEIGHTS, 0.1)}[cfg]
    y, _ = make_targets(kind, rng, n=6)
    cls = CrossEntropy if name.startswith("ce") else SoftmaxCrossEntropy
    x = softmax(rng.standard_normal((6, C))) if cls is CrossEntropy else 2.0 * rng.standard_normal((6, C))
    return cls(class_weights=weights, label_smoothing=smoothing), x, y


GRADCHECK_CASES = ["mse", "mae", "bce"] + [
    f"{loss}:{kind}:{cfg}"
    for loss in ("ce", "sce")
    for kind in ("ids", "onehot", "soft")
    for cfg in ("plain", "ws")
]


@pytest.mark.parametrize("name", GRADCHECK_CASES)
def test_check_gradients(rng, name):
    loss, x, y = _well_conditioned(name, rng)
    report = neuro.check_gradients(loss, x, y)
    expected = {
        MeanSquaredError: {"y_pred"},
        MeanAbsoluteError: {"y_pred"},
        BinaryCrossEntropy: {"y_pred", "logits"},
        CrossEntropy: {"y_pred", "logits"},
        SoftmaxCrossEntropy: {"logits"},
    }[type(loss)]
    assert set(report.errors) == expected
    assert report.max_error < 1e-6, report


# -- bad input ------------------------------------------------------------------------------------------
CATEGORICAL = [CrossEntropy, SoftmaxCrossEntropy]


def _calls(loss, x, y):
    """Every entry point that reads the targets."""
    yield lambda: loss(x, y)
    yield lambda: loss.backward(x, y)
    yield lambda: loss.forward_logits(x, y)
    yield lambda: loss.backward_logits(x, y)


def _checked_calls(loss, x, y):
    """The entry points that check target values on the host (the user-facing values; ``terms`` and the
    gradients compute on the device and read nothing back, a network checks its targets before moving them)."""
    yield lambda: loss(x, y)
    yield lambda: loss.forward(x, y)
    yield lambda: loss.forward_logits(x, y)


@pytest.mark.parametrize("bad_ids", [[0, 1, 2, 4], [0, -1, 2, 3]], ids=["too_big", "negative"])
@pytest.mark.parametrize("cls", CATEGORICAL)
def test_class_ids_out_of_range(rng, cls, bad_ids):
    x = softmax(rng.standard_normal((4, C)))
    for call in _checked_calls(cls(), x, np.array(bad_ids)):
        with pytest.raises(ValueError, match="y_true"):
            call()


@pytest.mark.parametrize("cls", CATEGORICAL)
def test_non_integer_float_ids(rng, cls):
    x = softmax(rng.standard_normal((4, C)))
    for bad in (np.array([0.0, 1.5, 2.0, 3.0]), np.array([0.0, np.nan, 1.0, 2.0])):
        for call in _checked_calls(cls(), x, bad):
            with pytest.raises(TypeError, match="y_true"):
                call()


@pytest.mark.parametrize(
    "shape",
    [(4, C + 1), (4, C - 1), (4, C, 1), (3,), (5,), (1,), (3, C), (1, C)],
    ids=lambda s: "x".join(map(str, s)),
)
@pytest.mark.parametrize("cls", CATEGORICAL)
def test_wrong_target_shape(rng, cls, shape):
    x = softmax(rng.standard_normal((4, C)))
    y = np.zeros(shape, dtype=np.int64)  # valid ids / rows, only the shape is wrong
    for call in _calls(cls(), x, y):
        with pytest.raises(ValueError, match="y_true"):
            call()


@pytest.mark.parametrize("cls", [MeanSquaredError, MeanAbsoluteError, BinaryCrossEntropy])
def test_wrong_target_shape_regression(rng, cls):
    x = rng.uniform(0.1, 0.9, (4, 2))
    for y in (np.zeros((4, 3)), np.zeros(4), np.zeros((2, 2)), np.zeros((4, 2, 1))):
        with pytest.raises(ValueError, match="y_true"):
            cls()(x, y)
        with pytest.raises(ValueError, match="y_true"):
            cls().backward(x, y)


@pytest.mark.parametrize("smoothing", [-0.1, 1.5, float("nan")])
@pytest.mark.parametrize("cls", CATEGORICAL)
def test_label_smoothing_out_of_range(cls, smoothing):
    with pytest.raises(ValueError, match="label_smoothing"):
        cls(label_smoothing=smoothing)


@pytest.mark.parametrize("cls", CATEGORICAL)
def test_class_weights_wrong_length(rng, cls):
    x = softmax(rng.standard_normal((4, C)))
    y = np.array([0, 1, 2, 3])
    for call in _calls(cls(class_weights=[1.0, 2.0, 3.0]), x, y):
        with pytest.raises(ValueError, match="class_weights"):
            call()


@pytest.mark.parametrize("weights", [[[1.0, 2.0]], [1.0, -1.0], [1.0, np.inf]])
def test_class_weights_invalid(weights):
    with pytest.raises(ValueError, match="class_weights"):
        CrossEntropy(class_weights=weights)


def test_2d_predictions_required(rng):
    with pytest.raises(ValueError, match="y_pred"):
        CrossEntropy()(rng.uniform(0.1, 1, (2, 3, C)), np.zeros(2, dtype=int))


# -- get --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("mse", MeanSquaredError),
        ("MeanSquaredError", MeanSquaredError),
        ("mean_squared_error", MeanSquaredError),
        ("mae", MeanAbsoluteError),
        ("MeanAbsoluteError", MeanAbsoluteError),
        ("bce", BinaryCrossEntropy),
        ("binary_crossentropy", BinaryCrossEntropy),
        ("BinaryCrossEntropy", BinaryCrossEntropy),
        ("crossentropy", CrossEntropy),
        ("categorical_crossentropy", CrossEntropy),
        ("sparse_categorical_crossentropy", CrossEntropy),
        ("CrossEntropy", CrossEntropy),
        ("softmax_crossentropy", SoftmaxCrossEntropy),
        ("SoftmaxCrossEntropy", SoftmaxCrossEntropy),
    ],
)
def test_get_names(name, cls):
    assert type(losses.get(name)) is cls
    assert type(losses.get(cls)) is cls


def test_get_config_round_trip_and_instances():
    loss = SoftmaxCrossEntropy(class_weights=[1.0, 2.0], label_smoothing=0.25)
    spec = registry.serialize(loss)
    assert spec["class"] == "SoftmaxCrossEntropy"
    again = losses.get(spec)
    assert type(again) is SoftmaxCrossEntropy and again is not loss
    expected = {"class_weights": [1.0, 2.0], "label_smoothing": 0.25}
    assert loss.get_config() == expected
    assert again.get_config() == expected
    rebuilt = SoftmaxCrossEntropy.from_config(loss.get_config())
    assert type(rebuilt) is SoftmaxCrossEntropy and rebuilt.get_config() == expected
    assert losses.get(loss) is loss


def test_get_unknown_and_bad_type():
    with pytest.raises(ValueError, match=r"loss must be one of \[.*'CrossEntropy'.*\], got 'not_a_loss'"):
        losses.get("not_a_loss")
    with pytest.raises(TypeError, match="loss"):
        losses.get(3)


def test_all_zero_class_weights_give_zero_like_keras(torch):
    """Nothing weighs: the loss adds nothing and has no gradient, as Keras's (torch's mean over no items is
    NaN, and a NaN stopped a fit)."""
    from neuro.losses import SoftmaxCrossEntropy

    z = np.array([[1.0, 2.0, 0.5], [0.1, 0.2, 0.3]])
    y = np.array([0, 0])
    loss = SoftmaxCrossEntropy(class_weights=[0.0, 1.0, 1.0])
    assert loss.forward(z, y) == 0.0
    np.testing.assert_array_equal(loss.backward(z, y), np.zeros_like(z))
    ref = torch.nn.functional.cross_entropy(
        torch.tensor(z), torch.tensor(y), weight=torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
    )
    assert torch.isnan(ref)
