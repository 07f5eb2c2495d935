"""Layers made of an affine part followed by an activation (Dense, Conv2D)."""

from __future__ import annotations

from typing import Any

from neuro import registry
from neuro.layers.activation import ReLU
from neuro.layers.activation import get as get_activation
from neuro.layers.base import Layer, defined_by


class ActivatedLayer(Layer):
    """An affine part followed by an activation.

    Subclasses implement :meth:`affine_forward`, which must return a new array (the activation then works
    in place on it), and :meth:`affine_backward`. The output head of a network calls these two directly when
    the loss fuses with the activation (softmax with cross-entropy), so that the loss sees the pre-activation
    values and hands back their gradient.

    Gradient: with z the affine part's output and y = f(z), dL/dz = ``activation.backward(dL/dy)`` (the
    activation's own formula), and :meth:`affine_backward` turns dL/dz into the parameter gradients and
    dL/dx.

    Args:
        activation: activation name, spec or object; ``None`` means linear.
        name: optional layer name.
    """

    def __init__(self, activation: Any = None, name: str | None = None) -> None:
        super().__init__(name=name)
        self.activation = get_activation(activation)

    #: Dense acts on each step alone: a mask passes through (Conv1D and Conv2D, which mix steps, refuse one).
    supports_masking = True

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        z, affine_ctx = self.affine_forward(x, training)
        y, act_ctx = self.activation.forward(z, training, inplace=True)  # z is this call's own array
        return y, ((affine_ctx, act_ctx) if training else None)

    def backward(self, grad: Any, ctx: Any) -> Any:
        affine_ctx, act_ctx = self._require(ctx)
        return self.affine_backward(self.activation.backward(grad, act_ctx), affine_ctx)

    def preactivated_backward(self, grad: Any, ctx: Any) -> Any:
        """:meth:`backward` from dL/dz, the gradient of the activation's input: the layer after this one
        applied the activation's backward already (a max pooling after a ReLU, which sends each window's
        gradient to its maximum only where that maximum is above 0; see :func:`takes_preactivated_gradient`).

        Args:
            grad: dL/dz, of the shape of the output.
            ctx: the context of the training :meth:`forward`.

        Returns:
            dL/d(input), or ``None`` when ``need_input_grad`` is False.
        """
        affine_ctx, _ = self._require(ctx)
        return self.affine_backward(grad, affine_ctx)

    def drop_activation_context(self, ctx: Any) -> Any:
        """``ctx`` without what only the activation's backward reads (its output, for a ReLU): the graph drops
        it right after the forward pass when :meth:`preactivated_backward` will run, so that the output is
        not kept until then.

        Args:
            ctx: the context of the training :meth:`forward`.

        Returns:
            The context :meth:`preactivated_backward` takes.
        """
        affine_ctx, _ = ctx
        return affine_ctx, None

    def affine_forward(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        """The pre-activation values ``z`` and the context of :meth:`affine_backward`.

        Args:
            x: the batch.
            training: keep what :meth:`affine_backward` needs in the returned context.

        Returns:
            ``(z, ctx)``; z must be a new array (the activation may overwrite it); ctx is ``None`` in
            inference.
        """
        raise NotImplementedError

    def affine_backward(self, grad: Any, ctx: Any) -> Any:
        """Take dL/dz, fill ``grads`` and return dL/d(input).

        Args:
            grad: dL/dz, of the shape of z.
            ctx: the context of the training :meth:`affine_forward`.

        Returns:
            dL/d(input), or ``None`` when ``need_input_grad`` is False.
        """
        raise NotImplementedError

    @property
    def regularizers(self) -> dict[str, Any]:
        """This layer's own penalties by parameter name, from its ``kernel_regularizer`` and
        ``bias_regularizer`` (when it has them): a model's ``regularizer`` acts on a kernel that has none."""
        out = {}
        for key in ("kernel", "bias"):
            reg = getattr(self, f"{key}_regularizer", None)
            if reg is not None:
                out[key] = reg
        return out

    def regularizer_config(self) -> dict[str, Any]:
        """The ``kernel_regularizer`` / ``bias_regularizer`` entries of :meth:`get_config` (those that are
        set)."""
        return {f"{k}_regularizer": registry.serialize(r) for k, r in self.regularizers.items()}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": registry.serialize(self.activation)}


def takes_preactivated_gradient(layer: Any) -> bool:
    """Whether ``layer`` ends in a ReLU whose backward the next layer may apply for it: an
    :class:`ActivatedLayer` with a :class:`~neuro.layers.ReLU` activation whose forward and backward passes
    are this library's (a subclass that overrides either one without
    :meth:`ActivatedLayer.preactivated_backward` is not). The graph then runs its backward as
    :meth:`ActivatedLayer.preactivated_backward`.

    Args:
        layer: any layer.

    Returns:
        The answer.
    """
    if not isinstance(layer, ActivatedLayer) or type(layer.activation) is not ReLU:
        return False
    cls = type(layer)
    own = defined_by(cls, "preactivated_backward")
    return (
        defined_by(cls, "backward") is own
        and defined_by(cls, "drop_activation_context") is own
        and defined_by(cls, "forward") in (own, ActivatedLayer)
    )
