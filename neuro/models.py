"""The sequential :class:`Network`: add layers, fit, evaluate, predict."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from neuro import _validation as check
from neuro import backend
from neuro import losses as losses_mod
from neuro import metrics as metrics_mod
from neuro import optimizers as optimizers_mod
from neuro import regularizers as regularizers_mod
from neuro.activations import Activation
from neuro.layers.base import ActivatedLayer, Layer


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
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class Network:
    """A sequential network.

    Args:
        input_shape: shape of one sample, without the batch axis: ``(features,)`` or ``(H, W, C)``.
        loss: a loss name or object (see :mod:`neuro.losses`).
        optimizer: an optimizer name or object (see :mod:`neuro.optimizers`).
        regularizer: optional :class:`~neuro.regularizers.L1` / :class:`~neuro.regularizers.L2`, applied to
            every layer's kernel.
        seed: seeds every random choice (initial weights, shuffling, dropout masks): the same seed gives a
            bitwise identical training run on the same machine and thread count.

    The network computes in the dtype that is current when it is created (float32 unless
    :func:`neuro.set_dtype` or :class:`neuro.backend.dtype_scope` says otherwise); its data are converted
    to it, and it keeps it when saved and loaded.

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
        self.optimizer._network = True
        self.seed = None if seed is None else int(seed)
        #: The dtype of every parameter and of the data the network computes on.
        self.dtype = np.dtype(backend.get_dtype()).type
        self.rng = np.random.default_rng(seed)
        self.layers: list[Layer] = []
        #: Optional names of the classes, used by :meth:`predict_class`.
        self.class_names: list[str] | None = None

    # -- building ---------------------------------------------------------------------------------------
    def add(self, layer: Layer) -> Network:
        """Append a layer, building it for the current output shape; returns the network (chainable).

        Raises:
            TypeError: when ``layer`` is not a Layer.
            ValueError: when the layer cannot take the previous layer's output.
        """
        if not isinstance(layer, Layer):
            raise TypeError(f"layer must be a neuro Layer, got {type(layer).__name__}")
        if layer.built:
            raise ValueError(f"layer {layer.name!r} is already part of a network; create a new one")
        shape = self.output_shape
        try:
            with backend.dtype_scope(self.dtype):
                layer.build(shape, self.rng)
        except ValueError as exc:
            raise ValueError(
                f"cannot add {type(layer).__name__} (layer {len(self.layers)}) after output shape "
                f"{shape}: {exc}"
            ) from exc
        layer.need_input_grad = bool(self.layers)
        self.layers.append(layer)
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

    # -- the head: where the output activation meets the loss --------------------------------------------
    def _head(self) -> str:
        """Return how the output is computed: ``"fused_layer"``, ``"fused_activation"``, ``"logits"``
        (the loss applies the link) or ``"plain"``."""
        if not self.layers:
            raise ValueError("the network has no layers; add some with add()")
        last = self.layers[-1]
        fused = self.loss.fused_activation
        if fused is not None:
            if isinstance(last, Activation) and last.key == fused and len(self.layers) > 1:
                return "fused_activation"
            if isinstance(last, ActivatedLayer) and last.activation.key == fused:
                return "fused_layer"
        return "logits" if self.loss.takes_logits else "plain"

    def _forward(self, x: Any, training: bool, head: str) -> tuple[Any, Any]:
        """Run the network; return ``(loss_input, predictions)``.

        ``loss_input`` is what the loss is evaluated on (pre-activation values when fused).
        """
        layers = self.layers
        if head in ("fused_layer", "fused_activation"):
            for layer in layers[:-1]:
                x = layer.forward(x, training)
            last = layers[-1]
            if head == "fused_layer":
                return last.forward_logits(x, training)
            return x, last.forward(x, False)
        for layer in layers:
            x = layer.forward(x, training)
        if head == "logits":
            return x, self.loss.link(x)
        return x, x

    def _loss_terms(self, out: Any, y: Any, head: str) -> tuple[float, float]:
        if head in ("fused_layer", "fused_activation"):
            return self.loss.terms_logits(out, y)
        return self.loss.terms(out, y)

    def _penalty(self) -> float:
        reg = self.regularizer
        if reg is None:
            return 0.0
        return sum(
            reg.penalty(layer.params[k]) for layer in self.layers for k in layer.regularizable
        )

    def _backward(self, out: Any, pred: Any, y: Any, head: str) -> None:
        layers = self.layers
        if head in ("fused_layer", "fused_activation"):
            grad = self.loss.backward_logits(out, y, pred)
            if head == "fused_layer":
                grad = layers[-1].backward(grad, skip_activation=True)
            rest = layers[:-1]
        else:
            grad = self.loss.backward(out, y)
            rest = layers
        for layer in reversed(rest):
            grad = layer.backward(grad)
        reg = self.regularizer
        if reg is not None:
            for layer in layers:
                for k in layer.regularizable:
                    reg.add_gradient(layer.params[k], layer.grads[k])

    def compute_gradients(self, x: Any, y: Any) -> float:
        """Run forward and backward on one batch in training mode, filling every layer's ``grads``.

        Returns:
            The loss of the batch, regularization included: the value whose gradient was computed.
        """
        head = self._head()
        x, y = self._check_data(x, y)
        out, pred = self._forward(backend.asarray(x, self.dtype), True, head)
        total, denom = self._loss_terms(out, y, head)
        self._backward(out, pred, y, head)
        return (total / denom if denom else float("nan")) + self._penalty()

    # -- data checks ------------------------------------------------------------------------------------
    def _check_data(self, x: Any, y: Any, name: str = "") -> tuple[Any, Any]:
        x = check.features(x, self.input_shape, name=f"{name}x", dtype=self.dtype)
        categorical = isinstance(self.loss, losses_mod._Categorical)
        y = check.targets(y, len(x), self.output_shape, categorical, name=f"{name}y", dtype=self.dtype)
        return x, y

    # -- training ---------------------------------------------------------------------------------------
    def fit(
        self,
        x: Any,
        y: Any,
        batch_size: int = 32,
        epochs: int = 1,
        validation_data: tuple[Any, Any] | None = None,
        shuffle: bool = True,
        metrics: Iterable[Any] | None = None,
        verbose: int = 1,
    ) -> History:
        """Train the network.

        Args:
            x: inputs ``(N, *input_shape)``.
            y: targets: class ids ``(N,)`` or rows ``(N, C)`` for categorical losses, the output shape
                otherwise.
            batch_size: samples per update (> 0); the last batch of an epoch may be smaller.
            epochs: passes over the data (> 0).
            validation_data: optional ``(x_val, y_val)`` evaluated after each epoch.
            shuffle: reshuffle the samples (with the network's seeded generator) before each epoch.
            metrics: metric names or objects, computed over the whole epoch (see :mod:`neuro.metrics`);
                ``None`` means accuracy for the classification losses and none for regression.
            verbose: 0 silent; 1 a progress bar per epoch on a terminal (one line per epoch otherwise);
                2 one line per epoch.

        Returns:
            A :class:`History` with the per-epoch loss and metrics (``val_`` ones for validation data).

        Raises:
            FloatingPointError: when the loss becomes NaN or inf; the weights are those from before the
                batch that produced it.
        """
        batch_size = check.positive_int(batch_size, "batch_size")
        epochs = check.positive_int(epochs, "epochs")
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        head = self._head()
        x, y = self._check_data(x, y)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data must be a tuple (x_val, y_val)")
            validation_data = self._check_data(*validation_data, name="val_")
        metric_objs = self._metrics(metrics)
        n = len(x)
        n_batches = -(-n // batch_size)
        has_buffers = any(layer.buffers for layer in self.layers)
        history = History()
        bar_ok = verbose == 1 and sys.stdout.isatty()
        for epoch in range(epochs):
            start = time.perf_counter()
            for m in metric_objs:
                m.reset()
            order = self.rng.permutation(n) if shuffle else None
            loss_sum = 0.0
            loss_den = 0.0
            bar = _progress(n_batches, epoch, epochs) if bar_ok else None
            for b in range(n_batches):
                window = slice(b * batch_size, (b + 1) * batch_size)
                if order is None:
                    xb, yb = x[window], y[window]
                else:
                    xb, yb = x[order[window]], y[order[window]]
                saved = _snapshot_buffers(self.layers) if has_buffers else None
                out, pred = self._forward(backend.asarray(xb, self.dtype), True, head)
                total, denom = self._loss_terms(out, yb, head)
                # a batch whose targets all weigh 0 has no defined loss (NaN, as in PyTorch)
                batch_loss = (total / denom if denom else float("nan")) + self._penalty()
                if not np.isfinite(batch_loss):
                    raise self._stopped(f"loss became {batch_loss}", epoch, b, saved, bar)
                self._backward(out, pred, yb, head)
                grads = self.grads
                # one reduction per array: overflowing gradients must not reach the weights either
                if not np.isfinite(sum(float(g.sum()) for g in grads)):
                    raise self._stopped("gradients became non-finite", epoch, b, saved, bar)
                self.optimizer.step(self.params, grads)
                loss_sum += batch_loss * denom
                loss_den += denom
                for m in metric_objs:
                    m.update(pred, yb)
                if bar is not None:
                    bar.update(1)
                    if b % 10 == 0 or b == n_batches - 1:
                        bar.set_postfix_str(
                            _format_logs(_epoch_logs(loss_sum, loss_den, metric_objs)), refresh=False
                        )
            logs = _epoch_logs(loss_sum, loss_den, metric_objs)
            if validation_data is not None:
                val = self._evaluate_checked(*validation_data, batch_size, metric_objs, head)
                logs.update({f"val_{k}": v for k, v in val.items()})
            history.append(epoch, logs)
            if bar is not None:
                bar.set_postfix_str(_format_logs(logs), refresh=True)
                bar.close()
            elif verbose:
                took = time.perf_counter() - start
                print(f"Epoch {epoch + 1}/{epochs} - {took:.1f}s - {_format_logs(logs)}", flush=True)
        return history

    def _stopped(self, what: str, epoch: int, batch: int, saved: Any, bar: Any) -> FloatingPointError:
        """Undo the batch's buffer updates, close the bar, and build the error that stops ``fit``."""
        if saved is not None:
            _restore_buffers(self.layers, saved)
        if bar is not None:
            bar.close()
        return FloatingPointError(
            f"{what} at epoch {epoch + 1}, batch {batch + 1}; training stopped and the weights are "
            "those from before this batch"
        )

    # -- inference --------------------------------------------------------------------------------------
    def evaluate(
        self, x: Any, y: Any, batch_size: int = 256, metrics: Iterable[Any] | None = None
    ) -> dict[str, float]:
        """Return the loss (regularization included) and metrics over the whole set, in inference mode.

        Args:
            x: inputs ``(N, *input_shape)``.
            y: targets, as for :meth:`fit`.
            batch_size: samples per forward pass.
            metrics: as for :meth:`fit` (``None``: accuracy for classification losses, else none).

        Returns:
            ``{"loss": value, metric name: value, ...}``.
        """
        batch_size = check.positive_int(batch_size, "batch_size")
        head = self._head()
        x, y = self._check_data(x, y)
        return self._evaluate_checked(x, y, batch_size, self._metrics(metrics), head)

    def _metrics(self, metrics: Iterable[Any] | None) -> list[Any]:
        if metrics is None:
            classifier = isinstance(self.loss, (losses_mod._Categorical, losses_mod.BinaryCrossEntropy))
            metrics = ("accuracy",) if classifier else ()
        if isinstance(metrics, (str, metrics_mod.Metric)):
            metrics = (metrics,)
        return [metrics_mod.get(m) for m in metrics]

    def _evaluate_checked(
        self, x: Any, y: Any, batch_size: int, metric_objs: list[Any], head: str
    ) -> dict[str, float]:
        for m in metric_objs:
            m.reset()
        total = denom = 0.0
        for s in range(0, len(x), batch_size):
            xb, yb = x[s : s + batch_size], y[s : s + batch_size]
            out, pred = self._forward(backend.asarray(xb, self.dtype), False, head)
            t, d = self._loss_terms(out, yb, head)
            total += t
            denom += d
            for m in metric_objs:
                m.update(pred, yb)
        return _epoch_logs(total + self._penalty() * denom, denom, metric_objs)

    def predict(self, x: Any, batch_size: int = 256) -> Any:
        """Return the network's predictions for ``x``, computed in inference mode in batches.

        For a network trained with SoftmaxCrossEntropy on a linear output these are the softmax
        probabilities (the loss's softmax is part of the model), as they are with a Softmax output.

        Shape:
            ``(N, *input_shape)`` → ``(N, *output_shape)``.
        """
        batch_size = check.positive_int(batch_size, "batch_size")
        link = self.loss.link if self._head() == "logits" else None
        layers = self.layers
        x = check.features(x, self.input_shape, dtype=self.dtype)

        def run(xb: Any) -> Any:
            # in inference a fused output activation is just applied: only the loss needs the logits
            for layer in layers:
                xb = layer.forward(xb)
            return xb if link is None else link(xb)

        if len(x) <= batch_size:
            return run(backend.asarray(x, self.dtype))
        return backend.xp.concatenate(
            [run(backend.asarray(x[s : s + batch_size], self.dtype)) for s in range(0, len(x), batch_size)]
        )

    def predict_class(self, x: Any, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(classes, probabilities)`` for ``x``.

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
        """Copies of every layer's params, then its buffers, in layer order."""
        return [
            backend.to_numpy(a).copy()
            for layer in self.layers
            for a in (*layer.params.values(), *layer.buffers.values())
        ]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the arrays :meth:`get_weights` returns, checking their number and shapes.

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
        for i, ((layer, store, k), w) in enumerate(zip(targets, weights, strict=True)):
            w = np.asarray(backend.to_numpy(w))
            if w.shape != tuple(store[k].shape):
                raise ValueError(
                    f"weights[{i}] ({layer.name}.{k}) must have shape {tuple(store[k].shape)}, "
                    f"got {w.shape}"
                )
        for (_layer, store, k), w in zip(targets, weights, strict=True):
            store[k][...] = backend.asarray(backend.to_numpy(w), dtype=store[k].dtype)

    # -- files ----------------------------------------------------------------------------------------------
    def save(self, path: str | Any) -> None:
        """Write the network (weights, optimizer and generator state) to HDF5; see :mod:`neuro.io`."""
        from neuro import io

        io.save(self, path)

    @staticmethod
    def load(path: str | Any, custom_objects: dict[str, type] | None = None) -> Network:
        """Read a network written by :meth:`save`; see :func:`neuro.io.load`."""
        from neuro import io

        return io.load(path, custom_objects)

    # -- description ------------------------------------------------------------------------------------
    def summary(self, print_fn: Any = print) -> str:
        """Print (with ``print_fn``; ``None`` to skip) and return a table of layers, shapes and counts."""
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
            f"optimizer {type(self.optimizer).__name__}",
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
def _epoch_logs(loss_sum: float, loss_den: float, metric_objs: list[Any]) -> dict[str, float]:
    logs = {"loss": loss_sum / loss_den if loss_den else float("nan")}
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
        unit="batch",
        file=sys.stdout,
        leave=True,
        dynamic_ncols=True,
        mininterval=0.1,
    )


def _snapshot_buffers(layers: list[Layer]) -> list[dict[str, Any]]:
    return [{k: v.copy() for k, v in layer.buffers.items()} for layer in layers]


def _restore_buffers(layers: list[Layer], saved: list[dict[str, Any]]) -> None:
    for layer, bufs in zip(layers, saved, strict=True):
        for k, v in bufs.items():
            layer.buffers[k][...] = v
