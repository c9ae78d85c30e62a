"""Data-parallel training under torchrun, two CPU processes with gloo (engine/distributed.py)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.config import ModelConfig, TrainConfig
from engine.distributed import Distributed, DistributedError
from engine.trainer import Trainer
from tests.conftest import make_blobs

WORKER = Path(__file__).with_name("ddp_worker.py")
ROOT = Path(__file__).resolve().parents[2]
TRAIN_ARGS = ["--epochs", "2", "--batch-size", "64", "--hidden", "32", "--iwae-k", "2", "--seed", "5"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> str:
    d = make_blobs(n_train=1000, n_test=200, side=8)
    path = tmp_path_factory.mktemp("ddp") / "blobs.npz"
    to8 = lambda x: np.round(x[:, 0] * 255).astype(np.uint8)  # noqa: E731
    np.savez(path, x_train=to8(d.x_train), y_train=d.y_train, x_test=to8(d.x_test), y_test=d.y_test)
    return str(path)


def torchrun(*args, nproc=2, timeout=120) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(WORKER),
        *map(str, args),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def read_curve(path) -> np.ndarray:
    with open(path) as f:
        return np.array([float(r["train_elbo"]) for r in csv.DictReader(f)])


@pytest.mark.slow
def test_both_ranks_end_with_the_same_parameters(tmp_path, data_file):
    r = torchrun("params", tmp_path, data_file)
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = (torch.load(tmp_path / f"rank{r}.pt")["params"] for r in (0, 1))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    init = Trainer(
        make_blobs(n_train=10, n_test=10, side=8),
        ModelConfig(image_shape=(1, 8, 8), hidden=32),
        TrainConfig(epochs=1, seed=3),
    ).model.state_dict()
    assert any(not torch.equal(a[k], init[k]) for k in a)  # it trained


@pytest.mark.slow(seconds=16)
def test_two_processes_follow_one_with_the_same_global_batch_and_write_one_of_each(tmp_path, data_file):
    ddp_dir, one_dir = tmp_path / "ddp", tmp_path / "one"
    ddp_dir.mkdir()
    one_dir.mkdir()
    r = torchrun(
        "train",
        ddp_dir,
        "--data",
        data_file,
        *TRAIN_ARGS,
        "--checkpoint",
        ddp_dir / "run.pt",
        "--metrics-csv",
        ddp_dir / "run.csv",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("epoch   2/2") == 1  # only rank 0 prints
    assert "2 processes, global batch 64" in r.stdout
    assert sorted(p.name for p in ddp_dir.iterdir()) == ["run.csv", "run.pt"]
    s = subprocess.run(
        [
            sys.executable,
            "main.py",
            "train",
            "--data",
            data_file,
            *TRAIN_ARGS,
            "--checkpoint",
            one_dir / "run.pt",
            "--metrics-csv",
            one_dir / "run.csv",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert s.returncode == 0, s.stderr[-2000:]
    two, one = read_curve(ddp_dir / "run.csv"), read_curve(one_dir / "run.csv")
    assert len(two) == len(one) == 2 * 16
    np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-3)
    # the distributed checkpoint resumes in a single process (and holds the same model as the single run's)
    ck_two, ck_one = load_checkpoint(str(ddp_dir / "run.pt")), load_checkpoint(str(one_dir / "run.pt"))
    assert ck_two.step == ck_one.step == 32
    for k, v in ck_one.model_state.items():
        torch.testing.assert_close(ck_two.model_state[k], v, rtol=1e-3, atol=1e-4)
    resumed = subprocess.run(
        [
            sys.executable,
            "main.py",
            "train",
            "--data",
            data_file,
            *TRAIN_ARGS[2:],
            "--epochs",
            "3",
            "--resume",
            ddp_dir / "run.pt",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming at step 32" in resumed.stdout and "epoch   3/3" in resumed.stdout
    # and a single-process checkpoint resumes under torchrun
    again = torchrun(
        "train", one_dir, "--data", data_file, *TRAIN_ARGS[2:], "--epochs", "3", "--resume", one_dir / "run.pt"
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming at step 32" in again.stdout and "epoch   3/3" in again.stdout


@pytest.mark.slow
def test_a_stop_on_one_rank_stops_both_after_the_same_step(tmp_path, data_file):
    r = torchrun("stop", tmp_path, data_file, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert a["state"] == b["state"] == "stopped"
    # rank 1 sees step 32's metrics, asks; both stop at the next agreement, AGREE_EVERY steps on, of 128
    assert a["step"] == b["step"] == 64


@pytest.mark.slow
def test_a_rank_that_fails_ends_the_job_with_its_error(tmp_path, data_file):
    r = torchrun(
        "train",
        tmp_path,
        "--data",
        data_file,
        *TRAIN_ARGS,
        "--fail-rank",
        "1",
        "--checkpoint",
        tmp_path / "run.pt",
        timeout=90,
    )
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: rank 1: ") and "missing.npz" in errors[0]
    assert not (tmp_path / "run.pt").exists()


def test_environment_and_batch_parts():
    assert Distributed.from_environment({}) is None
    assert Distributed.from_environment({"WORLD_SIZE": "1", "RANK": "0"}) is None
    d = Distributed.from_environment({"WORLD_SIZE": "3", "RANK": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"})
    assert (d.rank, d.world, d.local_rank, d.local_world) == (2, 3, 0, 1)
    with pytest.raises(DistributedError, match="outside"):
        Distributed.from_environment({"WORLD_SIZE": "2", "RANK": "2"})
    with pytest.raises(DistributedError, match="not numeric"):
        Distributed.from_environment({"WORLD_SIZE": "two"})
    # the parts of a batch cover it exactly once, in order, sizes within one
    for n in (1, 5, 64, 65, 127):
        parts = [Distributed(r, 3, r).rows(n) for r in range(3)]
        covered = [i for p in parts for i in range(n)[p]]
        assert covered == list(range(n))
        sizes = [p.stop - p.start for p in parts]
        assert max(sizes) - min(sizes) <= 1
    with pytest.raises(DistributedError, match="at least 4"):
        Distributed(0, 4, 0).check_batch(2)
    assert Distributed(0, 2, 0, local_world=2).cpu_threads() >= 1
    with pytest.raises(DistributedError, match="local rank"):
        Distributed(1, 2, 1).device("cuda:0")
    with pytest.raises(DistributedError, match="MPS"):
        Distributed(1, 2, 1).device("mps")
    if not torch.cuda.is_available():
        assert Distributed(1, 2, 1).device("auto") == torch.device("cpu")
