"""Layers that start a sequence: :class:`Embedding` (token ids to vectors) and :class:`Masking`; both can
start a mask of the valid steps that flows along the graph to the layers that use it."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from neuro import functional as F
from neuro import initializers, registry
from neuro._validation import positive_int
from neuro.backend import get_array_module
from neuro.layers.base import Layer, is_shape


def check_ids(ids: Any, input_dim: int, where: str = "Embedding") -> None:
    """Raise unless ``ids`` are integers in ``[0, input_dim)`` (reads NumPy arrays only; a model checks
    device inputs on the host before moving them, since a GPU would wrap an id out of range silently).

    Args:
        ids: the ids.
        input_dim: the size of the vocabulary.
        where: what to name in the message.

    Raises:
        TypeError: for ids that are not integers.
        ValueError: for ids out of range (the message names the largest and the smallest).
    """
    kind = np.dtype(ids.dtype).kind
    if kind not in "iub":
        raise TypeError(f"{where} takes integer token ids, got dtype {ids.dtype}; give int32 or int64 arrays")
    if get_array_module(ids) is not np or ids.size == 0:
        return
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= input_dim:
        raise ValueError(
            f"{where} takes token ids in [0, {input_dim - 1}] (input_dim={input_dim}), got ids from {lo} "
            f"to {hi}"
        )


@registry.register
class Embedding(Layer):
    """Token ids to vectors: row ``ids[...]`` of a trainable table.

    Args:
        input_dim: the number of ids (the vocabulary's size), > 0.
        output_dim: the size of each vector, > 0.
        mask_zero: id 0 is padding: the layer starts a mask of the steps whose id is not 0, which recurrent
            layers, global pooling and the losses of sequence outputs use (``input_dim`` counts id 0).
        embeddings_initializer: initializer of the table (default uniform on [−0.05, 0.05], as Keras).
        name: optional layer name.

    Shape:
        - input: integer ids ``(N, ...)``, typically ``(N, T)``; output: ``(N, ..., output_dim)``.
        - embeddings: ``(input_dim, output_dim)``.

    Gradient: dL/d(table)[v] = Σ of dL/dy over the positions whose id is v — a deterministic scatter-add
    (ids sorted, each id's rows summed in order), bitwise reproducible; ids have no gradient.
    """

    integer_inputs = True
    supports_masking = True

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        mask_zero: bool = False,
        embeddings_initializer: Any = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.input_dim = positive_int(input_dim, "input_dim", error=ValueError)
        self.output_dim = positive_int(output_dim, "output_dim", error=ValueError)
        if not isinstance(mask_zero, bool):
            raise TypeError(f"mask_zero must be True or False, got {mask_zero!r}")
        self.mask_zero = mask_zero
        init = embeddings_initializer
        self.embeddings_initializer = (
            initializers.UniformBounded(-0.05, 0.05) if init is None else initializers.get(init)
        )

    def compute_output_shape(self, input_shape: Any) -> Any:
        if not is_shape(input_shape) or len(input_shape) < 1:
            raise ValueError(f"Embedding expects token ids of shape (T,) per sample, got {input_shape}")
        return (*input_shape, self.output_dim)

    def compute_output_dtype(self, input_dtype: Any) -> Any:
        if input_dtype == "float":  # refused where the model is built, not at its first predict
            raise ValueError(
                f"Embedding {self.name!r} reads integer token ids, but its input is a float tensor (a float "
                "Input, or another layer's output); give it an integer input: "
                "neuro.Input(shape, dtype='int64')"
            )
        return "float"

    def param_specs(self, input_shape: Any) -> dict[str, Any]:
        return {"embeddings": ((self.input_dim, self.output_dim), self.embeddings_initializer)}

    def output_masked(self, inputs_masked: list[bool]) -> bool:
        return self.mask_zero or any(inputs_masked)

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        if not self.mask_zero:
            return mask
        valid = inputs != 0
        return valid if mask is None else valid & mask

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        check_ids(x, self.input_dim, f"Embedding {self.name!r}")
        return F.embedding(x, self.params["embeddings"]), (x if training else None)

    def backward(self, grad: Any, ctx: Any) -> Any:
        ids = self._require(ctx)
        with self.accumulate() as g:
            F.embedding_backward(grad, ids, g["embeddings"])
        return None  # token ids have no gradient

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "mask_zero": self.mask_zero,
            "embeddings_initializer": registry.serialize(self.embeddings_initializer),
        }


@registry.register
class Masking(Layer):
    """Mask the steps of a sequence whose features all equal ``mask_value`` (and zero them).

    Args:
        mask_value: the value of a padding step (default 0.0), a finite number.
        name: optional layer name.

    Shape:
        - input: ``(N, T, ...)``; output: the same.

    Gradient: dL/dx = dL/dy on the valid steps, 0 on the masked ones.
    """

    supports_masking = True

    def __init__(self, mask_value: float = 0.0, name: str | None = None) -> None:
        super().__init__(name=name)
        if (
            isinstance(mask_value, bool)
            or not isinstance(mask_value, numbers.Real)
            or not np.isfinite(mask_value)
        ):
            raise ValueError(f"mask_value must be a finite number, got {mask_value!r}")
        self.mask_value = float(mask_value)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if not is_shape(input_shape) or len(input_shape) < 2:
            raise ValueError(
                f"Masking expects sequences of shape (T, features) per sample, got {input_shape}"
            )
        return input_shape

    def output_masked(self, inputs_masked: list[bool]) -> bool:
        return True

    def _valid(self, x: Any) -> Any:
        axes = tuple(range(2, x.ndim))
        return (x != x.dtype.type(self.mask_value)).any(axis=axes)

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        valid = self._valid(inputs)
        return valid if mask is None else valid & mask

    def forward(self, x: Any, training: bool = False, rng: Any = None, mask: Any = None) -> tuple[Any, Any]:
        valid = self._valid(x)
        w = valid.reshape(valid.shape + (1,) * (x.ndim - 2)).astype(x.dtype)
        return x * w, (w if training else None)

    def backward(self, grad: Any, ctx: Any) -> Any:
        w = self._require(ctx)
        return grad * w if self.need_input_grad else None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}


__all__ = ["Embedding", "Masking", "check_ids"]
