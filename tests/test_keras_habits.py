"""A Keras or PyTorch user's habits, written as they write them (issue 17, items 1-3): each either trains to
what Keras's semantics give, or raises an error whose message says what to do.

- the losses: ``from_logits`` as Keras has it, and a probability loss after an output that is not a
  probability refused at build or compile;
- ``Sequential([...])``, ``compile`` of a model built without a loss, ``model(x)``, ``evaluate`` with the
  compiled metrics;
- Keras's argument names (old spellings warn; wrong ones suggest the right one), decoupled weight decay
  against ``torch.optim.AdamW``, schedules in Keras's order, old files loading silently.
"""

from __future__ import annotations

import json
import math
import pathlib
import re
import warnings

import h5py
import numpy as np
import pytest

import neuro
from neuro import (
    L1,
    L2,
    Adadelta,
    Adam,
    AdamW,
    AvgPool2D,
    BinaryCrossEntropy,
    Conv2D,
    CrossEntropy,
    Dense,
    Dropout,
    Flatten,
    Input,
    MaxPool2D,
    Model,
    Network,
    RMSprop,
    Sequential,
    SoftmaxCrossEntropy,
    losses,
    schedules,
)
from neuro import head as head_mod
from neuro.optimizers import SGD

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def _data(n: int = 96, features: int = 12, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    y = (x @ rng.standard_normal((features, classes))).argmax(axis=1)
    return x, y


# -- 1. cross-entropy on logits, and probability losses after outputs that are not probabilities ----------
def test_the_issue_example_is_refused_naming_both_fixes():
    x, y = _data(features=64, classes=10)
    net = Network(input_shape=(64,), loss="sparse_categorical_crossentropy", optimizer="adam", seed=0)
    net.add(Dense(64, activation="relu")).add(Dense(10))
    before = net.get_weights()
    with pytest.raises(
        ValueError,
        match=r"CrossEntropy takes probabilities: rows that sum to 1 .* output 'dense_1' ends in Dense 'dense_1' "
        r"with activation 'linear', whose values lie in \(-inf, inf\).* Either end the output in 'softmax' "
        r"\(Dense\(10, activation=\"softmax\"\)\); or let the loss apply the softmax itself: "
        r"CrossEntropy\(from_logits=True\)",
    ):
        net.fit(x, y, epochs=5, validation_split=0.1, verbose=0)
    for a, b in zip(before, net.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "loss",
    [
        "sparse_categorical_crossentropy",
        "categorical_crossentropy",
        "crossentropy",
        CrossEntropy(),
        losses.SparseCategoricalCrossentropy(),
        losses.CategoricalCrossentropy(label_smoothing=0.1),
    ],
    ids=str,
)
@pytest.mark.parametrize("activation", [None, "relu", "tanh", "sigmoid"])
def test_every_crossentropy_spelling_after_a_non_softmax_output_is_refused(loss, activation):
    net = Network((6,), loss, "adam", seed=0)
    net.add(Dense(5, activation="relu")).add(Dense(3, activation=activation))
    with pytest.raises(ValueError, match=r"CrossEntropy\(from_logits=True\)") as info:
        net.fit(*_data(16, 6, 3), verbose=0)
    assert "'softmax'" in str(info.value)


def test_a_graph_is_refused_at_compile_and_a_list_at_construction():
    inp = Input((6,))
    out = Dense(3)(Dense(8, activation="relu")(inp))
    model = Model(inp, out, seed=0)
    with pytest.raises(ValueError, match=r"from_logits=True"):
        model.compile(loss="categorical_crossentropy", optimizer="adam")
    assert model.losses == []  # a refused compile leaves the model as it was
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy takes values in \[0, 1\].*'relu'.*\[0, inf\)"):
        Sequential([Input((6,)), Dense(1, activation="relu")], loss="binary_crossentropy", optimizer="sgd")
    with pytest.raises(ValueError, match=r"CrossEntropy\(from_logits=True\)"):
        Sequential([Input((6,)), Dense(3)]).compile(loss="sparse_categorical_crossentropy", optimizer="adam")


@pytest.mark.parametrize("activation", [None, "relu", "tanh", "softplus"])
def test_binary_crossentropy_after_a_non_probability_output_is_refused(activation):
    net = Network((4,), "binary_crossentropy", "adam", seed=0).add(Dense(1, activation=activation))
    x = np.random.default_rng(0).standard_normal((8, 4))
    with pytest.raises(ValueError, match=r"Either end the output in 'sigmoid'.*BinaryCrossEntropy\(from_logits=True\)"):
        net.fit(x, np.arange(8) % 2, verbose=0)


def test_losses_with_an_input_range_and_no_logits_name_the_activations_that_fit():
    with pytest.raises(ValueError, match=r"Poisson takes values in \[0, inf\).*'tanh'.*'softplus' or 'exponential'") as info:
        Sequential([Input((3,)), Dense(2, activation="tanh")], loss="poisson")
    assert "from_logits" not in str(info.value)
    with pytest.raises(ValueError, match=r"KLDivergence takes values in \[0, 1\].*'softmax' or 'sigmoid'"):
        Sequential([Input((3,)), Dense(2)], loss="kld")


def test_outputs_that_produce_what_the_loss_takes_are_accepted():
    Sequential([Input((3,)), Dense(4, activation="softmax")], loss="crossentropy")
    Sequential([Input((3,)), Dense(4), neuro.Softmax()], loss="crossentropy")
    Sequential([Input((3,)), Dense(2, activation="sigmoid")], loss="bce")
    Sequential([Input((3,)), Dense(2, activation="softplus")], loss="poisson")
    Sequential([Input((3,)), Dense(2, activation="softmax")], loss="kld")
    Sequential([Input((3,)), Dense(2)], loss=CrossEntropy(from_logits=True))
    Sequential([Input((3,)), Dense(2)], loss="mse")
    # a layer that only moves values keeps the range; a nested model is looked into
    Sequential([Input((4, 4, 1)), Conv2D(2, 3, padding="same", activation="sigmoid"), Flatten()], loss="bce")
    inner = Sequential([Input((3,)), Dense(2)])
    with pytest.raises(ValueError, match="from_logits=True"):
        Sequential([Input((3,)), inner], loss="bce")


@pytest.mark.parametrize("last", [None, "softmax"], ids=["linear", "softmax"])
@pytest.mark.parametrize(
    "kwargs", [{}, {"label_smoothing": 0.1, "class_weights": [1.0, 2.0, 1.0, 0.5]}], ids=["plain", "weighted"]
)
def test_crossentropy_from_logits_trains_bitwise_as_softmax_crossentropy(last, kwargs):
    x, y = _data()

    def run(loss):
        model = Sequential([Input((12,)), Dense(16, activation="relu"), Dropout(0.2), Dense(4, activation=last)],
                           seed=3)
        model.compile(loss=loss, optimizer=Adam(learning_rate=0.01), metrics=["accuracy"])
        history = model.fit(x, y, batch_size=16, epochs=3, validation_split=0.25, verbose=0)
        return model, history

    ours, h1 = run(CrossEntropy(from_logits=True, **kwargs))
    ref, h2 = run(SoftmaxCrossEntropy(**kwargs))
    assert h1.history == h2.history
    for a, b in zip(ours.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    p = neuro.to_numpy(ours.predict(x))
    np.testing.assert_array_equal(p, neuro.to_numpy(ref.predict(x)))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)  # probabilities, whatever the last layer
    expected = head_mod.LinkHead if last is None else head_mod.FusedHead
    assert type(ours.head) is expected and type(ref.head) is expected
    assert ours.evaluate(x, y) == ref.evaluate(x, y)


def test_binary_crossentropy_from_logits_equals_bce_with_logits_loss(torch, float64):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((7, 3)) * 5
    y = rng.integers(0, 2, (7, 3)).astype(np.float64)
    loss = BinaryCrossEntropy(from_logits=True)
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.BCEWithLogitsLoss(reduction="sum")(zt, torch.tensor(y)) / len(z)  # a sum over outputs
    ref.backward()
    assert loss(z, y) == pytest.approx(ref.item(), rel=1e-14)
    np.testing.assert_allclose(loss.backward(z, y), zt.grad.numpy(), rtol=1e-13, atol=1e-16)
    # finite for logits a probability loss could not take
    assert math.isfinite(loss(np.array([[800.0, -800.0]]), np.array([[0.0, 1.0]])))


def test_a_linear_output_trained_with_bce_from_logits_matches_torch(torch, float64):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((24, 5))
    y = rng.integers(0, 2, (24, 3)).astype(np.float64)
    model = Sequential([Input((5,)), Dense(3)], seed=0)
    model.compile(loss=BinaryCrossEntropy(from_logits=True), optimizer=SGD(0.5))
    lin = torch.nn.Linear(5, 3).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(model.layers[0].params["kernel"].T))
        lin.bias.copy_(torch.tensor(model.layers[0].params["bias"]))
    opt = torch.optim.SGD(lin.parameters(), lr=0.5)
    for _ in range(4):
        model.fit(x, y, batch_size=24, epochs=1, shuffle=False, verbose=0)
        opt.zero_grad()
        (torch.nn.BCEWithLogitsLoss(reduction="sum")(lin(torch.tensor(x)), torch.tensor(y)) / len(x)).backward()
        opt.step()
    np.testing.assert_allclose(model.layers[0].params["kernel"], lin.weight.detach().numpy().T, rtol=1e-12)
    np.testing.assert_allclose(model.layers[0].params["bias"], lin.bias.detach().numpy(), rtol=1e-12)
    with torch.no_grad():
        np.testing.assert_allclose(model.predict(x), torch.sigmoid(lin(torch.tensor(x))).numpy(), rtol=1e-12)


def test_from_logits_is_saved_and_old_configs_load_as_false(tmp_path):
    assert CrossEntropy(from_logits=True).get_config()["from_logits"] is True
    assert BinaryCrossEntropy(from_logits=True).get_config() == {"from_logits": True}
    assert CrossEntropy.from_config({"class_weights": None, "label_smoothing": 0.0}).from_logits is False
    assert BinaryCrossEntropy.from_config({}).from_logits is False
    assert losses.get("binary_crossentropy").from_logits is False
    x, y = _data()
    model = Sequential([Input((12,)), Dense(4)], loss=CrossEntropy(from_logits=True), optimizer="adam", seed=0)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.h5")
    again = Network.load(tmp_path / "m.h5")
    assert again.loss.from_logits is True
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    with pytest.raises(TypeError, match="from_logits must be True or False, got 'yes'"):
        CrossEntropy(from_logits="yes")


# -- 2. building and calling as Keras -------------------------------------------------------------------
def test_sequential_from_a_list_trains_as_a_network_built_with_add():
    x, y = _data()
    seq = Sequential([Input((12,)), Dense(16, activation="relu"), Dense(4, activation="softmax")], seed=0)
    seq.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    net = Network((12,), "sparse_categorical_crossentropy", "adam", seed=0)
    net.add(Dense(16, activation="relu")).add(Dense(4, activation="softmax"))
    assert seq.fit(x, y, epochs=3, verbose=0).history == net.fit(x, y, epochs=3, verbose=0).history
    for a, b in zip(seq.get_weights(), net.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert isinstance(seq, Network) and Sequential is Network


def test_the_ways_of_giving_a_sequential_its_input():
    by_keyword = Sequential(layers=[Input((12,), name="features"), Dense(3)])
    assert by_keyword.input_names == ["features"] and by_keyword.output_shape == (3,)
    assert Sequential(layers=[Dense(3)], input_shape=(12,)).input_shape == (12,)
    later = Sequential(name="later")
    later.add(Input((12,))).add(Dense(3))
    assert later.output_shape == (3,) and later.name == "later"
    ids = Sequential([Input((5,), dtype="int64"), neuro.Embedding(10, 4), neuro.LSTM(3)])
    assert ids.output_shape == (3,)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: Sequential([Dense(3), Dense(2)]), ValueError,
         r"Sequential\(\[\.\.\.\]\) \(a Network\) needs the shape of its input: start the list with "
         r"neuro\.Input\(shape\)"),
        (lambda: Sequential().add(Dense(3)), ValueError, r"has no input yet: add\(neuro\.Input\(shape\)\) first"),
        (lambda: Sequential().summary(), ValueError, r"has no input yet"),
        (lambda: Sequential([Input((3,)), Input((3,))]), ValueError, r"already has its input \(None, 3\)"),
        (lambda: Sequential([Input((3,)), "relu"]), TypeError, r"layer must be a neuro Layer, got str"),
        (lambda: Sequential(layers=[Input((3,))], input_shape=(3,)), ValueError, r"the input is given twice"),
        (lambda: Sequential([Input((3,))], layers=[Dense(2)]), TypeError, r"give the layers once"),
        (lambda: Dense(3, input_shape=(4,)), TypeError,
         r"Dense\(\) got an unexpected keyword argument 'input_shape'; a layer takes no input shape: start the "
         r"model with neuro\.Input\(shape\)"),
    ],
)
def test_a_sequential_without_an_input_is_told_how_to_give_one(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_compile_without_an_optimizer_uses_rmsprop_as_keras():
    model = Sequential([Input((3,)), Dense(1)], seed=0)
    model.compile(loss="mse")
    assert type(model.optimizer) is RMSprop and model.optimizer.get_config() == RMSprop().get_config()
    with pytest.raises(ValueError, match="compile needs a loss, got loss=None"):
        model.compile(optimizer="adam")


def test_compile_with_loss_weights_and_metrics_on_a_graph_built_without_them(float64):
    rng = np.random.default_rng(0)
    inp = Input((4,))
    h = Dense(8, activation="tanh")(inp)
    model = Model(inp, [Dense(1, name="value")(h), Dense(1, activation="sigmoid", name="flag")(h)], seed=0)
    model.compile(loss=["mse", "binary_crossentropy"], optimizer="adam", loss_weights=[1.0, 0.5],
                  metrics=[[], ["accuracy"]])
    x = rng.standard_normal((32, 4))
    value, flag = rng.standard_normal((32, 1)), rng.integers(0, 2, (32, 1)).astype(float)
    model.fit(x, [value, flag], epochs=2, verbose=0)
    logs = model.evaluate(x, [value, flag])
    assert sorted(logs) == ["flag_accuracy", "flag_loss", "loss", "value_loss"]
    v, f = model.predict(x)
    mse = float(((v - value) ** 2).mean())
    bce = float(-(flag * np.log(f) + (1 - flag) * np.log(1 - f)).mean())
    assert logs["value_loss"] == pytest.approx(mse, rel=1e-10)
    assert logs["flag_loss"] == pytest.approx(bce, rel=1e-10)
    assert logs["loss"] == pytest.approx(mse + 0.5 * bce, rel=1e-10)


def test_model_called_on_arrays_predicts_and_on_tensors_nests():
    x, y = _data()
    model = Sequential([Input((12,)), Dense(8, activation="relu"), Dense(4)], seed=0)
    model.compile(loss=CrossEntropy(from_logits=True), optimizer="adam")
    model.fit(x, y, epochs=1, verbose=0)
    out = model(x)
    np.testing.assert_array_equal(out, model.predict(x))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)  # the loss's softmax, as predict
    layer_out = model.layers[0](x)  # a layer on arrays, for comparison: the same habit
    assert layer_out.shape == (len(x), 8)
    outer_in = Input((12,))
    outer = Model(outer_in, model(outer_in))
    np.testing.assert_array_equal(outer.predict(x), model.layers[1](model.layers[0](x)))


def test_evaluate_uses_the_metrics_given_to_compile_then_to_fit():
    x, y = _data()
    model = Sequential([Input((12,)), Dense(4, activation="softmax")], seed=0)
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy", "f1_score"])
    assert sorted(model.evaluate(x, y)) == ["accuracy", "f1_score", "loss"]
    model.fit(x, y, epochs=1, metrics=["precision"], verbose=0)
    assert sorted(model.evaluate(x, y)) == ["loss", "precision"]


# -- 3. Keras's argument names ----------------------------------------------------------------------------
def _cnn(new_names: bool) -> Network:
    if new_names:
        conv = Conv2D(3, 3, strides=1, padding="same", activation="relu", kernel_initializer="glorot_uniform",
                      bias_initializer="ones")
        pool = MaxPool2D(2, strides=2)
        dense = Dense(3, activation="softmax", kernel_initializer="he_normal", bias_initializer="zeros")
        opt = Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7)
    else:
        with pytest.warns(DeprecationWarning) as record:
            conv = Conv2D(3, 3, stride=1, padding="same", activation="relu", weights_initializer="glorot_uniform",
                          biases_initializer="ones")
            pool = MaxPool2D(2, stride=2)
            dense = Dense(3, activation="softmax", weights_initializer="he_normal", biases_initializer="zeros")
            opt = Adam(learning_rate=0.01, beta1=0.8, beta2=0.99, epsilon=1e-7)
        assert len(record) == 8
    return Sequential([Input((6, 6, 1)), conv, pool, Flatten(), dense], loss="crossentropy", optimizer=opt,
                      seed=1)


def test_keras_names_train_exactly_as_the_old_ones():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 6, 6, 1)), rng.integers(0, 3, 20)
    new, old = _cnn(True), _cnn(False)
    new.fit(x, y, batch_size=5, epochs=2, verbose=0)
    old.fit(x, y, batch_size=5, epochs=2, verbose=0)
    for a, b in zip(new.get_weights(), old.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [layer.get_config() for layer in new.layers] == [layer.get_config() for layer in old.layers]
    assert new.optimizer.get_config() == old.optimizer.get_config()


@pytest.mark.parametrize(
    ("make", "old", "new", "attr", "value"),
    [
        (lambda: Conv2D(2, 3, stride=2), "stride", "strides", "strides", (2, 2)),
        (lambda: MaxPool2D(3, stride=1), "stride", "strides", "strides", (1, 1)),
        (lambda: AvgPool2D(3, stride=1), "stride", "strides", "strides", (1, 1)),
        (lambda: Dense(2, weights_initializer="ones"), "weights_initializer", "kernel_initializer",
         "kernel_initializer", neuro.initializers.Ones()),
        (lambda: Conv2D(2, 3, biases_initializer="ones"), "biases_initializer", "bias_initializer",
         "bias_initializer", neuro.initializers.Ones()),
        (lambda: Adam(beta1=0.5), "beta1", "beta_1", "beta_1", 0.5),
        (lambda: Adam(beta2=0.5), "beta2", "beta_2", "beta_2", 0.5),
        (lambda: RMSprop(decay_rate=0.5), "decay_rate", "rho", "rho", 0.5),
        (lambda: Adadelta(decay_rate=0.5), "decay_rate", "rho", "rho", 0.5),
        (lambda: neuro.callbacks.ModelCheckpoint(path="best.h5"), "path", "filepath", "path", "best.h5"),
        (lambda: neuro.callbacks.CSVLogger(path="log.csv"), "path", "filename", "path", pathlib.Path("log.csv")),
    ],
)
def test_each_old_spelling_warns_naming_the_new_one(make, old, new, attr, value):
    with pytest.warns(DeprecationWarning, match=rf"\({old}=\.\.\.\) is deprecated .*; use {new}= \(Keras's name\)"):
        obj = make()
    got = getattr(obj, attr)
    assert (got.get_config() == value.get_config()) if hasattr(value, "get_config") else got == value


def test_old_attribute_names_read_the_new_ones_with_a_warning():
    conv = Conv2D(2, 3, strides=2)
    with pytest.warns(DeprecationWarning, match=r"Conv2D\.stride is deprecated .*read \.strides"):
        assert conv.stride == (2, 2)
    with pytest.warns(DeprecationWarning, match=r"Dense\.weights_initializer is deprecated"):
        assert Dense(2).weights_initializer is not None


def test_both_spellings_at_once_is_an_error():
    with pytest.raises(TypeError, match=r"Conv2D\(\) got both 'strides' and its old spelling 'stride'"):
        Conv2D(2, 3, stride=2, strides=2)


@pytest.mark.parametrize(
    ("call", "suggestion"),
    [
        (lambda: Adam(lr=0.1), r"Adam\(\) got an unexpected keyword argument 'lr'; did you mean 'learning_rate'\?"),
        (lambda: Adam(betas=(0.9, 0.99)), r"'betas'; did you mean 'beta_1' and 'beta_2'\?"),
        (lambda: AdamW(eps=1e-7), r"AdamW\(\) got an unexpected keyword argument 'eps'; did you mean 'epsilon'\?"),
        (lambda: AdamW(decay=0.1), r"did you mean 'weight_decay'\?"),
        (lambda: RMSprop(alpha=0.9), r"did you mean 'rho'\?"),
        (lambda: SGD(learning_rat=0.1), r"did you mean 'learning_rate'\?"),
        (lambda: Dense(3, activaton="relu"), r"Dense\(\) got an unexpected keyword argument 'activaton'; did you mean 'activation'\?"),
        (lambda: Conv2D(4, 3, stides=2), r"did you mean 'strides'\?"),
        (lambda: Dropout(p=0.5), r"Dropout\(\) got an unexpected keyword argument 'p'; did you mean 'rate'\?"),
        (lambda: neuro.LSTM(4, return_sequence=True), r"did you mean 'return_sequences'\?"),
        (lambda: CrossEntropy(from_logit=True), r"did you mean 'from_logits'\?"),
        (lambda: schedules.ExponentialDecay(0.1, 100, 0.9, stair_case=True), r"did you mean 'staircase'\?"),
        (lambda: neuro.callbacks.EarlyStopping(patiense=3), r"did you mean 'patience'\?"),
        (lambda: Network((3,), sed=0), r"Network\(\) got an unexpected keyword argument 'sed'; did you mean 'seed'\?"),
        (lambda: Sequential([Input((3,)), Dense(1)]).compile(loss="mse", optimiser="adam"),
         r"Model\.compile\(\) got an unexpected keyword argument 'optimiser'; did you mean 'optimizer'\?"),
        (lambda: Sequential([Input((3,)), Dense(1)], loss="mse").fit(np.zeros((2, 3)), np.zeros(2), epoch=3),
         r"Model\.fit\(\) got an unexpected keyword argument 'epoch'; did you mean 'epochs'\?"),
        (lambda: Sequential([Input((3,)), Dense(1)], loss="mse").evaluate(np.zeros((2, 3)), np.zeros(2),
                                                                         batchsize=2),
         r"did you mean 'batch_size'\?"),
        (lambda: Sequential([Input((3,)), Dense(1)]).predict(np.zeros((2, 3)), batch=2), r"did you mean 'batch_size'\?"),
    ],
)
def test_a_wrong_keyword_suggests_the_closest_valid_one(call, suggestion):
    with pytest.raises(TypeError, match=suggestion) as info:
        call()
    assert "It takes: " in str(info.value)


def test_a_wrong_keyword_far_from_every_name_lists_the_valid_ones():
    with pytest.raises(TypeError, match=r"^Dense\(\) got an unexpected keyword argument 'xyzzy'\. It takes: units, "
                                        r"activation, kernel_initializer, bias_initializer, kernel_regularizer, "
                                        r"bias_regularizer, name$"):
        Dense(3, xyzzy=1)


def test_a_subclass_may_take_keywords_of_its_own():
    class Scaled(Dense):
        def __init__(self, units: int, scale: float = 1.0, **kwargs) -> None:
            super().__init__(units, **kwargs)
            self.scale = scale

    layer = Scaled(3, scale=2.0, activation="relu", kernel_initializer="ones")
    assert layer.scale == 2.0 and layer.activation.key == "relu"
    with pytest.raises(TypeError, match=r"Scaled\(\) got an unexpected keyword argument 'activaton'; did you mean "
                                        r"'activation'\?"):
        Scaled(3, activaton="relu")
    with pytest.warns(DeprecationWarning, match="use kernel_initializer="):
        Scaled(3, weights_initializer="ones")


def test_a_layer_regularizer_acts_on_that_layer_only(float64):
    """Keras's ``kernel_regularizer`` per layer (with neuro's L2 convention λ/2·Σw², see the README)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 5)), rng.standard_normal((10, 1))

    def build(**kw):
        return Sequential([Input((5,)), Dense(4, activation="tanh", **kw), Dense(1)], loss="mse",
                          optimizer="sgd", seed=0)

    plain, reg = build(), build(kernel_regularizer=L2(0.3), bias_regularizer=L1(0.2))
    loss0 = plain.compute_gradients(x, y)
    grads0 = [g.copy() for g in plain.grads]
    loss1 = reg.compute_gradients(x, y)
    w, b = reg.layers[0].params["kernel"], reg.layers[0].params["bias"]
    assert loss1 == pytest.approx(loss0 + 0.15 * float((w**2).sum()) + 0.2 * float(np.abs(b).sum()), rel=1e-12)
    np.testing.assert_allclose(reg.grads[0], grads0[0] + 0.3 * w, rtol=1e-12)
    np.testing.assert_allclose(reg.grads[1], grads0[1] + 0.2 * np.sign(b), rtol=1e-12)
    np.testing.assert_array_equal(reg.grads[2], grads0[2])  # the last layer has none
    # the model's regularizer acts on the other kernels; a layer's own replaces it for that layer
    both = Sequential([Input((5,)), Dense(4, activation="tanh", kernel_regularizer=L2(0.3)), Dense(1)],
                      loss="mse", optimizer="sgd", regularizer=L2(1.0), seed=0)
    w0, w1 = (layer.params["kernel"] for layer in both.layers)
    assert both.compute_gradients(x, y) == pytest.approx(
        plain.compute_gradients(x, y) + 0.15 * float((w0**2).sum()) + 0.5 * float((w1**2).sum()), rel=1e-12
    )


def test_a_layer_regularizer_is_saved(tmp_path):
    model = Sequential([Input((5,)), Dense(4, kernel_regularizer="l2"), Dense(1)],
                       loss="mse", optimizer="adam", seed=0)
    model.save(tmp_path / "m.h5")
    again = Network.load(tmp_path / "m.h5")
    assert again.layers[0].kernel_regularizer.get_config() == {"lam": 0.01}
    assert again.layers[1].kernel_regularizer is None
    assert Dense(2).get_config() == Dense.from_config(Dense(2).get_config()).get_config()


@pytest.mark.parametrize(
    "make",
    [
        lambda lr: AdamW(learning_rate=lr, weight_decay=0.1, beta_1=0.8, beta_2=0.95, epsilon=1e-6),
        lambda lr: Adam(learning_rate=lr, weight_decay=0.1, beta_1=0.8, beta_2=0.95, epsilon=1e-6),
    ],
    ids=["AdamW", "Adam(weight_decay)"],
)
def test_decoupled_weight_decay_matches_torch_adamw(torch, float64, make):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((4, 3)), rng.standard_normal(3)]
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = make(0.05)
    ref = torch.optim.AdamW(tparams, lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)
    for _ in range(6):
        grads = [rng.standard_normal(p.shape) for p in params]
        opt.step(params, grads)
        for t, g in zip(tparams, grads, strict=True):
            t.grad = torch.tensor(g)
        ref.step()
    for p, t in zip(params, tparams, strict=True):
        np.testing.assert_allclose(p, t.detach().numpy(), rtol=1e-13, atol=1e-15)


def test_adamw_with_a_schedule_decays_with_each_step_s_rate(torch, float64):
    rng = np.random.default_rng(1)
    params = [rng.standard_normal(5)]
    tparams = [torch.tensor(params[0].copy(), requires_grad=True)]
    sched = schedules.ExponentialDecay(0.1, 2, 0.5)
    opt = AdamW(sched, weight_decay=0.2)
    ref = torch.optim.AdamW(tparams, lr=0.1, weight_decay=0.2)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(ref, lambda step: 0.5 ** (step / 2))
    for _ in range(5):
        g = rng.standard_normal(5)
        opt.step(params, [g])
        tparams[0].grad = torch.tensor(g)
        ref.step()
        lr_sched.step()
    np.testing.assert_allclose(params[0], tparams[0].detach().numpy(), rtol=1e-13)


def test_adamw_trains_saves_and_resumes(tmp_path):
    x, y = _data()
    model = Sequential([Input((12,)), Dense(8, activation="relu"), Dense(4)], seed=0)
    model.compile(loss=CrossEntropy(from_logits=True), optimizer=AdamW(learning_rate=0.01, weight_decay=0.05))
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "m.h5")
    again = Network.load(tmp_path / "m.h5")
    assert again.optimizer.get_config() == model.optimizer.get_config()
    assert again.optimizer.get_config()["weight_decay"] == 0.05
    model.fit(x, y, epochs=1, shuffle=False, verbose=0)
    again.fit(x, y, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Adam(weight_decay=-0.1), r"weight_decay must be a finite number >= 0 or None, got -0.1"),
        (lambda: Adam(weight_decay=math.inf), r"weight_decay must be a finite number >= 0 or None, got inf"),
        (lambda: AdamW(weight_decay=None), r"weight_decay of AdamW must be a finite number >= 0, got None"),
        (lambda: Adam(beta_1=1.0), r"beta_1 must be a number in \[0.0, 1.0\), got 1.0"),
        (lambda: RMSprop(rho=-0.1), r"rho must be a number in \[0.0, 1.0\), got -0.1"),
    ],
)
def test_optimizer_arguments_out_of_range(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# -- schedules in Keras's order ---------------------------------------------------------------------------
def test_exponential_decay_takes_keras_s_arguments_in_keras_s_order():
    s = schedules.ExponentialDecay(1e-3, 100, 0.9)
    assert s.decay_steps == 100 and s.decay_rate == 0.9
    for step in (0, 1, 50, 100, 250):
        assert s(step) == pytest.approx(1e-3 * 0.9 ** (step / 100), rel=1e-15)
    stairs = schedules.ExponentialDecay(initial_learning_rate=1e-3, decay_steps=100, decay_rate=0.9, staircase=True)
    assert [stairs(t) for t in (0, 99, 100, 250)] == pytest.approx([1e-3, 1e-3, 9e-4, 1e-3 * 0.81], rel=1e-15)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: schedules.ExponentialDecay(1e-3, 0.9, 100),  # neuro's former order
         r"decay_steps must be a whole number of updates >= 1, got 0.9; the arguments are "
         r"ExponentialDecay\(initial_learning_rate, decay_steps, decay_rate, staircase=False\), as Keras"),
        (lambda: schedules.ExponentialDecay(1e-3, 100, 100),
         r"decay_rate must be a number in \(0, 1\] .*, got 100; the arguments are ExponentialDecay"),
        (lambda: schedules.ExponentialDecay(1e-3, 100, 0.0), r"decay_rate must be a number in \(0, 1\]"),
        (lambda: schedules.StepDecay(0.1, 2.0, 10), r"decay_rate must be a number in \(0, 1\] .*, got 2.0"),
        (lambda: schedules.ExponentialDecay(1e-3, 100, 0.9, staircase=1), r"staircase must be True or False"),
    ],
)
def test_a_schedule_refuses_values_out_of_range_naming_the_argument(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_a_floating_point_error_names_the_learning_rate_and_its_schedule():
    x, y = _data()
    sched = schedules.ExponentialDecay(1e38, 10, 0.5)
    model = Sequential([Input((12,)), Dense(4, activation="softmax")], loss="crossentropy", optimizer=SGD(sched),
                       seed=0)
    with pytest.raises(FloatingPointError, match=r"at epoch 1, batch (\d+) \(learning rate ([0-9.e+]+) from "
                                                 r"ExponentialDecay\(initial_learning_rate=1e\+38, decay_steps=10, "
                                                 r"decay_rate=0.5, staircase=False\) at update (\d+)\)") as info:
        model.fit(x, y, epochs=1, verbose=0)
    batch, rate, update = re.search(r"batch (\d+) \(learning rate ([0-9.e+]+) .* at update (\d+)", str(info.value)).groups()
    assert int(update) == int(batch) - 1 == model.optimizer.iterations  # the failed step's own rate
    assert float(rate) == pytest.approx(sched(int(update)), rel=1e-5)


# -- files written with the old names load, silently ------------------------------------------------------
@pytest.mark.parametrize("name", ["model_v1.h5", "model_v2.h5"])
def test_files_of_earlier_versions_load_without_a_warning(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = Network.load(FIXTURES / name)
    assert net.layers[0].strides == (1, 1) and net.optimizer.beta_1 == 0.9


def test_a_version_3_file_with_the_old_keys_loads_without_a_warning(tmp_path):
    x, y = _data(40, 12, 3)
    model = Sequential([Input((12,)), Dense(8, activation="relu"), Dense(3, activation="softmax")], seed=0)
    model.compile(loss="crossentropy", optimizer=Adam(learning_rate=0.01, beta_1=0.8))
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.h5"
    model.save(path)
    with h5py.File(path, "r+") as f:
        text = f.attrs["config"]
        for new, old in [('"kernel_initializer"', '"weights_initializer"'), ('"bias_initializer"', '"biases_initializer"'),
                         ('"beta_1"', '"beta1"'), ('"beta_2"', '"beta2"'), (', "from_logits": false', "")]:
            assert new in text
            text = text.replace(new, old)
        json.loads(text)
        f.attrs["config"] = text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = Network.load(path)
    assert again.optimizer.beta_1 == 0.8 and again.loss.from_logits is False
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


def test_more_keras_habits_are_taken():
    """Sparse ids of shape (N, 1), sample weights of shape (N, 1), class_weight keyed by whole-number floats
    (labels read as floats) and evaluate(return_dict=False) work as in Keras (each was refused)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 4)).astype(np.float32)
    y = rng.integers(0, 3, 12)
    w = rng.uniform(0.5, 2, 12)

    def net():
        return neuro.Sequential([neuro.Input((4,)), neuro.Dense(3, activation="softmax")],
                                loss="sparse_categorical_crossentropy", optimizer="sgd", seed=0)

    a, b = net(), net()
    a.fit(x, y, batch_size=4, sample_weight=w, class_weight={0: 2.0, 1: 1.0}, shuffle=False, verbose=0)
    b.fit(x, y[:, None], batch_size=4, sample_weight=w[:, None], class_weight={0.0: 2.0, 1.0: 1.0},
          shuffle=False, verbose=0)
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)
    logs = a.evaluate(x, y)
    assert a.evaluate(x, y[:, None], return_dict=False) == [logs["loss"], logs["accuracy"]]
    assert a.evaluate(x, y, metrics=[], return_dict=False) == logs["loss"]
    with pytest.raises(ValueError, match=r"class_weight must map class ids in \[0, 2\] to weights"):
        a.fit(x, y, class_weight={0.5: 1.0}, verbose=0)
    with pytest.raises(TypeError, match=r"return_dict must be True or False, got 1"):
        a.evaluate(x, y, return_dict=1)


# -- a second Keras user's round (a helper's review) --------------------------------------------------------
def test_keras3_batch_hook_names_set_model_and_params_work_and_evaluation_hooks_are_refused():
    """on_train_batch_end was accepted and never called (a stop_training set there did nothing); a callback
    with on_test_* hooks is refused rather than ignored."""
    import neuro
    from neuro.callbacks import Callback

    class K(Callback):
        def __init__(self):
            self.calls = []

        def set_model(self, model):
            self.calls.append("set_model")
            super().set_model(model)

        def on_train_batch_begin(self, batch, logs):
            self.calls.append(("begin", batch))

        def on_train_batch_end(self, batch, logs):
            self.calls.append(("end", batch, "loss" in logs))
            if batch == 1:
                self.model.stop_training = True

    x = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    net = neuro.Network((3,), "mse", "sgd", seed=0)
    net.add(neuro.Dense(1))
    k = K()
    history = net.fit(x, x[:, :1], batch_size=10, epochs=3, verbose=0, callbacks=[k])
    assert k.calls == ["set_model", ("begin", 0), ("end", 0, True), ("begin", 1), ("end", 1, True)]
    assert k.params == {"verbose": 0, "epochs": 3, "steps": 4} and len(history.epoch) == 1

    class Tests(Callback):
        def on_test_batch_end(self, batch, logs):
            pass

    with pytest.raises(TypeError, match=r"defines \['on_test_batch_end'\], which fit never calls"):
        net.fit(x, x[:, :1], epochs=1, verbose=0, callbacks=[Tests()])


def test_keras_spellings_that_would_go_wrong_are_refused_with_the_fix():
    import neuro
    from neuro import initializers

    with pytest.raises(TypeError, match=r"Activation is the base class of neuro's activations, not Keras's Activation layer; for Activation\('relu'\) write neuro.activations.get\('relu'\)"):
        neuro.Activation("relu")
    with pytest.raises(TypeError, match="activation must be a name, an Activation or its class, got the function"):
        neuro.Dense(3, activation=np.tanh)
    net = neuro.Network((3,), seed=0)
    net.add(neuro.Dense(2))
    with pytest.raises(TypeError, match=r"compile takes \(loss, optimizer\), Keras's compile takes \(optimizer, loss\): got loss='adam'"):
        net.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(TypeError, match=r"It takes no arguments \(the model's seed= seeds every initializer\)"):
        initializers.GlorotUniform(seed=1)
    net.compile("mse", "sgd")
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match="shuffle must be True or False, got 'batch'"):
        net.fit(x, np.zeros((4, 2), np.float32), shuffle="batch", verbose=0)
    net.fit(x, np.zeros((4, 2), np.float32), shuffle=1, verbose=0)  # Keras reads it by truth
    from neuro.callbacks import Callback

    class Super(Callback):  # Keras's signature: logs defaults to None
        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch)

    net.fit(x, np.zeros((4, 2), np.float32), verbose=0, callbacks=[Super()])
