"""Export a model to ONNX, as an inference graph (optional extra ``neuro[onnx]``).

The graph computes what :meth:`Model.predict <neuro.models.Model.predict>` computes. A model with one input
and one output (every :class:`~neuro.models.Network`) has an input named ``"input"`` of shape
``(N, *input_shape)`` (``N`` symbolic) and an output named ``"output"`` of shape ``(N, *output_shape)``;
a model with several has one input per ``Input`` (named as it is) and one output per output (named as
``model.output_names``). Values are in the model's dtype (float32 or float64; integer inputs keep their
type). Images stay channels-last (NHWC) at the inputs and the outputs, as in neuro. The model's graph is
written node by node (:mod:`neuro.graph`), a nested model inlined.

How each layer is written:

- ``Dense``: ``Gemm`` (``x·W + b``), then its activation.
- ``Conv2D``: ``Conv`` in NCHW with the kernel transposed to ``(F, C, kh, kw)`` and explicit ``pads`` (the
  ones neuro uses: "same" puts an odd extra row or column at the bottom / right, as TensorFlow does).
  Transposes between NHWC and NCHW are only inserted where the layout must change (before the first
  convolution or pooling, before a ``Flatten``, at the output), never two in a row.
- ``MaxPool2D``: ``MaxPool`` (padding never wins, as neuro's −inf padding); ``AvgPool2D``: ``AveragePool``
  with ``count_include_pad=0`` (a border window averages only the cells inside the input);
  ``GlobalAveragePooling2D``: ``ReduceMean`` over height and width; ``GlobalMaxPooling2D``: ``ReduceMax``.
- ``BatchNorm``: its inference form, ``x·scale + shift`` per channel (``Mul`` and ``Add``), with
  ``scale = gamma / sqrt(running_var + epsilon)`` and ``shift = beta − running_mean·scale`` computed as
  neuro computes them.
- ``Dropout``: nothing (it is the identity in inference); ``Flatten``: ``Flatten`` in NHWC order;
  ``Reshape``: ``Reshape`` in NHWC order.
- Merges: ``Add``, ``Sub``, ``Mul``, ``Max``, ``Min`` (inputs brought to one layout first), ``Average`` as a
  sum times ``1/n`` (as neuro computes it), ``Concatenate`` as ``Concat`` on the axis of the layout.
- Activations (standalone or inside Dense / Conv2D): ``Relu``, ``LeakyRelu`` (``PRelu`` with a float64
  slope that a float32 attribute would round), ``Sigmoid``, ``Tanh``, ``Softmax`` on the last (channel)
  axis; ``Linear`` writes nothing. GELU as ``x·(1 + Erf(x/√2))/2`` or its ``Tanh`` form (``Gelu`` needs
  opset 20), ``Elu``, ``Selu``, ``Softplus``, ``Softsign``, ``HardSigmoid`` (alpha 1/6, beta 1/2), ``Exp``,
  Swish as ``x·Sigmoid(x)`` and Mish as ``x·Tanh(Softplus(x))`` in float32; ONNX Runtime has none of Erf,
  Elu, Selu, Softplus, Softsign and HardSigmoid in float64, so a float64 graph writes neuro's own formulas
  (the error function as Cody's rational approximations).
- ``Dense`` on a sequence ``(N, T, F)``: ``MatMul`` and ``Add`` on the last axis; ``LayerNormalization``:
  ``ReduceMean`` over the last axis, as neuro computes it (``(x − μ)·(1/sqrt(σ² + ε))·γ + β``).
- ``Embedding``: ``Gather`` of the table by the ids (cast to int64); ``Conv1D``: im2col along time (``Pad``,
  one strided ``Slice`` per kernel offset, ``Concat``, ``MatMul``); ``MaxPool1D`` / ``AvgPool1D``: the
  ``Max`` / ``Sum`` of strided slices (the average times the inverse cell counts);
  ``GlobalAveragePooling1D`` / ``GlobalMaxPool1D``: reductions over time.
- ``SimpleRNN``, ``LSTM``, ``GRU`` (both ``reset_after`` forms) and ``Bidirectional``: unrolled over the
  model's fixed number of steps, exactly as neuro computes them: the input projection ``x·W + b`` of every
  step in one ``MatMul``, then per step the cell's ``MatMul``, ``Slice`` of its gate columns, ``Sigmoid``,
  ``Tanh`` and products; states, initial states (inputs of the model), ``go_backwards`` and every merge mode
  included.
- Masks (``Embedding(mask_zero=True)``, ``Masking``) travel as boolean ``(N, T)`` tensors beside the values,
  as in neuro: a merge ANDs them (a concatenation along time joins them), a recurrent step that is masked
  keeps its states (``Where``), and its output is the state or zero (``zero_output_for_mask``); a masked
  global pooling averages (or maximizes) the valid steps only, and a sequence without one pools to 0.
- The link of the loss, when the loss applies it (a linear output trained with ``softmax_crossentropy``):
  ``Softmax`` (``Sigmoid`` for a binary cross-entropy link).
- The network's ``input_scaler`` / ``output_scaler``, which ``predict`` applies: ``Sub`` and ``Div`` at the
  input, ``Mul`` and ``Add`` at the output.

A float64 network is written without ``Conv`` and ``AveragePool``, which ONNX Runtime's CPU provider
implements for float32 only, and (so that the graph stays channels-last, without transposes) without
``MaxPool``: a convolution becomes neuro's own im2col (``Pad``, one strided ``Slice`` per kernel offset,
``Concat`` and one ``MatMul``), a pooling the ``Max`` / ``Sum`` of those slices (average: times the inverse
cell counts). The graph is equivalent and runs anywhere.

Not exported: layer classes other than the built-in ones (a user's own layer raises ValueError naming it),
losses whose link is not the identity, softmax or sigmoid, and the training state (optimizer, dropout).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from neuro import backend
from neuro import head as head_mod
from neuro import losses as losses_mod
from neuro.functional import activation as F_act
from neuro.functional.conv import output_size, paddings
from neuro.functional.pooling import window_counts
from neuro.layers.activated import ActivatedLayer
from neuro.layers.activation import (
    ELU,
    GELU,
    SELU,
    Activation,
    Exponential,
    HardSigmoid,
    LeakyReLU,
    Linear,
    Mish,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Softsign,
    Swish,
    Tanh,
)
from neuro.layers.base import Layer
from neuro.layers.batchnorm import BatchNorm
from neuro.layers.bidirectional import Bidirectional
from neuro.layers.conv1d import Conv1D
from neuro.layers.conv2d import Conv2D
from neuro.layers.dense import Dense
from neuro.layers.dropout import Dropout
from neuro.layers.embedding import Embedding, Masking
from neuro.layers.flatten import Flatten
from neuro.layers.layernorm import LayerNormalization
from neuro.layers.merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from neuro.layers.pooling import (
    AvgPool1D,
    AvgPool2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPool1D,
    GlobalMaxPooling2D,
    MaxPool1D,
    MaxPool2D,
)
from neuro.layers.recurrent import GRU, LSTM, RNN, SimpleRNN
from neuro.layers.reshape import Reshape

if TYPE_CHECKING:  # pragma: no cover
    import onnx as onnx_t

__all__ = ["MIN_OPSET", "export", "to_model"]

#: The oldest opset the exporter writes (Softmax along one axis needs 13).
MIN_OPSET = 13

_MISSING = "ONNX export needs the onnx package: pip install 'neuro[onnx]'"
_TO_NCHW = (0, 3, 1, 2)
_TO_NHWC = (0, 2, 3, 1)


def _import_onnx() -> Any:
    try:
        import onnx
        from onnx import numpy_helper  # noqa: F401  (a submodule the exporter uses)
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    return onnx


# -- the graph being written ------------------------------------------------------------------------------
class _Tensor:
    """A value of the graph: its name, its rank (batch axis included), for rank 4 its layout, and the name
    of its mask of valid steps (a boolean ``(N, T)`` tensor) when it carries one."""

    __slots__ = ("layout", "mask", "name", "rank")

    def __init__(self, name: str, rank: int, layout: str = "NHWC", mask: str | None = None) -> None:
        self.name = name
        self.rank = rank
        self.layout = layout
        self.mask = mask

    @property
    def nchw(self) -> bool:
        return self.rank == 4 and self.layout == "NCHW"


class _Graph:
    """Collects nodes and initializers, with unique names."""

    def __init__(self, onnx: Any, dtype: Any, opset: int) -> None:
        self.onnx = onnx
        self.dtype = np.dtype(dtype)
        self.elem_type = onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._used: set[str] = {"input", "output"}
        self.prefix = ""

    def fresh(self, base: str) -> str:
        name = f"{self.prefix}{base}"
        k = 1
        while name in self._used:
            k += 1
            name = f"{self.prefix}{base}_{k}"
        self._used.add(name)
        return name

    def const(self, base: str, value: Any, dtype: Any = None) -> str:
        """An initializer holding ``value`` (in the network's dtype unless ``dtype`` is given)."""
        arr = np.array(value, dtype=self.dtype if dtype is None else dtype, order="C")  # 0-d stays 0-d
        name = self.fresh(base)
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def ints(self, base: str, values: Any) -> str:
        return self.const(base, np.asarray(values, dtype=np.int64).reshape(-1), np.int64)

    def op(self, op_type: str, inputs: list[str], base: str | None = None, **attrs: Any) -> str:
        """Append one node with one output and return the output's name."""
        out = self.fresh(base or op_type.lower())
        self.nodes.append(
            self.onnx.helper.make_node(op_type, inputs, [out], name=self.fresh(f"{op_type}_node"), **attrs)
        )
        return out

    # -- layout ----------------------------------------------------------------------------------------
    def to_layout(self, t: _Tensor, layout: str) -> _Tensor:
        """``t`` in ``layout`` (``"NHWC"`` or ``"NCHW"``); transposes only when it must."""
        if t.rank != 4 or t.layout == layout:
            return t
        perm = _TO_NCHW if layout == "NCHW" else _TO_NHWC
        return _Tensor(self.op("Transpose", [t.name], f"to_{layout.lower()}", perm=list(perm)), 4, layout)

    def reduce_mean(self, t: str, axes: list[int]) -> str:
        return self.reduce("ReduceMean", t, axes)

    def reduce(self, op: str, t: str, axes: list[int], keepdims: int = 0, base: str | None = None) -> str:
        """A ``Reduce*`` node over ``axes`` (an attribute before opset 18, an input from 18 on; ReduceSum
        takes an input from 13)."""
        if self.opset >= 18 or op == "ReduceSum":
            return self.op(op, [t, self.ints("axes", axes)], base, keepdims=keepdims)
        return self.op(op, [t], base, axes=axes, keepdims=keepdims)


# -- activations ------------------------------------------------------------------------------------------
def _activation(g: _Graph, act: Activation, t: _Tensor) -> _Tensor:
    """Apply ``act`` to ``t``; raises KeyError for an activation without a converter."""
    kind = type(act)
    if kind is Linear:
        return t
    if kind is ReLU:
        name = g.op("Relu", [t.name])
    elif kind is LeakyReLU:
        alpha = g.dtype.type(act.alpha)  # neuro multiplies by alpha in the network's dtype
        if float(np.float32(alpha)) == float(alpha):  # the attribute is a float32
            name = g.op("LeakyRelu", [t.name], alpha=float(alpha))
        else:  # a float64 slope that float32 would round
            name = g.op("PRelu", [t.name, g.const("alpha", alpha)], "leaky_relu")
    elif kind is Sigmoid:
        name = g.op("Sigmoid", [t.name])
    elif kind is Tanh:
        name = g.op("Tanh", [t.name])
    elif kind is Softmax:  # neuro's last axis: the channels, axis 1 of an NCHW tensor
        name = g.op("Softmax", [t.name], axis=1 if t.nchw else -1)
    elif kind in _MORE_ACTIVATIONS:
        name = _MORE_ACTIVATIONS[kind](g, act, t.name)
    else:
        raise KeyError(kind.__name__)
    return _Tensor(name, t.rank, t.layout)


# The activations with Keras's names. A float32 graph uses ONNX's own operators (Erf, Elu, Selu, Softplus,
# Softsign, HardSigmoid); ONNX Runtime's CPU provider implements those for float32 only, so a float64 graph
# writes the formulas neuro computes with operators it has in float64 (the error function as Cody's rational
# approximations, as neuro.functional.erfc computes it). Gelu itself only exists from opset 20.
def _k(g: _Graph, base: str, value: float) -> str:
    """A 0-d constant in the graph's dtype."""
    return g.const(base, g.dtype.type(value))


def _f64(g: _Graph) -> bool:
    return g.dtype == np.float64


def _log1p(g: _Graph, e: str) -> str:
    """``log1p(e)`` for e ≥ 0 without a Log1p operator: ``log(u)·e/(u − 1)`` with ``u = 1 + e`` (exact to a
    few ulp, Goldberg's trick), e itself where u rounds to 1."""
    u = g.op("Add", [_k(g, "one", 1.0), e], "one_plus")
    ratio = g.op("Div", [e, g.op("Sub", [u, _k(g, "one", 1.0)], "u_minus_one")], "ratio")
    exact = g.op("Mul", [g.op("Log", [u]), ratio], "log1p_exact")
    return g.op("Where", [g.op("Equal", [u, _k(g, "one", 1.0)]), e, exact], "log1p")


def _softplus(g: _Graph, x: str) -> str:
    """``max(x, 0) + log1p(exp(−|x|))`` (neuro's form), or ONNX's Softplus in float32."""
    if not _f64(g):
        return g.op("Softplus", [x])
    e = g.op("Exp", [g.op("Neg", [g.op("Abs", [x])])], "exp_neg_abs")
    return g.op("Add", [g.op("Max", [x, _k(g, "zero", 0.0)], "relu"), _log1p(g, e)], "softplus")


def _cody_ratio(g: _Graph, t: str, num: tuple[float, ...], den: tuple[float, ...]) -> str:
    """neuro.functional.activation's Horner scheme of Cody's rational functions, node by node."""
    xnum = g.op("Mul", [t, _k(g, "erf_c", num[-1])], "erf_num")
    xden = t
    for a, b in zip(num[:-2], den[:-1], strict=True):
        xnum = g.op("Mul", [g.op("Add", [xnum, _k(g, "erf_c", a)], "erf_num"), t], "erf_num")
        xden = g.op("Mul", [g.op("Add", [xden, _k(g, "erf_c", b)], "erf_den"), t], "erf_den")
    top = g.op("Add", [xnum, _k(g, "erf_c", num[-2])], "erf_num")
    return g.op("Div", [top, g.op("Add", [xden, _k(g, "erf_c", den[-1])], "erf_den")], "erf_ratio")


def _exp_neg_square(g: _Graph, y: str, scale: float = 1.0) -> str:
    """``exp(−scale·y²)`` split as neuro.functional.exp_neg_square does, for y ≥ 0 (trunc is Floor there)."""
    sixteen = _k(g, "sixteen", 16.0)
    h = g.op("Div", [g.op("Floor", [g.op("Mul", [y, sixteen])]), sixteen], "erf_h")
    big = g.op("Exp", [g.op("Mul", [g.op("Mul", [h, h]), _k(g, "neg_scale", -scale)])])
    rest = g.op("Mul", [g.op("Sub", [y, h]), g.op("Add", [y, h])])
    return g.op("Mul", [big, g.op("Exp", [g.op("Mul", [rest, _k(g, "neg_scale", -scale)])])], "exp_neg_sq")


def _erfc(g: _Graph, x: str) -> str:
    """neuro.functional.erfc, as operators that ONNX Runtime runs in float64."""
    lo, mid, hi = F_act.ERF_BOUNDS
    y = g.op("Abs", [x])
    x1 = g.op("Min", [g.op("Max", [x, _k(g, "neg_lo", -lo)]), _k(g, "lo", lo)], "erf_x1")
    ratio = _cody_ratio(g, g.op("Mul", [x1, x1]), F_act._ERF_A, F_act._ERF_B)
    erf_small = g.op("Mul", [x1, ratio], "erf_small")
    y2 = g.op("Min", [g.op("Max", [y, _k(g, "lo", lo)]), _k(g, "mid", mid)], "erf_y2")
    erfc_mid = g.op("Mul", [_exp_neg_square(g, y2), _cody_ratio(g, y2, F_act._ERF_C, F_act._ERF_D)])
    y3 = g.op("Min", [g.op("Max", [y, _k(g, "mid", mid)]), _k(g, "hi", hi)], "erf_y3")
    z = g.op("Div", [_k(g, "one", 1.0), g.op("Mul", [y3, y3])], "erf_z")
    zr = g.op("Mul", [z, _cody_ratio(g, z, F_act._ERF_P, F_act._ERF_Q)])
    tail = g.op("Sub", [_k(g, "sqrpi", F_act._SQRPI), zr])
    erfc_large = g.op("Mul", [_exp_neg_square(g, y3), g.op("Div", [tail, y3])])
    erfc_abs = g.op("Where", [g.op("LessOrEqual", [y, _k(g, "mid", mid)]), erfc_mid, erfc_large], "erfc_abs")
    signed = g.op(
        "Where",
        [g.op("Less", [x, _k(g, "zero", 0.0)]), g.op("Sub", [_k(g, "two", 2.0), erfc_abs]), erfc_abs],
    )
    small = g.op("LessOrEqual", [y, _k(g, "lo", lo)])
    return g.op("Where", [small, g.op("Sub", [_k(g, "one", 1.0), erf_small]), signed], "erfc")


def _gelu(g: _Graph, act: GELU, x: str) -> str:
    if act.approximate:
        if _f64(g):  # x·σ(2u), neuro's form (no cancellation of 1 + tanh u)
            clip = F_act._GELU_CLIP
            xc = g.op("Min", [g.op("Max", [x, _k(g, "neg_clip", -clip)]), _k(g, "clip", clip)], "gelu_xc")
            cube = g.op("Mul", [g.op("Mul", [xc, xc]), xc], "cube")
            inner = g.op("Add", [xc, g.op("Mul", [_k(g, "kappa", F_act._GELU_KAPPA), cube])])
            u = g.op("Mul", [inner, _k(g, "beta", F_act._GELU_BETA)], "gelu_u")
            s = g.op("Sigmoid", [g.op("Mul", [u, _k(g, "two", 2.0)])])
            return g.op("Mul", [x, s], "gelu")
        cube = g.op("Mul", [g.op("Mul", [x, x]), x], "cube")
        inner = g.op("Add", [x, g.op("Mul", [_k(g, "kappa", F_act._GELU_KAPPA), cube])])
        th = g.op("Tanh", [g.op("Mul", [inner, _k(g, "beta", F_act._GELU_BETA)], "gelu_u")])
        half_x = g.op("Mul", [x, _k(g, "half", 0.5)])
        return g.op("Mul", [half_x, g.op("Add", [_k(g, "one", 1.0), th])], "gelu")
    arg = g.op("Mul", [x, _k(g, "neg_sqrt1_2", -F_act._SQRT1_2)], "gelu_arg")
    if _f64(g):  # x·erfc(−x/√2)/2
        cdf = g.op("Mul", [_erfc(g, arg), _k(g, "half", 0.5)], "cdf")
    else:  # x·(1 + erf(x/√2))/2
        cdf = g.op("Mul", [g.op("Sub", [_k(g, "one", 1.0), g.op("Erf", [arg])]), _k(g, "half", 0.5)], "cdf")
    return g.op("Mul", [x, cdf], "gelu")


def _expm1_neg(g: _Graph, x: str) -> str:
    """``exp(min(x, 0)) − 1``."""
    return g.op("Sub", [g.op("Exp", [g.op("Min", [x, _k(g, "zero", 0.0)])]), _k(g, "one", 1.0)], "expm1")


def _elu(g: _Graph, act: ELU, x: str) -> str:
    if not _f64(g):
        return g.op("Elu", [x], alpha=float(act.alpha))
    neg = g.op("Mul", [_expm1_neg(g, x), _k(g, "alpha", act.alpha)])
    return g.op("Where", [g.op("Greater", [x, _k(g, "zero", 0.0)]), x, neg], "elu")


def _selu(g: _Graph, act: SELU, x: str) -> str:
    if not _f64(g):
        return g.op("Selu", [x], alpha=F_act.SELU_ALPHA, gamma=F_act.SELU_SCALE)
    neg = g.op("Mul", [_expm1_neg(g, x), _k(g, "alpha_scale", F_act.SELU_ALPHA * F_act.SELU_SCALE)])
    pos = g.op("Mul", [x, _k(g, "scale", F_act.SELU_SCALE)])
    return g.op("Where", [g.op("Greater", [x, _k(g, "zero", 0.0)]), pos, neg], "selu")


def _softsign(g: _Graph, act: Softsign, x: str) -> str:
    if not _f64(g):
        return g.op("Softsign", [x])
    return g.op("Div", [x, g.op("Add", [g.op("Abs", [x]), _k(g, "one", 1.0)])], "softsign")


def _hard_sigmoid(g: _Graph, act: HardSigmoid, x: str) -> str:
    if not _f64(g):  # max(0, min(1, x/6 + 1/2))
        return g.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)
    shifted = g.op("Add", [x, _k(g, "three", 3.0)])
    relu6 = g.op("Min", [g.op("Max", [shifted, _k(g, "zero", 0.0)]), _k(g, "six", 6.0)], "relu6")
    return g.op("Div", [relu6, _k(g, "six", 6.0)], "hard_sigmoid")


def _swish(g: _Graph, act: Swish, x: str) -> str:
    return g.op("Mul", [x, g.op("Sigmoid", [x])], "swish")


def _mish(g: _Graph, act: Mish, x: str) -> str:
    return g.op("Mul", [x, g.op("Tanh", [_softplus(g, x)])], "mish")


_MORE_ACTIVATIONS: dict[type, Callable[[_Graph, Any, str], str]] = {
    GELU: _gelu,
    ELU: _elu,
    SELU: _selu,
    Swish: _swish,
    Softplus: lambda g, act, x: _softplus(g, x),
    Softsign: _softsign,
    HardSigmoid: _hard_sigmoid,
    Exponential: lambda g, act, x: g.op("Exp", [x], "exponential"),
    Mish: _mish,
}


# -- layers -----------------------------------------------------------------------------------------------
def _host(layer: Layer, store: str, key: str, dtype: Any) -> np.ndarray:
    return np.asarray(backend.to_numpy(getattr(layer, store)[key]), dtype=dtype)


def _dense(g: _Graph, layer: Dense, t: _Tensor) -> _Tensor:
    w = g.const("kernel", _host(layer, "params", "kernel", g.dtype))
    b = g.const("bias", _host(layer, "params", "bias", g.dtype))
    if t.rank == 2:
        return _Tensor(g.op("Gemm", [t.name, w, b], "dense"), 2)
    x = g.to_layout(t, "NHWC")  # the last axis is the features
    return _Tensor(g.op("Add", [g.op("MatMul", [x.name, w], "dense_mm"), b], "dense"), t.rank, mask=t.mask)


def _windows(
    g: _Graph, t: _Tensor, layer: Any, size: tuple[int, int], pads: tuple[int, ...], fill: float
) -> tuple[list[str], tuple[int, int]]:
    """The strided NHWC slices ``x_pad[:, i::sh, j::sw, :]`` of every window offset ``(i, j)`` (neuro's
    im2col order), the input padded by ``pads`` with ``fill``; also ``(Ho, Wo)``."""
    h, w = layer.input_shape[0], layer.input_shape[1]
    (kh, kw), (sh, sw) = size, layer.strides
    top, bottom, left, right = pads
    ho = output_size(h, kh, sh, top, bottom)
    wo = output_size(w, kw, sw, left, right)
    x = _Tensor(t.name, 4) if not t.nchw else g.to_layout(t, "NHWC")
    src = x.name
    if any(pads):
        src = g.op(
            "Pad",
            [src, g.ints("pads", [0, top, left, 0, 0, bottom, right, 0]), g.const("fill", fill)],
            "padded",
            mode="constant",
        )
    if (kh, kw, sh, sw) == (1, 1, 1, 1):
        return [src], (ho, wo)
    axes, steps = g.ints("axes", [1, 2]), g.ints("steps", [sh, sw])
    slices = []
    for i in range(kh):
        for j in range(kw):
            starts = g.ints("starts", [i, j])
            ends = g.ints("ends", [i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1])
            slices.append(g.op("Slice", [src, starts, ends, axes, steps], f"window_{i}_{j}"))
    return slices, (ho, wo)


def _conv2d(g: _Graph, layer: Conv2D, t: _Tensor) -> _Tensor:
    h, w = layer.input_shape[0], layer.input_shape[1]
    pads = paddings(layer.padding, h, w, layer.kernel_size, layer.strides)
    kernel = _host(layer, "params", "kernel", g.dtype)  # (kh, kw, C, F)
    bias = g.const("bias", _host(layer, "params", "bias", g.dtype))
    if g.dtype == np.float32:
        top, bottom, left, right = pads
        x = g.to_layout(t, "NCHW")
        name = g.op(
            "Conv",
            [x.name, g.const("kernel", kernel.transpose(3, 2, 0, 1)), bias],
            "conv",
            kernel_shape=list(layer.kernel_size),
            strides=list(layer.strides),
            pads=[top, left, bottom, right],
        )
        return _Tensor(name, 4, "NCHW")
    # im2col, channels-last: the columns ordered (kernel row, kernel column, channel) as kernel.reshape
    slices, _ = _windows(g, t, layer, layer.kernel_size, pads, 0.0)
    cols = slices[0] if len(slices) == 1 else g.op("Concat", slices, "columns", axis=-1)
    w_mat = g.const("kernel", kernel.reshape(-1, kernel.shape[-1]))
    z = g.op("MatMul", [cols, w_mat], "conv")
    return _Tensor(g.op("Add", [z, bias], "conv"), 4, "NHWC")


def _pool_pads(layer: Any) -> tuple[int, ...]:
    h, w = layer.input_shape[0], layer.input_shape[1]
    return paddings(layer.padding, h, w, layer.pool_size, layer.strides)


def _max_pool(g: _Graph, layer: MaxPool2D, t: _Tensor) -> _Tensor:
    pads = _pool_pads(layer)
    if g.dtype == np.float32:
        top, bottom, left, right = pads
        x = g.to_layout(t, "NCHW")
        name = g.op(
            "MaxPool",
            [x.name],
            "max_pool",
            kernel_shape=list(layer.pool_size),
            strides=list(layer.strides),
            pads=[top, left, bottom, right],
        )
        return _Tensor(name, 4, "NCHW")
    slices, _ = _windows(g, t, layer, layer.pool_size, pads, -np.inf)
    name = slices[0] if len(slices) == 1 else g.op("Max", slices, "max_pool")
    return _Tensor(name, 4, "NHWC")


def _avg_pool(g: _Graph, layer: AvgPool2D, t: _Tensor) -> _Tensor:
    pads = _pool_pads(layer)
    if g.dtype == np.float32:
        top, bottom, left, right = pads
        x = g.to_layout(t, "NCHW")
        name = g.op(
            "AveragePool",
            [x.name],
            "avg_pool",
            kernel_shape=list(layer.pool_size),
            strides=list(layer.strides),
            pads=[top, left, bottom, right],
            count_include_pad=0,
        )
        return _Tensor(name, 4, "NCHW")
    slices, (ho, wo) = _windows(g, t, layer, layer.pool_size, pads, 0.0)
    total = slices[0] if len(slices) == 1 else g.op("Sum", slices, "window_sum")
    inv = _inverse_counts(layer.input_shape[:2], layer.pool_size, layer.strides, pads, (ho, wo), g.dtype)
    return _Tensor(g.op("Mul", [total, g.const("inverse_counts", inv)], "avg_pool"), 4, "NHWC")


def _inverse_counts(
    hw: tuple[int, ...], pool: Any, stride: Any, pads: tuple[int, ...], out: tuple[int, int], dtype: Any
) -> np.ndarray:
    """``1 / (input cells in each window)``, ``(Ho, Wo, 1)``, as neuro's average pooling divides."""
    cnt = window_counts(hw[0], hw[1], pool, stride, pads, out[0], out[1])
    return (1.0 / cnt)[:, :, None].astype(dtype)


def _global_avg_pool(g: _Graph, layer: GlobalAveragePooling2D, t: _Tensor) -> _Tensor:
    return _Tensor(g.reduce_mean(t.name, [2, 3] if t.nchw else [1, 2]), 2)


def _global_max_pool(g: _Graph, layer: GlobalMaxPooling2D, t: _Tensor) -> _Tensor:
    return _Tensor(g.reduce("ReduceMax", t.name, [2, 3] if t.nchw else [1, 2]), 2)


def _batch_norm(g: _Graph, layer: BatchNorm, t: _Tensor) -> _Tensor:
    dt = g.dtype.type
    gamma, beta = (_host(layer, "params", k, g.dtype) for k in ("gamma", "beta"))
    mean, var = (_host(layer, "buffers", k, g.dtype) for k in ("running_mean", "running_var"))
    scale = gamma / np.sqrt(var + dt(layer.epsilon))  # neuro.functional.batch_norm_inference
    shift = beta - mean * scale
    if t.nchw:
        scale, shift = scale[:, None, None], shift[:, None, None]
    y = g.op("Mul", [t.name, g.const("scale", scale)], "bn_scaled")
    return _Tensor(g.op("Add", [y, g.const("shift", shift)], "batch_norm"), t.rank, t.layout)


def _dropout(g: _Graph, layer: Dropout, t: _Tensor) -> _Tensor:
    return t


def _flatten(g: _Graph, layer: Flatten, t: _Tensor) -> _Tensor:
    if t.rank == 2:
        return t
    x = g.to_layout(t, "NHWC")  # neuro flattens (N, H, W, C) row-major
    return _Tensor(g.op("Flatten", [x.name], "flat", axis=1), 2)


def _reshape(g: _Graph, layer: Reshape, t: _Tensor) -> _Tensor:
    x = g.to_layout(t, "NHWC")  # neuro reshapes (N, H, W, C) row-major
    shape = g.ints("shape", [0, *layer.output_shape])  # 0: the batch axis as it is
    return _Tensor(g.op("Reshape", [x.name, shape], "reshaped"), 1 + len(layer.output_shape))


def _standalone_activation(g: _Graph, layer: Activation, t: _Tensor) -> _Tensor:
    return _activation(g, layer, t)


# -- sequences --------------------------------------------------------------------------------------------
def _not_equal(g: _Graph, t: str, value: Any, dtype: Any) -> str:
    return g.op("Not", [g.op("Equal", [t, g.const("value", value, dtype)], "equal")], "not_equal")


def _and(g: _Graph, mask: str | None, own: str) -> str:
    return own if mask is None else g.op("And", [mask, own], "mask")


def _embedding(g: _Graph, layer: Embedding, t: _Tensor) -> _Tensor:
    table = g.const("embeddings", _host(layer, "params", "embeddings", g.dtype))
    ids = g.op("Cast", [t.name], "ids", to=g.onnx.TensorProto.INT64)
    out = g.op("Gather", [table, ids], "embedding", axis=0)
    mask = _and(g, t.mask, _not_equal(g, ids, 0, np.int64)) if layer.mask_zero else t.mask
    return _Tensor(out, t.rank + 1, mask=mask)


def _masking(g: _Graph, layer: Masking, t: _Tensor) -> _Tensor:
    """A step whose features all equal ``mask_value`` is masked, and zeroed (as neuro does)."""
    differs = g.op("Cast", [_not_equal(g, t.name, layer.mask_value, g.dtype)], "differs", to=g.elem_type)
    valid = g.reduce("ReduceMax", differs, [-1], keepdims=1, base="valid")
    out = g.op("Mul", [t.name, valid], "masked")
    steps = g.op("Squeeze", [valid, g.ints("axes", [-1])], "valid_steps")
    own = g.op("Greater", [steps, g.const("zero", 0.0)], "step_mask")
    return _Tensor(out, t.rank, mask=_and(g, t.mask, own))


def _cols(g: _Graph, t: str, start: int, stop: int, base: str) -> str:
    """``t[..., start:stop]``."""
    return g.op("Slice", [t, g.ints("starts", [start]), g.ints("ends", [stop]), g.ints("axes", [-1])], base)


def _at_step(g: _Graph, t: str, k: int, base: str) -> str:
    """``t[:, k]``."""
    return g.op("Gather", [t, g.const("t", np.asarray(k, np.int64), np.int64)], base, axis=1)


def _zero_states(g: _Graph, x: str, units: int, n: int) -> list[str]:
    """``n`` zero states ``(N, units)``, the batch size read from ``x``."""
    shape = g.op("Shape", [x], "shape")
    batch = g.op("Slice", [shape, g.ints("start", [0]), g.ints("stop", [1])], "batch")
    size = g.op("Concat", [batch, g.ints("units", [units])], "state_shape", axis=0)
    zero = g.onnx.numpy_helper.from_array(np.zeros(1, g.dtype))
    return [g.op("ConstantOfShape", [size], "zeros", value=zero)] * n


def _cell(g: _Graph, layer: RNN, zt: str, states: list[str], U: dict[str, str], rb: str | None) -> list[str]:
    """One step of the cell: the new states from the projected input ``zt`` and the old states (``U``: the
    names of the recurrent kernel, or of its two parts for a GRU with ``reset_after=False``)."""
    u = layer.units
    h = states[0]
    kind = type(layer)
    if kind is LSTM:
        a = g.op("Add", [zt, g.op("MatMul", [h, U["all"]], "hu")], "gates")
        i = g.op("Sigmoid", [_cols(g, a, 0, u, "a_i")], "i")
        f = g.op("Sigmoid", [_cols(g, a, u, 2 * u, "a_f")], "f")
        cand = g.op("Tanh", [_cols(g, a, 2 * u, 3 * u, "a_g")], "g")
        o = g.op("Sigmoid", [_cols(g, a, 3 * u, 4 * u, "a_o")], "o")
        c = g.op("Add", [g.op("Mul", [f, states[1]], "fc"), g.op("Mul", [i, cand], "ig")], "c")
        return [g.op("Mul", [o, g.op("Tanh", [c], "tanh_c")], "h"), c]
    if kind is GRU:
        if layer.reset_after:  # r multiplies (h·U_h + b_h)
            hu = g.op("MatMul", [h, U["all"]], "hu")
            if rb is not None:
                hu = g.op("Add", [hu, rb], "hu")
            hzr = _cols(g, hu, 0, 2 * u, "hu_zr")
        else:  # r multiplies h before U_h
            hzr = g.op("MatMul", [h, U["zr"]], "hu_zr")
        zr = g.op("Sigmoid", [g.op("Add", [_cols(g, zt, 0, 2 * u, "x_zr"), hzr], "a_zr")], "zr")
        z, r = _cols(g, zr, 0, u, "z"), _cols(g, zr, u, 2 * u, "r")
        if layer.reset_after:
            rec = g.op("Mul", [r, _cols(g, hu, 2 * u, 3 * u, "hu_h")], "r_hu")
        else:
            rec = g.op("MatMul", [g.op("Mul", [r, h], "rh"), U["h"]], "rh_u")
        n = g.op("Tanh", [g.op("Add", [_cols(g, zt, 2 * u, 3 * u, "x_h"), rec], "a_h")], "n")
        return [g.op("Add", [g.op("Mul", [g.op("Sub", [h, n], "h_n"), z], "z_h_n"), n], "h")]
    pre = g.op("Add", [zt, g.op("MatMul", [h, U["all"]], "hu")], "pre")
    act = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "linear": "Identity"}[layer.activation]
    return [g.op(act, [pre], "h")]


def _recurrent(g: _Graph, layer: RNN, t: _Tensor, init: list[_Tensor] | None = None) -> list[_Tensor]:
    """A recurrent layer unrolled step by step as neuro computes it: the input projection ``x·W + b`` of
    every step at once, then per step the cell; a masked step keeps the old states, and its output is the
    state (or zero, with ``zero_output_for_mask``)."""
    (steps, _), _ = layer._split_shape(layer.input_shape)
    z_all = g.op("MatMul", [t.name, g.const("kernel", _host(layer, "params", "kernel", g.dtype))], "xw")
    rb = None
    if layer.use_bias:
        b = _host(layer, "params", "bias", g.dtype)
        z_all = g.op("Add", [z_all, g.const("bias", b[0] if b.ndim == 2 else b)], "xw")
        rb = g.const("recurrent_bias", b[1]) if b.ndim == 2 else None
    kernel = _host(layer, "params", "recurrent_kernel", g.dtype)
    u = layer.units
    if isinstance(layer, GRU) and not layer.reset_after:
        U = {
            "zr": g.const("recurrent_kernel_zr", kernel[:, : 2 * u]),
            "h": g.const("recurrent_kernel_h", kernel[:, 2 * u :]),
        }
    else:
        U = {"all": g.const("recurrent_kernel", kernel)}
    states = [s.name for s in init] if init else _zero_states(g, t.name, layer.units, layer.n_states)
    outs = []
    for k in range(steps - 1, -1, -1) if layer.go_backwards else range(steps):
        g_prefix = g.prefix
        g.prefix = f"{g_prefix}t{k}."
        new = _cell(g, layer, _at_step(g, z_all, k, "xw"), states, U, rb)
        if t.mask is None:
            states = new
            out = states[0]
        else:
            m = g.op("Unsqueeze", [_at_step(g, t.mask, k, "mask"), g.ints("axes", [1])], "mask")
            states = [g.op("Where", [m, a, b], "state") for a, b in zip(new, states, strict=True)]
            out = states[0]
            if layer.return_sequences and layer.zero_output_for_mask:
                out = g.op("Where", [m, out, g.const("zero", 0.0)], "out")
        if layer.return_sequences:
            outs.append(g.op("Unsqueeze", [out, g.ints("axes", [1])], "out"))
        g.prefix = g_prefix
    if layer.return_sequences:
        y = _Tensor(g.op("Concat", outs, "sequence", axis=1), 3, mask=t.mask)
    else:
        y = _Tensor(states[0], 2)
    return [y, *(_Tensor(s, 2) for s in states)] if layer.return_state else [y]


def _bidirectional(
    g: _Graph, layer: Bidirectional, t: _Tensor, init: list[_Tensor] | None = None
) -> list[_Tensor]:
    """Both directions; initial states as Keras takes them (the forward layer's, then the backward's)."""
    n = layer.forward_layer.n_states
    fw = _recurrent(g, layer.forward_layer, t, init[:n] if init else None)
    bw = _recurrent(g, layer.backward_layer, t, init[n:] if init else None)
    a, b = fw[0], bw[0]
    if layer.forward_layer.return_sequences:  # the backward outputs back in time order
        (steps, _), _ = layer.forward_layer._split_shape(layer.forward_layer.input_shape)
        idx = g.const("reverse", np.arange(steps - 1, -1, -1, dtype=np.int64), np.int64)
        b = _Tensor(g.op("Gather", [b.name, idx], "reversed", axis=1), b.rank, mask=b.mask)
    mode = layer.merge_mode
    if mode is None:
        return [a, b, *fw[1:], *bw[1:]]
    if mode == "concat":
        out = g.op("Concat", [a.name, b.name], "concat", axis=-1)
    elif mode == "sum":
        out = g.op("Add", [a.name, b.name], "sum")
    elif mode == "mul":
        out = g.op("Mul", [a.name, b.name], "mul")
    else:  # "ave"
        out = g.op("Mul", [g.op("Add", [a.name, b.name], "sum"), g.const("half", 0.5)], "ave")
    return [_Tensor(out, a.rank, mask=a.mask), *fw[1:], *bw[1:]]


def _conv1d(g: _Graph, layer: Conv1D, t: _Tensor) -> _Tensor:
    """im2col along time (a strided Slice per kernel offset, Concat, MatMul): exact in any dtype."""
    from neuro.functional.sequence import conv1d_length, conv1d_pads

    steps = layer.input_shape[0]
    k, s, d = layer.kernel_size, layer.strides, layer.dilation_rate
    left, right = conv1d_pads(layer.padding, steps, k, s, d)
    out = conv1d_length(steps, k, s, d, (left, right))
    src = t.name
    if left or right:
        src = g.op("Pad", [src, g.ints("pads", [0, left, 0, 0, right, 0]), g.const("fill", 0.0)], "padded")
    cols = []
    for j in range(k):
        bounds = [g.ints("starts", [j * d]), g.ints("ends", [j * d + (out - 1) * s + 1])]
        cols.append(g.op("Slice", [src, *bounds, g.ints("axes", [1]), g.ints("steps", [s])], f"window_{j}"))
    x = cols[0] if k == 1 else g.op("Concat", cols, "columns", axis=-1)
    kernel = _host(layer, "params", "kernel", g.dtype)
    z = g.op("MatMul", [x, g.const("kernel", kernel.reshape(-1, kernel.shape[-1]))], "conv1d")
    return _Tensor(g.op("Add", [z, g.const("bias", _host(layer, "params", "bias", g.dtype))], "conv1d"), 3)


def _pool1d(g: _Graph, layer: MaxPool1D | AvgPool1D, t: _Tensor) -> _Tensor:
    """A 1-D pooling as a ``(1, size)`` pooling of a one-row image, written as slices (any dtype)."""
    steps = layer.input_shape[0]
    size, stride = (1, layer.pool_size), (1, layer.strides)
    as_2d = type("_As2D", (), {"input_shape": (1, *layer.input_shape), "strides": stride})()
    x4 = _Tensor(g.op("Unsqueeze", [t.name, g.ints("axes", [1])], "as_image"), 4)
    pads = paddings(layer.padding, 1, steps, size, stride)
    is_max = isinstance(layer, MaxPool1D)
    slices, (ho, wo) = _windows(g, x4, as_2d, size, pads, -np.inf if is_max else 0.0)
    if is_max:
        y = slices[0] if len(slices) == 1 else g.op("Max", slices, "max_pool")
    else:
        total = slices[0] if len(slices) == 1 else g.op("Sum", slices, "window_sum")
        inv = _inverse_counts((1, steps), size, stride, pads, (ho, wo), g.dtype)
        y = g.op("Mul", [total, g.const("inverse_counts", inv)], "avg_pool")
    return _Tensor(g.op("Squeeze", [y, g.ints("axes", [1])], "pooled"), 3)


def _global_pool1d(g: _Graph, layer: GlobalAveragePooling1D | GlobalMaxPool1D, t: _Tensor) -> _Tensor:
    """Over time; with a mask, over the valid steps only (a sequence without one pools to 0)."""
    is_max = isinstance(layer, GlobalMaxPool1D)
    if t.mask is None:
        return _Tensor(g.reduce("ReduceMax" if is_max else "ReduceMean", t.name, [1], base="pooled"), 2)
    mask = g.op("Unsqueeze", [t.mask, g.ints("axes", [2])], "mask")
    weights = g.op("Cast", [mask], "weights", to=g.elem_type)
    count = g.reduce("ReduceSum", weights, [1], base="count")
    if is_max:
        valid = g.op("Where", [mask, t.name, g.const("minus_inf", -np.inf)], "valid_values")
        pooled = g.reduce("ReduceMax", valid, [1], base="max")
    else:
        total = g.reduce("ReduceSum", g.op("Mul", [t.name, weights], "weighted"), [1], base="total")
        one = g.const("one", 1.0)
        inv = g.op("Div", [one, g.op("Max", [count, one], "count")], "inv")
        pooled = g.op("Mul", [total, inv], "average")
    has = g.op("Greater", [count, g.const("zero", 0.0)], "has_steps")
    return _Tensor(g.op("Where", [has, pooled, g.const("zero", 0.0)], "pooled"), 2)


def _layer_norm(g: _Graph, layer: LayerNormalization, t: _Tensor) -> _Tensor:
    x = g.to_layout(t, "NHWC")
    mean = g.reduce("ReduceMean", x.name, [-1], keepdims=1, base="mean")
    xc = g.op("Sub", [x.name, mean], "centred")
    var = g.reduce("ReduceMean", g.op("Mul", [xc, xc], "squares"), [-1], keepdims=1, base="var")
    std = g.op("Sqrt", [g.op("Add", [var, g.const("epsilon", layer.epsilon)], "var_eps")], "std")
    y = g.op("Mul", [xc, g.op("Div", [g.const("one", 1.0), std], "inv_std")], "normalized")
    if layer.scale:
        y = g.op("Mul", [y, g.const("gamma", _host(layer, "params", "gamma", g.dtype))], "scaled")
    if layer.center:
        y = g.op("Add", [y, g.const("beta", _host(layer, "params", "beta", g.dtype))], "shifted")
    return _Tensor(y, t.rank, mask=t.mask)


_CONVERTERS: dict[type, Callable[[_Graph, Any, _Tensor], _Tensor]] = {
    Dense: _dense,
    Conv2D: _conv2d,
    MaxPool2D: _max_pool,
    AvgPool2D: _avg_pool,
    GlobalAveragePooling2D: _global_avg_pool,
    GlobalMaxPooling2D: _global_max_pool,
    BatchNorm: _batch_norm,
    Dropout: _dropout,
    Flatten: _flatten,
    Reshape: _reshape,
    **{
        cls: _standalone_activation
        for cls in (Linear, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, *_MORE_ACTIVATIONS)
    },
    Embedding: _embedding,
    Masking: _masking,
    Conv1D: _conv1d,
    MaxPool1D: _pool1d,
    AvgPool1D: _pool1d,
    GlobalAveragePooling1D: _global_pool1d,
    GlobalMaxPool1D: _global_pool1d,
    LayerNormalization: _layer_norm,
    SimpleRNN: _recurrent,
    LSTM: _recurrent,
    GRU: _recurrent,
    Bidirectional: _bidirectional,
}


def _layer(g: _Graph, index: int, layer: Layer, t: _Tensor) -> _Tensor:
    kind = type(layer)
    where = f"cannot export layer {index} ({kind.__name__}, name {layer.name!r}) to ONNX"
    convert = _CONVERTERS.get(kind)  # the exact class: a subclass may compute something else
    if convert is None:
        raise ValueError(f"{where}: no converter for {kind.__name__}")
    mask = t.mask
    t = convert(g, layer, t)
    if isinstance(t, list):
        return t
    if isinstance(layer, ActivatedLayer):
        try:
            t = _activation(g, layer.activation, t)
        except KeyError:
            act = type(layer.activation).__name__
            raise ValueError(f"{where}: no converter for its activation {act}") from None
    if layer.supports_masking and kind.compute_mask is Layer.compute_mask:  # passes its input's mask on
        t.mask = mask
    return t


_ELEMENTWISE = {Add: "Add", Subtract: "Sub", Multiply: "Mul", Maximum: "Max", Minimum: "Min"}


def _merge(g: _Graph, layer: Layer, ts: list[_Tensor]) -> _Tensor:
    """A merge of several tensors, in the layout of the first (the others transposed to it if needed); the
    mask of the output is the AND of the inputs' masks, or, for a concatenation along time, the masks joined
    (an input without one all valid), as neuro's ``Concatenate.compute_mask``."""
    masks = [t.mask for t in ts if t.mask is not None]
    out = _merge_values(g, layer, ts)
    if masks and isinstance(layer, Concatenate) and layer._sample_axis(ts[0].rank - 1) == 0:
        out.mask = g.op("Concat", [t.mask or _all_valid(g, t.name) for t in ts], "mask", axis=1)
        return out
    for m in masks:
        out.mask = _and(g, out.mask, m)
    return out


def _all_valid(g: _Graph, x: str) -> str:
    """A mask ``(N, T)`` of true, the sizes read from the sequence ``x``."""
    shape = g.op("Shape", [x], "shape")
    size = g.op("Slice", [shape, g.ints("start", [0]), g.ints("stop", [2])], "steps")
    return g.op("ConstantOfShape", [size], "valid", value=g.onnx.numpy_helper.from_array(np.ones(1, bool)))


def _merge_values(g: _Graph, layer: Layer, ts: list[_Tensor]) -> _Tensor:
    layout = ts[0].layout
    ts = [g.to_layout(t, layout) for t in ts]
    names = [t.name for t in ts]
    rank = ts[0].rank
    kind = type(layer)
    if kind in _ELEMENTWISE:
        op = _ELEMENTWISE[kind]
        out = names[0]
        for other in names[1:]:  # neuro adds (multiplies, ...) in order, pairwise
            out = g.op(op, [out, other], op.lower())
        return _Tensor(out, rank, layout)
    if kind is Average:
        total = names[0]
        for other in names[1:]:
            total = g.op("Add", [total, other], "sum")
        return _Tensor(g.op("Mul", [total, g.const("inverse_n", 1.0 / len(names))], "average"), rank, layout)
    if kind is Concatenate:
        axis = layer.axis if layer.axis > 0 else rank + layer.axis
        if rank == 4 and layout == "NCHW":
            axis = _TO_NCHW.index(axis)
        return _Tensor(g.op("Concat", names, "concatenate", axis=axis), rank, layout)
    raise KeyError(kind.__name__)


def _graph(g: _Graph, graph: Any, ins: list[_Tensor], prefix: str, counter: list[int]) -> list[_Tensor]:
    """Write every node of ``graph`` on the tensors ``ins``; return its outputs (a nested model inlined)."""
    from neuro.graph import Functional

    vals: dict[int, _Tensor] = dict(zip(graph.input_slots, ins, strict=True))
    for step in graph.steps:
        layer = step.layer
        args = [vals[s] for s in step.in_slots]
        index = counter[0]
        g.prefix = f"{prefix}layer{index}.{layer.name}."
        if isinstance(layer, Functional):
            outs = _graph(g, layer.graph, args, f"{prefix}{layer.name}.", counter)
        elif isinstance(layer, RNN) and len(args) > 1:  # initial states given as tensors
            counter[0] += 1
            outs = _recurrent(g, layer, args[0], args[1:])
        elif isinstance(layer, Bidirectional) and len(args) > 1:
            counter[0] += 1
            outs = _bidirectional(g, layer, args[0], args[1:])
        elif step.multi_in:
            counter[0] += 1
            try:
                outs = [_merge(g, layer, args)]
            except KeyError:
                raise ValueError(
                    f"cannot export layer {index} ({type(layer).__name__}, name {layer.name!r}) to ONNX: no "
                    f"converter for {type(layer).__name__}"
                ) from None
        else:
            counter[0] += 1
            out = _layer(g, index, layer, args[0])
            outs = out if isinstance(out, list) else [out]
        for s, t in zip(step.out_slots, outs, strict=True):
            vals[s] = t
    return [vals[s] for s in graph.output_slots]


# -- the loss's link and the scalers ----------------------------------------------------------------------
def _link(g: _Graph, head: Any, t: _Tensor) -> _Tensor:
    if not isinstance(head, head_mod.LinkHead):
        return t
    loss = head.loss
    link = type(loss).link
    if link is losses_mod.Loss.link:
        return t
    if link is losses_mod.SoftmaxCrossEntropy.link:
        return _Tensor(g.op("Softmax", [t.name], "link", axis=-1), t.rank)
    if link is losses_mod.BinaryCrossEntropy.link:
        return _Tensor(g.op("Sigmoid", [t.name], "link"), t.rank)
    raise ValueError(
        f"cannot export the link of loss {type(loss).__name__} to ONNX: only the softmax and sigmoid links "
        "of the built-in losses have converters"
    )


def _scaler_arrays(scaler: Any, attr: str, shape: tuple[int, ...], dtype: Any) -> tuple[np.ndarray, ...]:
    """The ``(a, b)`` of a :class:`neuro.data.Scaler` (``transform`` is ``(x − a) / b``), checked."""
    a, b = getattr(scaler, "a", None), getattr(scaler, "b", None)
    if a is None or b is None:
        raise ValueError(
            f"cannot export {attr} ({type(scaler).__name__}) to ONNX: expected a neuro.data.Scaler with "
            "arrays a and b (transform(x) = (x - a) / b)"
        )
    a, b = np.asarray(a), np.asarray(b)
    k = a.ndim
    if a.shape != b.shape or k > len(shape) or tuple(shape[len(shape) - k :]) != a.shape:
        raise ValueError(
            f"cannot export {attr} to ONNX: its feature shape {a.shape} does not end the network's "
            f"sample shape {shape}"
        )
    return a.astype(dtype), b.astype(dtype)


# -- public API -------------------------------------------------------------------------------------------
def to_model(network: Any, *, opset: int = 17, scalers: bool = True) -> onnx_t.ModelProto:
    """Build the ONNX inference graph of a model (see the module docstring for how each layer is
    written).

    Args:
        network: a :class:`~neuro.models.Model` (a :class:`~neuro.models.Network` included) with at least one
            layer, on any device.
        opset: the ONNX operator set to write, from :data:`MIN_OPSET` (13) to the newest one the installed
            ``onnx`` knows (default 17).
        scalers: write the network's ``input_scaler`` / ``output_scaler`` into the graph, as ``predict``
            applies them: ``(x − a) / b`` at the input and ``y·b + a`` at the output, so that the graph takes
            and returns values in the data's own units (default). ``False`` leaves them out: the graph then
            takes scaled inputs and returns scaled outputs.

    Returns:
        The ONNX model, checked with ``onnx.checker.check_model``: input ``"input"`` ``(N, *input_shape)``
        and output ``"output"`` ``(N, *output_shape)`` for a model with one of each (else one per input and
        output, by name; an output named as an input, the input itself returned, is named
        ``"<name>_output"``), in the model's dtype; the IR version is the oldest one that carries ``opset``.
        The scalers are written where ``predict`` applies them: the input scaler for a model with one input,
        the output scaler for a model with one output.

    Raises:
        ImportError: when the ``onnx`` package (the ``onnx`` extra) is missing.
        ValueError: for an empty network, a layer or activation without a converter (a user's own class;
            the message names the layer's index, class and name), a loss link without one, a scaler
            without arrays ``a`` and ``b`` of the sample's (trailing) shape, or an ``opset`` out of range.
    """
    onnx = _import_onnx()
    newest = onnx.defs.onnx_opset_version()
    integer = isinstance(opset, (int, np.integer)) and not isinstance(opset, bool)
    if not integer or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an integer in [{MIN_OPSET}, {newest}], got {opset!r}")
    opset = int(opset)
    if not network.layers:
        raise ValueError("the network has no layers; add some with add() before exporting it")
    if not isinstance(scalers, bool):
        raise TypeError(f"scalers must be True or False, got {scalers!r}")
    in_scaler = getattr(network, "input_scaler", None) if scalers else None
    out_scaler = getattr(network, "output_scaler", None) if scalers else None
    dtype = np.dtype(network.dtype)
    g = _Graph(onnx, dtype, opset)
    one_in, one_out = len(network.input_shapes) == 1, len(network.output_shapes) == 1
    one = one_in and one_out
    in_names = ["input"] if one else list(network.input_names)
    out_names = ["output"] if one else list(network.output_names)
    for k in range(len(out_names)):  # an output named as an input (the input itself, returned)
        while out_names[k] in in_names or out_names[k] in out_names[:k]:
            out_names[k] = f"{out_names[k]}_output"
    g._used.update(in_names + out_names)

    ins = []
    for name, t_in in zip(in_names, network.graph.inputs, strict=True):
        t = _Tensor(name, 1 + len(t_in.sample_shape))
        if in_scaler is not None and one_in:  # predict scales the input of a model with one input
            a, b = _scaler_arrays(in_scaler, "input_scaler", tuple(t_in.sample_shape), dtype)
            g.prefix = "input_scaler."
            centred = g.op("Sub", [name, g.const("a", a)], "centred")
            t = _Tensor(g.op("Div", [centred, g.const("b", b)], "scaled"), t.rank)
        ins.append(t)
    heads = network.heads if network.losses else [None] * len(out_names)
    with getattr(network, "_lock", None) or contextlib.nullcontext():  # the weights between two steps
        outs = _graph(g, network.graph, ins, "", [0])
    finals = []
    for k, (name, t, head) in enumerate(zip(out_names, outs, heads, strict=True)):
        g.prefix = "output." if one else f"output.{name}."
        t = g.to_layout(t, "NHWC")
        t = _link(g, head, t)
        if out_scaler is not None and one_out:  # and the output of a model with one output
            a, b = _scaler_arrays(out_scaler, "output_scaler", tuple(network.output_shapes[k]), dtype)
            g.prefix = "output_scaler."
            scaled = g.op("Mul", [t.name, g.const("b", b)], "scaled")
            t = _Tensor(g.op("Add", [scaled, g.const("a", a)], "unscaled"), t.rank)
        finals.append(t)
    renamed = set()
    for name, t in zip(out_names, finals, strict=True):
        producer = next((n for n in g.nodes if t.name in n.output), None)
        if (
            producer is not None
            and t.name not in renamed
            and t.name not in in_names
            and sum(1 for f in finals if f.name == t.name) == 1
            and not any(t.name in n.input for n in g.nodes)
        ):
            producer.output[list(producer.output).index(t.name)] = name
            renamed.add(t.name)
        else:  # an output that is an input, another output, or read by another node
            g.nodes.append(
                onnx.helper.make_node("Identity", [t.name], [name], name=g.fresh(f"{name}_identity"))
            )

    helper = onnx.helper

    def elem(t_in: Any) -> int:
        return g.elem_type if t_in.dtype == "float" else helper.np_dtype_to_tensor_dtype(np.dtype(t_in.dtype))

    graph = helper.make_graph(
        g.nodes,
        "neuro_network",
        [
            helper.make_tensor_value_info(n, elem(t_in), ["N", *t_in.sample_shape])
            for n, t_in in zip(in_names, network.graph.inputs, strict=True)
        ],
        [
            helper.make_tensor_value_info(n, g.elem_type, ["N", *shape])
            for n, shape in zip(out_names, network.output_shapes, strict=True)
        ],
        g.initializers,
    )
    from neuro._version import __version__

    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="neuro",
        producer_version=__version__,
        doc_string=f"neuro {type(network).__name__}: {len(network.layers)} layers",
    )
    model.ir_version = helper.find_min_ir_version_for(opsets)
    props = {"input_layout": "channels_last"}
    if getattr(network, "class_names", None) is not None:
        props["class_names"] = json.dumps([str(c) for c in network.class_names])
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    return model


def export(network: Any, path: str | os.PathLike, *, opset: int = 17, scalers: bool = True) -> None:
    """Write a network's ONNX inference graph to ``path`` (what ``Network.export_onnx`` calls).

    The file runs in ONNX Runtime and other ONNX tools: feed ``{"input": x}`` with ``x`` of shape
    ``(N, *network.input_shape)`` in the model's dtype; the output ``"output"`` equals
    ``network.predict(x)`` (a model with several inputs and outputs names them as its inputs and
    ``output_names``). See :func:`to_model` for the graph.

    Args:
        network: a model (a :class:`~neuro.models.Network` included) with at least one layer.
        path: the ``.onnx`` file to write (replaced if it exists).
        opset: the ONNX operator set (default 17; see :func:`to_model`).
        scalers: write the input and output scalers into the graph (default; see :func:`to_model`).

    Raises:
        ImportError: when the ``onnx`` package (the ``onnx`` extra) is missing.
        ValueError: when the network cannot be exported (see :func:`to_model`).
        TypeError: when ``scalers`` is not a bool.
        OSError: when the file cannot be written.
    """
    onnx = _import_onnx()
    model = to_model(network, opset=opset, scalers=scalers)
    onnx.save(model, os.fspath(path))
