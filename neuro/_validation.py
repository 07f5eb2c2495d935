"""Argument checks shared by the public API: each error names the argument, the expected and the actual."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro import backend


def positive_int(value: Any, name: str, error: type[Exception] = TypeError) -> int:
    """Return ``value`` as int if it is a positive integer, else raise (``error`` for a non-integer, which is
    TypeError by default, and ValueError for one below 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise error(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(value: Any, name: str) -> int:
    """Return ``value`` as int if it is an integer >= 0, else raise (TypeError / ValueError)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def fraction(value: Any, name: str) -> float:
    """Return ``value`` as float if it is a number in [0, 1), else raise ValueError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not (0.0 <= value < 1.0)
    ):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def unit_interval(y: Any, name: str) -> None:
    """Raise ValueError unless every value of ``y`` lies in [0, 1] (targets of binary cross-entropy)."""
    xp = backend.get_array_module(y)
    lo, hi = backend.to_numpy(xp.stack([y.min(), y.max()]).astype(np.float64))
    if lo < 0 or hi > 1:
        raise ValueError(
            f"{name} must hold labels in [0, 1] for binary cross-entropy, got values in [{lo:g}, {hi:g}]; "
            "class ids of more than two classes need a softmax output and a categorical loss"
        )


def shape_tuple(value: Any, name: str) -> tuple[int, ...]:
    """Return ``value`` (an int or a sequence of ints, all positive) as a tuple."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    try:
        out = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of positive integers, got {value!r}") from None
    if any(d is None for d in out):  # Keras's variable length
        raise ValueError(
            f"{name} must be a tuple of positive integers, got {value!r}: neuro's shapes are fixed (pad "
            "sequences to one length, and mark the padding with Embedding(mask_zero=True) or Masking)"
        )
    if not out or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d <= 0 for d in out):
        raise ValueError(f"{name} must be a tuple of positive integers, got {value!r}")
    return tuple(int(d) for d in out)


def features(x: Any, input_shape: tuple[int, ...], name: str = "x", dtype: Any = None) -> Any:
    """Check a batch of inputs and return it as an array of the compute dtype (copying only if needed).

    An integer ``dtype`` (an input of token ids) takes integers only: they keep their values (cast to that
    type), and floats are refused rather than truncated.

    Raises:
        TypeError: non-numeric data, or floats for an integer input.
        ValueError: wrong shape, or NaN / inf values.
    """
    if not backend.is_array(x):  # lists, pandas objects (by position, not by index label), ...
        try:
            x = np.asarray(x)
        except ValueError as exc:
            if "inhomogeneous" not in str(exc):
                raise
            raise ValueError(
                f"{name} holds sequences of different lengths (a ragged list); pad them to one length first "
                "(with 0 for token ids, and Embedding(mask_zero=True) or Masking to skip the padding)"
            ) from None
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {x.dtype}")
    if dtype is not None and np.dtype(dtype).kind in "iu" and x.dtype.kind not in "iub":
        raise TypeError(
            f"{name} must hold integer token ids for an input of dtype {np.dtype(dtype).name}, got dtype "
            f"{x.dtype}; convert them with x.astype(int) if they are whole numbers"
        )
    if x.shape[1:] != input_shape or x.ndim != len(input_shape) + 1:
        shown = "(N, " + ", ".join(str(d) for d in input_shape) + ")"
        hint = ""
        if len(input_shape) >= 2 and tuple(x.shape[1:]) == (input_shape[-1], *input_shape[:-1]):
            order = ", ".join(str(k) for k in (0, *range(2, len(input_shape) + 1), 1))
            hint = (
                f" (neuro is channels-last: if x is in PyTorch's channels-first order, x.transpose({order}) "
                "turns it)"
            )
        raise ValueError(f"{name} must have shape {shown}, got {tuple(x.shape)}{hint}")
    if len(x) == 0:
        raise ValueError(f"{name} must hold at least one sample, got shape {tuple(x.shape)}")
    backend.get_array_module(x)  # an array of a known device
    dt = backend.get_dtype() if dtype is None else dtype
    if x.dtype != dt:
        target = np.dtype(dt)
        if target.kind in "iu" and x.dtype.kind in "iu" and not np.can_cast(x.dtype, target):
            lo, hi = int(backend.to_numpy(x.min())), int(backend.to_numpy(x.max()))
            info = np.iinfo(target)
            if lo < info.min or hi > info.max:  # a cast would wrap them into range
                raise ValueError(
                    f"{name} holds integers from {lo} to {hi}, which do not fit the input's dtype "
                    f"{target.name} (from {info.min} to {info.max})"
                )
        x = x.astype(dt)
    if x.dtype.kind == "f" and not all_finite(x):
        raise ValueError(f"{name} contains NaN or inf values")
    return x


def all_finite(x: Any) -> bool:
    """Whether every element of the float array ``x`` is finite (exact; one read of a device).

    A large contiguous float32 or float64 NumPy array is checked first with one dot product ``x·x`` (BLAS, no
    temporary array: twice as fast as the element-wise check): a NaN or an infinity makes it NaN or +inf
    (squares never cancel), so a finite result proves every element finite. Only when it is not finite (a
    non-finite element, or finite values so large that their squares overflow) does the element-wise check
    decide.

    Args:
        x: a float array on any device.

    Returns:
        The answer.
    """
    if type(x) is np.ndarray:
        if x.size >= 4096 and x.dtype in (np.float32, np.float64) and x.flags.c_contiguous:
            flat = x.reshape(-1)
            with np.errstate(over="ignore", invalid="ignore"):
                if np.isfinite(np.dot(flat, flat)):
                    return True
        return bool(np.isfinite(x).all())
    xp = backend.get_array_module(x)
    return bool(backend.to_numpy(xp.isfinite(x).all()))


def targets(
    y: Any, n: int, output_shape: tuple[int, ...], categorical: bool, name: str = "y", dtype: Any = None
) -> Any:
    """Check targets for ``n`` samples against the network output shape; return them as an array.

    Categorical losses take class ids ``(N,)`` in range (or ``(N, 1)``, as Keras's sparse losses do) or rows
    ``(N, C)``; other losses take the output shape (``(N,)`` is accepted for a single output).
    """
    if not backend.is_array(y):
        y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {y.dtype}")
    if len(y) != n:
        raise ValueError(f"{name} must have one row per sample of x ({n}), got {len(y)}")
    xp = backend.get_array_module(y)
    dt = backend.get_dtype() if dtype is None else dtype
    if y.dtype.kind == "f" and not all_finite(y):
        raise ValueError(f"{name} contains NaN or inf values")
    out = tuple(output_shape)
    trailing_one = y.ndim == len(out) + 1 and y.shape[-1] == 1 and tuple(y.shape[1:-1]) == out[:-1]
    if categorical and out[-1] > 1 and trailing_one:
        y = y[..., 0]  # class ids with a trailing axis of 1, as Keras's sparse losses take them: (N, 1)
    if categorical and len(out) >= 2:  # a sequence (or grid) of class distributions: ids or rows per position
        lead = out[:-1]
        shown = ", ".join(str(d) for d in lead)
        if tuple(y.shape[1:]) == lead:
            if y.dtype.kind == "f":
                if not backend.to_numpy(xp.all(y == xp.floor(y))):
                    raise ValueError(f"{name} class ids must be integers, got non-integer values")
            y = y.astype(np.int64)
            lo, hi = (int(v) for v in backend.to_numpy(xp.stack([y.min(), y.max()])))
            if lo < 0 or hi >= out[-1]:
                raise ValueError(
                    f"{name} class ids must be in [0, {out[-1] - 1}], got values in [{lo}, {hi}]"
                )
            return y
        if tuple(y.shape[1:]) == out:
            return y.astype(dt, copy=False)
        raise ValueError(
            f"{name} must be class ids of shape (N, {shown}) or rows of shape (N, {shown}, {out[-1]}) for an "
            f"output of shape (None, {shown}, {out[-1]}), got shape {tuple(y.shape)}"
        )
    if categorical and len(out) == 1:
        c = out[0]
        if y.ndim == 1:
            if y.dtype.kind == "f":
                if not backend.to_numpy(xp.all(y == xp.floor(y))):
                    raise ValueError(f"{name} class ids must be integers, got non-integer values")
                y = y.astype(np.int64)
            if y.dtype.kind == "b":
                y = y.astype(np.int64)
            lo, hi = (int(v) for v in backend.to_numpy(xp.stack([y.min(), y.max()])))
            if lo < 0 or hi >= c:
                raise ValueError(f"{name} class ids must be in [0, {c - 1}], got values in [{lo}, {hi}]")
            return y
        if y.ndim == 2 and y.shape[1] == c:
            return y.astype(dt, copy=False)
        raise ValueError(
            f"{name} must be class ids of shape (N,) or one-hot rows of shape (N, {c}), "
            f"got shape {tuple(y.shape)}"
        )
    if tuple(y.shape[1:]) == out:
        return y.astype(dt, copy=False)
    if out[-1] == 1 and tuple(y.shape[1:]) == out[:-1]:  # (N,) for (N, 1), (N, T) for (N, T, 1): as Keras
        return y.reshape(*y.shape, 1).astype(dt, copy=False)
    shown = "(N, " + ", ".join(str(d) for d in out) + ")"
    raise ValueError(f"{name} must have shape {shown}, got {tuple(y.shape)}")
