"""One training step of a model: forward and backward through the graph, the losses of every output, the
regularization, and the guarded update.

This module owns the arithmetic of a step; the loop that feeds it batches is :mod:`neuro.training.loop`,
the structure it walks is the model's :class:`~neuro.graph.Graph`, and each output's loss is adapted by its
head (:mod:`neuro.head`). A data-parallel run (:mod:`neuro.distributed`) replaces only the middle of the
step: it runs :func:`forward_backward` on its part of the batch and reduces the results over the ranks.

The loss of a step is ``Σ_k w_k·S_k/D_k + P``: for each output k its loss sum ``S_k`` over the batch, its
normaliser ``D_k`` (the number of samples, or the class-weight total) and its weight ``w_k``
(``loss_weights``), plus the regularization penalty P. Its gradient is what the executor computes from each
head's ``w_k·dL_k/d(out)``, plus the penalty's gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro import backend


class Terms:
    """The loss figures of one batch: per output the sum ``S_k`` and normaliser ``D_k``, and the batch size.

    All stay on the device until they are read (once per progress refresh or epoch).

    Args:
        sums: ``S_k`` per output (0-d device arrays).
        denoms: ``D_k`` per output (Python numbers or 0-d device arrays).
        count: the number of samples of the batch.
    """

    __slots__ = ("count", "denoms", "input_grads", "masks", "penalty", "sums")

    def __init__(self, sums: list[Any], denoms: list[Any], count: int) -> None:
        self.sums, self.denoms, self.count = sums, denoms, count
        #: the regularization penalty of the step's weights (set by :func:`batch_loss`)
        self.penalty: Any = 0.0
        #: dL/d(input) per input, when the graph was asked for them
        self.input_grads: list[Any] | None = None
        #: each output's mask of valid steps (``None`` for an output without one)
        self.masks: list[Any] = [None] * len(sums)


def forward_backward(
    model: Any, xs: list[Any], ys: list[Any], scales: list[Any] | None = None
) -> tuple[list[Any], Terms]:
    """Training forward and backward of one device batch: fills every leaf layer's ``grads``.

    Args:
        model: the model.
        xs: one device batch per input.
        ys: one device batch of targets per output.
        scales: the factor of each output's gradient (``w_k`` by default; a distributed run passes
            ``w_k·D_k/D_global``).

    Returns:
        ``(predictions per output, terms)``.
    """
    heads = model.training_heads()
    graph = model.graph
    modes = model.head_modes(heads)
    model.clear_grads()
    masks: list[Any] = []
    outs, tape = graph.forward(xs, True, model._device_rng, modes, model.dtype, out_masks=masks)
    preds, sums, denoms, grads = [], [], [], []
    weights = model.loss_weights_list
    for k, (head, out, y, m) in enumerate(zip(heads, outs, ys, masks, strict=True)):
        w = sample_weights(m, out)
        pred = head.predictions(out)
        total, denom = head.terms(out, y, w)
        g = head.gradient(out, pred, y, w)
        scale = weights[k] if scales is None else scales[k]
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
    return preds, terms


def sample_weights(mask: Any, out: Any) -> Any:
    """The weights a loss and the metrics give the items of an output: its mask of valid steps as numbers
    of the output's dtype, or ``None`` without one.

    Args:
        mask: ``(N, T)`` booleans or ``None``.
        out: the output the mask belongs to.

    Returns:
        The weights, or ``None``.
    """
    return None if mask is None else mask.astype(out.dtype)


def batch_loss(model: Any, terms: Terms) -> Any:
    """The loss of a batch on the device: ``Σ_k w_k·S_k/D_k`` plus the penalty (NaN where a D_k is 0).

    The penalty of the current weights is also kept in ``terms.penalty``.

    Args:
        model: the model.
        terms: the batch's terms.

    Returns:
        A 0-d device array (or a Python float for a model without outputs' arrays).
    """
    loss: Any = 0.0
    for w, s, d in zip(model.loss_weights_list, terms.sums, terms.denoms, strict=True):
        q = divide(s, d)
        loss = q if w == 1.0 and isinstance(loss, float) and loss == 0.0 else loss + w * q
    if model.has_penalty():
        terms.penalty = penalty(model)
        loss = loss + terms.penalty
    return loss


def divide(total: Any, denom: Any) -> Any:
    """total / denom on the device (NaN for a zero denominator, as PyTorch gives for all-zero weights).

    Args:
        total: a sum (a 0-d device array or a number).
        denom: its normaliser (a number or a 0-d device array).

    Returns:
        The quotient.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if backend.is_array(denom):
            return total / denom
        return total / denom if denom else total * np.nan


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


def train_step(model: Any, xs: list[Any], ys: list[Any]) -> tuple[list[Any], Terms]:
    """One guarded training step on a checked device batch: forward, backward, update.

    Everything that can go wrong numerically is found with one read from the device: the loss, the sum
    of the staged update, and the finiteness of the buffers. If any is not finite, nothing is changed
    (parameters, buffers and optimizer state stay bitwise as they were) and FloatingPointError is raised.
    Any other exception inside the step (a KeyboardInterrupt included, wherever it comes) leaves parameters,
    buffers, optimizer state and step count all as they were before the step, or, once the update is being
    committed, all as after it: an exception (a Ctrl-C) in the commit finishes the commit, which is
    idempotent, before it is raised.

    Args:
        model: the model.
        xs: one device batch per input.
        ys: one device batch of targets per output.

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
                preds, terms = forward_backward(model, xs, ys)
            else:  # data parallel: the ranks' gradients, loss terms and buffers combined
                preds, terms = model._dist.forward_backward(xs, ys, saved)
            loss = batch_loss(model, terms)
            params, grads = model.params, model.grads
            probe = model.optimizer.stage(params, grads)
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
            if not committing:
                restore_buffers(layers, saved)  # whatever stopped the step, it changed nothing
                raise
            while True:  # the commit had begun: finish it (it is idempotent), a second Ctrl-C or not
                try:
                    model.optimizer.commit(params)
                    break
                except KeyboardInterrupt:
                    continue
            raise
    return preds, terms
