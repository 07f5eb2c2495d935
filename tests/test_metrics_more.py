"""AUC (ROC and PR) against scikit-learn in float64, ties and weights included; streaming in batches and merging
over processes equal to one pass; degenerate sets; the strict device; Keras's metric names
(``sparse_categorical_accuracy``, ``categorical_accuracy``, ``binary_accuracy``, ``auc``); bad input."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import neuro
from neuro import Dense, Network, backend, metrics

skm = pytest.importorskip("sklearn.metrics")

N = 257
CURVES = {"ROC": skm.roc_auc_score, "PR": skm.average_precision_score}


def _sk(curve, y, s, w=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns on one-class sets
        return CURVES[curve](y, s, sample_weight=w)


def _scores(rng, n=N, ties=False):
    """Scores correlated with 0/1 labels; with ties, rounded to 1 decimal (about 30 distinct values)."""
    y = rng.integers(0, 2, n)
    s = rng.standard_normal(n) + 0.8 * y
    return (np.round(s, 1) if ties else s), y


def _auc(curve, s, y, w=None, batch=None):
    m = metrics.AUC(curve)
    if batch is None:
        m.update(s, y, w)
    else:
        for i in range(0, len(s), batch):
            m.update(s[i : i + batch], y[i : i + batch], None if w is None else w[i : i + batch])
    return m.result()


# -- against scikit-learn ---------------------------------------------------------------------------------
@pytest.mark.parametrize("curve", list(CURVES))
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weights"])
def test_matches_sklearn(rng, curve, ties, weighted):
    s, y = _scores(rng, ties=ties)
    w = rng.uniform(0.0, 2.0, N) if weighted else None
    if weighted:
        w[::9] = 0.0  # zero weights leave their samples out
    got = _auc(curve, s, y, w)
    assert got == pytest.approx(_sk(curve, y, s, w), rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("curve", list(CURVES))
def test_all_tied_and_perfect_rankings(curve):
    y = np.array([0, 1, 0, 1, 1, 0])
    for s in (np.full(6, 0.3), y * 1.0, 1.0 - y, np.array([0.1, 0.9, 0.1, 0.9, 0.5, 0.5])):
        assert _auc(curve, s, y) == pytest.approx(_sk(curve, y, s), rel=1e-15)
    assert _auc("ROC", np.full(6, 0.3), y) == 0.5


@pytest.mark.parametrize("curve", list(CURVES))
def test_shapes_and_label_forms(rng, curve):
    s, y = _scores(rng)
    want = _sk(curve, y, s)
    for yy in (y, y.reshape(-1, 1), y.astype(np.float64), 2.0 * y - 1.0, np.where(y == 1, 0.8, 0.2)):
        assert _auc(curve, s.reshape(-1, 1), yy) == pytest.approx(want, rel=1e-15)
        assert _auc(curve, s, yy.reshape(-1)) == pytest.approx(want, rel=1e-15)


@pytest.mark.parametrize("curve", list(CURVES))
def test_several_outputs_are_pooled_as_micro_average(rng, curve):
    ids = rng.integers(0, 4, 60)
    onehot = np.eye(4)[ids]
    s = rng.standard_normal((60, 4)) + onehot
    want = CURVES[curve](onehot, s, average="micro")
    assert _auc(curve, s, onehot) == pytest.approx(want, rel=1e-13)
    assert _auc(curve, s, ids) == pytest.approx(want, rel=1e-13)  # class ids for (N, C) scores
    w = rng.uniform(0.5, 1.5, 60)
    assert _auc(curve, s, onehot, w) == pytest.approx(
        CURVES[curve](onehot, s, average="micro", sample_weight=w), rel=1e-13
    )


def test_sequence_outputs_with_a_mask(rng):
    s = rng.standard_normal((5, 7, 3))
    y = (rng.random((5, 7, 3)) < 0.4).astype(np.float64)
    mask = (rng.random((5, 7)) < 0.7).astype(np.float64)
    keep = np.repeat(mask.reshape(-1), 3) > 0
    for curve in CURVES:
        assert _auc(curve, s, y, mask) == pytest.approx(
            _sk(curve, y.reshape(-1)[keep], s.reshape(-1)[keep]), rel=1e-13
        )


def test_plain_functions_take_sklearns_order(rng):
    s, y = _scores(rng, ties=True)
    w = rng.uniform(0.1, 1.0, N)
    assert metrics.roc_auc_score(y, s) == pytest.approx(skm.roc_auc_score(y, s), rel=1e-15)
    assert metrics.average_precision_score(y, s, w) == pytest.approx(
        skm.average_precision_score(y, s, sample_weight=w), rel=1e-13
    )


# -- streaming and merging ----------------------------------------------------------------------------------
@pytest.mark.parametrize("curve", list(CURVES))
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weights"])
def test_batches_equal_one_pass_exactly(rng, curve, weighted):
    s, y = _scores(rng, ties=True)
    w = rng.uniform(0.0, 2.0, N) if weighted else None
    one = _auc(curve, s, y, w)
    for batch in (1, 25, 100, N):
        assert _auc(curve, s, y, w, batch=batch) == one


@pytest.mark.parametrize("curve", list(CURVES))
def test_merge_of_rank_states_equals_one_pass(rng, curve):
    s, y = _scores(rng, ties=True)
    w = rng.uniform(0.1, 2.0, N)
    parts = [slice(0, 90), slice(90, 90), slice(90, 200), slice(200, N)]
    ranks = []
    for k, part in enumerate(parts):
        m = metrics.AUC(curve)
        if part.start != part.stop:  # one rank saw nothing
            m.update(s[part], y[part], w[part] if k != 2 else None)  # one rank gave no weights
        ranks.append(m)
    states = [m.state() for m in ranks]
    assert states[1] is None
    merged = ranks[0].merge(copy.deepcopy(states))
    w_all = w.copy()
    w_all[90:200] = 1.0
    assert merged.result() == _auc(curve, s, y, w_all)
    assert ranks[0].result() == _auc(curve, s[:90], y[:90], w[:90])  # merge leaves the metric as it was
    again = merged.merge([merged.state()])
    assert again.result() == merged.result()


def test_reset_and_fresh_metric_are_nan():
    m = metrics.AUC()
    assert np.isnan(m.result()) and m.state() is None
    m.update(np.array([0.2, 0.8]), np.array([0, 1]))
    assert m.result() == 1.0
    m.reset()
    assert np.isnan(m.result())


def test_caller_arrays_can_change_after_update():
    s, y = np.array([0.1, 0.9, 0.4]), np.array([0, 1, 1])
    m = metrics.AUC()
    m.update(s, y)
    s[:] = [0.9, 0.1, 0.0]
    y[:] = 0
    assert m.result() == 1.0


# -- degenerate sets ------------------------------------------------------------------------------------------
def test_one_class_only():
    s = np.array([0.1, 0.5, 0.7])
    for y in (np.zeros(3), np.ones(3)):
        assert np.isnan(_auc("ROC", s, y)) and np.isnan(_sk("ROC", y, s))
        assert _auc("PR", s, y) == _sk("PR", y, s)  # 0.0 without a positive, 1.0 with only positives
    assert _auc("PR", s, np.zeros(3)) == 0.0 and _auc("PR", s, np.ones(3)) == 1.0


def test_all_weights_zero_is_nan():
    m = metrics.AUC("PR")
    m.update(np.array([0.1, 0.5]), np.array([0, 1]), np.zeros(2))
    assert np.isnan(m.result())


def test_nan_scores_are_an_error():
    m = metrics.AUC()
    m.update(np.array([0.1, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"auc: y_pred holds NaN scores"):
        m.result()


def test_infinite_scores_rank_at_the_ends():
    s = np.array([-np.inf, 0.0, np.inf, 1.0])
    y = np.array([0, 0, 1, 1])
    assert _auc("ROC", s, y) == 1.0 and _auc("PR", s, y) == 1.0


# -- on the strict device: nothing read back before result() ---------------------------------------------------
def test_strict_device_reads_only_in_result(rng):
    strict = backend.get_device("strict")
    s, y = _scores(rng, ties=True)
    w = rng.uniform(0.1, 1.0, N)
    for curve in CURVES:
        m = metrics.AUC(curve)
        reads = backend.host_reads()
        for i in range(0, N, 50):
            m.update(*(backend.to_device(a[i : i + 50], strict) for a in (s, y, w)))
        assert backend.host_reads() == reads
        assert m.result() == _auc(curve, s, y, w)


# -- names ---------------------------------------------------------------------------------------------------
def test_auc_names():
    m = metrics.get("auc")
    assert type(m) is metrics.AUC and m.curve == "ROC" and m.name == "auc"
    assert type(metrics.get("AUC")) is metrics.AUC
    assert metrics.AUC("pr").name == "pr_auc" and metrics.AUC("PR").curve == "PR"
    assert metrics.AUC("PR", name="ap").name == "ap"
    assert repr(metrics.AUC("pr")) == "AUC(curve='PR')"


@pytest.mark.parametrize("curve", ["foo", "", "ROC-AUC", 1, None])
def test_auc_bad_curve(curve):
    with pytest.raises(ValueError, match=r"curve must be 'ROC' or 'PR', got"):
        metrics.AUC(curve=curve)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy),
        ("categorical_accuracy", metrics.CategoricalAccuracy),
        ("binary_accuracy", metrics.BinaryAccuracy),
        ("SparseCategoricalAccuracy", metrics.SparseCategoricalAccuracy),
    ],
)
def test_keras_accuracy_names(rng, name, cls):
    m = metrics.get(name)
    assert type(m) is cls and m.name == registry_key(name)
    if cls is metrics.BinaryAccuracy:
        p, t = rng.random((20, 3)), (rng.random((20, 3)) > 0.5) * 1.0
        assert m(p, t) == skm.accuracy_score(t.reshape(-1), (p >= 0.5).reshape(-1))
        return
    ids = rng.integers(0, 4, 30)
    p = rng.standard_normal((30, 4))
    want = skm.accuracy_score(ids, p.argmax(1))
    assert m(p, ids) == want and m(p, np.eye(4)[ids]) == want == metrics.accuracy(p, ids)


def registry_key(name):
    return {"SparseCategoricalAccuracy": "sparse_categorical_accuracy"}.get(name, name)


def test_keras_names_in_a_network(rng):
    x = rng.standard_normal((40, 3))
    y = (x[:, 0] + 0.3 * rng.standard_normal(40) > 0).astype(np.int64)
    net = Network((3,), "bce", "adam", seed=0)
    net.add(Dense(4, "tanh")).add(Dense(1, "sigmoid"))
    history = net.fit(x, y, batch_size=8, epochs=2, verbose=0, metrics=["auc", "binary_accuracy", AUC_PR()])
    assert {"auc", "binary_accuracy", "pr_auc"} <= set(history.history)
    res = net.evaluate(x, y, batch_size=7, metrics=["auc", metrics.AUC("PR")])
    p = np.asarray(net.predict(x)).reshape(-1)
    assert res["auc"] == pytest.approx(skm.roc_auc_score(y, p), rel=1e-6)
    assert res["pr_auc"] == pytest.approx(skm.average_precision_score(y, p), rel=1e-6)
    net = Network((3,), "sparse_categorical_crossentropy", "adam", seed=0)
    net.add(Dense(3, "softmax"))
    res = net.evaluate(x, y, metrics=["sparse_categorical_accuracy", "categorical_accuracy"])
    assert res["sparse_categorical_accuracy"] == res["categorical_accuracy"] == metrics.accuracy(net.predict(x), y)


def AUC_PR():  # noqa: N802 - reads as the class
    return metrics.AUC("PR")


# -- bad input -----------------------------------------------------------------------------------------------
def test_wrong_target_shape():
    with pytest.raises(ValueError, match=r"y_true must have the shape of y_pred \(4, 3\) \(or be class ids of"):
        metrics.AUC().update(np.zeros((4, 3)), np.zeros((4, 2)))


def test_wrong_weight_shape():
    with pytest.raises(ValueError, match=r"sample_weight must weigh the samples \(or steps\) of y_pred \(4, 1\)"):
        metrics.AUC().update(np.zeros(4), np.zeros(4), np.ones(3))


@pytest.mark.parametrize(("ids", "match"), [([0, 1, 3], r"class ids must be in \[0, 3\)"), ([0.5, 1, 2], "integer")])
def test_bad_class_ids(ids, match):
    with pytest.raises(ValueError, match=match):
        metrics.AUC().update(np.zeros((3, 3)), np.array(ids))


def test_predicted_class_ids_are_read_as_ids_as_scikit_learn_reads_them():
    """y_pred of class ids (predict_class's, scikit-learn's habit) was taken for one sigmoid output and
    thresholded at 0.5: class 2 became class 1, and accuracy 0.5 read 1.0."""
    from sklearn import metrics as sk

    y_true = np.array([0, 0, 1, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 0, 1, 2, 2, 1, 1, 2])
    assert metrics.accuracy(y_pred, y_true) == sk.accuracy_score(y_true, y_pred) == 0.5
    assert metrics.f1_score(y_true, y_pred) == pytest.approx(sk.f1_score(y_true, y_pred, average="macro"))
    assert metrics.precision(y_pred, y_true) == pytest.approx(sk.precision_score(y_true, y_pred, average="macro"))
    assert metrics.recall(y_pred, y_true) == pytest.approx(sk.recall_score(y_true, y_pred, average="macro"))
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred), sk.confusion_matrix(y_true, y_pred))
    onehot = np.eye(4)[y_true]  # one-hot targets give the number of classes
    np.testing.assert_array_equal(metrics.confusion_matrix(onehot, y_pred),
                                  sk.confusion_matrix(y_true, y_pred, labels=range(4)))
    binary = np.array([0, 1, 1, 0])
    assert metrics.accuracy(np.array([0, 1, 0, 0]), binary) == 0.75
    with pytest.raises(ValueError, match=r"y_pred class ids must be in \[0, 4\) like y_true's, got up to 5"):
        metrics.accuracy(np.array([0, 5, 1, 1, 1, 2, 2, 2]), onehot)


def test_a_single_output_takes_probabilities_and_0_1_labels_only():
    """Float class ids (or logits) in a single column, and labels other than 0/1 for one, were thresholded at
    0.5 into a plausible wrong number."""
    with pytest.raises(ValueError, match=r"y_pred of a single output must hold probabilities in \[0, 1\] \(class "
                                         r"1 when >= 0.5\), got values in \[0.0, 2.0\]; give predicted class "
                                         r"ids as integers"):
        metrics.accuracy(np.array([0.0, 1.0, 2.0]), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"y_true of a single output must hold 0/1 labels \(or probabilities\), "
                                         r"got values in \[0, 2\]"):
        metrics.accuracy(np.array([0.2, 0.9, 0.7]), np.array([0, 1, 2]))
    assert metrics.accuracy(np.array([[0.2], [0.9], [0.4]]), np.array([0.1, 0.8, 0.6])) == pytest.approx(2 / 3)


def test_metric_objects_read_network_outputs_and_leave_ids_to_the_functions():
    """The range checks of the functions over whole arrays stopped fit: metrics=["accuracy"] given to every
    output of a model with a regression head raised at the first batch (Keras computes it). A metric
    object fed predicted class ids batch by batch (their count of classes changing) is told where ids go."""
    import neuro

    rng = np.random.default_rng(0)
    inp = neuro.Input((4,))
    model = neuro.Model(inp, {"out": Dense(3, activation="softmax")(inp), "aux": Dense(1)(inp)},
                        loss=["crossentropy", "mse"], optimizer="sgd", seed=0)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    history = model.fit(x, {"out": rng.integers(0, 3, 16), "aux": 3 * rng.standard_normal(16)}, epochs=1,
                        metrics=["accuracy"], verbose=0)
    assert sorted(history.history) == ["aux_accuracy", "aux_loss", "loss", "out_accuracy", "out_loss"]
    m = metrics.F1Score()
    m.update(np.array([0, 1, 1]), np.array([0, 1, 0]))  # 0/1 ids: a single output's classes
    with pytest.raises(ValueError, match=r"y_pred holds class ids up to 2: a metric object reads network outputs "
                                         r"\(N, C\); give predicted class ids to the function of the same name"):
        m.update(np.array([0, 2, 1]), np.array([0, 2, 2]))
    assert metrics.f1_score(np.array([0, 1, 0, 0, 2, 2]), np.array([0, 1, 1, 0, 2, 2])) == pytest.approx(
        skm.f1_score([0, 1, 0, 0, 2, 2], [0, 1, 1, 0, 2, 2], average="macro"))


def test_sequence_outputs_read_ids_of_shape_n_t_1_and_keep_the_functions_checks():
    """A sigmoid per step is a single output per step: the functions read integer predictions as ids and
    refuse labels outside [0, 1] there too (they reported 1.0); class ids (N, T, 1) of a softmax sequence
    are ids, as (N, T) (they were read as one-hot rows and failed)."""
    ids = np.array([[0, 1], [2, 1]])
    pred = np.array([[[0], [2]], [[0], [1]]])  # two right of four (a class 2 read as class 1 gave 0.75)
    assert metrics.accuracy(pred, ids) == 0.5
    with pytest.raises(ValueError, match=r"y_true of a single output must hold 0/1 labels"):
        metrics.accuracy(np.full((2, 2, 1), 0.7), np.array([[0, 5], [1, 1]]))
    rng = np.random.default_rng(0)
    scores = rng.uniform(size=(3, 4, 5))
    labels = rng.integers(0, 5, (3, 4))
    want = metrics.accuracy(scores, labels)
    assert metrics.accuracy(scores, labels[..., None]) == want
    m = metrics.Accuracy()
    m.update(scores, labels[..., None])
    assert m.result() == want


def test_predicted_class_ids_on_a_device_are_ids_as_on_numpy():
    """The functions read integer y_pred as class ids only for NumPy arrays: ids on the strict device (and
    CuPy) were thresholded as one sigmoid output (accuracy 0.5 for 0.33) or refused."""
    strict = backend.get_device("strict")
    pred = np.array([0, 1, 0, 2, 0, 2, 2, 2, 1, 1, 1, 0])
    true = np.array([0, 2, 1, 2, 0, 1, 0, 1, 2, 1, 0, 2])
    want = [metrics.accuracy(pred, true), metrics.precision(pred, true), metrics.f1_score(true, pred)]
    for y in (true, backend.to_device(true, strict)):
        p = backend.to_device(pred, strict)
        assert [metrics.accuracy(p, y), metrics.precision(p, y), metrics.f1_score(y, p)] == want
    with pytest.raises(ValueError, match=r"y_true of a single output must hold 0/1 labels"):
        metrics.accuracy(backend.to_device(np.full(12, 0.7), strict), backend.to_device(true, strict))


# -- a helper's review against scikit-learn (this stop) ------------------------------------------------------
def _two_outputs(loss="crossentropy", width=3, act="softmax"):
    inp = neuro.Input((4,))
    a = neuro.Dense(width, activation=act, name="a")(inp)
    b = neuro.Dense(width, activation=act, name="b")(inp)
    return neuro.Model(inp, [a, b], loss=loss, optimizer="sgd", seed=0)


def test_a_metric_object_given_to_several_outputs_counts_each_output_with_its_settings():
    """One object once served every output (each key logged the pooled figure), or was replaced by a
    default one (Precision("macro") read as binary)."""
    from sklearn.metrics import precision_score

    from neuro.metrics import FunctionMetric, Precision

    model = _two_outputs()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    ya, yb = rng.integers(0, 3, 60), rng.integers(0, 3, 60)
    pa, pb = (p.argmax(axis=1) for p in model.predict(x))
    logs = model.evaluate(x, [ya, yb], metrics=[Precision("macro"), FunctionMetric(lambda t, p: (p.argmax(1) == t).astype(float), name="hit")])
    assert logs["a_precision"] == pytest.approx(precision_score(ya, pa, average="macro", zero_division=0))
    assert logs["b_precision"] == pytest.approx(precision_score(yb, pb, average="macro", zero_division=0))
    assert logs["a_hit"] == pytest.approx(np.mean(pa == ya)) and logs["b_hit"] == pytest.approx(np.mean(pb == yb))
    with pytest.raises(ValueError, match="metrics log two values under the name 'a_accuracy'"):
        model.evaluate(x, [ya, yb], metrics=["acc", "accuracy"])
    with pytest.raises(TypeError, match="metrics must be a name, a metric, a function, or a list or dict of them, got int 3"):
        model.evaluate(x, [ya, yb], metrics=3)


def test_binary_cross_entropy_outputs_read_every_value_as_keras_does():
    """precision and recall of a multi-label sigmoid output took the argmax of the multi-hot rows (0.21
    against Keras's 0.45); accuracy is binary accuracy there, as Keras's."""
    from sklearn.metrics import accuracy_score, precision_score, recall_score

    model = _two_outputs("binary_crossentropy", 5, "sigmoid")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((80, 4)).astype(np.float32)
    ys = [(rng.random((80, 5)) < 0.4).astype(np.float32) for _ in range(2)]
    logs = model.evaluate(x, ys, metrics=["accuracy", "precision", "recall"])
    objects = model.evaluate(x, ys, metrics=[metrics.Precision(), metrics.Recall()])  # as Keras's objects
    assert objects["a_precision"] == logs["a_precision"] and objects["b_recall"] == logs["b_recall"]
    for name, y, p in zip("ab", ys, model.predict(x), strict=True):
        hard = (p >= 0.5).ravel()
        assert logs[f"{name}_precision"] == pytest.approx(precision_score(y.ravel(), hard, zero_division=0))
        assert logs[f"{name}_recall"] == pytest.approx(recall_score(y.ravel(), hard, zero_division=0))
        assert logs[f"{name}_accuracy"] == pytest.approx(accuracy_score(y.ravel(), hard))


def test_per_step_sigmoid_outputs_take_per_sample_weights_in_every_metric():
    from sklearn.metrics import accuracy_score, precision_score

    net = neuro.Network((6,), "binary_crossentropy", "adam", seed=0)
    net.add(neuro.Embedding(10, 5)).add(neuro.SimpleRNN(8, return_sequences=True)).add(neuro.Dense(1, "sigmoid"))
    rng = np.random.default_rng(3)
    x, y, w = rng.integers(1, 10, (37, 6)), (rng.random((37, 6, 1)) < 0.5).astype(np.float32), rng.random(37)
    hard = (net.predict(x) >= 0.5).ravel()
    logs = net.evaluate(x, y, batch_size=8, metrics=["accuracy", "precision"], sample_weight=w)
    assert logs["accuracy"] == pytest.approx(accuracy_score(y.ravel(), hard, sample_weight=np.repeat(w, 6)), rel=1e-6)
    assert logs["precision"] == pytest.approx(precision_score(y.ravel(), hard, sample_weight=np.repeat(w, 6)), rel=1e-6)


def test_r2_takes_sample_weights_as_scikit_learn():
    """compile(metrics=["r2"]) once failed inside fit, after a step, for weighted samples."""
    from sklearn.metrics import r2_score as sk_r2

    from neuro.metrics import R2Score, r2_score

    rng = np.random.default_rng(0)
    y = rng.standard_normal((50, 3))
    p = y + rng.standard_normal((50, 3)) * 0.5
    w = rng.random(50)
    w[:5] = 0
    assert r2_score(y, p, w) == pytest.approx(sk_r2(y, p, sample_weight=w), rel=1e-12)
    m = R2Score()
    for s in range(0, 50, 7):
        m.update(p[s : s + 7], y[s : s + 7], sample_weight=w[s : s + 7])
    assert m.result() == pytest.approx(sk_r2(y, p, sample_weight=w), rel=1e-12)
    net = neuro.Network((3,), "mse", "sgd", seed=0)
    net.add(neuro.Dense(3))
    logs = net.evaluate(p, y, batch_size=16, metrics=["r2"], sample_weight=w)
    assert logs["r2"] == pytest.approx(sk_r2(y, net.predict(p), sample_weight=w), rel=1e-5)
    with pytest.raises(ValueError, match="sample_weight must hold finite weights >= 0"):
        r2_score(y, p, -w)


def test_top_k_counts_a_row_with_a_nan_score_as_a_miss_and_weights_must_fit():
    from neuro.metrics import MeanSquaredError, roc_auc_score, top_k_accuracy

    scores = np.full((4, 6), np.nan)
    assert top_k_accuracy(scores, np.array([0, 1, 2, 3]), k=5) == 0.0  # it was 1.0
    scores = np.eye(6)[:4]
    scores[0, 0] = np.nan
    assert top_k_accuracy(scores, np.array([0, 1, 2, 3]), k=1) == 0.75
    m = MeanSquaredError()
    with pytest.raises(ValueError, match=r"sample_weight must weigh the leading axes of y_pred \(6 samples\), got shape \(3,\)"):
        m.update(np.zeros((6, 1)), np.ones((6, 1)), sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight must hold finite weights >= 0"):
        roc_auc_score(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8]), sample_weight=np.array([1, -1, 1, 1]))


def test_metric_objects_per_output_and_the_callers_own_object():
    """A metric whose reset() empties its state in place shared it between outputs under shallow copies;
    the caller's Precision given to one sigmoid output was copied and never updated."""
    from neuro.metrics import Metric, Precision

    class MaxErr(Metric):
        name = "maxerr"

        def __init__(self):
            self.errs = []
            super().__init__()

        def reset(self):
            self.errs.clear()  # in place, as a Keras reset_state would

        def update(self, y_pred, y_true, sample_weight=None):
            self.errs.append(float(np.abs(np.asarray(y_pred) - np.asarray(y_true)).max()))

        def result(self):
            return max(self.errs) if self.errs else 0.0

    inp = neuro.Input((3,))
    two = neuro.Model(inp, [neuro.Dense(1)(inp), neuro.Dense(1)(inp)], loss="mse", seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 3)).astype(np.float32)
    ya, yb = np.zeros((20, 1), np.float32), np.full((20, 1), 100.0, np.float32)
    logs = two.evaluate(x, [ya, yb], metrics=[MaxErr()])
    pa, pb = two.predict(x)
    assert logs[f"{two.output_names[0]}_maxerr"] == pytest.approx(np.abs(pa - ya).max(), rel=1e-6)
    assert logs[f"{two.output_names[1]}_maxerr"] == pytest.approx(np.abs(pb - yb).max(), rel=1e-6)
    net = Network((3,), "binary_crossentropy", "sgd", seed=0)
    net.add(Dense(1, "sigmoid"))
    y = rng.integers(0, 2, 20)
    p = Precision()
    logs = net.evaluate(x, y, metrics=[p])
    assert p.result() == logs["precision"] == pytest.approx(skm.precision_score(y, net.predict(x)[:, 0] >= 0.5, zero_division=0))


def test_r2_of_a_sequence_output_pools_its_valid_steps_and_a_metric_object_keeps_its_settings():
    """R² of a masked sequence scored each step position apart (a position padded everywhere scored 1.0):
    -0.42 where scikit-learn over the valid steps gives -2.50. A Precision() used on a sigmoid-per-step
    output was left in multi_label mode and read a later softmax model wrongly."""
    from neuro.metrics import Precision, R2Score

    rng = np.random.default_rng(0)
    y = rng.standard_normal((6, 8, 2))
    p = y + rng.standard_normal((6, 8, 2))
    mask = np.zeros((6, 8), bool)
    mask[:, :3] = True
    m = R2Score()
    m.update(p, y, sample_weight=mask.astype(float))
    assert m.result() == pytest.approx(skm.r2_score(y[mask], p[mask]), rel=1e-12)
    m = R2Score()
    m.update(p, y)
    assert m.result() == pytest.approx(skm.r2_score(y.reshape(-1, 2), p.reshape(-1, 2)), rel=1e-12)
    seq = Network((5,), "binary_crossentropy", "adam", seed=0)
    seq.add(neuro.Embedding(9, 4)).add(neuro.SimpleRNN(6, return_sequences=True)).add(Dense(1, "sigmoid"))
    ids = rng.integers(1, 9, (10, 5))
    labels = rng.integers(0, 2, (10, 5, 1)).astype(np.float32)
    shared = Precision()
    logs = seq.evaluate(ids, labels, metrics=[shared])
    hard = seq.predict(ids).ravel() >= 0.5
    assert logs["precision"] == pytest.approx(skm.precision_score(labels.ravel(), hard, zero_division=0))
    assert shared.multi_label is False and shared.result() == logs["precision"]
    soft = Network((3,), "crossentropy", "sgd", seed=0)
    soft.add(Dense(3, "softmax"))
    x, t = rng.standard_normal((30, 3)).astype(np.float32), rng.integers(0, 3, 30)
    again = soft.evaluate(x, t, metrics=[shared])["precision"]
    assert again == pytest.approx(skm.precision_score(t, soft.predict(x).argmax(1), average="macro", zero_division=0))
