"""Data-parallel training over MPI (neuro.distributed): equivalence with one process, identical ranks, exact
reduced metrics, one checkpoint writer, agreed stopping, and failures that end every rank without a hang.

The MPI runs are subprocesses, ``mpiexec -n P python tests/distributed/scenarios.py GROUP OUTDIR``, each
under a timeout; they are skipped (with the reason) only when mpi4py or mpiexec is missing
(``pip install 'neuro[mpi]'`` brings both). The reference is the same script run as one plain process,
which takes the documented P = 1 path of ``fit(distributed=True)``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from neuro import distributed

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "distributed" / "scenarios.py"
TIMEOUT = 120  # seconds per MPI run; a deadlock fails the test instead of hanging the suite


def _mpiexec() -> str | None:
    local = pathlib.Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
HAVE_MPI4PY = importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(
    not (HAVE_MPI4PY and MPIEXEC),
    reason="needs mpi4py and mpiexec: pip install 'neuro[mpi]' (mpi4py and the MPICH wheel)",
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for var in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        env.pop(var, None)  # a plain run must not believe it was launched by mpiexec
    return env


def run(
    group: str, out: pathlib.Path, ranks: int | None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess:
    """Run a scenario group on ``ranks`` MPI processes (``None``: one plain process, no launcher)."""
    cmd = [sys.executable, str(SCRIPT), group, str(out)]
    if ranks is not None:
        cmd = [MPIEXEC, "-n", str(ranks), *cmd]
    try:
        return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd)} did not finish within {timeout} s (a deadlock): {exc.stderr}")


def reports(out: pathlib.Path, ranks: int) -> list[dict[str, str]]:
    """Each rank's ``label: outcome`` lines of a report group."""
    seen = []
    for r in range(ranks):
        lines = (out / f"report_{r}.txt").read_text().splitlines()
        seen.append(dict(line.split(": ", 1) for line in lines))
    return seen


# -- without MPI -----------------------------------------------------------------------------------------------
def test_importing_neuro_does_not_import_mpi4py():
    code = "import sys, neuro, neuro.distributed; assert 'mpi4py' not in sys.modules, 'mpi4py imported'"
    subprocess.run([sys.executable, "-c", code], env=_env(), check=True, timeout=60)


def test_missing_mpi4py_names_the_extra(monkeypatch):
    import neuro

    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import fails as if not installed
    monkeypatch.setattr(distributed, "_comm", None)
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert (distributed.rank(), distributed.size(), distributed.is_main()) == (0, 1, True)
    net = neuro.Network((3,), "mse", "sgd", seed=0)
    net.add(neuro.Dense(1))
    with pytest.raises(ImportError, match=r"pip install 'neuro\[mpi\]'"):
        net.fit(np.zeros((4, 3)), np.zeros((4, 1)), verbose=0, distributed=True)
    assert net._dist is None and not net._fitting
    monkeypatch.setenv("PMI_SIZE", "4")  # launched on 4 ranks without mpi4py: not silently 4 copies
    with pytest.raises(ImportError, match="mpi4py"):
        distributed.size()


def test_options_are_checked():
    assert distributed.options(True) == distributed.Options()
    assert distributed.options({"sync_batchnorm": True}).sync_batchnorm
    with pytest.raises(TypeError, match="distributed must be"):
        distributed.options("yes")
    with pytest.raises(TypeError, match="sync_batchnorm"):
        distributed.Options(sync_batchnorm=1)
    with pytest.raises(ValueError, match="failure_timeout"):
        distributed.Options(failure_timeout=0)


# -- training on 1, 2 and 3 ranks ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The train group on one plain process (the reference), 2 ranks and 3 ranks (uneven, empty parts)."""
    out = tmp_path_factory.mktemp("dist_train")
    results = {}
    for ranks in (None, 2, 3):
        done = run("train", out, ranks)
        assert done.returncode == 0, done.stderr
        p = ranks or 1
        results[p] = json.loads((out / f"train_{p}.json").read_text())
    results["out"] = out
    return results


EQUIVALENT = {  # case: relative tolerance against one process with the same global batches
    "mlp64": 1e-10,
    "mlp32": 1e-5,
    "det64": 1e-10,
    "regression64": 1e-10,  # MSE, L2 regularizer, RMSprop
    "class_weight64": 1e-10,  # parts weighted by their loss normaliser, not their size
    "bn_sync64": 1e-10,
    "bn_sync32": 1e-5,
    "cnn_sync64": 1e-10,  # BatchNorm over (N, H, W) of a convolution, and as the first layer
    "cnn_sync32": 1e-5,
    "zero_weight_sync64": 1e-10,  # parts whose samples all weigh 0, coupled through the statistics
    "graph64": 1e-10,  # two inputs, a residual block, two outputs with loss weights (no BatchNorm)
    "graph_sync64": 1e-10,  # the same with synchronised BatchNorm inside the graph
    "noshuffle64": 1e-10,
    "split64": 1e-10,  # a data set split read one part per rank
    "early": 1e-10,
    "stop_epoch": 1e-10,
    "stop_batch": 1e-10,
    "stop_in_step": 1e-10,
}


def _relative(a: list[float], b: list[float]) -> float:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    return float(np.abs(a - b).max() / np.abs(b).max())


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("case", sorted(EQUIVALENT))
def test_same_weights_as_one_process(trained, case, ranks):
    assert _relative(trained[ranks][case]["weights"], trained[1][case]["weights"]) <= EQUIVALENT[case]


@needs_mpi
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_unshuffled_equals_a_plain_fit(trained, ranks):
    """P ranks without shuffling train as the non-distributed fit on the same batches."""
    r = trained[ranks]
    assert _relative(r["noshuffle64"]["weights"], r["plain_noshuffle64"]["weights"]) <= 1e-10


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_bitwise_identical_after_every_step(trained, ranks):
    for case, r in trained[ranks].items():
        if "identical_every_step" in r:  # local BatchNorm and an unseeded network included
            assert r["identical_every_step"], case
            assert r["steps"] > 0, case


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_reduced_metrics_are_exact(trained, ranks):
    for case in ("mlp64", "regression64"):
        r, ref = trained[ranks][case], trained[1][case]
        history = r["history"]
        # validation figures of the last epoch = a single-process evaluate with the final weights
        for name, value in r["evaluate"].items():
            if name == "loss":
                assert history["val_loss"][-1] == pytest.approx(value, rel=1e-12)
            else:
                assert history[f"val_{name}"][-1] == pytest.approx(value, rel=1e-12, abs=1e-15), name
        # training figures of every epoch = those of one process on the same global batches
        for name, values in history.items():
            assert values == pytest.approx(ref["history"][name], rel=1e-10), name
    counts = trained[ranks]["mlp64"]["history"]["accuracy"]
    assert counts == trained[1]["mlp64"]["history"]["accuracy"]  # counts: exactly equal


@needs_mpi
def test_deterministic_mode_and_allreduce_agree_for_two_ranks(trained):
    """For P = 2 the default Allreduce is order independent: it equals the rank-order sum bit for bit."""
    assert trained[2]["det64"]["weights"] == trained[2]["mlp64"]["weights"]


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_checkpoint_and_log_written_once_by_rank_0(trained, ranks):
    r = trained[ranks]["mlp64"]
    assert r["saves_per_rank"] == [2] + [0] * (ranks - 1)
    assert r["checkpoint_matches"]
    lines = (trained["out"] / f"log_{ranks}.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 and lines[0].startswith("epoch,loss,accuracy")


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_stopping_is_agreed(trained, ranks):
    r = trained[ranks]
    assert r["early"]["stopped_epoch"] == [2] * ranks and len(r["early"]["history"]["loss"]) == 3
    assert len(r["stop_epoch"]["history"]["loss"]) == 2  # the last rank alone stopped after epoch 1
    assert r["stop_batch"]["batches_per_rank"] == [3] * ranks  # the last rank alone stopped after batch 2
    assert r["stop_batch"]["steps"] == 3
    # no batch hook: a flag set at an epoch's start travels in the step's reduction; all stop after 1 batch
    assert r["stop_in_step"]["iterations"] == [11 + 1] * ranks
    assert len(r["stop_in_step"]["history"]["loss"]) == 2


# -- failures and disagreements -------------------------------------------------------------------------------
@needs_mpi
def test_a_failing_rank_stops_every_rank(tmp_path):
    done = run("fail_step", tmp_path, 3, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = reports(tmp_path, 3)
    for label, message in (
        ("layer", "RuntimeError: layer failed on purpose at step 3"),
        ("layer_syncbn", "RuntimeError: layer failed on purpose at step 3"),
        ("data", "OSError: disk read failed on purpose"),
    ):
        assert seen[1][label] == message
        for r in (0, 2):
            assert seen[r][label].startswith(f"DistributedError: rank 1: {message}"), seen[r][label]
    assert {s["guard"].split(":")[0] for s in seen} == {"FloatingPointError"}
    assert [s["after"] for s in seen] == ["OK"] * 3  # the ranks train together again afterwards


@needs_mpi
@pytest.mark.parametrize("group", ["fail_callback", "fail_before"])
def test_an_error_outside_a_step_aborts_every_rank(tmp_path, group):
    """A callback raising on one rank (fit's failure handshake), or an uncaught error on one rank before
    the ranks meet (the excepthook), ends the job with MPI_Abort instead of a hang."""
    start = time.monotonic()
    done = run(group, tmp_path, 2, timeout=60)
    assert done.returncode != 0
    assert time.monotonic() - start < 60
    assert "aborting every rank" in done.stderr
    assert ("callback failed on purpose" if group == "fail_callback" else "ValueError") in done.stderr
    assert "should not happen" not in done.stdout


@needs_mpi
def test_a_rank_that_never_enters_fit_is_named_instead_of_a_hang(tmp_path):
    start = time.monotonic()
    done = run("missing_rank", tmp_path, 2, timeout=60)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < 30
    seen = reports(tmp_path, 2)
    assert seen[0]["missing"].startswith("DistributedError: distributed fit: rank 1 did not enter fit within "
                                         "start_timeout=1 s"), seen[0]
    assert seen[1]["missing"].startswith("DistributedError: distributed fit: rank 0 did not enter fit"), seen[1]


def test_start_timeout_is_checked():
    with pytest.raises(ValueError, match=r"start_timeout must be a positive number of seconds, got -1"):
        distributed.Options(start_timeout=-1)


@needs_mpi
def test_disagreeing_ranks_are_reported_on_every_rank(tmp_path):
    done = run("mismatch", tmp_path, 2, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = reports(tmp_path, 2)
    for r in (0, 1):
        assert seen[r]["architecture"].startswith("ValueError: distributed fit: the ranks disagree")
        assert "rank 1's network [Dense(17,), Dense(3,)]" in seen[r]["architecture"]
        assert "rank 1 has training samples = 100, rank 0 has 101" in seen[r]["data"]
        assert "batch_size = 11" in seen[r]["batch_size"]
        assert seen[r]["agree"] == "OK"
    assert seen[0] == seen[1]


def test_a_masked_sequence_output_trains_distributed_in_one_process():
    """The metrics of a masked sequence output get the mask as weights; the distributed fit's shard metrics
    took no weights and raised TypeError, even in one process (the documented P = 1 path)."""
    import neuro

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 5, 3)).astype(np.float32)
    x[:4, 3:] = 0.0  # padding, masked
    inp = neuro.Input((5, 3))
    h = neuro.LSTM(4, return_sequences=True)(neuro.Masking(0.0)(inp))
    model = neuro.Model(inp, neuro.Dense(3, activation="softmax")(h), loss="crossentropy", optimizer="sgd",
                        seed=0)
    y = rng.integers(0, 3, (16, 5))
    plain = model.evaluate(x, y)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, distributed=True, shuffle=False)
    assert 0 <= history["accuracy"][0] <= 1 and plain["accuracy"] >= 0


@pytest.mark.parametrize(
    ("loss", "activation", "target"),
    [
        ("crossentropy", "softmax", "ids"),
        ("softmax_crossentropy", "linear", "ids"),
        ("mse", "linear", "values"),
        ("binary_crossentropy", "sigmoid", "binary"),
    ],
)
def test_a_sequence_output_trains_distributed_as_in_one_process(float64, loss, activation, target):
    """The normalisers of a sequence output count its positions (N·T), not its samples: the distributed step
    took them for sample counts and applied T times the gradient of the loss it reported."""
    import neuro

    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5, 3))
    y = {
        "ids": rng.integers(0, 4, (6, 5)),
        "values": rng.standard_normal((6, 5, 4)),
        "binary": rng.integers(0, 2, (6, 5, 4)).astype(np.float64),
    }[target]

    def run(distributed):
        inp = neuro.Input((5, 3))
        model = neuro.Model(inp, neuro.Dense(4, activation=activation)(inp), loss=loss,
                            optimizer=neuro.SGD(0.1), seed=0)
        history = model.fit(x, y, batch_size=6, epochs=2, shuffle=False, verbose=0, distributed=distributed)
        return history["loss"], model.get_weights()

    (loss_one, w_one), (loss_dist, w_dist) = run(False), run(True)
    np.testing.assert_allclose(loss_dist, loss_one, rtol=1e-13)
    for a, b in zip(w_dist, w_one, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
