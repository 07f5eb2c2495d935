"""The layer protocol: what a layer must provide to take part in a model, and the symbolic tensors that
layers are called on to build one.

A layer is called in one of two ways:

- on **arrays** (``layer(x)``): the output in inference mode, computed at once (the layer is built for
  ``x``'s shape first if it was not built yet);
- on **symbolic tensors** (``layer(neuro.Input((28, 28, 1)))``): nothing is computed; the call is recorded as
  a :class:`Node` of a graph and returns symbolic tensors whose shapes are known at once, as Keras's
  functional API does. ``neuro.Model(inputs, outputs)`` then trains and runs that graph
  (:mod:`neuro.graph` walks it).

A layer may be called several times in one graph (a shared layer): its weights are shared, each call has a
training context of its own, and its gradient is the sum over the calls (Chainer's ``backward_accumulate``).
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from neuro import backend, registry
from neuro._keywords import KeywordChecked, quiet, rename

#: A per-sample shape (no batch axis), or a list of them for a layer with several inputs or outputs.
Shape = tuple[int, ...]


def is_shape(value: Any) -> bool:
    """True for one per-sample shape: a tuple of ints (a list of tuples is several shapes).

    Args:
        value: anything.

    Returns:
        Whether ``value`` is a tuple of ints.
    """
    return isinstance(value, tuple) and all(isinstance(d, (int, np.integer)) for d in value)


def shape_text(shape: Any) -> str:
    """A shape as users read it: ``(None, 28, 28, 1)`` with the batch axis, or a list of such shapes."""
    if is_shape(shape):
        return str((None, *shape))
    return "[" + ", ".join(shape_text(s) for s in shape) + "]"


def defined_by(cls: type, name: str) -> type:
    """The class of ``cls``'s method resolution order whose body defines ``name`` (the first one).

    Args:
        cls: a class.
        name: an attribute name ``cls`` has.

    Returns:
        That class.
    """
    return next(c for c in cls.__mro__ if name in vars(c))


class SymbolicTensor:
    """A tensor of a graph being built: its per-sample shape and dtype are known, its values are not.

    Made by :func:`neuro.Input` and by calling a layer on symbolic tensors.

    Args:
        sample_shape: the shape of one sample (no batch axis).
        dtype: ``"float"`` (the model's floating type, fixed when the model is built) or an integer type name
            (``"int32"``, ``"int64"``) for token ids.
        node: the :class:`Node` that produces it.
        index: which output of that node it is.

    Attributes:
        shape: ``(None, *sample_shape)``, with the batch axis, as Keras shows it.
        name: the name of the producing layer (with ``:index`` for a second output and more).
    """

    __slots__ = ("dtype", "index", "masked", "node", "sample_shape")

    def __init__(self, sample_shape: Shape, dtype: str, node: Node, index: int, masked: bool = False) -> None:
        self.sample_shape = tuple(int(d) for d in sample_shape)
        self.dtype = dtype
        self.node = node
        self.index = index
        #: whether the tensor carries a mask of valid steps (from Embedding(mask_zero=True) or Masking)
        self.masked = masked

    @property
    def shape(self) -> tuple[int | None, ...]:
        """``(None, *sample_shape)``: the batch axis first, of unknown size."""
        return (None, *self.sample_shape)

    @property
    def name(self) -> str:
        base = self.node.layer.name
        return base if self.index == 0 else f"{base}:{self.index}"

    def __repr__(self) -> str:
        return f"<SymbolicTensor {self.name!r} shape={self.shape} dtype={self.dtype}>"

    def __deepcopy__(self, memo: dict) -> SymbolicTensor:
        return self  # structure, not state: a copy of a layer shares its graph

    # a symbolic tensor has no values: refuse what would silently compute nothing
    def __bool__(self) -> bool:
        raise TypeError(
            f"symbolic tensor {self.name!r} has no value; it only describes a graph (call a model on arrays "
            "to compute)"
        )

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"symbolic tensor {self.name!r} has no value; layers called on neuro.Input(...) build a graph "
            "for neuro.Model(inputs, outputs), which computes on arrays"
        )


class Node:
    """One call of a layer in a graph: the tensors it was called on and the tensors it returned.

    Args:
        layer: the layer called.
        inbound: the symbolic tensors it was called on, in order.
        multi_input: whether it was called with a list (even of one tensor) rather than a tensor.
        output_shapes: the shape of each output.
        output_dtypes: the dtype of each output.
        multi_output: whether the layer returns a list of outputs.
    """

    def __init__(
        self,
        layer: Layer,
        inbound: list[SymbolicTensor],
        multi_input: bool,
        output_shapes: list[Shape],
        output_dtypes: list[str],
        multi_output: bool,
        output_masked: list[bool] | None = None,
    ) -> None:
        self.layer = layer
        self.inbound = inbound
        self.multi_input = multi_input
        self.multi_output = multi_output
        masked = output_masked or [False] * len(output_shapes)
        self.outputs = [
            SymbolicTensor(s, dt, self, i, m)
            for i, (s, dt, m) in enumerate(zip(output_shapes, output_dtypes, masked, strict=True))
        ]

    @property
    def input_shape(self) -> Any:
        """The shape (or list of shapes) the layer was called on, as ``compute_output_shape`` takes it."""
        shapes = [t.sample_shape for t in self.inbound]
        return shapes if self.multi_input else shapes[0]

    def __repr__(self) -> str:
        return f"<Node {self.layer.name!r} inbound={[t.name for t in self.inbound]}>"

    def __deepcopy__(self, memo: dict) -> Node:
        return self  # structure, not state: a copy of a layer shares its graph


class _NotPlain:
    """Stands for a constructor argument that is not a plain JSON value (kept by its type's name only)."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _NotPlain) and other.kind == self.kind

    def __hash__(self) -> int:
        return hash(self.kind)

    def __repr__(self) -> str:
        return f"<a {self.kind}>"


def _captured(value: Any) -> Any:
    """A constructor argument as a layer keeps it for :meth:`Layer.get_config`: a copy when it is a plain
    JSON value (NumPy scalars as Python numbers; a constructor that changes its argument changes nothing
    here), else a :class:`_NotPlain` (no reference to arrays or functions is kept)."""
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return value
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_captured(v) for v in value]
        return _NotPlain(type(value).__name__) if any(isinstance(v, _NotPlain) for v in items) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = {k: _captured(v) for k, v in value.items()}
        bad = any(isinstance(v, _NotPlain) for v in items.values())
        return _NotPlain("dict") if bad else items
    return _NotPlain(type(value).__name__)


def checked_weights(layers: Sequence[Layer], weights: Sequence[Any]) -> list[tuple[dict, str, Any]]:
    """``weights`` for every param, then buffer, of ``layers`` in order, each checked before any is written
    (all or nothing): ``(store, name, host array in the store's dtype)`` for :func:`write_weights`.

    Args:
        layers: the layers (a model's leaf layers, or one layer).
        weights: one array per param and buffer.

    Returns:
        The checked arrays with where they go.

    Raises:
        ValueError: for a wrong count or shape.
        TypeError: for an array that does not hold real numbers.
    """
    targets = [
        (layer, store, k) for layer in layers for store in (layer.params, layer.buffers) for k in store
    ]
    weights = list(weights)
    if len(weights) != len(targets):
        raise ValueError(f"weights must be a list of {len(targets)} arrays, got {len(weights)}")
    host = [np.asarray(backend.to_numpy(w)) for w in weights]
    for i, ((layer, store, k), w) in enumerate(zip(targets, host, strict=True)):
        if w.shape != tuple(store[k].shape):
            raise ValueError(
                f"weights[{i}] ({layer.name}.{k}) must have shape {tuple(store[k].shape)}, got {w.shape}"
            )
        if w.dtype.kind not in "biuf":
            raise TypeError(f"weights[{i}] ({layer.name}.{k}) must hold real numbers, got dtype {w.dtype}")
    return [(store, k, w.astype(store[k].dtype)) for (_layer, store, k), w in zip(targets, host, strict=True)]


def write_weights(checked: list[tuple[dict, str, Any]]) -> None:
    """Write what :func:`checked_weights` returned into the arrays, in place, each on its own device.

    Args:
        checked: ``(store, name, host array)`` triples.
    """
    for store, k, w in checked:
        store[k][...] = backend.to_device(w, backend.get_array_module(store[k]))


class Layer(KeywordChecked):
    """Base class of every layer: a thin holder of parameters that calls :mod:`neuro.functional`.

    A layer is built once from the shape of its input (without the batch axis). Then:

    - ``layer(x)`` (or ``layer.forward(x)``) computes the output in inference mode. It keeps nothing on
      the layer and changes nothing, so any number of threads may predict at once, also while another
      thread trains.
    - ``y, ctx = layer.forward(x, training=True)`` computes the output in training mode and returns the
      context its backward needs; ``dx = layer.backward(grad, ctx)`` *adds* the parameter gradients of this
      call into ``grads`` (same keys and shapes as ``params``) and returns the gradient with respect to its
      input. Layers sum over the batch: the loss owns the 1/m. A model clears the gradients once per step
      (:meth:`clear_grads`); a layer called twice in one step (a shared layer) then holds the sum of both
      calls' gradients. Each training call has a context of its own: two forwards may be followed by their
      backwards in any order.

    A layer with several inputs takes a list of arrays in ``forward`` (and a list of shapes in
    :meth:`compute_output_shape`) and returns a tuple of input gradients from ``backward``; a layer with
    several outputs returns a list of shapes from :meth:`compute_output_shape`, a tuple of arrays from
    ``forward``, and takes a tuple of gradients in ``backward`` (``None`` for an output no gradient reached).

    A subclass declares its arrays in :meth:`param_specs` / :meth:`buffer_specs` (shape and initializer,
    without allocating anything), computes shapes in :meth:`compute_output_shape`, and implements
    ``forward`` and ``backward``, writing parameter gradients through :meth:`accumulate`. Its constructor
    arguments, returned by :meth:`get_config` as plain JSON values, rebuild it with :meth:`from_config`.

    Args:
        name: the layer's name; the lower-cased class name when ``None`` or empty (a model makes such default
            names unique: ``dense``, ``dense_1``, …).

    Raises:
        TypeError: when ``name`` is neither a string nor ``None``.

    Attributes:
        params: trainable arrays by name (for example ``"kernel"``, ``"bias"``).
        grads: gradients of the loss with respect to ``params``, summed over the calls since the last
            :meth:`clear_grads`.
        buffers: non-trainable state that is saved with the model (for example running statistics).
        regularizable: names of the params a regularizer acts on (kernels, not biases).
        input_shape: input shape without the batch axis (of the first call), set by ``build``.
        output_shape: output shape without the batch axis, set by ``build``.
        need_input_grad: set by the model before each ``backward``: False when nothing needs the gradient
            with respect to this call's input (the first layer), which may then be skipped (``None``).
        trainable: whether a model's optimizer updates the params (Keras's ``trainable``). A frozen layer
            (``layer.trainable = False``) is left alone by training: its params get no update, no optimizer
            state and no regularization; a :class:`~neuro.layers.batchnorm.BatchNorm` also normalizes with
            its running statistics in training and does not update them (Keras's inference mode). The flag
            is saved with the model.
    """

    regularizable: tuple[str, ...] = ()
    #: True for a layer that takes a ``mask=`` argument in ``forward`` (see :meth:`compute_mask`).
    supports_masking = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Layer:
        layer = super().__new__(cls)
        # what the constructor was given (plain values copied): the config of a class without its own
        layer._init_args = ([_captured(a) for a in args], {k: _captured(v) for k, v in kwargs.items()})
        return layer

    def __init__(self, name: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {type(name).__name__}")
        self._auto_name = not name
        self.name = name or self.default_name()
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.buffers: dict[str, Any] = {}
        self.input_shape: Any = None
        self.output_shape: Any = None
        self.need_input_grad = True
        self._trainable = True
        self.built = False
        self._grads_clear = True  # grads hold nothing of this step: the next backward writes, not adds
        self._accumulates = False  # whether backward writes through accumulate() (else grads are zeroed)
        self._acc: dict[str, Any] = {}  # where a second call's gradients are computed before they are added
        self._work_pool: list[dict[str, Any]] = []  # training scratch, one dict per live context
        self._nodes: list[Node] = []  # the calls on symbolic tensors

    @property
    def trainable(self) -> bool:
        """Whether training updates the layer's params (see the class's Attributes); ``True`` at first.

        Raises:
            TypeError: when set to anything but ``True`` or ``False``.
        """
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = as_flag(value, "trainable")

    def default_name(self) -> str:
        """The name of a layer given none: the lower-cased class name (a model makes it unique)."""
        return type(self).__name__.lower()

    # -- life cycle -------------------------------------------------------------------------------------
    def build(
        self,
        input_shape: Any,
        rng: np.random.Generator | None = None,
        dtype: Any = None,
        xp: ModuleType = np,
        initialize: bool = True,
    ) -> None:
        """Validate ``input_shape``, create parameters and buffers, and record the output shape.

        Args:
            input_shape: shape of one sample (no batch axis), or a list of shapes for several inputs.
            rng: generator that initializers draw from; a fresh unseeded one when ``None``.
            dtype: floating type of the arrays (the backend's default when ``None``).
            xp: the array module (device) the arrays live on.
            initialize: draw initial values; ``False`` allocates zeros (a loader then fills them).

        Raises:
            ValueError: when this layer cannot take inputs of that shape.
        """
        input_shape = _normalize_shape(input_shape)
        out = self.compute_output_shape(input_shape)
        self.output_shape = tuple(out) if is_shape(tuple(out)) else [tuple(s) for s in out]
        self.input_shape = input_shape
        dt = np.dtype(backend.get_dtype() if dtype is None else dtype).type
        rng = rng if rng is not None else np.random.default_rng()
        self.params = self._make(self.param_specs(input_shape), rng, dt, xp, initialize)
        self.buffers = self._make(self.buffer_specs(input_shape), rng, dt, xp, initialize)
        self.grads = {k: xp.zeros_like(v) for k, v in self.params.items()}
        self._grads_clear = True
        self._acc = {}
        self._work_pool = []
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

    def param_specs(self, input_shape: Any) -> dict[str, tuple[tuple[int, ...], Any]]:
        """The trainable arrays for ``input_shape``: ``{name: (shape, initializer)}`` (none by default).

        :meth:`build` allocates them (nothing is allocated here); each initializer is called as
        ``initializer(shape, rng, dtype)`` (see :class:`neuro.initializers.Initializer`).

        Args:
            input_shape: shape of one sample (no batch axis).

        Returns:
            The specs by parameter name, in a stable order.
        """
        return {}

    def buffer_specs(self, input_shape: Any) -> dict[str, tuple[tuple[int, ...], Any]]:
        """The saved non-trainable arrays: ``{name: (shape, initializer)}`` (none by default).

        Args:
            input_shape: shape of one sample (no batch axis).

        Returns:
            The specs by buffer name, as for :meth:`param_specs`.
        """
        return {}

    def compute_output_shape(self, input_shape: Any) -> Any:
        """Return the output shape for ``input_shape`` (no batch axis); the same shape by default.

        Args:
            input_shape: shape of one sample (no batch axis), or a list of shapes for several inputs.

        Returns:
            The shape of one output sample, or a list of shapes for a layer with several outputs.

        Raises:
            ValueError: when this layer cannot take inputs of that shape.
        """
        return input_shape

    def compute_output_dtype(self, input_dtype: Any) -> Any:
        """The dtype of the output(s) for input dtype(s) ``"float"`` or an integer type name.

        By default every output is ``"float"`` (the model's floating type): a layer that takes integer
        token ids computes on them as floats, except layers that say otherwise (Embedding takes them as
        ids).

        Args:
            input_dtype: the input's dtype name, or a list of them.

        Returns:
            ``"float"``, or a list with one dtype per output.
        """
        return "float"

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        """The mask of the output, from the input and its mask (Keras's ``compute_mask``).

        A mask is a boolean array ``(N, T)`` marking the valid steps of a sequence. By default a layer that
        supports masking passes its input's mask on unchanged (the first input's mask for several inputs).

        Args:
            inputs: the input array(s) of the call.
            mask: the input's mask (a list of masks for several inputs), or ``None``.

        Returns:
            The output's mask, or ``None``.
        """
        if isinstance(mask, (list, tuple)):
            mask = next((m for m in mask if m is not None), None)
        return mask if self.supports_masking else None

    def output_masked(self, inputs_masked: list[bool]) -> Any:
        """Whether the output carries a mask, from whether the inputs do (symbolic :meth:`compute_mask`).

        Args:
            inputs_masked: for each input, whether it carries a mask.

        Returns:
            A bool (a list of bools for a layer with several outputs): by default, a layer that supports
            masking passes a mask on.
        """
        return self.supports_masking and any(inputs_masked)

    def to(self, xp: ModuleType) -> None:
        """Move params, grads and buffers to the device of ``xp`` and drop the scratch space.

        Args:
            xp: the array module of the target device (see :func:`neuro.backend.get_device`).
        """
        for store in (self.params, self.grads, self.buffers):
            for k, v in store.items():
                store[k] = backend.to_device(v, xp)
        self._acc = {}
        self._work_pool = []

    # -- gradients --------------------------------------------------------------------------------------
    def clear_grads(self) -> None:
        """Start a step: the next ``backward`` writes the parameter gradients, later ones add to them.

        Nothing is written here (no pass over the arrays): the clearing is lazy, so a layer called once per
        step pays nothing for accumulation. A layer whose backward has not written through
        :meth:`accumulate` (yet) has its gradients set to zero instead, so that one adding into ``grads``
        directly still gets the gradient of this step alone.
        """
        if not getattr(self, "_accumulates", False):
            for g in self.grads.values():
                g.fill(0)
        self._grads_clear = True

    @contextlib.contextmanager
    def accumulate(self) -> Iterator[dict[str, Any]]:
        """Arrays to write this call's parameter gradients into, added into ``grads`` on leaving the block.

        The first backward after :meth:`clear_grads` gets ``grads`` itself (no copy, no addition); a later one
        gets scratch arrays of the same shapes, which are added into ``grads`` when the block ends. A
        ``backward`` writes every gradient it computes through it::

            with self.accumulate() as g:
                F.linear_backward(grad, x, W, g["kernel"], g["bias"])

        Yields:
            ``{name: array}`` with the keys and shapes of ``params``; every entry must be written (not added
            to) inside the block.
        """
        self._accumulates = True
        if self._grads_clear:
            self._grads_clear = False
            yield self.grads
            return
        acc = self._acc
        for k, g in self.grads.items():
            a = acc.get(k)
            if a is None or a.shape != g.shape or a.dtype != g.dtype or type(a) is not type(g):
                acc[k] = backend.get_array_module(g).empty_like(g)
        yield {k: acc[k] for k in self.grads}
        for k, g in self.grads.items():
            g += acc[k]

    # -- training scratch -----------------------------------------------------------------------------
    def borrow_work(self) -> dict[str, Any]:
        """A scratch dict for one training context (buffers reused between steps, never between contexts).

        A training forward that wants reusable scratch space (Conv2D's window matrix) borrows one, keeps it
        in its context and gives it back with :meth:`release_work` when the backward is done; two live
        contexts of one layer therefore never share scratch.

        Returns:
            A dict of buffers (possibly left from an earlier step, else empty).
        """
        try:
            return self._work_pool.pop()
        except IndexError:
            return {}

    def release_work(self, work: dict[str, Any]) -> None:
        """Give back a scratch dict of :meth:`borrow_work` once its context is consumed.

        Args:
            work: the dict the forward borrowed.
        """
        if len(self._work_pool) < 4:  # a few spare sets at most
            self._work_pool.append(work)

    # -- computation ------------------------------------------------------------------------------------
    def forward(self, x: Any, training: bool = False, rng: Any = None) -> tuple[Any, Any]:
        """Compute the output for a batch ``x``.

        Args:
            x: the batch (a list of batches for a layer with several inputs).
            training: training mode; the returned context then holds what ``backward`` needs.
            rng: a :class:`neuro.backend.DeviceRNG` for layers that draw random numbers (Dropout).

        Returns:
            ``(y, ctx)``; ctx is ``None`` in inference; y is a tuple for a layer with several outputs.
        """
        raise NotImplementedError

    def backward(self, grad: Any, ctx: Any) -> Any:
        """Take dL/d(output) and the context of the training forward, add the parameter gradients into
        ``self.grads`` (through :meth:`accumulate`) and return dL/d(input) (or ``None`` when
        ``need_input_grad`` is False).

        Gradients are summed over the batch (the loss's gradient already holds the 1/m).

        Args:
            grad: dL/d(output), of the shape of the forward's output (a tuple for several outputs).
            ctx: the context returned by ``forward(x, training=True)``.

        Returns:
            dL/d(input), of the shape of the forward's input (a tuple for several inputs), or ``None``.

        Raises:
            RuntimeError: when ``ctx`` is ``None`` (the forward ran in inference mode).
        """
        raise NotImplementedError

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Call the layer on arrays (the output in inference mode, nothing kept or changed) or on symbolic
        tensors (a node of a graph; see the module docstring).

        Args:
            inputs: an array, a list of arrays, a :class:`SymbolicTensor` or a list of them.
            **kwargs: call arguments of layers that take them (``initial_state=`` of recurrent layers).

        Returns:
            The output array(s), or the output symbolic tensor(s).

        Raises:
            ValueError: on tensors or arrays whose shapes the layer cannot take, or that its weights do not
                fit (the message names the layer and both shapes); on arrays of different batch sizes.
            TypeError: for an array without a batch axis, keyword arguments given with arrays, or a mix of
                symbolic tensors and arrays.
        """
        if _symbolic(inputs):
            return self._call_symbolic(inputs, kwargs)
        if kwargs:
            raise TypeError(
                f"{type(self).__name__} called on arrays takes no keyword arguments, got {sorted(kwargs)}"
            )
        multi = isinstance(inputs, (list, tuple))
        arrays = list(inputs) if multi else [inputs]
        for a in arrays:
            if len(getattr(a, "shape", ())) == 0:
                raise TypeError(
                    f"layer {self.name!r} ({type(self).__name__}) takes arrays with a batch axis, got "
                    f"{type(a).__name__} of shape {tuple(getattr(a, 'shape', ()))}"
                )
        shapes = [tuple(a.shape[1:]) for a in arrays]
        shape = shapes if multi else shapes[0]
        if len({a.shape[0] for a in arrays}) > 1:
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) was called on arrays of batch sizes "
                f"{[a.shape[0] for a in arrays]}; they must be equal"
            )
        # the shape rules of a symbolic call (a pool larger than its input, merges of other shapes…); a layer
        # without weights takes arrays of any rank
        self._checked_output_shape(shape, any_rank=not (self.params or self.buffers))
        # a layer with weights computes in their dtype (a new one is built in the default dtype), as in a
        # model; one without takes floats as they come; integers and booleans are cast to a float, as Keras
        # casts them (an integer average pool divided in integers)
        held = next(iter(self.params.values()), None) if self.built else None
        specs = not self.built and bool(self.param_specs(shape) or self.buffer_specs(shape))
        weighted = held is not None or specs
        if weighted:
            dt = np.dtype(held.dtype if held is not None else backend.get_dtype())
        else:
            floats = [a.dtype for a in arrays if np.dtype(a.dtype).kind == "f"]
            dt = np.dtype(floats[0] if floats else backend.get_dtype())
        if getattr(self, "integer_inputs", False) is not True and any(a.dtype != dt for a in arrays):
            arrays = [a if a.dtype == dt else a.astype(dt) for a in arrays]
            inputs = arrays if multi else arrays[0]
        if specs:  # as Keras: a layer with weights called on data first is built for its shape
            self.build(shape, None, dt.type, backend.get_array_module(*arrays))
        return self.forward(inputs)[0]

    def _call_symbolic(self, inputs: Any, kwargs: dict[str, Any]) -> Any:
        multi_input = isinstance(inputs, (list, tuple))
        tensors = list(inputs) if multi_input else [inputs]
        extra = self._symbolic_call_arguments(kwargs)
        tensors += extra
        multi_input = multi_input or bool(extra)
        if not tensors:
            raise ValueError(f"layer {self.name!r} ({type(self).__name__}) was called on an empty list")
        shapes = [t.sample_shape for t in tensors]
        in_shape = shapes if multi_input else shapes[0]
        out = self._checked_output_shape(in_shape)
        out = tuple(out) if is_shape(tuple(out)) else [tuple(s) for s in out]
        multi_output = not is_shape(out)
        shapes_out = list(out) if multi_output else [out]
        dtypes = [t.dtype for t in tensors]
        dt_out = self.compute_output_dtype(dtypes if multi_input else dtypes[0])
        dt_out = list(dt_out) if isinstance(dt_out, (list, tuple)) else [dt_out] * len(shapes_out)
        in_masked = [t.masked for t in tensors]
        if any(in_masked) and not self.supports_masking:
            carriers = [t.name for t in tensors if t.masked]
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) cannot take the mask that {carriers} carries "
                "(from Embedding(mask_zero=True) or Masking); layers that take masks: the recurrent layers, "
                "Bidirectional, Dense, Dropout, activations, LayerNormalization, merges, "
                "GlobalAveragePooling1D and GlobalMaxPool1D"
            )
        masked = self.output_masked(in_masked)
        masked = list(masked) if isinstance(masked, (list, tuple)) else [bool(masked)] * len(shapes_out)
        node = Node(self, tensors, multi_input, shapes_out, dt_out, multi_output, masked)
        self._nodes.append(node)
        return list(node.outputs) if multi_output else node.outputs[0]

    def _symbolic_call_arguments(self, kwargs: dict[str, Any]) -> list[SymbolicTensor]:
        """Extra symbolic inputs given as keyword arguments (none by default; recurrent layers take
        ``initial_state``); they follow the positional inputs in the node's inbound list."""
        if kwargs:
            raise TypeError(f"{type(self).__name__} takes no call arguments, got {sorted(kwargs)}")
        return []

    def _checked_output_shape(self, shape: Any, any_rank: bool = False) -> Any:
        """The output shape for input ``shape``, which the layer's shape rules and (called before) its weights
        must take (``any_rank``: the reuse check is skipped, for a call on arrays of a layer without weights);
        a ValueError names the layer and the shapes."""
        try:
            out = self.compute_output_shape(shape)
        except ValueError as exc:
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) cannot take input of shape "
                f"{shape_text(shape)}: {exc}"
            ) from None
        first = self._nodes[0].input_shape if self._nodes else (self.input_shape if self.built else None)
        if first is not None and not any_rank:
            self._check_reuse(first, shape)
        return out

    def _check_reuse(self, first: Any, shape: Any) -> None:
        """A layer called again must take arrays its parameters fit (a shared layer keeps its weights)."""
        try:
            want = {k: s for k, (s, _) in {**self.param_specs(first), **self.buffer_specs(first)}.items()}
            got = {k: s for k, (s, _) in {**self.param_specs(shape), **self.buffer_specs(shape)}.items()}
        except ValueError:
            got, want = None, {}
        if got != want or (not want and _rank(first) != _rank(shape)):
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) was first called on input of shape "
                f"{shape_text(first)} and now on {shape_text(shape)}; a layer called twice shares its "
                "weights, so both inputs must fit the same weights"
            )

    def _require(self, ctx: Any) -> Any:
        if ctx is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward needs the context returned by forward(x, training=True)"
            )
        return ctx

    # -- description ------------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as plain JSON values (used for saving and ``summary``).

        A subclass whose constructor takes arguments returns them (``{**super().get_config(), "units":
        self.units}``). One whose constructor no ``get_config`` of its own covers gets the arguments its
        constructor was given, when they are plain JSON values (as Keras 3 does): all of them for a layer
        without a ``get_config``, and for a subclass of a layer that has one (a built-in layer) those its
        parent's constructor does not take.

        Raises:
            TypeError: for such a subclass whose constructor was given arguments that are not plain JSON
                values (a file would rebuild it without them).
        """
        config: dict[str, Any] = {"name": self.name}
        mro = type(self).__mro__
        init_owner = next(c for c in mro if "__init__" in vars(c))
        config_owner = next(c for c in mro if "get_config" in vars(c))
        if init_owner is Layer or mro.index(init_owner) >= mro.index(config_owner):
            return config  # the get_config of the class that defines the constructor returns its arguments
        args, kwargs = getattr(self, "_init_args", ((), {}))
        kwargs = dict(kwargs)
        with quiet():
            rename(type(self).__name__, kwargs, getattr(type(self), "renamed_keywords", {}))
        sig = inspect.signature(init_owner.__init__)
        # no get_config at all: every argument; else only those the parent's constructor does not take (its
        # get_config returns those)
        known = set() if config_owner is Layer else set(inspect.signature(config_owner.__init__).parameters)
        extra: dict[str, Any] = {}
        try:
            bound = sig.bind(self, *args, **kwargs).arguments
        except TypeError:
            bound, extra = {}, {"(arguments)": _NotPlain("?")}
        for k, v in bound.items():
            kind = sig.parameters[k].kind
            if k in ("self", "name") or k in known:
                continue
            if kind is inspect.Parameter.VAR_KEYWORD:
                extra.update((kk, vv) for kk, vv in v.items() if kk != "name" and kk not in known)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                if v and config_owner is Layer:
                    extra["*" + k] = _NotPlain("tuple")  # positional extras cannot be given back by name
            else:
                extra[k] = v
        bad = sorted(k for k, v in extra.items() if isinstance(v, _NotPlain))
        if bad:
            raise TypeError(
                f"layer {self.name!r} ({type(self).__name__}) was given constructor arguments that are not "
                f"plain JSON values ({', '.join(bad)}): override get_config to return them as such (see "
                "docs/writing-a-layer.md), or a saved model would be rebuilt without them"
            )
        return {**config, **extra}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild a layer from :meth:`get_config`'s output (``cls(**config)``).

        Args:
            config: the constructor arguments, as :meth:`get_config` returns them.

        Returns:
            A new, unbuilt layer of this class.
        """
        with quiet():  # a saved config may use old keyword spellings
            return cls(**config)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the layer's params, then its buffers, as NumPy arrays (Keras's ``layer.get_weights``;
        a Dense gives ``[kernel, bias]``, a BatchNorm ``[gamma, beta, running_mean, running_var]``).

        Returns:
            The arrays, in the order of ``params`` then ``buffers``.
        """
        return [np.array(backend.to_numpy(a)) for a in (*self.params.values(), *self.buffers.values())]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the arrays :meth:`get_weights` returns (in place, each array keeping its dtype and device),
        checking their number, shapes and types first: all or nothing (values are not checked; ``save``
        refuses non-finite weights). Between two training steps: a model training in another thread may
        read them halfway (:meth:`Model.set_weights` takes its lock).

        Args:
            weights: one array per param and buffer, in the order of :meth:`get_weights`.

        Raises:
            ValueError: for a wrong count or shape, or an unbuilt layer.
            TypeError: for an array that does not hold real numbers.
        """
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet: it has no weights to set")
        write_weights(checked_weights([self], weights))

    def count_params(self) -> int:
        """Number of scalars in the layer's weights, its parameters and buffers (running statistics), as
        Keras's ``count_params``."""
        return self._count_trainable() + int(sum(int(np.prod(b.shape)) for b in self.buffers.values()))

    def _count_trainable(self) -> int:
        """Number of scalars in ``params`` (what an optimizer trains, when the layer is trainable)."""
        return int(sum(int(np.prod(p.shape)) for p in self.params.values()))

    def __repr__(self) -> str:
        try:
            config = self.get_config()
        except TypeError:  # arguments get_config cannot write: the name says enough
            config = {}
        args = ", ".join(f"{k}={v!r}" for k, v in config.items() if k != "name")
        return f"{type(self).__name__}({args})"


def as_flag(value: Any, name: str) -> bool:
    """``value`` as a bool, for a flag that takes ``True`` or ``False`` only (NumPy's bools included).

    Args:
        value: the value given.
        name: the flag's name, for the error.

    Returns:
        The flag.

    Raises:
        TypeError: for anything else (``0``, ``"no"``, ``None``).
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _symbolic(inputs: Any) -> bool:
    if isinstance(inputs, SymbolicTensor):
        return True
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(t, SymbolicTensor) for t in inputs):
        return True
    if isinstance(inputs, (list, tuple)) and any(isinstance(t, SymbolicTensor) for t in inputs):
        raise TypeError("a layer's inputs must be all symbolic tensors or all arrays, not a mix")
    return False


def _rank(shape: Any) -> Any:
    return len(shape) if is_shape(shape) else [len(s) for s in shape]


def _normalize_shape(shape: Any) -> Any:
    """A tuple of ints for one shape, a list of tuples for several."""
    if isinstance(shape, (list, tuple)) and shape and all(isinstance(s, (list, tuple)) for s in shape):
        return [tuple(int(d) for d in s) for s in shape]
    return tuple(int(d) for d in shape)


def as_tuple(value: Any) -> tuple[Any, ...]:
    """``value`` as a tuple: a list or tuple as it is, anything else as a 1-tuple.

    Args:
        value: an array, a list or a tuple.

    Returns:
        The items.
    """
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def names_of(layers: Sequence[Layer]) -> list[str]:
    """The names of ``layers``, in order (a helper for error messages)."""
    return [layer.name for layer in layers]


registry.set_base("layer", Layer)
