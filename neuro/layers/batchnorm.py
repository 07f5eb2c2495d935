"""Batch normalization over the last axis (features after Dense, channels after Conv2D or Conv1D)."""

from __future__ import annotations

import numbers
from typing import Any

from neuro import functional as F
from neuro import initializers, registry
from neuro.functional.normalization import batch_norm_inference_backward
from neuro.layers.base import Layer


@registry.register(aliases=("BatchNormalization",))
class BatchNorm(Layer):
    """Batch normalization ``y = gamma · (x − mean) / sqrt(var + epsilon) + beta``, per feature.

    Statistics are taken per feature of the last axis, over every other axis: over N for ``(N, F)``
    inputs (after Dense), over N and T for sequences ``(N, T, C)`` (after Conv1D, as PyTorch's
    ``BatchNorm1d`` on ``(N, C, T)``) and over N, H, W for ``(N, H, W, C)`` inputs (after Conv2D).
    Paper: Ioffe & Szegedy, 2015.

    In training the layer normalizes with the batch mean and the *biased* batch variance, and updates the
    running averages ``running = momentum · running + (1 − momentum) · batch``; the running variance is fed
    the *unbiased* batch variance (``var · m / (m − 1)``, m values per feature, as PyTorch does; with m = 1
    the biased one, 0). In inference it normalizes with the running averages and changes nothing.
    PyTorch's ``momentum`` is ``1 − momentum`` here.

    A frozen batch norm (``trainable = False``) runs in inference mode also in training, as Keras's does: it
    normalizes with the running averages, leaves them unchanged, and its backward is that of the inference
    function (the statistics are constants), so fine-tuning on top of a frozen model keeps the statistics it
    was trained with.

    Args:
        momentum: weight of the old running value, in [0, 1] (default 0.99).
        epsilon: positive number added to the variance (default 1e-5).
        name: optional layer name.

    Shape:
        - input: ``(N, ..., F)`` of any rank (``(N, F)``, ``(N, T, C)``, ``(N, H, W, C)``); output: same
          shape.
        - params ``gamma`` (ones) and ``beta`` (zeros), buffers ``running_mean`` (zeros) and
          ``running_var`` (ones): ``(F,)`` or ``(C,)``.

    Raises:
        ValueError: for a ``momentum`` outside [0, 1], an ``epsilon`` that is not a positive number, or an
            input without an axis beyond the batch.

    Gradient: with g = dL/dy, x̂ = (x − mean) / sqrt(var + epsilon) and m values per feature (sums over those
    m values): dL/dgamma = Σ g·x̂, dL/dbeta = Σ g, and
    dL/dx = gamma / (sqrt(var + epsilon) · m) · (m·g − Σ g − x̂ · Σ g·x̂). Frozen (running statistics, which
    are constants): dL/dx = gamma · g / sqrt(running_var + epsilon), and x̂ uses the running statistics.

    In a distributed ``fit`` with ``sync_batchnorm`` the model hands ``forward`` a ``reduce`` function, and
    the statistics and the two sums of dL/dx are those of the global batch (see :mod:`neuro.distributed`).
    """

    #: ``forward`` takes a ``reduce=`` function (synchronised statistics over processes).
    takes_reduce = True

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-5, name: str | None = None) -> None:
        super().__init__(name=name)
        if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be a number in [0, 1], got {momentum!r}")
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, numbers.Real)
            or not 0 < epsilon < float("inf")
        ):
            raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) < 1 or any(d < 1 for d in input_shape):
            raise ValueError(
                "BatchNorm expects input_shape (..., features) with at least one axis and positive sizes, "
                f"got input_shape={input_shape}"
            )
        return input_shape

    def param_specs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        f = (input_shape[-1],)
        return {"gamma": (f, initializers.Ones()), "beta": (f, initializers.Zeros())}

    def buffer_specs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        f = (input_shape[-1],)
        return {"running_mean": (f, initializers.Zeros()), "running_var": (f, initializers.Ones())}

    def forward(self, x: Any, training: bool = False, rng: Any = None, reduce: Any = None) -> tuple[Any, Any]:
        """Normalize ``x``: with the batch's statistics in training (updating the running averages), with
        the running averages in inference and when the layer is frozen (``trainable = False``).

        Args:
            x: the batch.
            training: training mode.
            rng: unused.
            reduce: sums a float64 array over processes (synchronised statistics); ``None``: this batch.

        Returns:
            ``(y, ctx)``; ctx is ``None`` in inference.
        """
        gamma, beta = self.params["gamma"], self.params["beta"]
        mean_buf, var_buf = self.buffers["running_mean"], self.buffers["running_var"]
        if not training:
            return F.batch_norm_inference(x, gamma, beta, mean_buf, var_buf, self.epsilon), None
        if not self.trainable:  # frozen: inference mode, as Keras; the backward needs only x
            return F.batch_norm_inference(x, gamma, beta, mean_buf, var_buf, self.epsilon), ("frozen", x)
        y, mean, var, ctx = F.batch_norm_train(x, gamma, beta, self.epsilon, reduce)
        m = ctx[2]  # values per feature (of the global batch with reduce)
        mom = self.momentum
        mean_buf *= mom
        mean_buf += (1.0 - mom) * mean
        var_buf *= mom
        var_buf += (1.0 - mom) * (m / (m - 1) if m > 1 else 1.0) * var  # unbiased
        return y, ctx

    def backward(self, grad: Any, ctx: Any) -> Any:
        ctx = self._require(ctx)
        if isinstance(ctx[0], str):  # ("frozen", x): the inference function's backward
            with self.accumulate() as g:
                return batch_norm_inference_backward(
                    grad, ctx[1], self.params["gamma"], self.buffers["running_mean"],
                    self.buffers["running_var"], self.epsilon, g["gamma"], g["beta"], self.need_input_grad,
                )  # fmt: skip
        with self.accumulate() as g:
            return F.batch_norm_backward(
                grad, ctx, self.params["gamma"], g["gamma"], g["beta"], self.need_input_grad
            )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}
