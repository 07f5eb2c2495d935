"""Shared fixtures: float64 for exact comparisons, the PyTorch oracle, and a check that nothing changed."""

from __future__ import annotations

import contextlib
import copy
import os
import pathlib

# scikit-learn's estimator checks include the array-API ones only when SciPy's array API is switched on,
# which must happen before SciPy is imported
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest

import neuro.backend as backend

MNIST_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture
def float64():
    """Run the test with neuro's dtype set to float64, restoring the previous dtype afterwards."""
    with backend.dtype_scope("float64"):
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def torch():
    """PyTorch on the CPU, the test oracle. Its absence fails the tests that need it: a comparison that
    silently skips would pass without comparing anything."""
    try:
        import torch
    except ImportError:
        pytest.fail(
            "PyTorch is the test oracle and is not installed: pip install '.[test]' (torch==2.13.0, CPU)",
            pytrace=False,
        )
    torch.set_num_threads(1)
    return torch


def _assert_same_state(before, after, path):
    """Deep equality of two snapshots of an object's attributes (arrays compared bit for bit)."""
    if before is after and not isinstance(before, (dict, list, np.ndarray)):
        return  # shared structure (graph nodes), which a deep copy does not copy
    if isinstance(before, np.ndarray):
        assert isinstance(after, np.ndarray), f"{path}: was an array, now {type(after).__name__}"
        assert before.dtype == after.dtype and before.shape == after.shape, f"{path}: dtype or shape changed"
        np.testing.assert_array_equal(after, before, err_msg=f"{path} changed")
    elif isinstance(before, dict):
        assert isinstance(after, dict) and set(before) == set(after), f"{path}: keys changed"
        for k in before:
            _assert_same_state(before[k], after[k], f"{path}[{k!r}]")
    elif isinstance(before, (list, tuple)):
        assert type(before) is type(after) and len(before) == len(after), f"{path}: changed"
        for i, (a, b) in enumerate(zip(before, after, strict=True)):
            _assert_same_state(a, b, f"{path}[{i}]")
    elif hasattr(before, "__dict__") and not isinstance(before, type):
        assert type(before) is type(after), f"{path}: type changed"
        _assert_same_state(vars(before), vars(after), path)
    else:
        assert before == after, f"{path}: {before!r} became {after!r}"


@pytest.fixture
def assert_unchanged():
    """``with assert_unchanged(obj): ...`` checks that the block leaves ``vars(obj)`` (deeply) as it was."""

    @contextlib.contextmanager
    def check(obj):
        before = copy.deepcopy(vars(obj))
        yield
        _assert_same_state(before, vars(obj), type(obj).__name__)

    return check


@pytest.fixture(params=["numpy", "numba"])
def kernel_set(request, monkeypatch):
    """Run the test on each kernel set (skipped without numba for "numba"); the choice is put back after
    it. The fixture's value is the set's name."""
    if request.param == "numba":
        pytest.importorskip("numba")
    monkeypatch.setattr(backend, "_kernel_request", backend._kernel_request)
    monkeypatch.setattr(backend, "_kernels_on", None)
    backend.set_kernels(request.param)
    return request.param
