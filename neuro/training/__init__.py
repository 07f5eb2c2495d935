"""Training: the fit and evaluation loops (:mod:`neuro.training.loop`), one guarded step
(:mod:`neuro.training.step`), the data adapters (:mod:`neuro.training.adapters`) and the
:class:`History` a fit returns."""

from neuro.training.history import History

__all__ = ["History"]
