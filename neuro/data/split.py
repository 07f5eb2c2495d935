"""Small helpers for preparing arrays: a scikit-learn-compatible ``train_test_split`` and ``one_hot``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _n_test(test_size: Any, n: int) -> int:
    expected = "a float in (0, 1) or an int in [1, n_samples)"
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.integer, np.floating)):
        raise ValueError(f"test_size must be {expected}, got {test_size!r}")
    if isinstance(test_size, (float, np.floating)):
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"test_size must be {expected}, got {test_size!r}")
        n_test = math.ceil(float(test_size) * n)
    else:
        if not 1 <= test_size < n:
            raise ValueError(f"test_size must be an int in [1, {n - 1}] for {n} samples, got {test_size!r}")
        n_test = int(test_size)
    if n - n_test < 1:
        raise ValueError(f"test_size={test_size!r} leaves no training sample of {n}; use a smaller test_size")
    return n_test


def _take(a: Any, rows: np.ndarray) -> Any:
    if hasattr(a, "iloc"):  # a pandas object
        return a.iloc[rows]
    if isinstance(a, np.ndarray) or hasattr(a, "__array_namespace__"):
        return a[rows]
    if isinstance(a, list):
        return [a[i] for i in rows]
    return np.asarray(a)[rows]


def train_test_split(
    *arrays: Any,
    test_size: float | int = 0.25,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
    shuffle: bool = True,
    **legacy: Any,
) -> list[Any]:
    """Split arrays into random train and test subsets, as scikit-learn's ``train_test_split`` does.

    Same arguments, same order of results (``[a_train, a_test, b_train, b_test, ...]``) and, for an int
    ``random_state``, the same split as scikit-learn: the test rows are the first ``ceil(test_size·n)`` of
    ``numpy.random.RandomState(random_state).permutation(n)``, the training rows the rest.

    Args:
        *arrays: arrays (or lists) with the same first dimension.
        test_size: the share of samples in the test subset, a float in (0, 1), or their number, an int.
        random_state: seed (int), ``numpy.random.RandomState`` or ``numpy.random.Generator`` of the shuffle;
            ``None`` draws from NumPy's global generator.
        shuffle: shuffle before splitting; ``False`` takes the last samples as the test subset.
        **legacy: no keyword is accepted here; it only catches the pre-scikit-learn keywords
            (``test_fraction``, ``seed``) and any other unknown keyword to raise a helpful ``TypeError``.

    Returns:
        ``[a_train, a_test, b_train, b_test, ...]``: two entries per input, of its type (lists stay lists).

    Shape:
        each input ``(n, ...)``; outputs ``(n_train, ...)`` and ``(n_test, ...)``.

    Raises:
        ValueError: for no arrays, inputs of different lengths, a ``test_size`` out of range, or a
            ``random_state`` of another type.
        TypeError: for the old keywords ``test_fraction`` / ``seed`` (with the new spelling) or others.
    """
    if legacy:
        if {"test_fraction", "seed"} & set(legacy):
            raise TypeError(
                "train_test_split now follows scikit-learn: write train_test_split(x, y, test_size=..., "
                "random_state=...) and unpack x_train, x_test, y_train, y_test = ...; "
                f"got the old keywords {sorted(legacy)}"
            )
        raise TypeError(f"train_test_split() got unexpected keyword arguments {sorted(legacy)}")
    if not arrays:
        raise ValueError("train_test_split needs at least one array, got none")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) != 1:
        raise ValueError(f"arrays must all have the same number of samples, got lengths {lengths}")
    n = lengths[0]
    n_test = _n_test(test_size, n)
    n_train = n - n_test
    if shuffle:
        if isinstance(random_state, np.random.Generator):
            perm = random_state.permutation(n)
        elif isinstance(random_state, np.random.RandomState):
            perm = random_state.permutation(n)
        elif random_state is None:
            perm = np.random.permutation(n)  # noqa: NPY002  (scikit-learn's behaviour for None)
        elif isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
            perm = np.random.RandomState(int(random_state)).permutation(n)
        else:
            raise ValueError(
                f"random_state must be None, an int, a RandomState or a Generator, got {random_state!r}"
            )
        test, train = perm[:n_test], perm[n_test:]
    else:
        train, test = np.arange(n_train), np.arange(n_train, n)
    out: list[Any] = []
    for a in arrays:
        out.extend([_take(a, train), _take(a, test)])
    return out


def one_hot(ids: Any, n_classes: int, dtype: Any = np.float32) -> np.ndarray:
    """Return one-hot rows for integer class ids.

    Args:
        ids: class ids in ``[0, n_classes)``.
        n_classes: the number of classes.
        dtype: dtype of the result.

    Returns:
        The one-hot rows.

    Shape:
        ``ids``: ``(N,)``; result ``(N, n_classes)``.

    Raises:
        ValueError: for ids that are not a 1-D integer array, or out of range.
    """
    ids = np.asarray(ids)
    if ids.ndim == 1 and ids.size == 0:  # an empty list reads as float64
        ids = ids.astype(np.int64)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be a 1-D integer array, got shape {ids.shape}, dtype {ids.dtype}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes <= 0:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    if len(ids) and (ids.min() < 0 or ids.max() >= n_classes):
        raise ValueError(f"ids must be in [0, {n_classes - 1}], got [{ids.min()}, {ids.max()}]")
    out = np.zeros((len(ids), n_classes), dtype=dtype)
    out[np.arange(len(ids)), ids] = 1
    return out
