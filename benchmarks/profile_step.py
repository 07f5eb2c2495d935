"""Profile neuro's training of the benchmark networks: where does a batch's time go?

    python benchmarks/profile_step.py cnn --threads 1      # or: mlp, --threads 2, --batches 8

Prints samples/s and the functions with the most own time (cProfile sees the calling thread only: with
more than one thread, the parts of elementwise passes run by neuro's worker threads are not listed).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # as neuro sets it when imported first

import argparse  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402

import bench  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["mlp", "cnn"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    x, y, _, _, _ = bench.load_data()
    batch = bench.BATCH[args.kind]
    x, y = bench.prepare(args.kind, x[: batch * args.batches]), y[: batch * args.batches]
    with threadpool_limits(args.threads):
        bench.neuro_threads(args.threads)
        net = bench.neuro_cnn() if args.kind == "cnn" else bench.neuro_mlp()
        bench.neuro_train(net, x[: 2 * batch], y[: 2 * batch], batch)  # warm-up
        start = time.perf_counter()
        bench.neuro_train(net, x, y, batch)
        rate = len(x) / (time.perf_counter() - start)
        print(f"{args.kind}, {args.threads} thread(s): {rate:.0f} samples/s")
        profile = cProfile.Profile()
        profile.runcall(bench.neuro_train, net, x, y, batch)
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
