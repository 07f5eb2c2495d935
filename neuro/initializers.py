"""Weight initializers.

Each initializer is a callable ``init(shape, rng, dtype) -> numpy.ndarray`` that draws from the
NumPy generator it is given (the network's seeded one), so a seed reproduces every weight on every
backend. Numbers are drawn in float64 and then cast to ``dtype`` (the backend's dtype when
``None``), so float32 and float64 weights from one seed agree to float32 precision.

Fan-in and fan-out: for a Dense kernel ``(in, units)`` they are ``in`` and ``units``; for a Conv2D
kernel ``(kh, kw, in_channels, filters)`` they are ``kh·kw·in_channels`` and ``kh·kw·filters``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from neuro import backend, registry
from neuro._keywords import KeywordChecked, quiet


def _is_finite_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _normal_args(mean: Any, std: Any, std_name: str) -> tuple[float, float]:
    """A normal's ``(mean, std)`` checked: both finite, the standard deviation (``std_name``) ≥ 0."""
    if not _is_finite_number(mean):
        raise ValueError(f"mean must be a finite number, got {mean!r}")
    if not _is_finite_number(std) or std < 0:
        raise ValueError(f"{std_name} must be a finite number >= 0, got {std!r}")
    return float(mean), float(std)


def _uniform_args(low: Any, high: Any, names: tuple[str, str]) -> tuple[float, float]:
    """A uniform's bounds checked: both finite, the upper (``names[1]``) above the lower (``names[0]``)."""
    if not _is_finite_number(low):
        raise ValueError(f"{names[0]} must be a finite number, got {low!r}")
    if not _is_finite_number(high) or not low < high:
        raise ValueError(
            f"{names[1]} must be a finite number > {names[0]}, got {names[0]}={low!r}, {names[1]}={high!r}"
        )
    return float(low), float(high)


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` for a kernel shape (see the module docstring).

    A 1-D shape (a bias) has ``fan_in = fan_out = shape[0]``; a scalar shape ``()`` has ``(1, 1)``.
    In general the last two axes are (inputs, outputs) and the leading axes the receptive field.

    Args:
        shape: kernel shape, for example ``(in, units)`` or ``(kh, kw, in_channels, filters)``.

    Returns:
        ``(fan_in, fan_out)`` as Python ints.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return receptive * shape[-2], receptive * shape[-1]


class Initializer(KeywordChecked):
    """Base class: ``__call__(shape, rng, dtype)`` returns a NumPy array of that shape and dtype."""

    def __call__(self, shape: tuple[int, ...], rng: np.random.Generator, dtype: Any = None) -> np.ndarray:
        """Draw an array.

        Args:
            shape: shape of the array.
            rng: the NumPy generator to draw from.
            dtype: floating type of the result; the backend's dtype (float32 by default) when
                ``None``.

        Returns:
            A NumPy array of ``shape`` and ``dtype``.
        """
        dtype = backend.get_dtype() if dtype is None else dtype
        return np.asarray(self.sample(tuple(int(d) for d in shape), rng), dtype=dtype)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Draw the values in float64; :meth:`__call__` casts them. Subclasses implement this.

        Args:
            shape: shape of the array, as a tuple of Python ints.
            rng: the NumPy generator to draw from (the only source of randomness).

        Returns:
            A float64 NumPy array of ``shape``.
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as plain JSON values."""
        return dict(vars(self))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """Rebuild an initializer from :meth:`get_config`'s output.

        Args:
            config: the constructor arguments, as :meth:`get_config` returns them.

        Returns:
            A new initializer of this class.
        """
        with quiet():  # a saved config may use old keyword spellings
            return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Constant(Initializer):
    """Every entry equal to ``value``.

    Args:
        value: the constant, a finite number.

    Raises:
        ValueError: when ``value`` is not a finite number.
    """

    def __init__(self, value: float = 0.0) -> None:
        if not _is_finite_number(value):
            raise ValueError(f"value must be a finite number, got {value!r}")
        self.value = float(value)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return np.full(shape, self.value)


class Zeros(Constant):
    """All zeros."""

    def __init__(self) -> None:
        super().__init__(0.0)

    def get_config(self) -> dict[str, Any]:
        return {}


class Ones(Constant):
    """All ones."""

    def __init__(self) -> None:
        super().__init__(1.0)

    def get_config(self) -> dict[str, Any]:
        return {}


class NormalScaled(Initializer):
    """Normal distribution N(mean, std²).

    Args:
        mean: the mean, a finite number.
        std: the standard deviation, a finite number ≥ 0.

    Raises:
        ValueError: when ``mean`` is not finite, or ``std`` is not finite or negative.
    """

    def __init__(self, mean: float = 0.0, std: float = 0.01) -> None:
        self.mean, self.std = _normal_args(mean, std, "std")

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.normal(self.mean, self.std, size=shape)


class Normal(NormalScaled):
    """Normal distribution with mean 0 and standard deviation 0.01."""

    def __init__(self) -> None:
        super().__init__(0.0, 0.01)

    def get_config(self) -> dict[str, Any]:
        return {}


class UniformBounded(Initializer):
    """Uniform distribution on [low, high).

    Args:
        low: the lower bound, a finite number.
        high: the upper bound, a finite number greater than ``low``.

    Raises:
        ValueError: when a bound is not finite or ``high ≤ low``.
    """

    def __init__(self, low: float = -0.01, high: float = 0.01) -> None:
        self.low, self.high = _uniform_args(low, high, ("low", "high"))

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=shape)


class Uniform(UniformBounded):
    """Uniform distribution on [−0.01, 0.01)."""

    def __init__(self) -> None:
        super().__init__(-0.01, 0.01)

    def get_config(self) -> dict[str, Any]:
        return {}


class RandomUniform(Initializer):
    """Keras's ``RandomUniform``: uniform on [minval, maxval), by default [−0.05, 0.05) (Keras's defaults;
    neuro's ``"uniform"``, :class:`Uniform`, is the original library's [−0.01, 0.01)).

    Args:
        minval: the lower bound, a finite number.
        maxval: the upper bound, a finite number greater than ``minval``.

    Raises:
        ValueError: when a bound is not finite or ``maxval ≤ minval``.
    """

    def __init__(self, minval: float = -0.05, maxval: float = 0.05) -> None:
        self.minval, self.maxval = _uniform_args(minval, maxval, ("minval", "maxval"))

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.minval, self.maxval, size=shape)


class RandomNormal(Initializer):
    """Keras's ``RandomNormal``: N(mean, stddev²), by default stddev 0.05 (Keras's; neuro's ``"normal"``,
    :class:`Normal`, is the original library's 0.01).

    Args:
        mean: the mean, a finite number.
        stddev: the standard deviation, a finite number ≥ 0.

    Raises:
        ValueError: when ``mean`` is not finite, or ``stddev`` is not finite or negative.
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05) -> None:
        self.mean, self.stddev = _normal_args(mean, stddev, "stddev")

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.normal(self.mean, self.stddev, size=shape)


class TruncatedNormal(RandomNormal):
    """Keras's ``TruncatedNormal``: N(mean, stddev²) with the values more than two standard deviations from
    the mean drawn again (so their standard deviation is about 0.88·stddev), by default stddev 0.05.

    Args:
        mean: the mean, a finite number.
        stddev: the standard deviation of the normal before truncation, a finite number ≥ 0.

    Raises:
        ValueError: when ``mean`` is not finite, or ``stddev`` is not finite or negative.
    """

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        out = rng.normal(self.mean, self.stddev, size=shape)
        far = np.abs(out - self.mean) > 2.0 * self.stddev
        while far.any():  # about 4.6 % of the values each round
            out[far] = rng.normal(self.mean, self.stddev, size=int(far.sum()))
            far = np.abs(out - self.mean) > 2.0 * self.stddev
        return out


class _VarianceScaling(Initializer):
    """Draws with variance ``scale / fan`` from a normal or a uniform distribution."""

    scale = 1.0
    mode = "fan_in"  # fan_in, fan_out or fan_avg
    distribution = "normal"

    def __init__(self) -> None:
        pass

    def std(self, shape: tuple[int, ...]) -> float:
        """The standard deviation ``sqrt(scale / fan)`` for a kernel shape.

        ``fan`` is fan_in, fan_out or (fan_in + fan_out)/2 as the class's ``mode`` says (see
        :func:`compute_fans`), floored at 1 so that an empty shape divides by nothing smaller. The uniform
        variants draw from U(−l, l) with l = sqrt(3)·std, which has this standard deviation.

        Args:
            shape: the kernel shape.

        Returns:
            The standard deviation, a Python float.
        """
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        return math.sqrt(self.scale / max(1.0, fan))  # empty shapes: no division by zero

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        std = self.std(shape)
        if self.distribution == "normal":
            return rng.normal(0.0, std, size=shape)
        limit = math.sqrt(3.0) * std
        return rng.uniform(-limit, limit, size=shape)

    def get_config(self) -> dict[str, Any]:
        return {}


class GlorotNormal(_VarianceScaling):
    """Glorot (Xavier) normal: N(0, 2 / (fan_in + fan_out)). Paper: Glorot & Bengio, 2010."""

    mode = "fan_avg"


class GlorotUniform(_VarianceScaling):
    """Glorot (Xavier) uniform: U(−l, l) with l = sqrt(6 / (fan_in + fan_out))."""

    mode = "fan_avg"
    distribution = "uniform"


class HeNormal(_VarianceScaling):
    """He normal: N(0, 2 / fan_in). Paper: He et al., 2015."""

    scale = 2.0


class HeUniform(_VarianceScaling):
    """He uniform: U(−l, l) with l = sqrt(6 / fan_in)."""

    scale = 2.0
    distribution = "uniform"


class LecunNormal(_VarianceScaling):
    """LeCun normal: N(0, 1 / fan_in)."""


class LecunUniform(_VarianceScaling):
    """LeCun uniform: U(−l, l) with l = sqrt(3 / fan_in)."""

    distribution = "uniform"


class Orthogonal(Initializer):
    """A random (semi-)orthogonal matrix, Keras's default for recurrent kernels. Paper: Saxe et al., 2014.

    The array is viewed as a matrix of ``prod(shape[:-1])`` rows and ``shape[-1]`` columns; a matrix of
    normal numbers of that shape (its transpose when there are more columns than rows) is factored as
    ``QR``, Q's columns are signed by R's diagonal (so the distribution is uniform over orthogonal
    matrices), and the result is ``gain·Q`` (transposed back): orthonormal rows or columns, whichever are
    fewer. A recurrent kernel ``(u, 4u)`` thus has orthonormal rows.

    Args:
        gain: the factor applied to the matrix (default 1), a finite number.

    Raises:
        ValueError: when ``gain`` is not a finite number.
    """

    def __init__(self, gain: float = 1.0) -> None:
        if not _is_finite_number(gain):
            raise ValueError(f"gain must be a finite number, got {gain!r}")
        self.gain = float(gain)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape of at least 2 axes, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = rng.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)


registry.set_base("initializer", Initializer)
for _cls in (
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LecunNormal,
    LecunUniform,
    Normal,
    NormalScaled,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    Uniform,
    UniformBounded,
    Zeros,
):
    registry.register(_cls)


def get(init: str | Initializer | dict) -> Initializer:
    """Return an initializer from a name, a serialized spec or an instance.

    Names are normalised by :func:`neuro.registry.normalize`: ``"he_uniform"`` and ``"HeUniform"`` both work.

    Args:
        init: a registered name, a ``{"class": name, "config": {...}}`` spec, an initializer class
            (instantiated with no arguments) or an instance (returned as it is).

    Returns:
        The initializer.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else.
    """
    return registry.get("initializer", init, Initializer)
