"""The strict stand-in device: NumPy underneath, but as unforgiving about host transfers as a GPU.

A :class:`StrictArray` wraps a NumPy array and behaves like a CuPy array in the ways that matter for finding
hidden device-to-host traffic on a machine without a GPU:

- it refuses every implicit conversion to the host: ``numpy.asarray(a)`` (``__array__``), ``float(a)``,
  ``int(a)``, ``bool(a)``, ``a.item()``, ``a.tolist()``, ``a.tobytes()``, formatting its values;
- it refuses to be mixed with NumPy arrays, in operators (``a + numpy_array``), in NumPy's ufuncs
  (``numpy.add(a, numpy_array)``) and in functions of the strict module (``module.add(a, numpy_array)``);
  Python and NumPy scalars are allowed, as CuPy allows them, and a NumPy ufunc of strict arrays and
  scalars runs on the device (as ``numpy.exp(cupy_array)`` does on CuPy);
- NumPy's other functions refuse it (``numpy.sum(a)``, ``numpy.concatenate``…): device code calls the array
  module it got from ``get_array_module``, never ``numpy`` directly.

The one way to the host is :func:`neuro.backend.to_numpy`, which counts each read. The reads CuPy makes by
itself also count: its functions whose result size depends on the values (``nonzero``, ``flatnonzero``,
``argwhere``, ``bincount``, ``unique`` and the set functions, ``compress``, ``extract``, ``where`` of one
argument, as functions or methods) and indexing
with a boolean mask (reading or assigning) read a size back before they return. :data:`module` is the
array module of the device (what ``get_array_module`` returns for strict arrays): every attribute of NumPy,
with functions that unwrap strict arrays, call NumPy and wrap the results; ``module.asarray(numpy_array)``
is the host-to-device copy.
"""

from __future__ import annotations

import threading
import types
from typing import Any

import numpy as np

_lock = threading.Lock()
_reads = 0


class HostTransferError(TypeError):
    """An implicit read of a strict-device array by the host, or a mix of device and host arrays."""


def _refuse(what: str) -> HostTransferError:
    return HostTransferError(
        f"{what} would copy a strict-device array to the host implicitly; use neuro.backend.to_numpy(a)"
    )


def read(a: StrictArray) -> np.ndarray:
    """Copy ``a`` to the host and count the read (used by ``neuro.backend.to_numpy`` only)."""
    global _reads
    with _lock:
        _reads += 1
    return a._a.copy()


def _count_read() -> None:
    """Count a read the device makes by itself: CuPy's functions whose result size depends on the values
    (``nonzero``, ``bincount``...) read a count back to the host before they return (CuPy's documentation:
    "this function may synchronize the device")."""
    global _reads
    with _lock:
        _reads += 1


#: Functions that read from the device on CuPy (each call counts one read here).
_SYNCING = frozenset(
    {
        "nonzero", "flatnonzero", "argwhere", "bincount", "unique", "compress", "extract",
        "setdiff1d", "intersect1d", "union1d", "setxor1d", "unique_values", "unique_counts",
        "unique_inverse", "unique_all", "trim_zeros",
    }
)  # fmt: skip


def _count_mask(key: Any) -> None:
    """Indexing with a boolean mask, read or written, counts a read: CuPy counts the mask's true values on the
    host to shape the selection (``int(mask_scanned[-1])``)."""
    keys = key if isinstance(key, tuple) else (key,)
    if any(isinstance(k, StrictArray) and k._a.dtype == bool for k in keys):
        _count_read()


def reads() -> int:
    """The number of device-to-host reads so far."""
    return _reads


def wrap(x: Any) -> Any:
    """Wrap NumPy results as strict arrays (scalars become 0-d arrays, as reductions on a GPU do)."""
    if isinstance(x, np.ndarray):
        return StrictArray(x)
    if isinstance(x, np.generic):
        return StrictArray(np.asarray(x))
    if isinstance(x, tuple):
        return tuple(wrap(v) for v in x)
    if isinstance(x, list):
        return [wrap(v) for v in x]
    return x


def _unwrap(x: Any, where: str, host_ok: bool = False) -> Any:
    if isinstance(x, StrictArray):
        return x._a
    if isinstance(x, np.ndarray):
        if host_ok:
            return x
        raise HostTransferError(
            f"{where} mixes a NumPy array of shape {x.shape} with strict-device arrays; move it with "
            "neuro.backend.to_device first"
        )
    if isinstance(x, (tuple, list)):
        return type(x)(_unwrap(v, where, host_ok) for v in x)
    if isinstance(x, slice):
        return slice(_unwrap(x.start, where), _unwrap(x.stop, where), _unwrap(x.step, where))
    return x


def _unwrap_kwargs(kwargs: dict[str, Any], where: str) -> dict[str, Any]:
    return {k: _unwrap(v, where) for k, v in kwargs.items()}


class StrictArray:
    """A NumPy array on the strict stand-in device (see the module docstring)."""

    __slots__ = ("_a", "__weakref__")
    __hash__ = None  # type: ignore[assignment]

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        where = f"numpy.{ufunc.__name__}"
        args = _unwrap(inputs, where)
        kw = _unwrap_kwargs(kwargs, where)
        return wrap(getattr(ufunc, method)(*args, **kw))

    def __init__(self, a: np.ndarray) -> None:
        self._a = a

    # -- host conversions: refused -----------------------------------------------------------------------
    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise _refuse("numpy.asarray() of a strict array")

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        raise _refuse(f"numpy.{getattr(func, '__name__', func)}() of a strict array")

    def __float__(self) -> float:
        raise _refuse("float()")

    def __int__(self) -> int:
        raise _refuse("int()")

    def __index__(self) -> int:
        raise _refuse("using a strict array as an index")

    def __complex__(self) -> complex:
        raise _refuse("complex()")

    def __bool__(self) -> bool:
        raise _refuse("bool()")

    def __format__(self, spec: str) -> str:
        raise _refuse("formatting")

    def item(self, *args: Any) -> Any:
        """Refused: use ``neuro.backend.to_numpy``."""
        raise _refuse(".item()")

    def tolist(self) -> Any:
        """Refused: use ``neuro.backend.to_numpy``."""
        raise _refuse(".tolist()")

    def tobytes(self, *args: Any) -> bytes:
        """Refused: use ``neuro.backend.to_numpy``."""
        raise _refuse(".tobytes()")

    def __repr__(self) -> str:
        return f"StrictArray(shape={self._a.shape}, dtype={self._a.dtype})"

    __str__ = __repr__

    # -- metadata (on the host already, as on a GPU) -------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._a.shape

    @shape.setter
    def shape(self, value: tuple[int, ...]) -> None:
        self._a.shape = value

    @property
    def dtype(self) -> np.dtype:
        return self._a.dtype

    @property
    def ndim(self) -> int:
        return self._a.ndim

    @property
    def size(self) -> int:
        return self._a.size

    @property
    def itemsize(self) -> int:
        return self._a.itemsize

    @property
    def nbytes(self) -> int:
        return self._a.nbytes

    @property
    def strides(self) -> tuple[int, ...]:
        return self._a.strides

    @property
    def flags(self) -> Any:
        return self._a.flags

    @property
    def T(self) -> StrictArray:  # noqa: N802 - NumPy's name
        return StrictArray(self._a.T)

    @property
    def base(self) -> Any:
        return None if self._a.base is None else StrictArray(self._a.base)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Any:
        for row in self._a:
            yield wrap(row)

    # -- indexing --------------------------------------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        _count_mask(key)
        return wrap(self._a[_unwrap(key, "indexing")])

    def __setitem__(self, key: Any, value: Any) -> None:
        _count_mask(key)
        self._a[_unwrap(key, "indexing")] = _unwrap(value, "assignment")

    # -- methods: NumPy's, with strict arrays in and out ---------------------------------------------------
    _REFUSED = frozenset(
        {"data", "ctypes", "__array_interface__", "__array_struct__", "tofile", "dump", "dumps"}
    )

    def __getattr__(self, name: str) -> Any:
        if name in StrictArray._REFUSED:
            raise _refuse(f".{name}")
        attr = getattr(self._a, name)
        if not callable(attr):
            return wrap(attr)

        def method(*args: Any, **kwargs: Any) -> Any:
            where = f"StrictArray.{name}()"
            if name in _SYNCING:  # a.compress(mask), as the function
                _count_read()
            return wrap(attr(*_unwrap(args, where), **_unwrap_kwargs(kwargs, where)))

        return method


def _binary(name: str, reflected: bool = False) -> Any:
    op = getattr(np.ndarray, name)

    def f(self: StrictArray, other: Any) -> Any:
        if isinstance(other, np.ndarray):
            raise HostTransferError(
                f"operator {name} mixes a strict-device array with a NumPy array of shape {other.shape}"
            )
        if not isinstance(other, (StrictArray, int, float, bool, complex, np.generic)):
            return NotImplemented
        result = op(self._a, _unwrap(other, name))
        if result is NotImplemented:
            return result
        if name.startswith("__i"):
            return self
        return wrap(result)

    f.__name__ = name
    return f


for _name in (
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "matmul",
    "and",
    "or",
    "xor",
    "lshift",
    "rshift",
):
    for _form in (f"__{_name}__", f"__r{_name}__", f"__i{_name}__"):
        if hasattr(np.ndarray, _form):
            setattr(StrictArray, _form, _binary(_form))
for _form in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
    setattr(StrictArray, _form, _binary(_form))


def _unary(name: str) -> Any:
    op = getattr(np.ndarray, name)

    def f(self: StrictArray) -> Any:
        return wrap(op(self._a))

    f.__name__ = name
    return f


for _form in ("__neg__", "__pos__", "__abs__", "__invert__"):
    setattr(StrictArray, _form, _unary(_form))


# -- the array module --------------------------------------------------------------------------------------
#: Functions that copy host data to the device: they accept NumPy arrays (as ``cupy.asarray`` does).
_HOST_TO_DEVICE = frozenset({"asarray", "array", "asanyarray", "ascontiguousarray"})


class _Namespace(types.ModuleType):
    """A module whose attributes are NumPy's (or a NumPy submodule's) with strict arrays in and out."""

    def __init__(self, name: str, source: Any) -> None:
        super().__init__(name)
        self._source = source

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._source, name)
        if isinstance(attr, types.ModuleType):
            sub = _Namespace(f"{self.__name__}.{name}", attr)
            setattr(self, name, sub)
            return sub
        if isinstance(attr, type) or not callable(attr):
            return attr  # dtypes, constants, classes
        host_ok = name in _HOST_TO_DEVICE
        qual = f"{self.__name__}.{name}"
        syncing = self.__name__ == "strict" and name in _SYNCING

        def function(*args: Any, **kwargs: Any) -> Any:
            if syncing or (name == "where" and len(args) + len(kwargs) == 1):
                _count_read()
            return wrap(attr(*_unwrap(args, qual, host_ok), **_unwrap_kwargs(kwargs, qual)))

        function.__name__ = name
        setattr(self, name, function)
        return function


#: The strict device's array module (``neuro.backend.get_device("strict")``).
module = _Namespace("strict", np)
