"""Data sets in fit, evaluate and predict: image folders train as their arrays do, lazy as in memory, class
names and scalers travel with the network (through files too), and predict returns original units."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import neuro
from neuro.data import ImageDataSet, TabularDataSet
from neuro.layers import Conv2D, Dense, Flatten, MaxPool2D


def _folder(root, n=24, size=8, seed=0):
    """Two classes of 8×8 grey images: horizontal and vertical bars, with noise."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("test", n // 3)):
        for name, axis in (("horizontal", 0), ("vertical", 1)):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                img = rng.integers(0, 60, (size, size))
                line = rng.integers(1, size - 1)
                if axis == 0:
                    img[line, :] = 255
                else:
                    img[:, line] = 255
                Image.fromarray(img.astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


def _cnn(seed=0):
    net = neuro.Network((8, 8, 1), "softmax_crossentropy", neuro.Adam(0.01), seed=seed)
    net.add(Conv2D(4, 3, activation="relu")).add(MaxPool2D(2)).add(Flatten()).add(Dense(2, "softmax"))
    return net


def test_an_image_folder_trains_exactly_as_its_arrays(tmp_path):
    data = ImageDataSet.from_dir(_folder(tmp_path), channels=1, valid_frac=0.25, seed=0)
    assert data.class_names == ["horizontal", "vertical"]
    x, y = data.train.arrays()
    xv, yv = data.valid.arrays()
    a, b = _cnn(), _cnn()
    ha = a.fit(data, epochs=12, batch_size=8, verbose=0)
    hb = b.fit(x, y, epochs=12, batch_size=8, verbose=0, validation_data=(xv, yv))
    assert ha.history == hb.history
    assert ha["val_accuracy"][-1] >= 0.8
    assert a.class_names == ["horizontal", "vertical"]  # carried into the network
    assert a.evaluate(data) == b.evaluate(*data.test.arrays())
    names, probs = a.predict_class(data.test)
    assert set(names) <= {"horizontal", "vertical"} and np.all((probs >= 0.5) & (probs <= 1))


def test_a_lazy_folder_trains_as_the_in_memory_one(tmp_path):
    root = _folder(tmp_path)
    aug = {"hflip": True, "shift": 0.1}
    eager = ImageDataSet.from_dir(root, channels=1, valid_frac=0.25, augment=aug)
    lazy = ImageDataSet.from_dir(root, channels=1, valid_frac=0.25, augment=aug, lazy=True)
    ha = _cnn().fit(eager, epochs=2, batch_size=8, verbose=0)
    hb = _cnn().fit(lazy, epochs=2, batch_size=8, verbose=0)
    assert ha.history == hb.history


def test_augmentation_applies_in_training_only(tmp_path):
    data = ImageDataSet.from_dir(_folder(tmp_path), channels=1, augment={"hflip": True, "vflip": True})
    plain = ImageDataSet.from_dir(_folder(tmp_path / "b"), channels=1)
    ha = _cnn().fit(data, epochs=2, batch_size=8, verbose=0)
    hb = _cnn().fit(plain, epochs=2, batch_size=8, verbose=0)
    assert ha["loss"] != hb["loss"]  # the flips changed what was trained on
    assert _cnn().evaluate(data) == _cnn().evaluate(plain)  # but never what is evaluated


def test_scalers_travel_with_the_network_and_predict_returns_original_units(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(100, 200, (64, 3)).astype(np.float32)
    y = (x @ np.array([[0.5], [-1.0], [2.0]]) + 1000).astype(np.float32)
    data = TabularDataSet.from_arrays(x, y, valid_frac=0.25).standardize_input().standardize_output()
    net = neuro.Network((3,), "mse", neuro.Adam(0.05), seed=0)
    net.add(Dense(1))
    net.fit(data, epochs=60, batch_size=16, verbose=0)
    assert net.input_scaler is data.input_scaler and net.output_scaler is data.output_scaler
    pred = net.predict(x)
    assert np.abs(pred - y).mean() < 0.05 * np.abs(y - y.mean()).mean()  # original units
    raw = neuro.Network((3,), "mse", neuro.Adam(0.05), seed=0)
    raw.add(Dense(1))
    raw.set_weights(net.get_weights())
    np.testing.assert_allclose(
        pred, data.output_scaler.inverse_transform(raw.predict(data.input_scaler.transform(x))), rtol=1e-5
    )
    net.save(tmp_path / "m.h5")
    loaded = neuro.Network.load(tmp_path / "m.h5")
    assert loaded.input_scaler == net.input_scaler and loaded.output_scaler == net.output_scaler
    np.testing.assert_array_equal(loaded.predict(x), pred)


def test_data_set_arguments_are_checked(tmp_path):
    data = ImageDataSet.from_dir(_folder(tmp_path), channels=1, valid_frac=0.25)
    net = _cnn()
    with pytest.raises(ValueError, match="y must be None when x is a DataSet"):
        net.fit(data, np.zeros(3), verbose=0)
    with pytest.raises(ValueError, match="validation_split does not apply to a DataSet"):
        net.fit(data, validation_split=0.2, verbose=0)
    with pytest.raises(TypeError, match="x is a DataSet: predict on one of its splits"):
        net.predict(data)
    other = neuro.Network((4, 4, 1), "softmax_crossentropy", "adam")
    other.add(Flatten()).add(Dense(2, "softmax"))
    with pytest.raises(ValueError, match=r"the data set's input shape \(8, 8, 1\) does not match the network's input_shape \(4, 4, 1\)"):
        other.fit(data, verbose=0)
    with pytest.raises(TypeError, match="y must be given with arrays x"):
        net.fit(np.zeros((4, 8, 8, 1)), verbose=0)


# -- a data set must fit the model it trains (a helper's review: each of these was silently wrong) --------
def _regression_data(scale=1.0, width=1):
    rng = np.random.default_rng(0)
    x = rng.normal(100, 10, (60, 3)).astype(np.float32) * scale
    y = (x @ rng.standard_normal((3, width))).astype(np.float32)
    return x, y


def test_a_fit_that_fails_before_its_first_step_takes_nothing_from_the_data_set():
    x, y = _regression_data()
    a = TabularDataSet.from_arrays(x, y).standardize_input().standardize_output()
    net = neuro.Network((3,), "mse", seed=0)
    net.add(Dense(1))
    net.fit(a, epochs=2, verbose=0)
    before = net.predict(x[:3])
    b = TabularDataSet.from_arrays(*_regression_data(1000.0, 2)).normalize_input().normalize_output()
    with pytest.raises(ValueError, match=r"output scaler has features of shape \(2,\), which must be the end"):
        net.fit(b, epochs=1, verbose=0)
    assert net.input_scaler is a.input_scaler and net.output_scaler is a.output_scaler
    np.testing.assert_array_equal(net.predict(x[:3]), before)
    from neuro.callbacks import Callback

    class Fails(Callback):  # after the data set was taken, before a step
        def on_train_begin(self, logs):
            raise RuntimeError("no")

    other = TabularDataSet.from_arrays(x, y).normalize_input()
    with pytest.raises(RuntimeError, match="no"):
        net.fit(other, epochs=1, verbose=0, callbacks=[Fails()])
    assert net.input_scaler is a.input_scaler and net.output_scaler is a.output_scaler
    net.fit(other, epochs=1, verbose=0)  # a fit that trains takes them
    assert net.input_scaler is other.input_scaler and net.output_scaler is None


def test_scalers_that_cannot_apply_are_refused():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 4)).astype(np.float32)
    ids = rng.integers(0, 3, 30)
    onehot = np.eye(3, dtype=np.float32)[ids]
    with pytest.raises(ValueError, match=r"needs float regression targets, got the one-hot targets of a classification data set \(3 classes\)"):
        TabularDataSet.from_arrays(x, onehot, class_names=["a", "b", "c"]).standardize_output()
    probs = TabularDataSet.from_arrays(x, rng.random((30, 1)).astype(np.float32)).standardize_output()
    net = neuro.Network((4,), "binary_crossentropy", seed=0)
    net.add(Dense(1, activation="sigmoid"))
    with pytest.raises(ValueError, match="output scaler changes the targets, but the model's loss BinaryCrossEntropy takes class ids or probabilities"):
        net.fit(probs, epochs=1, verbose=0)
    assert net.output_scaler is None
    from neuro.data import ArraySplit, DataSet

    with pytest.raises(ValueError, match=r"standardize_input\(\) scales the one input of a data set; this one has 2 inputs"):
        DataSet(ArraySplit([x, x], ids)).standardize_input()
    tokens = DataSet(ArraySplit(rng.integers(0, 50, (30, 6)), ids % 2)).standardize_input()
    inp = neuro.Input((6,), dtype="int64")
    emb = neuro.Model(inp, Dense(2, activation="softmax")(Flatten()(neuro.Embedding(50, 4)(inp))), loss="crossentropy")
    with pytest.raises(ValueError, match="input scaler makes float inputs, but the model's input takes int64 ids"):
        emb.fit(tokens, epochs=1, verbose=0)
    with pytest.raises(TypeError, match="input_scaler must be a neuro.data.Scaler or None, got str"):
        DataSet(ArraySplit(x, ids), input_scaler="std")


def test_class_names_follow_the_latest_data_set_and_must_fit_the_output():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = rng.integers(0, 2, 40)
    net = neuro.Network((3,), "crossentropy", seed=0)
    net.add(Dense(2, activation="softmax"))
    net.fit(TabularDataSet.from_arrays(x, y, class_names=["cat", "dog"]), epochs=1, verbose=0)
    net.fit(TabularDataSet.from_arrays(x, y, class_names=["negative", "positive"]), epochs=1, verbose=0)
    assert net.class_names == ["negative", "positive"]  # the first data set's names once stayed
    three = TabularDataSet.from_arrays(x, y, class_names=["a", "b", "c"])  # ids 0..1, names for 3: allowed
    with pytest.raises(ValueError, match=r"the data set names 3 classes, but the model's output has 2 classes \(its last axis\)"):
        net.fit(three, epochs=1, verbose=0)
    assert net.class_names == ["negative", "positive"]
    with pytest.raises(ValueError, match=r"class_names must name the classes of y \(ids up to 2\), got 2"):
        TabularDataSet.from_arrays(x, np.arange(40) % 3, class_names=["a", "b"])
    with pytest.raises(TypeError, match="class_names must be a list of names, one per class, got str 'no'"):
        TabularDataSet.from_arrays(x, y, class_names="no")
    with pytest.raises(ValueError, match=r"class_names must name each class once, got \['a'\] more than once"):
        TabularDataSet.from_arrays(x, y, class_names=["a", "a"])


def test_evaluating_an_empty_split_is_refused():
    from neuro.data import ArraySplit, DataSet

    x, y = _regression_data()
    net = neuro.Network((3,), "mse", seed=0)
    net.add(Dense(1))
    empty = ArraySplit(x[:0], y[:0])
    for call in (lambda: net.evaluate(empty), lambda: net.evaluate(DataSet(ArraySplit(x, y), test=empty)),
                 lambda: net.fit(x, y, validation_data=empty, verbose=0)):  # fmt: skip
        with pytest.raises(ValueError, match="the data set split holds no sample"):
            call()


def test_data_arguments_are_checked(tmp_path):
    from neuro.data import load_digits, one_hot, train_test_split
    from neuro.data.csv import encode_classes

    x, y = _regression_data()
    for seed in ("abc", -1, 1.5):
        with pytest.raises(ValueError, match=f"seed must be a whole number >= 0 or None, got {seed!r}"):
            TabularDataSet.from_arrays(x, y, valid_frac=0.2, seed=seed)
    with pytest.raises(TypeError, match="shuffle must be True or False, got 'no'"):
        train_test_split(x, y, shuffle="no")
    with pytest.raises(TypeError, match="images must be True or False, got 'no'"):
        load_digits(images="no")
    assert one_hot([], 2).shape == (0, 2)
    with pytest.raises(ValueError, match="x holds values beyond float32's range"):
        TabularDataSet.from_arrays(np.full((4, 2), 1e39), np.zeros(4))
    ids, names = encode_classes(["12345678901234567890", "12345678901234567891", "1.0", "1"], str, None)
    assert names == ["1", "12345678901234567890", "12345678901234567891"] and ids.tolist() == [1, 2, 0, 0]


def test_a_second_review_of_the_data_set_checks(tmp_path):
    """What the first checks refused wrongly: float 0/1 labels with two names, a per-step classifier's
    class names (one per class, not per output value; it now also saves and loads), a model with several
    outputs (it takes no names), a test CSV whose target column has another name (found by position)."""
    import threading

    from neuro.data import ArraySplit, DataSet

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    for y in (rng.integers(0, 2, 40).astype(np.float32), rng.integers(0, 2, (40, 1))):
        TabularDataSet.from_arrays(x, y, class_names=["neg", "pos"])
    ids = rng.integers(1, 9, (30, 6))
    tags = rng.integers(0, 4, (30, 6))
    net = neuro.Network((6,), "crossentropy", "adam", seed=0)
    net.add(neuro.Embedding(10, 4)).add(neuro.SimpleRNN(5, return_sequences=True)).add(Dense(4, "softmax"))
    net.fit(DataSet(ArraySplit(ids, tags), class_names=["PER", "LOC", "ORG", "O"]), epochs=1, verbose=0)
    assert net.class_names == ["PER", "LOC", "ORG", "O"]
    net.save(tmp_path / "tagger.h5")
    assert neuro.Network.load(tmp_path / "tagger.h5").predict_class(ids[:2])[0].shape == (2, 6)
    inp = neuro.Input((3,))
    two = neuro.Model(inp, [Dense(2, activation="softmax")(inp), Dense(2, activation="softmax")(inp)],
                      loss="crossentropy", seed=0)
    two.fit(DataSet(ArraySplit(x, [y.ravel().astype(np.int64)] * 2), class_names=["a", "b"]), epochs=1, verbose=0)
    assert two.class_names is None

    class Locked(neuro.metrics.Precision):  # a metric holding a lock: copied per output (a deep copy failed)
        name = "locked"

        def reset(self):
            super().reset()
            self.lock = threading.Lock()

    labels = y.ravel().astype(np.int64)
    logs = two.evaluate(x, [labels] * 2, metrics=[Locked()])
    for out, p in zip(two.output_names, two.predict(x), strict=True):
        assert logs[f"{out}_locked"] == pytest.approx(neuro.metrics.precision(p, labels))
    (tmp_path / "train.csv").write_text("a,b,y\n1,2,0\n2,3,1\n3,4,0\n")
    (tmp_path / "test.csv").write_text("a,b,label\n1,2,1\n2,3,0\n")
    ds = TabularDataSet.from_csv(tmp_path / "train.csv", target_columns=-1, classification=True,
                                 test_path=tmp_path / "test.csv")
    np.testing.assert_array_equal(ds.test.arrays()[1], [1, 0])
    ds = TabularDataSet.from_csv(tmp_path / "train.csv", target_columns=-1, classification=False,
                                 test_path=tmp_path / "test.csv")  # regression too
    np.testing.assert_array_equal(ds.test.arrays()[1], [[1], [0]])


def test_one_sigmoid_output_needs_two_class_names_and_a_weightless_layer_takes_any_rank():
    from neuro.data import ArraySplit, DataSet

    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 3)).astype(np.float32)
    net = neuro.Network((3,), "binary_crossentropy", seed=0)
    net.add(Dense(1, "sigmoid"))
    with pytest.raises(ValueError, match=r"names 1 classes, but the model's one sigmoid output needs 2 names"):
        net.fit(DataSet(ArraySplit(x, rng.integers(0, 2, 20)), class_names=["positive"]), epochs=1, verbose=0)
    net.fit(x, rng.integers(0, 2, 20), epochs=1, verbose=0)
    net.class_names = ["positive"]  # as a file of an older neuro may hold (it loads)
    with pytest.raises(ValueError, match=r"class_names holds 1 names, but the output's classes need 2"):
        net.predict_class(x)  # it was an IndexError
    drop = neuro.Dropout(0.5)
    drop(np.ones((2, 8)))
    assert drop(np.ones((2, 5, 8))).shape == (2, 5, 8)  # no weights: another rank is fine, as in Keras
