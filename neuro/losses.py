"""Loss functions with hand-derived gradients with respect to the network output.

Every loss sums over the outputs of a sample and takes the mean over the m samples of the batch, as in the
design note on cross-entropy; its gradient therefore includes the 1/m, and layers sum over the batch.
The argument order is always ``(y_pred, y_true)``.

The categorical losses (:class:`CrossEntropy`, :class:`SoftmaxCrossEntropy`) take targets as one-hot or
probability rows ``(N, C)`` or as integer class ids ``(N,)``, optional class weights and label smoothing,
with PyTorch's semantics (``torch.nn.functional.cross_entropy``). Both reduce to an *effective target*
matrix T and a normaliser D:

- class ids t: ``T[i, c] = (1 − ε)·w[t_i]·[c = t_i] + (ε / C)·w[c]`` and ``D = Σ_i w[t_i]``
  (``D = m`` without weights);
- probability rows Y: ``T[i, c] = w[c]·((1 − ε)·Y[i, c] + ε / C)`` and ``D = m``;

so that ``L = −Σ_{i,c} T[i, c]·log ŷ[i, c] / D`` (with w = 1 and ε = 0 this is the design note's formula).

Softmax and cross-entropy are fused whenever they meet: with z the pre-softmax values,
``dL/dz = (softmax(z)·Σ_c T[i, c] − T) / D``, which is the design note's ``(Ŷ − Y)/m`` for one-hot targets.
A network whose output layer ends in Softmax, trained with CrossEntropy or SoftmaxCrossEntropy, uses this
path and never divides by Ŷ. Likewise BinaryCrossEntropy after a Sigmoid output is computed from the
logits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neuro import backend
from neuro.activations import log_softmax, sigmoid, softmax

#: Floor of the logarithm in the probability-based losses: log p is clamped at −100, as PyTorch's BCELoss.
LOG_FLOOR = -100.0
_P_FLOOR = math.exp(LOG_FLOOR)
#: Guard of the gradients that divide by a probability: |p| (or p·(1−p)) is floored at this value.
GRAD_EPS = 1e-12


class Loss:
    """Base class.

    Subclasses implement :meth:`terms`, returning the summed loss and its normaliser, and :meth:`backward`.
    ``fused_activation`` names the output activation the loss can fuse with (``"softmax"``, ``"sigmoid"``
    or ``None``); such a loss also implements :meth:`forward_logits` and :meth:`backward_logits`, taking the
    pre-activation values z.
    """

    key = ""
    fused_activation: str | None = None
    #: True when ``forward`` itself takes logits (SoftmaxCrossEntropy): predictions need the link applied.
    takes_logits = False

    def __call__(self, y_pred: Any, y_true: Any) -> float:
        return self.forward(y_pred, y_true)

    def forward(self, y_pred: Any, y_true: Any) -> float:
        """Return the loss value (a Python float)."""
        total, denom = self.terms(y_pred, y_true)
        return total / denom if denom else float("nan")  # all weights zero: undefined, as in PyTorch

    def terms(self, y_pred: Any, y_true: Any) -> tuple[float, float]:
        """Return ``(sum of per-sample losses, normaliser)``; the loss is their quotient.

        Used to reduce exactly over a whole data set evaluated in batches.
        """
        raise NotImplementedError

    def backward(self, y_pred: Any, y_true: Any) -> Any:
        """Return dL/d(y_pred), including the 1/m."""
        raise NotImplementedError

    def forward_logits(self, z: Any, y_true: Any) -> float:
        """Loss value from the pre-activation values of the fused activation."""
        total, denom = self.terms_logits(z, y_true)
        return total / denom if denom else float("nan")

    def terms_logits(self, z: Any, y_true: Any) -> tuple[float, float]:
        raise NotImplementedError(f"{type(self).__name__} fuses with no activation")

    def backward_logits(self, z: Any, y_true: Any, y_pred: Any = None) -> Any:
        """dL/dz through the fused activation; ``y_pred`` (its output, if known) saves recomputing it."""
        raise NotImplementedError(f"{type(self).__name__} fuses with no activation")

    def link(self, z: Any) -> Any:
        """The activation applied by the loss to turn its input into predictions (identity by default)."""
        return z

    def get_config(self) -> dict[str, Any]:
        return {"name": type(self).__name__}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


# -- regression --------------------------------------------------------------------------------------------
def _regression_target(y_pred: Any, y_true: Any) -> Any:
    y = backend.xp.asarray(y_true, dtype=y_pred.dtype)
    if y.shape != y_pred.shape:
        if y.ndim == 1 and y_pred.ndim == 2 and y_pred.shape[1] == 1 and len(y) == len(y_pred):
            return y.reshape(-1, 1)
        raise ValueError(f"y_true must have the shape of y_pred {y_pred.shape}, got {y.shape}")
    return y


class MeanSquaredError(Loss):
    """``L = (1/m) Σ_i Σ_j (ŷ_ij − y_ij)²`` (sum over outputs, mean over samples).

    Gradient: dL/dŷ = 2·(ŷ − y)/m.
    """

    key = "mse"

    def terms(self, y_pred: Any, y_true: Any) -> tuple[float, float]:
        d = y_pred - _regression_target(y_pred, y_true)
        return float((d * d).sum()), float(len(y_pred))

    def backward(self, y_pred: Any, y_true: Any) -> Any:
        d = y_pred - _regression_target(y_pred, y_true)
        d *= d.dtype.type(2.0 / len(y_pred))
        return d


class MeanAbsoluteError(Loss):
    """``L = (1/m) Σ_i Σ_j |ŷ_ij − y_ij|`` (sum over outputs, mean over samples).

    Gradient: dL/dŷ = sign(ŷ − y)/m, taking sign(0) = 0 as PyTorch does.
    """

    key = "mae"

    def terms(self, y_pred: Any, y_true: Any) -> tuple[float, float]:
        d = y_pred - _regression_target(y_pred, y_true)
        return float(backend.xp.abs(d).sum()), float(len(y_pred))

    def backward(self, y_pred: Any, y_true: Any) -> Any:
        d = backend.xp.sign(y_pred - _regression_target(y_pred, y_true))
        d *= d.dtype.type(1.0 / len(y_pred))
        return d


# -- binary -------------------------------------------------------------------------------------------------
class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on probabilities, each output an independent Bernoulli.

    ``L = −(1/m) Σ_i Σ_j [y log ŷ + (1 − y) log(1 − ŷ)]``, with each log clamped at −100 (PyTorch's
    ``BCELoss``), so that ŷ of exactly 0 or 1 gives a finite value.

    Gradient: dL/dŷ = (ŷ − y) / (m · max(ŷ(1 − ŷ), 1e-12)) — the floor is the documented guard.

    After a Sigmoid output layer the network computes it from the logits z instead
    (``max(z, 0) − z·y + log(1 + e^−|z|)``, PyTorch's ``BCEWithLogitsLoss``) with the gradient
    ``(σ(z) − y)/m``.
    """

    key = "binary_crossentropy"
    fused_activation = "sigmoid"

    def terms(self, y_pred: Any, y_true: Any) -> tuple[float, float]:
        xp = backend.xp
        y = _regression_target(y_pred, y_true)
        log_p = xp.log(xp.maximum(y_pred, _P_FLOOR))
        log_q = xp.log(xp.maximum(1 - y_pred, _P_FLOOR))
        return float(-(y * log_p + (1 - y) * log_q).sum()), float(len(y_pred))

    def backward(self, y_pred: Any, y_true: Any) -> Any:
        xp = backend.xp
        y = _regression_target(y_pred, y_true)
        denom = xp.maximum(y_pred * (1 - y_pred), GRAD_EPS)
        denom *= len(y_pred)
        return (y_pred - y) / denom

    def terms_logits(self, z: Any, y_true: Any) -> tuple[float, float]:
        xp = backend.xp
        y = _regression_target(z, y_true)
        per = xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
        return float(per.sum()), float(len(z))

    def backward_logits(self, z: Any, y_true: Any, y_pred: Any = None) -> Any:
        y = _regression_target(z, y_true)
        p = sigmoid(z) if y_pred is None else y_pred
        g = p - y
        g *= g.dtype.type(1.0 / len(z))
        return g

    def link(self, z: Any) -> Any:
        return sigmoid(z)


# -- categorical --------------------------------------------------------------------------------------------
class _Categorical(Loss):
    """Shared target handling of the two categorical losses (see the module docstring)."""

    fused_activation = "softmax"

    def __init__(self, class_weights: Any = None, label_smoothing: float = 0.0) -> None:
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)
        if class_weights is not None:
            w = np.asarray(backend.to_numpy(class_weights), dtype=np.float64)
            if w.ndim != 1 or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError(
                    "class_weights must be a 1-D sequence of finite non-negative numbers, "
                    f"got {class_weights!r}"
                )
            class_weights = w
        self.class_weights: np.ndarray | None = class_weights

    def effective_targets(
        self, y_true: Any, n_classes: int, dtype: Any, n_samples: int | None = None
    ) -> tuple[Any, float]:
        """Return ``(T, D)`` of the module docstring for targets ``y_true`` and C = ``n_classes``.

        ``n_samples`` (the number of prediction rows), when given, is checked against the targets.
        """
        xp = backend.xp
        eps = self.label_smoothing
        y = xp.asarray(y_true)
        if n_samples is not None and y.ndim in (1, 2) and y.shape[0] != n_samples:
            raise ValueError(
                f"y_true must have one target per sample ({n_samples}), got {y.shape[0]}"
            )
        w = None
        if self.class_weights is not None:
            if len(self.class_weights) != n_classes:
                raise ValueError(
                    f"class_weights must have one weight per class ({n_classes}), "
                    f"got {len(self.class_weights)}"
                )
            w = xp.asarray(self.class_weights, dtype=dtype)
        if y.ndim == 1:
            ids = _check_class_ids(y, n_classes)
            t = xp.zeros((len(ids), n_classes), dtype=dtype)
            t[xp.arange(len(ids)), ids] = 1.0
            denom = float(len(ids)) if w is None else float(w[ids].sum())
        elif y.ndim == 2 and y.shape[1] == n_classes:
            t = y.astype(dtype, copy=True)
            denom = float(len(y))
        else:
            raise ValueError(
                f"y_true must be class ids of shape (N,) or rows of shape (N, {n_classes}), "
                f"got shape {tuple(y.shape)}"
            )
        if eps:
            t *= dtype(1.0 - eps)
            t += dtype(eps / n_classes)
        if w is not None:
            t *= w
        return t, denom

    def _log_terms(self, log_p: Any, y_true: Any) -> tuple[float, float]:
        t, denom = self.effective_targets(y_true, log_p.shape[-1], log_p.dtype.type, len(log_p))
        return float(-(t * log_p).sum()), denom

    def terms_logits(self, z: Any, y_true: Any) -> tuple[float, float]:
        _check_2d(z)
        return self._log_terms(log_softmax(z), y_true)

    def backward_logits(self, z: Any, y_true: Any, y_pred: Any = None) -> Any:
        _check_2d(z)
        t, denom = self.effective_targets(y_true, z.shape[-1], z.dtype.type, len(z))
        p = softmax(z) if y_pred is None else y_pred
        g = p * t.sum(axis=-1, keepdims=True)
        g -= t
        g *= g.dtype.type(1.0 / denom if denom else float("nan"))
        return g

    def link(self, z: Any) -> Any:
        return softmax(z)

    def get_config(self) -> dict[str, Any]:
        w = None if self.class_weights is None else self.class_weights.tolist()
        return {
            "name": type(self).__name__,
            "class_weights": w,
            "label_smoothing": self.label_smoothing,
        }


class CrossEntropy(_Categorical):
    """Categorical cross-entropy on probabilities ŷ (rows summing to 1).

    ``L = −Σ_{i,c} T[i, c]·log ŷ[i, c] / D`` (see the module docstring for T and D), with log ŷ clamped at
    −100 so that ŷ = 0 gives a finite value.

    Gradient: dL/dŷ = −T / (D · max(ŷ, 1e-12)) — the floor is the documented guard against division by
    zero. After a Softmax output layer the network never uses this: it fuses the two and uses
    ``(softmax(z)·Σ_c T − T)/D`` with respect to the logits z.

    Args:
        class_weights: optional weight per class (PyTorch's ``weight``).
        label_smoothing: ε in [0, 1] (PyTorch's ``label_smoothing``).
    """

    key = "crossentropy"

    def terms(self, y_pred: Any, y_true: Any) -> tuple[float, float]:
        _check_2d(y_pred)
        xp = backend.xp
        return self._log_terms(xp.log(xp.maximum(y_pred, _P_FLOOR)), y_true)

    def backward(self, y_pred: Any, y_true: Any) -> Any:
        _check_2d(y_pred)
        t, denom = self.effective_targets(y_true, y_pred.shape[-1], y_pred.dtype.type, len(y_pred))
        g = t / backend.xp.maximum(y_pred, GRAD_EPS)
        g *= g.dtype.type(-1.0 / denom if denom else float("nan"))
        return g


class SoftmaxCrossEntropy(_Categorical):
    """Softmax followed by cross-entropy, as one stable operation on the logits z.

    ``L = −Σ_{i,c} T[i, c]·log_softmax(z)[i, c] / D`` with the log-sum-exp computed after subtracting the
    row maximum, so it is finite for any finite z (PyTorch's ``cross_entropy``).

    Gradient: dL/dz = (softmax(z)·Σ_c T[i, c] − T) / D, i.e. (Ŷ − Y)/m for one-hot targets.

    In a network ending in ``Dense(C, activation="softmax")`` that softmax *is* this loss's softmax: the
    network hands the loss the pre-softmax values. A network ending in a linear layer gets its softmax
    from this loss (``predict`` then reports probabilities too).

    Args:
        class_weights: optional weight per class (PyTorch's ``weight``).
        label_smoothing: ε in [0, 1] (PyTorch's ``label_smoothing``).
    """

    key = "softmax_crossentropy"
    takes_logits = True

    def terms(self, y_pred: Any, y_true: Any) -> tuple[float, float]:
        return self.terms_logits(y_pred, y_true)

    def backward(self, y_pred: Any, y_true: Any) -> Any:
        return self.backward_logits(y_pred, y_true)


def _check_2d(a: Any) -> None:
    if a.ndim != 2:
        raise ValueError(f"y_pred must have shape (N, classes), got shape {tuple(a.shape)}")


def _check_class_ids(y: Any, n_classes: int) -> Any:
    xp = backend.xp
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "f" and bool(xp.all(y == xp.floor(y))):
            y = y.astype(xp.int64)
        else:
            raise TypeError(f"y_true class ids must be integers, got dtype {y.dtype}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(
            f"y_true class ids must be in [0, {n_classes - 1}], "
            f"got values in [{int(y.min())}, {int(y.max())}]"
        )
    return y


_REGISTRY: dict[str, type[Loss]] = {
    cls.key: cls
    for cls in (
        BinaryCrossEntropy,
        CrossEntropy,
        MeanAbsoluteError,
        MeanSquaredError,
        SoftmaxCrossEntropy,
    )
}
_ALIASES = {
    "binarycrossentropy": "binary_crossentropy",
    "bce": "binary_crossentropy",
    "categoricalcrossentropy": "crossentropy",
    "softmaxcrossentropy": "softmax_crossentropy",
    "meansquarederror": "mse",
    "meanabsoluteerror": "mae",
}


def get(loss: str | Loss | dict) -> Loss:
    """Return a loss from a name (``"mse"``, ``"SoftmaxCrossEntropy"``…), a config dict or an instance.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else.
    """
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    if isinstance(loss, dict):
        cfg = dict(loss)
        return _lookup(cfg.pop("name"))(**cfg)
    if isinstance(loss, str):
        return _lookup(loss)()
    raise TypeError(f"loss must be a name or a Loss, got {type(loss).__name__}")


def _lookup(name: str) -> type[Loss]:
    key = name.lower().replace("-", "_")
    if key not in _REGISTRY:
        key = _ALIASES.get(key.replace("_", ""), key)
    if key not in _REGISTRY:
        by_class = {cls.__name__.lower(): cls for cls in _REGISTRY.values()}
        if name.lower() in by_class:
            return by_class[name.lower()]
        raise ValueError(f"loss must be one of {sorted(_REGISTRY)}, got {name!r}")
    return _REGISTRY[key]
