"""Activation functions (the classes live in :mod:`neuro.layers.activation`; this module is their home in
the public API): ``Linear``, ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``, ``Softmax``, ``GELU``, ``ELU``,
``SELU``, ``Swish`` (``"silu"``), ``Softplus``, ``Softsign``, ``HardSigmoid``, ``Exponential``, ``Mish`` and
``get``."""

from neuro.layers.activation import (
    ELU,
    GELU,
    SELU,
    Activation,
    Exponential,
    HardSigmoid,
    LeakyReLU,
    Linear,
    Mish,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Softsign,
    Swish,
    Tanh,
    get,
)

__all__ = [
    "ELU",
    "GELU",
    "SELU",
    "Activation",
    "Exponential",
    "HardSigmoid",
    "LeakyReLU",
    "Linear",
    "Mish",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Softsign",
    "Swish",
    "Tanh",
    "get",
]
