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

    Args:
        layers: the network's layers.
        loss: its loss.
    """

    def __init__(self, layers: Sequence[Layer], loss: Loss) -> None:
        self.layers = list(layers)
        self.loss = loss

    def forward(self, x: Any, training: bool, rng: Any = None) -> tuple[Any, Any, list[Any]]:
        """Return ``(loss_input, predictions, contexts)`` for a batch (contexts empty in inference)."""
        ctxs: list[Any] = []
        for layer in self.layers:
            x, ctx = layer.forward(x, training, rng)
            ctxs.append(ctx)
        return x, self.predictions(x), ctxs

    def predictions(self, out: Any) -> Any:
        """The predictions from what the loss sees."""
        return out

    def terms(self, out: Any, y: Any) -> tuple[Any, Any]:
        """The loss's ``(sum, normaliser)`` on a batch."""
        return self.loss.terms(out, y)

    def backward(self, out: Any, pred: Any, y: Any, ctxs: list[Any]) -> None:
        """Send the loss's gradient back through the layers, filling their ``grads``."""
        grad = self.loss.backward(out, y)
        for layer, ctx in zip(reversed(self.layers), reversed(ctxs), strict=True):
            grad = layer.backward(grad, ctx)


class PlainHead(Head):
    """The loss sees the network's output, which is also the prediction."""


class LinkHead(Head):
    """The loss takes logits and owns the link (SoftmaxCrossEntropy after a linear output)."""

    def predictions(self, out: Any) -> Any:
        return self.loss.link(out)


class FusedHead(Head):
    """The last activation is fused with the loss: the loss sees its input z and sends back dL/dz."""

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
