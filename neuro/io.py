"""Saving and loading networks as HDF5 files that are safe to share.

The layout (format ``"neuro-network"``, version :data:`FORMAT_VERSION`; ``docs/file-format.md`` describes it
for other tools):

- file attributes ``format``, ``format_version``, ``config`` (JSON: the model's class, dtype, seed, losses,
  optimizer, regularizer, class names, scalers, the layers, each ``{"class": name, "config": {...}}``, and
  the graph: which layer each node calls on which tensors) and ``rng_state`` (JSON: the state of the
  model's NumPy generator);
- ``layers/<i>/params/<name>`` and ``layers/<i>/buffers/<name>``: the arrays of layer ``i`` of the
  config's ``layers`` (nested models opened up), a group for every layer (empty ones for a layer without
  arrays);
- ``optimizer`` with attributes ``iterations`` and ``n_slots`` and datasets ``optimizer/slots/<j>/<name>``.

Versions 1 (neuro 0.1) and 2 (neuro 0.2) described a chain of layers; they are read as a chain.

Loading builds objects only through neuro's registry (and the ``custom_objects`` a caller passes): nothing in
a file is ever executed or unpickled. It is safe for a file from a stranger: before any array is read, every
object of the file is audited (:mod:`neuro._h5safe`: no links, external storage, virtual datasets or unknown
filters, so nothing outside the file is ever opened; bounded sizes and chunk counts; storage that was never
written is refused); the JSON config is size- and depth-limited and validated; the graph is checked before
anything is built (references to inputs and earlier nodes only, so no cycle; every input used and every node
feeding an output; shapes that agree at every call, merges included; bounded counts) and each layer's
parameter shapes are compared with the shapes the file declares *before* anything is allocated, so memory use
is bounded by the file's own size. Values are checked too, in the model's dtype (after the conversion): finite
weights and optimizer state, non-negative variances, running means of squares and counters, and what the model
derives from them (a BatchNorm's epsilon and scale, a scaler's ``1 / b``). Every saved piece of state is
checked against the model it belongs to (scalers of the input's and output's width, class weights one per
class, class names one per output), so a model that loads can predict and train on. Every problem with a
file's contents raises :class:`~neuro.errors.ModelFileError` naming the file and the place in it; a missing
file or a folder raise ``FileNotFoundError`` / ``IsADirectoryError``.

Saving builds the file's bytes in memory (HDF5's core driver), then writes them with plain file I/O to a
temporary file beside the target and renames it into place (:mod:`neuro._atomic`), so an existing file is
never left half-written, keeps its permissions, and a full disk or a file-size limit is an ``OSError``
naming the path that leaves HDF5 untouched.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from neuro import _h5safe as h5s
from neuro import backend, registry
from neuro import head as head_mod
from neuro import losses as losses_mod
from neuro._atomic import atomic_write_bytes
from neuro.errors import ModelFileError
from neuro.layers.base import Layer

FORMAT = "neuro-network"
#: The version this neuro writes. Versions 1 (neuro 0.1) and 2 (neuro 0.2) are read through
#: :func:`_migrate_v1` and :func:`_migrate_v2`.
FORMAT_VERSION = 3
#: The ``format`` attribute of a weights file (:func:`save_weights`), and its version.
WEIGHTS_FORMAT = "neuro-weights"
WEIGHTS_FORMAT_VERSION = 1

_V2_KEYS = {
    "input_shape",
    "dtype",
    "seed",
    "loss",
    "optimizer",
    "regularizer",
    "class_names",
    "layers",
    "input_scaler",
    "output_scaler",
}
_TOP_KEYS = {
    "model",
    "name",
    "dtype",
    "seed",
    "loss",
    "loss_weights",
    "optimizer",
    "regularizer",
    "class_names",
    "layers",
    "graph",
    "outputs",
    "input_scaler",
    "output_scaler",
    "vocabulary",
    "trainable",
    "frozen",
    "metrics",
}
MAX_LAYERS = 10_000
#: A saved ``metrics`` holds at most this many names, each of at most 100 characters.
MAX_METRICS = 1_000
#: Each axis of an input shape is at most this large (the arrays that follow are bounded by the file anyway).
MAX_DIM = 1 << 31


# -- saving ------------------------------------------------------------------------------------------------
def network_config(network: Any) -> dict[str, Any]:
    """The JSON description of a model (no arrays): what :func:`save` writes as the ``config`` attribute.

    Args:
        network: a :class:`~neuro.models.Model` (a :class:`~neuro.models.Network` included).

    Returns:
        A dict of plain JSON values: the model's class and name, dtype, seed, losses, loss weights,
        optimizer, regularizer, class names, scalers, the layers (each ``{"class": name, "config": {...}}``)
        and the graph (:func:`neuro.graph.graph_config`).

    Raises:
        TypeError: when the optimizer's learning rate is a plain function (not a saveable schedule).
        ValueError: when a layer is shared between a nested model and the outer graph (not saveable).
    """
    from neuro.graph import graph_config

    opt = network.optimizer
    lr = getattr(opt, "learning_rate", None)
    if callable(lr) and not hasattr(lr, "get_config"):
        raise TypeError(
            "optimizer learning_rate must be a number or a neuro.schedules schedule to be saved, "
            f"got {type(lr).__name__}"
        )
    _check_leaves_saveable(network)
    names = network.class_names
    losses = [registry.serialize(loss) for loss in network.losses]
    weights = list(network.loss_weights_list)
    frozen = [i for i, layer in enumerate(network.leaf_layers()) if not layer.trainable]
    flags: dict[str, Any] = {}  # written only when something is frozen: other files stay as they were
    if not network.trainable:
        flags["trainable"] = False
    if frozen:
        flags["frozen"] = frozen
    metrics, left_out = _metric_names(getattr(network, "compiled_metrics", None))
    if left_out:
        warnings.warn(
            "the model's metrics are not saved: a file holds names only, and these include functions or "
            "metric objects; compile the loaded model again with them",
            UserWarning,
            stacklevel=4,
        )
    return {
        "model": type(network).__name__,
        "name": network.name,
        "dtype": np.dtype(network.dtype).name,
        "seed": network.seed,
        "loss": None if not losses else (losses[0] if len(losses) == 1 else losses),
        "loss_weights": None if all(w == 1.0 for w in weights) else weights,
        "optimizer": None if opt is None else registry.serialize(opt),
        "regularizer": None if network.regularizer is None else registry.serialize(network.regularizer),
        "class_names": None if names is None else [str(c) for c in names],
        "input_scaler": None if network.input_scaler is None else network.input_scaler.get_config(),
        "output_scaler": None if network.output_scaler is None else network.output_scaler.get_config(),
        "vocabulary": None if network.vocabulary is None else network.vocabulary.get_config(),
        "layers": [registry.serialize(layer) for layer in network.layers],
        "graph": graph_config(network.graph, network.layers),
        "outputs": {"kind": network._output_kind, "keys": network._output_keys},
        **({"metrics": metrics} if metrics is not None else {}),
        **flags,
    }


def _metric_names(metrics: Any) -> tuple[Any, bool]:
    """``compile``'s ``metrics`` as JSON when it holds names only (a name, a list, a list of lists, or a dict
    of names or lists of names), and whether something else (a function, a metric object) was left out."""
    if metrics is None:
        return None, False

    def names(item: Any) -> Any:
        if isinstance(item, str):
            return item
        if isinstance(item, (list, tuple)) and all(isinstance(m, str) for m in item):
            return list(item)
        return None

    if isinstance(metrics, dict):
        out = {str(k): names(v) for k, v in metrics.items()}
        return (None, True) if any(v is None for v in out.values()) else (out, False)
    if isinstance(metrics, (list, tuple)) and metrics and all(isinstance(m, (list, tuple)) for m in metrics):
        out_list = [names(m) for m in metrics]
        return (None, True) if any(v is None for v in out_list) else (out_list, False)
    out_any = names(metrics)
    return (None, True) if out_any is None else (out_any, False)


def _check_leaves_saveable(network: Any) -> None:
    from neuro.graph import check_leaves_apart

    check_leaves_apart(network.layers)


def save(network: Any, path: str | os.PathLike) -> None:
    """Write ``network`` to the HDF5 file ``path``, replacing it atomically if it exists.

    The file holds one step's state: it is taken under the model's step lock, so a save from another thread
    while ``fit`` runs writes the weights, buffers, optimizer state and generator state of one step.

    Args:
        network: a :class:`~neuro.models.Model` (on any device).
        path: file name (``.h5`` by convention); a symlink is followed and stays a symlink.

    Raises:
        TypeError: when the optimizer's learning rate is a plain function (not a saveable schedule).
        ValueError: for a weight the loader would refuse (non-finite, a negative running variance), set by
            hand: nothing is written.
        FileNotFoundError, PermissionError, IsADirectoryError: for a missing or read-only folder, a
            write-protected file, a folder at ``path`` or a ``path`` ending in a separator (naming ``path``).
        OSError: when the file cannot be written (``ENOSPC``: the disk is full; ``EFBIG``: the file-size
            limit), naming ``path``; the previous file is kept and no temporary file is left.
    """
    with network._lock:  # one step's state, whatever other threads do
        config = network_config(network)
        opt_state = network.optimizer_state()  # for the layers trainable now (frozen since: no state)
        arrays = _layer_arrays(network)
        import json  # loaded when a model is saved, not on `import neuro`

        rng_state = json.dumps(network.rng.bit_generator.state)

    image = _file_image(config, rng_state, arrays, opt_state)
    atomic_write_bytes(path, image)


def save_weights(network: Any, path: str | os.PathLike) -> None:
    """Write the weights and buffers of ``network`` alone to the HDF5 file ``path`` (atomically, as
    :func:`save`): the ``layers`` groups of a model file, nothing else. :func:`load_weights` reads them into
    a model of the same architecture.

    Args:
        network: a :class:`~neuro.models.Model` (on any device).
        path: file name (``.weights.h5`` by Keras's convention); a symlink is followed and stays a symlink.

    Raises:
        FileNotFoundError, PermissionError, IsADirectoryError, OSError: as :func:`save`.
    """
    with network._lock:
        arrays = _layer_arrays(network)
    import h5py

    name = f"neuro-weights-{os.getpid()}-{os.urandom(8).hex()}.h5"
    with h5py.File(name, "w", driver="core", backing_store=False) as f:
        f.attrs["format"] = WEIGHTS_FORMAT
        f.attrs["format_version"] = WEIGHTS_FORMAT_VERSION
        _write_layers(f, arrays)
        f.flush()
        image = f.id.get_file_image()
    atomic_write_bytes(path, image)


def load_weights(network: Any, path: str | os.PathLike) -> None:
    """Read weights written by :func:`save_weights` (or those of a model file written by :func:`save`) into
    ``network``, whose architecture must be the saved one: the same layers in the same order, each array of
    the same shape. Nothing else changes (optimizer state, generator, trainable flags). All or nothing: a
    file that fails any check leaves every weight as it was.

    The file is read as carefully as a model file (:func:`load`): a file from a stranger gets a
    ModelFileError in bounded time and memory, and arrays must be finite in the model's dtype.

    Args:
        network: the model to fill.
        path: the HDF5 file.

    Raises:
        ModelFileError: for a file that is no neuro weights or model file, or whose arrays do not fit the
            model (the message names the file and the place).
        FileNotFoundError: when ``path`` does not exist.
        IsADirectoryError: when ``path`` is a folder.
    """
    leaves = network.leaf_layers()
    with h5s.open_model_file(path) as f:
        h5s.audit(f, path)
        fmt = h5s.read_scalar_attr(f, "format", path, "str", max_bytes=64) if "format" in f.attrs else None
        if fmt not in (WEIGHTS_FORMAT, FORMAT):
            raise ModelFileError(
                path, "/", f"is not a neuro weights or model file (format attribute {fmt!r})"
            )
        if fmt == WEIGHTS_FORMAT:
            h5s.check_no_extra(f, ("layers",), path, expected_attrs=("format", "format_version"))
        newest = WEIGHTS_FORMAT_VERSION if fmt == WEIGHTS_FORMAT else FORMAT_VERSION
        version = h5s.read_scalar_attr(f, "format_version", path, "int", min_value=1, max_value=2**31)
        if version > newest:
            raise ModelFileError(
                path, "/", f"has format version {version}; this neuro reads {fmt} files up to version "
                f"{newest}"
            )
        layers = h5s.get_group(f, "layers", path)
        count = len(layers)
        if count != len(leaves):
            raise ModelFileError(
                path,
                "layers",
                f"holds {count} layers; the model has {len(leaves)} (the architectures differ)",
            )
        h5s.check_no_extra(layers, [str(i) for i in range(len(leaves))], path)
        values = []
        for i, layer in enumerate(leaves):
            group = h5s.get_group(layers, str(i), path)
            h5s.check_no_extra(group, ("params", "buffers"), path)
            for store_name, store in (("params", layer.params), ("buffers", layer.buffers)):
                h5s.check_no_extra(h5s.get_group(group, store_name, path), list(store), path)
                for k in store:
                    values.append(
                        h5s.read_array(
                            f,
                            f"layers/{i}/{store_name}/{k}",
                            path,
                            shape=tuple(store[k].shape),
                            nonneg=(k == "running_var"),
                            cast=store[k].dtype,
                        )
                    )
    with network._lock:
        before = network.get_weights()
        network.set_weights(values)
        try:
            for i, layer in enumerate(leaves):
                _check_normalization(layer, i, path)
        except BaseException:
            network.set_weights(before)
            raise


def _layer_arrays(network: Any) -> list[tuple[dict, dict]]:
    """Host copies of each leaf layer's params and buffers, in layer order.

    Raises:
        ValueError: for an array the loader would refuse (a non-finite value, a negative running variance:
            set by hand, as training's guard never commits one), so that no file is written that cannot be
            read back.
    """
    out = []
    for layer in network.leaf_layers():
        params = {k: np.array(backend.to_numpy(v)) for k, v in layer.params.items()}
        buffers = {k: np.array(backend.to_numpy(v)) for k, v in layer.buffers.items()}
        for k, a in (*params.items(), *buffers.items()):
            if not np.isfinite(a).all():
                raise ValueError(
                    f"cannot save: {layer.name}.{k} holds a non-finite value ({a[~np.isfinite(a)].flat[0]}); "
                    "a model file holds finite weights only (the loader refuses others)"
                )
            if k == "running_var" and (a < 0).any():
                raise ValueError(
                    f"cannot save: {layer.name}.{k} holds a negative variance ({a[a < 0].flat[0]}); the "
                    "loader refuses it"
                )
        out.append((params, buffers))
    return out


def _write_layers(f: Any, arrays: list[tuple[dict, dict]]) -> None:
    """The ``layers`` group of a model or weights file: ``layers/<i>/params`` and ``.../buffers`` for every
    leaf layer ``i`` in order (empty groups for a layer without arrays)."""
    layers = f.create_group("layers")
    for i, (params, buffers) in enumerate(arrays):
        g = layers.create_group(str(i))
        for kind, store in (("params", params), ("buffers", buffers)):
            sub = g.create_group(kind)
            for k, v in store.items():
                sub.create_dataset(k, data=v)


def _file_image(
    config: dict[str, Any], rng_state: str, arrays: list[tuple[dict, dict]], opt_state: dict[str, Any]
) -> bytes:
    """The bytes of a model file, built by HDF5 in memory (the core driver, no backing file).

    HDF5 never writes to disk here: :func:`neuro._atomic.atomic_write_bytes` writes the bytes with plain
    file I/O, so a full disk or a file-size limit is an ``OSError`` naming the path and HDF5 never sees a
    failed write (after one, HDF5 1.x/2.x may crash the process at a later save or at exit).
    """
    import json

    import h5py  # imported on first use: keeps `import neuro` fast

    # the name only identifies the in-memory file to HDF5 (two open files must not share one)
    name = f"neuro-save-{os.getpid()}-{os.urandom(8).hex()}.h5"
    with h5py.File(name, "w", driver="core", backing_store=False) as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["config"] = json.dumps(config)
        f.attrs["rng_state"] = rng_state
        _write_layers(f, arrays)
        opt = f.create_group("optimizer")
        opt.attrs["iterations"] = opt_state["iterations"]
        opt.attrs["n_slots"] = len(opt_state["slots"])
        slots = opt.create_group("slots")
        for j, slot in enumerate(opt_state["slots"]):
            sub = slots.create_group(str(j))
            for k, v in slot.items():
                sub.create_dataset(k, data=v)
        f.flush()
        return f.id.get_file_image()


# -- loading -----------------------------------------------------------------------------------------------
def load(
    path: str | os.PathLike,
    custom_objects: dict[str, type] | None = None,
    device: str = "numpy",
    network_class: type | None = None,
    trust_pattern: bool = False,
) -> Any:
    """Read a model written by :func:`save`.

    Args:
        path: the HDF5 file.
        custom_objects: user-written classes (layers, activations, losses…) by class name, for models
            that use classes not registered with :func:`neuro.register`.
        device: the device to put the model on.
        network_class: the class the file must hold (``Network`` or ``Model``); ``None`` takes the file's
            (a chain saved by a ``Network`` loads as a ``Network``). ``Network.load`` of a graph that is not
            a chain is refused.
        trust_pattern: accept a saved vocabulary's word pattern that is not one of
            :data:`neuro.data.text.SAFE_PATTERNS`. Keep the default for files from strangers: their pattern
            could take exponential time on some texts when the model encodes them.

    Returns:
        A model with the saved weights, optimizer state and generator state.

    Raises:
        ModelFileError: for any problem with the file's contents (the message names the file and the place).
        FileNotFoundError: when ``path`` does not exist.
        IsADirectoryError: when ``path`` is a folder.
    """
    xp = backend.get_device(device)  # a bad device name fails before the file is opened
    custom = _check_custom_objects(custom_objects)
    with h5s.open_model_file(path) as f:
        h5s.audit(f, path)
        fmt = h5s.read_scalar_attr(f, "format", path, "str", max_bytes=64) if "format" in f.attrs else None
        if fmt != FORMAT:
            raise ModelFileError(path, "/", f"is not a neuro network file (format attribute {fmt!r})")
        h5s.check_no_extra(
            f,
            ("layers", "optimizer"),
            path,
            expected_attrs=("format", "format_version", "config", "rng_state"),
        )
        version = h5s.read_scalar_attr(f, "format_version", path, "int", min_value=1, max_value=2**31)
        if version > FORMAT_VERSION:
            raise ModelFileError(
                path, "/", f"has format version {version}; this neuro reads versions up to {FORMAT_VERSION}"
            )
        config = h5s.read_json_attr(f, "config", path)
        if version == 1:
            with _config_error(path, "config"):
                config = _migrate_v1(config)
        if version <= 2:
            _check_v2_config(config, path)
            with _config_error(path, "config"):
                config = _migrate_v2(config)
        _check_config(config, path)
        net = _build(config, f, path, network_class, custom)
        if config.get("vocabulary") is not None:
            from neuro.data.text import Vocabulary

            with _config_error(path, "config.vocabulary"):
                net.vocabulary = Vocabulary.from_config(config["vocabulary"], trust_pattern=trust_pattern)
        rng_state = h5s.read_json_attr(f, "rng_state", path, max_bytes=4096)
        with _config_error(path, "rng_state"):
            if not isinstance(rng_state, dict) or rng_state.get("bit_generator") != "PCG64":
                raise ValueError("must be the state of a PCG64 generator")
            net.rng.bit_generator.state = rng_state
    if xp is not np:
        net.to(device)
    return net


def _check_custom_objects(custom_objects: Any) -> dict[str, type]:
    if custom_objects is None:
        return {}
    if not isinstance(custom_objects, dict) or not all(
        isinstance(k, str) and isinstance(v, type) for k, v in custom_objects.items()
    ):
        raise TypeError("custom_objects must map class names to classes")
    return dict(custom_objects)


@contextlib.contextmanager
def _config_error(path: Any, where: str) -> Iterator[None]:
    """Like :func:`neuro._h5safe.guard`, with the message of a ValueError or TypeError kept as it is (they
    come from the constructors' own argument checks, which name the argument and the value)."""
    with h5s.guard(path, where):
        try:
            yield
        except ModelFileError:
            raise
        except (ValueError, TypeError) as exc:
            text = str(exc)  # long messages keep their head and their end (what was given)
            short = text if len(text) <= 500 else text[:300] + " ... " + text[-200:]
            raise ModelFileError(path, where, short) from exc


def _fail(path: Any, where: str, problem: str) -> ModelFileError:
    return ModelFileError(path, where, problem)


def _check_metrics(metrics: Any, path: Any) -> None:
    """``config.metrics``: null, a name, a list of names or of lists of names, or an object of names or lists
    of names (names of at most 100 characters, at most :data:`MAX_METRICS` in all)."""
    count = 0

    def names(item: Any) -> bool:
        nonlocal count
        items = [item] if isinstance(item, str) else item if isinstance(item, list) else None
        if items is None or not all(isinstance(m, str) and len(m) <= 100 for m in items):
            return False
        count += len(items)
        return count <= MAX_METRICS

    if metrics is None:
        return
    if isinstance(metrics, dict):
        ok = len(metrics) <= MAX_METRICS and all(names(v) for v in metrics.values())
    elif isinstance(metrics, list) and metrics and all(isinstance(m, list) for m in metrics):
        ok = len(metrics) <= MAX_METRICS and all(names(m) for m in metrics)
    else:
        ok = names(metrics)
    if not ok:
        raise _fail(
            path,
            "config.metrics",
            f"must be null or metric names (a name, lists or an object of them, at most {MAX_METRICS} "
            "names of at most 100 characters)",
        )


def _check_spec_list(items: Any, path: Any, where: str) -> None:
    if not isinstance(items, list) or len(items) > MAX_LAYERS:
        raise _fail(path, where, f"must be a list of at most {MAX_LAYERS} layers")
    for i, spec in enumerate(items):
        if (
            not isinstance(spec, dict)
            or set(spec) != {"class", "config"}
            or not isinstance(spec["class"], str)
            or not isinstance(spec["config"], dict)
        ):
            raise _fail(path, f"{where}[{i}]", "must be {'class': name, 'config': {...}}")


def _check_v2_config(config: Any, path: Any) -> None:
    """Types, ranges and known keys of a version 1 or 2 config (a chain), before it is migrated."""
    if not isinstance(config, dict):
        raise _fail(path, "config", f"must be a JSON object, got {type(config).__name__}")
    extra = set(config) - _V2_KEYS
    if extra:
        raise _fail(path, "config", f"has unknown keys {sorted(extra)}")
    missing = {"input_shape", "loss", "optimizer", "layers"} - set(config)
    if missing:
        raise _fail(path, "config", f"lacks the keys {sorted(missing)}")
    shape = config["input_shape"]
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 8
        or not all(type(d) is int and 1 <= d <= MAX_DIM for d in shape)
    ):
        raise _fail(path, "config.input_shape", f"must be a list of 1 to 8 positive integers, got {shape!r}")
    _check_spec_list(config["layers"], path, "config.layers")


def _check_config(config: Any, path: Any) -> None:
    """Types, ranges and known keys of the top level, before anything is built."""
    if not isinstance(config, dict):
        raise _fail(path, "config", f"must be a JSON object, got {type(config).__name__}")
    extra = set(config) - _TOP_KEYS
    if extra:
        raise _fail(path, "config", f"has unknown keys {sorted(extra)}")
    missing = {"model", "layers", "graph"} - set(config)
    if missing:
        raise _fail(path, "config", f"lacks the keys {sorted(missing)}")
    if config["model"] not in ("Network", "Model"):
        raise _fail(path, "config.model", f"must be 'Network' or 'Model', got {str(config['model'])[:80]!r}")
    if config.get("dtype", "float32") not in ("float32", "float64"):
        raise _fail(path, "config.dtype", f"must be 'float32' or 'float64', got {config.get('dtype')!r}")
    seed = config.get("seed")
    if seed is not None and (type(seed) is not int or not 0 <= seed < 2**128):
        raise _fail(path, "config.seed", f"must be null or a non-negative integer, got {seed!r}")
    name = config.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise _fail(path, "config.name", "must be null or a string of at most 200 characters")
    _check_spec_list(config["layers"], path, "config.layers")
    for key in ("input_scaler", "output_scaler"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise _fail(path, f"config.{key}", "must be null or an object")
    _check_metrics(config.get("metrics"), path)
    weights = config.get("loss_weights")
    if weights is not None and (
        not isinstance(weights, list)
        or not all(type(w) in (int, float) and 0 <= w < float("inf") for w in weights)
    ):
        raise _fail(path, "config.loss_weights", "must be null or a list of finite numbers >= 0")
    outs = config.get("outputs", {"kind": "single", "keys": None})
    if (
        not isinstance(outs, dict)
        or set(outs) != {"kind", "keys"}
        or outs["kind"] not in ("single", "list", "dict")
        or (
            outs["keys"] is not None
            and (not isinstance(outs["keys"], list) or not all(isinstance(k, str) for k in outs["keys"]))
        )
    ):
        raise _fail(
            path, "config.outputs", "must be {'kind': 'single' | 'list' | 'dict', 'keys': null or names}"
        )


def _object(family: str, spec: Any, path: Any, where: str, base: type) -> Any:
    """Build one object of ``family`` from its spec; any problem is a ModelFileError at ``where``."""
    with _config_error(path, where):
        if (
            not isinstance(spec, dict)
            or set(spec) != {"class", "config"}
            or not isinstance(spec["class"], str)
            or not isinstance(spec["config"], dict)
        ):
            raise ValueError(f"must be {{'class': name, 'config': {{...}}}}, got {str(spec)[:100]}")
        try:
            cls = registry.get_class(family, spec["class"])
        except ValueError as exc:
            raise ValueError(
                f"{exc}; a class of your own must be registered with neuro.register or passed "
                "in custom_objects"
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise ValueError(f"class {spec['class']!r} is not a {base.__name__}")
        return cls.from_config(spec["config"])


def _build(config: dict, f: Any, path: Any, cls: type | None, custom: dict[str, type]) -> Any:
    with registry.custom_objects(custom):
        return _build_model(config, f, path, cls)


def _build_model(config: dict, f: Any, path: Any, want: type | None) -> Any:
    from neuro import losses, optimizers, regularizers
    from neuro.graph import build_layers, graph_from_config, leaf_layers
    from neuro.training import evaluation

    Model = registry.get_class("model", "Model")  # noqa: N806 - through the registry: io sits below models
    Network = registry.get_class("model", "Network")  # noqa: N806
    kind = config["model"]
    if want is not None and want is not Model and not (kind == "Network" and issubclass(want, Network)):
        raise _fail(
            path,
            "config.model",
            f"holds a {kind} (a graph), which {want.__name__}.load cannot read; use neuro.Model.load",
        )
    dtype = config.get("dtype", "float32")
    loss_spec = config.get("loss")
    loss_list = loss_spec if isinstance(loss_spec, list) else ([] if loss_spec is None else [loss_spec])
    loss_objs = [
        _object(
            "loss",
            spec,
            path,
            f"config.loss[{i}]" if isinstance(loss_spec, list) else "config.loss",
            losses.Loss,
        )
        for i, spec in enumerate(loss_list)
    ]
    opt = None
    if config.get("optimizer") is not None:
        opt = _object("optimizer", config["optimizer"], path, "config.optimizer", optimizers.Optimizer)
    reg = None
    if config.get("regularizer") is not None:
        reg = _object(
            "regularizer", config["regularizer"], path, "config.regularizer", regularizers.Regularizer
        )
    layers = [
        _object("layer", spec, path, f"config.layers[{i}] ({spec['class']})", Layer)
        for i, spec in enumerate(config["layers"])
    ]
    with _config_error(path, "config.graph"):
        graph = graph_from_config(config["graph"], layers)  # shapes checked at every call; nothing allocated
        leaves = leaf_layers(graph.layers)
    # every array the file must hold, from the layers' own specs, before anything is allocated
    layer_group = h5s.get_group(f, "layers", path)
    h5s.check_no_extra(layer_group, [str(i) for i in range(len(leaves))], path, expected_attrs=())
    first_shapes = _first_input_shapes(graph)
    for i, layer in enumerate(leaves):
        shape = first_shapes[id(layer)]
        with _config_error(path, f"layer {layer.name!r} ({type(layer).__name__})"):
            expected = {
                "params": {k: tuple(s) for k, (s, _) in layer.param_specs(shape).items()},
                "buffers": {k: tuple(s) for k, (s, _) in layer.buffer_specs(shape).items()},
            }
        g = h5s.get_group(layer_group, str(i), path)
        h5s.check_no_extra(g, ("params", "buffers"), path, expected_attrs=())
        for store, shapes in expected.items():
            sub = h5s.get_group(g, store, path)
            h5s.check_no_extra(sub, shapes, path, expected_attrs=())
            for k, s in shapes.items():
                declared, _ = h5s.array_info(sub, k, path)
                if declared != s:
                    raise _fail(
                        path,
                        f"layers/{i}/{store}/{k}",
                        f"must have shape {s} for {type(layer).__name__} {layer.name!r} after input shape "
                        f"{shape}, got {declared}",
                    )
    # every shape is known to match the file: now build (allocations bounded by the file's size)
    outs = config.get("outputs") or {"kind": "single", "keys": None}
    with backend.dtype_scope(dtype), _config_error(path, "config"):
        if kind == "Network":
            net: Any = _chain(graph, config, want or Network)
        else:
            net = (want or Model).__new__(want or Model)
            net._setup(config.get("seed"), "numpy", config.get("name"))
            net._input_kind = "single" if len(graph.inputs) == 1 else "list"
            net._output_kind = outs["kind"]
            net._output_keys = outs["keys"]
            n_out, keys = len(graph.outputs), outs["keys"]
            if outs["kind"] == "single" and n_out != 1:  # predict would return the first output alone
                raise ValueError(f"outputs.kind 'single' needs one output; the graph has {n_out}")
            if (outs["kind"] == "dict") != (keys is not None):
                raise ValueError("outputs.keys must name the outputs of kind 'dict', and be null otherwise")
            if keys is not None and (len(keys) != n_out or len(set(keys)) != n_out):  # a dict would drop some
                raise ValueError(f"outputs.keys must name the {n_out} outputs, each once, got {keys}")
            net._graph = graph
            build_layers(graph, net.rng, net.dtype, net.xp, initialize=False)
        if loss_objs or opt is not None:
            if len(loss_objs) not in (1, len(graph.outputs)):
                raise ValueError(
                    f"loss must be one spec or a list of {len(graph.outputs)}, got {len(loss_objs)}"
                )
            if opt is not None:  # named as a setting of the file (compile would refuse it too)
                _check_optimizer_numbers(opt, net.dtype, path)
            with head_mod.loading():  # a file saved before a check of the heads still loads (with a warning)
                net.compile(
                    loss_objs if len(loss_objs) > 1 else loss_objs[0],
                    opt,
                    reg,
                    loss_weights=config.get("loss_weights"),
                )
                net.heads  # noqa: B018 - chosen now, under the same leniency, and kept
            if config.get("metrics") is not None:
                with _config_error(path, "config.metrics"):  # unknown names, or names of no output
                    evaluation.metric_slots(net, config["metrics"])  # what compile checks of them
                net.compiled_metrics = config["metrics"]
        else:
            net.regularizer = reg
    for i, layer in enumerate(leaves):
        for store_name, store in (("params", layer.params), ("buffers", layer.buffers)):
            for k in store:
                # checked after the conversion to the model's dtype: a float64 1e300 is no float32
                store[k][...] = h5s.read_array(
                    f,
                    f"layers/{i}/{store_name}/{k}",
                    path,
                    shape=tuple(store[k].shape),
                    nonneg=(k == "running_var"),
                    cast=store[k].dtype,
                )
        _check_dtype_scalars(layer, path, np.dtype(net.dtype))  # epsilon first: the statistics divide by it
        _check_normalization(layer, i, path)
    _load_trainable(net, leaves, config, path)
    _load_optimizer(net, f, path)  # its state belongs to the trainable parameters
    net._record_optimizer_keys()
    _check_losses(net, config, path)
    names = config.get("class_names")
    if names is not None:
        shapes = net.output_shapes
        width = int(shapes[0][-1]) if len(shapes) == 1 else -1  # the class axis (of each step too)
        if (
            not isinstance(names, list)
            or not all(isinstance(c, str) for c in names)
            or len(names) not in (width, 2 if width == 1 else width)  # files with one name load as before
        ):
            what = f"must be a list of {width} strings (the output's classes)"
            raise _fail(path, "config.class_names", what)
        net.class_names = names
    for key in ("input_scaler", "output_scaler"):
        if config.get(key) is not None:
            from neuro.data.scaling import Scaler

            with _config_error(path, f"config.{key}"):
                scaler = Scaler.from_config(config[key])
            _check_scaler(scaler, net, key, path)
            setattr(net, key, scaler)
    return net


# -- checks of the loaded state against the model ------------------------------------------------------------
def _as_dtype(value: Any, dtype: Any) -> np.ndarray:
    """``value`` converted to ``dtype`` as the model computes with it (overflow to inf, underflow to 0)."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return np.asarray(value, dtype=np.float64).astype(dtype)


def _first_bad(mask: np.ndarray) -> tuple[int, ...] | None:
    if not mask.any():
        return None
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _check_dtype_scalars(layer: Layer, path: Any, dtype: np.dtype) -> None:
    """A layer's (or its activation's) ``epsilon`` is positive and ``alpha`` finite in the model's dtype: a
    LayerNormalization ``epsilon`` of 1e-300 is 0 in float32 (a row of equal values gives NaN), a LeakyReLU
    or ELU ``alpha`` of 1e300 is inf."""
    where = f"layer {layer.name!r} ({type(layer).__name__})"
    for owner, label in ((layer, where), (getattr(layer, "activation", None), f"{where} activation")):
        for name, ok, rule in (("epsilon", lambda v: v > 0, "positive"), ("alpha", np.isfinite, "finite")):
            value = getattr(owner, name, None)
            if type(value) not in (int, float):
                continue
            converted = _as_dtype(value, dtype)
            if not ok(converted):
                problem = f"must be {rule} in {dtype.name} (the model's dtype), got {value!r}, which becomes "
                raise _fail(path, f"{label} {name}", problem + str(converted))


def _check_normalization(layer: Layer, i: int, path: Any) -> None:
    """A normalisation layer's ``running_var + epsilon`` is positive in the model's dtype, and the scale
    ``gamma / sqrt(running_var + epsilon)`` and the shift it gives are finite there (``epsilon`` itself is
    checked by :func:`_check_dtype_scalars`)."""
    if "running_var" not in layer.buffers or not hasattr(layer, "epsilon"):
        return
    var = backend.to_numpy(layer.buffers["running_var"])
    dtype = var.dtype
    where = f"layer {layer.name!r} ({type(layer).__name__})"
    eps = _as_dtype(layer.epsilon, dtype)
    with np.errstate(all="ignore"):
        denom = var + eps
        bad = _first_bad(~(denom > 0))
        if bad is not None:
            raise _fail(
                path,
                f"layers/{i}/buffers/running_var",
                f"running_var + epsilon must be positive in {dtype.name}, got {denom[bad]} at index {bad}",
            )
        gamma = layer.params.get("gamma")
        beta = layer.params.get("beta")
        mean = layer.buffers.get("running_mean")
        if gamma is None or beta is None or mean is None:
            return
        scale = backend.to_numpy(gamma) / np.sqrt(denom)
        shift = backend.to_numpy(beta) - backend.to_numpy(mean) * scale
    derived = (("gamma / sqrt(running_var + epsilon)", scale), ("beta - running_mean * scale", shift))
    for name, value in derived:
        bad = _first_bad(~np.isfinite(value))
        if bad is not None:
            raise _fail(
                path,
                f"layers/{i}",
                f"{where}: {name} overflows in {dtype.name} at index {bad} ({value[bad]}); the statistics "
                "cannot normalise anything",
            )


def _check_scaler(scaler: Any, net: Any, key: str, path: Any) -> None:
    """A scaler's width fits the input (output) it is applied to, and ``a``, ``b`` and ``1 / b`` are finite
    (``b`` positive) in the model's dtype."""
    where = f"config.{key}"
    shapes = net.input_shapes if key == "input_scaler" else net.output_shapes
    what = "input" if key == "input_scaler" else "output"
    if len(shapes) == 1:  # a model with several inputs (outputs) does not apply the scaler
        if key == "input_scaler" and net.graph.inputs[0].dtype != "float":  # ids made floats: predict fails
            raise _fail(
                path, where, f"scales the input, but the model's input holds {net.graph.inputs[0].dtype} ids"
            )
        shape = tuple(shapes[0])
        k = scaler.a.ndim
        if k > len(shape) or shape[len(shape) - k :] != scaler.a.shape:
            raise _fail(
                path,
                where,
                f"has features of shape {scaler.a.shape}, which must be the end of the model's {what} shape "
                f"{shape} (one value per {what} feature)",
            )
    dtype = np.dtype(net.dtype)
    a, b = _as_dtype(scaler.a, dtype), _as_dtype(scaler.b, dtype)
    with np.errstate(all="ignore"):
        inverse = np.divide(dtype.type(1), b)
    for name, value, ok, expected in (
        ("a", a, np.isfinite(a), "finite"),
        ("b", b, np.isfinite(b) & (b > 0), "finite and positive"),
        ("1 / b", inverse, np.isfinite(inverse), "finite"),
    ):
        bad = _first_bad(~ok)
        if bad is not None:
            given = scaler.a if name == "a" else scaler.b
            raise _fail(
                path,
                where,
                f"{name} must be {expected} in {dtype.name} (the model's dtype); {name} at index {bad} is "
                f"{value[bad]} (from {float(given[bad])!r})",
            )


def _check_losses(net: Any, config: dict, path: Any) -> None:
    """Class weights: one per class of the output the loss belongs to, each finite in the model's dtype, a
    positive one still positive there, and not all zero (every loss would be 0 / 0). Loss weights and the
    regularizer's strength: finite in the model's dtype."""
    spec = config.get("loss")
    dtype = np.dtype(net.dtype)
    numbers = [(f"config.loss_weights[{k}]", w) for k, w in enumerate(config.get("loss_weights") or [])]
    if net.regularizer is not None and isinstance(getattr(net.regularizer, "lam", None), (int, float)):
        numbers.append(("config.regularizer.lam", net.regularizer.lam))
    for where, value in numbers:
        cast = _as_dtype(value, dtype)
        if not np.isfinite(cast):
            raise _fail(
                path,
                where,
                f"must be finite in {dtype.name} (the model's dtype), got {value!r}, which becomes {cast}",
            )
    for k, (loss, shape) in enumerate(zip(net.losses, net.output_shapes, strict=False)):
        weights = getattr(loss, "class_weights", None)
        if weights is None:
            continue
        where = f"config.loss[{k}]" if isinstance(spec, list) else "config.loss"
        classes = int(shape[-1]) if shape else 1
        if isinstance(loss, losses_mod.ClassWeightedBinaryCrossEntropy):
            classes = 2  # the labels 0 and 1 of its one sigmoid output (compile refused any other output)
        if len(weights) != classes:
            raise _fail(
                path,
                f"{where}.class_weights",
                f"must hold one weight per class of output {k} ({classes}), got {len(weights)}",
            )
        cast = _as_dtype(weights, dtype)
        weights = np.asarray(weights, dtype=np.float64)
        for problem, mask in (
            ("must be finite", ~np.isfinite(cast)),
            ("a positive weight must stay positive", (weights > 0) & ~(cast > 0)),
        ):
            bad = _first_bad(mask)
            if bad is not None:
                raise _fail(
                    path,
                    f"{where}.class_weights",
                    f"{problem} in {dtype.name} (the model's dtype); weight {bad[0]} is "
                    f"{float(weights[bad])!r}, which becomes {cast[bad]}",
                )
        if not (cast > 0).any():
            raise _fail(
                path,
                f"{where}.class_weights",
                f"must not all be zero (every loss would divide by zero), got {weights.tolist()}",
            )


def _check_optimizer_numbers(opt: Any, dtype: Any, path: Any) -> None:
    """The optimizer's numbers are usable in the model's dtype (1e300 is inf in float32: the first step would
    fail); see :meth:`neuro.optimizers.Optimizer.dtype_problem`."""
    problem = opt.dtype_problem(dtype)
    if problem is not None:
        raise _fail(path, f"config.optimizer.{problem[0]}", problem[1])


def _first_input_shapes(graph: Any) -> dict[int, Any]:
    """The input shape of each leaf layer's first call (what its arrays are built for)."""
    from neuro.graph import Functional

    out: dict[int, Any] = {}

    def walk(g: Any) -> None:
        for node in g.nodes:
            if isinstance(node.layer, Functional):
                walk(node.layer.graph)
            elif id(node.layer) not in out:
                out[id(node.layer)] = node.input_shape

    walk(graph)
    return out


def _chain(graph: Any, config: dict, cls: type) -> Any:
    """A Network from a graph that must be a chain (one input, each node on the previous one's output)."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError("a Network has one input and one output")
    prev = graph.inputs[0]
    for j, node in enumerate(graph.nodes):
        if (
            len(node.inbound) != 1
            or node.inbound[0] is not prev
            or node.multi_input
            or len(node.outputs) != 1
        ):
            raise ValueError(f"a Network is a chain; node {j} does not take the previous node's output")
        prev = node.outputs[0]
    if prev is not graph.outputs[0]:
        raise ValueError("a Network's output is its last layer's")
    if len({id(n.layer) for n in graph.nodes}) != len(graph.nodes):
        raise ValueError("a Network calls each layer once")
    net = cls(seed=config.get("seed"), name=config.get("name"))
    net._start(graph.inputs[0])  # its shape, dtype (token ids) and name
    for node in graph.nodes:
        layer = node.layer
        layer._nodes.clear()  # the chain calls it again on its own input
        net._append(layer, initialize=False)
    return net


def _load_trainable(net: Any, leaves: list[Layer], config: dict, path: Any) -> None:
    """The model's ``trainable`` flag and its frozen layers (absent in files without any: all trainable)."""
    frozen = config.get("frozen", [])
    if (
        not isinstance(frozen, list)
        or not all(type(i) is int and 0 <= i < len(leaves) for i in frozen)
        or len(set(frozen)) != len(frozen)
    ):
        raise _fail(
            path, "config.frozen", f"must be a list of distinct layer indices in [0, {len(leaves) - 1}]"
        )
    flag = config.get("trainable", True)
    if not isinstance(flag, bool):
        raise _fail(path, "config.trainable", f"must be true or false, got {str(flag)[:40]}")
    if not flag:
        net.trainable = False  # the model's own flag; the layers' flags follow
    frozen_set = set(frozen)
    for i, layer in enumerate(leaves):
        layer.trainable = i not in frozen_set


def _load_optimizer(net: Any, f: Any, path: Any) -> None:
    opt = h5s.get_group(f, "optimizer", path)
    h5s.check_no_extra(opt, ("slots",), path, expected_attrs=("iterations", "n_slots"))
    iterations = h5s.read_scalar_attr(opt, "iterations", path, "int", min_value=0, max_value=2**62)
    n_params = len(net.params)
    n_slots = h5s.read_scalar_attr(opt, "n_slots", path, "int", min_value=0, max_value=n_params)
    if net.optimizer is None:
        if iterations or n_slots:
            raise _fail(path, "optimizer", "holds optimizer state but the config has no optimizer")
        return
    names = net.optimizer.slot_names()
    if n_slots not in (0, n_params):
        raise _fail(
            path,
            "optimizer",
            f"n_slots must be 0 or {n_params} (one per parameter) for "
            f"{type(net.optimizer).__name__}, got {n_slots}",
        )
    nonneg = set(getattr(net.optimizer, "nonnegative_slots", ()))
    slots = []
    if "slots" in opt:
        slot_group = h5s.get_group(opt, "slots", path)
        h5s.check_no_extra(slot_group, [str(j) for j in range(n_slots)], path, expected_attrs=())
    for j, p in enumerate(net.params[:n_slots]):
        g = h5s.get_group(opt, f"slots/{j}", path)
        h5s.check_no_extra(g, names, path, expected_attrs=())
        # in the parameter's dtype, as the optimizer keeps it; running means of squares are never negative
        slots.append(
            {
                k: h5s.read_array(g, k, path, shape=tuple(p.shape), nonneg=k in nonneg, cast=p.dtype)
                for k in names
            }
        )
    with _config_error(path, "optimizer"):
        net.optimizer.set_state({"iterations": iterations, "slots": slots}, net.params)


# -- version 2 (neuro 0.2) -----------------------------------------------------------------------------------
def _migrate_v2(config: dict[str, Any]) -> dict[str, Any]:
    """Version 2 described a chain: an input shape and the layers in order. Layer names that were the
    default (the lower-cased class name) become default again, so a chain of two Dense layers loads with
    the unique names ``dense`` and ``dense_1``."""
    layers = []
    for spec in config["layers"]:
        cfg = dict(spec["config"])
        if cfg.get("name") == registry.normalize(spec["class"]) or cfg.get("name") == spec["class"].lower():
            cfg.pop("name")
        layers.append({"class": spec["class"], "config": cfg})
    nodes = [
        {"layer": i, "inbound": [["input", 0]] if i == 0 else [["node", i - 1, 0]], "list": False}
        for i in range(len(layers))
    ]
    graph = {
        "inputs": [{"name": "input", "shape": list(config["input_shape"]), "dtype": "float"}],
        "nodes": nodes,
        "outputs": [["node", len(layers) - 1, 0] if layers else ["input", 0]],
    }
    out = {k: v for k, v in config.items() if k != "input_shape"}
    out.update(model="Network", layers=layers, graph=graph)
    return out


# -- version 1 (neuro 0.1) -----------------------------------------------------------------------------------
def _spec_v1(cfg: Any) -> dict[str, Any]:
    """``{"name": ClassName, **arguments}`` of version 1 as ``{"class", "config"}``."""
    cfg = dict(cfg)
    return {"class": cfg.pop("name"), "config": cfg}


def _migrate_v1(config: dict[str, Any]) -> dict[str, Any]:
    """Version 1 configs named classes with a ``"name"`` key inside each config."""
    out = dict(config)
    out["loss"] = _spec_v1(config["loss"])
    opt = _spec_v1(config["optimizer"])
    if isinstance(opt["config"].get("learning_rate"), dict):
        opt["config"]["learning_rate"] = _spec_v1(opt["config"]["learning_rate"])
    out["optimizer"] = opt
    if config.get("regularizer") is not None:
        out["regularizer"] = _spec_v1(config["regularizer"])
    layers = []
    for spec in config["layers"]:
        cfg = dict(spec["config"])
        if spec["class"] in {"Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax"} or "class" in cfg:
            cfg.pop("name", None)
            cfg.pop("class", None)
        act = cfg.get("activation")
        if isinstance(act, dict):
            act = dict(act)
            act.pop("name", None)
            cfg["activation"] = {"class": act.pop("class"), "config": act}
        for key in ("weights_initializer", "biases_initializer"):
            if isinstance(cfg.get(key), dict):
                cfg[key] = _spec_v1(cfg[key])
        layers.append({"class": spec["class"], "config": cfg})
    out["layers"] = layers
    return out
