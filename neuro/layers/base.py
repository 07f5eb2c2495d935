"""The layer protocol: what a layer must provide to take part in a :class:`~neuro.models.Network`."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro import backend


class Layer:
    """Base class of every layer.

    A layer is built once from the shape of its input (without the batch axis), then runs ``forward`` on
    batches and, in training, ``backward`` with the gradient of the loss with respect to its output. It fills
    ``grads`` (same keys and shapes as ``params``) and returns the gradient with respect to its input. Layers
    *sum* over the batch: the loss owns the 1/m.

    A forward pass with ``training=False`` keeps no cache and changes nothing, so predicting never mutates a
    layer.

    Attributes:
        params: trainable arrays by name (for example ``"kernel"``, ``"bias"``).
        grads: gradients of the loss with respect to ``params``, filled by ``backward``.
        buffers: non-trainable state that is saved with the model (for example running statistics).
        regularizable: names of the params a regularizer acts on (kernels, not biases).
        input_shape: input shape without the batch axis, set by ``build``.
        output_shape: output shape without the batch axis, set by ``build``.
        need_input_grad: set to False by the network for its first layer, which then may skip computing the
            gradient with respect to the data and return ``None``.
    """

    regularizable: tuple[str, ...] = ()

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__.lower()
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.buffers: dict[str, Any] = {}
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self.need_input_grad = True
        self.built = False

    # -- life cycle -------------------------------------------------------------------------------------
    def build(self, input_shape: tuple[int, ...], rng: np.random.Generator | None = None) -> None:
        """Validate ``input_shape``, create parameters and record the output shape.

        Args:
            input_shape: shape of one sample (no batch axis).
            rng: generator that initializers draw from; a fresh unseeded one when ``None``.

        Raises:
            ValueError: when this layer cannot take inputs of that shape.
        """
        input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = tuple(self.compute_output_shape(input_shape))
        self.input_shape = input_shape
        self._create_params(input_shape, rng if rng is not None else np.random.default_rng())
        self.grads = {k: backend.xp.zeros_like(v) for k, v in self.params.items()}
        self.built = True

    def _create_params(self, input_shape: tuple[int, ...], rng: np.random.Generator) -> None:
        """Create ``self.params`` and ``self.buffers``; layers without parameters keep the default."""

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Return the output shape for ``input_shape`` (no batch axis); raise ValueError if invalid."""
        return input_shape

    # -- computation ------------------------------------------------------------------------------------
    def forward(self, x: Any, training: bool = False) -> Any:
        """Compute the output for a batch ``x``; cache what ``backward`` needs only when ``training``."""
        raise NotImplementedError

    def backward(self, grad: Any) -> Any:
        """Take dL/d(output), fill ``self.grads`` and return dL/d(input) (or ``None`` if not needed)."""
        raise NotImplementedError

    # -- description ------------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as plain Python values (used for saving and ``summary``)."""
        return {"name": self.name}

    def count_params(self) -> int:
        """Number of scalar parameters (trainable ones only)."""
        return int(sum(int(np.prod(p.shape)) for p in self.params.values()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class ActivatedLayer(Layer):
    """A layer made of an affine part followed by an activation (Dense, Conv2D).

    Subclasses implement ``_affine_forward``, which must return a new array (the activation then works in
    place on it), and ``_affine_backward``. This class applies the activation and exposes
    ``backward(grad, skip_activation=True)`` so that a loss fused with the activation (softmax with
    cross-entropy) can hand in the gradient with respect to the pre-activation values directly.
    """

    def __init__(self, activation: Any = None, name: str | None = None) -> None:
        from neuro.activations import get as get_activation

        super().__init__(name=name)
        self.activation = get_activation(activation)

    def forward(self, x: Any, training: bool = False) -> Any:
        z = self._affine_forward(x, training)
        return self.activation.forward(z, training, inplace=True)  # z is this call's own array

    def forward_logits(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        """Return ``(z, a)``: the pre-activation values and the activation output."""
        z = self._affine_forward(x, training)
        return z, self.activation.forward(z, training)

    def backward(self, grad: Any, skip_activation: bool = False) -> Any:
        if not skip_activation:
            grad = self.activation.backward(grad)
        return self._affine_backward(grad)

    def _affine_forward(self, x: Any, training: bool) -> Any:
        raise NotImplementedError

    def _affine_backward(self, grad: Any) -> Any:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation.get_config()}
