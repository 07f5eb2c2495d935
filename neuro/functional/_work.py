"""Buffers a layer keeps between training calls (its ``work`` dict), shared by the convolution's paths."""

from __future__ import annotations

from typing import Any

from neuro.backend import get_array_module


def work_buffer(
    work: dict, name: str, shape: tuple[int, ...], dtype: Any, xp: Any, zeros: bool = False
) -> Any:
    """A buffer kept in ``work`` between calls of one shape: refilling it costs no allocation."""
    buf = work.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dtype or get_array_module(buf) is not xp:
        buf = work[name] = xp.zeros(shape, dtype) if zeros else xp.empty(shape, dtype)
    return buf


def piece_work(work: dict, full: bool, slot: int = 0) -> dict:
    """The buffers of whole pieces (``full``) or of a batch's last, smaller piece, which keeps its own (its
    buffers change shape only when the remainder does), built by the thread of ``slot`` in
    :func:`neuro.backend.parallel_blocks`. Keyed by neither the sample count nor the batch: batches of many
    sizes keep two sets per thread, not one per size."""
    key = ("piece", full, slot)
    if key not in work:
        work[key] = {}
    return work[key]
