"""The one module that knows which array libraries exist: NumPy, CuPy, and the strict stand-in device.

Arrays choose their library. Layers, losses, activations and optimizers never consult a global: they call
:func:`get_array_module` on the arrays they are given, in the spirit of Chainer's
``chainer.backend.get_array_module``, and compute with what it returns. A :class:`~neuro.models.Network`
lives on one device and moves as a whole with ``net.to("cupy")`` / ``net.to("numpy")``.

Three devices are known by name:

- ``"numpy"`` (alias ``"cpu"``): NumPy arrays in host memory.
- ``"cupy"`` (aliases ``"gpu"``, ``"cuda"``): CuPy arrays on the current NVIDIA GPU. CuPy is imported the
  first time it is asked for, never at ``import neuro``; this module is the only one that imports it.
- ``"strict"``: a stand-in for a GPU that runs on the CPU (:mod:`neuro._strict`). Its arrays are NumPy arrays
  underneath but refuse every implicit trip to the host (``__array__``, ``float()``, ``.item()``, ``bool()``,
  mixing with NumPy arrays); only :func:`to_numpy` reads them, and it counts the reads
  (:func:`host_reads`). The test suite runs layers and training on it to prove that a step makes no hidden
  host transfers.

The default floating-point type of new networks (float32) is chosen here as well, and the small thread pool
that splits large elementwise passes along the batch axis on the CPU.

**Kernel sets.** Work on NumPy arrays runs one of two kernel sets: ``"numpy"`` (NumPy's own functions, what
CuPy and the strict device run too) or ``"numba"``: compiled loops for the passes NumPy does poorly (the
fused optimizer update with its finiteness count, pooling, the convolution's window copies, fused activation
backward passes, the recurrent cells' gates, the embedding's scatter-add), written beside the NumPy version
of the same function in :mod:`neuro.functional` and compiled by `numba <https://numba.pydata.org>`_ (the
``fast`` extra: ``pip install "neuro[fast]"``). The default, ``"auto"``, uses numba when it is installed; it
is imported at the first call of a compiled kernel, never at ``import neuro``, and this module is the only one
that imports it. :func:`set_kernels` or the environment variable ``NEURO_KERNELS`` (``auto``, ``numpy``,
``numba``) choose; :func:`get_kernels` tells which set runs. Kernels are serial and release the GIL; neuro's
own thread pool splits their work along the batch (never numba's ``parallel=True``, which misbehaves on
shared cores). They compile once per machine into numba's disk cache (beside the package, or in the user's
cache folder when the package folder is read-only).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from neuro import _strict

#: Device names and their aliases.
DEVICES = ("numpy", "cupy", "strict")
_ALIASES = {
    "numpy": "numpy",
    "cpu": "numpy",
    "cupy": "cupy",
    "gpu": "cupy",
    "cuda": "cupy",
    "strict": "strict",
}

_cupy: ModuleType | None = None


class DeviceMismatchError(ValueError):
    """Arrays of two devices met in one operation (for example a CuPy batch and NumPy weights)."""


def _import_cupy() -> ModuleType:
    """Import CuPy on first use and check that it has a device."""
    global _cupy
    if _cupy is None:
        try:
            cp = importlib.import_module("cupy")
        except ImportError as exc:
            raise ImportError(
                "device 'cupy' needs CuPy, which is not installed: pip install 'neuro[gpu]' on a machine "
                "with an NVIDIA GPU and CUDA 12 or 13"
            ) from exc
        try:
            count = cp.cuda.runtime.getDeviceCount()
        except Exception as exc:  # noqa: BLE001 - CUDA raises its own error types
            raise RuntimeError(f"device 'cupy' needs a CUDA device, but CUDA reports: {exc}") from exc
        if count < 1:
            raise RuntimeError("device 'cupy' needs a CUDA device, but none is visible")
        _cupy = cp
    return _cupy


def get_device(name: str | ModuleType) -> ModuleType:
    """Return the array module of a device.

    Args:
        name: ``"numpy"`` / ``"cpu"``, ``"cupy"`` / ``"gpu"`` / ``"cuda"``, ``"strict"``, or an array module
            already (returned as it is).

    Returns:
        ``numpy``, ``cupy`` or the strict stand-in module.

    Raises:
        ValueError: for another name.
        ImportError: when CuPy is asked for but not installed.
        RuntimeError: when CuPy has no CUDA device.
    """
    if isinstance(name, ModuleType) or name is _strict.module:
        if name is np or name is _strict.module or getattr(name, "__name__", "") == "cupy":
            return name
        raise ValueError(f"device must be one of {list(DEVICES)}, got module {name.__name__!r}")
    key = _ALIASES.get(name.lower()) if isinstance(name, str) else None
    if key is None:
        raise ValueError(f"device must be one of {list(DEVICES)} (or 'cpu', 'gpu', 'cuda'), got {name!r}")
    if key == "numpy":
        return np
    if key == "strict":
        return _strict.module
    return _import_cupy()


def device_name(xp: ModuleType) -> str:
    """The device name of an array module: ``"numpy"``, ``"cupy"`` or ``"strict"``.

    Args:
        xp: an array module (as :func:`get_device` or :func:`get_array_module` returns it); any module other
            than NumPy and the strict stand-in is taken to be CuPy.

    Returns:
        The canonical device name.
    """
    if xp is np:
        return "numpy"
    if xp is _strict.module:
        return "strict"
    return "cupy"


def _module_of(a: Any) -> ModuleType | None:
    """The array module that owns ``a``, or ``None`` for Python and NumPy scalars."""
    if isinstance(a, np.ndarray):
        return np
    if isinstance(a, _strict.StrictArray):
        return _strict.module
    if isinstance(a, (np.generic, int, float, bool, complex)) or a is None:
        return None
    if type(a).__module__.split(".")[0] == "cupy":
        return _import_cupy()
    return None


def get_array_module(*arrays: Any) -> ModuleType:
    """Return the array module of the given arrays (NumPy when none is an array).

    Args:
        *arrays: arrays, scalars or ``None``.

    Returns:
        ``numpy``, ``cupy`` or the strict stand-in module.

    Raises:
        DeviceMismatchError: when the arrays live on two devices; the message names both.
    """
    for a in arrays:  # the common case first: NumPy arrays only
        if type(a) is not np.ndarray:
            break
    else:
        return np
    found: ModuleType | None = None
    for a in arrays:
        xp = _module_of(a)
        if xp is None:
            continue
        if found is None:
            found = xp
        elif xp is not found:
            raise DeviceMismatchError(
                f"arrays from two devices met in one call: {device_name(found)} and {device_name(xp)}; "
                "move the data or the network with net.to(device)"
            )
    return np if found is None else found


def is_array(a: Any) -> bool:
    """True for NumPy, CuPy and strict-device arrays.

    Args:
        a: any object.

    Returns:
        Whether ``a`` is an array of one of the devices (scalars, lists and ``None`` are not).
    """
    return isinstance(a, (np.ndarray, _strict.StrictArray)) or type(a).__module__.split(".")[0] == "cupy"


def to_device(a: Any, xp: ModuleType, dtype: Any = None) -> Any:
    """Return ``a`` on the device of ``xp`` (no copy when it is already there with that dtype).

    Args:
        a: an array of any device, or array-like host data.
        xp: the target array module.
        dtype: optional target dtype.
    """
    if _module_of(a) not in (None, xp):
        a = to_numpy(a)
    if xp is np:
        return np.asarray(a, dtype=dtype)
    return xp.asarray(a, dtype=dtype)


def to_numpy(a: Any) -> np.ndarray:
    """Return ``a`` as a NumPy array: the one sanctioned read from a device to the host.

    NumPy arrays are returned as they are; CuPy arrays are copied from the GPU; strict-device arrays are
    copied and the read is counted (:func:`host_reads`).

    Args:
        a: an array of any device, or array-like host data (converted with ``numpy.asarray``).

    Returns:
        A NumPy array of the same shape and dtype.
    """
    if isinstance(a, np.ndarray):
        return a
    if isinstance(a, _strict.StrictArray):
        return _strict.read(a)
    get = getattr(a, "get", None)
    if callable(get) and type(a).__module__.split(".")[0] == "cupy":
        return get()
    return np.asarray(a)


def host_reads() -> int:
    """How many times :func:`to_numpy` has read a strict-device array (a counter for tests)."""
    return _strict.reads()


# -- kernel sets --------------------------------------------------------------------------------------------
#: The kernel sets :func:`set_kernels` accepts.
KERNEL_SETS = ("auto", "numpy", "numba")

_FAST_HINT = "pip install 'neuro[fast]'"


class KernelError(RuntimeError):
    """A compiled kernel could not be compiled or run (the message names the function)."""


def _check_kernel_set(name: Any, what: str) -> str:
    if not isinstance(name, str) or name.lower() not in KERNEL_SETS:
        raise ValueError(f"{what} must be one of {list(KERNEL_SETS)}, got {name!r}")
    return name.lower()


_kernel_request: str | None = None  # set_kernels' choice; None: NEURO_KERNELS or "auto"
_kernels_on: bool | None = None  # resolved: are the compiled kernels in use? None: not resolved yet
_numba: ModuleType | None = None
_kernel_lock = threading.RLock()


def set_kernels(name: str) -> None:
    """Choose the kernel set of work on NumPy arrays (CuPy and the strict device always run NumPy-style code).

    Args:
        name: ``"auto"`` (numba's compiled kernels when numba is installed, else NumPy's), ``"numpy"`` or
            ``"numba"`` (an error if numba is missing).

    Raises:
        ValueError: for another name.
        ImportError: for ``"numba"`` when numba is not installed (``pip install 'neuro[fast]'``).
    """
    global _kernel_request, _kernels_on
    key = _check_kernel_set(name, "kernels")
    with _kernel_lock:
        if key == "numba":
            _import_numba(required=True)
        _kernel_request = key
        _kernels_on = None


def _requested() -> str:
    if _kernel_request is not None:
        return _kernel_request
    return _check_kernel_set(os.environ.get("NEURO_KERNELS", "auto").strip() or "auto", "NEURO_KERNELS")


def _import_numba(required: bool) -> ModuleType | None:
    """numba, imported once; ``None`` when it is missing and not required."""
    global _numba, _numba_broken
    if _numba is None:
        if _numba_broken is not None and not required:
            return None
        try:
            numba = importlib.import_module("numba")
        except ModuleNotFoundError as exc:
            if exc.name != "numba":  # numba is there, one of its own imports is not
                return _broken_numba(exc, required)
            if required:
                raise ImportError(
                    f"kernels 'numba' need numba, which is not installed: {_FAST_HINT} (or use "
                    "set_kernels('numpy') / NEURO_KERNELS=numpy)"
                ) from exc
            return None
        except Exception as exc:  # noqa: BLE001 - installed, but broken (llvmlite's library: OSError)
            return _broken_numba(exc, required)
        _import_arraymath()
        _numba = numba
    return _numba


_numba_broken: Exception | None = None


def _broken_numba(exc: Exception, required: bool) -> None:
    """numba is installed but failed to import: an error when its kernels were asked for, else NumPy's kernels
    with one warning (``"auto"`` allows them, but never silently)."""
    global _numba_broken
    what = f"numba is installed but failed to import ({type(exc).__name__}: {exc})"
    if required:
        raise ImportError(
            f"kernels 'numba' need numba, and {what}; set_kernels('numpy') or NEURO_KERNELS=numpy runs "
            "NumPy's kernels"
        ) from exc
    if _numba_broken is None:
        _numba_broken = exc
        import warnings

        warnings.warn(
            f"{what}: neuro runs NumPy's kernels (NEURO_KERNELS=numpy says so and silences this warning)",
            RuntimeWarning,
            stacklevel=5,
        )
    return None


def _import_arraymath() -> None:
    """Import numba's ``numba.np.arraymath`` without importing SciPy's linear algebra (0.1–0.2 s).

    numba imports that module when it loads its first function, compiled or cached, and the module asks at
    once whether BLAS is there (its ``_HAVE_BLAS``, read when jitted code uses ``np.correlate`` or
    ``np.convolve``) by importing ``scipy.linalg.cython_blas``: all of ``scipy.linalg``. Here the module is
    imported with that question put off, under numba's compiler lock, and ``_HAVE_BLAS`` becomes
    :class:`_BlasQuestion`: numba's own check, asked the first time the answer is read. Nothing is changed if
    numba's layout is not the one expected.
    """
    if "numba.np.arraymath" in sys.modules:
        return
    try:
        linalg = importlib.import_module("numba.np.linalg")
        original = linalg.ensure_blas
        lock = importlib.import_module("numba.core.compiler_lock").global_compiler_lock
    except (ImportError, AttributeError):  # another numba: leave it alone
        return

    def later() -> None:  # the question, put off: asked by _BlasQuestion when the answer is read
        return None

    with lock:  # no compilation in another thread sees ``later``
        linalg.ensure_blas = later
        try:
            arraymath = importlib.import_module("numba.np.arraymath")
        except ImportError:
            return  # numba reports it when it loads a function
        finally:
            linalg.ensure_blas = original
        if getattr(arraymath, "ensure_blas", None) is later:
            arraymath.ensure_blas = original
        if getattr(arraymath, "_HAVE_BLAS", None) is True:  # later() answered it
            arraymath._HAVE_BLAS = _BlasQuestion(original)


class _BlasQuestion:
    """numba's ``_HAVE_BLAS``, asked when first read: whether ``ensure_blas()`` (numba's, which imports
    ``scipy.linalg.cython_blas`` and checks its integer width) succeeds, as numba's ``_check_blas`` asks.

    Args:
        ensure_blas: numba's ``numba.np.linalg.ensure_blas``.
    """

    def __init__(self, ensure_blas: Callable[[], None]) -> None:
        self._ensure = ensure_blas
        self._answer: bool | None = None

    def __bool__(self) -> bool:
        if self._answer is None:
            try:
                self._ensure()
                self._answer = True
            except ImportError:
                self._answer = False
        return self._answer

    def __repr__(self) -> str:
        return repr(self._answer) if self._answer is not None else "<asked when first read>"


def native_kernels() -> bool:
    """Whether compiled kernels run as machine code: numba is imported and its JIT is not disabled
    (``NUMBA_DISABLE_JIT=1`` runs them as Python, which an interrupt may stop midway).

    Returns:
        The answer.
    """
    return _numba is not None and not _numba.config.DISABLE_JIT


def get_kernels() -> str:
    """The kernel set work on NumPy arrays runs.

    Returns:
        ``"numba"`` or ``"numpy"`` (resolving ``"auto"``, which imports numba when it is installed).
    """
    return "numba" if _compiled_on() else "numpy"


def _compiled_on() -> bool:
    global _kernels_on
    on = _kernels_on
    if on is None:
        with _kernel_lock:
            request = _requested()
            on = request != "numpy" and _import_numba(required=request == "numba") is not None
            _kernels_on = on
    return on


def compiled(*arrays: Any) -> bool:
    """Whether work on ``arrays`` runs the compiled kernels: they are NumPy arrays, their floating ones of one
    dtype, and the kernel set is numba's. Functions in :mod:`neuro.functional` ask this before choosing their
    compiled version. Mixed float precisions take the NumPy path, whose type promotion (rounding to the
    narrower type where NumPy does) the kernels do not follow; neuro's layers never mix them.

    Args:
        *arrays: the arrays of the work.

    Returns:
        True for NumPy arrays of one floating type, float32 or float64 (beside any integer or boolean arrays:
        indices, masks), under the numba kernel set (resolving ``"auto"`` on the first call).
    """
    floats = None
    for a in arrays:
        if type(a) is not np.ndarray:
            return False
        if a.dtype.kind == "f":
            if floats is None:
                if a.dtype not in _KERNEL_FLOATS:  # float16 (or wider): NumPy's path, not numba's error
                    return False
                floats = a.dtype
            elif a.dtype != floats:
                return False
        elif a.dtype.kind not in "iub":  # complex, objects, strings: NumPy's path, not numba's error
            return False
    return floats is not None and _compiled_on()  # integers alone (indices with no float data): NumPy's


#: The floating types the compiled kernels take.
_KERNEL_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


#: How every compiled kernel is compiled (serial, without the GIL, NumPy's error model).
_JIT_OPTIONS = {"nogil": True, "error_model": "numpy", "boundscheck": False}


class Kernel:
    """A function compiled by numba on its first call (serial, ``nogil``, NumPy's error model, cached on
    disk), one compiled version per argument types.

    Args:
        fn: the plain Python function (loops over arrays, as numba's ``njit`` takes them).
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.name = f"{fn.__module__}.{fn.__qualname__}"
        self._jit: Any = None

    def _compile(self) -> Any:
        with _kernel_lock:
            if self._jit is None:
                nb = _import_numba(required=True)
                options = _JIT_OPTIONS
                try:
                    self._jit = nb.njit(cache=True, **options)(self.fn)
                except RuntimeError as exc:  # no writable cache folder anywhere: compile at each start
                    if "no locator available" not in str(exc):
                        raise KernelError(f"cannot prepare the compiled kernel {self.name}: {exc}") from exc
                    _warn_no_cache(exc)
                    self._jit = nb.njit(cache=False, **options)(self.fn)
                except Exception as exc:  # noqa: BLE001 - numba raises its own errors
                    raise KernelError(f"cannot prepare the compiled kernel {self.name}: {exc}") from exc
                _check_cache_folder(nb, self._jit)
        return self._jit

    def __call__(self, *args: Any) -> Any:
        jit = self._jit or self._compile()
        try:
            return jit(*args)
        except Exception as exc:  # noqa: BLE001 - typing and lowering errors of numba
            if _from_numba_cache(exc) and _caches(jit):
                # reading or writing the disk cache failed (a damaged file, another user's file, a full
                # disk) before the kernel ran: compile without the cache and run
                _warn_cache_failed(self.name, exc)
                with _kernel_lock:
                    if self._jit is jit:
                        nb = _import_numba(required=True)
                        self._jit = nb.njit(cache=False, **_JIT_OPTIONS)(self.fn)
                return self(*args)
            if type(exc).__module__.split(".")[0] != "numba":
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise KernelError(
                f"the compiled kernel {self.name} failed to compile for arguments "
                f"({', '.join(_describe(a) for a in args)}): {first}; set_kernels('numpy') or "
                "NEURO_KERNELS=numpy runs NumPy's kernels instead"
            ) from exc


def _from_numba_cache(exc: BaseException) -> bool:
    """Whether ``exc`` was raised in numba's disk cache (loading or saving a compiled version)."""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if "/numba/" in name and name.endswith("/caching.py"):
            return True
        tb = tb.tb_next
    return False


def _caches(jit: Any) -> bool:
    """Whether ``jit`` (a numba dispatcher) caches on disk (``cache=True``): only then is a retry without the
    cache a different call."""
    return type(getattr(jit, "_cache", None)).__name__ not in ("NullCache", "NoneType")


_cache_failed_warned = False


def _warn_cache_failed(name: str, exc: BaseException) -> None:
    global _cache_failed_warned
    if not _cache_failed_warned:
        _cache_failed_warned = True
        import warnings

        warnings.warn(
            f"the disk cache of neuro's compiled kernel {name} failed ({type(exc).__name__}: {exc}); the "
            "kernels whose cache fails compile again in every process. Deleting neuro's *.nbi and *.nbc "
            "files in the cache folder (NUMBA_CACHE_DIR, or __pycache__ beside neuro's modules) lets them "
            "be cached anew.",
            RuntimeWarning,
            stacklevel=4,
        )


_folder_warned = False


def _check_cache_folder(nb: ModuleType, jit: Any) -> None:
    """Warn once when the user chose a cache folder (``NUMBA_CACHE_DIR``) and numba, unable to write there,
    put the cache elsewhere (beside the package, or in the user's cache folder)."""
    global _folder_warned
    chosen = getattr(nb.config, "CACHE_DIR", "")
    path = getattr(getattr(jit, "_cache", None), "_cache_path", None)
    if _folder_warned or not chosen or not isinstance(path, str):
        return
    chosen, used = os.path.realpath(chosen), os.path.realpath(path)
    try:
        inside = os.path.commonpath([chosen, used]) == chosen
    except ValueError:  # on two drives (Windows)
        inside = False
    if not inside:
        _folder_warned = True
        import warnings

        warnings.warn(
            f"NUMBA_CACHE_DIR={chosen!r} cannot be written: neuro's compiled kernels are cached in {used!r}",
            RuntimeWarning,
            stacklevel=5,
        )


_cache_warned = False


def _warn_no_cache(exc: Exception) -> None:
    global _cache_warned
    if not _cache_warned:
        _cache_warned = True
        import warnings

        chosen = os.environ.get("NUMBA_CACHE_DIR")
        where = (
            f"NUMBA_CACHE_DIR={chosen!r} cannot be written"
            if chosen
            else "neither beside the package nor in the user's cache folder"
        )
        warnings.warn(
            f"neuro's compiled kernels find no writable cache folder ({where}: {exc}); they compile again in "
            "every process. Set NUMBA_CACHE_DIR to a writable folder to keep them.",
            RuntimeWarning,
            stacklevel=4,
        )


def _describe(a: Any) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype}[{a.ndim}d]"
    return type(a).__name__


def kernel(fn: Callable[..., Any]) -> Kernel:
    """Decorator: a compiled kernel of the numba kernel set (see :class:`Kernel`).

    Args:
        fn: the plain Python function to compile on its first call.

    Returns:
        The :class:`Kernel`.
    """
    return Kernel(fn)


class Device:
    """A device: its name, its array module and the kernel set its work runs.

    Args:
        name: ``"numpy"``, ``"cupy"`` or ``"strict"``.
        xp: the array module.
        kernels: ``"numba"`` or ``"numpy"`` (CuPy and the strict device run NumPy-style code: ``"numpy"``).
    """

    __slots__ = ("kernels", "name", "xp")

    def __init__(self, name: str, xp: ModuleType, kernels: str) -> None:
        self.name, self.xp, self.kernels = name, xp, kernels

    def __repr__(self) -> str:
        return f"Device({self.name!r}, kernels={self.kernels!r})"

    def __str__(self) -> str:
        return self.name if self.name != "numpy" else f"numpy ({self.kernels} kernels)"


def device(xp: Any, resolve: bool = True) -> Device:
    """The :class:`Device` of an array module or device name (the kernel set resolved for NumPy).

    Args:
        xp: an array module or a device name.
        resolve: resolve ``"auto"`` as the first compiled kernel does (importing numba, about 0.3 s); with
            ``False`` (a model's summary), an unresolved ``"auto"`` shows ``"numba"`` when numba is installed,
            without importing it.

    Returns:
        The device.
    """
    xp = get_device(xp)
    name = device_name(xp)
    if name != "numpy":
        return Device(name, xp, "numpy")
    if not resolve and _kernels_on is None and _requested() == "auto":
        found = _numba_broken is None and importlib.util.find_spec("numba") is not None
        return Device(name, xp, "numba" if found else "numpy")
    return Device(name, xp, get_kernels())


# -- random numbers on the device ---------------------------------------------------------------------------
class DeviceRNG:
    """Uniform random numbers drawn on a device, from a seed or from a host NumPy generator.

    On NumPy (and on the strict stand-in, which is NumPy underneath) numbers come from the host generator
    it is given, so a network's seed repeats its dropout masks and its saved generator state resumes them.
    On CuPy they come from a CuPy generator seeded once, so no number crosses the bus.

    Args:
        xp: the array module.
        host: the NumPy generator that NumPy and the strict device draw from.
        seed: seed of the CuPy generator (drawn from ``host`` when ``None``).
    """

    def __init__(self, xp: ModuleType, host: np.random.Generator, seed: int | None = None) -> None:
        self.xp = xp
        self.host = host
        self._device_gen: Any = None
        if xp is not np and xp is not _strict.module:
            s = int(host.integers(2**63)) if seed is None else seed
            self._device_gen = xp.random.default_rng(s)

    def random(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """Uniform numbers in [0, 1) of ``shape`` and ``dtype``, on the device.

        Args:
            shape: shape of the result.
            dtype: floating type of the result (float32 or float64).

        Returns:
            A new array of the generator's device.
        """
        if self._device_gen is not None:
            return self._device_gen.random(shape, dtype=dtype)
        out = self.host.random(shape, dtype=dtype)
        return out if self.xp is np else _strict.wrap(out)


# -- dtype --------------------------------------------------------------------------------------------------
_DTYPES = {"float32": np.float32, "float64": np.float64}
_dtype: type[np.floating] = np.float32


def set_dtype(dtype: str | type | np.dtype) -> None:
    """Set the floating-point type of networks created from now on.

    Args:
        dtype: ``"float32"`` (the default) or ``"float64"`` (used by gradient checks).

    Raises:
        ValueError: for any other type.
    """
    global _dtype
    _dtype = _DTYPES[check_dtype(dtype)]


def check_dtype(dtype: Any) -> str:
    """Return ``"float32"`` or ``"float64"`` for a dtype given as a name, type or dtype.

    Args:
        dtype: a name (``"float32"``), a type (``numpy.float64``) or a ``numpy.dtype``.

    Returns:
        The dtype's name.

    Raises:
        ValueError: for any other type.
    """
    try:
        key = np.dtype(dtype).name
    except TypeError:
        key = None
    if key not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return key


def get_dtype() -> type[np.floating]:
    """Return the floating-point type of new networks (``numpy.float32`` by default)."""
    return _dtype


class dtype_scope:
    """Context manager that sets the dtype for a block and restores the previous one.

    Args:
        dtype: ``"float32"`` or ``"float64"`` (or their types), checked on entering the block.

    Raises:
        ValueError: on entering the block, for any other type.

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


# -- threads for elementwise work ---------------------------------------------------------------------------
# NumPy's BLAS runs matrix products on several cores, but its elementwise loops run on one. They release the
# GIL, so the large batch-shaped elementwise passes (col2im, pooling, ReLU, dropout) are split along the batch
# axis over a small thread pool. Work too small to pay for the hand-off runs inline, and so does all work on
# another device (a GPU runs it in parallel already).

#: Below this many elements a pass runs on the calling thread.
MIN_PARALLEL_ELEMENTS = 1 << 17


def _default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_num_threads = _default_threads()
_pool: Any = None  # the worker threads (a _Pool), made at the first parallel work
_threads_fixed = os.environ.get("OMP_NUM_THREADS", "").isdigit()  # the user chose: no adapting


def set_num_threads(n: int) -> None:
    """Set how many threads neuro's pool may use (elementwise passes; during a fit, matrix products too).

    Args:
        n: a positive number of threads; 1 runs everything on the calling thread.

    The default is ``OMP_NUM_THREADS`` if set, else the number of cores this process may run on.
    """
    global _num_threads, _pool, _threads_fixed, _adapt_saved
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    with _adapt_lock:  # a fit that sized the pool for a busy machine must not put its count back on this
        _threads_fixed = True
        _adapt_saved = None
    _resize(n)


def _resize(n: int) -> None:
    global _num_threads, _pool
    with _kernel_lock:  # the lock under which a pool is made: it is made with the new count
        if n == _num_threads:
            return
        _num_threads = n
        old, _pool = _pool, None
    if old is not None:
        old.shutdown()  # its workers end once the parts they were given are done


def get_num_threads() -> int:
    """The number of threads neuro's elementwise passes may use."""
    return _num_threads


# -- busy machines ----------------------------------------------------------------------------------------
# When another process keeps cores busy, threads beyond the free cores only wait for each other (and an
# OpenBLAS imported before neuro spins its idle threads on the busy cores). Unless the user chose the thread
# count (set_num_threads, OMP_NUM_THREADS), fit samples the cores' load once in a while and, for its run,
# gives neuro's pool as many threads as there are free cores (the BLAS is on one thread during a fit).

#: Seconds between two samples of the cores' load.
LOAD_INTERVAL = 10.0
#: The shortest stretch of time (s) a sample covers.
LOAD_SAMPLE = 0.05
#: The longest stretch of time (s) a sample may cover: a reading taken this recently (at import, or when the
#: last fit ended) starts the next sample, so that a fit waits only for what is missing of LOAD_SAMPLE.
LOAD_WINDOW = 2.0
_last_free: tuple[float, int] | None = None
# (time, this process's CPU seconds, cpu times) of the reading the next sample starts from
_load_mark: tuple[float, float, dict[int, tuple[int, int]]] | None = None


def _cpu_times(cpus: set[int]) -> dict[int, tuple[int, int]]:
    """``{cpu: (busy jiffies, total jiffies)}`` of the given CPUs, from /proc/stat."""
    out = {}
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            parts = line.split()
            cpu = int(parts[0][3:])
            if cpu in cpus:
                values = [int(v) for v in parts[1:8]]
                idle = values[3] + values[4]  # idle and iowait
                out[cpu] = (sum(values) - idle, sum(values))
    return out


def _own_cpu_seconds() -> float:
    """CPU seconds this process (all its threads) and its waited-for children have used."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _mark_load() -> None:
    """Keep a reading of the cores' load and this process's CPU time for the next sample to start from."""
    global _load_mark
    try:
        _load_mark = (time.monotonic(), _own_cpu_seconds(), _cpu_times(os.sched_getaffinity(0)))
    except (OSError, ValueError, AttributeError):  # not Linux, or /proc unreadable
        _load_mark = None


if not _threads_fixed and _num_threads > 1:
    _mark_load()  # the first fit's sample starts at import


def free_cores() -> int:
    """How many of the cores this process may run on are not kept busy by other work (at least 1).

    Measured from ``/proc/stat`` at most once per :data:`LOAD_INTERVAL` seconds (Linux; elsewhere every core
    counts as free): the busy time of this process's cores over the last :data:`LOAD_SAMPLE` to
    :data:`LOAD_WINDOW` seconds, less this process's own CPU time, in cores, rounded. The sample starts at the
    reading taken at import or when the last fit ended, if that is recent enough; otherwise this sleeps for
    :data:`LOAD_SAMPLE` seconds.

    Returns:
        The number of free cores.
    """
    global _last_free
    now = time.monotonic()
    if _last_free is not None and now - _last_free[0] < LOAD_INTERVAL:
        return _last_free[1]
    try:
        cpus = os.sched_getaffinity(0)
        mark = _load_mark
        if mark is None or now - mark[0] > LOAD_WINDOW or set(mark[2]) != cpus:
            _mark_load()
            mark = _load_mark
            if mark is None:
                raise OSError("no reading of /proc/stat")
        wait = LOAD_SAMPLE - (time.monotonic() - mark[0])
        if wait > 0:
            time.sleep(wait)
        own = (_own_cpu_seconds() - mark[1]) * os.sysconf("SC_CLK_TCK")  # in jiffies, as /proc/stat counts
        after = _cpu_times(cpus)
        busy = total = 0
        both = [cpu for cpu in mark[2] if cpu in after]  # a CPU may go offline between the readings
        for cpu in both:
            busy += after[cpu][0] - mark[2][cpu][0]
            total += after[cpu][1] - mark[2][cpu][1]
        per_core = total / len(both) if both else 0
        others = int((busy - own) / per_core + 0.5) if per_core > 0 else 0  # cores' worth of other work
        free = min(len(cpus), max(1, len(cpus) - others))
    except (OSError, ValueError, AttributeError):  # not Linux, or /proc unreadable
        free = _default_threads()
    _last_free = (now, free)
    return free


#: glibc's malloc thresholds set by the first fit (bytes): below the first, memory comes from the heap and
#: not from a fresh mapping; the heap keeps up to the second free at its top instead of returning it.
MALLOC_THRESHOLDS = (32 << 20, 128 << 20)
_malloc_tuned = False


def _tune_malloc() -> None:
    """Keep a batch's large temporaries in the heap between batches (glibc only; once per process).

    glibc maps every block of 128 KiB and more afresh and raises that threshold only as far as the blocks
    freed so far, and returns the heap's free top to the system beyond twice it: a CNN batch then had its
    kernel map and zero about 4,000 pages (16 MiB), 4–7 % of its time. Its thresholds are set once to
    :data:`MALLOC_THRESHOLDS` instead (``NEURO_MALLOPT=0`` in the environment leaves them alone).
    """
    global _malloc_tuned
    _malloc_tuned = True
    if os.environ.get("NEURO_MALLOPT", "1") == "0":
        return
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc's: the parameters below are glibc's numbers
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, MALLOC_THRESHOLDS[0])
    mallopt(m_trim_threshold, MALLOC_THRESHOLDS[1])


# During a fit NumPy's OpenBLAS runs on one thread and neuro's threads do the splitting (matmul, pieces
# of a convolution): an OpenBLAS that ran a product on several threads keeps them spinning for about 0.1 s
# afterwards, and beside neuro's pool they took a core from it (the reference CNN at two threads: 98 ms a
# batch, 70 ms once OpenBLAS's threads stayed asleep). Who wants which BLAS thread count is counted in
# _claims (fits, pieces run outside a fit, recurrent time loops inside a fit, from any thread); the count is
# set from the claims under one lock, and the user's own count is put back once no claim is left.
_blas_lock = threading.Lock()
# claims: "fit" and "steps" by thread (a time loop gets the BLAS's threads only if every running fit is in a
# time loop of its own thread: another thread's fit keeps its one BLAS thread and its split products);
# "pieces" (parallel_blocks outside a fit) under the key 0
_claims: dict[str, dict[int, int]] = {"fit": {}, "pieces": {}, "steps": {}}
_blas_user: int | None = None  # the count to put back when the claims end (None: no OpenBLAS to talk to)
_blas_now: int | None = None  # the count last set (None: not known)
_gemm_split = False  # matmul splits products: a fit runs and no time loop has the BLAS's threads


def _claim(kind: str, delta: int) -> bool:
    """Change a claim of the calling thread by ``delta`` and set OpenBLAS's thread count as the claims call
    for: none, the user's count; time loops in the threads of every running fit and no pieces
    (:func:`parallel_blocks`, :class:`blas_on_one_thread`), neuro's count (at most the user's); else one
    thread. Returns whether there is an OpenBLAS to talk to (a claim is counted either way;
    the caller takes it back). A claim never goes below zero (one taken back twice after an interrupt)."""
    global _blas_user, _blas_now, _gemm_split
    key = 0 if kind == "pieces" else threading.get_ident()
    with _blas_lock:
        idle_before = not any(_claims.values())
        held = _claims[kind]
        count = max(0, held.get(key, 0) + delta)
        if count:
            held[key] = count
        else:
            held.pop(key, None)
        if idle_before and any(_claims.values()):
            _blas_now = None  # not known until the call below has returned
            _blas_user = _blas_threads(1)  # the user's count, kept until the claims end
            _blas_now = 1
        if _blas_user is None:
            _gemm_split = False
            return False
        fits, steps = _claims["fit"], _claims["steps"]
        split = False
        if not any(_claims.values()):
            target = _blas_user
        elif steps and not _claims["pieces"] and all(t in steps for t in fits):  # (pieces: one thread)
            target = max(1, min(_num_threads, _blas_user))
        else:
            target, split = 1, bool(fits)
        if target != _blas_now:
            _blas_now = None
            _blas_threads(target)
            _blas_now = target
        _gemm_split = split
        return True


def _forget_claims() -> None:  # in a forked child: its parent's fits are not its own
    global _gemm_split, _blas_user, _blas_now, _load_mark
    if any(_claims.values()) and _blas_user is not None:
        _blas_threads(_blas_user)  # the child's OpenBLAS came with the parent's fit setting
    for held in _claims.values():
        held.clear()
    _gemm_split, _blas_user, _blas_now, _load_mark = False, None, None, None


class blas_threads_for_steps:
    """Context manager for a loop of many small matrix products (a recurrent layer's time steps): inside a
    fit on this thread, NumPy's OpenBLAS gets neuro's thread count back for the block (at most the count it
    had before the fit) and :func:`matmul` stops splitting; elsewhere it does nothing.

    OpenBLAS takes up such a product faster than neuro's pool, woken through a queue in about 9 µs (its idle
    threads spin between products, unless neuro set ``OPENBLAS_THREAD_TIMEOUT``): an LSTM(128)'s training
    (64×128·128×512 step products) at two threads ran at 7,300–8,000 samples/s split by neuro and
    8,400–9,400 on OpenBLAS's threads.
    """

    def __enter__(self) -> blas_threads_for_steps:
        self._on = False
        if getattr(_local, "fits", 0) > 0 and _num_threads > 1:
            self._on = True
            _claim("steps", 1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._on:
            self._on = False
            _claim("steps", -1)


class split_products:
    """Context manager for a large ``predict`` or ``evaluate`` on this thread: NumPy's OpenBLAS on one thread
    and neuro's pool splitting the products, as in a fit (with its malloc tuning, without its load sample), so
    that the results are the same for every thread count."""

    def __init__(self) -> None:
        self._claimed = False

    def __enter__(self) -> split_products:
        if not _malloc_tuned:
            _tune_malloc()
        _local.fits = getattr(_local, "fits", 0) + 1
        self._claimed = True
        _claim("fit", 1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._claimed:
            self._claimed = False
            _local.fits = max(0, getattr(_local, "fits", 1) - 1)
            _claim("fit", -1)


_adapt_lock = threading.Lock()
_adapt_depth = 0  # adapting fits running (in any thread): the first one sizes the pool, the last restores it
_adapt_saved: int | None = None


class busy_aware_threads:
    """Context manager for a fit: NumPy's OpenBLAS runs on one thread while neuro's threads split the matrix
    products (:func:`matmul`, :func:`parallel_blocks`), and neuro's pool uses as many threads as there are
    free cores, when fewer are free than the default would use and the user has not chosen the count; both
    are put back afterwards (by the last of several fits running at once). The first fit also tunes glibc's
    malloc for the rest of the process (:func:`_tune_malloc`). ``__exit__`` undoes whatever part of
    ``__enter__`` was done."""

    def __init__(self) -> None:
        self._adapting = False
        self._products = split_products()

    def __enter__(self) -> busy_aware_threads:
        global _adapt_depth, _adapt_saved
        if not _threads_fixed and _num_threads > 1 or _adapt_depth:
            with _adapt_lock:
                if _adapt_depth == 0 and not _threads_fixed and _num_threads > 1:
                    free = free_cores()
                    _adapt_saved = _num_threads if free < _num_threads else None
                    if _adapt_saved is not None:
                        _resize(free)
                _adapt_depth += 1
                self._adapting = True
        self._products.__enter__()  # one BLAS thread, products split; malloc tuned
        return self

    def __exit__(self, *exc: object) -> None:
        global _adapt_depth, _adapt_saved
        self._products.__exit__(*exc)
        if self._adapting:
            self._adapting = False
            with _adapt_lock:
                _adapt_depth = max(0, _adapt_depth - 1)
                if _adapt_depth == 0:
                    if _adapt_saved is not None:
                        _resize(_adapt_saved)
                        _adapt_saved = None
                    _mark_load()  # the next fit's sample starts here


def parallel_blocks(fn: Callable[[int, int, int], object], count: int) -> bool:
    """Run ``fn(start, stop, slot)`` over contiguous blocks of ``range(count)``, one block per thread of
    neuro's pool (``slot``: the block's number, below the thread count), each block's BLAS calls on one
    thread.

    For work whose every part is a few matrix products and passes over the same data (the pieces of a
    convolution): each thread keeps its part in its own core's cache, and no second pool of BLAS threads
    competes with neuro's (NumPy's OpenBLAS is on one thread meanwhile, as in a fit). Nothing is run, and
    ``False`` returned, with one thread, fewer than two items, inside a pool worker, or with no OpenBLAS to
    talk to (its products may run threads of their own): the caller then runs the items itself.

    Args:
        fn: does the work of items ``start:stop`` (blocks never overlap) with the buffers of ``slot``.
        count: number of items.

    Returns:
        Whether ``fn`` was run.
    """
    threads = min(_num_threads, count)
    if threads <= 1 or getattr(_local, "worker", False):
        return False
    try:
        if not _claim("pieces", 1):
            return False
        bounds = [count * i // threads for i in range(threads + 1)]

        def block(a: int, b: int) -> None:  # parallel_for hands out the blocks one by one
            for i in range(a, b):
                fn(bounds[i], bounds[i + 1], i)

        parallel_for(block, threads, MIN_PARALLEL_ELEMENTS)
        return True
    finally:
        _claim("pieces", -1)


class blas_on_one_thread:
    """Context manager: NumPy's OpenBLAS on one thread for the block, as :func:`parallel_blocks` puts it for
    its blocks, so that work a caller runs itself when :func:`parallel_blocks` declines sums its products as
    the blocks would (an OpenBLAS product on two threads may sum in another order): its results are then the
    same for every thread count, outside a fit too."""

    def __enter__(self) -> blas_on_one_thread:
        _claim("pieces", 1)
        return self

    def __exit__(self, *exc: object) -> None:
        _claim("pieces", -1)


_blas_api: tuple[Any, Any] | None | bool = False  # (set, get) functions of the loaded OpenBLAS; None: none


def _blas_threads(n: int) -> int | None:
    """Set the thread count of the OpenBLAS NumPy loaded; return the previous one (``None`` if there is no
    OpenBLAS to talk to)."""
    global _blas_api
    if _blas_api is False:
        _blas_api = _find_openblas()
    if _blas_api is None:
        return None
    set_threads, get_threads = _blas_api
    before = int(get_threads())
    set_threads(int(n))
    return before


def _find_openblas() -> tuple[Any, Any] | None:
    import ctypes

    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    names = [
        ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
        ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
        ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
        ("openblas_set_num_threads", "openblas_get_num_threads"),
    ]
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in names:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                return getattr(lib, set_name), getattr(lib, get_name)
    return None


class _Worker:
    """One thread of neuro's pool: it runs the parts put in its queue and reports each one by its token.

    A part is handed over through a queue in one step (``SimpleQueue.put``, a few microseconds, not the tens
    of a future), so that at two threads a pass of 100k elements pays for splitting. A finished part's report
    is kept in :attr:`done` until its caller collects it (the queue :attr:`wakeups` only wakes the caller), so
    an interrupt in the caller's wait loses nothing.
    """

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.wakeups: queue.SimpleQueue = queue.SimpleQueue()
        self.taken = 0  # the token of the last part this worker took
        self.done: dict[int, BaseException | None] = {}  # finished parts' errors, until collected
        self.thread = threading.Thread(target=self._run, name="neuro-worker", daemon=True)
        self.thread.start()

    def _run(self) -> None:  # a worker thread never sees a KeyboardInterrupt: only the main thread does
        _local.worker = True
        while True:
            job = self.jobs.get()
            if job is None:  # the pool was shut down (every part put before it has been run)
                return
            token, fn, start, stop = job
            self.taken = token
            error: BaseException | None = None
            try:
                fn(start, stop)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                error = exc
            self.done[token] = error
            self.wakeups.put(token)

    def wait(self, token: int, handed_over: bool) -> BaseException | None:
        """Return once the part ``token`` has finished: its error, if it raised one.

        Args:
            token: the part's token.
            handed_over: whether the caller knows the part was put in the queue. When it does not (an
                interrupt came between writing the part down and knowing it was handed over), a part that is
                still in the queue is taken back, and one that was never put is not waited for: either way
                it never runs, and the caller is raising anyway.

        An interrupt does not cut the wait short; it is raised once the part has stopped.
        """
        interrupted: BaseException | None = None
        error: BaseException | None = None
        while True:
            try:
                if token in self.done:
                    error = self.done.pop(token)
                    break
                if not handed_over and self.taken != token and self._take_back(token):
                    break
                try:
                    self.wakeups.get(timeout=0.05)
                except queue.Empty:
                    if not self.thread.is_alive():  # a worker that ended: its parts run here
                        error = self._run_left_behind(token)
                        break
            except BaseException as exc:  # noqa: BLE001 - keep waiting; raised once the part stopped
                interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted
        return error

    def _run_left_behind(self, token: int) -> BaseException | None:
        """Run, on the calling thread, the part ``token`` that a worker which has ended left in its queue."""
        if token in self.done:
            return self.done.pop(token)
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return None  # not in the queue: never handed over
            if job is not None and job[0] == token:
                try:
                    job[1](job[2], job[3])
                except BaseException as exc:  # noqa: BLE001 - the part's error, as a worker reports it
                    return exc
                return None

    def _take_back(self, token: int) -> bool:
        """Whether the part ``token``, perhaps never handed over, will never run: taken back from the queue,
        or found neither there nor with the worker."""
        try:
            job = self.jobs.get_nowait()
        except queue.Empty:
            time.sleep(0.01)  # the worker may be between taking the part and saying so
            return self.taken != token and token not in self.done
        if job is None or job[0] != token:  # not ours: put it back (its order with ours does not matter)
            self.jobs.put(job)
            return False
        return True


class _Pool:
    """``threads − 1`` workers beside the calling thread, used by one caller at a time."""

    def __init__(self, threads: int) -> None:
        self.workers = [_Worker() for _ in range(threads - 1)]
        self.lock = threading.Lock()  # held by the caller using the pool (taken without waiting)
        self.state = threading.Lock()  # held briefly: handing parts over, and shutting down
        self.closed = False

    def shutdown(self) -> None:
        """Stop taking work; the workers end once they have run the parts put before."""
        with self.state:
            self.closed = True
            for w in self.workers:
                w.jobs.put(None)


_local = threading.local()
_tokens = itertools.count(1)  # one token per part handed over (next() on it is atomic)


def _forget_pool() -> None:  # a forked child has none of its parent's threads: it makes its own pool
    global _pool, _blas_lock, _kernel_lock, _adapt_lock, _adapt_depth, _adapt_saved
    _pool = None
    _blas_lock, _adapt_lock = threading.Lock(), threading.Lock()  # another thread of the parent may hold them
    _kernel_lock = threading.RLock()
    _local.fits = 0
    _adapt_depth, _adapt_saved = 0, None
    _forget_claims()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def parallel_for(
    fn: Callable[[int, int], object], n: int, elements: int, xp: ModuleType = np, max_parts: int | None = None
) -> None:
    """Call ``fn(start, stop)`` over contiguous parts of ``range(n)`` (the batch axis), in parallel.

    Every part has finished when this returns or raises (the first error of a part is raised after all of
    them stopped, a KeyboardInterrupt on the calling thread included). Work from a pool thread, or while
    another thread uses the pool, runs on the calling thread alone.

    Args:
        fn: does the work for samples ``start:stop``; parts never overlap, so it may write its own slice.
        n: number of samples.
        elements: total number of array elements the work touches, to decide whether threads pay.
        xp: the array module of the work; only NumPy work is split over threads.
        max_parts: at most this many parts (whatever the thread count is by then), or ``None``.
    """
    global _pool
    threads = min(_num_threads, n, n if max_parts is None else max(1, max_parts))
    if threads <= 1 or elements < MIN_PARALLEL_ELEMENTS or xp is not np or getattr(_local, "worker", False):
        fn(0, n)
        return
    pool = _pool
    if pool is None:
        with _kernel_lock:
            if _pool is None:
                _pool = _Pool(_num_threads)
            pool = _pool
    owner = False
    try:
        owner = pool.lock.acquire(blocking=False)
        if not owner or pool.closed:  # another thread is using it, or it is being replaced: no waiting
            fn(0, n)
            return
        threads = min(threads, len(pool.workers) + 1)
        bounds = [n * k // threads for k in range(threads + 1)]
        handed: list[list[Any]] = []  # [worker, token, known to be in its queue]
        error: BaseException | None = None
        try:
            mine = (0, n)  # the caller's own part: all of it, if the pool closed before it handed any
            with pool.state:  # no shutdown between the check and the hand-over: parts come before its end
                if not pool.closed:
                    for k, w in enumerate(pool.workers[: threads - 1], start=1):
                        entry = [w, next(_tokens), False]
                        handed.append(entry)  # written down first: an interrupt after it is waited for
                        w.jobs.put((entry[1], fn, bounds[k], bounds[k + 1]))
                        entry[2] = True
                    mine = (bounds[0], bounds[1])
            fn(*mine)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, once every part has stopped
            error = exc
        # every part has finished before this returns or raises, whatever happened here (an interrupt
        # included): no worker writes into the arrays after the caller has moved on
        for w, token, sure in handed:
            try:
                part_error = w.wait(token, sure)
            except BaseException as exc:  # noqa: BLE001 - an interrupt during the wait (the part has stopped)
                error = error or exc
                continue
            error = error or part_error
        if error is not None:
            raise error
    finally:
        if owner:
            pool.lock.release()


#: :func:`matmul` splits a product into blocks of at least this many multiply-adds each: OpenBLAS takes
#: another path, which sums in another order, for products of up to about a million (100³).
MIN_PARALLEL_PRODUCT = 1 << 21
#: The row (or column) counts :func:`matmul` may cut a product at, tried in this order by :func:`_cut_units`:
#: OpenBLAS works through a matrix in tiles of a few rows and columns whose size depends on its kernels, and
#: a block that began inside a tile sums some entries in another order (rows cut at 42 and 85 of 128 changed
#: the last bits on an Intel Xeon; its SkylakeX kernels keep them at multiples of 16 rows or columns, its
#: Haswell kernels on an AMD EPYC at multiples of 24 rows and at no column count tried).
CUT_CANDIDATES = (16, 24, 32, 48, 64, 96, 128, 192)

_cut_found: tuple[int, int] | None = None  # (rows, columns) found by _cut_units; 0: never cut that way


def _cut_units() -> tuple[int, int]:
    """The smallest multiples of rows and of columns (from :data:`CUT_CANDIDATES`, 0 for none) at which
    cutting a float32 product as :func:`matmul` does (blocks of at least that many rows or columns and half
    :data:`MIN_PARALLEL_PRODUCT` multiply-adds) gives every entry bitwise as the whole product does, on this
    machine's BLAS on one thread: tried on products of three shapes with both operands in both memory
    orders (20–40 ms, once; kept only when OpenBLAS was on one thread throughout, else nothing is cut)."""
    global _cut_found
    if _cut_found is not None:
        return _cut_found
    if _blas_now != 1:  # another thread's fit just ended: OpenBLAS may be on several threads
        return (0, 0)
    rng = np.random.default_rng(0)
    found = []
    for rows in (True, False):
        unit = 0
        for q in CUT_CANDIDATES:
            if _cuts_keep_bits(rng, q, rows):
                unit = q
                break
        found.append(unit)
    if _blas_now != 1:
        return (0, 0)
    _cut_found = (found[0], found[1])
    return _cut_found


def _cuts_keep_bits(rng: np.random.Generator, q: int, rows: bool) -> bool:
    """Whether products cut at multiples of ``q`` rows (or columns), in blocks :func:`matmul` would make,
    equal the whole ones bitwise."""
    side = 4 * q + 5  # three whole blocks and a longer last one
    # every block of 16 has 2²⁰ multiply-adds or more; inner sizes past OpenBLAS's blocking of the inner
    # dimension (cuts that kept the bits below it changed them above it, on an AMD EPYC)
    for inner, other in ((300, 256), (1500, 70), (2300, 97), (70, 1000), (811, 400)):
        m, n = (side, other) if rows else (other, side)
        a0 = rng.standard_normal((m, inner), dtype=np.float32)
        b0 = rng.standard_normal((inner, n), dtype=np.float32)
        for a in (a0, np.asfortranarray(a0)):
            for b in (b0, np.asfortranarray(b0)):
                whole = a @ b
                for cut in range(q, side - q + 1, q):
                    for part in (slice(None, cut), slice(cut, None)):
                        cut_part = a[part] @ b if rows else a @ b[:, part]
                        if not np.array_equal(cut_part, whole[part] if rows else whole[:, part]):
                            return False
    return True


def matmul(a: Any, b: Any, out: Any = None) -> Any:
    """``a @ b`` of two matrices; during a fit on NumPy, split over neuro's threads.

    During a fit NumPy's OpenBLAS runs on one thread (see :class:`busy_aware_threads`), and a product is cut
    along the larger side of the result into one block per thread (rows of ``a``, or columns of ``b``; fewer
    blocks where one would have fewer than half :data:`MIN_PARALLEL_PRODUCT` multiply-adds), each one BLAS
    call on its own core. It is cut only at multiples of a row (or column) count found on this machine to
    keep every entry's sum as the whole product makes it (:func:`_cut_units`: the BLAS's tiles depend on the
    CPU), so the result is the same for every thread count, where OpenBLAS's own threads may change the last
    bits; along a side with no such count, it is cut along the other, or not at all. That holds for float32
    matrices; a product with one row or one column (OpenBLAS's matrix-vector routine, whose blocks sum their
    first entries in another order) and float64 products (whose blocks differed from the whole in one
    product of six) are not split. Elsewhere (CuPy, the strict stand-in, no OpenBLAS to talk to, outside a
    fit) this is ``a @ b``.

    Args:
        a: ``(M, K)``.
        b: ``(K, N)``.
        out: optional ``(M, N)`` array for the result; it must not overlap ``a`` or ``b`` (the blocks write
            it while others still read them).

    Shape:
        ``(M, K) @ (K, N)`` → ``(M, N)``.

    Returns:
        The product (``out`` when given).
    """
    if not _gemm_split or type(a) is not np.ndarray or type(b) is not np.ndarray:  # outside a fit: whole
        return a @ b if out is None else get_array_module(a, b, out).matmul(a, b, out=out)
    m, k = a.shape
    n = b.shape[1]
    if (
        _num_threads <= 1 or m * n * k < MIN_PARALLEL_PRODUCT or m == 1 or n == 1
        or a.dtype != np.float32 or b.dtype != np.float32
        or (out is not None and not out.flags.c_contiguous)  # NumPy swaps the operands: rows become columns
        or np.may_share_memory(a, b)  # a·aᵀ: NumPy's syrk, which sums otherwise than its blocks
    ):  # fmt: skip
        return np.matmul(a, b, out=out)
    row_unit, column_unit = _cut_units()
    by_rows = m >= n if row_unit and column_unit else bool(row_unit)  # where cuts keep the bits
    q = row_unit if by_rows else column_unit
    if not q:
        return np.matmul(a, b, out=out)
    side, per_line = (m, n * k) if by_rows else (n, m * k)  # multiply-adds per row (or column) of the result
    units = side // q  # whole tiles; the last block takes the rest (never a block of one row: NumPy's gemv)
    blocks = min(_num_threads, units)
    while blocks > 1:  # cuts at the tile edges nearest to equal shares
        cuts = [0] + [q * max(1, min(units - 1, round(side * i / (blocks * q)))) for i in range(1, blocks)]
        cuts = sorted(set(cuts)) + [side]
        if min(e - s for s, e in itertools.pairwise(cuts)) * per_line >= MIN_PARALLEL_PRODUCT // 2:
            blocks = len(cuts) - 1
            break
        blocks -= 1
    if blocks < 2:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((m, n), np.result_type(a, b))
    if by_rows:  # each thread reads all of b

        def part(s: int, e: int) -> None:
            np.matmul(a[cuts[s] : cuts[e]], b, out=out[cuts[s] : cuts[e]])

    else:

        def part(s: int, e: int) -> None:
            np.matmul(a, b[:, cuts[s] : cuts[e]], out=out[:, cuts[s] : cuts[e]])

    parallel_for(part, blocks, MIN_PARALLEL_ELEMENTS)
    return out


def parallel_map(f: Callable[..., object], out: Any, *arrays: Any, cost: int = 1) -> Any:
    """Fill ``out`` batch part by batch part: ``f(*(a[s:e] for a in arrays), out=out[s:e])``, in parallel.

    Args:
        f: an elementwise function taking ``out=`` (a ufunc, or a function calling one).
        out: the result array ``(N, ...)``; it may be one of ``arrays`` (in place).
        *arrays: the inputs, each with the batch axis of ``out``.
        cost: elementwise operations per element of ``out``, to decide whether threads pay.

    Returns:
        ``out``.
    """
    if _num_threads <= 1 or cost * out.size < MIN_PARALLEL_ELEMENTS or len(out) < 2:
        f(*arrays, out=out)  # small work (every single-sample prediction): no hand-off at all
        return out
    xp = get_array_module(out, *arrays)

    def part(start: int, stop: int) -> None:
        f(*(a[start:stop] for a in arrays), out=out[start:stop])

    parallel_for(part, len(out), cost * out.size, xp)
    return out


def scatter_sums(keys: Any, values: Any, size: int) -> Any:
    """The rows of ``values`` summed per key, deterministically, reading nothing back from a device.

    The keys are sorted (a stable sort, so each key's rows keep their order) and each key's rows are summed
    with one segmented reduction (``add.reduceat``): no atomics, so the result is the same on every run and
    thread count. A device never tells the host how many distinct keys there are (CuPy's ``nonzero`` and
    ``bincount`` would read it back and wait): every position starts a segment, the distinct keys' starts
    sorted first and empty segments after them, which sum one padding row (``-0.0``: ``x + -0.0`` is ``x``,
    bitwise) onto a spare row of the result.

    Args:
        keys: ``(n,)`` integer keys in ``[0, size)``.
        values: ``(n, ...)`` the rows to sum.
        size: the number of keys.

    Shape:
        ``(size, ...)``: ``out[k] = Σ_{i: keys[i] = k} values[i]`` (0 for a key that does not occur).

    Returns:
        The sums, in the dtype of ``values``, on their device.
    """
    xp = get_array_module(keys, values)
    n = int(keys.shape[0])
    tail = tuple(values.shape[1:])
    out = xp.zeros((size + 1, *tail), dtype=values.dtype)
    if n == 0:
        return out[:-1]
    order = xp.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = xp.empty(n, dtype=bool)
    first[0] = True
    xp.not_equal(sorted_keys[1:], sorted_keys[:-1], out=first[1:])
    starts = xp.sort(xp.where(first, xp.arange(n), n))
    pad = -0.0 if values.dtype.kind == "f" else 0
    rows = xp.concatenate([values[order], xp.full((1, *tail), pad, dtype=values.dtype)])
    reduceat = getattr(xp.add, "reduceat", None)
    if reduceat is None and type(rows).__name__ == "StrictArray":
        reduceat = np.add.reduceat  # the strict stand-in runs NumPy's ufunc methods on the device
    if reduceat is not None:
        sums = reduceat(rows, starts, axis=0)
    else:  # pragma: no cover - a device without segmented reductions: prefix sums in float64
        prefix = xp.concatenate([xp.zeros((1, *tail)), xp.cumsum(rows.astype(np.float64), axis=0)])
        ends = xp.concatenate([starts[1:], xp.asarray([n])])
        sums = (prefix[ends] - prefix[starts]).astype(values.dtype)
    out[xp.concatenate([sorted_keys, xp.asarray([size], dtype=sorted_keys.dtype)])[starts]] = sums
    return out[:-1]
