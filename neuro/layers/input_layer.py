"""Where a graph starts: :func:`Input` makes the symbolic tensor a model is built from."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro import _validation as check
from neuro.layers.base import Layer, Node, SymbolicTensor

#: The dtypes an input may have: ``"float"`` (the model's float32 or float64) or integers (token ids).
INPUT_DTYPES = ("float", "float32", "float64", "int32", "int64")


def input_dtype(dtype: Any) -> str:
    """Normalise an input's dtype: ``None`` and the float types are ``"float"`` (the model's own type).

    Args:
        dtype: ``None``, ``"float"``, ``"float32"``, ``"float64"``, ``"int32"``, ``"int64"`` or a NumPy type.

    Returns:
        ``"float"`` or ``"int32"`` / ``"int64"``.

    Raises:
        ValueError: for another type.
    """
    if dtype is None:
        return "float"
    try:
        name = dtype if dtype == "float" else np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in INPUT_DTYPES:
        raise ValueError(f"dtype must be one of {list(INPUT_DTYPES)} (or None), got {dtype!r}")
    return "float" if name.startswith("float") else name


class InputLayer(Layer):
    """The producer of an :func:`Input` tensor: no computation, only a name, a shape and a dtype.

    Args:
        shape: the shape of one sample (no batch axis).
        dtype: ``"float"`` or an integer type (see :func:`input_dtype`).
        name: the input's name (keys of the dicts ``fit`` and ``predict`` take).
    """

    def __init__(self, shape: Any, dtype: Any = None, name: str | None = None) -> None:
        super().__init__(name=name)
        self.shape = check.shape_tuple(shape, "shape")
        self.dtype = input_dtype(dtype)
        self.input_shape = self.output_shape = self.shape
        self.built = True
        node = Node(self, [], False, [self.shape], [self.dtype], False)
        self._nodes.append(node)
        self.tensor: SymbolicTensor = node.outputs[0]

    def default_name(self) -> str:
        return "input"

    def forward(self, x: Any, training: bool = False, rng: Any = None) -> tuple[Any, Any]:
        return x, None

    def get_config(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype, "name": self.name}


def Input(shape: Any, dtype: Any = None, name: str | None = None) -> SymbolicTensor:  # noqa: N802 - Keras's name
    """A symbolic input of a model: call layers on it and give it to :class:`neuro.Model`.

    Args:
        shape: the shape of one sample, without the batch axis: ``(features,)``, ``(H, W, C)``, ``(T,)`` for
            token ids, ``(T, features)`` for sequences; an int ``n`` means ``(n,)``.
        dtype: ``None`` (the model's floating type, float32 unless set otherwise), or ``"int32"`` /
            ``"int64"`` for integer inputs such as token ids, which stay integers up to the first layer that
            needs floats.
        name: the input's name; ``fit``, ``evaluate`` and ``predict`` take a dict keyed by these names for a
            model with several inputs. Default ``"input"`` (made unique in a model: ``input_1``, …).

    Returns:
        The symbolic tensor ``(None, *shape)``.

    Raises:
        ValueError: for a shape that is not positive integers, or an unknown dtype.
        TypeError: for a ``name`` that is not a string.

    Example:
        >>> import neuro
        >>> x = neuro.Input((28, 28, 1), name="image")
        >>> x.shape
        (None, 28, 28, 1)
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string or None, got {type(name).__name__}")
    return InputLayer(shape, dtype, name).tensor
