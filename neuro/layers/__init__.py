"""Layers: one per file, thin holders of parameters over :mod:`neuro.functional`, all following the
protocol of :class:`neuro.layers.base.Layer`."""

from neuro.layers.activated import ActivatedLayer
from neuro.layers.activation import Activation, LeakyReLU, Linear, ReLU, Sigmoid, Softmax, Tanh
from neuro.layers.base import Layer
from neuro.layers.batchnorm import BatchNorm
from neuro.layers.bidirectional import Bidirectional
from neuro.layers.conv1d import Conv1D
from neuro.layers.conv2d import Conv2D
from neuro.layers.dense import Dense
from neuro.layers.dropout import Dropout
from neuro.layers.embedding import Embedding, Masking
from neuro.layers.flatten import Flatten
from neuro.layers.input_layer import Input, InputLayer
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

# Keras's longer names of the same classes (a file names the class itself)
MaxPooling2D = MaxPool2D
AveragePooling2D = AvgPool2D
MaxPooling1D = MaxPool1D
AveragePooling1D = AvgPool1D
GlobalMaxPooling1D = GlobalMaxPool1D
GlobalMaxPool2D = GlobalMaxPooling2D
BatchNormalization = BatchNorm

__all__ = [
    "ActivatedLayer",
    "Activation",
    "Add",
    "Average",
    "AvgPool1D",
    "Bidirectional",
    "Conv1D",
    "Embedding",
    "GlobalAveragePooling1D",
    "GlobalMaxPool1D",
    "LayerNormalization",
    "MaxPool1D",
    "Masking",
    "Concatenate",
    "Input",
    "InputLayer",
    "Maximum",
    "Minimum",
    "Multiply",
    "Subtract",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Reshape",
    "MaxPooling2D",
    "AveragePooling2D",
    "MaxPooling1D",
    "AveragePooling1D",
    "GlobalMaxPooling1D",
    "BatchNormalization",
    "GRU",
    "LSTM",
    "RNN",
    "SimpleRNN",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "GlobalMaxPool2D",
    "Layer",
    "LeakyReLU",
    "Linear",
    "MaxPool2D",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
