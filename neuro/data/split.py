"""Small helpers for preparing arrays."""

from __future__ import annotations

from typing import Any

import numpy as np


def train_test_split(
    x: Any, y: Any, test_fraction: float = 0.2, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle with a seeded generator and split into ``(x_train, y_train, x_test, y_test)``.

    Args:
        x: inputs, first axis the samples.
        y: targets, same number of rows.
        test_fraction: share of samples held out, in (0, 1).
        seed: seed of the shuffle.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"y must have one row per sample of x ({len(x)}), got {len(y)}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def one_hot(ids: Any, n_classes: int, dtype: Any = np.float32) -> np.ndarray:
    """Return one-hot rows ``(N, n_classes)`` for integer class ids ``(N,)``."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be a 1-D integer array, got shape {ids.shape}, dtype {ids.dtype}")
    if len(ids) and (ids.min() < 0 or ids.max() >= n_classes):
        raise ValueError(f"ids must be in [0, {n_classes - 1}], got [{ids.min()}, {ids.max()}]")
    out = np.zeros((len(ids), n_classes), dtype=dtype)
    out[np.arange(len(ids)), ids] = 1
    return out
