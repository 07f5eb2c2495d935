"""Metrics and loss figures: the metric slots of a fit or an evaluation, the loss sums kept on the device,
the log dict read from them, and one pass over a source in inference mode.

This module owns the *figures* of training and evaluation (what is summed, how it is read, under which
key it is logged); the loops that drive it are :mod:`neuro.training.loop` (one process) and
:mod:`neuro.distributed` (the ranks' parts, reduced).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from neuro import backend
from neuro import metrics as metrics_mod
from neuro.training import adapters
from neuro.training.step import Terms, device_weights, penalty, sample_weights


def update_metric(metric: Any, pred: Any, y: Any, weights: Any) -> None:
    """Update a metric with a batch, with the output's mask (or sample weights) when there is one.

    Args:
        metric: the metric.
        pred: the predictions.
        y: the targets.
        weights: the items' weights, or ``None``.
    """
    if weights is None:
        metric.update(pred, y)
        return
    if pred.ndim >= 3 and weights.ndim == 1:  # a sequence output's sample weights weigh each of its steps
        xp = backend.get_array_module(weights)
        weights = xp.broadcast_to(weights.reshape(-1, *([1] * (pred.ndim - 2))), pred.shape[:-1])
    metric.update(pred, y, sample_weight=weights)


class MetricSlot:
    """One metric of one output, and the key it is logged under.

    Args:
        output: the index of the output.
        metric: the metric object.
        key: the log key (``"accuracy"``, or ``"<output>_accuracy"`` for a model with several outputs).
    """

    __slots__ = ("key", "metric", "output")

    def __init__(self, output: int, metric: Any, key: str) -> None:
        self.output, self.metric, self.key = output, metric, key


def metric_slots(model: Any, metrics: Any) -> list[MetricSlot]:
    """The metrics of a ``fit`` or ``evaluate``, one slot per (output, metric).

    Args:
        model: the model.
        metrics: ``None`` (the defaults of each output's loss: accuracy for the classification losses), a
            name, a metric, a list (for every output), a list of lists (one per output) or a dict keyed by
            output name.

    Returns:
        The slots.

    Raises:
        ValueError: for a dict key that is no output name, or a list of lists of the wrong length.
    """
    names = model.output_names
    n = len(names)
    if metrics is None:
        per = [model.default_metrics(k) for k in range(n)]
    elif isinstance(metrics, dict):
        unknown = sorted(set(metrics) - set(names))
        if unknown:
            raise ValueError(f"metrics has keys {unknown} that are no output name; the outputs are {names}")
        per = [_as_list(metrics.get(name, ())) for name in names]
    elif (
        isinstance(metrics, (str, metrics_mod.Metric)) or callable(metrics) and not isinstance(metrics, type)
    ):
        per = [[metrics] for _ in range(n)]
    else:
        if not isinstance(metrics, (list, tuple)):
            raise TypeError(
                "metrics must be a name, a metric, a function, or a list or dict of them, got "
                f"{type(metrics).__name__} {metrics!r}"
            )
        items = list(metrics)
        if items and all(isinstance(m, (list, tuple)) for m in items):
            if len(items) != n:
                raise ValueError(f"metrics must hold one list per output ({n}), got {len(items)}")
            per = [list(m) for m in items]
        else:
            per = [items for _ in range(n)]
    slots: list[MetricSlot] = []
    for k, ms in enumerate(per):
        for m in ms:
            if n > 1 and isinstance(m, metrics_mod.Metric):  # each output its own copy, settings kept
                obj = _copy(m)
            else:
                obj = metrics_mod.get(m)
            obj = _for_output(model, k, obj)
            key = obj.name if n == 1 else f"{names[k]}_{obj.name}"
            if any(s.key == key for s in slots):
                raise ValueError(
                    f"metrics log two values under the name {key!r} (the same metric given twice, or two "
                    "named alike); give one of them another name"
                )
            slots.append(MetricSlot(k, obj, key))
    return slots


def _copy(metric: Any) -> Any:
    """An output's own copy of a metric object, its state made anew: a deep copy, or where one cannot be
    made (a lock, a module), a shallow one whose ``reset()`` must then make every state attribute anew."""
    try:
        out = copy.deepcopy(metric)
    except (TypeError, copy.Error):
        out = copy.copy(metric)
    out.reset()
    return out


def _for_output(model: Any, k: int, metric: Any) -> Any:
    """A metric read as Keras reads it for an output trained with binary cross-entropy: every value a
    probability of its own (several sigmoid outputs, or one per step), so ``accuracy`` is binary accuracy and
    precision, recall and F1 threshold every value (an argmax of multi-hot rows would mean nothing; for one
    sigmoid output both readings are the same, and the metric is left alone). The metric object itself is
    updated, as in Keras, and left as it was given (see :class:`_EveryValue`)."""
    from neuro import losses as losses_mod

    losses = getattr(model, "losses", None)
    if not losses or not isinstance(losses[k], losses_mod.BinaryCrossEntropy):
        return metric
    if tuple(model.output_shapes[k]) == (1,):
        return metric
    reads_rows = isinstance(metric, metrics_mod._ConfusionMetric) and not metric.multi_label
    if reads_rows or type(metric) is metrics_mod.Accuracy:
        return _EveryValue(metric)
    return metric


class _EveryValue:
    """A metric fed every value of an output as a sample of its own (a probability against its 0/1 label),
    its settings untouched: a caller's ``Precision()`` used on a multi-label output and then on a softmax
    one reads each as it should. Everything but :meth:`update` is the metric's own.

    Args:
        metric: the metric.
    """

    def __init__(self, metric: Any) -> None:
        self.metric = metric

    def __getattr__(self, name: str) -> Any:
        if name == "metric":  # not set yet (a copy being made)
            raise AttributeError(name)
        return getattr(self.metric, name)

    def update(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> None:
        self.metric.update(*metrics_mod._every_value(y_pred, y_true, sample_weight))


def _as_list(v: Any) -> list[Any]:
    if isinstance(v, (str, metrics_mod.Metric)) or callable(v):
        return [v]
    return list(v)


# -- logs ---------------------------------------------------------------------------------------------------
class LossSums:
    """The loss sums of an epoch (or an evaluation) on the device: per output S_k and D_k, the penalty
    weighted by batch size, and the number of samples.

    Args:
        n_outputs: the model's number of outputs.
    """

    def __init__(self, n_outputs: int) -> None:
        self.sums: list[Any] = [0.0] * n_outputs
        self.denoms: list[Any] = [0.0] * n_outputs
        self.penalty: Any = 0.0
        self.count = 0

    def add(self, terms: Terms, penalty_value: Any = 0.0) -> None:
        """Add one batch's terms (and its penalty, weighted by its size).

        Args:
            terms: the batch's terms.
            penalty_value: the penalty of the step.
        """
        for k, (s, d) in enumerate(zip(terms.sums, terms.denoms, strict=True)):
            self.sums[k] = self.sums[k] + s
            self.denoms[k] = self.denoms[k] + d
        if backend.is_array(penalty_value) or penalty_value:
            self.penalty = self.penalty + penalty_value * terms.count
        self.count += terms.count

    def values(self) -> np.ndarray:
        """Every sum read from the device at once: ``[S_0, D_0, S_1, D_1, …, penalty, count]`` as float64."""
        items = [v for pair in zip(self.sums, self.denoms, strict=True) for v in pair] + [self.penalty]
        arrays = [v for v in items if backend.is_array(v)]
        if arrays:
            xp = backend.get_array_module(*arrays)
            stacked = xp.stack([xp.asarray(v, dtype=np.float64) for v in items])
            out = np.asarray(backend.to_numpy(stacked), dtype=np.float64)
        else:
            out = np.array([float(v) for v in items], dtype=np.float64)
        return np.append(out, float(self.count))


def logs_from(
    model: Any, values: np.ndarray, slots: Sequence[MetricSlot], penalty_now: float | None = None
) -> dict[str, float]:
    """The log dict from the values of :meth:`LossSums.values` and the metric slots.

    Args:
        model: the model (its loss weights and output names).
        values: ``[S_0, D_0, …, penalty sum, count]``.
        slots: the metrics.
        penalty_now: the penalty to add (evaluation: the current one); ``None`` uses the epoch's average.

    Returns:
        ``{"loss": …, "<output>_loss": … (several outputs), metric keys: …}``.
    """
    n = len(model.output_names)
    per = []
    for k in range(n):
        s, d = values[2 * k], values[2 * k + 1]
        per.append(s / d if d else float("nan"))
    pen, count = values[2 * n], values[2 * n + 1]
    extra = (pen / count if count else 0.0) if penalty_now is None else penalty_now
    # an output nothing of which weighed adds nothing (its own loss stays NaN); in an evaluation of which
    # nothing weighed at all the loss is NaN (nothing was measured), in a fit 0 as its batches' (Keras's)
    weighed = [values[2 * k + 1] != 0 for k in range(n)]
    counted = weighed if any(weighed) or penalty_now is None else [True] * n
    loss = sum(w * v for w, v, on in zip(model.loss_weights_list, per, counted, strict=True) if on) + extra
    logs = {"loss": float(loss)}
    if n > 1:
        for name, v in zip(model.output_names, per, strict=True):
            logs[f"{name}_loss"] = float(v)
    for slot in slots:
        logs[slot.key] = float(slot.metric.result())
    return logs


def format_logs(logs: dict[str, float]) -> str:
    """``"loss: 0.1234 - accuracy: 0.9876"``.

    Args:
        logs: the figures by name.

    Returns:
        One line.
    """
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


# -- evaluation -------------------------------------------------------------------------------------------
def source_batches(source: Any, batch_size: int) -> Any:
    """One pass over a source in its order: ``(xs, ys, ws)`` host batches.

    Args:
        source: a sample source (read in batches of ``batch_size``) or a batch source (its batches, or its
            ``steps`` of them).
        batch_size: samples per batch of a sample source.

    Yields:
        ``(xs, ys, ws)``.
    """
    if getattr(source, "yields_batches", False):
        yield from source.epoch()
        return
    for batch in source.batches(np.arange(len(source)), batch_size):
        yield adapters.unpack(batch)


def evaluation_sums(model: Any, source: Any, batch_size: int, slots: Sequence[MetricSlot]) -> LossSums:
    """Run ``source`` in inference mode: reset and update the metrics, and sum the loss terms on the device
    (regularization not included). Sample weights weigh the loss and the metrics.

    Args:
        model: the model.
        source: a source of host batches.
        batch_size: samples per forward pass.
        slots: the metrics to update.

    Returns:
        The sums.

    Raises:
        ValueError: for data that yields batches and yielded none.
    """
    for slot in slots:
        slot.metric.reset()
    heads = model.heads
    modes = model.head_modes(heads)
    sums = LossSums(len(heads))
    seen = 0
    for xs, ys, ws in source_batches(source, batch_size):
        seen += 1
        xs, ys = model.to_device(xs), model.to_device(ys, "y")
        user = device_weights(model, ws)
        masks: list[Any] = []
        with model._lock:
            outs, _ = model.graph.forward(xs, False, None, modes, model.dtype, out_masks=masks)
        preds, total, denom, weights = [], [], [], []
        for k, (head, out, y, m) in enumerate(zip(heads, outs, ys, masks, strict=True)):
            sw = None if user is None or user[k] is None else user[k].array
            w = sample_weights(m, out, sw, head.loss.categorical)
            t, d = head.terms(out, y, w)
            total.append(t)
            denom.append(d)
            preds.append(head.predictions(out))
            weights.append(w)
        sums.add(Terms(total, denom, len(xs[0])))
        for slot in slots:
            update_metric(slot.metric, preds[slot.output], ys[slot.output], weights[slot.output])
    if not seen and getattr(source, "yields_batches", False):
        raise ValueError(
            f"{source.name} yielded no batch to evaluate (a generator used up earlier?); give data that can "
            "be read again (a list of batches, a Sequence) or an endless generator with validation_steps or "
            "steps"
        )
    if getattr(source, "short", None):
        adapters.warn_short(source, "the figures are those of the batches it gave")
    return sums


def evaluate_source(
    model: Any, source: Any, batch_size: int, slots: Sequence[MetricSlot]
) -> dict[str, float]:
    """The loss (the current regularization included) and metrics over a source.

    Args:
        model: the model.
        source: a source of host batches.
        batch_size: samples per forward pass.
        slots: the metrics.

    Returns:
        The logs.
    """
    sums = evaluation_sums(model, source, batch_size, slots)
    pen = float(backend.to_numpy(penalty(model))) if model.has_penalty() else 0.0
    return logs_from(model, sums.values(), slots, penalty_now=pen)
