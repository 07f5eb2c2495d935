"""Activation functions as stateless forward/backward pairs.

Each ``f(x, inplace=False) -> (y, ctx)`` returns the output and what its backward needs (the output for
ReLU, Sigmoid, Tanh, Softmax and Exponential, a mask for LeakyReLU (the sign) and HardSigmoid (−3 < x < 3),
the input and a value computed with the output for GELU, Swish and Mish, the input for the others);
``f_backward(grad, ctx) -> dL/dx``. The array module comes from the arguments, so the same code runs on
NumPy, CuPy and the strict stand-in. Every function keeps the dtype of its input (constants are cast to it).

GELU's exact form needs the error function, which NumPy lacks: :func:`erf` and :func:`erfc` here are
W. J. Cody's rational approximations, vectorized.
"""

from __future__ import annotations

import math
from typing import Any

from neuro.backend import compiled, get_array_module, kernel, parallel_for, parallel_map


def _flat(fn: Any, out: Any, *arrays: Any, scalars: tuple = (), cost: int = 2) -> Any:
    """Run the compiled elementwise kernel ``fn(out, *arrays, *scalars)`` over flat views, the range split
    over neuro's threads (each part's slices start at 0, so the kernel's loop vectorizes); ``out`` is
    returned."""
    flats = [a.reshape(-1) for a in (out, *arrays)]
    parallel_for(lambda a, b: fn(*(f[a:b] for f in flats), *scalars), out.size, cost * out.size)
    return out


def _contiguous(*arrays: Any) -> bool:
    """The compiled elementwise kernels take them: C-contiguous arrays of one shape (the kernels index each
    by the first's entries; NumPy's path broadcasts, or refuses, other shapes)."""
    return (
        compiled(*arrays)
        and all(a.flags.c_contiguous for a in arrays)
        and all(a.shape == arrays[0].shape for a in arrays)
    )


def relu(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """``y = max(x, 0)``; ctx is y (y > 0 exactly where x > 0).

    Args:
        x: input of any shape ``(N, ...)``.
        inplace: write y over x (x is then lost).

    Shape:
        y has the shape of x.

    Returns:
        ``(y, y)``: the output and its context for :func:`relu_backward`.
    """
    xp = get_array_module(x)
    y = x if inplace else xp.empty_like(x)
    zero = x.dtype.type(0)
    parallel_map(lambda a, out: xp.maximum(a, zero, out=out), y, x)
    return y, y


def relu_backward(grad: Any, y: Any) -> Any:
    """dL/dx = dL/dy · [y > 0].

    Args:
        grad: dL/dy, of the shape of y.
        y: the output of :func:`relu` (its context).

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
    xp = get_array_module(grad, y)
    if _contiguous(grad, y):
        dt = grad.dtype.type
        return _flat(_relu_backward_kernel, xp.empty_like(grad), grad, y, scalars=(dt(0), dt(1)))
    return parallel_map(lambda g, a, out: xp.multiply(g, a > 0, out=out), xp.empty_like(grad), grad, y)


@kernel
def _relu_backward_kernel(out, g, y, zero, one):
    for i in range(out.size):  # g·[y > 0] as NumPy computes it (a negative g times 0 is −0)
        out[i] = g[i] * (one if y[i] > zero else zero)


def leaky_relu(x: Any, alpha: float, inplace: bool = False) -> tuple[Any, Any]:
    """``y = x`` for x > 0, ``alpha·x`` otherwise; ctx is the mask ``x > 0``.

    Args:
        x: input of any shape ``(N, ...)``.
        alpha: slope for x ≤ 0.
        inplace: accepted for a uniform signature; the result is always a new array.

    Shape:
        y and the boolean mask have the shape of x.

    Returns:
        ``(y, mask)``.
    """
    xp = get_array_module(x)
    mask = x > 0
    return xp.where(mask, x, x * x.dtype.type(alpha)), mask


def leaky_relu_backward(grad: Any, mask: Any, alpha: float) -> Any:
    """dL/dx = dL/dy · (1 if x > 0 else alpha).

    Args:
        grad: dL/dy, of the shape of x.
        mask: the boolean ``x > 0`` from :func:`leaky_relu`.
        alpha: the slope of the forward pass.

    Returns:
        dL/dx, of the shape of ``grad``.
    """
    xp = get_array_module(grad, mask)
    return xp.where(mask, grad, grad * grad.dtype.type(alpha))


def sigmoid(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """Overflow-free logistic function through exp(−|x|), which lies in (0, 1]; ctx is y.

    ``y = 1/(1 + e^−x)`` for x ≥ 0 and ``e^x/(1 + e^x)`` otherwise.

    Args:
        x: input of any shape ``(N, ...)``.
        inplace: accepted for a uniform signature; the result is always a new array.

    Shape:
        y has the shape of x.

    Returns:
        ``(y, y)``: the output and its context for :func:`sigmoid_backward`.
    """
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    one = x.dtype.type(1)
    y = xp.where(x >= 0, one / (one + e), e / (one + e))
    return y, y


def sigmoid_backward(grad: Any, y: Any) -> Any:
    """dL/dx = dL/dy · y · (1 − y).

    Args:
        grad: dL/dy, of the shape of y.
        y: the output of :func:`sigmoid` (its context).

    Returns:
        dL/dx, of the shape of ``grad``.
    """
    if _contiguous(grad, y):
        out = get_array_module(grad).empty_like(grad)
        return _flat(_sigmoid_backward_kernel, out, grad, y, scalars=(grad.dtype.type(1),))
    return grad * y * (1 - y)


@kernel
def _sigmoid_backward_kernel(out, g, y, one):
    for i in range(out.size):  # (g·y)·(1 − y), NumPy's order
        out[i] = (g[i] * y[i]) * (one - y[i])


def tanh(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """Hyperbolic tangent; ctx is y.

    Args:
        x: input of any shape ``(N, ...)``.
        inplace: write y over x (x is then lost).

    Shape:
        y has the shape of x.

    Returns:
        ``(y, y)``: the output and its context for :func:`tanh_backward`.
    """
    xp = get_array_module(x)
    y = x if inplace else xp.empty_like(x)
    parallel_map(xp.tanh, y, x)
    return y, y


def tanh_backward(grad: Any, y: Any) -> Any:
    """dL/dx = dL/dy · (1 − y)(1 + y) (not 1 − y·y: near |y| = 1 its rounding would cost many digits).

    Args:
        grad: dL/dy, of the shape of y.
        y: the output of :func:`tanh` (its context).

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
    xp = get_array_module(grad, y)
    if grad.ndim == 0:  # a scalar: as an array of one (the parts below slice the first axis)
        return tanh_backward(grad.reshape(1), y.reshape(1)).reshape(())
    out = xp.empty_like(grad)
    one = grad.dtype.type(1)
    if _contiguous(grad, y):
        return _flat(_tanh_backward_kernel, out, grad, y, scalars=(one,))

    def part(start: int, stop: int) -> None:
        ys, o = y[start:stop], out[start:stop]
        xp.subtract(one, ys, out=o)
        o *= ys + one
        o *= grad[start:stop]

    parallel_for(part, len(grad), 3 * grad.size, xp)
    return out


@kernel
def _tanh_backward_kernel(out, g, y, one):
    for i in range(out.size):  # ((1 − y)·(y + 1))·g, NumPy's order
        out[i] = ((one - y[i]) * (y[i] + one)) * g[i]


def softmax(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """Softmax along the last axis, shifted by the row maximum so that it never overflows; ctx is y.

    ``y_k = exp(x_k − max x) / Σ_j exp(x_j − max x)``.

    Args:
        x: input ``(..., K)``; the softmax runs over its last axis.
        inplace: write y over x (x is then lost).

    Shape:
        y has the shape of x; each row along the last axis sums to 1.

    Returns:
        ``(y, y)``: the output and its context for :func:`softmax_backward`.
    """
    xp = get_array_module(x)
    z = xp.subtract(x, x.max(axis=-1, keepdims=True), out=x if inplace else None)
    xp.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z, z


def softmax_backward(grad: Any, y: Any) -> Any:
    """The Jacobian-vector product dL/dx = y · (g − Σ_k g_k y_k), with g = dL/dy.

    Args:
        grad: g = dL/dy ``(..., K)``.
        y: the output of :func:`softmax` (its context), of the shape of ``grad``.

    Returns:
        dL/dx, of the shape of ``grad``.
    """
    return y * (grad - (grad * y).sum(axis=-1, keepdims=True))


def log_softmax(x: Any) -> Any:
    """Log-softmax along the last axis: ``x − max − log Σ exp(x − max)`` (finite for finite x).

    Args:
        x: input ``(..., K)``.

    Shape:
        The result has the shape of x.

    Returns:
        ``log softmax(x)``, a new array.
    """
    xp = get_array_module(x)
    z = x - x.max(axis=-1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))


# -- the error function ----------------------------------------------------------------------------------
# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969) 631-638;
# the coefficients of his CALERF (netlib SPECFUN, https://www.netlib.org/specfun/erf), as published.
_ERF_A = (
    3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
    1.85777706184603153e-01,
)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERF_C = (
    5.64188496988670089e-01, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
    8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
    2.15311535474403846e-08,
)
_ERF_D = (
    1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
    3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03,
)
_ERF_P = (
    3.05326634961232344e-01, 3.60344899949804439e-01, 1.25781726111229246e-01, 1.60837851487422766e-02,
    6.58749161529837803e-04, 1.63153871373020978e-02,
)
_ERF_Q = (
    2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-01, 6.05183413124413191e-02,
    2.33520497626869185e-03,
)
#: 1/sqrt(pi), as in CALERF.
_SQRPI = 5.6418958354775628695e-1
#: The bounds of CALERF's three intervals (erfc(|x|) leaves float64's normal range at about 26.6 and
#: underflows to 0 at about 27.2).
ERF_BOUNDS = (0.46875, 4.0, 30.0)


def _cody_ratio(t: Any, num: tuple[float, ...], den: tuple[float, ...]) -> Any:
    """CALERF's Horner scheme: ``((n_k·t + n_0)·t … + n_{k−1}) / ((t + d_0)·t … + d_{k−1})`` with
    ``k = len(den)`` (``num`` holds one more coefficient, its leading one last)."""
    typ = t.dtype.type
    xnum = t * typ(num[-1])
    xden = t + typ(den[0])
    xden *= t
    for k, a in enumerate(num[:-2]):  # in place: the same operations in the same order, fewer arrays
        xnum += typ(a)
        xnum *= t
        if k:
            xden += typ(den[k])
            xden *= t
    xnum += typ(num[-2])
    xden += typ(den[-1])
    xnum /= xden
    return xnum


def exp_neg_square(y: Any, scale: float = 1.0) -> Any:
    """``exp(−scale·y²)`` without the rounding error of ``y²`` (CALERF's split, for scale 1 or 1/2).

    With ``h = trunc(16·y)/16`` (a number of few bits, so ``h·h`` and ``scale·h·h`` are exact),
    ``exp(−s·y²) = exp(−s·h²)·exp(−s·(y − h)(y + h))``: a plain ``exp(−y·y)`` would carry the relative error
    of ``y·y`` times ``y²`` (5e-15 at y = 6). The caller keeps |y| small enough that ``y·y`` cannot overflow.

    Args:
        y: any array.
        scale: 1.0 or 0.5 (a power of two, so that ``scale·h·h`` stays exact).

    Returns:
        ``exp(−scale·y²)``, of the shape and dtype of y.
    """
    xp = get_array_module(y)
    typ = y.dtype.type
    h = xp.trunc(y * typ(16)) / typ(16)
    return xp.exp(h * h * typ(-scale)) * xp.exp((y - h) * (y + h) * typ(-scale))


def _erf_parts(x: Any) -> tuple[Any, Any, Any]:
    """``(|x| <= 0.46875, erf(x) on that interval, erfc(|x|) elsewhere)``: CALERF's three intervals, each
    evaluated on the whole array with its argument clipped to the interval, then chosen by the caller."""
    xp = get_array_module(x)
    typ = x.dtype.type
    lo, mid, hi = (typ(b) for b in ERF_BOUNDS)
    y = xp.abs(x)
    small = y <= lo
    x1 = xp.clip(x, -lo, lo)  # |x| <= 0.46875: erf(x) = x·A(x²)/B(x²)
    erf_small = x1 * _cody_ratio(x1 * x1, _ERF_A, _ERF_B)
    y2 = xp.clip(y, lo, mid)  # 0.46875 < |x| <= 4: erfc(|x|) = exp(−x²)·C(|x|)/D(|x|)
    erfc_mid = exp_neg_square(y2) * _cody_ratio(y2, _ERF_C, _ERF_D)
    y3 = xp.clip(y, mid, hi)  # |x| > 4: erfc(|x|) = exp(−x²)/|x|·(1/√π − z·P(z)/Q(z)), z = 1/x²
    z = typ(1) / (y3 * y3)
    erfc_large = exp_neg_square(y3) * ((typ(_SQRPI) - z * _cody_ratio(z, _ERF_P, _ERF_Q)) / y3)
    return small, erf_small, xp.where(y <= mid, erfc_mid, erfc_large)


def erf(x: Any) -> Any:
    """The error function ``erf(x) = 2/√π ∫_0^x exp(−t²) dt``, elementwise, in the dtype of x.

    W. J. Cody's rational Chebyshev approximations (CALERF of netlib's SPECFUN: "Rational Chebyshev
    approximations for the error function", Math. Comp. 23 (1969) 631-638), with their published
    coefficients: ``x·A(x²)/B(x²)`` for |x| ≤ 0.46875, ``1 − exp(−x²)·C(|x|)/D(|x|)`` up to 4 and
    ``1 − exp(−x²)/|x|·(1/√π − P(1/x²)/(x²·Q(1/x²)))`` beyond, with ``exp(−x²)`` split so that the rounding
    of x² does not enter. In float64 it agrees with ``math.erf`` to a few units in the last place; float32
    stays float32 (NumPy has no erf, and SciPy is not a dependency). NaN stays NaN, ±inf gives ±1.

    Args:
        x: any array (NumPy, CuPy or the strict stand-in).

    Returns:
        ``erf(x)``, a new array of the shape and dtype of x.

    Gradient: d erf/dx = 2/√π · exp(−x²).
    """
    xp = get_array_module(x)
    one = x.dtype.type(1)
    small, erf_small, erfc_abs = _erf_parts(x)
    return xp.where(small, erf_small, xp.where(x < 0, erfc_abs - one, one - erfc_abs))


def erfc(x: Any) -> Any:
    """The complementary error function ``erfc(x) = 1 − erf(x)``, accurate relative to itself in its tail.

    The same approximations as :func:`erf`: for x > 0.46875 erfc is computed directly (never as 1 − erf),
    so ``erfc(26)`` ≈ 5.7e-296 keeps its relative accuracy; in float64 it is subnormal beyond about 26.6 and
    underflows to 0 beyond about 27.2.

    Args:
        x: any array (NumPy, CuPy or the strict stand-in).

    Returns:
        ``erfc(x)``, a new array of the shape and dtype of x.

    Gradient: d erfc/dx = −2/√π · exp(−x²).
    """
    xp = get_array_module(x)
    typ = x.dtype.type
    small, erf_small, erfc_abs = _erf_parts(x)
    return xp.where(small, typ(1) - erf_small, xp.where(x < 0, typ(2) - erfc_abs, erfc_abs))


def _sigmoid_pair(z: Any, e: Any) -> tuple[Any, Any]:
    """``(σ(z), 1 − σ(z))`` from ``e = exp(−|z|)``, each without cancellation (σ(−z) = 1 − σ(z))."""
    xp = get_array_module(z)
    one = z.dtype.type(1)
    big, small = one / (one + e), e / (one + e)
    pos = z >= 0
    return xp.where(pos, big, small), xp.where(pos, small, big)


# -- more activations (Keras's names) ---------------------------------------------------------------------
_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: sqrt(2/π) and the cubic coefficient of the tanh approximation of GELU (Hendrycks and Gimpel).
_GELU_BETA = math.sqrt(2.0 / math.pi)
_GELU_KAPPA = 0.044715
#: SELU's constants (Klambauer et al. 2017), as Keras and PyTorch write them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
#: |x| beyond which the cube of the tanh approximation is not formed (its sigmoid has saturated long before).
_GELU_CLIP = 1e6
#: |x| beyond which the normal density exp(−x²/2) has underflowed in every float type.
_PDF_CLIP = 40.0


def gelu(x: Any, approximate: bool = False, inplace: bool = False) -> tuple[Any, Any]:
    """Gaussian error linear unit ``y = x·Φ(x)``, Φ the standard normal CDF; ctx is ``(x, Φ(x))`` or, for the
    tanh approximation, ``(x, u, exp(−2|u|))``.

    Exact form (``torch.nn.functional.gelu(approximate="none")``): ``Φ(x) = erfc(−x/√2)/2`` with
    :func:`erfc`, which keeps its relative accuracy for large negative x (``(1 + erf(x/√2))/2``, PyTorch's
    form, cancels there). Tanh form (``approximate="tanh"``): ``y = x·(1 + tanh(u))/2`` with
    ``u = √(2/π)·(x + 0.044715·x³)``, computed as ``x·s`` with ``s = σ(2u)`` (the same number, without the
    cancellation of ``1 + tanh(u)`` for negative u; s and 1 − s both come from ``exp(−2|u|)``).

    Args:
        x: input of any shape ``(N, ...)``.
        approximate: use the tanh approximation.
        inplace: accepted for a uniform signature; the result is always a new array (the context keeps x).

    Shape:
        y has the shape of x.

    Returns:
        ``(y, ctx)`` for :func:`gelu_backward`.
    """
    xp = get_array_module(x)
    typ = x.dtype.type
    if approximate:
        xc = xp.clip(x, typ(-_GELU_CLIP), typ(_GELU_CLIP))
        u = (xc + typ(_GELU_KAPPA) * (xc * xc * xc)) * typ(_GELU_BETA)
        e = xp.exp(xp.abs(u) * typ(-2))
        s, _ = _sigmoid_pair(u, e)
        return x * s, (x, u, e)
    cdf = erfc(x * typ(-_SQRT1_2)) * typ(0.5)
    return x * cdf, (x, cdf)


def gelu_backward(grad: Any, ctx: Any, approximate: bool = False) -> Any:
    """dL/dx = dL/dy · (Φ(x) + x·φ(x)), φ(x) = exp(−x²/2)/√(2π); tanh form: dL/dy · (s + x·s(1 − s)·2u'),
    ``u' = √(2/π)·(1 + 3·0.044715·x²)``.

    Args:
        grad: dL/dy, of the shape of x.
        ctx: the context of :func:`gelu`.
        approximate: the form of the forward pass.

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
    xp = get_array_module(grad)
    x = ctx[0]
    typ = x.dtype.type
    if approximate:
        _, u, e = ctx
        s, one_minus_s = _sigmoid_pair(u, e)
        xc = xp.clip(x, typ(-_GELU_CLIP), typ(_GELU_CLIP))
        du = (typ(1) + typ(3 * _GELU_KAPPA) * (xc * xc)) * typ(2 * _GELU_BETA)
        return grad * (s + x * (s * one_minus_s) * du)
    c = ctx[1]
    xc = xp.clip(x, typ(-_PDF_CLIP), typ(_PDF_CLIP))
    pdf = exp_neg_square(xc, 0.5) * typ(_INV_SQRT_2PI)
    return grad * (c + x * pdf)


def elu(x: Any, alpha: float = 1.0, inplace: bool = False) -> tuple[Any, Any]:
    """Exponential linear unit: ``y = x`` for x > 0, ``alpha·(exp(x) − 1)`` otherwise (``expm1``); ctx is x.

    Args:
        x: input of any shape ``(N, ...)``.
        alpha: the value the negative side tends to is −alpha.
        inplace: accepted for a uniform signature; the result is always a new array.

    Shape:
        y has the shape of x.

    Returns:
        ``(y, x)``.
    """
    xp = get_array_module(x)
    typ = x.dtype.type
    return xp.where(x > 0, x, xp.expm1(xp.minimum(x, typ(0))) * typ(alpha)), x


def elu_backward(grad: Any, x: Any, alpha: float = 1.0) -> Any:
    """dL/dx = dL/dy · (1 if x > 0 else alpha·exp(x)).

    Args:
        grad: dL/dy, of the shape of x.
        x: the input of :func:`elu` (its context).
        alpha: the forward pass's alpha.

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
    xp = get_array_module(grad, x)
    typ = x.dtype.type
    return xp.where(x > 0, grad, grad * (xp.exp(xp.minimum(x, typ(0))) * typ(alpha)))


def selu(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """Scaled ELU: ``y = scale·x`` for x > 0, ``scale·alpha·(exp(x) − 1)`` otherwise; ctx is x.

    ``alpha = 1.6732632423543772…`` and ``scale = 1.0507009873554805…`` (:data:`SELU_ALPHA`,
    :data:`SELU_SCALE`), the constants of Keras and PyTorch.

    Args:
        x: input of any shape ``(N, ...)``.
        inplace: accepted for a uniform signature; the result is always a new array.

    Shape:
        y has the shape of x.

    Returns:
        ``(y, x)``.
    """
    xp = get_array_module(x)
    typ = x.dtype.type
    neg = xp.expm1(xp.minimum(x, typ(0))) * typ(SELU_ALPHA * SELU_SCALE)
    return xp.where(x > 0, x * typ(SELU_SCALE), neg), x


def selu_backward(grad: Any, x: Any) -> Any:
    """dL/dx = dL/dy · scale · (1 if x > 0 else alpha·exp(x)).

    Args:
        grad: dL/dy, of the shape of x.
        x: the input of :func:`selu` (its context).

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
    xp = get_array_module(grad, x)
    typ = x.dtype.type
    neg = grad * (xp.exp(xp.minimum(x, typ(0))) * typ(SELU_ALPHA * SELU_SCALE))
    return xp.where(x > 0, grad * typ(SELU_SCALE), neg)


def swish(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """Swish / SiLU: ``y = x·σ(x)``; ctx is ``(x, exp(−|x|))``.

    Args:
        x: input of any shape ``(N, ...)``.
        inplace: accepted for a uniform signature; the result is always a new array.

    Shape:
        y has the shape of x.

    Returns:
        ``(y, (x, exp(−|x|)))``.
    """
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    s, _ = _sigmoid_pair(x, e)
    return x * s, (x, e)


def swish_backward(grad: Any, ctx: Any) -> Any:
    """dL/dx = dL/dy · σ(x)·(1 + x·σ(−x)) (σ(−x) = 1 − σ(x), computed without cancellation).

    Args:
        grad: dL/dy, of the shape of x.
        ctx: ``(x, exp(−|x|))`` from :func:`swish`.

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
    x, e = ctx
    s, one_minus_s = _sigmoid_pair(x, e)
    return grad * (s * (x.dtype.type(1) + x * one_minus_s))


def softplus(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """``y = log(1 + exp(x))``, computed as ``max(x, 0) + log1p(exp(−|x|))``: no overflow for large x, no loss
    of digits for large negative x; ctx is x.

    Args:
        x: input of any shape ``(N, ...)``.
        inplace: accepted for a uniform signature; the result is always a new array.

    Shape:
        y has the shape of x.

    Returns:
        ``(y, x)``.
    """
    xp = get_array_module(x)
    return xp.maximum(x, x.dtype.type(0)) + xp.log1p(xp.exp(-xp.abs(x))), x


def softplus_backward(grad: Any, x: Any) -> Any:
    """dL/dx = dL/dy · σ(x).

    Args:
        grad: dL/dy, of the shape of x.
        x: the input of :func:`softplus` (its context).

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
    return grad * sigmoid(x)[0]


def softsign(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """``y = x / (1 + |x|)``; ctx is x.

    Args:
        x: input of any shape ``(N, ...)``.
        inplace: accepted for a uniform signature; the result is always a new array.

    Shape:
        y has the shape of x.

    Returns:
        ``(y, x)``.
    """
    xp = get_array_module(x)
    return x / (xp.abs(x) + x.dtype.type(1)), x


def softsign_backward(grad: Any, x: Any) -> Any:
    """dL/dx = dL/dy / (1 + |x|)² (divided twice, so that it cannot overflow).

    Args:
        grad: dL/dy, of the shape of x.
        x: the input of :func:`softsign` (its context).

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
    d = get_array_module(x).abs(x) + x.dtype.type(1)
    return grad / d / d


def hard_sigmoid(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """Keras 3's hard sigmoid ``y = relu6(x + 3)/6 = clip(x/6 + 1/2, 0, 1)`` (PyTorch's ``hardsigmoid``;
    Keras 2 used ``clip(0.2·x + 0.5, 0, 1)``); ctx is the mask ``−3 < x < 3``.

    Args:
        x: input of any shape ``(N, ...)``.
        inplace: accepted for a uniform signature; the result is always a new array.

    Shape:
        y and the mask have the shape of x.

    Returns:
        ``(y, mask)``.
    """
    xp = get_array_module(x)
    typ = x.dtype.type
    y = xp.minimum(xp.maximum(x + typ(3), typ(0)), typ(6)) / typ(6)
    return y, (x > typ(-3)) & (x < typ(3))


def hard_sigmoid_backward(grad: Any, mask: Any) -> Any:
    """dL/dx = dL/dy / 6 where −3 < x < 3, else 0 (0 at ±3, as PyTorch).

    Args:
        grad: dL/dy, of the shape of x.
        mask: ``−3 < x < 3`` from :func:`hard_sigmoid`.

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
    xp = get_array_module(grad, mask)
    typ = grad.dtype.type
    return xp.where(mask, grad / typ(6), typ(0))


def exponential(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """``y = exp(x)``; ctx is y (inf beyond the dtype's range, as ``numpy.exp``).

    Args:
        x: input of any shape ``(N, ...)``.
        inplace: write y over x (x is then lost).

    Shape:
        y has the shape of x.

    Returns:
        ``(y, y)``.
    """
    xp = get_array_module(x)
    y = xp.exp(x, out=x) if inplace else xp.exp(x)
    return y, y


def exponential_backward(grad: Any, y: Any) -> Any:
    """dL/dx = dL/dy · exp(x) = dL/dy · y.

    Args:
        grad: dL/dy, of the shape of y.
        y: the output of :func:`exponential` (its context).

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
    return grad * y


def _mish_parts(x: Any, u: Any) -> tuple[Any, Any]:
    """``(t, 1 − t)`` with ``t = tanh(softplus(x))``, from ``u = exp(−|x|)``, without cancellation.

    With ``e = exp(x)``, ``t = (e² + 2e)/(e² + 2e + 2)``: for x < 0 (e = u) that is ``n/(n + 2)``,
    ``n = u(u + 2)``; for x ≥ 0 (divided by e²) ``(1 + 2u)/(1 + 2u + 2u²)``; 1 − t is 2/(n + 2) or
    2u²/(1 + 2u + 2u²).
    """
    xp = get_array_module(x)
    typ = x.dtype.type
    one, two = typ(1), typ(2)
    pos = x >= 0
    num = xp.where(pos, one + two * u, u * (u + two))
    den = num + xp.where(pos, two * (u * u), two)
    return num / den, xp.where(pos, two * (u * u), two) / den


def mish(x: Any, inplace: bool = False) -> tuple[Any, Any]:
    """Mish: ``y = x·tanh(softplus(x))``; ctx is ``(x, exp(−|x|))``.

    ``tanh(softplus(x))`` is written as a ratio of exponentials of −|x| (see ``_mish_parts``), so that
    neither overflows and 1 − tanh keeps its digits for the gradient.

    Args:
        x: input of any shape ``(N, ...)``.
        inplace: accepted for a uniform signature; the result is always a new array.

    Shape:
        y has the shape of x.

    Returns:
        ``(y, (x, exp(−|x|)))``.
    """
    xp = get_array_module(x)
    u = xp.exp(-xp.abs(x))
    t, _ = _mish_parts(x, u)
    return x * t, (x, u)


def mish_backward(grad: Any, ctx: Any) -> Any:
    """dL/dx = dL/dy · (t + x·σ(x)·(1 − t²)), t = tanh(softplus(x)), 1 − t² written as (1 − t)(1 + t).

    Args:
        grad: dL/dy, of the shape of x.
        ctx: ``(x, exp(−|x|))`` from :func:`mish`.

    Returns:
        dL/dx, a new array of the shape of ``grad``.
    """
    x, u = ctx
    typ = x.dtype.type
    t, omt = _mish_parts(x, u)
    sig, _ = _sigmoid_pair(x, u)
    return grad * (t + x * sig * (omt * (typ(2) - omt)))
