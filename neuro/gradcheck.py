"""Finite-difference checking of hand-written gradients.

:func:`check_gradients` compares the analytic gradients of a layer, an activation, a loss or a whole network
with central differences computed in float64, and reports the worst relative error per array. Write a new
layer, then check its backward with one call::

    report = neuro.check_gradients(MyLayer(8), x)
    assert report.max_error < 1e-6, report
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuro import backend
from neuro.layers.base import Layer
from neuro.layers.embedding import Masking
from neuro.losses import Loss


@dataclass
class GradientReport:
    """Result of :func:`check_gradients`.

    Attributes:
        errors: worst relative error per checked array, ``max|analytic − numeric| / max(max|analytic|,
            max|numeric|, 1e-8)`` (about 1e-10 for correct code). Where that exceeds 1e-6 (gradients near
            0, a large loss), the central differences are taken again with twice the step, and only the part
            of each entry's difference beyond the rounding counts: three times the change between the two
            differences (their noise), and 1e-8 of the largest gradient of the same layer's weights, or of
            the inputs (the backward's own rounding, for a gradient of exactly 0 computed as a sum of
            cancelling terms). A doubled or sign-flipped gradient that the differences resolve is still
            reported in full; an array whose gradients the differences cannot resolve (their noise as
            large as the gradients: a loss of 1e10) is NaN, not checked. Where the backward has branches
            (with and without the input's gradient), the worse of them.
    """

    errors: dict[str, float] = field(default_factory=dict)

    @property
    def max_error(self) -> float:
        """The largest error over all arrays (inf when a gradient was not finite, NaN if an error is NaN)."""
        return float(np.max(list(self.errors.values()))) if self.errors else 0.0

    def __str__(self) -> str:
        rows = ", ".join(f"{k}: {v:.2e}" for k, v in self.errors.items())
        return f"GradientReport(max_error={self.max_error:.2e}; {rows})"


def check_gradients(
    obj: Any,
    x: Any,
    y: Any = None,
    *,
    eps: float = 1e-6,
    max_entries: int | None = 400,
    seed: int = 0,
) -> GradientReport:
    """Compare analytic gradients with central finite differences, in float64.

    Args:
        obj: a :class:`~neuro.layers.base.Layer` (activations included), a :class:`~neuro.losses.Loss` or a
            model (:class:`~neuro.models.Model` or :class:`~neuro.models.Network`).
        x: input batch (for a loss: the predictions ``y_pred``; for a layer or model with several inputs, a
            list of batches).
        y: targets (losses and networks).
        eps: finite-difference step.
        max_entries: check at most this many randomly chosen entries of each array (``None``: all).
        seed: seeds the random projection (layers) and the choice of entries.

    For a layer the scalar objective is ``Σ_k Σ forward(x, training=True)_k · R_k`` with fixed random R_k
    (one per output), so ``backward(R)`` is checked against it (every input's and parameter's gradient; a
    nested model's layers' parameters). For a loss, dL/dŷ is checked, and for a loss that fuses with an
    activation dL/dz as well. For a model, every parameter's gradient of the training loss (regularization
    included) is checked, and the gradient of every float input (the whole backward pass, merges and initial
    states included; in the units of the data given, through an ``input_scaler``). The parameters'
    gradients are checked from both branches of a backward: without the input's gradient (what ``fit``
    runs for a model's first layer) and with it. Layer parameters are checked on float64 copies and left as
    they were, as are buffers, random generators (rewound before each evaluation, so dropout masks repeat),
    the optimizer's state and an unbuilt layer (a copy is built; an unbuilt nested model is built in place).
    Entries of an input in the padding steps of a ``Masking`` layer that reads it are not checked: the loss
    jumps there (moving one entry off ``mask_value`` makes the step valid). Central differences also
    straddle kinks: a ReLU input at exactly 0, tied maxima of a pooling window, ``hard_sigmoid`` at ±3, a
    hinge at its margin report a large error for a correct gradient; check at points away from them
    (random data, non-zero biases). Their rounding is systematic for inputs with a large offset (1e6 ± 100
    into a BatchNorm): check such a model on centred data.

    Returns:
        A :class:`GradientReport`; an array whose analytic or numeric gradient is not finite (NaN or inf)
        has the error inf.

    Raises:
        ValueError: for an ``eps`` that is not a finite number > 0, a ``max_entries`` that is not a whole
            number >= 1 (or ``None``), a ``seed`` that is not a whole number >= 0; for a gradient of another
            shape than its array, or none at all (a backward returning ``None``); and when there is nothing
            to check (an empty batch, no float input and no parameter).
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)) or not (
        np.isfinite(eps) and eps > 0
    ):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    if max_entries is not None and (
        isinstance(max_entries, bool) or not isinstance(max_entries, (int, np.integer)) or max_entries < 1
    ):
        raise ValueError(f"max_entries must be a whole number >= 1 or None, got {max_entries!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    for arr in _arrays(x):
        if len(getattr(arr, "shape", ())) and arr.shape[0] == 0:
            raise ValueError(f"x must hold at least one sample, got shape {tuple(arr.shape)}")
    report = _check(obj, x, y, float(eps), max_entries, np.random.default_rng(seed))
    if not report.errors:
        raise ValueError(
            "check_gradients found nothing to check: no float input and no parameter with entries "
            f"(x of shape {_shapes(x)})"
        )
    return report


def _arrays(x: Any) -> list[Any]:
    if isinstance(x, dict):
        return [a for v in x.values() for a in _arrays(v)]
    if isinstance(x, (list, tuple)):
        return [a for v in x for a in _arrays(v)]
    return [x]


def _shapes(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _shapes(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_shapes(v) for v in x]
    return tuple(np.shape(x)) if not hasattr(x, "shape") else tuple(x.shape)


def _check(obj: Any, x: Any, y: Any, eps: float, max_entries: Any, rng: Any) -> GradientReport:
    with backend.dtype_scope("float64"):
        # a contiguous float64 copy on the object's device: perturbing entries must reach what the
        # objective reads (integer inputs, token ids, stay as they are)
        xp = _device_of(obj, x if not isinstance(x, (list, tuple, dict)) else None)
        x = _float64_copy(x, xp)
        if hasattr(obj, "graph") and hasattr(obj, "compute_gradients"):
            return _check_network(obj, x, y, eps, max_entries, rng)
        if isinstance(obj, Loss):
            return _check_loss(obj, x, y, eps, max_entries, rng)
        if isinstance(obj, Layer):
            return _check_layer(obj, x, eps, max_entries, rng)
    raise TypeError(f"obj must be a Layer, a Loss or a Network, got {type(obj).__name__}")


# -- helpers ------------------------------------------------------------------------------------------------
def _float64_copy(x: Any, xp: Any) -> Any:
    if isinstance(x, dict):
        return {k: _float64_copy(v, xp) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_float64_copy(v, xp) for v in x]
    host = np.asarray(backend.to_numpy(x))
    dt = host.dtype if host.dtype.kind in "iub" else np.float64
    return backend.to_device(np.array(host, dtype=dt, order="C"), xp)


def _device_of(obj: Any, x: Any) -> Any:
    arrays = [*getattr(obj, "params", {}).values()] if isinstance(obj, Layer) else []
    if hasattr(obj, "xp"):
        return obj.xp
    return backend.get_array_module(*arrays[:1]) if arrays else backend.get_array_module(x)


def _relative_error(analytic: Any, numeric: np.ndarray) -> float:
    a = np.asarray(backend.to_numpy(analytic), dtype=np.float64)
    if not (np.isfinite(a).all() and np.isfinite(numeric).all()):
        return math.inf  # a NaN or an infinity is never right (max() would skip a NaN)
    diff = float(np.max(np.abs(a - numeric))) if a.size else 0.0
    return diff / max(_scale(a, numeric), 1e-8)


def _rounding(arrays: list[Any]) -> float:
    """What a backward's own rounding leaves in a gradient of exactly 0: 1e-8 of the largest of ``arrays``
    (the gradients of one layer's weights, or of the inputs; ``None`` skipped)."""
    sizes = [float(np.max(np.abs(backend.to_numpy(a)), initial=0.0)) for a in arrays if a is not None]
    finite = [v for v in sizes if math.isfinite(v)]
    return 1e-8 * max(finite, default=0.0)


def _scale(a: np.ndarray, numeric: np.ndarray) -> float:
    return max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(numeric), initial=0.0)))


def _beyond_noise(
    a: np.ndarray, fine: np.ndarray, coarse: np.ndarray, size: float, eps: float, floor: float
) -> float:
    """The part of ``|a − fine|`` that rounding does not explain, relative to the gradients' size: the
    finite differences' noise of each entry is measured as three times the difference between its central
    differences with steps ``eps`` and ``2·eps`` (at least 4·ε·size/eps, ε the float64 epsilon), and the
    analytic gradient's own rounding is ``floor`` (1e-8 of the largest gradient of the check: a gradient of
    exactly 0 that a backward computes as a sum of cancelling terms)."""
    noise = np.maximum(3.0 * np.abs(fine - coarse), 4.0 * float(np.finfo(np.float64).eps) * size / eps)
    gradient = float(np.max(np.abs(a), initial=0.0))
    if gradient > floor and float(np.max(noise, initial=0.0)) >= gradient:
        return math.nan  # the differences' noise is as large as the gradients: they cannot be judged
    noise = np.maximum(noise, floor)
    beyond = float(np.max(np.maximum(np.abs(a - fine) - noise, 0.0), initial=0.0))
    return beyond / max(_scale(a, fine), 1e-8)


def _numeric(f: Any, arr: Any, eps: float, idx: np.ndarray) -> tuple[np.ndarray, float]:
    """Central differences of scalar ``f()`` with respect to the entries ``idx`` of ``arr`` (in place),
    divided by the step actually taken (``old ± eps`` rounds for a large entry), and the largest absolute
    value ``f`` took."""
    flat = arr.reshape(-1)
    host = backend.to_numpy(flat)
    out = np.zeros(len(idx))
    size = 0.0
    for j, i in enumerate(idx):
        old = float(host[i])
        h = max(eps, 2.0 * float(np.spacing(abs(old))))  # an entry of 1e12 does not move by 1e-6
        up_x, down_x = old + h, old - h
        flat[int(i)] = up_x
        up = f()
        flat[int(i)] = down_x
        down = f()
        flat[int(i)] = old
        out[j] = (up - down) / (up_x - down_x)
        size = max(size, abs(up), abs(down))
    return out, size


def _reads_ids(graph: Any, tensor: Any) -> bool:
    """Whether an Embedding (also in a nested model) reads ``tensor``: its values are ids, not a variable."""
    from neuro.graph import Functional
    from neuro.layers.embedding import Embedding

    for node in graph.nodes:
        for k, t in enumerate(node.inbound):
            if t is not tensor:
                continue
            if isinstance(node.layer, Embedding):
                return True
            inner = node.layer.graph if isinstance(node.layer, Functional) else None
            if inner is not None and _reads_ids(inner, inner.inputs[k]):
                return True
    return False


def _masked_entries(graph: Any, tensor: Any, x: Any) -> np.ndarray | None:
    """The entries of input ``x`` (the value of ``tensor``) in the padding steps of each
    :class:`~neuro.layers.Masking` that reads it, also inside a nested model that reads it (``None`` when
    there are none): see :func:`_padding`."""
    from neuro.graph import Functional

    skip = None
    for node in graph.nodes:
        for k, t in enumerate(node.inbound):
            if t is not tensor:
                continue
            padding = None
            if isinstance(node.layer, Masking):
                padding = _padding(node.layer, x)
            elif isinstance(node.layer, Functional) and k < len(node.layer.graph.inputs):
                padding = _masked_entries(node.layer.graph, node.layer.graph.inputs[k], x)
            if padding is not None:
                skip = padding if skip is None else skip | padding
    return skip


def _padding(layer: Masking, x: Any) -> np.ndarray:
    """The entries of ``x`` in the steps ``layer`` masks: there the function jumps (moving one entry off
    ``mask_value`` makes the step valid), so a finite difference measures the jump, not the gradient (0 there:
    the layer zeroes the step)."""
    padding = ~backend.to_numpy(layer.compute_mask(x, None))
    return np.broadcast_to(padding.reshape(padding.shape + (1,) * (x.ndim - padding.ndim)), x.shape)


def _entries(size: int, max_entries: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_entries is None or size <= max_entries:
        return np.arange(size)
    return np.sort(rng.choice(size, max_entries, replace=False))


def _compare(
    name: str,
    f: Any,
    arr: Any,
    analytic: Any,
    eps: float,
    max_entries: Any,
    rng: Any,
    report: GradientReport,
    skip: np.ndarray | None = None,
    floor: float = 0.0,
) -> None:
    analytics = analytic if isinstance(analytic, list) else [analytic]  # one per branch of the backward
    for analytic in analytics:
        if analytic is None:
            raise ValueError(
                f"the backward pass gave no gradient for {name} (None), expected shape {tuple(arr.shape)}"
            )
        if tuple(analytic.shape) != tuple(arr.shape):
            raise ValueError(
                f"the gradient of {name} has shape {tuple(analytic.shape)}, expected {tuple(arr.shape)} "
                "(its array's)"
            )
    if int(np.prod(arr.shape)) == 0:
        return  # no entry to check
    idx = _entries(int(np.prod(arr.shape)), max_entries, rng)
    if skip is not None:  # entries where the function has a jump (a padding step of a Masking)
        idx = idx[~skip.reshape(-1)[idx]]
        if not len(idx):
            return
    numeric, size = _numeric(f, arr, eps, idx)
    coarse = None
    errors = []
    for analytic in analytics:
        a = np.asarray(backend.to_numpy(analytic), dtype=np.float64).reshape(-1)[idx]
        error = _relative_error(a, numeric)
        if 1e-6 < error < math.inf:  # tiny gradients, or a large objective: is it the differences' noise?
            if coarse is None:
                coarse, _ = _numeric(f, arr, 2 * eps, idx)
            error = _beyond_noise(a, numeric, coarse, size, eps, floor)
        errors.append(error)
    report.errors[name] = float(np.max(errors))  # a NaN from either branch stays (Python's max drops some)


def _generators(layers: list[Layer]) -> list[np.random.Generator]:
    """The host generators random numbers come from (a layer's own, if it keeps one)."""
    gens = []
    for layer in layers:
        for v in vars(layer).values():
            if isinstance(v, np.random.Generator) and all(v is not g for g in gens):
                gens.append(v)
    return gens


class _Float64Params:
    """Swap the layers' params, grads and buffers for float64 copies; restore them on exit."""

    def __init__(self, layers: list[Layer]) -> None:
        self.layers = layers
        self.saved: list[tuple[dict, dict, dict]] = []

    def __enter__(self) -> None:
        for layer in self.layers:
            self.saved.append((layer.params, layer.grads, layer.buffers))
            layer.params = {k: v.astype(np.float64, copy=True) for k, v in layer.params.items()}
            layer.grads = {k: backend.get_array_module(v).zeros_like(v) for k, v in layer.params.items()}
            layer.buffers = {k: v.astype(np.float64, copy=True) for k, v in layer.buffers.items()}

    def __exit__(self, *exc: object) -> None:
        for layer, (p, g, b) in zip(self.layers, self.saved, strict=True):
            layer.params, layer.grads, layer.buffers = p, g, b


class _Rewind:
    """Restore the state of random generators before each evaluation."""

    def __init__(self, gens: list[np.random.Generator]) -> None:
        self.gens = gens
        self.states = [g.bit_generator.state for g in gens]

    def __call__(self) -> None:
        for g, s in zip(self.gens, self.states, strict=True):
            g.bit_generator.state = s


def _check_layer(layer: Layer, x: Any, eps: float, max_entries: Any, rng: Any) -> GradientReport:
    from neuro.graph import Functional, leaf_layers

    many = isinstance(x, (list, tuple))
    xs = list(x) if many else [x]
    xp = backend.get_array_module(*xs)
    if not layer.built:
        if not isinstance(layer, Functional):  # a copy: the caller's stays unbuilt, free for any model
            layer = copy.deepcopy(layer)  # (a nested model is built in place: its copies share its nodes,
            # and one rebuilt from its config would lose subclasses and settings it does not save)
        shapes = [tuple(a.shape[1:]) for a in xs]
        layer.build(shapes if many else shapes[0], np.random.default_rng(0), np.float64, xp)
    # a nested model's weights are its layers' (it has none of its own)
    leaves = leaf_layers(layer.graph.layers) if isinstance(layer, Functional) else [layer]
    report = GradientReport()
    need = layer.need_input_grad
    host = np.random.default_rng(int(rng.integers(2**32)))
    device_rng = backend.DeviceRNG(xp, host)
    rewind = _Rewind([host, *_generators(leaves)])
    arg = xs if many else xs[0]
    try:
        with _Float64Params(leaves):
            saved = [{k: v.copy() for k, v in leaf.buffers.items()} for leaf in leaves]

            def restore() -> None:  # generators and buffers (running statistics) as before each evaluation
                rewind()
                for leaf, bufs in zip(leaves, saved, strict=True):
                    for k, v in bufs.items():
                        leaf.buffers[k][...] = v

            restore()
            y, _ = layer.forward(arg, training=True, rng=device_rng)
            ys = list(y) if isinstance(y, tuple) else [y]
            rs = [backend.to_device(rng.standard_normal(tuple(v.shape)), xp) for v in ys]
            seed = tuple(rs) if isinstance(y, tuple) else rs[0]

            def objective() -> float:
                restore()
                out, _ = layer.forward(arg, training=True, rng=device_rng)
                outs = list(out) if isinstance(out, tuple) else [out]
                return float(
                    sum(float(backend.to_numpy((o * r).sum())) for o, r in zip(outs, rs, strict=True))
                )

            # the weights' gradients of both branches of the backward: without the input's gradient (a
            # model's first layer, in fit) and with it
            branches = []
            for wanted in (False, True):
                layer.need_input_grad = wanted
                restore()
                _, ctx = layer.forward(arg, training=True, rng=device_rng)
                for leaf in leaves:
                    leaf.clear_grads()
                dx = layer.backward(seed, ctx)
                branches.append([{k: g.copy() for k, g in leaf.grads.items()} for leaf in leaves])
            dxs = list(dx) if many else [dx]
            floor = _rounding(dxs)
            for i, (a, d) in enumerate(zip(xs, dxs, strict=True)):
                if np.dtype(a.dtype).kind != "f":
                    continue  # token ids have no gradient
                name = "input" if not many else f"input{i}"
                skip = _padding(layer, a) if isinstance(layer, Masking) else None
                _compare(name, objective, a, d, eps, max_entries, rng, report, skip, floor)
            for j, leaf in enumerate(leaves):
                if leaf is not layer and not leaf.trainable:
                    continue  # a frozen layer's weights are constants
                floor = _rounding([g for br in branches for g in br[j].values()])
                for k, p in leaf.params.items():
                    name = k if leaf is layer else f"{leaf.name}.{k}"
                    grads = [br[j][k] for br in branches]
                    _compare(name, objective, p, grads, eps, max_entries, rng, report, None, floor)
            restore()
    finally:
        layer.need_input_grad = need
        rewind()
    return report


def _check_loss(loss: Loss, y_pred: Any, y: Any, eps: float, max_entries: Any, rng: Any) -> GradientReport:
    if y is None:
        raise ValueError("y must be given to check a loss")
    y = backend.to_device(y, backend.get_array_module(y_pred))
    if y.dtype.kind == "f":
        y = y.astype(np.float64)
    report = GradientReport()
    if not loss.takes_logits:
        g = loss.backward(y_pred, y)
        f = lambda: loss.forward(y_pred, y)  # noqa: E731
        _compare("y_pred", f, y_pred, g, eps, max_entries, rng, report, None, _rounding([g]))
    if loss.fused_activation is not None:
        z = y_pred.copy()
        g = loss.backward_logits(z, y)
        f = lambda: loss.forward_logits(z, y)  # noqa: E731
        _compare("logits", f, z, g, eps, max_entries, rng, report, None, _rounding([g]))
    return report


def _check_network(net: Any, x: Any, y: Any, eps: float, max_entries: Any, rng: Any) -> GradientReport:
    if y is None:
        raise ValueError("y must be given to check a network")
    report = GradientReport()
    layers = net.leaf_layers()
    rewind = _Rewind([net.rng, *_generators(layers)])
    if net.device == "cupy":
        raise ValueError("check_gradients runs on NumPy or the strict device; move the network with net.to()")
    x = _float_inputs(net, x)
    # compute_gradients re-keys the optimizer's state to the parameters (float64 copies here): put it back
    opt = net.optimizer
    saved_opt = None if opt is None else dict(vars(opt))
    saved_keys = getattr(net, "_slot_keys", None)
    dtype, net.dtype = net.dtype, np.float64
    try:
        return _check_network_float64(net, x, y, eps, max_entries, rng, report, rewind)
    finally:
        net.dtype = dtype
        rewind()
        if opt is not None:
            vars(opt).clear()
            vars(opt).update(saved_opt)
            net._slot_keys = saved_keys


def _float_inputs(net: Any, x: Any) -> Any:
    """Integer data given for a float input (pixels as uint8) as float64, so that its gradient is checked."""
    kinds = {name: t.dtype for name, t in zip(net.input_names, net.graph.inputs, strict=True)}

    def cast(a: Any, name: str) -> Any:
        return a.astype(np.float64) if kinds.get(name) == "float" and a.dtype.kind in "iub" else a

    if isinstance(x, dict):
        return {k: cast(v, k) for k, v in x.items()}
    if isinstance(x, list):
        return [cast(v, name) for v, name in zip(x, net.input_names, strict=False)]
    return cast(x, net.input_names[0])


def _check_network_float64(
    net: Any, x: Any, y: Any, eps: float, max_entries: Any, rng: Any, report: GradientReport, rewind: Any
) -> GradientReport:
    layers = net.leaf_layers()
    with _Float64Params(layers):
        saved = [{k: v.copy() for k, v in layer.buffers.items()} for layer in layers]

        def restore() -> None:
            rewind()
            for layer, bufs in zip(layers, saved, strict=True):
                for k, v in bufs.items():
                    layer.buffers[k][...] = v

        def objective() -> float:
            restore()
            return net.compute_gradients(x, y)

        # the weights' gradients of both branches: as fit computes them (no input gradients: a first layer
        # skips its input's) and with the input gradients
        restore()
        net.compute_gradients(x, y)
        fitted = [{k: g.copy() for k, g in layer.grads.items()} for layer in layers]
        restore()
        _, input_grads = net.compute_gradients(x, y, input_gradients=True)
        grads = [{k: g.copy() for k, g in layer.grads.items()} for layer in layers]
        for i, (layer, lf, lg) in enumerate(zip(layers, fitted, grads, strict=True)):
            if not layer.trainable:  # a frozen layer's weights are constants of the loss
                continue
            floor = _rounding([*lf.values(), *lg.values()])
            for k, p in layer.params.items():
                name = f"{i}.{layer.name}.{k}"
                _compare(name, objective, p, [lf[k], lg[k]], eps, max_entries, rng, report, None, floor)
        # the inputs' gradients too: the whole backward, merges and initial states included
        xs = [x[k] for k in net.input_names] if isinstance(x, dict) else (x if isinstance(x, list) else [x])
        floor = _rounding(list(input_grads))
        for name, t, xi, gi in zip(net.input_names, net.graph.inputs, xs, input_grads, strict=True):
            if xi.dtype.kind != "f" or (gi is None and _reads_ids(net.graph, t)):
                continue  # token ids (read by an Embedding) have no gradient
            skip = _masked_entries(net.graph, t, xi)
            _compare(f"input {name}", objective, xi, gi, eps, max_entries, rng, report, skip, floor)
        restore()
    return report
