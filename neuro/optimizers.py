"""Optimizers: one small update rule each, with per-parameter state created lazily.

An optimizer is handed the list of parameters and the list of their gradients once per batch
(:meth:`Optimizer.step`) and updates the parameters in place. Its state (step count and one dict of
arrays per parameter) can be read with :meth:`Optimizer.get_state` and restored with
:meth:`Optimizer.set_state`, so a saved model resumes training exactly.

Every rule follows ``torch.optim`` (without weight decay; use a regularizer for that). Updates are
done in place with at most two temporary arrays per parameter, and scalars are cast to the
parameter's dtype so float32 parameters stay float32.
"""

from __future__ import annotations

import math
import numbers
import threading
from typing import Any

from neuro import backend, schedules


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


class Optimizer:
    """Base class.

    Args:
        learning_rate: a positive float, or a schedule (any callable ``step -> lr``, see
            :mod:`neuro.schedules`) evaluated at the 0-based step count before each update.

    Attributes:
        iterations: number of updates done so far. :meth:`step` increments it before calling
            :meth:`update`, so there it is the 1-based step count ``t`` of the update being applied.
        slots: one state dict per parameter (for example ``{"m": ..., "v": ...}`` for Adam), filled
            lazily.

    Subclasses implement :meth:`update`, which changes one parameter in place.
    """

    def __init__(self, learning_rate: Any) -> None:
        if not callable(learning_rate):
            learning_rate = _check_positive("learning_rate", learning_rate)
        self.learning_rate = learning_rate
        self.iterations = 0
        self.slots: list[dict[str, Any]] = []

    def current_learning_rate(self) -> float:
        """The learning rate the next step will use."""
        lr = self.learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    def step(self, params: list[Any], grads: list[Any]) -> None:
        """Update every parameter in place from its gradient.

        Args:
            params: the parameter arrays, always in the same order.
            grads: their gradients (same shapes); not modified.
        """
        if len(self.slots) != len(params):
            self.slots = [{} for _ in params]
        lr = self.current_learning_rate()
        self.iterations += 1
        for p, g, s in zip(params, grads, self.slots, strict=True):
            if not s or p.ndim == 0:  # the first update creates the state on the whole array
                self.update(p, g, s, lr)
                continue

            def part(start: int, stop: int, p: Any = p, g: Any = g, s: dict = s) -> None:
                # the rules are elementwise: each thread updates its own rows, with views of the state
                self.update(p[start:stop], g[start:stop], {k: v[start:stop] for k, v in s.items()}, lr)

            backend.parallel_for(part, len(p), 4 * p.size)

    def update(self, param: Any, grad: Any, slot: dict[str, Any], lr: float) -> None:
        """Apply the update rule to one parameter in place; ``slot`` is its state dict."""
        raise NotImplementedError

    def _zeros(self, slot: dict[str, Any], name: str, like: Any) -> Any:
        """Return ``slot[name]``, creating it as zeros shaped like ``like`` on first use."""
        arr = slot.get(name)
        if arr is None:
            arr = slot[name] = backend.xp.zeros_like(like)
        return arr

    def _scratch(self, like: Any, k: int = 0) -> Any:
        """A work array shaped like ``like``, reused across steps and parameters (not part of the state).

        Updates run one parameter at a time, so parameters of one shape can share it; reusing it saves
        an allocation (and its page faults) per parameter per step.
        """
        work = self.__dict__.setdefault("_work", {})
        key = (tuple(like.shape), like.dtype.str, k, threading.get_ident())  # one per thread of a step
        arr = work.get(key)
        if arr is None:
            arr = work[key] = backend.xp.empty_like(like)
        return arr

    def get_state(self) -> dict[str, Any]:
        """Return ``{"iterations": int, "slots": [{name: numpy array} per parameter]}`` (copies)."""
        return {
            "iterations": self.iterations,
            "slots": [{k: backend.to_numpy(v).copy() for k, v in s.items()} for s in self.slots],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned (copied to the active backend and dtype)."""
        self.iterations = int(state["iterations"])
        self.slots = [
            {k: backend.asarray(v, dtype=backend.get_dtype()).copy() for k, v in s.items()}
            for s in state["slots"]
        ]

    def get_config(self) -> dict[str, Any]:
        """Return ``{"name": ClassName, "learning_rate": float or schedule config, **settings}``."""
        lr = self.learning_rate
        cfg_lr = lr.get_config() if hasattr(lr, "get_config") else lr
        return {"name": type(self).__name__, "learning_rate": cfg_lr}


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

    Raises:
        ValueError: for an argument out of range.
    """

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(learning_rate)
        self.momentum = _check_range("momentum", momentum, 0.0, 1.0)
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
        self.nesterov = bool(nesterov)

    def update(self, param: Any, grad: Any, slot: dict[str, Any], lr: float) -> None:
        xp = backend.xp
        dt = param.dtype.type
        if self.momentum == 0.0:
            param -= xp.multiply(grad, dt(lr))
            return
        mu = dt(self.momentum)
        v = self._zeros(slot, "velocity", param)
        v *= mu
        v += grad
        if self.nesterov:
            step = xp.multiply(v, mu)  # g + μ·v
            step += grad
            step *= dt(lr)
        else:
            step = xp.multiply(v, dt(lr))
        param -= step

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam with bias correction, as ``torch.optim.Adam``.

    Paper: Kingma & Ba, 2015, https://arxiv.org/abs/1412.6980

    Update at step t = 1, 2, … with first and second moments m, v (zero at start)::

        m ← β1·m + (1 − β1)·g
        v ← β2·v + (1 − β2)·g²
        m̂ = m / (1 − β1^t),   v̂ = v / (1 − β2^t)
        w ← w − lr · m̂ / (sqrt(v̂) + ε)

    ε is added *after* the square root of the bias-corrected v̂ (as in torch, not inside the root).

    Args:
        learning_rate: step size lr (default 0.001), a float or a schedule.
        beta1: decay of the first moment, in [0, 1).
        beta2: decay of the second moment, in [0, 1).
        epsilon: ε > 0.

    Raises:
        ValueError: for an argument out of range.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
    ) -> None:
        super().__init__(learning_rate)
        self.beta1 = _check_range("beta1", beta1, 0.0, 1.0)
        self.beta2 = _check_range("beta2", beta2, 0.0, 1.0)
        self.epsilon = _check_positive("epsilon", epsilon)

    def update(self, param: Any, grad: Any, slot: dict[str, Any], lr: float) -> None:
        xp = backend.xp
        dt = param.dtype.type
        t = self.iterations
        m = self._zeros(slot, "m", param)
        v = self._zeros(slot, "v", param)
        tmp = xp.multiply(grad, grad, out=self._scratch(param))  # the one work array
        tmp *= dt(1.0 - self.beta2)
        v *= dt(self.beta2)
        v += tmp
        xp.multiply(grad, dt(1.0 - self.beta1), out=tmp)
        m *= dt(self.beta1)
        m += tmp
        # denominator sqrt(v̂) + ε = sqrt(v) / sqrt(1 − β2^t) + ε; step size lr / (1 − β1^t)
        xp.sqrt(v, out=tmp)
        tmp /= dt(math.sqrt(1.0 - self.beta2**t))
        tmp += dt(self.epsilon)
        xp.divide(m, tmp, out=tmp)
        tmp *= dt(lr / (1.0 - self.beta1**t))
        param -= tmp

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta1": self.beta1,
            "beta2": self.beta2,
            "epsilon": self.epsilon,
        }


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop`` with ``alpha = decay_rate`` (no momentum, not centered).

    Update with the running mean of squared gradients v (zero at start) and ρ = ``decay_rate``::

        v ← ρ·v + (1 − ρ)·g²
        w ← w − lr · g / (sqrt(v) + ε)

    ε is added *after* the square root (as in torch; Keras puts it inside).

    Args:
        learning_rate: step size lr (default 0.001), a float or a schedule.
        decay_rate: ρ in [0, 1).
        epsilon: ε > 0.

    Raises:
        ValueError: for an argument out of range.
    """

    def __init__(
        self, learning_rate: Any = 0.001, decay_rate: float = 0.9, epsilon: float = 1e-8
    ) -> None:
        super().__init__(learning_rate)
        self.decay_rate = _check_range("decay_rate", decay_rate, 0.0, 1.0)
        self.epsilon = _check_positive("epsilon", epsilon)

    def update(self, param: Any, grad: Any, slot: dict[str, Any], lr: float) -> None:
        xp = backend.xp
        dt = param.dtype.type
        v = self._zeros(slot, "v", param)
        tmp = xp.multiply(grad, grad, out=self._scratch(param))
        tmp *= dt(1.0 - self.decay_rate)
        v *= dt(self.decay_rate)
        v += tmp
        xp.sqrt(v, out=tmp)
        tmp += dt(self.epsilon)
        xp.divide(grad, tmp, out=tmp)
        tmp *= dt(lr)
        param -= tmp

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "decay_rate": self.decay_rate, "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Adadelta, as ``torch.optim.Adadelta`` with ``rho = decay_rate``.

    Paper: Zeiler, 2012, https://arxiv.org/abs/1212.5701

    Update with running means of squared gradients v and of squared updates u (both zero at start)
    and ρ = ``decay_rate``::

        v ← ρ·v + (1 − ρ)·g²
        Δ = sqrt(u + ε) / sqrt(v + ε) · g
        u ← ρ·u + (1 − ρ)·Δ²
        w ← w − lr·Δ

    ε is added *inside* both square roots.

    Args:
        learning_rate: scale lr of the update (default 1.0, as in torch and the paper), a float or a
            schedule.
        decay_rate: ρ in [0, 1).
        epsilon: ε > 0.

    Raises:
        ValueError: for an argument out of range.
    """

    def __init__(
        self, learning_rate: Any = 1.0, decay_rate: float = 0.95, epsilon: float = 1e-6
    ) -> None:
        super().__init__(learning_rate)
        self.decay_rate = _check_range("decay_rate", decay_rate, 0.0, 1.0)
        self.epsilon = _check_positive("epsilon", epsilon)

    def update(self, param: Any, grad: Any, slot: dict[str, Any], lr: float) -> None:
        xp = backend.xp
        dt = param.dtype.type
        rho, eps = dt(self.decay_rate), dt(self.epsilon)
        v = self._zeros(slot, "v", param)
        u = self._zeros(slot, "u", param)
        tmp = xp.multiply(grad, grad, out=self._scratch(param, 0))
        tmp *= dt(1.0 - self.decay_rate)
        v *= rho
        v += tmp
        xp.add(v, eps, out=tmp)
        delta = xp.add(u, eps, out=self._scratch(param, 1))
        delta /= tmp
        xp.sqrt(delta, out=delta)  # sqrt(u + ε) / sqrt(v + ε) with one square root
        delta *= grad  # Δ
        xp.multiply(delta, delta, out=tmp)
        tmp *= dt(1.0 - self.decay_rate)
        u *= rho
        u += tmp
        if lr != 1.0:
            delta *= dt(lr)
        param -= delta

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "decay_rate": self.decay_rate, "epsilon": self.epsilon}


_REGISTRY: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "rmsprop": RMSprop,
    "adadelta": Adadelta,
}


def get(optimizer: str | Optimizer | dict) -> Optimizer:
    """Return an optimizer from a name (with default settings), a config dict or an instance.

    A config is what :meth:`Optimizer.get_config` returns; a dict ``learning_rate`` in it is turned
    back into a schedule with :func:`neuro.schedules.get`.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else.
    """
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, dict):
        cfg = dict(optimizer)
        if "name" not in cfg:
            raise ValueError(f"optimizer config must have a 'name' key, got {optimizer!r}")
        cls = _lookup(cfg.pop("name"))
        if isinstance(cfg.get("learning_rate"), dict):
            cfg["learning_rate"] = schedules.get(cfg["learning_rate"])
        return cls(**cfg)
    if isinstance(optimizer, str):
        return _lookup(optimizer)()
    raise TypeError(f"optimizer must be a name or an Optimizer, got {type(optimizer).__name__}")


def _lookup(name: str) -> type[Optimizer]:
    key = str(name).lower()
    if key not in _REGISTRY:
        raise ValueError(f"optimizer must be one of {sorted(_REGISTRY)}, got {name!r}")
    return _REGISTRY[key]
