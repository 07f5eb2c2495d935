"""The sequential :class:`Network`: add layers, fit, evaluate, predict, move between devices."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from neuro import _validation as check
from neuro import backend, registry
from neuro import head as head_mod
from neuro import losses as losses_mod
from neuro import metrics as metrics_mod
from neuro import optimizers as optimizers_mod
from neuro import regularizers as regularizers_mod
from neuro.data.dataset import DataSet, Split
from neuro.layers.base import Layer


class History:
    """What :meth:`Network.fit` returns.

    Attributes:
        history: per-epoch values by name: ``"loss"``, each metric, and ``"val_"``-prefixed ones when
            validation data was given.
        epoch: the epoch numbers (0-based).
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        """Record one epoch.

        Args:
            epoch: the 0-based epoch number.
            logs: its values by name.
        """
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def plot(self, path: str | Any) -> None:
        """Write a PNG of the learning curves: one panel per quantity (the loss and each metric), with the
        training values and, when there are any, the validation values.

        Args:
            path: the PNG file to write.

        Raises:
            ImportError: when matplotlib (the ``plot`` extra) is missing.
            ValueError: when the history is empty.
        """
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError(
                "History.plot needs matplotlib: pip install 'neuro[plot]' (or pip install matplotlib)"
            ) from exc
        names = [k for k in self.history if not k.startswith("val_")]
        if not names:
            raise ValueError("the history is empty: nothing to plot")
        epochs = [e + 1 for e in self.epoch]
        fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
        marker = "o" if len(epochs) <= 50 else None  # a dot per epoch only while they can be told apart
        for ax, name in zip(axes[0], names, strict=True):
            ax.plot(epochs, self.history[name], marker=marker, label="training")
            if f"val_{name}" in self.history:
                ax.plot(epochs, self.history[f"val_{name}"], marker=marker, label="validation")
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
        plt.close(fig)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


@registry.register(family="model")
class Network:
    """A sequential network.

    Args:
        input_shape: shape of one sample, without the batch axis: ``(features,)`` or ``(H, W, C)``.
        loss: a loss name or object (see :mod:`neuro.losses`).
        optimizer: an optimizer name or object (see :mod:`neuro.optimizers`).
        regularizer: optional :class:`~neuro.regularizers.L1` / :class:`~neuro.regularizers.L2`, applied to
            every layer's kernel.
        seed: seeds every random choice (initial weights, shuffling, dropout masks): the same seed gives a
            bitwise identical training run on the same machine, device and thread count.
        device: where the network computes: ``"numpy"`` (the default), ``"cupy"`` or ``"strict"`` (see
            :mod:`neuro.backend`); :meth:`to` moves it later.

    The network computes in the dtype that is current when it is created (float32 unless
    :func:`neuro.set_dtype` or :class:`neuro.backend.dtype_scope` says otherwise); its data are converted
    to it, and it keeps it when saved and loaded.

    Data given as NumPy arrays is checked on the host and moved to the network's device one batch at a
    time; :meth:`predict` returns arrays on the network's device (``neuro.backend.to_numpy`` fetches them).
    Predicting is safe from other threads while ``fit`` runs: it sees the weights between two steps.

    Example:
        >>> from neuro import Network, Dense, Adam
        >>> net = Network((64,), "softmax_crossentropy", Adam(1e-3), seed=0)
        >>> net.add(Dense(32, "relu")).add(Dense(10, "softmax"))  # doctest: +ELLIPSIS
        <neuro.models.Network object at ...>
    """

    def __init__(
        self,
        input_shape: Sequence[int] | int,
        loss: Any,
        optimizer: Any,
        regularizer: Any = None,
        seed: int | None = None,
        device: str = "numpy",
    ) -> None:
        self.input_shape = check.shape_tuple(input_shape, "input_shape")
        self.loss = losses_mod.get(loss)
        self.optimizer = optimizers_mod.get(optimizer)
        self.regularizer = regularizers_mod.get(regularizer)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an integer or None, got {seed!r}")
        if getattr(self.optimizer, "_network", None) is not None:
            raise ValueError(
                "optimizer already trains another Network and its state (moments, step count) belongs "
                "to that one; give each network its own optimizer"
            )
        self.seed = None if seed is None else int(seed)
        #: The dtype of every parameter and of the data the network computes on.
        self.dtype = np.dtype(backend.get_dtype()).type
        #: The host generator: initial weights, shuffling, and dropout masks on NumPy and the strict device.
        self.rng = np.random.default_rng(seed)
        self.xp: ModuleType = backend.get_device(device)
        self._device_rng = backend.DeviceRNG(self.xp, self.rng)
        self.layers: list[Layer] = []
        #: Optional names of the classes, used by :meth:`predict_class`.
        self.class_names: list[str] | None = None
        #: Optional :class:`neuro.data.Scaler` objects applied to inputs (and inverted on outputs).
        self.input_scaler: Any = None
        self.output_scaler: Any = None
        self._head: head_mod.Head | None = None
        self._lock = threading.RLock()  # one training step, or one predicted batch, at a time
        self._fitting = False
        self._train_head: head_mod.Head | None = None  # fit's head when class_weight changes the loss
        self.stop_training = False
        self._dist: Any = None  # a neuro.distributed.FitContext while a distributed fit runs
        self.optimizer._network = True  # last: a Network that failed to be made does not take it

    # -- building ---------------------------------------------------------------------------------------
    def add(self, layer: Layer) -> Network:
        """Append a layer, building it for the current output shape; returns the network (chainable).

        Args:
            layer: a new, unbuilt layer.

        Returns:
            The network itself.

        Raises:
            TypeError: when ``layer`` is not a Layer.
            ValueError: when the layer cannot take the previous layer's output, or training has started.
        """
        if not isinstance(layer, Layer):
            raise TypeError(f"layer must be a neuro Layer, got {type(layer).__name__}")
        if layer.built:
            raise ValueError(f"layer {layer.name!r} is already part of a network; create a new one")
        if self._fitting or self.optimizer.iterations or self.optimizer.slots:
            raise ValueError(
                f"cannot add {type(layer).__name__} after training started: the optimizer holds state for "
                f"{len(self.optimizer.slots)} parameters at step {self.optimizer.iterations}; "
                "build the whole network before fit"
            )
        return self._append(layer, initialize=True)

    def _append(self, layer: Layer, initialize: bool) -> Network:
        """Build ``layer`` for the current output shape and append it (a loader passes ``initialize=False``
        and fills the arrays itself)."""
        shape = self.output_shape
        try:
            layer.build(shape, self.rng, self.dtype, self.xp, initialize=initialize)
        except ValueError as exc:
            raise ValueError(
                f"cannot add {type(layer).__name__} (layer {len(self.layers)}) after output shape "
                f"{shape}: {exc}"
            ) from exc
        layer.need_input_grad = bool(self.layers)
        self.layers.append(layer)
        self._head = None
        return self

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one output sample (the input shape while the network is empty)."""
        return self.layers[-1].output_shape if self.layers else self.input_shape

    @property
    def params(self) -> list[Any]:
        """All trainable arrays, in layer order."""
        return [p for layer in self.layers for p in layer.params.values()]

    @property
    def grads(self) -> list[Any]:
        """Gradients of the last batch, matching :attr:`params`."""
        return [layer.grads[k] for layer in self.layers for k in layer.params]

    @property
    def head(self) -> head_mod.Head:
        """The output head (how the last activation meets the loss), chosen once the layers are known."""
        if self._head is None:
            self._head = head_mod.choose(self.layers, self.loss)
        return self._head

    @property
    def device(self) -> str:
        """The device the network lives on: ``"numpy"``, ``"cupy"`` or ``"strict"``."""
        return backend.device_name(self.xp)

    def to(self, device: str) -> Network:
        """Move the network as a whole (params, grads, buffers, optimizer state, scratch space) to a device.

        Args:
            device: ``"numpy"`` / ``"cpu"``, ``"cupy"`` / ``"gpu"`` / ``"cuda"`` or ``"strict"``.

        Returns:
            The network itself.

        Raises:
            ValueError: for an unknown device.
            RuntimeError: while ``fit`` is running (for example from a callback).
            ImportError: when CuPy is asked for but missing.
        """
        xp = backend.get_device(device)
        if self._fitting:
            raise RuntimeError(
                f"cannot move the network to {device!r} while fit is running on {self.device!r}; "
                "move it before or after fit"
            )
        with self._lock:
            for layer in self.layers:
                layer.to(xp)
            self.optimizer.to(xp)
            self.xp = xp
            self._device_rng = backend.DeviceRNG(xp, self.rng)
        return self

    # -- one batch ----------------------------------------------------------------------------------------
    def _device_batch(self, x: Any, what: str = "x") -> Any:
        """A host batch moved to the network's device (device arrays must be on it already)."""
        xp = backend.get_array_module(x)
        if xp is not np and xp is not self.xp:
            raise backend.DeviceMismatchError(
                f"{what} is on device {backend.device_name(xp)!r} but the network is on {self.device!r}; "
                "give NumPy arrays or move the network with net.to()"
            )
        return x if xp is self.xp else backend.to_device(x, self.xp)

    def _penalty(self) -> Any:
        reg = self.regularizer
        terms = (
            [reg.penalty(layer.params[k]) for layer in self.layers for k in layer.regularizable]
            if reg
            else []
        )
        if not terms:
            return 0.0
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        return total

    def _add_regularizer_grads(self) -> None:
        reg = self.regularizer
        if reg is not None:
            for layer in self.layers:
                for k in layer.regularizable:
                    reg.add_gradient(layer.params[k], layer.grads[k])

    def _forward_backward(self, xb: Any, yb: Any) -> tuple[Any, Any, Any]:
        """Training forward and backward of one device batch; returns ``(pred, total, denom)``."""
        head = self._train_head or self.head
        out, pred, ctxs = head.forward(xb, True, self._device_rng)
        total, denom = head.terms(out, yb)
        head.backward(out, pred, yb, ctxs)
        self._add_regularizer_grads()
        return pred, total, denom

    def compute_gradients(self, x: Any, y: Any) -> float:
        """Run forward and backward on one batch in training mode, filling every layer's ``grads``.

        Args:
            x: inputs ``(N, *input_shape)``.
            y: targets, as for :meth:`fit`.

        Returns:
            The loss of the batch, regularization included: the value whose gradient was computed.
        """
        x, y = self._check_data(x, y)
        _, total, denom = self._forward_backward(self._device_batch(x), self._device_batch(y, "y"))
        loss = losses_mod._quotient(total, denom)
        return loss + float(backend.to_numpy(self._penalty())) if self.regularizer else loss

    def train_step(self, xb: Any, yb: Any) -> tuple[Any, Any, Any]:
        """One guarded training step on a checked batch: forward, backward, update.

        Everything that can go wrong numerically is found with one read from the device: the loss, the sum
        of the gradients, and the sums of the new parameters, optimizer state and buffers. If any is not
        finite, nothing is changed (parameters, buffers and optimizer state stay bitwise as they were) and
        FloatingPointError is raised.

        Args:
            xb: a checked batch of inputs on the network's device.
            yb: its targets, on the network's device.

        Returns:
            ``(pred, total, denom)``: the predictions and the loss terms of the batch (regularization
            included), on the device.
        """
        xp = self.xp
        # a failing step overflows on purpose: the guard reports it, NumPy's warnings would only repeat it
        with self._lock, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            saved = _snapshot_buffers(self.layers)
            try:
                if self._dist is None:
                    pred, total, denom = self._forward_backward(xb, yb)
                else:  # data parallel: the ranks' gradients, loss terms and buffers combined (one Allreduce)
                    pred, total, denom = self._dist.forward_backward(xb, yb, saved)
                if self.regularizer is not None:
                    total = total + self._penalty() * denom  # the penalty weighs as the batch does
                loss = _divide(total, denom, xp)
                probe = self.optimizer.stage(self.params, self.grads)
                if probe is None:  # a network without parameters
                    probe = xp.zeros((), dtype=np.float64)
                flags = xp.isfinite(
                    xp.stack(
                        [
                            xp.asarray(loss, dtype=np.float64),
                            probe.astype(np.float64),
                            _buffer_probe(self.layers, xp),
                        ]
                    )
                )
                ok = backend.to_numpy(flags)  # the one read of the step
                if not ok.all() and not (ok[0] and ok[2] and self.optimizer.staged_finite()):
                    if not ok[0]:
                        raise FloatingPointError(f"loss became {float(backend.to_numpy(loss))}")
                    if not ok[2]:
                        raise FloatingPointError("the batch made a buffer (running statistics) non-finite")
                    if not _all_finite(self.grads, xp):
                        raise FloatingPointError("gradients became non-finite")
                    raise FloatingPointError("the update made the weights or the optimizer state non-finite")
            except BaseException:
                _restore_buffers(self.layers, saved)  # whatever stopped the step, it changed nothing
                raise
            self.optimizer.commit(self.params)
        return pred, total, denom

    # -- data checks ------------------------------------------------------------------------------------
    def _check_data(self, x: Any, y: Any, name: str = "") -> tuple[Any, Any]:
        if y is None:
            raise TypeError(f"{name}y must be given with arrays {name}x (only a data set holds its targets)")
        x = self._prepare_x(x, f"{name}x")
        return x, self._prepare_y(y, len(x), f"{name}y")

    def _prepare_y(self, y: Any, n: int, name: str) -> Any:
        """Check targets against the loss and the output shape (and apply the output scaling)."""
        y = check.targets(y, n, self.output_shape, self.loss.categorical, name=name, dtype=self.dtype)
        if isinstance(self.loss, losses_mod.BinaryCrossEntropy):
            check.unit_interval(y, name)
        if self.output_scaler is not None and not self.loss.categorical:
            if backend.get_array_module(y) is not np:
                y = backend.to_numpy(y)
            y = self.output_scaler.transform(y).astype(self.dtype, copy=False)
        return y

    # -- training ---------------------------------------------------------------------------------------
    def fit(
        self,
        x: Any,
        y: Any = None,
        batch_size: int = 32,
        epochs: int = 1,
        validation_data: tuple[Any, Any] | None = None,
        shuffle: bool = True,
        metrics: Iterable[Any] | None = None,
        verbose: int = 1,
        validation_split: float = 0.0,
        callbacks: Sequence[Any] | None = None,
        initial_epoch: int = 0,
        class_weight: dict[int, float] | None = None,
        distributed: Any = False,
    ) -> History:
        """Train the network.

        Args:
            x: inputs ``(N, *input_shape)``, or a :class:`~neuro.data.DataSet` (trained on its ``train``
                split, validated on its ``valid`` split; its class names and scalers become the network's),
                or a data set split. Data sets are read one batch at a time, augmented in training only.
            y: targets: class ids ``(N,)`` or rows ``(N, C)`` for categorical losses, the output shape
                otherwise; ``None`` with a data set.
            batch_size: samples per update (> 0); the last batch of an epoch may be smaller.
            epochs: the epoch to stop before (> ``initial_epoch``), as in Keras.
            validation_data: optional ``(x_val, y_val)`` evaluated after each epoch.
            shuffle: reshuffle the samples (a seeded permutation of indices) before each epoch.
            metrics: metric names or objects, computed over the whole epoch (see :mod:`neuro.metrics`);
                ``None`` means accuracy for the categorical losses and single-output binary cross-entropy,
                binary_accuracy for binary cross-entropy with several outputs, and none for regression.
            verbose: 0 silent; 1 a progress bar per epoch on a terminal (one line per epoch otherwise);
                2 one line per epoch.
            validation_split: fraction in [0, 1) of the samples, taken from the end before shuffling (as
                Keras), held out for validation instead of ``validation_data``.
            callbacks: :class:`neuro.callbacks.Callback` objects called around epochs and batches.
            initial_epoch: the epoch to start at (to resume a run).
            class_weight: ``{class id: weight}`` for the training loss of a categorical loss (classes left
                out weigh 1; multiplied into the loss's own ``class_weights``); the batch loss is then the
                weighted mean ``Σ w·l / Σ w`` (PyTorch's ``weight``). Validation and ``evaluate`` use the
                loss as given.
            distributed: ``True`` (or a :class:`neuro.distributed.Options`) trains data-parallel over the
                processes of ``mpiexec -n P python script.py``, every one calling ``fit`` with the same
                arguments: rank 0's state is broadcast, each global batch of ``batch_size`` samples (from
                one permutation seeded by the seed, epoch and step) is split in P contiguous parts, each
                rank reads and computes its part, and one Allreduce per step gives every rank the
                gradient of the global batch's mean loss, so all ranks stay identical. Losses and metrics
                are reduced exactly; rank 0 alone prints, and ``save`` (so ModelCheckpoint) writes from
                rank 0 only. Without a launcher it runs the same way as one process. Needs
                ``pip install 'neuro[mpi]'``; see :mod:`neuro.distributed`.

        Returns:
            A :class:`History` with the per-epoch loss and metrics (``val_`` ones for validation data).

        Raises:
            FloatingPointError: when the loss, the gradients or the update become NaN or inf; the
                parameters, buffers and optimizer state are exactly those from before the batch.
            ImportError: ``distributed`` without mpi4py.
            ValueError: ``distributed``, on every rank, when the ranks' networks or data sizes differ.
            neuro.distributed.DistributedError: ``distributed``, when another rank failed in a step.
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
        self.head  # noqa: B018 - raises for a network without layers
        train, valid = self._training_sources(x, y, validation_data, split)
        from neuro.callbacks import CallbackList

        cbs = CallbackList(callbacks, self)
        self._train_head = self._weighted_head(class_weight)
        metric_objs = self._metrics(metrics)
        n = len(train)
        n_batches = -(-n // batch_size)
        history = History()
        if distributed:  # data parallel over MPI: the run's batches, reductions and stops go through MPI
            fit_args = {"epochs": epochs, "initial_epoch": initial_epoch, "shuffle": shuffle}
            fit_args.update(class_weight=class_weight, batch_logs=cbs.wants_batch_logs)
            run: Any = distributed_mod.FitContext(
                self, distributed, train, valid, batch_size, fit_args, metric_objs, cbs.callbacks
            )
            verbose = verbose if run.is_main else 0
        else:
            run = _LocalRun(self, batch_size, metric_objs)
        metric_objs = run.metrics
        bar_ok = verbose == 1 and sys.stdout.isatty()
        self.stop_training = False
        self._fitting = True
        try:
            cbs.on_train_begin({})
            for epoch in range(initial_epoch, epochs):
                start = time.perf_counter()
                for m in metric_objs:
                    m.reset()
                cbs.on_epoch_begin(epoch, {})
                batches = run.batches(train, epoch, shuffle)
                loss_sum: Any = 0.0
                loss_den: Any = 0.0
                bar = _progress(n, epoch, epochs) if bar_ok else None
                for b, (xb, yb) in enumerate(batches):
                    cbs.on_batch_begin(b, {})
                    yb = self._device_batch(yb, "y")
                    try:
                        pred, total, denom = self.train_step(self._device_batch(xb), yb)
                    except FloatingPointError as exc:
                        if bar is not None:
                            bar.close()
                        raise FloatingPointError(
                            f"{exc} at epoch {epoch + 1}, batch {b + 1}; training stopped and the weights "
                            "are those from before this batch"
                        ) from None
                    loss_sum = loss_sum + total
                    loss_den = loss_den + denom
                    for m in metric_objs:
                        m.update(pred, yb)
                    if cbs.wants_batch_logs:
                        run.sync_metrics()
                        cbs.on_batch_end(b, _epoch_logs(loss_sum, loss_den, metric_objs))
                    if bar is not None:
                        bar.update(run.batch_samples)
                        if b % 10 == 0 or b == n_batches - 1:
                            bar.set_postfix_str(
                                _format_logs(_epoch_logs(loss_sum, loss_den, metric_objs)), refresh=False
                            )
                    if run.stop_after_batch():
                        break
                run.sync_metrics()
                logs = _epoch_logs(loss_sum, loss_den, metric_objs)
                if valid is not None:
                    logs.update({f"val_{k}": v for k, v in run.evaluate(valid, batch_size).items()})
                if bar is not None:
                    bar.set_postfix_str(_format_logs(logs), refresh=True)
                    bar.close()
                elif verbose:
                    took = time.perf_counter() - start
                    print(f"Epoch {epoch + 1}/{epochs} - {took:.1f}s - {_format_logs(logs)}", flush=True)
                cbs.on_epoch_end(epoch, logs)
                history.append(epoch, logs)  # last, as Keras's History: it sees what callbacks added
                if run.stop_after_epoch():
                    break
            cbs.on_train_end({})
        except BaseException as exc:
            run.fail(exc)  # distributed: returns when every rank raises, else aborts every rank
            raise
        finally:
            run.close()
            self._fitting = False
            self._train_head = None
        return history

    def _weighted_head(self, class_weight: Any) -> head_mod.Head | None:
        """The training head of a loss with ``class_weight`` (``None`` when there is none)."""
        if class_weight is None:
            return None
        if not self.loss.categorical:
            raise ValueError(
                "class_weight needs a categorical loss (CrossEntropy, SoftmaxCrossEntropy), "
                f"got {self.loss!r}"
            )
        n = int(np.prod(self.output_shape))
        if not isinstance(class_weight, dict) or not all(
            isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 0 <= k < n for k in class_weight
        ):
            raise ValueError(
                f"class_weight must map class ids in [0, {n - 1}] to weights, got {class_weight!r}"
            )
        own = self.loss.class_weights
        weights = np.ones(n) if own is None else np.array(own, dtype=np.float64)
        for k, w in class_weight.items():
            weights[int(k)] *= w  # on top of the loss's own class weights, as Keras's sample weights
        cfg = {**self.loss.get_config(), "class_weights": weights.tolist()}
        return head_mod.choose(self.layers, type(self.loss).from_config(cfg))

    # -- inference --------------------------------------------------------------------------------------
    def evaluate(
        self,
        x: Any,
        y: Any = None,
        batch_size: int = 256,
        metrics: Iterable[Any] | None = None,
        verbose: int = 0,
    ) -> dict[str, float]:
        """Return the loss (regularization included) and metrics over the whole set, in inference mode.

        Args:
            x: inputs ``(N, *input_shape)``, a data set split, or a :class:`~neuro.data.DataSet` (its test
                split).
            y: targets, as for :meth:`fit` (``None`` with a data set).
            batch_size: samples per forward pass.
            metrics: as for :meth:`fit` (``None``: accuracy, or binary_accuracy for several sigmoid
                outputs, for the classification losses; none for regression).
            verbose: 0 silent; 1 prints the results in one line.

        With an ``output_scaler`` (from a data set), the loss and metrics are those of the scaled targets the
        network was trained on; ``predict`` returns original units.

        Returns:
            ``{"loss": value, metric name: value, ...}``.
        """
        batch_size = check.positive_int(batch_size, "batch_size")
        if verbose not in (0, 1):
            raise ValueError(f"verbose must be 0 or 1, got {verbose!r}")
        self.head  # noqa: B018 - raises for a network without layers
        logs = self._evaluate_source(self._eval_source(x, y), batch_size, self._metrics(metrics))
        if verbose:
            print(_format_logs(logs), flush=True)
        return logs

    def _metrics(self, metrics: Iterable[Any] | None) -> list[Any]:
        if metrics is None:
            if self.loss.categorical:
                metrics = ("accuracy",)
            elif isinstance(self.loss, losses_mod.BinaryCrossEntropy):
                # one output: the accuracy of the classes; several: the fraction of right labels
                metrics = ("accuracy",) if self.output_shape == (1,) else ("binary_accuracy",)
            else:
                metrics = ()
        if isinstance(metrics, (str, metrics_mod.Metric)):
            metrics = (metrics,)
        return [metrics_mod.get(m) for m in metrics]

    def _evaluate_source(self, source: Any, batch_size: int, metric_objs: list[Any]) -> dict[str, float]:
        total, denom = self._evaluation_sums(source, batch_size, metric_objs)
        return _epoch_logs(total + self._penalty() * denom, denom, metric_objs)

    def _evaluation_sums(self, source: Any, batch_size: int, metric_objs: list[Any]) -> tuple[Any, Any]:
        """Run ``source`` in inference mode: reset and update the metrics, return the loss terms' sums (on
        the device, regularization not included)."""
        for m in metric_objs:
            m.reset()
        total: Any = 0.0
        denom: Any = 0.0
        head = self.head
        for xb, yb in source.batches(np.arange(len(source)), batch_size):
            xb, yb = self._device_batch(xb), self._device_batch(yb, "y")
            with self._lock:
                out, pred, _ = head.forward(xb, False)
            t, d = head.terms(out, yb)
            total = total + t
            denom = denom + d
            for m in metric_objs:
                m.update(pred, yb)
        return total, denom

    # -- data sources -------------------------------------------------------------------------------------
    def _training_sources(self, x: Any, y: Any, validation_data: Any, split: float) -> tuple[Any, Any]:
        """The training and validation sources of ``fit``; a data set also hands over its class names and
        scalers."""
        if isinstance(x, DataSet):
            if y is not None:
                raise ValueError("y must be None when x is a DataSet (it holds the targets)")
            if split:
                raise ValueError("validation_split does not apply to a DataSet; give it a valid_frac instead")
            if self.class_names is None and x.class_names is not None:
                self.class_names = list(x.class_names)
            if x.input_scaler is not None or x.output_scaler is not None:
                self.input_scaler, self.output_scaler = x.input_scaler, x.output_scaler
            train = _SplitSource(x.train, self)
            if validation_data is None and len(x.valid):
                return train, _SplitSource(x.valid, self)
        elif isinstance(x, Split):
            if y is not None:
                raise ValueError("y must be None when x is a data set split (it holds the targets)")
            if split:
                raise ValueError("validation_split does not apply to a data set split; pass validation_data")
            train = _SplitSource(x, self)
        else:
            x, y = self._check_data(x, y)
            if split:
                if validation_data is not None:
                    raise ValueError("give validation_data or validation_split, not both")
                n_val = int(len(x) * split)
                if n_val < 1 or n_val >= len(x):
                    raise ValueError(
                        f"validation_split={split} leaves {len(x) - n_val} training and {n_val} "
                        f"validation samples of {len(x)}; both must be at least 1"
                    )
                return _ArraySource(x[:-n_val], y[:-n_val]), _ArraySource(x[-n_val:], y[-n_val:])
            train = _ArraySource(x, y)
        if validation_data is None:
            return train, None
        if isinstance(validation_data, Split):
            return train, _SplitSource(validation_data, self)
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a tuple (x_val, y_val) or a data set split")
        return train, _ArraySource(*self._check_data(*validation_data, name="val_"))

    def _eval_source(self, x: Any, y: Any) -> Any:
        """What ``evaluate`` reads: arrays, a split, or a data set's test split."""
        if isinstance(x, DataSet):
            if x.test is None:
                raise ValueError("x is a DataSet without a test split; pass a split (data.valid) or arrays")
            x = x.test
        if isinstance(x, Split):
            if y is not None:
                raise ValueError("y must be None when x is a data set split (it holds the targets)")
            return _SplitSource(x, self)
        return _ArraySource(*self._check_data(x, y))

    def _prepare_x(self, x: Any, name: str = "x") -> Any:
        """Check inputs and bring them to the network's dtype (and input scaling)."""
        x = check.features(x, self.input_shape, name=name, dtype=self.dtype)
        if self.input_scaler is not None:
            if backend.get_array_module(x) is not np:
                x = backend.to_numpy(x)
            x = self.input_scaler.transform(x).astype(self.dtype, copy=False)
        return x

    def predict(self, x: Any, batch_size: int = 256, verbose: int = 0) -> Any:
        """Return the network's predictions for ``x``, computed in inference mode in batches.

        For a network trained with SoftmaxCrossEntropy on a linear output these are the softmax
        probabilities (the loss's softmax is part of the model), as they are with a Softmax output.
        Nothing is stored on the layers, so any thread may predict, also while another one trains.

        Args:
            x: inputs ``(N, *input_shape)``, NumPy or on the network's device.
            batch_size: samples per forward pass.
            verbose: 0 silent; 1 prints the number of samples predicted.

        Shape:
            ``(N, *input_shape)`` → ``(N, *output_shape)``.

        Returns:
            The predictions, on the network's device (``neuro.backend.to_numpy`` fetches them).
        """
        batch_size = check.positive_int(batch_size, "batch_size")
        head = self.head
        link = head.loss.link if isinstance(head, head_mod.LinkHead) else None
        layers = self.layers
        if isinstance(x, DataSet):
            raise TypeError("x is a DataSet: predict on one of its splits (data.test) or on arrays")
        if isinstance(x, Split):
            x = x.arrays()[0]
        x = self._prepare_x(x)

        def run(xb: Any) -> Any:
            # in inference a fused output activation is just applied: only the loss needs the logits
            with self._lock:
                for layer in layers:
                    xb = layer(xb)
            return xb if link is None else link(xb)

        if len(x) <= batch_size:
            out = run(self._device_batch(x))
        else:
            out = self.xp.concatenate(
                [run(self._device_batch(x[s : s + batch_size])) for s in range(0, len(x), batch_size)]
            )
        if self.output_scaler is not None:  # back to the original units, on the device
            a = backend.to_device(self.output_scaler.a.astype(self.dtype), self.xp)
            b = backend.to_device(self.output_scaler.b.astype(self.dtype), self.xp)
            out = out * b + a
        if verbose:
            print(f"predicted {len(x)} samples", flush=True)
        return out

    def predict_class(self, x: Any, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(classes, probabilities)`` for ``x``, as NumPy arrays.

        Args:
            x: inputs, as for :meth:`predict`.
            batch_size: samples per forward pass.

        ``classes`` are class ids ``(N,)`` (or the names in :attr:`class_names` when set);
        ``probabilities`` is the probability of each chosen class. A single sigmoid output is read as the
        probability of class 1.
        """
        p = backend.to_numpy(self.predict(x, batch_size)).reshape(len(x), -1)
        if p.shape[1] == 1:
            ids = (p[:, 0] >= 0.5).astype(np.int64)
            prob = np.where(ids == 1, p[:, 0], 1 - p[:, 0])
        else:
            ids = p.argmax(axis=1)
            prob = p[np.arange(len(p)), ids]
        if self.class_names is not None:
            return np.asarray(self.class_names, dtype=object)[ids], prob
        return ids, prob

    # -- weights ----------------------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """Copies of every layer's params, then its buffers, in layer order, as NumPy arrays."""
        return [
            np.array(backend.to_numpy(a))
            for layer in self.layers
            for a in (*layer.params.values(), *layer.buffers.values())
        ]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the arrays :meth:`get_weights` returns, checking their number and shapes.

        Args:
            weights: one array per param and buffer, in the order of :meth:`get_weights`.

        Raises:
            ValueError: for a wrong count or shape.
        """
        targets = [
            (layer, store, k)
            for layer in self.layers
            for store in (layer.params, layer.buffers)
            for k in store
        ]
        weights = list(weights)
        if len(weights) != len(targets):
            raise ValueError(f"weights must be a list of {len(targets)} arrays, got {len(weights)}")
        host = [np.asarray(backend.to_numpy(w)) for w in weights]
        for i, ((layer, store, k), w) in enumerate(zip(targets, host, strict=True)):
            if w.shape != tuple(store[k].shape):
                raise ValueError(
                    f"weights[{i}] ({layer.name}.{k}) must have shape {tuple(store[k].shape)}, got {w.shape}"
                )
        with self._lock:
            for (_layer, store, k), w in zip(targets, host, strict=True):
                store[k][...] = backend.to_device(w.astype(store[k].dtype), self.xp)

    # -- files ----------------------------------------------------------------------------------------------
    def save(self, path: str | Any) -> None:
        """Write the network (weights, optimizer and generator state) to HDF5; see :mod:`neuro.io`.

        During a distributed ``fit`` only rank 0 writes; on the other ranks this does nothing.

        Args:
            path: the file to write (replaced atomically).
        """
        if self._dist is not None and not self._dist.is_main:
            return
        from neuro import io

        io.save(self, path)

    @classmethod
    def load(
        cls, path: str | Any, custom_objects: dict[str, type] | None = None, device: str = "numpy"
    ) -> Network:
        """Read a network written by :meth:`save` onto ``device``; see :func:`neuro.io.load`.

        Args:
            path: the HDF5 file.
            custom_objects: classes of your own by class name (not needed for registered ones).
            device: the device to put the network on.

        Returns:
            The network, predicting as the saved one and ready to resume training.

        Raises:
            neuro.ModelFileError: for any problem with the file's contents.
        """
        from neuro import io

        return io.load(path, custom_objects, device=device, network_class=cls)

    def export_onnx(self, path: str | Any, *, opset: int = 17, scalers: bool = True) -> None:
        """Write an ONNX inference graph of the network (needs the ``onnx`` extra); see :mod:`neuro.onnx`.

        Args:
            path: the ``.onnx`` file to write.
            opset: the ONNX opset (13 or newer).
            scalers: include the input and output scaling, so that the graph computes what ``predict`` does.
        """
        from neuro import onnx

        onnx.export(self, path, opset=opset, scalers=scalers)

    # -- description ------------------------------------------------------------------------------------
    def summary(self, print_fn: Any = print) -> str:
        """Print and return a table of layers, output shapes and parameter counts.

        Args:
            print_fn: called with the table (``None`` to skip printing).

        Returns:
            The table as text.
        """
        rows = [("Layer (type)", "Output shape", "Params")]
        for i, layer in enumerate(self.layers):
            rows.append(
                (
                    f"{layer.name}_{i} ({type(layer).__name__})",
                    str((None, *layer.output_shape)),
                    f"{layer.count_params():,}",
                )
            )
        widths = [max(len(r[c]) for r in rows) for c in range(3)]
        line = "-" * (sum(widths) + 6)
        fmt = f"{{:<{widths[0]}}}   {{:<{widths[1]}}}   {{:>{widths[2]}}}"
        trainable = sum(layer.count_params() for layer in self.layers)
        frozen = sum(int(np.prod(b.shape)) for layer in self.layers for b in layer.buffers.values())
        out = [
            f"Network: input {(None, *self.input_shape)}, loss {self.loss!r}, "
            f"optimizer {type(self.optimizer).__name__}, device {self.device}",
            line,
            fmt.format(*rows[0]),
            line,
            *(fmt.format(*r) for r in rows[1:]),
            line,
            f"Total params: {trainable + frozen:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {frozen:,}",
        ]
        text = "\n".join(out)
        if print_fn is not None:
            print_fn(text)
        return text

    def __str__(self) -> str:
        return self.summary(print_fn=None)


# -- helpers -------------------------------------------------------------------------------------------------
def _divide(total: Any, denom: Any, xp: Any) -> Any:
    """total / denom on the device (NaN for a zero denominator, as PyTorch gives for all-zero weights)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if backend.is_array(denom):
            return total / denom
        return total / denom if denom else total * np.nan


def _epoch_logs(loss_sum: Any, loss_den: Any, metric_objs: list[Any]) -> dict[str, float]:
    """Read the accumulated loss and metrics from the device: the loss in one read, each metric in one."""
    if backend.is_array(loss_sum) or backend.is_array(loss_den):
        xp = backend.get_array_module(loss_sum, loss_den)
        pair = backend.to_numpy(
            xp.stack([xp.asarray(loss_sum, dtype=np.float64), xp.asarray(loss_den, dtype=np.float64)])
        )
        total, den = float(pair[0]), float(pair[1])
    else:
        total, den = float(loss_sum), float(loss_den)
    logs = {"loss": total / den if den else float("nan")}
    for m in metric_objs:
        logs[m.name] = float(m.result())
    return logs


def _format_logs(logs: dict[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


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


def _snapshot_buffers(layers: list[Layer]) -> list[dict[str, Any]] | None:
    if not any(layer.buffers for layer in layers):
        return None
    return [{k: v.copy() for k, v in layer.buffers.items()} for layer in layers]


def _buffer_probe(layers: list[Layer], xp: Any) -> Any:
    """1.0 when every buffer value is finite, else NaN (buffers are small: each checked exactly)."""
    checks = [xp.isfinite(v).all() for layer in layers for v in layer.buffers.values()]
    if not checks:
        return xp.ones((), dtype=np.float64)
    return xp.where(xp.stack(checks).all(), 1.0, np.nan).astype(np.float64)


def _all_finite(arrays: list[Any], xp: Any) -> bool:
    """Exact check that every element is finite (one read; used only to explain a failed step)."""
    if not arrays:
        return True
    return bool(backend.to_numpy(xp.stack([xp.isfinite(a).all() for a in arrays]).all()))


def _restore_buffers(layers: list[Layer], saved: list[dict[str, Any]] | None) -> None:
    if saved is None:
        return
    for layer, bufs in zip(layers, saved, strict=True):
        for k, v in bufs.items():
            layer.buffers[k][...] = v


class _LocalRun:
    """How one process runs ``fit``: the same interface as :class:`neuro.distributed.FitContext`, which
    replaces it in a data-parallel run (batches, metric and stop synchronisation, validation, failure)."""

    is_main = True

    def __init__(self, network: Network, batch_size: int, metrics: list[Any]) -> None:
        self.network, self.batch_size, self.metrics = network, batch_size, metrics
        self.batch_samples = 0

    def batches(self, train: Any, epoch: int, shuffle: bool) -> Any:
        net = self.network
        n = len(train)
        order = net.rng.permutation(n) if shuffle else np.arange(n)  # the host shuffles indices only
        for xb, yb in train.batches(order, self.batch_size, augment=True, rng=net.rng):
            self.batch_samples = len(xb)
            yield xb, yb

    def sync_metrics(self) -> None:
        pass

    def stop_after_batch(self) -> bool:
        return self.network.stop_training

    def stop_after_epoch(self) -> bool:
        return self.network.stop_training

    def evaluate(self, source: Any, batch_size: int) -> dict[str, float]:
        return self.network._evaluate_source(source, batch_size, self.metrics)

    def fail(self, exc: BaseException) -> None:
        pass

    def close(self) -> None:
        pass


class _ArraySource:
    """Checked arrays (in the network's dtype and scaling) read in batches."""

    def __init__(self, x: Any, y: Any) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def batches(self, order: np.ndarray, batch_size: int, augment: bool = False, rng: Any = None) -> Any:
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            yield self.x[idx], self.y[idx]


class _SplitSource:
    """A data set split whose host batches are checked, converted and scaled one batch at a time."""

    def __init__(self, split: Any, network: Network) -> None:
        self.split, self.network = split, network
        if tuple(split.input_shape) != network.input_shape:
            raise ValueError(
                f"the data set's input shape {tuple(split.input_shape)} does not match the network's "
                f"input_shape {network.input_shape}"
            )

    def __len__(self) -> int:
        return len(self.split)

    def batches(self, order: np.ndarray, batch_size: int, augment: bool = False, rng: Any = None) -> Any:
        net = self.network
        for xb, yb in self.split.batches(order, batch_size, augment=augment, rng=rng):
            yield net._prepare_x(xb), net._prepare_y(yb, len(xb), "y")
