"""Metrics, computed over the whole evaluated set.

Each metric is a small streaming object: ``reset()``, ``update(y_pred, y_true)`` once per batch (which adds
counts or sums, never per-batch averages) and ``result()``. So a ragged last batch weighs exactly as much as
its samples. Each also exists as a plain function over whole arrays (``accuracy(y_pred, y_true)``).

``y_pred`` are network outputs (probabilities, or any scores whose argmax is the class); ``y_true`` are
one-hot / probability rows or integer class ids of shape ``(N,)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro import backend


def _class_ids(y_true: Any, n_outputs: int) -> np.ndarray:
    y = backend.to_numpy(y_true)
    if y.ndim == 2 and y.shape[1] == n_outputs and n_outputs > 1:
        return y.argmax(axis=1)
    return y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y


def _predicted_ids(y_pred: Any) -> np.ndarray:
    p = backend.to_numpy(y_pred)
    p = p.reshape(len(p), -1)
    if p.shape[1] == 1:
        return (p[:, 0] >= 0.5).astype(np.int64)
    return p.argmax(axis=1)


class Metric:
    """Base class of streaming metrics."""

    name = ""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, y_pred: Any, y_true: Any) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError


class Accuracy(Metric):
    """Fraction of correctly classified samples: argmax, or threshold 0.5 for a single output."""

    name = "accuracy"

    def reset(self) -> None:
        self.correct = 0
        self.count = 0

    def update(self, y_pred: Any, y_true: Any) -> None:
        n_out = int(np.prod(y_pred.shape[1:])) if y_pred.ndim > 1 else 1
        pred = _predicted_ids(y_pred)
        true = _class_ids(y_true, n_out)
        if n_out == 1:
            true = (np.asarray(true, dtype=np.float64) >= 0.5).astype(np.int64)
        self.correct += int((pred == true).sum())
        self.count += len(pred)

    def result(self) -> float:
        return self.correct / self.count if self.count else 0.0


def accuracy(y_pred: Any, y_true: Any) -> float:
    """Accuracy over whole arrays (see :class:`Accuracy`)."""
    m = Accuracy()
    m.update(y_pred, y_true)
    return m.result()


_REGISTRY: dict[str, type[Metric]] = {"accuracy": Accuracy, "acc": Accuracy}


def get(metric: str | Metric) -> Metric:
    """Return a fresh metric object from a name or an instance.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else.
    """
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        key = metric.lower()
        if key not in _REGISTRY:
            raise ValueError(f"metric must be one of {sorted(_REGISTRY)}, got {metric!r}")
        return _REGISTRY[key]()
    raise TypeError(f"metric must be a name or a Metric, got {type(metric).__name__}")
