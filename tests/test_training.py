"""The training workflow: callbacks, validation split, initial epoch, class weights, learning curves, and
targets that do not fit the loss."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import neuro
from neuro.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from neuro.layers import Dense


def _net(seed=0, loss="softmax_crossentropy", out=3, optimizer=None):
    net = neuro.Network((4,), loss, optimizer or neuro.SGD(0.05), seed=seed)
    net.add(Dense(6, "tanh")).add(Dense(out, "softmax" if out > 1 else "sigmoid"))
    return net


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)


class Scripted(Callback):
    """Writes a chosen value into the epoch logs, so that monitors see a known sequence."""

    def __init__(self, values):
        self.values = values
        self.weights = {}

    def on_epoch_end(self, epoch, logs):
        logs["score"] = self.values[epoch]
        self.weights[epoch] = self.network.get_weights()


def test_early_stopping_stops_and_restores_the_best_epoch():
    x, y = _data()
    script = Scripted([5.0, 4.0, 4.5, 4.2, 3.0, 2.0])
    stop = EarlyStopping(monitor="score", mode="min", patience=2, restore_best_weights=True)
    history = _net().fit(x, y, epochs=6, verbose=0, callbacks=[script, stop])
    assert history.epoch == [0, 1, 2, 3]
    assert stop.stopped_epoch == 3 and stop.best_epoch == 1
    for a, b in zip(stop.network.get_weights(), script.weights[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_patience_counts_as_keras_counts():
    """Keras's EarlyStopping(patience=3) example: no improvement after the first epoch, 4 epochs run;
    ReduceLROnPlateau(patience=2) reduces at the end of the second epoch without improvement (both waited one
    epoch more than Keras)."""
    x, y = _data()
    stop = EarlyStopping(monitor="score", mode="min", patience=3)
    history = _net().fit(x, y, epochs=10, verbose=0, callbacks=[Scripted([1.0] * 10), stop])
    assert history.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 3
    for patience in (0, 1):
        stop = EarlyStopping(monitor="score", mode="min", patience=patience)
        assert _net().fit(x, y, epochs=10, verbose=0, callbacks=[Scripted([1.0] * 10), stop]).epoch == [0, 1]
    reduce = ReduceLROnPlateau(monitor="score", mode="min", factor=0.5, patience=2)
    history = _net().fit(x, y, epochs=5, verbose=0, callbacks=[Scripted([1.0] * 5), reduce])
    assert history["learning_rate"] == [0.05, 0.05, 0.05, 0.025, 0.025]


def test_auto_mode_reads_the_metrics_direction_and_asks_for_a_metric_of_the_users(tmp_path):
    """mode='auto' maximised every name but losses, mae, mse and rmse: EarlyStopping on a custom error
    (the training guide's max_error) stopped at once and restored the worst epoch."""
    from neuro.callbacks import _monitor_mode

    names = {"loss": "min", "val_loss": "min", "out_loss": "min", "val_mae": "min", "rmse": "min",
             "val_mse": "min", "accuracy": "max", "val_acc": "max", "top3_accuracy": "max", "val_auc": "max",
             "pr_auc": "max", "r2": "max", "val_f1_score": "max", "precision": "max", "recall": "max",
             "binary_accuracy": "max", "out_accuracy": "max", "val_out_rmse": "min"}
    for name, mode in names.items():
        assert _monitor_mode(name, "auto", ["out"]) == mode, name
    for name in ("val_max_error", "val_mape", "val_huber", "learning_rate"):
        assert _monitor_mode(name, "auto", ["out"]) is None
    assert _monitor_mode("val_max_error", "max") == "max"

    def max_error(y_true, y_pred):
        return float(np.abs(y_pred).max())  # any number the metric computes

    x, y = _data()
    for callback in (EarlyStopping(monitor="max_error"), ReduceLROnPlateau(monitor="max_error"),
                     ModelCheckpoint("never.h5", monitor="max_error", save_best_only=True)):
        with pytest.raises(ValueError, match=rf"{type(callback).__name__} cannot tell whether 'max_error' "
                                             r"should go down or up \(mode='auto' knows losses and neuro's "
                                             r"metrics\); give mode='min' or mode='max'"):
            _net().fit(x, y, epochs=2, verbose=0, metrics=[max_error], callbacks=[callback])
    stop = EarlyStopping(monitor="max_error", mode="min", patience=5)
    _net().fit(x, y, epochs=2, verbose=0, metrics=[max_error], callbacks=[stop])
    assert stop.best_epoch is not None
    # a metric object says its direction, whatever its name; ModelCheckpoint saving every epoch needs none
    from neuro.metrics import AUC, Accuracy

    class Balanced(Accuracy):
        name = "balanced"

    class Lowered(Accuracy):
        name = "lowered"
        greater_is_better = False

    for metric, mode in ((Balanced(), "max"), (AUC(name="roc"), "max"), (Lowered(), "min")):
        stop = EarlyStopping(monitor=f"val_{metric.name}", patience=5)
        _net().fit(x, y, epochs=1, verbose=0, metrics=[metric], validation_split=0.25, callbacks=[stop])
        assert stop.mode == mode, metric.name
    every = ModelCheckpoint(str(tmp_path / "e{epoch}.h5"), monitor="max_error")
    _net().fit(x, y, epochs=1, verbose=0, metrics=[max_error], callbacks=[every])
    assert len(every.saved) == 1


def test_early_stopping_on_a_missing_log_names_the_logged_values():
    x, y = _data()
    with pytest.raises(KeyError, match=r"monitor 'val_loss' is not among the logged values \['accuracy', 'loss'\]"):
        _net().fit(x, y, epochs=2, verbose=0, callbacks=[EarlyStopping()])


def test_model_checkpoint_saves_the_best_epochs_once_each(tmp_path):
    x, y = _data()
    script = Scripted([3.0, 2.0, 2.5, 1.0])
    check = ModelCheckpoint(
        tmp_path / "m-{epoch}-{score:.1f}.h5", monitor="score", mode="min", save_best_only=True
    )
    net = _net()
    net.fit(x, y, epochs=4, verbose=0, callbacks=[script, check])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["m-1-3.0.h5", "m-2-2.0.h5", "m-4-1.0.h5"]
    loaded = neuro.Network.load(tmp_path / "m-2-2.0.h5")
    for a, b in zip(loaded.get_weights(), script.weights[1], strict=True):
        np.testing.assert_array_equal(a, b)
    every = ModelCheckpoint(tmp_path / "e{epoch}.h5")
    _net().fit(x, y, epochs=2, verbose=0, callbacks=[every])
    assert every.saved == [str(tmp_path / "e1.h5"), str(tmp_path / "e2.h5")]


def test_reduce_lr_on_plateau_and_scheduler():
    x, y = _data()
    script = Scripted([1.0, 1.0, 1.0, 1.0, 0.5])
    reduce = ReduceLROnPlateau(monitor="score", mode="min", factor=0.5, patience=2)
    net = _net()
    history = net.fit(x, y, epochs=5, verbose=0, callbacks=[script, reduce])
    assert history["learning_rate"] == [0.05, 0.05, 0.05, 0.025, 0.025]
    net = _net()
    seen = []

    class Seen(Callback):
        def on_epoch_begin(self, epoch, logs):
            seen.append(self.network.optimizer.current_learning_rate())

    net.fit(x, y, epochs=3, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: 0.1 / (e + 1)), Seen()])
    assert seen == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_csv_logger(tmp_path):
    x, y = _data()
    path = tmp_path / "log.csv"
    history = _net().fit(x, y, epochs=2, verbose=0, validation_split=0.25, callbacks=[CSVLogger(path)])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [float(v) for v in rows[2][1:]] == [history[k][1] for k in rows[0][1:]]


def test_validation_split_takes_the_last_fraction():
    x, y = _data()
    net = _net()
    history = net.fit(x, y, epochs=2, verbose=0, validation_split=0.25)
    held = net.evaluate(x[-10:], y[-10:])
    assert history["val_loss"][-1] == pytest.approx(held["loss"], rel=1e-6)
    assert history["val_accuracy"][-1] == held["accuracy"]
    for bad in (1.0, -0.1, "0.2"):
        with pytest.raises(ValueError, match=r"validation_split must be a number in \[0, 1\)"):
            net.fit(x, y, validation_split=bad, verbose=0)
    with pytest.raises(ValueError, match="give validation_data or validation_split, not both"):
        net.fit(x, y, validation_split=0.5, validation_data=(x, y), verbose=0)


def test_initial_epoch_resumes_the_numbering():
    x, y = _data()
    history = _net().fit(x, y, epochs=5, initial_epoch=3, verbose=0)
    assert history.epoch == [3, 4]
    net = _net()
    before = net.get_weights()
    done = net.fit(x, y, epochs=2, initial_epoch=2, verbose=0)  # a finished run resumed: nothing to do, as Keras
    assert done.epoch == [] and net.optimizer.iterations == 0
    for a, b in zip(before, net.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_class_weight_is_the_weighted_loss():
    x, y = _data()
    weights = {0: 2.0, 2: 0.5}
    a = _net()
    b = neuro.Network((4,), neuro.SoftmaxCrossEntropy(class_weights=[2.0, 1.0, 0.5]), neuro.SGD(0.05), seed=0)
    b.add(Dense(6, "tanh")).add(Dense(3, "softmax"))
    ha = a.fit(x, y, epochs=2, batch_size=8, verbose=0, class_weight=weights, validation_data=(x, y))
    hb = b.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert ha["loss"] == hb["loss"]
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)
    assert ha["val_loss"][-1] == pytest.approx(a.evaluate(x, y)["loss"])  # validation is unweighted
    with pytest.raises(ValueError, match=r"class_weight must map class ids in \[0, 2\] to weights"):
        a.fit(x, y, class_weight={3: 1.0}, verbose=0)
    with pytest.raises(ValueError, match=r"class_weight needs a categorical loss \(CrossEntropy, "
                                         r"SoftmaxCrossEntropy\) or binary cross-entropy on one sigmoid output"):
        _net(loss="mse", out=3).fit(x, np.eye(3)[y], class_weight={0: 1.0}, verbose=0)
    with pytest.raises(ValueError, match=r"class_weight must map the labels 0 and 1 to weights, got \{2: 1.0\}"):
        _net(loss="bce", out=1).fit(x, y > 0, class_weight={2: 1.0}, verbose=0)
    with pytest.raises(ValueError, match=r"class_weight with binary cross-entropy needs one sigmoid output per "
                                         r"sample, got output shape \(3,\)"):
        _net(loss="bce", out=3).fit(x, np.eye(3)[y], class_weight={0: 1.0}, verbose=0)


def test_class_weight_trains_one_hot_rows_as_class_ids(float64):
    """fit's class_weight divided one-hot targets by m and class ids by Σ w[t_i]: the same labels trained
    differently (here by Σw/m = 2.4×); now both are the weighted mean Σ w[t_i]·l_i / Σ w[t_i]."""
    x, y = _data()
    weights = {0: 1.0, 1: 5.0, 2: 1.0}
    ids, rows = _net(), _net()
    h_ids = ids.fit(x, y, epochs=1, batch_size=32, verbose=0, class_weight=weights, shuffle=False)
    h_rows = rows.fit(x, np.eye(3)[y], epochs=1, batch_size=32, verbose=0, class_weight=weights, shuffle=False)
    assert h_rows["loss"][0] == pytest.approx(h_ids["loss"][0], rel=1e-12)
    for u, v in zip(ids.get_weights(), rows.get_weights(), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-15)
    plain = neuro.CrossEntropy(class_weights=[1.0, 5.0, 1.0])  # the loss alone keeps PyTorch's rule (m)
    assert plain.terms(np.full((2, 3), 1 / 3), np.eye(3)[[1, 1]])[1] == 2


def test_class_weight_of_a_binary_classifier_weighs_each_label(float64, torch):
    """Keras's habit: class_weight on one sigmoid output with binary cross-entropy (refused before, also
    through NeuroClassifier). Each sample weighs its label's weight; the loss is Σ wᵢ·lᵢ / Σ wᵢ, its step
    PyTorch's with those weights, and it equals sample_weight of the same weights."""
    x, _ = _data()
    y = (x[:, 0] > 0).astype(np.float64)
    sw = np.random.default_rng(3).uniform(0.5, 2, len(x))
    for out_activation, loss in (("sigmoid", "bce"), (None, neuro.BinaryCrossEntropy(from_logits=True))):
        net = neuro.Network((4,), loss, neuro.SGD(0.1), seed=0)
        net.add(Dense(1, out_activation))
        kernel, bias = (torch.tensor(a.copy(), requires_grad=True) for a in net.get_weights())
        history = net.fit(x, y, batch_size=40, epochs=1, verbose=0, class_weight={0: 0.5, 1: 3.0},
                          sample_weight=sw, shuffle=False)
        w = torch.tensor(np.where(y == 1, 3.0, 0.5) * sw)
        per = torch.nn.functional.binary_cross_entropy_with_logits(
            (torch.tensor(x, dtype=torch.float64) @ kernel + bias)[:, 0], torch.tensor(y), reduction="none")
        ref = (per * w).sum() / w.sum()
        ref.backward()
        assert history["loss"][0] == pytest.approx(ref.item(), rel=1e-12)
        np.testing.assert_allclose(net.get_weights()[0], (kernel - 0.1 * kernel.grad).detach().numpy(),
                                   rtol=1e-12, atol=1e-15)
        twin = neuro.Network((4,), loss, neuro.SGD(0.1), seed=0)
        twin.add(Dense(1, out_activation))
        twin.fit(x, y, batch_size=40, epochs=1, verbose=0, sample_weight=np.where(y == 1, 3.0, 0.5) * sw,
                 shuffle=False)
        for u, v in zip(net.get_weights(), twin.get_weights(), strict=True):
            np.testing.assert_array_equal(u, v)


def test_history_plot_has_one_panel_per_quantity(tmp_path):
    from PIL import Image

    x, y = _data()
    history = _net().fit(x, y, epochs=3, verbose=0, validation_split=0.25, metrics=["accuracy", "f1"])
    history.plot(tmp_path / "curves.png")
    with Image.open(tmp_path / "curves.png") as im:
        assert im.format == "PNG"
        assert im.size == (3 * 450, 350)  # loss, accuracy, f1_score; 4.5 × 3.5 inches at 100 dpi each
    with pytest.raises(ValueError, match="the history is empty"):
        neuro.History().plot(tmp_path / "empty.png")


def test_binary_cross_entropy_refuses_class_ids():
    x, _ = _data()
    labels = np.arange(len(x)) % 10
    net = _net(loss="binary_crossentropy", out=1)
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 1\] for binary cross-entropy, got values in \[0, 9\]"):
        net.fit(x, labels, verbose=0)
    with pytest.raises(ValueError, match="val_y must hold labels in"):
        net.fit(x, labels % 2, validation_data=(x, labels), verbose=0)


def test_targets_of_the_wrong_shape_are_refused():
    x, y = _data()
    with pytest.raises(ValueError, match=r"y class ids must be in \[0, 2\], got values in \[1, 5\]"):
        _net().fit(x, y * 2 + 1, verbose=0)
    with pytest.raises(ValueError, match=r"y must be class ids of shape \(N,\) or one-hot rows of shape \(N, 3\), got shape \(40, 4\)"):
        _net().fit(x, np.zeros((40, 4)), verbose=0)
    net = neuro.Network((4,), "mse", "sgd")
    net.add(Dense(2))
    with pytest.raises(ValueError, match=r"y must have shape \(N, 2\), got \(40, 3\)"):
        net.fit(x, np.zeros((40, 3)), verbose=0)


def test_evaluate_and_predict_verbose(capsys):
    x, y = _data()
    net = _net()
    logs = net.evaluate(x, y, verbose=1)
    net.predict(x, verbose=1)
    out = capsys.readouterr().out
    assert f"loss: {logs['loss']:.4f} - accuracy: {logs['accuracy']:.4f}" in out
    assert "predicted 40 samples" in out


def test_class_weight_of_one_sigmoid_per_step_is_neutral_at_1_and_takes_sample_weights(float64):
    """On an unmasked sequence output (a sigmoid per step) class weights of 1 gave a loss T times smaller and
    another step (the steps entered the denominator one by one), and sample weights (N,) did not broadcast:
    every step is an item, as in the unweighted loss (each weighs its class's weight times its sample's)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 5, 3))
    y = rng.integers(0, 2, (16, 5, 1)).astype(np.float64)
    sw = rng.uniform(0.5, 2, 16)

    def model():
        inp = neuro.Input((5, 3))
        out = Dense(1, "sigmoid")(neuro.GRU(4, return_sequences=True)(inp))
        return neuro.Model(inp, out, loss="bce", optimizer=neuro.SGD(0.1), seed=0)

    plain, weighted = model(), model()
    hp = plain.fit(x, y, batch_size=16, verbose=0, sample_weight=sw)
    hw = weighted.fit(x, y, batch_size=16, verbose=0, sample_weight=sw, class_weight={0: 1, 1: 1})
    assert hw["loss"][0] == pytest.approx(hp["loss"][0], rel=1e-14)
    for u, v in zip(plain.get_weights(), weighted.get_weights(), strict=True):
        np.testing.assert_allclose(v, u, rtol=1e-12, atol=1e-15)
    # unequal weights: Σ_i w_i Σ_t cw_it l_it / Σ_i w_i Σ_t cw_it
    loss = neuro.losses.ClassWeightedBinaryCrossEntropy(class_weights=[0.5, 3.0])
    p = rng.uniform(0.05, 0.95, (16, 5, 1))
    cw = np.where(y[..., 0] == 1, 3.0, 0.5)
    per = -(y * np.log(p) + (1 - y) * np.log(1 - p))[..., 0]
    want = (sw[:, None] * cw * per).sum() / (sw[:, None] * cw).sum()
    total, denom = loss.terms(p, y, sw)
    assert float(total / denom) == pytest.approx(want, rel=1e-12)
    report = neuro.check_gradients(loss, p, y)
    assert report.max_error < 1e-7, report


def test_a_model_with_class_weighted_binary_crossentropy_saves_and_loads(tmp_path):
    """The loss's two weights (labels 0 and 1 of one sigmoid output) were taken by the loader for one weight
    per output column, and the file refused."""
    x, _ = _data()
    y = (x[:, 0] > 0).astype(np.float64)
    for from_logits in (False, True):
        loss = neuro.losses.ClassWeightedBinaryCrossEntropy(from_logits, class_weights=[1.0, 3.0])
        net = neuro.Network((4,), loss, neuro.SGD(0.1), seed=0)
        net.add(Dense(1, None if from_logits else "sigmoid"))
        net.fit(x, y, epochs=1, verbose=0)
        net.save(tmp_path / "m.h5")
        loaded = neuro.Network.load(tmp_path / "m.h5")
        assert loaded.losses[0].class_weights.tolist() == [1.0, 3.0]
        assert loaded.evaluate(x, y) == net.evaluate(x, y)
    wide = neuro.Network((4,), neuro.losses.ClassWeightedBinaryCrossEntropy(class_weights=[1.0, 3.0]),
                         neuro.SGD(0.1), seed=0)
    wide.add(Dense(3, "sigmoid"))
    with pytest.raises(ValueError, match=r"ClassWeightedBinaryCrossEntropy weighs the labels 0 and 1 of one "
                                         r"sigmoid output per sample \(or per step\), got an output of shape "
                                         r"\(3,\); weigh samples instead"):
        wide.fit(x, np.zeros((len(x), 3)), epochs=1, verbose=0)
    wide.save(tmp_path / "wide.h5")  # never trained: saved, and refused by the loader with the file named
    with pytest.raises(neuro.errors.ModelFileError, match=r"config: ClassWeightedBinaryCrossEntropy weighs "
                                                          r"the labels 0 and 1 of one sigmoid output"):
        neuro.Network.load(tmp_path / "wide.h5")


def test_class_weight_of_a_softmax_sequence_output_weighs_each_step(float64):
    """class_weight on a sequence of class distributions (N, T, C) took T·C for the number of classes: every
    key was checked against it and the weights were of the wrong length (a ValueError from the loss)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4, 3))
    y = rng.integers(0, 3, (6, 4))
    inp = neuro.Input((4, 3))
    model = neuro.Model(inp, Dense(3, "softmax")(neuro.GRU(5, return_sequences=True)(inp)),
                        loss="crossentropy", optimizer=neuro.SGD(0.1), seed=0)
    p = model.predict(x)
    history = model.fit(x, y, batch_size=6, verbose=0, class_weight={1: 3.0})
    w = np.where(y == 1, 3.0, 1.0)
    nll = -np.log(np.take_along_axis(p, y[..., None], axis=-1)[..., 0])
    assert history["loss"][0] == pytest.approx((w * nll).sum() / w.sum(), rel=1e-10)
    with pytest.raises(ValueError, match=r"class_weight must map class ids in \[0, 2\] to weights, got \{7: 3.0\}"):
        model.fit(x, y, verbose=0, class_weight={7: 3.0})
    loss = neuro.losses.ClassWeightedBinaryCrossEntropy(class_weights=[0.5, 3.0])
    q, t, sw = rng.uniform(0.1, 0.9, (6, 1)), rng.integers(0, 2, (6, 1)).astype(float), rng.uniform(0.5, 2, 6)
    assert loss.forward(q, t, sw[:, None]) == loss.forward(q, t, sw)  # a column of weights
    assert loss.backward(q, t, sw[:, None]).shape == (6, 1)


def test_a_reused_reduce_lr_on_plateau_starts_each_fit_afresh():
    """ReduceLROnPlateau kept its best value from the previous fit (EarlyStopping reset its own): a second
    fit with the same callback object cut the rate an epoch early."""
    x, y = _data()
    reduce = ReduceLROnPlateau(monitor="score", mode="min", factor=0.5, patience=1)
    rates = []
    for _ in range(2):
        history = _net().fit(x, y, epochs=3, verbose=0, callbacks=[Scripted([2.0, 1.0, 1.0]), reduce])
        rates.append(history["learning_rate"])
    assert rates[0] == rates[1] == [0.05, 0.05, 0.05]


# -- Keras's callback arguments (a helper's review: migration.md promised them; each raised TypeError) ----------
def test_early_stopping_baseline_start_from_epoch_and_verbose(capsys):
    """Keras's rules: until an epoch beats the baseline, the wait does not restart, so the first epoch
    without improvement after `patience` epochs stops; epochs before start_from_epoch are not watched."""
    x, y = _data()
    script = Scripted([5.0, 4.0, 4.5, 4.6, 3.0, 2.0])
    stop = EarlyStopping(monitor="score", mode="min", patience=2, baseline=3.5, restore_best_weights=True, verbose=1)
    history = _net().fit(x, y, epochs=6, verbose=0, callbacks=[script, stop])
    assert history.epoch == [0, 1, 2] and stop.stopped_epoch == 2 and stop.best_epoch == 1
    assert capsys.readouterr().out == "Epoch 3: early stopping\nRestoring model weights from the end of epoch 2.\n"
    for a, b in zip(stop.network.get_weights(), script.weights[1], strict=True):
        np.testing.assert_array_equal(a, b)
    plain = EarlyStopping(monitor="score", mode="min", patience=2)  # without a baseline: two epochs more
    assert _net().fit(x, y, epochs=6, verbose=0, callbacks=[Scripted([5.0, 4.0, 4.5, 4.6, 3.0, 2.0]), plain]).epoch == [0, 1, 2, 3]
    script = Scripted([5.0, 2.0, 2.5, 2.6, 2.7, 2.8])  # beaten at epoch 2: from there, patience as usual
    stop = EarlyStopping(monitor="score", mode="min", patience=2, baseline=3.0)
    assert _net().fit(x, y, epochs=6, verbose=0, callbacks=[script, stop]).epoch == [0, 1, 2, 3]
    script = Scripted([1.0, 1.0, 1.0, 1.0, 1.0])  # never improves after the first watched epoch
    stop = EarlyStopping(monitor="score", mode="min", patience=1, start_from_epoch=2)
    assert _net().fit(x, y, epochs=5, verbose=0, callbacks=[script, stop]).epoch == [0, 1, 2, 3]
    for kwargs, message in (({"baseline": "3"}, "baseline must be a finite number or None, got '3'"),
                            ({"start_from_epoch": -1}, "start_from_epoch must be a non-negative integer, got -1"),
                            ({"verbose": 2.0}, r"verbose must be 0 \(silent\) or 1 \(a line per action\), got 2.0")):
        with pytest.raises(ValueError, match=message):
            EarlyStopping(**kwargs)


def test_reduce_lr_on_plateau_cooldown_and_verbose(capsys):
    """Keras's cooldown: after a reduction the count goes down first each epoch, and while it is above 0 no
    epoch counts as without improvement (with patience 1 and cooldown 2: a reduction every second epoch)."""
    x, y = _data()
    reduce = ReduceLROnPlateau(monitor="score", mode="min", factor=0.5, patience=1, cooldown=2, verbose=1)
    history = _net().fit(x, y, epochs=6, verbose=0, callbacks=[Scripted([1.0] * 6), reduce])
    assert history["learning_rate"] == [0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125]
    assert capsys.readouterr().out == (
        "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.025.\n"
        "Epoch 4: ReduceLROnPlateau reducing learning rate to 0.0125.\n"
        "Epoch 6: ReduceLROnPlateau reducing learning rate to 0.00625.\n"
    )
    floor = ReduceLROnPlateau(monitor="score", mode="min", factor=0.5, patience=1, min_lr=0.05)
    assert _net().fit(x, y, epochs=3, verbose=0, callbacks=[Scripted([1.0] * 3), floor])["learning_rate"] == [0.05] * 3


def test_model_checkpoint_initial_value_threshold_save_freq_and_verbose(tmp_path, capsys):
    """A resumed run given the best of the last one does not overwrite its best file with a worse model."""
    x, y = _data()
    best = tmp_path / "best.h5"
    check = ModelCheckpoint(best, monitor="score", mode="min", save_best_only=True, initial_value_threshold=2.0,
                            verbose=1)
    _net().fit(x, y, epochs=3, verbose=0, callbacks=[Scripted([3.0, 2.5, 1.5]), check])
    assert check.saved == [str(best)]
    assert capsys.readouterr().out == (
        "Epoch 1: score did not improve from 2.00000\nEpoch 2: score did not improve from 2.00000\n"
        f"Epoch 3: score improved from 2.00000 to 1.50000, saving model to {best}\n"
    )
    batches = ModelCheckpoint(tmp_path / "e{epoch}-b{batch}.h5", save_freq=3)  # 40 samples, 4 batches a epoch
    _net().fit(x, y, epochs=2, batch_size=10, verbose=0, callbacks=[batches])
    assert [p.rsplit("/", 1)[-1] for p in batches.saved] == ["e1-b3.h5", "e2-b2.h5"]
    assert neuro.Network.load(batches.saved[-1]).predict(x).shape == (40, 3)
    with pytest.raises(ValueError, match="save_freq must be 'epoch' or a number of batches >= 1, got 0"):
        ModelCheckpoint("x.h5", save_freq=0)


def test_csv_logger_separator_and_values_that_are_no_numbers(tmp_path):
    """A string or an array a callback logs was a crash at the epoch's end (Keras writes them)."""

    class Notes(Callback):
        def on_epoch_end(self, epoch, logs):
            logs["note"] = f"epoch {epoch}"
            logs["pair"] = np.array([epoch, 2 * epoch])

    x, y = _data()
    path = tmp_path / "log.tsv"
    _net().fit(x, y, epochs=2, verbose=0, callbacks=[Notes(), CSVLogger(path, separator="\t")])
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    assert rows[0] == ["epoch", "loss", "accuracy", "note", "pair"]
    assert rows[2][3:] == ["epoch 1", "[1, 2]"] and float(rows[2][1]) > 0
    with pytest.raises(ValueError, match="separator must be one character, got ';;'"):
        CSVLogger(path, separator=";;")


def test_learning_rate_scheduler_verbose(capsys):
    x, y = _data()
    _net().fit(x, y, epochs=2, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: 0.1 / (e + 1), verbose=1)])
    assert capsys.readouterr().out == (
        "Epoch 1: LearningRateScheduler setting learning rate to 0.1.\n"
        "Epoch 2: LearningRateScheduler setting learning rate to 0.05.\n"
    )


def test_callback_review_fixes(tmp_path):
    """A review of the Keras arguments: a threshold applied once (a second fit re-applied it and overwrote
    the best file with a worse model); a subclass's own on_batch_end still called; NumPy numbers taken; a
    per-batch best checkpoint on a validation log refused at the start, not mid-fit."""
    x, y = _data()
    best = tmp_path / "best.h5"
    check = ModelCheckpoint(best, monitor="score", mode="min", save_best_only=True, initial_value_threshold=1.0)
    net = _net()
    net.fit(x, y, epochs=1, verbose=0, callbacks=[Scripted([0.2]), check])
    net.fit(x, y, epochs=1, verbose=0, callbacks=[Scripted([0.5]), check])
    assert check.saved == [str(best)] and check.best == 0.2

    class Counting(ModelCheckpoint):
        calls = 0

        def on_batch_end(self, batch, logs):
            Counting.calls += 1

    _net().fit(x, y, epochs=1, batch_size=10, verbose=0, callbacks=[Counting(tmp_path / "c.h5")])
    assert Counting.calls == 4
    EarlyStopping(baseline=np.float32(0.5), start_from_epoch=np.int64(2), patience=np.int64(1))
    ModelCheckpoint("x.h5", initial_value_threshold=np.float32(0.5), save_freq=np.int64(10))
    with pytest.raises(ValueError, match=r"compares batch logs, which hold no validation values; monitor a training log"):
        _net().fit(x, y, epochs=1, verbose=0, validation_split=0.25,
                   callbacks=[ModelCheckpoint(tmp_path / "v.h5", save_best_only=True, save_freq=2)])


def test_a_schedule_may_give_a_zero_dimensional_array():
    """Keras's schedules give tensors; a 0-d array was refused once the rate was checked."""
    opt = neuro.SGD(lambda step: np.where(step < 100, 1e-3, 1e-4))
    assert opt.current_learning_rate() == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="must give a finite rate >= 0"):
        neuro.SGD(lambda step: np.array([1e-3, 1e-4])).current_learning_rate()
