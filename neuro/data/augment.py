"""Random image augmentation applied to a batch: flips, rotation and shift, each with a probability,
vectorized over the batch.

:func:`rotate` turns images by given angles (the deterministic part of the rotation, also usable on its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def _probability(name: str, value: Any) -> float:
    """``True`` → 0.5 and ``False`` → 0 (the flag of earlier releases); else a number in [0, 1]."""
    if isinstance(value, (bool, np.bool_)):
        return 0.5 if value else 0.0
    if not _number(value):
        raise TypeError(f"augment {name} must be a probability in [0, 1] (or True for 0.5), got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"augment {name} must be a probability in [0, 1] (or True for 0.5), got {value!r}")
    return value


@dataclass(frozen=True)
class Augment:
    """Which random transformations to apply to each training image, and how often.

    Every image of a batch draws its own transformation from the generator passed to :meth:`apply`, so the
    same generator state gives the same augmented batch. The original neuro's ``hflip(p)``, ``vflip(p)``
    and ``rotate(angle, p)`` are ``Augment(hflip=p, vflip=p, rotate=(angle, p))``.

    Args:
        hflip: probability of flipping an image left–right, in [0, 1]; ``True`` means 0.5 and ``False`` 0
            (so ``hflip=1`` flips every image while ``hflip=True`` flips half of them).
        vflip: probability of flipping an image upside down, as ``hflip``.
        rotate: the largest angle in degrees, in [0, 180]: a rotated image turns by an angle drawn
            uniformly from ``[-rotate, rotate]`` (positive angles counter-clockwise, as ``np.rot90``;
            nearest-neighbour sampling about the image centre; uncovered pixels become 0). A pair
            ``(angle, p)`` sets ``rotate`` and ``rotate_p`` together.
        rotate_p: probability that an image is rotated, in [0, 1] (default 1: every image, as before).
        shift: move by a whole number of pixels drawn uniformly from ``[-shift·H, shift·H]`` vertically
            and ``[-shift·W, shift·W]`` horizontally (rounded down), ``shift`` in ``[0, 1)``; uncovered
            pixels become 0.

    Raises:
        TypeError: for a probability or an amount that is not a number.
        ValueError: for a probability outside [0, 1], ``rotate`` outside [0, 180], ``shift`` outside
            [0, 1), or ``rotate=(angle, p)`` together with ``rotate_p``.

    Examples:
        >>> aug = Augment(hflip=0.5, vflip=0.1, rotate=(15, 0.3))
        >>> aug.rotate, aug.rotate_p
        (15.0, 0.3)
    """

    hflip: float = 0.0
    vflip: float = 0.0
    rotate: float = 0.0
    rotate_p: float = 1.0
    shift: float = 0.0

    def __init__(
        self,
        hflip: float | bool = 0.0,
        vflip: float | bool = 0.0,
        rotate: float | tuple[float, float] = 0.0,
        rotate_p: float | None = None,
        shift: float = 0.0,
    ) -> None:
        if isinstance(rotate, (tuple, list)):
            if len(rotate) != 2:
                raise ValueError(f"augment rotate must be an angle or a pair (angle, p), got {rotate!r}")
            if rotate_p is not None:
                raise ValueError("augment rotate=(angle, p) already gives the probability; drop rotate_p")
            rotate, rotate_p = rotate
        if rotate_p is None:
            rotate_p = 1.0
        for name, value in (("rotate", rotate), ("shift", shift)):
            if not _number(value):
                raise TypeError(f"augment {name} must be a number, got {value!r}")
        if not 0.0 <= float(rotate) <= 180.0:
            raise ValueError(f"augment rotate must be in [0, 180], got {float(rotate)!r}")
        if not 0.0 <= float(shift) < 1.0:
            raise ValueError(f"augment shift must be in [0, 1), got {float(shift)!r}")
        object.__setattr__(self, "hflip", _probability("hflip", hflip))
        object.__setattr__(self, "vflip", _probability("vflip", vflip))
        object.__setattr__(self, "rotate", float(rotate))
        object.__setattr__(self, "rotate_p", _probability("rotate_p", rotate_p))
        object.__setattr__(self, "shift", float(shift))

    @classmethod
    def coerce(cls, value: Any) -> Augment | None:
        """Return ``value`` as an :class:`Augment` (or ``None`` when nothing is asked).

        Args:
            value: ``None``, an :class:`Augment`, or a dict with the keys ``hflip``, ``vflip``, ``rotate``,
                ``rotate_p``, ``shift``.

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
        """Whether any transformation can happen."""
        return self.hflip > 0 or self.vflip > 0 or self._rotates or self.shift > 0

    @property
    def _rotates(self) -> bool:
        return self.rotate > 0 and self.rotate_p > 0

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the batch with a random transformation applied to each image.

        The draws, in this order: one uniform number per image for each flip that can happen (an image
        flips when its number is below the probability); when rotating, one angle per image, then (only
        when ``rotate_p < 1``) one uniform number per image choosing the images that turn; when shifting,
        the vertical then the horizontal shifts. ``hflip=True`` therefore draws exactly what earlier
        releases drew.

        Args:
            x: float batch; modified in place by the flips.
            rng: the generator the random choices are drawn from.

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
        if self.hflip > 0:
            m = rng.random(b) < self.hflip
            x[m] = x[m, :, ::-1]
        if self.vflip > 0:
            m = rng.random(b) < self.vflip
            x[m] = x[m, ::-1]
        if not self._rotates and self.shift <= 0:
            return x
        if self._rotates:
            angle = rng.uniform(-self.rotate, self.rotate, b)
            if self.rotate_p < 1:
                angle[rng.random(b) >= self.rotate_p] = 0.0
        else:
            angle = np.zeros(b)
        if self.shift > 0:
            sy, sx = int(self.shift * h), int(self.shift * w)
            dy = rng.integers(-sy, sy + 1, b)
            dx = rng.integers(-sx, sx + 1, b)
        else:
            dy = dx = np.zeros(b, dtype=np.int64)
        return _warp(x, angle, dy, dx)


def rotate(x: np.ndarray, degrees: Any) -> np.ndarray:
    """Rotate each image about its centre by its angle, counter-clockwise, with nearest-neighbour sampling.

    Multiples of 90° of a square image equal ``np.rot90``; pixels the rotated image does not cover become 0.
    This is the resampling :class:`Augment` uses for its random rotations.

    Args:
        x: images, any numeric dtype.
        degrees: one angle for all images, or one angle per image, in degrees.

    Returns:
        A new array of the same shape and dtype.

    Shape:
        ``x``: ``(B, H, W, C)``; ``degrees``: scalar or ``(B,)``.

    Raises:
        ValueError: when ``x`` is not 4-D, or ``degrees`` is neither a scalar nor one finite angle per image.

    Examples:
        >>> x = np.arange(9.0).reshape(1, 3, 3, 1)
        >>> bool((rotate(x, 90) == np.rot90(x, axes=(1, 2))).all())
        True
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"rotate needs images (B, H, W, C), got shape {x.shape}")
    b = x.shape[0]
    angle = np.asarray(degrees, dtype=np.float64)
    if angle.ndim == 0:
        angle = np.full(b, float(angle))
    if angle.shape != (b,) or not np.isfinite(angle).all():
        raise ValueError(f"degrees must be one finite angle or one per image ({b}), got {degrees!r}")
    zero = np.zeros(b, dtype=np.int64)
    return _warp(x, angle, zero, zero)


def _warp(x: np.ndarray, degrees: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Rotate each image counter-clockwise by its angle about the centre, then shift it by (dy, dx) pixels.

    For every output pixel, the source pixel: undo the shift, then turn back about the centre, and round
    to the nearest pixel; sources outside the image give 0. Angles that are multiples of 90° use exact
    cosines and sines, so those rotations are exact permutations.
    """
    b, h, w = x.shape[:3]
    rad = degrees * (math.pi / 180)
    cos, sin = np.cos(rad), np.sin(rad)
    quarter = np.remainder(degrees, 90) == 0
    if quarter.any():
        k = np.remainder(degrees[quarter] // 90, 4).astype(np.intp)
        cos[quarter] = np.array([1.0, 0.0, -1.0, 0.0])[k]
        sin[quarter] = np.array([0.0, 1.0, 0.0, -1.0])[k]
    cos, sin = cos[:, None, None], sin[:, None, None]
    ci, cj = (h - 1) / 2, (w - 1) / 2
    i = np.arange(h, dtype=np.float64)[None, :, None] - ci - dy[:, None, None]
    j = np.arange(w, dtype=np.float64)[None, None, :] - cj - dx[:, None, None]
    # Rows grow downwards, so a counter-clockwise turn on screen reads its source at (i·cos + j·sin,
    # −i·sin + j·cos) from the centre.
    si = np.rint(cos * i + sin * j + ci).astype(np.intp)
    sj = np.rint(-sin * i + cos * j + cj).astype(np.intp)
    outside = (si < 0) | (si >= h) | (sj < 0) | (sj >= w)
    np.clip(si, 0, h - 1, out=si)
    np.clip(sj, 0, w - 1, out=sj)
    out = x[np.arange(b)[:, None, None], si, sj]
    out[outside] = 0
    return out
