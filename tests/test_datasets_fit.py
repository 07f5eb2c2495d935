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
