"""Metrics, computed over the whole evaluated set.

Each metric is a small streaming object: ``reset()``, ``update(y_pred, y_true)`` once per batch
(which adds counts or sums, never per-batch averages) and ``result()``. So a ragged last batch
weighs exactly as much as its samples, and the result equals the metric of the concatenated batches.
Each also exists as a plain function over whole arrays (``accuracy(y_pred, y_true)``). The argument
order is ``(y_pred, y_true)``, as for losses, except for the functions that share a name with
scikit-learn's (``f1_score``, ``confusion_matrix``, ``roc_auc_score``, ``average_precision_score``,
``mean_absolute_error``, ``mean_squared_error``, ``root_mean_squared_error``, ``r2_score``), which take
scikit-learn's ``(y_true, y_pred)`` so that a scikit-learn user gets what they expect. Accumulated sums
stay on the device of the predictions and are read once, by ``result()``.

Classification: ``y_pred`` are network outputs of shape ``(N, C)`` (probabilities, or any scores
whose argmax is the class) or ``(N, 1)`` / ``(N,)`` for a single sigmoid output, read as class 1
when ``>= 0.5`` (values outside [0, 1] are refused). ``y_true`` are one-hot / probability rows ``(N, C)``
or integer class ids ``(N,)``; for a single output, 0/1 labels (or probabilities, thresholded at 0.5).
The number of classes is ``C`` (2 for a single output). Integer ``y_pred`` of shape ``(N,)`` are
predicted class ids (``predict_class``'s, or scikit-learn's ``y_pred``): C is then the width of one-hot
``y_true``, else the largest id plus one.

Regression: ``y_pred`` and ``y_true`` hold the same number of values per sample (``(N,)`` and
``(N, 1)`` are interchangeable); errors are averaged uniformly over samples and outputs, as
scikit-learn's default ``multioutput="uniform_average"``.

Names accepted by :func:`get` (the object's ``name``, used as the History key, in brackets):
``"accuracy"``/``"acc"`` (accuracy), ``"binary_accuracy"`` (binary_accuracy: elementwise, for several
sigmoid outputs), Keras's ``"categorical_accuracy"`` and ``"sparse_categorical_accuracy"`` (accuracy under
those names, each reading one-hot rows and class ids alike), ``"auc"`` (auc: ROC AUC, exact; ``AUC("PR")``
is pr_auc, the average precision), ``"top_k_accuracy"``/``"top_k"`` (top5_accuracy, k = 5),
``"top<k>"``/``"top<k>_accuracy"`` for any k (top<k>_accuracy), ``"precision"`` (precision),
``"recall"`` (recall), ``"f1"``/``"f1_score"`` (f1_score), ``"mae"``/``"mean_absolute_error"``
(mae), ``"mse"``/``"mean_squared_error"`` (mse), ``"rmse"``/``"root_mean_squared_error"`` (rmse),
``"r2"``/``"r2_score"`` (r2).
"""

from __future__ import annotations

import copy
import math
import numbers
import re
from typing import Any

import numpy as np

from neuro import backend, registry
from neuro.backend import get_array_module

# -- helpers: read classification outputs and targets ----------------------------------------------


def _outputs_2d(y_pred: Any) -> Any:
    """``y_pred`` as an array of shape ``(N, C)`` (``(N, 1)`` for a single output), on its device."""
    p = y_pred if backend.is_array(y_pred) else np.asarray(y_pred)
    if p.ndim == 0:
        raise ValueError(f"y_pred must have a batch axis, got shape {p.shape}")
    return p.reshape(len(p), -1)


def _n_classes(p: np.ndarray) -> int:
    """Number of classes of 2-D outputs: their width, or 2 for a single sigmoid output."""
    return 2 if p.shape[1] == 1 else p.shape[1]


def _predicted_ids(p: Any) -> Any:
    """Predicted class ids of 2-D outputs: argmax, or ``p >= 0.5`` for a single output."""
    if p.shape[1] == 1:
        return (p[:, 0] >= 0.5).astype(np.int64)
    return p.argmax(axis=1)


def _class_ids(y_true: Any, n_outputs: int, n_samples: int, strict: bool = False) -> np.ndarray:
    """True class ids (int64, shape ``(N,)``) from one-hot rows, integer ids or 0/1 labels.

    Values are checked (integers, in range) only for host arrays: on a device the network has checked its
    targets before moving them, and reading them back would cost a transfer per batch. ``strict`` (the
    functions over whole arrays) also refuses a single output's labels outside [0, 1]; a metric object in
    ``fit`` thresholds them, as Keras does for ``metrics=["accuracy"]`` given to every output of a model.

    Raises:
        ValueError: when the number of samples differs from ``n_samples`` or an id is out of range.
    """
    y = y_true if backend.is_array(y_true) else np.asarray(y_true)
    host = get_array_module(y) is np
    if y.ndim == 0 or len(y) != n_samples:
        raise ValueError(
            f"y_true must have the same number of samples as y_pred ({n_samples}), got shape {y.shape}"
        )
    if n_outputs == 1:
        y = y.reshape(n_samples, -1)
        if y.shape[1] != 1:
            raise ValueError(f"y_true must hold one label per sample, got shape {y.shape}")
        if strict and y.size:  # whole arrays: read once, on any device
            lo, hi = (float(backend.to_numpy(v)) for v in (y.min(), y.max()))
            if not (lo >= 0 and hi <= 1):  # NaN fails too
                raise ValueError(
                    f"y_true of a single output must hold 0/1 labels (or probabilities), got values in "
                    f"[{lo:g}, {hi:g}]; class ids of more classes need outputs (N, C) or predicted ids"
                )
        return (y[:, 0] >= 0.5).astype(np.int64)
    if y.ndim == 2 and y.shape[1] == n_outputs:
        return y.argmax(axis=1)
    y = y.reshape(n_samples, -1)
    if y.shape[1] != 1:
        raise ValueError(
            f"y_true must be one-hot rows of width {n_outputs} or class ids of shape (N,), "
            f"got shape {y.shape}"
        )
    ids = y[:, 0]
    if host and ids.dtype.kind not in "iub" and not np.array_equal(ids, np.round(ids)):
        raise ValueError("y_true must hold integer class ids, got non-integer values")
    ids = ids.astype(np.int64)
    if host and ids.size and (ids.min() < 0 or ids.max() >= n_outputs):
        raise ValueError(
            f"y_true class ids must be in [0, {n_outputs}), got values in [{ids.min()}, {ids.max()}]"
        )
    return ids


def _classification_pair(
    y_pred: Any, y_true: Any, strict: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(outputs (N, C), predicted ids, true ids)``; every position of a sequence output
    ``(N, T, C)`` is a row of its own (targets ``(N, T)`` ids or ``(N, T, C)`` rows).

    ``strict`` (the functions over whole arrays, whose ``y_pred`` may be predicted class ids): integer
    ``(N,)`` predictions are class ids, and a single output's values outside [0, 1] are refused. A metric
    object (network outputs, batch by batch: the number of classes must not change between batches) takes
    integer predictions of 0 and 1 only, and thresholds a single output at 0.5 whatever its values."""
    if backend.is_array(y_pred) and y_pred.ndim >= 3:
        c = y_pred.shape[-1]
        p = y_pred.reshape(-1, c)
        y = y_true if backend.is_array(y_true) else np.asarray(y_true)
        rows = y.ndim == y_pred.ndim and y.shape[-1] == c and c > 1  # else ids, (N, T) or (N, T, 1)
        y = y.reshape(-1, c) if rows else y.reshape(-1)
        if c == 1:  # a sigmoid per step: each step a single output
            return _classification_pair(p, y, strict)
        return p, _predicted_ids(p), _class_ids(y, c, len(p), strict)
    p = _outputs_2d(y_pred)
    if p.shape[1] == 1 and p.size and (strict or get_array_module(p) is np):
        if p.dtype.kind in "iu":  # predicted class ids (predict_class's, or scikit-learn's y_pred)
            if strict:  # whole arrays: read on the host, where the class count is found
                return _predicted_id_pair(np.asarray(backend.to_numpy(p))[:, 0], y_true)
            if p.min() < 0 or p.max() > 1:
                raise ValueError(
                    f"y_pred holds class ids up to {p.max()}: a metric object reads network outputs (N, C); "
                    "give predicted class ids to the function of the same name (neuro.metrics.accuracy, "
                    "f1_score, ...) over whole arrays"
                )
        elif strict:
            lo, hi = (float(backend.to_numpy(v)) for v in (p.min(), p.max()))
            if not (lo >= 0 and hi <= 1):  # NaN fails too
                raise ValueError(
                    f"y_pred of a single output must hold probabilities in [0, 1] (class 1 when >= 0.5), got "
                    f"values in [{lo}, {hi}]; give predicted class ids as integers"
                )
    return p, _predicted_ids(p), _class_ids(y_true, p.shape[1], len(p), strict)


def _predicted_id_pair(ids: np.ndarray, y_true: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(one-hot scores (N, C), ids, true ids)`` for predicted class ids: C is the width of one-hot
    ``y_true``, else the largest id of either plus one (at least 2)."""
    ids = ids.astype(np.int64)
    if ids.min() < 0:
        raise ValueError(f"y_pred class ids must be >= 0, got {ids.min()}")
    y = np.asarray(backend.to_numpy(y_true))
    if y.ndim == 2 and y.shape[1] > 1:
        c = y.shape[1]
    else:
        whole = y.reshape(-1) if y.size else np.zeros(1)
        if whole.dtype.kind not in "iub" and not np.array_equal(whole, np.round(whole)):
            raise ValueError("y_true must hold integer class ids, got non-integer values")
        c = int(max(2, ids.max() + 1, whole.max() + 1))
    if ids.max() >= c:
        raise ValueError(f"y_pred class ids must be in [0, {c}) like y_true's, got up to {ids.max()}")
    scores = np.zeros((len(ids), c))
    scores[np.arange(len(ids)), ids] = 1.0
    return scores, ids, _class_ids(y, c, len(ids))


def _row_weights(sample_weight: Any, n_rows: int) -> Any:
    """Sample weights (or a mask of valid steps) flattened to one weight per row, or ``None``."""
    if sample_weight is None:
        return None
    w = sample_weight if backend.is_array(sample_weight) else np.asarray(sample_weight, dtype=np.float64)
    w = w.reshape(-1)
    if len(w) != n_rows:
        raise ValueError(f"sample_weight must have one weight per sample or step ({n_rows}), got {len(w)}")
    return w


# -- base ------------------------------------------------------------------------------------------


class Metric:
    """Base class of streaming metrics.

    Attributes:
        name: key of the metric in the training History and in printed logs.
        greater_is_better: whether a larger value is better (accuracies, scores), smaller (errors), or
            ``None`` when the metric does not say (a function of the user's); callbacks in ``mode="auto"``
            read it.
    """

    name = ""
    greater_is_better: bool | None = None
    #: set on the objects behind the functions over whole arrays (see :func:`_classification_pair`)
    _strict = False

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        raise NotImplementedError

    def update(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> None:
        """Add one batch.

        Args:
            y_pred: network outputs of the batch.
            y_true: targets of the batch.
            sample_weight: optional weight of each sample (or, for a sequence output, a mask ``(N, T)`` of
                the valid steps): the metric counts each item by its weight.
        """
        raise NotImplementedError

    def result(self) -> float:
        """Return the metric over every sample seen since the last :meth:`reset`."""
        raise NotImplementedError

    def __call__(self, y_pred: Any, y_true: Any) -> float:
        """Reset, add one batch and return the result: the metric over whole arrays."""
        self.reset()
        self.update(y_pred, y_true)
        return self.result()

    def state(self) -> Any:
        """What the metric has seen, as host values (picklable), for :meth:`merge`.

        Returns:
            The state; ``None`` before the first batch.

        Raises:
            TypeError: for a metric that cannot be merged (a subclass that does not say how).
        """
        raise TypeError(
            f"metric {type(self).__name__} cannot be merged over processes: it defines no state() and merge()"
        )

    def merge(self, states: list[Any]) -> Metric:
        """A copy of this metric holding what every state in ``states`` saw, merged in order.

        Distributed training merges the ranks' metrics with it, so that the result is the metric of the
        global data, exactly.

        Args:
            states: results of :meth:`state` (of metrics of this kind), in rank order.

        Returns:
            A new metric (this one is not changed).
        """
        raise TypeError(
            f"metric {type(self).__name__} cannot be merged over processes: it defines no state() and merge()"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# -- classification --------------------------------------------------------------------------------


class Accuracy(Metric):
    """Fraction of correctly classified samples: argmax, or threshold 0.5 for a single output.

    Result: ``correct / count`` over all samples seen (0.0 before any sample).
    """

    name = "accuracy"
    greater_is_better = True

    def reset(self) -> None:
        self.correct = 0
        self.count = 0

    def update(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> None:
        _, pred, true = _classification_pair(y_pred, y_true, self._strict)
        w = _row_weights(sample_weight, len(pred))
        if w is None:
            self.correct = self.correct + (pred == true).sum()  # stays on the device
            self.count += len(pred)
        else:
            self.correct = self.correct + ((pred == true) * w).sum()
            self.count = self.count + w.sum()

    def result(self) -> float:
        count = float(backend.to_numpy(self.count))  # Python floats: a float32 count must not round it
        return float(backend.to_numpy(self.correct)) / count if count else 0.0

    def state(self) -> tuple[float, float]:
        count = backend.to_numpy(self.count) if backend.is_array(self.count) else self.count
        return float(backend.to_numpy(self.correct)), float(count)

    def merge(self, states: list[Any]) -> Accuracy:
        out = copy.copy(self)
        out.correct = sum(st[0] for st in states)
        out.count = sum(st[1] for st in states)
        return out


class BinaryAccuracy(Accuracy):
    """Fraction of right labels over every output of every sample: ``[ŷ ≥ 0.5] = [y ≥ 0.5]`` elementwise.

    For independent sigmoid outputs (multi-label, or a per-pixel mask) trained with binary cross-entropy, as
    Keras's ``binary_accuracy``. ``y_true`` has the shape of ``y_pred`` (0/1 labels or probabilities).

    Result: ``right / count`` over all values seen (0.0 before any).
    """

    name = "binary_accuracy"

    def update(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> None:
        p, t = _regression_pair(y_pred, y_true)
        right = (p >= 0.5) == (t >= 0.5)
        if sample_weight is None:
            self.correct = self.correct + right.sum()  # stays on the device
            self.count += p.size
        else:  # per sample, or per step of a sequence output (a mask of its valid steps)
            rows, wf = _weighted_rows(right, sample_weight)
            self.correct = self.correct + (rows * wf).sum()
            self.count = self.count + wf.sum() * rows.shape[1]


class CategoricalAccuracy(Accuracy):
    """Keras's ``categorical_accuracy``: :class:`Accuracy` under Keras's name, which is also its History key.

    Keras's version expects one-hot rows; this one reads the targets as :class:`Accuracy` does (one-hot or
    probability rows ``(N, C)``, or class ids ``(N,)``), so either form gives the right number.

    Result: ``correct / count`` over all samples seen (0.0 before any sample).
    """

    name = "categorical_accuracy"


class SparseCategoricalAccuracy(Accuracy):
    """Keras's ``sparse_categorical_accuracy``: :class:`Accuracy` under Keras's name, which is also its
    History key.

    Keras's version expects class ids; this one reads the targets as :class:`Accuracy` does (class ids
    ``(N,)``, or one-hot rows ``(N, C)``), so either form gives the right number.

    Result: ``correct / count`` over all samples seen (0.0 before any sample).
    """

    name = "sparse_categorical_accuracy"


class TopKAccuracy(Accuracy):
    """Fraction of samples whose true class is among the ``k`` highest scores.

    A sample counts as a hit when fewer than ``k`` classes score *strictly* higher than its true
    class (ties count in its favour, as ``tf.math.in_top_k``; scikit-learn breaks ties by index
    instead, which only matters for exactly equal scores). A row with a NaN or infinite score is a miss,
    as in ``tf.math.in_top_k``. For a single sigmoid output (2 classes)
    ``k = 1`` is plain accuracy and ``k >= 2`` always hits, as in scikit-learn. With ``k >= C``
    every sample hits.

    Args:
        k: number of top scores to look at, a positive integer (default 5).

    Attributes:
        name: ``"top<k>_accuracy"`` (``"top5_accuracy"`` by default); :func:`get` accepts it back.

    Raises:
        ValueError: when ``k`` is not a positive integer.
    """

    def __init__(self, k: int = 5) -> None:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.k = int(k)
        self.name = f"top{self.k}_accuracy"
        super().__init__()

    def update(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> None:
        p, pred, true = _classification_pair(y_pred, y_true, self._strict)
        xp = get_array_module(p)
        if p.shape[1] == 1:
            hits = pred == true if self.k == 1 else xp.ones(len(p), dtype=bool)
        else:
            true_score = p[xp.arange(len(p)), true]
            hits = (p > true_score[:, None]).sum(axis=1) < self.k
            hits &= xp.isfinite(p).all(axis=1)  # nothing scores above NaN: a row with one is a miss
        w = _row_weights(sample_weight, len(p))
        if w is None:
            self.correct = self.correct + hits.sum()
            self.count += len(p)
        else:
            self.correct = self.correct + (hits * w).sum()
            self.count = self.count + w.sum()

    def __repr__(self) -> str:
        return f"TopKAccuracy(k={self.k})"


AVERAGES = ("auto", "binary", "macro")


class _ConfusionMetric(Metric):
    """Base of metrics computed from a confusion matrix accumulated over batches.

    Args:
        average: ``"auto"`` (default): ``"binary"`` for two classes (a single sigmoid output, or C = 2),
            ``"macro"`` for more; ``"binary"``: the value of class 1, the positive class (scikit-learn's
            default ``average="binary"``, Keras's ``Precision``/``Recall`` of a sigmoid output); ``"macro"``:
            the mean over the classes that occur (scikit-learn's ``average="macro"``).

    Attributes:
        matrix: ``(C, C)`` int64 counts, rows = true class, columns = predicted class (as
            scikit-learn); ``None`` before the first batch. ``C`` comes from the width of the first
            batch's ``y_pred``.

        multi_label: read every value of ``y_pred`` as a probability of its own (class 1 when ≥ 0.5) against
            the 0/1 label at its place: several sigmoid outputs (multi-label), or a sigmoid per step, pooled
            over all values (Keras's ``Precision``/``Recall`` thresholding). ``fit`` and ``evaluate`` choose
            it for an output trained with binary cross-entropy when the metric is given by name.

    Raises:
        ValueError: for another ``average``; ``"binary"`` over more than two classes (at the result).
    """

    greater_is_better = True

    def __init__(self, average: str = "auto", multi_label: bool = False) -> None:
        if average not in AVERAGES:
            raise ValueError(f"average must be one of {list(AVERAGES)}, got {average!r}")
        if not isinstance(multi_label, (bool, np.bool_)):
            raise TypeError(f"multi_label must be True or False, got {multi_label!r}")
        self.average = average
        self.multi_label = bool(multi_label)
        super().__init__()

    def __repr__(self) -> str:
        name = type(self).__name__
        args = [] if self.average == "auto" else [repr(self.average)]
        if self.multi_label:
            args.append("multi_label=True")
        return f"{name}({', '.join(args)})"

    def _averaged(self, numerator: np.ndarray, denominator: np.ndarray, present: np.ndarray) -> float:
        """The binary (class 1) or macro value of ``numerator / denominator`` per class (0 where 0/0)."""
        n = len(numerator)
        if self.average == "binary" and n != 2:
            raise ValueError(f"average='binary' needs two classes, got {n}; use average='macro'")
        if self.average == "binary" or (self.average == "auto" and n == 2):
            return float(numerator[1] / denominator[1]) if denominator[1] > 0 else 0.0
        return self._macro(numerator, denominator, present)

    def reset(self) -> None:
        self.matrix: Any = None  # on the device of the predictions

    def update(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> None:
        if self.multi_label:
            y_pred, y_true, sample_weight = _every_value(y_pred, y_true, sample_weight)
        p, pred, true = _classification_pair(y_pred, y_true, self._strict)
        n = _n_classes(p)
        xp = get_array_module(p)
        w = _row_weights(sample_weight, len(p))
        if self.matrix is None:
            self.matrix = xp.zeros((n, n), dtype=np.int64 if w is None else np.float64)
        elif self.matrix.shape[0] != n:
            raise ValueError(
                f"y_pred must have {self.matrix.shape[0]} classes like the earlier batches, got {n}"
            )
        keys = true * n + pred
        if xp is np and w is None:  # exact counts, as scatter_sums gives them
            self.matrix += np.bincount(keys, minlength=n * n).reshape(n, n)
        else:  # sorted sums: on a device CuPy's bincount would read the largest key back and wait, and
            # weights are summed in scatter_sums's order on every device (bitwise alike)
            values = xp.ones(len(keys), dtype=np.int64) if w is None else w.astype(np.float64)
            self.matrix = self.matrix + backend.scatter_sums(keys, values, n * n).reshape(n, n)

    def _per_class(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(tp, predicted counts, true counts, present)`` per class."""
        m = backend.to_numpy(self.matrix) if self.matrix is not None else np.zeros((0, 0), dtype=np.int64)
        tp = np.diag(m).astype(np.float64)
        predicted = m.sum(axis=0).astype(np.float64)
        actual = m.sum(axis=1).astype(np.float64)
        return tp, predicted, actual, (predicted + actual) > 0

    def state(self) -> np.ndarray | None:
        return None if self.matrix is None else np.asarray(backend.to_numpy(self.matrix))

    def merge(self, states: list[Any]) -> _ConfusionMetric:
        present = [st for st in states if st is not None]
        if any(st.shape != present[0].shape for st in present):
            raise ValueError(f"the processes saw different numbers of classes for {self.name}")
        out = copy.copy(self)
        out.matrix = sum(present[1:], present[0].copy()) if present else None
        return out

    @staticmethod
    def _macro(numerator: np.ndarray, denominator: np.ndarray, present: np.ndarray) -> float:
        """Mean over present classes of ``numerator / denominator`` (0 where that is 0/0)."""
        if not present.any():
            return 0.0
        safe = np.where(denominator > 0, denominator, 1.0)
        per_class = np.where(denominator > 0, numerator / safe, 0.0)
        return float(per_class[present].mean())


def _every_value(y_pred: Any, y_true: Any, sample_weight: Any) -> tuple[Any, Any, Any]:
    """Predictions, labels and weights as one column of values (each value a sample of its own)."""
    xp = get_array_module(y_pred)
    t = y_true if backend.is_array(y_true) else xp.asarray(y_true)
    if t.size != y_pred.size:
        raise ValueError(
            f"y_true must hold one 0/1 label per value of y_pred {tuple(y_pred.shape)} (multi_label), got "
            f"shape {tuple(t.shape)}"
        )
    if sample_weight is not None:
        w = sample_weight if backend.is_array(sample_weight) else np.asarray(sample_weight, dtype=np.float64)
        if w.ndim == 0 or tuple(w.shape) != tuple(y_pred.shape[: w.ndim]):
            raise ValueError(
                f"sample_weight must weigh the leading axes of y_pred {tuple(y_pred.shape)}, got shape "
                f"{tuple(w.shape)}"
            )
        sample_weight = xp.broadcast_to(w.reshape(w.shape + (1,) * (y_pred.ndim - w.ndim)), y_pred.shape)
        sample_weight = sample_weight.reshape(-1)
    return y_pred.reshape(-1, 1), t.reshape(-1, 1), sample_weight


def _steps_as_samples(y_pred: Any, y_true: Any, sample_weight: Any) -> tuple[Any, Any, Any]:
    """A sequence output ``(N, T, D)`` as ``N·T`` samples of D values, its weights (of the samples or of the
    steps: a mask) spread to one per step."""
    xp = get_array_module(y_pred)
    t = y_true if backend.is_array(y_true) else xp.asarray(y_true)
    d = y_pred.shape[-1]
    if t.size != y_pred.size:
        raise ValueError(
            f"y_true must hold the values of y_pred {tuple(y_pred.shape)}, got shape {tuple(t.shape)}"
        )
    steps = y_pred.shape[:-1]
    if sample_weight is not None:
        w = sample_weight if backend.is_array(sample_weight) else np.asarray(sample_weight, dtype=np.float64)
        if w.ndim == 0 or tuple(w.shape) != tuple(steps[: w.ndim]):
            raise ValueError(
                f"sample_weight must weigh the samples or steps of y_pred {tuple(y_pred.shape)}, got shape "
                f"{tuple(w.shape)}"
            )
        sample_weight = xp.broadcast_to(w.reshape(w.shape + (1,) * (len(steps) - w.ndim)), steps).reshape(-1)
    return y_pred.reshape(-1, d), t.reshape(-1, d), sample_weight


class Precision(_ConfusionMetric):
    """Precision ``TP / (TP + FP)``: of class 1 for two classes, macro-averaged over more (see ``average``).

    Like scikit-learn's ``precision_score(zero_division=0)`` with ``average="binary"`` (its default) for two
    classes and ``average="macro"`` with its default labels for more: the mean runs over the classes that
    occur in ``y_true`` or in the predictions, and a class that is never predicted has precision 0.

    Args:
        average: ``"auto"`` (default: ``"binary"`` for two classes, ``"macro"`` for more), ``"binary"`` (class
            1's value) or ``"macro"``.
    """

    name = "precision"

    def result(self) -> float:
        tp, predicted, _, present = self._per_class()
        return self._averaged(tp, predicted, present)


class Recall(_ConfusionMetric):
    """Recall ``TP / (TP + FN)``: of class 1 for two classes, macro-averaged over more (see ``average``).

    Like scikit-learn's ``recall_score(zero_division=0)`` with ``average="binary"`` for two classes and
    ``average="macro"`` with its default labels for more: the mean runs over the classes that occur in
    ``y_true`` or in the predictions, and a class with no true sample has recall 0.

    Args:
        average: ``"auto"`` (default: ``"binary"`` for two classes, ``"macro"`` for more), ``"binary"`` (class
            1's value) or ``"macro"``.
    """

    name = "recall"

    def result(self) -> float:
        tp, _, actual, present = self._per_class()
        return self._averaged(tp, actual, present)


class F1Score(_ConfusionMetric):
    """F1 ``2·TP / (2·TP + FP + FN)`` (= 2PR / (P + R)): of class 1 for two classes, macro-averaged over more.

    Like scikit-learn's ``f1_score(zero_division=0)`` with ``average="binary"`` for two classes and
    ``average="macro"`` with its default labels for more: the mean runs over the classes that occur in
    ``y_true`` or in the predictions (the per-class F1 of a class with precision and recall 0 is 0). The
    macro value is the mean of per-class F1 values, not the F1 of the macro precision and recall.

    Args:
        average: ``"auto"`` (default: ``"binary"`` for two classes, ``"macro"`` for more), ``"binary"`` (class
            1's value) or ``"macro"``.
    """

    name = "f1_score"

    def result(self) -> float:
        tp, predicted, actual, present = self._per_class()
        return self._averaged(2.0 * tp, predicted + actual, present)


# -- ranking ---------------------------------------------------------------------------------------


def _binary_thresholds(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None) -> tuple[Any, Any]:
    """Weighted true and false positive counts at each distinct score, from the highest score down
    (scikit-learn's ``_binary_clf_curve``); samples of weight 0 are left out."""
    if weights is not None:
        keep = weights != 0
        scores, labels, weights = scores[keep], labels[keep], weights[keep]
    if not len(scores):
        return np.zeros(0), np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order].astype(np.float64)
    w = np.ones_like(labels) if weights is None else weights[order]
    last = np.r_[np.flatnonzero(scores[1:] != scores[:-1]), len(scores) - 1]  # (not diff: inf − inf is NaN)
    tps = np.cumsum(labels * w)[last]
    fps = np.cumsum((1.0 - labels) * w)[last]
    return tps, fps


class AUC(Metric):
    """Area under the ROC curve or the precision-recall curve, exact over every sample seen.

    ``curve="ROC"`` is ``sklearn.metrics.roc_auc_score``: the trapezoidal area under (false positive rate,
    true positive rate) through every distinct score, so tied scores count one half (the Mann-Whitney
    statistic). ``curve="PR"`` is ``sklearn.metrics.average_precision_score``:
    ``AP = Σ_k (R_k − R_{k−1})·P_k`` over the distinct scores, a step function without interpolation (not the
    trapezoid under the PR curve, which is optimistic). Keras's ``AUC`` approximates both with 200
    thresholds; this one keeps every score.

    Inputs: ``y_pred`` holds scores of any scale (probabilities or logits): ``(N,)`` or ``(N, 1)`` for one
    binary output, ``(N, C)`` (or a sequence ``(N, T, C)``) for several. ``y_true`` has the shape of
    ``y_pred`` (``(N,)`` also fits ``(N, 1)``), or holds class ids ``(N,)`` for ``(N, C)`` outputs; a label is
    positive when ``y >= 0.5`` (0/1 labels, −1/1 labels, probabilities). Several outputs are pooled into
    one binary problem (Keras's default ``multi_label=False``, scikit-learn's ``average="micro"``). Sample
    weights (or a mask of valid steps) weigh every output of their sample.

    Result: NaN before any sample and, for ROC, while only one class has been seen (as scikit-learn); AP is
    0.0 with no positive sample (as scikit-learn).

    Streaming: every score, label and weight is kept (on the predictions' device until :meth:`result`);
    :meth:`state` is them on the host and :meth:`merge` concatenates them in rank order, so the merged AUC
    equals the AUC of the whole data set.

    Args:
        curve: ``"ROC"`` (default) or ``"PR"`` (either case).
        name: the History key; ``"auc"`` for ROC and ``"pr_auc"`` for PR when ``None``.

    Raises:
        ValueError: for another curve.
    """

    greater_is_better = True

    def __init__(self, curve: str = "ROC", name: str | None = None) -> None:
        if not isinstance(curve, str) or curve.upper() not in ("ROC", "PR"):
            raise ValueError(f"curve must be 'ROC' or 'PR', got {curve!r}")
        self.curve = curve.upper()
        self.name = name if name is not None else ("auc" if self.curve == "ROC" else "pr_auc")
        super().__init__()

    def reset(self) -> None:
        self.scores: list[Any] = []
        self.labels: list[Any] = []
        self.weights: list[Any] = []  # None for a batch without weights

    def update(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> None:
        p = y_pred if backend.is_array(y_pred) else np.asarray(y_pred)
        xp = get_array_module(p)
        y = y_true if backend.is_array(y_true) else np.asarray(y_true)
        if get_array_module(y) is not xp:
            y = backend.to_device(backend.to_numpy(y), xp)
        if p.ndim == 0:
            raise ValueError(f"y_pred must have a batch axis, got shape {tuple(p.shape)}")
        if p.ndim == 1:
            p = p.reshape(-1, 1)
        shape = tuple(p.shape)
        if tuple(y.shape) == shape[:-1] and shape[-1] == 1:
            y = y.reshape(shape)
        elif tuple(y.shape) == shape[:-1]:
            y = self._one_hot(y, shape[-1], xp)
        elif tuple(y.shape) != shape:
            raise ValueError(
                f"y_true must have the shape of y_pred {shape} (or be class ids of shape {shape[:-1]}), "
                f"got {tuple(y.shape)}"
            )
        w = None
        if sample_weight is not None:
            w = sample_weight
            if not backend.is_array(w):
                w = np.asarray(w, dtype=np.float64)
            if get_array_module(w) is not xp:
                w = backend.to_device(backend.to_numpy(w), xp)
            if w.ndim == 0 or w.ndim >= len(shape) or tuple(w.shape) != shape[: w.ndim]:
                raise ValueError(
                    f"sample_weight must weigh the samples (or steps) of y_pred {shape}, with a shape among "
                    f"{[shape[:k] for k in range(1, len(shape))]}, got {tuple(w.shape)}"
                )
            w = xp.broadcast_to(w.reshape(tuple(w.shape) + (1,) * (len(shape) - w.ndim)), shape)
            w = w.reshape(-1).astype(np.float64)
        self.scores.append(p.reshape(-1).astype(np.float64))  # copies: the caller may reuse its arrays
        self.labels.append((y >= 0.5).reshape(-1))
        self.weights.append(w)

    @staticmethod
    def _one_hot(ids: Any, n: int, xp: Any) -> Any:
        if get_array_module(ids) is np and ids.size:
            if ids.dtype.kind not in "iub" and not np.array_equal(ids, np.round(ids)):
                raise ValueError("y_true must hold integer class ids, got non-integer values")
            if ids.min() < 0 or ids.max() >= n:
                raise ValueError(
                    f"y_true class ids must be in [0, {n}), got values in [{ids.min()}, {ids.max()}]"
                )
        return xp.arange(n) == ids.astype(np.int64)[..., None]

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        if not self.scores:
            return None
        xp = get_array_module(self.scores[0])
        scores = np.asarray(backend.to_numpy(xp.concatenate(self.scores)))
        labels = np.asarray(backend.to_numpy(xp.concatenate(self.labels)))
        weights = None
        if any(w is not None for w in self.weights):
            pairs = zip(self.scores, self.weights, strict=True)
            parts = [xp.ones(len(s)) if w is None else w for s, w in pairs]
            weights = np.asarray(backend.to_numpy(xp.concatenate(parts)))
        return scores, labels, weights

    def merge(self, states: list[Any]) -> AUC:
        out = copy.copy(self)
        out.reset()
        for st in states:
            if st is not None:
                out.scores.append(st[0])
                out.labels.append(st[1])
                out.weights.append(st[2])
        return out

    def result(self) -> float:
        st = self.state()
        if st is None:
            return float("nan")
        scores, labels, weights = st
        if np.isnan(scores).any():
            raise ValueError(f"{self.name}: y_pred holds NaN scores, which have no rank")
        tps, fps = _binary_thresholds(scores, labels, weights)
        if not len(tps):  # every weight 0
            return float("nan")
        if self.curve == "ROC":
            if tps[-1] <= 0 or fps[-1] <= 0:
                return float("nan")
            tpr, fpr = np.r_[0.0, tps] / tps[-1], np.r_[0.0, fps] / fps[-1]
            return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)
        ps = tps + fps
        precision = np.divide(tps, ps, out=np.zeros_like(tps), where=ps != 0)
        recall = tps / tps[-1] if tps[-1] > 0 else np.ones_like(tps)
        return float(max(0.0, np.sum(np.diff(np.r_[0.0, recall]) * precision)))

    def __repr__(self) -> str:
        return f"AUC(curve={self.curve!r})"


# -- regression ------------------------------------------------------------------------------------


def _regression_pair(y_pred: Any, y_true: Any) -> tuple[Any, Any]:
    """Return both as float64 arrays of shape ``(N, D)`` on their device.

    Raises:
        ValueError: when the shapes do not hold the same values per sample.
    """
    xp = get_array_module(y_pred, y_true)
    p = xp.asarray(y_pred, dtype=np.float64)
    t = xp.asarray(y_true, dtype=np.float64)
    if p.ndim == 0 or t.ndim == 0 or len(p) != len(t) or p.size != t.size:
        raise ValueError(
            f"y_true must have the shape of y_pred {p.shape} (or differ only by a trailing axis "
            f"of 1), got {t.shape}"
        )
    p = p.reshape(len(p), -1)
    return p, t.reshape(p.shape)


def _weighted_rows(values: Any, sample_weight: Any) -> tuple[Any, Any]:
    """``values`` as rows of the weighted leading axes, and the weights as a float64 column: weights
    ``(N,)`` of the samples, or ``(N, T)`` of a sequence output's steps (its mask).

    Raises:
        ValueError: for weights that do not weigh the leading axes of the values.
    """
    w = sample_weight if backend.is_array(sample_weight) else np.asarray(sample_weight, dtype=np.float64)
    if w.size == 0 or w.ndim == 0 or w.shape[0] != values.shape[0] or values.size % w.size:
        raise ValueError(
            f"sample_weight must weigh the leading axes of y_pred ({values.shape[0]} samples), got shape "
            f"{tuple(w.shape)}"
        )
    return values.reshape(w.size, -1), w.reshape(-1, 1).astype(np.float64)


class _ErrorSum(Metric):
    """Base of metrics that average a function of ``y_pred − y_true`` over all values."""

    greater_is_better = False

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0

    def _error(self, diff: np.ndarray) -> np.ndarray:
        """Elementwise error of ``diff = y_pred − y_true`` (may overwrite ``diff``)."""
        raise NotImplementedError

    def update(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> None:
        p, t = _regression_pair(y_pred, y_true)
        diff = p - t  # a new array: p may be the caller's y_pred
        err = self._error(diff)
        if sample_weight is None:
            self.total = self.total + err.sum()  # stays on the device
            self.count += diff.size
            return
        rows, wf = _weighted_rows(err, sample_weight)
        self.total = self.total + (rows * wf).sum()
        self.count = self.count + wf.sum() * rows.shape[1]

    def result(self) -> float:
        count = float(backend.to_numpy(self.count))
        return float(backend.to_numpy(self.total)) / count if count else 0.0

    def state(self) -> tuple[float, float]:
        count = backend.to_numpy(self.count) if backend.is_array(self.count) else self.count
        return float(backend.to_numpy(self.total)), float(count)

    def merge(self, states: list[Any]) -> _ErrorSum:
        out = copy.copy(self)
        total = states[0][0]
        for st in states[1:]:
            total = total + st[0]  # in rank order
        out.total, out.count = total, sum(st[1] for st in states)
        return out


class MeanAbsoluteError(_ErrorSum):
    """Mean absolute error ``Σ|ŷ − y| / (N·D)`` over all N samples and D outputs.

    Equals scikit-learn's ``mean_absolute_error`` (uniform average over outputs). 0.0 before any
    sample.
    """

    name = "mae"

    def _error(self, diff: np.ndarray) -> np.ndarray:
        return get_array_module(diff).abs(diff, out=diff)


class MeanSquaredError(_ErrorSum):
    """Mean squared error ``Σ(ŷ − y)² / (N·D)`` over all N samples and D outputs.

    Equals scikit-learn's ``mean_squared_error`` (uniform average over outputs). 0.0 before any
    sample.
    """

    name = "mse"

    def _error(self, diff: np.ndarray) -> np.ndarray:
        return get_array_module(diff).square(diff, out=diff)


class RootMeanSquaredError(MeanSquaredError):
    """Root mean squared error ``sqrt(MSE)``, the square root of :class:`MeanSquaredError`.

    For one output this is scikit-learn's ``root_mean_squared_error``; for several outputs it is the
    root of the MSE over all values (as Keras ``RootMeanSquaredError``), whereas scikit-learn
    averages the per-output roots.
    """

    name = "rmse"

    def result(self) -> float:
        return math.sqrt(super().result())


class R2Score(Metric):
    """Coefficient of determination R², as scikit-learn's ``r2_score`` (``"uniform_average"``).

    Per output j: ``R²_j = 1 − Σ(y − ŷ)² / Σ(y − ȳ)²`` with ȳ the mean of y_true over all samples;
    the result is the mean of the ``R²_j``. As scikit-learn (``force_finite=True``), an output whose
    centred sum of squares Σ(y − ȳ)² is exactly 0 scores 1.0 when predicted exactly and 0.0 otherwise. A
    y_true constant only up to the rounding of its mean (0.1 three times: ȳ is not 0.1 in binary) leaves
    that sum tiny but not 0, and the score far below 0 (−1.7e27 for an error of 1e-3), as scikit-learn's;
    streamed in batches the sum may come out 0 or another tiny value. Fewer than two samples give NaN.

    Streaming: per output, the residual sum of squares, and the count, mean and centred sum of
    squares of y_true merged batch by batch (Chan et al.'s parallel variance update, stable in
    float64). With sample weights (or a sequence output's mask) every sum is weighted, as scikit-learn's
    ``sample_weight``: ``ȳ = Σw·y / Σw``, ``R² = 1 − Σw(y − ŷ)² / Σw(y − ȳ)²``, the count a sum of weights.
    """

    name = "r2"
    greater_is_better = True

    def reset(self) -> None:
        self.count: Any = 0
        self.rows = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None
        self.ss_res: np.ndarray | None = None

    def update(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> None:
        if y_pred.ndim >= 3:  # a sequence: every step a sample, R² per feature over the (valid) steps
            y_pred, y_true, sample_weight = _steps_as_samples(y_pred, y_true, sample_weight)
        p, t = _regression_pair(y_pred, y_true)
        n_b = len(t)
        if n_b == 0:
            return
        if sample_weight is None:
            count_b: Any = n_b
            mean_b = t.mean(axis=0)
            m2_b = ((t - mean_b) ** 2).sum(axis=0)
            ss_res_b = ((t - p) ** 2).sum(axis=0)
        else:  # weights of the samples (N,) or of a sequence's steps (N, T), spread over each item's values
            rows, wf = _weighted_rows(t, sample_weight)
            xp = get_array_module(t)
            w = xp.broadcast_to(wf, rows.shape).reshape(t.shape)
            count_b = w.sum(axis=0)
            safe = xp.where(count_b > 0, count_b, 1.0)
            mean_b = (w * t).sum(axis=0) / safe
            m2_b = (w * (t - mean_b) ** 2).sum(axis=0)
            ss_res_b = (w * (t - p) ** 2).sum(axis=0)
        if self.mean is not None and mean_b.shape != self.mean.shape:
            raise ValueError(
                f"y_pred must have {self.mean.shape[0]} outputs like the earlier batches, "
                f"got {mean_b.shape[0]}"
            )
        self._add(count_b, mean_b, m2_b, ss_res_b, n_b)

    def _add(self, n_b: Any, mean_b: Any, m2_b: Any, ss_res_b: Any, rows: int) -> None:
        """Merge a part's count (or sum of weights), mean, centred sum of squares and residual sum (Chan et
        al.), and its number of samples."""
        self.rows += rows
        if self.mean is None:
            self.count, self.mean, self.m2, self.ss_res = n_b, mean_b, m2_b, ss_res_b
            return
        n = self.count + n_b
        if isinstance(n, (int, float)):
            share, both = n_b / n, self.count * n_b / n
        else:  # sums of weights per output: an output without weight so far takes the part's values
            xp = get_array_module(n)
            safe = xp.where(n > 0, n, 1.0)
            share, both = n_b / safe, self.count * n_b / safe
        delta = mean_b - self.mean
        self.m2 = self.m2 + m2_b + delta * delta * both
        self.mean = self.mean + delta * share
        self.ss_res = self.ss_res + ss_res_b
        self.count = n

    def state(self) -> tuple[Any, ...] | None:
        if self.mean is None:
            return None
        count = self.count
        if not isinstance(count, int):
            count = np.asarray(backend.to_numpy(count), np.float64)
        return (
            count,
            *(np.asarray(backend.to_numpy(a), dtype=np.float64) for a in (self.mean, self.m2, self.ss_res)),
            self.rows,
        )

    def merge(self, states: list[Any]) -> R2Score:
        out = copy.copy(self)
        out.reset()
        for st in states:
            if st is not None:
                out._add(*st)
        return out

    def result(self) -> float:
        if self.rows < 2:
            return float("nan")
        ss_tot, ss_res = backend.to_numpy(self.m2), backend.to_numpy(self.ss_res)
        safe = np.where(ss_tot != 0, ss_tot, 1.0)
        scores = np.where(ss_tot != 0, 1.0 - ss_res / safe, np.where(ss_res == 0, 1.0, 0.0))
        return float(scores.mean())


# -- plain functions -------------------------------------------------------------------------------
def _whole(metric: Any) -> Any:
    """``metric`` reading whole arrays, as the functions do (:func:`_classification_pair`'s ``strict``)."""
    metric._strict = True
    return metric


def accuracy(y_pred: Any, y_true: Any) -> float:
    """Accuracy over whole arrays (see :class:`Accuracy`).

    Args:
        y_pred: outputs ``(N, C)`` (probabilities or scores), or ``(N, 1)`` / ``(N,)`` for a single sigmoid
            output (class 1 when ≥ 0.5).
        y_true: one-hot / probability rows ``(N, C)`` or class ids ``(N,)``; 0/1 labels for a single output.

    Returns:
        The fraction of correctly classified samples (0.0 for no sample).

    Raises:
        ValueError: for targets of another number of samples or shape, or class ids out of range.
    """
    return _whole(Accuracy())(y_pred, y_true)


def top_k_accuracy(y_pred: Any, y_true: Any, k: int = 5) -> float:
    """Top-k accuracy over whole arrays (see :class:`TopKAccuracy`).

    Args:
        y_pred: outputs ``(N, C)`` (probabilities or scores), or ``(N, 1)`` / ``(N,)`` for a single sigmoid
            output (class 1 when ≥ 0.5).
        y_true: one-hot / probability rows ``(N, C)`` or class ids ``(N,)``; 0/1 labels for a single output.
        k: number of top scores to look at, a positive integer.

    Returns:
        The fraction of samples whose true class is among the ``k`` highest scores (ties count as hits).

    Raises:
        ValueError: when ``k`` is not a positive integer, or for targets as :func:`accuracy` rejects them.
    """
    return _whole(TopKAccuracy(k))(y_pred, y_true)


def precision(y_pred: Any, y_true: Any, average: str = "auto") -> float:
    """Precision over whole arrays: of class 1 for two classes, macro-averaged over more (see
    :class:`Precision`).

    Args:
        y_pred: outputs ``(N, C)`` (probabilities or scores), or ``(N, 1)`` / ``(N,)`` for a single sigmoid
            output (class 1 when ≥ 0.5); integer ``(N,)`` are predicted class ids.
        y_true: one-hot / probability rows ``(N, C)`` or class ids ``(N,)``; 0/1 labels for a single output.
        average: ``"auto"`` (``"binary"`` for two classes, else ``"macro"``), ``"binary"`` or ``"macro"``.

    Returns:
        ``TP / (TP + FP)`` of class 1 (binary), or its mean over the classes present in ``y_true`` or the
        predictions (macro).

    Raises:
        ValueError: for targets of another number of samples or shape, or class ids out of range.
    """
    return _whole(Precision(average))(y_pred, y_true)


def recall(y_pred: Any, y_true: Any, average: str = "auto") -> float:
    """Recall over whole arrays: of class 1 for two classes, macro-averaged over more (see
    :class:`Recall`).

    Args:
        y_pred: outputs ``(N, C)`` (probabilities or scores), or ``(N, 1)`` / ``(N,)`` for a single sigmoid
            output (class 1 when ≥ 0.5); integer ``(N,)`` are predicted class ids.
        y_true: one-hot / probability rows ``(N, C)`` or class ids ``(N,)``; 0/1 labels for a single output.
        average: ``"auto"`` (``"binary"`` for two classes, else ``"macro"``), ``"binary"`` or ``"macro"``.

    Returns:
        ``TP / (TP + FN)`` of class 1 (binary), or its mean over the classes present in ``y_true`` or the
        predictions (macro).

    Raises:
        ValueError: for targets of another number of samples or shape, or class ids out of range.
    """
    return _whole(Recall(average))(y_pred, y_true)


def f1_score(y_true: Any, y_pred: Any, average: str = "auto") -> float:
    """F1 over whole arrays: of class 1 for two classes, macro-averaged over more (see
    :class:`F1Score`).

    Argument order ``(y_true, y_pred)``, as scikit-learn's.

    Args:
        y_true: one-hot / probability rows ``(N, C)`` or class ids ``(N,)``; 0/1 labels for a single output.
        y_pred: outputs ``(N, C)`` (probabilities or scores), or ``(N, 1)`` / ``(N,)`` for a single sigmoid
            output (class 1 when ≥ 0.5); integer ``(N,)`` are predicted class ids.
        average: ``"auto"`` (``"binary"`` for two classes, else ``"macro"``), ``"binary"`` or ``"macro"``.

    Returns:
        ``2·TP / (2·TP + FP + FN)`` of class 1 (binary), or its mean over the classes present (macro).

    Raises:
        ValueError: for targets of another number of samples or shape, or class ids out of range.
    """
    return _whole(F1Score(average))(y_pred, y_true)


def confusion_matrix(y_true: Any, y_pred: Any) -> np.ndarray:
    """Confusion matrix of whole arrays, in scikit-learn's argument order ``(y_true, y_pred)``.

    Args:
        y_true: one-hot rows ``(N, C)`` or class ids ``(N,)``.
        y_pred: outputs ``(N, C)``, or ``(N, 1)`` / ``(N,)`` for a single sigmoid output (C = 2).

    Returns:
        ``(C, C)`` int64 counts; entry ``[i, j]`` is the number of samples of true class ``i``
        predicted as class ``j`` (as ``sklearn.metrics.confusion_matrix(y_true, y_pred,
        labels=range(C))``).
    """
    m = _whole(_ConfusionMetric())
    m.update(y_pred, y_true)
    assert m.matrix is not None
    return backend.to_numpy(m.matrix)


def mean_absolute_error(y_true: Any, y_pred: Any) -> float:
    """MAE over whole arrays (see :class:`MeanAbsoluteError`).

    Argument order ``(y_true, y_pred)``, as scikit-learn's.

    Args:
        y_true: targets with the same values per sample (``(N,)`` and ``(N, 1)`` are interchangeable).
        y_pred: predictions ``(N,)`` or ``(N, D)``.

    Returns:
        ``Σ|ŷ − y| / (N·D)``.

    Raises:
        ValueError: when the shapes do not hold the same number of values per sample.
    """
    return MeanAbsoluteError()(y_pred, y_true)


def mean_squared_error(y_true: Any, y_pred: Any) -> float:
    """MSE over whole arrays (see :class:`MeanSquaredError`).

    Argument order ``(y_true, y_pred)``, as scikit-learn's.

    Args:
        y_true: targets with the same values per sample (``(N,)`` and ``(N, 1)`` are interchangeable).
        y_pred: predictions ``(N,)`` or ``(N, D)``.

    Returns:
        ``Σ(ŷ − y)² / (N·D)``.

    Raises:
        ValueError: when the shapes do not hold the same number of values per sample.
    """
    return MeanSquaredError()(y_pred, y_true)


def root_mean_squared_error(y_true: Any, y_pred: Any) -> float:
    """RMSE over whole arrays (see :class:`RootMeanSquaredError`).

    Argument order ``(y_true, y_pred)``, as scikit-learn's.

    Args:
        y_true: targets with the same values per sample (``(N,)`` and ``(N, 1)`` are interchangeable).
        y_pred: predictions ``(N,)`` or ``(N, D)``.

    Returns:
        ``sqrt(MSE)`` over all values.

    Raises:
        ValueError: when the shapes do not hold the same number of values per sample.
    """
    return RootMeanSquaredError()(y_pred, y_true)


def r2_score(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
    """R² over whole arrays (see :class:`R2Score`).

    Argument order ``(y_true, y_pred)``, as scikit-learn's.

    Args:
        y_true: targets with the same values per sample (``(N,)`` and ``(N, 1)`` are interchangeable).
        y_pred: predictions ``(N,)`` or ``(N, D)``.
        sample_weight: optional weights ``(N,)``, as scikit-learn's.

    Returns:
        The mean over outputs of ``R²_j = 1 − Σ(y − ŷ)² / Σ(y − ȳ)²`` (NaN for fewer than two
        samples).

    Raises:
        ValueError: when the shapes do not hold the same number of values per sample.
    """
    metric = R2Score()
    metric.update(y_pred, y_true, sample_weight=_checked_weights(sample_weight))
    return metric.result()


def roc_auc_score(y_true: Any, y_score: Any, sample_weight: Any = None) -> float:
    """ROC AUC over whole arrays (see :class:`AUC`), in scikit-learn's argument order ``(y_true, y_score)``.

    Args:
        y_true: labels (positive when ≥ 0.5) of the shape of ``y_score``, or class ids ``(N,)`` for
            ``(N, C)`` scores.
        y_score: scores ``(N,)``, ``(N, 1)`` or ``(N, C)`` (several outputs pooled).
        sample_weight: optional weight of each sample.

    Returns:
        The area under the ROC curve (NaN when only one class is present).

    Raises:
        ValueError: for targets of another shape, NaN scores, or weights that are negative or not finite.
    """
    m = AUC("ROC")
    m.update(y_score, y_true, _checked_weights(sample_weight))
    return m.result()


def average_precision_score(y_true: Any, y_score: Any, sample_weight: Any = None) -> float:
    """Average precision over whole arrays (see :class:`AUC` with ``curve="PR"``), in scikit-learn's
    argument order ``(y_true, y_score)``.

    Args:
        y_true: labels (positive when ≥ 0.5) of the shape of ``y_score``, or class ids ``(N,)`` for
            ``(N, C)`` scores.
        y_score: scores ``(N,)``, ``(N, 1)`` or ``(N, C)`` (several outputs pooled).
        sample_weight: optional weight of each sample.

    Returns:
        ``Σ_k (R_k − R_{k−1})·P_k`` over the distinct scores (0.0 without a positive label).

    Raises:
        ValueError: for targets of another shape, NaN scores, or weights that are negative or not finite.
    """
    m = AUC("PR")
    m.update(y_score, y_true, _checked_weights(sample_weight))
    return m.result()


def _checked_weights(sample_weight: Any) -> Any:
    """The sample weights of a function over whole arrays: finite and ``>= 0`` (a negative weight made the
    area NaN, silently), or ``None``."""
    if sample_weight is None:
        return None
    w = np.asarray(backend.to_numpy(sample_weight), dtype=np.float64)
    if not (np.isfinite(w).all() and (w >= 0).all()):
        raise ValueError("sample_weight must hold finite weights >= 0")
    return sample_weight


# -- lookup ----------------------------------------------------------------------------------------

registry.set_base("metric", Metric)
registry.register(Accuracy, aliases=("acc",))
registry.register(BinaryAccuracy)
registry.register(CategoricalAccuracy)
registry.register(SparseCategoricalAccuracy)
registry.register(AUC)
registry.register(TopKAccuracy, aliases=("top_k",))
registry.register(Precision)
registry.register(Recall)
registry.register(F1Score, aliases=("f1",))
registry.register(MeanAbsoluteError, aliases=("mae",))
registry.register(MeanSquaredError, aliases=("mse",))
registry.register(RootMeanSquaredError, aliases=("rmse",))
registry.register(R2Score, aliases=("r2",))

_TOP_K = re.compile(r"top(\d+)(?:accuracy)?")


class FunctionMetric(Metric):
    """A plain function ``fn(y_true, y_pred)`` as a streaming metric (Keras's way of writing one).

    The function gets each batch as NumPy arrays (targets first, as Keras passes them) and returns either one
    number for the batch (taken as the mean over its samples) or one value per sample ``(N,)``. The result is
    the mean over every sample seen (each sample counted by its weight when ``fit`` or ``evaluate`` gets
    sample weights). For a masked sequence output the function sees every step, padding included, and each
    sample counts by the share of its steps that are valid. On a GPU each batch is read back to the host for
    the function.

    Args:
        fn: the function.
        name: the key in logs and the History (default: the function's ``__name__``).

    Raises:
        TypeError: (when updated) a function that raises (the message names the metric and wraps the
            error), or returns something that is not numbers.
        ValueError: (when updated) a function that returns neither one number nor one value per sample.
    """

    def __init__(self, fn: Any, name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be a function fn(y_true, y_pred), got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        super().__init__()

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def update(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> None:
        pred = np.asarray(backend.to_numpy(y_pred))
        true = np.asarray(backend.to_numpy(y_true))
        try:
            value = self.fn(true, pred)
        except Exception as exc:
            raise TypeError(f"metric function {self.name!r} raised {type(exc).__name__}: {exc}") from exc
        try:
            v = np.asarray(backend.to_numpy(value) if backend.is_array(value) else value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"metric function {self.name!r} must return numbers, got {type(value).__name__}"
            ) from None
        n = len(pred)
        w = None if sample_weight is None else np.asarray(backend.to_numpy(sample_weight), dtype=np.float64)
        if w is not None and w.ndim > 1:  # a mask of steps: a sample weighs its valid steps' share
            w = w.reshape(n, -1).mean(axis=1)
        if v.ndim == 0:
            weight = float(n if w is None else w.sum())
            self.total += float(v) * weight
            self.count += weight
        elif v.shape == (n,):
            self.total += float((v if w is None else v * w).sum())
            self.count += float(n if w is None else w.sum())
        else:
            raise ValueError(
                f"metric function {self.name!r} must return one number or one value per sample ({n},), got "
                f"shape {v.shape}"
            )

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def state(self) -> tuple[float, float]:
        return self.total, self.count

    def merge(self, states: list[Any]) -> FunctionMetric:
        out = copy.copy(self)
        out.total = sum(st[0] for st in states)
        out.count = sum(st[1] for st in states)
        return out

    def __repr__(self) -> str:
        return f"FunctionMetric({self.name!r})"


def _own_functions() -> list[tuple[Any, Any]]:
    """This module's functions over whole arrays, each with the streaming metric that computes it (matched
    by identity: a user's callable need not be hashable)."""
    return [
        (accuracy, Accuracy), (top_k_accuracy, TopKAccuracy), (precision, Precision), (recall, Recall),
        (f1_score, F1Score), (mean_absolute_error, MeanAbsoluteError), (mean_squared_error, MeanSquaredError),
        (root_mean_squared_error, RootMeanSquaredError), (r2_score, R2Score), (roc_auc_score, AUC),
        (average_precision_score, lambda: AUC("PR")),
    ]


def get(metric: str | Metric) -> Metric:
    """Return a fresh metric object from a name, or the given instance (a function becomes a
    :class:`FunctionMetric`).

    Args:
        metric: a name listed in the module docstring (normalised as every neuro name: case, ``_`` and
            ``-`` do not matter), a :class:`Metric`, or a function ``fn(y_true, y_pred)``. This module's
            own functions (``accuracy``, ``precision``, ``f1_score``, ``r2_score``, …) become their
            streaming metric (``Accuracy()``, ``Precision()``, …, logged under the function's name): as
            functions of a batch they would be averaged over batches, and some take ``(y_pred, y_true)``.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else.
    """
    if isinstance(metric, Metric):
        return metric
    own = next((m for f, m in _own_functions() if f is metric), None)
    if own is not None:  # neuro's own function: its streaming metric (its argument order, exact over batches)
        obj = own()
        obj.name = metric.__name__  # logged under the function's name, as any function
        return obj
    if callable(metric) and not isinstance(metric, type):  # a plain function fn(y_true, y_pred)
        return FunctionMetric(metric)
    if isinstance(metric, str):
        top_k = _TOP_K.fullmatch(registry.normalize(metric))
        if top_k and int(top_k.group(1)) > 0:
            return TopKAccuracy(int(top_k.group(1)))
        try:
            return registry.get_class("metric", metric)()
        except ValueError:
            names = registry.names("metric") + ["top<k>", "top<k>_accuracy"]
            raise ValueError(f"metric must be one of {names}, got {metric!r}") from None
    raise TypeError(f"metric must be a name or a Metric, got {type(metric).__name__}")
