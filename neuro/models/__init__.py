"""Models: :class:`Model`, a graph of layers called on :func:`neuro.Input` tensors, and :class:`Network`,
the chain of layers built from a list or with ``add`` (also called :class:`Sequential`, Keras's name); both
train with ``fit`` (:mod:`neuro.training`) and return a :class:`History`."""

from neuro.models.model import Model
from neuro.models.network import Network, Sequential
from neuro.training.history import History

__all__ = ["History", "Model", "Network", "Sequential"]
