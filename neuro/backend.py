"""The one module that decides which array library neuro computes with.

Every layer, loss and optimizer reaches array math through ``backend.xp`` (looked up at call time, never
bound at import), so switching to CuPy with :func:`use` moves the whole library to the GPU without touching
layer code. The floating-point type of parameters and activations is chosen here as well.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


def array_module(a: Any) -> ModuleType:
    """The array library that owns ``a``: NumPy for NumPy arrays (data still on the host), else ``xp``."""
    return np if isinstance(a, np.ndarray) else xp


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


# -- threads for elementwise work ---------------------------------------------------------------------------
# NumPy's BLAS runs matrix products on several cores, but its elementwise loops run on one. They release the
# GIL, so the large batch-shaped elementwise passes (col2im, pooling, ReLU, dropout) are split along the batch
# axis over a small thread pool. Work too small to pay for the hand-off runs inline.

#: Below this many elements a pass runs on the calling thread.
MIN_PARALLEL_ELEMENTS = 1 << 18


def _default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_num_threads = _default_threads()
_pool: ThreadPoolExecutor | None = None


def set_num_threads(n: int) -> None:
    """Set how many threads neuro's elementwise passes may use (BLAS keeps its own setting).

    Args:
        n: a positive number of threads; 1 runs everything on the calling thread.

    The default is ``OMP_NUM_THREADS`` if set, else the number of cores this process may run on.
    """
    global _num_threads, _pool
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if n != _num_threads and _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    _num_threads = n


def get_num_threads() -> int:
    """The number of threads neuro's elementwise passes may use."""
    return _num_threads


def parallel_for(fn: Callable[[int, int], object], n: int, elements: int) -> None:
    """Call ``fn(start, stop)`` over contiguous parts of ``range(n)`` (the batch axis), in parallel.

    Args:
        fn: does the work for samples ``start:stop``; parts never overlap, so it may write its own slice.
        n: number of samples.
        elements: total number of array elements the work touches, to decide whether threads pay.
    """
    global _pool
    threads = min(_num_threads, n)
    if threads <= 1 or elements < MIN_PARALLEL_ELEMENTS or xp is not np:
        fn(0, n)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_num_threads, thread_name_prefix="neuro")
    bounds = [n * k // threads for k in range(threads + 1)]
    futures = [_pool.submit(fn, bounds[k], bounds[k + 1]) for k in range(1, threads)]
    fn(bounds[0], bounds[1])
    for f in futures:
        f.result()
