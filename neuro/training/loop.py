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

import itertools
import sys
import time
import warnings
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
from neuro.training.step import device_weights, sample_weights, train_step


def _progress(total: int | None, epoch: int, epochs: int, unit: str = "sample") -> Any:
    from tqdm.auto import tqdm  # imported on first use: keeps `import neuro` fast

    return tqdm(
        total=total,
        desc=f"Epoch {epoch + 1}/{epochs}",
        unit=unit,
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
            shuffle: draw a seeded random order (else the stored order); for data that yields its own
                batches, the order of the batches of an object of the batch protocol.

        Yields:
            ``(xs, ys)`` or ``(xs, ys, ws)`` host batches.
        """
        model = self.model
        if getattr(train, "yields_batches", False):
            for batch in train.epoch(model.rng, shuffle):
                self.batch_samples = len(batch[0][0])
                yield batch
            return
        n = len(train)
        order = model.rng.permutation(n) if shuffle else np.arange(n)  # the host shuffles indices only
        for batch in train.batches(order, self.batch_size, augment=True, rng=model.rng):
            self.batch_samples = len(batch[0][0])
            yield batch

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
    model: Any,
    x: Any,
    y: Any = None,
    batch_size: int | None = None,
    metrics: Any = None,
    verbose: int = 0,
    sample_weight: Any = None,
    steps: int | None = None,
) -> dict[str, float]:
    """What :meth:`neuro.models.Model.evaluate` does.

    Args:
        model: the model.
        x: inputs (see :meth:`~neuro.models.Model.evaluate`).
        y: targets.
        batch_size: samples per forward pass (``None``: 256; not with data that yields batches).
        metrics: the metrics (``None``: the compiled ones or the defaults).
        verbose: 0 silent, 1 one line (``"auto"``: 1, as Keras's).
        sample_weight: weights of the samples of arrays ``x``.
        steps: batches to read from data that yields batches.

    Returns:
        The logs.
    """
    given = batch_size
    batch_size = 256 if batch_size is None else check.positive_int(batch_size, "batch_size")
    steps = None if steps is None else check.positive_int(steps, "steps")
    verbose = _verbose(verbose, (0, 1))
    model.require_compiled("evaluate")
    refuse_overridden_steps(model, "evaluate")
    slots = metric_slots(model, model.compiled_metrics if metrics is None else metrics)
    source = adapters.evaluation_source(
        model, x, y, sample_weight=sample_weight, steps=steps, batch_size=given
    )
    logs = evaluate_source(model, source, batch_size, slots)
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
    batch_size: int | None = None,
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
    sample_weight: Any = None,
    steps_per_epoch: int | None = None,
    validation_steps: int | None = None,
) -> History:
    """What :meth:`neuro.models.Model.fit` does (the arguments are described there).

    Args:
        model: the model.
        x: inputs, or data that yields batches.
        y: targets.
        batch_size: samples per step (``None``: 32; not with data that yields batches).
        epochs: the epoch to stop before.
        validation_data: ``(x_val, y_val)`` or a split.
        shuffle: reshuffle before each epoch.
        metrics: the metrics.
        verbose: 0, 1 or 2 (``"auto"``: 1, as Keras's).
        validation_split: fraction held out for validation.
        callbacks: the callbacks.
        initial_epoch: the epoch to start at.
        class_weight: weights of the classes of a categorical loss.
        distributed: train over MPI.
        sample_weight: weights of the samples of arrays ``x``.
        steps_per_epoch: batches per epoch of data that yields batches.
        validation_steps: batches per validation of validation data that yields batches.

    Returns:
        The History.
    """
    if distributed:  # MPI first, so that an uncaught error on one rank from here on ends every rank
        from neuro import distributed as distributed_mod

        distributed_mod.init()
    given = batch_size
    batch_size = 32 if batch_size is None else check.positive_int(batch_size, "batch_size")
    epochs = check.positive_int(epochs, "epochs")
    if steps_per_epoch is not None:
        steps_per_epoch = check.positive_int(steps_per_epoch, "steps_per_epoch")
    validation_steps = (
        None if validation_steps is None else check.positive_int(validation_steps, "validation_steps")
    )
    initial_epoch = check.non_negative_int(initial_epoch, "initial_epoch")
    verbose = _verbose(verbose, (0, 1, 2))
    if not (isinstance(shuffle, (bool, np.bool_)) or (isinstance(shuffle, int) and shuffle in (0, 1))):
        raise TypeError(  # Keras's shuffle="batch" was read as True
            f"shuffle must be True or False, got {shuffle!r} (neuro shuffles whole samples)"
        )
    split = check.fraction(validation_split, "validation_split")
    model.require_compiled("fit")
    refuse_overridden_steps(model, "fit")
    with model._lock:  # checked and claimed at once: two threads' fits never both start
        if model._fitting:
            raise RuntimeError(
                "fit is already running on this model (fit called from a callback, or from another thread?); "
                "a model trains in one fit at a time"
            )
        model._fitting = True
    try:
        train, valid = adapters.training_sources(
            model,
            x,
            y,
            validation_data,
            split,
            batch_size=given,
            sample_weight=sample_weight,
            steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps,
        )
        stream = getattr(train, "yields_batches", False)
        if distributed and (
            stream
            or getattr(valid, "yields_batches", False)
            or getattr(train, "ws", None) is not None
            or getattr(valid, "ws", None) is not None
        ):
            raise ValueError(
                "a distributed fit reads arrays or data set splits by index, each rank its part of every "
                "batch; data that yields its own batches and sample weights are not supported there (give "
                "arrays or a split, and class_weight for weighted classes)"
            )
        from neuro.callbacks import CallbackList

        cbs = CallbackList(callbacks, model)
        slots = metric_slots(model, model.compiled_metrics if metrics is None else metrics)
        model._train_heads = model.weighted_heads(class_weight)
        if stream:  # the bar counts batches: their number is known only from steps_per_epoch or len
            total, unit = train.batches_per_epoch, "batch"
        else:
            total, unit = len(train), "sample"
        last_batch = (-(-total // batch_size) if unit == "sample" else total or 0) - 1
        steps = last_batch + 1 if last_batch >= 0 else None
        cbs.set_params({"verbose": verbose, "epochs": epochs, "steps": steps})
        history = History()
        history.model, history.params = model, {"verbose": verbose, "epochs": epochs, "steps": steps}
        model.history = history  # as Keras's model.history
        terminate_on_nan = any(getattr(c, "ends_training_on_nan", False) for c in cbs.callbacks)
        logs: dict[str, float] = {}
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
        model.check_param_arrays()  # a parameter replaced by another array (a transposed view) is named now
        model.stop_training = False
        n_out = len(model.output_names)
    except BaseException:
        model._fitting = False
        model._train_heads = None
        raise
    threads = backend.busy_aware_threads()  # free cores, one BLAS thread; __exit__ undoes what was done
    batches: Any = None
    try:
        threads.__enter__()
        # what the fit logs, and which way each metric improves: callbacks in mode="auto" read it
        model.metric_directions = {s.key: getattr(s.metric, "greater_is_better", None) for s in slots}
        cbs.on_train_begin({})
        for epoch in range(initial_epoch, epochs):
            start = time.perf_counter()
            for slot in slots:
                slot.metric.reset()
            batches = iter(run.batches(train, epoch, shuffle))
            if stream:  # an epoch without a batch: the data ran out (Keras stops), or never had one
                first = next(batches, None)
                if first is None:
                    if epoch == initial_epoch:
                        raise ValueError(
                            "x yielded no batch (an empty iterable, or a generator used up earlier); fit "
                            "needs at least one (x, y) batch"
                        )
                    _warn_ran_out(train, epoch, epochs)
                    break
                batches = itertools.chain([first], batches)
            cbs.on_epoch_begin(epoch, {})
            sums = LossSums(n_out)
            bar = _progress(total, epoch, epochs, unit) if bar_ok else None
            for b, batch in enumerate(batches):
                xs, ys, ws = adapters.unpack(batch)
                cbs.on_train_batch_begin(b, {})
                ys = model.to_device(ys, "y")
                try:
                    preds, terms = train_step(model, model.to_device(xs), ys, device_weights(model, ws))
                except FloatingPointError as exc:
                    rate = _rate_text(model.optimizer)
                    where = f"{exc} at epoch {epoch + 1}, batch {b + 1} ({rate})"
                    if terminate_on_nan:  # Keras's: training ends, fit returns (every rank fails alike)
                        if run.is_main:
                            print(f"{where}: terminating training (TerminateOnNaN); the weights are those "
                                  "from before this batch", flush=True)
                        model.stop_training = True
                        if cbs.wants_batch_logs:  # the batch ends, as Keras's, with its non-finite loss
                            batch_logs = logs_from(model, sums.values(), slots)
                            cbs.on_train_batch_end(b, {**batch_logs, "loss": float("nan")})
                        break
                    if bar is not None:
                        bar.close()
                    err = FloatingPointError(
                        f"{where}; training stopped and the weights are those from before this batch"
                    )
                    err.history = history  # type: ignore[attr-defined]  # the epochs that finished
                    raise err from None
                sums.add(terms, terms.penalty)
                for slot in slots:
                    k = slot.output
                    if terms.weights is not None:  # the batch's sample weights (times the masks)
                        w = terms.weights[k]
                    else:
                        w = sample_weights(terms.masks[k], preds[k])
                    update_metric(slot.metric, preds[k], ys[k], w)
                if cbs.wants_batch_logs:
                    run.sync_metrics()
                    cbs.on_train_batch_end(b, logs_from(model, sums.values(), slots))
                if bar is not None:
                    bar.update(1 if stream else run.batch_samples)
                    if b % 10 == 0 or b == last_batch:
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
            if stream and train.short is not None:  # a generator ended before steps_per_epoch: Keras stops
                if epoch + 1 < epochs:
                    what = f"training stops after epoch {epoch + 1} of {epochs}, as Keras's"
                    adapters.warn_short(train, what)
                break
            if run.stop_after_epoch():
                break
        cbs.on_train_end(dict(logs))  # the last epoch's logs, as Keras passes them
    except BaseException as exc:
        run.fail(exc)  # distributed: returns when every rank raises, else aborts every rank
        raise
    finally:
        try:
            threads.__exit__()
            run.close()
        finally:
            model._fitting = False
            model._train_heads = None
            if not stream and hasattr(batches, "close"):  # an epoch cut short: its reading threads end now
                batches.close()  # (last; data yielding its own batches is the user's, and may be read on)
    model.compiled_metrics = model.compiled_metrics if metrics is None else metrics
    return history


def _verbose(verbose: Any, levels: tuple[int, ...]) -> int:
    """``verbose`` checked against ``levels``; Keras's ``"auto"`` is 1 (a progress bar)."""
    if isinstance(verbose, str) and verbose == "auto":
        return 1
    if verbose not in levels:
        allowed = ", ".join(str(v) for v in levels)
        raise ValueError(f"verbose must be {allowed} or 'auto', got {verbose!r}")
    return verbose


#: Keras's hooks for "customizing what happens in fit", by the method that would call them.
_HOOKS = {
    "fit": ("train_step", "compute_loss", "call"),
    "evaluate": ("test_step", "compute_loss", "call"),
    "predict": ("predict_step", "call"),
}
_hooks_seen: dict[tuple[type, str], tuple[str, ...]] = {}


def refuse_overridden_steps(model: Any, what: str) -> None:
    """Refuse a model that defines one of Keras's hooks the method ``what`` would call there
    (``train_step``, ``test_step``, ``predict_step``, ``compute_loss``, ``call``; Keras's "customizing what
    happens in fit"): neuro's ``fit``, ``evaluate`` and ``predict`` run the model's graph and never call
    them, so they would train, evaluate or predict something else without a word. neuro's own
    ``train_step`` (a public method of the model) is not such a hook.

    Args:
        model: the model.
        what: ``"fit"``, ``"evaluate"`` or ``"predict"``.

    Raises:
        TypeError: naming the hooks and the way neuro offers (a loop of ``compute_gradients`` and
            ``optimizer.step``).
    """
    cls = type(model)
    key = (cls, what)
    own = _hooks_seen.get(key)
    if own is None:
        own = _hooks_seen[key] = tuple(
            n for n in _HOOKS[what]
            if not getattr(getattr(cls, n, None), "__module__", "neuro.").startswith("neuro.")
        )  # fmt: skip
    instance = tuple(n for n in _HOOKS[what] if n in vars(model))  # model.train_step = fn
    if own or instance:
        names = " and ".join(dict.fromkeys((*own, *instance)))
        raise TypeError(
            f"{cls.__name__} defines {names}, which neuro's {what} does not call (Keras's 'customizing what "
            "happens in fit' is not supported): write the loop with model.compute_gradients(x, y) and "
            "model.optimizer.step(model.params, model.grads) (the migration guide's custom loop), or rename "
            "the method"
        )


def _warn_ran_out(train: Any, epoch: int, epochs: int) -> None:
    """Warn that data yielding its own batches had none left for an epoch (training stops, as Keras's)."""
    if train.steps is not None:
        adapters.warn_short(train, f"training stops after epoch {epoch} of {epochs}, as Keras's")
        return
    warnings.warn(
        f"x ran out of batches: it is an iterator that yielded its {train.read} batches in the first "
        f"epoch{'s' if epoch > 1 else ''} and has none left for epoch {epoch + 1}; training stops after "
        f"epoch {epoch} of {epochs}, as Keras's. Give steps_per_epoch with an endless generator (while True: "
        "...), or data that can be read anew (a list of batches, a Sequence)",
        UserWarning,
        stacklevel=adapters.user_stacklevel(),
    )


__all__ = ["History", "LocalRun", "evaluate", "fit", "refuse_overridden_steps"]
