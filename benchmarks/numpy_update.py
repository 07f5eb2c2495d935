"""How far NumPy's optimizer update is from its floor: neuro's Adadelta stage and commit with NumPy's kernels
against the same 14 NumPy passes per 64k-element chunk written bare (no guard bookkeeping, no Python beyond
the loop), on the reference MLP's parameters (784-500-300-10), one thread.

    python benchmarks/numpy_update.py

The bare loop is what no Python restructuring of the NumPy path can beat: with it the MLP step would still
be its products (about 1.5 ms) plus about 1.45 ms of update, about 0.96x PyTorch's step on this machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

from neuro import backend  # noqa: E402
from neuro.optimizers import Adadelta  # noqa: E402

SHAPES = [(784, 500), (500,), (500, 300), (300,), (300, 10), (10,)]
CHUNK = 1 << 16


def best_ms(fn, n: int = 200, rounds: int = 7) -> float:
    for _ in range(10):
        fn()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e3


def main() -> None:
    backend.set_kernels("numpy")
    backend.set_num_threads(1)
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [(0.01 * rng.standard_normal(s)).astype(np.float32) for s in SHAPES]
    opt = Adadelta(1.0)
    opt.stage(params, grads)
    opt.commit(params)
    neuro_ms = best_ms(lambda: (opt.stage(params, grads), opt.commit(params)))

    state = [(np.full(s, 1e-4, np.float32), np.full(s, 1e-4, np.float32)) for s in SHAPES]
    new = [(np.empty(s, np.float32), np.empty(s, np.float32)) for s in SHAPES]
    steps = [np.empty(s, np.float32) for s in SHAPES]
    tmp = np.empty(CHUNK, np.float32)
    rho, c, eps = np.float32(0.95), np.float32(0.05), np.float32(1e-6)

    def bare() -> None:
        for p, g, (v, u), (vn, un), o in zip(params, grads, state, new, steps, strict=True):
            pf, gf, of = p.reshape(-1), g.reshape(-1), o.reshape(-1)
            vf, uf, vnf, unf = v.reshape(-1), u.reshape(-1), vn.reshape(-1), un.reshape(-1)
            for a in range(0, p.size, CHUNK):
                b = min(a + CHUNK, p.size)
                gg, t, out = gf[a:b], tmp[: b - a], of[a:b]
                np.multiply(gg, c, out=t)
                t *= gg
                np.multiply(vf[a:b], rho, out=vnf[a:b])
                vnf[a:b] += t
                np.add(vnf[a:b], eps, out=t)
                np.add(uf[a:b], eps, out=out)
                out /= t
                np.sqrt(out, out=out)
                out *= gg
                np.multiply(out, c, out=t)
                t *= out
                np.multiply(uf[a:b], rho, out=unf[a:b])
                unf[a:b] += t
                np.subtract(pf[a:b], out, out=out)
                np.dot(out, vnf[a:b]) + np.dot(unf[a:b], unf[a:b])
        for p, o in zip(params, steps, strict=True):
            np.copyto(p, o)

    snapshot = [p.copy() for p in params]
    bare_ms = best_ms(bare)
    for p, s in zip(params, snapshot, strict=True):
        np.copyto(p, s)
    print(f"neuro's NumPy Adadelta, stage + commit: {neuro_ms:.3f} ms")
    print(f"the same passes bare:                   {bare_ms:.3f} ms ({neuro_ms / bare_ms:.2f}x)")


if __name__ == "__main__":
    main()
