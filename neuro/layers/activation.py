"""Activation functions as layers, each a thin holder over :mod:`neuro.functional.activation`.

Activations are layers without parameters: they can be added to a network on their own
(``net.add(ReLU())``) or given to a Dense or Conv2D layer (``Dense(64, activation="relu")``). In training
their context is what the backward needs (the output for Sigmoid, Tanh, Softmax, ReLU and Exponential, a
mask for LeakyReLU and HardSigmoid, the input and a value computed with the output for GELU, Swish and Mish,
the input for the others); in inference they keep nothing.

Keras's names work as strings: ``"linear"``, ``"relu"``, ``"leaky_relu"``, ``"sigmoid"``, ``"tanh"``,
``"softmax"``, ``"gelu"``, ``"elu"``, ``"selu"``, ``"swish"``/``"silu"``, ``"softplus"``, ``"softsign"``,
``"hard_sigmoid"``, ``"exponential"``, ``"mish"``.
"""

from __future__ import annotations

import numbers
from typing import Any

from neuro import functional as F
from neuro import registry
from neuro.layers.base import Layer


class Activation(Layer):
    """Base class of activations: ``y = f(x)`` elementwise (Softmax: along the last axis).

    Subclasses set ``key`` (the name a loss refers to when it fuses with the activation) and implement
    :meth:`forward` and :meth:`backward` over :mod:`neuro.functional`.

    Args:
        name: optional layer name; the activation's ``key`` when ``None``.
    """

    #: Short name, used by the output head to recognise the activation a loss fuses with.
    key = ""
    supports_masking = True

    def __init__(self, name: str | None = None) -> None:
        if type(self) is Activation and name is None:
            raise TypeError("Activation is the base class of neuro's activations; make one: ReLU(), Tanh()…")
        if type(self) is Activation:  # Keras's Activation("relu") layer would read "relu" as a name here
            raise TypeError(
                f"Activation is the base class of neuro's activations, not Keras's Activation layer; for "
                f"Activation({name!r}) write neuro.activations.get({name!r}) (or ReLU(), Tanh()…), or give "
                f"activation={name!r} to the layer before"
            )
        super().__init__(name=name)

    def default_name(self) -> str:
        return self.key or super().default_name()

    def forward(
        self, x: Any, training: bool = False, rng: Any = None, inplace: bool = False, mask: Any = None
    ) -> tuple[Any, Any]:
        """Apply the activation.

        Args:
            x: input of any shape.
            training: return the context ``backward`` needs.
            rng: unused.
            inplace: allowed to overwrite ``x`` (layers pass their own fresh pre-activations).
            mask: the input's mask, passed on unchanged (an activation acts on each value alone).

        Returns:
            ``(f(x), ctx)``, f(x) of the shape and dtype of ``x``; ctx is ``None`` in inference.
        """
        y, ctx = self._f(x, inplace)
        return y, (ctx if training else None)

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments; the name only when it is not the default."""
        return {} if self.name == self.key else {"name": self.name}


@registry.register(aliases=("identity", "none"))
class Linear(Activation):
    """Identity: ``y = x``.

    Gradient: dL/dx = dL/dy.
    """

    key = "linear"

    def forward(
        self, x: Any, training: bool = False, rng: Any = None, inplace: bool = False, mask: Any = None
    ) -> tuple[Any, Any]:
        return x, (True if training else None)

    def backward(self, grad: Any, ctx: Any) -> Any:
        self._require(ctx)
        return grad


@registry.register
class ReLU(Activation):
    """Rectified linear unit: ``y = max(x, 0)``.

    Gradient: dL/dx = dL/dy · [x > 0].
    """

    key = "relu"

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.relu(x, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.relu_backward(grad, self._require(ctx))


@registry.register
class LeakyReLU(Activation):
    """Leaky rectified linear unit: ``y = x`` for ``x > 0``, ``alpha·x`` otherwise.

    Args:
        alpha: slope for non-positive inputs (default 0.01), a finite number.
        name: optional layer name; ``"leaky_relu"`` when ``None``.

    Raises:
        ValueError: when ``alpha`` is not a finite number.

    Gradient: dL/dx = dL/dy · (1 if x > 0 else alpha).
    """

    key = "leaky_relu"

    def __init__(self, alpha: float = 0.01, name: str | None = None) -> None:
        super().__init__(name=name)
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not abs(alpha) < float("inf"):
            raise ValueError(f"alpha must be a finite number, got {alpha!r}")
        self.alpha = float(alpha)

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.leaky_relu(x, self.alpha, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.leaky_relu_backward(grad, self._require(ctx), self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


@registry.register
class Sigmoid(Activation):
    """Logistic function ``y = 1 / (1 + exp(-x))``, evaluated without overflow for any finite x.

    Gradient: dL/dx = dL/dy · y · (1 − y).
    """

    key = "sigmoid"

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.sigmoid(x, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.sigmoid_backward(grad, self._require(ctx))


@registry.register
class Tanh(Activation):
    """Hyperbolic tangent.

    Gradient: dL/dx = dL/dy · (1 − y²).
    """

    key = "tanh"

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.tanh(x, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.tanh_backward(grad, self._require(ctx))


@registry.register
class Softmax(Activation):
    """Softmax along the last axis, shifted by the row maximum so that it never overflows.

    ``y_j = exp(x_j − max x) / Σ_k exp(x_k − max x)``. It may stand anywhere in a network; at the output in
    front of a cross-entropy loss the network fuses the two (see :mod:`neuro.head`).

    Gradient (the Jacobian-vector product): dL/dx = y · (g − Σ_k g_k y_k), with g = dL/dy.
    """

    key = "softmax"

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.softmax(x, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.softmax_backward(grad, self._require(ctx))


@registry.register
class GELU(Activation):
    """Gaussian error linear unit ``y = x·Φ(x)``, Φ the standard normal CDF (Hendrycks and Gimpel 2016).

    Exact form: ``Φ(x) = erfc(−x/√2)/2`` (:func:`neuro.functional.erfc`, accurate in both tails), as
    ``torch.nn.functional.gelu(approximate="none")`` and Keras's ``gelu(approximate=False)``. Tanh form:
    ``y = x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))/2``, as ``gelu(approximate="tanh")`` and Keras's
    ``approximate=True``.

    Args:
        approximate: ``False`` (or PyTorch's ``"none"``) for the exact form, ``True`` (or ``"tanh"``) for
            the tanh approximation.
        name: optional layer name; ``"gelu"`` when ``None``.

    Raises:
        ValueError: when ``approximate`` is not one of ``False``, ``True``, ``"none"``, ``"tanh"``.

    Gradient: dL/dx = dL/dy · (Φ(x) + x·φ(x)), φ(x) = exp(−x²/2)/√(2π); tanh form, with
    u = √(2/π)·(x + 0.044715·x³) and s = (1 + tanh u)/2: dL/dx = dL/dy · (s + x·s(1 − s)·2·√(2/π)·(1 +
    3·0.044715·x²)).
    """

    key = "gelu"

    def __init__(self, approximate: bool | str = False, name: str | None = None) -> None:
        super().__init__(name=name)
        forms = {False: False, True: True, "none": False, "tanh": True}
        if not isinstance(approximate, (bool, str)) or approximate not in forms:
            raise ValueError(f"approximate must be False, True, 'none' or 'tanh', got {approximate!r}")
        self.approximate = forms[approximate]

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.gelu(x, self.approximate, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.gelu_backward(grad, self._require(ctx), self.approximate)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "approximate": self.approximate}


@registry.register
class ELU(Activation):
    """Exponential linear unit: ``y = x`` for x > 0, ``alpha·(exp(x) − 1)`` otherwise (Clevert et al. 2015).

    Args:
        alpha: the negative saturation value is −alpha (default 1.0), a finite number.
        name: optional layer name; ``"elu"`` when ``None``.

    Raises:
        ValueError: when ``alpha`` is not a finite number.

    Gradient: dL/dx = dL/dy · (1 if x > 0 else alpha·exp(x)).
    """

    key = "elu"

    def __init__(self, alpha: float = 1.0, name: str | None = None) -> None:
        super().__init__(name=name)
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not abs(alpha) < float("inf"):
            raise ValueError(f"alpha must be a finite number, got {alpha!r}")
        self.alpha = float(alpha)

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.elu(x, self.alpha, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.elu_backward(grad, self._require(ctx), self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


@registry.register
class SELU(Activation):
    """Scaled exponential linear unit: ``y = scale·x`` for x > 0, ``scale·alpha·(exp(x) − 1)`` otherwise.

    ``alpha = 1.6732632423543772848…`` and ``scale = 1.0507009873554804934…`` (Klambauer et al. 2017), the
    constants of Keras and PyTorch. Meant for ``lecun_normal`` weights.

    Gradient: dL/dx = dL/dy · scale · (1 if x > 0 else alpha·exp(x)).
    """

    key = "selu"

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.selu(x, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.selu_backward(grad, self._require(ctx))


@registry.register(aliases=("silu",))
class Swish(Activation):
    """Swish, also called SiLU: ``y = x·σ(x)`` (Keras's ``swish``/``silu``, PyTorch's ``silu``).

    Gradient: dL/dx = dL/dy · σ(x)·(1 + x·(1 − σ(x))).
    """

    key = "swish"

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.swish(x, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.swish_backward(grad, self._require(ctx))


@registry.register
class Softplus(Activation):
    """``y = log(1 + exp(x))``, computed as ``max(x, 0) + log1p(exp(−|x|))``: finite and accurate for any
    finite x (PyTorch's ``softplus`` returns x itself beyond its ``threshold=20``, off by up to 2e-9).

    Gradient: dL/dx = dL/dy · σ(x).
    """

    key = "softplus"

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.softplus(x, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.softplus_backward(grad, self._require(ctx))


@registry.register
class Softsign(Activation):
    """``y = x / (1 + |x|)``.

    Gradient: dL/dx = dL/dy / (1 + |x|)².
    """

    key = "softsign"

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.softsign(x, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.softsign_backward(grad, self._require(ctx))


@registry.register
class HardSigmoid(Activation):
    """Hard sigmoid as Keras 3 defines it: ``y = relu6(x + 3)/6 = clip(x/6 + 1/2, 0, 1)``.

    This is ``torch.nn.functional.hardsigmoid``. Keras 2 (and ``tf.keras``) used ``clip(0.2·x + 0.5, 0, 1)``
    instead; a model ported from there computes something slightly different.

    Gradient: dL/dx = dL/dy / 6 for −3 < x < 3, else 0 (0 at x = ±3, as PyTorch).
    """

    key = "hard_sigmoid"

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.hard_sigmoid(x, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.hard_sigmoid_backward(grad, self._require(ctx))


@registry.register
class Exponential(Activation):
    """``y = exp(x)`` (inf where exp overflows, beyond x ≈ 709 in float64 and 88 in float32).

    Gradient: dL/dx = dL/dy · exp(x) = dL/dy · y.
    """

    key = "exponential"

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.exponential(x, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.exponential_backward(grad, self._require(ctx))


@registry.register
class Mish(Activation):
    """Mish: ``y = x·tanh(softplus(x))`` (Misra 2019), without overflow for any finite x.

    Gradient: dL/dx = dL/dy · (t + x·σ(x)·(1 − t²)), with t = tanh(softplus(x)).
    """

    key = "mish"

    def _f(self, x: Any, inplace: bool) -> tuple[Any, Any]:
        return F.mish(x, inplace)

    def backward(self, grad: Any, ctx: Any) -> Any:
        return F.mish_backward(grad, self._require(ctx))


def get(activation: str | Activation | dict | type | None) -> Activation:
    """Return a fresh activation from a name, a class, a serialized spec, an instance or ``None`` (linear).

    An instance is copied through its config, so that two layers never share one object.

    Args:
        activation: a name (``"relu"``, ``"leaky_relu"``, ``"gelu"``, ``"silu"``…), an :class:`Activation`
            class, a ``{"class": name, "config": {...}}`` spec, an instance, or ``None``.

    Returns:
        A new activation object.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else, or a class that is not an activation.
    """
    if activation is None:
        return Linear()
    if isinstance(activation, Activation):
        return type(activation).from_config(activation.get_config())
    if isinstance(activation, type) and not issubclass(activation, Activation):
        raise TypeError(
            f"activation must be an Activation, its class or its name, got the class {activation.__name__}"
        )
    if isinstance(activation, Layer):
        raise TypeError(
            "activation must be an Activation, its class or its name, got the layer "
            f"{type(activation).__name__}"
        )
    if callable(activation) and not isinstance(activation, type):  # a function: np.tanh, a lambda
        raise TypeError(
            f"activation must be a name, an Activation or its class, got the function {activation!r}; an "
            "activation of your own is an Activation subclass with its backward (see Writing a layer)"
        )
    name = activation.get("class") if isinstance(activation, dict) else activation
    if isinstance(name, str):
        try:
            cls = registry.get_class("layer", name)
        except ValueError:
            cls = None
        if not (isinstance(cls, type) and issubclass(cls, Activation)):  # another layer, or nothing
            raise ValueError(f"activation must be one of {_names()}, got {name!r}")
    obj = registry.get("layer", activation, Activation)
    if not isinstance(obj, Activation):
        raise TypeError(f"activation must name an Activation, got {type(obj).__name__}")
    return obj


def _names() -> list[str]:
    """The names of the registered activations (their keys: ``"relu"``, ``"tanh"``…)."""
    found = []
    for n in registry.names("layer"):
        cls = registry.get_class("layer", n)
        if issubclass(cls, Activation):
            found.append(getattr(cls, "key", None) or n)
    return sorted(set(found))
