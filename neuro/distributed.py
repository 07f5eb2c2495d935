"""Data-parallel training over MPI: one model trained by P processes, each on its part of every batch.

Start P copies of the same training script with an MPI launcher and ask ``fit`` to cooperate::

    mpiexec -n 4 python train.py          # train.py calls net.fit(..., distributed=True)

MPI is reached through mpi4py, an optional extra (``pip install 'neuro[mpi]'``, which brings mpi4py and the
MPICH wheel); importing neuro never imports it. :func:`init` starts MPI (any other function here does so
on first use); :func:`rank`, :func:`size` and :func:`is_main` say where a process stands. Run without a
launcher (or with ``-n 1``), ``fit(distributed=True)`` runs the same code path with P = 1.

What ``fit(..., distributed=True)`` does on every rank (``distributed=Options(...)`` sets the choices):

- **Start**: the ranks compare a digest of the network (the JSON config of every layer, the loss, the
  optimizer and the regularizer, the dtype, which layers are frozen and every parameter and buffer shape),
  the number of training and validation samples and the fit arguments; any difference is reported by
  rank 0 as a ValueError raised on every rank, before anything is trained. Then rank 0's weights, buffers,
  optimizer state, generator state and seed are broadcast, so every rank starts identical.
- **Data**: each epoch has one global permutation drawn from a generator seeded by the seed (the network's, or
  one drawn by rank 0 when it has none), the epoch and the optimizer's step count at its start (so a second
  ``fit`` shuffles anew and a run resumed from a checkpoint shuffles as the original would have): identical on
  every rank, and independent of how much randomness augmentation or dropout used. Every global batch of
  ``batch_size`` samples is cut into P contiguous parts (the first ``len(batch) % P`` one sample longer; a
  part may be empty) and rank r reads only part r: arrays by index, a data set split through
  ``split.batches(part, len(part), augment=True, rng=...)``. Augmentation and dropout draw from a generator
  seeded by the same and the rank.
- **Step**: each rank runs forward and backward on its part, with each output's loss gradient scaled to
  the unit of the global batch (``w_k · D_kr / D_k``: the part's normaliser over the global one; one small
  ``Allreduce`` of the normalisers, a few numbers, comes between the forward and the backward, since a
  normaliser counts positions, masks and weights, not only samples), so that the ranks' gradients *sum* to
  the gradient of the global batch's loss; the
  regularization's gradient is added on rank 0 only. Then one ``Allreduce`` over one flat buffer combines
  the gradients, each output's loss sum and normaliser, an error flag and a stop flag. With BatchNorm's
  default local statistics, rank 0's running averages travel in the same buffer (the other ranks add
  zeros), so the ranks' buffers stay bitwise equal, as PyTorch DDP broadcasts them. The update and the
  non-finite guard of the training step then see identical values on every rank, so they decide alike and
  the ranks stay bitwise identical.
- **Synchronised BatchNorm** (``Options(sync_batchnorm=True)``): the model hands batch norm a ``reduce``
  function (:func:`neuro.functional.batch_norm_train`), so the batch statistics are those of the global
  batch: the forward reduces the per-feature sums and counts, then the per-feature sums of squared
  deviations from the global mean (the two-pass variance a single process computes); the backward reduces
  its two per-feature sums ``Σ g`` and ``Σ g·x̂`` (already in the global unit; a part whose samples all
  weigh 0 sends zeros but still acts through the statistics). Training then equals single-process
  training on the global batch.
- **Figures**: each output's loss is its reduced sum over its reduced normaliser; metrics are reduced
  exactly at the end of each epoch (and before each ``on_batch_end``): each metric merges the ranks' states
  itself (:meth:`neuro.metrics.Metric.merge`: counts and confusion matrices summed, R² states merged with
  Chan's parallel update). Validation data is split in P contiguous parts, evaluated and
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
        start_timeout: seconds the ranks wait for each other to enter ``fit``: a rank that has not come by
            then (it crashed before, or its script took another branch) is named in a
            :class:`DistributedError` that every rank that came raises, instead of waiting forever.
    """

    sync_batchnorm: bool = False
    deterministic: bool = False
    failure_timeout: float = 10.0
    start_timeout: float = 120.0

    def __post_init__(self) -> None:
        for name in ("sync_batchnorm", "deterministic"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("failure_timeout", "start_timeout"):
            t = getattr(self, name)
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < float("inf"):
                raise ValueError(f"{name} must be a positive number of seconds, got {t!r}")


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
    """A digest of the model's architecture and a short readable form of it."""
    from neuro.graph import graph_config

    def serialized(obj: Any) -> Any:
        try:
            return registry.serialize(obj)
        except Exception:  # a callable learning rate without a config: its type is what can be compared
            return type(obj).__name__

    leaves = network.leaf_layers()
    desc = {
        "dtype": np.dtype(network.dtype).name,
        "device": network.device,
        "losses": [serialized(loss) for loss in network.losses],
        "loss_weights": list(network.loss_weights_list),
        "optimizer": serialized(network.optimizer),
        "regularizer": None if network.regularizer is None else serialized(network.regularizer),
        "class_names": None if network.class_names is None else [str(c) for c in network.class_names],
        "scalers": [
            None if s is None else s.get_config() for s in (network.input_scaler, network.output_scaler)
        ],
        "layers": [serialized(layer) for layer in network.layers],
        "graph": graph_config(network.graph, network.layers),
        "frozen": [i for i, layer in enumerate(leaves) if not layer.trainable],
        "shapes": [
            [i, k, list(a.shape)]
            for i, layer in enumerate(leaves)
            for k, a in (*layer.params.items(), *layer.buffers.items())
        ],
    }
    text = json.dumps(desc, sort_keys=True, default=_json_default)
    short = ", ".join(
        f"{type(t.node.layer).__name__}{tuple(t.sample_shape)}"
        for node in network.graph.nodes
        for t in node.outputs
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16], f"[{short}] in {desc['dtype']}"


# -- metrics ----------------------------------------------------------------------------------------------
class _ShardMetric:
    """A metric updated with one rank's part of every batch; :meth:`FitContext.sync_metrics` merges it
    (each metric merges its own state: :meth:`neuro.metrics.Metric.merge`)."""

    def __init__(self, metric: Any) -> None:
        metric.state()  # raises TypeError for a metric that cannot be merged
        self.metric = metric
        self.name = metric.name
        self.greater_is_better = getattr(metric, "greater_is_better", None)
        self.merged: Any = None

    def reset(self) -> None:
        self.metric.reset()
        self.merged = None

    def update(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> None:
        if len(y_pred):
            if sample_weight is None:
                self.metric.update(y_pred, y_true)
            else:  # a mask of a sequence output's valid steps (or weights)
                self.metric.update(y_pred, y_true, sample_weight=sample_weight)
        self.merged = None

    def result(self) -> float:
        """The merged result after a sync, else this rank's own."""
        return (self.metric if self.merged is None else self.merged).result()


class _Shard:
    """The samples ``index`` of a source, read as a source of their own."""

    def __init__(self, source: Any, index: np.ndarray) -> None:
        self.source, self.index = source, index

    def __len__(self) -> int:
        return len(self.index)

    def batches(self, order: np.ndarray, batch_size: int, augment: bool = False, rng: Any = None) -> Any:
        return self.source.batches(self.index[order], batch_size, augment, rng)


def _batch_norm_calls(graph: Any, inputs_need: bool, out: list[tuple[int, bool]]) -> None:
    """``(features, computes dL/dx)`` of every batch-norm call that takes the batch's statistics (frozen ones
    use their running statistics), in the order the forward runs them."""
    from neuro.graph import Functional
    from neuro.layers.batchnorm import BatchNorm

    needs = [
        inputs_need if s in graph.input_slots else dt == "float" for s, dt in enumerate(graph.slot_dtype)
    ]
    for step in graph.steps:
        need_in = any(needs[s] for s in step.in_slots)
        if isinstance(step.layer, Functional):
            _batch_norm_calls(step.layer.graph, need_in, out)
        elif isinstance(step.layer, BatchNorm) and step.layer.trainable:  # a frozen one reduces nothing
            out.append((step.layer.input_shape[-1], need_in))


# -- one distributed fit ----------------------------------------------------------------------------------
class FitContext:
    """The state of one distributed ``fit``: ``model._dist`` while it runs (``None`` otherwise).

    Creating it checks that the ranks agree and broadcasts rank 0's state (collective: every rank's
    ``fit`` creates it at the same point). ``fit`` then asks it for each epoch's batches, runs its
    :meth:`forward_backward` inside the guarded train step, syncs metrics and stop flags through it, and
    calls :meth:`close` at the end.

    Args:
        network: the model being trained.
        choice: ``fit``'s ``distributed`` argument (``True``, :class:`Options` or a dict).
        train: the training source (``len`` and ``batches(order, batch_size, augment, rng)``).
        valid: the validation source or ``None``.
        batch_size: samples per global batch.
        fit_args: the other ``fit`` arguments every rank must agree on (epochs, shuffle, ...).
        metrics: the metric slots of the fit (:class:`neuro.training.loop.MetricSlot`).
        callbacks: the callbacks of the fit.

    Raises:
        ImportError: without mpi4py.
        TypeError: for a metric that cannot be reduced over ranks.
        ValueError: on every rank, when the ranks' models, data sizes or arguments differ.
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
        from neuro.training.evaluation import MetricSlot

        self.options = options(choice)
        self.mpi = _mpi()
        self.comm = init()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.is_main = self.rank == 0
        self._join()  # every rank is here (bounded), before the first collective
        self.net = network
        self.batch_size = batch_size
        self.metrics = [MetricSlot(m.output, _ShardMetric(m.metric), m.key) for m in metrics]
        # a callback with a batch hook may stop after any batch: then the ranks agree after each one
        self._batch_hooks = any(
            type(cb).on_batch_begin is not Callback.on_batch_begin
            or type(cb).on_batch_end is not Callback.on_batch_end
            or type(cb).on_train_batch_begin is not Callback.on_train_batch_begin
            or type(cb).on_train_batch_end is not Callback.on_train_batch_end
            for cb in callbacks
        )
        self._check_agreement(train, valid, batch_size, {**fit_args, "batch hooks": self._batch_hooks})
        key = id(self.comm)
        if key not in _fail_comms:
            _fail_comms[key] = self.comm.Dup()  # collective, once per communicator
        self._fail_comm = _fail_comms[key]
        self.seed = self._broadcast_state()
        heads = network.training_heads()
        # the loss normalisers (sample or position counts, sums of weights and masks) are reduced each step:
        # one small reduction; taking them for sample counts scaled a sequence's gradient by its steps
        self._sync = self.options.sync_batchnorm
        calls: list[tuple[int, bool]] = []
        if self._sync:
            _batch_norm_calls(network.graph, False, calls)
        # the extra reductions of one step, in order, with their sizes (and the error flag): batch-norm
        # statistics in the forward, the loss normalisers, batch-norm sums in the backward
        self._schedule = [s for f, _ in calls for s in (f + 2, f + 1)]
        self._schedule.append(len(heads) + 1)
        self._schedule += [2 * f + 1 for f, need in reversed(calls) if need]
        leaves = network.leaf_layers()
        self._broadcast = [
            b for ly in leaves if not (self._sync and isinstance(ly, BatchNorm)) for b in ly.buffers.values()
        ]  # buffers rank 0 hands out after each step
        self._n_grad = sum(int(p.size) for p in network.params)
        self._n_out = len(heads)
        n_buf = sum(int(b.size) for b in self._broadcast)
        # one step's reduction: gradients, loss sums and normalisers per output, error flag, stop flag,
        # rank 0's buffers
        self._buf = np.zeros(self._n_grad + 2 * self._n_out + 2 + n_buf, dtype=network.dtype)
        self._stop_requested = False
        self._gathered: dict[tuple[int, str], np.ndarray] = {}
        self._pending: BaseException | None = None
        self._sync_done = 0
        self._global_count = 0
        self.batch_samples = 0
        self._device_rng = network._device_rng
        network._dist = self

    # -- start --------------------------------------------------------------------------------------------
    _HELLO, _VERDICT = 0x6E01, 0x6E02  # message tags of the start handshake

    def _join(self) -> None:
        """Wait (at most ``start_timeout`` seconds) for every rank to enter ``fit``: each rank tells rank 0,
        which answers every rank that came with the list of those that did not. Point-to-point messages only,
        so nothing here can wait on a missing rank forever.

        Raises:
            DistributedError: on every rank that came, naming the ranks that did not (or rank 0, when it is
                the one missing).
        """
        if self.size == 1:
            return
        comm, timeout = self.comm, self.options.start_timeout
        deadline = time.monotonic() + timeout
        if self.is_main:
            waiting = {r: comm.irecv(source=r, tag=self._HELLO) for r in range(1, self.size)}
            while waiting and time.monotonic() < deadline:
                for r in [r for r, q in waiting.items() if q.Test()]:
                    waiting.pop(r).wait()
                time.sleep(0.001)
            missing = sorted(waiting)
            for q in waiting.values():
                q.Cancel()
            for r in range(1, self.size):
                if r not in waiting:
                    comm.send(missing, dest=r, tag=self._VERDICT)
        else:
            self._hello = comm.isend(self.rank, dest=0, tag=self._HELLO)  # kept: its buffer lives on
            answer = comm.irecv(source=0, tag=self._VERDICT)
            while not answer.Test():
                if time.monotonic() > deadline:
                    answer.Cancel()
                    missing = [0]
                    break
                time.sleep(0.001)
            else:
                missing = answer.wait()
        if missing:
            who = ", ".join(str(r) for r in missing)
            raise _all_ranks(
                DistributedError(
                    f"distributed fit: rank{'s' if len(missing) > 1 else ''} {who} did not enter fit within "
                    f"start_timeout={timeout:g} s (crashed before, or its script took another branch); rank "
                    f"{self.rank} stops here instead of waiting forever"
                )
            )

    def _check_agreement(self, train: Any, valid: Any, batch_size: int, fit_args: dict[str, Any]) -> None:
        digest, readable = _describe(self.net)
        mine = {
            "network": digest,
            "training samples": len(train),
            "validation samples": None if valid is None else len(valid),
            "batch_size": batch_size,
            **fit_args,
            "metrics": [m.key for m in self.metrics],
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

    def _empty(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        net = self.net
        xs = [
            np.empty((0, *t.sample_shape), dtype=net.dtype if t.dtype == "float" else t.dtype)
            for t in net.graph.inputs
        ]
        ys = [
            np.empty((0,), dtype=np.int64) if loss.categorical else np.empty((0, *shape), dtype=net.dtype)
            for loss, shape in zip(net.losses, net.output_shapes, strict=True)
        ]
        return xs, ys

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
            ``(xs, ys)`` host batches: this rank's part of each global batch.
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
            self.batch_samples = self._global_count = len(idx)
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

    def _sync_allreduce(self, local: Any) -> np.ndarray:
        """One of a step's extra reductions (float64, with the error flag): the ``reduce`` handed to batch
        norm, and the loss normalisers. Returns the sum as a host array."""
        host = np.asarray(backend.to_numpy(local), dtype=np.float64).reshape(-1)
        buf = np.empty(host.size + 1, dtype=np.float64)
        buf[:-1] = host
        buf[-1] = 0.0
        self._allreduce(buf)
        self._sync_done += 1
        if buf[-1] != 0:
            raise _RemoteFailure()
        return buf[:-1]

    def _join_sync_failed(self) -> None:
        """On a rank that failed in a step: join the extra reduction the other ranks wait in (if any is
        left) with the error flag set, so that they stop there too."""
        if self._sync_done < len(self._schedule):
            buf = np.zeros(self._schedule[self._sync_done], dtype=np.float64)
            buf[-1] = 1.0
            self._allreduce(buf)
            self._sync_done += 1

    def sync_metrics(self) -> None:
        """Merge every rank's metric states (exact: sums of counts, R² merges), identically on each rank."""
        if not self.metrics:
            return
        states = [m.metric.metric.state() for m in self.metrics]
        everyone = self.comm.allgather(states) if self.size > 1 else [states]
        for i, slot in enumerate(self.metrics):
            shard = slot.metric
            shard.merged = shard.metric.merge([st[i] for st in everyone])

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
    def _local_pass(self, xs: list[Any], ys: list[Any]) -> tuple[list[Any], Any]:
        """Forward and backward of this rank's part, with every output's gradient in the unit of the global
        batch: ``w_k · D_kr / D_k`` times the head's gradient of this part's mean loss (``D_kr`` this part's
        normaliser, ``D_k`` the global one), so that the ranks' parameter gradients *sum* to the gradient of
        the global loss. The regularization's gradient is added on rank 0 only, for the same reason.

        Returns:
            ``(predictions, terms)``: this part's predictions and loss terms.
        """
        from neuro.training import step as step_mod

        net = self.net
        xp = net.xp
        heads = net.training_heads()
        n = len(xs[0])
        net.clear_grads()
        if n == 0 and not self._sync:  # nothing to compute; still part of the normalisers' reduction
            for g in net.grads:
                g[...] = 0
            self._sync_allreduce(np.zeros(len(heads)))
            preds = [xp.zeros((0, *shape), dtype=net.dtype) for shape in net.output_shapes]
            return preds, step_mod.Terms([xp.zeros((), dtype=net.dtype)] * len(heads), [0] * len(heads), 0)
        modes = net.head_modes(heads)
        reduce = self._sync_allreduce if self._sync else None
        masks: list[Any] = []
        outs, tape = net.graph.forward(
            xs, True, net._device_rng, modes, net.dtype, reduce=reduce, out_masks=masks
        )
        preds, sums, denoms, weights = [], [], [], []
        for head, out, y, m in zip(heads, outs, ys, masks, strict=True):
            w = step_mod.sample_weights(m, out)
            pred = head.predictions(out)
            total, denom = head.terms(out, y, w)
            preds.append(pred)
            sums.append(total)
            denoms.append(denom)
            weights.append(w)
        local = [float(backend.to_numpy(d)) if backend.is_array(d) else float(d) for d in denoms]
        glob = list(self._sync_allreduce(np.array(local)))
        grads = []
        for head, out, pred, y, w, d_r, d, iw in zip(
            heads, outs, preds, ys, net.loss_weights_list, local, glob, weights, strict=True
        ):
            if d_r == 0 or d == 0:  # no sample of this part weighs: no gradient (statistics still act)
                grads.append(xp.zeros_like(out))
                continue
            g = head.gradient(out, pred, y, iw)
            scale = w * d_r / d
            if scale != 1.0:
                g = g * g.dtype.type(scale)
            grads.append(g)
        net.graph.backward(tape, grads, modes)
        if self.is_main:
            step_mod.add_regularizer_grads(net)
        terms = step_mod.Terms(sums, local, n)
        terms.masks = masks
        return preds, terms

    def forward_backward(self, xs: list[Any], ys: list[Any], saved: Any) -> tuple[list[Any], Any]:
        """The step's forward and backward, and its reduction.

        After it every rank holds the gradients of the global batch's loss, the global loss sums and
        normalisers and (local BatchNorm) rank 0's buffers.

        Args:
            xs: this rank's part of the batch, one array per input, on the device.
            ys: its targets, one array per output.
            saved: the buffers from before the step, put back when a rank fails.

        Returns:
            ``(predictions, terms)``: this rank's predictions and the global loss terms.

        Raises:
            DistributedError: when another rank failed (the failing rank raises its own exception).
        """
        from neuro.training import step as step_mod

        net = self.net
        xp = net.xp
        self._sync_done = 0
        error, self._pending = self._pending, None
        remote = False
        preds: Any = None
        terms: Any = None
        if error is None:
            try:
                preds, terms = self._local_pass(xs, ys)
            except _RemoteFailure:
                remote = True
            except Exception as exc:
                error = exc
        if error is not None:
            self._join_sync_failed()
        buf, n, k_out = self._buf, self._n_grad, self._n_out
        ok = error is None and not remote
        if ok:
            start = 0
            for g in net.grads:
                part = buf[start : start + g.size]
                part[...] = backend.to_numpy(g).reshape(-1)
                start += g.size
            for k in range(k_out):
                buf[n + k] = float(backend.to_numpy(terms.sums[k]))
                buf[n + k_out + k] = terms.denoms[k]
        else:
            buf[: n + 2 * k_out] = 0
        flags = n + 2 * k_out
        buf[flags] = 1.0 if error is not None else 0.0
        buf[flags + 1] = 1.0 if net.stop_training else 0.0
        start = flags + 2
        for b in self._broadcast:
            part = buf[start : start + b.size]
            part[...] = backend.to_numpy(b).reshape(-1) if self.is_main else 0
            start += b.size
        self._allreduce(buf)
        if buf[flags] != 0 or not ok:
            if saved is not None:  # the buffers from before the step
                for layer, bufs in zip(net.leaf_layers(), saved, strict=True):
                    for key, v in bufs.items():
                        layer.buffers[key][...] = v
            self._raise_failure(error)
        self._stop_requested = bool(buf[flags + 1] != 0)
        start = 0
        for g in net.grads:
            g[...] = backend.to_device(buf[start : start + g.size].reshape(g.shape), xp)
            start += g.size
        start = flags + 2
        for b in self._broadcast:
            b[...] = backend.to_device(buf[start : start + b.size].reshape(b.shape), xp)
            start += b.size
        sums = [xp.asarray(buf[n + k]) for k in range(k_out)]
        denoms = [float(buf[n + k_out + k]) for k in range(k_out)]
        out = step_mod.Terms(sums, denoms, self._global_count)
        out.masks = terms.masks if terms is not None else [None] * k_out
        return preds, out

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

    # -- validation ---------------------------------------------------------------------------------------
    def evaluate(self, source: Any, batch_size: int) -> dict[str, float]:
        """The loss and metrics over ``source``, each rank evaluating a contiguous part, reduced exactly.

        Args:
            source: the validation source.
            batch_size: samples per forward pass.

        Returns:
            ``{"loss": value, metric name: value, ...}``, the same on every rank.
        """
        from neuro.training import evaluation, step

        net = self.net
        bounds = _bounds(len(source), self.size)
        shard = _Shard(source, np.arange(bounds[self.rank], bounds[self.rank + 1]))
        sums = evaluation.evaluation_sums(net, shard, batch_size, self.metrics)
        values = sums.values()
        self._allreduce(values)
        self.sync_metrics()
        pen = float(backend.to_numpy(step.penalty(net))) if net.has_penalty() else 0.0
        return evaluation.logs_from(net, values, self.metrics, penalty_now=pen)

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
        """Detach from the model: the normal path again."""
        self.net._device_rng = self._device_rng
        self.net._dist = None
