"""Argument checks of the 2-D layers: pairs of positive integers, paddings, image shapes."""

from __future__ import annotations

from numbers import Integral
from typing import Any

PADDINGS = ("valid", "same")


def to_pair(value: Any, arg: str) -> tuple[int, int]:
    """Return ``value`` as a pair of positive ints (an int ``k`` means ``(k, k)``).

    Args:
        value: an int or a sequence of two ints.
        arg: the argument name, used in the error message.

    Raises:
        ValueError: when ``value`` is not one or two positive integers.
    """
    items = (value, value) if _is_int(value) else value
    try:
        pair = tuple(items) if isinstance(items, (tuple, list)) else ()
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(_is_int(v) and v > 0 for v in pair):
        raise ValueError(f"{arg} must be a positive integer or a pair of positive integers, got {value!r}")
    return int(pair[0]), int(pair[1])


def _is_int(v: Any) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def padding_arg(padding: Any) -> str:
    """Return ``padding`` lower-cased if it is ``"valid"`` or ``"same"``.

    Raises:
        ValueError: for anything else.
    """
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    return padding.lower()


def check_image_shape(input_shape: tuple[int, ...], layer: str) -> tuple[int, int, int]:
    """Check that a per-sample shape is ``(H, W, C)`` with positive sizes and return it.

    Raises:
        ValueError: for another rank or a size below 1.
    """
    if len(input_shape) != 3 or any(d < 1 for d in input_shape):
        raise ValueError(
            f"{layer} expects input_shape (height, width, channels) with positive sizes, "
            f"got input_shape={input_shape}"
        )
    h, w, c = input_shape
    return h, w, c
