"""Recurrent cells as stateless step functions, and the Embedding lookup.

A cell computes one time step: from the input projection of the step ``z_t = x_t·W + b`` (computed for all
steps at once by the recurrent layer, one matrix product) and the previous state, the new state and the
step's output. It keeps what its backward needs in arrays of a workspace that the layer allocates once per
call (one slice per step, time-major), so that nothing is allocated per step beyond temporaries of one
step. The time loop, masks, dropout masks and the accumulation of the weight gradients over the steps are
the layer's (:mod:`neuro.layers.recurrent`).

Gates are in Keras's order and layout (so Keras weights load as they are): a kernel ``W (input, G·u)``, a
recurrent kernel ``U (u, G·u)`` and a bias of ``G·u`` (GRU with ``reset_after``: ``(2, 3·u)``, the input and
the recurrent bias).

**SimpleRNN** (G = 1, activation φ: tanh, sigmoid, relu or linear)::

    h_t = φ(z_t + h_{t−1}·U)
    backward, with dh the gradient of h_t:  dz_t = dh ⊙ φ'(from h_t);  dh_{t−1} = dz_t·Uᵀ

**LSTM** (G = 4, gates i, f, c, o)::

    a = z_t + h_{t−1}·U;   i = σ(a_i), f = σ(a_f), g = tanh(a_c), o = σ(a_o)
    c_t = f ⊙ c_{t−1} + i ⊙ g;   h_t = o ⊙ tanh(c_t)

backward, with dh and dc the gradients of h_t and c_t arriving from later steps and the outputs::

    do = dh ⊙ tanh(c_t);   dc ← dc + dh ⊙ o ⊙ (1 − tanh²(c_t))
    di = dc ⊙ g;   dg = dc ⊙ i;   df = dc ⊙ c_{t−1};   dc_{t−1} = dc ⊙ f
    da = [di ⊙ i(1−i), df ⊙ f(1−f), dg ⊙ (1−g²), do ⊙ o(1−o)];   dh_{t−1} = da·Uᵀ

**GRU**, ``reset_after=True`` (G = 3, gates z, r, h; PyTorch's and cuDNN's form), with the input bias in z_t
and the recurrent bias b_h::

    [x_z, x_r, x_h] = z_t;   [u_z, u_r, u_h] = h_{t−1}·U + b_h
    z = σ(x_z + u_z);  r = σ(x_r + u_r);  n = tanh(x_h + r ⊙ u_h);  h_t = z ⊙ h_{t−1} + (1 − z) ⊙ n

backward::

    dz = dh ⊙ (h_{t−1} − n);  dn = dh ⊙ (1 − z) ⊙ (1 − n²);  dr = dn ⊙ u_h
    d(x part) = [dz ⊙ z(1−z), dr ⊙ r(1−r), dn];   d(u part) = [dz ⊙ z(1−z), dr ⊙ r(1−r), dn ⊙ r]
    dh_{t−1} = d(u part)·Uᵀ + dh ⊙ z

**GRU**, ``reset_after=False`` (the original form)::

    z = σ(x_z + h_{t−1}·U_z);  r = σ(x_r + h_{t−1}·U_r);  n = tanh(x_h + (r ⊙ h_{t−1})·U_h)

backward: as above with dq = dn·U_hᵀ the gradient of q = r ⊙ h_{t−1}: dr = dq ⊙ h_{t−1}, and
``dh_{t−1} = [dz ⊙ z(1−z), dr ⊙ r(1−r)]·[U_z, U_r]ᵀ + dq ⊙ r + dh ⊙ z``; the gradient of U_h is
Σ_t (r ⊙ h_{t−1})ᵀ·dn_t (the cell keeps r ⊙ h_{t−1} per step).

With recurrent dropout, ``h_{t−1}`` in the products with U is the dropped-out ``h_{t−1} ⊙ m`` (one mask per
sequence), while the GRU's interpolation and the LSTM's cell state use the state itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro.backend import compiled, get_array_module, kernel, matmul, scatter_sums

#: Activations a SimpleRNN may use: their derivative follows from their output.
SIMPLE_ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")


def sigmoid_into(a: Any, out: Any) -> Any:
    """``out = σ(a)`` without overflow for any finite a (σ(a) = ½·tanh(a/2) + ½).

    Its error is absolute, an ulp of ½, not relative: a saturated gate's tiny value (σ(−30) ≈ 9e-14 in
    float64, σ(−12) in float32) keeps fewer digits than PyTorch's ``1/(1 + e^−a)`` (2e-4 relative at −30),
    which moves a cell's outputs by no more than that absolute amount (the standalone ``Sigmoid`` activation
    is accurate in relative terms).

    Args:
        a: the input.
        out: where to write (may be ``a``).

    Returns:
        ``out``.
    """
    xp = get_array_module(a)
    half = a.dtype.type(0.5)
    xp.multiply(a, half, out=out)
    xp.tanh(out, out=out)
    out *= half
    out += half
    return out


def _activate(name: str, a: Any, out: Any) -> Any:
    xp = get_array_module(a)
    if name == "tanh":
        return xp.tanh(a, out=out)
    if name == "sigmoid":
        return sigmoid_into(a, out)
    if name == "relu":
        return xp.maximum(a, a.dtype.type(0), out=out)
    xp.copyto(out, a)
    return out


def _activation_grad(name: str, y: Any, g: Any, out: Any) -> Any:
    """``out = g ⊙ φ'`` with φ' written through the output y = φ(a)."""
    xp = get_array_module(y, g)
    one = y.dtype.type(1)
    if name == "tanh":
        xp.multiply(y, y, out=out)
        xp.subtract(one, out, out=out)
        out *= g
    elif name == "sigmoid":
        xp.subtract(one, y, out=out)
        out *= y
        out *= g
    elif name == "relu":
        xp.multiply(g, y > 0, out=out)
    else:
        xp.copyto(out, g)
    return out


def _kernel_grad(hd: Any, du: Any, out: Any) -> None:
    """``out = Σ_t hd_tᵀ·du_t`` as one product over every step: ``(T·N, u)ᵀ·(T·N, k)``."""
    matmul(hd.reshape(-1, hd.shape[-1]).T, du.reshape(-1, du.shape[-1]), out=out)


class SimpleCell:
    """The SimpleRNN step (see the module docstring).

    Args:
        units: u.
        activation: one of :data:`SIMPLE_ACTIVATIONS`.
    """

    gates = 1
    n_states = 1
    #: Whether the recurrent projection's gradient differs from the input projection's (GRU).
    separate_recurrent_grad = False

    def __init__(self, units: int, activation: str = "tanh") -> None:
        self.units = units
        self.activation = activation

    def workspace(self, xp: Any, steps: int, n: int, dtype: Any) -> dict[str, Any]:
        """Per-step storage of the forward (nothing else is kept)."""
        return {}

    def recurrent_grads(self, hd: Any, dx: Any, du: Any, ws: dict, dU: Any, drb: Any) -> None:
        """Write dL/dU (and the recurrent bias's gradient, if any) from every step's gradients.

        Args:
            hd: ``h_{t−1}`` as it entered the product with U, every step ``(T, N, u)``.
            dx: the input projections' gradients ``(T, N, G·u)``.
            du: the recurrent projections' gradients (the same array unless ``separate_recurrent_grad``).
            ws: the forward's workspace.
            dU: ``(u, G·u)`` to write into.
            drb: the recurrent bias's gradient to write into, or ``None``.
        """
        _kernel_grad(hd, du, dU)

    def step(
        self, t: int, z: Any, hd: Any, states: list[Any], U: Any, rb: Any, ws: dict, out: list[Any]
    ) -> None:
        """One forward step: writes ``h_t`` into ``out[0]``.

        Args:
            t: the step (index into the workspace).
            z: the input projection of the step ``(N, u)`` (bias included); overwritten.
            hd: ``h_{t−1}`` as it enters the product with U (dropped out when recurrent dropout is on).
            states: ``[h_{t−1}]``.
            U: the recurrent kernel ``(u, u)``.
            rb: unused (no recurrent bias).
            ws: the workspace.
            out: ``[h_t]`` arrays to write into.
        """
        z += matmul(hd, U)
        _activate(self.activation, z, out[0])

    def step_backward(
        self,
        t: int,
        dh: Any,
        dstates: list[Any],
        hd: Any,
        states_prev: list[Any],
        states_new: list[Any],
        ws: dict,
        dx_out: Any,
        du_out: Any,
        U: Any,
    ) -> tuple[Any, list[Any], Any]:
        """One backward step.

        Args:
            t: the step.
            dh: dL/dh_t (from the outputs and from step t+1).
            dstates: dL/d(states other than h) at t (none for this cell).
            hd: ``h_{t−1}`` as it entered the product with U.
            states_prev: ``[h_{t−1}]``.
            states_new: ``[h_t]``.
            ws: the workspace of the forward.
            dx_out: ``(N, u)`` to write the gradient of the input projection into.
            du_out: ``(N, u)`` to write the gradient of the recurrent projection into (the same here).
            U: the recurrent kernel.

        Returns:
            ``(dL/dh_{t−1} by paths other than hd, dL/d(other previous states), dL/dhd by paths other than
            du·Uᵀ)``: ``(None, [], None)`` here.
        """
        _activation_grad(self.activation, states_new[0], dh, dx_out)
        if du_out is not dx_out:
            du_out[...] = dx_out
        return None, [], None


class LSTMCell:
    """The LSTM step (see the module docstring).

    Args:
        units: u.
    """

    gates = 4
    n_states = 2
    separate_recurrent_grad = False

    def __init__(self, units: int) -> None:
        self.units = units

    def workspace(self, xp: Any, steps: int, n: int, dtype: Any) -> dict[str, Any]:
        """The gate activations ``(T, N, 4u)`` and tanh(c_t) ``(T, N, u)`` of every step, and one step's
        recurrent product ``(N, 4u)``."""
        u = self.units
        return {
            "gates": xp.empty((steps, n, 4 * u), dtype),
            "tanh_c": xp.empty((steps, n, u), dtype),
            "product": xp.empty((n, 4 * u), dtype),
        }

    def recurrent_grads(self, hd: Any, dx: Any, du: Any, ws: dict, dU: Any, drb: Any) -> None:
        """dL/dU = Σ_t hd_tᵀ·da_t (see :meth:`SimpleCell.recurrent_grads`)."""
        _kernel_grad(hd, du, dU)

    def step(
        self, t: int, z: Any, hd: Any, states: list[Any], U: Any, rb: Any, ws: dict, out: list[Any]
    ) -> None:
        """One forward step: writes ``h_t`` and ``c_t`` into ``out``.

        Args:
            t: the step.
            z: the input projection ``(N, 4u)``; overwritten.
            hd: ``h_{t−1}`` as it enters the product with U.
            states: ``[h_{t−1}, c_{t−1}]``.
            U: ``(u, 4u)``.
            rb: unused.
            ws: the workspace.
            out: ``[h_t, c_t]``.
        """
        xp = get_array_module(z)
        u = self.units
        z += matmul(hd, U, out=ws["product"])
        a = ws["gates"][t]
        h, c = out
        tc = ws["tanh_c"][t]
        if compiled(z, a, states[1], h, c, tc):  # 5 passes instead of 16; the same operations
            half = z.dtype.type(0.5)
            _lstm_pre(z, a, half, u)  # σ's argument halved (σ(x) = ½·tanh(x/2) + ½)
            np.tanh(a, out=a)
            _lstm_cell(a, states[1], c, half, u)
            np.tanh(c, out=tc)
            np.multiply(a[:, 3 * u :], tc, out=h)
            return
        sigmoid_into(z[:, : 2 * u], a[:, : 2 * u])
        xp.tanh(z[:, 2 * u : 3 * u], out=a[:, 2 * u : 3 * u])
        sigmoid_into(z[:, 3 * u :], a[:, 3 * u :])
        i, f, g, o = a[:, :u], a[:, u : 2 * u], a[:, 2 * u : 3 * u], a[:, 3 * u :]
        xp.multiply(f, states[1], out=c)
        c += i * g
        xp.tanh(c, out=tc)
        xp.multiply(o, tc, out=h)

    def step_backward(
        self,
        t: int,
        dh: Any,
        dstates: list[Any],
        hd: Any,
        states_prev: list[Any],
        states_new: list[Any],
        ws: dict,
        dx_out: Any,
        du_out: Any,
        U: Any,
    ) -> tuple[Any, list[Any], Any]:
        """One backward step: writes dL/da into ``dx_out`` (the recurrent part is the same).

        Args:
            t: the step.
            dh: dL/dh_t.
            dstates: ``[dL/dc_t]`` from later steps (modified).
            hd: unused.
            states_prev: ``[h_{t−1}, c_{t−1}]``.
            states_new: ``[h_t, c_t]``.
            ws: the workspace.
            dx_out: ``(N, 4u)`` for dL/da.
            du_out: the same array (the recurrent and input projections share a).
            U: the recurrent kernel.

        Returns:
            ``(None, [dL/dc_{t−1}], None)``.
        """
        xp = get_array_module(dh)
        u = self.units
        one = dh.dtype.type(1)
        a = ws["gates"][t]
        tc = ws["tanh_c"][t]
        dc = dstates[0]
        d = dx_out
        if compiled(dh, a, tc, dc, d, states_prev[1]) and dh.flags.c_contiguous and dc.flags.c_contiguous:
            _lstm_backward(dh, a, tc, dc, states_prev[1], d, one, u)  # one pass, NumPy's operations
            return None, [dc], None
        i, f, g, o = a[:, :u], a[:, u : 2 * u], a[:, 2 * u : 3 * u], a[:, 3 * u :]
        di, df, dg, do = d[:, :u], d[:, u : 2 * u], d[:, 2 * u : 3 * u], d[:, 3 * u :]
        # do = dh·tanh(c) ⊙ o(1 − o)
        xp.multiply(dh, tc, out=do)
        xp.multiply(do, o, out=do)
        do *= one - o
        # dc += dh·o·(1 − tanh²(c))
        tmp = xp.multiply(tc, tc, out=dg)  # dg's slot as scratch
        xp.subtract(one, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp
        # di = dc·g·i(1 − i); dg = dc·i·(1 − g²); df = dc·c_{t−1}·f(1 − f)
        xp.multiply(dc, g, out=di)
        di *= i
        di *= one - i
        xp.multiply(dc, states_prev[1], out=df)
        df *= f
        df *= one - f
        xp.multiply(g, g, out=dg)
        xp.subtract(one, dg, out=dg)
        dg *= i
        dg *= dc
        dc *= f  # dL/dc_{t−1} through the cell state
        return None, [dc], None


class GRUCell:
    """The GRU step, ``reset_after`` True (PyTorch's form) or False (see the module docstring).

    Args:
        units: u.
        reset_after: apply the reset gate after the recurrent product.
    """

    gates = 3
    n_states = 1
    separate_recurrent_grad = True

    def __init__(self, units: int, reset_after: bool = True) -> None:
        self.units = units
        self.reset_after = reset_after

    def workspace(self, xp: Any, steps: int, n: int, dtype: Any) -> dict[str, Any]:
        """The gates z, r, n ``(T, N, 3u)`` and the recurrent candidate ``u_h`` (reset_after) or
        ``r ⊙ h_{t−1}`` (not) ``(T, N, u)`` of every step."""
        u = self.units
        return {
            "gates": xp.empty((steps, n, 3 * u), dtype),
            "cand": xp.empty((steps, n, u), dtype),
            "product": xp.empty((n, 3 * u), dtype),
        }

    def recurrent_grads(self, hd: Any, dx: Any, du: Any, ws: dict, dU: Any, drb: Any) -> None:
        """dL/dU and dL/db_h (reset_after): Σ_t hd_tᵀ·du_t and Σ du_t; without reset_after the n block of
        U takes Σ_t (r ⊙ hd)_tᵀ·dn_t (see :meth:`SimpleCell.recurrent_grads`)."""
        u = self.units
        if self.reset_after:
            _kernel_grad(hd, du, dU)
            if drb is not None:
                du.reshape(-1, du.shape[-1]).sum(axis=0, out=drb)
            return
        _kernel_grad(hd, du, dU[:, : 2 * u])
        _kernel_grad(ws["cand"], dx[:, :, 2 * u :], dU[:, 2 * u :])

    def step(
        self, t: int, z: Any, hd: Any, states: list[Any], U: Any, rb: Any, ws: dict, out: list[Any]
    ) -> None:
        """One forward step: writes ``h_t`` into ``out[0]``.

        Args:
            t: the step.
            z: the input projection ``(N, 3u)`` (input bias included); overwritten.
            hd: ``h_{t−1}`` as it enters the products with U.
            states: ``[h_{t−1}]``.
            U: ``(u, 3u)``.
            rb: the recurrent bias ``(3u,)`` (reset_after) or ``None``.
            ws: the workspace.
            out: ``[h_t]``.
        """
        xp = get_array_module(z)
        u = self.units
        a = ws["gates"][t]
        cand = ws["cand"][t]
        h_prev = states[0]
        if self.reset_after:
            hu = matmul(hd, U, out=ws["product"])
            if rb is not None:
                hu += rb
            if compiled(z, a, cand, h_prev, out[0]):  # 5 passes; the same operations
                half = z.dtype.type(0.5)
                _gru_pre(z, hu, a, half, u)
                zr = a[:, : 2 * u]
                np.tanh(zr, out=zr)
                _gru_candidate(z, hu, a, cand, half, u)
                n = a[:, 2 * u :]
                np.tanh(n, out=n)
                _gru_output(a, h_prev, out[0], u)
                return
            z[:, : 2 * u] += hu[:, : 2 * u]
            sigmoid_into(z[:, : 2 * u], a[:, : 2 * u])
            xp.copyto(cand, hu[:, 2 * u :])
            n_pre = z[:, 2 * u :]
            n_pre += a[:, u : 2 * u] * cand
        else:
            z[:, : 2 * u] += matmul(hd, U[:, : 2 * u])
            sigmoid_into(z[:, : 2 * u], a[:, : 2 * u])
            xp.multiply(a[:, u : 2 * u], hd, out=cand)
            n_pre = z[:, 2 * u :]
            n_pre += matmul(cand, U[:, 2 * u :])
        n = a[:, 2 * u :]
        xp.tanh(n_pre, out=n)
        zg = a[:, :u]
        h = out[0]
        # h_t = n + z·(h_{t−1} − n)
        xp.subtract(h_prev, n, out=h)
        h *= zg
        h += n

    def step_backward(
        self,
        t: int,
        dh: Any,
        dstates: list[Any],
        hd: Any,
        states_prev: list[Any],
        states_new: list[Any],
        ws: dict,
        dx_out: Any,
        du_out: Any,
        U: Any,
    ) -> tuple[Any, list[Any], Any]:
        """One backward step.

        Args:
            t: the step.
            dh: dL/dh_t.
            dstates: none for this cell.
            hd: ``h_{t−1}`` as it entered the products with U.
            states_prev: ``[h_{t−1}]``.
            states_new: ``[h_t]``.
            ws: the workspace.
            dx_out: ``(N, 3u)`` for the gradient of the input projection.
            du_out: ``(N, 3u)`` for the gradient of the recurrent projection (reset_after), else ``(N, 2u)``
                for the z and r part, and the cell writes the n part's gradient into ``dx_out``.
            U: the recurrent kernel.

        Returns:
            ``(dL/dh_{t−1} through the interpolation, [], dL/dhd through r ⊙ hd (without reset_after) or
            None)``; the gradient through the products with U is the layer's (``du_out·Uᵀ``).
        """
        xp = get_array_module(dh)
        u = self.units
        one = dh.dtype.type(1)
        a = ws["gates"][t]
        zg, r, n = a[:, :u], a[:, u : 2 * u], a[:, 2 * u :]
        cand = ws["cand"][t]
        h_prev = states_prev[0]
        if self.reset_after and compiled(dh, a, cand, h_prev, dx_out, du_out) and dh.flags.c_contiguous:
            direct = np.empty_like(dh)
            _gru_backward(dh, a, cand, h_prev, dx_out, du_out, direct, one, u)  # one pass
            return direct, [], None
        dz, dr, dn = dx_out[:, :u], dx_out[:, u : 2 * u], dx_out[:, 2 * u :]
        # dn = dh·(1 − z)·(1 − n²)
        xp.subtract(one, zg, out=dn)
        dn *= dh
        dz[...] = n  # scratch: 1 − n²
        dz *= n
        xp.subtract(one, dz, out=dz)
        dn *= dz
        # dz = dh·(h_{t−1} − n)·z(1 − z)
        xp.subtract(h_prev, n, out=dz)
        dz *= dh
        dz *= zg
        dz *= one - zg
        direct = dh * zg  # dL/dh_{t−1} through the interpolation
        if self.reset_after:
            # dr = dn·u_h·r(1 − r)
            xp.multiply(dn, cand, out=dr)
            dr *= r
            dr *= one - r
            du_out[:, : 2 * u] = dx_out[:, : 2 * u]
            xp.multiply(dn, r, out=du_out[:, 2 * u :])
            return direct, [], None
        # without reset_after: q = r ⊙ h_{t−1} feeds the product with U_h
        dq = matmul(dn, U[:, 2 * u :].T)
        xp.multiply(dq, hd, out=dr)
        dr *= r
        dr *= one - r
        du_out[...] = dx_out[:, : 2 * u]
        dq *= r
        return direct, [], dq  # the gradient of hd through q = r ⊙ hd (the layer applies the dropout mask)


# -- compiled kernels of the cells (numba kernel set): the elementwise work of a step in few passes, with
# the NumPy path's operations in its order, so the results are bitwise the same; the tanh stays NumPy's.
# Every inner loop runs over slices indexed from 0 (a gate's block is sliced out first): an index such as
# ``2 * u + j`` or a loop from ``2 * u`` keeps LLVM from vectorizing (numba must allow for a negative index).
@kernel
def _lstm_pre(z, a, half, u):
    """The gates' tanh arguments: a_i/2, a_f/2, a_c, a_o/2."""
    for r in range(z.shape[0]):
        zr, ar = z[r], a[r]
        z_if, a_if = zr[: 2 * u], ar[: 2 * u]
        z_g, a_g = zr[2 * u : 3 * u], ar[2 * u : 3 * u]
        z_o, a_o = zr[3 * u : 4 * u], ar[3 * u : 4 * u]
        for j in range(2 * u):
            a_if[j] = z_if[j] * half
        for j in range(u):
            a_g[j] = z_g[j]
        for j in range(u):
            a_o[j] = z_o[j] * half


@kernel
def _lstm_cell(a, c_prev, c, half, u):
    """σ from the tanh of the halved argument (½·tanh + ½), then c_t = f·c_{t−1} + i·g."""
    for r in range(a.shape[0]):
        ar, cp, cr = a[r], c_prev[r], c[r]
        a_if, a_i, a_f = ar[: 2 * u], ar[:u], ar[u : 2 * u]
        a_g, a_o = ar[2 * u : 3 * u], ar[3 * u : 4 * u]
        for j in range(2 * u):
            a_if[j] = a_if[j] * half + half
        for j in range(u):
            a_o[j] = a_o[j] * half + half
        for j in range(u):
            cr[j] = a_f[j] * cp[j] + a_i[j] * a_g[j]


@kernel
def _lstm_backward(dh, a, tc, dc, c_prev, d, one, u):
    """The LSTM step's gradients (see :meth:`LSTMCell.step_backward`), in one pass."""
    for r in range(dh.shape[0]):
        ar, dr, dcr, tcr, dhr, cpr = a[r], d[r], dc[r], tc[r], dh[r], c_prev[r]
        a_i, a_f, a_g, a_o = ar[:u], ar[u : 2 * u], ar[2 * u : 3 * u], ar[3 * u : 4 * u]
        d_i, d_f, d_g, d_o = dr[:u], dr[u : 2 * u], dr[2 * u : 3 * u], dr[3 * u : 4 * u]
        for j in range(u):
            i, f, g, o = a_i[j], a_f[j], a_g[j], a_o[j]
            t, h_grad = tcr[j], dhr[j]
            d_o[j] = ((h_grad * t) * o) * (one - o)
            dcj = dcr[j] + ((one - t * t) * o) * h_grad
            d_i[j] = ((dcj * g) * i) * (one - i)
            d_f[j] = ((dcj * cpr[j]) * f) * (one - f)
            d_g[j] = ((one - g * g) * i) * dcj
            dcr[j] = dcj * f


@kernel
def _gru_pre(z, hu, a, half, u):
    """The z and r gates' tanh arguments: (x + u)/2."""
    for r in range(z.shape[0]):
        zr, hr, ar = z[r], hu[r], a[r]
        for j in range(2 * u):
            ar[j] = (zr[j] + hr[j]) * half


@kernel
def _gru_candidate(z, hu, a, cand, half, u):
    """σ of z and r, the recurrent candidate u_h, and n's argument x_h + r·u_h."""
    for row in range(z.shape[0]):
        ar, zr, hr, cr = a[row], z[row], hu[row], cand[row]
        a_r, a_n, z_n, h_n = ar[u : 2 * u], ar[2 * u : 3 * u], zr[2 * u : 3 * u], hr[2 * u : 3 * u]
        for j in range(2 * u):
            ar[j] = ar[j] * half + half
        for j in range(u):
            cr[j] = h_n[j]
            a_n[j] = z_n[j] + a_r[j] * cr[j]


@kernel
def _gru_output(a, h_prev, h, u):
    """h_t = (h_{t−1} − n)·z + n."""
    for r in range(a.shape[0]):
        ar, hp, hr = a[r], h_prev[r], h[r]
        a_z, a_n = ar[:u], ar[2 * u : 3 * u]
        for j in range(u):
            n = a_n[j]
            hr[j] = (hp[j] - n) * a_z[j] + n


@kernel
def _gru_backward(dh, a, cand, h_prev, d, du, direct, one, u):
    """The GRU step's gradients with ``reset_after`` (see :meth:`GRUCell.step_backward`), in one pass."""
    for row in range(dh.shape[0]):
        ar, dr, ur = a[row], d[row], du[row]
        hpr, cdr, dhr, dir_ = h_prev[row], cand[row], dh[row], direct[row]
        a_z, a_r, a_n = ar[:u], ar[u : 2 * u], ar[2 * u : 3 * u]
        d_z, d_r, d_n = dr[:u], dr[u : 2 * u], dr[2 * u : 3 * u]
        u_z, u_r, u_n = ur[:u], ur[u : 2 * u], ur[2 * u : 3 * u]
        for j in range(u):
            zg, r, n, g = a_z[j], a_r[j], a_n[j], dhr[j]
            dn = ((one - zg) * g) * (one - n * n)
            dz = (((hpr[j] - n) * g) * zg) * (one - zg)
            drr = ((dn * cdr[j]) * r) * (one - r)
            d_z[j], d_r[j], d_n[j] = dz, drr, dn
            u_z[j], u_r[j], u_n[j] = dz, drr, dn * r
            dir_[j] = g * zg


# -- Embedding ---------------------------------------------------------------------------------------------
def embedding(ids: Any, table: Any) -> Any:
    """Look up the rows of ``table`` for integer ``ids``.

    Args:
        ids: integer array of any shape ``(N, ...)``, each in ``[0, input_dim)`` (checked by the caller);
            booleans are ids 0 and 1.
        table: the embeddings ``(input_dim, output_dim)``.

    Shape:
        ``(N, ...)`` → ``(N, ..., output_dim)``.

    Returns:
        A new array of the table's dtype.
    """
    return table[_integer_ids(ids)]


def _integer_ids(ids: Any) -> Any:
    """Boolean ids as the integers 0 and 1 (indexing with booleans would select rows by a mask)."""
    return ids.astype(np.intp) if ids.dtype.kind == "b" else ids


def embedding_backward(grad: Any, ids: Any, out: Any) -> Any:
    """dL/d(table): the rows of ``grad`` added up per id — a deterministic scatter-add.

    The ids are sorted (a stable sort) and each id's rows are summed in that order with one segmented
    reduction, so the result does not depend on threads or atomics and is bitwise reproducible on every
    device. On a device nothing is read back (the number of distinct ids stays there): the same sums, in the
    same order, as NumPy's.

    Args:
        grad: dL/d(output) ``(N, ..., output_dim)``.
        ids: the ids of the forward pass.
        out: ``(input_dim, output_dim)``, written (rows of ids that did not occur get 0).

    Returns:
        ``out``.
    """
    xp = get_array_module(grad, out)
    flat = _integer_ids(ids).reshape(-1)
    g = grad.reshape(-1, grad.shape[-1])
    out[...] = 0
    if flat.size == 0:
        return out
    if xp is not np:  # on a device: nothing read back (see scatter_sums), the same sums in the same order
        out[...] = scatter_sums(flat, g, out.shape[0])
        return out
    order = np.argsort(flat, kind="stable")
    sorted_ids = flat[order]
    starts_mask = np.empty(sorted_ids.shape, dtype=bool)
    starts_mask[0] = True
    np.not_equal(sorted_ids[1:], sorted_ids[:-1], out=starts_mask[1:])
    starts = np.flatnonzero(starts_mask)
    out[sorted_ids[starts]] = np.add.reduceat(g[order], starts, axis=0)
    return out
