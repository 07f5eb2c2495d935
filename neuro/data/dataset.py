"""The protocol of a data set split, an array-backed split, and the data set object holding the splits.

A *split* (train, valid or test) hands out host-side NumPy batches in the order of an index array, so a
training loop shuffles by passing a seeded permutation and no split copies its whole data per epoch. The
values a split returns are *raw*: a data set's ``input_scaler`` / ``output_scaler`` (fitted on the training
split) are applied by whoever consumes the batches, so they can be saved with a model.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from neuro.data.scaling import Scaler

if TYPE_CHECKING:  # neuro.data.augment (and its dataclasses) loads when a split is given an augmentation
    from neuro.data.augment import Augment


def check_fraction(value: Any, name: str) -> float:
    """Return ``value`` as a float if it lies in [0, 1).

    Args:
        value: the fraction.
        name: the argument's name, for the error.

    Returns:
        The fraction as a float.

    Raises:
        ValueError: when ``value`` is not a number in [0, 1).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def split_indices(n: int, valid_frac: float, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Choose the validation rows: the last ``valid_frac`` of a seeded permutation of ``range(n)``.

    ``round(n·valid_frac)`` rows (half rounded up) go to validation, but at least one row stays for
    training. Both index arrays come back sorted, so batches read the data in its stored order.

    Args:
        n: number of samples.
        valid_frac: share held out, in [0, 1).
        seed: seed of the permutation.

    Returns:
        ``(train, valid)``: int64 index arrays.

    Raises:
        ValueError: when ``valid_frac`` is outside [0, 1), or for a ``seed`` that is not a whole number >= 0.
    """
    valid_frac = check_fraction(valid_frac, "valid_frac")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a whole number >= 0 or None, got {seed!r}")
    n_valid = min(max(n - 1, 0), math.floor(n * valid_frac + 0.5)) if valid_frac > 0 else 0
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n - n_valid]), np.sort(order[n - n_valid :])


def check_order(order: Any, n: int) -> np.ndarray:
    """Return ``order`` as a 1-D integer array whose entries index ``n`` samples.

    Args:
        order: the sample indices of an epoch (a permutation, an ``arange``, or any subset).
        n: the number of samples of the split.

    Returns:
        ``order`` as an integer array (not copied when it already is one).

    Raises:
        ValueError: when ``order`` is not 1-D, not integer, or holds an index outside ``[0, n)``.
    """
    order = np.asarray(order)
    if order.ndim != 1 or (order.dtype.kind not in "iu" and order.size):
        raise ValueError(f"order must be a 1-D integer array, got shape {order.shape}, dtype {order.dtype}")
    if order.size == 0:
        return order.astype(np.int64)
    low, high = int(order.min()), int(order.max())
    if low < 0 or high >= n:
        raise ValueError(f"order must hold indices in [0, {n - 1}], got values in [{low}, {high}]")
    return order


def check_batch_size(batch_size: Any) -> int:
    """Return ``batch_size`` if it is a positive integer.

    Args:
        batch_size: samples per batch.

    Returns:
        ``batch_size`` as an int.

    Raises:
        ValueError: when it is not a positive integer.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


class Split(abc.ABC):
    """One split (train, valid or test) of a data set, read in batches.

    Subclasses implement ``__len__``, :attr:`input_shape` and :meth:`batches`; :meth:`arrays` defaults to
    reading every sample in order through :meth:`batches`.
    """

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of samples."""

    @property
    @abc.abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input sample, without the batch axis."""

    @abc.abstractmethod
    def batches(
        self,
        order: np.ndarray,
        batch_size: int,
        augment: bool = False,
        rng: np.random.Generator | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(x, y)`` batches of the samples ``order[:batch_size]``, ``order[batch_size:2·batch_size]``…

        Args:
            order: 1-D integer array of sample indices (a permutation or an ``arange``).
            batch_size: samples per batch (the last batch may be smaller).
            augment: apply the split's random augmentation, if it has one.
            rng: the generator augmentation draws from (required when augmenting).

        Yields:
            ``(x, y)``: x float32 ``(B, *input_shape)``, raw (unscaled); y as stored: int64 class ids
            ``(B,)`` or float32 rows ``(B, ...)``.

        Raises:
            ValueError: for a bad ``order``, ``batch_size`` or a missing ``rng``.
        """

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the whole split as ``(x, y)`` (x float32, raw), in stored order, without augmentation.

        Returns:
            ``(x, y)`` with ``len(self)`` rows.
        """
        n = len(self)
        parts = list(self.batches(np.arange(n), max(n, 1)))
        if not parts:
            return np.empty((0, *self.input_shape), dtype=np.float32), np.empty((0,), dtype=np.int64)
        return parts[0]

    def _class_ids(self) -> np.ndarray | None:
        """The class id of every sample, when the split can tell cheaply (for summaries); else ``None``."""
        return None


class ArraySplit(Split):
    """A split backed by arrays held in memory, read without copying the whole data.

    Args:
        x: inputs, first axis the samples, any numeric dtype; kept as given, not copied. Float and boolean
            arrays are handed out as float32, integer arrays (token ids, pixels) as they are stored (float32
            when augmented). For a model with several inputs, a list of arrays or a dict keyed by input
            name.
        y: targets, one row per sample of ``x``; kept as given (a list or a dict, one per output, for a
            model with several outputs).
        index: optional rows of ``x``/``y`` forming this split (so several splits can share one array);
            ``None`` means all rows.
        augment: optional :class:`Augment` (or dict) applied by ``batches(..., augment=True)``; needs image
            inputs ``(N, H, W, C)``.

    Shape:
        ``x``: ``(N, *input_shape)``; ``y``: ``(N, ...)``; ``index``: ``(len,)``.

    Raises:
        TypeError: for non-numeric ``x`` or ``y``.
        ValueError: for mismatched lengths, a bad ``index``, or augmentation of non-image inputs.
    """

    def __init__(self, x: Any, y: Any, index: Any = None, augment: Augment | dict | None = None) -> None:
        self._x_keys = list(x) if isinstance(x, dict) else None
        self._y_keys = list(y) if isinstance(y, dict) else None
        self._multi_x = isinstance(x, (list, tuple, dict))
        self._multi_y = isinstance(y, (list, tuple, dict))
        xs = [_numbers(v, "x") for v in (x.values() if isinstance(x, dict) else x)] if self._multi_x else [
            _numbers(x, "x")
        ]
        ys = [_numbers(v, "y") for v in (y.values() if isinstance(y, dict) else y)] if self._multi_y else [
            _numbers(y, "y")
        ]
        if not xs or not ys:
            raise ValueError("x and y must hold at least one array each")
        for a in (*xs, *ys):
            if a.ndim < 1:
                shapes = [v.shape for v in (*xs, *ys)]
                raise ValueError(f"x and y must have a sample axis, got shapes {shapes}")
        n = len(xs[0])
        for a in (*xs[1:], *ys):
            if len(a) != n:
                which = "y" if any(a is v for v in ys) else "x"
                raise ValueError(f"{which} must have one row per sample of x ({n}), got {len(a)}")
        if index is not None:
            index = check_order(index, n).astype(np.intp, copy=False)
        self._xs, self._ys, self._index = xs, ys, index
        self._x, self._y = xs[0], ys[0]
        self._augment = None
        if augment is not None:
            from neuro.data.augment import Augment

            self._augment = Augment.coerce(augment)
        if self._augment is not None and (self._multi_x or self._x.ndim != 4):
            raise ValueError(f"augment needs image inputs (N, H, W, C), got x of shape {self._x.shape}")

    def __len__(self) -> int:
        return len(self._x) if self._index is None else len(self._index)

    @property
    def input_shape(self) -> Any:
        """The shape of one input sample, without the batch axis (a list or dict of them for several)."""
        shapes = [tuple(a.shape[1:]) for a in self._xs]
        if not self._multi_x:
            return shapes[0]
        return dict(zip(self._x_keys, shapes, strict=True)) if self._x_keys is not None else shapes

    def _rows(self, positions: np.ndarray) -> np.ndarray:
        return positions if self._index is None else self._index[positions]

    def batches(
        self,
        order: np.ndarray,
        batch_size: int,
        augment: bool = False,
        rng: np.random.Generator | None = None,
    ) -> Iterator[tuple[Any, Any]]:
        """Yield ``(x, y)`` batches in the order of ``order`` (see :meth:`Split.batches`).

        Args:
            order: 1-D integer array of sample indices of this split.
            batch_size: samples per batch.
            augment: apply the split's augmentation (a no-op when it has none).
            rng: generator for the augmentation; required when ``augment`` is true and the split has one.

        Yields:
            ``(x, y)``: x ``(B, *input_shape)``, float32 or integers as stored; y as stored (lists or dicts
            for several inputs or outputs, as given).

        Raises:
            ValueError: for a bad ``order`` or ``batch_size``, or a missing ``rng``.
        """
        order = check_order(order, len(self))
        batch_size = check_batch_size(batch_size)
        aug = self._augment if augment else None
        if aug is not None and not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator when augment=True, got {rng!r}")
        return self._iterate(order, batch_size, aug, rng)

    def _pack(self, arrays: list[np.ndarray], multi: bool, keys: list[Any] | None) -> Any:
        if not multi:
            return arrays[0]
        return dict(zip(keys, arrays, strict=True)) if keys is not None else arrays

    def _iterate(
        self, order: np.ndarray, batch_size: int, aug: Augment | None, rng: np.random.Generator | None
    ) -> Iterator[tuple[Any, Any]]:
        for start in range(0, len(order), batch_size):
            rows = self._rows(order[start : start + batch_size])
            xs = [_as_input(a[rows], aug is not None) for a in self._xs]
            if aug is not None:
                xs[0] = aug.apply(xs[0], rng)
            ys = [a[rows] for a in self._ys]
            yield self._pack(xs, self._multi_x, self._x_keys), self._pack(ys, self._multi_y, self._y_keys)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the whole split as ``(x, y)``: x float32 or integers as stored (no copy when unindexed and
        already of that type).

        Returns:
            ``(x, y)`` with ``len(self)`` rows.
        """
        if self._multi_x or self._multi_y:
            n = len(self)
            return next(self._iterate(np.arange(n), max(n, 1), None, None))
        if self._index is None:
            return _as_input(self._x, False), self._y
        return _as_input(self._x[self._index], False), self._y[self._index]

    def _class_ids(self) -> np.ndarray | None:
        if self._multi_y:
            return None
        y = self._y if self._index is None else self._y[self._index]
        if y.ndim == 1 and y.dtype.kind in "iu":
            return y
        if y.ndim == 2 and y.shape[1] > 1 and ((y == 0) | (y == 1)).all() and (y.sum(axis=1) == 1).all():
            return y.argmax(axis=1)
        return None

    def __repr__(self) -> str:
        return f"ArraySplit({len(self)} samples, input_shape={self.input_shape})"


def _as_input(a: np.ndarray, augmented: bool) -> np.ndarray:
    """Inputs as a split hands them out: integers (token ids, pixels) as stored unless augmented, anything
    else float32."""
    if a.dtype.kind in "iu" and not augmented:
        return a
    return a.astype(np.float32, copy=False)


def _numbers(a: Any, name: str) -> np.ndarray:
    a = a if isinstance(a, np.ndarray) else np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}")
    return a


def empty_split(input_shape: tuple[int, ...], y_dtype: Any = np.int64) -> ArraySplit:
    """Return a split with no samples and the given input shape.

    Args:
        input_shape: shape of one sample.
        y_dtype: dtype of the (empty) targets.

    Returns:
        An :class:`ArraySplit` of length 0.
    """
    if isinstance(input_shape, dict):
        x: Any = {k: np.empty((0, *v), dtype=np.float32) for k, v in input_shape.items()}
    elif isinstance(input_shape, list):
        x = [np.empty((0, *v), dtype=np.float32) for v in input_shape]
    else:
        x = np.empty((0, *input_shape), dtype=np.float32)
    return ArraySplit(x, np.empty((0,), dtype=y_dtype))


class DataSet:
    """A data set: a training split, a validation split (possibly empty) and an optional test split.

    Args:
        train: the training split (at least one sample).
        valid: the validation split; ``None`` gives an empty one (``len(valid) == 0``).
        test: the test split, or ``None``.
        class_names: names of the classes (index = class id) for classification, else ``None``.
        input_scaler: scaling the consumer applies to inputs (fitted on the training split), or ``None``.
        output_scaler: scaling of regression targets, or ``None``.

    Raises:
        TypeError: when a split does not implement :class:`Split`.
        ValueError: for an empty training split or splits with different input shapes.
    """

    def __init__(
        self,
        train: Split,
        valid: Split | None = None,
        test: Split | None = None,
        class_names: list[str] | None = None,
        input_scaler: Scaler | None = None,
        output_scaler: Scaler | None = None,
    ) -> None:
        for name, split in (("train", train), ("valid", valid), ("test", test)):
            if split is not None and not isinstance(split, Split):
                raise TypeError(f"{name} must be a Split, got {type(split).__name__}")
        if len(train) == 0:
            raise ValueError("train must hold at least one sample, got 0")
        if valid is None:
            valid = empty_split(train.input_shape)
        for name, split in (("valid", valid), ("test", test)):
            if split is not None and split.input_shape != train.input_shape:
                raise ValueError(
                    f"{name} must have the training input shape {train.input_shape}, got {split.input_shape}"
                )
        for name, scaler in (("input_scaler", input_scaler), ("output_scaler", output_scaler)):
            if scaler is not None and not isinstance(scaler, Scaler):
                raise TypeError(f"{name} must be a neuro.data.Scaler or None, got {type(scaler).__name__}")
        self.train = train
        self.valid = valid
        self.test = test
        self.class_names = None if class_names is None else check_class_names(class_names)
        self.input_scaler = input_scaler
        self.output_scaler = output_scaler

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input sample, without the batch axis."""
        return self.train.input_shape

    def _fit_input(self, kind: str, method: str) -> DataSet:
        x = self.train.arrays()[0]
        if isinstance(x, (list, tuple, dict)):
            raise ValueError(
                f"{method}() scales the one input of a data set; this one has {len(x)} inputs (scale each "
                "yourself before building the data set)"
            )
        self.input_scaler = Scaler.fit(kind, x)
        return self

    def _fit_output(self, kind: str, method: str) -> DataSet:
        y = self.train.arrays()[1]
        if y.dtype.kind != "f":
            raise ValueError(
                f"{method}() needs float regression targets, got {y.dtype} targets"
                + (" (class ids)" if y.dtype.kind in "iu" else "")
            )
        if self.class_names is not None:  # one-hot rows: predict would unscale probabilities
            raise ValueError(
                f"{method}() needs float regression targets, got the one-hot targets of a classification "
                f"data set ({len(self.class_names)} classes)"
            )
        self.output_scaler = Scaler.fit(kind, y)
        return self

    def normalize_input(self) -> DataSet:
        """Fit a min–max scaling of the inputs to [0, 1] on the training split (see :class:`Scaler`).

        Returns:
            ``self``, with ``input_scaler`` set.
        """
        return self._fit_input("normalize", "normalize_input")

    def standardize_input(self) -> DataSet:
        """Fit a standardisation (mean 0, deviation 1) of the inputs on the training split.

        Returns:
            ``self``, with ``input_scaler`` set.
        """
        return self._fit_input("standardize", "standardize_input")

    def normalize_output(self) -> DataSet:
        """Fit a min–max scaling of the regression targets to [0, 1] on the training split.

        Returns:
            ``self``, with ``output_scaler`` set.

        Raises:
            ValueError: when the targets are class ids rather than float values.
        """
        return self._fit_output("normalize", "normalize_output")

    def standardize_output(self) -> DataSet:
        """Fit a standardisation of the regression targets on the training split.

        Returns:
            ``self``, with ``output_scaler`` set.

        Raises:
            ValueError: when the targets are class ids rather than float values.
        """
        return self._fit_output("standardize", "standardize_output")

    def __repr__(self) -> str:
        test = "None" if self.test is None else str(len(self.test))
        classes = None if self.class_names is None else len(self.class_names)
        return (
            f"{type(self).__name__}(train={len(self.train)}, valid={len(self.valid)}, test={test}, "
            f"input_shape={self.input_shape}, classes={classes})"
        )

    def summary(self, print_fn: Any = print) -> str:
        """Print and return a description: the splits' sizes, the input and target shapes and dtypes, the
        classes with their counts per split, and the scalers with their statistics.

        ``print(data)`` prints the same text; ``repr(data)`` stays one line.

        Args:
            print_fn: called with the text (``None`` to skip printing).

        Returns:
            The description, one item a line.

        Examples:
            >>> import numpy as np
            >>> from neuro.data import TabularDataSet
            >>> x = np.array([[0.0, 10.0], [2.0, 30.0], [4.0, 20.0], [6.0, 40.0]])
            >>> data = TabularDataSet.from_arrays(x, np.array([0, 1, 0, 1]), class_names=["no", "yes"])
            >>> _ = data.standardize_input().summary()
            TabularDataSet
              samples        train 4, valid 0, test none
              inputs         (2,) float32
              targets        class ids, int64
              classes        2 (samples per class in train / valid)
                               no    2 / 0
                               yes   2 / 0
              input scaler   standardize 2 features: mean [3, 25], std [2.236, 11.18]
              output scaler  none
        """
        rows = self._summary_rows()
        width = max(len(label) for label, _ in rows)
        lines = [type(self).__name__]
        for label, text in rows:
            first, *more = text.split("\n")
            lines.append(f"  {label:<{width}}  {first}")
            lines.extend(f"  {'':<{width}}  {line}" for line in more)
        out = "\n".join(lines)
        if print_fn is not None:
            print_fn(out)
        return out

    def __str__(self) -> str:
        return self.summary(print_fn=None)

    def _peek(self) -> tuple[Any, Any]:
        """One training sample as a batch ``(x, y)``, for the summary's shapes and dtypes."""
        return next(iter(self.train.batches(np.arange(1), 1)))

    def _summary_rows(self) -> list[tuple[str, str]]:
        """The summary's ``(label, text)`` rows; subclasses add their own (a text may span lines)."""
        splits = [("train", self.train), ("valid", self.valid)]
        if self.test is not None:
            splits.append(("test", self.test))
        x, y = self._peek()
        sizes = ", ".join(f"{name} {len(split):,}" for name, split in splits)
        rows = [
            ("samples", sizes + ("" if self.test is not None else ", test none")),
            ("inputs", _describe(x)),
            ("targets", _describe_targets(y, self.class_names)),
        ]
        if self.class_names is not None:
            rows.append(("classes", _describe_classes(self.class_names, splits)))
        rows.append(("input scaler", _describe_scaler(self.input_scaler)))
        rows.append(("output scaler", _describe_scaler(self.output_scaler)))
        return rows


def _describe(a: Any) -> str:
    """``(shape,) dtype`` of one sample of a batch (a list or dict of them for several arrays)."""
    if isinstance(a, dict):
        return ", ".join(f"{k}: {_describe(v)}" for k, v in a.items())
    if isinstance(a, (list, tuple)):
        return ", ".join(_describe(v) for v in a)
    a = np.asarray(a)
    return f"{tuple(a.shape[1:])} {a.dtype}"


def _describe_targets(y: Any, class_names: list[str] | None) -> str:
    if isinstance(y, (dict, list, tuple)):
        return _describe(y)
    y = np.asarray(y)
    if y.ndim == 1 and y.dtype.kind in "iu":
        return f"class ids, {y.dtype}"
    if class_names is not None and y.ndim == 2 and y.shape[1] == len(class_names):
        return f"one-hot rows {tuple(y.shape[1:])} {y.dtype}"
    return _describe(y)


_MAX_LISTED = 10


def _describe_classes(names: list[str], splits: list[tuple[str, Split]]) -> str:
    """The class count, then one line per class (at most :data:`_MAX_LISTED`) with its samples per split."""
    counts = []
    for _, split in splits:
        ids = split._class_ids()
        counts.append(None if ids is None else np.bincount(np.asarray(ids), minlength=len(names)))
    known = [(name, c) for (name, _), c in zip(splits, counts, strict=True) if c is not None]
    if not known:
        listed = ", ".join(names[:_MAX_LISTED]) + (", …" if len(names) > _MAX_LISTED else "")
        return f"{len(names)}: {listed}"
    head = f"{len(names)} (samples per class in {' / '.join(name for name, _ in known)})"
    width = max(len(n) for n in names[:_MAX_LISTED])
    columns = [[f"{int(v):,}" for v in c[:_MAX_LISTED]] for _, c in known]
    widths = [max(len(v) for v in column) for column in columns]
    lines = [head]
    for k, name in enumerate(names[:_MAX_LISTED]):
        per = " / ".join(f"{column[k]:>{w}}" for column, w in zip(columns, widths, strict=True))
        lines.append(f"  {name:<{width}}   {per}")
    if len(names) > _MAX_LISTED:
        lines.append(f"  … {len(names) - _MAX_LISTED} more")
    return "\n".join(lines)


def _number(v: float) -> str:
    return f"{v:.4g}"


_STATISTICS = {"normalize": ("min", "range"), "standardize": ("mean", "std")}


def _describe_scaler(scaler: Scaler | None) -> str:
    """A scaler's kind, feature shape and statistics (all of them for up to 8 features, else their range)."""
    if scaler is None:
        return "none"
    names = _STATISTICS[scaler.kind]
    n = scaler.a.size
    what = f"{n} feature{'s' if n != 1 else ''}" if scaler.a.ndim <= 1 else f"features {scaler.a.shape}"
    parts = []
    for name, values in zip(names, (scaler.a, scaler.b), strict=True):
        flat = values.ravel()
        if flat.size <= 8:
            parts.append(f"{name} [{', '.join(_number(v) for v in flat)}]")
        else:
            parts.append(f"{name} {_number(flat.min())} to {_number(flat.max())}")
    return f"{scaler.kind} {what}: {', '.join(parts)}"


def check_class_names(names: Any, what: str = "class_names") -> list[str]:
    """Check class names: a list of distinct names, one per class id (a string is one name, not a list of
    its characters).

    Args:
        names: the names given.
        what: the argument's name, for the errors.

    Returns:
        The names as strings.

    Raises:
        TypeError: for a string or anything that is not a list of names.
        ValueError: for a name given twice.
    """
    if isinstance(names, (str, bytes)) or not hasattr(names, "__iter__"):
        raise TypeError(
            f"{what} must be a list of names, one per class, got {type(names).__name__} {names!r}"
        )
    out = [str(c) for c in names]
    if len(set(out)) != len(out):
        dup = sorted({c for c in out if out.count(c) > 1})
        raise ValueError(f"{what} must name each class once, got {dup} more than once")
    return out
