"""The worked example of "Writing a layer": ``Scale``, a learnable factor per feature.

The page ``docs/writing-a-layer.md`` shows this file piece by piece (the ``--8<--`` markers delimit the
pieces), and ``tests/test_docs.py`` imports it, checks its gradients, saves and loads a network that uses it
and runs it through the layer test battery with the row below.
"""

from __future__ import annotations

# --8<-- [start:layer]
from typing import Any

import numpy as np

import neuro
from neuro import initializers, registry


@neuro.register  # makes Scale known by name: networks that use it save and load like built-in ones
class Scale(neuro.Layer):
    """Multiply each feature by its own learnable factor: ``y = x · s``.

    The factors ``s`` run along the last axis (the features of a vector, the channels of an image) and are
    shared by all other axes. With the default initializer the layer starts as the identity.

    Args:
        scale_initializer: initializer of ``s`` (default ``"ones"``).
        name: optional layer name.

    Shape:
        - input: ``(N, ..., C)``; output: the same shape.
        - scale ``s``: ``(C,)``.

    Gradient: with G = dL/dy, dL/ds = Σ over every axis but the last of G·x, and dL/dx = G·s.
    """

    def __init__(self, scale_initializer: Any = "ones", name: str | None = None) -> None:
        super().__init__(name=name)
        self.scale_initializer = initializers.get(scale_initializer)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output has the input's shape.

        Args:
            input_shape: shape of one sample, at least one axis.

        Raises:
            ValueError: for a shape without axes.
        """
        if len(input_shape) < 1:
            raise ValueError(f"Scale expects at least one axis per sample, got input_shape={input_shape}")
        return input_shape

    def param_specs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """One trainable array, ``scale``, with one factor per feature of the last axis.

        Args:
            input_shape: shape of one sample.
        """
        return {"scale": ((input_shape[-1],), self.scale_initializer)}

    def forward(self, x: Any, training: bool = False, rng: Any = None) -> tuple[Any, Any]:
        """Compute ``x · s``.

        Args:
            x: the batch ``(N, ..., C)``.
            training: also return the context of :meth:`backward` (the input x).
            rng: unused (no randomness).

        Returns:
            ``(y, ctx)``; ctx is ``None`` in inference, so that predicting keeps nothing.
        """
        y = x * self.params["scale"]  # broadcasts over every axis but the last, on x's device
        return y, (x if training else None)

    def backward(self, grad: Any, ctx: Any) -> Any:
        """Add dL/ds into ``grads["scale"]`` and return dL/dx.

        Args:
            grad: dL/dy, the shape of the output.
            ctx: the context returned by ``forward(x, training=True)``.

        Returns:
            dL/dx, or ``None`` when the network says it needs no input gradient (first layer).
        """
        if ctx is None:
            raise RuntimeError("Scale.backward needs the context returned by forward(x, training=True)")
        x = ctx
        batch_axes = tuple(range(x.ndim - 1))
        with self.accumulate() as g:  # this call's gradient: written here, added to earlier calls' on exit
            (grad * x).sum(axis=batch_axes, out=g["scale"])  # layers sum over the batch
        return grad * self.params["scale"] if self.need_input_grad else None

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as plain JSON values (the initializer as ``{"class", "config"}``)."""
        return {**super().get_config(), "scale_initializer": registry.serialize(self.scale_initializer)}


# --8<-- [end:layer]


# --8<-- [start:check]
def check() -> neuro.GradientReport:
    """Compare Scale's backward with central differences, in float64.

    Returns:
        The report; its ``max_error`` is far below 1e-6 for a correct backward.
    """
    x = np.random.default_rng(0).standard_normal((4, 3, 5))  # 4 samples of 3×5: factors along the 5
    layer = Scale(scale_initializer=initializers.UniformBounded(0.5, 1.5))
    report = neuro.check_gradients(layer, x)  # builds the layer for x, checks dL/dx and dL/ds
    assert report.max_error < 1e-6, report
    return report


# --8<-- [end:check]


# --8<-- [start:network]
def train_save_load(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Train a small network with a Scale layer on the digits, save it, load it back and predict with both.

    Args:
        path: the model file to write.

    Returns:
        The predictions of the trained and of the loaded network for ten digits (equal).
    """
    from neuro.data import load_digits

    x, y = load_digits()
    net = neuro.Network(input_shape=(64,), loss="softmax_crossentropy", optimizer="adam", seed=0)
    net.add(Scale())
    net.add(neuro.Dense(32, activation="relu"))
    net.add(neuro.Dense(10, activation="softmax"))
    net.fit(x, y, batch_size=64, epochs=2, verbose=0)
    net.save(path)
    loaded = neuro.Network.load(path)  # finds Scale by name in the registry: no custom_objects needed
    return neuro.to_numpy(net.predict(x[:10])), neuro.to_numpy(loaded.predict(x[:10]))


# --8<-- [end:network]


# --8<-- [start:reference]
def ref_scale(torch: Any, layer: Scale, x: Any, p: dict[str, Any]) -> Any:
    """The PyTorch reference of the layer battery: the same function written with torch tensors.

    Args:
        torch: the torch module.
        layer: the neuro layer (for its hyperparameters; Scale has none).
        x: the input as a torch tensor.
        p: the layer's parameters as torch tensors, by name.

    Returns:
        The output; torch's autograd then gives the reference gradients.
    """
    return x * p["scale"]


# --8<-- [end:reference]


def battery_case(case: type) -> Any:
    """The row of ``CASES`` in ``tests/layers/test_battery.py`` that tests Scale.

    Args:
        case: the battery's ``Case`` class.

    Returns:
        The row.
    """
    Case = case  # spelled as in the battery's table
    rows = [
        # --8<-- [start:row]
        Case("scale", lambda: Scale(initializers.UniformBounded(0.5, 1.5)), (3, 4), ref_scale),
        # --8<-- [end:row]
    ]
    return rows[0]
