"""Bugs a review found after the 0.2 restructuring, each pinned by a test."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

import neuro
from neuro import backend
from neuro.layers import BatchNorm, Dense, ReLU, Sigmoid
from neuro.optimizers import SGD, Adam


def test_cupy_arrays_are_recognised_by_their_module_name():
    class FakeCupyArray:  # what cupy.ndarray looks like from outside: its module is "cupy", not "cupy.x"
        pass

    FakeCupyArray.__module__ = "cupy"
    assert backend.is_array(FakeCupyArray())
    FakeCupyArray.__module__ = "cupyx.whatever"
    assert not backend.is_array(FakeCupyArray())


def test_an_initializer_returning_a_transposed_array_still_trains():
    class Transposed(neuro.initializers.Initializer):
        def sample(self, shape, rng):
            return rng.standard_normal(shape[::-1]).T  # Fortran-ordered

    net = neuro.Network((3,), "mse", SGD(0.1), seed=0)
    net.add(Dense(2, kernel_initializer=Transposed()))
    before = net.layers[0].params["kernel"].copy()
    net.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=2, verbose=0)
    assert not np.array_equal(before, net.layers[0].params["kernel"])
    with pytest.raises(ValueError, match="params must be C-contiguous arrays"):
        SGD(0.1).step([np.ones((3, 2)).T], [np.ones((3, 2)).T])


def test_a_failed_first_step_leaves_the_optimizer_untouched():
    net = neuro.Network((2,), "mse", Adam(0.1), seed=0)
    net.add(Dense(2))
    with pytest.raises(FloatingPointError, match="loss became inf"):
        net.fit(np.ones((4, 2)), np.full((4, 2), 3e38, dtype=np.float32), verbose=0)
    assert net.optimizer.slots == [] and net.optimizer.iterations == 0
    net.add(Dense(1))  # training has not started


def test_state_of_other_shapes_starts_afresh():
    opt = Adam(0.1)
    opt.step([np.zeros(1)], [np.ones(1)])
    p, g = np.zeros(4), np.full(4, 2.0)
    opt.step([p], [g])
    np.testing.assert_allclose(opt.slots[0]["m"], 0.1 * g)  # (1 − β1)·g: a fresh zero state
    assert opt.iterations == 2


def test_class_weight_multiplies_the_loss_class_weights():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((24, 4)), rng.integers(0, 3, 24)

    def net(loss):
        n = neuro.Network((4,), loss, SGD(0.1), seed=0)
        return n.add(Dense(3, "softmax"))

    a = net(neuro.CrossEntropy(class_weights=[1.0, 5.0, 1.0]))
    b = net(neuro.CrossEntropy(class_weights=[2.0, 5.0, 1.0]))
    ha = a.fit(x, y, batch_size=8, verbose=0, class_weight={0: 2.0})
    hb = b.fit(x, y, batch_size=8, verbose=0)
    assert ha["loss"] == hb["loss"]


def test_binary_cross_entropy_with_several_outputs_reports_binary_accuracy():
    y = np.array([[1, 0, 1], [0, 0, 1]], dtype=np.float32)
    p = np.array([[0.9, 0.9, 0.1], [0.2, 0.4, 0.8]])
    assert neuro.metrics.BinaryAccuracy()(p, y) == pytest.approx(4 / 6)
    net = neuro.Network((4,), "bce", "sgd", seed=0)
    net.add(Dense(3, "sigmoid"))
    logs = net.fit(np.ones((2, 4)), y, verbose=0).history
    assert set(logs) == {"loss", "binary_accuracy"}
    image = neuro.Network((4,), "bce", "sgd", seed=0)
    image.add(Dense(16, "sigmoid")).add(neuro.layers.Flatten())
    image.fit(np.ones((8, 4)), np.ones((8, 16)), verbose=0)  # a per-pixel mask trains


class _Series:
    """What a pandas Series with a shuffled index looks like to neuro: indexing goes by label."""

    def __init__(self, values, index):
        self.values, self.index = np.asarray(values), np.asarray(index)
        self.shape, self.dtype = self.values.shape, self.values.dtype

    def __array__(self, dtype=None, copy=None):
        return self.values if dtype is None else self.values.astype(dtype)

    def __len__(self):
        return len(self.values)

    def __getitem__(self, key):
        raise AssertionError("neuro must index by position, not through the object")


def test_targets_like_pandas_series_are_taken_by_position():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 4)).astype(np.float32), rng.integers(0, 3, 20)
    series = _Series(y, rng.permutation(20))
    net = neuro.Network((4,), "softmax_crossentropy", "sgd", seed=0)
    net.add(Dense(3, "softmax"))
    assert net.evaluate(x, series) == net.evaluate(x, y)
    net.fit(x, series, batch_size=5, verbose=0)


def test_a_network_without_parameters_trains_on_a_device():
    net = neuro.Network((3,), "bce", "sgd", seed=0, device="strict")
    net.add(ReLU()).add(Sigmoid())
    history = net.fit(np.ones((4, 3)), np.ones((4, 3)), verbose=0)
    assert len(history["loss"]) == 1


def test_a_network_that_failed_to_be_made_does_not_take_its_optimizer():
    opt = SGD(0.1)
    with pytest.raises(ValueError, match="device must be one of"):
        neuro.Network((2,), "mse", opt, device="tpu")
    neuro.Network((2,), "mse", opt)  # free to use


def test_validation_split_with_a_split_is_refused():
    split = neuro.data.ArraySplit(np.ones((10, 4), np.float32), np.zeros(10, np.int64))
    net = neuro.Network((4,), "softmax_crossentropy", "sgd")
    net.add(Dense(2, "softmax"))
    with pytest.raises(ValueError, match="validation_split does not apply to a data set split"):
        net.fit(split, validation_split=0.2, verbose=0)


def test_a_step_that_raises_anything_restores_the_running_statistics():
    net = neuro.Network((3,), "mse", SGD(lambda step: 1 / 0), seed=0)  # a schedule that raises
    net.add(Dense(4)).add(BatchNorm())
    before = [b.copy() for b in net.layers[1].buffers.values()]
    with pytest.raises(ZeroDivisionError):
        net.fit(np.random.default_rng(0).standard_normal((8, 3)), np.zeros((8, 4)), verbose=0)
    for a, b in zip(net.layers[1].buffers.values(), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_idx_folders_keep_the_numeric_order_of_twelve_classes(tmp_path):
    labels = np.arange(12, dtype=np.uint8).repeat(2)
    images = np.zeros((len(labels), 4, 4), np.uint8) + labels[:, None, None]
    for name, arr in (("img", images), ("lbl", labels)):
        header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
        with gzip.open(tmp_path / f"{name}.gz", "wb") as f:
            f.write(header + arr.tobytes())
    from neuro.data.idx_to_folder import idx_to_folder

    idx_to_folder(tmp_path / "img.gz", tmp_path / "lbl.gz", tmp_path / "out")
    data = neuro.data.ImageDataSet.from_dir(tmp_path / "out", channels=1, scale=1.0)
    x, y = data.train.arrays()
    np.testing.assert_array_equal(x[:, 0, 0, 0], y)  # class id == the label written into each image
    assert data.class_names[:3] == ["00", "01", "02"]
