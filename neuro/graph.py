"""The graph of a model and the one executor that runs it.

This module owns the *structure* of a model and the walk over it; it knows nothing of losses, optimizers,
data or files:

- :class:`Graph`: the nodes between some :func:`~neuro.layers.input_layer.Input` tensors and some output
  tensors, in topological order, checked when it is made (every input used, every output reachable from the
  inputs, no tensor of another graph, unique layer names). It is the model: a chain of layers
  (:class:`~neuro.models.Network`) is a graph with one path, as Keras's ``Sequential`` is a ``Functional``.
- The executor, :meth:`Graph.forward` and :meth:`Graph.backward`: the only loop over layers in neuro. The
  forward runs every node in order (training or inference) and returns, in training, a *tape* of the
  nodes' contexts; the backward walks the tape in reverse, hands each layer the gradient of its outputs and
  *adds* the gradients of a tensor that feeds several nodes (a fan-out). Prediction, the training step,
  the gradient check, the shape checks of the model-file loader, ONNX export and distributed training all
  run layers through it.
- :class:`Functional`: a graph used as a layer inside another model (what calling a ``Model`` on symbolic
  tensors makes).
- :func:`graph_config` / :func:`graph_from_config`: the graph as plain JSON (which node calls which layer on
  which tensors), for model files.

Heads (how each output meets its loss) may ask the executor to run an output node in a *mode*: ``"affine"``
runs only the affine part of a Dense or Conv2D whose activation the loss fuses with, and ``"skip"`` passes
a standalone activation's input through, so that the loss sees the logits (see :mod:`neuro.head`).

One fusion between neighbours is the executor's own: a layer that ends in a ReLU (a Dense or Conv2D, see
:func:`~neuro.layers.activated.takes_preactivated_gradient`) whose output only a max pooling reads. The
pooling then sends each window's gradient to its maximum only where that maximum is above 0, which is the
ReLU's backward, and the layer's backward starts from dL/dz: one pass over the layer's output less
(:data:`FUSE_RELU_POOL`).
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from neuro import registry
from neuro.layers.activated import takes_preactivated_gradient
from neuro.layers.base import (
    Layer,
    Node,
    SymbolicTensor,
    as_flag,
    checked_weights,
    is_shape,
    shape_text,
    write_weights,
)
from neuro.layers.input_layer import InputLayer
from neuro.layers.pooling import takes_relu_input

#: Graphs made while this is True let a max pooling apply the backward of the ReLU before it (see the module
#: docstring); the gradients are the same either way (tested), this only skips a pass.
FUSE_RELU_POOL = True

#: Bounds of what a graph (and a model file describing one) may hold.
MAX_NODES = 100_000
MAX_NESTING = 16


class _Step:
    """One node, as the executor runs it: the layer and the value slots it reads and writes."""

    __slots__ = (
        "cast",
        "free",
        "index",
        "in_slots",
        "layer",
        "mask_in",
        "mask_out",
        "multi_in",
        "multi_out",
        "need_in",
        "node",
        "out_slots",
        "foreign",
        "preactivated",
        "relu_input",
    )

    def __init__(self, index: int, node: Node, in_slots: list[int], out_slots: list[int]) -> None:
        self.index = index
        self.node = node
        self.layer = node.layer
        self.in_slots = in_slots
        self.out_slots = out_slots
        self.multi_in = node.multi_input
        self.multi_out = node.multi_output
        self.need_in = True
        #: a layer of the user's (not neuro's): its outputs' dtype is checked (a float64 leak)
        self.foreign = not type(node.layer).__module__.startswith("neuro.")
        self.mask_in = any(t.masked for t in node.inbound)  # the layer gets mask=
        self.mask_out = any(t.masked for t in node.outputs)  # the layer's compute_mask is asked
        self.free: list[int] = []
        #: per input: cast an integer array to the model's floating type before the layer sees it
        self.cast = [False] * len(in_slots)
        #: the layer's input may be a ReLU's output whose backward this layer applies (a max pooling)
        self.relu_input = False
        #: the layer's backward may get dL/dz: the next node applies its ReLU's backward (decided again at
        #: each training forward pass, and marked on the tape)
        self.preactivated = False


class Graph:
    """The layers between ``inputs`` and ``outputs``, in topological order, and their executor.

    Args:
        inputs: the :func:`~neuro.Input` tensors the graph starts from, in order.
        outputs: the tensors it computes, in order.

    Raises:
        TypeError: when an input or output is not a symbolic tensor, or an input is not an ``Input``.
        ValueError: for an output that does not depend on the inputs (a tensor of another model), an input
            that no output depends on, an input given twice, or two layers with one name.

    Gradient: the chain rule over the graph: :meth:`backward` hands each node dL/d(its outputs) in reverse
    order, and a tensor read by several nodes receives the sum of their gradients,
    dL/dt = Σ_consumers dL/dt|consumer.

    Attributes:
        nodes: the layer calls, in the order they run.
        layers: every layer called, once each, in the order of its first call.
        input_layers: the :class:`~neuro.layers.input_layer.InputLayer` of each input.
    """

    def __init__(self, inputs: Sequence[SymbolicTensor], outputs: Sequence[SymbolicTensor]) -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        for i, t in enumerate(self.inputs):
            if not isinstance(t, SymbolicTensor) or not isinstance(t.node.layer, InputLayer):
                raise TypeError(f"inputs[{i}] must be a tensor made by neuro.Input(...), got {_describe(t)}")
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise ValueError("inputs holds the same Input tensor twice")
        for i, t in enumerate(self.outputs):
            if not isinstance(t, SymbolicTensor):
                raise TypeError(
                    f"outputs[{i}] must be a symbolic tensor (a layer called on neuro.Input tensors), "
                    f"got {_describe(t)}"
                )
        if not self.inputs or not self.outputs:
            raise ValueError("a model needs at least one input and one output")
        self.nodes = self._topological_nodes()
        self.layers = _unique([n.layer for n in self.nodes])
        self.input_layers = [t.node.layer for t in self.inputs]
        _unique_names(self.input_layers + self.layers)
        self._plan()

    # -- structure --------------------------------------------------------------------------------------
    def _topological_nodes(self) -> list[Node]:
        allowed = {id(t.node) for t in self.inputs}
        order: list[Node] = []
        state: dict[int, int] = {}  # 1: on the current path, 2: done
        used_inputs: set[int] = set()
        for k, out in enumerate(self.outputs):
            stack: list[tuple[Node, int]] = [(out.node, 0)]
            while stack:
                node, i = stack.pop()
                if i == 0:
                    if state.get(id(node)) == 2:
                        continue
                    if isinstance(node.layer, InputLayer):
                        if id(node) not in allowed:
                            raise ValueError(
                                f"outputs[{k}] ({out.name}) depends on Input {node.layer.name!r} "
                                f"{shape_text(node.layer.shape)}, which is not among the model's inputs "
                                f"{[t.name for t in self.inputs]}: a tensor of another model, or a missing "
                                "input"
                            )
                        used_inputs.add(id(node))
                        state[id(node)] = 2
                        continue
                    state[id(node)] = 1
                if i < len(node.inbound):
                    stack.append((node, i + 1))
                    child = node.inbound[i].node
                    if state.get(id(child)) == 1:  # pragma: no cover - symbolic calls cannot make cycles
                        raise ValueError("the graph has a cycle")
                    if state.get(id(child)) != 2:
                        stack.append((child, 0))
                else:
                    state[id(node)] = 2
                    order.append(node)
                    if len(order) > MAX_NODES:
                        raise ValueError(f"a graph may hold at most {MAX_NODES} layer calls")
        unused = [t.name for t in self.inputs if id(t.node) not in used_inputs]
        if unused:
            raise ValueError(
                f"inputs {unused} are not used by any output; every input of a model must feed an output"
            )
        return order

    def _plan(self) -> None:
        """Slots for every tensor value, the steps that fill them, and when each value can be dropped."""
        slot: dict[int, int] = {}
        for t in self.inputs:
            slot[id(t)] = len(slot)
        self.steps: list[_Step] = []
        for i, node in enumerate(self.nodes):
            ins = [slot[id(t)] for t in node.inbound]
            outs = []
            for t in node.outputs:
                slot[id(t)] = len(slot)
                outs.append(slot[id(t)])
            self.steps.append(_Step(i, node, ins, outs))
        self.n_slots = len(slot)
        self._plain_plan: tuple[list[tuple], list[Any] | None] | None = None  # infer()'s, on its first call
        self._infer_dtype: Any = None  # the floating type infer() was last given (see _checked)
        self.input_slots = list(range(len(self.inputs)))
        self.output_slots = [slot[id(t)] for t in self.outputs]
        self.slot_dtype = [""] * self.n_slots
        for t in self.inputs:
            self.slot_dtype[slot[id(t)]] = t.dtype
        for node in self.nodes:
            for t in node.outputs:
                self.slot_dtype[slot[id(t)]] = t.dtype
        # consumers per slot: a value is dropped after its last reader (outputs are kept)
        last: dict[int, int] = {}
        fan: list[int] = [0] * self.n_slots
        for step in self.steps:
            for s in step.in_slots:
                last[s] = step.index
                fan[s] += 1
        keep = set(self.output_slots)
        for s, i in last.items():
            if s not in keep:
                self.steps[i].free.append(s)
        for s in self.output_slots:
            fan[s] += 1
        self.fan_out = fan
        #: whether a model used as a layer (which may predict on its own lock) is part of this graph
        self.nests_models = any(isinstance(st.layer, Functional) for st in self.steps)
        if FUSE_RELU_POOL:
            self._fuse_relu_pool()
        for step in self.steps:
            step.cast = [
                self.slot_dtype[s] != "float" and not getattr(step.layer, "integer_inputs", False)
                for s in step.in_slots
            ]
        self.set_input_gradients(False)

    def _fuse_relu_pool(self) -> None:
        """Mark each max pooling whose one input is a ReLU layer's output read by no other node (and not an
        output of the graph, nor masked) as a candidate: the pooling applies the ReLU's backward and the
        layer starts from dL/dz, when the layer still ends in a ReLU at the training forward pass."""
        producer = {s: step for step in self.steps for s in step.out_slots}
        for step in self.steps:
            if not takes_relu_input(step.layer) or step.multi_in or step.mask_in:
                continue
            s = step.in_slots[0]
            before = producer.get(s)
            if before is None or self.fan_out[s] != 1 or before.multi_out or before.mask_out:
                continue
            if takes_preactivated_gradient(before.layer):
                step.relu_input = before.preactivated = True

    def set_input_gradients(self, wanted: bool) -> None:
        """Whether :meth:`backward` computes the gradients with respect to the graph's inputs too.

        By default a call whose inputs are all graph inputs (the first layer) skips its input gradient.

        Args:
            wanted: compute them (a gradient check of the inputs, a graph nested in another).
        """
        needs = [False] * self.n_slots
        for s in range(len(self.inputs), self.n_slots):
            needs[s] = True
        if wanted:
            for s in self.input_slots:
                needs[s] = True
        for s, dt in enumerate(self.slot_dtype):
            if dt != "float":  # integer values (token ids) have no gradient
                needs[s] = False
        self._needs_grad = needs
        for step in self.steps:
            step.need_in = any(needs[s] for s in step.in_slots)
        self.wants_input_gradients = wanted

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        """The per-sample shape of each input."""
        return [t.sample_shape for t in self.inputs]

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        """The per-sample shape of each output."""
        return [t.sample_shape for t in self.outputs]

    def consumers(self, tensor: SymbolicTensor) -> int:
        """How many layer calls read ``tensor`` (an output of the graph counts once more).

        Args:
            tensor: a tensor of the graph.

        Returns:
            The number of readers.
        """
        for step in self.steps:
            for t, s in zip(step.node.outputs, step.out_slots, strict=True):
                if t is tensor:
                    return self.fan_out[s]
        for t, s in zip(self.inputs, self.input_slots, strict=True):
            if t is tensor:
                return self.fan_out[s]
        raise ValueError(f"{tensor!r} is not a tensor of this graph")

    def step_of(self, tensor: SymbolicTensor) -> int | None:
        """The index of the step that produces ``tensor``.

        Args:
            tensor: a tensor of the graph.

        Returns:
            The step's index, or ``None`` for an input of the graph.
        """
        for step in self.steps:
            if tensor.node is step.node:
                return step.index
        return None

    # -- the executor -----------------------------------------------------------------------------------
    def forward(
        self,
        xs: Sequence[Any],
        training: bool = False,
        rng: Any = None,
        modes: dict[int, str] | None = None,
        dtype: Any = None,
        reduce: Any = None,
        out_masks: list[Any] | None = None,
    ) -> tuple[list[Any], list[Any] | None]:
        """Run every node in order.

        Args:
            xs: one batch per input, on one device.
            training: training mode: each layer returns the context its backward needs, kept in the tape.
            rng: the :class:`~neuro.backend.DeviceRNG` of stochastic layers (dropout).
            modes: ``{step index: "affine" | "skip"}`` for output nodes whose activation a loss fuses with.
            dtype: the floating type integer inputs are cast to before a layer that needs floats (the
                float dtype of ``xs`` when ``None``).
            reduce: a function summing a float64 array over processes, handed to the layers that take one
                (``takes_reduce``: batch norm with synchronised statistics) in training.
            out_masks: a list to fill with each output's mask (``None`` for an output without one): the
                valid steps the losses and metrics average over.

        Returns:
            ``(outputs, tape)``: one array per output, and in training the tape for :meth:`backward` (else
            ``None``).
        """
        vals: list[Any] = [None] * self.n_slots
        masks: list[Any] = [None] * self.n_slots
        for s, x in zip(self.input_slots, xs, strict=True):
            vals[s] = x
        tape: list[Any] | None = [] if training else None
        relu_out: set[int] = set()  # slots whose ReLU's backward the reading max pooling applies
        for step in self.steps:
            args = [vals[s] for s in step.in_slots]
            if any(step.cast):
                ft = dtype if dtype is not None else _float_type(xs)
                args = [a.astype(ft) if c else a for a, c in zip(args, step.cast, strict=True)]
            x = args if step.multi_in else args[0]
            mode = modes.get(step.index) if modes else None
            layer = step.layer
            kwargs: dict[str, Any] = {}
            if step.mask_in:
                m = [masks[s] for s in step.in_slots]
                kwargs["mask"] = m if step.multi_in else m[0]
            if reduce is not None and training and getattr(layer, "takes_reduce", False):
                kwargs["reduce"] = reduce
            if training and step.relu_input and step.in_slots[0] in relu_out:
                kwargs["relu_input"] = True
            if step.mask_out and getattr(layer, "fills_masks", False):
                kwargs["out_masks"] = []  # the layer gives its outputs' masks itself (a nested model)
            if mode is None:
                y, ctx = layer.forward(x, training, rng, **kwargs)
                # the next node applies the ReLU's backward (the layer may have changed since the graph was
                # made: asked again each time)
                if training and step.preactivated and takes_preactivated_gradient(layer):
                    ctx = _Preactivated(layer.drop_activation_context(ctx))
                    relu_out.add(step.out_slots[0])
            elif mode == "affine":
                y, ctx = layer.affine_forward(x, training)
            else:  # "skip": the loss applies this activation itself
                y, ctx = x, None
            if step.foreign:
                _check_float_type(layer, y, dtype if dtype is not None else _float_type(xs, None))
            if step.multi_out:
                for s, v in zip(step.out_slots, y, strict=True):
                    vals[s] = v
            else:
                vals[step.out_slots[0]] = y
            if step.mask_out:
                if "out_masks" in kwargs:
                    oms = kwargs["out_masks"]
                else:
                    om = layer.compute_mask(x, kwargs.get("mask"))
                    oms = list(om) if step.multi_out else [om]
                for s, v in zip(step.out_slots, oms, strict=True):
                    masks[s] = v
            if tape is not None:
                tape.append(ctx)
            for s in step.free:
                vals[s] = None
                masks[s] = None
        if out_masks is not None:
            out_masks[:] = [masks[s] for s in self.output_slots]
        return [vals[s] for s in self.output_slots], tape

    def infer(self, xs: Sequence[Any], dtype: Any = None) -> list[Any]:
        """:meth:`forward` in inference mode, with less bookkeeping per node when no node needs it (no
        integer input cast, no mask): what ``predict`` runs, so that a small batch costs little beyond its
        arithmetic.

        Args:
            xs: one batch per input, on one device.
            dtype: as for :meth:`forward`.

        Returns:
            One array per output.
        """
        self._infer_dtype = dtype  # what a user's layer must keep (see _checked)
        if self._plain_plan is None:
            self._plain_plan = self._make_plain_plan()
        plan, chain = self._plain_plan
        if chain is not None:  # each node reads the one before it: no slots to keep
            y = xs[0]
            for forward in chain:
                y = forward(y)[0]
            return [y]
        if not plan and self.steps:
            return self.forward(xs, False, None, None, dtype)[0]
        vals: list[Any] = [None] * self.n_slots
        for s, x in zip(self.input_slots, xs, strict=True):
            vals[s] = x
        for forward, ins, outs, multi_in, multi_out, free in plan:
            y = forward([vals[s] for s in ins] if multi_in else vals[ins[0]])[0]
            if multi_out:
                for s, v in zip(outs, y, strict=True):
                    vals[s] = v
            else:
                vals[outs[0]] = y
            for s in free:
                vals[s] = None
        return [vals[s] for s in self.output_slots]

    def _make_plain_plan(self) -> tuple[list[tuple], list[Any] | None]:
        """:meth:`infer`'s steps (none when a node needs an integer cast or a mask; a user's layer checked by
        :meth:`_checked`), and the forward functions alone when the graph is a chain: one input, one output,
        each node reading only the tensor the node before it wrote (the input for the first), the last one
        writing the output."""
        if not all(not any(st.cast) and not st.mask_in and not st.mask_out for st in self.steps):
            return [], None
        plan = [(self._checked(st.layer) if st.foreign else st.layer.forward, st.in_slots, st.out_slots,
                 st.multi_in, st.multi_out, st.free) for st in self.steps]  # fmt: skip
        slot = self.input_slots[0] if len(self.input_slots) == 1 else None
        for st in self.steps:
            if slot is None or st.multi_in or st.multi_out or list(st.in_slots) != [slot]:
                return plan, None
            (slot,) = st.out_slots
        if not self.steps or list(self.output_slots) != [slot]:
            return plan, None
        return plan, [fn for fn, *_ in plan]

    def _checked(self, layer: Layer) -> Callable[..., Any]:
        """``layer.forward`` followed by :func:`_check_float_type` against the type :meth:`infer` was given
        (a user's layer, in the plan)."""

        def forward(x: Any, *args: Any, **kwargs: Any) -> Any:
            out = layer.forward(x, *args, **kwargs)
            _check_float_type(layer, out[0], self._infer_dtype)
            return out

        return forward

    def backward(
        self, tape: list[Any], out_grads: Sequence[Any], modes: dict[int, str] | None = None
    ) -> list[Any] | None:
        """Walk the tape in reverse: each layer gets its outputs' gradients and adds into its ``grads``.

        A tensor read by several nodes receives the sum of their input gradients. A node none of whose
        outputs received a gradient is skipped (its layer's gradients are not touched).

        Args:
            tape: the tape of a training :meth:`forward`.
            out_grads: dL/d(output) for each output (``None`` for an output without a loss).
            modes: the modes the forward ran with.

        Returns:
            The gradients with respect to the inputs when :meth:`set_input_gradients` asked for them (``None``
            for an input no gradient reached), else ``None``.
        """
        grads: list[Any] = [None] * self.n_slots
        owned = [False] * self.n_slots  # whether grads[s] is a sum this walk made (safe to add into)
        needs = self._needs_grad
        for s, g in zip(self.output_slots, out_grads, strict=True):
            if g is not None:
                _add(grads, owned, s, g)
        for step, ctx in zip(reversed(self.steps), reversed(tape), strict=True):
            outs = [grads[s] for s in step.out_slots]
            if all(g is None for g in outs):
                continue
            for s in step.out_slots:
                grads[s] = None
            mode = modes.get(step.index) if modes else None
            layer = step.layer
            layer.need_input_grad = step.need_in
            if step.multi_out:
                g = tuple(outs)
            else:
                g = outs[0]
            if mode is None:
                if type(ctx) is _Preactivated:  # the next node applied the ReLU's backward
                    dx = layer.preactivated_backward(g, ctx.ctx)
                else:
                    dx = layer.backward(g, ctx)
            elif mode == "affine":
                dx = layer.affine_backward(g, ctx)
            else:
                dx = g
            if not step.need_in or dx is None:
                continue
            dxs = dx if step.multi_in else (dx,)
            for s, d, c in zip(step.in_slots, dxs, step.cast, strict=True):
                if needs[s] and d is not None and not c:
                    _add(grads, owned, s, d)
        if not self.wants_input_gradients:
            return None
        return [grads[s] for s in self.input_slots]

    def __repr__(self) -> str:
        ins, outs = [t.name for t in self.inputs], [t.name for t in self.outputs]
        return f"Graph(inputs={ins}, outputs={outs}, nodes={len(self.nodes)})"


class _Preactivated:
    """On the tape: the context of a layer whose ReLU's backward the next node applies (its backward is
    then ``preactivated_backward``)."""

    __slots__ = ("ctx",)

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx


def _add(grads: list[Any], owned: list[bool], s: int, g: Any) -> None:
    """Add ``g`` to the gradient of slot ``s``: the first one is kept as it is, a second makes a new sum (the
    first may be another tensor's gradient too), later ones add into that sum."""
    have = grads[s]
    if have is None:
        grads[s] = g
    elif owned[s]:
        have += g
    else:
        grads[s] = have + g
        owned[s] = True


def _float_type(xs: Sequence[Any], default: Any = "backend") -> Any:
    for x in xs:
        if np.dtype(x.dtype).kind == "f":
            return x.dtype
    if default != "backend":
        return default
    from neuro import backend

    return backend.get_dtype()


def _check_float_type(layer: Layer, y: Any, want: Any) -> None:
    """Refuse a user's layer whose floating output is not in the model's floating type ``want`` (``None``:
    not known): a float64 result in a float32 model would make every later layer compute in float64."""
    if want is None:
        return
    for v in y if isinstance(y, (tuple, list)) else (y,):
        dt = getattr(v, "dtype", None)
        if dt is not None and np.dtype(dt).kind == "f" and dt != want:
            raise TypeError(
                f"layer {layer.name!r} ({type(layer).__name__}) returned {np.dtype(dt).name} in a "
                f"{np.dtype(want).name} model: keep the dtype (compute with x.dtype, make constants with "
                "dtype=x.dtype); another type would carry into every later layer"
            )


def _unique(items: list[Any]) -> list[Any]:
    seen: set[int] = set()
    out = []
    for it in items:
        if id(it) not in seen:
            seen.add(id(it))
            out.append(it)
    return out


#: Every layer a graph gave its default name (weakly held): a name is moved off a clash only onto one that
#: no live layer holds, so that no other model ends with two layers of one name.
_NAMED_LAYERS: weakref.WeakSet = weakref.WeakSet()


def _unique_names(layers: list[Layer]) -> None:
    """Refuse two layers with one given name; give layers with a default name unique ones (``dense``,
    ``dense_1``, …) in graph order.

    A default name, once a model gave it, stays the layer's (building another model with a trained layer never
    renames it in the first) unless it clashes in the new model with another layer's: then it moves to a name
    that no live layer holds (``dense_7``), so that every model stays with names unique in it.
    """
    taken: dict[str, Layer] = {}
    for layer in layers:
        if getattr(layer, "_auto_name", False):
            continue
        other = taken.get(layer.name)
        if other is not None and other is not layer:
            raise ValueError(
                f"two layers are named {layer.name!r} ({type(other).__name__} and {type(layer).__name__}); "
                "layer names must be unique in a model"
            )
        taken[layer.name] = layer
        _NAMED_LAYERS.add(layer)  # a name given by hand is held too: a moved name never lands on it
    fresh, clashing = [], []
    for layer in layers:
        if not getattr(layer, "_auto_name", False):
            continue
        if not getattr(layer, "_name_given", False):
            fresh.append(layer)
        elif taken.get(layer.name, layer) is layer:
            taken[layer.name] = layer
        else:
            clashing.append(layer)
    held = {other.name for other in _NAMED_LAYERS} if clashing else set()
    for layer in fresh + clashing:
        base = layer.default_name()
        name, k = base, 0
        while (name in taken and taken[name] is not layer) or (layer in clashing and name in held):
            k += 1
            name = f"{base}_{k}"
        if layer in clashing:
            warnings.warn(
                f"layer {layer.name!r} ({type(layer).__name__}), whose default name was given when a model "
                f"was built with it, is renamed {name!r}: another layer of this model holds that name. Every "
                "model with the layer knows it by the new name from now on (output names, saved files); give "
                "layers name=... to keep names fixed",
                UserWarning,
                stacklevel=5,
            )
        layer.name = name
        layer._name_given = True
        _NAMED_LAYERS.add(layer)
        taken[name] = layer
        held.add(name)


def _describe(value: Any) -> str:
    if isinstance(value, SymbolicTensor):
        return f"tensor {value.name!r} made by {type(value.node.layer).__name__}"
    return type(value).__name__


def check_leaves_apart(layers: Sequence[Layer]) -> None:
    """Refuse a graph whose leaf layer is called both inside a nested model and outside it (or in two nested
    models): its config would write the layer twice, and rebuilding it would untie the two calls.

    Args:
        layers: the layers of a graph.

    Raises:
        ValueError: for such a graph.
    """
    count = 0

    def walk(items: Sequence[Layer]) -> None:
        nonlocal count
        for layer in items:
            if isinstance(layer, Functional):
                walk(layer.graph.layers)
            else:
                count += 1

    walk(layers)
    if count != len(leaf_layers(layers)):
        raise ValueError(
            "a layer is used both inside a nested model and outside it (or in two nested models); such a "
            "model cannot be saved or copied: call the layer in one place only"
        )


def leaf_layers(layers: Sequence[Layer]) -> list[Layer]:
    """Every layer that holds arrays, with the graphs nested as :class:`Functional` layers opened up, once
    each, in order.

    Args:
        layers: the layers of a graph.

    Returns:
        The leaf layers.
    """
    out: list[Layer] = []
    seen: set[int] = set()

    def walk(items: Sequence[Layer], depth: int) -> None:
        if depth > MAX_NESTING:
            raise ValueError(f"models may be nested at most {MAX_NESTING} deep")
        for layer in items:
            if isinstance(layer, Functional):
                walk(layer.graph.layers, depth + 1)
            elif id(layer) not in seen:
                seen.add(id(layer))
                out.append(layer)

    walk(layers, 0)
    return out


def build_layers(
    graph: Graph, rng: np.random.Generator, dtype: Any, xp: Any, initialize: bool = True
) -> None:
    """Build every unbuilt layer of ``graph`` for the shape of its first call, in graph order (so that a seed
    fixes the initial weights), on ``xp`` in ``dtype``.

    Args:
        graph: the graph.
        rng: the generator initializers draw from.
        dtype: the floating type.
        xp: the array module of the device.
        initialize: draw initial values (else zeros, which a loader fills).

    Raises:
        ValueError: for a layer already built in another dtype or on another device.
    """
    from neuro import backend

    for node in graph.nodes:
        layer = node.layer
        if isinstance(layer, Functional):
            build_layers(layer.graph, rng, dtype, xp, initialize)
            layer._dtype = np.dtype(dtype)  # the floating type its graph computes in
            layer.built = True
            layer.input_shape = node.input_shape
            layer.output_shape = layer.compute_output_shape(node.input_shape)
            continue
        if not layer.built:
            layer.build(node.input_shape, rng, dtype, xp, initialize=initialize)
            continue
        for store in (layer.params, layer.buffers):
            for k, v in store.items():
                if v.dtype != np.dtype(dtype):
                    raise ValueError(
                        f"layer {layer.name!r} was built in {v.dtype} (its {k}) by another model; this model "
                        f"computes in {np.dtype(dtype).name}"
                    )
                held = backend.get_array_module(v)
                if held is not xp:
                    raise ValueError(
                        f"layer {layer.name!r} holds its {k} on device {backend.device_name(held)!r} "
                        f"(another model's); this model is on {backend.device_name(xp)!r}: build it on that "
                        "device, or move the other model there first with .to(...)"
                    )
                break


@registry.register
class Functional(Layer):
    """A graph used as one layer of another model: what calling a :class:`~neuro.Model` on symbolic tensors
    puts in the outer graph. Its layers keep their weights (shared with the inner model).

    Args:
        graph: the inner graph.
        name: the layer's name (the model's).

    Shape:
        - input: the inner graph's inputs (a list for several); output: its outputs (a list for several).

    Gradient: the inner graph's backward: each inner layer adds its gradients, and the gradients with
    respect to the inputs flow out.
    """

    def __init__(self, graph: Graph, name: str | None = None) -> None:
        super().__init__(name=name)
        self._base_name = name or "model"
        self.graph = graph
        self.built = all(layer.built for layer in leaf_layers(graph.layers))
        self._multi_in = len(graph.inputs) > 1
        self._multi_out = len(graph.outputs) > 1

    def default_name(self) -> str:
        """The model's own name (``model`` for one given none), which the outer model makes unique."""
        return self.__dict__.get("_base_name", "model")

    def compute_output_shape(self, input_shape: Any) -> Any:
        want = self.graph.input_shapes
        got = list(input_shape) if self._multi_in else [input_shape]
        if [tuple(s) for s in got] != want:
            raise ValueError(
                f"the model {self.name!r} takes inputs of shape "
                f"{shape_text(want if self._multi_in else want[0])}"
            )
        outs = self.graph.output_shapes
        return outs if self._multi_out else outs[0]

    def compute_output_dtype(self, input_dtype: Any) -> Any:
        dts = [t.dtype for t in self.graph.outputs]
        return dts if self._multi_out else dts[0]

    @property
    def integer_inputs(self) -> bool:
        """Whether the inner graph takes integer inputs (token ids), which the outer one then passes as they
        are."""
        return any(t.dtype != "float" for t in self.graph.inputs)

    def build(
        self, input_shape: Any, rng: Any = None, dtype: Any = None, xp: Any = np, initialize: bool = True
    ) -> None:
        from neuro import backend

        dt = np.dtype(backend.get_dtype() if dtype is None else dtype).type
        build_layers(self.graph, rng if rng is not None else np.random.default_rng(), dt, xp, initialize)
        self._dtype = np.dtype(dt)
        self.input_shape = input_shape
        self.output_shape = self.compute_output_shape(input_shape)
        self.built = True

    @property
    def trainable(self) -> bool:
        """The nested model's flag, ``True`` at first; setting it sets every layer inside (Keras's way)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        flag = as_flag(value, "trainable")
        graph = self.__dict__.get("graph")
        if graph is not None:
            for layer in graph.layers:
                layer.trainable = flag
        self._trainable = flag

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in leaf_layers(self.graph.layers))

    def _count_trainable(self) -> int:
        return sum(layer._count_trainable() for layer in leaf_layers(self.graph.layers))

    def get_weights(self) -> list[np.ndarray]:
        """Every inner layer's weights, in the order of the nested model's own ``get_weights``."""
        return [w for layer in leaf_layers(self.graph.layers) for w in layer.get_weights()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the arrays :meth:`get_weights` returns, all or nothing (counts and shapes checked first).

        Args:
            weights: one array per inner param and buffer, in the order of :meth:`get_weights`.

        Raises:
            ValueError: for a wrong count or shape.
            TypeError: for an array that does not hold real numbers.
        """
        write_weights(checked_weights(leaf_layers(self.graph.layers), weights))

    def to(self, xp: Any) -> None:
        for layer in leaf_layers(self.graph.layers):
            layer.to(xp)

    def clear_grads(self) -> None:
        for layer in leaf_layers(self.graph.layers):
            layer.clear_grads()

    #: ``forward`` takes a ``reduce=`` function for the batch norms inside.
    takes_reduce = True
    #: ``forward`` fills ``out_masks=`` with the masks of the inner outputs (an Embedding's or a Masking's
    #: inside), which go on in the outer model as any layer's.
    fills_masks = True

    def output_masked(self, inputs_masked: list[bool]) -> Any:
        masked = [t.masked for t in self.graph.outputs]
        return masked if self._multi_out else masked[0]

    def forward(
        self, x: Any, training: bool = False, rng: Any = None, reduce: Any = None, out_masks: Any = None
    ) -> tuple[Any, Any]:
        xs = list(x) if self._multi_in else [x]
        # the floating type: its float inputs' (a gradient check runs a float32 model in float64), else the
        # type it was built in (integer inputs are cast to it, and a user's layer must keep it)
        dtype = _float_type(xs, None)
        if dtype is None:
            dtype = self.__dict__.get("_dtype")
        if dtype is None:  # made of a built model (as_layer): its layers' type
            arrays = [a for layer in leaf_layers(self.graph.layers) for a in layer.params.values()]
            dtype = self._dtype = np.dtype(arrays[0].dtype) if arrays else None
        outs, tape = self.graph.forward(xs, training, rng, None, dtype, reduce=reduce, out_masks=out_masks)
        return (tuple(outs) if self._multi_out else outs[0]), tape

    def backward(self, grad: Any, ctx: Any) -> Any:
        tape = self._require(ctx)
        if self.graph.wants_input_gradients != self.need_input_grad:
            self.graph.set_input_gradients(self.need_input_grad)
        grads = self.graph.backward(tape, list(grad) if self._multi_out else [grad])
        if grads is None:
            return None
        return tuple(grads) if self._multi_in else grads[0]

    def get_config(self) -> dict[str, Any]:
        layers = self.graph.layers
        check_leaves_apart(layers)  # written twice, a layer shared inside and out would come back untied
        config = {
            "name": self.name,
            "layers": [registry.serialize(layer) for layer in layers],
            "graph": graph_config(self.graph, layers),
        }
        if not self.trainable:  # the nested model's own flag (its layers' flags are saved by the model)
            config["trainable"] = False
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Functional:
        layers = [registry.deserialize("layer", spec) for spec in config["layers"]]
        graph = graph_from_config(config["graph"], layers)
        out = cls(graph, name=config.get("name"))
        out._trainable = as_flag(config.get("trainable", True), "trainable")  # the layers keep their own
        return out

    def __repr__(self) -> str:
        return f"Functional({self.name!r}, {len(self.graph.layers)} layers)"


# -- the graph as JSON --------------------------------------------------------------------------------------
def graph_config(graph: Graph, layers: Sequence[Layer]) -> dict[str, Any]:
    """The graph as plain JSON: its inputs, each node (a layer index and its inbound tensors), its outputs.

    A tensor is written ``["input", i]`` (the i-th input) or ``["node", j, k]`` (output k of node j); nodes
    only refer to inputs and earlier nodes.

    Args:
        graph: the graph.
        layers: the layers the node entries index into (``graph.layers``, in that order).

    Returns:
        ``{"inputs": [{"name", "shape", "dtype"}], "nodes": [{"layer": i, "inbound": [...],
        "list": bool}], "outputs": [...]}``.
    """
    index = {id(layer): i for i, layer in enumerate(layers)}
    ref: dict[int, list[Any]] = {}
    for i, t in enumerate(graph.inputs):
        ref[id(t)] = ["input", i]
    nodes = []
    for j, node in enumerate(graph.nodes):
        nodes.append(
            {
                "layer": index[id(node.layer)],
                "inbound": [ref[id(t)] for t in node.inbound],
                "list": node.multi_input,
            }
        )
        for k, t in enumerate(node.outputs):
            ref[id(t)] = ["node", j, k]
    return {
        "inputs": [
            {"name": t.node.layer.name, "shape": list(t.sample_shape), "dtype": t.dtype} for t in graph.inputs
        ],
        "nodes": nodes,
        "outputs": [ref[id(t)] for t in graph.outputs],
    }


def graph_from_config(config: Any, layers: Sequence[Layer]) -> Graph:
    """Rebuild a graph from :func:`graph_config`'s output by calling ``layers`` on symbolic tensors (shapes
    are checked at every call; nothing is allocated).

    Args:
        config: the graph's JSON.
        layers: the (unbuilt) layers its nodes index into.

    Returns:
        The graph.

    Raises:
        ValueError: for a malformed config (the message says where), a reference to a later node, a layer
            that cannot take its inputs, or a graph that :class:`Graph` refuses.
    """
    from neuro.layers.input_layer import Input

    if not isinstance(config, dict) or set(config) != {"inputs", "nodes", "outputs"}:
        raise ValueError("graph must be an object with the keys 'inputs', 'nodes' and 'outputs'")
    ins, nodes, outs = config["inputs"], config["nodes"], config["outputs"]
    if not isinstance(ins, list) or not 1 <= len(ins) <= 1000:
        raise ValueError("graph.inputs must be a list of 1 to 1000 inputs")
    if not isinstance(nodes, list) or len(nodes) > MAX_NODES:
        raise ValueError(f"graph.nodes must be a list of at most {MAX_NODES} nodes")
    if not isinstance(outs, list) or not 1 <= len(outs) <= 1000:
        raise ValueError("graph.outputs must be a list of 1 to 1000 tensors")
    inputs = []
    for i, spec in enumerate(ins):
        if not isinstance(spec, dict) or set(spec) != {"name", "shape", "dtype"}:
            raise ValueError(f"graph.inputs[{i}] must be {{'name', 'shape', 'dtype'}}")
        shape = spec["shape"]
        if (
            not isinstance(shape, list)
            or not 1 <= len(shape) <= 8
            or not all(type(d) is int and 1 <= d <= 1 << 31 for d in shape)
        ):
            raise ValueError(
                f"graph.inputs[{i}].shape must be a list of 1 to 8 positive integers, got {shape!r}"
            )
        if not isinstance(spec["name"], str) or not 0 < len(spec["name"]) <= 200:
            raise ValueError(f"graph.inputs[{i}].name must be a non-empty string")
        inputs.append(Input(tuple(shape), spec["dtype"], spec["name"]))
    produced: list[list[SymbolicTensor]] = []

    def tensor(r: Any, where: str) -> SymbolicTensor:
        if isinstance(r, list) and len(r) == 2 and r[0] == "input" and type(r[1]) is int:
            if 0 <= r[1] < len(inputs):
                return inputs[r[1]]
        elif (
            isinstance(r, list) and len(r) == 3 and r[0] == "node" and type(r[1]) is int and type(r[2]) is int
        ):
            if 0 <= r[1] < len(produced) and 0 <= r[2] < len(produced[r[1]]):
                return produced[r[1]][r[2]]
        raise ValueError(
            f"{where} must be ['input', i] or ['node', j, k] naming an input or an output of an earlier "
            "node, "
            f"got {str(r)[:80]}"
        )

    for j, spec in enumerate(nodes):
        where = f"graph.nodes[{j}]"
        if not isinstance(spec, dict) or set(spec) != {"layer", "inbound", "list"}:
            raise ValueError(f"{where} must be {{'layer', 'inbound', 'list'}}")
        li, inbound, as_list = spec["layer"], spec["inbound"], spec["list"]
        if type(li) is not int or not 0 <= li < len(layers):
            raise ValueError(f"{where}.layer must be an index of the {len(layers)} layers, got {li!r}")
        if not isinstance(inbound, list) or not 1 <= len(inbound) <= 1000 or not isinstance(as_list, bool):
            raise ValueError(f"{where}.inbound must be a list of 1 to 1000 tensors and list a boolean")
        if not as_list and len(inbound) != 1:
            raise ValueError(f"{where}: a call on one tensor has one inbound tensor, got {len(inbound)}")
        args = [tensor(r, f"{where}.inbound[{k}]") for k, r in enumerate(inbound)]
        layer = layers[li]
        out = layer(args if as_list else args[0])
        produced.append(list(out) if isinstance(out, list) else [out])
    outputs = [tensor(r, f"graph.outputs[{k}]") for k, r in enumerate(outs)]
    graph = Graph(inputs, outputs)
    if len(graph.nodes) != len(nodes):
        raise ValueError(f"graph.nodes holds {len(nodes) - len(graph.nodes)} nodes that no output depends on")
    if len(graph.layers) != len(layers):
        raise ValueError(f"graph: {len(layers) - len(graph.layers)} layers are never called")
    return graph


def output_shape_of(layer: Layer, input_shape: Any) -> Any:
    """``layer.compute_output_shape`` as a tuple, or a list of tuples (a helper for loaders).

    Args:
        layer: the layer.
        input_shape: its input shape (or shapes).

    Returns:
        One shape, or a list of shapes for a layer with several outputs.
    """
    out = layer.compute_output_shape(input_shape)
    return tuple(out) if is_shape(tuple(out)) else [tuple(s) for s in out]
