"""Callbacks: objects that observe and steer :meth:`neuro.models.Network.fit`.

A callback overrides any of the hooks ``on_train_begin/end(logs)``, ``on_epoch_begin/end(epoch, logs)`` and
``on_batch_begin/end(batch, logs)``; ``self.network`` is the network being trained. Epoch logs hold the
epoch's ``loss`` and metrics and, at ``on_epoch_end``, the ``val_`` ones. Setting
``network.stop_training = True`` ends ``fit`` after the current batch (from a batch hook) or epoch.

Batch logs are read from the device, which costs a transfer per batch; ``fit`` reads them only when some
callback overrides ``on_batch_end``.
"""

from __future__ import annotations

import csv
import math
import numbers
import os
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from neuro import metrics as metrics_mod
from neuro._keywords import KeywordChecked


def _writes_files(network: Any) -> bool:
    """False on the ranks other than 0 of a distributed ``fit`` (only rank 0 writes files)."""
    dist = getattr(network, "_dist", None)
    return dist is None or dist.is_main


class Callback(KeywordChecked):
    """Base class: every hook does nothing.

    Keras 3's names of the batch hooks work too: ``on_train_batch_begin/end`` are called for each training
    batch (by default they call ``on_batch_begin/end``, as Keras's do). ``fit`` calls no evaluation or
    prediction hooks (``on_test_*``, ``on_predict_*``): a callback that overrides one is refused, not ignored.

    Attributes:
        network: the :class:`~neuro.models.Network` being trained (set by ``fit``); ``model`` is the same
            object under Keras's name.
        params: ``{"verbose", "epochs", "steps"}`` of the ``fit`` (Keras's), set before training starts.
    """

    network: Any = None
    params: dict[str, Any] = {}  # noqa: RUF012 - replaced per fit, never mutated

    @property
    def model(self) -> Any:
        """The model being trained (Keras's name for :attr:`network`)."""
        return self.network

    def set_network(self, network: Any) -> None:
        """Called by ``fit`` before training starts; calls :meth:`set_model` (Keras's name).

        Args:
            network: the network being trained.
        """
        self.set_model(network)

    def set_model(self, model: Any) -> None:
        """Keras's name for :meth:`set_network`: keep the model being trained.

        Args:
            model: the model.
        """
        self.network = model

    def set_params(self, params: dict[str, Any]) -> None:
        """Keep the fit's ``params`` (Keras's ``set_params``).

        Args:
            params: ``{"verbose", "epochs", "steps"}``.
        """
        self.params = params

    def on_train_batch_begin(self, batch: int, logs: dict[str, float] | None = None) -> None:
        """Keras 3's name: called before each training batch; calls :meth:`on_batch_begin`.

        Args:
            batch: the 0-based batch number within the epoch.
            logs: an empty dict.
        """
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        """Keras 3's name: called after each training batch; calls :meth:`on_batch_end`.

        Args:
            batch: the 0-based batch number within the epoch.
            logs: the epoch's ``loss`` and metrics so far.
        """
        self.on_batch_end(batch, logs)

    def on_train_begin(self, logs: dict[str, float]) -> None:
        """Called once before the first epoch.

        Args:
            logs: an empty dict (Keras's signature).
        """

    def on_train_end(self, logs: dict[str, float]) -> None:
        """Called once after the last epoch (also after an early stop).

        Args:
            logs: an empty dict.
        """

    def on_epoch_begin(self, epoch: int, logs: dict[str, float]) -> None:
        """Called before each epoch.

        Args:
            epoch: the 0-based epoch number.
            logs: an empty dict.
        """

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Called after each epoch with its training and validation figures.

        Args:
            epoch: the 0-based epoch number.
            logs: ``loss``, the metrics and their ``val_`` versions; a callback may add entries, which the
                History records.
        """

    def on_batch_begin(self, batch: int, logs: dict[str, float]) -> None:
        """Called before each batch.

        Args:
            batch: the 0-based batch number within the epoch.
            logs: an empty dict.
        """

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        """Called after each batch with the running figures of the epoch (read from the device per batch,
        so ``fit`` reads them only when a callback overrides this hook).

        Args:
            batch: the 0-based batch number within the epoch.
            logs: the epoch's ``loss`` and metrics so far.
        """


class CallbackList:
    """The callbacks of one ``fit`` call, called in order.

    Args:
        callbacks: the callbacks (``None`` for none).
        network: the network they observe.

    Raises:
        TypeError: when an entry is not a :class:`Callback`.
    """

    def __init__(self, callbacks: Sequence[Callback] | None, network: Any) -> None:
        self.callbacks = list(callbacks or [])
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks[{i}] must be a neuro.callbacks.Callback, got {type(cb).__name__}")
            never = [h for h in _NEVER_CALLED if callable(getattr(type(cb), h, None))]
            if never:
                raise TypeError(
                    f"callbacks[{i}] ({type(cb).__name__}) defines {never}, which fit never calls (it has no "
                    "evaluation or prediction hooks); use on_epoch_end, whose logs hold the val_ values"
                )
            cb.set_network(network)
        self.wants_batch_logs = any(_wants_batch_logs(cb) for cb in self.callbacks)

    def set_params(self, params: dict[str, Any]) -> None:
        """Give every callback the fit's ``params``.

        Args:
            params: ``{"verbose", "epochs", "steps"}``.
        """
        for cb in self.callbacks:
            cb.set_params(params)

    def __getattr__(self, hook: str) -> Callable[..., None]:
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args: Any) -> None:
            for cb in self.callbacks:
                getattr(cb, hook)(*args)

        return call


#: Keras's hooks of evaluation and prediction, which ``fit`` never calls.
_NEVER_CALLED = tuple(
    f"on_{kind}_{when}"
    for kind in ("test", "predict")
    for when in ("begin", "end", "batch_begin", "batch_end")
)


def _wants_batch_logs(cb: Callback) -> bool:
    """Whether ``cb`` reads batch logs: it overrides ``on_batch_end`` or ``on_train_batch_end`` (a hook of
    neuro's own that needs them only sometimes says so in ``wants_batch_logs``: a ModelCheckpoint saving per
    epoch does not)."""
    if type(cb).on_train_batch_end is not Callback.on_train_batch_end:
        return True
    hook = type(cb).on_batch_end
    if hook is Callback.on_batch_end:
        return False
    return bool(cb.wants_batch_logs) if getattr(hook, "batch_logs_optional", False) else True


def _say(cb: Callback, text: str) -> None:
    """A callback's ``verbose`` line, printed by one process (rank 0 of a distributed fit)."""
    if _writes_files(cb.network):
        print(text, flush=True)


def _number(value: Any) -> bool:
    """Whether ``value`` is a real number (NumPy scalars included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _whole(value: Any) -> bool:
    """Whether ``value`` is a whole number (NumPy's integers included), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_verbose(verbose: Any) -> int:
    if isinstance(verbose, bool) or not isinstance(verbose, int) or verbose < 0:
        raise ValueError(f"verbose must be 0 (silent) or 1 (a line per action), got {verbose!r}")
    return verbose


def _monitor_mode(
    monitor: str, mode: str, output_names: Sequence[str] = (), directions: dict[str, Any] | None = None
) -> str | None:
    """The direction of improvement of a logged value: ``mode`` itself, or for ``"auto"`` ``"min"`` for a
    loss, the direction of a built-in metric (its ``greater_is_better``), and ``None`` when the name does not
    say (a metric of the user's: :class:`_Monitor` then asks for ``mode``, as Keras 3 does).

    Args:
        monitor: the log's name (``"val_"`` and an output's name may precede the metric's).
        mode: ``"auto"``, ``"min"`` or ``"max"``.
        output_names: the model's outputs, whose names prefix their metrics' logs.
        directions: ``greater_is_better`` of each metric the fit logs, by log key (a metric object of the
            user's, or one named otherwise, says so there).
    """
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name == "loss" or name.endswith("_loss"):
        return "min"
    better = (directions or {}).get(name)
    if better is not None:
        return "max" if better else "min"
    names = [name] + [name[len(out) + 1 :] for out in output_names if name.startswith(f"{out}_")]
    for candidate in names:
        try:
            better = metrics_mod.get(candidate).greater_is_better
        except (TypeError, ValueError):
            continue
        if better is not None:
            return "max" if better else "min"
    if any(candidate.endswith("auc") for candidate in names):  # AUC("PR") logs as pr_auc
        return "max"
    return None


class _Monitor(Callback):
    """Tracks the best value of one logged quantity."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a log name such as 'val_loss', got {monitor!r}")
        if not isinstance(min_delta, (int, float)) or min_delta < 0:
            raise ValueError(f"min_delta must be a number >= 0, got {min_delta!r}")
        self.monitor = monitor
        self._mode_given = mode
        self.mode = _monitor_mode(monitor, mode)  # None: the model's output names may tell (at train begin)
        self.min_delta = float(min_delta)
        self.best = self._worst()

    def _worst(self) -> float:
        """The value every first one improves on (an unresolved mode is taken as "min")."""
        return -math.inf if self.mode == "max" else math.inf

    #: whether the callback compares values (ModelCheckpoint only with save_best_only)
    compares = True

    def on_train_begin(self, logs: dict[str, float]) -> None:
        if self.mode is None:
            net = self.network
            self.mode = _monitor_mode(
                self.monitor, self._mode_given, net.output_names, getattr(net, "metric_directions", None)
            )
            if self.mode is None and self.compares:
                raise ValueError(
                    f"{type(self).__name__} cannot tell whether {self.monitor!r} should go down or up "
                    "(mode='auto' knows losses and neuro's metrics); give mode='min' or mode='max'"
                )
            self.best = self._worst()

    def _value(self, logs: dict[str, float]) -> float:
        if self.monitor not in logs:
            raise KeyError(
                f"monitor {self.monitor!r} is not among the logged values {sorted(logs)}; "
                "validation values need validation_data or validation_split"
            )
        return float(logs[self.monitor])

    def _improved(self, value: float, than: float | None = None) -> bool:
        best = self.best if than is None else than
        if self.mode == "min":
            return value < best - self.min_delta
        return value > best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop training when a monitored value has stopped improving.

    Args:
        monitor: the log to watch (default ``"val_loss"``).
        mode: ``"min"``, ``"max"`` or ``"auto"``: min for losses and errors, max for accuracies and the
            other scores of :mod:`neuro.metrics`; for a metric of your own, ``"auto"`` raises ValueError at
            the start of training (give ``"min"`` or ``"max"``).
        patience: the number of epochs without improvement after which training stops, as Keras's (with 3,
            the third epoch in a row without improvement is the last; 0 and 1 both stop at the first).
        min_delta: smallest change that counts as an improvement.
        restore_best_weights: at the stop (or the end of training), put back the weights of the best epoch
            (of the first watched epoch when no epoch beat ``baseline``).
        verbose: 1 prints a line when training stops and when the weights are restored.
        baseline: a value the monitored one must beat (Keras's rule): until an epoch beats it, the wait for
            an improvement does not restart, so the first epoch without improvement after ``patience`` epochs
            stops training.
        start_from_epoch: the number of epochs to train before watching (a warm-up; Keras's).

    Attributes:
        stopped_epoch: the epoch (0-based) at which training was stopped, or ``None``.
        best_epoch: the epoch of the best value.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "auto",
        patience: int = 0,
        min_delta: float = 0.0,
        restore_best_weights: bool = False,
        verbose: int = 0,
        baseline: float | None = None,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        if not _whole(patience) or patience < 0:
            raise ValueError(f"patience must be a non-negative integer, got {patience!r}")
        if baseline is not None and (not _number(baseline) or not math.isfinite(baseline)):
            raise ValueError(f"baseline must be a finite number or None, got {baseline!r}")
        start = start_from_epoch
        if not _whole(start) or start < 0:
            raise ValueError(f"start_from_epoch must be a non-negative integer, got {start_from_epoch!r}")
        self.patience = int(patience)
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = _check_verbose(verbose)
        self.baseline = None if baseline is None else float(baseline)
        self.start_from_epoch = int(start_from_epoch)

    def on_train_begin(self, logs: dict[str, float]) -> None:
        super().on_train_begin(logs)
        self.wait = 0
        self.best = self._worst()
        self.best_epoch: int | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if epoch < self.start_from_epoch:
            return
        value = self._value(logs)
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.network.get_weights()  # Keras's: restored if no epoch improves
        self.wait += 1
        if self._improved(value):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.network.get_weights()
            if self.baseline is None or self._improved(value, self.baseline):
                self.wait = 0  # the wait restarts only past the baseline too (Keras's rule)
            return
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.network.stop_training = True

    def on_train_end(self, logs: dict[str, float]) -> None:
        if self.stopped_epoch is not None and self.verbose:
            _say(self, f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                best = self.best_epoch
                which = f"epoch {best + 1}" if best is not None else "the first epoch watched"
                _say(self, f"Restoring model weights from the end of {which}.")
            self.network.set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the network after an epoch (or every ``save_freq`` batches).

    Args:
        filepath: file name (Keras's name; ``path`` is its old name, deprecated); ``{epoch}`` (1-based) and
            log names (``{val_loss:.4f}``) are filled in. Missing folders are made, as Keras does.
        monitor: the log that decides what is best (with ``save_best_only``).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (as for :class:`EarlyStopping`).
        save_best_only: save only when the monitored value improved.
        verbose: 1 prints a line for each save (and each epoch that did not improve, with
            ``save_best_only``).
        save_weights_only: write only the weights (:meth:`~neuro.models.Model.save_weights`, read back with
            ``load_weights``) instead of the whole model.
        save_freq: ``"epoch"`` (at the end of each epoch) or a number of batches: a save every that many
            batches, counted over the epochs, with the epoch's running logs (the monitored value must then
            be one of them, a training one: validation runs at the epoch's end).
        initial_value_threshold: with ``save_best_only``, the value the first save must beat (say, the best
            of an earlier run, so that a resumed run does not overwrite its best file with a worse model).

    Attributes:
        path: the file name pattern.
        saved: the paths written, in order.
    """

    renamed_keywords = {"path": "filepath"}

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        mode: str = "auto",
        save_best_only: bool = False,
        verbose: int = 0,
        save_weights_only: bool = False,
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__(monitor, mode, 0.0)
        if save_freq != "epoch" and (
            not _whole(save_freq) or save_freq < 1
        ):
            raise ValueError(f"save_freq must be 'epoch' or a number of batches >= 1, got {save_freq!r}")
        if initial_value_threshold is not None and (
            not _number(initial_value_threshold) or math.isnan(initial_value_threshold)
        ):
            raise ValueError(
                f"initial_value_threshold must be a number or None, got {initial_value_threshold!r}"
            )
        self.path = str(filepath)
        self.save_best_only = bool(save_best_only)
        self.compares = self.save_best_only  # without it every epoch is saved: no direction needed
        self.verbose = _check_verbose(verbose)
        self.save_weights_only = bool(save_weights_only)
        self.save_freq = save_freq if save_freq == "epoch" else int(save_freq)
        self.initial_value_threshold = (
            None if initial_value_threshold is None else float(initial_value_threshold)
        )
        self.wants_batch_logs = save_freq != "epoch"
        self.saved: list[str] = []
        if self.initial_value_threshold is not None:
            self.best = self.initial_value_threshold  # once, as Keras's: a later fit keeps its best

    def on_train_begin(self, logs: dict[str, float]) -> None:
        unresolved = self.mode is None
        super().on_train_begin(logs)
        if unresolved and self.initial_value_threshold is not None:  # the mode was found just now
            self.best = self.initial_value_threshold
        if self.save_freq != "epoch" and self.save_best_only and self.monitor.startswith("val_"):
            raise ValueError(
                f"ModelCheckpoint(save_freq={self.save_freq}, save_best_only=True) compares batch logs, "
                f"which hold no validation values; monitor a training log such as 'loss', not "
                f"{self.monitor!r}"
            )
        self._epoch = 0
        self._batches = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, float]) -> None:
        self._epoch = epoch

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        if self.save_freq == "epoch":
            return
        self._batches += 1
        if self._batches >= self.save_freq:
            self._batches = 0
            self._save(self._epoch, logs, batch)

    on_batch_end.batch_logs_optional = True  # type: ignore[attr-defined]  # read only when save_freq asks

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, logs)

    def _save(self, epoch: int, logs: dict[str, float], batch: int | None = None) -> None:
        if self.save_best_only:
            value = self._value(logs)
            if not self._improved(value):
                if self.verbose:
                    _say(self, f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            before, self.best = self.best, value
        try:
            fields = {**logs, "batch": batch + 1} if batch is not None else logs
            target = self.path.format(epoch=epoch + 1, **fields)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"path {self.path!r} names a field that is not logged ({exc}); logged: {sorted(logs)}"
            ) from None
        if self.verbose:
            why = f"{self.monitor} improved from {before:.5f} to {value:.5f}, " if self.save_best_only else ""
            what = "weights" if self.save_weights_only else "model"
            _say(self, f"Epoch {epoch + 1}: {why}saving {what} to {target}")
        if _writes_files(self.network):
            parent = os.path.dirname(target)
            if parent:
                os.makedirs(parent, exist_ok=True)
        if self.save_weights_only:
            self.network.save_weights(target)
        else:
            self.network.save(target)  # does nothing on the ranks other than 0 of a distributed fit
        self.saved.append(target)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` when a monitored value stops improving.

    Args:
        monitor: the log to watch (default ``"val_loss"``).
        factor: multiplier in (0, 1).
        patience: the number of epochs without improvement after which the rate is reduced, as Keras's (with
            2, at the end of the second such epoch in a row; PyTorch's scheduler waits one epoch more).
        min_lr: the rate is never reduced below this.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (as for :class:`EarlyStopping`).
        min_delta: smallest change that counts as an improvement.
        cooldown: the number of epochs after a reduction during which no epoch counts as without
            improvement (Keras's).
        verbose: 1 prints a line for each reduction.

    The epoch's rate is added to the logs as ``learning_rate``.

    Raises:
        TypeError: at training start, when the optimizer's learning rate is a schedule.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_lr: float = 0.0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        verbose: int = 0,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        if not isinstance(factor, (int, float)) or not 0 < factor < 1:
            raise ValueError(f"factor must be a number in (0, 1), got {factor!r}")
        if not _whole(cooldown) or cooldown < 0:
            raise ValueError(f"cooldown must be a non-negative integer, got {cooldown!r}")
        self.factor, self.patience, self.min_lr = float(factor), int(patience), float(min_lr)
        self.cooldown = int(cooldown)
        self.verbose = _check_verbose(verbose)

    def on_train_begin(self, logs: dict[str, float]) -> None:
        if callable(self.network.optimizer.learning_rate):
            raise TypeError("ReduceLROnPlateau needs a numeric learning_rate, got a schedule")
        super().on_train_begin(logs)
        self.wait = 0
        self.cooldown_counter = 0
        self.best = self._worst()  # each fit starts afresh, as Keras's

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        value = self._value(logs)
        opt = self.network.optimizer
        logs["learning_rate"] = float(opt.learning_rate)  # this epoch's, as Keras logs it
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(value):
            self.best, self.wait = value, 0
        elif self.cooldown_counter <= 0:  # Keras's order: the count goes down first
            self.wait += 1
            if self.wait >= self.patience and opt.learning_rate > self.min_lr:
                opt.learning_rate = max(self.min_lr, opt.learning_rate * self.factor)
                if self.verbose:
                    lr = opt.learning_rate
                    _say(self, f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {lr}.")
                self.cooldown_counter = self.cooldown
                self.wait = 0


class LearningRateScheduler(Callback):
    """Set the learning rate before each epoch from ``schedule(epoch, lr) -> new lr``.

    The epoch's rate is added to the logs as ``learning_rate``, as Keras 3 logs it.

    Args:
        schedule: a function of the 0-based epoch and the current rate, or of the epoch alone (Keras's older
            form, which Keras 3 still takes); it returns a finite rate >= 0.
        verbose: 1 prints the rate set at each epoch.

    Raises:
        TypeError: for a schedule that is not callable or takes neither ``(epoch, lr)`` nor ``(epoch)``; at
            the start of ``fit``, for an optimizer whose learning rate is a schedule (setting a number would
            drop it; Keras refuses it too).
        ValueError: for a schedule that returns no number (``None``, a string, a bool), or a rate that is
            negative or not finite.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        if not callable(schedule):
            raise TypeError(f"schedule must be callable, got {type(schedule).__name__}")
        self.schedule = schedule
        self._takes_lr = _takes_two(schedule)
        self.verbose = _check_verbose(verbose)

    def on_train_begin(self, logs: dict[str, float]) -> None:
        if callable(self.network.optimizer.learning_rate):  # setting a rate would drop it (Keras refuses too)
            raise TypeError("LearningRateScheduler needs a numeric learning_rate, got a schedule")

    def on_epoch_begin(self, epoch: int, logs: dict[str, float]) -> None:
        opt = self.network.optimizer
        if self._takes_lr is None:  # a signature that hides its arguments: Keras's way, two, then one
            try:
                out = self.schedule(epoch, opt.current_learning_rate())
                self._takes_lr = True  # the form that worked, from now on
            except TypeError:  # (a TypeError of the one-argument call shows this one as its context)
                out = self.schedule(epoch)  # and the two are tried again next epoch, as Keras does
        elif self._takes_lr:
            out = self.schedule(epoch, opt.current_learning_rate())
        else:
            out = self.schedule(epoch)
        number = isinstance(out, numbers.Real) or (
            isinstance(out, np.ndarray) and out.ndim == 0 and out.dtype.kind in "iuf"
        )
        number = number and not isinstance(out, (bool, np.bool_))
        try:  # outside the calls: a schedule's bad return is no reason to call it again
            lr = float(out) if number else math.nan
        except OverflowError:
            number = False
        if not number:
            raise ValueError(
                f"schedule must return a number (the learning rate), got {out!r} at epoch {epoch}"
            )
        if not (lr >= 0 and math.isfinite(lr)):
            raise ValueError(
                f"schedule must return a finite learning rate >= 0, got {lr!r} at epoch {epoch}"
            )
        opt.learning_rate = lr
        if self.verbose:
            _say(self, f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        logs["learning_rate"] = float(self.network.optimizer.learning_rate)


def _takes_two(schedule: Callable[..., float]) -> bool | None:
    """Whether ``schedule`` takes ``(epoch, lr)`` (else ``(epoch)``), read from its signature; ``None`` when
    the signature does not tell (none readable, or ``*args`` as a decorator's wrapper has): then it is called
    as Keras 3 calls it, with both, and with the epoch alone if that raises a TypeError."""
    import inspect

    try:
        sig = inspect.signature(schedule)
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values()):
        return None
    for args, two in (((0, 0.1), True), ((0,), False)):
        try:
            sig.bind(*args)
            return two
        except TypeError:
            pass
    raise TypeError(f"schedule must take (epoch, lr) or (epoch), got a callable of signature {sig}")


class CSVLogger(Callback):
    """Write one row per epoch (the epoch and every log) to a CSV file.

    Numbers are written exactly (``repr``), a string as it is, and another value as Keras writes it (an
    array as the list of its values, in quotes).

    Args:
        filename: the file (Keras's name; ``path`` is its old name, deprecated); a missing folder is made.
        separator: the field separator (one character; default ``","``).
        append: add to an existing file instead of replacing it.

    Attributes:
        path: the file.
    """

    renamed_keywords = {"path": "filename"}

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be one character, got {separator!r}")
        self.path = pathlib.Path(filename)
        self.sep = separator
        self.append = bool(append)

    def on_train_begin(self, logs: dict[str, float]) -> None:
        self._keys: list[str] | None = None
        self._new = not (self.append and self.path.exists() and self.path.stat().st_size)
        if _writes_files(self.network):
            self.path.parent.mkdir(parents=True, exist_ok=True)  # as ModelCheckpoint makes its folder
            if not self.append:
                self.path.write_text("")

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self._keys is None:
            self._keys = list(logs)
        if not _writes_files(self.network):
            return
        with self.path.open("a", newline="") as f:
            w = csv.writer(f, delimiter=self.sep)
            if self._new:
                w.writerow(["epoch", *self._keys])
                self._new = False
            w.writerow([epoch, *(_csv_value(logs.get(k, float("nan"))) for k in self._keys)])


def _csv_value(value: Any) -> str:
    """A log as CSVLogger writes it: a number exactly, a string as it is, another value as Keras does."""
    if isinstance(value, str):
        return value
    if isinstance(value, (numbers.Real, np.generic)) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return repr(float(value))
    if isinstance(value, (np.ndarray, list, tuple)):
        return f"[{', '.join(str(v) for v in np.asarray(value).ravel().tolist())}]"
    return str(value)


class TerminateOnNaN(Callback):
    """End training quietly at a NaN or infinite loss, as Keras's: ``fit`` returns its History.

    ``fit``'s guard refuses every step whose loss, gradients or update are not finite, whatever the callbacks:
    the weights stay those from before that batch. Without this callback ``fit`` then raises
    FloatingPointError (which carries the finished epochs' History as ``.history``); with it ``fit`` prints
    the reason, ends the epoch with the batches before it (its logs, ``on_epoch_end``, validation), runs
    ``on_train_end`` (so that ``EarlyStopping(restore_best_weights=True)`` restores) and returns the History.
    """

    #: ``fit`` ends training instead of raising when its guard refuses a step.
    ends_training_on_nan = True


__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
]
