"""neuro: a readable deep learning library on NumPy, with every gradient written by hand.

Quickstart::

    import neuro
    from neuro import Network, Dense, Adam

    net = Network((64,), "softmax_crossentropy", Adam(1e-3), seed=0)
    net.add(Dense(64, "relu")).add(Dense(10, "softmax"))
    net.fit(x_train, y_train, batch_size=32, epochs=10)
    print(net.evaluate(x_test, y_test))
"""

import os as _os
import sys as _sys

if "numpy" not in _sys.modules:
    # OpenBLAS's idle workers otherwise spin for ~0.1 s after every matrix product, taking the cores that
    # neuro's elementwise threads (and any other library in the process) need; ask them to sleep at once.
    # Only possible before NumPy loads OpenBLAS; a value the user set wins.
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from neuro import (
    activations,
    backend,
    callbacks,
    data,
    functional,
    head,
    initializers,
    io,
    losses,
    metrics,
    optimizers,
    registry,
    regularizers,
    schedules,
)
from neuro._version import __version__ as __version__
from neuro.activations import (
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
)
from neuro.backend import get_dtype, set_dtype, to_numpy
from neuro.errors import ModelFileError
from neuro.gradcheck import GradientReport, check_gradients
from neuro.graph import Functional
from neuro.io import load as load_model  # Keras's name: keras.models.load_model(path)
from neuro.layers import *  # noqa: F403  (the layer classes; see neuro.layers.__all__)
from neuro.layers import __all__ as _layer_names
from neuro.losses import (
    BinaryCrossEntropy,
    CategoricalHinge,
    CosineSimilarity,
    CrossEntropy,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    Loss,
    MeanAbsoluteError,
    MeanSquaredError,
    Poisson,
    SampleLoss,
    SoftmaxCrossEntropy,
    SquaredHinge,
)
from neuro.models import History, Model, Network, Sequential
from neuro.optimizers import SGD, Adadelta, Adam, AdamW, Optimizer, RMSprop
from neuro.registry import register
from neuro.regularizers import L1, L2

__all__ = [
    "Activation",
    "ELU",
    "Exponential",
    "GELU",
    "HardSigmoid",
    "Mish",
    "SELU",
    "Softplus",
    "Softsign",
    "Swish",
    "Adadelta",
    "Adam",
    "AdamW",
    "BinaryCrossEntropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "CrossEntropy",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "Poisson",
    "SquaredHinge",
    "Functional",
    "GradientReport",
    "History",
    "L1",
    "L2",
    "ModelFileError",
    "LeakyReLU",
    "Linear",
    "Loss",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Model",
    "Network",
    "Sequential",
    "Optimizer",
    "RMSprop",
    "ReLU",
    "SGD",
    "Sigmoid",
    "Softmax",
    "SampleLoss",
    "SoftmaxCrossEntropy",
    "Tanh",
    "activations",
    "backend",
    "callbacks",
    "check_gradients",
    "load_model",
    "data",
    "functional",
    "head",
    "io",
    "register",
    "registry",
    "schedules",
    "to_numpy",
    "get_dtype",
    "initializers",
    "losses",
    "metrics",
    "optimizers",
    "regularizers",
    "set_dtype",
    *(
        n
        for n in _layer_names
        if n not in ("Activation", "LeakyReLU", "Linear", "ReLU", "Sigmoid", "Softmax", "Tanh")
    ),
]
