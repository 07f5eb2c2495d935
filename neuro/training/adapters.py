"""Data adapters: whatever ``fit``, ``evaluate`` and ``predict`` are given, turned into host batches.

This module owns the shapes of data between the user and the training loop: it reads arrays (one per input
or output, as an array, a list or a dict keyed by name), data set splits and data sets, checks them against
the model's inputs and outputs (through the model's ``prepare_inputs`` / ``prepare_targets``), and yields
batches ``(xs, ys)``: a list with one host array per input and one per output, in the model's order. It
knows nothing of devices, losses or optimizers; the loop (:mod:`neuro.training.loop`) moves each batch to the
model's device once.

A *source* is anything with ``len(source)`` and ``source.batches(order, batch_size, augment=False,
rng=None)``, yielding ``(xs, ys)`` for the samples ``order`` in batches.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro.data.dataset import DataSet, Split


class ArraySource:
    """Checked arrays (in the model's dtype and scaling) read in batches by index.

    Args:
        xs: one array per input, each ``(N, ...)``.
        ys: one array per output, each with N rows.
    """

    def __init__(self, xs: list[Any], ys: list[Any]) -> None:
        self.xs, self.ys = xs, ys

    def __len__(self) -> int:
        return len(self.xs[0])

    def batches(self, order: np.ndarray, batch_size: int, augment: bool = False, rng: Any = None) -> Any:
        """Yield ``(xs, ys)`` for the samples ``order`` in batches (slices when ``order`` is the identity).

        Args:
            order: sample indices.
            batch_size: samples per batch.
            augment: unused (arrays are not augmented).
            rng: unused.

        Yields:
            ``(xs, ys)``: one array per input, one per output.
        """
        contiguous = len(order) == len(self) and bool(np.all(order[1:] > order[:-1])) if len(order) else False
        for s in range(0, len(order), batch_size):
            if contiguous:  # the data in its order: slices, no copy
                idx: Any = slice(s, s + batch_size)
            else:
                idx = order[s : s + batch_size]
            yield [x[idx] for x in self.xs], [y[idx] for y in self.ys]

    def head(self, n: int) -> ArraySource:
        """The first samples.

        Args:
            n: how many.

        Returns:
            A source of the samples ``[0, n)``.
        """
        return ArraySource([x[:n] for x in self.xs], [y[:n] for y in self.ys])

    def tail(self, n: int) -> ArraySource:
        """The last samples.

        Args:
            n: the first sample kept.

        Returns:
            A source of the samples from ``n`` on.
        """
        return ArraySource([x[n:] for x in self.xs], [y[n:] for y in self.ys])


class SplitSource:
    """A data set split whose host batches are checked, converted and scaled one batch at a time.

    Args:
        split: the split.
        model: the model whose inputs and outputs the batches must fit.

    Raises:
        ValueError: when the split's sample shape is not the model's input shape.
    """

    def __init__(self, split: Split, model: Any) -> None:
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


def training_sources(model: Any, x: Any, y: Any, validation_data: Any, split: float) -> tuple[Any, Any]:
    """The training and validation sources of ``fit``; a data set also hands over its class names and
    scalers to the model.

    Args:
        model: the model being trained.
        x: arrays (one, a list or a dict), a data set split or a :class:`~neuro.data.DataSet`.
        y: targets (one, a list or a dict), or ``None`` with a data set.
        validation_data: ``None``, ``(x_val, y_val)`` or a split.
        split: the ``validation_split`` fraction (0 for none).

    Returns:
        ``(train, valid)``; ``valid`` is ``None`` without validation data.

    Raises:
        ValueError: for arguments that do not go together (``y`` with a data set, both validation
            arguments, a split leaving no sample on one side).
        TypeError: for validation data of another kind.
    """
    if isinstance(x, DataSet):
        if y is not None:
            raise ValueError("y must be None when x is a DataSet (it holds the targets)")
        if split:
            raise ValueError("validation_split does not apply to a DataSet; give it a valid_frac instead")
        model.adopt_data_set(x)
        train: Any = SplitSource(x.train, model)
        if validation_data is None and len(x.valid):
            return train, SplitSource(x.valid, model)
    elif isinstance(x, Split):
        if y is not None:
            raise ValueError("y must be None when x is a data set split (it holds the targets)")
        if split:
            raise ValueError("validation_split does not apply to a data set split; pass validation_data")
        train = SplitSource(x, model)
    else:
        source = array_source(model, x, y)
        if split:
            if validation_data is not None:
                raise ValueError("give validation_data or validation_split, not both")
            n = len(source)
            n_val = int(n * split)
            if n_val < 1 or n_val >= n:
                raise ValueError(
                    f"validation_split={split} leaves {n - n_val} training and {n_val} "
                    f"validation samples of {n}; both must be at least 1"
                )
            return source.head(n - n_val), source.tail(n - n_val)
        train = source
    if validation_data is None:
        return train, None
    if isinstance(validation_data, Split):
        return train, SplitSource(validation_data, model)
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise TypeError("validation_data must be a tuple (x_val, y_val) or a data set split")
    return train, array_source(model, *validation_data, name="val_")


def evaluation_source(model: Any, x: Any, y: Any) -> Any:
    """What ``evaluate`` reads: arrays, a split, or a data set's test split.

    Args:
        model: the model.
        x: arrays, a split or a data set.
        y: targets, or ``None`` with a split or data set.

    Returns:
        A source.

    Raises:
        ValueError: for a data set without a test split, or ``y`` with a split.
    """
    if isinstance(x, DataSet):
        if x.test is None:
            raise ValueError("x is a DataSet without a test split; pass a split (data.valid) or arrays")
        x = x.test
    if isinstance(x, Split):
        if y is not None:
            raise ValueError("y must be None when x is a data set split (it holds the targets)")
        return SplitSource(x, model)
    return array_source(model, x, y)


def array_source(model: Any, x: Any, y: Any, name: str = "") -> ArraySource:
    """Checked arrays as a source.

    Args:
        model: the model they are for.
        x: inputs (an array, a list or a dict by input name).
        y: targets (an array, a list or a dict by output name).
        name: prefix of the argument names in errors (``"val_"``).

    Returns:
        The source.

    Raises:
        TypeError: when ``y`` is missing.
    """
    if y is None:
        raise TypeError(f"{name}y must be given with arrays {name}x (only a data set holds its targets)")
    xs = model.prepare_inputs(x, f"{name}x")
    return ArraySource(xs, model.prepare_targets(y, len(xs[0]), f"{name}y"))
