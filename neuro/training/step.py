"""One training step of a model: forward and backward through the graph, the losses of every output, the
regularization, and the guarded update.

This module owns the arithmetic of a step; the loop that feeds it batches is :mod:`neuro.training.loop`,
the structure it walks is the model's :class:`~neuro.graph.Graph`, and each output's loss is adapted by its
head (:mod:`neuro.head`). A data-parallel run (:mod:`neuro.distributed`) replaces only the middle of the
step: it runs :func:`forward_backward` on its part of the batch and reduces the results over the ranks.

The loss of a step is ``Σ_k w_k·S_k/D_k + P``: for each output k its loss sum ``S_k`` over the batch, its
normaliser ``D_k`` (the number of items: samples, or the positions of a sequence output; or the total of
their weights) and its weight ``w_k``
(``loss_weights``), plus the regularization penalty P. Its gradient is what the executor computes from each
head's ``w_k·dL_k/d(out)``, plus the penalty's gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro import backend
from neuro.optimizers import Optimizer


class Terms:
    """The loss figures of one batch: per output the sum ``S_k`` and normaliser ``D_k``, and the batch size.

    All stay on the device until they are read (once per progress refresh or epoch).

    Args:
        sums: ``S_k`` per output (0-d device arrays).
        denoms: ``D_k`` per output (Python numbers or 0-d device arrays).
        count: the number of samples of the batch.
    """

    __slots__ = ("count", "denoms", "input_grads", "masks", "penalty", "sums", "weightless", "weights")

    def __init__(self, sums: list[Any], denoms: list[Any], count: int) -> None:
        self.sums, self.denoms, self.count = sums, denoms, count
        #: the regularization penalty of the step's weights (set by :func:`batch_loss`)
        self.penalty: Any = 0.0
        #: dL/d(input) per input, when the graph was asked for them
        self.input_grads: list[Any] | None = None
        #: each output's mask of valid steps (``None`` for an output without one)
        self.masks: list[Any] = [None] * len(sums)
        #: each output's item weights (sample weights times the mask) when the batch had sample weights
        self.weights: list[Any] | None = None
        #: per output, whether every sample weighed 0 (its sum and normaliser are then 0), when weighted
        self.weightless: list[bool] | None = None


class SampleWeights:
    """The sample weights of one output for one batch: the device array, and whether they are all 0 (known
    on the host before the batch is moved, so that the step never reads the device to find out).

    Args:
        array: the weights on the model's device, ``(N,)`` or ``(N, T)``.
        zero: every weight is 0: the output adds nothing to the loss and no gradient (Keras's zero loss).
    """

    __slots__ = ("array", "zero")

    def __init__(self, array: Any, zero: bool) -> None:
        self.array, self.zero = array, zero


def device_weights(model: Any, ws: list[Any] | None) -> list[SampleWeights | None] | None:
    """Host sample weights of a batch (one array or ``None`` per output) moved to the model's device.

    Args:
        model: the model.
        ws: the weights, or ``None``.

    Returns:
        One :class:`SampleWeights` (or ``None``) per output, or ``None``.
    """
    if ws is None:
        return None
    return [
        None if w is None else SampleWeights(model.to_device([w], "sample_weight")[0], not bool(np.any(w)))
        for w in ws
    ]


def forward_backward(
    model: Any,
    xs: list[Any],
    ys: list[Any],
    scales: list[Any] | None = None,
    weights: list[SampleWeights | None] | None = None,
) -> tuple[list[Any], Terms]:
    """Training forward and backward of one device batch: fills every leaf layer's ``grads``.

    Args:
        model: the model.
        xs: one device batch per input.
        ys: one device batch of targets per output.
        scales: the factor of each output's gradient (``w_k`` by default; a distributed run passes
            ``w_k·D_k/D_global``).
        weights: the sample weights of each output (``None`` for none); an output whose weights are all 0
            adds 0 to the loss sum and to the normaliser, and no gradient.

    Returns:
        ``(predictions per output, terms)``.
    """
    heads = model.training_heads()
    graph = model.graph
    modes = model.head_modes(heads)
    model.clear_grads()
    masks: list[Any] = []
    outs, tape = graph.forward(xs, True, model._device_rng, modes, model.dtype, out_masks=masks)
    preds, sums, denoms, grads, items = [], [], [], [], []
    loss_weights = model.loss_weights_list
    for k, (head, out, y, m) in enumerate(zip(heads, outs, ys, masks, strict=True)):
        sw = None if weights is None else weights[k]
        w = sample_weights(m, out, None if sw is None else sw.array, head.loss.categorical)
        pred = head.predictions(out)
        items.append(w)
        if sw is not None and sw.zero:  # nothing of this output weighs: no loss, no gradient (as Keras)
            preds.append(pred)
            sums.append(model.xp.zeros((), dtype=out.dtype))
            denoms.append(0)
            grads.append(model.xp.zeros_like(out))
            continue
        total, denom = head.terms(out, y, w)
        g = head.gradient(out, pred, y, w)
        scale = loss_weights[k] if scales is None else scales[k]
        if scale != 1.0:
            g = g * g.dtype.type(scale) if not backend.is_array(scale) else g * scale.astype(g.dtype)
        preds.append(pred)
        sums.append(total)
        denoms.append(denom)
        grads.append(g)
    input_grads = graph.backward(tape, grads, modes)
    add_regularizer_grads(model)
    terms = Terms(sums, denoms, len(xs[0]))
    terms.input_grads = input_grads
    terms.masks = masks
    if weights is not None:
        terms.weights = items
        terms.weightless = [sw is not None and sw.zero for sw in weights]
    return preds, terms


def sample_weights(mask: Any, out: Any, weights: Any = None, categorical: bool = False) -> Any:
    """The weights a loss and the metrics give the items of an output: its sample weights times its mask of
    valid steps, as numbers of the output's dtype, or ``None`` without either.

    Args:
        mask: ``(N, T)`` booleans or ``None``.
        out: the output they belong to.
        weights: the batch's sample weights on the device, ``(N,)`` or ``(N, T)``, or ``None``.
        categorical: whether the output's loss is categorical: its items are then every position of the
            output but the class axis, and weights ``(N,)`` are spread over them (metrics count them too).

    Returns:
        The weights, or ``None``.
    """
    if weights is None:
        return None if mask is None else mask.astype(out.dtype)
    w = weights if weights.dtype == out.dtype else weights.astype(out.dtype)
    shape = tuple(mask.shape) if mask is not None else (tuple(out.shape[:-1]) if categorical else None)
    if shape is not None and tuple(w.shape) != shape:
        xp = backend.get_array_module(w)
        w = xp.ascontiguousarray(xp.broadcast_to(w.reshape(w.shape + (1,) * (len(shape) - w.ndim)), shape))
    return w if mask is None else w * mask.astype(out.dtype)


def batch_loss(model: Any, terms: Terms) -> Any:
    """The loss of a batch on the device: ``Σ_k w_k·S_k/D_k`` plus the penalty (an output whose items all
    weigh 0 in the batch, ``D_k = 0``, adds nothing).

    The penalty of the current weights is also kept in ``terms.penalty``.

    Args:
        model: the model.
        terms: the batch's terms.

    Returns:
        A 0-d device array (or a Python float for a model without outputs' arrays).
    """
    loss: Any = 0.0
    skip = terms.weightless or [False] * len(terms.sums)
    for w, s, d, none in zip(model.loss_weights_list, terms.sums, terms.denoms, skip, strict=True):
        if none:
            continue  # every sample weighs 0: this output adds nothing to the batch's loss
        q = divide(s, d)
        loss = q if w == 1.0 and isinstance(loss, float) and loss == 0.0 else loss + w * q
    if model.has_penalty():
        terms.penalty = penalty(model)
        loss = loss + terms.penalty
    return loss


def divide(total: Any, denom: Any) -> Any:
    """total / denom on the device, 0 for a zero denominator: a batch in which nothing of an output weighs
    (class weights of 0, every step masked) adds nothing to the loss, as in Keras (its gradient is 0 too).

    Args:
        total: a sum (a 0-d device array or a number; 0 where the denominator is).
        denom: its normaliser (a number or a 0-d device array).

    Returns:
        The quotient.
    """
    if backend.is_array(denom):
        return total / (denom + (denom == 0))  # no host read
    return total / denom if denom else total * 0


def regularized(model: Any) -> list[tuple[Any, Any, Any]]:
    """``(param, grad, regularizer)`` for every regularized parameter of the trainable layers.

    The model's regularizer acts on every layer's ``regularizable`` params (kernels); a layer's own
    ``kernel_regularizer`` (when it has one) replaces it for that layer.

    Args:
        model: the model.

    Returns:
        The triples, in layer order.
    """
    reg = model.regularizer
    out = []
    for layer in model.trainable_layers():
        own = getattr(layer, "regularizers", None) or {}
        for k in layer.regularizable:
            r = own.get(k, reg)
            if r is not None:
                out.append((layer.params[k], layer.grads[k], r))
        for k, r in own.items():
            if k not in layer.regularizable and r is not None:
                out.append((layer.params[k], layer.grads[k], r))
    return out


def penalty(model: Any) -> Any:
    """The regularization penalty P of the model's current weights (on the device; 0.0 without any).

    Args:
        model: the model.

    Returns:
        P.
    """
    terms = [r.penalty(p) for p, _, r in regularized(model)]
    if not terms:
        return 0.0
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def add_regularizer_grads(model: Any) -> None:
    """Add dP/dw into the gradient of every regularized parameter.

    Args:
        model: the model.
    """
    for p, g, r in regularized(model):
        r.add_gradient(p, g)


def snapshot_buffers(layers: list[Any]) -> list[dict[str, Any]] | None:
    """Copies of the layers' buffers (running statistics), to put back when a step fails.

    Args:
        layers: the leaf layers.

    Returns:
        One dict per layer, or ``None`` when no layer has buffers.
    """
    if not any(layer.buffers for layer in layers):
        return None
    return [{k: v.copy() for k, v in layer.buffers.items()} for layer in layers]


def restore_buffers(layers: list[Any], saved: list[dict[str, Any]] | None) -> None:
    """Put back what :func:`snapshot_buffers` copied.

    Args:
        layers: the leaf layers given to :func:`snapshot_buffers`.
        saved: its result.
    """
    if saved is None:
        return
    for layer, bufs in zip(layers, saved, strict=True):
        for k, v in bufs.items():
            layer.buffers[k][...] = v


def _buffer_probe(layers: list[Any], xp: Any) -> Any:
    """1.0 when every buffer value is finite, else NaN (buffers are small: each checked exactly)."""
    checks = [xp.isfinite(v).all() for layer in layers for v in layer.buffers.values()]
    if not checks:
        return xp.ones((), dtype=np.float64)
    return xp.where(xp.stack(checks).all(), 1.0, np.nan).astype(np.float64)


def _all_finite(arrays: list[Any], xp: Any) -> bool:
    """Exact check that every element is finite (one read; used only to explain a failed step)."""
    if not arrays:
        return True
    return bool(backend.to_numpy(xp.stack([xp.isfinite(a).all() for a in arrays]).all()))


def _stage(model: Any, params: list[Any], grads: list[Any]) -> Any:
    """The optimizer's stage of a training step: in place (no copy at the commit; see
    :meth:`~neuro.optimizers.Optimizer.stage`) unless the optimizer's own ``stage`` does not take it, or a
    model nested in this one could predict on its own lock meanwhile and see weights not yet accepted."""
    opt = model.optimizer
    if type(opt).stage is not Optimizer.stage or model.graph.nests_models:
        return opt.stage(params, grads)
    return opt.stage(params, grads, in_place=True)


def train_step(
    model: Any, xs: list[Any], ys: list[Any], weights: list[SampleWeights | None] | None = None
) -> tuple[list[Any], Terms]:
    """One guarded training step on a checked device batch: forward, backward, update.

    Everything that can go wrong numerically is found with one read from the device: the loss, the sum
    of the staged update, and the finiteness of the buffers. If any is not finite, nothing is changed
    (parameters, buffers and optimizer state end bitwise as they were: new weights an in-place stage wrote
    are put back before this returns) and FloatingPointError is raised.
    Any other exception inside the step (a KeyboardInterrupt included, wherever it comes) leaves parameters,
    buffers, optimizer state and step count all as they were before the step, or, once the update is being
    committed, all as after it: an exception (a Ctrl-C) in the commit finishes the commit, which is
    idempotent, before it is raised.

    Args:
        model: the model.
        xs: one device batch per input.
        ys: one device batch of targets per output.
        weights: the batch's sample weights per output (see :func:`device_weights`), or ``None``; not in a
            distributed run.

    Returns:
        ``(predictions per output, terms)`` (the terms are the global batch's in a distributed run).

    Raises:
        FloatingPointError: when the loss, the gradients, the buffers or the update are not finite.
    """
    xp = model.xp
    layers = model.leaf_layers()
    # a failing step overflows on purpose: the guard reports it, NumPy's warnings would only repeat it
    with model._lock, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        model.sync_optimizer_state()  # layers frozen or unfrozen since the last step: state re-keyed
        saved = snapshot_buffers(layers)
        committing = False
        try:
            if model._dist is None:
                preds, terms = forward_backward(model, xs, ys, weights=weights)
            else:  # data parallel: the ranks' gradients, loss terms and buffers combined
                preds, terms = model._dist.forward_backward(xs, ys, saved)
            loss = batch_loss(model, terms)
            params, grads = model.params, model.grads
            probe = _stage(model, params, grads)
            if probe is None:  # a model without trainable parameters
                probe = xp.zeros((), dtype=np.float64)
            flags = xp.isfinite(
                xp.stack(
                    [xp.asarray(loss, dtype=np.float64), probe.astype(np.float64), _buffer_probe(layers, xp)]
                )
            )
            ok = backend.to_numpy(flags)  # the one read of the step
            if not ok.all() and not (ok[0] and ok[2] and model.optimizer.staged_finite()):
                if not ok[0]:
                    raise FloatingPointError(f"loss became {float(backend.to_numpy(loss))}")
                if not ok[2]:
                    raise FloatingPointError("the batch made a buffer (running statistics) non-finite")
                if not _all_finite(grads, xp):
                    raise FloatingPointError("gradients became non-finite")
                raise FloatingPointError("the update made the weights or the optimizer state non-finite")
            committing = True  # from here on the step is applied whole
            model.optimizer.commit(params)
        except BaseException:
            if not committing:  # whatever stopped the step, it changes nothing
                while True:  # both idempotent: a second Ctrl-C starts them again
                    try:
                        discard = getattr(model.optimizer, "discard", None)  # (an optimizer of one's own)
                        if discard is not None:
                            discard()  # the weights a step staged in place get their old values back
                        restore_buffers(layers, saved)
                        break
                    except KeyboardInterrupt:
                        continue
                raise
            while True:  # the commit had begun: finish it (it is idempotent), a second Ctrl-C or not
                try:
                    model.optimizer.commit(params)
                    break
                except KeyboardInterrupt:
                    continue
            raise
    return preds, terms
