"""benchmarks/gpu_check.py stays runnable: its layer and training comparisons pass on the strict stand-in
(the GPU run itself needs a machine with CuPy)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import numpy as np

from neuro import backend

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _module():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_layers_and_training_on_the_strict_device():
    gpu_check = _module()
    strict = backend.get_device("strict")
    rows = gpu_check.check_layers(strict, quick=True)
    assert len(rows) == 2 * len(gpu_check.LAYERS)
    assert all(ok for *_, ok in rows), [r for r in rows if not r[-1]]
    rng = np.random.default_rng(0)
    x = rng.random((256, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 256)
    training = gpu_check.compare_training(strict, "strict", x, y, quick=True)
    assert [r[0] for r in training] == ["CNN", "MLP"] and all(r[-1] for r in training)
