"""neuro against PyTorch (CPU): training throughput, memory, prediction latency, import time, accuracy.

Run from the repository root (needs the ``bench`` extra: ``pip install ".[bench]"``)::

    python benchmarks/bench.py                 # everything, 1 and 2 threads, writes benchmarks/results.md
    python benchmarks/bench.py --quick         # fewer batches, no accuracy run

Both libraries run in the same process, on the same data, with the same thread count (threadpoolctl limits
every BLAS/OpenMP pool, and torch.set_num_threads sets torch's), and each figure is the best of a few
alternating repetitions, so that a noisy shared machine disturbs both alike. Peak memory and import time are
measured in fresh subprocesses, one library each. Data: the real MNIST test set in ../shared/data/mnist
(a seeded 8,000 / 2,000 split); random images of the same shape when it is absent.
"""

from __future__ import annotations

import os

# Two thread pools share this process. By default OpenBLAS's idle workers spin for ~0.1 s after every
# matrix product, which would take the cores from torch right after a neuro run (and from neuro's own
# elementwise threads); neuro asks them to sleep at once, and so does this script, since NumPy loads first.
# torch's OpenMP workers keep their default short spin.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
RESULTS = pathlib.Path(__file__).resolve().parent / "results.md"


# -- data -------------------------------------------------------------------------------------------
def load_data(seed: int = 0):
    if (MNIST / "t10k-images-idx3-ubyte.gz").exists():
        from neuro.data import load_mnist

        x, y = load_mnist(MNIST)
        source = "MNIST test set (8,000 train / 2,000 held out)"
    else:
        rng = np.random.default_rng(seed)
        x = rng.random((10000, 28, 28, 1), dtype=np.float32)
        y = rng.integers(0, 10, 10000)
        source = "random images (MNIST folder absent)"
    order = np.random.default_rng(seed).permutation(len(x))
    tr, te = order[:8000], order[8000:]
    return x[tr], y[tr], x[te], y[te], source


# -- the two networks, in both libraries -----------------------------------------------------------
def neuro_mlp(seed: int = 0):
    import neuro
    from neuro.optimizers import Adadelta

    net = neuro.Network((784,), "softmax_crossentropy", Adadelta(1.0, 0.95, 1e-6), seed=seed)
    net.add(neuro.Dense(500, "tanh", kernel_initializer="glorot_uniform"))
    net.add(neuro.Dense(300, "tanh", kernel_initializer="glorot_uniform"))
    net.add(neuro.Dense(10, "softmax", kernel_initializer="glorot_uniform"))
    return net


def neuro_cnn(seed: int = 0, dropout: bool = True):
    import neuro
    from neuro.optimizers import Adam

    net = neuro.Network((28, 28, 1), "softmax_crossentropy", Adam(1e-3), seed=seed)
    net.add(neuro.Conv2D(32, (3, 3), padding="same", activation="relu"))
    net.add(neuro.Conv2D(64, (3, 3), padding="same", activation="relu"))
    net.add(neuro.MaxPool2D((2, 2)))
    if dropout:
        net.add(neuro.Dropout(0.5))
    net.add(neuro.Flatten())
    net.add(neuro.Dense(128, "relu"))
    if dropout:
        net.add(neuro.Dropout(0.25))
    net.add(neuro.Dense(10, "softmax"))
    return net


RESNET_SHAPE = (32, 32, 16)


def neuro_resnet(seed: int = 0, blocks: int = 3):
    """A stack of identity residual blocks on 32×32×16 feature maps (graph model): Conv 3×3 → BatchNorm →
    ReLU → Conv 3×3 → BatchNorm, added to the block's input, ReLU; then global average pooling and a
    softmax of 10."""
    import neuro
    from neuro.optimizers import Adam

    x = inputs = neuro.Input(RESNET_SHAPE)
    for _ in range(blocks):
        h = neuro.Conv2D(16, 3, padding="same")(x)
        h = neuro.ReLU()(neuro.BatchNorm(momentum=0.9)(h))
        h = neuro.BatchNorm(momentum=0.9)(neuro.Conv2D(16, 3, padding="same")(h))
        x = neuro.ReLU()(neuro.Add()([h, x]))
    out = neuro.Dense(10, "softmax")(neuro.GlobalAveragePooling2D()(x))
    return neuro.Model(inputs, out, loss="softmax_crossentropy", optimizer=Adam(1e-3), seed=seed)


def torch_resnet(torch, blocks: int = 3):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16, momentum=0.1)
            self.c2, self.b2 = nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16, momentum=0.1)

        def forward(self, x):
            h = torch.relu(self.b1(self.c1(x)))
            return torch.relu(self.b2(self.c2(h)) + x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([Block() for _ in range(blocks)])
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return self.fc(x.mean(dim=(2, 3)))

    return Net()


def torch_mlp(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 500), nn.Tanh(), nn.Linear(500, 300), nn.Tanh(), nn.Linear(300, 10)
    )


def torch_cnn(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.5), nn.Flatten(),
        nn.Linear(64 * 14 * 14, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10),
    )


def torch_optimizer(torch, kind, model):
    if kind == "mlp":
        return torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-6)
    return torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)


def copy_weights(net, model, torch, kind):
    """Give the torch model neuro's initial weights (same initialisation, layouts transposed)."""
    params = net.params
    tparams = list(model.parameters())
    assert len(params) == len(tparams)
    with torch.no_grad():
        for p, t in zip(params, tparams, strict=True):
            a = np.asarray(p)
            if a.ndim == 2:
                a = a.T  # (in, out) -> (out, in)
            elif a.ndim == 4:
                a = a.transpose(3, 2, 0, 1)  # (kh, kw, C, F) -> (F, C, kh, kw)
            if kind == "cnn" and a.ndim == 2 and a.shape[1] == 64 * 14 * 14:
                # neuro flattens (H, W, C), torch (C, H, W): permute the input rows of the first Dense
                a = a.reshape(a.shape[0], 14, 14, 64).transpose(0, 3, 1, 2).reshape(a.shape[0], -1)
            t.copy_(torch.from_numpy(np.ascontiguousarray(a)))


def prepare(kind, x):
    if kind == "mlp":
        return x.reshape(len(x), 784)
    if kind == "resnet":  # feature maps of the shape a ResNet stage works on (random values)
        return np.random.default_rng(0).standard_normal((len(x), *RESNET_SHAPE)).astype(np.float32)
    return x


def torch_input(torch, kind, x):
    t = torch.from_numpy(np.ascontiguousarray(prepare(kind, x)))
    return t if kind == "mlp" else t.permute(0, 3, 1, 2).contiguous()


def neuro_threads(threads):
    """neuro's own elementwise threads; BLAS threads are set by threadpoolctl."""
    import neuro

    neuro.backend.set_num_threads(threads)


# -- measurements ---------------------------------------------------------------------------------
BATCH = {"mlp": 100, "cnn": 128, "resnet": 128}
MAKERS = {
    "mlp": ("neuro_mlp", "torch_mlp"),
    "cnn": ("neuro_cnn", "torch_cnn"),
    "resnet": ("neuro_resnet", "torch_resnet"),
}


def neuro_train(net, x, y, batch):
    net.fit(x, y, batch_size=batch, epochs=1, shuffle=True, metrics=(), verbose=0)


def torch_train(torch, model, opt, x, y, batch, gen):
    model.train()
    f = torch.nn.functional
    order = torch.randperm(len(x), generator=gen)
    for s in range(0, len(x), batch):
        idx = order[s : s + batch]
        opt.zero_grad(set_to_none=True)
        loss = f.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()


def best_time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def throughput(kind, x, y, threads, n_batches, repeats, libs=("neuro", "torch")):
    """Training samples/s of neuro and torch (``None`` for a library not in ``libs``) on ``kind``, from the
    same initial weights."""
    from threadpoolctl import threadpool_limits

    neuro_threads(threads)
    batch = BATCH[kind]
    n = batch * n_batches
    xn, yn = prepare(kind, x[:n]), y[:n]
    torch = None
    if "torch" in libs:
        import torch

        torch.set_num_threads(threads)
        xt, yt = torch_input(torch, kind, x[:n]), torch.from_numpy(y[:n])
        gen = torch.Generator().manual_seed(0)
    with threadpool_limits(limits=threads):
        net = globals()[MAKERS[kind][0]]()
        if torch is not None:
            model = globals()[MAKERS[kind][1]](torch)
            copy_weights(net, model, torch, kind)
            opt = torch_optimizer(torch, kind, model)
            torch_train(torch, model, opt, xt[: 2 * batch], yt[: 2 * batch], batch, gen)  # warm up
        if "neuro" in libs:
            neuro_train(net, xn[: 2 * batch], yn[: 2 * batch], batch)
        tn = tt = float("inf")
        for _ in range(repeats):  # alternate, so that machine noise hits both
            if "neuro" in libs:
                tn = min(tn, best_time(lambda: neuro_train(net, xn, yn, batch), 1))
            if torch is not None:
                tt = min(tt, best_time(lambda: torch_train(torch, model, opt, xt, yt, batch, gen), 1))
    return (n / tn if "neuro" in libs else None), (n / tt if torch is not None else None)


def apart(func, kind, threads, n_batches, repeats, rounds):
    """``func``'s figures (``throughput``, ``sequence_throughput`` or ``predict_speed``; larger is better)
    with each library in a process of its own, the way a user runs it: neuro tunes glibc's malloc in its
    first fit, and the large blocks PyTorch frees raise glibc's thresholds too, so in one process each library
    would run with the other's malloc (PyTorch took 10–15 % less time per CNN batch beside neuro than alone),
    and PyTorch's idle OpenMP threads spin on the cores neuro's next call needs. The processes alternate for
    ``rounds`` rounds; each figure is the best."""
    best = None
    for _ in range(rounds):
        for lib in ("neuro", "torch"):
            out = subprocess.run(
                [sys.executable, __file__, "--train-child", func, kind, str(threads), str(n_batches),
                 str(repeats), lib], capture_output=True, text=True, check=True,
            )
            found = json.loads(out.stdout.strip().splitlines()[-1])
            best = found if best is None else [
                b if f is None else f if b is None else max(b, f) for b, f in zip(best, found, strict=True)
            ]
    return best


def train_child(func, kind, threads, n_batches, repeats, lib):
    x, y, _, _, _ = load_data()
    print(json.dumps(globals()[func](kind, x, y, threads, n_batches, repeats, libs=(lib,))))


def predict_speed(kind, x, y, threads, n_batches, repeats, libs=("neuro", "torch")):
    """Single-sample predictions per second and batch-of-1,024 samples per second: ``[neuro single, torch
    single, neuro batch, torch batch]``, ``None`` for a library not in ``libs`` (``y`` and ``n_batches`` are
    unused: the signature is :func:`apart`'s). Run through :func:`apart`, each library in a process of its
    own: in one process PyTorch's OpenMP threads, still spinning after its last call, slowed neuro's next
    two-thread batch by up to 2× (its 1,024-sample MLP batch took 7 ms instead of 3.6)."""
    from threadpoolctl import threadpool_limits

    neuro_threads(threads)
    one, big = x[:1], x[:1024]
    reps = 200 if kind == "mlp" else 50
    runs = {}
    with threadpool_limits(limits=threads):
        if "neuro" in libs:
            net = globals()[MAKERS[kind][0]]()
            one_n, big_n = prepare(kind, one), prepare(kind, big)

            def single_n():
                for _ in range(reps):
                    net.predict(one_n)

            runs["neuro"] = (single_n, lambda: net.predict(big_n, batch_size=1024))
        if "torch" in libs:
            import torch

            torch.set_num_threads(threads)
            model = globals()[MAKERS[kind][1]](torch)
            model.eval()
            one_t, big_t = torch_input(torch, kind, one), torch_input(torch, kind, big)

            def single_t():
                with torch.inference_mode():
                    for _ in range(reps):
                        model(one_t)

            def batch_t():
                with torch.inference_mode():
                    model(big_t)

            runs["torch"] = (single_t, batch_t)
        out = {}
        for lib, (single, batch) in runs.items():
            single(), batch()
            ls = lb = float("inf")
            for _ in range(repeats):
                ls = min(ls, best_time(single, 3) / reps)
                lb = min(lb, best_time(batch, 3))
            out[lib] = (1 / ls, 1024 / lb)
    n, t = out.get("neuro", (None, None)), out.get("torch", (None, None))
    return [n[0], t[0], n[1], t[1]]


def accuracy(kind, x, y, xv, yv, epochs, threads):
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    neuro_threads(threads)
    torch.manual_seed(0)
    batch = BATCH[kind]
    with threadpool_limits(limits=threads):
        net = globals()[MAKERS[kind][0]]()
        model = globals()[MAKERS[kind][1]](torch)
        copy_weights(net, model, torch, kind)
        opt = torch_optimizer(torch, kind, model)
        net.fit(prepare(kind, x), y, batch_size=batch, epochs=epochs, metrics=(), verbose=0)
        acc_n = net.evaluate(prepare(kind, xv), yv, metrics=["accuracy"])["accuracy"]
        xt, yt = torch_input(torch, kind, x), torch.from_numpy(y)
        gen = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            torch_train(torch, model, opt, xt, yt, batch, gen)
        model.eval()
        with torch.inference_mode():
            pred = model(torch_input(torch, kind, xv)).argmax(1).numpy()
        acc_t = float((pred == yv).mean())
    return acc_n, acc_t


# -- sequences ------------------------------------------------------------------------------------
SEQ_BATCH = {"lstm": 64, "gru": 32}
CHAR_STEPS, CHAR_VOCAB = 100, 100


def neuro_lstm(seed: int = 0):
    """LSTM(128) over the 28 rows of an MNIST image, its last state classified (sequential MNIST)."""
    from neuro import LSTM, Dense, Input, Model

    rows = Input((28, 28))
    out = Dense(10, activation="softmax")(LSTM(128)(rows))
    return Model(rows, out, loss="softmax_crossentropy", optimizer="adam", seed=seed)


def torch_lstm(torch):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(28, 128, batch_first=True)
            self.out = torch.nn.Linear(128, 10)

        def forward(self, x):
            return self.out(self.lstm(x)[0][:, -1])

    return Net()


def neuro_gru(seed: int = 0):
    """A character model: Embedding(100, 64) → GRU(256) over 100 steps → Dense(100) at every step."""
    from neuro import GRU, Dense, Embedding, Input, Model

    ids = Input((CHAR_STEPS,), dtype="int64")
    h = GRU(256, return_sequences=True)(Embedding(CHAR_VOCAB, 64)(ids))
    return Model(ids, Dense(CHAR_VOCAB)(h), loss="softmax_crossentropy", optimizer="adam", seed=seed)


def torch_gru(torch):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(CHAR_VOCAB, 64)
            self.gru = torch.nn.GRU(64, 256, batch_first=True)
            self.out = torch.nn.Linear(256, CHAR_VOCAB)

        def forward(self, x):
            return self.out(self.gru(self.embed(x))[0])

    return Net()


def sequence_data(kind, x, y, n):
    """``(x, y)`` of ``n`` samples: MNIST rows and labels, or windows of Python's documentation as
    character ids (the 98 most frequent characters, the rest one id) and the characters that follow."""
    if kind == "lstm":
        return np.ascontiguousarray(x[:n, :, :, 0]), y[:n]
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    chars, counts = np.unique(codes, return_counts=True)
    rank = np.empty(len(chars), np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(len(chars))
    ids = np.minimum(rank[np.searchsorted(chars, codes)] + 1, CHAR_VOCAB - 1)
    starts = np.arange(n) * CHAR_STEPS
    window = starts[:, None] + np.arange(CHAR_STEPS + 1)
    seq = ids[window % len(ids)]
    return seq[:, :-1], seq[:, 1:]


def torch_sequence_train(torch, model, opt, x, y, batch, gen):
    model.train()
    f = torch.nn.functional
    order = torch.randperm(len(x), generator=gen)
    for s in range(0, len(x), batch):
        idx = order[s : s + batch]
        opt.zero_grad(set_to_none=True)
        out = model(x[idx])
        loss = f.cross_entropy(out.reshape(-1, out.shape[-1]), y[idx].reshape(-1))
        loss.backward()
        opt.step()


def sequence_throughput(kind, x, y, threads, n_batches, repeats, libs=("neuro", "torch")):
    """Training samples/s of neuro and torch on the sequence model ``kind`` (each with its own initial
    weights and Adam), and for the LSTM also predicted samples/s (batches of 1,024); ``None`` for a library
    not in ``libs``."""
    from threadpoolctl import threadpool_limits

    neuro_threads(threads)
    batch = SEQ_BATCH[kind]
    n = batch * n_batches
    xn, yn = sequence_data(kind, x, y, n)
    torch = None
    if "torch" in libs:
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        xt, yt = torch.from_numpy(xn), torch.from_numpy(yn)
        gen = torch.Generator().manual_seed(0)
    use_neuro = "neuro" in libs
    with threadpool_limits(limits=threads):
        if use_neuro:
            net = globals()[f"neuro_{kind}"]()
            neuro_train(net, xn[: 2 * batch], yn[: 2 * batch], batch)
        if torch is not None:
            model = globals()[f"torch_{kind}"](torch)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            torch_sequence_train(torch, model, opt, xt[: 2 * batch], yt[: 2 * batch], batch, gen)
        tn = tt = float("inf")
        for _ in range(repeats):
            if use_neuro:
                tn = min(tn, best_time(lambda: neuro_train(net, xn, yn, batch), 1))
            if torch is not None:
                tt = min(tt, best_time(lambda: torch_sequence_train(torch, model, opt, xt, yt, batch, gen),
                                       1))
        pn = pt = None
        if kind == "lstm":
            big_n = sequence_data(kind, x, y, 1024)[0]
            if use_neuro:
                net.predict(big_n, batch_size=1024)
                pn = 1024 / min(best_time(lambda: net.predict(big_n, batch_size=1024), 2)
                                for _ in range(repeats))
            if torch is not None:
                big_t = torch.from_numpy(big_n)
                model.eval()

                def predict_t():
                    with torch.inference_mode():
                        model(big_t)

                predict_t()
                pt = 1024 / min(best_time(predict_t, 2) for _ in range(repeats))
    return (n / tn if use_neuro else None), (n / tt if torch is not None else None), pn, pt


def data_sets(x, y, threads, n_batches, repeats):
    """CNN training from an image folder (in memory and lazy) against the same images as arrays.

    Returns ``(rows, nbytes, raw_bytes)``: (name, data-set samples/s, array samples/s) per mode, and the
    in-memory data set's size against N·H·W·C.
    """
    import tempfile

    from PIL import Image
    from threadpoolctl import threadpool_limits

    from neuro.data import ImageDataSet

    neuro_threads(threads)
    batch = BATCH["cnn"]
    n = batch * n_batches
    rows = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=threads):
        root = pathlib.Path(tmp)
        for i, (img, label) in enumerate(zip(x[:n], y[:n], strict=True)):
            folder = root / "train" / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.round(img[..., 0] * 255).astype(np.uint8)).save(folder / f"{i:05d}.png")
        eager = ImageDataSet.from_dir(root, channels=1)
        lazy = ImageDataSet.from_dir(root, channels=1, lazy=True)
        xa, ya = eager.train.arrays()
        nbytes = eager.train.nbytes
        for name, data in (("in memory", eager), ("lazy, 2 decoding threads", lazy)):
            net_d, net_a = neuro_cnn(), neuro_cnn()
            net_d.fit(data, batch_size=batch, epochs=1, metrics=(), verbose=0)  # warm-up
            neuro_train(net_a, xa, ya, batch)
            td = ta = float("inf")

            def from_data(net_d=net_d, data=data):
                net_d.fit(data, batch_size=batch, epochs=1, metrics=(), verbose=0)

            def from_arrays(net_a=net_a):
                neuro_train(net_a, xa, ya, batch)

            for _ in range(repeats):  # alternate, so that machine noise hits both
                td = min(td, best_time(from_data, 1))
                ta = min(ta, best_time(from_arrays, 1))
            rows.append((f"CNN training from a PNG folder, {name}, {threads} thr", n / td, n / ta))
    return rows, nbytes, int(np.prod(xa.shape))


# -- subprocess measurements ------------------------------------------------------------------------
def import_time(module, repeats=7):
    """Seconds to import ``module`` in a fresh process, as a user's installed copy imports: with its bytecode
    cached (the first, discarded, run writes it even where PYTHONDONTWRITEBYTECODE is set)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times = []
    for _ in range(repeats + 1):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env=env)
        times.append(float(out.stdout))
    return min(times[1:])


def peak_memory(lib, kind, threads, n_batches):
    """Peak resident memory (MiB) of a fresh process that trains ``n_batches`` batches."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", lib, kind, str(threads), str(n_batches)],
        capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)},
    )
    return float(out.stdout.strip().splitlines()[-1])


def memory_child(lib, kind, threads, n_batches):
    import resource

    x, y, _, _, _ = load_data()
    batch = BATCH[kind]
    n = batch * n_batches
    x, y = x[:n], y[:n]
    if lib == "neuro":
        neuro_threads(threads)
        net = neuro_cnn() if kind == "cnn" else neuro_mlp()
        neuro_train(net, prepare(kind, x), y, batch)
    else:
        import torch

        torch.set_num_threads(threads)
        model = torch_cnn(torch) if kind == "cnn" else torch_mlp(torch)
        opt = torch_optimizer(torch, kind, model)
        torch_train(torch, model, opt, torch_input(torch, kind, x), torch.from_numpy(y), batch,
                    torch.Generator().manual_seed(0))
    # VmHWM is this process's own high-water mark (ru_maxrss would include the parent's, kept across exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) / 1024)
            return
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


# -- compiled kernels: compile cost, install size -------------------------------------------------------
def compile_child(cache_dir, hide_scipy=False):
    """In a fresh process with numba's cache in ``cache_dir``: the first training step of each reference
    network (compiling, or loading from the cache, every kernel it uses) minus a second one, in seconds.
    ``hide_scipy``: SciPy cannot be imported, as where only the fast extra (numba) is installed."""
    if hide_scipy:
        sys.modules["scipy"] = None  # `import scipy` raises ImportError, as when it is not installed
    import neuro

    x, y, _, _, _ = load_data()
    total = 0.0
    for kind, make in (("mlp", neuro_mlp), ("cnn", neuro_cnn)):
        net = make()
        xb, yb = prepare(kind, x[:16]), y[:16]
        t = time.perf_counter()
        net.fit(xb, yb, batch_size=16, epochs=1, metrics=(), verbose=0)
        first = time.perf_counter() - t
        t = time.perf_counter()
        net.fit(xb, yb, batch_size=16, epochs=1, metrics=(), verbose=0)
        total += first - (time.perf_counter() - t)
    print(json.dumps({"seconds": total, "kernels": neuro.backend.get_kernels()}))


def compile_cost():
    """``(cold, warm, warm without SciPy)`` first-step overhead of the compiled kernels (s): with an empty
    numba cache, then with the cache the first run filled, then that again with SciPy hidden (numba loads
    SciPy's BLAS bindings when it starts, if SciPy is installed; the third is ``None`` where it is not);
    ``None`` when numba is not installed."""
    import importlib.util
    import tempfile

    if importlib.util.find_spec("numba") is None:
        return None
    with tempfile.TemporaryDirectory() as cache:
        # as an installed copy runs: with its modules' bytecode cached (see import_time)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(NUMBA_CACHE_DIR=cache, NEURO_KERNELS="numba")
        runs = []
        hide = [False, False] + ([True] if importlib.util.find_spec("scipy") is not None else [])
        for hide_scipy in hide:
            out = subprocess.run([sys.executable, __file__, "--compile-child", cache]
                                 + (["--hide-scipy"] if hide_scipy else []), capture_output=True,
                                 text=True, check=True, env=env)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
    return runs[0], runs[1], runs[2] if len(runs) > 2 else None


def package_mib(*names):
    """Installed size (MiB) of the packages' folders."""
    import importlib.util

    total = 0
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            for path in pathlib.Path(root).rglob("*"):
                if path.is_file():
                    total += path.stat().st_size
    return total / 2**20


# -- a busy machine -------------------------------------------------------------------------------------
def busy_child(lib, n_batches):
    """Reference CNN training with the library's default threads (nothing set), samples/s."""
    x, y, _, _, _ = load_data()
    n = 128 * n_batches
    x, y = x[:n], y[:n]
    if lib == "neuro":
        net = neuro_cnn()
        neuro_train(net, x[:128], y[:128], 128)
        t = time.perf_counter()
        neuro_train(net, x, y, 128)
    else:
        import torch

        model = torch_cnn(torch)
        opt = torch_optimizer(torch, "cnn", model)
        xt, yt, gen = torch_input(torch, "cnn", x), torch.from_numpy(y), torch.Generator().manual_seed(0)
        torch_train(torch, model, opt, xt[:128], yt[:128], 128, gen)
        t = time.perf_counter()
        torch_train(torch, model, opt, xt, yt, 128, gen)
    print(n / (time.perf_counter() - t))


def busy_core(n_batches):
    """``{lib: (quiet, busy)}`` CNN training samples/s with default threads, alone and beside a busy loop
    on one core (each in a fresh process, the way a user starts one)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}

    def measure(lib):
        out = subprocess.run([sys.executable, __file__, "--busy-child", lib, str(n_batches)],
                             capture_output=True, text=True, check=True, env=env)
        return float(out.stdout.strip().splitlines()[-1])

    found = {lib: [measure(lib)] for lib in ("neuro", "torch")}
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        for lib in found:
            found[lib].append(measure(lib))
    finally:
        spinner.kill()
        spinner.wait()
    return found


# -- report ---------------------------------------------------------------------------------------
def machine():
    import threadpoolctl
    import torch

    blas = []
    for p in threadpoolctl.threadpool_info():
        if p["user_api"] == "blas":
            arch = f", {p['architecture']} kernels" if p.get("architecture") else ""
            blas.append(f"{p['internal_api']} {p.get('version')}{arch}")
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import neuro

    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, NumPy {np.__version__} "
            f"({', '.join(sorted(set(blas)))}), torch {torch.__version__}; neuro's kernels: "
            f"{neuro.backend.get_kernels()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer batches and repeats; no accuracy run")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--only", choices=["mlp", "cnn", "resnet", "lstm", "gru", "data"], nargs="+",
                    default=["mlp", "cnn", "resnet", "lstm", "gru", "data"])
    ap.add_argument("--no-write", action="store_true", help="print the table but leave results.md alone")
    ap.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--compile-child", help=argparse.SUPPRESS)
    ap.add_argument("--train-child", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--hide-scipy", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--busy-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        lib, kind, threads, nb = args.memory_child
        memory_child(lib, kind, int(threads), int(nb))
        return
    if args.train_child:
        func, kind, threads, nb, reps, lib = args.train_child
        train_child(func, kind, int(threads), int(nb), int(reps), lib)
        return
    if args.compile_child:
        compile_child(args.compile_child, args.hide_scipy)
        return
    if args.busy_child:
        busy_child(args.busy_child[0], int(args.busy_child[1]))
        return

    x, y, xv, yv, source = load_data()
    repeats = 2 if args.quick else 3
    rounds = 1 if args.quick else 2  # alternating processes per library (see apart)
    batches = {"mlp": 30 if args.quick else 80, "cnn": 6 if args.quick else 20,
               "resnet": 3 if args.quick else 8, "lstm": 8 if args.quick else 30,
               "gru": 2 if args.quick else 6}
    rows = []
    raw = {}

    def row(name, n_val, t_val, unit, better, fmt="{:.0f}"):
        ratio = n_val / t_val if better == "higher" else t_val / n_val
        rows.append((name, fmt.format(n_val), fmt.format(t_val), unit, f"{ratio:.2f}"))
        raw[name] = {"neuro": n_val, "torch": t_val, "ratio": ratio}
        print(f"{name:<42} neuro {fmt.format(n_val):>10}  torch {fmt.format(t_val):>10}  {unit:<10} "
              f"x{ratio:.2f}", flush=True)

    data_rows = []
    for kind in args.only:
        if kind == "data":
            found, nbytes, raw_bytes = data_sets(x, y, max(args.threads), batches["cnn"], repeats)
            for name, sd, sa in found:
                data_rows.append((name, f"{sd:.0f}", f"{sa:.0f}", "samples/s", f"{sd / sa:.2f}"))
                raw[name] = {"data set": sd, "arrays": sa, "ratio": sd / sa}
                print(f"{name:<52} data set {sd:>8.0f}  arrays {sa:>8.0f}  x{sd / sa:.2f}", flush=True)
            data_rows.append(("in-memory image data set size / (N·H·W·C bytes)", f"{nbytes:,}",
                              f"{raw_bytes:,}", "bytes", f"{nbytes / raw_bytes:.2f}"))
            raw["image data set bytes"] = {"data set": nbytes, "N*H*W*C": raw_bytes}
            continue
        if kind in ("lstm", "gru"):
            for th in args.threads:
                sn, st, pn, pt = apart("sequence_throughput", kind, th, batches[kind], repeats, rounds)
                name = "LSTM(128) seq-MNIST" if kind == "lstm" else "GRU(256) char model"
                row(f"{name} training, {th} thr", sn, st, "samples/s", "higher")
                if pn is not None:
                    row(f"{name} predict batch 1,024, {th} thr", pn, pt, "samples/s", "higher")
            print("(LSTM(128) over 28 rows of 28 pixels, Adam, batch 64)" if kind == "lstm" else
                  "(Embedding(100, 64) → GRU(256) → Dense(100) per step, 100 steps, Adam, batch 32)")
            continue
        label = {"mlp": "MLP 784-500-300-10, Adadelta, batch 100", "cnn": "CNN (reference), Adam, batch 128",
                 "resnet": "ResNet: 3 identity blocks on 32×32×16 (BatchNorm, graph model), Adam, "
                           "batch 128"}[kind]
        for th in args.threads:
            # the MLP's epoch is short, so it can afford more repetitions against machine noise
            sn, st = apart("throughput", kind, th, batches[kind], repeats + 2 * (kind == "mlp"), rounds)
            row(f"{kind.upper()} training, {th} thread{'s' * (th > 1)}", sn, st, "samples/s", "higher")
        if kind == "resnet":
            print(f"({label})")
            continue
        for th in args.threads:
            sn, st, bn, bt = apart("predict_speed", kind, th, 0, repeats, rounds)
            row(f"{kind.upper()} predict 1 sample, {th} thr", 1e6 / sn, 1e6 / st, "µs", "lower")
            row(f"{kind.upper()} predict batch 1,024, {th} thr", bn, bt, "samples/s", "higher")
        mn = peak_memory("neuro", kind, 2, batches[kind])
        mt = peak_memory("torch", kind, 2, batches[kind])
        row(f"{kind.upper()} peak training memory (RSS)", mn, mt, "MiB", "lower")
        if not args.quick:
            epochs = 5 if kind == "mlp" else 2
            an, at = accuracy(kind, x, y, xv, yv, epochs, max(args.threads))
            row(f"{kind.upper()} held-out accuracy, {epochs} epochs", 100 * an, 100 * at, "%", "higher",
                fmt="{:.2f}")
        print(f"({label})")
    if "cnn" in args.only:
        busy = busy_core(batches["cnn"])
        (nq, nb), (tq, tb) = busy["neuro"], busy["torch"]
        row("CNN training, busy loop on one core, default threads", nb, tb, "samples/s", "higher")
        row("CNN training: busy / quiet (the share kept)", 100 * nb / nq, 100 * tb / tq, "%", "higher",
            fmt="{:.0f}")
    tn, tt = import_time("neuro"), import_time("torch")
    row("import time", tn * 1e3, tt * 1e3, "ms", "lower")
    cost = compile_cost()
    if cost is not None:
        cold, warm, bare = cost
        print(f"compiled kernels, first step of the reference MLP and CNN: {cold:.2f} s with an empty cache, "
              f"{warm:.2f} s from the cache" + ("" if bare is None else f" ({bare:.2f} s without SciPy)"),
              flush=True)
        raw["compile seconds"] = {"cold": cold, "warm": warm, "warm without SciPy": bare}
    sizes = package_mib("numba", "llvmlite"), package_mib("torch")
    raw["install MiB"] = {"fast extra (numba + llvmlite)": sizes[0], "torch": sizes[1]}

    date = datetime.date.today().isoformat()
    header = (f"Measured {date} on {machine()}. Data: {source}. Ratio = neuro's advantage "
              "(> 1 means neuro is better: faster, leaner or more accurate).")
    if cost is not None:
        header += (f" Compiled kernels: {cost[0]:.2f} s of compiling in the first step with an empty numba "
                   f"cache, {cost[1]:.2f} s with a warm one"
                   + ("" if cost[2] is None else f" ({cost[2]:.2f} s where SciPy is not installed)")
                   + f"; the fast extra installs {sizes[0]:.0f} MiB "
                   f"(numba and llvmlite; torch: {sizes[1]:.0f} MiB).")
    table = ["| measurement | neuro | PyTorch | unit | ratio |", "| --- | ---: | ---: | --- | ---: |"]
    table += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    text = header + "\n\n" + "\n".join(table) + "\n"
    if data_rows:
        text += (
            "\nData sets (neuro against neuro: the same images given as arrays; ratio = data set / arrays):"
            "\n\n| measurement | data set | arrays | unit | ratio |\n| --- | ---: | ---: | --- | ---: |\n"
        )
        text += "\n".join(f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in data_rows) + "\n"
    print("\n" + text)
    if not args.no_write:
        RESULTS.write_text(text)
        (RESULTS.parent / "results.json").write_text(json.dumps({"date": date, "results": raw}, indent=1))
        readme = ROOT / "README.md"
        s = readme.read_text()
        a, b = "<!-- BENCHMARK TABLE -->", "<!-- END BENCHMARK TABLE -->"
        if a in s and b in s:
            s = s[: s.index(a) + len(a)] + "\n" + text + s[s.index(b):]
            readme.write_text(s)


if __name__ == "__main__":
    main()
