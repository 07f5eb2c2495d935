"""Kernel sets: choosing them (set_kernels, NEURO_KERNELS, auto), what happens without numba, a kernel that
cannot compile (an error naming it, never a silent fallback), a cache folder that cannot be written, the
device's repr and summary, and the optimizers' compiled rules bitwise equal to NumPy's over several steps."""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import pytest

import neuro
from neuro import backend
from neuro.optimizers import SGD, Adadelta, Adam, RMSprop


@pytest.fixture(autouse=True)
def _restore_kernels(monkeypatch):
    monkeypatch.setattr(backend, "_kernel_request", backend._kernel_request)
    monkeypatch.setattr(backend, "_kernels_on", None)
    yield
    backend._kernels_on = None


def test_bad_names_are_refused(monkeypatch):
    with pytest.raises(ValueError, match=r"kernels must be one of \['auto', 'numpy', 'numba'\], got 'turbo'"):
        backend.set_kernels("turbo")
    with pytest.raises(ValueError, match=r"kernels must be one of .*got 3"):
        backend.set_kernels(3)
    monkeypatch.setattr(backend, "_kernel_request", None)
    monkeypatch.setenv("NEURO_KERNELS", "fastest")
    with pytest.raises(ValueError, match=r"NEURO_KERNELS must be one of \['auto', 'numpy', 'numba'\], got 'fastest'"):
        backend.get_kernels()


def test_the_environment_variable_chooses(monkeypatch):
    monkeypatch.setattr(backend, "_kernel_request", None)
    monkeypatch.setenv("NEURO_KERNELS", "numpy")
    assert backend.get_kernels() == "numpy"
    assert not backend.compiled(np.zeros(3))


def _without_numba(monkeypatch):
    real = importlib.import_module

    def refuse(name, *args, **kwargs):
        if name == "numba":
            raise ModuleNotFoundError("No module named 'numba'", name="numba")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(backend.importlib, "import_module", refuse)
    monkeypatch.setattr(backend, "_numba", None)
    monkeypatch.setattr(backend, "_numba_broken", None)


def test_without_numba_auto_runs_numpy_and_numba_is_a_clear_error(monkeypatch):
    _without_numba(monkeypatch)
    backend.set_kernels("auto")
    assert backend.get_kernels() == "numpy"
    with pytest.raises(ImportError, match=r"kernels 'numba' need numba, which is not installed: pip install 'neuro\[fast\]'"):
        backend.set_kernels("numba")
    # a network still trains, with NumPy's kernels
    net = neuro.Network((3,), "mse", "adam", seed=0)
    net.add(neuro.Dense(2, "relu"))
    net.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)


@pytest.mark.parametrize("error", [OSError("libllvmlite.so: cannot open shared object file"),
                                   ModuleNotFoundError("No module named 'llvmlite'", name="llvmlite"),
                                   RuntimeError("numba needs NumPy < 2.5")])
def test_numba_installed_but_failing_to_import_is_named_never_silent(monkeypatch, error):
    """Only ImportError was caught: llvmlite's library failing to load (OSError) made fit, summary() and even
    str(net) raise a bare error; an ImportError inside numba said "not installed" and fell back silently."""
    real = importlib.import_module

    def broken(name, *args, **kwargs):
        if name == "numba":
            raise error
        return real(name, *args, **kwargs)

    monkeypatch.setattr(backend.importlib, "import_module", broken)
    monkeypatch.setattr(backend, "_numba", None)
    monkeypatch.setattr(backend, "_numba_broken", None)
    backend.set_kernels("auto")
    with pytest.warns(RuntimeWarning, match=rf"^numba is installed but failed to import \({type(error).__name__}: "
                                            r".*: neuro runs NumPy's kernels \(NEURO_KERNELS=numpy says so"):
        assert backend.get_kernels() == "numpy"
    net = neuro.Network((3,), "mse", "adam", seed=0)
    net.add(neuro.Dense(2, "relu"))
    assert "numpy (numpy kernels)" in str(net)
    net.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)  # warned once: no second warning is an error here
    with pytest.raises(ImportError, match=r"^kernels 'numba' need numba, and numba is installed but failed to "
                                          r"import .*NEURO_KERNELS=numpy runs NumPy's kernels$"):
        backend.set_kernels("numba")


def test_the_environment_variable_may_carry_spaces(monkeypatch):
    monkeypatch.setattr(backend, "_kernel_request", None)
    monkeypatch.setenv("NEURO_KERNELS", " numpy ")  # a Dockerfile's ENV line, Windows' set
    assert backend.get_kernels() == "numpy"


def test_printing_a_model_does_not_import_numba():
    """str(net) resolved "auto" by importing numba (0.3 s; and a broken numba made printing raise)."""
    import subprocess
    import sys

    code = "; ".join([
        "import sys, importlib.util, neuro",
        "net = neuro.Network((3,), 'mse', 'sgd')",
        "net.add(neuro.Dense(2))",
        "text = str(net) + net.summary(print_fn=None)",
        "want = 'numba' if importlib.util.find_spec('numba') else 'numpy'",
        "assert f'device numpy ({want} kernels)' in text, text",
        "print('numba' in sys.modules)",
    ])
    env = {k: v for k, v in __import__("os").environ.items() if k != "NEURO_KERNELS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "False"


@pytest.mark.parametrize("where", ["_load_index", "_open_for_write"])
def test_a_failing_disk_cache_warns_and_the_kernel_compiles_without_it(monkeypatch, where, tmp_path):
    """A truncated index file, another user's file or a full disk raised a bare EOFError, PermissionError or
    OSError from numba's cache at every start, naming no kernel."""
    pytest.importorskip("numba")
    from numba.core import caching

    error = EOFError("Ran out of input") if where == "_load_index" else OSError(28, "No space left on device")

    def fail(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(caching.IndexDataCacheFile, where, fail)  # reading the index, writing a file
    monkeypatch.setattr(backend, "_cache_failed_warned", False)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    source = tmp_path / "neuro_cache_probe.py"
    source.write_text("def triple(a):\n    for i in range(a.size):\n        a[i] *= 3.0\n")
    spec = importlib.util.spec_from_file_location("neuro_cache_probe", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    triple = backend.Kernel(module.triple)
    a = np.ones(3)
    with pytest.warns(RuntimeWarning, match=rf"^the disk cache of neuro's compiled kernel neuro_cache_probe.triple "
                                            rf"failed \({type(error).__name__}: .*be cached anew\.$"):
        triple(a)
    np.testing.assert_array_equal(a, [3.0, 3.0, 3.0])  # run once, after the cache failed
    triple(a)
    np.testing.assert_array_equal(a, [9.0, 9.0, 9.0])


def test_a_cache_folder_numba_could_not_use_is_named(monkeypatch, tmp_path):
    """numba puts the cache beside the package (or in the user's folder) when NUMBA_CACHE_DIR cannot be
    written: the user who chose it is told where it went."""
    numba = pytest.importorskip("numba")
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "chosen"))
    monkeypatch.setattr(backend, "_folder_warned", False)

    class Cache:
        _cache_path = str(tmp_path / "elsewhere" / "__pycache__")

    class Jit:
        _cache = Cache()

    with pytest.warns(RuntimeWarning, match=r"^NUMBA_CACHE_DIR='.*chosen' cannot be written: neuro's compiled "
                                            r"kernels are cached in '.*elsewhere/__pycache__'$"):
        backend._check_cache_folder(numba, Jit())
    Cache._cache_path = str(tmp_path / "chosen" / "sub")
    backend._folder_warned = False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend._check_cache_folder(numba, Jit())


def test_a_kernel_that_cannot_compile_names_itself():
    pytest.importorskip("numba")

    @backend.kernel
    def broken(a):
        return open(a)  # files: numba cannot compile it

    with pytest.raises(backend.KernelError, match=r"the compiled kernel .*broken failed to compile for arguments "
                                                  r"\(float64\[1d\]\).*set_kernels\('numpy'\)"):
        broken(np.zeros(2))


@pytest.mark.parametrize("chosen", [None, "/ro/cache"])
def test_no_writable_cache_folder_warns_and_compiles(monkeypatch, chosen):
    numba = pytest.importorskip("numba")
    if chosen is None:
        monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    else:
        monkeypatch.setenv("NUMBA_CACHE_DIR", chosen)
    real = numba.njit

    def njit(*args, cache=False, **kwargs):
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file '/ro/f.py'")
        return real(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit)
    monkeypatch.setattr(backend, "_cache_warned", False)

    @backend.kernel
    def double(a):
        for i in range(a.size):
            a[i] *= 2.0

    a = np.ones(3)
    where = "neither beside the package" if chosen is None else r"NUMBA_CACHE_DIR='/ro/cache' cannot be written"
    with pytest.warns(RuntimeWarning, match=rf"no writable cache folder \({where}.*Set NUMBA_CACHE_DIR"):
        double(a)
    np.testing.assert_array_equal(a, [2.0, 2.0, 2.0])


@pytest.mark.parametrize("hidden", [None, "scipy", "scipy.linalg", "scipy.linalg.cython_blas"])
def test_starting_numba_does_not_import_scipys_linear_algebra(hidden):
    # numba asks at start whether BLAS is there by importing all of scipy.linalg (0.1–0.2 s): neuro puts the
    # question off until the answer is read; the answer is numba's own (from a process without neuro)
    pytest.importorskip("numba")
    import subprocess
    import sys

    hide = f"import sys; sys.modules[{hidden!r}] = None; " if hidden else ""

    def run(code: str) -> str:
        out = subprocess.run([sys.executable, "-c", hide + code], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.split()[-1]

    alone = run("import numba.np.arraymath as am; print(bool(am._HAVE_BLAS))")
    code = "; ".join([
        "import sys, numpy as np, neuro",
        "neuro.backend.set_kernels('numba')",
        "import numba, numba.np.arraymath as am, numba.np.linalg as la",
        "assert sys.modules.get('scipy.linalg') is None, 'scipy.linalg imported'",
        "assert am.ensure_blas is la.ensure_blas, 'numba left patched'",
        "f = numba.njit(lambda a: np.correlate(a, a))",
        "r = f(np.arange(3.0))",
        "assert r.tolist() == [5.0], r",
        "print(bool(am._HAVE_BLAS))",
    ])
    assert run(code) == alone


def test_the_device_shows_its_kernel_set():
    backend.set_kernels("numpy")
    assert repr(backend.device("numpy")) == "Device('numpy', kernels='numpy')"
    assert repr(backend.device("strict")) == "Device('strict', kernels='numpy')"
    net = neuro.Network((3,), "mse", "sgd")
    net.add(neuro.Dense(2))
    assert "device numpy (numpy kernels)" in net.summary(print_fn=None)


def test_summary_names_the_kernel_set(capsys):
    pytest.importorskip("numba")
    backend.set_kernels("numba")
    net = neuro.Network((3,), "mse", "sgd")
    net.add(neuro.Dense(2))
    net.summary()
    assert "device numpy (numba kernels)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "make",
    [lambda: SGD(0.1), lambda: SGD(0.1, 0.9), lambda: SGD(0.1, 0.9, nesterov=True), lambda: Adam(1e-3),
     lambda: RMSprop(1e-3), lambda: Adadelta(1.0), lambda: Adadelta(0.5)],
    ids=["sgd", "momentum", "nesterov", "adam", "rmsprop", "adadelta", "adadelta_lr"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_optimizer_rules_are_bitwise_the_numpy_ones(make, dtype):
    pytest.importorskip("numba")
    found = {}
    for kernels in ("numpy", "numba"):
        backend.set_kernels(kernels)
        rng = np.random.default_rng(1)
        params = [np.random.default_rng(2).standard_normal(s).astype(dtype) for s in [(70, 50), (50,), (3,)]]
        opt = make()
        for _ in range(4):
            grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
            probe = opt.stage(params, grads)
            assert np.isfinite(probe) and opt.staged_finite()
            opt.commit(params)
        found[kernels] = [p.copy() for p in params] + [v.copy() for s in opt.slots for v in s.values()]
    for a, b in zip(found["numba"], found["numpy"], strict=True):
        np.testing.assert_array_equal(a, b)


OPTIMIZERS = [lambda: SGD(0.1), lambda: SGD(0.1, 0.9), lambda: SGD(0.1, 0.9, nesterov=True), lambda: Adam(1e-3),
              lambda: Adam(1e-3, weight_decay=0.01), lambda: RMSprop(1e-3), lambda: Adadelta(1.0)]
OPTIMIZER_IDS = ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adadelta"]


@pytest.mark.parametrize("make", OPTIMIZERS, ids=OPTIMIZER_IDS)
@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("threads", [1, 3])
def test_a_step_staged_in_place_commits_as_a_staged_one_and_discards_bitwise(make, kernels, threads):
    """The training step stages in place (compiled kernels: the parameters are written at once, their old
    values kept): committed it ends bitwise as a step staged apart, and discarded, bitwise as before."""
    if kernels == "numba":
        pytest.importorskip("numba")
    backend.set_kernels(kernels)
    before = backend.get_num_threads()
    backend.set_num_threads(threads)
    try:
        found = []
        for in_place in (False, True):
            rng = np.random.default_rng(1)
            # 300 000 weights: the stage runs in several parts, each recording what it wrote
            params = [np.random.default_rng(2).standard_normal(s).astype(np.float32) for s in [(600, 500), (3,)]]
            opt = make()
            for _ in range(3):
                grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
                old = [p.copy() for p in params]
                opt.stage(params, grads, in_place=in_place)
                written = not all(np.array_equal(p, o) for p, o in zip(params, old, strict=True))
                assert written == (in_place and kernels == "numba")
                opt.discard()
                for p, o in zip(params, old, strict=True):
                    assert p.tobytes() == o.tobytes()
                opt.discard()  # again: nothing changes
                assert all(p.tobytes() == o.tobytes() for p, o in zip(params, old, strict=True))
                opt.stage(params, grads, in_place=in_place)
                opt.commit(params)
                opt.commit(params)  # idempotent
            found.append([p.copy() for p in params] + [v.copy() for s in opt.slots for v in s.values()])
        for a, b in zip(*found, strict=True):
            assert a.tobytes() == b.tobytes()
    finally:
        backend.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [7, 5000])
def test_all_finite_is_exact_for_small_and_large_arrays(dtype, size):
    from neuro._validation import all_finite

    big = np.finfo(dtype).max
    x = np.ones(size, dtype)
    assert all_finite(x) and all_finite(x.reshape(-1, 1)[::2])
    x[size // 2] = big  # finite, but its square overflows the dot product of the quick check
    assert all_finite(x)
    for bad in (np.inf, -np.inf, np.nan):
        y = x.copy()
        y[-1] = bad
        assert not all_finite(y)
        assert not all_finite(y[::-1])  # not contiguous: the element-wise check


def test_predict_of_a_plain_numpy_batch_equals_the_checked_path():
    net = neuro.Network((4,), "softmax_crossentropy", "sgd", seed=0)
    net.add(neuro.Dense(3, "tanh"))
    net.add(neuro.Dense(2))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    plain = net.predict(x)  # float32, the model's shape: computed on x itself
    np.testing.assert_array_equal(plain, net.predict(x.astype(np.float64)))  # converted first
    np.testing.assert_array_equal(plain, net.predict(x.tolist()))
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match="x contains NaN or inf values"):
        net.predict(x)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4\), got \(5, 3\)"):
        net.predict(x[:, :3])


@pytest.mark.parametrize("shape", [(5, 3), (700, 16), (131072, 16), (1003, 64), (4099, 128), (300, 500), (0, 4)])
def test_column_sums_are_the_rows_sums(shape):
    from neuro.functional.linear import column_sums

    a = np.random.default_rng(0).standard_normal(shape)
    expected = a.sum(axis=0)
    got = column_sums(a)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)
    out = np.empty(shape[1])
    assert column_sums(a, out=out) is out
    np.testing.assert_array_equal(out, got)
    if shape[0] < 8 * (1024 // shape[1]) or shape[1] > 128:  # small or wide: exactly NumPy's sum
        np.testing.assert_array_equal(got, expected)
    strided = np.asfortranarray(a)  # not C-ordered: NumPy's sum
    np.testing.assert_array_equal(column_sums(strided), strided.sum(axis=0))


def test_a_parameter_given_twice_or_a_view_is_staged_apart():
    pytest.importorskip("numba")
    backend.set_kernels("numba")
    p = np.ones((300, 300), np.float32)
    opt = SGD(0.1)
    for params in ([p, p], [p, p[:10]]):  # twice; a view: writing one in place would change the other
        before = [a.copy() for a in params]
        opt.stage(params, [np.ones_like(a) for a in params], in_place=True)
        assert all(np.array_equal(a, b) for a, b in zip(params, before, strict=True))  # written apart
        opt.discard()
    opt.stage([p], [np.ones_like(p)])
    with pytest.raises(ValueError):  # the commit of a step staged apart checks the count
        opt.commit([p, p])


def _bidirectional_sharing_its_backward_layer():
    from neuro import LSTM, Bidirectional, Input, Model

    x = Input((4, 3))
    bwd = LSTM(2, go_backwards=True)
    joined = neuro.Concatenate()([Bidirectional(LSTM(2), backward_layer=bwd)(x), bwd(x)])
    return Model(x, neuro.Dense(1)(joined), loss="mse", optimizer="sgd", seed=0)


def test_a_model_whose_params_hold_an_array_twice_trains_as_with_numpys_kernels():
    pytest.importorskip("numba")
    xs, ys = [np.ones((5, 4, 3), np.float32)], [np.ones((5, 1), np.float32)]
    found = []
    for kernels in ("numba", "numpy"):
        backend.set_kernels(kernels)
        model = _bidirectional_sharing_its_backward_layer()
        assert len({id(a) for a in model.params}) < len(model.params)
        model.train_step(xs, ys)
        found.append(model.get_weights())
    for a, b in zip(*found, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_model_with_a_nested_model_stages_its_steps_apart(monkeypatch):
    pytest.importorskip("numba")
    from neuro import Input, Model
    from neuro.optimizers import Optimizer

    backend.set_kernels("numba")
    sub_in = Input((3,))
    sub = Model(sub_in, neuro.Dense(2)(sub_in))  # may predict on its own lock while the outer model trains
    outer_in = Input((3,))
    outer = Model(outer_in, neuro.Dense(1)(sub(outer_in)), loss="mse", optimizer="sgd", seed=0)
    plain = Model(outer_in, neuro.Dense(1)(outer_in), loss="mse", optimizer="sgd", seed=0)
    assert outer.graph.nests_models and not plain.graph.nests_models
    seen = []
    real = Optimizer._stage_compiled
    monkeypatch.setattr(Optimizer, "_stage_compiled", lambda self, *a: seen.append(a[-1]) or real(self, *a))
    for model in (outer, plain):
        model.train_step([np.ones((2, 3), np.float32)], [np.ones((2, 1), np.float32)])
    assert seen == [False, True]


def test_kernels_run_as_python_are_never_asked_to_write_in_place():
    pytest.importorskip("numba")
    import subprocess
    import sys

    code = "; ".join([
        "import numpy as np, neuro",
        "from neuro.optimizers import SGD",
        "neuro.backend.set_kernels('numba')",
        "p = np.ones((200, 200), np.float32)",
        "opt = SGD(0.1)",
        "opt.stage([p], [np.ones_like(p)], in_place=True)",
        "assert (p == 1).all(), 'written in place by Python code an interrupt could stop midway'",
        "opt.commit([p])",
        "assert (p == 0.9).all()",
    ])
    env = dict(__import__("os").environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]


def test_parallel_for_makes_no_more_parts_than_asked():
    before = backend.get_num_threads()
    backend.set_num_threads(4)
    try:
        parts = []
        backend.parallel_for(lambda a, b: parts.append((a, b)), 1000, 10**8, max_parts=2)
        assert len(parts) <= 2 and sum(b - a for a, b in parts) == 1000
    finally:
        backend.set_num_threads(before)


POOLS = {"2x2": ((2, 2), (2, 2), (0, 0, 0, 0)), "overlapping": ((3, 3), (1, 1), (0, 0, 0, 0)),
         "padded, not covering": ((3, 3), (3, 3), (1, 0, 0, 1)), "2x3": ((2, 3), (2, 3), (0, 0, 0, 0))}


@pytest.mark.parametrize("pool, stride, pads", POOLS.values(), ids=POOLS.keys())
@pytest.mark.parametrize("relu_input", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pooling_backward_sends_a_window_its_gradient_at_the_maximum_and_exactly_0_elsewhere(
    pool, stride, pads, relu_input, dtype
):
    """Also for gradients of ±inf, NaN and −0 (0 elsewhere, not g·0): both kernel sets bitwise alike, and a
    ReLU's windows whose maximum is not above 0 (relu_input) get g·0 at the maximum."""
    from neuro.functional import pooling

    rng = np.random.default_rng(10)
    x = (rng.integers(-2, 4, (3, 7, 8, 2)) + rng.random((3, 7, 8, 2))).astype(dtype)
    x[0, :4, :4] = -x[0, :4, :4] - 1  # windows whose maximum is below 0
    x[1, :3, :3] = 0.0  # and windows whose maximum is 0
    shape = pooling.max_pool2d(x, pool, stride, pads)[0].shape
    g = rng.choice(np.array([-2.0, -0.0, 1.0, np.inf, -np.inf, np.nan], dtype), size=shape)
    found = {}
    for kernels in ("numpy", "numba") if importlib.util.find_spec("numba") else ("numpy",):
        backend.set_kernels(kernels)
        _, ctx = pooling.max_pool2d(x, pool, stride, pads, training=True, relu_input=relu_input)
        with np.errstate(all="ignore"):
            dx = found[kernels] = pooling.max_pool2d_backward(g, ctx)
        offsets, p = ctx[0].astype(np.int64), pool[0] * pool[1]
        assert (offsets >= p).any() == relu_input
        expected, at_max = np.zeros(dx.shape, dtype), np.zeros(dx.shape, bool)
        with np.errstate(all="ignore"):
            for b, i, j, c in np.ndindex(*shape):
                k = offsets[b, i, j, c] % p
                r, q = i * stride[0] + k // pool[1] - pads[0], j * stride[1] + k % pool[1] - pads[2]
                expected[b, r, q, c] += g[b, i, j, c] * (0.0 if offsets[b, i, j, c] >= p else 1.0)
                at_max[b, r, q, c] = True
        np.testing.assert_array_equal(dx, expected)
        assert not np.signbit(dx[~at_max]).any() and not dx[~at_max].any()  # +0, never −0 or NaN
    if "numba" in found:  # bitwise, but for a NaN's sign and payload (a sum of two NaNs keeps either)
        a, b = (np.where(np.isnan(found[k]), np.nan, found[k]) for k in ("numba", "numpy"))
        assert a.tobytes() == b.tobytes()


def _first_nan_else_first_maximum(x, pool, stride, pads):
    """Max pooling by brute force: each window's first NaN, else its first largest element (−0 ties +0)."""
    (ph, pw), (sh, sw), (t, b, le, r) = pool, stride, pads
    xp_ = np.pad(x, ((0, 0), (t, b), (le, r), (0, 0)), constant_values=-np.inf)
    ho, wo = (xp_.shape[1] - ph) // sh + 1, (xp_.shape[2] - pw) // sw + 1
    y, offsets = np.empty((len(x), ho, wo, x.shape[3]), x.dtype), np.empty((len(x), ho, wo, x.shape[3]), int)
    for n, i, j, c in np.ndindex(*y.shape):
        window = xp_[n, i * sh : i * sh + ph, j * sw : j * sw + pw, c].reshape(-1)
        nans = np.flatnonzero(np.isnan(window))
        k = nans[0] if len(nans) else int(np.flatnonzero(window == window.max())[0])
        y[n, i, j, c], offsets[n, i, j, c] = window[k], k
    return y, offsets


POOLS_FORWARD = {**POOLS, "16x16 (256 offsets)": ((16, 16), (16, 16), (0, 0, 0, 1)),
                 "1x1": ((1, 1), (2, 2), (0, 0, 0, 0))}


@pytest.mark.parametrize("pool, stride, pads", POOLS_FORWARD.values(), ids=POOLS_FORWARD.keys())
@pytest.mark.parametrize("where", ["numpy", "numba", "strict"])
def test_max_pooling_takes_a_windows_first_nan_else_its_first_maximum_bit_for_bit(pool, stride, pads, where):
    """NaN propagates (the window's first NaN is its maximum and offset), −0 and +0 tie (the first wins), and
    the output is the element at the recorded offset bit for bit, in training and inference, as PyTorch's NaN
    propagation and numpy.argmax's order."""
    from neuro.functional import pooling

    if where == "numba":
        pytest.importorskip("numba")
    backend.set_kernels("numba" if where == "numba" else "numpy")
    rng = np.random.default_rng(11)
    values = np.array([-np.inf, -1.0, -0.0, 0.0, 2.0, np.inf, np.nan], np.float32)
    x = rng.choice(values, size=(3, 17, 18, 2), p=[0.1, 0.2, 0.2, 0.2, 0.2, 0.05, 0.05])
    x[0] = np.where(np.isnan(x[0]), 0.0, x[0])  # a sample without NaN
    x[1, ..., 0] = -0.0  # ties of zeros only
    want, offsets = _first_nan_else_first_maximum(x, pool, stride, pads)
    device = backend.get_device("strict") if where == "strict" else None
    xd = backend.to_device(x, device) if device else x
    for relu in (False, True):
        y, ctx = pooling.max_pool2d(xd, pool, stride, pads, training=True, relu_input=relu)
        dead = relu & ~(want > 0)  # NaN is not above 0
        assert backend.to_numpy(y).tobytes() == want.tobytes()
        np.testing.assert_array_equal(backend.to_numpy(ctx[0]), offsets + pool[0] * pool[1] * dead)
    y, _ = pooling.max_pool2d(xd, pool, stride, pads)
    assert backend.to_numpy(y).tobytes() == want.tobytes()


def _both_kernel_sets(fn):
    """``fn()`` under NumPy's kernels and under the compiled ones (when numba is there), NaNs made one."""
    sets = ("numpy", "numba") if importlib.util.find_spec("numba") else ("numpy",)
    found = []
    for kernels in sets:
        backend.set_kernels(kernels)
        with np.errstate(all="ignore"):
            out = fn()
        found.append([np.where(np.isnan(a), np.nan, a) if np.asarray(a).dtype.kind == "f" else a for a in out])
    return found


def test_mixed_float_types_and_scalars_give_the_same_bits_with_either_kernel_set():
    """The kernels follow NumPy's order for one float type; mixed types (NumPy rounds to the narrower one
    between operations) and 0-d arrays take NumPy's path, so both kernel sets agree."""
    activation = importlib.import_module("neuro.functional.activation")
    dropout = importlib.import_module("neuro.functional.dropout")
    g32, y64 = np.array([0.3, -2.0, 1e-8], np.float32), np.array([1e-8, 0.5, -0.999], np.float64)

    def cases():
        return [
            activation.tanh_backward(g32, y64), activation.sigmoid_backward(y64, g32),
            dropout.dropout(np.array([1.0, -3.0]), 0.3, np.array([0.9, 0.1], np.float32))[0],
            activation.tanh_backward(np.array(2.0), np.array(0.5)),
            dropout.dropout(np.array(2.0), 0.3, np.array(0.5))[0],
        ]

    found = _both_kernel_sets(cases)
    for a, b in zip(*found, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    assert found[0][3].shape == () and found[0][4] == np.float64(2.0 / 0.7)


@pytest.mark.parametrize("make", OPTIMIZERS, ids=OPTIMIZER_IDS)
def test_an_optimizer_with_float64_gradients_of_float32_weights_updates_alike_with_either_kernel_set(make):
    def step():
        params = [np.array([1.0, -2.0, 1e-30], np.float32)]
        opt = make()
        probe = opt.stage(params, [np.array([0.1, 1e-9, -3.0], np.float64)])
        opt.commit(params)
        return [params[0], *opt.slots[0].values(), np.asarray(probe)]

    found = _both_kernel_sets(step)
    for a, b in zip(*found, strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert found[0][-1].dtype == np.float32  # the probe, in the parameters' type


@pytest.mark.parametrize("make, slot", [(lambda: Adadelta(), "v"), (lambda: Adadelta(), "u"),
                                        (lambda: Adam(1e-3), "v"), (lambda: RMSprop(1e-3), "v")])
def test_a_negative_infinite_state_is_not_finite_with_either_kernel_set(make, slot):
    """State is refused by the guard whatever its sign: −inf in a slot that should never be negative (set
    with ``set_state``, which takes any values) makes the step non-finite under both kernel sets."""

    def step():
        p = np.array([1.0, 2.0], np.float32)
        opt = make()
        slots = {k: np.zeros(2, np.float32) for k in opt.slot_names()}
        slots[slot][0] = -np.inf
        opt.set_state({"iterations": 0, "slots": [slots]}, [p])
        opt.stage([p], [np.array([0.5, 0.5], np.float32)])
        return [np.array([opt.staged_finite()])]

    assert [f[0][0] for f in _both_kernel_sets(step)] == [False] * (2 if importlib.util.find_spec("numba") else 1)
