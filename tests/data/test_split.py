"""train_test_split follows scikit-learn's signature, order and (for an int seed) its split; one_hot."""

from __future__ import annotations

import numpy as np
import pytest

from neuro.data import one_hot, train_test_split


@pytest.mark.parametrize(
    ("n", "test_size", "seed"), [(10, 0.25, 0), (10, 0.3, 1), (7, 2, 42), (100, 0.5, 3), (3, 0.1, 9)]
)
def test_matches_scikit_learn(n, test_size, seed):
    sk = pytest.importorskip("sklearn.model_selection")
    x = np.arange(2 * n).reshape(n, 2)
    y = np.arange(n) * 10
    ours = train_test_split(x, y, test_size=test_size, random_state=seed)
    theirs = sk.train_test_split(x, y, test_size=test_size, random_state=seed)
    assert len(ours) == 4
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_order_and_sizes():
    x = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=1)
    assert len(x_test) == 3 and len(x_train) == 7  # ceil(0.3·10) test samples
    np.testing.assert_array_equal(x_train[:, 0] // 2, y_train)
    np.testing.assert_array_equal(x_test[:, 0] // 2, y_test)
    assert sorted(np.concatenate([y_train, y_test]).tolist()) == list(range(10))
    a_train, a_test = train_test_split(np.arange(8))  # default test_size 0.25
    assert len(a_test) == 2 and len(a_train) == 6


def test_lists_stay_lists_and_no_shuffle():
    names = ["a", "b", "c", "d"]
    train, test = train_test_split(names, test_size=1, shuffle=False)
    assert train == ["a", "b", "c"] and test == ["d"]
    train, test = train_test_split(names, test_size=0.5, random_state=np.random.default_rng(0))
    assert isinstance(train, list) and sorted(train + test) == names


def test_errors():
    with pytest.raises(ValueError, match=r"train_test_split needs at least one array, got none"):
        train_test_split()
    with pytest.raises(
        ValueError, match=r"arrays must all have the same number of samples, got lengths \[3, 2\]"
    ):
        train_test_split(np.zeros(3), np.zeros(2))
    with pytest.raises(
        ValueError, match=r"test_size must be a float in \(0, 1\) or an int in \[1, n_samples\), got 1.0"
    ):
        train_test_split(np.zeros(4), test_size=1.0)
    with pytest.raises(ValueError, match=r"test_size must be an int in \[1, 3\] for 4 samples, got 4"):
        train_test_split(np.zeros(4), test_size=4)
    with pytest.raises(ValueError, match=r"test_size=0.99 leaves no training sample of 4"):
        train_test_split(np.zeros(4), test_size=0.99)
    with pytest.raises(
        ValueError, match=r"random_state must be None, an int, a RandomState or a Generator, got 'x'"
    ):
        train_test_split(np.zeros(4), random_state="x")


def test_old_keywords_get_a_migration_message():
    with pytest.raises(
        TypeError,
        match=r"train_test_split now follows scikit-learn: .*test_size=.*random_state=.*x_train, x_test, y_train, y_test",
    ):
        train_test_split(np.zeros(4), np.zeros(4), test_fraction=0.25, seed=0)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['stratify'\]"):
        train_test_split(np.zeros(4), stratify=None)


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    assert one_hot(np.array([1]), 2).dtype == np.float32
    with pytest.raises(ValueError, match=r"ids must be in \[0, 2\], got \[3, 3\]"):
        one_hot(np.array([3]), 3)
    with pytest.raises(ValueError, match=r"ids must be a 1-D integer array, got shape \(1,\), dtype float64"):
        one_hot(np.array([1.0]), 3)
    with pytest.raises(ValueError, match=r"n_classes must be a positive integer, got 0"):
        one_hot(np.array([], dtype=int), 0)
