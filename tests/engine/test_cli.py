"""The headless `train` command end to end on a tiny dataset file the test writes."""

import contextlib
import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.checkpoint import load_checkpoint
from main import main
from tests.conftest import make_blobs

ROOT = Path(__file__).resolve().parents[2]


def _train(*args, timeout=300):
    """``python main.py train ARGS`` in a new interpreter: for what only a process shows (start-up, signals,
    a terminal, the end-to-end run below)."""
    return subprocess.run(
        [sys.executable, "main.py", "train", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def train_here(*args) -> subprocess.CompletedProcess:
    """The same command through ``main.main`` in this process, its stdout and stderr captured: the exit status
    and every line it prints, without the 2-3 s a new interpreter spends loading torch. An exception escaping
    the command fails the test (where the subprocess would print a traceback)."""
    out, err, threads = io.StringIO(), io.StringIO(), torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(["train", *map(str, args)])
            except SystemExit as e:  # argparse: --help, or a flag it cannot parse
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        torch.set_num_threads(threads)  # the command chose this thread's count
    return subprocess.CompletedProcess(["main.py", "train", *map(str, args)], code, out.getvalue(), err.getvalue())


def _npz(tmp_path):
    ds = make_blobs(n_train=300, n_test=100)
    p = tmp_path / "blobs.npz"
    np.savez(
        p,
        x_train=(ds.x_train[:, 0] * 255).astype(np.uint8),
        y_train=ds.y_train,
        x_test=(ds.x_test[:, 0] * 255).astype(np.uint8),
        y_test=ds.y_test,
    )
    return p


@pytest.mark.slow
def test_cli_trains_writes_checkpoint_and_csv_then_resumes(tmp_path):
    data = _npz(tmp_path)
    ck, met = tmp_path / "run.ckpt", tmp_path / "m.csv"
    r = _train(
        "--data",
        data,
        "--epochs",
        2,
        "--batch-size",
        50,
        "--hidden",
        32,
        "--iwae-k",
        5,
        "--checkpoint",
        ck,
        "--metrics-csv",
        met,
    )
    assert r.returncode == 0, r.stderr
    epoch_lines = [line for line in r.stdout.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 2 and "test ELBO" in epoch_lines[0] and "IWAE K=5" in epoch_lines[0]
    rows = list(csv.DictReader(met.open()))
    assert len(rows) == 12 and rows[0]["step"] == "1"  # 2 epochs × ⌈300/50⌉ steps, counted from 1
    assert rows[5]["test_elbo"] and not rows[4]["test_elbo"]  # test metrics on the last step of each epoch
    c = load_checkpoint(ck)
    assert c.step == 12 and c.model_config.hidden == 32

    r2 = _train("--data", data, "--epochs", 3, "--batch-size", 50, "--iwae-k", 5, "--resume", ck, "--metrics-csv", met)
    assert r2.returncode == 0, r2.stderr
    assert "resuming at step 12" in r2.stdout
    assert len([line for line in r2.stdout.splitlines() if line.startswith("epoch")]) == 1
    assert len(list(csv.DictReader(met.open()))) == 18  # the curve continues from the checkpoint


def test_cli_bad_input_is_one_line_without_traceback(tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip")
    r = train_here("--data", bad, "--epochs", 1)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("error: ") and "broken.npz" in r.stderr and len(r.stderr.strip().splitlines()) == 1

    r = train_here("--data", tmp_path / "nope.idx3-ubyte", "--epochs", 1)
    assert r.returncode == 2 and "nope.idx3-ubyte" in r.stderr and "Traceback" not in r.stderr

    notckpt = tmp_path / "x.ckpt"
    notckpt.write_text("hello")
    r = train_here("--data", _npz(tmp_path), "--resume", notckpt)
    assert r.returncode == 2 and "x.ckpt" in r.stderr and "Traceback" not in r.stderr


def test_cli_loads_a_mixed_size_folder_at_a_chosen_resolution_with_a_progress_line(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(30):
        h, w = rng.integers(10, 30, 2)
        (tmp_path / "pics" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(tmp_path / "pics" / f"c{i % 2}" / f"{i}.png")
    r = train_here(
        "--data",
        tmp_path / "pics",
        "--resolution",
        16,
        "--color",
        "rgb",
        "--epochs",
        1,
        "--hidden",
        16,
        "--iwae-k",
        2,
        "--batch-size",
        10,
    )
    assert r.returncode == 0, r.stderr
    assert "30 images of" in r.stdout and "→ 16×16 RGB" in r.stdout and "3×16×16" in r.stdout
    assert "Decoding images: [" in r.stderr and "30/30" in r.stderr
    bad = train_here("--data", tmp_path / "pics", "--resolution", 2, "--epochs", 1)
    assert bad.returncode == 2 and bad.stderr.startswith("error: resolution must be between")
