"""Layers: one per file, all following the protocol of :class:`neuro.layers.base.Layer`."""

from neuro.layers.base import ActivatedLayer, Layer
from neuro.layers.dense import Dense

__all__ = ["ActivatedLayer", "Dense", "Layer"]
