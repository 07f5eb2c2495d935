"""The layer protocol: what a layer must provide to take part in a :class:`~neuro.models.Network`."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from neuro import backend, registry


class Layer:
    """Base class of every layer: a thin holder of parameters that calls :mod:`neuro.functional`.

    A layer is built once from the shape of its input (without the batch axis). Then:

    - ``layer(x)`` (or ``layer.forward(x)``) computes the output in inference mode. It keeps nothing on
      the layer and changes nothing, so any number of threads may predict at once, also while another
      thread trains.
    - ``y, ctx = layer.forward(x, training=True)`` computes the output in training mode and returns the
      context its backward needs; ``dx = layer.backward(grad, ctx)`` fills ``grads`` (same keys and shapes as
      ``params``) and returns the gradient with respect to its input. Layers *sum* over the batch: the loss
      owns the 1/m.

    A subclass declares its arrays in :meth:`param_specs` / :meth:`buffer_specs` (shape and initializer,
    without allocating anything), computes shapes in :meth:`compute_output_shape`, and implements
    ``forward`` and ``backward``. Its constructor arguments, returned by :meth:`get_config` as plain JSON
    values, rebuild it with :meth:`from_config`.

    Args:
        name: the layer's name; the lower-cased class name when ``None`` or empty.

    Raises:
        TypeError: when ``name`` is neither a string nor ``None``.

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
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {type(name).__name__}")
        self.name = name or type(self).__name__.lower()
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.buffers: dict[str, Any] = {}
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self.need_input_grad = True
        self.built = False
        self._work: dict[str, Any] = {}  # training scratch space, reused between batches

    # -- life cycle -------------------------------------------------------------------------------------
    def build(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator | None = None,
        dtype: Any = None,
        xp: ModuleType = np,
        initialize: bool = True,
    ) -> None:
        """Validate ``input_shape``, create parameters and buffers, and record the output shape.

        Args:
            input_shape: shape of one sample (no batch axis).
            rng: generator that initializers draw from; a fresh unseeded one when ``None``.
            dtype: floating type of the arrays (the backend's default when ``None``).
            xp: the array module (device) the arrays live on.
            initialize: draw initial values; ``False`` allocates zeros (a loader then fills them).

        Raises:
            ValueError: when this layer cannot take inputs of that shape.
        """
        input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = tuple(self.compute_output_shape(input_shape))
        self.input_shape = input_shape
        dt = np.dtype(backend.get_dtype() if dtype is None else dtype).type
        rng = rng if rng is not None else np.random.default_rng()
        self.params = self._make(self.param_specs(input_shape), rng, dt, xp, initialize)
        self.buffers = self._make(self.buffer_specs(input_shape), rng, dt, xp, initialize)
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}
        self.built = True

    @staticmethod
    def _make(specs: dict[str, tuple[tuple[int, ...], Any]], rng: Any, dt: Any, xp: Any, init: bool) -> dict:
        out = {}
        for k, (shape, initializer) in specs.items():
            host = initializer(shape, rng, dt) if init else np.zeros(shape, dt)
            out[k] = backend.to_device(
                np.ascontiguousarray(host, dtype=dt), xp
            )  # updated in place: contiguous
        return out

    def param_specs(self, input_shape: tuple[int, ...]) -> dict[str, tuple[tuple[int, ...], Any]]:
        """The trainable arrays for ``input_shape``: ``{name: (shape, initializer)}`` (none by default).

        :meth:`build` allocates them (nothing is allocated here); each initializer is called as
        ``initializer(shape, rng, dtype)`` (see :class:`neuro.initializers.Initializer`).

        Args:
            input_shape: shape of one sample (no batch axis).

        Returns:
            The specs by parameter name, in a stable order.
        """
        return {}

    def buffer_specs(self, input_shape: tuple[int, ...]) -> dict[str, tuple[tuple[int, ...], Any]]:
        """The saved non-trainable arrays: ``{name: (shape, initializer)}`` (none by default).

        Args:
            input_shape: shape of one sample (no batch axis).

        Returns:
            The specs by buffer name, as for :meth:`param_specs`.
        """
        return {}

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Return the output shape for ``input_shape`` (no batch axis); the same shape by default.

        Args:
            input_shape: shape of one sample (no batch axis).

        Returns:
            The shape of one output sample.

        Raises:
            ValueError: when this layer cannot take inputs of that shape.
        """
        return input_shape

    def to(self, xp: ModuleType) -> None:
        """Move params, grads and buffers to the device of ``xp`` and drop the scratch space.

        Args:
            xp: the array module of the target device (see :func:`neuro.backend.get_device`).
        """
        for store in (self.params, self.grads, self.buffers):
            for k, v in store.items():
                store[k] = backend.to_device(v, xp)
        self._work = {}

    # -- computation ------------------------------------------------------------------------------------
    def forward(self, x: Any, training: bool = False, rng: Any = None) -> tuple[Any, Any]:
        """Compute the output for a batch ``x``.

        Args:
            x: the batch.
            training: training mode; the returned context then holds what ``backward`` needs.
            rng: a :class:`neuro.backend.DeviceRNG` for layers that draw random numbers (Dropout).

        Returns:
            ``(y, ctx)``; ctx is ``None`` in inference.
        """
        raise NotImplementedError

    def backward(self, grad: Any, ctx: Any) -> Any:
        """Take dL/d(output) and the context of the training forward, fill ``self.grads`` and return
        dL/d(input) (or ``None`` when ``need_input_grad`` is False).

        Gradients are summed over the batch (the loss's gradient already holds the 1/m), and ``grads`` is
        overwritten, not accumulated.

        Args:
            grad: dL/d(output), of the shape of the forward's output.
            ctx: the context returned by ``forward(x, training=True)``.

        Returns:
            dL/d(input), of the shape of the forward's input, or ``None``.

        Raises:
            RuntimeError: when ``ctx`` is ``None`` (the forward ran in inference mode).
        """
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        """The output in inference mode (nothing is kept or changed)."""
        return self.forward(x)[0]

    def _require(self, ctx: Any) -> Any:
        if ctx is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward needs the context returned by forward(x, training=True)"
            )
        return ctx

    # -- description ------------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as plain JSON values (used for saving and ``summary``)."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild a layer from :meth:`get_config`'s output (``cls(**config)``).

        Args:
            config: the constructor arguments, as :meth:`get_config` returns them.

        Returns:
            A new, unbuilt layer of this class.
        """
        return cls(**config)

    def count_params(self) -> int:
        """Number of scalar parameters (trainable ones only)."""
        return int(sum(int(np.prod(p.shape)) for p in self.params.values()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


registry.set_base("layer", Layer)
