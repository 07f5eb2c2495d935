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

    Attributes:
        network: the :class:`~neuro.models.Network` being trained (set by ``fit``); ``model`` is the same
            object under Keras's name.
    """

    network: Any = None

    @property
    def model(self) -> Any:
        """The model being trained (Keras's name for :attr:`network`)."""
        return self.network

    def set_network(self, network: Any) -> None:
        """Called by ``fit`` before training starts.

        Args:
            network: the network being trained.
        """
        self.network = network

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
            cb.set_network(network)
        self.wants_batch_logs = any(
            type(cb).on_batch_end is not Callback.on_batch_end for cb in self.callbacks
        )

    def __getattr__(self, hook: str) -> Callable[..., None]:
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args: Any) -> None:
            for cb in self.callbacks:
                getattr(cb, hook)(*args)

        return call


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

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


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
        restore_best_weights: at the stop (or the end of training), put back the weights of the best epoch.

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
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be a non-negative integer, got {patience!r}")
        self.patience = patience
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, logs: dict[str, float]) -> None:
        super().on_train_begin(logs)
        self.wait = 0
        self.best = self._worst()
        self.best_epoch: int | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        value = self._value(logs)
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.network.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.network.stop_training = True

    def on_train_end(self, logs: dict[str, float]) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.network.set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the network after an epoch.

    Args:
        filepath: file name (Keras's name; ``path`` is its old name, deprecated); ``{epoch}`` (1-based) and
            log names (``{val_loss:.4f}``) are filled in.
        monitor: the log that decides what is best (with ``save_best_only``).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (as for :class:`EarlyStopping`).
        save_best_only: save only when the monitored value improved.

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
    ) -> None:
        super().__init__(monitor, mode, 0.0)
        self.path = str(filepath)
        self.save_best_only = bool(save_best_only)
        self.compares = self.save_best_only  # without it every epoch is saved: no direction needed
        self.saved: list[str] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.save_best_only:
            value = self._value(logs)
            if not self._improved(value):
                return
            self.best = value
        try:
            target = self.path.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"path {self.path!r} names a field that is not logged ({exc}); logged: {sorted(logs)}"
            ) from None
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
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        if not isinstance(factor, (int, float)) or not 0 < factor < 1:
            raise ValueError(f"factor must be a number in (0, 1), got {factor!r}")
        self.factor, self.patience, self.min_lr = float(factor), int(patience), float(min_lr)

    def on_train_begin(self, logs: dict[str, float]) -> None:
        if callable(self.network.optimizer.learning_rate):
            raise TypeError("ReduceLROnPlateau needs a numeric learning_rate, got a schedule")
        super().on_train_begin(logs)
        self.wait = 0
        self.best = self._worst()  # each fit starts afresh, as Keras's

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        value = self._value(logs)
        logs["learning_rate"] = float(self.network.optimizer.learning_rate)  # this epoch's, as Keras logs it
        if self._improved(value):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                opt = self.network.optimizer
                opt.learning_rate = max(self.min_lr, opt.learning_rate * self.factor)
                self.wait = 0


class LearningRateScheduler(Callback):
    """Set the learning rate before each epoch from ``schedule(epoch, lr) -> new lr``.

    The epoch's rate is added to the logs as ``learning_rate``, as Keras 3 logs it.

    Args:
        schedule: a function of the 0-based epoch and the current rate; it returns a finite rate >= 0.

    Raises:
        TypeError: at the start of ``fit``, for an optimizer whose learning rate is a schedule (setting a
            number would drop it; Keras refuses it too).
        ValueError: for a rate the schedule returns that is negative or not finite.
    """

    def __init__(self, schedule: Callable[[int, float], float]) -> None:
        if not callable(schedule):
            raise TypeError(f"schedule must be callable, got {type(schedule).__name__}")
        self.schedule = schedule

    def on_train_begin(self, logs: dict[str, float]) -> None:
        if callable(self.network.optimizer.learning_rate):  # setting a rate would drop it (Keras refuses too)
            raise TypeError("LearningRateScheduler needs a numeric learning_rate, got a schedule")

    def on_epoch_begin(self, epoch: int, logs: dict[str, float]) -> None:
        opt = self.network.optimizer
        lr = float(self.schedule(epoch, opt.current_learning_rate()))
        if not (lr >= 0 and math.isfinite(lr)):
            raise ValueError(
                f"schedule must return a finite learning rate >= 0, got {lr!r} at epoch {epoch}"
            )
        opt.learning_rate = lr

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        logs["learning_rate"] = float(self.network.optimizer.learning_rate)


class CSVLogger(Callback):
    """Write one row per epoch (the epoch and every log) to a CSV file.

    Args:
        filename: the file (Keras's name; ``path`` is its old name, deprecated).
        append: add to an existing file instead of replacing it.

    Attributes:
        path: the file.
    """

    renamed_keywords = {"path": "filename"}

    def __init__(self, filename: str | os.PathLike, append: bool = False) -> None:
        self.path = pathlib.Path(filename)
        self.append = bool(append)

    def on_train_begin(self, logs: dict[str, float]) -> None:
        self._keys: list[str] | None = None
        self._new = not (self.append and self.path.exists() and self.path.stat().st_size)
        if not self.append and _writes_files(self.network):
            self.path.write_text("")

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self._keys is None:
            self._keys = list(logs)
        if not _writes_files(self.network):
            return
        with self.path.open("a", newline="") as f:
            w = csv.writer(f)
            if self._new:
                w.writerow(["epoch", *self._keys])
                self._new = False
            w.writerow([epoch, *(repr(float(logs.get(k, float("nan")))) for k in self._keys)])


class TerminateOnNaN(Callback):
    """Documents ``fit``'s own behaviour, kept in every run: a NaN or inf loss, gradient or update stops
    training with FloatingPointError and the weights from before that batch. Adding it changes nothing."""


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
