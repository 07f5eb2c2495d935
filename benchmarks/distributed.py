"""Scaling of data-parallel training (``fit(distributed=True)``) over MPI ranks, one BLAS thread each.

Run from the repository root (needs the ``mpi`` extra: ``pip install '.[mpi]'``)::

    python benchmarks/distributed.py                     # runs mpiexec -n 1 and -n 2, alternating, and
                                                         # prints samples/s, efficiency and the cost inputs
    python benchmarks/distributed.py --ranks 1 2 4 --rounds 3 --json results.json

Each round starts ``mpiexec -n P python benchmarks/distributed.py --worker`` for every P. A worker trains
the reference networks of ``bench.py`` (the MNIST CNN and MLP, their batch sizes: 128 and 100 samples per
*global* batch, so every P computes the same training) on the real MNIST test set in ../shared/data/mnist
(random images when it is absent) and reports the best of a few timed epochs, measured between two
barriers. It also times the step's one gradient ``Allreduce`` alone. Every rank runs one thread
(OMP/OpenBLAS/MKL_NUM_THREADS=1 and ``neuro.backend.set_num_threads(1)``), so P ranks use P cores. The
figure of each P is the best over the rounds, which alternate, so that a busy shared machine disturbs each P
alike.

Parallel efficiency is ``(samples/s on P ranks) / (P · samples/s on 1 rank)``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy loads its BLAS: one thread per rank

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from bench import BATCH, load_data, neuro_cnn, neuro_mlp, prepare  # noqa: E402

#: Global batches per timed epoch, and timed epochs per worker.
SIZES = {"cnn": (16, 3), "mlp": (80, 5)}


def timed_epoch(comm: object, net: object, x: np.ndarray, y: np.ndarray, batch: int) -> float:
    """Seconds of one distributed epoch over ``x``, between two barriers."""
    comm.Barrier()
    start = time.perf_counter()
    net.fit(x, y, batch_size=batch, epochs=1, metrics=(), verbose=0, distributed=True)
    comm.Barrier()
    return time.perf_counter() - start


def worker(out: pathlib.Path, kinds: list[str]) -> None:
    """Measure on this MPI world; rank 0 writes ``out`` (JSON)."""
    import neuro
    from neuro import distributed

    neuro.backend.set_num_threads(1)
    comm = distributed.init()
    x, y, _, _, source = load_data()
    results: dict[str, object] = {"ranks": comm.Get_size(), "data": source}
    for kind in kinds:
        batch = BATCH[kind]
        n_batches, repeats = SIZES[kind]
        n = batch * n_batches
        xs, ys = prepare(kind, x[:n]), y[:n]
        net = neuro_cnn() if kind == "cnn" else neuro_mlp()

        timed_epoch(comm, net, xs[: 2 * batch], ys[: 2 * batch], batch)  # warm up: caches, optimizer state
        best = min(timed_epoch(comm, net, xs, ys, batch) for _ in range(repeats))
        grads = np.ones(sum(int(p.size) for p in net.params) + 3, dtype=net.dtype)
        from mpi4py import MPI

        reps, times = 20, []
        for _ in range(reps):
            comm.Barrier()
            start = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, grads, op=MPI.SUM)
            times.append(time.perf_counter() - start)
        results[kind] = {
            "samples_per_s": n / best,
            "step_s": best / n_batches,
            "batch": batch,
            "params": sum(int(p.size) for p in net.params),
            "grad_bytes": int(grads.nbytes),
            "allreduce_s": float(np.median(times)),
        }
    if comm.Get_rank() == 0:
        out.write_text(json.dumps(results))


def mpiexec() -> str:
    local = pathlib.Path(sys.executable).parent / "mpiexec"
    found = str(local) if local.exists() else shutil.which("mpiexec")
    if found is None:
        sys.exit("mpiexec not found: pip install '.[mpi]' (mpi4py and the MPICH wheel)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best is kept")
    parser.add_argument("--nets", nargs="+", default=["cnn", "mlp"], choices=["cnn", "mlp"])
    parser.add_argument("--json", type=pathlib.Path, help="also write the results here")
    parser.add_argument("--worker", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.nets)
        return
    best: dict[int, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for p in args.ranks:
                out = pathlib.Path(tmp) / f"r{rnd}_p{p}.json"
                cmd = [mpiexec(), "-n", str(p), sys.executable, __file__, "--worker", str(out)]
                cmd += ["--nets", *args.nets]
                subprocess.run(cmd, check=True, timeout=1800)
                res = json.loads(out.read_text())
                for kind in args.nets:
                    if p not in best or res[kind]["samples_per_s"] > best[p][kind]["samples_per_s"]:
                        best.setdefault(p, dict(res))[kind] = res[kind]
                print(
                    f"round {rnd + 1}, {p} rank(s): "
                    + ", ".join(f"{k} {res[k]['samples_per_s']:.0f} samples/s" for k in args.nets),
                    flush=True,
                )
    base = min(best)
    print(f"\ndata: {best[base]['data']}; one BLAS thread per rank; best of {args.rounds} rounds\n")
    print("| network | ranks | samples/s | speed-up | efficiency | step (s) | gradient MB | Allreduce (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind in args.nets:
        one = best[base][kind]["samples_per_s"] / base
        for p in sorted(best):
            r = best[p][kind]
            print(
                f"| {kind.upper()} (batch {r['batch']}) | {p} | {r['samples_per_s']:.0f} | "
                f"{r['samples_per_s'] / (one * base):.2f}× | {r['samples_per_s'] / (one * p):.0%} | "
                f"{r['step_s']:.4f} | {r['grad_bytes'] / 1e6:.2f} | "
                f"{r['allreduce_s'] * 1e3 if p > 1 else 0:.2f} |"
            )
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in best.items()}, indent=1))


if __name__ == "__main__":
    main()
