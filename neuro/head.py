"""The output head: how the last activation of a network meets its loss.

A :class:`Head` is chosen once, when the network is built (:func:`choose`), and answers the three questions
the training step asks: what the loss sees, the gradient to send back into the layers, and the predictions.

- :class:`FusedHead`: the last activation is the one the loss fuses with (softmax with a cross-entropy,
  sigmoid with binary cross-entropy), either as the activation of the output layer or as a standalone last
  layer. The loss sees the pre-activation values z, the gradient ``dL/dz`` is the fused one
  (``(softmax(z)·Σ T − T)/D``, the design note's ``(Ŷ − Y)/m``), and the predictions are the activation of z.
  Nothing divides by Ŷ.
- :class:`LinkHead`: the loss takes logits and applies its own link (SoftmaxCrossEntropy after a linear
  output): the loss sees the output, and the predictions are the link of it (probabilities).
- :class:`PlainHead`: everything else: the loss sees the output, which is also the prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neuro.layers.activated import ActivatedLayer
from neuro.layers.activation import Activation
from neuro.layers.base import Layer
from neuro.losses import Loss


class Head:
    """Runs the layers of a network up to the loss and back.

    The base class hands the loss the network's output ŷ and uses it as the prediction; subclasses change
    what the loss sees, the predictions, and the gradient sent back.

    Gradient: the base head sends back the loss's ``loss.backward(out, y)``, its gradient with respect to
    what it sees (dL/dŷ for a plain loss), and each layer's ``backward`` carries it on, in reverse order.

    Args:
        layers: the network's layers.
        loss: its loss.
    """

    def __init__(self, layers: Sequence[Layer], loss: Loss) -> None:
        self.layers = list(layers)
        self.loss = loss

    def forward(self, x: Any, training: bool, rng: Any = None) -> tuple[Any, Any, list[Any]]:
        """Return ``(loss_input, predictions, contexts)`` for a batch.

        Args:
            x: input batch ``(N, ...)``.
            training: run the layers in training mode (keep the contexts their backward needs).
            rng: the random-number source of stochastic layers (dropout), passed to each layer.

        Returns:
            What the loss sees, the predictions, and one context per layer run (each ``None`` in
            inference).
        """
        ctxs: list[Any] = []
        for layer in self.layers:
            x, ctx = layer.forward(x, training, rng)
            ctxs.append(ctx)
        return x, self.predictions(x), ctxs

    def predictions(self, out: Any) -> Any:
        """The predictions from what the loss sees.

        Args:
            out: what the loss sees (the first item of :meth:`forward`'s result).

        Returns:
            The predictions: ``out`` itself here.
        """
        return out

    def terms(self, out: Any, y: Any) -> tuple[Any, Any]:
        """The loss's ``(sum, normaliser)`` on a batch (see :meth:`neuro.losses.Loss.terms`).

        Args:
            out: what the loss sees.
            y: the targets of the batch.

        Returns:
            ``(sum of per-sample losses, normaliser)``, both on the device.
        """
        return self.loss.terms(out, y)

    def backward(self, out: Any, pred: Any, y: Any, ctxs: list[Any]) -> None:
        """Send the loss's gradient back through the layers, filling their ``grads``.

        Args:
            out: what the loss saw (from :meth:`forward`).
            pred: the predictions of :meth:`forward` (the fused head reuses them; others ignore them).
            y: the targets of the batch.
            ctxs: the contexts of the training :meth:`forward`, one per layer run.
        """
        grad = self.loss.backward(out, y)
        for layer, ctx in zip(reversed(self.layers), reversed(ctxs), strict=True):
            grad = layer.backward(grad, ctx)


class PlainHead(Head):
    """The loss sees the network's output, which is also the prediction.

    Gradient: dL/dŷ, the loss's :meth:`~neuro.losses.Loss.backward` of the output ŷ (1/m included), sent into
    the last layer's backward.
    """


class LinkHead(Head):
    """The loss takes logits and owns the link (SoftmaxCrossEntropy after a linear output).

    The loss sees the output z (the logits); the predictions are ``loss.link(z)`` (probabilities).

    Gradient: the loss's gradient with respect to its logits, dL/dz = ``loss.backward(z, y)`` (for
    SoftmaxCrossEntropy ``(softmax(z)·Σ_c T − T)/D``), sent into the last layer's backward.
    """

    def predictions(self, out: Any) -> Any:
        return self.loss.link(out)


class FusedHead(Head):
    """The last activation is fused with the loss: the loss sees its input z and sends back dL/dz.

    The activation is either the output layer's own (an :class:`~neuro.layers.activated.ActivatedLayer`,
    whose affine part then runs alone) or a standalone last :class:`~neuro.layers.activation.Activation`
    layer (which is skipped). The predictions are the activation of z; nothing divides by Ŷ.

    Gradient: the fused dL/dz = ``loss.backward_logits(z, y, ŷ)``: (softmax(z)·Σ_c T − T)/D for softmax with
    a cross-entropy (the design note's (Ŷ − Y)/m for one-hot targets), (σ(z) − y)/m for sigmoid with binary
    cross-entropy; it enters the output layer's ``affine_backward`` (or the layer before a standalone
    activation).

    Args:
        layers: the network's layers; the last is the fused activation or ends in it.
        loss: a loss whose ``fused_activation`` is that activation.
    """

    def __init__(self, layers: Sequence[Layer], loss: Loss) -> None:
        super().__init__(layers, loss)
        last = self.layers[-1]
        self.activation = last.activation if isinstance(last, ActivatedLayer) else last
        self.body = self.layers[:-1] if isinstance(last, Activation) else self.layers

    def forward(self, x: Any, training: bool, rng: Any = None) -> tuple[Any, Any, list[Any]]:
        ctxs: list[Any] = []
        for layer in self.body[:-1] if self.body is self.layers else self.body:
            x, ctx = layer.forward(x, training, rng)
            ctxs.append(ctx)
        if self.body is self.layers:  # the output layer's affine part; its activation is the loss's
            x, ctx = self.layers[-1].affine_forward(x, training)
            ctxs.append(ctx)
        return x, self.predictions(x), ctxs

    def predictions(self, z: Any) -> Any:
        return self.activation(z)

    def terms(self, z: Any, y: Any) -> tuple[Any, Any]:
        return self.loss.terms_logits(z, y)

    def backward(self, z: Any, pred: Any, y: Any, ctxs: list[Any]) -> None:
        grad = self.loss.backward_logits(z, y, pred)
        layers = self.body
        if self.body is self.layers:
            grad = self.layers[-1].affine_backward(grad, ctxs[-1])
            layers, ctxs = self.layers[:-1], ctxs[:-1]
        for layer, ctx in zip(reversed(layers), reversed(ctxs), strict=True):
            grad = layer.backward(grad, ctx)


def choose(layers: Sequence[Layer], loss: Loss) -> Head:
    """Pick the head for a network's layers and loss (see the module docstring).

    :class:`FusedHead` when the loss fuses with the last activation (a standalone activation layer after at
    least one other layer, or the activation of the output layer), else :class:`LinkHead` for a loss that
    takes logits, else :class:`PlainHead`.

    Args:
        layers: the network's layers, in order.
        loss: the network's loss.

    Returns:
        A new head over ``layers`` and ``loss``.

    Raises:
        ValueError: for a network without layers.
    """
    if not layers:
        raise ValueError("the network has no layers; add some with add()")
    last = layers[-1]
    fused = loss.fused_activation
    if fused is not None:
        if isinstance(last, Activation) and last.key == fused and len(layers) > 1:
            return FusedHead(layers, loss)
        if isinstance(last, ActivatedLayer) and last.activation.key == fused:
            return FusedHead(layers, loss)
    return LinkHead(layers, loss) if loss.takes_logits else PlainHead(layers, loss)
