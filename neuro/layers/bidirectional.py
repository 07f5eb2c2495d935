"""A recurrent layer run in both directions, its two outputs merged."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro import registry
from neuro.backend import get_array_module
from neuro.layers.base import Layer, SymbolicTensor, is_shape
from neuro.layers.recurrent import RNN

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


@registry.register
class Bidirectional(Layer):
    """Run a recurrent layer forwards and a copy of it backwards over the sequence, and merge their outputs.

    The backward copy has the same configuration with ``go_backwards`` flipped (or is ``backward_layer``)
    and weights of its own; with ``return_sequences`` its outputs are put back in time order before the
    merge, and a masked step's output is zero in both (as Keras does).

    Args:
        layer: an unbuilt :class:`~neuro.layers.recurrent.RNN` (``LSTM``, ``GRU``, ``SimpleRNN``).
        merge_mode: ``"concat"`` (default, the last axis), ``"sum"``, ``"mul"``, ``"ave"``, or ``None`` (both
            outputs, as a list).
        backward_layer: the layer run backwards (default: a copy of ``layer`` with ``go_backwards``
            flipped): of the same class and units as ``layer``, with the other ``go_backwards``.
        name: optional layer name.

    Shape:
        - input: ``(N, T, features)``; output: the forward layer's output shape with its last axis doubled
          (concat) or the same (sum, mul, ave); with ``return_state`` the forward layer's states, then the
          backward layer's, follow.
        - initial states (a graph model: ``bi(x, initial_state=[...])``, or the list ``[x, *states]``), as
          Keras takes them: the forward layer's states, then the backward layer's (``2·n_states`` tensors
          ``(N, units)``).
        - params: the forward layer's, prefixed ``forward_``, and the backward layer's, prefixed
          ``backward_``.

    Gradient: the merge's gradient split between the two layers (concat: the two halves; sum: both; ave:
    half each; mul: times the other output), each layer's own backward, and dL/dx their sum; each half of
    the initial states gets its own layer's gradient.
    """

    supports_masking = True

    def __init__(
        self,
        layer: Any,
        merge_mode: str | None = "concat",
        backward_layer: Any = None,
        name: str | None = None,
    ) -> None:
        if isinstance(layer, dict):
            layer = registry.deserialize("layer", layer)
        if isinstance(backward_layer, dict):
            backward_layer = registry.deserialize("layer", backward_layer)
        if not isinstance(layer, RNN):
            raise TypeError(
                f"layer must be a recurrent layer (LSTM, GRU, SimpleRNN), got {type(layer).__name__}"
            )
        if layer.built:
            raise ValueError(f"layer {layer.name!r} is already built; give Bidirectional a new layer")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {list(MERGE_MODES)}, got {merge_mode!r}")
        self.forward_layer = layer
        if backward_layer is None:
            cfg = {**layer.get_config(), "go_backwards": not layer.go_backwards}
            cfg["name"] = f"backward_{layer.name}"
            backward_layer = type(layer).from_config(cfg)
        elif not isinstance(backward_layer, RNN) or backward_layer.go_backwards == layer.go_backwards:
            raise ValueError(
                "backward_layer must be a recurrent layer whose go_backwards differs from layer's"
            )
        if type(backward_layer) is not type(layer) or backward_layer.units != layer.units:
            raise ValueError(
                "backward_layer must be a layer of the kind and size of layer (its outputs and states are "
                f"merged with layer's), got {type(layer).__name__}({layer.units}) and "
                f"{type(backward_layer).__name__}({backward_layer.units})"
            )
        self.backward_layer = backward_layer
        if (
            layer.return_sequences != backward_layer.return_sequences
            or layer.return_state != backward_layer.return_state
        ):
            raise ValueError("layer and backward_layer must agree on return_sequences and return_state")
        for sub in (layer, backward_layer):
            if sub.return_sequences:
                sub.zero_output_for_mask = True
        self.merge_mode = merge_mode
        super().__init__(name=name)

    def default_name(self) -> str:
        return "bidirectional"

    # -- arrays: the two layers' own, seen under prefixed names ---------------------------------------
    def _joined(self, store: str) -> dict[str, Any]:
        if "forward_layer" not in self.__dict__:
            return {}
        fw, bw = getattr(self.forward_layer, store), getattr(self.backward_layer, store)
        return {**{f"forward_{k}": v for k, v in fw.items()}, **{f"backward_{k}": v for k, v in bw.items()}}

    def _split(self, store: str, value: dict[str, Any]) -> None:
        if "forward_layer" not in self.__dict__:
            return
        for prefix, sub in (("forward_", self.forward_layer), ("backward_", self.backward_layer)):
            setattr(sub, store, {k[len(prefix) :]: v for k, v in value.items() if k.startswith(prefix)})

    @property  # type: ignore[override]
    def params(self) -> dict[str, Any]:
        """The two layers' trainable arrays (the same arrays), as ``forward_<name>``, ``backward_<name>``."""
        return self._joined("params")

    @params.setter
    def params(self, value: dict[str, Any]) -> None:
        self._split("params", value)

    @property  # type: ignore[override]
    def grads(self) -> dict[str, Any]:
        """The two layers' gradients, named as :attr:`params`."""
        return self._joined("grads")

    @grads.setter
    def grads(self, value: dict[str, Any]) -> None:
        self._split("grads", value)

    @property  # type: ignore[override]
    def buffers(self) -> dict[str, Any]:
        """The two layers' buffers (none for the recurrent layers)."""
        return self._joined("buffers")

    @buffers.setter
    def buffers(self, value: dict[str, Any]) -> None:
        self._split("buffers", value)

    @property
    def regularizable(self) -> tuple[str, ...]:  # type: ignore[override]
        """The kernels a model's regularizer acts on: each layer's, prefixed."""
        return tuple(
            f"{prefix}{k}"
            for prefix, sub in (("forward_", self.forward_layer), ("backward_", self.backward_layer))
            for k in sub.regularizable
        )

    @property
    def regularizers(self) -> dict[str, Any]:
        """The two layers' own penalties (``kernel_regularizer`` and the like), named as :attr:`params`."""
        return {
            f"{prefix}{k}": r
            for prefix, sub in (("forward_", self.forward_layer), ("backward_", self.backward_layer))
            for k, r in sub.regularizers.items()
        }

    # -- shapes ---------------------------------------------------------------------------------------
    def _halves(self, inputs: Any) -> tuple[Any, Any]:
        """The inputs of the forward and of the backward layer: the sequence, and each its half of the
        initial states (shapes or arrays)."""
        if is_shape(inputs) or not isinstance(inputs, (list, tuple)):
            return inputs, inputs
        seq, states = inputs[0], list(inputs[1:])
        if not states:
            return seq, seq
        n = self.forward_layer.n_states
        if len(states) != 2 * n:
            kind = type(self.forward_layer).__name__
            raise ValueError(
                f"Bidirectional({kind}) takes {2 * n} initial states (the forward layer's {n}, then the "
                f"backward layer's {n}), got {len(states)}"
            )
        return [seq, *states[:n]], [seq, *states[n:]]

    def _symbolic_call_arguments(self, kwargs: dict[str, Any]) -> list[SymbolicTensor]:
        kwargs = dict(kwargs)
        init = kwargs.pop("initial_state", None)
        if kwargs:
            raise TypeError(f"Bidirectional takes the call argument initial_state only, got {sorted(kwargs)}")
        if init is None:
            return []
        items = list(init) if isinstance(init, (list, tuple)) else [init]
        if not all(isinstance(t, SymbolicTensor) for t in items):
            raise TypeError("initial_state must be symbolic tensors (in a graph model)")
        return items

    def compute_output_shape(self, input_shape: Any) -> Any:
        fw_in, bw_in = self._halves(input_shape)
        out = self.forward_layer.compute_output_shape(fw_in)
        self.backward_layer.compute_output_shape(bw_in)
        outs = list(out) if isinstance(out, list) else [out]
        y, states = outs[0], outs[1:]
        if self.merge_mode is None:
            merged = [y, y]
        elif self.merge_mode == "concat":
            merged = [(*y[:-1], 2 * y[-1])]
        else:
            merged = [y]
        full = merged + states + states
        return full if len(full) > 1 else full[0]

    def output_masked(self, inputs_masked: list[bool]) -> Any:
        seq = bool(inputs_masked and inputs_masked[0]) and self.forward_layer.return_sequences
        n_merged = 2 if self.merge_mode is None else 1
        n_states = 2 * self.forward_layer.n_states if self.forward_layer.return_state else 0
        flags = [seq] * n_merged + [False] * n_states
        return flags if len(flags) > 1 else flags[0]

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        m = mask[0] if isinstance(mask, (list, tuple)) else mask
        flags = self.output_masked([m is not None])
        if isinstance(flags, list):
            return [m if f else None for f in flags]
        return m if flags else None

    def param_specs(self, input_shape: Any) -> dict[str, Any]:
        fw_in, bw_in = self._halves(input_shape)
        fw, bw = self.forward_layer.param_specs(fw_in), self.backward_layer.param_specs(bw_in)
        return {**{f"forward_{k}": v for k, v in fw.items()}, **{f"backward_{k}": v for k, v in bw.items()}}

    def build(
        self, input_shape: Any, rng: Any = None, dtype: Any = None, xp: Any = np, initialize: bool = True
    ) -> None:
        rng = rng if rng is not None else np.random.default_rng()
        fw_in, bw_in = self._halves(input_shape)
        self.forward_layer.build(fw_in, rng, dtype, xp, initialize)
        self.backward_layer.build(bw_in, rng, dtype, xp, initialize)
        self.input_shape = input_shape if is_shape(input_shape) else [tuple(s) for s in input_shape]
        out = self.compute_output_shape(self.input_shape)
        self.output_shape = out
        self._grads_clear = True
        self.built = True

    def clear_grads(self) -> None:
        self.forward_layer.clear_grads()
        self.backward_layer.clear_grads()

    def to(self, xp: Any) -> None:
        self.forward_layer.to(xp)
        self.backward_layer.to(xp)

    # -- computation ----------------------------------------------------------------------------------
    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        kw = {} if mask is None else {"mask": mask}
        xf, xb = self._halves(x)
        yf, cf = self.forward_layer.forward(xf, training, rng, **kw)
        yb, cb = self.backward_layer.forward(xb, training, rng, **kw)
        fs = list(yf) if isinstance(yf, tuple) else [yf]
        bs = list(yb) if isinstance(yb, tuple) else [yb]
        a, b = fs[0], bs[0]
        if self.forward_layer.return_sequences:
            b = b[:, ::-1]  # the backward layer's outputs back in time order
        xp = get_array_module(a, b)
        mode = self.merge_mode
        if mode == "concat":
            merged = [xp.concatenate([a, b], axis=-1)]
        elif mode == "sum":
            merged = [a + b]
        elif mode == "mul":
            merged = [a * b]
        elif mode == "ave":
            merged = [(a + b) * a.dtype.type(0.5)]
        else:
            merged = [a, xp.ascontiguousarray(b)]
        outs = merged + fs[1:] + bs[1:]
        y = tuple(outs) if len(outs) > 1 else outs[0]
        return y, ((cf, cb, a, b) if training else None)

    def backward(self, grad: Any, ctx: Any) -> Any:
        cf, cb, a, b = self._require(ctx)
        grads = list(grad) if isinstance(grad, tuple) else [grad]
        xp = get_array_module(a, b)
        n_merged = 2 if self.merge_mode is None else 1
        merged, states = grads[:n_merged], grads[n_merged:]
        n_st = len(states) // 2
        g = merged[0]
        if g is None and self.merge_mode is not None:
            ga = gb = None
        elif self.merge_mode == "concat":
            u = a.shape[-1]
            ga, gb = g[..., :u], g[..., u:]
        elif self.merge_mode == "sum":
            ga = gb = g
        elif self.merge_mode == "mul":
            ga, gb = g * b, g * a
        elif self.merge_mode == "ave":
            ga = gb = g * g.dtype.type(0.5)
        else:
            ga, gb = merged
        if gb is not None and self.forward_layer.return_sequences:
            gb = xp.ascontiguousarray(gb[:, ::-1])
        gf = (ga, *states[:n_st]) if n_st else ga
        gbk = (gb, *states[n_st:]) if n_st else gb
        for sub in (self.forward_layer, self.backward_layer):
            sub.need_input_grad = self.need_input_grad
        dxf = self.forward_layer.backward(gf, cf)
        dxb = self.backward_layer.backward(gbk, cb)
        if not self.need_input_grad:
            return None
        if isinstance(dxf, tuple):  # initial states were inputs: each half has its own layer's gradient
            return (dxf[0] + dxb[0], *dxf[1:], *dxb[1:])
        return dxf + dxb

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "layer": registry.serialize(self.forward_layer),
            "merge_mode": self.merge_mode,
            "backward_layer": registry.serialize(self.backward_layer),
        }
