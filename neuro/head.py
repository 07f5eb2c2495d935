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
"""

from __future__ import annotations

from typing import Any

from neuro.layers.activated import ActivatedLayer
from neuro.layers.activation import Activation
from neuro.losses import Loss


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
    """
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
