"""The one module that decides which array library neuro computes with.

Every layer, loss and optimizer reaches array math through ``backend.xp`` (looked up at call time, never
bound at import), so switching to CuPy with :func:`use` moves the whole library to the GPU without touching
layer code. The floating-point type of parameters and activations is chosen here as well.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

#: The active array module: ``numpy`` or ``cupy``.
xp: ModuleType = np

_DTYPES = {"float32": np.float32, "float64": np.float64}
_dtype: type[np.floating] = np.float32


def use(name: str) -> None:
    """Select the array library: ``"numpy"`` (CPU) or ``"cupy"`` (NVIDIA GPU).

    Args:
        name: ``"numpy"`` or ``"cupy"``.

    Raises:
        ValueError: for another name.
        ImportError: when CuPy is asked for but not installed.
    """
    global xp
    if name == "numpy":
        xp = np
    elif name == "cupy":
        try:
            xp = importlib.import_module("cupy")
        except ImportError as exc:  # pragma: no cover - depends on the machine
            raise ImportError(
                "backend 'cupy' needs CuPy: pip install 'neuro[gpu]' on a machine with CUDA"
            ) from exc
    else:
        raise ValueError(f"name must be 'numpy' or 'cupy', got {name!r}")


def backend_name() -> str:
    """Return the name of the active array library (``"numpy"`` or ``"cupy"``)."""
    return xp.__name__


def set_dtype(dtype: str | type | np.dtype) -> None:
    """Set the floating-point type of new parameters and of data fed to networks.

    Args:
        dtype: ``"float32"`` (the default) or ``"float64"`` (used by gradient checks).

    Raises:
        ValueError: for any other type.
    """
    global _dtype
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if key not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    _dtype = _DTYPES[key]


def get_dtype() -> type[np.floating]:
    """Return the current floating-point type (``numpy.float32`` by default)."""
    return _dtype


class dtype_scope:
    """Context manager that sets the dtype for a block and restores the previous one.

    Example:
        >>> with dtype_scope("float64"):
        ...     pass
    """

    def __init__(self, dtype: str | type) -> None:
        self._new = dtype
        self._old = _dtype

    def __enter__(self) -> None:
        self._old = _dtype
        set_dtype(self._new)

    def __exit__(self, *exc: object) -> None:
        set_dtype(self._old)


def asarray(a: Any, dtype: Any = None) -> Any:
    """Convert ``a`` to an array of the active library (no copy when nothing changes).

    Args:
        a: array-like (NumPy or CuPy array, list, scalar).
        dtype: target type; ``None`` keeps floating arrays of the current dtype and converts others to it.
    """
    return xp.asarray(a, dtype=_dtype if dtype is None else dtype)


def to_numpy(a: Any) -> np.ndarray:
    """Return ``a`` as a NumPy array (copies from the GPU when needed)."""
    if isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)
    return get() if callable(get) else np.asarray(a)


def uniform(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any = None) -> Any:
    """Draw uniform numbers in [0, 1) from ``rng`` onto the active device.

    Drawing always goes through the NumPy generator so that a seed gives the same numbers on every backend.
    """
    dt = _dtype if dtype is None else dtype
    return xp.asarray(rng.random(shape, dtype=dt))
