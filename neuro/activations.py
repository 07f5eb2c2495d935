"""Activation functions (the classes live in :mod:`neuro.layers.activation`; this module is their home in
the public API): ``Linear``, ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``, ``Softmax`` and ``get``."""

from neuro.layers.activation import Activation, LeakyReLU, Linear, ReLU, Sigmoid, Softmax, Tanh, get

__all__ = ["Activation", "LeakyReLU", "Linear", "ReLU", "Sigmoid", "Softmax", "Tanh", "get"]
