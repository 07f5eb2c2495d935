"""What ``fit`` returns: the per-epoch figures of a training run, and a plot of them."""

from __future__ import annotations

from typing import Any


class History:
    """What :meth:`Model.fit <neuro.models.Model.fit>` returns.

    Attributes:
        history: per-epoch values by name, as Keras names them: ``"loss"`` and each metric; for a model with
            several outputs also ``"<output>_loss"`` and ``"<output>_<metric>"``; and ``"val_"``-prefixed
            ones when validation data was given.
        epoch: the epoch numbers (0-based).
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        """Record one epoch.

        Args:
            epoch: the 0-based epoch number.
            logs: its values by name.
        """
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def plot(self, path: str | Any) -> None:
        """Write a PNG of the learning curves: one panel per quantity (the loss and each metric), with the
        training values and, when there are any, the validation values.

        Args:
            path: the PNG file to write.

        Raises:
            ImportError: when matplotlib (the ``plot`` extra) is missing.
            ValueError: when the history is empty.
        """
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError(
                "History.plot needs matplotlib: pip install 'neuro[plot]' (or pip install matplotlib)"
            ) from exc
        names = [k for k in self.history if not k.startswith("val_") and k != "learning_rate"]
        names = names or [k for k in self.history if not k.startswith("val_")]
        if not names:
            raise ValueError("the history is empty: nothing to plot")
        epochs = [e + 1 for e in self.epoch]
        fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
        marker = "o" if len(epochs) <= 50 else None  # a dot per epoch only while they can be told apart
        for ax, name in zip(axes[0], names, strict=True):
            ax.plot(epochs, self.history[name], marker=marker, label="training")
            if f"val_{name}" in self.history:
                ax.plot(epochs, self.history[f"val_{name}"], marker=marker, label="validation")
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
        plt.close(fig)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"
