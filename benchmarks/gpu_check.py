"""neuro on a GPU: every layer against NumPy, one epoch against the CPU run, throughput against PyTorch CUDA.

Run from the checkout on a machine that already has CuPy (CUDA 12 or 13 build) and PyTorch with CUDA; it
installs nothing and finishes within a few minutes::

    PYTHONPATH=. python benchmarks/gpu_check.py                 # the full check, prints a Markdown table
    PYTHONPATH=. python benchmarks/gpu_check.py --out gpu.md    # and writes it to a file
    PYTHONPATH=. python benchmarks/gpu_check.py --device strict --quick   # a dry run on the CPU stand-in

What it checks:

1. every layer's training forward, backward (input and parameter gradients) and inference forward on the
   device against NumPy from the same weights and input: float32 within relative 1e-4, float64 within 1e-10
   (relative to the largest magnitude of the NumPy result);
2. the reference CNN and MLP of ``bench.py`` trained for one epoch on real digits (the MNIST test set when
   ``../shared/data/mnist`` is beside the checkout, else scikit-learn's digits resized to 28×28) on the CPU
   and on the device from the same seed: without dropout the per-batch losses agree closely (float32
   summation order differs), with dropout (whose masks come from each device's own generator) the epoch
   losses agree within a few percent;
3. training throughput (samples/s) on the device against PyTorch CUDA on the same card, same network, same
   batch (CNN 128, MLP 100), and against neuro's own 2-thread CPU run.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("OMP_NUM_THREADS", "2")  # the CPU reference runs on 2 threads

import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import neuro  # noqa: E402
from neuro import backend  # noqa: E402
from neuro.layers import (  # noqa: E402
    GRU,
    LSTM,
    AvgPool1D,
    AvgPool2D,
    BatchNorm,
    Bidirectional,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPool1D,
    LayerNormalization,
    LeakyReLU,
    Masking,
    MaxPool1D,
    MaxPool2D,
    ReLU,
    Sigmoid,
    SimpleRNN,
    Softmax,
    Tanh,
)

LAYERS = [
    ("Dense tanh", lambda: Dense(64, "tanh"), (100,)),
    ("Dense softmax", lambda: Dense(10, "softmax"), (64,)),
    ("Conv2D 3x3 same relu", lambda: Conv2D(16, 3, padding="same", activation="relu"), (14, 14, 8)),
    ("Conv2D 3x2 stride 2", lambda: Conv2D(8, (3, 2), strides=2, padding="same"), (13, 12, 4)),
    ("Conv2D 1x1", lambda: Conv2D(8, 1), (7, 7, 16)),
    ("MaxPool2D 2x2", lambda: MaxPool2D(2), (14, 14, 8)),
    ("MaxPool2D 3/2 same", lambda: MaxPool2D(3, strides=2, padding="same"), (13, 13, 4)),
    ("AvgPool2D 2x2", lambda: AvgPool2D(2), (14, 14, 8)),
    ("AvgPool2D 3/1 same", lambda: AvgPool2D(3, strides=1, padding="same"), (9, 9, 4)),
    ("GlobalAveragePooling2D", lambda: GlobalAveragePooling2D(), (7, 7, 16)),
    ("BatchNorm (N, F)", lambda: BatchNorm(), (32,)),
    ("BatchNorm (N, H, W, C)", lambda: BatchNorm(), (7, 7, 16)),
    ("Dropout 0.5", lambda: Dropout(0.5), (64,)),
    ("Flatten", lambda: Flatten(), (7, 7, 4)),
    ("ReLU", lambda: ReLU(), (64,)),
    ("LeakyReLU", lambda: LeakyReLU(0.1), (64,)),
    ("Sigmoid", lambda: Sigmoid(), (64,)),
    ("Tanh", lambda: Tanh(), (64,)),
    ("Softmax", lambda: Softmax(), (10,)),
    ("Embedding (ids)", lambda: Embedding(50, 16), (12,)),
    ("SimpleRNN sequences", lambda: SimpleRNN(16, return_sequences=True), (12, 8)),
    ("LSTM last state", lambda: LSTM(32), (12, 8)),
    ("GRU reset_after", lambda: GRU(16, return_sequences=True), (12, 8)),
    ("GRU reset_before", lambda: GRU(16, reset_after=False), (12, 8)),
    ("LSTM masked sequences", lambda: LSTM(16, return_sequences=True), (12, 8)),
    ("GlobalAveragePooling1D masked", lambda: GlobalAveragePooling1D(), (12, 8)),
    ("Bidirectional LSTM", lambda: Bidirectional(LSTM(8, return_sequences=True)), (10, 6)),
    ("Conv1D causal dilated", lambda: Conv1D(16, 3, padding="causal", dilation_rate=2), (20, 8)),
    ("Conv1D same stride 2", lambda: Conv1D(8, 4, strides=2, padding="same"), (19, 8)),
    ("MaxPool1D 2", lambda: MaxPool1D(2), (20, 8)),
    ("AvgPool1D 3/1 same", lambda: AvgPool1D(3, strides=1, padding="same"), (20, 8)),
    ("GlobalAveragePooling1D", lambda: GlobalAveragePooling1D(), (20, 8)),
    ("GlobalMaxPool1D", lambda: GlobalMaxPool1D(), (20, 8)),
    ("LayerNormalization", lambda: LayerNormalization(), (12, 16)),
    ("Dense on sequences", lambda: Dense(8, "relu"), (12, 16)),
    ("Masking", lambda: Masking(0.0), (12, 8)),
]
TOLERANCE = {np.float32: 1e-4, np.float64: 1e-10}


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-30)
    return float(np.max(np.abs(a.astype(np.float64) - b), initial=0.0)) / scale


def check_layers(xp, quick: bool) -> list[tuple[str, str, float, float, bool]]:
    """Forward and backward of every layer on the device against NumPy."""
    rows = []
    for name, make, shape in LAYERS:
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            n = 16 if quick else 64
            if name.startswith("Embedding"):
                x = rng.integers(0, 50, (n, *shape))
            else:
                x = rng.standard_normal((n, *shape)).astype(dtype)
                if name == "Masking":
                    x[::3, 5:] = 0.0  # masked steps
            host, dev = make(), make()
            host.build(shape, np.random.default_rng(1), dtype, np)
            dev.build(shape, np.random.default_rng(1), dtype, xp)
            if isinstance(host, Dropout):  # the device draws its own mask: give both the same one
                mask_rng = np.random.default_rng(5)
                u = mask_rng.random(x.shape, dtype=dtype)
                y_h, ctx_h = neuro.functional.dropout(x, host.rate, u.copy())
                y_d, ctx_d = neuro.functional.dropout(
                    backend.to_device(x, xp), dev.rate, backend.to_device(u, xp)
                )
                r = rng.standard_normal(y_h.shape).astype(dtype)
                dx_h = host.backward(r, ctx_h)
                dx_d = dev.backward(backend.to_device(r, xp), ctx_d)
            else:
                kw_h, kw_d = {}, {}
                if "masked" in name:  # the last steps of every other sequence are padding
                    mask = np.ones(x.shape[:2], dtype=bool)
                    mask[::2, 7:] = False
                    kw_h, kw_d = {"mask": mask}, {"mask": backend.to_device(mask, xp)}
                y_h, ctx_h = host.forward(x, training=True, **kw_h)
                y_d, ctx_d = dev.forward(backend.to_device(x, xp), training=True, **kw_d)
                r = rng.standard_normal(y_h.shape).astype(dtype)
                dx_h = host.backward(r, ctx_h)
                dx_d = dev.backward(backend.to_device(r, xp), ctx_d)
            fwd = max(
                _rel(backend.to_numpy(y_d), y_h),
                _rel(backend.to_numpy(dev(backend.to_device(x, xp))), host(x)),
            )
            bwd = 0.0 if dx_h is None else _rel(backend.to_numpy(dx_d), dx_h)  # ids have no gradient
            for k in host.params:
                bwd = max(bwd, _rel(backend.to_numpy(dev.grads[k]), host.grads[k]))
            for k in host.buffers:
                fwd = max(fwd, _rel(backend.to_numpy(dev.buffers[k]), host.buffers[k]))
            ok = fwd <= TOLERANCE[dtype] and bwd <= TOLERANCE[dtype]
            rows.append((name, np.dtype(dtype).name, fwd, bwd, ok))
    return rows


def load_digits_28(limit: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    mnist = HERE.parent.parent / "shared" / "data" / "mnist"
    if (mnist / "t10k-images-idx3-ubyte.gz").exists():
        from neuro.data import load_mnist

        x, y = load_mnist(mnist)
        source = "MNIST test set"
    else:
        from PIL import Image
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (
            np.stack(
                [np.asarray(Image.fromarray((im * 16).astype(np.uint8)).resize((28, 28))) for im in d.images]
            )[..., None].astype(np.float32)
            / 255
        )
        y = d.target.astype(np.int64)
        source = "scikit-learn digits, resized to 28x28"
    if limit:
        x, y = x[:limit], y[:limit]
    return np.ascontiguousarray(x), y, source


class _Losses(neuro.callbacks.Callback):
    def on_train_begin(self, logs):
        self.values = []
        self.last = None

    def on_batch_end(self, batch, logs):  # the running mean of the epoch so far
        self.values.append(logs["loss"])


def compare_training(xp, device, x, y, quick):
    from bench import neuro_cnn, neuro_mlp

    rows = []
    for kind, make, batch in (("CNN", neuro_cnn, 128), ("MLP", neuro_mlp, 100)):
        data = x if kind == "CNN" else x.reshape(len(x), -1)
        curves = {}
        for dropout in (False, True):
            for where in ("numpy", device):
                net = make(seed=0) if dropout or kind == "MLP" else make(seed=0, dropout=False)
                net.to(where)
                rec = _Losses()
                net.fit(data, y, batch_size=batch, epochs=1, verbose=0, shuffle=True, callbacks=[rec])
                curves[(dropout, where)] = np.array(rec.values)
        a, b = curves[(False, "numpy")], curves[(False, device)]
        curve = float(np.max(np.abs(a - b) / np.abs(a)))
        a, b = curves[(True, "numpy")], curves[(True, device)]
        epoch = abs(a[-1] - b[-1]) / abs(a[-1])
        rows.append((kind, len(a), curve, epoch, curve < 1e-3 and epoch < 0.05))
    return rows


def _sync(xp):
    if backend.device_name(xp) == "cupy":
        xp.cuda.Stream.null.synchronize()


def neuro_throughput(make, where, data, y, batch, batches):
    net = make(seed=0).to(where)
    xp = net.xp
    xs = backend.to_device(data[: batch * batches], xp)
    ys = backend.to_device(y[: batch * batches], xp)
    xb0, yb0 = xs[:batch], ys[:batch]
    for _ in range(3):  # warm-up: kernels compiled, buffers made
        net.train_step([xb0], [yb0])
    _sync(xp)
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for b in range(batches):
            net.train_step([xs[b * batch : (b + 1) * batch]], [ys[b * batch : (b + 1) * batch]])
        _sync(xp)
        best = max(best, batch * batches / (time.perf_counter() - start))
    return best


def torch_throughput(kind, data, y, batch, batches):
    import torch
    from bench import torch_cnn, torch_mlp

    if not torch.cuda.is_available():
        return None
    dev = torch.device("cuda")
    model = (torch_cnn(torch) if kind == "CNN" else torch_mlp(torch)).to(dev)
    opt = (
        torch.optim.Adam(model.parameters(), lr=1e-3)
        if kind == "CNN"
        else torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-6)
    )
    xt = torch.tensor(data[: batch * batches]).to(dev)
    if kind == "CNN":
        xt = xt.permute(0, 3, 1, 2).contiguous()
    yt = torch.tensor(y[: batch * batches]).to(dev)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(b):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt[b * batch : (b + 1) * batch]), yt[b * batch : (b + 1) * batch])
        loss.backward()
        opt.step()

    for b in range(3):
        step(b)
    torch.cuda.synchronize()
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for b in range(batches):
            step(b)
        torch.cuda.synchronize()
        best = max(best, batch * batches / (time.perf_counter() - start))
    return best


def throughput(device, x, y, quick):
    from bench import neuro_cnn, neuro_mlp

    rows = []
    for kind, make, batch, n in (
        ("CNN", neuro_cnn, 128, 10 if quick else 40),
        ("MLP", neuro_mlp, 100, 20 if quick else 80),
    ):
        data = x if kind == "CNN" else x.reshape(len(x), -1)
        n = min(n, len(data) // batch)
        cpu_n = max(3, n // 8)
        cpu = neuro_throughput(make, "numpy", data, y, batch, cpu_n)
        gpu = neuro_throughput(make, device, data, y, batch, n)
        tch = torch_throughput(kind, data, y, batch, n) if device == "cupy" else None
        rows.append((kind, batch, cpu, gpu, tch))
    return rows


def environment(xp, device) -> str:
    parts = [f"neuro {neuro.__version__}", f"NumPy {np.__version__}"]
    if device == "cupy":
        props = xp.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        parts.insert(0, f"{name}")
        parts.append(f"CuPy {xp.__version__} (CUDA runtime {xp.cuda.runtime.runtimeGetVersion()})")
    else:
        parts.insert(0, f"device {device!r} (dry run on the CPU)")
    try:
        import torch

        parts.append(
            f"torch {torch.__version__}" + (" with CUDA" if torch.cuda.is_available() else " (no CUDA)")
        )
    except ImportError:
        parts.append("torch missing")
    return ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cupy", help="cupy (default), or strict for a dry run on the CPU")
    parser.add_argument("--quick", action="store_true", help="smaller batches and data (a smoke run)")
    parser.add_argument("--out", help="also write the Markdown report to this file")
    args = parser.parse_args()
    xp = backend.get_device(args.device)
    started = time.perf_counter()
    lines = [f"GPU check: {environment(xp, args.device)}", ""]

    layers = check_layers(xp, args.quick)
    lines += [
        "| layer | dtype | forward rel. error | backward rel. error | ok |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    lines += [f"| {n} | {d} | {f:.1e} | {b:.1e} | {'yes' if ok else 'NO'} |" for n, d, f, b, ok in layers]

    x, y, source = load_digits_28(1024 if args.quick else 8000)
    training = compare_training(xp, args.device, x, y, args.quick)
    lines += [
        "",
        f"One epoch on {len(x)} images ({source}), same seed on the CPU and on the device:",
        "",
        "| network | batches | running loss, no dropout (rel. diff) | epoch loss, dropout (rel. diff) | ok |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    lines += [f"| {k} | {n} | {c:.1e} | {e:.1e} | {'yes' if ok else 'NO'} |" for k, n, c, e, ok in training]

    speed = throughput(args.device, x, y, args.quick)
    lines += [
        "",
        "Training throughput (samples/s; best of 3 timed runs after a warm-up):",
        "",
        "| network | batch | neuro CPU 2 thr | neuro device | PyTorch CUDA | device/CPU | device/PyTorch |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, batch, cpu, gpu, tch in speed:
        t = f"{tch:,.0f}" if tch else "n/a"
        r = f"{gpu / tch:.2f}" if tch else "n/a"
        lines.append(f"| {kind} | {batch} | {cpu:,.0f} | {gpu:,.0f} | {t} | {gpu / cpu:.1f} | {r} |")
    lines += ["", f"Took {time.perf_counter() - started:.0f} s."]
    report = "\n".join(lines)
    print(report, flush=True)
    if args.out:
        pathlib.Path(args.out).write_text(report + "\n")
    failed = [r for r in layers if not r[-1]] + [r for r in training if not r[-1]]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
