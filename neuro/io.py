"""Saving and loading networks as HDF5 files.

A file holds the network's description as JSON text (input shape, layers with their configs, loss,
optimizer, regularizer, class names), every layer's params and buffers, the optimizer's state and the state
of the network's random generator, so that a loaded network predicts identically and resumes training
exactly. Loading builds objects only from neuro's own registries (or the ``custom_objects`` a caller
passes): nothing in a file is ever executed or unpickled.

Saving writes a temporary file next to the target and moves it into place in one step, so an existing file
is never left half-written.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
from typing import Any

import numpy as np

from neuro import activations, backend, losses, optimizers, regularizers
from neuro import layers as layers_mod

FORMAT = "neuro-network"
FORMAT_VERSION = 1


def _layer_classes() -> dict[str, type]:
    classes = {name: getattr(layers_mod, name) for name in layers_mod.__all__}
    for cls in activations._REGISTRY.values():
        classes[cls.__name__] = cls
    return classes


def save(network: Any, path: str | os.PathLike) -> None:
    """Write ``network`` to the HDF5 file ``path`` (replacing it atomically if it exists).

    Args:
        network: a :class:`~neuro.models.Network`.
        path: file name (``.h5`` by convention).
    """
    import h5py  # imported on first use: keeps `import neuro` fast

    path = pathlib.Path(path)
    lr = network.optimizer.learning_rate
    if callable(lr) and not hasattr(lr, "get_config"):
        raise TypeError(
            "optimizer learning_rate must be a number or a neuro.schedules schedule to be saved, "
            f"got {type(lr).__name__}"
        )
    names = network.class_names
    config = {
        "input_shape": list(network.input_shape),
        "loss": network.loss.get_config(),
        "optimizer": network.optimizer.get_config(),
        "regularizer": None if network.regularizer is None else network.regularizer.get_config(),
        "seed": network.seed,
        "class_names": None if names is None else [str(c) for c in names],
        "dtype": np.dtype(network.dtype).name,
        "layers": [{"class": type(layer).__name__, "config": layer.get_config()} for layer in network.layers],
    }
    opt_state = network.optimizer.get_state()
    # a new, unique file beside the target, with the permissions a plain open() would give it (umask)
    tmp = str(path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp")
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["config"] = json.dumps(config)
            f.attrs["rng_state"] = json.dumps(network.rng.bit_generator.state)
            for i, layer in enumerate(network.layers):
                g = f.create_group(f"layers/{i}")
                for kind, store in (("params", layer.params), ("buffers", layer.buffers)):
                    sub = g.create_group(kind)
                    for k, v in store.items():
                        sub.create_dataset(k, data=backend.to_numpy(v))
            opt = f.create_group("optimizer")
            opt.attrs["iterations"] = opt_state["iterations"]
            opt.attrs["n_slots"] = len(opt_state["slots"])
            for j, slot in enumerate(opt_state["slots"]):
                sub = opt.create_group(f"slots/{j}")
                for k, v in slot.items():
                    sub.create_dataset(k, data=v)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())  # the bytes are on disk before the new name points at them
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike, custom_objects: dict[str, type] | None = None) -> Any:
    """Read a network written by :func:`save`.

    Args:
        path: the HDF5 file.
        custom_objects: user-written layer and activation classes by class name, for networks that use
            them.

    Returns:
        A :class:`~neuro.models.Network` with the saved weights, optimizer state and generator state.

    Raises:
        ValueError: when the file is not a neuro network file or names an unknown class.
    """
    import h5py

    from neuro.models import Network

    classes = {**_layer_classes(), **(custom_objects or {})}
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"path {str(path)!r} is not a neuro network file")
        version = int(f.attrs["format_version"])
        if version > FORMAT_VERSION:
            raise ValueError(
                f"path {str(path)!r} has format version {version}; this neuro reads up to {FORMAT_VERSION}"
            )
        config = json.loads(f.attrs["config"])
        with backend.dtype_scope(config.get("dtype", "float32")):
            net = Network(
                tuple(config["input_shape"]),
                losses.get(config["loss"]),
                optimizers.get(config["optimizer"]),
                regularizers.get(config["regularizer"]),
                seed=config["seed"],
            )
            for spec in config["layers"]:
                name = spec["class"]
                if name not in classes:
                    raise ValueError(
                        f"path {str(path)!r} names layer class {name!r}, which is neither built in nor in "
                        "custom_objects"
                    )
                cls = classes[name]
                cfg = dict(spec["config"])
                if issubclass(cls, activations.Activation):
                    cfg.pop("name", None)
                    cfg.pop("class", None)
                    layer = cls(**cfg)
                else:
                    act = cfg.get("activation")
                    if isinstance(act, dict) and act.get("class") in classes:
                        act = dict(act)
                        act_cls = classes[act.pop("class")]
                        act.pop("name", None)  # the key of a built-in; a user class names itself
                        cfg["activation"] = act_cls(**act)
                    layer = cls(**cfg)
                net.add(layer)
            for i, layer in enumerate(net.layers):
                g = f[f"layers/{i}"]
                for kind, store in (("params", layer.params), ("buffers", layer.buffers)):
                    for k in store:
                        store[k][...] = backend.asarray(_numeric(g[kind][k], path), dtype=store[k].dtype)
            opt = f["optimizer"]
            slots = [
                {k: _numeric(v, path) for k, v in opt[f"slots/{j}"].items()}
                if f"slots/{j}" in opt
                else {}
                for j in range(int(opt.attrs["n_slots"]))
            ]
            net.optimizer.set_state({"iterations": int(opt.attrs["iterations"]), "slots": slots})
        net.rng.bit_generator.state = json.loads(f.attrs["rng_state"])
        net.class_names = config.get("class_names")
    return net


def _numeric(dataset: Any, path: Any) -> np.ndarray:
    arr = dataset[()]
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise ValueError(f"path {str(path)!r}: dataset {dataset.name} must hold numbers")
    return arr
