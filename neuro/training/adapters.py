"""Data adapters: whatever ``fit``, ``evaluate`` and ``predict`` are given, turned into host batches.

This module owns the shapes of data between the user and the training loop: it reads arrays (one per input
or output, as an array, a list or a dict keyed by name), data set splits and data sets, and data that yields
its own batches; it checks them against the model's inputs and outputs (through the model's
``prepare_inputs`` / ``prepare_targets``) and against the sample weights' rules, and yields batches
``(xs, ys, ws)``: a list with one host array per input and one per output, in the model's order, and the
sample weights (``None``, or one host array or ``None`` per output). It knows nothing of devices, losses or
optimizers; the loop (:mod:`neuro.training.loop`) moves each batch to the model's device once.

There are two kinds of *source*:

- a **sample source** holds N samples read by index, which ``fit`` shuffles and cuts into batches of
  ``batch_size``: ``len(source)`` and ``source.batches(order, batch_size, augment=False, rng=None)``, yielding
  ``(xs, ys)`` or ``(xs, ys, ws)`` for the samples ``order`` (:class:`ArraySource`, :class:`SplitSource`);
- a **batch source** (:class:`BatchSource`) wraps data that yields its own batches: a Python generator, any
  iterable, or an object that follows the *batch protocol* below. It has ``yields_batches = True`` and
  ``source.epoch(rng, shuffle)``, yielding the checked batches of one epoch (``steps`` of them, when given).

**The batch protocol** (Keras's ``keras.utils.Sequence``, without subclassing anything): an object with

- ``__len__()``: the number of batches;
- ``__getitem__(i)``: batch ``i`` (``0 <= i < len``) as a tuple ``(x, y)`` or ``(x, y, sample_weight)``;
- optionally ``on_epoch_end()``: called after every pass over it (to reshuffle or augment anew).

``x``, ``y`` and ``sample_weight`` of a batch take every form ``fit`` takes for arrays (one array, a list or a
dict by name; NumPy, lists, or arrays of the model's device). A list (or tuple) of such batch tuples follows
the protocol too. A generator's batches may also be lists ``[x, y]``.
"""

from __future__ import annotations

import collections.abc
import math
import numbers
import os
import sys
import warnings
from typing import Any

import numpy as np

from neuro import backend
from neuro.data.dataset import DataSet, Split

#: What ``fit``, ``evaluate`` and ``predict`` take as data (the message of a wrong first argument).
ACCEPTED = (
    "arrays (a NumPy array, or a list or dict of arrays for several inputs), a neuro.data DataSet or split, "
    "a generator or any iterable of (x, y) or (x, y, sample_weight) batches, or an object with __len__ and "
    "__getitem__(i) returning batch i (keras.utils.Sequence's protocol)"
)


# -- what was given ------------------------------------------------------------------------------------------
def _array_like(value: Any) -> bool:
    return backend.is_array(value) or hasattr(value, "__array__") or (
        hasattr(value, "shape") and hasattr(value, "dtype")
    )


def _ndim(value: Any) -> int:
    """The number of axes, read without moving a device array to the host."""
    return int(value.ndim) if hasattr(value, "ndim") else int(np.ndim(value))


def _batch_like(item: Any) -> bool:
    """A tuple ``(x, y)`` or ``(x, y, w)`` whose x is data (not a number): an item of a list of batches (a
    tuple, so that nested lists of numbers stay arrays)."""
    if not isinstance(item, tuple) or len(item) not in (2, 3):
        return False
    x = item[0]
    return isinstance(x, (tuple, list, dict)) or (_array_like(x) and _ndim(x) > 0)


def data_kind(x: Any, name: str = "x") -> str:
    """What kind of data ``x`` is.

    Args:
        x: the data given to ``fit``, ``evaluate`` or ``predict``.
        name: its argument's name, for the error.

    Returns:
        ``"dataset"``, ``"split"``, ``"arrays"`` (arrays, lists or dicts of them, texts), ``"sequence"`` (the
        batch protocol: ``__len__`` and ``__getitem__``, a list of batch tuples included) or ``"iterable"``
        (a generator or any other iterable of batches).

    Raises:
        TypeError: for anything else (a number, ``None``, a set, an object that is neither), naming the
            kinds that are accepted.
    """
    if type(x) is np.ndarray and x.ndim > 0:  # the common case first (every single-sample prediction)
        return "arrays"
    if isinstance(x, DataSet):
        return "dataset"
    if isinstance(x, Split):
        return "split"
    if isinstance(x, (str, bytes, dict)) or _array_like(x):
        if isinstance(x, (numbers.Number, np.generic)) or (_array_like(x) and _ndim(x) == 0):
            raise TypeError(f"{name} must be {ACCEPTED}; got the single value {x!r}")
        return "arrays"
    if isinstance(x, (list, tuple)):
        if x and all(_batch_like(item) for item in x):  # a list of (x, y[, w]) batches
            return "sequence"
        return "arrays"
    if x is None or isinstance(x, (numbers.Number, set, frozenset)):
        raise TypeError(f"{name} must be {ACCEPTED}; got {_describe(x)}")
    if hasattr(x, "__len__") and hasattr(x, "__getitem__"):
        return "sequence"
    if hasattr(x, "__iter__") or hasattr(x, "__next__"):
        return "iterable"
    raise TypeError(f"{name} must be {ACCEPTED}; got {_describe(x)}")


def _describe(x: Any) -> str:
    if x is None or isinstance(x, (numbers.Number, np.generic)):
        return repr(x)
    return f"a {type(x).__module__}.{type(x).__qualname__}" if type(x).__module__ != "builtins" else (
        f"a {type(x).__name__}"
    )


_KIND_TEXT = {
    "dataset": "a DataSet",
    "split": "a data set split",
    "sequence": "data that yields its own batches",
    "iterable": "data that yields its own batches",
}


def _no_targets(model: Any, kind: str, y: Any, what: str, batch_size: Any, sample_weight: Any) -> None:
    """Refuse ``y`` or ``sample_weight`` beside data that holds its targets (and weights); say which arguments
    are keywords when ``y`` is a number (the original neuro's ``fit(data, batch_size, epochs)`` order)."""
    if y is None:
        if sample_weight is not None:
            raise ValueError(
                f"sample_weight goes with arrays x; with {_KIND_TEXT[kind]} give the weights with the data "
                "(a batch (x, y, sample_weight))"
            )
        return
    text = _KIND_TEXT[kind]
    held = "it holds the targets" if kind in ("dataset", "split") else "each batch holds its targets"
    if isinstance(y, (numbers.Integral, np.integer)) and not isinstance(y, bool):
        order = "(x, y, batch_size, epochs)" if what == "fit" else "(x, y, batch_size)"
        original = "(data, batch_size, epochs)" if what == "fit" else "(data, batch_size)"
        fix = [f"batch_size={y}"] if kind in ("dataset", "split") else []
        if what == "fit" and batch_size is not None:
            fix.append(f"epochs={batch_size}")
        note = ""
        if kind not in ("dataset", "split"):
            note = " (batch_size does not apply: the data yields its batches)"
        raise TypeError(
            f"{what}(x, {y}, ...) with x {text}: {y} is taken as y. {what} takes {order} in Keras's order, "
            f"not the original neuro's {original}; give the rest as keywords: "
            f"{what}(data{''.join(', ' + f for f in fix)}){note}"
        )
    raise ValueError(f"y must be None when x is {text} ({held})")


# -- sample weights ------------------------------------------------------------------------------------------
def sample_weights(model: Any, sample_weight: Any, n: int, name: str = "sample_weight") -> list[Any] | None:
    """Checked sample weights for ``n`` samples: one host array (or ``None``) per output, in the model's
    dtype, or ``None`` without any.

    Args:
        model: the model.
        sample_weight: ``None``; one array for every output, ``(n,)`` (a weight per sample) or ``(n, T)``
            (a weight per step of a sequence output, Keras's temporal weights); or a list (one per output)
            or a dict keyed by output name, with ``None`` for an output left unweighted.
        n: the number of samples.
        name: the argument's name, for errors.

    Returns:
        The weights per output, or ``None``.

    Raises:
        TypeError: for weights that are not numbers.
        ValueError: for a wrong shape, a negative, NaN or infinite weight, or unknown output names.
    """
    if sample_weight is None:
        return None
    names = model.output_names
    k = len(names)
    if isinstance(sample_weight, dict):
        unknown = sorted(set(sample_weight) - set(names))
        if unknown:
            raise ValueError(f"{name} has keys {unknown} that are no output name; the outputs are {names}")
        items = [sample_weight.get(nm) for nm in names]
    elif (
        k > 1
        and isinstance(sample_weight, (list, tuple))
        and len(sample_weight) == k
        and all(v is None or _array_like(v) or isinstance(v, (list, tuple)) for v in sample_weight)
    ):
        items = list(sample_weight)
    elif (
        k > 1
        and isinstance(sample_weight, (list, tuple))
        and len(sample_weight) != k
        and all(v is None or (backend.is_array(v) and v.ndim >= 1) for v in sample_weight)
    ):
        raise ValueError(
            f"{name} must be one array for every output, a list of {k} (one per output {names}) or a dict "
            f"keyed by output name, got a list of {len(sample_weight)}"
        )
    else:
        items = [sample_weight] * k
    out: list[Any] = []
    done: dict[int, Any] = {}
    for j, (v, shape) in enumerate(zip(items, model.output_shapes, strict=True)):
        label = name if k == 1 else f"{name}[{names[j]!r}]"
        if v is None:
            out.append(None)
        elif id(v) in done and done[id(v)][1] == _weight_axes(shape):
            out.append(done[id(v)][0])
        else:
            w = _weight_array(v, n, tuple(shape), label, model.dtype)
            done[id(v)] = (w, _weight_axes(shape))
            out.append(w)
    return out if any(w is not None for w in out) else None


def _weight_axes(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape[:-1])


def _weight_array(value: Any, n: int, shape: tuple[int, ...], label: str, dtype: Any) -> np.ndarray:
    host = backend.to_numpy(value) if backend.is_array(value) else value
    try:
        w = np.asarray(host, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{label} must hold numbers (one weight per sample), got {_describe(value)}"
        ) from None
    steps = f" or ({n}, {', '.join(str(d) for d in shape[:-1])}) for each step" if len(shape) > 1 else ""
    if w.ndim == 2 and w.shape[1] == 1 and len(shape) == 1:
        w = w[:, 0]  # a column of weights (Keras takes (N, 1) too)
    if w.ndim == 0 or w.shape[0] != n or w.ndim > len(shape) or w.shape[1:] != shape[: w.ndim - 1]:
        raise ValueError(f"{label} must have shape ({n},) (one weight per sample){steps}, got {w.shape}")
    if w.size and (not np.isfinite(w).all() or w.min() < 0):
        raise ValueError(
            f"{label} must hold finite weights >= 0, got values from {w.min():g} to {w.max():g}"
        )
    return w.astype(dtype)


# -- sample sources ------------------------------------------------------------------------------------------
def _take(a: Any, idx: Any) -> Any:
    """``a[idx]``, the shuffled order moved to the array's device first (a device array is not indexed by a
    host array: the strict stand-in refuses it, as a read)."""
    if isinstance(idx, slice) or backend.get_array_module(a) is np:
        return a[idx]
    return a[backend.to_device(idx, backend.get_array_module(a))]


class ArraySource:
    """Checked arrays (in the model's dtype and scaling) read in batches by index.

    Args:
        xs: one array per input, each ``(N, ...)``.
        ys: one array per output, each with N rows.
        ws: the sample weights (one host array or ``None`` per output), or ``None``.
    """

    def __init__(self, xs: list[Any], ys: list[Any], ws: list[Any] | None = None) -> None:
        self.xs, self.ys, self.ws = xs, ys, ws

    def __len__(self) -> int:
        return len(self.xs[0])

    def batches(self, order: np.ndarray, batch_size: int, augment: bool = False, rng: Any = None) -> Any:
        """Yield ``(xs, ys, ws)`` for the samples ``order`` in batches (slices when ``order`` is the
        identity).

        Args:
            order: sample indices.
            batch_size: samples per batch.
            augment: unused (arrays are not augmented).
            rng: unused.

        Yields:
            ``(xs, ys, ws)``: one array per input, one per output, and the sample weights (or ``None``).
        """
        contiguous = len(order) == len(self) and bool(np.all(order[1:] > order[:-1])) if len(order) else False
        for s in range(0, len(order), batch_size):
            if contiguous:  # the data in its order: slices, no copy
                idx: Any = slice(s, s + batch_size)
            else:
                idx = order[s : s + batch_size]
            ws = None if self.ws is None else [None if w is None else _take(w, idx) for w in self.ws]
            yield [_take(x, idx) for x in self.xs], [_take(y, idx) for y in self.ys], ws

    def _part(self, idx: slice) -> ArraySource:
        ws = None if self.ws is None else [None if w is None else w[idx] for w in self.ws]
        return ArraySource([x[idx] for x in self.xs], [y[idx] for y in self.ys], ws)

    def head(self, n: int) -> ArraySource:
        """The first samples.

        Args:
            n: how many.

        Returns:
            A source of the samples ``[0, n)``.
        """
        return self._part(slice(None, n))

    def tail(self, n: int) -> ArraySource:
        """The last samples.

        Args:
            n: the first sample kept.

        Returns:
            A source of the samples from ``n`` on.
        """
        return self._part(slice(n, None))


class SplitSource:
    """A data set split whose host batches are checked, converted and scaled one batch at a time.

    Args:
        split: the split.
        model: the model whose inputs and outputs the batches must fit.

    Raises:
        ValueError: when the split holds no sample, or its sample shape is not the model's input shape.
    """

    def __init__(self, split: Split, model: Any) -> None:
        if len(split) == 0:  # an evaluation of nothing would report a NaN loss and an accuracy of 0
            raise ValueError("the data set split holds no sample; training and evaluation need at least one")
        self.split, self.model = split, model
        shapes = model.input_shapes
        given = split.input_shape
        if isinstance(given, dict) and set(given) == set(model.input_names):
            given = [tuple(given[k]) for k in model.input_names]
        if len(shapes) == 1 and not isinstance(given, (list, dict)) and tuple(given) != shapes[0]:
            raise ValueError(
                f"the data set's input shape {tuple(given)} does not match the {model._noun}'s "
                f"input_shape {shapes[0]}"
            )
        if len(shapes) > 1 and (not isinstance(given, list) or [tuple(s) for s in given] != shapes):
            raise ValueError(
                f"the data set's input shapes {given} do not match the {model._noun}'s inputs "
                f"{dict(zip(model.input_names, shapes, strict=True))}"
            )

    def __len__(self) -> int:
        return len(self.split)

    def batches(self, order: np.ndarray, batch_size: int, augment: bool = False, rng: Any = None) -> Any:
        """Yield checked ``(xs, ys)`` batches of the split.

        Args:
            order: sample indices.
            batch_size: samples per batch.
            augment: apply the split's augmentation.
            rng: the generator augmentation draws from.

        Yields:
            ``(xs, ys)``: one array per input, one per output, in the model's dtype and scaling.
        """
        model = self.model
        for xb, yb in self.split.batches(order, batch_size, augment=augment, rng=rng):
            xs = model.prepare_inputs(xb)
            yield xs, model.prepare_targets(yb, len(xs[0]), "y")


def unpack(batch: tuple[Any, ...]) -> tuple[list[Any], list[Any], list[Any] | None]:
    """A source's batch as ``(xs, ys, ws)`` (sources without weights yield ``(xs, ys)``).

    Args:
        batch: ``(xs, ys)`` or ``(xs, ys, ws)``.

    Returns:
        ``(xs, ys, ws)``.
    """
    return (batch[0], batch[1], batch[2]) if len(batch) == 3 else (batch[0], batch[1], None)


# -- batch sources -------------------------------------------------------------------------------------------
class BatchSource:
    """Data that yields its own batches (a generator, an iterable, or the batch protocol), checked one batch
    at a time as it is read.

    Epochs follow Keras: without ``steps``, an epoch is one pass over the data (a generator is read until it
    ends); with ``steps``, an epoch is the next ``steps`` batches, drawn from one iterator kept from epoch to
    epoch (a re-iterable, or an object of the batch protocol, starts a new pass when one ends; a generator
    that ends leaves the epoch short: :attr:`short` says so, and the loop stops training with a warning, as
    Keras does).

    Args:
        data: the data.
        model: the model the batches must fit.
        indexed: whether ``data`` follows the batch protocol (read by index, shuffled by batch).
        steps: batches per epoch (``None``: one pass).
        name: the argument's name, for errors (``"x"``, ``"validation_data"``).
        targets: whether batches hold targets (``fit``, ``evaluate``); ``predict`` takes ``x`` or ``(x,)``,
            ``(x, y)``, ``(x, y, sample_weight)`` and reads only ``x``.
        steps_name: the name of the argument that gave ``steps``, for messages.
        one_pass: never start a new pass (``evaluate``, ``predict``, a validation): each epoch reads from
            the start, and more ``steps`` than the data holds leave it short instead of reading batches
            twice.

    Attributes:
        short: ``(batches read, steps)`` when the last epoch ended before its ``steps`` batches, else
            ``None``.
        read: batches read so far.
    """

    #: The loop asks a batch source for epochs of batches rather than for samples.
    yields_batches = True

    def __init__(
        self,
        data: Any,
        model: Any,
        indexed: bool,
        steps: int | None,
        name: str,
        targets: bool = True,
        steps_name: str = "steps",
        one_pass: bool = False,
    ) -> None:
        self.data, self.model, self.indexed, self.steps, self.name = data, model, indexed, steps, name
        self.targets, self.steps_name, self.one_pass = targets, steps_name, one_pass
        self.one_shot = not indexed and isinstance(data, collections.abc.Iterator)
        try:
            self.length: int | None = len(data)
        except TypeError:
            self.length = None
        if indexed and self.length == 0:
            raise ValueError(f"{name} has no batches (len({name}) is 0)")
        self.short: tuple[int, int] | None = None
        self.read = 0
        self._it: Any = None  # the iterator an epoch of ``steps`` batches continues
        self._order: np.ndarray | None = None  # the batch order of the current pass (batch protocol)
        self._pos = 0

    @property
    def batches_per_epoch(self) -> int | None:
        """``steps``, else the data's length when it has one (``None``: unknown until it ends)."""
        return self.steps if self.steps is not None else self.length

    def epoch(self, rng: Any = None, shuffle: bool = False) -> Any:
        """Yield the checked batches of one epoch (or of one evaluation).

        Args:
            rng: the generator a batch order is drawn from (the batch protocol with ``shuffle``).
            shuffle: read the batches of an object of the batch protocol in a new random order each pass.

        Yields:
            ``(xs, ys, ws)``: one array per input, one per output (empty without targets), and the sample
            weights (or ``None``).

        Raises:
            TypeError: for a batch that is not a tuple ``(x, y)`` or ``(x, y, sample_weight)``.
            ValueError: for a batch the model cannot take (the message names the batch), or data whose new
                pass yields no batch.
        """
        self.short = None
        if self.one_pass and not self.one_shot:
            self._it = None  # each evaluation reads from the start (a generator goes on: it cannot restart)
        got = 0
        for i, batch in self._raw(rng if shuffle else None):
            where = f"{self.name}[{i}]" if self.indexed else f"{self.name} batch {self.read}"
            self.read += 1
            got += 1
            yield prepare_batch(self.model, batch, where, self.targets)
        if self.steps is not None and got < self.steps:
            self.short = (got, self.steps)
        end = getattr(self.data, "on_epoch_end", None)
        if callable(end):
            end()

    def _raw(self, rng: Any) -> Any:
        data = self.data
        if self.indexed:
            n = len(data)
            if self.one_pass and self.steps is not None:  # evaluate, predict: never a batch twice
                for i in range(min(self.steps, n)):
                    yield i, data[i]
                return
            if self.steps is None:
                for i in rng.permutation(n) if rng is not None else range(n):
                    yield int(i), data[int(i)]
                return
            for _ in range(self.steps):
                if self._order is None or self._pos >= len(self._order):
                    self._order = rng.permutation(n) if rng is not None else np.arange(n)
                    self._pos = 0
                i = int(self._order[self._pos])
                self._pos += 1
                yield i, data[i]
            return
        if self.steps is None:
            for batch in data if self.one_shot else iter(data):
                yield None, batch
            return
        for _ in range(self.steps):
            if self._it is None:
                self._it = iter(data)
            try:
                batch = next(self._it)
            except StopIteration:
                if self.one_shot or self.one_pass:
                    return  # used up (or, for evaluate and predict, read once): the epoch is short
                self._it = iter(data)  # a re-iterable: a new pass
                try:
                    batch = next(self._it)
                except StopIteration:
                    raise ValueError(f"{self.name} yielded no batch in a new pass over it") from None
            yield None, batch


def prepare_batch(
    model: Any, batch: Any, where: str, targets: bool = True
) -> tuple[list[Any], list[Any], list[Any] | None]:
    """One batch given by the user, checked: ``(xs, ys, ws)``.

    Args:
        model: the model.
        batch: ``(x, y)`` or ``(x, y, sample_weight)`` (a tuple or a list); without targets also ``x`` or
            ``(x,)``.
        where: which batch, for errors (``"x[3]"`` for batch 3 of an object of the batch protocol, ``"x batch
            3"`` for the fourth batch an iterable yielded).
        targets: whether the batch must hold targets.

    Returns:
        One array per input, one per output (none without targets), and the weights (or ``None``).

    Raises:
        TypeError: for a batch of another form.
        ValueError: for a batch without samples, or arrays the model cannot take (the message names the
            batch).
    """
    if targets:
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            shown = f"a {type(batch).__name__} of {len(batch)}" if isinstance(batch, (tuple, list)) else (
                _describe(batch)
            )
            raise TypeError(f"{where} must be a tuple (x, y) or (x, y, sample_weight), got {shown}")
        x, y, w = batch if len(batch) == 3 else (*batch, None)
    else:
        x = _inputs_of(model, batch)
        y = w = None
    xs = model.prepare_inputs(x, f"{where}: x")  # at least one sample
    n = len(xs[0])
    if not targets:
        return xs, [], None
    ys = model.prepare_targets(y, n, f"{where}: y")
    return xs, ys, sample_weights(model, w, n, f"{where}: sample_weight")


def _inputs_of(model: Any, batch: Any) -> Any:
    """The ``x`` of a batch read without its targets: the first item of a tuple ``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)``, and of a list of two or three items (a PyTorch DataLoader's batches) whose
    first item is a batch of the model's inputs; otherwise the batch itself (a list is then ``x`` of a model
    with several inputs)."""
    if isinstance(batch, tuple) and 1 <= len(batch) <= 3:
        return batch[0]
    if isinstance(batch, list) and len(batch) in (2, 3) and _holds_inputs(model, batch[0]):
        return batch[0]
    return batch


def _holds_inputs(model: Any, x: Any) -> bool:
    """Whether ``x`` is a batch of every input of the model: arrays (or tensors) with a batch axis and each
    input's sample shape, as one array, a list or a dict keyed by input name."""
    inputs = model.graph.inputs
    if isinstance(x, dict):
        if sorted(x) != sorted(model.input_names):
            return False
        items = [x[name] for name in model.input_names]
    else:
        items = list(x) if isinstance(x, (list, tuple)) and len(inputs) > 1 else [x]
    if len(items) != len(inputs):
        return False
    shapes = [tuple(getattr(a, "shape", ())) for a in items]  # a batch axis, then the sample's shape
    return all(s[1:] == t.sample_shape and len(s) > 0 for s, t in zip(shapes, inputs, strict=True))


def batch_source(
    model: Any, x: Any, kind: str, steps: int | None, name: str, steps_name: str, targets: bool = True,
    one_pass: bool = False,
) -> BatchSource:
    """A :class:`BatchSource` of data of kind ``"sequence"`` or ``"iterable"`` (see :func:`data_kind`).

    Args:
        model: the model.
        x: the data.
        kind: its kind.
        steps: batches per epoch (``None``: one pass).
        name: the argument's name.
        steps_name: the name of the argument that gave ``steps``.
        targets: whether batches hold targets.
        one_pass: read the data at most once whatever ``steps`` asks (``evaluate`` and ``predict``: more
            steps than the data holds end short, with a warning, instead of counting batches twice).

    Returns:
        The source.
    """
    return BatchSource(x, model, kind == "sequence", steps, name, targets, steps_name, one_pass)


# -- fit, evaluate, predict ----------------------------------------------------------------------------------
def training_sources(
    model: Any,
    x: Any,
    y: Any,
    validation_data: Any,
    split: float,
    *,
    batch_size: int | None = None,
    sample_weight: Any = None,
    steps_per_epoch: int | None = None,
    validation_steps: int | None = None,
) -> tuple[Any, Any]:
    """The training and validation sources of ``fit``; a data set also hands over its class names and
    scalers to the model.

    Args:
        model: the model being trained.
        x: arrays (one, a list or a dict), a data set split, a :class:`~neuro.data.DataSet`, or data that
            yields batches (a generator, an iterable, an object of the batch protocol).
        y: targets (one, a list or a dict), or ``None`` with anything but arrays.
        validation_data: ``None``, ``(x_val, y_val)``, ``(x_val, y_val, sample_weight_val)``, a split, or data
            that yields batches.
        split: the ``validation_split`` fraction (0 for none).
        batch_size: the ``batch_size`` given (``None``: not given).
        sample_weight: weights of the samples of arrays ``x`` (see :func:`sample_weights`).
        steps_per_epoch: batches per epoch of data that yields batches.
        validation_steps: batches per validation of validation data that yields batches.

    Returns:
        ``(train, valid)``; ``valid`` is ``None`` without validation data.

    Raises:
        ValueError: for arguments that do not go together (``y`` with a data set or batches, both
            validation arguments, a split leaving no sample on one side, ``steps_per_epoch`` with arrays,
            ``batch_size`` with batches, ``sample_weight`` with anything but arrays).
        TypeError: for data of another kind (the message lists the accepted kinds), or ``y`` a number with
            data that holds its targets (the original neuro's ``fit(data, batch_size, epochs)``).
    """
    kind = data_kind(x)
    if kind != "arrays":
        _no_targets(model, kind, y, "fit", batch_size, sample_weight)
    if kind in ("sequence", "iterable"):
        if batch_size is not None:
            raise ValueError(
                "batch_size does not apply when x yields its own batches (a generator, an iterable or a "
                "Sequence); leave it out (steps_per_epoch sets how many batches make an epoch)"
            )
        if split:
            raise ValueError(
                "validation_split does not apply when x yields its own batches; pass validation_data"
            )
        train: Any = batch_source(model, x, kind, steps_per_epoch, "x", "steps_per_epoch")
    else:
        if steps_per_epoch is not None:
            raise ValueError(
                "steps_per_epoch applies to x that yields its own batches (a generator, an iterable or a "
                f"Sequence); {_KIND_TEXT.get(kind, 'arrays')} are read whole each epoch, in batches of "
                "batch_size"
            )
        if kind == "dataset":
            if split:
                raise ValueError("validation_split does not apply to a DataSet; give it a valid_frac instead")
            model.adopt_data_set(x)
            train = SplitSource(x.train, model)
            if validation_data is None and len(x.valid):
                return train, SplitSource(x.valid, model)
        elif kind == "split":
            if split:
                raise ValueError("validation_split does not apply to a data set split; pass validation_data")
            train = SplitSource(x, model)
        else:
            source = array_source(model, x, y, sample_weight=sample_weight)
            if split:
                if validation_data is not None:
                    raise ValueError("give validation_data or validation_split, not both")
                n = len(source)
                n_val = n - math.floor(n * (1.0 - split))  # Keras's split: its arithmetic, its counts
                if n_val < 1 or n_val >= n:
                    raise ValueError(
                        f"validation_split={split} leaves {n - n_val} training and {n_val} "
                        f"validation samples of {n}; both must be at least 1"
                    )
                return source.head(n - n_val), source.tail(n - n_val)
            train = source
    return train, validation_source(model, validation_data, validation_steps)


def validation_source(model: Any, validation_data: Any, steps: int | None) -> Any:
    """The source of ``fit``'s ``validation_data`` (``None`` without).

    Args:
        model: the model.
        validation_data: ``None``, ``(x_val, y_val)``, ``(x_val, y_val, sample_weight_val)``, a split, or
            data that yields batches (a generator, an iterable, an object of the batch protocol).
        steps: ``validation_steps``: batches per validation of data that yields batches.

    Returns:
        The source, or ``None``.

    Raises:
        TypeError: for validation data of another kind.
        ValueError: for ``validation_steps`` with arrays or a split.
    """
    if validation_data is None:
        if steps is not None:
            raise ValueError("validation_steps needs validation_data that yields batches")
        return None
    if isinstance(validation_data, Split):
        kind = "split"
    elif isinstance(validation_data, tuple) and len(validation_data) in (2, 3):
        kind = "arrays"  # Keras's (x_val, y_val[, sample_weight_val])
    elif isinstance(validation_data, list) and len(validation_data) in (2, 3) and not all(
        _batch_like(v) for v in validation_data
    ):
        kind = "arrays"
    else:
        try:
            kind = data_kind(validation_data, "validation_data")
        except TypeError:
            kind = "bad"
        if kind in ("arrays", "dataset", "bad"):
            raise TypeError(
                "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight_val), a data "
                "set split, or data that yields (x, y) batches (a generator, an iterable, a Sequence); got "
                f"{_describe(validation_data)}"
            )
    if kind in ("sequence", "iterable"):
        return batch_source(model, validation_data, kind, steps, "validation_data", "validation_steps",
                            one_pass=True)
    if steps is not None:
        raise ValueError(
            "validation_steps applies to validation_data that yields its own batches (a generator, an "
            "iterable or a Sequence)"
        )
    if kind == "split":
        return SplitSource(validation_data, model)
    w = validation_data[2] if len(validation_data) == 3 else None
    return array_source(model, validation_data[0], validation_data[1], name="val_", sample_weight=w)


def evaluation_source(
    model: Any,
    x: Any,
    y: Any,
    *,
    sample_weight: Any = None,
    steps: int | None = None,
    batch_size: int | None = None,
) -> Any:
    """What ``evaluate`` reads: arrays, a split, a data set's test split, or data that yields batches.

    Args:
        model: the model.
        x: arrays, a split, a data set, or data that yields ``(x, y[, sample_weight])`` batches.
        y: targets, or ``None`` with anything but arrays.
        sample_weight: weights of the samples of arrays ``x``.
        steps: batches to read from data that yields batches (``None``: until it ends).
        batch_size: the ``batch_size`` given (``None``: not given).

    Returns:
        A source.

    Raises:
        ValueError: for a data set without a test split, ``y`` with a split, a data set or batches, or
            arguments that do not apply to the data's kind.
        TypeError: for data of another kind.
    """
    kind = data_kind(x)
    if kind != "arrays":
        _no_targets(model, kind, y, "evaluate", batch_size, sample_weight)
    if kind in ("sequence", "iterable"):
        if batch_size is not None:
            raise ValueError("batch_size does not apply when x yields its own batches; leave it out")
        return batch_source(model, x, kind, steps, "x", "steps", one_pass=True)
    if steps is not None:
        raise ValueError(
            "steps applies to x that yields its own batches (a generator, an iterable, a Sequence)"
        )
    if kind == "dataset":
        if x.test is None:
            raise ValueError("x is a DataSet without a test split; pass a split (data.valid) or arrays")
        return SplitSource(x.test, model)
    if kind == "split":
        return SplitSource(x, model)
    return array_source(model, x, y, sample_weight=sample_weight)


def prediction_source(model: Any, x: Any, steps: int | None, batch_size: int | None) -> Any:
    """What ``predict`` reads: a :class:`BatchSource` for data that yields batches, else ``None`` (arrays
    and splits are read by the model itself).

    Args:
        model: the model.
        x: the data.
        steps: batches to read from data that yields batches (``None``: until it ends).
        batch_size: the ``batch_size`` given (``None``: not given).

    Returns:
        The source, or ``None``.

    Raises:
        TypeError: for data of another kind, or a DataSet.
        ValueError: for arguments that do not apply to the data's kind.
    """
    kind = data_kind(x)
    if kind == "dataset":
        raise TypeError("x is a DataSet: predict on one of its splits (data.test) or on arrays")
    if kind in ("sequence", "iterable"):
        if batch_size is not None:
            raise ValueError("batch_size does not apply when x yields its own batches; leave it out")
        return batch_source(model, x, kind, steps, "x", "steps", targets=False, one_pass=True)
    if steps is not None:
        raise ValueError(
            "steps applies to x that yields its own batches (a generator, an iterable, a Sequence)"
        )
    return None


def array_source(model: Any, x: Any, y: Any, name: str = "", sample_weight: Any = None) -> ArraySource:
    """Checked arrays as a source.

    Args:
        model: the model they are for.
        x: inputs (an array, a list or a dict by input name).
        y: targets (an array, a list or a dict by output name).
        name: prefix of the argument names in errors (``"val_"``).
        sample_weight: the samples' weights (see :func:`sample_weights`), or ``None``.

    Returns:
        The source.

    Raises:
        TypeError: when ``y`` is missing, or is a number (a batch size given in the original neuro's order).
    """
    if y is None:
        raise TypeError(f"{name}y must be given with arrays {name}x (only a data set holds its targets)")
    if isinstance(y, (numbers.Number, np.generic)) and not isinstance(y, bool):
        raise TypeError(
            f"{name}y is the number {y!r}, not targets: fit takes (x, y, batch_size, epochs) in Keras's "
            "order; give batch_size and epochs as keywords (fit(x, y, batch_size=..., epochs=...))"
        )
    xs = model.prepare_inputs(x, f"{name}x")
    n = len(xs[0])
    ws = sample_weights(model, sample_weight, n, f"{name}sample_weight")
    return ArraySource(xs, model.prepare_targets(y, n, f"{name}y"), ws)


def warn_short(source: BatchSource, what: str) -> None:
    """Warn that a batch source ended before its ``steps`` (Keras's "ran out of data").

    Args:
        source: the source whose last epoch was short.
        what: what stops (``"training stops after this epoch"``).
    """
    got, steps = source.short or (0, source.steps or 0)
    if source.one_pass:  # evaluate, predict, a validation: the data is read once whatever it is
        advice = f"it is read once: leave {source.steps_name} out, or ask for at most {got}"
    else:
        advice = (
            "Give a generator that yields every batch asked for (an endless one: while True: ...), or data "
            "that can be read anew (a list of batches, a Sequence)"
        )
    warnings.warn(
        f"{source.name} ran out of batches: it gave {got} of the {steps} batches asked for "
        f"({source.steps_name}={steps}); {what}. {advice}",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def user_stacklevel() -> int:
    """The ``stacklevel`` of a warning raised here that points at the first caller outside neuro.

    Returns:
        The number of frames from the caller of this function to the user's code.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(root + os.sep):
        frame, level = frame.f_back, level + 1
    return level


__all__ = [
    "ACCEPTED",
    "ArraySource",
    "BatchSource",
    "SplitSource",
    "array_source",
    "batch_source",
    "data_kind",
    "evaluation_source",
    "prediction_source",
    "prepare_batch",
    "sample_weights",
    "training_sources",
    "unpack",
    "user_stacklevel",
    "validation_source",
    "warn_short",
]
