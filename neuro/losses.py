"""Loss functions with hand-derived gradients with respect to the network output.

Every loss sums over the outputs of a sample and takes the mean over the m samples of the batch, as in the
design note on cross-entropy; its gradient therefore includes the 1/m, and layers sum over the batch. An
output with more axes (a sequence ``(N, T, F)``, an image ``(N, H, W, C)``) has an item per position: a loss
sums over the last axis and takes the mean over the m positions (the samples times the steps or pixels),
as the categorical losses count them, so that a mask or weights of 1 change nothing.
The argument order is always ``(y_pred, y_true)``.

The categorical losses (:class:`CrossEntropy`, :class:`SoftmaxCrossEntropy`) take targets as one-hot or
probability rows ``(N, C)`` or as integer class ids ``(N,)``, optional class weights and label smoothing,
with PyTorch's semantics (``torch.nn.functional.cross_entropy``). Both reduce to an *effective target*
matrix T and a normaliser D:

- class ids t: ``T[i, c] = (1 − ε)·w[t_i]·[c = t_i] + (ε / C)·w[c]`` and ``D = Σ_i w[t_i]``
  (``D = m`` without weights);
- probability rows Y: ``T[i, c] = w[c]·((1 − ε)·Y[i, c] + ε / C)`` and ``D = m`` (the loss of ``fit``'s
  ``class_weight`` divides by ``D = Σ_i Σ_c w[c]·Y[i, c]`` instead, which is ``Σ_i w[t_i]`` for one-hot rows:
  there both forms of the same labels give the same loss);

so that ``L = −Σ_{i,c} T[i, c]·log ŷ[i, c] / D`` (with w = 1 and ε = 0 this is the design note's formula).

Sequence outputs and masks: a categorical loss treats every position of an output ``(N, ..., C)`` as an
item of its own (targets ``(N, ...)`` ids or ``(N, ..., C)`` rows; D counts the positions), as PyTorch's
``cross_entropy`` on flattened steps does. Every loss takes optional ``weights`` over the leading axes of
the output (a mask ``(N, T)`` of the valid steps of a sequence, or sample weights ``(N,)``): each item's loss
is multiplied by its weight, and D becomes the sum of the weights (times the class weights of the targets),
so a masked loss is the mean over the valid steps only.

Softmax and cross-entropy are fused whenever they meet: with z the pre-softmax values,
``dL/dz = (softmax(z)·Σ_c T[i, c] − T) / D``, which is the design note's ``(Ŷ − Y)/m`` for one-hot targets.
A network whose output layer ends in Softmax, trained with CrossEntropy or SoftmaxCrossEntropy, uses this
path and never divides by Ŷ (see :mod:`neuro.head`). Likewise BinaryCrossEntropy after a Sigmoid output is
computed from the logits.

Logits, as Keras: ``CrossEntropy(from_logits=True)`` is :class:`SoftmaxCrossEntropy` (it applies the softmax
itself, fused and stable, and ``predict`` returns probabilities), and ``BinaryCrossEntropy(from_logits=True)``
applies the sigmoid itself (PyTorch's ``BCEWithLogitsLoss``). A loss on probabilities (``from_logits=False``,
the default) after an output that is not one (a linear, ReLU or tanh last layer) is refused when the model is
compiled or built: the loss's :attr:`Loss.input_range` says what it takes, and :func:`neuro.head.check_range`
compares it with what the output can produce. Keras's class names are aliases here:
``CategoricalCrossentropy`` and ``SparseCategoricalCrossentropy`` are :class:`CrossEntropy` (both target
forms work), ``BinaryCrossentropy`` is :class:`BinaryCrossEntropy`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neuro import backend, registry
from neuro import functional as F
from neuro._keywords import KeywordChecked, quiet
from neuro.backend import get_array_module

#: Floor of the logarithm in the probability-based losses: log p is clamped at −100, as PyTorch's BCELoss.
LOG_FLOOR = -100.0
#: Guard of the gradients that divide by a probability: |p| (or p·(1−p)) is floored at this value.
GRAD_EPS = 1e-12


class Loss(KeywordChecked):
    """Base class.

    Subclasses implement :meth:`terms`, returning the summed loss and its normaliser, and :meth:`backward`.
    ``fused_activation`` names the output activation the loss can fuse with (``"softmax"``, ``"sigmoid"``
    or ``None``); such a loss also implements :meth:`terms_logits` and :meth:`backward_logits`, taking the
    pre-activation values z.

    ``terms`` and the gradients compute on the device of their inputs and read nothing back: a network
    checks its targets on the host once, before moving them. The user-facing :meth:`forward` (and calling
    the loss) checks class ids too and returns a Python float.
    """

    fused_activation: str | None = None
    #: True when ``forward`` itself takes logits (SoftmaxCrossEntropy): predictions need the link applied.
    takes_logits = False
    #: True for losses whose targets are classes (class ids or rows of class probabilities).
    categorical = False
    #: The interval ``(low, high)`` the loss's input must lie in (``None``: any value): a model refuses the
    #: loss after an output whose values can leave it (see :func:`neuro.head.check_range`).
    input_range: tuple[float, float] | None = None
    #: True when the input must be rows of probabilities that sum to 1 (a softmax output).
    needs_distribution = False

    def __call__(self, y_pred: Any, y_true: Any) -> float:
        return self.forward(y_pred, y_true)

    def forward(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> float:
        """Return the loss value as a Python float (a batch whose targets all weigh 0 gives 0, and its
        gradient is 0, as in Keras; PyTorch's mean over no items is NaN).

        Args:
            y_pred: the predictions ``(N, ...)`` (logits for a loss with ``takes_logits``).
            y_true: the targets: of the shape of ``y_pred`` (a ``(N,)`` vector also fits ``(N, 1)``
                predictions), or for a categorical loss class ids ``(N, ...)`` or rows ``(N, ..., C)``.
            sample_weight: optional weights over the leading axes of ``y_pred`` (``(N,)``, or a mask
                ``(N, T)`` of the valid steps of a sequence).

        Returns:
            ``sum / normaliser`` of :meth:`terms`, read back to the host.

        Raises:
            ValueError: for targets of the wrong shape or out of range.
            TypeError: for class ids that are not integers.
        """
        self.check_targets(y_pred, y_true)
        total, denom = self.terms(y_pred, y_true, _weights(sample_weight, y_pred))
        return _quotient(total, denom)

    def check_targets(self, y_pred: Any, y_true: Any) -> None:
        """Check target values that the device math does not (class ids in range); reads them on the host.

        Targets on another device are not checked (they are never read back). Nothing is checked by default.

        Args:
            y_pred: the predictions (their last axis gives the number of classes).
            y_true: the targets.

        Raises:
            ValueError: for targets out of range (class ids outside ``[0, C)``, BCE targets outside [0, 1]).
            TypeError: for class ids that are not integers.
        """

    def check_output(self, shape: tuple[int, ...]) -> None:
        """Refuse an output this loss cannot take, by its shape per sample (when the model is compiled or
        its heads are chosen). Nothing is refused by default.

        Args:
            shape: the output's shape per sample.

        Raises:
            ValueError: for an output of a shape the loss cannot take.
        """

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        """Return ``(sum of per-item losses, normaliser)``, both on the device; the loss is their quotient.

        Used to reduce exactly over a whole data set evaluated in batches.

        Args:
            y_pred: the predictions ``(N, ...)``.
            y_true: the targets (see :meth:`forward`).
            weights: optional weights over the leading axes (see the module docstring), on the device.

        Returns:
            ``(sum, normaliser)``: a 0-d device array, and m (a Python int) or the weight total D (a 0-d
            device array).
        """
        raise NotImplementedError

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        """Return dL/d(y_pred), including the 1/D (each subclass states its formula under "Gradient").

        Args:
            y_pred: the predictions ``(N, ...)``.
            y_true: the targets (see :meth:`forward`).
            weights: optional weights over the leading axes.

        Returns:
            dL/d(y_pred), a new array of the shape of ``y_pred``.
        """
        raise NotImplementedError

    def forward_logits(self, z: Any, y_true: Any) -> float:
        """Loss value (a Python float) from the pre-activation values of the fused activation.

        Args:
            z: the pre-activation values ``(N, ...)`` (logits).
            y_true: the targets (see :meth:`forward`).

        Returns:
            The loss of ``link(z)``, computed stably from z.

        Raises:
            NotImplementedError: for a loss that fuses with no activation.
        """
        self.check_targets(z, y_true)
        return _quotient(*self.terms_logits(z, y_true))

    def terms_logits(self, z: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        """:meth:`terms` from the pre-activation values of the fused activation.

        Args:
            z: the pre-activation values ``(N, ...)`` (logits).
            y_true: the targets (see :meth:`forward`).
            weights: optional weights over the leading axes.

        Returns:
            ``(sum, normaliser)`` as :meth:`terms` returns them for the predictions ``link(z)``.

        Raises:
            NotImplementedError: for a loss that fuses with no activation.
        """
        raise NotImplementedError(f"{type(self).__name__} fuses with no activation")

    def backward_logits(self, z: Any, y_true: Any, y_pred: Any = None, weights: Any = None) -> Any:
        """dL/dz through the fused activation; ``y_pred`` (its output, if known) saves recomputing it.

        Softmax with a cross-entropy: (softmax(z)·Σ_c T − T)/D; sigmoid with binary cross-entropy:
        (σ(z) − y)·w/D.

        Args:
            z: the pre-activation values ``(N, ...)`` (logits).
            y_true: the targets (see :meth:`forward`).
            y_pred: ``link(z)``, when already computed.
            weights: optional weights over the leading axes.

        Returns:
            dL/dz, a new array of the shape of z.

        Raises:
            NotImplementedError: for a loss that fuses with no activation.
        """
        raise NotImplementedError(f"{type(self).__name__} fuses with no activation")

    def link(self, z: Any) -> Any:
        """The activation applied by the loss to turn its input into predictions (identity by default).

        Args:
            z: what the loss sees ``(N, ...)``.

        Returns:
            The predictions: z itself, σ(z) for binary cross-entropy, softmax(z) for the categorical losses.
        """
        return z

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as plain JSON values."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        """Rebuild a loss from :meth:`get_config`'s output.

        Args:
            config: the constructor arguments, as :meth:`get_config` returns them.

        Returns:
            A new loss of this class.
        """
        with quiet():  # a saved config may use old keyword spellings
            return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


registry.set_base("loss", Loss)


def _weights(sample_weight: Any, y_pred: Any) -> Any:
    """User sample weights as a device array of y_pred's dtype (``None`` stays ``None``)."""
    if sample_weight is None:
        return None
    xp = get_array_module(y_pred)
    w = backend.to_device(sample_weight, xp) if get_array_module(sample_weight) is not xp else sample_weight
    w = xp.asarray(w, dtype=y_pred.dtype)
    if w.ndim == 0 or w.ndim > y_pred.ndim or tuple(w.shape) != tuple(y_pred.shape[: w.ndim]):
        raise ValueError(
            f"sample_weight must have the shape of the leading axes of y_pred {tuple(y_pred.shape)}, got "
            f"{tuple(w.shape)}"
        )
    return w


def _spread(w: Any, like: Any) -> Any:
    """Weights over the leading axes, with axes of 1 appended so that they broadcast over ``like``."""
    return w.reshape(tuple(w.shape) + (1,) * (like.ndim - w.ndim))


def _positions(like: Any) -> int:
    """The items an elementwise loss averages over: the output's positions, every axis but the last (the
    samples, and the steps of a sequence or the pixels of an image), as the categorical losses count them."""
    return int(np.prod(like.shape[:-1])) if like.ndim > 1 else len(like)


def _weight_sum(weights: Any, items: int) -> Any:
    """``Σ w`` over ``items`` items of weights given over the leading axes: a sample's weight counts once
    per position of the sample (weights of 1 give ``items``, as no weights)."""
    total = weights.sum()
    return total * (items / weights.size) if weights.size and items != weights.size else total


def _divisor(total: Any) -> Any:
    """A weight sum to divide a gradient by: 1 where it is 0 (nothing weighs: the gradient is 0, not NaN)."""
    return total + (total == 0) if backend.is_array(total) else (total or 1)


def _quotient(total: Any, denom: Any) -> float:
    t = float(backend.to_numpy(total))
    d = float(backend.to_numpy(denom)) if backend.is_array(denom) else float(denom)
    return t / d if d else 0.0 * t  # nothing weighs: 0, as Keras (and the gradient is 0)


# -- your own losses ---------------------------------------------------------------------------------------
class SampleLoss(Loss):
    """Base class of a loss of your own, written as one value per sample and its gradient.

    Subclass it and implement :meth:`sample_losses` (``l_i``, one value per sample) and
    :meth:`sample_gradients` (``∂l_i/∂ŷ_i``, shaped like the predictions); neuro does the rest: the loss is
    the (weighted) mean ``L = Σ_i w_i·l_i / Σ_i w_i`` (``w_i = 1`` without sample weights, so ``L`` is the
    mean over the m samples), and its gradient ``dL/dŷ_i = w_i·∂l_i/∂ŷ_i / Σ w`` includes that 1/m, as every
    built-in loss's does. Register the class (``@neuro.register``) and give it ``get_config`` when it
    takes arguments: a model trained with it then saves and loads like one with a built-in loss. Check the
    gradient you wrote with ``neuro.check_gradients(MyLoss(), y_pred, y_true)``.

    Both methods get the device arrays of a batch: compute with the array module of their arguments
    (``neuro.backend.get_array_module(y_pred)``) so that the loss also runs on a GPU.

    Gradient: dL/dŷ_i = w_i·g_i / Σ_j w_j with g_i = :meth:`sample_gradients`.

    Raises:
        ValueError: (when used) a :meth:`sample_losses` that is not one value per sample, or a
            :meth:`sample_gradients` not shaped like the predictions, naming the loss.
    """

    def sample_losses(self, y_pred: Any, y_true: Any) -> Any:
        """The loss of each sample.

        Args:
            y_pred: the predictions ``(N, ...)``.
            y_true: the targets, as given to ``fit``.

        Returns:
            ``(N,)`` values.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement sample_losses(y_pred, y_true)")

    def sample_gradients(self, y_pred: Any, y_true: Any) -> Any:
        """The gradient of each sample's loss with respect to its predictions.

        Args:
            y_pred: the predictions ``(N, ...)``.
            y_true: the targets.

        Returns:
            ``∂l_i/∂ŷ_i``, shaped like ``y_pred``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement sample_gradients(y_pred, y_true)")

    def _losses(self, y_pred: Any, y_true: Any) -> Any:
        values = self.sample_losses(y_pred, y_true)
        if not backend.is_array(values) or tuple(values.shape) != (len(y_pred),):
            shape = tuple(values.shape) if backend.is_array(values) else type(values).__name__
            raise ValueError(
                f"{type(self).__name__}.sample_losses must return one value per sample, an array of shape "
                f"({len(y_pred)},), got {shape}"
            )
        return values

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        values = self._losses(y_pred, y_true)
        if weights is None:
            return values.sum(), len(y_pred)
        w = self._sample_weights(weights)
        return (values * w).sum(), w.sum()

    def _sample_weights(self, weights: Any) -> Any:
        if weights.ndim != 1:
            raise ValueError(
                f"{type(self).__name__} gives one loss per sample, but the weights are per step "
                f"{tuple(weights.shape)} (a masked sequence output); such an output needs a loss written per "
                "step (a Loss subclass with terms and backward)"
            )
        return weights

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        g = self.sample_gradients(y_pred, y_true)
        if not backend.is_array(g) or tuple(g.shape) != tuple(y_pred.shape):
            shape = tuple(g.shape) if backend.is_array(g) else type(g).__name__
            raise ValueError(
                f"{type(self).__name__}.sample_gradients must return an array shaped like y_pred "
                f"{tuple(y_pred.shape)}, got {shape}"
            )
        g = g.astype(y_pred.dtype, copy=True)
        if weights is None:
            g *= g.dtype.type(1.0 / len(y_pred))
            return g
        w = self._sample_weights(weights)
        g *= _spread(w, g) / _divisor(w.sum())
        return g


# -- regression --------------------------------------------------------------------------------------------
def _regression_target(y_pred: Any, y_true: Any) -> Any:
    xp = get_array_module(y_pred, y_true)
    y = xp.asarray(y_true, dtype=y_pred.dtype)
    if y.shape != y_pred.shape:
        if y.ndim == 1 and y_pred.ndim == 2 and y_pred.shape[1] == 1 and len(y) == len(y_pred):
            return y.reshape(-1, 1)
        raise ValueError(f"y_true must have the shape of y_pred {tuple(y_pred.shape)}, got {tuple(y.shape)}")
    return y


@registry.register(aliases=("mse", "mean_squared_error"))
class MeanSquaredError(Loss):
    """``L = (1/m) Σ_i Σ_j (ŷ_ij − y_ij)²`` (sum over the outputs j, mean over the m samples; over the m
    positions of a sequence or image output, j its last axis).

    Gradient: dL/dŷ = 2·(ŷ − y)/m (with weights w: 2·w·(ŷ − y)/Σw).
    """

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        d = y_pred - _regression_target(y_pred, y_true)
        d *= d
        if weights is None:
            return d.sum(), _positions(d)
        return (d * _spread(weights, d)).sum(), _weight_sum(weights, _positions(d))

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        d = y_pred - _regression_target(y_pred, y_true)
        if weights is None:
            d *= d.dtype.type(2.0 / _positions(d))
            return d
        d *= _spread(weights, d) * (2.0 / _divisor(_weight_sum(weights, _positions(d))))
        return d


@registry.register(aliases=("mae", "mean_absolute_error"))
class MeanAbsoluteError(Loss):
    """``L = (1/m) Σ_i Σ_j |ŷ_ij − y_ij|`` (sum over the outputs j, mean over the m samples or positions).

    Gradient: dL/dŷ = sign(ŷ − y)/m (with weights w: w·sign(ŷ − y)/Σw), taking sign(0) = 0 as PyTorch does.
    """

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        d = y_pred - _regression_target(y_pred, y_true)
        a = get_array_module(d).abs(d)
        if weights is None:
            return a.sum(), _positions(a)
        return (a * _spread(weights, a)).sum(), _weight_sum(weights, _positions(a))

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        d = get_array_module(y_pred).sign(y_pred - _regression_target(y_pred, y_true))
        if weights is None:
            d *= d.dtype.type(1.0 / _positions(d))
            return d
        d *= _spread(weights, d) * (1.0 / _divisor(_weight_sum(weights, _positions(d))))
        return d


# -- binary -------------------------------------------------------------------------------------------------
@registry.register(aliases=("bce", "binary_crossentropy"))
class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on probabilities, each output an independent Bernoulli.

    ``L = −(1/m) Σ_i Σ_j [y log ŷ + (1 − y) log(1 − ŷ)]``, with each log clamped at −100 (PyTorch's
    ``BCELoss``), so that ŷ of exactly 0 or 1 gives a finite value. Targets must lie in [0, 1].

    Gradient: dL/dŷ = (ŷ − y) / (m · max(ŷ(1 − ŷ), 1e-12)) — the floor is the documented guard (with
    weights w: w·(ŷ − y) / (Σw · max(ŷ(1 − ŷ), 1e-12))).

    After a Sigmoid output layer the network computes it from the logits z instead
    (``max(z, 0) − z·y + log(1 + e^−|z|)``, PyTorch's ``BCEWithLogitsLoss``) with the gradient
    ``(σ(z) − y)/m``.

    With ``from_logits=True`` (Keras's argument) the loss takes the logits z itself and computes exactly that
    (stable for any finite z; ``predict`` returns σ(z)): use it after a linear output, as PyTorch's
    ``BCEWithLogitsLoss``. After a Sigmoid output it changes nothing (the network hands the loss z either
    way). Without it, the output must be probabilities in [0, 1]: a linear or ReLU last layer is refused when
    the model is built.

    Args:
        from_logits: the input is logits z (the loss applies the sigmoid) rather than probabilities.

    Raises:
        TypeError: when ``from_logits`` is not a bool.
    """

    fused_activation = "sigmoid"

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = _flag(from_logits, "from_logits")

    @property
    def takes_logits(self) -> bool:  # type: ignore[override]
        """Whether the input is logits (``from_logits``)."""
        return self.from_logits

    @property
    def input_range(self) -> tuple[float, float] | None:  # type: ignore[override]
        """``None`` for logits, else [0, 1]."""
        return None if self.from_logits else (0.0, 1.0)

    def check_targets(self, y_pred: Any, y_true: Any) -> None:
        y = backend.to_numpy(y_true) if get_array_module(y_true) is np else None
        if y is not None and y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(
                f"y_true of binary cross-entropy must lie in [0, 1], got values in [{y.min()}, {y.max()}]"
            )

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        if self.from_logits:
            return self.terms_logits(y_pred, y_true, weights)
        y = _regression_target(y_pred, y_true)
        log_p = _floored_log(y_pred)
        log_q = _floored_log(1 - y_pred)
        per = y * log_p + (1 - y) * log_q
        if weights is None:
            return -per.sum(), _positions(per)
        return -(per * _spread(weights, per)).sum(), _weight_sum(weights, _positions(per))

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        if self.from_logits:
            return self.backward_logits(y_pred, y_true, None, weights)
        xp = get_array_module(y_pred, y_true)
        y = _regression_target(y_pred, y_true)
        denom = xp.maximum(y_pred * (1 - y_pred), GRAD_EPS)
        if weights is None:
            denom *= _positions(denom)
            return (y_pred - y) / denom
        scale = _spread(weights, denom) / _divisor(_weight_sum(weights, _positions(denom)))
        return (y_pred - y) / denom * scale

    def terms_logits(self, z: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        y = _regression_target(z, y_true)
        if weights is None:
            return F.sigmoid_binary_cross_entropy_sum(z, y), _positions(z)
        total = F.sigmoid_binary_cross_entropy_sum(z, y, _spread(weights, z))
        return total, _weight_sum(weights, _positions(z))

    def backward_logits(self, z: Any, y_true: Any, y_pred: Any = None, weights: Any = None) -> Any:
        y = _regression_target(z, y_true)
        if weights is None:
            return F.sigmoid_binary_cross_entropy_backward(z, y, _positions(z), y_pred)
        g = F.sigmoid_binary_cross_entropy_backward(z, y, 1, y_pred)
        g *= _spread(weights, g) / _divisor(_weight_sum(weights, _positions(g)))
        return g

    def link(self, z: Any) -> Any:
        return F.sigmoid(z)[0]

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": self.from_logits}


@registry.register
class ClassWeightedBinaryCrossEntropy(BinaryCrossEntropy):
    """:class:`BinaryCrossEntropy` of one sigmoid output weighted by class: the loss ``fit`` trains with when
    given ``class_weight`` ``{0: w₀, 1: w₁}`` (Keras's habit for a binary classifier).

    Each item (a sample, or a step of a sequence) weighs ``(1 − y)·w₀ + y·w₁`` (its class's weight for a 0/1
    label, as Keras's; a soft label interpolates), times its sample weight, and the loss is the weighted
    mean ``Σ wᵢ·lᵢ / Σ wᵢ``, as for the categorical losses' class weights; on a sequence output every step
    is an item (a sample's weight weighs each of its steps). Weights of 1 give :class:`BinaryCrossEntropy`
    exactly.

    Args:
        from_logits: as :class:`BinaryCrossEntropy`.
        class_weights: ``(w₀, w₁)``, finite and non-negative.

    Raises:
        ValueError: for class weights that are not two finite numbers >= 0.
        TypeError: when ``from_logits`` is not a bool.

    Gradient: that of :class:`BinaryCrossEntropy` with the item weights above.
    """

    def __init__(self, from_logits: bool = False, class_weights: Any = (1.0, 1.0)) -> None:
        super().__init__(from_logits)
        try:
            w = np.asarray(class_weights, dtype=np.float64)
        except (TypeError, ValueError):
            w = np.zeros(0)
        if w.shape != (2,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"class_weights must be two finite weights >= 0 (w0, w1), got {class_weights!r}")
        self.class_weights = w

    def check_output(self, shape: tuple[int, ...]) -> None:
        if not shape or shape[-1] != 1:
            raise ValueError(
                "ClassWeightedBinaryCrossEntropy weighs the labels 0 and 1 of one sigmoid output per sample "
                f"(or per step), got an output of shape {shape}; weigh samples instead"
            )

    def _item_weights(self, out: Any, y_true: Any, weights: Any) -> Any:
        """Each item's weight: its class's, times its sample's or its own weight (an item is a sample, or a
        step of a sequence output: every step counts, as in the unweighted loss)."""
        y = _regression_target(out, y_true)
        if y.shape[-1] != 1:
            raise ValueError(f"class weights of binary cross-entropy need one output per item, got {y.shape}")
        dt = y.dtype.type
        w0, w1 = (dt(v) for v in self.class_weights)
        label = y[..., 0]
        cw = (1 - label) * w0 + label * w1  # exactly w0 or w1 for a 0/1 label
        while weights is not None and weights.ndim > cw.ndim and weights.shape[-1] == 1:
            weights = weights[..., 0]  # a column of weights, (N, 1) or (N, T, 1)
        if weights is None:
            return cw
        w = weights.astype(y.dtype, copy=False)
        return cw * w if weights.ndim == cw.ndim else cw * _spread(w, cw)

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        if self.from_logits:
            return self.terms_logits(y_pred, y_true, weights)
        return super().terms(y_pred, y_true, self._item_weights(y_pred, y_true, weights))

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        if self.from_logits:
            return self.backward_logits(y_pred, y_true, None, weights)
        return super().backward(y_pred, y_true, self._item_weights(y_pred, y_true, weights))

    def terms_logits(self, z: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        return super().terms_logits(z, y_true, self._item_weights(z, y_true, weights))

    def backward_logits(self, z: Any, y_true: Any, y_pred: Any = None, weights: Any = None) -> Any:
        return super().backward_logits(z, y_true, y_pred, self._item_weights(z, y_true, weights))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "class_weights": self.class_weights.tolist()}


# -- categorical --------------------------------------------------------------------------------------------
class _Categorical(Loss):
    """Shared target handling of the two categorical losses (see the module docstring)."""

    fused_activation = "softmax"
    categorical = True

    def __init__(self, class_weights: Any = None, label_smoothing: float = 0.0) -> None:
        if (
            isinstance(label_smoothing, bool)
            or not isinstance(label_smoothing, (int, float, np.integer, np.floating))
            or not (0.0 <= label_smoothing <= 1.0)
        ):
            raise ValueError(f"label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)
        if class_weights is not None:
            try:
                w = np.asarray(backend.to_numpy(class_weights), dtype=np.float64)
            except (TypeError, ValueError):
                w = np.zeros((0, 0))
            if w.ndim != 1 or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError(
                    "class_weights must be a 1-D sequence of finite non-negative numbers, "
                    f"got {class_weights!r}"
                )
            class_weights = w
        self.class_weights: np.ndarray | None = class_weights
        self._weights_on: dict[tuple[str, str], Any] = {}  # class weights moved to a device, by dtype
        #: probability rows divide by their class weights ``Σ_i Σ_c w[c]·Y[i, c]`` instead of m, as class ids
        #: divide by ``Σ_i w[t_i]``: set on the loss of ``fit``'s ``class_weight``, so that one-hot rows and
        #: class ids train alike (PyTorch's own rule, m, is the default)
        self.rows_weigh_by_class = False

    def _weights(self, xp: Any, dtype: Any) -> Any:
        key = (backend.device_name(xp), np.dtype(dtype).name)
        w = self._weights_on.get(key)
        if w is None:
            w = self._weights_on[key] = backend.to_device(self.class_weights.astype(dtype), xp)
        return w

    def check_targets(self, y_pred: Any, y_true: Any) -> None:
        if get_array_module(y_true) is np and np.ndim(y_true) == np.ndim(y_pred) - 1:
            _check_class_ids(np.asarray(y_true).reshape(-1), y_pred.shape[-1])

    def effective_targets(
        self, y_true: Any, n_classes: int, dtype: Any, n_samples: int | None = None, weights: Any = None,
        pred_shape: tuple[int, ...] | None = None,
    ) -> tuple[Any, Any]:
        """Return ``(T, D)`` of the module docstring for targets ``y_true`` and C = ``n_classes``.

        Every position of a prediction ``(N, ..., C)`` is an item: T has one row per position. ``n_samples``
        (the number of prediction rows), when given, is checked against the targets. D is a Python number
        without class weights and item weights, else a 0-d device array.

        Args:
            y_true: class ids ``(N, ...)`` (integers, or integral floats) or probability rows
                ``(N, ..., C)``.
            n_classes: C, the number of classes.
            dtype: floating type of T (a scalar type such as ``numpy.float32``).
            n_samples: the number of prediction rows (items), to check the targets against.
            weights: optional weights of the items, of the targets' leading shape.
            pred_shape: the predictions' shape, to check the targets' shape against.

        Shape:
            T ``(items, C)`` on the device of ``y_true``.

        Returns:
            ``(T, D)``.

        Raises:
            ValueError: for targets of another shape, a target count other than ``n_samples``, or class
                weights of another length than C.
            TypeError: for class ids of a non-numeric dtype.
        """
        xp = get_array_module(y_true)
        eps = self.label_smoothing
        y = xp.asarray(y_true)
        lead = tuple(pred_shape[:-1]) if pred_shape is not None else None
        ids = y.ndim == (len(pred_shape) - 1 if pred_shape is not None else 1)
        if lead is not None:
            want = lead if ids else (*lead, n_classes)
            if tuple(y.shape) != want:
                shown = ", ".join(str(d) for d in lead)
                raise ValueError(
                    f"y_true must be class ids of shape ({shown}) or rows of shape ({shown}, {n_classes}) "
                    f"matching y_pred {tuple(pred_shape)}, got shape {tuple(y.shape)}"
                )
        y = y.reshape(-1) if ids else y.reshape(-1, y.shape[-1])
        if n_samples is not None and y.shape[0] != n_samples:
            raise ValueError(f"y_true must have one target per sample ({n_samples}), got {y.shape[0]}")
        w = None
        if self.class_weights is not None:
            if len(self.class_weights) != n_classes:
                raise ValueError(
                    f"class_weights must have one weight per class ({n_classes}), "
                    f"got {len(self.class_weights)}"
                )
            w = self._weights(xp, dtype)
        if weights is not None and lead is not None and tuple(weights.shape) != lead:
            if weights.ndim >= len(lead) or tuple(weights.shape) != lead[: weights.ndim]:
                raise ValueError(
                    f"sample_weight of {type(self).__name__} weighs the positions {lead} of y_pred "
                    f"{tuple(pred_shape)}: it must have the shape of their leading axes, got "
                    f"{tuple(weights.shape)}"
                )
            # a sample's weight weighs each of its positions (the steps of a sequence)
            spread = weights.reshape(tuple(weights.shape) + (1,) * (len(lead) - weights.ndim))
            weights = xp.broadcast_to(spread, lead)
        iw = None if weights is None else weights.reshape(-1).astype(dtype, copy=False)
        if ids:
            if y.dtype.kind not in "iu":
                if y.dtype.kind != "f":
                    raise TypeError(f"y_true class ids must be integers, got dtype {y.dtype}")
                y = y.astype(np.int64)
            t = xp.zeros((len(y), n_classes), dtype=dtype)
            t[xp.arange(len(y)), y] = 1.0
            if w is None:
                denom = len(y) if iw is None else iw.sum()
            else:
                denom = w[y].sum() if iw is None else (w[y] * iw).sum()
        elif y.ndim == 2 and y.shape[1] == n_classes:
            t = y.astype(dtype, copy=True)
            if w is not None and self.rows_weigh_by_class:  # fit's class_weight: each row's class weight
                per_row = t @ w
                denom = per_row.sum() if iw is None else (per_row * iw).sum()
            else:
                denom = len(y) if iw is None else iw.sum()
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
        if iw is not None:
            t *= iw[:, None]
        return t, denom

    def _targets(self, z: Any, y_true: Any, weights: Any) -> tuple[Any, Any, Any]:
        """The predictions as item rows ``(items, C)``, and T and D."""
        rows = z.reshape(-1, z.shape[-1])
        t, denom = self.effective_targets(
            y_true, z.shape[-1], z.dtype.type, len(rows), weights=weights, pred_shape=tuple(z.shape)
        )
        return rows, t, denom

    def terms_logits(self, z: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        _check_classes(z)
        rows, t, denom = self._targets(z, y_true, weights)
        return F.softmax_cross_entropy_sum(rows, t), denom

    def backward_logits(self, z: Any, y_true: Any, y_pred: Any = None, weights: Any = None) -> Any:
        _check_classes(z)
        rows, t, denom = self._targets(z, y_true, weights)
        p = F.softmax(rows)[0] if y_pred is None else y_pred.reshape(-1, z.shape[-1])
        return F.softmax_cross_entropy_backward(p, t, _inverse(denom, z.dtype.type)).reshape(z.shape)

    def link(self, z: Any) -> Any:
        return F.softmax(z)[0]

    def get_config(self) -> dict[str, Any]:
        w = None if self.class_weights is None else [float(v) for v in self.class_weights]
        return {"class_weights": w, "label_smoothing": self.label_smoothing}


def _inverse(denom: Any, dtype: Any) -> Any:
    """1/D as the gradient's dtype: a Python number, or a device array; 0 where D = 0 (nothing weighs: no
    gradient, as the loss then adds nothing)."""
    if backend.is_array(denom):
        d = denom.astype(dtype)
        return dtype(1) / (d + (d == 0)) * (d != 0)
    return dtype(1.0 / denom if denom else 0.0)


@registry.register(aliases=("categorical_crossentropy", "sparse_categorical_crossentropy", "crossentropy"))
class CrossEntropy(_Categorical):
    """Categorical cross-entropy on probabilities ŷ (rows summing to 1).

    ``L = −Σ_{i,c} T[i, c]·log ŷ[i, c] / D`` (see the module docstring for T and D), with log ŷ clamped at
    −100 so that ŷ = 0 gives a finite value.

    Gradient: dL/dŷ = −T / (D · max(ŷ, 1e-12)) — the floor is the documented guard against division by
    zero. After a Softmax output layer the network never uses this: it fuses the two and uses
    ``(softmax(z)·Σ_c T − T)/D`` with respect to the logits z.

    With ``from_logits=True`` (Keras's argument) it is :class:`SoftmaxCrossEntropy`: it takes the logits z,
    applies the softmax itself (fused and stable), and ``predict`` returns probabilities; it trains bitwise
    as SoftmaxCrossEntropy. Without it the output must be a softmax: a linear, ReLU or tanh last layer is
    refused when the model is built, naming both fixes. Keras's ``"sparse_categorical_crossentropy"`` and
    ``"categorical_crossentropy"`` name this class (both target forms are taken).

    Args:
        class_weights: optional weight per class (PyTorch's ``weight``).
        label_smoothing: ε in [0, 1] (PyTorch's ``label_smoothing``).
        from_logits: the input is logits z (the loss applies the softmax) rather than probabilities.

    Raises:
        ValueError: for class weights or a label smoothing out of range.
        TypeError: when ``from_logits`` is not a bool.
    """

    def __init__(
        self, class_weights: Any = None, label_smoothing: float = 0.0, *, from_logits: bool = False
    ) -> None:
        super().__init__(class_weights, label_smoothing)
        self.from_logits = _flag(from_logits, "from_logits")

    @property
    def takes_logits(self) -> bool:  # type: ignore[override]
        """Whether the input is logits (``from_logits``)."""
        return self.from_logits

    @property
    def input_range(self) -> tuple[float, float] | None:  # type: ignore[override]
        """``None`` for logits, else [0, 1] (rows that sum to 1: :attr:`needs_distribution`)."""
        return None if self.from_logits else (0.0, 1.0)

    @property
    def needs_distribution(self) -> bool:  # type: ignore[override]
        """True unless the input is logits."""
        return not self.from_logits

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits}

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        if self.from_logits:
            return self.terms_logits(y_pred, y_true, weights)
        _check_classes(y_pred)
        rows, t, denom = self._targets(y_pred, y_true, weights)
        return -(t * _floored_log(rows)).sum(), denom

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        if self.from_logits:
            return self.backward_logits(y_pred, y_true, None, weights)
        _check_classes(y_pred)
        rows, t, denom = self._targets(y_pred, y_true, weights)
        g = t / get_array_module(y_pred).maximum(rows, GRAD_EPS)
        g *= -_inverse(denom, y_pred.dtype.type)
        return g.reshape(y_pred.shape)


@registry.register(aliases=("softmax_cross_entropy",))
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

    Raises:
        ValueError: for class weights or a label smoothing out of range.
    """

    takes_logits = True

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        return self.terms_logits(y_pred, y_true, weights)

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        return self.backward_logits(y_pred, y_true, None, weights)


#: Keras's class names (``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``): the same classes.
CategoricalCrossentropy = CrossEntropy
SparseCategoricalCrossentropy = CrossEntropy
BinaryCrossentropy = BinaryCrossEntropy


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_classes(a: Any) -> None:
    if a.ndim < 2:
        raise ValueError(f"y_pred must have shape (N, ..., classes), got shape {tuple(a.shape)}")


def _check_class_ids(y: np.ndarray, n_classes: int) -> None:
    if y.dtype.kind not in "iu":
        if y.dtype.kind != "f" or not np.all(y == np.floor(y)):
            raise TypeError(f"y_true class ids must be integers, got dtype {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"y_true class ids must be in [0, {n_classes - 1}], "
            f"got values in [{int(y.min())}, {int(y.max())}]"
        )


def get(loss: str | Loss | dict | type) -> Loss:
    """Return a loss from a name (``"mse"``, ``"SoftmaxCrossEntropy"``, Keras's
    ``"sparse_categorical_crossentropy"``…), a serialized spec, a class or an instance.

    Args:
        loss: a registered name or alias, a ``{"class": name, "config": {...}}`` spec, a :class:`Loss`
            class (instantiated with no arguments) or an instance (returned as it is).

    Returns:
        The loss.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else (a plain function says how to give a loss of your own: neuro has no
            automatic differentiation, so its gradient must come with it).
    """
    if callable(loss) and not isinstance(loss, (type, Loss)):
        name = getattr(loss, "__name__", type(loss).__name__)
        raise TypeError(
            f"loss {name!r} is a function; neuro needs its gradient too: subclass neuro.losses.SampleLoss "
            "and write sample_losses(y_pred, y_true) and sample_gradients(y_pred, y_true) (see the training "
            "guide, 'Your own losses and metrics')"
        )
    return registry.get("loss", loss, Loss)


# -- more losses, with Keras's names -------------------------------------------------------------------------
# Each follows MeanSquaredError's reduction: the per-value losses of Keras's formula are summed over the last
# axis and averaged over the m positions (the samples, and the steps of a sequence; with weights w:
# Σ w·loss / Σ w), and the gradient includes that 1/m (or w/Σw). Keras averages an elementwise loss over the
# last axis instead, so for a last axis of D values Keras's number is this one divided by D (they agree for
# one output). CategoricalHinge and CosineSimilarity reduce each row along an axis to one number first, as
# in Keras.

#: Keras's ``backend.epsilon()``: the clip of KLDivergence, the shift in Poisson's log, CosineSimilarity's
#: smallest norm.
KERAS_EPSILON = 1e-7


def _terms(per: Any, n: int, weights: Any) -> tuple[Any, Any]:
    """MeanSquaredError's ``(Σ per, m)`` over ``n`` items, or ``(Σ w·per, Σ w)`` with weights over the
    leading axes (a sample's weight counted once per item of it)."""
    if weights is None:
        return per.sum(), n
    return (per * _spread(weights, per)).sum(), _weight_sum(weights, n)


def _mean_gradient(g: Any, n: int, weights: Any) -> Any:
    """MeanSquaredError's 1/D applied to the per-value derivative g, in place: g/m, or g·w/Σw."""
    if weights is None:
        g *= g.dtype.type(1.0 / n)
        return g
    g *= _spread(weights, g) * (1.0 / _divisor(_weight_sum(weights, n)))
    return g


def _floored_log(p: Any) -> Any:
    """``max(log p, −100)`` (:data:`LOG_FLOOR`, PyTorch's clamp) in p's dtype, exactly: the floor is applied
    to the logarithm, since exp(−100) is subnormal in float32 (its logarithm is −99.98); p is first floored at
    the smallest positive float, so that log 0 is never taken."""
    xp = get_array_module(p)
    if p.dtype.kind != "f":  # integer or boolean predictions (a direct call): as NumPy promotes them
        p = p.astype(np.float64)
    dt = p.dtype.type
    out = xp.log(xp.maximum(p, dt(np.finfo(p.dtype).smallest_subnormal)))
    return xp.maximum(out, dt(LOG_FLOOR), out=out)


def _finite_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not 0.0 < float(value) < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _host_targets(y_true: Any) -> np.ndarray | None:
    """The targets as a host array when they are on the host (device targets are never read back)."""
    return np.asarray(y_true) if get_array_module(y_true) is np else None


def _check_row_weights(weights: Any, y_pred: Any, loss: str) -> None:
    if weights is not None and weights.ndim >= y_pred.ndim:
        raise ValueError(
            f"sample_weight of {loss} weighs the rows of y_pred {tuple(y_pred.shape)}, so it must have at "
            f"most {y_pred.ndim - 1} axes, got shape {tuple(weights.shape)}"
        )


@registry.register(aliases=("huber_loss",))
class Huber(Loss):
    """Huber loss of the error ``e = ŷ − y``, quadratic up to ``delta`` and linear beyond (Keras's ``huber``,
    PyTorch's ``HuberLoss``, for one output; summed over the outputs as every loss here, so k times theirs
    for k outputs).

    ``ℓ(e) = e²/2`` for ``|e| ≤ delta``, ``delta·|e| − delta²/2`` otherwise;
    ``L = (1/m) Σ_i Σ_j ℓ(ŷ_ij − y_ij)`` (with weights w: ``Σ_i w_i Σ_j ℓ / Σ w``).

    Gradient: dL/dŷ = clip(ŷ − y, −delta, delta)/m (with weights: w·clip(ŷ − y, −delta, delta)/Σw).

    Args:
        delta: where the loss turns from quadratic to linear, a finite number > 0 (default 1.0).

    Raises:
        ValueError: when ``delta`` is not a finite number > 0.
    """

    def __init__(self, delta: float = 1.0) -> None:
        self.delta = _finite_positive("delta", delta)

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        xp = get_array_module(y_pred)
        d = y_pred - _regression_target(y_pred, y_true)
        a = xp.abs(d)
        delta = d.dtype.type(self.delta)
        half = d.dtype.type(0.5)
        per = xp.where(a <= delta, half * (d * d), delta * a - half * (delta * delta))
        return _terms(per, _positions(y_pred), weights)

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        d = y_pred - _regression_target(y_pred, y_true)
        delta = d.dtype.type(self.delta)
        return _mean_gradient(get_array_module(d).clip(d, -delta, delta), _positions(y_pred), weights)

    def get_config(self) -> dict[str, Any]:
        return {"delta": self.delta}


@registry.register(aliases=("logcosh",))
class LogCosh(Loss):
    """Logarithm of the hyperbolic cosine of the error ``e = ŷ − y`` (Keras's ``log_cosh``): about e²/2 for
    small errors and |e| − log 2 for large ones.

    ``L = (1/m) Σ_i Σ_j log cosh(ŷ_ij − y_ij)``, computed as ``log1p(2·sinh²(e/2))`` for |e| < 1 (no loss of
    digits for tiny errors, where Keras's ``e + softplus(−2e) − log 2`` cancels) and
    ``|e| + log1p(exp(−2|e|)) − log 2`` beyond (no overflow).

    Gradient: dL/dŷ = tanh(ŷ − y)/m (with weights w: w·tanh(ŷ − y)/Σw).
    """

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        xp = get_array_module(y_pred)
        d = y_pred - _regression_target(y_pred, y_true)
        typ = d.dtype.type
        a = xp.abs(d)
        sh = xp.sinh(xp.minimum(a, typ(1)) * typ(0.5))
        near = xp.log1p(typ(2) * (sh * sh))
        far = a + xp.log1p(xp.exp(a * typ(-2))) - typ(math.log(2.0))
        return _terms(xp.where(a < typ(1), near, far), _positions(y_pred), weights)

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        d = y_pred - _regression_target(y_pred, y_true)
        return _mean_gradient(get_array_module(d).tanh(d), _positions(y_pred), weights)


@registry.register(aliases=("kld", "kullback_leibler_divergence"))
class KLDivergence(Loss):
    """Kullback-Leibler divergence of the predicted distribution ŷ from the target y (Keras's
    ``kl_divergence``): both are clipped to ``[1e-7, 1]`` first, as Keras does.

    ``L = (1/m) Σ_i Σ_j t_ij · log(t_ij / p_ij)`` with ``t = clip(y, 1e-7, 1)``, ``p = clip(ŷ, 1e-7, 1)``;
    for targets and predictions inside the clip this is PyTorch's ``kl_div(log ŷ, y, reduction="sum")/m``.
    Targets must lie in [0, 1].

    Gradient: dL/dŷ = −(t/p)·[1e-7 ≤ ŷ ≤ 1]/m (0 where the clip holds ŷ; with weights w: ·w/Σw instead of
    1/m).
    """

    input_range = (0.0, 1.0)

    def check_targets(self, y_pred: Any, y_true: Any) -> None:
        y = _host_targets(y_true)
        if y is not None and y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(
                "y_true of KLDivergence must be probabilities in [0, 1], "
                f"got values in [{y.min()}, {y.max()}]"
            )

    def _clipped(self, y_pred: Any, y_true: Any) -> tuple[Any, Any]:
        xp = get_array_module(y_pred)
        eps, one = y_pred.dtype.type(KERAS_EPSILON), y_pred.dtype.type(1)
        return xp.clip(_regression_target(y_pred, y_true), eps, one), xp.clip(y_pred, eps, one)

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        t, p = self._clipped(y_pred, y_true)
        return _terms(t * get_array_module(t).log(t / p), _positions(y_pred), weights)

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        t, p = self._clipped(y_pred, y_true)
        typ = y_pred.dtype.type
        inside = (y_pred >= typ(KERAS_EPSILON)) & (y_pred <= typ(1))
        g = get_array_module(t).where(inside, -(t / p), typ(0))
        return _mean_gradient(g, _positions(y_pred), weights)


@registry.register
class Poisson(Loss):
    """Poisson negative log-likelihood of counts y with predicted rates ŷ, up to a constant (Keras's
    ``poisson``; PyTorch's ``PoissonNLLLoss(log_input=False, eps=1e-7)``).

    ``L = (1/m) Σ_i Σ_j (ŷ_ij − y_ij · log(ŷ_ij + 1e-7))``. Predictions must be ≥ 0 (an exponential or
    softplus output); targets must be ≥ 0.

    Gradient: dL/dŷ = (1 − y/(ŷ + 1e-7))/m (with weights w: w·(1 − y/(ŷ + 1e-7))/Σw).
    """

    input_range = (0.0, math.inf)

    def check_targets(self, y_pred: Any, y_true: Any) -> None:
        y = _host_targets(y_true)
        if y is not None and y.size and y.min() < 0:
            raise ValueError(f"y_true of Poisson must be counts >= 0, got a minimum of {y.min()}")

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        y = _regression_target(y_pred, y_true)
        eps = y_pred.dtype.type(KERAS_EPSILON)
        return _terms(y_pred - y * get_array_module(y).log(y_pred + eps), _positions(y_pred), weights)

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        y = _regression_target(y_pred, y_true)
        typ = y_pred.dtype.type
        return _mean_gradient(typ(1) - y / (y_pred + typ(KERAS_EPSILON)), _positions(y_pred), weights)


class _Hinge(Loss):
    """Shared label handling of :class:`Hinge` and :class:`SquaredHinge`."""

    def check_targets(self, y_pred: Any, y_true: Any) -> None:
        y = _host_targets(y_true)
        if y is None or not y.size:
            return
        values = set(np.unique(y).tolist())
        if not (values <= {-1, 1} or values <= {0, 1}):
            shown = sorted(values)[:6]
            raise ValueError(
                f"y_true of {type(self).__name__} must be labels -1/1, or 0/1 (converted to -1/1 as Keras "
                f"does), got values {shown}"
            )

    @staticmethod
    def labels(y_pred: Any, y_true: Any) -> Any:
        """The targets as ±1 labels: ``2y − 1`` when every value of the batch is 0 or 1, else unchanged
        (Keras's ``convert_binary_labels_to_hinge``; decided on the device, nothing read back).

        Args:
            y_pred: the predictions (their shape and dtype).
            y_true: the targets.

        Returns:
            The labels, of the shape and dtype of ``y_pred``.
        """
        y = _regression_target(y_pred, y_true)
        xp = get_array_module(y)
        typ = y.dtype.type
        binary = xp.all((y == typ(0)) | (y == typ(1)))
        return xp.where(binary, typ(2) * y - typ(1), y)

    def _margins(self, y_pred: Any, y_true: Any) -> tuple[Any, Any]:
        y = self.labels(y_pred, y_true)
        return y, get_array_module(y).maximum(y_pred.dtype.type(1) - y * y_pred, y_pred.dtype.type(0))


@registry.register
class Hinge(_Hinge):
    """Hinge loss of labels y ∈ {−1, 1} and scores ŷ (Keras's ``hinge``).

    ``L = (1/m) Σ_i Σ_j max(1 − y_ij·ŷ_ij, 0)``. Labels 0/1 are converted to −1/1 as Keras does: when every
    target of the batch is 0 or 1 they become ``2y − 1`` (a batch of ±1 labels is left as it is); other
    targets are an error.

    Gradient: dL/dŷ = −y·[1 − y·ŷ > 0]/m (0 at the kink; with weights w: ·w/Σw instead of 1/m).
    """

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        return _terms(self._margins(y_pred, y_true)[1], _positions(y_pred), weights)

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        y, margin = self._margins(y_pred, y_true)
        g = get_array_module(y).where(margin > 0, -y, y.dtype.type(0))
        return _mean_gradient(g, _positions(y_pred), weights)


@registry.register
class SquaredHinge(_Hinge):
    """Squared hinge loss of labels y ∈ {−1, 1} and scores ŷ (Keras's ``squared_hinge``).

    ``L = (1/m) Σ_i Σ_j max(1 − y_ij·ŷ_ij, 0)²``, with 0/1 labels converted to −1/1 as :class:`Hinge` does.

    Gradient: dL/dŷ = −2·y·max(1 − y·ŷ, 0)/m (with weights w: ·w/Σw instead of 1/m).
    """

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        margin = self._margins(y_pred, y_true)[1]
        return _terms(margin * margin, _positions(y_pred), weights)

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        y, margin = self._margins(y_pred, y_true)
        g = y * margin
        g *= y.dtype.type(-2)
        return _mean_gradient(g, _positions(y_pred), weights)


@registry.register
class CategoricalHinge(Loss):
    """Categorical (Crammer-Singer style) hinge loss of one-hot targets y and scores ŷ (Keras's
    ``categorical_hinge``), one value per row along the last axis.

    ``pos_i = Σ_c y_ic·ŷ_ic``, ``neg_i = max_c (1 − y_ic)·ŷ_ic`` and
    ``L = (1/m) Σ_i max(neg_i − pos_i + 1, 0)`` (each position of a sequence output ``(N, T, C)`` is a row;
    with weights w over the rows: ``Σ w·ℓ / Σ w``). Targets are rows of the shape of ŷ.

    Gradient: dL/dŷ_ic = ((1 − y_ic)·[c = c*_i] − y_ic)·[neg_i − pos_i + 1 > 0]/m, c*_i the first index of
    the maximum of (1 − y_i)·ŷ_i (with weights w: ·w_i/Σw instead of 1/m).
    """

    def _parts(self, y_pred: Any, y_true: Any) -> tuple[Any, Any, Any]:
        if y_pred.ndim < 2:
            raise ValueError(
                f"y_pred of CategoricalHinge must have shape (N, ..., classes), got {tuple(y_pred.shape)}"
            )
        y = _regression_target(y_pred, y_true)
        xp = get_array_module(y)
        rest = (y.dtype.type(1) - y) * y_pred
        margin = rest.max(axis=-1) - (y * y_pred).sum(axis=-1) + y.dtype.type(1)
        return y, rest, xp.maximum(margin, y.dtype.type(0))

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        _check_row_weights(weights, y_pred, "CategoricalHinge")
        return _terms(self._parts(y_pred, y_true)[2], _positions(y_pred), weights)

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        _check_row_weights(weights, y_pred, "CategoricalHinge")
        y, rest, margin = self._parts(y_pred, y_true)
        xp = get_array_module(y)
        typ = y.dtype.type
        top = xp.arange(y.shape[-1]) == rest.argmax(axis=-1)[..., None]
        g = xp.where(top, typ(1) - y, typ(0)) - y
        g *= (margin > 0)[..., None]
        return _mean_gradient(g, _positions(y_pred), weights)


@registry.register
class CosineSimilarity(Loss):
    """Negative cosine similarity of predictions and targets along ``axis`` (Keras's
    ``cosine_similarity``): −1 when they point the same way, 0 when orthogonal or when either is zero.

    With ``a/‖a‖ε = a / max(‖a‖, 1e-7)`` (Keras 3's ``normalize``), each row gives
    ``ℓ_i = −Σ_c (y_i/‖y_i‖ε)_c · (ŷ_i/‖ŷ_i‖ε)_c`` and ``L = (1/m) Σ_i ℓ_i`` (each position of a sequence
    output is a row; with weights w over the rows: ``Σ w·ℓ / Σ w``).

    Gradient: with t = y/‖y‖ε, n = ‖ŷ‖ and cos = Σ t·ŷ/n: dL/dŷ = −(t − cos·ŷ/n)/n/m where n > 1e-7,
    and −t/(1e-7·m) where the norm is floored (with weights w: ·w/Σw instead of 1/m).

    Args:
        axis: the axis of the vectors (default −1, the last), any axis but the batch axis.

    Raises:
        ValueError: when ``axis`` is not an integer, or (when called) names the batch axis or no axis of
            the predictions.
    """

    def __init__(self, axis: int = -1) -> None:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"axis must be an integer (not the batch axis 0), got {axis!r}")
        self.axis = int(axis)

    def _moved(self, y_pred: Any, y_true: Any, weights: Any) -> tuple[Any, Any]:
        """Predictions and targets with the vector axis moved last (the weights must weigh axes before it,
        which keep their places)."""
        nd = y_pred.ndim
        if not (-nd <= self.axis < nd) or self.axis % nd == 0:
            raise ValueError(
                f"axis of CosineSimilarity must be one of the axes 1..{nd - 1} (or -{nd - 1}..-1) of y_pred "
                f"{tuple(y_pred.shape)}, got {self.axis}"
            )
        ax = self.axis % nd
        if weights is not None and weights.ndim > ax:
            raise ValueError(
                f"sample_weight of CosineSimilarity must weigh only axes before its vector axis {ax} of "
                f"y_pred {tuple(y_pred.shape)}, got shape {tuple(weights.shape)}"
            )
        xp = get_array_module(y_pred)
        y = _regression_target(y_pred, y_true)
        return xp.moveaxis(y_pred, ax, -1), xp.moveaxis(y, ax, -1)

    @staticmethod
    def _parts(p: Any, y: Any) -> tuple[Any, Any, Any, Any]:
        """``(t, p/‖p‖ε, ‖p‖, ‖p‖ε)`` with the norms kept as axes of 1."""
        xp = get_array_module(p)
        eps = p.dtype.type(KERAS_EPSILON)
        t = y / xp.maximum(xp.sqrt((y * y).sum(axis=-1, keepdims=True)), eps)
        n = xp.sqrt((p * p).sum(axis=-1, keepdims=True))
        floored = xp.maximum(n, eps)
        return t, p / floored, n, floored

    def terms(self, y_pred: Any, y_true: Any, weights: Any = None) -> tuple[Any, Any]:
        p, y = self._moved(y_pred, y_true, weights)
        t, unit, _, _ = self._parts(p, y)
        return _terms(-(t * unit).sum(axis=-1), _positions(p), weights)

    def backward(self, y_pred: Any, y_true: Any, weights: Any = None) -> Any:
        p, y = self._moved(y_pred, y_true, weights)
        xp = get_array_module(p)
        t, unit, n, floored = self._parts(p, y)
        typ = p.dtype.type
        cos = xp.where(n > typ(KERAS_EPSILON), (t * unit).sum(axis=-1, keepdims=True), typ(0))
        g = (cos * unit - t) / floored
        g = _mean_gradient(g, _positions(p), weights)
        return xp.ascontiguousarray(xp.moveaxis(g, -1, self.axis % y_pred.ndim))

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}

