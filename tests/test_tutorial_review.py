"""Defects found by porting well-known Keras and PyTorch tutorials to neuro, each test failing on the code
before its fix."""

from __future__ import annotations

import numpy as np
import pytest

import neuro
from neuro import Dense, Input, metrics


def _binary_model():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x[:, 0] + 0.3 * rng.standard_normal(64) > 0.4).astype(np.float32)
    m = neuro.Sequential([Input((3,)), Dense(1, activation="sigmoid")], seed=0)
    m.compile(loss="binary_crossentropy", optimizer="sgd")
    return m, x, y


def test_neuros_own_metric_functions_in_evaluate_are_their_streaming_metrics():
    """metrics.get wrapped neuro.metrics.precision as fn(y_true, y_pred) averaged per batch: precision is
    fn(y_pred, y_true), so evaluate reported the recall (0.05 for 1.0), averaged over batches."""
    m, x, y = _binary_model()
    own = [metrics.precision, metrics.recall, metrics.f1_score, metrics.accuracy, metrics.roc_auc_score]
    got = m.evaluate(x, y, batch_size=7, metrics=own, verbose=0, return_dict=True)
    want = m.evaluate(x, y, batch_size=7, metrics=["precision", "recall", "f1", "accuracy", "auc"], verbose=0,
                      return_dict=True)
    assert list(got) == ["loss", "precision", "recall", "f1_score", "accuracy", "roc_auc_score"]  # their names
    assert list(got.values()) == list(want.values())
    p = m.predict(x)
    assert got["precision"] == metrics.precision(p, y) and got["recall"] == metrics.recall(p, y)
    assert got["f1_score"] == metrics.f1_score(y, p) and got["roc_auc_score"] == metrics.roc_auc_score(y, p)
    assert got["precision"] != got["recall"]  # the data tell them apart


class _Weighted(neuro.Layer):
    """y = x @ w, its backward writing dL/dw the documented way (through accumulate) or adding into grads."""

    def __init__(self, units: int = 2, adds: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.adds = units, adds

    def compute_output_shape(self, input_shape):
        return (self.units,)

    def param_specs(self, input_shape):
        return {"w": ((input_shape[-1], self.units), neuro.initializers.get("glorot_uniform"))}

    def forward(self, x, training=False, rng=None):
        return x @ self.params["w"], x

    def backward(self, grad, x):
        if self.adds:
            self.grads["w"] += x.T @ grad  # what "adds its gradients into self.grads" invited
        else:
            with self.accumulate() as g:
                np.matmul(x.T, grad, out=g["w"])
        return grad @ self.params["w"].T

    def get_config(self):
        return {**super().get_config(), "units": self.units, "adds": self.adds}


@pytest.mark.parametrize("shared", [False, True])
def test_a_custom_layer_adding_into_grads_gets_each_steps_gradient_alone(shared):
    """Gradients are cleared lazily (accumulate() knows a step's first write): a backward adding into
    self.grads directly summed every step's gradients, and trained silently wrong (weights 1.96 off)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 3))
    y = rng.standard_normal((32, 2))
    got = []
    for adds in (False, True):
        with neuro.backend.dtype_scope("float64"):
            inp = Input((3,))
            layer = _Weighted(2, adds=adds)
            out = layer(layer(Dense(2)(inp))) if shared else layer(Dense(2)(inp))
            m = neuro.Model(inp, out, seed=0)
        m.compile(loss="mse", optimizer=neuro.optimizers.SGD(0.1))
        m.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
        got.append(m.get_weights())
    for a, b in zip(*got, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-15)


def test_conv2d_keeps_two_sets_of_piece_buffers_whatever_the_batch_sizes():
    """The piece buffers of a training window matrix were keyed by the piece's sample count: every batch
    size (a data set's last partial batch, fits on data of other sizes) kept a set of its own (56 sets,
    14 MiB after batches of 457 to 512 samples for one small layer)."""
    conv = neuro.Conv2D(8, 3, padding="same")
    m = neuro.Sequential([Input((8, 8, 4)), conv, neuro.Flatten(), Dense(1)], seed=0)
    m.compile(loss="mse", optimizer="sgd")
    rng = np.random.default_rng(0)
    for n in range(457, 471):  # more than one piece each (2,304 entries per sample), every last piece other
        x = rng.standard_normal((n, 8, 8, 4)).astype(np.float32)
        m.fit(x, np.zeros((n, 1), np.float32), batch_size=n, epochs=1, verbose=0)
    keys = {k for work in conv._work_pool for k in work if isinstance(k, tuple) and k[0] == "piece"}
    assert 1 <= len({k[:2] for k in keys}) <= 2, keys


def test_a_fit_on_lazy_images_cut_short_leaves_no_reading_threads(tmp_path):
    """The epoch's batch generator was never closed when fit raised: every kept exception (a notebook keeps
    the last one) held two image-reading threads and their prefetched batches."""
    import threading

    from PIL import Image

    from neuro.callbacks import Callback
    from neuro.data import ImageDataSet

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "train" / c).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "train" / c / f"{i}.png")
    data = ImageDataSet.from_dir(tmp_path, image_size=(8, 8), channels=3, valid_frac=0.25, lazy=True)
    m = neuro.Sequential([Input((8, 8, 3)), neuro.Flatten(), Dense(2, activation="softmax")], seed=0)
    m.compile(loss="crossentropy", optimizer="sgd")

    class Boom(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                raise RuntimeError("boom")

    kept = []
    for _ in range(3):
        with pytest.raises(RuntimeError, match="boom") as caught:
            m.fit(data, batch_size=4, epochs=2, verbose=0, callbacks=[Boom()])
        kept.append(caught.value)
    assert [t.name for t in threading.enumerate() if "neuro-images" in t.name] == []


class _Times(neuro.Layer):
    """A custom layer with a constructor argument and no get_config of its own."""

    def __init__(self, alpha: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.alpha = alpha

    def compute_output_shape(self, input_shape):
        return input_shape

    def forward(self, x, training=False, rng=None):
        return x * self.alpha, None

    def backward(self, grad, ctx):
        return grad * self.alpha


def test_a_custom_layer_without_get_config_saves_its_constructor_arguments(tmp_path):
    """The base get_config returned only the name: Times(alpha=3.0) came back from a file as Times(1.0),
    predicting other values, without a word (Keras 3 captures the arguments)."""
    m = neuro.Sequential([Input((3,)), _Times(3.0), Dense(2)], seed=0)
    m.compile(loss="mse", optimizer="sgd")
    m.save(tmp_path / "m.h5")
    back = neuro.load_model(tmp_path / "m.h5", custom_objects={"_Times": _Times})
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(back.predict(x), m.predict(x))

    class Subclassed(Dense):  # a built-in layer's subclass adding an argument keeps it too
        def __init__(self, units, scale=2.0, **kwargs):
            super().__init__(units, **kwargs)
            self.scale = scale

    assert Subclassed(4, scale=5.0, activation="relu").get_config()["scale"] == 5.0
    with pytest.raises(TypeError, match=r"^layer '_times' \(_Times\) was given constructor arguments that are "
                                        r"not plain JSON values \(alpha\): override get_config"):
        _Times(np.sin).get_config()


@pytest.mark.parametrize("activation, loss", [("softmax", "binary_crossentropy"), ("softmax", "mse"),
                                              ("linear", "softmax_crossentropy")])
def test_a_softmax_over_one_unit_is_refused(activation, loss):
    """Dense(1, "softmax") with binary cross-entropy was accepted and trained nothing (the output is always
    1, the weights moved by exactly 0), as a softmax cross-entropy on one linear unit; the error for a
    one-unit sigmoid with a categorical loss recommended Dense(1, activation="softmax")."""
    m = neuro.Sequential([Input((3,)), Dense(1, activation=activation)], seed=0)
    with pytest.raises(ValueError, match=r"is 1 whatever its input: nothing would train\. For two "
                                         r'classes end (it|the output) in Dense\(1, activation="sigmoid"\) with '
                                         r"binary_crossentropy"):
        m.compile(loss=loss, optimizer="sgd")


def test_a_one_unit_sigmoid_with_a_categorical_loss_is_not_told_to_use_a_one_unit_softmax():
    m = neuro.Sequential([Input((3,)), Dense(1, activation="sigmoid")], seed=0)
    with pytest.raises(ValueError) as caught:
        m.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    assert 'Dense(1, activation="softmax")' not in str(caught.value)
    assert "binary_crossentropy" in str(caught.value)


def test_reshape_is_keras_reshape_and_names_what_it_cannot_make():
    """Keras's Reshape was missing (a convolutional autoencoder could not be ported), and the recurrent
    layers' error told users to use it."""
    from neuro.layers import BatchNormalization, MaxPooling2D, Reshape

    assert MaxPooling2D is neuro.MaxPool2D and BatchNormalization is neuro.BatchNorm
    m = neuro.Sequential([Input((12,)), Reshape((4, -1)), neuro.LSTM(2)], seed=0)
    assert m.layers[0].output_shape == (4, 3)
    x = np.arange(24, dtype=np.float32).reshape(2, 12)
    np.testing.assert_array_equal(m.layers[0](x), x.reshape(2, 4, 3))
    with pytest.raises(ValueError, match=r"Reshape's target_shape \(5, 2\) holds 10 values, but the input of "
                                         r"shape \(12,\) holds 12 per sample$"):
        neuro.Sequential([Input((12,)), Reshape((5, 2))])
    with pytest.raises(ValueError, match=r"Reshape cannot make target_shape \(5, -1\) of an input of shape "
                                         r"\(12,\) \(12 values per sample\)$"):
        neuro.Sequential([Input((12,)), Reshape((5, -1))])
    for bad in [(), (-1, -1), (0, 3), (2.0, 3), "ab", None]:
        with pytest.raises(ValueError, match=r"^target_shape must be a tuple of 1 to 32 positive integers"):
            Reshape(bad)
    with pytest.raises(ValueError, match=r"a Reshape layer, or x\[\.\.\., None\] for one feature per step"):
        neuro.Sequential([Input((12,)), neuro.LSTM(2)])


def test_a_nested_models_config_refuses_a_layer_shared_inside_and_out():
    """save refused such a model, but the nested model's own config wrote the shared layer twice: rebuilt
    from it, the two calls had untied weights, without a word."""
    i = Input((3,))
    shared = Dense(3, activation="tanh", name="shared")
    inner = neuro.Model(i, shared(i), name="inner")
    a = Input((3,), name="a")
    model = neuro.Model(a, Dense(1, name="head")(shared(inner(a))))
    with pytest.raises(ValueError, match=r"^a layer is used both inside a nested model and outside it"):
        neuro.registry.serialize(model.as_layer())
    inner.as_layer().get_config()  # alone, the nested model is fine


def test_a_graph_model_that_computes_nothing_says_so():
    """Model(a, a) with a loss was accepted, then fit and save said 'the network has no layers; add some with
    add()': a graph model has no add()."""
    a = Input((3,))
    np.testing.assert_array_equal(neuro.Model(a, a).predict(np.ones((1, 3))), np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"^the model 'model(_\d+)?' computes nothing \(each output is one of its "
                                         r"inputs\): a loss would have nothing to train; give it a layer$"):
        neuro.Model(a, a, loss="mse", optimizer="sgd")


def test_keras_one_batch_methods_weights_of_a_layer_and_count_params(tmp_path):
    """train_on_batch, test_on_batch, predict_on_batch, layer.get_weights/set_weights, model.count_params,
    fit(verbose="auto") and a CSVLogger in a folder still to make: Keras habits that failed."""
    from neuro.callbacks import CSVLogger

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 3)).astype(np.float32), rng.integers(0, 2, 16)

    def make():
        m = neuro.Sequential([Input((3,)), Dense(4), neuro.BatchNorm(), Dense(2, activation="softmax")], seed=0)
        m.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        return m

    a, b = make(), make()
    before = a.test_on_batch(x, y)
    assert before == list(a.evaluate(x, y, batch_size=16, verbose=0, return_dict=True).values())
    trained = a.train_on_batch(x, y)  # the loss before the step (batch norm on the batch's statistics)
    logs = b.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose="auto",
                 callbacks=[CSVLogger(tmp_path / "new" / "log.csv")]).history
    assert trained == [logs["loss"][0], logs["accuracy"][0]]
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert (tmp_path / "new" / "log.csv").read_text().startswith("epoch,")
    np.testing.assert_array_equal(a.predict_on_batch(x), a.predict(x))
    assert a.count_params() == 3 * 4 + 4 + 4 * 4 + 4 * 2 + 2  # BatchNorm's running statistics included
    dense = a.layers[0]
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 2, bias])
    np.testing.assert_array_equal(dense.params["kernel"], kernel * 2)
    with pytest.raises(ValueError, match=r"^weights\[0\] \(dense\.kernel\) must have shape \(3, 4\), got \(4, 3\)$"):
        dense.set_weights([kernel.T, bias])
    with pytest.raises(ValueError, match=r"^verbose must be 0, 1, 2 or 'auto', got 'loud'$"):
        a.fit(x, y, verbose="loud")


class _Widening(neuro.Layer):
    """Returns x + a float64 constant: NumPy widens a float32 x to float64."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def forward(self, x, training=False, rng=None):
        return x + np.ones(x.shape[-1]), None

    def backward(self, grad, ctx):
        return grad


def test_a_custom_layer_that_widens_the_dtype_is_named():
    """A float32 model's output became float64 behind a user's layer, without a word ('keep the dtype' is
    a rule of the library, and every later layer computed in float64)."""
    m = neuro.Sequential([Input((3,)), _Widening(), Dense(2)], seed=0)
    m.compile(loss="mse", optimizer="sgd")
    x = np.ones((4, 3), np.float32)
    for call in (lambda: m.predict(x), lambda: m.fit(x, np.zeros((4, 2), np.float32), verbose=0)):
        with pytest.raises(TypeError, match=r"^layer '_widening' \(_Widening\) returned float64 in a float32 "
                                            r"model: keep the dtype"):
            call()
    with neuro.backend.dtype_scope("float64"):  # in a float64 model the same layer is right
        m64 = neuro.Sequential([Input((3,)), _Widening(), Dense(2)], seed=0)
    assert m64.predict(x).dtype == np.float64


def test_config_capture_edges_found_by_the_diff_review(tmp_path):
    """A subclass of Dense given an activation object, a renamed keyword, NaN, a constructor changing its
    argument, an initializer object: each broke or drifted in the first version of the capture."""

    class MyDense(Dense):
        def __init__(self, units, activation=None, scale=1.0, **kwargs):
            super().__init__(units, activation=activation, **kwargs)
            self.scale = scale

    config = MyDense(4, activation=neuro.activations.ReLU(), scale=2.0).get_config()
    assert config["scale"] == 2.0 and config["activation"] == {"class": "ReLU", "config": {}}

    class Renamed(_Times):
        renamed_keywords = {"factor": "alpha"}

        def __init__(self, alpha=1.0, **kwargs):
            super().__init__(alpha, **kwargs)

    with pytest.warns(DeprecationWarning):
        assert Renamed(factor=3.0).get_config()["alpha"] == 3.0

    class Sizes(neuro.Layer):
        def __init__(self, sizes=(1,), opts=None, init=None, **kwargs):
            super().__init__(**kwargs)
            sizes.append(0)  # a constructor that changes what it was given
            self.opts = dict(opts or {})
            (opts or {}).pop("k", None)

    config = Sizes([1, 2], {"k": 3}).get_config()
    assert config["sizes"] == [1, 2] and config["opts"] == {"k": 3}
    for bad, key in [(float("nan"), "sizes"), (neuro.initializers.get("ones"), "init")]:
        layer = Sizes([1], init=bad) if key == "init" else Sizes([bad])
        with pytest.raises(TypeError, match=rf"constructor arguments that are not plain JSON values \({key}\)"):
            layer.get_config()
        assert repr(layer) == "Sizes()"  # printing never raises


def test_reshape_unbuilt_and_shared_over_two_shapes():
    from neuro.layers import Reshape

    assert Reshape((4, 3))(np.ones((2, 3, 4))).shape == (2, 4, 3)
    r = Reshape((-1, 2))
    a, b = Input((4,)), Input((8,))
    m = neuro.Model([a, b], [r(a), r(b)])
    out = m.predict([np.ones((1, 4)), np.ones((1, 8))])
    assert [o.shape for o in out] == [(1, 2, 2), (1, 4, 2)]
    with pytest.raises(ValueError, match=r"^target_shape must be a tuple of 1 to 32 positive integers"):
        Reshape((1,) * 33)


def test_a_model_file_with_a_one_unit_softmax_still_loads_with_a_warning(tmp_path):
    from neuro import head

    m = neuro.Sequential([Input((3,)), Dense(1, activation="softmax")], seed=0)
    with head.loading(), pytest.warns(RuntimeWarning):  # as a file written before the check
        m.compile(loss="mse", optimizer="sgd")
        m.heads  # noqa: B018
    m.save(tmp_path / "old.h5")
    with pytest.warns(RuntimeWarning, match=r"softmax over 1 unit .*the model file is loaded as it was saved"):
        back = neuro.load_model(tmp_path / "old.h5")
    np.testing.assert_array_equal(back.predict(np.ones((2, 3))), np.ones((2, 1)))
    with pytest.raises(ValueError, match="softmax over 1 unit"):
        back.compile(loss="mse", optimizer="sgd")  # a new decision is refused


def test_metric_functions_keep_their_names_and_any_callable_is_taken():
    import dataclasses

    @dataclasses.dataclass  # eq=True: not hashable
    class Thresh:
        t: float = 0.5

        def __call__(self, y_true, y_pred):
            return float(np.mean((y_pred[:, 0] > self.t) == y_true))

    assert metrics.get(Thresh()).name == "Thresh"
    assert metrics.get(metrics.r2_score).name == "r2_score"
    assert isinstance(metrics.get(metrics.r2_score), metrics.R2Score)


def test_the_diff_reviews_last_round(tmp_path):
    """train_on_batch of a model without metrics returned [loss, accuracy] (fit's defaults); a layer's
    count_params left out running statistics, unlike the model's and Keras's; save wrote a non-finite weight
    set by hand, which load then refused; a nested model with a user's layer let float64 through."""
    import warnings

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)).astype(np.float32), rng.integers(0, 2, 8).astype(np.float32)
    m = neuro.Sequential([Input((3,)), Dense(4), neuro.BatchNorm(), Dense(1, activation="sigmoid")], seed=0)
    m.compile(loss="binary_crossentropy", optimizer="sgd")
    loss = m.train_on_batch(x, y)
    assert isinstance(loss, float) and isinstance(m.test_on_batch(x, y), float)
    assert m.compiled_metrics is None  # and a later fit still logs its defaults
    assert "accuracy" in m.fit(x, y, verbose=0).history
    assert m.layers[1].count_params() == 16 and m.count_params() == sum(la.count_params() for la in m.layers)
    m.layers[1].buffers["running_var"][0] = -1.0
    with pytest.raises(ValueError, match=r"^cannot save: batchnorm\.running_var holds a negative variance"):
        m.save(tmp_path / "never-written.h5")
    m.layers[0].params["kernel"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^cannot save: dense\.kernel holds a non-finite value \(nan\)"):
        m.save_weights(tmp_path / "never-written.weights.h5")

    class OneHot64(neuro.Layer):
        integer_inputs = True

        def __init__(self, n=4, **kwargs):
            super().__init__(**kwargs)
            self.n = n

        def compute_output_shape(self, s):
            return (*s, self.n)

        def compute_output_dtype(self, dt):
            return "float"

        def forward(self, x, training=False, rng=None):
            return np.eye(self.n)[x], None  # float64

        def backward(self, g, ctx):
            return None

    ids = rng.integers(0, 4, (2, 5))
    jj = Input((5,), dtype="int64")
    inner = neuro.Model(jj, neuro.Flatten()(OneHot64()(jj)), name="inner")
    kk = Input((5,), dtype="int64")
    nested = neuro.Model(kk, Dense(1)(inner(kk)), seed=0)
    with pytest.raises(TypeError, match=r"^layer 'onehot64' \(OneHot64\) returned float64 in a float32 model"):
        nested.predict(ids)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m2 = neuro.Sequential([Input((3,)), Dense(1, activation="softmax")])
        with pytest.raises(ValueError, match="softmax over 1 unit"):  # no lenient state left behind
            m2.compile(loss="mse", optimizer="sgd")


def test_second_tutorial_round():
    """An overridden train_step (Keras's 'customizing what happens in fit') was ignored by fit without a
    word; evaluate and predict with more steps than a sequence holds wrapped around and counted batches twice
    (predict returned 160 rows of 100 samples); Input((None, 57)) got no word about fixed lengths."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 3)).astype(np.float32), rng.standard_normal((20, 1)).astype(np.float32)

    class Custom(neuro.Model):
        def train_step(self, data):
            raise AssertionError("never called by neuro's fit")

    inp = Input((3,))
    custom = Custom(inp, Dense(1)(inp), loss="mse", optimizer="sgd")
    with pytest.raises(TypeError, match=r"^Custom defines train_step, which neuro's fit does not call"):
        custom.fit(x, y, verbose=0)
    custom.evaluate(x, y, verbose=0)  # evaluate calls no train_step in Keras either

    class Helper:
        def test_step(self, name):  # a mixin's helper of another meaning
            return name

    class Mixed(Helper, neuro.Model):
        train_step = neuro.Model.train_step  # neuro's own, under its name

    mixed = Mixed(inp, Dense(1)(inp), loss="mse", optimizer="sgd")
    mixed.fit(x, y, verbose=0)
    with pytest.raises(TypeError, match=r"^Mixed defines test_step, which neuro's evaluate does not call"):
        mixed.evaluate(x, y, verbose=0)

    class Predicting(neuro.Model):
        def predict_step(self, data):
            raise AssertionError("never called")

    with pytest.raises(TypeError, match=r"^Predicting defines predict_step, which neuro's predict"):
        Predicting(inp, Dense(1)(inp)).predict(x)
    plain = neuro.Model(inp, Dense(1)(inp), loss="mse", optimizer="sgd")
    plain.train_step = lambda data: None  # on the instance
    with pytest.raises(TypeError, match=r"^Model defines train_step"):
        plain.fit(x, y, verbose=0)

    class Seq:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return x[4 * i : 4 * i + 4], y[4 * i : 4 * i + 4]

    m = neuro.Sequential([Input((3,)), Dense(1)], seed=0)
    m.compile(loss="mse", optimizer="sgd")
    with pytest.warns(UserWarning, match="gave 5 of the 8"):
        assert m.predict(Seq(), steps=8).shape == (20, 1)
    with pytest.warns(UserWarning, match="gave 5 of the 8"):
        got = m.evaluate(Seq(), steps=8, verbose=0)
    assert got == pytest.approx(m.evaluate(x, y, verbose=0))
    with pytest.raises(ValueError, match=r"neuro's shapes are fixed \(pad sequences to one length"):
        Input((None, 57))


def test_pytorch_habits_get_named():
    """Channels-first images got 'x must have shape (N, 32, 32, 3)' without a word of why; PyTorch's
    StepLR(gamma) and CosineAnnealingLR(T_max) spellings got no suggestion."""
    m = neuro.Sequential([Input((32, 32, 3)), neuro.Flatten(), Dense(2)])
    with pytest.raises(ValueError, match=r"got \(4, 3, 32, 32\) \(neuro is channels-last: if x is in PyTorch's "
                                         r"channels-first order, x\.transpose\(0, 2, 3, 1\) turns it\)"):
        m.predict(np.ones((4, 3, 32, 32), np.float32))
    seq = neuro.Sequential([Input((10, 4)), neuro.Flatten(), Dense(2)])
    with pytest.raises(ValueError, match=r"x\.transpose\(0, 2, 1\) turns it"):  # Conv1d's (N, C, T)
        seq.predict(np.ones((2, 4, 10), np.float32))
    with pytest.raises(TypeError, match=r"got an unexpected keyword argument 'gamma'; did you mean 'decay_rate'"):
        neuro.schedules.StepDecay(0.1, gamma=0.5, step_size=2)
    with pytest.raises(TypeError, match=r"'T_max'; did you mean 'decay_steps'"):
        neuro.schedules.CosineDecay(0.1, T_max=5)


def test_batchnorm_on_sequences_is_pytorchs_batchnorm1d():
    """BatchNorm refused (N, T, C) inputs: keras.io's time-series classifier (Conv1D, BatchNorm, ReLU) could
    not be built. Over N and T per channel, as torch.nn.BatchNorm1d on (N, C, T), running statistics too."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 7, 3))
    with neuro.backend.dtype_scope("float64"):
        bn = neuro.BatchNorm(momentum=0.9)
        m = neuro.Sequential([Input((7, 3)), bn], seed=0)
    bn.params["gamma"][...] = [0.5, 1.5, 2.0]
    bn.params["beta"][...] = [0.1, -0.2, 0.3]
    y, ctx = bn.forward(x, training=True)
    ref = torch.nn.BatchNorm1d(3, momentum=0.1, eps=bn.epsilon, dtype=torch.float64)
    with torch.no_grad():
        ref.weight[:] = torch.tensor([0.5, 1.5, 2.0])
        ref.bias[:] = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    want = ref(torch.from_numpy(x).permute(0, 2, 1)).permute(0, 2, 1)
    np.testing.assert_allclose(y, want.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.buffers["running_mean"], ref.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn.buffers["running_var"], ref.running_var.numpy(), rtol=1e-12)
    assert m.predict(x).shape == (6, 7, 3)


def test_pad_sequences_is_keras_pad_sequences():
    """Keras's pad_sequences (token-id lists to one length) was missing: the keras.io IMDB example uses it."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from neuro.data import pad_sequences

    seqs = [[1], [2, 3], [4, 5, 6]]
    assert pad_sequences(seqs).tolist() == [[0, 0, 1], [0, 2, 3], [4, 5, 6]]  # Keras's docstring example
    assert pad_sequences(seqs, padding="post").tolist() == [[1, 0, 0], [2, 3, 0], [4, 5, 6]]
    assert pad_sequences(seqs, maxlen=2).tolist() == [[0, 1], [2, 3], [5, 6]]
    assert pad_sequences(seqs, maxlen=2, truncating="post", value=-1).tolist() == [[-1, 1], [2, 3], [4, 5]]
    assert pad_sequences(seqs).dtype == np.int32 and pad_sequences([], maxlen=4).shape == (0, 4)

    def reference(rows, maxlen, padding, truncating):
        n = max((len(r) for r in rows), default=0) if maxlen is None else maxlen
        out = []
        for r in rows:
            kept = (r[:n] if truncating == "post" else r[len(r) - n :] if len(r) > n else r) if n else []
            pad = [0] * (n - len(kept))
            out.append(list(kept) + pad if padding == "post" else pad + list(kept))
        return out

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.lists(st.integers(1, 9), max_size=6), max_size=5), st.none() | st.integers(0, 7),
           st.sampled_from(["pre", "post"]), st.sampled_from(["pre", "post"]))
    def check(rows, maxlen, padding, truncating):
        got = pad_sequences(rows, maxlen=maxlen, padding=padding, truncating=truncating)
        assert got.tolist() == reference(rows, maxlen, padding, truncating)

    check()
    with pytest.raises(ValueError, match=r"^sequences\[0\] holds fractions, which dtype int32 cannot hold$"):
        pad_sequences([[1.5, 2.0]])
    with pytest.raises(ValueError, match=r"^padding must be 'pre' or 'post', got 'left'$"):
        pad_sequences(seqs, padding="left")
    with pytest.raises(ValueError, match=r"^maxlen must be a non-negative integer or None, got -1$"):
        pad_sequences(seqs, maxlen=-1)


def test_piecewise_constant_decay_is_keras():
    """Keras's PiecewiseConstantDecay (PyTorch's MultiStepLR) was missing."""
    from neuro import registry, schedules

    p = schedules.PiecewiseConstantDecay([100000, 110000], [1.0, 0.5, 0.1])  # Keras's docstring example
    assert [p(s) for s in (0, 100000, 100001, 110000, 110001, 10**9)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    assert schedules.get(registry.serialize(p)) == p
    for boundaries, values in [([5, 5], [1, 1, 1]), ([-1], [1, 1]), ([1.5], [1, 1]), ([1], [1]), ([1], [1, 0]),
                               ("12", [1, 1, 1])]:
        with pytest.raises(ValueError, match=r"^(boundaries|values)"):
            schedules.PiecewiseConstantDecay(boundaries, values)
    m = neuro.Sequential([Input((2,)), Dense(1)], seed=0)
    m.compile(loss="mse", optimizer=neuro.optimizers.SGD(schedules.PiecewiseConstantDecay([1], [0.1, 0.01])))
    m.fit(np.ones((8, 2)), np.zeros((8, 1)), batch_size=2, epochs=1, verbose=0)
    assert m.optimizer.current_learning_rate() == 0.01


def test_per_step_targets_without_the_last_axis_of_one():
    """Targets (N, T) for an output (N, T, 1) were refused ('y must have shape (N, 6, 1)') where (N,) for
    (N, 1) was taken: Keras takes both."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 6, 2)), rng.standard_normal((8, 6))
    losses = []
    for target in (y, y[..., None]):
        with neuro.backend.dtype_scope("float64"):
            m = neuro.Sequential([Input((6, 2)), neuro.LSTM(3, return_sequences=True), Dense(1)], seed=0)
        m.compile(loss="mse", optimizer="sgd")
        losses.append(m.fit(x, target, batch_size=4, epochs=2, verbose=0).history["loss"])
    assert losses[0] == losses[1]
    with pytest.raises(ValueError, match=r"^y must have shape \(N, 6, 1\), got \(8, 5\)$"):
        m.fit(x, y[:, :5], verbose=0)


@pytest.mark.parametrize("bad", ['["x"]', "[5, 2]", "[1.5]", "[-1]", str(list(range(10_001)))])
def test_a_piecewise_schedule_in_a_model_file_resumes_and_bad_boundaries_are_refused(tmp_path, bad):
    import json

    import h5py

    from neuro.errors import ModelFileError
    from neuro.schedules import PiecewiseConstantDecay

    m = neuro.Sequential([Input((2,)), Dense(1)], seed=0)
    m.compile(loss="mse", optimizer=neuro.optimizers.SGD(PiecewiseConstantDecay([3], [0.1, 0.01])))
    m.fit(np.ones((8, 2)), np.zeros((8, 1)), batch_size=2, verbose=0)
    m.save(tmp_path / "m.h5")
    assert neuro.load_model(tmp_path / "m.h5").optimizer.current_learning_rate() == 0.01
    with h5py.File(tmp_path / "m.h5", "r+") as f:
        config = json.loads(f.attrs["config"])
        text = json.dumps(config).replace('"boundaries": [3]', f'"boundaries": {bad}')
        assert text != json.dumps(config)
        f.attrs["config"] = text
    with pytest.raises(ModelFileError, match=r"config\.optimizer: (boundaries|values) must"):
        neuro.load_model(tmp_path / "m.h5")
