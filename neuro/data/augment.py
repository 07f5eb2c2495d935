"""Random image augmentation applied to a batch: flips, rotation and shift, vectorized over the batch."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Augment:
    """Which random transformations to apply to each training image (each optional).

    Every image of a batch draws its own transformation from the generator passed to :meth:`apply`, so the
    same generator state gives the same augmented batch.

    Args:
        hflip: flip left–right with probability 1/2.
        vflip: flip upside down with probability 1/2.
        rotate: rotate by an angle drawn uniformly from ``[-rotate, rotate]`` degrees, in ``[0, 180]``
            (nearest-neighbour sampling about the image centre; uncovered pixels become 0).
        shift: move by a whole number of pixels drawn uniformly from ``[-shift·H, shift·H]`` vertically
            and ``[-shift·W, shift·W]`` horizontally (rounded down), ``shift`` in ``[0, 1)``; uncovered
            pixels become 0.

    Raises:
        TypeError: for a flag that is not a bool or an amount that is not a number.
        ValueError: for ``rotate`` outside [0, 180] or ``shift`` outside [0, 1).
    """

    hflip: bool = False
    vflip: bool = False
    rotate: float = 0.0
    shift: float = 0.0

    def __post_init__(self) -> None:
        for name in ("hflip", "vflip"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"augment {name} must be True or False, got {getattr(self, name)!r}")
        for name, low, high, closed in (("rotate", 0.0, 180.0, True), ("shift", 0.0, 1.0, False)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"augment {name} must be a number, got {value!r}")
            value = float(value)
            inside = low <= value <= high if closed else low <= value < high
            if not inside:
                interval = f"[{low:g}, {high:g}]" if closed else f"[{low:g}, {high:g})"
                raise ValueError(f"augment {name} must be in {interval}, got {value!r}")
            object.__setattr__(self, name, value)

    @classmethod
    def coerce(cls, value: Any) -> Augment | None:
        """Return ``value`` as an :class:`Augment` (or ``None`` when nothing is asked).

        Args:
            value: ``None``, an :class:`Augment`, or a dict with the keys ``hflip``, ``vflip``, ``rotate``,
                ``shift``.

        Returns:
            The augmentation, or ``None`` when ``value`` is ``None`` or asks for nothing.

        Raises:
            TypeError: when ``value`` is of another type.
            ValueError: for unknown dict keys or out-of-range amounts.
        """
        if value is None:
            return None
        if isinstance(value, dict):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known, key=str)
            if unknown:
                raise ValueError(f"augment has unknown keys {unknown}; expected some of {sorted(known)}")
            value = cls(**value)
        if not isinstance(value, cls):
            raise TypeError(f"augment must be None, a dict or an Augment, got {type(value).__name__}")
        return value if value.active else None

    @property
    def active(self) -> bool:
        """Whether any transformation is asked for."""
        return self.hflip or self.vflip or self.rotate > 0 or self.shift > 0

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the batch with a random transformation applied to each image.

        Args:
            x: float batch; modified in place by the flips.
            rng: the generator the random choices are drawn from, in a fixed order (horizontal flips,
                vertical flips, angles, vertical then horizontal shifts).

        Returns:
            The augmented batch (``x`` itself, or a new array when rotating or shifting).

        Shape:
            ``x``: ``(B, H, W, C)``; the result has the same shape and dtype.

        Raises:
            ValueError: when ``x`` is not 4-D.
            TypeError: when ``rng`` is not a ``numpy.random.Generator``.
        """
        if x.ndim != 4:
            raise ValueError(f"augmentation needs images (B, H, W, C), got shape {x.shape}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        b, h, w = x.shape[:3]
        if self.hflip:
            m = rng.random(b) < 0.5
            x[m] = x[m, :, ::-1]
        if self.vflip:
            m = rng.random(b) < 0.5
            x[m] = x[m, ::-1]
        if self.rotate <= 0 and self.shift <= 0:
            return x
        if self.rotate > 0:
            angle = rng.uniform(-self.rotate, self.rotate, b) * (math.pi / 180)
        else:
            angle = np.zeros(b)
        if self.shift > 0:
            sy, sx = int(self.shift * h), int(self.shift * w)
            dy = rng.integers(-sy, sy + 1, b)
            dx = rng.integers(-sx, sx + 1, b)
        else:
            dy = dx = np.zeros(b, dtype=np.int64)
        # For every output pixel, the source pixel: undo the shift, then rotate about the centre.
        ci, cj = (h - 1) / 2, (w - 1) / 2
        i = np.arange(h, dtype=np.float64)[None, :, None] - ci - dy[:, None, None]
        j = np.arange(w, dtype=np.float64)[None, None, :] - cj - dx[:, None, None]
        cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
        si = np.rint(cos * i - sin * j + ci).astype(np.intp)
        sj = np.rint(sin * i + cos * j + cj).astype(np.intp)
        outside = (si < 0) | (si >= h) | (sj < 0) | (sj >= w)
        np.clip(si, 0, h - 1, out=si)
        np.clip(sj, 0, w - 1, out=sj)
        out = x[np.arange(b)[:, None, None], si, sj]
        out[outside] = 0
        return out
