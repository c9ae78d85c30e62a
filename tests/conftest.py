"""Shared fixtures: small synthetic datasets that the tests make themselves (nothing is downloaded)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from engine.data.dataset import Dataset

# Runs step eagerly unless a test asks for the compiled step (tests/engine/test_compiled.py): a background compile
# in every test's run would cost the suite minutes of C++ compiling.
os.environ.setdefault("ELBO_STUDIO_COMPILE", "off")


def pytest_collection_modifyitems(config, items) -> None:
    """The longest tests first (``slow(seconds=N)``: about N s on this 2-core machine), then the other slow ones,
    then the rest, each file's order kept: pytest-xdist hands each worker a contiguous share and idle workers steal
    from the others' tails, so a long test that starts last leaves the other cores idle while it ends the run
    alone; started first, the short ones fill in around it."""

    def expected_seconds(item) -> float:
        slow = item.get_closest_marker("slow")
        return 0.0 if slow is None else float(slow.kwargs.get("seconds", 1.0))

    items.sort(key=lambda item: -expected_seconds(item))


def _one_core_per_xdist_worker() -> None:
    """Under pytest-xdist, each worker runs on a core of its own with one OpenMP thread. Two workers whose torch
    each spread over every core spin at each other's barriers (engine/threads.py): the suite took about 1.5x as
    long. Subprocesses a test starts (the CLI, torchrun) inherit the worker's core."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    if workers < 2 or not name.startswith("gw") or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return
    os.sched_setaffinity(0, {cores[int(name[2:]) % len(cores)]})
    os.environ["OMP_NUM_THREADS"] = "1"


_one_core_per_xdist_worker()


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
