"""The `train` command under signals, bad output paths, conflicting flags and out-of-range values: always one
line, never a traceback, and what was trained is saved when the user interrupts."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from engine.checkpoint import load_checkpoint
from tests.engine.test_cli import ROOT, _npz, _train, train_here


@pytest.mark.slow
@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_at_the_next_step_and_saves_checkpoint_and_metrics(tmp_path, sig, status):
    ck, met = tmp_path / "run.ckpt", tmp_path / "m.csv"
    p = subprocess.Popen(
        [
            sys.executable,
            "main.py",
            "train",
            "--data",
            str(_npz(tmp_path)),
            "--epochs",
            "10000",
            "--batch-size",
            "50",
            "--hidden",
            "32",
            "--iwae-k",
            "5",
            "--checkpoint",
            str(ck),
            "--metrics-csv",
            str(met),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        for line in p.stdout:  # wait until training really runs
            if line.startswith("epoch") or time.monotonic() > deadline:
                break
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == status, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert f"{signal.Signals(sig).name}: stopping at the next step" in err
    c = load_checkpoint(ck)
    rows = list(csv.DictReader(met.open()))
    assert c.step >= 6 and len(rows) == c.step  # the checkpoint and the curve agree on how far it got


def test_metrics_csv_naming_the_checkpoint_is_refused_before_training(tmp_path):
    ck = tmp_path / "same.ckpt"
    r = train_here(
        "--data", _npz(tmp_path), "--epochs", 1, "--checkpoint", ck, "--metrics-csv", tmp_path / "." / "same.ckpt"
    )
    assert r.returncode == 2 and "is the same file as --checkpoint" in r.stderr and not ck.exists()
    assert "data:" not in r.stdout  # refused before loading anything


def test_an_empty_checkpoint_name_is_refused(tmp_path):
    r = train_here("--data", _npz(tmp_path), "--epochs", 1, "--checkpoint", "")
    assert r.returncode == 2 and "--checkpoint was given an empty file name" in r.stderr


def test_an_unwritable_output_folder_is_refused_before_training(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    r = train_here("--data", _npz(tmp_path), "--epochs", 1, "--metrics-csv", blocker / "m.csv")
    assert r.returncode == 2 and "cannot write there" in r.stderr and "not-a-folder' is a file" in r.stderr
    assert "epoch" not in r.stdout
    r = train_here("--data", _npz(tmp_path), "--epochs", 1, "--checkpoint", tmp_path)
    assert r.returncode == 2 and "names a folder" in r.stderr


def test_resume_refuses_model_flags_that_contradict_the_checkpoint(tmp_path):
    data = _npz(tmp_path)
    ck = tmp_path / "run.ckpt"
    assert train_here("--data", data, "--epochs", 1, "--hidden", 32, "--iwae-k", 5, "--checkpoint", ck).returncode == 0
    r = train_here("--data", data, "--epochs", 2, "--resume", ck, "--latent-dim", 7, "--arch", "conv")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--latent-dim 7 and --arch conv conflict with the checkpoint's model" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = train_here("--data", data, "--epochs", 2, "--iwae-k", 5, "--resume", ck, "--hidden", 32)  # agrees: fine
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "flag,value,needle",
    [
        ("--hidden", "100000000", "hidden must lie in [8, 65,536]"),
        ("--latent-dim", "1000000000", "latent_dim must lie in [1, 1,024]"),
        ("--seed", "99999999999999999999", "seed must lie in [0, 2,147,483,647]"),
        ("--epochs", "0", "epochs must lie in"),
    ],
)
def test_out_of_range_settings_are_one_line(tmp_path, flag, value, needle):
    r = train_here("--data", _npz(tmp_path), flag, value)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_fifo_as_data_is_refused_at_once(tmp_path):
    fifo = tmp_path / "data.npz"
    os.mkfifo(fifo)
    r = _train("--data", fifo, "--epochs", 1, timeout=60)
    assert r.returncode == 2 and "named pipe" in r.stderr


def test_a_checkpoint_that_cannot_be_written_does_not_skip_the_metrics(tmp_path, blobs, monkeypatch):
    import argparse

    import torch

    from engine.cli import write_outputs
    from engine.config import ModelConfig, TrainConfig
    from engine.trainer import Trainer

    run = Trainer(
        blobs,
        ModelConfig(image_shape=blobs.image_shape, hidden=32),
        TrainConfig(epochs=1, batch_size=64, iwae_k=5, iwae_examples=50),
    )
    list(run.run())

    def disk_full(obj, f):
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:778] . unexpected pos 4224 vs 4112")

    monkeypatch.setattr(torch, "save", disk_full)
    args = argparse.Namespace(checkpoint=str(tmp_path / "run.ckpt"), metrics_csv=str(tmp_path / "m.csv"))
    errors = write_outputs(args, run)
    assert len(errors) == 1 and errors[0].startswith("could not write 'run.ckpt': ")
    assert "inline_container" not in errors[0]
    assert len(list(csv.DictReader(open(tmp_path / "m.csv")))) == run.step
    assert sorted(os.listdir(tmp_path)) == ["m.csv"]
