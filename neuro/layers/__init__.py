"""Layers: one per file, all following the protocol of :class:`neuro.layers.base.Layer`."""

from neuro.layers.base import ActivatedLayer, Layer
from neuro.layers.batchnorm import BatchNorm
from neuro.layers.conv2d import Conv2D
from neuro.layers.dense import Dense
from neuro.layers.dropout import Dropout
from neuro.layers.flatten import Flatten
from neuro.layers.maxpool2d import MaxPool2D

__all__ = [
    "ActivatedLayer",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "MaxPool2D",
]
