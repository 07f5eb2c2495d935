"""Metrics against scikit-learn, streamed in batches with a ragged last batch (103 samples by 25)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from neuro import metrics

skm = pytest.importorskip("sklearn.metrics")

N, C, BATCH = 103, 5, 25


def _stream(metric, y_pred, y_true, batch=BATCH):
    metric.reset()
    for i in range(0, len(y_pred), batch):
        metric.update(y_pred[i : i + batch], y_true[i : i + batch])
    return metric.result()


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def multiclass(rng):
    """Probabilities (N, C), integer targets, one-hot targets; predictions correlated with targets."""
    y = rng.integers(0, C, N)
    z = rng.standard_normal((N, C))
    z[np.arange(N), y] += 1.0
    probs = _softmax(z).astype(np.float32)
    return probs, y, np.eye(C, dtype=np.float32)[y]


@pytest.fixture
def binary(rng):
    """A single sigmoid output (N, 1) and 0/1 targets."""
    y = rng.integers(0, 2, N)
    p = 1 / (1 + np.exp(-(rng.standard_normal(N) + (2 * y - 1) * 0.7)))
    return p.reshape(N, 1), y


# -- classification ------------------------------------------------------------------------------


@pytest.mark.parametrize("targets", ["ids", "onehot"])
def test_accuracy_multiclass(multiclass, targets):
    probs, y, onehot = multiclass
    y_true = y if targets == "ids" else onehot
    expected = skm.accuracy_score(y, probs.argmax(1))
    assert _stream(metrics.Accuracy(), probs, y_true) == pytest.approx(expected, abs=1e-15)
    assert metrics.accuracy(probs, y_true) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("target_shape", ["(N,)", "(N,1)", "float"])
def test_accuracy_single_sigmoid(binary, target_shape):
    p, y = binary
    y_true = {"(N,)": y, "(N,1)": y.reshape(N, 1), "float": y.astype(np.float32)}[target_shape]
    expected = skm.accuracy_score(y, (p[:, 0] >= 0.5).astype(int))
    assert _stream(metrics.Accuracy(), p, y_true) == pytest.approx(expected, abs=1e-15)
    assert metrics.accuracy(p[:, 0], y) == pytest.approx(expected, abs=1e-15)  # (N,) outputs


def test_accuracy_threshold_is_inclusive():
    assert metrics.accuracy(np.array([[0.5], [0.49]]), np.array([1, 0])) == 1.0


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("targets", ["ids", "onehot"])
def test_top_k_accuracy(multiclass, k, targets):
    probs, y, onehot = multiclass
    y_true = y if targets == "ids" else onehot
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns that k >= C is trivial
        expected = skm.top_k_accuracy_score(y, probs, k=k, labels=np.arange(C))
    assert _stream(metrics.TopKAccuracy(k), probs, y_true) == pytest.approx(expected, abs=1e-15)
    assert metrics.top_k_accuracy(probs, y_true, k=k) == pytest.approx(expected, abs=1e-15)


def test_top_k_single_sigmoid(binary):
    p, y = binary
    assert metrics.top_k_accuracy(p, y, k=1) == pytest.approx(metrics.accuracy(p, y))
    assert metrics.top_k_accuracy(p, y, k=2) == 1.0


def test_top_k_ties_count_as_hits():
    scores = np.array([[0.2, 0.4, 0.4], [0.5, 0.5, 0.0]])
    assert metrics.top_k_accuracy(scores, np.array([1, 1]), k=1) == 1.0
    assert metrics.top_k_accuracy(scores, np.array([0, 0]), k=1) == 0.5


def _sk_prf(y, pred, average="macro"):
    return {
        "precision": skm.precision_score(y, pred, average=average, zero_division=0),
        "recall": skm.recall_score(y, pred, average=average, zero_division=0),
        "f1_score": skm.f1_score(y, pred, average=average, zero_division=0),
    }


PRF = {
    "precision": (metrics.Precision, metrics.precision),
    "recall": (metrics.Recall, metrics.recall),
    # f1_score shares scikit-learn's name and so takes its order (y_true, y_pred)
    "f1_score": (metrics.F1Score, lambda y_pred, y_true: metrics.f1_score(y_true, y_pred)),
}


@pytest.mark.parametrize("name", sorted(PRF))
@pytest.mark.parametrize("targets", ["ids", "onehot"])
def test_precision_recall_f1_multiclass(multiclass, name, targets):
    probs, y, onehot = multiclass
    y_true = y if targets == "ids" else onehot
    expected = _sk_prf(y, probs.argmax(1))[name]
    cls, fn = PRF[name]
    assert _stream(cls(), probs, y_true) == pytest.approx(expected, rel=1e-12)
    assert fn(probs, y_true) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", sorted(PRF))
def test_precision_recall_f1_single_sigmoid(binary, name):
    """Two classes: class 1's value, as scikit-learn's default (average="binary") and Keras's Precision and
    Recall of a sigmoid output (it was the macro mean over both classes); the macro mean when asked."""
    p, y = binary
    pred = (p[:, 0] >= 0.5).astype(int)
    cls, fn = PRF[name]
    expected = _sk_prf(y, pred, "binary")[name]
    assert expected != pytest.approx(_sk_prf(y, pred)[name])
    assert _stream(cls(), p, y) == pytest.approx(expected, rel=1e-12)
    assert fn(p, y) == pytest.approx(expected, rel=1e-12)
    assert _stream(cls("binary"), p, y) == pytest.approx(expected, rel=1e-12)
    assert _stream(cls("macro"), p, y) == pytest.approx(_sk_prf(y, pred)[name], rel=1e-12)
    two = np.eye(2)[pred] * 0.8 + 0.1  # a two-class softmax output: the same
    assert _stream(cls(), two, y) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match=r"average='binary' needs two classes, got 3; use average='macro'"):
        _stream(cls("binary"), np.eye(3)[pred], y)
    with pytest.raises(ValueError, match=r"average must be one of \['auto', 'binary', 'macro'\], got 'micro'"):
        cls("micro")


@pytest.mark.parametrize("name", sorted(PRF))
def test_precision_recall_f1_with_absent_classes(rng, name):
    # 7 outputs: class 6 never occurs, class 5 is predicted but never true, class 4 is true but
    # never predicted (zero_division=0 cases); averages run over the classes that occur.
    n_out = 7
    y = rng.integers(0, 5, N)
    z = rng.standard_normal((N, n_out))
    z[:, 4] = -10.0
    z[:, 6] = -10.0
    z[np.arange(N), y] += 0.8
    z[:10, 5] = 10.0
    pred = z.argmax(1)
    assert 4 not in pred and 5 in pred and 5 not in y and 6 not in pred and 6 not in y
    expected = _sk_prf(y, pred)[name]
    got = _stream(PRF[name][0](), z, y)
    assert got == pytest.approx(expected, rel=1e-12)
    assert 0 < got < 1


def test_prf_perfect_and_empty():
    y = np.array([0, 1, 2, 1])
    scores = np.eye(3)[y]
    assert metrics.precision(scores, y) == metrics.recall(scores, y) == metrics.f1_score(y, scores)
    assert metrics.f1_score(y, scores) == 1.0
    assert metrics.Precision().result() == 0.0


@pytest.mark.parametrize("targets", ["ids", "onehot"])
def test_confusion_matrix(multiclass, targets):
    probs, y, onehot = multiclass
    y_true = y if targets == "ids" else onehot
    expected = skm.confusion_matrix(y, probs.argmax(1), labels=np.arange(C))
    got = metrics.confusion_matrix(y_true, probs)
    assert got.shape == (C, C) and got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    m = metrics.get("precision")
    _stream(m, probs, y_true)
    np.testing.assert_array_equal(m.matrix, expected)


def test_confusion_matrix_single_sigmoid_and_size_from_outputs(binary):
    p, y = binary
    expected = skm.confusion_matrix(y, (p[:, 0] >= 0.5).astype(int), labels=[0, 1])
    np.testing.assert_array_equal(metrics.confusion_matrix(y, p), expected)
    # classes that never occur still get their row and column
    got = metrics.confusion_matrix(np.array([0, 1, 1]), np.eye(4)[[0, 0, 1]])
    np.testing.assert_array_equal(got, [[1, 0, 0, 0], [1, 1, 0, 0], [0] * 4, [0] * 4])


# -- regression --------------------------------------------------------------------------------


@pytest.fixture(params=["single", "single_column", "multi"])
def regression(request, rng):
    if request.param == "multi":
        y = rng.standard_normal((N, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -2.0]
        return y + rng.standard_normal((N, 3)) * 0.5, y, request.param
    y = rng.standard_normal(N) * 3 + 1
    p = y + rng.standard_normal(N)
    if request.param == "single_column":
        return p.reshape(N, 1).astype(np.float32), y, request.param  # (N, 1) vs (N,)
    return p, y, request.param


def test_mae_mse_rmse_r2(regression):
    p, y, kind = regression
    p64 = np.asarray(p, dtype=np.float64).reshape(y.shape)
    mse = skm.mean_squared_error(y, p64)
    expected = {
        metrics.MeanAbsoluteError: skm.mean_absolute_error(y, p64),
        metrics.MeanSquaredError: mse,
        metrics.RootMeanSquaredError: math.sqrt(mse),
        metrics.R2Score: skm.r2_score(y, p64),
    }
    for cls, value in expected.items():
        assert _stream(cls(), p, y) == pytest.approx(value, rel=1e-10), cls.__name__
    if kind != "multi":  # one output: sqrt(MSE) is also sklearn's RMSE
        assert metrics.root_mean_squared_error(y, p) == pytest.approx(
            skm.root_mean_squared_error(y, p64), rel=1e-10
        )
    # the functions named as scikit-learn's take its order (y_true, y_pred)
    assert metrics.mean_absolute_error(y, p) == pytest.approx(expected[metrics.MeanAbsoluteError])
    assert metrics.mean_squared_error(y, p) == pytest.approx(mse)
    assert metrics.r2_score(y, p) == pytest.approx(expected[metrics.R2Score], rel=1e-10)
    assert metrics.r2_score(y, p) != pytest.approx(metrics.r2_score(p64, y), rel=1e-10)  # the order matters


def test_r2_streaming_is_stable_with_a_large_offset(rng):
    y = 1e8 + rng.standard_normal((N, 2))
    p = y + 0.3 * rng.standard_normal((N, 2))
    assert _stream(metrics.R2Score(), p, y, batch=7) == pytest.approx(
        skm.r2_score(y - 1e8, p - 1e8), rel=1e-6
    )


def test_r2_constant_target_column_like_sklearn(rng):
    y = np.column_stack([np.full(N, 2.0), rng.standard_normal(N), np.full(N, -1.0)])
    p = y + np.column_stack([np.zeros(N), 0.1 * rng.standard_normal(N), np.full(N, 0.5)])
    assert _stream(metrics.R2Score(), p, y) == pytest.approx(skm.r2_score(y, p), rel=1e-12)


def test_r2_needs_two_samples():
    assert math.isnan(metrics.r2_score(np.array([2.0]), np.array([1.0])))
    assert math.isnan(metrics.R2Score().result())


def test_regression_metrics_do_not_modify_inputs(rng):
    p, y = rng.standard_normal((10, 2)), rng.standard_normal((10, 2))
    p0, y0 = p.copy(), y.copy()
    for name in ("mae", "mse", "rmse", "r2"):
        _stream(metrics.get(name), p, y, batch=3)
    np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(y, y0)


def test_reset_forgets(multiclass):
    probs, y, _ = multiclass
    m = metrics.Accuracy()
    m.update(probs, (y + 1) % C)
    m.reset()
    m.update(probs, y)
    assert m.result() == pytest.approx(metrics.accuracy(probs, y))


# -- lookup and names -----------------------------------------------------------------------------

NAMES = {
    "accuracy": (metrics.Accuracy, "accuracy"),
    "acc": (metrics.Accuracy, "accuracy"),
    "top_k_accuracy": (metrics.TopKAccuracy, "top5_accuracy"),
    "top_k": (metrics.TopKAccuracy, "top5_accuracy"),
    "top3": (metrics.TopKAccuracy, "top3_accuracy"),
    "Top2_Accuracy": (metrics.TopKAccuracy, "top2_accuracy"),
    "precision": (metrics.Precision, "precision"),
    "recall": (metrics.Recall, "recall"),
    "f1": (metrics.F1Score, "f1_score"),
    "f1_score": (metrics.F1Score, "f1_score"),
    "mae": (metrics.MeanAbsoluteError, "mae"),
    "mean_absolute_error": (metrics.MeanAbsoluteError, "mae"),
    "mse": (metrics.MeanSquaredError, "mse"),
    "mean_squared_error": (metrics.MeanSquaredError, "mse"),
    "rmse": (metrics.RootMeanSquaredError, "rmse"),
    "root_mean_squared_error": (metrics.RootMeanSquaredError, "rmse"),
    "r2": (metrics.R2Score, "r2"),
    "r2_score": (metrics.R2Score, "r2"),
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_get_by_name_gives_fresh_objects(name):
    cls, key = NAMES[name]
    a, b = metrics.get(name), metrics.get(name)
    assert type(a) is cls and a is not b
    assert a.name == key
    assert type(metrics.get(a.name)) is cls and metrics.get(a.name).name == key
    assert metrics.get(a) is a


def test_get_rejects_unknown():
    with pytest.raises(ValueError, match="metric must be one of .*got 'not_a_metric'"):
        metrics.get("not_a_metric")
    with pytest.raises(ValueError, match="metric must be one of"):
        metrics.get("top0")
    with pytest.raises(TypeError, match="metric must be a name or a Metric, got int"):
        metrics.get(3)


# -- bad arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "5"])
def test_top_k_bad_k(k):
    with pytest.raises(ValueError, match=r"^k must be a positive integer, got "):
        metrics.TopKAccuracy(k)


@pytest.mark.parametrize(
    ("y_pred", "y_true", "match"),
    [
        (np.eye(3), np.array([0, 1, 3]), r"^y_true class ids must be in \[0, 3\)"),
        (np.eye(3), np.array([0, -1, 2]), r"^y_true class ids must be in \[0, 3\)"),
        (np.eye(3), np.array([0, 1]), r"^y_true must have the same number of samples"),
        (np.eye(3), np.array([0.0, 1.5, 2.0]), r"^y_true must hold integer class ids"),
        (np.eye(3), np.ones((3, 2)), r"^y_true must be one-hot rows of width 3"),
        (np.ones((3, 1)), np.ones((3, 2)), r"^y_true must hold one label per sample"),
    ],
)
def test_bad_classification_targets(y_pred, y_true, match):
    calls = (
        lambda: metrics.accuracy(y_pred, y_true),
        lambda: metrics.f1_score(y_true, y_pred),  # scikit-learn's order
        lambda: metrics.confusion_matrix(y_true, y_pred),  # scikit-learn's order
    )
    for call in calls:
        with pytest.raises(ValueError, match=match):
            call()


def test_class_count_must_not_change_between_batches():
    m = metrics.Recall()
    m.update(np.eye(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"^y_pred must have 3 classes"):
        m.update(np.eye(4), np.array([0, 1, 2, 3]))


@pytest.mark.parametrize("name", ["mae", "mse", "rmse", "r2"])
def test_bad_regression_shapes(name):
    with pytest.raises(ValueError, match=r"^y_true must have the shape of y_pred"):
        metrics.get(name)(np.ones((4, 2)), np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"^y_true must have the shape of y_pred"):
        metrics.get(name)(np.ones(4), np.ones(5))
