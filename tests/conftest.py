"""Shared fixtures: small synthetic datasets that the tests make themselves (nothing is downloaded)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from engine.data.dataset import Dataset

# Runs step eagerly unless a test asks for the compiled step (tests/engine/test_compiled.py): a background compile
# in every test's run would cost the suite minutes of C++ compiling.
os.environ.setdefault("ELBO_STUDIO_COMPILE", "off")


def make_blobs(n_train=600, n_test=200, side=8, classes=3, seed=0) -> Dataset:
    """Binary-ish images of `classes` prototypes with pixel noise: easy structure a VAE learns in a few steps."""
    rng = np.random.default_rng(seed)
    protos = rng.random((classes, 1, side, side)) > 0.5

    def draw(n):
        y = rng.integers(0, classes, n)
        flip = rng.random((n, 1, side, side)) < 0.1
        x = np.logical_xor(protos[y], flip).astype(np.float32)
        return x, y.astype(np.int64)

    xtr, ytr = draw(n_train)
    xte, yte = draw(n_test)
    return Dataset("blobs", "test:blobs", xtr, xte, ytr, yte, tuple(f"class {i}" for i in range(classes)))


@pytest.fixture
def blobs() -> Dataset:
    return make_blobs()
