"""The model: a graph of layers with its losses, optimizer, device and files.

:class:`Model` owns what a trained network *is*: its graph (:mod:`neuro.graph`), its weights on one device in
one dtype, its seeded generator, the losses of its outputs and their heads (:mod:`neuro.head`), its optimizer,
the data it was given (class names, scalers), and the operations on all of these as a whole: ``compile``,
``predict``, ``get_weights``/``set_weights``, ``to``, ``save``/``load``, ``export_onnx`` and ``summary``.
It leaves the loop of ``fit`` and ``evaluate`` to :mod:`neuro.training` (which it calls), the checks of data
formats to :mod:`neuro.training.adapters`, and file formats to :mod:`neuro.io` and :mod:`neuro.onnx`.

:class:`~neuro.models.network.Network` is the chain special case, built layer by layer with ``add``.
"""

from __future__ import annotations

import copy
import numbers
import threading
import warnings
import weakref
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from neuro import _validation as check
from neuro import backend, registry
from neuro import head as head_mod
from neuro import losses as losses_mod
from neuro import optimizers as optimizers_mod
from neuro import regularizers as regularizers_mod
from neuro._keywords import KeywordChecked, checked
from neuro.data.dataset import DataSet, Split
from neuro.graph import Functional, Graph, build_layers, leaf_layers
from neuro.layers.base import Layer, SymbolicTensor, as_flag, checked_weights, shape_text, write_weights
from neuro.training import adapters, evaluation, loop
from neuro.training.history import History


def _structure(value: Any, what: str) -> tuple[list[SymbolicTensor], str, list[str] | None]:
    """A tensor, a list of tensors or a dict of tensors as a list, with how it was given."""
    if isinstance(value, SymbolicTensor):
        return [value], "single", None
    if isinstance(value, dict):
        keys = list(value)
        if not keys or not all(isinstance(k, str) for k in keys):
            raise TypeError(f"{what} given as a dict must map names to tensors, got keys {keys!r}")
        return [value[k] for k in keys], "dict", keys
    if isinstance(value, (list, tuple)):
        return list(value), "list", None
    raise TypeError(f"{what} must be a symbolic tensor, a list or a dict of them, got {type(value).__name__}")


def _name_input(key: str, tensor: Any) -> None:
    """An input given under a dict key is named by it (data is matched by input name): an Input without a
    name of its own takes the key; one named otherwise is refused, naming both."""
    layer = getattr(getattr(tensor, "node", None), "layer", None)
    if layer is None or layer.name == key:
        return
    if getattr(layer, "_auto_name", False) and not getattr(layer, "_name_given", False):
        layer.name, layer._auto_name = key, False
        return
    raise ValueError(
        f"inputs given as a dict are matched to data by name: the key {key!r} holds the input named "
        f"{layer.name!r}; use the key {layer.name!r}, or name the Input {key!r} (Input(shape, name={key!r}))"
    )


def _check_scaler_width(scaler: Any, shape: Any, what: str) -> None:
    """A scaler's features must be the end of the shape it is applied to (one value per feature)."""
    shape = tuple(shape)
    k = scaler.a.ndim
    if k > len(shape) or shape[len(shape) - k :] != scaler.a.shape:
        raise ValueError(
            f"the data set's {what} scaler has features of shape {scaler.a.shape}, which must be the end of "
            f"the model's {what} shape {shape} (one value per {what} feature)"
        )


def _names_an_optimizer(value: Any) -> bool:
    """Whether ``value`` is an optimizer or an optimizer's name (given where a loss belongs)."""
    if isinstance(value, optimizers_mod.Optimizer):
        return True
    if not isinstance(value, str):
        return False
    try:
        optimizers_mod.get(value)
    except (ValueError, TypeError):
        return False
    return True


class _Own:
    """The default of ``compile``'s regularizer: the model's own."""

    def __repr__(self) -> str:
        return "the model's own"


_OWN = _Own()


@registry.register(family="model")
class Model(KeywordChecked):
    """A model made of layers called on :func:`neuro.Input` tensors (Keras's functional API).

    Args:
        inputs: an ``Input`` tensor, a list of them, or a dict ``{name: tensor}``.
        outputs: the tensor(s) the model computes: one, a list, or a dict ``{name: tensor}`` (the names then
            name the outputs in logs and in ``fit``'s target dicts).
        loss: the loss of every output (a name or object, see :mod:`neuro.losses`), a list with one per
            output, or a dict keyed by output name; ``None`` to :meth:`compile` later.
        optimizer: an optimizer name or object (see :mod:`neuro.optimizers`); ``None`` to compile later
            (with a loss and no optimizer, RMSprop, as Keras's ``compile``).
        regularizer: optional :class:`~neuro.regularizers.L1` / :class:`~neuro.regularizers.L2`, applied to
            every layer's kernel.
        seed: seeds every random choice (initial weights, shuffling, dropout masks): the same seed gives a
            bitwise identical training run on the same machine, device and thread count.
        device: where the model computes: ``"numpy"`` (the default), ``"cupy"`` or ``"strict"`` (see
            :mod:`neuro.backend`); :meth:`to` moves it later.
        loss_weights: the weight of each output's loss in the total (a list or a dict by output name;
            default 1 each).
        metrics: the metrics ``fit`` and ``evaluate`` report when not told otherwise (see :meth:`fit`).
        name: the model's name (its layer name when it is called inside another model).

    Raises:
        ValueError: for a graph that is not one (an output not reachable from the inputs, an input nothing
            uses, a tensor of another model, two layers with one name), or losses that do not fit the
            outputs.
        TypeError: for inputs or outputs that are not symbolic tensors.

    The model computes in the dtype that is current when it is created (float32 unless
    :func:`neuro.set_dtype` or :class:`neuro.backend.dtype_scope` says otherwise). Its layers are built (their
    weights drawn) when it is created, in graph order.

    Example:
        >>> import neuro
        >>> image = neuro.Input((8, 8, 1), name="image")
        >>> x = neuro.Conv2D(4, 3, padding="same", activation="relu")(image)
        >>> y = neuro.Add()([x, neuro.Conv2D(4, 1)(image)])
        >>> out = neuro.Dense(10, activation="softmax")(neuro.Flatten()(y))
        >>> model = neuro.Model(image, out, loss="crossentropy", optimizer="adam", seed=0)
        >>> model.output_shapes
        [(10,)]
    """

    #: How messages call it.
    _noun = "model"

    def __init__(
        self,
        inputs: Any,
        outputs: Any,
        loss: Any = None,
        optimizer: Any = None,
        regularizer: Any = None,
        seed: int | None = None,
        device: str = "numpy",
        *,
        loss_weights: Any = None,
        metrics: Any = None,
        name: str | None = None,
    ) -> None:
        self._setup(seed, device, name)
        in_list, self._input_kind, in_keys = _structure(inputs, "inputs")
        for key, tensor in zip(in_keys or (), in_list, strict=False):
            _name_input(key, tensor)
        out_list, self._output_kind, out_keys = _structure(outputs, "outputs")
        graph = Graph(in_list, out_list)
        self._output_keys = out_keys
        self._graph: Graph | None = graph
        build_layers(graph, self.rng, self.dtype, self.xp)
        if loss is not None or optimizer is not None:
            self.compile(loss, optimizer, regularizer, loss_weights=loss_weights, metrics=metrics)
        else:
            self.regularizer = regularizers_mod.get(regularizer)

    def _setup(self, seed: Any, device: str, name: str | None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an integer or None, got {seed!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {type(name).__name__}")
        self.name = name or type(self).__name__.lower()
        self._named = bool(name)  # a nested model without a name gets a unique one in the outer model
        self.seed = None if seed is None else int(seed)
        #: The dtype of every parameter and of the data the model computes on.
        self.dtype = np.dtype(backend.get_dtype()).type
        #: The host generator: initial weights, shuffling, and dropout masks on NumPy and the strict device.
        self.rng = np.random.default_rng(seed)
        self.xp: ModuleType = backend.get_device(device)
        self._device_rng = backend.DeviceRNG(self.xp, self.rng)
        #: Optional names of the classes, used by :meth:`predict_class`.
        self.class_names: list[str] | None = None
        #: Optional :class:`neuro.data.Scaler` objects applied to inputs (and inverted on outputs).
        self.input_scaler: Any = None
        self.output_scaler: Any = None
        self._vocabulary: Any = None
        self.loss: Any = None
        self.losses: list[losses_mod.Loss] = []
        self.optimizer: Any = None
        self.regularizer: Any = None
        self.loss_weights_list: list[float] = []
        self.compiled_metrics: Any = None
        self._heads: list[head_mod.Head] | None = None
        self._train_heads: list[head_mod.Head] | None = None  # fit's heads when class_weight changes a loss
        self._lock = threading.RLock()  # one training step, or one predicted batch, at a time
        self._fitting = False
        self.stop_training = False
        self._dist: Any = None  # a neuro.distributed.FitContext while a distributed fit runs
        self._functional: Functional | None = None
        self._output_keys: list[str] | None = None
        self._trainable = True
        #: ``greater_is_better`` of each metric the last ``fit`` logs, by log key (callbacks read it)
        self.metric_directions: dict[str, bool | None] = {}
        #: (layer id, param name) of each entry of the optimizer's state (``None``: not recorded yet)
        self._slot_keys: list[tuple[int, str]] | None = None

    # -- structure --------------------------------------------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The model's :class:`~neuro.graph.Graph` (its inputs, nodes and outputs)."""
        assert self._graph is not None
        return self._graph

    @property
    def layers(self) -> list[Layer]:
        """Every layer of the model, once each, in the order the graph first calls it (inputs excluded)."""
        return self.graph.layers

    def leaf_layers(self) -> list[Layer]:
        """The layers that hold arrays, with nested models opened up, once each."""
        return leaf_layers(self.graph.layers)

    def trainable_layers(self) -> list[Layer]:
        """The leaf layers whose parameters the optimizer updates (``trainable`` ones)."""
        return [layer for layer in self.leaf_layers() if layer.trainable and layer.params]

    @property
    def trainable(self) -> bool:
        """The model's flag (Keras's ``model.trainable``), ``True`` at first.

        Setting it sets the flag of every layer of the model, nested models included, as Keras does: with
        ``model.trainable = False`` nothing is trained (every layer frozen: see
        :attr:`neuro.layers.Layer.trainable`), also where the model is a layer of another model. A layer's
        own flag is what counts afterwards: a layer set trainable again inside a frozen model trains (Keras
        would still leave it alone while the model's flag is ``False``). Saved with the model.

        Raises:
            TypeError: when set to anything but ``True`` or ``False``.
        """
        if self._functional is not None:  # the model as a layer of another: one flag, set either way
            return self._functional._trainable
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        flag = as_flag(value, "trainable")
        for layer in self.layers:
            layer.trainable = flag  # a nested model sets its own layers
        self._trainable = flag
        if self._functional is not None:
            self._functional._trainable = flag

    def sync_optimizer_state(self) -> None:
        """Match the optimizer's state to the current trainable parameters (the training step calls it).

        The optimizer keeps one state entry per trainable parameter, in the order of :attr:`params`. When
        layers were frozen or unfrozen since that state was made, the state is re-keyed by (layer,
        parameter): a parameter that is still trainable keeps its state bitwise, a frozen one's state is
        dropped (a frozen variable has no optimizer state, as in a saved file), and a parameter trained again
        starts from a fresh (zero) state. The step count is the optimizer's and goes on (Adam's bias
        correction for a newly trained parameter uses it, as Keras's one ``iterations`` does).

        Raises:
            RuntimeError: when the trainable parameters change during a distributed ``fit`` (the ranks'
                reduction is sized when it starts); change them between fits.
        """
        keys, params, slots = self._rekeyed_slots()
        if slots is not None and self._dist is not None:
            raise RuntimeError(
                "the trainable layers changed during a distributed fit; set trainable between fits"
            )
        self._slot_keys = keys
        if slots is not None:
            self.optimizer.set_state({"iterations": self.optimizer.iterations, "slots": slots}, params)

    def optimizer_state(self) -> dict[str, Any]:
        """The optimizer's state as the next training step will start from it (what a saved file holds).

        It is :meth:`Optimizer.get_state <neuro.optimizers.Optimizer.get_state>` re-keyed to the current
        trainable parameters as :meth:`sync_optimizer_state` would do, without changing the optimizer: a
        model saved after freezing a layer holds no state for that layer, and one unfrozen since its last
        step holds a fresh state for it.

        Returns:
            ``{"iterations": int, "slots": [{name: NumPy array} per trainable parameter]}`` (copies).
        """
        opt = self.optimizer
        if opt is None:
            return {"iterations": 0, "slots": []}
        _, _, slots = self._rekeyed_slots()
        if slots is None:
            return opt.get_state()
        return {"iterations": opt.iterations, "slots": [{k: v.copy() for k, v in s.items()} for s in slots]}

    def _rekeyed_slots(self) -> tuple[list, list, list | None]:
        """The current trainable (layer, parameter) keys, their parameters, and the optimizer's slots re-keyed
        to them (``None`` when the state needs no re-keying). Changes nothing."""
        opt = self.optimizer
        layers = self.trainable_layers()
        keys = [(id(layer), k) for layer in layers for k in layer.params]
        params = [layer.params[k] for layer in layers for k in layer.params]
        old = self._slot_keys
        if opt is None or old is None or old == keys or not opt.slots or len(opt.slots) != len(old):
            return keys, params, None
        by_key = dict(zip(old, opt.slots, strict=True))
        slots = []
        for key, p in zip(keys, params, strict=True):
            kept = by_key.get(key)
            if kept is None:  # trained again (or for the first time): a fresh state
                slots.append({n: np.zeros(p.shape, p.dtype) for n in opt.slot_names()})
            else:
                slots.append({n: backend.to_numpy(v) for n, v in kept.items()})
        return keys, params, slots

    def _record_optimizer_keys(self) -> None:
        """The optimizer's state belongs to the current trainable parameters (after loading it)."""
        self._slot_keys = [(id(layer), k) for layer in self.trainable_layers() for k in layer.params]

    @property
    def inputs(self) -> list[SymbolicTensor]:
        """The model's input tensors."""
        return self.graph.inputs

    @property
    def outputs(self) -> list[SymbolicTensor]:
        """The model's output tensors."""
        return self.graph.outputs

    @property
    def input_names(self) -> list[str]:
        """The name of each input (keys of the dicts ``fit`` and ``predict`` take)."""
        return [layer.name for layer in self.graph.input_layers]

    @property
    def output_names(self) -> list[str]:
        """The name of each output: its key when the outputs were given as a dict, else the name of the layer
        that computes it (``<layer>_<k>`` for output k > 0 of a layer with several)."""
        if self._output_keys is not None:
            return list(self._output_keys)
        names = []
        for t in self.graph.outputs:
            base = t.node.layer.name
            names.append(base if t.index == 0 else f"{base}_{t.index}")
        if len(set(names)) != len(names):
            names = [f"{n}_{i}" for i, n in enumerate(names)]
        return names

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        """The per-sample shape of each input."""
        return self.graph.input_shapes

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        """The per-sample shape of each output."""
        return self.graph.output_shapes

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The per-sample shape of the input (a model with one input)."""
        shapes = self.input_shapes
        if len(shapes) != 1:
            raise AttributeError(f"the model has {len(shapes)} inputs; see input_shapes")
        return shapes[0]

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The per-sample shape of the output (a model with one output)."""
        shapes = self.output_shapes
        if len(shapes) != 1:
            raise AttributeError(f"the model has {len(shapes)} outputs; see output_shapes")
        return shapes[0]

    @property
    def params(self) -> list[Any]:
        """Every trainable array (of the trainable layers), in layer order."""
        return [p for layer in self.trainable_layers() for p in layer.params.values()]

    @property
    def grads(self) -> list[Any]:
        """The gradients of the last batch, matching :attr:`params`."""
        return [layer.grads[k] for layer in self.trainable_layers() for k in layer.params]

    def clear_grads(self) -> None:
        """Start a step: every layer's next backward writes its gradients (later calls add to them)."""
        for layer in self.leaf_layers():
            layer.clear_grads()

    @property
    def device(self) -> str:
        """The device the model lives on: ``"numpy"``, ``"cupy"`` or ``"strict"``."""
        return backend.device_name(self.xp)

    def to(self, device: str) -> Model:
        """Move the model as a whole (params, grads, buffers, optimizer state, scratch space) to a device.

        Args:
            device: ``"numpy"`` / ``"cpu"``, ``"cupy"`` / ``"gpu"`` / ``"cuda"`` or ``"strict"``.

        Returns:
            The model itself.

        Raises:
            ValueError: for an unknown device.
            RuntimeError: while ``fit`` is running (for example from a callback).
            ImportError: when CuPy is asked for but missing.
        """
        xp = backend.get_device(device)
        if self._fitting:
            raise RuntimeError(
                f"cannot move the {self._noun} to {device!r} while fit is running on {self.device!r}; "
                "move it before or after fit"
            )
        with self._lock:
            for layer in self.leaf_layers():
                layer.to(xp)
            if self.optimizer is not None:
                self.optimizer.to(xp)
            self.xp = xp
            self._device_rng = backend.DeviceRNG(xp, self.rng)
        return self

    # -- losses and optimizer -----------------------------------------------------------------------------
    @checked()
    def compile(
        self,
        loss: Any = None,
        optimizer: Any = None,
        regularizer: Any = _OWN,
        *,
        loss_weights: Any = None,
        metrics: Any = None,
    ) -> Model:
        """Give the model its losses, optimizer and default metrics (Keras's ``compile``).

        Args:
            loss: one loss for every output, a list with one per output, or a dict keyed by output name.
            optimizer: an optimizer name or object; it must not train another model. ``None`` gives
                ``"rmsprop"`` (Keras's default).
            regularizer: L1 / L2 on every kernel; left out, the model keeps the one it has (given to the
                constructor or an earlier compile); ``None`` removes it.
            loss_weights: the weight of each output's loss (list or dict by output name; default 1 each).
            metrics: the metrics ``fit`` and ``evaluate`` report by default (see :meth:`fit`).

        Returns:
            The model itself.

        Raises:
            ValueError: for a list or dict that does not match the outputs, an optimizer that trains another
                model, a compile while ``fit`` runs, or a loss whose input the output cannot produce (a
                probability loss after an output that is not a probability: see
                :func:`neuro.head.check_range`).
        """
        if self._fitting:
            raise RuntimeError("cannot compile the model while fit is running")
        if loss is None:
            raise ValueError(f"compile needs a loss, got loss=None (optimizer={optimizer!r})")
        if optimizer is None:
            optimizer = "rmsprop"
        names = self.output_names
        if _names_an_optimizer(loss):  # Keras's compile(optimizer, loss) by position
            raise TypeError(
                f"compile takes (loss, optimizer), Keras's compile takes (optimizer, loss): got "
                f"loss={loss!r}; write compile(loss=..., optimizer=...)"
            )
        losses = [losses_mod.get(v) for v in self._per_output(loss, "loss", allow_single=True)]
        if self.layers:  # a network still without layers is checked when its heads are chosen
            for k, one in enumerate(losses):
                head_mod.check_range(self.graph, k, one)
        elif self._noun != "network":
            raise ValueError(
                f"the model {self.name!r} computes nothing (each output is one of its inputs): a loss would "
                "have nothing to train; give it a layer"
            )
        weights = self._per_output(
            1.0 if loss_weights is None else loss_weights, "loss_weights", allow_single=False
        )
        for name, w in zip(names, weights, strict=True):
            if (
                isinstance(w, bool)
                or not isinstance(w, (int, float, np.integer, np.floating))
                or not (np.isfinite(w) and w >= 0)
            ):
                raise ValueError(f"loss_weights for output {name!r} must be a finite number >= 0, got {w!r}")
        opt = optimizers_mod.get(optimizer)
        owner = getattr(opt, "_owner", None)
        if owner is not None and owner() is not None and owner() is not self:
            raise ValueError(
                "optimizer already trains another model and its state (moments, step count) belongs "
                "to that one; give each model its own optimizer"
            )
        mine = owner is not None and owner() is self
        if opt is not self.optimizer and not mine and (opt.iterations or opt.slots):
            raise ValueError(  # a model that compiled another optimizer since let this one go, state and all
                f"optimizer holds the state of another model's training (step {opt.iterations}); give this "
                "model a new optimizer (or copy a state over with set_state on purpose)"
            )
        problem = opt.dtype_problem(self.dtype) if hasattr(opt, "dtype_problem") else None
        if problem is not None:
            raise ValueError(f"optimizer {problem[0]} {problem[1]}")
        reg = self.regularizer if regularizer is _OWN else regularizers_mod.get(regularizer)
        if metrics is not None:
            evaluation.metric_slots(self, metrics)  # unknown names fail here, not in fit
        self.losses = losses
        self.loss = losses[0] if len(losses) == 1 else losses
        self.loss_weights_list = [float(w) for w in weights]
        if self.optimizer is not None and self.optimizer is not opt:
            self.optimizer._owner = None
        if opt is not self.optimizer:
            self._slot_keys = None  # a new optimizer's state is made for the parameters of its first step
        self.optimizer = opt
        self.regularizer = reg
        self.compiled_metrics = metrics
        self._heads = None
        opt._owner = weakref.ref(self)  # last: a model that failed to compile does not take it
        return self

    def _per_output(self, value: Any, what: str, allow_single: bool) -> list[Any]:
        names = self.output_names
        n = len(names)
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(names))
            if unknown:
                raise ValueError(
                    f"{what} has keys {unknown} that are no output name; the outputs are {names}"
                )
            missing = [k for k in names if k not in value]
            if missing and what == "loss":
                raise ValueError(f"{what} gives no loss for the outputs {missing}")
            return [value.get(k, 1.0) for k in names]
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"{what} must hold one entry per output ({n}: {names}), got {len(value)}")
            return list(value)
        if not allow_single and n > 1 and what != "loss_weights":
            raise ValueError(f"{what} must be a list or dict for a model with {n} outputs")
        return [value] * n

    def require_compiled(self, what: str) -> None:
        """Raise unless the model has losses and an optimizer (and at least one layer).

        Args:
            what: the operation that needs them, for the message.

        Raises:
            RuntimeError: when :meth:`compile` was not called.
            ValueError: for a model without layers.
        """
        if not self.layers:  # a Network says "add some with add()" (its own require_compiled)
            raise ValueError(
                f"the model {self.name!r} computes nothing (each output is one of its inputs): it predicts "
                f"its inputs but has nothing to train, evaluate or save ({what}); give it a layer"
            )
        if self.optimizer is None or not self.losses:
            raise RuntimeError(
                f"{what} needs a loss and an optimizer: give them to the constructor or call "
                "model.compile(loss=..., optimizer=...) first"
            )

    @property
    def heads(self) -> list[head_mod.Head]:
        """One head per output (how its last activation meets its loss), chosen once the graph is known."""
        if self._heads is None:
            self.require_compiled("the model's heads")
            self._heads = [head_mod.choose(self.graph, k, loss) for k, loss in enumerate(self.losses)]
        return self._heads

    @property
    def head(self) -> head_mod.Head:
        """The head of the only output (a model with one output)."""
        heads = self.heads
        if len(heads) != 1:
            raise AttributeError(f"the model has {len(heads)} outputs; see heads")
        return heads[0]

    def training_heads(self) -> list[head_mod.Head]:
        """The heads of the current training step (``fit``'s class-weighted ones, else :attr:`heads`)."""
        return self._train_heads or self.heads

    @staticmethod
    def head_modes(heads: Sequence[head_mod.Head]) -> dict[int, str] | None:
        """The executor modes the heads ask for.

        Args:
            heads: the heads of the outputs.

        Returns:
            ``{step index: mode}``, or ``None`` when no head changes a node.
        """
        modes = {h.step: h.mode for h in heads if h.mode is not None}
        return modes or None

    def has_penalty(self) -> bool:
        """Whether any weight is regularized."""
        if self.regularizer is not None:
            return True
        return any(getattr(layer, "regularizers", None) for layer in self.trainable_layers())

    def default_metrics(self, k: int) -> list[str]:
        """The metrics of an output when none are given.

        Args:
            k: the index of the output.

        Returns:
            accuracy for the categorical losses and for binary cross-entropy on one value, binary_accuracy
            for binary cross-entropy on several, none for regression.
        """
        loss = self.losses[k]
        if loss.categorical:
            return ["accuracy"]
        if isinstance(loss, losses_mod.BinaryCrossEntropy):
            return ["accuracy"] if self.output_shapes[k] == (1,) else ["binary_accuracy"]
        return []

    def weighted_heads(self, class_weight: Any) -> list[head_mod.Head] | None:
        """The training heads of ``fit``'s ``class_weight`` (``None`` when there is none).

        Args:
            class_weight: ``{class id: weight}`` or ``None``.

        Returns:
            Heads whose loss carries the weights, or ``None``.

        Raises:
            ValueError: for a model with several outputs, a loss that is not categorical, or ids out of
                range.
        """
        if class_weight is None:
            return None
        if len(self.losses) != 1:
            raise ValueError("class_weight applies to a model with one output; weigh samples instead")
        if isinstance(class_weight, dict):  # whole-number float keys (labels read as floats) are the ids
            class_weight = {
                int(k) if isinstance(k, (float, np.floating)) and float(k).is_integer() else k: w
                for k, w in class_weight.items()
            }
        if isinstance(class_weight, dict):
            for k, w in class_weight.items():
                try:
                    big = isinstance(w, numbers.Real) and not 0 <= float(w) < float("inf")
                except OverflowError:  # an integer beyond any float
                    big = True
                if isinstance(w, bool) or not isinstance(w, numbers.Real) or big:
                    raise ValueError(
                        f"class_weight must map class ids to finite weights >= 0, got {w!r} for class {k!r}"
                    )
        loss = self.losses[0]
        if type(loss) in (losses_mod.BinaryCrossEntropy, losses_mod.ClassWeightedBinaryCrossEntropy):
            return [head_mod.choose(self.graph, 0, self._binary_class_weights(loss, class_weight))]
        if not loss.categorical:
            raise ValueError(
                "class_weight needs a categorical loss (CrossEntropy, SoftmaxCrossEntropy) or binary "
                f"cross-entropy on one sigmoid output, got {loss!r}"
            )
        n = int(self.output_shapes[0][-1])  # the classes (of every step, for a sequence output)
        if not isinstance(class_weight, dict) or not all(
            isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 0 <= k < n for k in class_weight
        ):
            raise ValueError(
                f"class_weight must map class ids in [0, {n - 1}] to weights, got {class_weight!r}"
            )
        own = loss.class_weights
        weights = np.ones(n) if own is None else np.array(own, dtype=np.float64)
        for k, w in class_weight.items():
            weights[int(k)] *= w  # on top of the loss's own class weights, as Keras's sample weights
        cfg = {**loss.get_config(), "class_weights": weights.tolist()}
        weighted = type(loss).from_config(cfg)
        weighted.rows_weigh_by_class = True  # one-hot rows train as class ids do: Σ w[t_i]·l_i / Σ w[t_i]
        return [head_mod.choose(self.graph, 0, weighted)]

    def _binary_class_weights(self, loss: Any, class_weight: Any) -> Any:
        """The class-weighted binary cross-entropy of ``class_weight`` ``{0: w₀, 1: w₁}`` (a label left out
        weighs 1) for a model with one sigmoid output (per sample, or per step of a sequence)."""
        shape = self.output_shapes[0]
        if shape[-1] != 1:
            raise ValueError(
                "class_weight with binary cross-entropy needs one sigmoid output per sample, got output "
                f"shape {shape} (several independent labels: weigh samples instead)"
            )
        if not isinstance(class_weight, dict) or not all(
            isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k in (0, 1) for k in class_weight
        ):
            raise ValueError(f"class_weight must map the labels 0 and 1 to weights, got {class_weight!r}")
        own = getattr(loss, "class_weights", None)
        weights = np.ones(2) if own is None else np.array(own, dtype=np.float64)
        for k, w in class_weight.items():
            weights[int(k)] *= w
        return losses_mod.ClassWeightedBinaryCrossEntropy(loss.from_logits, weights)

    # -- data ---------------------------------------------------------------------------------------------
    def to_device(self, arrays: list[Any], what: str = "x") -> list[Any]:
        """Host batches moved to the model's device (device arrays must be on it already).

        Args:
            arrays: one batch per input (or output).
            what: ``"x"`` or ``"y"``, for the error.

        Returns:
            The batches on the device.

        Raises:
            neuro.backend.DeviceMismatchError: for arrays on another device.
        """
        out = []
        for a in arrays:
            xp = backend.get_array_module(a)
            if xp is not np and xp is not self.xp:
                raise backend.DeviceMismatchError(
                    f"{what} is on device {backend.device_name(xp)!r} but the {self._noun} is on "
                    f"{self.device!r}; give NumPy arrays or move the {self._noun} with {self._noun[:3]}.to()"
                )
            out.append(a if xp is self.xp else backend.to_device(a, self.xp))
        return out

    def _per_item(self, value: Any, names: list[str], what: str, rank: int | None = None) -> list[Any]:
        """An array, a list or a dict keyed by name, as one entry per name (``rank``: the number of axes of
        one whole batch for a single name, to tell a list of batches from a list of samples)."""
        n = len(names)
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(names))
            missing = [k for k in names if k not in value]
            if unknown or missing:
                raise ValueError(
                    f"{what} is a dict with keys {sorted(value)}; expected exactly the names {names}"
                )
            return [value[k] for k in names]
        if n == 1:
            if isinstance(value, (list, tuple)) and len(value) == 1 and backend.is_array(value[0]):
                return [value[0]]
            if (
                rank is not None
                and isinstance(value, (list, tuple))
                and len(value) > 1
                and all(backend.is_array(v) and v.ndim == rank for v in value)
            ):  # whole batches, one per input or output of another model
                kind = "input" if names == self.input_names else "output"
                raise ValueError(
                    f"{what}: the model has 1 {kind} ({names[0]!r}), got a list of {len(value)} arrays of "
                    f"{rank} axes each, as for {len(value)} {kind}s"
                )
            return [value]
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"{what} must be a list of {n} arrays (one per {names}), got {len(value)}")
            return list(value)
        raise ValueError(f"{what} must be a list of {n} arrays or a dict keyed by {names}, got one array")

    @property
    def vocabulary(self) -> Any:
        """The :class:`neuro.data.Vocabulary` that turns raw texts into the model's token ids, or ``None``.

        With one, ``predict``, ``predict_class``, ``evaluate`` and ``fit`` also take texts (a string, a list
        of strings or an array of strings) for a model with one integer input of shape ``(T,)``: the texts
        are encoded by the vocabulary, padded and truncated to ``T`` tokens on its sides (its
        ``sequence_length``, when it has one, must be ``T``). ``fit`` on a :class:`~neuro.data.TextDataSet`
        sets it; it is saved in the model file.

        Raises:
            TypeError: when set to something that is not a Vocabulary or ``None``.
            ValueError: when set to a vocabulary whose ``sequence_length`` is not the length of the model's
                integer input, or whose size is larger than an Embedding reading that input accepts.
        """
        return self._vocabulary

    @vocabulary.setter
    def vocabulary(self, value: Any) -> None:
        from neuro.data.text import Vocabulary

        if value is not None:
            if not isinstance(value, Vocabulary):
                kind = type(value).__name__
                raise TypeError(f"vocabulary must be a neuro.data.Vocabulary or None, got {kind}")
            self._check_vocabulary(value)
        self._vocabulary = value

    def _check_vocabulary(self, vocabulary: Any) -> None:
        """A vocabulary fits the model: one integer input of shape ``(T,)`` with ``T`` its sequence_length,
        and ids within every Embedding that reads them."""

        inputs = self.graph.inputs
        if len(inputs) != 1 or inputs[0].dtype == "float" or len(inputs[0].sample_shape) != 1:
            shapes = [(None, *t.sample_shape) for t in inputs]
            kinds = ["float" if t.dtype == "float" else str(np.dtype(t.dtype)) for t in inputs]
            raise ValueError(
                "a vocabulary needs a model with one integer input of shape (None, sequence_length); "
                f"this model's inputs are {shapes} of types {kinds}"
            )
        steps = inputs[0].sample_shape[0]
        if vocabulary.sequence_length is not None and vocabulary.sequence_length != steps:
            raise ValueError(
                f"the vocabulary encodes rows of sequence_length={vocabulary.sequence_length} tokens, but "
                f"the model's input takes {steps}"
            )
        for layer in self._embeddings_reading(inputs[0]):
            if len(vocabulary) > layer.input_dim:
                raise ValueError(
                    f"the vocabulary has {len(vocabulary)} ids, but Embedding {layer.name!r} takes ids "
                    f"in [0, {layer.input_dim - 1}] (input_dim={layer.input_dim})"
                )

    def _encode_texts(self, x: Any, name: str) -> Any:
        """Texts (a string, a list or tuple of strings, an array of strings) as token ids, through the
        vocabulary; anything else unchanged."""
        texts = isinstance(x, str) or (isinstance(x, np.ndarray) and x.dtype.kind in "US")
        if isinstance(x, (list, tuple)) and x and all(isinstance(v, str) for v in x):
            texts = True
        if not texts:
            return x
        if self._vocabulary is None:
            inputs = self.graph.inputs
            if len(inputs) != 1 or inputs[0].dtype == "float":  # no token ids: "must hold numbers" follows
                return x
            raise TypeError(
                f"{name} holds texts, but the model has no vocabulary to encode them; set model.vocabulary "
                "(fit on a TextDataSet sets it) or pass token ids"
            )
        from neuro.data.text import _fit_row

        vocabulary = self._vocabulary
        texts_list = [x] if isinstance(x, str) else [str(v) for v in np.asarray(x).reshape(-1)]
        if vocabulary.sequence_length is not None:
            return vocabulary.encode(texts_list)
        steps = self.graph.inputs[0].sample_shape[0]  # no length of its own: the model's
        pad, cut = vocabulary.pad, vocabulary.truncate
        rows = [_fit_row(vocabulary.token_ids(t), steps, pad, cut) for t in texts_list]
        return np.stack(rows).astype(np.int64, copy=False)

    def _plain_input(self, x: Any) -> Any:
        """``x`` itself when it is exactly what the model computes on, else ``None``: a NumPy array of the
        model's dtype and input shape, for a NumPy model with one float input and no input scaling, with
        every value finite. Whatever is not plain goes through :meth:`prepare_inputs`, which converts it or
        names what is wrong."""
        if type(x) is not np.ndarray or self.xp is not np or self.input_scaler is not None:
            return None
        inputs = self.graph.inputs
        if len(inputs) != 1:
            return None
        t = inputs[0]
        if t.dtype != "float" or x.dtype != self.dtype or x.shape[1:] != t.sample_shape or not len(x):
            return None
        return x if check.all_finite(x) else None

    def prepare_inputs(self, x: Any, name: str = "x") -> list[Any]:
        """Check inputs against the model's inputs and bring them to its dtype (and input scaling).

        Args:
            x: an array (one input), a list of arrays or a dict keyed by input name.
            name: the argument's name, for errors.

        Returns:
            One checked array per input.

        Raises:
            ValueError: for a wrong count, key, shape or sample count, or NaN / inf values.
            TypeError: for data that is not numbers.
        """
        names = self.input_names
        x = self._encode_texts(x, name)
        items = self._per_item(x, names, name, len(self.graph.inputs[0].sample_shape) + 1)
        out = []
        for i, (v, t) in enumerate(zip(items, self.graph.inputs, strict=True)):
            label = name if len(names) == 1 else f"{name}[{names[i]!r}]"
            dt = self.dtype if t.dtype == "float" else np.dtype(t.dtype).type
            a = check.features(v, t.sample_shape, name=label, dtype=dt)
            if t.dtype != "float":
                self._check_token_ids(a, t, label)
            if self.input_scaler is not None and len(names) == 1:
                if backend.get_array_module(a) is not np:
                    a = backend.to_numpy(a)
                a = self.input_scaler.transform(a).astype(self.dtype, copy=False)
            out.append(a)
        n = len(out[0])
        for i, a in enumerate(out[1:], start=1):
            if len(a) != n:
                raise ValueError(
                    f"{name}: every input must hold the same number of samples; {names[0]!r} has {n}, "
                    f"{names[i]!r} has {len(a)}"
                )
        return out

    def _embeddings_reading(self, tensor: SymbolicTensor) -> list[Layer]:
        """The Embedding layers that read ``tensor`` directly."""
        from neuro.layers.embedding import Embedding

        return [
            node.layer
            for node in self.graph.nodes
            if isinstance(node.layer, Embedding) and any(t is tensor for t in node.inbound)
        ]

    def _check_token_ids(self, ids: Any, tensor: SymbolicTensor, label: str) -> None:
        """Token ids must be in range of every Embedding that reads them: checked here, on the host (one
        read for device arrays), since a GPU would wrap an out-of-range id silently."""
        readers = self._embeddings_reading(tensor)
        if not readers or ids.size == 0:
            return
        xp = backend.get_array_module(ids)
        lo, hi = (int(v) for v in backend.to_numpy(xp.stack([ids.min(), ids.max()])))
        dim = min(layer.input_dim for layer in readers)
        if lo < 0 or hi >= dim:
            layer = min(readers, key=lambda r: r.input_dim)
            raise ValueError(
                f"{label} holds token ids from {lo} to {hi}, but Embedding {layer.name!r} takes ids in "
                f"[0, {dim - 1}] (input_dim={dim})"
            )

    def prepare_targets(self, y: Any, n: int, name: str = "y") -> list[Any]:
        """Check targets against each output's loss and shape (and apply the output scaling).

        Args:
            y: an array (one output), a list of arrays or a dict keyed by output name.
            n: the number of samples of the inputs.
            name: the argument's name, for errors.

        Returns:
            One checked array per output.
        """
        names = self.output_names
        items = self._per_item(y, names, name, len(self.output_shapes[0]) + 1)
        out = []
        for k, (v, loss, shape) in enumerate(zip(items, self.losses, self.output_shapes, strict=True)):
            label = name if len(names) == 1 else f"{name}[{names[k]!r}]"
            t = check.targets(v, n, shape, loss.categorical, name=label, dtype=self.dtype)
            if isinstance(loss, losses_mod.BinaryCrossEntropy):
                check.unit_interval(t, label)
            if self.output_scaler is not None and not loss.categorical and len(names) == 1:
                if backend.get_array_module(t) is not np:
                    t = backend.to_numpy(t)
                t = self.output_scaler.transform(t).astype(self.dtype, copy=False)
            out.append(t)
        return out

    def adopt_data_set(self, data: DataSet) -> None:
        """Take a data set's class names, scalers and vocabulary (``fit`` on a
        :class:`~neuro.data.DataSet` does).

        The data set must fit the model, checked before anything is taken: class names one per class of the
        output (its last axis: a per-step classifier names its classes once; two for one sigmoid), an input
        scaler for a model with one float input, an output scaler for a model with one output whose loss
        takes numbers (not class ids or probabilities), each scaler one value per feature of its input or
        output. A model with several outputs takes no class names (nothing says whose they are).

        Args:
            data: the data set.

        Raises:
            ValueError: for a data set that does not fit the model (nothing is taken then).
        """
        names, ins, outs = data.class_names, data.input_scaler, data.output_scaler
        if names is not None and len(self.output_shapes) > 1:
            names = None  # whose classes would they be?
        if names is not None:
            width = int(self.output_shapes[0][-1])
            if len(names) != (2 if width == 1 else width):
                raise ValueError(
                    f"the data set names {len(names)} classes, but "
                    + (
                        "the model's one sigmoid output needs 2 names (classes 0 and 1)"
                        if width == 1
                        else f"the model's output has {width} classes (its last axis)"
                    )
                )
        if ins is not None:
            if len(self.input_names) != 1:
                raise ValueError(
                    f"the data set's input scaler scales one input; the model has {len(self.input_names)}"
                )
            if self.graph.inputs[0].dtype != "float":
                raise ValueError(
                    f"the data set's input scaler makes float inputs, but the model's input takes "
                    f"{self.graph.inputs[0].dtype} ids (an Embedding's); leave the inputs unscaled"
                )
            _check_scaler_width(ins, self.input_shapes[0], "input")
        if outs is not None:
            if len(self.output_names) != 1:
                raise ValueError(
                    f"the data set's output scaler scales one output; the model has {len(self.output_names)}"
                )
            loss = self.losses[0] if self.losses else None
            if loss is not None and (loss.categorical or isinstance(loss, losses_mod.BinaryCrossEntropy)):
                raise ValueError(
                    f"the data set's output scaler changes the targets, but the model's loss "
                    f"{type(loss).__name__} takes class ids or probabilities; drop the output scaling"
                )
            _check_scaler_width(outs, self.output_shapes[0], "output")
        vocabulary = getattr(data, "vocabulary", None)
        if vocabulary is not None:  # first: its setter checks it against the model
            self.vocabulary = vocabulary
        if names is not None:
            self.class_names = list(names)
        if ins is not None or outs is not None:
            self.input_scaler, self.output_scaler = ins, outs

    def _data_state(self) -> tuple:
        """What :meth:`adopt_data_set` may change (``fit`` puts it back when it fails before a step)."""
        return self.class_names, self.input_scaler, self.output_scaler, self._vocabulary

    def _restore_data_state(self, state: tuple) -> None:
        self.class_names, self.input_scaler, self.output_scaler, self._vocabulary = state

    # -- training -----------------------------------------------------------------------------------------
    @checked()
    def fit(
        self,
        x: Any,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        *,
        validation_data: Any = None,
        shuffle: bool = True,
        metrics: Iterable[Any] | None = None,
        verbose: int | str = 1,
        validation_split: float = 0.0,
        callbacks: Sequence[Any] | None = None,
        initial_epoch: int = 0,
        class_weight: dict[int, float] | None = None,
        sample_weight: Any = None,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        distributed: Any = False,
    ) -> History:
        """Train the model.

        ``x``, ``y``, ``batch_size`` and ``epochs`` may be given by position, in Keras's order; every other
        argument is a keyword.

        Args:
            x: inputs: an array ``(N, *input_shape)`` for a model with one input, a list of arrays (one per
                input) or a dict keyed by input name; or a :class:`~neuro.data.DataSet` (trained on its
                ``train`` split, validated on its ``valid`` split; its class names and scalers become the
                model's), or a data set split. Data sets are read one batch at a time, augmented in training
                only. Or data that yields its own batches ``(x, y)`` or ``(x, y, sample_weight)`` (each part
                in any form arrays take here): a Python generator or any iterable, or an object with
                ``__len__`` and ``__getitem__(i)`` returning batch ``i`` (Keras's ``Sequence`` protocol,
                without subclassing; ``on_epoch_end()`` is called after each epoch when it has one; a list
                of batch tuples works too); see :mod:`neuro.training.adapters`.
            y: targets: for each output class ids ``(N,)`` or rows ``(N, C)`` for categorical losses, the
                output shape otherwise; a list (one per output) or a dict keyed by output name for several
                outputs; ``None`` with a data set or data that yields batches.
            batch_size: samples per update (> 0; ``None``: 32); the last batch of an epoch may be smaller.
                Not with data that yields its own batches.
            epochs: the epoch to stop before (> ``initial_epoch``), as in Keras.
            validation_data: optional data evaluated after each epoch: ``(x_val, y_val)`` or
                ``(x_val, y_val, sample_weight_val)`` (a tuple), a data set split, or data that yields
                batches (read whole each time, or ``validation_steps`` batches of it).
            shuffle: reshuffle the samples (a seeded permutation of indices) before each epoch; for an
                object of the batch protocol (a list of batches included), the order of its batches. A
                generator or other iterable is read in its own order.
            metrics: metric names or objects, computed over the whole epoch (see :mod:`neuro.metrics`): a
                list (for every output), a list of lists (one per output) or a dict keyed by output name;
                ``None`` uses those given to :meth:`compile`, else accuracy for the categorical losses and
                single-output binary cross-entropy, binary_accuracy for binary cross-entropy with several
                outputs, and none for regression.
            verbose: 0 silent; 1 (or ``"auto"``, Keras's default) a progress bar per epoch on a terminal
                (one line per epoch otherwise); 2 one line per epoch.
            validation_split: fraction in [0, 1) of the samples, taken from the end before shuffling (as
                Keras: training keeps the first ``floor(n·(1 − split))``), held out for validation instead of
                ``validation_data`` (arrays only; their sample weights are split alike).
            callbacks: :class:`neuro.callbacks.Callback` objects called around epochs and batches.
            initial_epoch: the epoch to start at (to resume a run); at ``epochs`` or beyond nothing is
                trained and the History is empty, as in Keras.
            class_weight: ``{class id: weight}`` for the training loss of a categorical loss (classes left
                out weigh 1; multiplied into the loss's own ``class_weights``); the batch loss is then the
                weighted mean ``Σ w·l / Σ w`` (PyTorch's ``weight``). Validation and ``evaluate`` use the
                loss as given. One output only.
            sample_weight: a weight per sample of arrays ``x`` (``(N,)``, or ``(N, T)`` per step of a
                sequence output), finite and >= 0; a list or dict gives one per output. Each batch's loss is
                the weighted mean ``Σ w·l / Σ w`` (times the class weights; Keras divides by the batch size
                instead, so its loss is the mean weight times neuro's), and every metric is weighted too
                (Keras weighs only ``weighted_metrics``). A batch whose samples all weigh 0 adds nothing to
                the loss and no gradient (the optimizer still steps, as Keras's). For data that yields
                batches, give the weights in the batches.
            steps_per_epoch: for data that yields batches, the batches of an epoch, drawn from one iterator
                kept from epoch to epoch (Keras's meaning); ``None``: one pass over the data per epoch. A
                re-iterable (a list, a Sequence) starts a new pass when one ends; a generator that ends
                early ends its epoch there, and training stops with a warning, as Keras's does.
            validation_steps: for validation data that yields batches, the batches of each validation
                (``None``: one whole pass).
            distributed: ``True`` (or a :class:`neuro.distributed.Options`) trains data-parallel over the
                processes of ``mpiexec -n P python script.py``, every one calling ``fit`` with the same
                arguments; see :mod:`neuro.distributed`. Needs ``pip install 'neuro[mpi]'``. Arrays and data
                set splits only, without sample weights.

        Returns:
            A :class:`~neuro.training.history.History` with the per-epoch loss and metrics (``val_`` ones
            for validation data); for several outputs also ``<output>_loss`` and ``<output>_<metric>``.

        Raises:
            FloatingPointError: when the loss, the gradients or the update become NaN or inf; the
                parameters, buffers and optimizer state are exactly those from before the batch. The
                message names the epoch, the batch and the learning rate.
            RuntimeError: without a loss and an optimizer, or when ``fit`` already runs on this model.
            TypeError: for ``x`` of a kind not listed above (the message lists the kinds), a batch that is
                not a tuple ``(x, y[, sample_weight])``, or ``y`` a number beside data that holds its
                targets (the original neuro's ``fit(data, batch_size, epochs)``: the message says which
                arguments are keywords).
            ImportError: ``distributed`` without mpi4py.
            ValueError: for arguments that do not go together (``batch_size`` or ``sample_weight`` with
                data that yields batches, ``steps_per_epoch`` with arrays), data that yields no batch, sample
                weights of a wrong shape or value; ``distributed``, on every rank, when the ranks' models or
                data sizes differ.
            neuro.distributed.DistributedError: ``distributed``, when another rank failed in a step.
        """
        state = self._data_state()
        steps = self.optimizer.iterations if self.optimizer is not None else 0
        try:
            return loop.fit(
                self,
                x,
                y,
                batch_size=batch_size,
                epochs=epochs,
                validation_data=validation_data,
                shuffle=shuffle,
                metrics=metrics,
                verbose=verbose,
                validation_split=validation_split,
                callbacks=callbacks,
                initial_epoch=initial_epoch,
                class_weight=class_weight,
                distributed=distributed,
                sample_weight=sample_weight,
                steps_per_epoch=steps_per_epoch,
                validation_steps=validation_steps,
            )
        except BaseException:
            # a fit that failed before its first step leaves the model as it was: a data set's class
            # names and scalers are taken only with weights trained on them
            if (self.optimizer.iterations if self.optimizer is not None else 0) == steps:
                self._restore_data_state(state)
            raise

    @checked()
    def evaluate(
        self,
        x: Any,
        y: Any = None,
        batch_size: int | None = None,
        *,
        metrics: Iterable[Any] | None = None,
        verbose: int | str = 0,
        sample_weight: Any = None,
        steps: int | None = None,
        return_dict: bool = True,
    ) -> Any:
        """Return the loss (regularization included) and metrics over the whole set, in inference mode.

        ``x``, ``y`` and ``batch_size`` may be given by position; every other argument is a keyword.

        Args:
            x: inputs as for :meth:`fit`, a data set split, a :class:`~neuro.data.DataSet` (its test
                split), or data that yields ``(x, y)`` or ``(x, y, sample_weight)`` batches (as for
                :meth:`fit`).
            y: targets, as for :meth:`fit` (``None`` with a data set or data that yields batches).
            batch_size: samples per forward pass (``None``: 256); not with data that yields batches.
            metrics: as for :meth:`fit` (``None``: those given to :meth:`compile` or to the last ``fit``,
                else the defaults).
            verbose: 0 silent; 1 (or ``"auto"``) prints the results in one line.
            sample_weight: a weight per sample of arrays ``x``, as for :meth:`fit`: the loss is
                ``Σ w·l / Σ w`` over the whole set and the metrics are weighted (all weights 0: NaN).
            steps: for data that yields batches, how many to read (``None``: until it ends), in one pass at
                most: data that ends before (a generator, or a sequence shorter than ``steps``) gives the
                figures of what it gave, with a warning.
            return_dict: ``True`` (neuro's default): the dict below; ``False`` (Keras's default): the values
                alone, in the dict's order, as a list, or the loss alone when there is no metric.

        With an ``output_scaler`` (from a data set), the loss and metrics are those of the scaled targets the
        model was trained on; ``predict`` returns original units.

        Returns:
            ``{"loss": value, metric name: value, ...}`` (Keras's names for several outputs); with
            ``return_dict=False`` the values alone.

        Raises:
            TypeError: for ``x`` of a kind :meth:`fit` does not take, or a ``return_dict`` that is not a bool.
            ValueError: for arguments that do not apply to the data's kind, or data that yields no batch.
        """
        if not isinstance(return_dict, bool):
            raise TypeError(f"return_dict must be True or False, got {return_dict!r}")
        with backend.split_products():  # products on neuro's threads, as in a fit
            logs = loop.evaluate(self, x, y, batch_size, metrics, verbose, sample_weight, steps)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def check_param_arrays(self) -> None:
        """Check that every layer's parameter arrays are still ones a step can use: a C-contiguous array of
        the model's dtype on its device, shaped like the layer's gradient (``fit`` and
        :meth:`compute_gradients` call it; ``predict`` when a layer fails).

        Raises:
            ValueError: naming the layer, the parameter, what it must be and what it is (a parameter replaced
                by a transposed view or another layout: assign into it, ``params[name][...] = w``, or use
                :meth:`set_weights`).
        """
        dtype = np.dtype(self.dtype)
        for layer in self.leaf_layers():
            for k, a in layer.params.items():
                g = layer.grads.get(k)
                want = tuple(g.shape) if g is not None else tuple(getattr(a, "shape", ()))
                ok = (
                    backend.is_array(a)
                    and backend.get_array_module(a) is self.xp
                    and a.dtype == dtype
                    and tuple(a.shape) == want
                    and a.flags.c_contiguous
                )
                if not ok:
                    got = (
                        f"an array of shape {tuple(a.shape)}, dtype {a.dtype}"
                        + ("" if a.flags.c_contiguous else ", not C-contiguous (a transposed view?)")
                        if backend.is_array(a)
                        else type(a).__name__
                    )
                    raise ValueError(
                        f"layer {layer.name!r} params[{k!r}] must be a C-contiguous {dtype.name} array of "
                        f"shape {want} on the model's device, got {got}; assign into it "
                        f"(params[{k!r}][...] = w) or use set_weights"
                    )

    def compute_gradients(self, x: Any, y: Any, *, input_gradients: bool = False) -> Any:
        """Run forward and backward on one batch in training mode, filling every layer's ``grads``.

        The optimizer's state is first matched to the trainable parameters, as the training step does
        (:meth:`sync_optimizer_state`), so that ``optimizer.step(model.params, model.grads)`` goes on from it.

        Args:
            x: one batch of inputs, as arrays (as for :meth:`predict`: an array, a list or a dict of arrays;
                not a data set).
            y: its targets, as for :meth:`fit`.
            input_gradients: also return the gradient of the loss with respect to each input (a saliency
                map, or a check of the whole model's backward), in the units of the data given: through the
                model's ``input_scaler`` when it has one.

        Returns:
            The loss of the batch, regularization included: the value whose gradient was computed; with
            ``input_gradients``, ``(loss, [dL/dx per input])`` (``None`` for an integer input).
        """
        from neuro.training import step

        self.require_compiled("compute_gradients")
        self.check_param_arrays()
        xs = self.prepare_inputs(x)
        ys = self.prepare_targets(y, len(xs[0]))
        graph = self.graph
        with self._lock:
            # layers frozen or unfrozen since the optimizer's last step: its state re-keyed now, as the
            # training step does, so that optimizer.step(model.params, model.grads) continues every kept state
            self.sync_optimizer_state()
            wanted = graph.wants_input_gradients
            graph.set_input_gradients(input_gradients)
            try:
                _, terms = step.forward_backward(self, self.to_device(xs), self.to_device(ys, "y"))
            finally:
                graph.set_input_gradients(wanted)
            loss = step.batch_loss(self, terms)
        loss = float(backend.to_numpy(loss))
        if not input_gradients:
            return loss
        grads = list(terms.input_grads)
        if self.input_scaler is not None and len(grads) == 1 and grads[0] is not None:
            # the graph's gradient is with respect to (x − a)/b: dL/dx = dL/d((x − a)/b) / b
            b = backend.to_device(self.input_scaler.b.astype(self.dtype), self.xp)
            grads[0] = grads[0] / b
        return loss, grads

    def get_layer(self, name: str) -> Layer:
        """The layer called ``name`` (Keras's ``get_layer``).

        Args:
            name: a layer name (see :meth:`summary`).

        Returns:
            The layer.

        Raises:
            ValueError: when no layer has that name (the message lists them).
        """
        for layer in self.graph.input_layers + self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer is named {name!r}; the layers are {[ly.name for ly in self.layers]}")

    def train_step(
        self, xs: list[Any], ys: list[Any], weights: list[Any] | None = None
    ) -> tuple[list[Any], Any]:
        """One guarded training step on checked device batches (see :func:`neuro.training.step.train_step`).

        Args:
            xs: one device batch per input.
            ys: one device batch of targets per output.
            weights: the sample weights per output (:func:`neuro.training.step.device_weights`), or ``None``.

        Returns:
            ``(predictions per output, terms)``.
        """
        from neuro.training import step

        return step.train_step(self, xs, ys, weights)

    # -- inference ----------------------------------------------------------------------------------------
    def _structured(self, outs: list[Any]) -> Any:
        if self._output_kind == "single":
            return outs[0]
        if self._output_kind == "dict":
            return dict(zip(self.output_names, outs, strict=True))
        return list(outs)

    @checked()
    def predict(
        self, x: Any, batch_size: int | None = None, *, verbose: int = 0, steps: int | None = None
    ) -> Any:
        """Return the model's predictions for ``x``, computed in inference mode in batches.

        For an output trained with SoftmaxCrossEntropy on a linear layer these are the softmax probabilities
        (the loss's softmax is part of the model), as they are with a Softmax output. Nothing is stored on
        the layers, so any thread may predict, also while another one trains.

        Args:
            x: inputs, as for :meth:`fit` (NumPy or on the model's device), or a data set split; or data
                that yields batches (a generator, an iterable, an object of the batch protocol), each batch
                ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` (only ``x`` is read; a list is ``x``
                of a model with several inputs).
            batch_size: samples per forward pass (``None``: 256); not with data that yields batches.
            verbose: 0 silent; 1 prints the number of samples predicted.
            steps: for data that yields batches, how many to read (``None``: until it ends; never more than
                one pass: data that ends sooner gives its batches, with a warning).

        Shape:
            ``(N, *input_shape)`` → ``(N, *output_shape)`` per output.

        Returns:
            The predictions, on the model's device (``neuro.backend.to_numpy`` fetches them): an array for a
            model with one output, else a list (or a dict, when the outputs were given as a dict); for data
            that yields batches, the batches' predictions in order, concatenated.

        Raises:
            TypeError: for ``x`` of a kind :meth:`fit` does not take, or a DataSet.
            ValueError: for arguments that do not apply to the data's kind, or data that yields no batch.
        """
        loop.refuse_overridden_steps(self, "predict")
        plain = self._plain_input(x) if steps is None else None  # a NumPy batch taken as it is: no copy
        links = [h.loss.link if isinstance(h, head_mod.LinkHead) else None for h in self._heads_or_none()]
        graph = self.graph
        if plain is not None and batch_size is None and not verbose and len(plain) <= 256:
            if self.output_scaler is None:  # one small NumPy batch of a NumPy model, nothing around it
                with self._lock:
                    try:
                        outs = graph.infer([plain], self.dtype)
                    except (ValueError, TypeError):
                        self.check_param_arrays()  # a replaced parameter is named; else the layer's error
                        raise
                return self._structured([o if f is None else f(o) for o, f in zip(outs, links, strict=True)])

        def run(batch: list[Any]) -> list[Any]:
            with self._lock:
                try:
                    outs = graph.infer(self.to_device(batch), self.dtype)
                except (ValueError, TypeError):
                    self.check_param_arrays()
                    raise
            return [o if link is None else link(o) for o, link in zip(outs, links, strict=True)]

        with backend.split_products():  # products on neuro's threads, as in a fit
            return self._predict_batches(x, plain, run, batch_size, verbose, steps)

    def _predict_batches(
        self, x: Any, plain: Any, run: Any, batch_size: int | None, verbose: int, steps: int | None
    ) -> Any:
        given = batch_size
        batch_size = 256 if batch_size is None else check.positive_int(batch_size, "batch_size")
        steps = None if steps is None else check.positive_int(steps, "steps")
        source = None if plain is not None else adapters.prediction_source(self, x, steps, given)

        if source is not None:  # data that yields batches: each predicted as it comes
            parts = [run(xs) for xs, _, _ in source.epoch()]
            if not parts:
                raise ValueError("x yielded no batch to predict (an empty iterable, or a generator used up?)")
            if source.short is not None:
                adapters.warn_short(source, "the predictions are those of the batches it gave")
            outs = [self.xp.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]
            n = len(outs[0])
        else:
            if plain is not None:
                xs = [plain]
            else:
                if isinstance(x, Split):
                    x = x.arrays()[0]
                xs = self.prepare_inputs(x)
            n = len(xs[0])
            if n <= batch_size:
                outs = run(xs)
            else:
                parts = [run([a[s : s + batch_size] for a in xs]) for s in range(0, n, batch_size)]
                outs = [self.xp.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]
        if self.output_scaler is not None and len(outs) == 1:  # back to the original units, on the device
            a = backend.to_device(self.output_scaler.a.astype(self.dtype), self.xp)
            b = backend.to_device(self.output_scaler.b.astype(self.dtype), self.xp)
            outs = [outs[0] * b + a]
        if verbose:
            print(f"predicted {n} samples", flush=True)
        return self._structured(outs)

    def _heads_or_none(self) -> list[Any]:
        if self.losses:
            return self.heads
        return [None] * len(self.graph.outputs)

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Call the model on arrays (its predictions, as :meth:`predict` in one batch) or on symbolic tensors
        (the model becomes one layer of another model, sharing its weights).

        Args:
            inputs: arrays (as for :meth:`predict`) or symbolic tensors (as the model's inputs).
            **kwargs: none are taken.

        Returns:
            Predictions, or the output symbolic tensor(s).
        """
        if kwargs:
            hint = (
                " (Keras's training=False keeps a base's BatchNorm in inference mode: set those layers' "
                "trainable = False instead, see the training guide's 'Frozen layers')"
                if "training" in kwargs else ""
            )
            raise TypeError(f"a model takes no call arguments, got {sorted(kwargs)}{hint}")
        items = list(inputs.values()) if isinstance(inputs, dict) else inputs
        if isinstance(items, SymbolicTensor) or (
            isinstance(items, (list, tuple)) and items and isinstance(items[0], SymbolicTensor)
        ):
            if isinstance(inputs, dict):
                if set(inputs) != set(self.input_names):
                    raise ValueError(
                        f"inputs is a dict with keys {sorted(inputs)}; expected exactly the input names "
                        f"{self.input_names}"
                    )
                inputs = [inputs[k] for k in self.input_names]
            return self.as_layer()(inputs)
        return self.predict(inputs, batch_size=max(self._batch_length(inputs), 1))

    def as_layer(self) -> Functional:
        """The model as one layer (a :class:`~neuro.graph.Functional` sharing its weights), to call inside
        another model.

        A model's ``regularizer`` acts when the model itself is trained; inside another model its layers
        follow the outer model's regularizer (or their own ``kernel_regularizer``), and a warning says so.
        """
        if self.regularizer is not None:
            warnings.warn(
                f"model {self.name!r} has regularizer={self.regularizer!r}, which acts when it is trained "
                "itself: inside another model its layers follow the outer model's regularizer, or their own "
                "kernel_regularizer (give them that to keep the penalty)",
                UserWarning,
                stacklevel=3,
            )
        if self._functional is None:
            self._functional = Functional(self.graph, name=self.name)
            # a model given no name is named in the outer model as a layer is ("model", "model_1", …)
            # (a loaded model's default name, "model" or "network", counts as none)
            self._functional._auto_name = (
                not getattr(self, "_named", True) or self.name == type(self).__name__.lower()
            )
            self._functional._trainable = self._trainable
        return self._functional

    def predict_class(self, x: Any, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(classes, probabilities)`` for ``x``, as NumPy arrays (a model with one output).

        Args:
            x: inputs, as for :meth:`predict`.
            batch_size: samples per forward pass.

        ``classes`` are class ids ``(N,)`` (or the names in :attr:`class_names` when set);
        ``probabilities`` is the probability of each chosen class. A single sigmoid output is read as the
        probability of class 1. A sequence output ``(N, T, C)`` gives a class per step: ``(N, T)`` (with
        ``C = 1``, a sigmoid per step, class 1 where its probability is at least 0.5).

        Raises:
            ValueError: for several outputs, or an output that is not class probabilities: neither softmax
                rows nor a sigmoid, and trained with a loss that is not a cross-entropy (a regression); or
                sigmoid values on several outputs (multi-label: a 0/1 per label).
        """
        loss = self.losses[0] if len(self.losses) == 1 else None
        if loss is not None and len(self.graph.outputs) == 1:
            # read from the output (softmax rows, sigmoid values) or a loss that makes probabilities of it
            known = head_mod.value_range(self.graph.outputs[0])
            rows = loss.categorical or (known is not None and known[2] is True)
            unit = isinstance(loss, losses_mod.BinaryCrossEntropy) or (
                known is not None and known[2] is False and known[0] >= 0 and known[1] <= 1
            )
            width = int(self.output_shapes[0][-1])
            kind = type(loss).__name__
            if not rows and not unit:
                raise ValueError(
                    "predict_class needs an output of class probabilities (softmax rows, a sigmoid, or a "
                    f"model trained with a cross-entropy), got one trained with {kind} on an output that is "
                    "neither; use predict"
                )
            if not rows and width != 1:
                raise ValueError(
                    f"predict_class reads one class per sample (or step); this output ({kind} on {width} "
                    "values) is multi-label, a 0/1 per label: use predict(x) >= 0.5"
                )
        pred = self.predict(x, batch_size)
        if not backend.is_array(pred):
            raise ValueError("predict_class needs a model with one output; use predict for several")
        width = int(pred.shape[-1])
        if self.class_names is not None and len(self.class_names) < (2 if width == 1 else width):
            raise ValueError(
                f"class_names holds {len(self.class_names)} names, but the output's classes need "
                f"{2 if width == 1 else width} (one sigmoid output: classes 0 and 1)"
            )
        p = backend.to_numpy(pred)
        if p.ndim >= 3 and p.shape[-1] == 1:  # a sigmoid per step: class 1 where p >= 0.5
            ids = (p[..., 0] >= 0.5).astype(np.int64)
            prob = np.where(ids == 1, p[..., 0], 1 - p[..., 0])
            if self.class_names is not None:
                return np.asarray(self.class_names, dtype=object)[ids], prob
            return ids, prob
        if p.ndim >= 3:  # a sequence of class distributions: a class per step
            ids = p.argmax(axis=-1)
            prob = np.take_along_axis(p, ids[..., None], axis=-1)[..., 0]
            if self.class_names is not None:
                return np.asarray(self.class_names, dtype=object)[ids], prob
            return ids, prob
        p = p.reshape(len(p), -1)
        if p.shape[1] == 1:
            ids = (p[:, 0] >= 0.5).astype(np.int64)
            prob = np.where(ids == 1, p[:, 0], 1 - p[:, 0])
        else:
            ids = p.argmax(axis=1)
            prob = p[np.arange(len(p)), ids]
        if self.class_names is not None:
            return np.asarray(self.class_names, dtype=object)[ids], prob
        return ids, prob

    # -- weights ------------------------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """Copies of every layer's params, then its buffers, in layer order, as NumPy arrays (between two
        training steps, when another thread trains)."""
        with self._lock:
            return [
                np.array(backend.to_numpy(a))
                for layer in self.leaf_layers()
                for a in (*layer.params.values(), *layer.buffers.values())
            ]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the arrays :meth:`get_weights` returns, checking their number and shapes.

        Args:
            weights: one array per param and buffer, in the order of :meth:`get_weights`.

        Raises:
            ValueError: for a wrong count or shape.
            TypeError: for an array that does not hold real numbers (nothing is set then either).
        """
        checked = checked_weights(self.leaf_layers(), weights)  # every array checked first: all or nothing
        with self._lock:
            write_weights(checked)

    def count_params(self) -> int:
        """The number of scalars in every weight of the model, trainable or not (running statistics
        included), as Keras's ``count_params``; :meth:`summary` shows the two kinds apart.

        Returns:
            The count.
        """
        return sum(layer.count_params() for layer in self.leaf_layers())

    # -- one batch (Keras's *_on_batch) --------------------------------------------------------------------
    def train_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, class_weight: Any = None,
        return_dict: bool = False,
    ) -> Any:  # fmt: skip
        """One training step on one batch, as Keras's ``train_on_batch``: :meth:`fit` for one epoch of this
        batch alone (no shuffling, no output), so the guard, the callbacks' absence and the metrics are
        ``fit``'s.

        Args:
            x: the batch's inputs (as for :meth:`fit`; arrays, not data that yields batches).
            y: its targets.
            sample_weight: optional weight of each sample.
            class_weight: optional weight of each class.
            return_dict: return ``{name: value}`` instead of the loss (or ``[loss, *metrics]``).

        Returns:
            The batch's loss (computed before the step, as Keras's), a list ``[loss, *metrics]`` when the
            model was compiled with metrics (``fit``'s default metrics are not added), or the dict.
        """
        n = self._batch_length(x)
        compiled, kept = self.compiled_metrics, getattr(self, "history", None)
        try:
            history = self.fit(x, y, batch_size=max(n, 1), epochs=1, shuffle=False, verbose=0,
                               sample_weight=sample_weight, class_weight=class_weight,
                               metrics=self._own_metrics())
        finally:
            self.compiled_metrics, self.history = compiled, kept  # fit would keep its metrics and History
        logs = {k: v[-1] for k, v in history.history.items()}
        return _batch_result(logs, return_dict)

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> Any:
        """The loss (and metrics) of one batch, as Keras's ``test_on_batch``: :meth:`evaluate` in one batch.

        Args:
            x: the batch's inputs.
            y: its targets.
            sample_weight: optional weight of each sample.
            return_dict: return ``{name: value}`` instead of the loss (or ``[loss, *metrics]``).

        Returns:
            As :meth:`train_on_batch`.
        """
        n = self._batch_length(x)
        logs = self.evaluate(x, y, batch_size=max(n, 1), verbose=0, sample_weight=sample_weight,
                             return_dict=True, metrics=self._own_metrics())
        return _batch_result(logs, return_dict)

    def _batch_length(self, x: Any) -> int:
        """The samples in inputs given as one batch (an array, a list per input, a dict by input name),
        counted without converting them (the call they go to checks them); inputs it cannot count are
        checked here, for the error."""
        first = x
        if isinstance(x, dict) and x:
            first = next(iter(x.values()))
        elif isinstance(x, (list, tuple)) and x and len(self.input_names) > 1:
            first = x[0]
        try:
            return len(first)
        except TypeError:
            return len(self.prepare_inputs(x)[0])

    def _own_metrics(self) -> Any:
        """The compiled metrics alone (``[]`` for none: not ``fit``'s defaults), as Keras's ``*_on_batch``."""
        return self.compiled_metrics if self.compiled_metrics is not None else []

    def predict_on_batch(self, x: Any) -> Any:
        """The predictions of one batch, as Keras's ``predict_on_batch``: :meth:`predict` (one pass up to 256
        samples).

        Args:
            x: the batch's inputs.

        Returns:
            As :meth:`predict`.
        """
        return self.predict(x)

    # -- files --------------------------------------------------------------------------------------------
    def save_weights(self, path: Any) -> None:
        """Write the weights and buffers alone to HDF5 (Keras's ``save_weights``); see
        :func:`neuro.io.save_weights`. During a distributed ``fit`` only rank 0 writes.

        Args:
            path: the file to write (replaced atomically).
        """
        if self._dist is not None and not self._dist.is_main:
            return
        from neuro import io

        io.save_weights(self, path)

    def load_weights(self, path: Any) -> None:
        """Read weights written by :meth:`save_weights` (or a model file's) into this model of the same
        architecture, all or nothing (Keras's ``load_weights``); see :func:`neuro.io.load_weights`.

        Args:
            path: the HDF5 file.

        Raises:
            neuro.errors.ModelFileError: for a file that is not one, or whose arrays do not fit this model.
        """
        from neuro import io

        io.load_weights(self, path)

    def save(self, path: Any) -> None:
        """Write the model (graph, weights, optimizer and generator state) to HDF5; see :mod:`neuro.io`.

        During a distributed ``fit`` only rank 0 writes; on the other ranks this does nothing.

        Args:
            path: the file to write (replaced atomically).
        """
        if self._dist is not None and not self._dist.is_main:
            return
        from neuro import io

        io.save(self, path)

    def __deepcopy__(self, memo: dict) -> Model:
        """``copy.deepcopy(model)``: a model of its own through the model file, as PyTorch users copy a module
        (weights, buffers, optimizer state and generator state bitwise, on the same device), with compile's
        metrics, functions and metric objects included (copied, as a file cannot hold them)."""
        import os
        import tempfile

        from neuro import io

        # every class the file names, so that classes of one's own need no registering for a copy
        parts: list[Any] = [*self.leaf_layers(), *self.losses, self.optimizer, self.regularizer]
        for layer in self.leaf_layers():
            parts += [getattr(layer, "activation", None), *getattr(layer, "regularizers", {}).values()]
        custom = {type(o).__name__: type(o) for o in parts if o is not None}
        with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # metrics of one's own: copied below, not saved
            path = os.path.join(folder, "copy.h5")
            io.save(self, path)
            # the file was written here and now: its vocabulary's pattern is this model's own
            out = type(self).load(path, custom_objects=custom, device=self.device, trust_pattern=True)
        if self.compiled_metrics is not None and out.optimizer is not None:
            out.compiled_metrics = copy.deepcopy(self.compiled_metrics, memo)
        memo[id(self)] = out
        return out

    @classmethod
    def load(
        cls,
        path: Any,
        custom_objects: dict[str, type] | None = None,
        device: str = "numpy",
        trust_pattern: bool = False,
    ) -> Model:
        """Read a model written by :meth:`save` onto ``device``; see :func:`neuro.io.load`.

        Args:
            path: the HDF5 file.
            custom_objects: classes of your own by class name (not needed for registered ones).
            device: the device to put the model on.
            trust_pattern: accept a vocabulary's word pattern that is not one of
                :data:`neuro.data.text.SAFE_PATTERNS` (only for files you trust).

        Returns:
            The model, predicting as the saved one and ready to resume training (a
            :class:`~neuro.models.network.Network` for a saved chain).

        Raises:
            neuro.ModelFileError: for any problem with the file's contents.
        """
        from neuro import io

        want = None if cls is Model else cls
        return io.load(path, custom_objects, device=device, network_class=want, trust_pattern=trust_pattern)

    def export_onnx(self, path: Any, *, opset: int = 17, scalers: bool = True) -> None:
        """Write an ONNX inference graph of the model (needs the ``onnx`` extra); see :mod:`neuro.onnx`.

        Args:
            path: the ``.onnx`` file to write.
            opset: the ONNX opset (13 or newer).
            scalers: include the input and output scaling, so that the graph computes what ``predict`` does.
        """
        from neuro import onnx

        onnx.export(self, path, opset=opset, scalers=scalers)

    # -- description --------------------------------------------------------------------------------------
    def _header(self) -> str:
        ins = ", ".join(
            f"{n} {shape_text(s)}" for n, s in zip(self.input_names, self.input_shapes, strict=True)
        )
        loss = self.loss if self.losses else "none (not compiled)"
        opt = type(self.optimizer).__name__ if self.optimizer is not None else "none"
        kind = type(self).__name__
        device = backend.device(self.xp, resolve=False)  # with its kernel set: "numpy (numba kernels)"
        return f"{kind} {self.name!r}: inputs {ins}; loss {loss!r}, optimizer {opt}, device {device}"

    def summary(self, print_fn: Any = print) -> str:
        """Print and return a table of layers, output shapes, parameter counts and, for a graph, each
        layer's inbound layers (Keras's "Connected to").

        Args:
            print_fn: called with the table (``None`` to skip printing).

        Returns:
            The table as text.
        """
        graph = self.graph
        chain = self._is_chain()
        header = ("Layer (type)", "Output shape", "Params") + (() if chain else ("Connected to",))
        rows = [header]
        counted: set[int] = set()
        for node in graph.nodes:
            layer = node.layer
            shapes = [t.sample_shape for t in node.outputs]
            shape = shape_text(shapes[0]) if len(shapes) == 1 else shape_text(shapes)
            n = 0 if id(layer) in counted else sum(  # every array, as Keras's rows: moving statistics too
                int(np.prod(a.shape)) for leaf in leaf_layers([layer])
                for a in (*leaf.params.values(), *leaf.buffers.values())
            )  # fmt: skip
            counted.add(id(layer))
            row = (f"{layer.name} ({type(layer).__name__})", shape, f"{n:,}")
            if not chain:
                row += (", ".join(t.name for t in node.inbound),)
            rows.append(row)
        cols = len(header)
        widths = [max(len(r[c]) for r in rows) for c in range(cols)]
        line = "-" * (sum(widths) + 3 * (cols - 1))
        fmt = "   ".join(f"{{:>{w}}}" if c == 2 else f"{{:<{w}}}" for c, w in enumerate(widths))
        leaves = self.leaf_layers()
        trainable = sum(layer._count_trainable() for layer in leaves if layer.trainable)
        frozen = self.count_params() - trainable  # frozen params and every buffer
        out = [
            self._header(),
            line,
            fmt.format(*rows[0]),
            line,
            *(fmt.format(*r) for r in rows[1:]),
            line,
            f"Total params: {trainable + frozen:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {frozen:,}",
            f"Kernels: {backend.kernel_set_name(self.xp)}" if hasattr(backend, "kernel_set_name") else "",
        ]
        text = "\n".join(r for r in out if r)
        if print_fn is not None:
            print_fn(text)
        return text

    def _is_chain(self) -> bool:
        graph = self.graph
        prev = graph.inputs[0]
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            return False
        for node in graph.nodes:
            if len(node.inbound) != 1 or node.inbound[0] is not prev or len(node.outputs) != 1:
                return False
            prev = node.outputs[0]
        return True

    def __str__(self) -> str:
        return self.summary(print_fn=None)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {len(self.layers)} layers, device {self.device}>"


def _batch_result(logs: dict[str, float], return_dict: bool) -> Any:
    """Keras's form of a ``*_on_batch`` result: the dict, the loss alone, or ``[loss, *metrics]``."""
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values
