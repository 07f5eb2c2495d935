"""Merge layers: several inputs in, one output out (Add, Subtract, Multiply, Average, Maximum, Minimum,
Concatenate), as in Keras. They take a list of tensors, ``Add()([a, b])``, and have no parameters.
"""

from __future__ import annotations

import numbers
from typing import Any

from neuro import registry
from neuro.backend import get_array_module
from neuro.layers.base import Layer, is_shape


class _Merge(Layer):
    """Elementwise merges of two or more inputs of one shape.

    Masks: a merge supports masking; the output step is valid where every input's step is (an input without
    a mask counts as all valid).
    """

    supports_masking = True
    #: How many inputs the merge takes: ``None`` for two or more.
    n_inputs: int | None = None

    def compute_output_shape(self, input_shape: Any) -> Any:
        shapes = self._shapes(input_shape)
        if any(s != shapes[0] for s in shapes[1:]):
            raise ValueError(
                f"{type(self).__name__} needs inputs of one shape, got shapes {[(None, *s) for s in shapes]}"
            )
        return shapes[0]

    def _shapes(self, input_shape: Any) -> list[tuple[int, ...]]:
        if is_shape(input_shape) or not isinstance(input_shape, list):
            raise ValueError(f"{type(self).__name__} takes a list of inputs, got one input {input_shape}")
        want = self.n_inputs
        if (want is None and len(input_shape) < 2) or (want is not None and len(input_shape) != want):
            expected = "at least 2" if want is None else str(want)
            raise ValueError(f"{type(self).__name__} takes {expected} inputs, got {len(input_shape)}")
        return [tuple(s) for s in input_shape]

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        masks = [m for m in (mask or []) if m is not None]
        if not masks:
            return None
        out = masks[0]
        for m in masks[1:]:
            out = out & m
        return out

    def backward(self, grad: Any, ctx: Any) -> Any:
        ctx = self._require(ctx)
        return self._backward(grad, ctx) if self.need_input_grad else None

    def _backward(self, grad: Any, ctx: Any) -> tuple[Any, ...]:
        raise NotImplementedError


@registry.register
class Add(_Merge):
    """Sum of the inputs: ``y = x₁ + x₂ + …``.

    Args:
        name: optional layer name.

    Shape:
        - inputs: a list of two or more arrays of one shape ``(N, ...)``; output: that shape.

    Gradient: dL/dxᵢ = dL/dy for every input.
    """

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        y = x[0] + x[1]
        for a in x[2:]:
            y += a
        return y, (len(x) if training else None)

    def _backward(self, grad: Any, ctx: Any) -> tuple[Any, ...]:
        return (grad,) * ctx


@registry.register
class Subtract(_Merge):
    """Difference of two inputs: ``y = x₁ − x₂``.

    Args:
        name: optional layer name.

    Shape:
        - inputs: a list of two arrays of one shape ``(N, ...)``; output: that shape.

    Gradient: dL/dx₁ = dL/dy, dL/dx₂ = −dL/dy.
    """

    n_inputs = 2

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        return x[0] - x[1], (True if training else None)

    def _backward(self, grad: Any, ctx: Any) -> tuple[Any, ...]:
        return grad, -grad


@registry.register
class Multiply(_Merge):
    """Elementwise product of the inputs: ``y = x₁ · x₂ · …``.

    Args:
        name: optional layer name.

    Shape:
        - inputs: a list of two or more arrays of one shape ``(N, ...)``; output: that shape.

    Gradient: dL/dxᵢ = dL/dy · Π_{j≠i} xⱼ (each product formed from the other inputs, so a zero input is
    no problem).
    """

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        y = x[0] * x[1]
        for a in x[2:]:
            y *= a
        return y, (list(x) if training else None)

    def _backward(self, grad: Any, ctx: Any) -> tuple[Any, ...]:
        out = []
        for i in range(len(ctx)):
            g = grad
            for j, a in enumerate(ctx):
                if j != i:
                    g = g * a
            out.append(g)
        return tuple(out)


@registry.register
class Average(_Merge):
    """Mean of the inputs: ``y = (x₁ + … + xₙ) / n``.

    Args:
        name: optional layer name.

    Shape:
        - inputs: a list of two or more arrays of one shape ``(N, ...)``; output: that shape.

    Gradient: dL/dxᵢ = dL/dy / n.
    """

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        y = x[0] + x[1]
        for a in x[2:]:
            y += a
        y *= y.dtype.type(1.0 / len(x))
        return y, (len(x) if training else None)

    def _backward(self, grad: Any, ctx: Any) -> tuple[Any, ...]:
        g = grad * grad.dtype.type(1.0 / ctx)
        return (g,) * ctx


class _Extremum(_Merge):
    """Elementwise maximum or minimum; the gradient goes to the first input holding the extremum."""

    _pick = ""

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        xp = get_array_module(*x)
        pick = getattr(xp, self._pick)
        y = pick(x[0], x[1])
        for a in x[2:]:
            y = pick(y, a)
        return y, ((list(x), y) if training else None)

    def _backward(self, grad: Any, ctx: Any) -> tuple[Any, ...]:
        xs, y = ctx
        taken = None  # where an earlier input already took the gradient (ties go to the first)
        out = []
        for a in xs:
            hit = a == y
            if taken is not None:
                hit &= ~taken
                taken |= hit
            else:
                taken = hit.copy()
            out.append(grad * hit)
        return tuple(out)


@registry.register
class Maximum(_Extremum):
    """Elementwise maximum of the inputs.

    Args:
        name: optional layer name.

    Shape:
        - inputs: a list of two or more arrays of one shape ``(N, ...)``; output: that shape.

    Gradient: dL/dxᵢ = dL/dy where xᵢ is the maximum (the first input holding it, on ties), else 0.
    """

    _pick = "maximum"


@registry.register
class Minimum(_Extremum):
    """Elementwise minimum of the inputs.

    Args:
        name: optional layer name.

    Shape:
        - inputs: a list of two or more arrays of one shape ``(N, ...)``; output: that shape.

    Gradient: dL/dxᵢ = dL/dy where xᵢ is the minimum (the first input holding it, on ties), else 0.
    """

    _pick = "minimum"


@registry.register
class Concatenate(_Merge):
    """Join the inputs along one axis (the last by default, the channels of images).

    Args:
        axis: the axis of the arrays with the batch axis counted, ``-1`` (default) for the last; the batch
            axis (0) cannot be joined.
        name: optional layer name.

    Shape:
        - inputs: two or more arrays whose shapes agree except along ``axis``; output: their shape with the
          sizes along ``axis`` added.

    Raises:
        ValueError: for an ``axis`` that is 0 or not an integer, or inputs whose shapes differ off the axis.

    Gradient: dL/dxᵢ is the slice of dL/dy that xᵢ filled.
    """

    def __init__(self, axis: int = -1, name: str | None = None) -> None:
        super().__init__(name=name)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or axis == 0:
            raise ValueError(f"axis must be a non-zero integer (0 is the batch axis), got {axis!r}")
        self.axis = int(axis)

    def _sample_axis(self, rank: int) -> int:
        """The axis within one sample (no batch axis)."""
        a = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= a < rank:
            raise ValueError(f"axis {self.axis} is out of range for inputs of rank {rank + 1}")
        return a

    def compute_output_shape(self, input_shape: Any) -> Any:
        shapes = self._shapes(input_shape)
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise ValueError(
                f"Concatenate needs inputs of one rank, got shapes {[(None, *s) for s in shapes]}"
            )
        a = self._sample_axis(rank)
        for s in shapes[1:]:
            if s[:a] + s[a + 1 :] != shapes[0][:a] + shapes[0][a + 1 :]:
                raise ValueError(
                    f"Concatenate(axis={self.axis}) needs inputs whose shapes agree except along axis "
                    f"{self.axis}, got shapes {[(None, *s) for s in shapes]}"
                )
        return (*shapes[0][:a], sum(s[a] for s in shapes), *shapes[0][a + 1 :])

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        """Joined along time (axis 1 of sequences), the output's mask is the inputs' masks joined (an input
        without one counts as all valid), as Keras's; along another axis, a step is valid where it is valid in
        every input."""
        masks = list(mask or [])
        if not any(m is not None for m in masks) or self._sample_axis(inputs[0].ndim - 1) != 0:
            return super().compute_mask(inputs, mask)
        xp = get_array_module(*inputs)
        return xp.concatenate(
            [
                xp.ones(a.shape[:2], dtype=bool) if m is None else m
                for a, m in zip(inputs, masks + [None] * (len(inputs) - len(masks)), strict=True)
            ],
            axis=1,
        )

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        xp = get_array_module(*x)
        axis = self._sample_axis(x[0].ndim - 1) + 1
        y = xp.concatenate(list(x), axis=axis)
        return y, ([a.shape[axis] for a in x], axis) if training else None

    def _backward(self, grad: Any, ctx: Any) -> tuple[Any, ...]:
        sizes, axis = ctx
        out, start = [], 0
        index: list[Any] = [slice(None)] * grad.ndim
        for s in sizes:
            index[axis] = slice(start, start + s)
            out.append(grad[tuple(index)])
            start += s
        return tuple(out)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}
