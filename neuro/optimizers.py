"""Optimizers: one small elementwise update rule each, with per-parameter state created on the first step.

An optimizer is handed the list of parameters and the list of their gradients once per batch. A step has
two halves, so that a network can refuse a step that would make anything non-finite and keep every array
exactly as it was:

- :meth:`Optimizer.stage` computes each parameter's new value ``w − s`` and the new state into arrays of their
  own, changing nothing, and returns on the device a probe of them (one dot product per array, whose
  finiteness says whether the step is safe); the training step stages ``in_place`` instead: with the
  compiled kernels the new values are written into the parameters in the same pass and the old ones kept;
- :meth:`Optimizer.commit` copies the new values in (the parameters keep their identity; nothing to copy
  after an in-place stage) and swaps in the new state; :meth:`Optimizer.discard` drops a staged step, putting
  back the old values an in-place stage wrote.

:meth:`Optimizer.step` does both. On the CPU the rule runs on parts of each flattened parameter spread over
neuro's threads (on a GPU each array is one part). The state (step count and one dict of arrays per
parameter) can be read with :meth:`Optimizer.get_state` and restored with :meth:`Optimizer.set_state`, so
a saved model resumes training exactly.

Every rule follows ``torch.optim``, and scalars are cast to the parameter's dtype so float32 parameters stay
float32. Weight decay is decoupled, as Keras 3's ``weight_decay`` and ``torch.optim.AdamW`` (:class:`AdamW`,
or ``Adam(weight_decay=...)``); a penalty added to the loss is a regularizer's job
(:mod:`neuro.regularizers`).

The arguments have Keras's names (``learning_rate``, ``beta_1``, ``beta_2``, ``epsilon``, ``rho``,
``weight_decay``); neuro's older spellings ``beta1``, ``beta2`` and ``decay_rate`` still work for one release
with a DeprecationWarning, and files saved with them load silently.
"""

from __future__ import annotations

import itertools
import math
import numbers
import threading
from threading import get_ident as _get_ident
from typing import Any

import numpy as np

from neuro import backend, registry, schedules
from neuro._keywords import KeywordChecked, quiet
from neuro.backend import get_array_module


def _check_range(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = True,
) -> float:
    """Return ``value`` as a float; raise ValueError naming ``name`` if outside the interval."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    inside = is_number and (low < value if low_open else low <= value)
    inside = inside and (value < high if high_open else value <= high)
    if not inside:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def _check_positive(name: str, value: Any) -> float:
    """Return ``value`` as a float; raise ValueError naming ``name`` unless it is finite and > 0."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not value > 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _check_rate(value: Any) -> float:
    """Return a learning rate as a float; raise ValueError unless it is a finite number >= 0 (0 as in torch
    and Keras: a warm-up starts there)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0:
        raise ValueError(f"learning_rate must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_decay(value: Any) -> float:
    """Return a weight decay λ as a float; raise ValueError unless it is a finite number >= 0."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0:
        raise ValueError(f"weight_decay must be a finite number >= 0 or None, got {value!r}")
    return float(value)


class Optimizer(KeywordChecked):
    """Base class.

    Args:
        learning_rate: a float >= 0, or a schedule (any callable ``step -> lr``, see
            :mod:`neuro.schedules`) evaluated at the 0-based step count before each update.
        clipnorm: clip each parameter's gradient to this L2 norm: ``g ← g·min(1, c/‖g‖)`` (Keras's
            ``clipnorm``).
        clipvalue: clip every gradient value to ``[−v, v]`` (Keras's ``clipvalue``).
        global_clipnorm: scale all gradients together so that their joint L2 norm is at most c:
            ``g ← g·min(1, c/(‖g‖ + 1e-6))``, exactly ``torch.nn.utils.clip_grad_norm_`` (Keras's
            ``global_clipnorm``, with PyTorch's 1e-6). Not with ``clipnorm``.

    Clipping happens inside the guarded step, on the device, before the rule: a clipped update is still
    checked for NaN and infinity before it is kept.

    Attributes:
        iterations: number of updates done so far; the update being applied is step ``t = iterations + 1``.
        slots: one state dict per parameter (for example ``{"m": ..., "v": ...}`` for Adam), created on the
            first step.

    Subclasses name their state arrays in :meth:`slot_names` and implement :meth:`rule`.
    """

    #: Names of the state arrays that are running means of squares (never negative; a loader refuses less).
    nonnegative_slots: tuple[str, ...] = ()

    #: The compiled version of :meth:`rule` (numba kernel set): ``kernel(w, g, *state, *new_state, other,
    #: *scalars, largest_float, in_place, done, start) -> bool`` applies the rule to every element of the flat
    #: arrays it is given (one thread's part of a parameter, from element ``start`` on: :meth:`stage` slices
    #: them) with the same operations in the same order (so bitwise the same values), writes the new weights
    #: ``w − step`` into ``other`` (or, ``in_place``, into ``w``, and the old ones into ``other``), writes
    #: ``done = (start, start + size)`` as its last act, and returns whether every new weight and new state
    #: value is finite: the exact check, in the same pass.
    kernel: Any = None

    def __init__(
        self, learning_rate: Any, *, clipnorm: Any = None, clipvalue: Any = None, global_clipnorm: Any = None
    ) -> None:
        self.learning_rate = learning_rate
        self.clipnorm = None if clipnorm is None else _check_positive("clipnorm", clipnorm)
        self.clipvalue = None if clipvalue is None else _check_positive("clipvalue", clipvalue)
        self.global_clipnorm = (
            None if global_clipnorm is None else _check_positive("global_clipnorm", global_clipnorm)
        )
        if self.clipnorm is not None and self.global_clipnorm is not None:
            raise ValueError("give clipnorm (per parameter) or global_clipnorm (all together), not both")
        self.iterations = 0
        self.slots: list[dict[str, Any]] = []
        self._spare: list[dict[str, Any]] = []  # the other half of each state's double buffer
        self._current: list[dict[str, Any]] = []  # the state a staged step starts from
        self._steps: list[Any] = []  # the staged new values of the parameters (in place: their old values)
        self._in_place = False  # whether the staged step wrote the parameters (see stage's in_place)
        self._done: list[Any] = []  # per parameter: the (start, stop) each kernel call wrote, in place
        self._scratch: dict[tuple, Any] = {}
        self._bad: int | None = None  # parts the compiled stage found non-finite (None: not checked)
        self._commit_to: tuple | None = None  # (new slots, spare slots, iterations) of the staged step

    @property
    def learning_rate(self) -> Any:
        """The learning rate: a float >= 0, or a schedule (a function of the 0-based step count).

        Setting it checks the value as the constructor does (a Keras habit: ``opt.learning_rate = 1e-4``);
        a dict is read as a serialized schedule.
        """
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        if isinstance(value, dict):
            value = schedules.get(value)
        if isinstance(value, type):
            raise TypeError(
                f"learning_rate must be a number, a schedule or a function of the step, got the class "
                f"{value.__name__} (make one: {value.__name__}(...))"
            )
        self._learning_rate = value if callable(value) else _check_rate(value)

    def slot_names(self) -> tuple[str, ...]:
        """Names of the state arrays kept per parameter (each shaped like it)."""
        return ()

    def current_learning_rate(self) -> float:
        """The learning rate the next step will use.

        Raises:
            ValueError: when a schedule gives a negative or non-finite rate (0 is allowed: a cosine decay
                ends there).
        """
        lr = self._learning_rate
        if not callable(lr):
            return lr
        value = lr(self.iterations)
        try:  # a number, or a 0-d array (NumPy's, CuPy's: Keras's schedules give tensors)
            wrong = isinstance(value, (bool, np.bool_, str, bytes)) or np.ndim(value)
            rate = math.nan if wrong else float(value)
        except (TypeError, ValueError):
            rate = math.nan
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(
                f"learning_rate {lr!r} must give a finite rate >= 0, gave {value!r} at step {self.iterations}"
            )
        return rate

    def step(self, params: list[Any], grads: list[Any]) -> None:
        """Update every parameter in place from its gradient (:meth:`stage`, then :meth:`commit`).

        Args:
            params: the parameter arrays, always in the same order.
            grads: their gradients (same shapes); not modified.
        """
        self.stage(params, grads)
        self.commit(params)

    def _prepare(self, params: list[Any]) -> None:
        """Point ``_current`` at the state the next step starts from, and make the arrays it writes into.

        The current state is ``slots`` when they fit the parameters (one dict per parameter with exactly the
        :meth:`slot_names`, each of its parameter's shape; moved to the parameter's device and dtype if they
        are elsewhere, as after ``set_state`` without parameters), else fresh zeros. Nothing here changes
        ``slots``: a step that is never committed leaves the optimizer exactly as it was, first step included.
        """
        names = set(self.slot_names())
        fits = len(self.slots) == len(params) and all(
            set(s) == names and all(tuple(v.shape) == tuple(p.shape) for v in s.values())
            for s, p in zip(self.slots, params, strict=False)
        )
        if fits:
            self._current = [
                {k: v if _same_place(v, p) else _moved(v, p) for k, v in s.items()}
                for s, p in zip(self.slots, params, strict=True)
            ]
        else:
            self._current = [{k: get_array_module(p).zeros_like(p) for k in names} for p in params]
        if len(self._steps) != len(params) or any(
            (not _same_place(n, p)) for n, p in zip(self._steps, params, strict=True)
        ):
            self._spare = [{k: get_array_module(p).empty_like(p) for k in names} for p in params]
            self._steps = [get_array_module(p).empty_like(p) for p in params]  # w_new = w − step

    def stage(self, params: list[Any], grads: list[Any], *, in_place: bool = False) -> Any:
        """Compute every parameter's new values ``w − step`` and new state into arrays of their own; change
        nothing (but see ``in_place``).

        The first call (or a call with parameters of other shapes) starts from a zero state, which becomes
        the optimizer's only when the step is committed. The learning rate is :meth:`current_learning_rate`,
        the step number ``t = iterations + 1``.

        Args:
            params: the parameter arrays, always in the same order (not modified, but see ``in_place``).
            grads: their gradients, of the same shapes (not modified).
            in_place: with the compiled kernels, write the new values into the parameters at once and keep
                their old ones (no copy at :meth:`commit`); :meth:`discard` then puts the old values back,
                bitwise, for a step that is not committed. The training step stages so. Elsewhere (NumPy's
                kernels, a device, kernels run as Python under ``NUMBA_DISABLE_JIT``, a parameter given twice
                or a view of another array) the step is staged as without it.

        Returns:
            ``None`` without parameters; else a 0-d device array in the parameters' dtype: the sum of the dot
            products of the new values and new state arrays taken in pairs (``a·b``, an odd last one ``a·a``),
            which is non-finite for any NaN or infinity in either array (``inf·0`` is NaN). It is finite when
            every new value is finite and below about 1e19 (float32) in size; finite values beyond that size
            may make it non-finite too, which :meth:`staged_finite` tells apart exactly. With the compiled
            kernels the check is exact in the same pass, and the probe is 0 or inf.
        """
        if len(grads) != len(params):
            raise ValueError(f"grads must hold one gradient per parameter ({len(params)}), got {len(grads)}")
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if not p.flags.c_contiguous:  # reshape(-1) would copy, and the update would be lost
                raise ValueError(
                    f"params must be C-contiguous arrays, got one of shape {tuple(p.shape)} that is not"
                )
            if tuple(g.shape) != tuple(p.shape):  # the compiled kernels index g by p's entries
                raise ValueError(
                    f"grads[{i}] must have the shape of params[{i}] {tuple(p.shape)}, got {tuple(g.shape)}"
                )
        self._prepare(params)
        self._params = params
        grads = self.clip(grads)
        lr = self.current_learning_rate()
        t = self.iterations + 1
        self._bad = None
        self._in_place = False
        self._commit_to = (self._spare, self._current, self.iterations + 1)
        if not params:
            return None
        decay = self.decay_factor(lr)
        if self.kernel is not None and backend.compiled(*params, *grads):
            in_place = in_place and backend.native_kernels() and _apart(params)
            return self._stage_compiled(params, grads, lr, t, decay, in_place)
        probes: list[Any] = []
        for p, g, s, ns, new_w in zip(params, grads, self._current, self._spare, self._steps, strict=True):
            xp = get_array_module(p, g)
            pf, gf, out = p.reshape(-1), g.reshape(-1), new_w.reshape(-1)
            sf = {k: v.reshape(-1) for k, v in s.items()}
            nsf = {k: v.reshape(-1) for k, v in ns.items()}
            # in cache-sized chunks on the CPU: the rule, the new values and their probes while the chunk is
            # in cache (one part per thread; a device does each array at once)
            chunk = _CHUNK if xp is np else max(p.size, 1)
            parts: list[Any] = []

            def run(
                a: int, b: int, pf: Any = pf, gf: Any = gf, out: Any = out, sf: dict = sf, nsf: dict = nsf,
                parts: list = parts, xp: Any = xp, chunk: int = chunk,
            ) -> None:
                total = None
                for c in range(a, b, chunk):
                    d = min(c + chunk, b)
                    new = {k: v[c:d] for k, v in nsf.items()}
                    w, o = pf[c:d], out[c:d]
                    self.rule(w, gf[c:d], {k: v[c:d] for k, v in sf.items()}, new, o, lr, t)
                    if decay is not None:  # decoupled weight decay: the step grows by lr·λ·w
                        o += xp.multiply(w, w.dtype.type(decay), out=self.tmp(w, 1))
                    xp.subtract(w, o, out=o)  # the new values
                    # a·b is non-finite wherever a or b is (inf·0 is NaN): the arrays' dot products in pairs
                    arrays = (o, *new.values())
                    for i in range(0, len(arrays), 2):
                        dot = xp.dot(arrays[i], arrays[min(i + 1, len(arrays) - 1)])
                        total = dot if total is None else total + dot
                parts.append(total)

            backend.parallel_for(run, p.size, 4 * p.size, xp)
            probes.extend(v for v in parts if v is not None)
        xp = get_array_module(*probes[:1])
        with np.errstate(over="ignore", invalid="ignore"):
            return xp.stack(probes).sum()

    def decay_factor(self, lr: float) -> float | None:
        """``lr·λ`` of a decoupled weight decay (the step then grows by ``lr·λ·w``), or ``None`` (none here).

        Args:
            lr: the learning rate of this step.

        Returns:
            The factor, or ``None``.
        """
        return None

    def _stage_compiled(
        self, params: list[Any], grads: list[Any], lr: float, t: int, decay: Any, in_place: bool
    ) -> Any:
        """:meth:`stage` with the compiled rule: one pass per element computes the new values and state and
        checks that they are finite (exactly; :meth:`staged_finite` then reads the result). In place, each
        kernel call records the part it wrote (its last act, so an interrupt never leaves a part written and
        not recorded), for :meth:`discard`."""
        names = self.slot_names()
        parts = backend.get_num_threads()  # parallel_for is told to make no more parts than this
        # recorded before any parameter is written: discard() reads them whatever stops the stage
        self._done = [np.zeros((parts, 2), np.int64) for _ in params]
        self._in_place = in_place
        bad = 0
        for p, g, s, ns, other, done in zip(
            params, grads, self._current, self._spare, self._steps, self._done, strict=True
        ):
            dt = p.dtype.type
            arrays = [p, g, *(s[k] for k in names), *(ns[k] for k in names), other]
            flats = [a.reshape(-1) for a in arrays]
            scalars = (
                *self.kernel_scalars(dt, lr, t),
                *((dt(0.0 if decay is None else decay), decay is not None) if self.kernel_decays else ()),
                np.finfo(p.dtype).max,
                in_place,
            )
            oks: list[bool] = []
            slots = itertools.count()

            def run(
                a: int, b: int, flats: list = flats, scalars: tuple = scalars, oks: list = oks,
                done: Any = done, slots: Any = slots,
            ) -> None:  # fmt: skip
                # from 0: the loops vectorize
                oks.append(self.kernel(*(f[a:b] for f in flats), *scalars, done[next(slots)], a))

            backend.parallel_for(run, p.size, 4 * p.size, np, max_parts=parts)
            bad += oks.count(False)
        self._bad = bad
        return np.asarray(0.0 if bad == 0 else np.inf, dtype=params[0].dtype)  # as NumPy's probe

    def discard(self) -> None:
        """Drop the staged step: the parameters a step staged in place (those given to :meth:`stage`) get
        their old values back, bitwise; elsewhere nothing was written. Idempotent, like :meth:`commit`: a
        discard cut short by an exception and called again ends as one whole discard.
        """
        if self._in_place and self._commit_to is not None:
            for p, old, done in zip(self._params, self._steps, self._done, strict=True):
                flat, kept = p.reshape(-1), old.reshape(-1)
                for start, stop in done.tolist():
                    if stop > start:
                        flat[start:stop] = kept[start:stop]
        self._commit_to = None
        self._in_place = False
        self._current = []

    #: Whether :attr:`kernel` takes the decay factor and a flag after its scalars (a decoupled weight decay).
    kernel_decays = False

    def kernel_scalars(self, dt: Any, lr: float, t: int) -> tuple:
        """The scalars :attr:`kernel` takes after the arrays, in the parameter's dtype ``dt``.

        Args:
            dt: the parameter's scalar type (``numpy.float32`` or ``numpy.float64``).
            lr: the learning rate of this step.
            t: the 1-based number of this step.

        Returns:
            The scalars, in the kernel's order.
        """
        raise NotImplementedError

    def clip(self, grads: list[Any]) -> list[Any]:
        """The gradients clipped as the optimizer's ``clipnorm``, ``clipvalue`` and ``global_clipnorm`` say
        (new arrays: the given ones are not modified; on the device, no host read).

        A non-finite gradient stays non-finite, so that the training step's guard sees it: a norm with an
        infinity in it makes the clipped values NaN (0 · inf), and ``clipvalue`` turns an infinity into NaN
        instead of the bound.

        Args:
            grads: the gradients.

        Returns:
            The clipped gradients (``grads`` itself without clipping).
        """
        if not grads or (self.clipnorm is None and self.clipvalue is None and self.global_clipnorm is None):
            return grads
        xp = get_array_module(*grads[:1])
        if self.global_clipnorm is not None:
            norm = xp.sqrt(xp.stack([xp.dot(g.reshape(-1), g.reshape(-1)) for g in grads]).sum())
            coef = xp.minimum(self.global_clipnorm / (norm + 1e-6), 1.0)  # torch's clip_grad_norm_
            grads = [g * coef.astype(g.dtype) for g in grads]
        if self.clipnorm is not None:
            with np.errstate(divide="ignore"):
                grads = [
                    g * xp.minimum(self.clipnorm / xp.sqrt(xp.dot(g.reshape(-1), g.reshape(-1))), 1.0).astype(
                        g.dtype
                    )
                    for g in grads
                ]
        if self.clipvalue is not None:
            clipped = []
            for g in grads:
                c = xp.clip(g, g.dtype.type(-self.clipvalue), g.dtype.type(self.clipvalue))
                xp.copyto(c, g.dtype.type(np.nan), where=xp.isinf(g))  # the guard must see it
                clipped.append(c)
            grads = clipped
        return grads

    def staged_finite(self) -> bool:
        """Exact check (every element) that the staged new values are finite; reads one flag."""
        if self._bad is not None:  # the compiled stage counted them already
            return self._bad == 0
        checks = [get_array_module(a).isfinite(a).all() for a in self._steps]
        checks += [get_array_module(a).isfinite(a).all() for s in self._spare for a in s.values()]
        if not checks:
            return True
        xp = get_array_module(checks[0])
        return bool(backend.to_numpy(xp.stack(checks).all()))

    def commit(self, params: list[Any]) -> None:
        """Make the staged step current: copy the new values into the parameters (an in-place stage wrote
        them already) and put the new state in.

        Also counts the step (``iterations`` becomes the staged step's number). Call it only after
        :meth:`stage` with the same parameters. Committing is idempotent: a commit cut short by an exception
        (an interrupt) and called again ends exactly as one whole commit, and a second call after a whole
        one changes nothing, so a step is never left half applied.

        Args:
            params: the parameter arrays given to :meth:`stage`; each is updated in place (its identity is
                kept).
        """
        target = self._commit_to
        if target is None:
            return
        for p, new_w in zip(params, self._steps, strict=True) if not self._in_place else ():
            xp = get_array_module(p)
            flat, new = p.reshape(-1), new_w.reshape(-1)

            def apply(start: int, stop: int, flat: Any = flat, new: Any = new, xp: Any = xp) -> None:
                xp.copyto(flat[start:stop], new[start:stop])

            backend.parallel_for(apply, p.size, 2 * p.size, xp)
        self.slots, self._spare, self.iterations = target
        self._current = []
        self._commit_to = None  # first: a commit called again now returns at once, copying nothing
        self._in_place = False

    def rule(
        self, param: Any, grad: Any, state: dict[str, Any], new: dict[str, Any], out: Any, lr: float, t: int
    ) -> None:
        """Apply the update rule to one block of one parameter.

        Args:
            param: the current values (read only).
            grad: their gradient (read only).
            state: the current state arrays of the block (read only).
            new: arrays to write the new state into.
            out: array to write the step into: the new parameter values are ``param − out``.
            lr: the learning rate of this step.
            t: the 1-based number of this step.
        """
        raise NotImplementedError

    def tmp(self, like: Any, k: int = 0) -> Any:
        """A work array shaped like the block ``like`` (not part of the state), one per thread and use.

        The array is cached by shape, dtype, device, ``k`` and the calling thread, so a rule may use it freely
        within one call; its contents are undefined on entry. Arrays of threads that ended are dropped when
        another is made (a server's request threads each training once leave nothing behind).

        Args:
            like: the block the work array must match (shape, dtype and device).
            k: which work array of the rule, when it needs several at once (0, 1, …).

        Returns:
            An uninitialised array shaped like ``like``.
        """
        xp = get_array_module(like)
        # NumPy's arrays keyed without a device name (the rule asks for them once per chunk)
        key = (like.shape, like.dtype.char, k, _get_ident(), None if xp is np else backend.device_name(xp))
        arr = self._scratch.get(key)
        if arr is None:
            live = {t.ident for t in threading.enumerate()}  # threads that ended keep no arrays here
            # a snapshot, and pop: several pool threads may make arrays at once
            for gone in [key_ for key_ in list(self._scratch) if key_[3] not in live]:
                self._scratch.pop(gone, None)
            arr = self._scratch[key] = xp.empty_like(like)
        return arr

    def to(self, xp: Any) -> None:
        """Move the state to the device of ``xp`` (spare and scratch arrays are made anew there).

        Args:
            xp: the array module of the target device (see :func:`neuro.backend.get_device`).
        """
        self.slots = [{k: backend.to_device(v, xp) for k, v in s.items()} for s in self.slots]
        self._spare, self._steps, self._scratch = [], [], {}

    def get_state(self) -> dict[str, Any]:
        """Return ``{"iterations": int, "slots": [{name: numpy array} per parameter]}`` (copies)."""
        return {
            "iterations": self.iterations,
            "slots": [{k: backend.to_numpy(v).copy() for k, v in s.items()} for s in self.slots],
        }

    def set_state(self, state: dict[str, Any], params: list[Any] | None = None) -> None:
        """Restore what :meth:`get_state` returned, onto the device and dtype of ``params``.

        Args:
            state: ``{"iterations": int >= 0, "slots": [...]}``; ``slots`` is empty (no step yet) or has one
                dict per parameter with exactly the names of :meth:`slot_names`, each shaped like it.
            params: the parameters the state belongs to (checked against); ``None`` skips the checks.

        Raises:
            ValueError: for a state that does not fit the parameters.
        """
        it = state["iterations"]
        if isinstance(it, bool) or not isinstance(it, (int, np.integer)) or it < 0:
            raise ValueError(f"iterations must be a non-negative integer, got {it!r}")
        slots = list(state["slots"])
        names = set(self.slot_names())
        if params is not None and slots:
            if len(slots) != len(params):
                raise ValueError(f"slots must hold one dict per parameter ({len(params)}), got {len(slots)}")
            for i, (s, p) in enumerate(zip(slots, params, strict=True)):
                if set(s) != names:
                    raise ValueError(f"slots[{i}] must hold {sorted(names)}, got {sorted(s)}")
                for k, v in s.items():
                    if tuple(np.shape(v)) != tuple(p.shape):
                        raise ValueError(
                            f"slots[{i}][{k!r}] must have shape {tuple(p.shape)}, got {tuple(np.shape(v))}"
                        )
        self.iterations = int(it)
        if params is None:  # float arrays keep their dtype (the parameters' dtype moves them at the step)
            self.slots = [
                {k: np.array(v, dtype=_kept_float(v), order="C") for k, v in s.items()} for s in slots
            ]
        else:
            self.slots = [
                {
                    k: backend.to_device(np.array(v, dtype=p.dtype, order="C"), get_array_module(p))
                    for k, v in s.items()
                }
                for s, p in zip(slots, params, strict=False)
            ]
        self._spare, self._steps = [], []

    def dtype_problem(self, dtype: Any) -> tuple[str, str] | None:
        """What keeps this optimizer from stepping parameters of ``dtype``, if anything: its learning rate (a
        number), weight decay and a schedule's numbers must be finite there, and epsilon finite and positive
        (1e300 is inf in float32, 1e-50 is 0: the first step would fail). ``compile`` and the model loader
        refuse what this names.

        Args:
            dtype: the parameters' dtype.

        Returns:
            ``(setting, what is wrong)`` or ``None``.
        """
        name = np.dtype(dtype).name
        for key, least in (("learning_rate", ">= 0"), ("epsilon", "positive")):
            value = getattr(self, key, None)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue  # a schedule, or no such setting
            cast = _in_dtype(value, dtype)
            if not (np.isfinite(cast) and (cast > 0 or (cast == 0 and key == "learning_rate"))):
                return key, (
                    f"must be finite and {least} in {name} (the model's dtype), got {value!r}, "
                    f"which becomes {cast}"
                )
        numbers = [("weight_decay", getattr(self, "weight_decay", None))]
        schedule = getattr(self, "learning_rate", None)
        if hasattr(schedule, "get_config"):
            numbers += [(f"learning_rate.{k}", v) for k, v in schedule.get_config().items()]
        for key, value in numbers:
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if type(v) in (int, float) and not np.isfinite(_in_dtype(v, dtype)):
                    return key, f"must be finite in {name} (the model's dtype), got {v!r}"
        return None

    def get_config(self) -> dict[str, Any]:
        """Return ``{"learning_rate": float or serialized schedule, **settings}`` (the clipping arguments
        when set)."""
        lr = self.learning_rate
        cfg: dict[str, Any] = {"learning_rate": registry.serialize(lr) if hasattr(lr, "get_config") else lr}
        for k in ("clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(self, k, None) is not None:
                cfg[k] = getattr(self, k)
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        """Rebuild an optimizer from :meth:`get_config`'s output (a serialized schedule included).

        Args:
            config: the constructor arguments, as :meth:`get_config` returns them; a ``learning_rate`` that is
                a dict is deserialized as a schedule.

        Returns:
            A new optimizer of this class, with no state.
        """
        cfg = dict(config)
        if isinstance(cfg.get("learning_rate"), dict):
            cfg["learning_rate"] = registry.deserialize("schedule", cfg["learning_rate"])
        with quiet():  # a saved config may use old keyword spellings (beta1, decay_rate)
            return cls(**cfg)


#: Elements per chunk of the NumPy rule and its probes (a chunk's arrays stay in the cache between them).
_CHUNK = 1 << 16


def _kept_float(v: Any) -> Any:
    """The dtype a state array given without parameters is kept in: its own float dtype, else the default."""
    dtype = getattr(v, "dtype", None)
    return dtype if dtype is not None and np.dtype(dtype).kind == "f" else backend.get_dtype()


def _in_dtype(value: Any, dtype: Any) -> Any:
    """``value`` as ``dtype`` computes with it (overflow to inf, underflow to 0)."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return np.asarray(value, dtype=np.float64).astype(dtype)


def _apart(params: list[Any]) -> bool:
    """Whether ``params`` are distinct arrays that own their memory (none given twice, none a view), so that
    writing each in place changes no other."""
    return all(p.base is None for p in params) and len({id(p) for p in params}) == len(params)


def _same_place(a: Any, b: Any) -> bool:
    """``a`` can be a state array of parameter ``b``: its shape, dtype and device, and C-contiguous (the
    kernels write through flat views of it)."""
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and get_array_module(a) is get_array_module(b)
        and a.flags.c_contiguous
    )


def _moved(v: Any, like: Any) -> Any:
    """``v`` on the device and in the dtype of ``like``."""
    return backend.to_device(
        np.ascontiguousarray(backend.to_numpy(v), dtype=like.dtype), get_array_module(like)
    )


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    Update, with velocity v (zero at start) and momentum μ::

        v ← μ·v + g
        w ← w − lr·(g + μ·v)   if nesterov
        w ← w − lr·v           otherwise      (with μ = 0: w ← w − lr·g, and no state)

    Args:
        learning_rate: step size (default 0.01), a float or a schedule.
        momentum: μ in [0, 1).
        nesterov: use Nesterov momentum (needs momentum > 0).
        **clipping: ``clipnorm``, ``clipvalue``, ``global_clipnorm`` (see :class:`Optimizer`).

    Raises:
        ValueError: for an argument out of range.
        TypeError: for a ``nesterov`` that is not a bool.
    """

    def __init__(
        self, learning_rate: Any = 0.01, momentum: float = 0.0, nesterov: bool = False, **clipping: Any
    ) -> None:
        super().__init__(learning_rate, **clipping)
        self.momentum = _check_range("momentum", momentum, 0.0, 1.0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
        self.nesterov = bool(nesterov)

    def slot_names(self) -> tuple[str, ...]:
        return ("velocity",) if self.momentum else ()

    def rule(self, param: Any, grad: Any, state: dict, new: dict, out: Any, lr: float, t: int) -> None:
        xp = get_array_module(param, grad)
        dt = param.dtype.type
        step = out
        if self.momentum == 0.0:
            xp.multiply(grad, dt(lr), out=step)
        else:
            mu = dt(self.momentum)
            v = xp.multiply(state["velocity"], mu, out=new["velocity"])
            v += grad
            if self.nesterov:
                xp.multiply(v, mu, out=step)  # g + μ·v
                step += grad
                step *= dt(lr)
            else:
                xp.multiply(v, dt(lr), out=step)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}

    @property
    def kernel(self) -> Any:  # type: ignore[override]
        """The compiled rule (see :attr:`Optimizer.kernel`): with momentum or without.

        Returns:
            The kernel.
        """
        return _sgd_momentum_kernel if self.momentum else _sgd_kernel

    def kernel_scalars(self, dt: Any, lr: float, t: int) -> tuple:
        if not self.momentum:
            return (dt(lr),)
        return dt(self.momentum), dt(lr), self.nesterov


@backend.kernel
def _sgd_kernel(
    w: Any, g: Any, other: Any, lr: Any, big: Any, in_place: bool, done: Any, start: int
) -> bool:  # fmt: skip
    ok = True  # a branch-free AND (vectorized): |value| <= the largest float fails for inf and NaN
    for i in range(w.size):
        wi = w[i]
        nw = wi - g[i] * lr
        if in_place:  # the old value kept, the new one written over it
            other[i] = wi
            w[i] = nw
        else:
            other[i] = nw
        ok &= abs(nw) <= big
    done[0] = start  # last: the part is written
    done[1] = start + w.size
    return ok


@backend.kernel
def _sgd_momentum_kernel(
    w: Any, g: Any, v: Any, v_new: Any, other: Any, mu: Any, lr: Any, nesterov: bool, big: Any,
    in_place: bool, done: Any, start: int,
) -> bool:  # fmt: skip
    ok = True  # a branch-free AND (vectorized): |value| <= the largest float fails for inf and NaN
    for i in range(w.size):
        vi = v[i] * mu
        vi = vi + g[i]
        v_new[i] = vi
        if nesterov:
            d = vi * mu
            d = d + g[i]
            d = d * lr
        else:
            d = vi * lr
        wi = w[i]
        nw = wi - d
        if in_place:  # the old value kept, the new one written over it
            other[i] = wi
            w[i] = nw
        else:
            other[i] = nw
        ok &= (abs(nw) <= big) & (abs(vi) <= big)
    done[0] = start  # last: the part is written
    done[1] = start + w.size
    return ok


class Adam(Optimizer):
    """Adam with bias correction, as ``torch.optim.Adam``.

    Paper: Kingma & Ba, 2015, https://arxiv.org/abs/1412.6980

    Update at step t = 1, 2, … with first and second moments m, v (zero at start)::

        m ← β1·m + (1 − β1)·g
        v ← β2·v + (1 − β2)·g²
        m̂ = m / (1 − β1^t),   v̂ = v / (1 − β2^t)
        w ← w − lr · m̂ / (sqrt(v̂) + ε)

    ε is added *after* the square root of the bias-corrected v̂ (as in torch, not inside the root).

    With ``weight_decay`` λ the step also decays the weights, decoupled from the gradient (Loshchilov &
    Hutter, https://arxiv.org/abs/1711.05101), as Keras 3's ``Adam(weight_decay=λ)`` and
    ``torch.optim.AdamW``::

        w ← w − lr·λ·w − lr · m̂ / (sqrt(v̂) + ε)

    (torch writes it ``w ← w·(1 − lr·λ)`` before the Adam step: the same update). It is applied as a separate
    step after the rule (:meth:`stage`); ``torch.optim.Adam(weight_decay=)``, which adds λ·w to the gradient
    instead, is a regularizer here (:class:`~neuro.regularizers.L2`).

    Args:
        learning_rate: step size lr (default 0.001), a float or a schedule.
        beta_1: decay β1 of the first moment, in [0, 1) (``beta1`` is its old name, deprecated).
        beta_2: decay β2 of the second moment, in [0, 1) (``beta2`` is its old name, deprecated).
        epsilon: ε > 0 (default 1e-8, torch's; Keras's is 1e-7).
        weight_decay: λ >= 0 of the decoupled weight decay, or ``None`` (the default: none). It decays every
            parameter, biases included, as Keras and torch do.
        **clipping: ``clipnorm``, ``clipvalue``, ``global_clipnorm`` (see :class:`Optimizer`).

    Raises:
        ValueError: for an argument out of range.
    """

    nonnegative_slots = ("v",)
    renamed_keywords = {"beta1": "beta_1", "beta2": "beta_2"}

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float | None = None,
        **clipping: Any,
    ) -> None:
        super().__init__(learning_rate, **clipping)
        self.beta_1 = _check_range("beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = _check_range("beta_2", beta_2, 0.0, 1.0)
        self.epsilon = _check_positive("epsilon", epsilon)
        self.weight_decay = None if weight_decay is None else _check_decay(weight_decay)

    @property
    def beta1(self) -> float:
        """β1 under its old name (the rule's)."""
        return self.beta_1

    @property
    def beta2(self) -> float:
        """β2 under its old name (the rule's)."""
        return self.beta_2

    def decay_factor(self, lr: float) -> float | None:
        """``lr·λ`` with λ = ``weight_decay``: each step s becomes ``s + lr·λ·w``, so the committed update is
        ``w ← w − (s + lr·λ·w)`` (``torch.optim.AdamW``).

        Args:
            lr: the learning rate of this step.

        Returns:
            The factor, or ``None`` without weight decay.
        """
        return lr * self.weight_decay if self.weight_decay else None

    def slot_names(self) -> tuple[str, ...]:
        return ("m", "v")

    def rule(self, param: Any, grad: Any, state: dict, new: dict, out: Any, lr: float, t: int) -> None:
        xp = get_array_module(param, grad)
        dt = param.dtype.type
        # (1 − β2)·g·g in torch's order (addcmul): g·g alone overflows float32 from |g| ≈ 1.8e19
        tmp = xp.multiply(grad, dt(1.0 - self.beta2), out=out)  # the one work array, which ends as the step
        tmp *= grad
        v = xp.multiply(state["v"], dt(self.beta2), out=new["v"])
        v += tmp
        xp.multiply(grad, dt(1.0 - self.beta1), out=tmp)
        m = xp.multiply(state["m"], dt(self.beta1), out=new["m"])
        m += tmp
        # denominator sqrt(v̂) + ε = sqrt(v) / sqrt(1 − β2^t) + ε; step size lr / (1 − β1^t)
        xp.sqrt(v, out=tmp)
        tmp /= dt(math.sqrt(1.0 - self.beta2**t))
        tmp += dt(self.epsilon)
        xp.divide(m, tmp, out=tmp)
        tmp *= dt(lr / (1.0 - self.beta1**t))

    def get_config(self) -> dict[str, Any]:
        cfg = {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
        if self.weight_decay is not None:
            cfg["weight_decay"] = self.weight_decay
        return cfg

    def kernel_scalars(self, dt: Any, lr: float, t: int) -> tuple:
        return (
            dt(self.beta1),
            dt(1.0 - self.beta1),
            dt(self.beta2),
            dt(1.0 - self.beta2),
            dt(math.sqrt(1.0 - self.beta2**t)),
            dt(self.epsilon),
            dt(lr / (1.0 - self.beta1**t)),
        )


@backend.kernel
def _adam_kernel(
    w: Any, g: Any, m: Any, v: Any, m_new: Any, v_new: Any, other: Any,
    b1: Any, one_b1: Any, b2: Any, one_b2: Any, root_bc2: Any, eps: Any, size: Any, decay: Any, decayed: bool,
    big: Any, in_place: bool, done: Any, start: int,
) -> bool:  # fmt: skip
    ok = True  # a branch-free AND (vectorized): |value| <= the largest float fails for inf and NaN
    for i in range(w.size):  # Adam.rule's operations, in its order
        gi = g[i]
        vi = v[i] * b2
        vi = vi + (one_b2 * gi) * gi
        mi = m[i] * b1
        mi = mi + gi * one_b1
        v_new[i] = vi
        m_new[i] = mi
        d = np.sqrt(vi) / root_bc2
        d = mi / (d + eps)
        d = d * size
        wi = w[i]
        if decayed:  # the decoupled weight decay, as the NumPy path adds it
            d = d + wi * decay
        nw = wi - d
        if in_place:  # the old value kept, the new one written over it
            other[i] = wi
            w[i] = nw
        else:
            other[i] = nw
        ok &= (abs(nw) <= big) & (abs(vi) <= big) & (abs(mi) <= big)
    done[0] = start  # last: the part is written
    done[1] = start + w.size
    return ok


Adam.kernel = _adam_kernel
Adam.kernel_decays = True


class RMSprop(Optimizer):
    """RMSprop, the rule of ``torch.optim.RMSprop`` with ``alpha = rho`` (no momentum, not centered; ``rho``
    defaults to 0.9 as Keras, where torch's ``alpha`` is 0.99).

    Update with the running mean of squared gradients v (zero at start) and ρ = ``rho``::

        v ← ρ·v + (1 − ρ)·g²
        w ← w − lr · g / (sqrt(v) + ε)

    ε is added *after* the square root (as in torch; Keras puts it inside).

    Args:
        learning_rate: step size lr (default 0.001), a float or a schedule.
        rho: ρ in [0, 1) (Keras's name; torch's ``alpha``; ``decay_rate`` is its old name, deprecated).
        epsilon: ε > 0.
        **clipping: ``clipnorm``, ``clipvalue``, ``global_clipnorm`` (see :class:`Optimizer`).

    Raises:
        ValueError: for an argument out of range.
    """

    nonnegative_slots = ("v",)
    renamed_keywords = {"decay_rate": "rho"}

    def __init__(
        self, learning_rate: Any = 0.001, rho: float = 0.9, epsilon: float = 1e-8, **clipping: Any
    ) -> None:
        super().__init__(learning_rate, **clipping)
        self.rho = _check_range("rho", rho, 0.0, 1.0)
        self.epsilon = _check_positive("epsilon", epsilon)

    @property
    def decay_rate(self) -> float:
        """ρ under its old name (the rule's)."""
        return self.rho

    def slot_names(self) -> tuple[str, ...]:
        return ("v",)

    def rule(self, param: Any, grad: Any, state: dict, new: dict, out: Any, lr: float, t: int) -> None:
        xp = get_array_module(param, grad)
        dt = param.dtype.type
        tmp = xp.multiply(grad, dt(1.0 - self.decay_rate), out=out)  # ends as the step; torch's order (Adam)
        tmp *= grad
        v = xp.multiply(state["v"], dt(self.decay_rate), out=new["v"])
        v += tmp
        xp.sqrt(v, out=tmp)
        tmp += dt(self.epsilon)
        xp.divide(grad, tmp, out=tmp)
        tmp *= dt(lr)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}

    def kernel_scalars(self, dt: Any, lr: float, t: int) -> tuple:
        return dt(self.decay_rate), dt(1.0 - self.decay_rate), dt(self.epsilon), dt(lr)


@backend.kernel
def _rmsprop_kernel(
    w: Any, g: Any, v: Any, v_new: Any, other: Any,
    rho: Any, one_rho: Any, eps: Any, lr: Any, big: Any, in_place: bool, done: Any, start: int,
) -> bool:  # fmt: skip
    ok = True  # a branch-free AND (vectorized): |value| <= the largest float fails for inf and NaN
    for i in range(w.size):  # RMSprop.rule's operations, in its order
        gi = g[i]
        vi = v[i] * rho
        vi = vi + (one_rho * gi) * gi
        v_new[i] = vi
        d = gi / (np.sqrt(vi) + eps)
        d = d * lr
        wi = w[i]
        nw = wi - d
        if in_place:  # the old value kept, the new one written over it
            other[i] = wi
            w[i] = nw
        else:
            other[i] = nw
        ok &= (abs(nw) <= big) & (abs(vi) <= big)
    done[0] = start  # last: the part is written
    done[1] = start + w.size
    return ok


RMSprop.kernel = _rmsprop_kernel


class Adadelta(Optimizer):
    """Adadelta, the rule of ``torch.optim.Adadelta`` (defaults: ``rho`` 0.95 as Keras and the paper, where
    torch's is 0.9; ``learning_rate`` 1.0 as torch).

    Paper: Zeiler, 2012, https://arxiv.org/abs/1212.5701

    Update with running means of squared gradients v and of squared updates u (both zero at start)
    and ρ = ``rho``::

        v ← ρ·v + (1 − ρ)·g²
        Δ = sqrt(u + ε) / sqrt(v + ε) · g
        u ← ρ·u + (1 − ρ)·Δ²
        w ← w − lr·Δ

    ε is added *inside* both square roots. neuro takes them as one, ``sqrt((u + ε)/(v + ε))`` (a pass fewer;
    the squares are taken as torch's ``addcmul``, ``((1 − ρ)·g)·g``): where the ratio falls below the normal
    range (v/u beyond about 1e38 in float32, gradients near 1e19), the step keeps about 5 digits.

    Args:
        learning_rate: scale lr of the update (default 1.0, as in torch and the paper), a float or a
            schedule.
        rho: ρ in [0, 1) (``decay_rate`` is its old name, deprecated).
        epsilon: ε > 0.
        **clipping: ``clipnorm``, ``clipvalue``, ``global_clipnorm`` (see :class:`Optimizer`).

    Raises:
        ValueError: for an argument out of range.
    """

    nonnegative_slots = ("v", "u")
    renamed_keywords = {"decay_rate": "rho"}

    def __init__(
        self, learning_rate: Any = 1.0, rho: float = 0.95, epsilon: float = 1e-6, **clipping: Any
    ) -> None:
        super().__init__(learning_rate, **clipping)
        self.rho = _check_range("rho", rho, 0.0, 1.0)
        self.epsilon = _check_positive("epsilon", epsilon)

    @property
    def decay_rate(self) -> float:
        """ρ under its old name (the rule's)."""
        return self.rho

    def slot_names(self) -> tuple[str, ...]:
        return ("v", "u")

    def rule(self, param: Any, grad: Any, state: dict, new: dict, out: Any, lr: float, t: int) -> None:
        xp = get_array_module(param, grad)
        dt = param.dtype.type
        rho, eps = dt(self.decay_rate), dt(self.epsilon)
        tmp = xp.multiply(grad, dt(1.0 - self.decay_rate), out=self.tmp(param, 0))  # torch's order (Adam)
        tmp *= grad
        v = xp.multiply(state["v"], rho, out=new["v"])
        v += tmp
        xp.add(v, eps, out=tmp)
        delta = xp.add(state["u"], eps, out=out)  # ends as the step
        delta /= tmp
        xp.sqrt(delta, out=delta)  # sqrt(u + ε) / sqrt(v + ε) with one square root
        delta *= grad  # Δ
        xp.multiply(delta, dt(1.0 - self.decay_rate), out=tmp)
        tmp *= delta
        u = xp.multiply(state["u"], rho, out=new["u"])
        u += tmp
        if lr != 1.0:
            delta *= dt(lr)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}

    def kernel_scalars(self, dt: Any, lr: float, t: int) -> tuple:
        return dt(self.decay_rate), dt(1.0 - self.decay_rate), dt(self.epsilon), dt(lr)


@backend.kernel
def _adadelta_kernel(
    w: Any, g: Any, v: Any, u: Any, v_new: Any, u_new: Any, other: Any,
    rho: Any, one_rho: Any, eps: Any, lr: Any, big: Any, in_place: bool, done: Any, start: int,
) -> bool:  # fmt: skip
    ok = True  # a branch-free AND (vectorized): |value| <= the largest float fails for inf and NaN
    for i in range(w.size):  # Adadelta.rule's operations, in its order
        gi = g[i]
        vi = v[i] * rho
        vi = vi + (one_rho * gi) * gi
        v_new[i] = vi
        d = np.sqrt((u[i] + eps) / (vi + eps))
        d = d * gi
        ui = u[i] * rho
        ui = ui + (one_rho * d) * d
        u_new[i] = ui
        wi = w[i]
        nw = wi - d * lr  # d·1 is d: the NumPy rule skips the product when lr is 1
        if in_place:  # the old value kept, the new one written over it
            other[i] = wi
            w[i] = nw
        else:
            other[i] = nw
        ok &= (abs(nw) <= big) & (abs(vi) <= big) & (abs(ui) <= big)
    done[0] = start  # last: the part is written
    done[1] = start + w.size
    return ok


Adadelta.kernel = _adadelta_kernel


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW`` and Keras 3's ``AdamW``.

    Paper: Loshchilov & Hutter, 2019, https://arxiv.org/abs/1711.05101

    The update of :class:`Adam` with ``weight_decay`` λ (here on by default)::

        w ← w − lr·λ·w − lr · m̂ / (sqrt(v̂) + ε)

    Args:
        learning_rate: step size lr (default 0.001), a float or a schedule.
        weight_decay: λ >= 0 (default 0.01, torch's; Keras's is 0.004).
        beta_1: decay β1 of the first moment, in [0, 1).
        beta_2: decay β2 of the second moment, in [0, 1).
        epsilon: ε > 0 (default 1e-8, torch's).
        **clipping: ``clipnorm``, ``clipvalue``, ``global_clipnorm`` (see :class:`Optimizer`).

    Raises:
        ValueError: for an argument out of range.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        **clipping: Any,
    ) -> None:
        if weight_decay is None:
            raise ValueError("weight_decay of AdamW must be a finite number >= 0, got None (use Adam)")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay=weight_decay, **clipping)


registry.set_base("optimizer", Optimizer)
for _cls in (SGD, Adam, AdamW, RMSprop, Adadelta):
    registry.register(_cls)


def get(optimizer: str | Optimizer | dict | type) -> Optimizer:
    """Return an optimizer from a name (with default settings), a serialized spec, a class or an instance.

    Args:
        optimizer: a registered name (``"adam"``, ``"rms_prop"``…), a ``{"class": name, "config": {...}}``
            spec, an :class:`Optimizer` class (instantiated with its defaults) or an instance (returned as it
            is).

    Returns:
        The optimizer.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else.
    """
    return registry.get("optimizer", optimizer, Optimizer)
