"""Data from anywhere (issue 17, item 6): generators, iterables and objects of the batch protocol in fit,
evaluate and predict with Keras's steps_per_epoch / validation_steps; sample_weight in fit and evaluate; a
wrong first argument, or the original neuro's positional order, told what is accepted."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import neuro
from neuro import BatchNorm, Dense, Dropout, Input, Model, Sequential
from neuro.data import TabularDataSet
from neuro.metrics import Metric
from neuro.optimizers import SGD, Adam


def _data(n=30, d=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, classes, n)


def _net(seed=0, optimizer=None):
    return Sequential(
        [Input((4,)), Dense(8, activation="relu"), BatchNorm(), Dropout(0.3), Dense(3, activation="softmax")],
        loss="crossentropy",
        optimizer=optimizer or Adam(1e-2),
        seed=seed,
    )


def _batches(x, y, size, w=None):
    out = []
    for s in range(0, len(x), size):
        part = (x[s : s + size], y[s : s + size])
        out.append(part if w is None else (*part, w[s : s + size]))
    return out


def _same_weights(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights(), strict=True))


class Batches:
    """The batch protocol without subclassing anything: __len__, __getitem__ and on_epoch_end."""

    def __init__(self, batches):
        self.batches, self.read, self.epochs_ended = batches, [], 0

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        self.read.append(i)
        return self.batches[i]

    def on_epoch_end(self):
        self.epochs_ended += 1


def _endless(batches, log=None):
    while True:
        for i, b in enumerate(batches):
            if log is not None:
                log.append(i)
            yield b


def _finite(batches, log=None):
    for i, b in enumerate(batches):
        if log is not None:
            log.append(i)
        yield b


# -- the same weights as the same batches given as arrays ----------------------------------------------------
@pytest.mark.parametrize("kind", ["endless generator", "one-shot generator", "list", "sequence", "iterable"])
def test_batches_from_anywhere_train_bitwise_as_arrays(kind):
    x, y = _data()
    xv, yv = _data(12, seed=1)
    epochs = 1 if kind == "one-shot generator" else 2
    ref = _net()
    h_ref = ref.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, validation_data=(xv, yv), verbose=0)
    batches = _batches(x, y, 8)
    data, extra = {
        "endless generator": (_endless(batches), {"steps_per_epoch": 4}),
        "one-shot generator": (_finite(batches), {}),
        "list": (batches, {"shuffle": False}),
        "sequence": (Batches(batches), {"shuffle": False}),
        "iterable": (map(lambda b: b, batches * 2), {"steps_per_epoch": 4}),
    }[kind]
    net = _net()
    h = net.fit(data, epochs=epochs, validation_data=_batches(xv, yv, 8), verbose=0, **extra)
    assert _same_weights(net, ref)
    assert h.history == h_ref.history


def test_sample_weights_in_batches_train_bitwise_as_sample_weight_arrays():
    x, y = _data()
    w = np.random.default_rng(5).uniform(0, 2, len(x))
    ref = _net()
    h_ref = ref.fit(x, y, batch_size=10, epochs=2, shuffle=False, sample_weight=w, verbose=0)
    net = _net()
    h = net.fit(_endless(_batches(x, y, 10, w)), steps_per_epoch=3, epochs=2, verbose=0)
    assert _same_weights(net, ref) and h.history == h_ref.history
    assert net.evaluate(_batches(x, y, 10, w)) == ref.evaluate(x, y, batch_size=10, sample_weight=w)


# -- steps_per_epoch and validation_steps --------------------------------------------------------------------
def test_steps_per_epoch_draws_from_one_iterator_kept_between_epochs():
    x, y = _data()
    log = []
    _net().fit(_endless(_batches(x, y, 5), log), steps_per_epoch=4, epochs=2, verbose=0)
    assert log == [0, 1, 2, 3, 4, 5, 0, 1]  # epoch 2 goes on where epoch 1 stopped (6 batches a pass)


def test_a_re_iterable_with_steps_per_epoch_starts_a_new_pass_when_one_ends():
    x, y = _data()
    seq = Batches(_batches(x, y, 10))  # 3 batches
    _net().fit(seq, steps_per_epoch=2, epochs=3, shuffle=False, verbose=0)
    assert seq.read == [0, 1, 2, 0, 1, 2]
    assert seq.epochs_ended == 3  # on_epoch_end after every epoch, as keras.utils.Sequence


def test_a_sequence_is_shuffled_by_batch_with_the_seed():
    x, y = _data()
    orders = []
    for _ in range(2):
        seq = Batches(_batches(x, y, 5))
        _net(seed=3).fit(seq, epochs=3, verbose=0)
        orders.append(seq.read)
    assert orders[0] == orders[1]  # seeded
    passes = [orders[0][i : i + 6] for i in (0, 6, 12)]
    assert all(sorted(p) == list(range(6)) for p in passes) and passes[0] != passes[1]


def test_without_steps_an_epoch_is_one_pass():
    x, y = _data()
    seq = Batches(_batches(x, y, 7))  # 5 batches, the last of 2 samples
    history = _net().fit(seq, epochs=2, shuffle=False, verbose=0)
    assert seq.read == [0, 1, 2, 3, 4] * 2 and len(history["loss"]) == 2


def test_validation_steps_draw_that_many_batches_per_validation():
    x, y = _data()
    log = []
    history = _net().fit(
        _batches(x, y, 10),
        epochs=3,
        validation_data=_endless(_batches(x, y, 6), log),
        validation_steps=2,
        verbose=0,
    )
    assert log == [0, 1, 2, 3, 4, 0] and len(history["val_loss"]) == 3


def test_a_generator_that_runs_out_stops_training_with_a_warning():
    x, y = _data()
    batches = _batches(x, y, 6)  # 5 batches
    with pytest.warns(
        UserWarning, match=r"x ran out of batches: it gave 1 of the 2 batches .*steps_per_epoch=2"
    ):
        history = _net().fit(_finite(batches), steps_per_epoch=2, epochs=5, verbose=0)
    assert len(history["loss"]) == 3  # two whole epochs and the short third, as Keras

    with pytest.warns(UserWarning, match="training stops after epoch 2 of 3"):
        history = _net().fit(_finite(batches[:4]), steps_per_epoch=2, epochs=3, verbose=0)
    assert len(history["loss"]) == 2

    with pytest.warns(UserWarning, match=r"iterator that yielded its 5 batches .* stops after epoch 1 of 4"):
        history = _net().fit(_finite(batches), epochs=4, verbose=0)
    assert len(history["loss"]) == 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough batches: no warning
        _net().fit(_finite(batches * 2), steps_per_epoch=5, epochs=2, verbose=0)


def test_data_without_a_batch_is_refused():
    net = _net()
    for empty in ([], iter([]), _finite([])):
        with pytest.raises((ValueError, TypeError)):
            net.fit(empty, verbose=0)
    with pytest.raises(ValueError, match="x yielded no batch"):
        net.fit(iter([]), verbose=0)
    with pytest.raises(ValueError, match="has no batches"):
        net.fit(Batches([]), verbose=0)
    used = _finite(_batches(*_data(), 10))
    net.fit(used, verbose=0)
    with pytest.raises(ValueError, match="x yielded no batch"):
        net.fit(used, verbose=0)  # a generator used up by the first fit


def test_evaluate_and_predict_read_batches_with_steps():
    x, y = _data()
    net = _net()
    net.fit(x, y, epochs=1, verbose=0)
    batches = _batches(x, y, 10)
    assert net.evaluate(_endless(batches), steps=3) == net.evaluate(x, y, batch_size=10)
    assert net.evaluate(Batches(batches)) == net.evaluate(x, y, batch_size=10)
    np.testing.assert_array_equal(net.predict(_endless(batches), steps=3), net.predict(x))
    np.testing.assert_array_equal(net.predict(b[0] for b in batches), net.predict(x))  # batches of x alone
    np.testing.assert_array_equal(net.predict((b[0],) for b in batches), net.predict(x))
    with pytest.warns(UserWarning, match="gave 3 of the 4 batches"):
        net.evaluate(_finite(batches), steps=4)


def test_predict_reads_x_from_list_batches_as_a_dataloader_yields_them(torch):
    """A DataLoader yields lists [x, y]; fit and evaluate took them, predict read the whole list as x (a
    "ragged list" error). A list whose first item is not a batch of the inputs stays x (two inputs)."""
    x, y = _data()
    net = _net()
    net.fit(x, y, epochs=1, verbose=0)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=10
    )
    assert type(next(iter(loader))) is list
    np.testing.assert_array_equal(net.predict(loader), net.predict(x))
    np.testing.assert_array_equal(net.predict(iter([[x, y, np.ones(len(x))]])), net.predict(x))
    a, b = Input((4,), name="a"), Input((4,), name="b")
    two = Model([a, b], Dense(2)(neuro.Concatenate()([a, b])), seed=0)
    want = two.predict([x, 2 * x])
    np.testing.assert_array_equal(two.predict(iter([[x, 2 * x]])), want)  # a list of the inputs: x
    np.testing.assert_array_equal(two.predict(iter([[[x, 2 * x], y]])), want)  # [x, y] with x a list
    np.testing.assert_array_equal(two.predict(iter([[{"a": x, "b": 2 * x}, y]])), want)


def test_a_model_with_two_inputs_takes_batches_of_lists_and_dicts():
    rng = np.random.default_rng(0)
    xa, xb, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2)), rng.standard_normal((8, 1))

    def two_inputs():
        a, b = Input((3,), name="a"), Input((2,), name="b")
        return Model([a, b], Dense(1)(neuro.Concatenate()([a, b])), loss="mse", optimizer=SGD(0.1), seed=0)

    ref, model = two_inputs(), two_inputs()
    ref.fit([xa, xb], y, batch_size=4, shuffle=False, verbose=0)
    model.fit([({"a": xa[:4], "b": xb[:4]}, y[:4]), ([xa[4:], xb[4:]], y[4:])], shuffle=False, verbose=0)
    assert _same_weights(model, ref)


# -- sample_weight -------------------------------------------------------------------------------------------
def _linear(seed=0):
    return Sequential([Input((3,)), Dense(2)], loss="mse", optimizer=SGD(0.1), seed=seed)


def test_sample_weight_is_the_weighted_mean_against_torch(float64, torch):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    w = np.array([0.5, 2.0, 0.0, 1.0, 3.0, 0.25])
    net = _linear()
    kernel, bias = net.layers[0].params["kernel"].copy(), net.layers[0].params["bias"].copy()
    per_sample = ((x @ kernel + bias - y) ** 2).sum(axis=1)  # neuro's MSE sums over a sample's outputs
    hand = float((w * per_sample).sum() / w.sum())
    assert net.evaluate(x, y, sample_weight=w)["loss"] == pytest.approx(hand, rel=1e-12)

    lin = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(kernel.T))
        lin.bias.copy_(torch.from_numpy(bias))
    wt = torch.from_numpy(w)
    loss = (
        torch.nn.functional.mse_loss(lin(torch.from_numpy(x)), torch.from_numpy(y), reduction="none").sum(1)
        * wt
    ).sum() / wt.sum()
    assert loss.item() == pytest.approx(hand, rel=1e-12)
    loss.backward()
    with torch.no_grad():
        for p in lin.parameters():
            p -= 0.1 * p.grad
    history = net.fit(x, y, batch_size=6, sample_weight=w, verbose=0)
    assert history["loss"][0] == pytest.approx(hand, rel=1e-12)
    np.testing.assert_allclose(net.layers[0].params["kernel"], lin.weight.detach().numpy().T, rtol=1e-12)
    np.testing.assert_allclose(net.layers[0].params["bias"], lin.bias.detach().numpy(), rtol=1e-12)


def test_zero_weights_leave_samples_out(float64):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    w = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    keep = w > 0
    a, b = _linear(), _linear()
    a.fit(x, y, batch_size=8, sample_weight=w, verbose=0)
    b.fit(x[keep], y[keep], batch_size=8, verbose=0)
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-13)
    assert a.evaluate(x, y, sample_weight=w)["loss"] == pytest.approx(b.evaluate(x[keep], y[keep])["loss"])


def test_a_batch_whose_samples_all_weigh_zero_adds_nothing_but_counts_a_step():
    x, y = _data(8)
    w = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=float)

    def small():
        return Sequential(
            [Input((4,)), Dense(3, activation="softmax")], loss="crossentropy", optimizer=Adam(1e-2)
        )

    net, other = small(), small()
    other.set_weights(net.get_weights())
    head = _batches(x, y, 4)[1]
    before = other.evaluate(*head)["loss"]
    history = net.fit(x, y, batch_size=4, shuffle=False, sample_weight=w, verbose=0)
    assert history["loss"][0] == pytest.approx(before, rel=1e-6)  # the weightless batch adds nothing
    assert net.optimizer.iterations == 2  # it still steps (with a zero gradient), as Keras's does
    weightless = (np.zeros((1, 4), np.float32), np.zeros(1, int), np.zeros(1))
    other.fit([weightless, head], shuffle=False, verbose=0)
    assert _same_weights(net, other)  # the first step moved nothing, and both took the same second one


def test_class_weight_and_sample_weight_multiply(float64):
    x, y = _data(10)
    w = np.random.default_rng(6).uniform(0, 2, 10)
    net = Sequential([Input((4,)), Dense(3, activation="softmax")], loss="crossentropy", optimizer=SGD(0.1))
    kernel, bias = net.layers[0].params["kernel"].copy(), net.layers[0].params["bias"].copy()
    z = x.astype(np.float64) @ kernel + bias
    log_p = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
    cw = np.where(y == 0, 2.0, 1.0)
    hand = float(-(cw * w * log_p[np.arange(10), y]).sum() / (cw * w).sum())
    history = net.fit(x, y, batch_size=10, class_weight={0: 2.0}, sample_weight=w, verbose=0)
    assert history["loss"][0] == pytest.approx(hand, rel=1e-12)


def test_metrics_are_weighted_too():
    x, y = _data(40)
    net = _net()
    net.fit(x, y, epochs=2, verbose=0)
    w = np.random.default_rng(1).uniform(0, 1, 40)
    correct = net.predict_class(x)[0] == y
    logs = net.evaluate(x, y, sample_weight=w)
    assert logs["accuracy"] == pytest.approx(float((w * correct).sum() / w.sum()))

    class Seen(Metric):
        """A metric of one's own, recording the weights it is fed."""

        name = "seen"

        def reset(self):
            self.weights = []

        def update(self, y_pred, y_true, sample_weight=None):
            self.weights.append(None if sample_weight is None else np.array(sample_weight))

        def result(self):
            return 0.0

    seen = Seen()
    net.evaluate(x, y, batch_size=16, metrics=[seen], sample_weight=w)
    np.testing.assert_array_equal(np.concatenate(seen.weights), w.astype(np.float32))
    net.fit(x, y, batch_size=40, shuffle=False, metrics=[seen], sample_weight=w, verbose=0)
    np.testing.assert_array_equal(seen.weights[0], w.astype(np.float32))


def test_validation_data_and_split_carry_sample_weights():
    x, y = _data()
    w = np.random.default_rng(3).uniform(0.1, 2, len(x))
    a, b = _net(), _net()
    ha = a.fit(x, y, batch_size=8, epochs=2, validation_split=0.2, sample_weight=w, verbose=0)
    hb = b.fit(x[:24], y[:24], batch_size=8, epochs=2, sample_weight=w[:24], verbose=0,
               validation_data=(x[24:], y[24:], w[24:]))  # fmt: skip
    assert ha.history == hb.history
    assert hb["val_loss"][-1] == b.evaluate(x[24:], y[24:], batch_size=8, sample_weight=w[24:])["loss"]


def test_per_step_and_per_output_weights():
    rng = np.random.default_rng(0)
    inp = Input((5, 2))
    out = neuro.layers.Dense(3, activation="softmax")(inp)  # a class per step: output (5, 3)
    model = Model(inp, out, loss="crossentropy", optimizer="sgd", seed=0)
    x, y = rng.standard_normal((6, 5, 2)).astype(np.float32), rng.integers(0, 3, (6, 5))
    w = rng.uniform(0, 1, 6)
    per_step = np.repeat(w[:, None], 5, axis=1)
    assert model.evaluate(x, y, sample_weight=w) == model.evaluate(x, y, sample_weight=per_step)

    a, b = Input((3,), name="a"), Input((3,), name="b")
    two = Model(a, {"p": Dense(1, name="p")(a), "q": Dense(1, name="q")(a)}, loss="mse", optimizer="sgd")
    del b
    xs, ys = rng.standard_normal((4, 3)), {"p": rng.standard_normal((4, 1)), "q": rng.standard_normal((4, 1))}
    wp = np.array([1.0, 0.0, 2.0, 1.0])
    logs = two.evaluate(xs, ys, sample_weight={"p": wp})
    assert logs["p_loss"] == pytest.approx(two.evaluate(xs, ys, sample_weight=[wp, None])["p_loss"])
    assert logs["q_loss"] == pytest.approx(two.evaluate(xs, ys)["q_loss"])


@pytest.mark.parametrize(
    ("weights", "error", "message"),
    [
        (
            np.ones(7),
            ValueError,
            r"sample_weight must have shape \(8,\) \(one weight per sample\), got \(7,\)",
        ),
        (np.ones((8, 3)), ValueError, r"must have shape \(8,\)"),
        (np.ones(()), ValueError, "must have shape"),
        (-np.ones(8), ValueError, "must hold finite weights >= 0, got values from -1 to -1"),
        (np.full(8, np.nan), ValueError, "must hold finite weights >= 0"),
        (np.array(["a"] * 8), TypeError, "sample_weight must hold numbers"),
        ({"nope": np.ones(8)}, ValueError, r"sample_weight has keys \['nope'\] that are no output name"),
    ],
)
def test_bad_sample_weights_are_refused(weights, error, message):
    x, y = _data(8)
    with pytest.raises(error, match=message):
        _net().fit(x, y, sample_weight=weights, verbose=0)


def test_bad_weights_in_a_batch_name_the_batch():
    x, y = _data(8)
    with pytest.raises(ValueError, match=r"x\[1\]: sample_weight must have shape \(4,\)"):
        _net().fit([(x[:4], y[:4], np.ones(4)), (x[4:], y[4:], np.ones(3))], verbose=0)


# -- wrong data, wrong order ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [42, 3.5, None, {1, 2}, object(), np.float32(1.0)])
def test_a_wrong_first_argument_lists_what_is_accepted(bad):
    net = _net()
    for call in (lambda: net.fit(bad, verbose=0), lambda: net.evaluate(bad), lambda: net.predict(bad)):
        with pytest.raises(
            TypeError, match=r"x must be arrays .* a neuro\.data DataSet or split, a generator"
        ):
            call()


def test_batches_of_a_wrong_form_are_refused_naming_the_batch():
    x, y = _data(8)
    with pytest.raises(
        TypeError, match=r"x batch 0 must be a tuple \(x, y\) or \(x, y, sample_weight\), got"
    ):
        _net().fit(iter([x]), verbose=0)  # batches of x alone
    with pytest.raises(TypeError, match="x batch 0 must be a tuple .* got a tuple of 4"):
        _net().fit(iter([(x, y, None, None)]), verbose=0)
    with pytest.raises(ValueError, match=r"x\[1\]: x must have shape \(N, 4\), got \(8, 2\)"):
        _net().fit([(x, y), (x[:, :2], y)], verbose=0)
    with pytest.raises(ValueError, match=r"x\[0\]: x must hold at least one sample"):
        _net().fit([(x[:0], y[:0])], verbose=0)


def test_the_original_positional_order_is_an_error_naming_the_keywords():
    x, y = _data(12)
    data = TabularDataSet.from_arrays(x, y, valid_frac=0.25)
    net = _net()
    with pytest.raises(TypeError, match=r"fit\(data, batch_size=128, epochs=10\)"):
        net.fit(data, 128, 10)
    with pytest.raises(TypeError, match=r"fit\(data, epochs=10\) \(batch_size does not apply"):
        net.fit(_endless(_batches(x, y, 4)), 128, 10)
    with pytest.raises(
        TypeError, match=r"y is the number 128, not targets: fit takes \(x, y, batch_size, epochs\)"
    ):
        net.fit(x, 128, 10)
    with pytest.raises(
        TypeError, match=r"takes x, y, batch_size and epochs by position .* validation_data=, shuffle="
    ):
        net.fit(x, y, 4, 1, (x, y))
    with pytest.raises(TypeError, match=r"evaluate\(\) takes x, y and batch_size by position"):
        net.evaluate(x, y, 4, None)
    assert len(net.fit(x, y, 4, 2, verbose=0)["loss"]) == 2  # Keras's positional order works
    assert set(net.evaluate(x, y, 4)) == {"loss", "accuracy"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda n, x, y, g: n.fit(g, batch_size=8),
            "batch_size does not apply when x yields its own batches",
        ),
        (lambda n, x, y, g: n.fit(g, y), r"y must be None when x is data that yields its own batches"),
        (lambda n, x, y, g: n.fit(g, sample_weight=np.ones(4)), "sample_weight goes with arrays x"),
        (lambda n, x, y, g: n.fit(x, y, steps_per_epoch=2), "steps_per_epoch applies to x that yields"),
        (lambda n, x, y, g: n.fit(x, y, validation_steps=2), "validation_steps needs validation_data"),
        (
            lambda n, x, y, g: n.fit(x, y, validation_data=(x, y), validation_steps=1),
            "validation_steps applies",
        ),
        (lambda n, x, y, g: n.fit(g, validation_split=0.2), "validation_split does not apply"),
        (lambda n, x, y, g: n.fit(x, y, validation_data=42), "validation_data must be a tuple"),
        (lambda n, x, y, g: n.evaluate(x, y, steps=2), "steps applies to x that yields"),
        (lambda n, x, y, g: n.predict(g, batch_size=2), "batch_size does not apply"),
        (lambda n, x, y, g: n.fit(g, steps_per_epoch=0), "steps_per_epoch must be a positive integer"),
    ],
)
def test_arguments_that_do_not_go_with_the_data_are_refused(call, message):
    x, y = _data(8)
    with pytest.raises((ValueError, TypeError), match=message):
        call(_net(), x, y, _endless(_batches(x, y, 4)))


def test_a_distributed_fit_refuses_batches_and_sample_weights(monkeypatch):
    from neuro import distributed

    monkeypatch.setattr(distributed, "init", lambda comm=None: None)  # no MPI needed to be refused
    x, y = _data(8)
    net = _net()
    for kwargs in ({"x": _batches(x, y, 4)}, {"x": x, "y": y, "sample_weight": np.ones(8)}):
        with pytest.raises(ValueError, match="sample weights are not supported there"):
            net.fit(**kwargs, distributed=True, verbose=0)
    assert not net._fitting


def test_the_training_guide_sections_run(tmp_path, monkeypatch, capsys):
    """The guide's sections on data that yields batches, sample weights and frozen layers run as written."""
    import pathlib
    import re

    monkeypatch.chdir(tmp_path)
    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "guide" / "training.md").read_text()
    part = text[text.index("## Data that yields its own batches") : text.index("## Learning rates")]
    blocks = re.findall(r"```python\n(.*?)```", part, re.S)
    assert len(blocks) == 4
    namespace: dict = {"__name__": "__guide__"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"training.md block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Trainable params: 51" in out and "Non-trainable params: 208" in out
    base = namespace["base"]  # the last block unfroze the base but its batch norm
    assert base.layers[0].trainable and not base.layers[1].trainable


def test_on_the_strict_device_batches_and_weights_train_as_on_numpy():
    """Batches of device arrays and sample weights: no hidden host transfer, bitwise NumPy's training."""
    from neuro import backend

    strict = backend.get_device("strict")
    x, y = _data()
    w = np.random.default_rng(7).uniform(0, 2, len(x))
    host, dev = _net(), _net().to("strict")
    h_host = host.fit(x, y, batch_size=10, epochs=2, shuffle=False, sample_weight=w, verbose=0)
    on_device = [tuple(backend.to_device(np.asarray(a), strict) for a in b) for b in _batches(x, y, 10, w)]
    h_dev = dev.fit(on_device, epochs=2, shuffle=False, verbose=0)
    assert h_host.history == h_dev.history
    assert all(np.array_equal(a, b) for a, b in zip(host.get_weights(), dev.get_weights(), strict=True))
    assert dev.evaluate(on_device) == host.evaluate(x, y, batch_size=10, sample_weight=w)
    np.testing.assert_array_equal(
        backend.to_numpy(dev.predict(iter(b[0] for b in on_device))), host.predict(x)
    )
