"""Feature scaling fitted on a training split: min–max normalisation or standardisation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_KINDS = ("normalize", "standardize")


class Scaler:
    """An affine per-feature scaling ``(x - a) / b``.

    ``kind="normalize"`` maps each feature's training range to [0, 1]: ``a`` is the minimum and ``b`` the
    range ``max - min`` (a constant feature gets ``b = 1``, so it maps to 0). ``kind="standardize"`` gives
    each feature mean 0 and standard deviation 1: ``a`` is the mean and ``b`` the (population) standard
    deviation (a constant feature gets ``b = 1``). Statistics are taken over the sample axis only, one per
    feature, and should come from the training split (:meth:`fit`).

    Args:
        kind: ``"normalize"`` or ``"standardize"``.
        a: per-feature offset, shape of one sample (any array-like of finite numbers).
        b: per-feature divisor, same shape, all positive and finite.

    Shape:
        ``transform`` and ``inverse_transform`` take ``(N, *a.shape)`` (or one sample ``a.shape``) and return
        the same shape.

    Raises:
        ValueError: for an unknown ``kind``, mismatched shapes, non-finite values or a divisor ``<= 0``.
    """

    def __init__(self, kind: str, a: Any, b: Any) -> None:
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        a = np.array(a, dtype=np.float64)
        b = np.array(b, dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
        if not np.isfinite(a).all():
            raise ValueError("a must hold finite numbers, got NaN or inf")
        if not np.isfinite(b).all() or not (b > 0).all():
            raise ValueError("b must hold finite positive numbers, got a NaN, inf, zero or negative value")
        self.kind = kind
        self.a = a
        self.b = b

    @classmethod
    def fit(cls, kind: str, x: Any) -> Scaler:
        """Compute the statistics of ``x`` per feature.

        Args:
            kind: ``"normalize"`` or ``"standardize"``.
            x: the training samples, first axis the samples.

        Returns:
            The fitted scaler.

        Shape:
            ``x``: ``(N, *features)`` with ``N >= 1``; ``a`` and ``b``: ``features``.

        Raises:
            ValueError: for an unknown ``kind``, an empty or non-numeric ``x``, or NaN / inf values in it.
        """
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise ValueError(f"x must hold numbers, got dtype {x.dtype}")
        if x.ndim < 1 or len(x) == 0:
            raise ValueError(f"x must hold at least one sample, got shape {x.shape}")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise ValueError("x must hold finite numbers to fit a scaler, got NaN or inf")
        if kind == "normalize":
            a = x.min(axis=0).astype(np.float64)
            b = x.max(axis=0).astype(np.float64) - a
        else:
            a = x.mean(axis=0, dtype=np.float64)
            b = x.std(axis=0, dtype=np.float64)
        b = np.where(np.isfinite(b) & (b > 0), b, 1.0)
        return cls(kind, a, b)

    def _check(self, x: Any, name: str) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numbers, got dtype {x.dtype}")
        k = self.a.ndim
        if x.shape[x.ndim - k :] != self.a.shape or x.ndim < k:
            raise ValueError(f"{name} must end in the feature shape {self.a.shape}, got shape {x.shape}")
        return x

    def _params(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dt = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
        return self.a.astype(dt), self.b.astype(dt)

    def transform(self, x: Any) -> np.ndarray:
        """Return ``(x - a) / b``; float inputs keep their dtype, other inputs become float64.

        Args:
            x: samples ``(N, *features)`` or one sample ``features``.

        Returns:
            The scaled values, same shape.

        Raises:
            ValueError: when the trailing shape is not the feature shape.
        """
        x = self._check(x, "x")
        a, b = self._params(x)
        return (x - a) / b

    def inverse_transform(self, x: Any) -> np.ndarray:
        """Return ``x * b + a``, undoing :meth:`transform` (float dtypes kept).

        Args:
            x: scaled samples ``(N, *features)`` or one sample ``features``.

        Returns:
            The values in the original units, same shape.

        Raises:
            ValueError: when the trailing shape is not the feature shape.
        """
        x = self._check(x, "x")
        a, b = self._params(x)
        return x * b + a

    def get_config(self) -> dict[str, Any]:
        """Return a plain JSON-serialisable description: ``{"kind": str, "a": list, "b": list}``.

        ``a`` and ``b`` are nested lists for multi-axis features, and bare numbers when the samples have no
        feature axis (a scaler fitted on ``(N,)``).

        Returns:
            The configuration, accepted by :meth:`from_config`.
        """
        return {"kind": self.kind, "a": self.a.tolist(), "b": self.b.tolist()}

    @classmethod
    def from_config(cls, config: Any) -> Scaler:
        """Rebuild a scaler from :meth:`get_config`'s output, checking every key.

        Args:
            config: a dict with ``"kind"`` (str), ``"a"`` and ``"b"`` (lists of finite numbers, nested for
                multi-axis features, or a bare number for samples without a feature axis; equal shapes;
                ``b`` positive).

        Returns:
            The scaler.

        Raises:
            ValueError: naming the key that is missing, of the wrong type, of the wrong length or not finite.
        """
        if not isinstance(config, dict):
            raise ValueError(f"scaler config must be a dict, got {type(config).__name__}")
        extra = sorted(set(config) - {"kind", "a", "b"}, key=str)
        if extra:
            raise ValueError(f"scaler config has unknown keys {extra}; expected 'kind', 'a' and 'b'")
        for key in ("kind", "a", "b"):
            if key not in config:
                raise ValueError(f"scaler config is missing the key {key!r}")
        kind = config["kind"]
        if not isinstance(kind, str) or kind not in _KINDS:
            raise ValueError(f"scaler config key 'kind' must be one of {_KINDS}, got {kind!r}")
        arrays = {}
        for key in ("a", "b"):
            value = config[key]
            if isinstance(value, list):
                _check_numbers(value, key)
            else:  # one feature with no feature axis: a bare number
                _check_numbers([value], key)
            try:
                arr = np.array(value, dtype=np.float64)
            except ValueError:
                raise ValueError(
                    f"scaler config key {key!r} must be a regular (non-ragged) list of numbers"
                ) from None
            if arr.size == 0 or 0 in arr.shape:
                raise ValueError(f"scaler config key {key!r} must not be empty")
            if not np.isfinite(arr).all():
                raise ValueError(f"scaler config key {key!r} must hold finite numbers, got NaN or inf")
            arrays[key] = arr
        if arrays["a"].shape != arrays["b"].shape:
            raise ValueError(
                f"scaler config keys 'a' and 'b' must have the same length/shape, got {arrays['a'].shape} "
                f"and {arrays['b'].shape}"
            )
        if not (arrays["b"] > 0).all():
            raise ValueError("scaler config key 'b' must hold positive numbers, got a zero or negative value")
        return cls(kind, arrays["a"], arrays["b"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scaler):
            return NotImplemented
        return self.kind == other.kind and np.array_equal(self.a, other.a) and np.array_equal(self.b, other.b)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Scaler({self.kind!r}, features={self.a.shape})"


def _check_numbers(value: Any, key: str, depth: int = 0) -> None:
    """Raise unless ``value`` is a (nested) list of real numbers (no bools, strings or None)."""
    if depth > 32:
        raise ValueError(f"scaler config key {key!r} is nested too deeply")
    for v in value:
        if isinstance(v, list):
            _check_numbers(v, key, depth + 1)
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"scaler config key {key!r} must hold only numbers, got {v!r}")
        elif isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"scaler config key {key!r} must hold finite numbers, got {v!r}")
