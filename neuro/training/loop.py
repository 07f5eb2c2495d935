"""The training and evaluation loops: epochs of batches, callbacks, progress, logs and History.

This module owns the *loop*: it asks a run context for each epoch's host batches (:class:`LocalRun` in one
process, :class:`neuro.distributed.FitContext` over MPI), moves each batch to the model's device once, runs
the guarded step of :mod:`neuro.training.step`, keeps the loss sums and the metrics on the device, reads
them once per progress refresh or epoch, and calls the callbacks. It leaves data formats to
:mod:`neuro.training.adapters`, the arithmetic of a step to :mod:`neuro.training.step`, and the structure of
the model to :mod:`neuro.graph`.

Logs follow Keras's names: ``loss`` (the weighted sum of the outputs' losses plus the regularization),
the metrics by name, and for a model with several outputs ``<output>_loss`` and ``<output>_<metric>``;
validation figures are prefixed ``val_``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from neuro import _validation as check
from neuro import backend
from neuro.training import adapters
from neuro.training.evaluation import (
    LossSums,
    MetricSlot,
    evaluate_source,
    format_logs,
    logs_from,
    metric_slots,
    update_metric,
)
from neuro.training.history import History
from neuro.training.step import sample_weights, train_step


def _progress(total: int, epoch: int, epochs: int) -> Any:
    from tqdm.auto import tqdm  # imported on first use: keeps `import neuro` fast

    return tqdm(
        total=total,
        desc=f"Epoch {epoch + 1}/{epochs}",
        unit="sample",
        file=sys.stdout,
        leave=True,
        dynamic_ncols=True,
        mininterval=0.1,
    )


# -- one process ----------------------------------------------------------------------------------------
class LocalRun:
    """How one process runs ``fit``: the same interface as :class:`neuro.distributed.FitContext`, which
    replaces it in a data-parallel run (batches, metric and stop synchronisation, validation, failure).

    Args:
        model: the model being trained.
        batch_size: samples per batch.
        metrics: the metric slots of the fit.
    """

    is_main = True

    def __init__(self, model: Any, batch_size: int, metrics: list[MetricSlot]) -> None:
        self.model, self.batch_size, self.metrics = model, batch_size, metrics
        self.batch_samples = 0

    def batches(self, train: Any, epoch: int, shuffle: bool) -> Any:
        """The epoch's host batches.

        Args:
            train: the training source.
            epoch: the 0-based epoch (unused in one process: the model's generator gives the order).
            shuffle: draw a seeded random order (else the stored order).

        Yields:
            ``(xs, ys)`` host batches.
        """
        model = self.model
        n = len(train)
        order = model.rng.permutation(n) if shuffle else np.arange(n)  # the host shuffles indices only
        for xs, ys in train.batches(order, self.batch_size, augment=True, rng=model.rng):
            self.batch_samples = len(xs[0])
            yield xs, ys

    def sync_metrics(self) -> None:
        """Nothing to merge in one process."""

    def stop_after_batch(self) -> bool:
        """Whether a callback (or another thread) asked to stop."""
        return self.model.stop_training

    def stop_after_epoch(self) -> bool:
        """Whether a callback asked to stop."""
        return self.model.stop_training

    def evaluate(self, source: Any, batch_size: int) -> dict[str, float]:
        """The validation figures.

        Args:
            source: the validation source.
            batch_size: samples per forward pass.

        Returns:
            The logs.
        """
        return evaluate_source(self.model, source, batch_size, self.metrics)

    def fail(self, exc: BaseException) -> None:
        """Nothing to tell other processes.

        Args:
            exc: the exception leaving ``fit``.
        """

    def close(self) -> None:
        """Nothing to release."""


def evaluate(
    model: Any, x: Any, y: Any = None, batch_size: int = 256, metrics: Any = None, verbose: int = 0
) -> dict[str, float]:
    """What :meth:`neuro.models.Model.evaluate` does.

    Args:
        model: the model.
        x: inputs (see :meth:`~neuro.models.Model.evaluate`).
        y: targets.
        batch_size: samples per forward pass.
        metrics: the metrics (``None``: the compiled ones or the defaults).
        verbose: 0 silent, 1 one line.

    Returns:
        The logs.
    """
    batch_size = check.positive_int(batch_size, "batch_size")
    if verbose not in (0, 1):
        raise ValueError(f"verbose must be 0 or 1, got {verbose!r}")
    model.require_compiled("evaluate")
    slots = metric_slots(model, model.compiled_metrics if metrics is None else metrics)
    logs = evaluate_source(model, adapters.evaluation_source(model, x, y), batch_size, slots)
    if verbose:
        print(format_logs(logs), flush=True)
    return logs


# -- fit --------------------------------------------------------------------------------------------------
def _rate_text(optimizer: Any) -> str:
    """The learning rate of the optimizer's next (failed) step, and the schedule that gave it."""
    lr = optimizer.current_learning_rate()
    schedule = optimizer.learning_rate
    if callable(schedule):
        return f"learning rate {lr:g} from {schedule!r} at update {optimizer.iterations}"
    return f"learning rate {lr:g}"


def fit(
    model: Any,
    x: Any,
    y: Any = None,
    batch_size: int = 32,
    epochs: int = 1,
    validation_data: Any = None,
    shuffle: bool = True,
    metrics: Iterable[Any] | None = None,
    verbose: int = 1,
    validation_split: float = 0.0,
    callbacks: Sequence[Any] | None = None,
    initial_epoch: int = 0,
    class_weight: dict[int, float] | None = None,
    distributed: Any = False,
) -> History:
    """What :meth:`neuro.models.Model.fit` does (the arguments are described there).

    Args:
        model: the model.
        x: inputs.
        y: targets.
        batch_size: samples per step.
        epochs: the epoch to stop before.
        validation_data: ``(x_val, y_val)`` or a split.
        shuffle: reshuffle before each epoch.
        metrics: the metrics.
        verbose: 0, 1 or 2.
        validation_split: fraction held out for validation.
        callbacks: the callbacks.
        initial_epoch: the epoch to start at.
        class_weight: weights of the classes of a categorical loss.
        distributed: train over MPI.

    Returns:
        The History.
    """
    if distributed:  # MPI first, so that an uncaught error on one rank from here on ends every rank
        from neuro import distributed as distributed_mod

        distributed_mod.init()
    batch_size = check.positive_int(batch_size, "batch_size")
    epochs = check.positive_int(epochs, "epochs")
    initial_epoch = check.non_negative_int(initial_epoch, "initial_epoch")
    if initial_epoch >= epochs:
        raise ValueError(f"initial_epoch must be smaller than epochs ({epochs}), got {initial_epoch}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    split = check.fraction(validation_split, "validation_split")
    model.require_compiled("fit")
    if model._fitting:
        raise RuntimeError(
            "fit is already running on this model (fit called from a callback?); a model trains in one fit "
            "at a time"
        )
    train, valid = adapters.training_sources(model, x, y, validation_data, split)
    from neuro.callbacks import CallbackList

    cbs = CallbackList(callbacks, model)
    slots = metric_slots(model, model.compiled_metrics if metrics is None else metrics)
    model._train_heads = model.weighted_heads(class_weight)
    n = len(train)
    n_batches = -(-n // batch_size)
    history = History()
    if distributed:  # data parallel over MPI: the run's batches, reductions and stops go through MPI
        fit_args = {"epochs": epochs, "initial_epoch": initial_epoch, "shuffle": shuffle}
        fit_args.update(class_weight=class_weight, batch_logs=cbs.wants_batch_logs)
        run: Any = distributed_mod.FitContext(
            model, distributed, train, valid, batch_size, fit_args, slots, cbs.callbacks
        )
        verbose = verbose if run.is_main else 0
    else:
        run = LocalRun(model, batch_size, slots)
    slots = run.metrics
    bar_ok = verbose == 1 and sys.stdout.isatty()
    model.stop_training = False
    model._fitting = True
    n_out = len(model.output_names)
    threads = backend.busy_aware_threads().__enter__()  # as many threads as free cores (when not chosen)
    try:
        cbs.on_train_begin({})
        for epoch in range(initial_epoch, epochs):
            start = time.perf_counter()
            for slot in slots:
                slot.metric.reset()
            cbs.on_epoch_begin(epoch, {})
            sums = LossSums(n_out)
            bar = _progress(n, epoch, epochs) if bar_ok else None
            for b, (xs, ys) in enumerate(run.batches(train, epoch, shuffle)):
                cbs.on_batch_begin(b, {})
                ys = model.to_device(ys, "y")
                try:
                    preds, terms = train_step(model, model.to_device(xs), ys)
                except FloatingPointError as exc:
                    if bar is not None:
                        bar.close()
                    rate = _rate_text(model.optimizer)
                    raise FloatingPointError(
                        f"{exc} at epoch {epoch + 1}, batch {b + 1} ({rate}); training stopped and the "
                        "weights are those from before this batch"
                    ) from None
                sums.add(terms, terms.penalty)
                for slot in slots:
                    k = slot.output
                    update_metric(slot.metric, preds[k], ys[k], sample_weights(terms.masks[k], preds[k]))
                if cbs.wants_batch_logs:
                    run.sync_metrics()
                    cbs.on_batch_end(b, logs_from(model, sums.values(), slots))
                if bar is not None:
                    bar.update(run.batch_samples)
                    if b % 10 == 0 or b == n_batches - 1:
                        bar.set_postfix_str(
                            format_logs(logs_from(model, sums.values(), slots)), refresh=False
                        )
                if run.stop_after_batch():
                    break
            run.sync_metrics()
            logs = logs_from(model, sums.values(), slots)
            if valid is not None:
                logs.update({f"val_{k}": v for k, v in run.evaluate(valid, batch_size).items()})
            if bar is not None:
                bar.set_postfix_str(format_logs(logs), refresh=True)
                bar.close()
            elif verbose:
                took = time.perf_counter() - start
                print(f"Epoch {epoch + 1}/{epochs} - {took:.1f}s - {format_logs(logs)}", flush=True)
            cbs.on_epoch_end(epoch, logs)
            history.append(epoch, logs)  # last, as Keras's History: it sees what callbacks added
            if run.stop_after_epoch():
                break
        cbs.on_train_end({})
    except BaseException as exc:
        run.fail(exc)  # distributed: returns when every rank raises, else aborts every rank
        raise
    finally:
        threads.__exit__()
        run.close()
        model._fitting = False
        model._train_heads = None
    model.compiled_metrics = model.compiled_metrics if metrics is None else metrics
    return history


__all__ = ["History", "LocalRun", "evaluate", "fit"]
