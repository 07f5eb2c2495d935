"""The Split protocol, ArraySplit batching without copies, split_indices and DataSet."""

from __future__ import annotations

import numpy as np
import pytest

from neuro.data import ArraySplit, Augment, DataSet, Split
from neuro.data.dataset import split_indices


def test_array_split_batches_follow_the_order():
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    y = np.arange(10) * 10
    split = ArraySplit(x, y)
    assert isinstance(split, Split) and len(split) == 10 and split.input_shape == (2,)
    order = np.array([3, 1, 4, 1, 5, 9, 2])
    got = list(split.batches(order, 3))
    assert [len(b[0]) for b in got] == [3, 3, 1]
    xb = np.concatenate([b[0] for b in got])
    yb = np.concatenate([b[1] for b in got])
    assert xb.dtype == np.float32 and yb.dtype == y.dtype
    np.testing.assert_array_equal(xb, x[order])
    np.testing.assert_array_equal(yb, y[order])


def test_array_split_holds_without_copying():
    x = np.ones((8, 3), dtype=np.float32)
    split = ArraySplit(x, np.zeros(8))
    ax, _ = split.arrays()
    assert ax is x  # float32 arrays come back as they are
    indexed = ArraySplit(x, np.arange(8), index=np.array([6, 2]))
    assert len(indexed) == 2
    ((xb, yb),) = indexed.batches(np.array([1, 0]), 5)
    np.testing.assert_array_equal(yb, [2, 6])
    np.testing.assert_array_equal(indexed.arrays()[1], [6, 2])


def test_batches_validate_arguments():
    split = ArraySplit(np.zeros((4, 1)), np.zeros(4))
    with pytest.raises(ValueError, match=r"order must hold indices in \[0, 3\], got values in \[0, 4\]"):
        list(split.batches(np.array([0, 4]), 2))
    with pytest.raises(
        ValueError, match=r"order must be a 1-D integer array, got shape \(2,\), dtype float64"
    ):
        split.batches(np.array([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer, got 0"):
        split.batches(np.arange(4), 0)
    assert list(split.batches(np.arange(0), 2)) == []
    with pytest.raises(ValueError, match=r"y must have one row per sample of x \(4\), got 3"):
        ArraySplit(np.zeros((4, 1)), np.zeros(3))
    with pytest.raises(
        ValueError, match=r"augment needs image inputs \(N, H, W, C\), got x of shape \(4, 1\)"
    ):
        ArraySplit(np.zeros((4, 1)), np.zeros(4), augment={"hflip": True})


def test_array_split_augments_images_only_when_asked():
    x = np.arange(4 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 1)
    split = ArraySplit(x, np.zeros(4), augment=Augment(hflip=True))
    ((plain, _),) = split.batches(np.arange(4), 4)
    np.testing.assert_array_equal(plain, x)
    ((aug, _),) = split.batches(np.arange(4), 4, augment=True, rng=np.random.default_rng(0))
    flipped = np.random.default_rng(0).random(4) < 0.5
    np.testing.assert_array_equal(aug[flipped], x[flipped][:, :, ::-1])
    np.testing.assert_array_equal(aug[~flipped], x[~flipped])
    with pytest.raises(ValueError, match=r"rng must be a numpy.random.Generator when augment=True, got None"):
        split.batches(np.arange(4), 2, augment=True)


def test_split_indices():
    train, valid = split_indices(10, 0.3, seed=5)
    perm = np.random.default_rng(5).permutation(10)
    np.testing.assert_array_equal(valid, np.sort(perm[7:]))
    np.testing.assert_array_equal(train, np.sort(perm[:7]))
    train, valid = split_indices(10, 0.0, seed=5)
    assert len(valid) == 0 and len(train) == 10
    assert len(split_indices(3, 0.5, 0)[1]) == 2  # round half up
    assert len(split_indices(2, 0.99, 0)[0]) == 1  # at least one training sample


def test_data_set_defaults_and_checks():
    train = ArraySplit(np.zeros((3, 2)), np.zeros(3))
    data = DataSet(train)
    assert len(data.valid) == 0 and data.valid.input_shape == (2,) and data.test is None
    assert data.input_scaler is None and data.output_scaler is None and data.class_names is None
    assert data.input_shape == (2,)
    with pytest.raises(ValueError, match=r"valid must have the training input shape \(2,\), got \(3,\)"):
        DataSet(train, ArraySplit(np.zeros((1, 3)), np.zeros(1)))
    with pytest.raises(TypeError, match=r"train must be a Split, got ndarray"):
        DataSet(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"train must hold at least one sample, got 0"):
        DataSet(ArraySplit(np.zeros((0, 2)), np.zeros(0)))


def test_default_arrays_of_a_custom_split():
    class Squares(Split):
        def __len__(self):
            return 4

        @property
        def input_shape(self):
            return (1,)

        def batches(self, order, batch_size, augment=False, rng=None):
            for s in range(0, len(order), batch_size):
                idx = np.asarray(order[s : s + batch_size])
                yield idx[:, None].astype(np.float32) ** 2, idx

    x, y = Squares().arrays()
    np.testing.assert_array_equal(x[:, 0], [0, 1, 4, 9])
    np.testing.assert_array_equal(y, [0, 1, 2, 3])
