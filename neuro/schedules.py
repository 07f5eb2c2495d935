"""Learning-rate schedules usable by any optimizer.

A schedule is a small callable ``schedule(step) -> lr``. ``step`` is the 0-based number of optimizer
updates done so far: :meth:`neuro.optimizers.Optimizer.current_learning_rate` calls it with the
optimizer's ``iterations`` before each update, so the first update uses ``schedule(0)``. Because the
step count is part of the optimizer state, a restored optimizer continues its schedule where it
stopped.

Each schedule describes itself with ``get_config()`` (its constructor arguments; ``registry.serialize``
adds the class name), and
:func:`get` rebuilds it from that dict.

The schedules that Keras has take Keras's arguments in Keras's order
(``ExponentialDecay(initial_learning_rate, decay_steps, decay_rate, staircase=False)``,
``CosineDecay(initial_learning_rate, decay_steps, alpha=0.0)``), and every argument is checked for its range,
so arguments given in another order are refused naming the argument (a decay rate outside (0, 1] cannot be a
decay) rather than decaying in a way nobody asked for.

Example:
    >>> from neuro import optimizers, schedules
    >>> opt = optimizers.SGD(schedules.StepDecay(0.1, decay_rate=0.5, step_size=100))
"""

from __future__ import annotations

import bisect
import math
import numbers
from typing import Any

from neuro import registry
from neuro._keywords import KeywordChecked, quiet


def _check_number(name: str, value: Any, *, positive: bool = True) -> float:
    """Return ``value`` as a float; raise ValueError naming ``name`` unless finite (and > 0)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (positive and not value > 0):
        expected = "a positive number" if positive else "a finite number"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return float(value)


def _check_decay_rate(value: Any, order: str) -> float:
    """Return a decay factor as a float; raise ValueError unless it is in (0, 1], naming the order."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0 < value <= 1:
        raise ValueError(
            f"decay_rate must be a number in (0, 1] (the factor the rate is multiplied by; 1 keeps it), got "
            f"{value!r}; the arguments are {order}"
        )
    return float(value)


def _check_steps(name: str, value: Any, order: str) -> int:
    """Return a number of updates as an int; raise ValueError unless it is a whole number > 0 (an integral
    float such as ``1000.0`` included), naming the order."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 1 or float(value) != int(value):
        raise ValueError(
            f"{name} must be a whole number of updates >= 1, got {value!r}; the arguments are {order}"
        )
    return int(value)


def _check_step_count(name: str, value: Any) -> int:
    """Return a number of updates as an int; raise ValueError naming ``name`` unless it is a whole number
    > 0 (an integral float such as ``1000.0`` included, as every schedule takes it)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 1 or float(value) != int(value):
        raise ValueError(f"{name} must be a whole number of updates >= 1, got {value!r}")
    return int(value)


class Schedule(KeywordChecked):
    """Base class: ``__call__(step)`` returns the learning rate for the 0-based update ``step``."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments; ``from_config`` rebuilds the schedule."""
        return dict(vars(self))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Schedule:
        """Rebuild a schedule from :meth:`get_config`'s output.

        Args:
            config: the constructor arguments, as :meth:`get_config` returns them.

        Returns:
            A new schedule of this class.

        Raises:
            ValueError: for invalid arguments.
        """
        with quiet():  # a saved config may use old keyword spellings
            return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


class Constant(Schedule):
    """The same learning rate at every step: ``lr(step) = learning_rate``.

    Args:
        learning_rate: the rate (> 0).
    """

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = _check_number("learning_rate", learning_rate)

    def __call__(self, step: int) -> float:
        return self.learning_rate


class StepDecay(Schedule):
    """Multiply the rate by ``decay_rate`` every ``step_size`` updates (staircase decay).

    ``lr(step) = initial_learning_rate · decay_rate ^ floor(step / step_size)`` (Keras writes it
    ``ExponentialDecay(initial_learning_rate, step_size, decay_rate, staircase=True)``).

    Args:
        initial_learning_rate: rate of the first ``step_size`` updates (> 0).
        decay_rate: factor applied at each drop, in (0, 1].
        step_size: number of updates between drops (a whole number >= 1; an integral float such as 10.0 too).

    Raises:
        ValueError: for an argument out of range.
    """

    def __init__(self, initial_learning_rate: float, decay_rate: float, step_size: int) -> None:
        self.initial_learning_rate = _check_number("initial_learning_rate", initial_learning_rate)
        order = "StepDecay(initial_learning_rate, decay_rate, step_size)"
        self.decay_rate = _check_decay_rate(decay_rate, order)
        self.step_size = _check_step_count("step_size", step_size)

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.decay_rate ** (int(step) // self.step_size)


class ExponentialDecay(Schedule):
    """Exponential decay, as Keras's ``ExponentialDecay`` (its arguments, in its order).

    ``lr(step) = initial_learning_rate · decay_rate ^ (step / decay_steps)``, with ``step / decay_steps``
    rounded down when ``staircase`` (a drop every ``decay_steps`` updates).

    Example (Keras's order: 1e-3, decaying by 0.9 every 100 updates)::

        ExponentialDecay(1e-3, 100, 0.9)

    Args:
        initial_learning_rate: rate at step 0 (> 0).
        decay_steps: number of updates over which the rate is multiplied by ``decay_rate`` (a whole number
            >= 1).
        decay_rate: the factor, in (0, 1].
        staircase: decay in steps rather than smoothly.

    Raises:
        ValueError: for an argument out of range, such as the rate and the step count given in neuro's
            former order ``(initial_learning_rate, decay_rate, decay_steps)``.
    """

    def __init__(
        self, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False
    ) -> None:
        order = "ExponentialDecay(initial_learning_rate, decay_steps, decay_rate, staircase=False), as Keras"
        self.initial_learning_rate = _check_number("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _check_steps("decay_steps", decay_steps, order)
        self.decay_rate = _check_decay_rate(decay_rate, order)
        if not isinstance(staircase, bool):
            raise TypeError(f"staircase must be True or False, got {staircase!r}")
        self.staircase = staircase

    def __call__(self, step: int) -> float:
        p = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (math.floor(p) if self.staircase else p)


class CosineDecay(Schedule):
    """Cosine decay to ``alpha`` times the initial rate, as Keras ``CosineDecay`` (no warmup).

    With s = min(step, decay_steps)::

        lr(step) = initial_learning_rate · ((1 − alpha) · ½(1 + cos(π · s / decay_steps)) + alpha)

    so after ``decay_steps`` updates the rate stays at ``alpha · initial_learning_rate``.

    Args:
        initial_learning_rate: rate at step 0 (> 0).
        decay_steps: number of updates to decay over (a whole number >= 1; an integral float such as 1000.0
            too).
        alpha: final rate as a fraction of the initial one, in [0, 1].

    Raises:
        ValueError: for an argument out of range.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0) -> None:
        self.initial_learning_rate = _check_number("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _check_step_count("decay_steps", decay_steps)
        alpha = _check_number("alpha", alpha, positive=False)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        self.alpha = alpha

    def __call__(self, step: int) -> float:
        fraction = min(step, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1.0 - self.alpha) * cosine + self.alpha)


class PiecewiseConstantDecay(Schedule):
    """A constant rate between boundaries, as Keras's ``PiecewiseConstantDecay`` (PyTorch's ``MultiStepLR``
    with the rates given instead of a factor).

    ``lr(step) = values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while ``boundaries[i − 1] < step
    <= boundaries[i]``, and ``values[-1]`` after the last boundary.

    Example (Keras's: 1.0 for the first 100,001 updates, 0.5 for the next 10,000, then 0.1)::

        PiecewiseConstantDecay([100000, 110000], [1.0, 0.5, 0.1])

    Args:
        boundaries: update counts, whole numbers >= 0 in increasing order (at most 10,000 of them).
        values: the rates (positive numbers), one more than the boundaries.

    Raises:
        ValueError: for boundaries that are not increasing whole numbers, a rate that is not positive, or
            counts that do not match.
    """

    def __init__(self, boundaries: Any, values: Any) -> None:
        order = "PiecewiseConstantDecay(boundaries, values), as Keras"
        if not isinstance(boundaries, (list, tuple)) or len(boundaries) > 10_000:
            raise ValueError(f"boundaries must be a list of at most 10,000 update counts, got {boundaries!r}")
        if not isinstance(values, (list, tuple)) or len(values) != len(boundaries) + 1:
            raise ValueError(
                f"values must be a list of one rate more than boundaries ({len(boundaries) + 1}), got "
                f"{values!r}; the arguments are {order}"
            )
        cut = []
        for b in boundaries:
            ok = isinstance(b, numbers.Real) and not isinstance(b, bool) and math.isfinite(b)
            if not ok or b < 0 or float(b) != int(b) or (cut and int(b) <= cut[-1]):
                raise ValueError(
                    "boundaries must be whole numbers of updates >= 0 in increasing order, got "
                    f"{boundaries!r}"
                )
            cut.append(int(b))
        self.boundaries = cut
        self.values = [_check_number(f"values[{i}]", v) for i, v in enumerate(values)]

    def __call__(self, step: int) -> float:
        return self.values[bisect.bisect_left(self.boundaries, step)]


registry.set_base("schedule", Schedule)
for _cls in (Constant, StepDecay, ExponentialDecay, CosineDecay, PiecewiseConstantDecay):
    registry.register(_cls)


def get(schedule: Schedule | dict | str | float) -> Schedule:
    """Return a schedule from an instance, a serialized spec (``{"class": ..., "config": ...}``) or a number.

    A plain number gives :class:`Constant`.

    Args:
        schedule: a :class:`Schedule` (returned as it is), a ``{"class": name, "config": {...}}`` spec, a
            registered name (built with no arguments, so only a schedule without required arguments), a
            :class:`Schedule` class, or a positive number (a constant rate).

    Returns:
        The schedule.

    Raises:
        ValueError: for an unknown name or invalid arguments.
        TypeError: for anything else.
    """
    if isinstance(schedule, numbers.Real) and not isinstance(schedule, bool):
        return Constant(schedule)
    return registry.get("schedule", schedule, Schedule)
