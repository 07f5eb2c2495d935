"""The chain of layers: :class:`Network` (also called :class:`Sequential`, Keras's name), built from a list
of layers or one layer at a time with ``add``.

A ``Network`` is a :class:`~neuro.models.model.Model` whose graph has one path, from one input through each
added layer to one output, as Keras's ``Sequential`` is a ``Functional``: it trains, predicts, saves and
exports through the same executor and files as any graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neuro import _validation as check
from neuro import registry
from neuro import regularizers as regularizers_mod
from neuro.graph import Functional, Graph
from neuro.layers.base import Layer, SymbolicTensor
from neuro.layers.input_layer import Input, InputLayer
from neuro.models.model import Model


@registry.register(family="model")
class Network(Model):
    """A sequential network: one input, layers in order, one output (Keras's ``Sequential``).

    Built Keras's way, from a list that starts with the input, then compiled::

        model = Sequential([Input((64,)), Dense(64, activation="relu"), Dense(10)])
        model.compile(loss=CrossEntropy(from_logits=True), optimizer="adam", metrics=["accuracy"])

    or neuro's way, from the input shape, with layers added one at a time::

        net = Network((64,), "crossentropy", "adam", seed=0)
        net.add(Dense(64, activation="relu")).add(Dense(10, activation="softmax"))

    Args:
        input_shape: shape of one sample, without the batch axis: ``(features,)`` or ``(H, W, C)``; or a list
            of layers (Keras's ``Sequential(layers)``) whose first item is the input (a :func:`neuro.Input`
            tensor). ``None``: the input is the ``Input`` that starts ``layers``, or the network starts when
            ``add`` is given one (``Sequential()`` then ``add(Input(shape))``).
        loss: a loss name or object (see :mod:`neuro.losses`); ``None`` to :meth:`compile` later.
        optimizer: an optimizer name or object (see :mod:`neuro.optimizers`); ``None`` to compile later.
        regularizer: optional :class:`~neuro.regularizers.L1` / :class:`~neuro.regularizers.L2`, applied to
            every layer's kernel.
        seed: seeds every random choice (initial weights, shuffling, dropout masks): the same seed gives a
            bitwise identical training run on the same machine, device and thread count.
        device: where the network computes: ``"numpy"`` (the default), ``"cupy"`` or ``"strict"`` (see
            :mod:`neuro.backend`); :meth:`to` moves it later.
        layers: the layers, as a keyword: ``Sequential(layers=[Input(shape), ...])``, or
            ``Network(input_shape=shape, layers=[...])``.
        name: the network's name.

    Raises:
        ValueError: for a list of layers without an input shape (neither an ``Input`` first nor
            ``input_shape=``), or a layer that cannot follow the previous one.
        TypeError: for an item of the list that is not a layer.

    The network computes in the dtype that is current when it is created (float32 unless
    :func:`neuro.set_dtype` or :class:`neuro.backend.dtype_scope` says otherwise); its data are converted
    to it, and it keeps it when saved and loaded. Each layer is built (its weights drawn from the seeded
    generator) when it is added.

    Data given as NumPy arrays is checked on the host and moved to the network's device one batch at a
    time; :meth:`predict` returns arrays on the network's device (``neuro.backend.to_numpy`` fetches them).
    Predicting is safe from other threads while ``fit`` runs: it sees the weights between two steps.

    Example:
        >>> from neuro import Network, Dense, Adam
        >>> net = Network((64,), "softmax_crossentropy", Adam(1e-3), seed=0)
        >>> net.add(Dense(32, "relu")).add(Dense(10, "softmax"))  # doctest: +ELLIPSIS
        <Network 'network': 2 layers, device numpy>
    """

    _noun = "network"

    def __init__(
        self,
        input_shape: Sequence[int] | int | Sequence[Any] | None = None,
        loss: Any = None,
        optimizer: Any = None,
        regularizer: Any = None,
        seed: int | None = None,
        device: str = "numpy",
        *,
        layers: Sequence[Any] | None = None,
        name: str | None = None,
    ) -> None:
        if _is_layer_list(input_shape):
            if layers is not None:
                raise TypeError("give the layers once: as the first argument or as layers=, not both")
            input_shape, layers = None, input_shape
        items = list(layers) if layers is not None else []
        start = items.pop(0) if items and isinstance(items[0], SymbolicTensor) else None
        if start is not None and input_shape is not None:
            raise ValueError(
                "the input is given twice: as input_shape and as the Input that starts the layers; give one"
            )
        if start is None and input_shape is None and items:
            raise ValueError(
                "Sequential([...]) (a Network) needs the shape of its input: start the list with "
                "neuro.Input(shape) (Keras 3's way), or give Sequential(layers=[...], input_shape=(...)); "
                "neuro builds each layer's weights when it joins the network, so it cannot wait for the "
                "first batch"
            )
        self._setup(seed, device, name)
        self._input: SymbolicTensor | None = None
        self._chain: list[Layer] = []
        self._last: SymbolicTensor | None = None
        self._input_kind = self._output_kind = "single"
        self._graph = None
        self._shape_only = False  # the input was made from input_shape (float, until an Embedding starts)
        if start is not None:
            self._start(start)
        elif input_shape is not None:
            self._start(Input(check.shape_tuple(input_shape, "input_shape")))
            self._shape_only = True
        for item in items:
            self.add(item)
        if loss is not None or optimizer is not None:
            self.compile(loss, optimizer, regularizer)
        else:
            self.regularizer = regularizers_mod.get(regularizer)

    def _start(self, tensor: SymbolicTensor) -> None:
        """Take the input: a fresh Input of the tensor's shape, dtype and name (the tensor itself may be
        used elsewhere)."""
        layer = tensor.node.layer
        if not isinstance(layer, InputLayer):
            raise ValueError(
                "a network starts with an Input tensor (neuro.Input(shape)), got the output of "
                f"{type(layer).__name__} {layer.name!r}"
            )
        name = None if layer._auto_name else layer.name
        self._input = Input(tensor.sample_shape, None if tensor.dtype == "float" else tensor.dtype, name)
        self._last = self._input

    # -- building -----------------------------------------------------------------------------------------
    def add(self, layer: Layer | Model | SymbolicTensor) -> Network:
        """Append a layer, building it for the current output shape; returns the network (chainable).

        Args:
            layer: a new, unbuilt layer (or a model, added as one layer sharing its weights); or, first of all
                in a network made without an input shape, the ``neuro.Input(shape)`` it starts from.

        Returns:
            The network itself.

        Raises:
            TypeError: when ``layer`` is not a Layer.
            ValueError: when the layer cannot take the previous layer's output, returns several outputs,
                training has started, or the network has no input yet.
        """
        if isinstance(layer, SymbolicTensor):
            if self._input is not None:
                raise ValueError(
                    f"the {self._noun} already has its input {self._input.shape}; an Input can only start it"
                )
            self._start(layer)
            return self
        if isinstance(layer, Model):
            layer = layer.as_layer()
        if not isinstance(layer, Layer):
            raise TypeError(f"layer must be a neuro Layer, got {type(layer).__name__}")
        if self._input is None:
            raise ValueError(self._no_input_message())
        if layer.built and not isinstance(layer, Functional):
            raise ValueError(f"layer {layer.name!r} is already part of a network; create a new one")
        if any(other is layer for other in self._chain):  # a model added twice: a chain calls each once
            raise ValueError(
                f"model {layer.name!r} is already in this {self._noun}; a chain calls each layer once: to "
                "use it twice, build a neuro.Model that calls it twice"
            )
        opt = self.optimizer
        if self._fitting or (opt is not None and (opt.iterations or opt.slots)):
            raise ValueError(
                f"cannot add {type(layer).__name__} after training started: the optimizer holds state for "
                f"{len(opt.slots) if opt is not None else 0} parameters at step "
                f"{opt.iterations if opt is not None else 0}; build the whole network before fit"
            )
        return self._append(layer, initialize=True)

    def _append(self, layer: Layer, initialize: bool) -> Network:
        """Build ``layer`` for the current output shape and append it (a loader passes ``initialize=False``
        and fills the arrays itself)."""
        if not self._chain and self._shape_only and getattr(layer, "integer_inputs", False) is True:
            # Keras's habit: a chain made from a shape that starts with an Embedding reads token ids
            self._input = self._last = Input(self._input.sample_shape, "int64")
        shape = self._last.sample_shape
        index = len(self._chain)
        try:
            if not layer.built:
                layer.build(shape, self.rng, self.dtype, self.xp, initialize=initialize)
            out = layer(self._last)
        except ValueError as exc:
            text = str(exc)
            raise ValueError(
                f"cannot add {type(layer).__name__} (layer {index}) after output shape {shape}: {text}"
            ) from None
        if isinstance(out, list):
            layer._nodes.pop()
            raise ValueError(
                f"cannot add {type(layer).__name__} (layer {index}): it returns {len(out)} outputs "
                "(return_state?); a chain takes one output per layer; build a neuro.Model for several"
            )
        layer.need_input_grad = bool(self._chain)  # the first layer's input is the data
        self._chain.append(layer)
        self._last = out
        self._graph = None
        self._heads = None
        return self

    def _no_input_message(self) -> str:
        return (
            f"the {self._noun} has no input yet: add(neuro.Input(shape)) first (or create it with "
            f"{type(self).__name__}(input_shape=...) or a list that starts with an Input)"
        )

    @property
    def graph(self) -> Graph:
        """The chain as a :class:`~neuro.graph.Graph` (made again after each ``add``)."""
        if self._input is None:
            raise ValueError(self._no_input_message())
        if self._graph is None:
            self._graph = _ChainGraph(self._input, self._last, self._chain)
        return self._graph

    @property
    def layers(self) -> list[Layer]:
        """The layers in the order they were added."""
        return list(self._chain)

    def require_compiled(self, what: str) -> None:
        if not self._chain:
            raise ValueError("the network has no layers; add some with add()")
        super().require_compiled(what)

    def __repr__(self) -> str:
        return f"<Network {self.name!r}: {len(self._chain)} layers, device {self.device}>"


#: Keras's name of the chain: ``Sequential([Input((64,)), Dense(10)])`` is a :class:`Network`.
Sequential = Network


def _is_layer_list(value: Any) -> bool:
    """Whether the first argument is a list of layers (Keras's ``Sequential(layers)``), not a shape."""
    if not isinstance(value, (list, tuple)):
        return False
    return any(isinstance(v, (Layer, Model, SymbolicTensor)) for v in value)


class _ChainGraph(Graph):
    """The graph of a chain: checked as any graph, and also while it has no layers yet (input = output)."""

    def __init__(self, start: SymbolicTensor, end: SymbolicTensor, chain: list[Layer]) -> None:
        if end is start:  # no layer yet: an empty graph that passes its input through
            self.inputs, self.outputs = [start], [end]
            self.nodes, self.layers = [], []
            self.input_layers = [start.node.layer]
            self._plan()
            return
        super().__init__([start], [end])
