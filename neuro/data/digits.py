"""scikit-learn's bundled handwritten digits (8×8, 1,797 samples): real data that needs no download."""

from __future__ import annotations

import numpy as np


def load_digits(images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return the digits as float32 in [0, 1] and their int64 labels.

    Args:
        images: return ``(N, 8, 8, 1)`` images instead of ``(N, 64)`` vectors.

    Raises:
        ImportError: when scikit-learn (the ``demo`` extra) is not installed.
    """
    if not isinstance(images, (bool, np.bool_)):
        raise TypeError(f"images must be True or False, got {images!r}")
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("load_digits needs scikit-learn: pip install 'neuro[demo]'") from exc
    bunch = _sk_load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    if images:
        x = x.reshape(-1, 8, 8, 1)
    return x, bunch.target.astype(np.int64)
