"""Inverted dropout as a stateless forward/backward pair; the random numbers come from the caller."""

from __future__ import annotations

from typing import Any

from neuro.backend import compiled, get_array_module, kernel, parallel_for, parallel_map


def dropout(x: Any, rate: float, uniform: Any) -> tuple[Any, Any]:
    """Zero each unit where ``uniform < rate`` and scale the others by ``1 / (1 − rate)``.

    Args:
        x: input of any shape ``(N, ...)``.
        rate: drop probability in [0, 1).
        uniform: numbers in [0, 1) of the shape of x, on x's device; overwritten by the mask.

    Returns:
        ``(y, mask)`` with mask = [u ≥ rate] / (1 − rate).
    """
    xp = get_array_module(x, uniform)
    if x.ndim == 0:  # a scalar: as an array of one (the parts below slice the first axis)
        y, mask = dropout(x.reshape(1), rate, uniform.reshape(1))
        return y.reshape(()), mask.reshape(())
    scale = x.dtype.type(1.0 / (1.0 - rate))
    r = x.dtype.type(rate)
    y = xp.empty_like(x)
    mask = uniform
    if (
        compiled(x, uniform)
        and x.flags.c_contiguous
        and uniform.flags.c_contiguous
        and x.shape == uniform.shape  # the kernel indexes the mask by x's entries
    ):
        xf, yf, mf = x.reshape(-1), y.reshape(-1), mask.reshape(-1)
        zero = x.dtype.type(0)
        parallel_for(  # each part's slices start at 0: the kernel's loop vectorizes
            lambda a, b: _dropout_kernel(xf[a:b], mf[a:b], yf[a:b], r, scale, zero), x.size, 3 * x.size
        )
        return y, mask

    def part(start: int, stop: int) -> None:
        m = mask[start:stop]
        xp.multiply(m >= r, scale, out=m)
        xp.multiply(x[start:stop], m, out=y[start:stop])

    parallel_for(part, len(x), 3 * x.size, xp)
    return y, mask


@kernel
def _dropout_kernel(x, m, y, rate, scale, zero):
    for i in range(x.size):  # the mask [u ≥ rate]·scale, then x·mask, as the NumPy path
        mi = scale if m[i] >= rate else zero
        m[i] = mi
        y[i] = x[i] * mi


def dropout_mask(uniform: Any, rate: float) -> Any:
    """The inverted-dropout mask ``[u ≥ rate] / (1 − rate)``, written over ``uniform``.

    Args:
        uniform: numbers in [0, 1) of the mask's shape, on the device; overwritten.
        rate: drop probability in [0, 1).

    Returns:
        The mask (``uniform`` itself), in the dtype of ``uniform``.
    """
    xp = get_array_module(uniform)
    xp.multiply(uniform >= uniform.dtype.type(rate), uniform.dtype.type(1.0 / (1.0 - rate)), out=uniform)
    return uniform


def dropout_backward(grad: Any, mask: Any) -> Any:
    """dL/dx = dL/dy · mask.

    Args:
        grad: dL/dy, of the shape of x.
        mask: the mask from :func:`dropout`, ``[u ≥ rate] / (1 − rate)``.

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
    xp = get_array_module(grad, mask)
    return parallel_map(xp.multiply, xp.empty_like(grad), grad, mask)
