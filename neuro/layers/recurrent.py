"""Recurrent layers: one base, :class:`RNN`, that owns the time loop over a stateless cell of
:mod:`neuro.functional.recurrent`, and the three layers made of it — :class:`SimpleRNN`, :class:`LSTM` and
:class:`GRU` — with Keras's arguments, meaning and weight layout.

The base computes the input projections of all steps as one matrix product, keeps the states of every step
in arrays allocated once per call (time-major), runs the cell step by step, and in the backward walks the
steps in reverse (backpropagation through time), then forms the weight gradients as one matrix product
each over all steps.

Masks (from ``Embedding(mask_zero=True)`` or ``Masking``): a masked step leaves the state as it was (it is
carried over); its output is the carried output, or zero with ``zero_output_for_mask=True`` (what
``Bidirectional`` uses, and PyTorch's packed sequences give). Dropout draws one mask per sequence for the
inputs and one for the recurrent state, as Keras does.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from neuro import backend, initializers, registry
from neuro import functional as F
from neuro import regularizers as regularizers_mod
from neuro._validation import positive_int
from neuro.backend import get_array_module, matmul
from neuro.functional.recurrent import SIMPLE_ACTIVATIONS, GRUCell, LSTMCell, SimpleCell
from neuro.layers.base import Layer, SymbolicTensor, is_shape


def _rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


class _ForgetBias(initializers.Initializer):
    """The LSTM bias of ``unit_forget_bias``, as Keras builds it: the base initializer drawn for the input
    gate ``(u,)``, ones for the forget gate, the base initializer drawn for the cell and output gates
    ``(2u,)`` (so a fan-based initializer sees those shapes, not ``(4u,)``)."""

    def __init__(self, base: initializers.Initializer, units: int) -> None:
        self.base, self.units = base, units

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        u = self.units
        return np.concatenate(
            [
                np.asarray(self.base.sample((u,), rng), dtype=np.float64),
                np.ones(u),
                np.asarray(self.base.sample((2 * u,), rng), dtype=np.float64),
            ]
        )


class RNN(Layer):
    """The base of recurrent layers: the time loop, masks, dropout and initial states over a cell.

    Subclasses make the cell (:meth:`make_cell`) and say how many gates it has; everything else is here.

    Args:
        units: the size u of the state and of the output (> 0).
        return_sequences: return the output of every step ``(N, T, u)`` (else the last one ``(N, u)``).
        return_state: also return the final state(s) as extra outputs (``[output, h]``, LSTM ``[output, h,
            c]``); only in a graph model (``neuro.Model``), not in a ``Network`` chain.
        go_backwards: process the sequence from its last step to its first (and return the outputs in that
            order, as Keras).
        dropout: fraction of the inputs dropped in training, one mask per sequence.
        recurrent_dropout: fraction of the recurrent state dropped in its product with the recurrent kernel,
            one mask per sequence.
        zero_output_for_mask: the output of a masked step is zero (else the last valid one).
        use_bias: add a bias.
        kernel_initializer: initializer of ``kernel`` (default Glorot uniform).
        recurrent_initializer: initializer of ``recurrent_kernel`` (default orthogonal).
        bias_initializer: initializer of ``bias`` (default zeros).
        kernel_regularizer: optional penalty on ``kernel`` (an :class:`~neuro.regularizers.L1` /
            :class:`~neuro.regularizers.L2`, or a name); it replaces the model's ``regularizer`` there.
        recurrent_regularizer: optional penalty on ``recurrent_kernel``; it replaces the model's there.
        bias_regularizer: optional penalty on ``bias``.
        name: optional layer name.

    A model's ``regularizer`` acts on both kernels (``kernel`` and ``recurrent_kernel``), as on every
    layer's kernels, unless the layer's own regularizer replaces it.

    Raises:
        ValueError: for an argument out of range.
        TypeError: for a flag (``return_sequences``, ``go_backwards``, ``use_bias``...) that is not a bool.

    Gradient: backpropagation through time: the steps are walked in reverse, each cell's backward turns
    dL/dh_t (from the outputs and from step t+1) into the gradients of its projections, dL/dh_{t−1} =
    d(recurrent projection)·Uᵀ (times the recurrent dropout mask) plus the cell's direct paths; a masked step
    passes its state's gradient through unchanged. Then dW = Σ_t x_tᵀ·d(input projection)_t, dU = Σ_t
    h_{t−1}ᵀ·d(recurrent projection)_t and db = Σ_t d(input projection)_t, one matrix product each over all
    steps, and dL/dx_t = d(input projection)_t·Wᵀ (times the input dropout mask).
    """

    supports_masking = True
    regularizable = ("kernel", "recurrent_kernel")

    def __init__(
        self,
        units: int,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zero_output_for_mask: bool = False,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.units = positive_int(units, "units", error=ValueError)
        for flag, value in (
            ("return_sequences", return_sequences),
            ("return_state", return_state),
            ("go_backwards", go_backwards),
            ("zero_output_for_mask", zero_output_for_mask),
            ("use_bias", use_bias),
        ):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be True or False, got {value!r}")
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.zero_output_for_mask = zero_output_for_mask
        self.use_bias = use_bias
        self.dropout = _rate(dropout, "dropout")
        self.recurrent_dropout = _rate(recurrent_dropout, "recurrent_dropout")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers_mod.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers_mod.get(recurrent_regularizer)
        self.bias_regularizer = regularizers_mod.get(bias_regularizer)
        self.cell = self.make_cell()

    @property
    def regularizers(self) -> dict[str, Any]:
        """This layer's own penalties by parameter name (``kernel``, ``recurrent_kernel``, ``bias``), from its
        ``kernel_regularizer``, ``recurrent_regularizer`` and ``bias_regularizer``."""
        own = {
            "kernel": self.kernel_regularizer,
            "recurrent_kernel": self.recurrent_regularizer,
            "bias": self.bias_regularizer if self.use_bias else None,
        }
        return {k: r for k, r in own.items() if r is not None}

    def make_cell(self) -> Any:
        """The stateless cell of :mod:`neuro.functional.recurrent` this layer runs."""
        raise NotImplementedError

    @property
    def n_states(self) -> int:
        """How many state arrays the cell carries (LSTM: h and c)."""
        return self.cell.n_states

    # -- shapes ---------------------------------------------------------------------------------------
    def _split_shape(self, input_shape: Any) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
        shapes = [input_shape] if is_shape(input_shape) else list(input_shape)
        seq, init = tuple(shapes[0]), [tuple(s) for s in shapes[1:]]
        kind = type(self).__name__
        if len(seq) != 2 or min(seq) < 1:
            raise ValueError(
                f"{kind} expects input_shape (timesteps, features) per sample, got {seq}; a recurrent layer "
                "reads sequences: give it (N, T, features) inputs (an Embedding of token ids, a Reshape "
                "layer, or x[..., None] for one feature per step)"
            )
        if init and (len(init) != self.n_states or any(s != (self.units,) for s in init)):
            raise ValueError(
                f"{kind} takes {self.n_states} initial state(s) of shape (None, {self.units}), got "
                f"{[(None, *s) for s in init]}"
            )
        return seq, init

    def compute_output_shape(self, input_shape: Any) -> Any:
        (steps, _), _ = self._split_shape(input_shape)
        out = (steps, self.units) if self.return_sequences else (self.units,)
        if self.return_state:
            return [out] + [(self.units,)] * self.n_states
        return out

    def param_specs(self, input_shape: Any) -> dict[str, Any]:
        (_, features), _ = self._split_shape(input_shape)
        g, u = self.cell.gates, self.units
        specs = {
            "kernel": ((features, g * u), self.kernel_initializer),
            "recurrent_kernel": ((u, g * u), self.recurrent_initializer),
        }
        if self.use_bias:
            specs["bias"] = (self.bias_shape(), self.bias_init())
        return specs

    def bias_shape(self) -> tuple[int, ...]:
        """The shape of ``bias`` (``(G·u,)``; the GRU with ``reset_after``: ``(2, 3·u)``)."""
        return (self.cell.gates * self.units,)

    def bias_init(self) -> Any:
        """The initializer of ``bias``."""
        return self.bias_initializer

    def _symbolic_call_arguments(self, kwargs: dict[str, Any]) -> list[SymbolicTensor]:
        kwargs = dict(kwargs)
        init = kwargs.pop("initial_state", None)
        if kwargs:
            raise TypeError(
                f"{type(self).__name__} takes the call argument initial_state only, got {sorted(kwargs)}"
            )
        if init is None:
            return []
        items = list(init) if isinstance(init, (list, tuple)) else [init]
        if not all(isinstance(t, SymbolicTensor) for t in items):
            raise TypeError(
                "initial_state must be symbolic tensors (in a graph model), as many as the states"
            )
        return items

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        m = mask[0] if isinstance(mask, (list, tuple)) else mask
        out = m if self.return_sequences else None
        return [out] + [None] * self.n_states if self.return_state else out

    def output_masked(self, inputs_masked: list[bool]) -> Any:
        """Which outputs carry a mask: the sequence output, when the input has one and every step is
        returned."""
        out = bool(inputs_masked and inputs_masked[0]) and self.return_sequences
        return [out] + [False] * self.n_states if self.return_state else out

    # -- computation ----------------------------------------------------------------------------------
    def _input_bias(self) -> Any:
        if not self.use_bias:
            return None
        b = self.params["bias"]
        return b[0] if b.ndim == 2 else b

    def _recurrent_bias(self) -> Any:
        if not self.use_bias:
            return None
        b = self.params["bias"]
        return b[1] if b.ndim == 2 else None

    @staticmethod
    def _by_rows(run: Any, n: int, xp: Any) -> None:
        """Run the time loop ``run(start, stop)`` over the batch's rows: in blocks of rows, one per thread of
        neuro's pool, each with its products on one BLAS thread (the rows of a batch never meet in a
        recurrence, so each block runs every step alone: one hand-over per pass instead of one per step);
        else whole, a small batch's step products on OpenBLAS's threads.

        Blocks cut the rows at other places than the whole products do, so a recurrent layer's last bits
        depend on the thread count (the threads guide says so); for one thread count they are always the
        same.
        """
        if xp is np and n >= 2 * MIN_BLOCK_ROWS and backend.parallel_blocks(lambda s, e, _: run(s, e), n):
            return
        with backend.blas_threads_for_steps():
            run(0, n)

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        """Run the sequence through the cell.

        Args:
            x: the sequence ``(N, T, features)``, or ``[sequence, *initial states]``.
            training: training mode (dropout; keep the context).
            rng: the random source of dropout masks.
            mask: ``(N, T)`` booleans, True for the valid steps, or ``None``.

        Returns:
            ``(y, ctx)``: the output (with the final states, as a tuple, when ``return_state``).
        """
        items = list(x) if isinstance(x, (list, tuple)) else [x]
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        seq, init = items[0], items[1:]
        W, U = self.params["kernel"], self.params["recurrent_kernel"]
        xp = get_array_module(seq, W)
        dt = W.dtype
        n, steps, features = seq.shape
        u, g = self.units, self.cell.gates
        if seq.dtype != dt:
            seq = seq.astype(dt)
        order = slice(None, None, -1) if self.go_backwards else slice(None)
        xt = xp.ascontiguousarray(seq.transpose(1, 0, 2)[order])  # time-major, processing order
        m = None if mask is None else xp.ascontiguousarray(mask.T[order])
        in_mask = rec_mask = None
        if training and (self.dropout or self.recurrent_dropout):
            if rng is None:
                rng = backend.DeviceRNG(xp, np.random.default_rng())
            if self.dropout:
                in_mask = F.dropout_mask(rng.random((n, features), dt), self.dropout)
            if self.recurrent_dropout:
                rec_mask = F.dropout_mask(rng.random((n, u), dt), self.recurrent_dropout)
        xin = xt if in_mask is None else xt * in_mask
        z = matmul(xin.reshape(steps * n, features), W).reshape(steps, n, g * u)
        b = self._input_bias()
        if b is not None:
            z += b
        rb = self._recurrent_bias()
        # training keeps every step's states and workspace for the backward; inference only what it returns
        every = training or self.return_sequences
        slots = steps + 1 if every else 2
        states = [xp.empty((slots, n, u), dt) for _ in range(self.n_states)]
        for k, s in enumerate(states):
            if k < len(init):
                s[0] = init[k]
            else:
                s[0] = 0
        hd = states[0][:-1] if rec_mask is None else xp.empty((steps, n, u), dt)
        ws = self.cell.workspace(xp, steps if training else 1, n, dt)
        cell = self.cell

        def run(start: int, stop: int) -> None:  # the steps of rows start:stop
            rows = slice(start, stop)
            st = [a[:, rows] for a in states]
            hd_r, z_r = hd[:, rows], z[:, rows]
            ws_r = {k: v[..., rows, :] for k, v in ws.items()}  # every workspace array: (..., N, width)
            m_r = None if m is None else m[:, rows]
            rm = None if rec_mask is None else rec_mask[rows]
            for t in range(steps):
                prev = [a[t % slots] for a in st]
                h_in = prev[0] if rm is None else xp.multiply(prev[0], rm, out=hd_r[t])
                new = [a[(t + 1) % slots] for a in st]
                cell.step(t if training else 0, z_r[t], h_in, prev, U, rb, ws_r, new)
                if m_r is not None:  # a masked step carries the state over
                    keep = ~m_r[t][:, None]
                    for a, p in zip(new, prev, strict=True):
                        xp.copyto(a, p, where=keep)

        self._by_rows(run, n, xp)
        h = states[0]
        last = steps % slots
        if self.return_sequences:
            seq_out = h[1:]
            if m is not None and self.zero_output_for_mask:
                seq_out = seq_out * m[:, :, None]
            out = xp.ascontiguousarray(seq_out.transpose(1, 0, 2))
        else:
            out = h[last].copy()
        y: Any = out
        if self.return_state:
            y = (out, *(s[last].copy() for s in states))
        ctx = None
        if training:
            ctx = (xin, in_mask, rec_mask, m, states, hd, ws, len(init), seq.shape)
        return y, ctx

    def backward(self, grad: Any, ctx: Any) -> Any:
        """Backpropagation through time (see the module docstring of :mod:`neuro.functional.recurrent`).

        Args:
            grad: dL/d(output), or a tuple with dL/d(each final state) (``None`` where no gradient came).
            ctx: the context of the training forward.

        Returns:
            dL/d(sequence), or a tuple with dL/d(each initial state) when initial states were given.
        """
        xin, in_mask, rec_mask, m, states, hd, ws, n_init, seq_shape = self._require(ctx)
        grads = list(grad) if isinstance(grad, tuple) else [grad]
        g_out, g_states = grads[0], grads[1:]
        W, U = self.params["kernel"], self.params["recurrent_kernel"]
        xp = get_array_module(xin, W)
        dt = W.dtype
        steps, n, features = xin.shape
        u, g = self.units, self.cell.gates
        cell = self.cell
        dx_all = xp.empty((steps, n, g * u), dt)
        du_width = 2 * u if getattr(cell, "reset_after", True) is False else g * u  # the GRU's old form: z, r
        du_all = xp.empty((steps, n, du_width), dt) if cell.separate_recurrent_grad else dx_all
        u_rec = U if du_width == g * u else U[:, :du_width]
        # Uᵀ laid out once for the T products below: an untransposed right operand is 25–35 % faster in
        # OpenBLAS's small products (an LSTM(128) step: 66 → 50 µs), and the sums are the same
        u_rec_t = xp.ascontiguousarray(u_rec.T)
        dh = xp.zeros((n, u), dt)
        dstates = [xp.zeros((n, u), dt) for _ in range(self.n_states - 1)]
        for k, gs in enumerate(g_states):
            if gs is None:
                continue
            if k == 0:
                dh += gs
            else:
                dstates[k - 1] += gs
        d_seq = None
        if g_out is not None:
            if self.return_sequences:
                d_seq = g_out.transpose(1, 0, 2)  # processing order: the output was in it
                if m is not None and self.zero_output_for_mask:
                    d_seq = d_seq * m[:, :, None]
            else:
                dh += g_out
        dh_cell_all = xp.empty((n, u), dt) if m is not None else None
        carried = [xp.empty((n, u), dt), xp.empty((n, u), dt)]  # dL/dh_{t−1}, written step by step in turn
        dh_first = xp.empty((n, u), dt)  # dL/dh and dL/d(other states) before the first step
        dstates_first = [xp.empty((n, u), dt) for _ in dstates]

        def run(start: int, stop: int) -> None:  # the steps of rows start:stop, from the last
            rows = slice(start, stop)
            dh_r = dh[rows]
            ds_r = [d[rows] for d in dstates]
            dh_cell = dh_r if dh_cell_all is None else dh_cell_all[rows]
            carried_r = [c[rows] for c in carried]
            st = [a[:, rows] for a in states]
            hd_r, dx_r, du_r = hd[:, rows], dx_all[:, rows], du_all[:, rows]
            ws_r = {k: v[..., rows, :] for k, v in ws.items()}
            d_seq_r = None if d_seq is None else d_seq[:, rows]
            m_r = None if m is None else m[:, rows]
            rm = None if rec_mask is None else rec_mask[rows]
            for t in range(steps - 1, -1, -1):
                if d_seq_r is not None:
                    dh_r += d_seq_r[t]
                if m_r is not None:
                    mt = m_r[t][:, None]
                    xp.multiply(dh_r, mt, out=dh_cell)
                    pass_h = dh_r * ~mt
                    cell_states = [d * mt for d in ds_r]
                    pass_states = [d * ~mt for d in ds_r]
                else:
                    cell_states = ds_r
                prev = [a[t] for a in st]
                new = [a[t + 1] for a in st]
                direct, d_prev, d_hd = cell.step_backward(
                    t, dh_cell, cell_states, hd_r[t], prev, new, ws_r, dx_r[t], du_r[t], U
                )
                dhd = matmul(du_r[t], u_rec_t, out=carried_r[t % 2])
                if d_hd is not None:
                    dhd += d_hd
                if rm is not None:
                    dhd *= rm
                if direct is not None:
                    dhd += direct
                if m_r is not None:
                    dhd += pass_h
                    d_prev = [a + b for a, b in zip(d_prev, pass_states, strict=True)]
                dh_r = dhd
                if m_r is None:
                    dh_cell = dh_r
                ds_r = d_prev
            dh_first[rows] = dh_r
            for out, d in zip(dstates_first, ds_r, strict=True):
                out[rows] = d

        self._by_rows(run, n, xp)
        dh, dstates = dh_first, dstates_first
        with self.accumulate() as gw:
            matmul(xin.reshape(-1, features).T, dx_all.reshape(-1, g * u), out=gw["kernel"])
            drb = None
            if self.use_bias:
                db = gw["bias"]
                if db.ndim == 2:
                    dx_all.reshape(-1, g * u).sum(axis=0, out=db[0])
                    drb = db[1]
                else:
                    dx_all.reshape(-1, g * u).sum(axis=0, out=db)
            cell.recurrent_grads(hd, dx_all, du_all, ws, gw["recurrent_kernel"], drb)
        if not self.need_input_grad:
            return None
        dxs = matmul(dx_all.reshape(-1, g * u), W.T).reshape(steps, n, features)
        if in_mask is not None:
            dxs *= in_mask
        order = slice(None, None, -1) if self.go_backwards else slice(None)
        dx = xp.ascontiguousarray(dxs[order].transpose(1, 0, 2))
        if n_init:
            return (dx, dh, *dstates)[: 1 + n_init]
        return dx

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "zero_output_for_mask": self.zero_output_for_mask,
            "use_bias": self.use_bias,
            "kernel_initializer": registry.serialize(self.kernel_initializer),
            "recurrent_initializer": registry.serialize(self.recurrent_initializer),
            "bias_initializer": registry.serialize(self.bias_initializer),
            **{
                ("recurrent" if k == "recurrent_kernel" else k) + "_regularizer": registry.serialize(r)
                for k, r in self.regularizers.items()
            },
        }


#: A recurrent layer's time loop runs in blocks of rows on neuro's threads when every block has at least this
#: many rows. With fewer, the Python of each step (held by one thread at a time) costs as much as its
#: arithmetic: an LSTM(128)'s training step at two threads took 1.3–1.55× less time a row in blocks of 64
#: to 256 rows than on OpenBLAS's threads, and was level in blocks of 32 (backward 15 % faster, forward 14 %
#: slower).
MIN_BLOCK_ROWS = 64


@registry.register
class SimpleRNN(RNN):
    """Fully connected recurrent layer: ``h_t = φ(x_t·W + h_{t−1}·U + b)``.

    Args:
        units: the size u of the state and output.
        activation: φ: ``"tanh"`` (default), ``"sigmoid"``, ``"relu"`` or ``"linear"``.
        **kwargs: the arguments of :class:`RNN` (return_sequences, return_state, go_backwards, dropout, …).

    Shape:
        - input: ``(N, T, features)``; output: ``(N, T, u)`` with return_sequences, else ``(N, u)``.
        - kernel ``(features, u)``, recurrent_kernel ``(u, u)``, bias ``(u,)``.

    Gradient: backpropagation through time: dz_t = dh_t ⊙ φ'(from h_t), dh_{t−1} = dz_t·Uᵀ;
    dW = Σ_t x_tᵀ·dz_t, dU = Σ_t h_{t−1}ᵀ·dz_t, db = Σ_t dz_t (see :mod:`neuro.functional.recurrent`).
    """

    def __init__(self, units: int, activation: str = "tanh", **kwargs: Any) -> None:
        if activation is None:
            activation = "linear"
        if activation not in SIMPLE_ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(SIMPLE_ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        super().__init__(units, **kwargs)

    def make_cell(self) -> SimpleCell:
        return SimpleCell(self.units, self.activation)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation}


@registry.register
class LSTM(RNN):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997), as Keras's ``LSTM``.

    Gates in Keras's order i, f, c, o: with ``a = x_t·W + h_{t−1}·U + b``: ``i = σ(a_i)``, ``f = σ(a_f)``,
    ``g = tanh(a_c)``, ``o = σ(a_o)``, ``c_t = f ⊙ c_{t−1} + i ⊙ g``, ``h_t = o ⊙ tanh(c_t)``.

    PyTorch's ``nn.LSTM`` has the same gate order: ``kernel = weight_ih.T``, ``recurrent_kernel =
    weight_hh.T``, ``bias = bias_ih + bias_hh`` (the same predictions; PyTorch trains the two biases apart,
    each with the full gradient, so training matches with its ``bias_hh`` zero and frozen).

    Args:
        units: the size u of the state and output.
        unit_forget_bias: start the forget gate's bias at 1 (Jozefowicz et al., 2015; default True).
        **kwargs: the arguments of :class:`RNN`.

    Shape:
        - input: ``(N, T, features)``; output: ``(N, T, u)`` with return_sequences, else ``(N, u)``; states
          h and c ``(N, u)``.
        - kernel ``(features, 4u)``, recurrent_kernel ``(u, 4u)``, bias ``(4u,)``.

    Gradient: backpropagation through time with the LSTM cell's backward (see
    :mod:`neuro.functional.recurrent`): da_t from dh_t and dc_t, dh_{t−1} = da_t·Uᵀ, dc_{t−1} = dc_t ⊙ f;
    dW = Σ_t x_tᵀ·da_t, dU = Σ_t h_{t−1}ᵀ·da_t, db = Σ_t da_t.
    """

    def __init__(self, units: int, unit_forget_bias: bool = True, **kwargs: Any) -> None:
        if not isinstance(unit_forget_bias, bool):
            raise TypeError(f"unit_forget_bias must be True or False, got {unit_forget_bias!r}")
        self.unit_forget_bias = unit_forget_bias
        super().__init__(units, **kwargs)

    def make_cell(self) -> LSTMCell:
        return LSTMCell(self.units)

    def bias_init(self) -> Any:
        return (
            _ForgetBias(self.bias_initializer, self.units) if self.unit_forget_bias else self.bias_initializer
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


@registry.register
class GRU(RNN):
    """Gated recurrent unit (Cho et al., 2014), as Keras's ``GRU``.

    Gates in Keras's order z, r, h. With ``reset_after=True`` (the default, PyTorch's and cuDNN's form) the
    reset gate multiplies the recurrent candidate after its product with U, and the bias is ``(2, 3u)``:
    the input bias and the recurrent bias. PyTorch's ``nn.GRU`` orders its gates r, z, n: ``kernel`` is
    ``weight_ih.T`` with the column blocks reordered to z, r, n, likewise ``recurrent_kernel`` and the two
    biases.

    Args:
        units: the size u of the state and output.
        reset_after: apply the reset gate after the recurrent product (default True).
        **kwargs: the arguments of :class:`RNN`.

    Shape:
        - input: ``(N, T, features)``; output: ``(N, T, u)`` with return_sequences, else ``(N, u)``.
        - kernel ``(features, 3u)``, recurrent_kernel ``(u, 3u)``, bias ``(2, 3u)`` (``(3u,)`` without
          reset_after).

    Gradient: backpropagation through time with the GRU cell's backward (see
    :mod:`neuro.functional.recurrent`); dW = Σ_t x_tᵀ·d(input part)_t, dU = Σ_t h_{t−1}ᵀ·d(recurrent part)_t.
    """

    def __init__(self, units: int, reset_after: bool = True, **kwargs: Any) -> None:
        if not isinstance(reset_after, bool):
            raise TypeError(f"reset_after must be True or False, got {reset_after!r}")
        self.reset_after = reset_after
        super().__init__(units, **kwargs)

    def make_cell(self) -> GRUCell:
        return GRUCell(self.units, self.reset_after)

    def bias_shape(self) -> tuple[int, ...]:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reset_after": self.reset_after}
