"""Output heads: how each output of a model meets its loss.

A head is chosen per output when a model gets its losses (:func:`choose`). It does not run layers (the graph
executor does, :mod:`neuro.graph`); it answers three questions about one output: what the loss sees, the
gradient to send back into the graph, and the predictions.

- :class:`FusedHead`: the output's last activation is the one the loss fuses with (softmax with a
  cross-entropy, sigmoid with binary cross-entropy), either as the activation of the output layer or as a
  standalone activation layer, and nothing else reads that output. The head asks the executor to run that
  node without its activation (mode ``"affine"``, or ``"skip"`` for a standalone activation), so the loss
  sees the pre-activation values z; the gradient ``dL/dz`` is the fused one (``(softmax(z)·Σ T − T)/D``, the
  design note's ``(Ŷ − Y)/m``), and the predictions are the activation of z. Nothing divides by Ŷ.
- :class:`LinkHead`: the loss takes logits and applies its own link (SoftmaxCrossEntropy after a linear
  output): the loss sees the output, and the predictions are the link of it (probabilities).
- :class:`PlainHead`: everything else: the loss sees the output, which is also the prediction.

Choosing a head also checks that the output can give the loss what it takes (:func:`check_range`): a loss on
probabilities (CrossEntropy, BinaryCrossEntropy without ``from_logits``, KLDivergence) after a linear, ReLU or
tanh output, or Poisson after an output that can be negative, would train to garbage without a word, so the
model refuses it and the error names the fixes (the activation to end the output in, or ``from_logits=True``).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import warnings
from collections.abc import Iterator
from typing import Any

from neuro.graph import Functional
from neuro.layers.activated import ActivatedLayer
from neuro.layers.activation import Activation
from neuro.layers.flatten import Flatten
from neuro.layers.pooling import (
    AvgPool1D,
    AvgPool2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPool1D,
    GlobalMaxPooling2D,
    MaxPool1D,
    MaxPool2D,
)
from neuro.losses import Loss

_INF = math.inf

#: The values each built-in activation can produce, ``(low, high)`` (closed: float rounding reaches the
#: ends), by key. An activation of your own may say it with a ``value_range`` attribute; one that does not
#: is not checked.
VALUE_RANGES: dict[str, tuple[float, float]] = {  # in the order an error suggests them
    "linear": (-_INF, _INF),
    "softmax": (0.0, 1.0),
    "sigmoid": (0.0, 1.0),
    "softplus": (0.0, _INF),
    "exponential": (0.0, _INF),
    "relu": (0.0, _INF),
    "hard_sigmoid": (0.0, 1.0),
    "leaky_relu": (-_INF, _INF),
    "tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
    "elu": (-_INF, _INF),  # down to −alpha
    "selu": (-1.7581, _INF),
    "gelu": (-0.1700, _INF),
    "swish": (-0.2785, _INF),
    "mish": (-0.3089, _INF),
}

#: Layers that pass values through unchanged (only moved, or the max or mean of some): the range of their
#: input is the range of their output (but rows that sum to 1 may not stay rows).
_PASS_THROUGH = (
    Flatten, MaxPool2D, AvgPool2D, GlobalAveragePooling2D, MaxPool1D, AvgPool1D, GlobalAveragePooling1D,
    GlobalMaxPool1D, GlobalMaxPooling2D,
)  # fmt: skip


class Head:
    """The loss of one output: what it sees, its gradient and the predictions.

    The base class hands the loss the output ŷ and uses it as the prediction.

    Gradient: the base head sends back ``loss.backward(out, y)``, the loss's gradient with respect to what it
    sees (dL/dŷ for a plain loss), into the graph's backward.

    Args:
        loss: the output's loss.

    Attributes:
        mode: how the executor runs the output's node: ``None`` (as it is), ``"affine"`` or ``"skip"``.
        step: the index of that node in the graph's steps (``None`` when the head does not change it).
    """

    mode: str | None = None

    def __init__(self, loss: Loss) -> None:
        self.loss = loss
        self.step: int | None = None

    def predictions(self, out: Any) -> Any:
        """The predictions from what the loss sees.

        Args:
            out: what the loss sees (the executor's value of the output).

        Returns:
            The predictions: ``out`` itself here.
        """
        return out

    def terms(self, out: Any, y: Any, weights: Any = None) -> tuple[Any, Any]:
        """The loss's ``(sum, normaliser)`` on a batch (see :meth:`neuro.losses.Loss.terms`).

        Args:
            out: what the loss sees.
            y: the targets of the batch.
            weights: the output's mask of valid steps (or sample weights), or ``None``.

        Returns:
            ``(sum of per-item losses, normaliser)``, both on the device.
        """
        return self.loss.terms(out, y, weights)

    def gradient(self, out: Any, pred: Any, y: Any, weights: Any = None) -> Any:
        """dL/d(what the loss sees), the 1/D of the mean included.

        Args:
            out: what the loss saw.
            pred: the predictions (the fused head reuses them; others ignore them).
            y: the targets of the batch.
            weights: the output's mask (or sample weights), or ``None``.

        Returns:
            The gradient, of the shape of ``out``.
        """
        return self.loss.backward(out, y, weights)


class PlainHead(Head):
    """The loss sees the model's output, which is also the prediction.

    Gradient: dL/dŷ, the loss's :meth:`~neuro.losses.Loss.backward` of the output ŷ (1/m included).
    """


class LinkHead(Head):
    """The loss takes logits and owns the link (SoftmaxCrossEntropy after a linear output).

    The loss sees the output z (the logits); the predictions are ``loss.link(z)`` (probabilities).

    Gradient: the loss's gradient with respect to its logits, dL/dz = ``loss.backward(z, y)`` (for
    SoftmaxCrossEntropy ``(softmax(z)·Σ_c T − T)/D``).
    """

    def predictions(self, out: Any) -> Any:
        return self.loss.link(out)


class FusedHead(Head):
    """The output's activation is fused with the loss: the loss sees its input z and sends back dL/dz.

    The activation is either the output layer's own (an :class:`~neuro.layers.activated.ActivatedLayer`,
    whose node then runs its affine part alone: mode ``"affine"``) or a standalone
    :class:`~neuro.layers.activation.Activation` layer (passed over: mode ``"skip"``). The predictions are the
    activation of z; nothing divides by Ŷ.

    Gradient: the fused dL/dz = ``loss.backward_logits(z, y, ŷ)``: (softmax(z)·Σ_c T − T)/D for softmax with
    a cross-entropy (the design note's (Ŷ − Y)/m for one-hot targets), (σ(z) − y)/m for sigmoid with binary
    cross-entropy.

    Args:
        loss: a loss whose ``fused_activation`` is the activation.
        layer: the output layer (an ActivatedLayer or the Activation).
        step: the index of its node in the graph's steps.
    """

    def __init__(self, loss: Loss, layer: Any, step: int) -> None:
        super().__init__(loss)
        self.activation = layer.activation if isinstance(layer, ActivatedLayer) else layer
        self.mode = "affine" if isinstance(layer, ActivatedLayer) else "skip"
        self.step = step

    def predictions(self, z: Any) -> Any:
        return self.activation(z)

    def terms(self, z: Any, y: Any, weights: Any = None) -> tuple[Any, Any]:
        return self.loss.terms_logits(z, y, weights)

    def gradient(self, z: Any, pred: Any, y: Any, weights: Any = None) -> Any:
        return self.loss.backward_logits(z, y, pred, weights)


def choose(graph: Any, output: int, loss: Loss) -> Head:
    """Pick the head of one output of a graph (see the module docstring).

    :class:`FusedHead` when the loss fuses with the activation that ends the output and nothing else reads
    that output; else :class:`LinkHead` for a loss that takes logits; else :class:`PlainHead`.

    Args:
        graph: the model's :class:`~neuro.graph.Graph`.
        output: the index of the output.
        loss: that output's loss.

    Returns:
        A new head.

    Raises:
        ValueError: when the output cannot produce what the loss takes (see :func:`check_range`).
    """
    check_range(graph, output, loss)
    tensor = graph.outputs[output]
    step = graph.step_of(tensor)
    fused = loss.fused_activation
    if fused is not None and step is not None and graph.consumers(tensor) == 1:
        layer = graph.steps[step].layer
        if not graph.steps[step].multi_out:
            if isinstance(layer, Activation) and layer.key == fused:
                return FusedHead(loss, layer, step)
            if isinstance(layer, ActivatedLayer) and layer.activation.key == fused:
                return FusedHead(loss, layer, step)
    return LinkHead(loss) if loss.takes_logits else PlainHead(loss)


def value_range(tensor: Any) -> tuple[float, float, bool | None, Any] | None:
    """What the values of a tensor can be, as far as its last activation tells.

    Args:
        tensor: a symbolic tensor of a graph.

    Returns:
        ``(low, high, rows, layer)``: the closed interval of its values, whether its rows along the last axis
        sum to 1 (``True`` for a softmax, ``False`` for an elementwise activation, ``None`` when not known),
        and the layer whose activation says so; ``None`` when nothing is known (a layer with no activation,
        or an activation of your own without a ``value_range``).
    """
    layer = tensor.node.layer
    if isinstance(layer, Functional):  # a nested model: the output of its own graph
        return value_range(layer.graph.outputs[tensor.index])
    if isinstance(layer, _PASS_THROUGH):
        inner = value_range(tensor.node.inbound[0])
        return None if inner is None else (inner[0], inner[1], None, inner[3])
    activation = layer.activation if isinstance(layer, ActivatedLayer) else layer
    if not isinstance(activation, Activation):
        return None
    bounds = getattr(activation, "value_range", None) or VALUE_RANGES.get(activation.key)
    if bounds is None:
        return None
    return float(bounds[0]), float(bounds[1]), activation.key == "softmax", layer


_loading: contextvars.ContextVar[set | None] = contextvars.ContextVar("neuro_loading_heads", default=None)


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """The block compiles a model read from a file: :func:`check_range` warns (once per output), instead of
    refusing, about an output that cannot train (a softmax over one unit), so that a file saved before the
    check loads."""
    token = _loading.set(set())
    try:
        yield
    finally:
        _loading.reset(token)


def check_range(graph: Any, output: int, loss: Loss) -> None:
    """Refuse a loss whose input the output cannot produce (see the module docstring).

    The loss's :attr:`~neuro.losses.Loss.input_range` (and ``needs_distribution``) is compared with the
    output's :func:`value_range`; nothing is refused when either is unknown. The loss's
    :meth:`~neuro.losses.Loss.check_output` sees the output's shape first.

    Args:
        graph: the model's :class:`~neuro.graph.Graph`.
        output: the index of the output.
        loss: that output's loss.

    Raises:
        ValueError: naming the loss, the output's layer and activation, and the fixes: the activations whose
            values the loss takes (softmax for a cross-entropy), and ``from_logits=True`` for a loss that has
            it.
    """
    shape = tuple(graph.outputs[output].sample_shape)
    known = value_range(graph.outputs[output])
    name = graph_output_name(graph, output)
    one_class = ""
    if known is not None and known[2] and shape and shape[-1] == 1:  # a softmax over one unit: always 1
        one_class = f"output {name!r} ends in a softmax over 1 unit ({known[3].name!r}), which is 1"
    elif getattr(loss, "categorical", False) and shape and shape[-1] == 1:
        one_class = (f"{type(loss).__name__} needs one output per class (2 or more on the last axis), got an "
                     f"output {name!r} of shape {shape}, whose softmax is 1")
    if one_class:
        message = (
            f"{one_class} whatever its input: nothing would train. For two classes end the output in "
            'Dense(1, activation="sigmoid") with binary_crossentropy, or in Dense(2, activation="softmax")'
        )
        warned = _loading.get()
        if warned is None:
            raise ValueError(message)
        if (id(graph), output) not in warned:
            warned.add((id(graph), output))
            warnings.warn(f"{message} (the model file is loaded as it was saved)", RuntimeWarning,
                          stacklevel=2)
    loss.check_output(shape)
    want = loss.input_range
    if want is None or known is None:
        return
    low, high, rows, layer = known
    inside = want[0] <= low and high <= want[1]
    if inside and not (loss.needs_distribution and rows is False):
        return
    activation = layer.activation if isinstance(layer, ActivatedLayer) else layer
    kind = type(loss).__name__
    if loss.needs_distribution:
        takes = "probabilities: rows that sum to 1 (a softmax output)"
        fits = ["softmax"]
    else:
        takes = f"values in {_interval(*want)}"
        fits = [k for k, (a, b) in VALUE_RANGES.items() if want[0] <= a and b <= want[1]]
        if want[1] == _INF:  # an unbounded input (rates, counts): the activations unbounded above
            fits = [k for k in fits if VALUE_RANGES[k][1] == _INF]
        if loss.fused_activation in fits:  # the one the loss fuses with first
            fits.remove(loss.fused_activation)
            fits.insert(0, loss.fused_activation)
    if isinstance(layer, ActivatedLayer):
        where = f"{type(layer).__name__} {layer.name!r} with activation {activation.key!r}"
        units = getattr(layer, "units", None) or getattr(layer, "filters", None)
        first = f'activation="{fits[0]}"'
        if units == 1 and fits[0] == "softmax":  # one unit: a softmax over it is always 1
            first = (f'{type(layer).__name__}(2, activation="softmax"), or {type(layer).__name__}(1, '
                     'activation="sigmoid") with binary_crossentropy')
        elif units:
            first = f"{type(layer).__name__}({units}, {first})"
    else:
        where = f"the {activation.key!r} activation layer {layer.name!r}"
        first = f'an activation layer "{fits[0]}" instead'
    fixes = [f"end the output in {' or '.join(repr(f) for f in fits[:3])} ({first})"]
    if hasattr(loss, "from_logits"):
        fixes.append(
            f"let the loss apply the {loss.fused_activation} itself: {kind}(from_logits=True) (keep the "
            "output linear; predict then returns probabilities)"
        )
    name = graph_output_name(graph, output)
    raise ValueError(
        f"{kind} takes {takes}, but output {name!r} ends in {where}, whose values lie in "
        f"{_interval(low, high)}: training would go wrong without a word. Either "
        + "; or ".join(fixes)
        + "."
    )


def graph_output_name(graph: Any, output: int) -> str:
    """The name of an output for messages: the name of the layer that produces it.

    Args:
        graph: the graph.
        output: the index of the output.

    Returns:
        The layer's name.
    """
    return graph.outputs[output].node.layer.name


def _interval(low: float, high: float) -> str:
    def show(v: float) -> str:
        return "inf" if v == _INF else "-inf" if v == -_INF else f"{v:g}"

    return f"{'(' if low == -_INF else '['}{show(low)}, {show(high)}{')' if high == _INF else ']'}"
