"""Shared fixtures: float64 for exact comparisons, and optional oracles that skip cleanly when missing."""

from __future__ import annotations

import pathlib

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
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch
