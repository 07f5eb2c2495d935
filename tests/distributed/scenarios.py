"""Distributed training scenarios, run by tests/test_distributed.py under ``mpiexec -n P`` (or plain python).

Usage: ``python scenarios.py GROUP OUTDIR`` where GROUP is one of ``train``, ``fail_step``,
``fail_callback``, ``fail_before`` and ``mismatch``. ``train`` writes ``OUTDIR/train_<P>.json`` (rank 0)
with, per case, the final weights, the history, whether the ranks were bitwise identical after every step,
and how many files each rank wrote; ``fail_step`` and ``mismatch`` write ``OUTDIR/report_<rank>.txt``, one
``label: outcome`` line per attempt; ``fail_callback`` and ``fail_before`` must end every rank with
MPI_Abort.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys
from typing import Any

import numpy as np

import neuro
from neuro import callbacks, distributed
from neuro.backend import dtype_scope
from neuro.layers.base import Layer

N, BATCH, EPOCHS = 101, 10, 2  # 101 = 10 full batches + 1 sample: with 3 ranks, two get an empty part


# -- data and networks ----------------------------------------------------------------------------------------
def classification(n: int = N, features: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, features))
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)


def images(n: int = N) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, 6, 6, 2))
    return x, (x[:, :3].mean(axis=(1, 2, 3)) > 0).astype(np.int64)


def mlp(bn: bool = False, hidden: int = 16, seed: int | None = 3, optimizer: Any = None) -> neuro.Network:
    net = neuro.Network((8,), "softmax_crossentropy", optimizer or neuro.Adam(1e-2), seed=seed)
    net.add(neuro.Dense(hidden, "relu"))
    if bn:
        net.add(neuro.BatchNorm(momentum=0.9))
    net.add(neuro.Dense(3, "softmax"))
    return net


def cnn_bn() -> neuro.Network:
    net = neuro.Network((6, 6, 2), "softmax_crossentropy", neuro.SGD(0.05), seed=4)
    net.add(neuro.BatchNorm(momentum=0.8))  # first layer: no input gradient, no backward reduction
    net.add(neuro.Conv2D(4, (3, 3), padding="same", activation="relu"))
    net.add(neuro.BatchNorm(momentum=0.8))
    net.add(neuro.Flatten())
    net.add(neuro.Dense(2, "softmax"))
    return net


def graph_model(bn: bool = True) -> neuro.Model:
    """Two inputs, a residual block (with BatchNorm), two outputs with loss weights."""
    image, vec = neuro.Input((6, 6, 2), name="image"), neuro.Input((8,), name="vec")
    h = neuro.Conv2D(3, 3, padding="same", activation="relu")(image)
    if bn:
        h = neuro.BatchNorm(momentum=0.8)(h)
    h = neuro.Add()([h, neuro.Conv2D(3, 1)(image)])
    j = neuro.Concatenate()([neuro.GlobalAveragePooling2D()(h), neuro.Dense(4, "tanh")(vec)])
    outputs = [neuro.Dense(3, "softmax", name="cls")(j), neuro.Dense(1, name="reg")(j)]
    return neuro.Model(
        [image, vec], outputs, loss=["softmax_crossentropy", "mse"], optimizer=neuro.Adam(1e-2),
        loss_weights=[1.0, 0.5], seed=6,
    )


def regression() -> tuple[neuro.Network, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, 5))
    y = x @ rng.standard_normal((5, 2)) + 0.1 * rng.standard_normal((N, 2))
    net = neuro.Network((5,), "mse", neuro.RMSprop(1e-2), regularizer=neuro.L2(1e-3), seed=5)
    net.add(neuro.Dense(8, "tanh")).add(neuro.Dense(2))
    return net, x, y


# -- observers ----------------------------------------------------------------------------------------------------
def state_digest(net: neuro.Network) -> str:
    h = hashlib.sha1()
    for w in net.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    st = net.optimizer.get_state()
    h.update(str(st["iterations"]).encode())
    for slot in st["slots"]:
        for k in sorted(slot):
            h.update(np.ascontiguousarray(slot[k]).tobytes())
    return h.hexdigest()


class Digests(callbacks.Callback):
    """The network's state digest after every step (and the batch logs, which it makes fit reduce)."""

    def on_train_begin(self, logs: dict[str, float]) -> None:
        self.seen = [state_digest(self.network)]

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        self.seen.append(state_digest(self.network))


class StopAtEpochBegin(callbacks.Callback):
    """Sets stop_training on one rank when an epoch begins: no batch hook, so the flag travels in the step's
    reduction and every rank stops after the epoch's first batch."""

    def __init__(self, rank: int, epoch: int) -> None:
        self.rank, self.epoch = rank, epoch

    def on_epoch_begin(self, epoch: int, logs: dict[str, float]) -> None:
        if epoch == self.epoch and distributed.rank() == self.rank:
            self.network.stop_training = True


class StopOnRank(callbacks.Callback):
    """Sets stop_training on one rank only, after a given epoch or batch."""

    def __init__(self, rank: int, epoch: int | None = None, batch: int | None = None) -> None:
        self.rank, self.epoch, self.batch = rank, epoch, batch
        self.batches = 0

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        self.batches += 1
        if self.batch is not None and batch == self.batch and distributed.rank() == self.rank:
            self.network.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.epoch is not None and epoch == self.epoch and distributed.rank() == self.rank:
            self.network.stop_training = True


SAVES: list[str] = []


def count_saves() -> None:
    """Record every file neuro.io.save writes on this rank."""
    original = neuro.io.save

    def save(network: Any, path: Any) -> None:
        SAVES.append(str(path))
        original(network, path)

    neuro.io.save = save


# -- the train group -----------------------------------------------------------------------------------------
def train_case(
    name: str, out: pathlib.Path, dtype: str, make: Any, data: Any, digest: bool = True, **fit: Any
) -> dict[str, Any]:
    comm = distributed.init()
    with dtype_scope(dtype):
        net = make()
        x, y = data
        digests = Digests()
        extra = fit.pop("callbacks", [])
        fit.setdefault("distributed", True)
        SAVES.clear()
        history = net.fit(
            x,
            y,
            batch_size=fit.pop("batch_size", BATCH),
            epochs=fit.pop("epochs", EPOCHS),
            verbose=0,
            callbacks=[digests, *extra] if digest else extra,
            **fit,
        )
        weights = np.concatenate([w.ravel() for w in net.get_weights()]).astype(np.float64)
        seen = digests.seen if digest else ["", state_digest(net)]  # without a batch hook: the end only
        everyone = comm.allgather((seen, list(SAVES)))
        result = {
            "weights": weights.tolist(),
            "history": history.history,
            "steps": len(seen) - 1,
            "iterations": comm.allgather(net.optimizer.iterations),
            "identical_every_step": all(seen == everyone[0][0] for seen, _ in everyone),
            "saves_per_rank": [len(s) for _, s in everyone],
            "saved_paths": everyone[0][1],
            "net": net,
        }
        if isinstance(fit.get("validation_data"), tuple):  # single-process evaluate, for the val_ figures
            xv, yv = fit["validation_data"]
            result["evaluate"] = net.evaluate(xv, yv, metrics=fit.get("metrics"))
    return result


def group_train(out: pathlib.Path) -> None:
    count_saves()
    comm = distributed.init()
    p = comm.Get_size()
    x, y = classification()
    xi, yi = images()
    val = (x[:37], y[:37])
    cls_metrics = ["accuracy", "precision", "recall", "f1", "top2"]
    results: dict[str, Any] = {}
    ckpt = out / f"ckpt_{p}_{{epoch}}.h5"
    results["mlp64"] = train_case(
        "mlp64",
        out,
        "float64",
        mlp,
        (x, y),
        validation_data=val,
        metrics=cls_metrics,
        callbacks=[
            callbacks.ModelCheckpoint(ckpt, monitor="val_loss"),
            callbacks.CSVLogger(out / f"log_{p}.csv"),
        ],
    )
    results["mlp32"] = train_case("mlp32", out, "float32", mlp, (x, y), validation_data=val)
    results["det64"] = train_case(
        "det64",
        out,
        "float64",
        mlp,
        (x, y),
        validation_data=val,
        metrics=cls_metrics,
        distributed=distributed.Options(deterministic=True),
    )
    sync = distributed.Options(sync_batchnorm=True)
    results["bn_sync64"] = train_case(
        "bn_sync64", out, "float64", lambda: mlp(bn=True), (x, y), distributed=sync
    )
    results["bn_sync32"] = train_case(
        "bn_sync32", out, "float32", lambda: mlp(bn=True), (x, y), distributed=sync
    )
    results["cnn_sync64"] = train_case("cnn_sync64", out, "float64", cnn_bn, (xi, yi), distributed=sync)
    results["cnn_sync32"] = train_case("cnn_sync32", out, "float32", cnn_bn, (xi, yi), distributed=sync)
    results["bn_local64"] = train_case("bn_local64", out, "float64", lambda: mlp(bn=True), (x, y))
    graph_data = ([xi, x], [y, x[:, :1] - x[:, 1:2]])
    results["graph64"] = train_case("graph64", out, "float64", lambda: graph_model(bn=False), graph_data)
    results["graph_bn_local64"] = train_case("graph_bn_local64", out, "float64", graph_model, graph_data)
    results["graph_sync64"] = train_case("graph_sync64", out, "float64", graph_model, graph_data, distributed=sync)
    with dtype_scope("float64"):
        reg, xr, yr = regression()
    results["regression64"] = train_case(
        "regression64",
        out,
        "float64",
        lambda: reg,
        (xr, yr),
        validation_data=(xr[:40], yr[:40]),
        metrics=["mae", "mse", "rmse", "r2"],
    )
    results["class_weight64"] = train_case(
        "class_weight64", out, "float64", mlp, (x, y), class_weight={0: 0.5, 1: 2.0, 2: 1.0}
    )
    # parts whose samples all weigh 0: in order, every batch of 4 is (0, 0, 1, 1), so rank 0's part is (0, 0)
    yz = np.tile([0, 0, 1, 1], 25)
    results["zero_weight_sync64"] = train_case(
        "zero_weight_sync64",
        out,
        "float64",
        lambda: mlp(bn=True, optimizer=neuro.SGD(0.1)),
        (x[:100], yz),
        batch_size=4,
        epochs=1,
        shuffle=False,
        class_weight={0: 0.0},
        distributed=sync,
    )
    # data set splits: each rank reads its part through split.batches (augmented: ranks only identical)
    split = neuro.data.dataset.ArraySplit
    x32 = x.astype(np.float32)
    results["split64"] = train_case(
        "split64", out, "float64", mlp, (split(x32, y), None), validation_data=split(x32[:37], y[:37])
    )
    augmented = split(xi.astype(np.float32), yi, augment={"hflip": True, "shift": 0.2})
    results["split_augment"] = train_case("split_augment", out, "float64", cnn_bn, (augmented, None))
    results["noseed"] = train_case("noseed", out, "float64", lambda: mlp(seed=None), (x, y))
    # the same order as a plain single-process fit: no shuffling
    results["noshuffle64"] = train_case("noshuffle64", out, "float64", mlp, (x, y), shuffle=False)
    if comm.Get_rank() == 0:
        with dtype_scope("float64"):
            plain = mlp()
            plain.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0)
        results["plain_noshuffle64"] = {
            "weights": np.concatenate([w.ravel() for w in plain.get_weights()]).tolist()
        }
    # stopping: EarlyStopping on every rank, and a stop set by one rank only
    early = callbacks.EarlyStopping(monitor="val_loss", patience=2, min_delta=1e9)
    results["early"] = train_case(
        "early", out, "float64", mlp, (x, y), validation_data=val, epochs=6, callbacks=[early]
    )
    results["early"]["stopped_epoch"] = comm.allgather(early.stopped_epoch)
    by_epoch = StopOnRank(p - 1, epoch=1)
    results["stop_epoch"] = train_case(
        "stop_epoch", out, "float64", mlp, (x, y), epochs=5, callbacks=[by_epoch]
    )
    by_batch = StopOnRank(p - 1, batch=2)
    results["stop_batch"] = train_case(
        "stop_batch", out, "float64", mlp, (x, y), epochs=3, callbacks=[by_batch]
    )
    results["stop_batch"]["batches_per_rank"] = comm.allgather(by_batch.batches)
    results["stop_in_step"] = train_case(
        "stop_in_step",
        out,
        "float64",
        mlp,
        (x, y),
        digest=False,
        epochs=4,
        callbacks=[StopAtEpochBegin(p - 1, 1)],
    )
    if comm.Get_rank() == 0:
        loaded = neuro.Network.load(results["mlp64"]["saved_paths"][-1])
        results["mlp64"]["checkpoint_matches"] = all(
            np.array_equal(a, b)
            for a, b in zip(loaded.get_weights(), results["mlp64"]["net"].get_weights(), strict=True)
        )
        for r in results.values():
            r.pop("net", None)
        (out / f"train_{p}.json").write_text(json.dumps(results))


# -- failures ---------------------------------------------------------------------------------------------------
class FailOnRank(Layer):
    """An identity layer that raises on one rank at one training step."""

    def __init__(self, rank: int = 1, step: int = 3, name: str | None = None) -> None:
        super().__init__(name=name)
        self.rank, self.step, self.calls = rank, step, 0

    def forward(self, x: Any, training: bool = False, rng: Any = None) -> tuple[Any, Any]:
        if training:
            self.calls += 1
            if self.calls == self.step and distributed.rank() == self.rank:
                raise RuntimeError(f"layer failed on purpose at step {self.step}")
        return x, None

    def backward(self, grad: Any, ctx: Any) -> Any:
        return grad

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rank": self.rank, "step": self.step}


class FailingSplit(neuro.data.dataset.ArraySplit):
    """A data set split whose reading fails on rank 1 at its third batch."""

    def batches(self, order: Any, batch_size: int, augment: bool = False, rng: Any = None) -> Any:
        self.reads = getattr(self, "reads", 0) + 1
        if self.reads == 3 and distributed.rank() == 1:
            raise OSError("disk read failed on purpose")
        return super().batches(order, batch_size, augment, rng)


def report(out: pathlib.Path, label: str, fn: Any) -> None:
    """Run ``fn`` and append what this rank saw to ``out/report_<rank>.txt``: ``label: OK`` or the error."""
    r = distributed.rank()
    try:
        fn()
        line = f"{label}: OK"
    except Exception as exc:
        line = f"{label}: {type(exc).__name__}: {exc}"
    with (out / f"report_{r}.txt").open("a") as f:
        f.write(line.replace("\n", " ") + "\n")


def group_fail_step(out: pathlib.Path) -> None:
    x, y = classification()

    def layer_fails(bn: bool) -> None:
        net = neuro.Network((8,), "softmax_crossentropy", neuro.Adam(1e-2), seed=3)
        net.add(neuro.Dense(16, "relu"))
        if bn:
            net.add(neuro.BatchNorm())
        net.add(FailOnRank(rank=1, step=3))
        if bn:
            net.add(neuro.BatchNorm())
        net.add(neuro.Dense(3, "softmax"))
        net.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, distributed={"sync_batchnorm": bn})

    def data_fails() -> None:
        net = mlp()
        split = FailingSplit(x.astype(np.float32), y)
        net.fit(split, batch_size=BATCH, epochs=1, verbose=0, distributed=True)

    def non_finite() -> None:  # the guard decides alike on every rank
        net = mlp()
        net.optimizer.learning_rate = 1e30
        net.fit(x * 1e30, y, batch_size=BATCH, epochs=1, verbose=0, distributed=True)

    report(out, "layer", lambda: layer_fails(False))
    report(out, "layer_syncbn", lambda: layer_fails(True))
    report(out, "data", data_fails)
    report(out, "guard", non_finite)
    report(out, "after", lambda: mlp().fit(x, y, batch_size=BATCH, epochs=1, verbose=0, distributed=True))


def group_fail_callback(out: pathlib.Path) -> None:
    x, y = classification()

    class Raise(callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
            if distributed.rank() == 1:
                raise KeyError("callback failed on purpose on rank 1")

    net = mlp()
    net.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=3,
        verbose=0,
        callbacks=[Raise()],
        distributed=distributed.Options(failure_timeout=1.0),
    )
    print(f"RANK {distributed.rank()} finished (should not happen)", flush=True)


def group_fail_before(out: pathlib.Path) -> None:
    """Rank 1's targets are invalid: fit raises on rank 1 before the ranks meet, and nobody catches it."""
    x, y = classification()
    labels = y if distributed.rank() == 0 else y[:-1]
    mlp().fit(x, labels, batch_size=BATCH, epochs=1, verbose=0, distributed=True)
    print(f"RANK {distributed.rank()} finished (should not happen)", flush=True)


def group_mismatch(out: pathlib.Path) -> None:
    x, y = classification()
    r = distributed.rank()
    report(
        out, "architecture", lambda: mlp(hidden=16 if r == 0 else 17).fit(x, y, verbose=0, distributed=True)
    )
    report(out, "data", lambda: mlp().fit(x[: N - r], y[: N - r], verbose=0, distributed=True))
    report(out, "batch_size", lambda: mlp().fit(x, y, batch_size=10 + r, verbose=0, distributed=True))
    report(out, "agree", lambda: mlp().fit(x, y, verbose=0, distributed=True))


def group_missing_rank(out: pathlib.Path) -> None:
    """Rank 1 never calls fit (its script takes another branch): rank 0 stops after start_timeout, naming it;
    then rank 1 comes too late: it stops after its own start_timeout, naming rank 0."""
    import time

    x, y = classification()
    options = distributed.Options(start_timeout=1.0)
    if distributed.rank() == 0:
        report(out, "missing", lambda: mlp().fit(x, y, batch_size=BATCH, verbose=0, distributed=options))
    else:
        time.sleep(2.5)
        report(out, "missing", lambda: mlp().fit(x, y, batch_size=BATCH, verbose=0, distributed=options))


if __name__ == "__main__":
    group, outdir = sys.argv[1], pathlib.Path(sys.argv[2])
    {
        "train": group_train,
        "fail_step": group_fail_step,
        "fail_callback": group_fail_callback,
        "fail_before": group_fail_before,
        "mismatch": group_mismatch,
        "missing_rank": group_missing_rank,
    }[group](outdir)
