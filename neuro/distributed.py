"""Data-parallel training over MPI: one model trained by P processes, each on its part of every batch.

Start P copies of the same training script with an MPI launcher and ask ``fit`` to cooperate::

    mpiexec -n 4 python train.py          # train.py calls net.fit(..., distributed=True)

MPI is reached through mpi4py, an optional extra (``pip install 'neuro[mpi]'``, which brings mpi4py and the
MPICH wheel); importing neuro never imports it. :func:`init` starts MPI (any other function here does so
on first use); :func:`rank`, :func:`size` and :func:`is_main` say where a process stands. Run without a
launcher (or with ``-n 1``), ``fit(distributed=True)`` runs the same code path with P = 1.

What ``fit(..., distributed=True)`` does on every rank (``distributed=Options(...)`` sets the choices):

- **Start**: the ranks compare a digest of the network (the JSON config of every layer, the loss, the
  optimizer and the regularizer, the dtype and every parameter and buffer shape), the number of training
  and validation samples and the fit arguments; any difference is reported by rank 0 as a ValueError
  raised on every rank, before anything is trained. Then rank 0's weights, buffers, optimizer state,
  generator state and seed are broadcast, so every rank starts identical.
- **Data**: each epoch has one global permutation drawn from a generator seeded by the seed (the network's, or
  one drawn by rank 0 when it has none), the epoch and the optimizer's step count at its start (so a second
  ``fit`` shuffles anew and a run resumed from a checkpoint shuffles as the original would have): identical on
  every rank, and independent of how much randomness augmentation or dropout used. Every global batch of
  ``batch_size`` samples is cut into P contiguous parts (the first ``len(batch) % P`` one sample longer; a
  part may be empty) and rank r reads only part r: arrays by index, a data set split through
  ``split.batches(part, len(part), augment=True, rng=...)``. Augmentation and dropout draw from a generator
  seeded by the same and the rank.
- **Step**: each rank runs forward and backward on its part; then ONE ``Allreduce`` over one flat buffer
  combines ``D_r · g_r`` (every gradient scaled by the rank's loss normaliser ``D_r``, its sample count
  without class weights), the loss sums, the normalisers, an error flag and a stop flag, and every rank sets
  ``g = Σ_r D_r g_r / Σ_r D_r``: the gradient of the mean loss over the global batch, whatever the part sizes.
  With BatchNorm's default local statistics, rank 0's running averages travel in the same buffer (the other
  ranks add zeros), so the ranks' buffers stay bitwise equal, as PyTorch DDP broadcasts them. The update and
  the non-finite guard of :meth:`~neuro.models.Network.train_step` then see identical values on every rank, so
  they decide alike and the ranks stay bitwise identical.
- **Synchronised BatchNorm** (``Options(sync_batchnorm=True)``): the batch statistics are those of the
  global batch: the forward reduces the per-feature sums and counts, then the per-feature sums of squared
  deviations from the global mean (the two-pass variance a single process computes); the backward
  reduces its two per-feature sums ``Σ g`` and ``Σ g·x̂`` (scaled by ``D_r``; a part whose samples all
  weigh 0 still acts through the statistics). Training then equals single-process training on the global
  batch.
- **Figures**: the loss is the reduced sum over the reduced normaliser; metrics are reduced exactly at
  the end of each epoch (and before each ``on_batch_end``): counts and confusion matrices are summed, R²
  states merged with Chan's parallel update. Validation data is split in P contiguous parts, evaluated and
  reduced the same way. Rank 0 alone prints; during an epoch its progress bar shows the exact loss and
  rank 0's own running metrics.
- **Files**: on the other ranks :meth:`~neuro.models.Network.save` does nothing while ``fit`` runs, so
  :class:`~neuro.callbacks.ModelCheckpoint` (and a user's own ``save`` in a callback) writes once, from rank
  0; :class:`~neuro.callbacks.CSVLogger` writes from rank 0 only.
- **Stopping**: ``network.stop_training`` is agreed after every epoch and, when a callback has a batch hook,
  after every batch (a one-integer ``Allreduce``; without batch hooks the flag travels in the step's
  reduction): when any rank's callback stops, every rank stops after the same batch or epoch.
- **Failures**: an exception in a rank's forward, backward or data loading is sent with the step's error
  flag: the failing rank raises its own exception and every other rank a :class:`DistributedError` naming
  it, at the same step (with synchronised BatchNorm the failing rank first joins the statistic reduction
  the others wait in, with the flag set). Any other exception leaving ``fit`` on some ranks only (a
  callback, a metric) is detected by a barrier on a separate communicator: when the other ranks do not
  arrive within ``Options.failure_timeout`` seconds, the failing rank prints its traceback and calls
  ``MPI_Abort``, which ends every rank. After :func:`init` on more than one rank, an exception that ends a
  rank's script also aborts the job, rather than leaving the others waiting forever (an exception that
  the script itself catches on some ranks only is the script's to handle).
- **Determinism**: ``Options(deterministic=True)`` replaces each ``Allreduce`` by a ``Gather`` to rank 0,
  a sum in rank order (``((g_0 + g_1) + g_2) + …``) and a ``Bcast``: the result is then fixed by P and
  the data alone, whatever the MPI library, network or algorithm thresholds. By default the MPI library's
  ``Allreduce`` is used. For P = 2 it is deterministic with any MPI library, because a sum of two terms
  does not depend on their order (IEEE addition is commutative) and the reduced values are therefore the
  same bits on both ranks and from run to run; with MPICH 5.0 on one machine the result also equalled
  the rank-order sum for P = 3 in our tests, but the MPI standard only recommends, and does not
  guarantee, a fixed order for larger P. Every rank receives the same bits in either mode.

Every rank must call ``fit`` with the same arguments and the same callbacks: the ranks check the network,
the data sizes and the arguments, not the data itself or what the callbacks do. On a GPU the reductions go
through host memory (NumPy buffers; CUDA-aware MPI is not used).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import sys
import time
import traceback
from typing import Any

import numpy as np

from neuro import backend, registry

_INSTALL = "pip install 'neuro[mpi]'"
#: Environment variables an MPI launcher sets to the number of processes (MPICH/Intel MPI, Open MPI, PMIx).
_LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")

_comm: Any = None  # the communicator neuro trains over, once init() ran
_fail_comms: dict[int, Any] = {}  # a duplicate of each communicator, for the failure handshake
_hook_installed = False


__all__ = ["DistributedError", "FitContext", "Options", "init", "is_main", "options", "rank", "size"]


class DistributedError(RuntimeError):
    """Another rank failed during a distributed training step; every rank stopped at the same step."""


@dataclasses.dataclass(frozen=True)
class Options:
    """Choices of a distributed ``fit`` (``fit(..., distributed=Options(...))``; ``True`` means the defaults).

    Args:
        sync_batchnorm: BatchNorm normalises with the statistics of the global batch (reduced over the ranks
            in the forward and the backward) instead of each rank's part.
        deterministic: reduce in rank order (Gather, sum, Bcast) instead of with ``Allreduce``, so that the
            bits depend only on P and the data.
        failure_timeout: seconds a rank that raised outside a training step waits for the other ranks to
            raise too before it aborts the job (``MPI_Abort``).
    """

    sync_batchnorm: bool = False
    deterministic: bool = False
    failure_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in ("sync_batchnorm", "deterministic"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        t = self.failure_timeout
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < float("inf"):
            raise ValueError(f"failure_timeout must be a positive number of seconds, got {t!r}")


def options(value: Any) -> Options:
    """Read ``fit``'s ``distributed`` argument.

    Args:
        value: ``True``, an :class:`Options` or a dict of its fields.

    Returns:
        The options.

    Raises:
        TypeError: for anything else.
    """
    if value is True:
        return Options()
    if isinstance(value, Options):
        return value
    if isinstance(value, dict):
        return Options(**value)
    raise TypeError(f"distributed must be True, False, a neuro.distributed.Options or a dict, got {value!r}")


# -- the process group ------------------------------------------------------------------------------------
def _mpi() -> Any:
    """The ``mpi4py.MPI`` module (importing it starts MPI).

    Raises:
        ImportError: when mpi4py (or an MPI library) is missing, naming the extra to install.
    """
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(
            f"distributed training needs mpi4py and an MPI library: {_INSTALL} "
            "(installs mpi4py and the MPICH wheel); then start the script with mpiexec -n P python ..."
        ) from exc
    return MPI


def init(comm: Any = None) -> Any:
    """Start MPI if it is not running and choose the communicator neuro trains over.

    Called by every function of this module on first use, so calling it is optional. Under ``mpiexec``
    the communicator is ``MPI.COMM_WORLD``; without a launcher it is a world of one process. On more than
    one rank it also makes an uncaught exception abort the whole job (after printing its traceback), so
    that a rank that dies never leaves the others waiting in a collective.

    Args:
        comm: an mpi4py communicator (for example a split of ``COMM_WORLD``); ``None`` keeps the current
            one (``COMM_WORLD`` at first).

    Returns:
        The communicator.

    Raises:
        ImportError: when mpi4py is missing (``pip install 'neuro[mpi]'``).
    """
    global _comm
    mpi = _mpi()
    if comm is not None:
        _comm = comm
    elif _comm is None:
        _comm = mpi.COMM_WORLD
    if _comm.Get_size() > 1:
        _install_excepthook()
    return _comm


def _launched_size() -> int:
    for var in _LAUNCHER_SIZE:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return 1


def _world() -> Any:
    """The communicator, or ``None`` when mpi4py is missing and no launcher started several processes."""
    if _comm is not None:
        return _comm
    try:
        return init()
    except ImportError:
        if _launched_size() > 1:
            raise
        return None


def rank() -> int:
    """This process's rank, 0 to ``size() - 1`` (0 without MPI).

    Raises:
        ImportError: when a launcher started several processes but mpi4py is missing.
    """
    comm = _world()
    return 0 if comm is None else comm.Get_rank()


def size() -> int:
    """The number of processes training together (1 without a launcher, or without MPI).

    Raises:
        ImportError: when a launcher started several processes but mpi4py is missing.
    """
    comm = _world()
    return 1 if comm is None else comm.Get_size()


def is_main() -> bool:
    """True on rank 0, the rank that prints, logs and writes files."""
    return rank() == 0


def _install_excepthook() -> None:
    global _hook_installed
    if _hook_installed:
        return
    previous = sys.excepthook

    def abort_on_uncaught(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if _comm is None or _comm.Get_size() == 1 or getattr(value, "_neuro_all_ranks", False):
            previous(kind, value, tb)  # raised on every rank alike: each one ends by itself
            return
        _abort(
            f"neuro.distributed: rank {_comm.Get_rank()} ended with an uncaught {kind.__name__}; "
            "aborting every rank (MPI_Abort)",
            value,
        )

    sys.excepthook = abort_on_uncaught
    _hook_installed = True


def _abort(message: str, exc: BaseException) -> None:
    """Print ``message`` and the traceback of ``exc`` in one piece, then end every rank with MPI_Abort."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    sys.stderr.write(f"{message}\n{text}")
    sys.stderr.flush()
    time.sleep(0.2)  # let the launcher forward the text before it kills the processes
    _comm.Abort(1)


def _all_ranks(exc: BaseException) -> BaseException:
    """Mark an exception as raised on every rank alike (no abort needed)."""
    try:
        exc._neuro_all_ranks = True  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exceptions without a __dict__
        pass
    return exc


class _RemoteFailure(Exception):
    """Raised inside a step on a rank that learnt, from a reduction, that another rank failed."""


def _bounds(n: int, parts: int) -> list[int]:
    """Start of each of ``parts`` contiguous parts of ``n`` items (the first ``n % parts`` one longer)."""
    base, extra = divmod(n, parts)
    return [k * base + min(k, extra) for k in range(parts + 1)]


def _json_default(obj: Any) -> Any:
    return obj.tolist() if hasattr(obj, "tolist") else repr(obj)


def _describe(network: Any) -> tuple[str, str]:
    """A digest of the network's architecture and a short readable form of it."""

    def serialized(obj: Any) -> Any:
        try:
            return registry.serialize(obj)
        except Exception:  # a callable learning rate without a config: its type is what can be compared
            return type(obj).__name__

    desc = {
        "input_shape": list(network.input_shape),
        "dtype": np.dtype(network.dtype).name,
        "device": network.device,
        "loss": serialized(network.loss),
        "optimizer": serialized(network.optimizer),
        "regularizer": None if network.regularizer is None else serialized(network.regularizer),
        "class_names": None if network.class_names is None else [str(c) for c in network.class_names],
        "scalers": [
            None if s is None else s.get_config() for s in (network.input_scaler, network.output_scaler)
        ],
        "layers": [serialized(layer) for layer in network.layers],
        "shapes": [
            [i, k, list(a.shape)]
            for i, layer in enumerate(network.layers)
            for k, a in (*layer.params.items(), *layer.buffers.items())
        ],
    }
    text = json.dumps(desc, sort_keys=True, default=_json_default)
    short = ", ".join(f"{type(layer).__name__}{tuple(layer.output_shape)}" for layer in network.layers)
    return hashlib.sha256(text.encode()).hexdigest()[:16], f"[{short}] in {desc['dtype']}"


# -- metrics ----------------------------------------------------------------------------------------------
def _metric_state(m: Any) -> Any:
    """The host-side state of a metric, to be merged over ranks."""
    from neuro import metrics as M

    if isinstance(m, M.R2Score):
        if m.mean is None:
            return None
        return (
            m.count,
            *(np.asarray(backend.to_numpy(a), dtype=np.float64) for a in (m.mean, m.m2, m.ss_res)),
        )
    if isinstance(m, M._ConfusionMetric):
        return None if m.matrix is None else np.asarray(backend.to_numpy(m.matrix))
    if isinstance(m, M.Accuracy):
        return int(backend.to_numpy(m.correct)), int(m.count)
    if isinstance(m, M._ErrorSum):
        return float(backend.to_numpy(m.total)), int(m.count)
    raise TypeError(
        f"metric {type(m).__name__} cannot be reduced over ranks; a distributed fit supports Accuracy, "
        "TopKAccuracy, Precision, Recall, F1Score, MeanAbsoluteError, MeanSquaredError, "
        "RootMeanSquaredError, R2Score (and their subclasses)"
    )


def _merged_metric(m: Any, states: list[Any]) -> Any:
    """A copy of ``m`` holding the merge, in rank order, of every rank's state."""
    from neuro import metrics as M

    out = copy.copy(m)
    if isinstance(m, M.R2Score):
        out.reset()
        for st in states:
            if st is None:
                continue
            n_b, mean_b, m2_b, ss_b = st
            if out.mean is None:
                out.count, out.mean, out.m2, out.ss_res = n_b, mean_b, m2_b, ss_b
                continue
            n = out.count + n_b
            delta = mean_b - out.mean
            out.m2 = out.m2 + m2_b + delta * delta * (out.count * n_b / n)
            out.mean = out.mean + delta * (n_b / n)
            out.ss_res = out.ss_res + ss_b
            out.count = n
    elif isinstance(m, M._ConfusionMetric):
        present = [st for st in states if st is not None]
        if any(st.shape != present[0].shape for st in present):
            raise ValueError(f"the ranks saw different numbers of classes for {m.name}")
        out.matrix = sum(present[1:], present[0].copy()) if present else None
    else:  # Accuracy and the error sums: a sum and a count
        total = states[0][0]
        for st in states[1:]:
            total = total + st[0]
        if isinstance(m, M.Accuracy):
            out.correct = total
        else:
            out.total = total
        out.count = sum(st[1] for st in states)
    return out


class _ShardMetric:
    """A metric updated with one rank's part of every batch; :meth:`FitContext.sync_metrics` merges it."""

    def __init__(self, metric: Any) -> None:
        _metric_state(metric)  # raises TypeError for a metric that cannot be merged
        self.metric = metric
        self.name = metric.name
        self.merged: Any = None

    def reset(self) -> None:
        self.metric.reset()
        self.merged = None

    def update(self, y_pred: Any, y_true: Any) -> None:
        if len(y_pred):
            self.metric.update(y_pred, y_true)
        self.merged = None

    def result(self) -> float:
        """The merged result after a sync, else this rank's own."""
        return (self.metric if self.merged is None else self.merged).result()


class _ZeroUpstream:
    """A loss whose gradient is zero: the backward of a part whose samples all weigh 0, which still acts on
    the global batch through synchronised BatchNorm statistics."""

    def __init__(self, loss: Any) -> None:
        self._loss = loss

    def backward(self, y_pred: Any, y_true: Any) -> Any:
        return backend.get_array_module(y_pred).zeros_like(y_pred)

    def backward_logits(self, z: Any, y_true: Any, y_pred: Any = None) -> Any:
        return backend.get_array_module(z).zeros_like(z)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loss, name)


class _Shard:
    """The samples ``index`` of a source, read as a source of their own."""

    def __init__(self, source: Any, index: np.ndarray) -> None:
        self.source, self.index = source, index

    def __len__(self) -> int:
        return len(self.index)

    def batches(self, order: np.ndarray, batch_size: int, augment: bool = False, rng: Any = None) -> Any:
        return self.source.batches(self.index[order], batch_size, augment, rng)


# -- one distributed fit ----------------------------------------------------------------------------------
class FitContext:
    """The state of one distributed ``fit``: ``network._dist`` while it runs (``None`` otherwise).

    Creating it checks that the ranks agree and broadcasts rank 0's state (collective: every rank's
    ``fit`` creates it at the same point). ``fit`` then asks it for each epoch's batches, runs its
    :meth:`forward_backward` inside the guarded train step, syncs metrics and stop flags through it, and
    calls :meth:`close` at the end.

    Args:
        network: the network being trained.
        choice: ``fit``'s ``distributed`` argument (``True``, :class:`Options` or a dict).
        train: the training source (``len`` and ``batches(order, batch_size, augment, rng)``).
        valid: the validation source or ``None``.
        batch_size: samples per global batch.
        fit_args: the other ``fit`` arguments every rank must agree on (epochs, shuffle, ...).
        metrics: the metric objects of the fit.
        callbacks: the callbacks of the fit.

    Raises:
        ImportError: without mpi4py.
        TypeError: for a metric that cannot be reduced over ranks.
        ValueError: on every rank, when the ranks' networks, data sizes or arguments differ.
    """

    def __init__(
        self,
        network: Any,
        choice: Any,
        train: Any,
        valid: Any,
        batch_size: int,
        fit_args: dict[str, Any],
        metrics: list[Any],
        callbacks: list[Any],
    ) -> None:
        from neuro.callbacks import Callback
        from neuro.layers.batchnorm import BatchNorm

        self.options = options(choice)
        self.mpi = _mpi()
        self.comm = init()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.is_main = self.rank == 0
        self.net = network
        self.batch_size = batch_size
        self.metrics = [_ShardMetric(m) for m in metrics]
        # a callback with a batch hook may stop after any batch: then the ranks agree after each one
        self._batch_hooks = any(
            type(cb).on_batch_begin is not Callback.on_batch_begin
            or type(cb).on_batch_end is not Callback.on_batch_end
            for cb in callbacks
        )
        self._check_agreement(train, valid, batch_size, {**fit_args, "batch hooks": self._batch_hooks})
        key = id(self.comm)
        if key not in _fail_comms:
            _fail_comms[key] = self.comm.Dup()  # collective, once per communicator
        self._fail_comm = _fail_comms[key]
        self.seed = self._broadcast_state()
        layers = network.layers
        self._sync_layers = (
            [ly for ly in layers if isinstance(ly, BatchNorm)] if self.options.sync_batchnorm else []
        )
        # the reductions of one step with synchronised BatchNorm, in order: sizes (with the error flag)
        features = [ly.input_shape[-1] for ly in self._sync_layers]
        self._schedule = [s for f in features for s in (f + 2, f + 1)] + [
            2 * ly.input_shape[-1] + 1 for ly in reversed(self._sync_layers) if ly.need_input_grad
        ]
        self._broadcast = [
            b for ly in layers if ly not in self._sync_layers for b in ly.buffers.values()
        ]  # buffers rank 0 hands out after each step
        self._n_grad = sum(int(p.size) for p in network.params)
        n_buf = sum(int(b.size) for b in self._broadcast)
        # one step's reduction: D_r·gradients, loss sum, normaliser, error flag, stop flag, rank 0's buffers
        self._buf = np.zeros(self._n_grad + 4 + n_buf, dtype=network.dtype)
        self._stop_requested = False
        self._gathered: dict[tuple[int, str], np.ndarray] = {}
        self._pending: BaseException | None = None
        self._sync_done = 0
        self._unit = 1.0  # this rank's gradient unit: its loss normaliser (1 when that is 0)
        self.batch_samples = 0
        self._device_rng = network._device_rng
        for ly in self._sync_layers:
            ly._sync = self
        network._dist = self

    # -- start --------------------------------------------------------------------------------------------
    def _check_agreement(self, train: Any, valid: Any, batch_size: int, fit_args: dict[str, Any]) -> None:
        digest, readable = _describe(self.net)
        mine = {
            "network": digest,
            "training samples": len(train),
            "validation samples": None if valid is None else len(valid),
            "batch_size": batch_size,
            **fit_args,
            "metrics": [m.name for m in self.metrics],
            "options": (self.options.sync_batchnorm, self.options.deterministic),
        }
        everyone = self.comm.gather((mine, readable), root=0)
        message = ""
        if self.is_main:
            problems = []
            base, base_readable = everyone[0]
            for r, (theirs, their_readable) in enumerate(everyone[1:], start=1):
                for k, v in base.items():
                    if theirs.get(k) != v:
                        if k == "network":
                            problems.append(
                                f"rank {r}'s network {their_readable} differs from rank 0's {base_readable} "
                                f"(config digest {theirs[k]} against {v})"
                            )
                        else:
                            problems.append(f"rank {r} has {k} = {theirs.get(k)!r}, rank 0 has {v!r}")
            if problems:
                message = "distributed fit: the ranks disagree, nothing was trained: " + "; ".join(
                    problems[:8]
                )
        message = self.comm.bcast(message, root=0)
        if message:
            raise _all_ranks(ValueError(message))

    def _broadcast_state(self) -> int:
        """Give every rank rank 0's weights, buffers, optimizer and generator state; return the seed."""
        net, comm = self.net, self.comm
        seed = net.seed if net.seed is not None else np.random.SeedSequence().entropy
        seed = comm.bcast(seed if self.is_main else None, root=0)
        if self.size > 1:
            weights = net.get_weights()
            flat = np.concatenate([w.ravel() for w in weights]) if weights else np.zeros(0, net.dtype)
            comm.Bcast(flat, root=0)
            if not self.is_main:
                parts, start = [], 0
                for w in weights:
                    parts.append(flat[start : start + w.size].reshape(w.shape))
                    start += w.size
                net.set_weights(parts)
            opt_state = comm.bcast(net.optimizer.get_state() if self.is_main else None, root=0)
            rng_state = comm.bcast(net.rng.bit_generator.state if self.is_main else None, root=0)
            if not self.is_main:
                net.optimizer.set_state(opt_state, net.params)
                net.rng.bit_generator.state = rng_state
        return int(seed)

    # -- data ---------------------------------------------------------------------------------------------
    def _generator(self, *key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))

    def _empty(self) -> tuple[np.ndarray, np.ndarray]:
        net = self.net
        return np.empty((0, *net.input_shape), dtype=net.dtype), np.empty((0,), dtype=net.dtype)

    def batches(self, train: Any, epoch: int, shuffle: bool) -> Any:
        """Yield this rank's part of every global batch of the epoch (possibly empty).

        The global order comes from a generator seeded by ``(seed, epoch, step count)``; augmentation and
        dropout draw from one seeded by ``(seed, epoch, step count, rank)``. An exception while reading is
        kept and raised on every rank by the next step.

        Args:
            train: the training source (arrays or a data set split) of ``fit``.
            epoch: the 0-based epoch.
            shuffle: permute the samples (else they are taken in order).

        Yields:
            ``(x, y)`` host batches: this rank's part of each global batch.
        """
        n, b, p = len(train), self.batch_size, self.size
        step = self.net.optimizer.iterations
        order = self._generator(0, epoch, step).permutation(n) if shuffle else np.arange(n)
        rng = self._generator(1, epoch, step, self.rank)
        self.net._device_rng = backend.DeviceRNG(self.net.xp, rng)
        for start in range(0, n, b):
            idx = order[start : start + b]
            bounds = _bounds(len(idx), p)
            part = idx[bounds[self.rank] : bounds[self.rank + 1]]
            self.batch_samples = len(idx)
            batch = self._empty()
            if len(part) and self._pending is None:
                try:
                    batch = next(iter(train.batches(part, len(part), augment=True, rng=rng)))
                except Exception as exc:  # reported to every rank by the step
                    self._pending = exc
            yield batch

    # -- reductions ---------------------------------------------------------------------------------------
    def _allreduce(self, buf: np.ndarray) -> np.ndarray:
        """Sum ``buf`` over the ranks in place (in rank order when deterministic); every rank gets the same
        bits."""
        if self.size == 1:
            return buf
        if not self.options.deterministic:
            self.comm.Allreduce(self.mpi.IN_PLACE, buf, op=self.mpi.SUM)
            return buf
        key = (buf.size, buf.dtype.str)
        rows = self._gathered.get(key)
        if rows is None and self.is_main:
            rows = self._gathered[key] = np.empty((self.size, buf.size), dtype=buf.dtype)
        self.comm.Gather(buf, rows, root=0)
        if self.is_main:
            buf[...] = rows[0]
            for r in range(1, self.size):
                buf += rows[r]
        self.comm.Bcast(buf, root=0)
        return buf

    def _sync_allreduce(self, local: np.ndarray) -> np.ndarray:
        """One reduction of synchronised BatchNorm (float64, with the error flag)."""
        buf = np.empty(local.size + 1, dtype=np.float64)
        buf[:-1] = local
        buf[-1] = 0.0
        self._allreduce(buf)
        self._sync_done += 1
        if buf[-1] != 0:
            raise _RemoteFailure()
        return buf[:-1]

    def _join_sync_failed(self) -> None:
        """On a rank that failed in a step with synchronised BatchNorm: join the statistics reduction the
        other ranks wait in (if any is left) with the error flag set, so that they stop there too."""
        if self._sync_done < len(self._schedule):
            buf = np.zeros(self._schedule[self._sync_done], dtype=np.float64)
            buf[-1] = 1.0
            self._allreduce(buf)
            self._sync_done += 1

    def sync_metrics(self) -> None:
        """Merge every rank's metric states (exact: sums of counts, R² merges), identically on each rank."""
        if not self.metrics:
            return
        states = [_metric_state(m.metric) for m in self.metrics]
        everyone = self.comm.allgather(states) if self.size > 1 else [states]
        for i, m in enumerate(self.metrics):
            m.merged = _merged_metric(m.metric, [st[i] for st in everyone])

    def _agree_stop(self) -> bool:
        """True on every rank when any rank's ``network.stop_training`` is set (which it then is on all)."""
        if self.size > 1:
            flag = np.array([1 if self.net.stop_training else 0], dtype=np.int32)
            self.comm.Allreduce(self.mpi.IN_PLACE, flag, op=self.mpi.MAX)
            self.net.stop_training = bool(flag[0])
        return bool(self.net.stop_training)

    def stop_after_batch(self) -> bool:
        """Whether every rank stops after this batch: any rank's ``stop_training`` counts.

        With a batch callback the ranks agree now (a one-integer ``Allreduce``). Without one, only another
        thread can have set the flag; the step's reduction carried it, and a flag set later is carried by
        the next step's, so no extra reduction is needed.
        """
        if self._batch_hooks or self.size == 1:
            return self._agree_stop()
        if self._stop_requested:
            self.net.stop_training = True
        return self._stop_requested

    def stop_after_epoch(self) -> bool:
        """Whether every rank stops after this epoch (a one-integer ``Allreduce``)."""
        return self._agree_stop()

    # -- the training step --------------------------------------------------------------------------------
    def _local_pass(self, xb: Any, yb: Any) -> tuple[Any, Any, float, float]:
        """Forward and backward of this rank's part.

        Returns:
            ``(pred, loss sum, normaliser D_r, scale)``: the gradients left on the layers times ``scale``
            are this rank's share of ``D · (gradient of the global mean loss)``; scale 0 means no share.
        """
        net = self.net
        xp = net.xp
        self._unit = 1.0
        if len(xb) == 0:
            if self._sync_layers:  # the statistics reductions still need this rank
                ctxs = []
                for ly in self._sync_layers:
                    ctxs.append(ly.forward(xp.zeros((0, *ly.input_shape), dtype=net.dtype), True)[1])
                for ly, ctx in zip(reversed(self._sync_layers), reversed(ctxs), strict=True):
                    if ly.need_input_grad:
                        ly.backward(xp.zeros((0, *ly.output_shape), dtype=net.dtype), ctx)
            return xp.zeros((0, *net.output_shape), dtype=net.dtype), 0.0, 0.0, 0.0
        head = net._train_head or net.head
        out, pred, ctxs = head.forward(xb, True, net._device_rng)
        total, denom = head.terms(out, yb)
        d = float(backend.to_numpy(denom)) if backend.is_array(denom) else float(denom)
        if d == 0:  # every sample of this part weighs 0 (class_weight): its loss has no gradient
            if not self._sync_layers:
                return pred, total, 0.0, 0.0
            # but through the global statistics its samples still move the others' loss
            loss, head.loss = head.loss, _ZeroUpstream(head.loss)
            try:
                head.backward(out, pred, yb, ctxs)
            finally:
                head.loss = loss
            return pred, total, 0.0, 1.0
        self._unit = d
        head.backward(out, pred, yb, ctxs)
        net._add_regularizer_grads()
        return pred, total, d, d

    def forward_backward(self, xb: Any, yb: Any, saved: Any) -> tuple[Any, Any, Any]:
        """The step's forward and backward, and its one reduction.

        After it every rank holds the gradients of the global batch's mean loss, the global loss sum and
        normaliser and (local BatchNorm) rank 0's buffers.

        Args:
            xb: this rank's part of the batch, on the device.
            yb: its targets.
            saved: the buffers from before the step, put back when a rank fails.

        Returns:
            ``(pred, total, denom)``: this rank's predictions and the global loss terms.

        Raises:
            DistributedError: when another rank failed (the failing rank raises its own exception).
        """
        net = self.net
        xp = net.xp
        self._sync_done = 0
        error, self._pending = self._pending, None
        remote = False
        pred: Any = None
        total: Any = 0.0
        d = scale = 0.0
        if error is None:
            try:
                pred, total, d, scale = self._local_pass(xb, yb)
            except _RemoteFailure:
                remote = True
            except Exception as exc:
                error = exc
        if error is not None:
            self._join_sync_failed()
        buf, n = self._buf, self._n_grad
        ok = error is None and not remote
        if ok and scale != 0:
            start = 0
            for g in net.grads:
                part = buf[start : start + g.size]
                if xp is np:
                    np.multiply(g.reshape(-1), scale, out=part)
                else:
                    part[...] = backend.to_numpy(g).reshape(-1) * scale
                start += g.size
        else:
            buf[:n] = 0
        buf[n] = float(backend.to_numpy(total)) if ok else 0.0
        buf[n + 1] = d if ok else 0.0
        buf[n + 2] = 1.0 if error is not None else 0.0
        buf[n + 3] = 1.0 if net.stop_training else 0.0
        start = n + 4
        for b in self._broadcast:
            part = buf[start : start + b.size]
            part[...] = backend.to_numpy(b).reshape(-1) if self.is_main else 0
            start += b.size
        self._allreduce(buf)
        if buf[n + 2] != 0 or not ok:
            if saved is not None:  # the buffers from before the step
                for layer, bufs in zip(net.layers, saved, strict=True):
                    for k, v in bufs.items():
                        layer.buffers[k][...] = v
            self._raise_failure(error)
        denom = buf[n + 1]
        self._stop_requested = bool(buf[n + 3] != 0)
        start = 0
        for g in net.grads:
            part = buf[start : start + g.size].reshape(g.shape)
            if xp is np:
                np.divide(part, denom, out=g)
            else:
                g[...] = backend.to_device(part / denom, xp)
            start += g.size
        for b in self._broadcast:
            b[...] = backend.to_device(buf[start : start + b.size].reshape(b.shape), xp)
            start += b.size
        return pred, xp.asarray(buf[n]), float(denom)

    def _raise_failure(self, error: BaseException | None) -> None:
        """Raise, on every rank, the failure some rank flagged."""
        mine = None if error is None else f"{type(error).__name__}: {error}"
        everyone = self.comm.allgather(mine) if self.size > 1 else [mine]
        if error is not None:
            raise _all_ranks(error)
        failed = [(r, msg) for r, msg in enumerate(everyone) if msg is not None]
        text = "; ".join(f"rank {r}: {msg}" for r, msg in failed)
        raise _all_ranks(
            DistributedError(
                f"{text} (the failing rank raised it during a training step; every rank stopped at that step)"
            )
        )

    # -- synchronised BatchNorm ----------------------------------------------------------------------------
    def batch_norm_train(
        self, x: Any, gamma: Any, beta: Any, epsilon: float
    ) -> tuple[Any, Any, Any, Any, int]:
        """:func:`neuro.functional.batch_norm_train` with the statistics of the global batch.

        Args:
            x: this rank's input ``(N_r, ..., F)``.
            gamma: scale ``(F,)``.
            beta: shift ``(F,)``.
            epsilon: added to the variance.

        Returns:
            ``(y, mean, var, ctx, m)``: as the function, and the number of values per feature over all
            ranks (for the unbiased running variance).
        """
        xp = backend.get_array_module(x, gamma, beta)
        dt = x.dtype.type
        x2 = x.reshape(-1, x.shape[-1])
        local = np.empty(x2.shape[1] + 1, dtype=np.float64)
        local[:-1] = backend.to_numpy(x2.sum(axis=0, dtype=np.float64))
        local[-1] = x2.shape[0]
        sums = self._sync_allreduce(local)
        m = int(sums[-1])
        mean = backend.to_device((sums[:-1] / m).astype(dt), xp)
        xhat = x2 - mean
        squares = backend.to_numpy(xp.einsum("ij,ij->j", xhat, xhat).astype(np.float64))
        var = backend.to_device((self._sync_allreduce(squares) / m).astype(dt), xp)
        inv_std = 1.0 / xp.sqrt(var + dt(epsilon))
        xhat *= inv_std
        y = xhat * gamma
        y += beta
        return y.reshape(x.shape), mean, var, (xhat, inv_std, m), m

    def batch_norm_backward(
        self, grad: Any, ctx: Any, gamma: Any, dgamma: Any, dbeta: Any, need_input_grad: bool = True
    ) -> Any:
        """:func:`neuro.functional.batch_norm_backward` through the global statistics.

        ``g`` is in the unit of this rank's loss (its normaliser ``D_r``). ``dgamma`` and ``dbeta`` stay this
        rank's sums (the step's reduction weighs them); the input gradient uses ``T1 = Σ_r D_r·Σ g`` and
        ``T2 = Σ_r D_r·Σ g·x̂`` over the ranks (the sums in the unit of the global loss sum):
        ``dL_r/dx = gamma·inv_std · (g − (T1 + x̂·T2) / (D_r·m))`` with m values per feature in all (a
        part whose samples all weigh 0 uses 1 for ``D_r``, and g = 0).

        Args:
            grad: dL_r/dy for this rank's part.
            ctx: the context of :meth:`batch_norm_train`.
            gamma: the scale of the forward pass.
            dgamma: array ``(F,)`` this rank's gamma gradient is written into.
            dbeta: array ``(F,)`` this rank's beta gradient is written into.
            need_input_grad: compute dL/dx (else return ``None``).
        """
        xhat, inv_std, m = ctx
        xp = backend.get_array_module(grad, gamma)
        g = grad.reshape(-1, grad.shape[-1])
        g.sum(axis=0, out=dbeta)
        dgamma[...] = xp.einsum("ij,ij->j", g, xhat)
        if not need_input_grad:
            return None
        d = self._unit
        local = np.concatenate([backend.to_numpy(dbeta), backend.to_numpy(dgamma)]).astype(np.float64) * d
        t = self._sync_allreduce(local)
        f = g.shape[1]
        c1 = backend.to_device((t[:f] / (d * m)).astype(grad.dtype), xp)
        c2 = backend.to_device((t[f:] / (d * m)).astype(grad.dtype), xp)
        dx = xhat * c2
        dx += c1
        xp.subtract(g, dx, out=dx)
        dx *= gamma * inv_std
        return dx.reshape(grad.shape)

    # -- validation ---------------------------------------------------------------------------------------
    def evaluate(self, source: Any, batch_size: int) -> dict[str, float]:
        """The loss and metrics over ``source``, each rank evaluating a contiguous part, reduced exactly.

        Args:
            source: the validation source.
            batch_size: samples per forward pass.

        Returns:
            ``{"loss": value, metric name: value, ...}``, the same on every rank.
        """
        net = self.net
        bounds = _bounds(len(source), self.size)
        shard = _Shard(source, np.arange(bounds[self.rank], bounds[self.rank + 1]))
        total, denom = net._evaluation_sums(shard, batch_size, self.metrics)
        pair = np.array([float(backend.to_numpy(total)), float(backend.to_numpy(denom))], dtype=np.float64)
        self._allreduce(pair)
        self.sync_metrics()
        penalty = float(backend.to_numpy(net._penalty())) if net.regularizer is not None else 0.0
        total, den = float(pair[0] + penalty * pair[1]), float(pair[1])
        logs = {"loss": total / den if den else float("nan")}
        logs.update((m.name, float(m.result())) for m in self.metrics)
        return logs

    # -- the end ------------------------------------------------------------------------------------------
    def fail(self, exc: BaseException) -> None:
        """Called with an exception leaving ``fit``: return when every rank raises (the exception goes on),
        else abort the job.

        An exception the ranks raise together (a step failure, the guard, a disagreement) returns at once.
        Any other waits up to ``failure_timeout`` seconds for the other ranks at a barrier of a separate
        communicator; if they do not all come, this rank prints the traceback and calls ``MPI_Abort``.

        Args:
            exc: the exception leaving ``fit`` on this rank.
        """
        if self.size == 1 or getattr(exc, "_neuro_all_ranks", False):
            return
        request = self._fail_comm.Ibarrier()
        deadline = time.monotonic() + self.options.failure_timeout
        while not request.Test():
            if time.monotonic() > deadline:
                _abort(
                    f"neuro.distributed: rank {self.rank} raised {type(exc).__name__} outside a training "
                    f"step and the other ranks did not within {self.options.failure_timeout:g} s; aborting "
                    "every rank (MPI_Abort)",
                    exc,
                )
            time.sleep(0.002)
        _all_ranks(exc)

    def close(self) -> None:
        """Detach from the network: the normal path again."""
        for ly in self._sync_layers:
            ly.__dict__.pop("_sync", None)
        self.net._device_rng = self._device_rng
        self.net._dist = None
