"""The `train` command never writes over its inputs, prints every name it was given the same quoted way, says when
the model will be discarded or nothing is left to train, and ends a Ctrl+C during start-up with one line. Each
case runs the real command in a subprocess."""

import os
import signal
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from engine.checkpoint import MAX_COUNT, load_checkpoint, write_checkpoint
from engine.data import load_dataset
from tests.engine.test_cli import ROOT, _npz, train_here

QUICK = ("--epochs", 1, "--batch-size", 50, "--hidden", 16, "--iwae-k", 2)


def _one_error(r, *needles):
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert "data:" not in r.stdout  # refused before the dataset was read


# ------------------------------------------------------------------------------------------ 0: discarded models
def test_without_checkpoint_the_command_says_the_model_is_discarded(tmp_path):
    r = train_here("--data", _npz(tmp_path), *QUICK)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "note: no --checkpoint given: the trained model is discarded when the run ends"
    r = train_here("--data", _npz(tmp_path), *QUICK, "--checkpoint", tmp_path / "a.ckpt")
    assert r.returncode == 0 and "discarded" not in r.stdout
    h = train_here("--help")
    assert "without it the trained model is discarded" in " ".join(h.stdout.split())


# ------------------------------------------------------------------------------------------ 1: inputs are kept
def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path):
    data = _npz(tmp_path)
    before = data.read_bytes()
    _one_error(train_here("--data", data, *QUICK, "--checkpoint", data), "--checkpoint is the same file as --data")
    spelled = tmp_path / "sub" / ".." / data.name  # another spelling of the same file
    (tmp_path / "sub").mkdir()
    _one_error(train_here("--data", data, *QUICK, "--metrics-csv", spelled), "--metrics-csv is the same file as --data")
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    _one_error(train_here("--data", data, *QUICK, "--metrics-csv", link), "--metrics-csv is the same file as --data")
    assert data.read_bytes() == before and link.is_symlink()


def test_metrics_over_the_resumed_checkpoint_is_refused_even_through_a_hard_link(tmp_path):
    data = _npz(tmp_path)
    ck = tmp_path / "run.ckpt"
    assert train_here("--data", data, *QUICK, "--checkpoint", ck).returncode == 0
    hard = tmp_path / "same-inode.csv"
    os.link(ck, hard)
    before = ck.read_bytes()
    r = train_here("--data", data, *QUICK[2:], "--epochs", 2, "--resume", ck, "--metrics-csv", hard)
    _one_error(r, "same-inode.csv': --metrics-csv is the same file as --resume", "overwrite an input")
    assert ck.read_bytes() == before
    # the checkpoint written back over the one it resumes is allowed: atomic, and the input was read whole first
    r = train_here("--data", data, *QUICK[2:], "--epochs", 2, "--resume", ck, "--checkpoint", ck)
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(ck).step == 12


def test_an_output_replacing_a_file_of_the_data_folder_is_refused(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.full((8, 8), i * 40, np.uint8)).save(folder / f"{i}.png")
    r = train_here("--data", folder, *QUICK, "--checkpoint", folder / "3.png")
    _one_error(r, "3.png': --checkpoint is a data file inside --data")
    assert Image.open(folder / "3.png").size == (8, 8)


def test_two_outputs_naming_one_file_through_a_symlinked_folder_are_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    r = train_here(
        "--data",
        _npz(tmp_path),
        *QUICK,
        "--checkpoint",
        tmp_path / "real" / "x",
        "--metrics-csv",
        tmp_path / "alias" / "x",
    )
    _one_error(r, "--metrics-csv is the same file as --checkpoint", "overwrite another output")
    assert not (tmp_path / "real" / "x").exists()


# ------------------------------------------------------------------------------------------ 2: names are quoted
def test_a_name_holding_a_newline_cannot_forge_a_line(tmp_path):
    out, met = tmp_path / "out" / "new\nerror: forged.ckpt", tmp_path / "m\nx.csv"
    r = train_here("--data", _npz(tmp_path), *QUICK, "--checkpoint", out, "--metrics-csv", met)
    assert r.returncode == 0, r.stderr
    lines = (r.stdout + r.stderr).splitlines()
    assert not any(line.startswith("error") for line in lines), lines
    assert f"checkpoint: {str(out)!r}" in lines
    assert any(line.startswith(f"metrics: {str(met)!r} (") for line in lines)
    assert load_checkpoint(out).step == 6


# ------------------------------------------------------------------------------------------ 3: long names
def test_a_300_character_output_name_is_one_line(tmp_path):
    long = tmp_path / ("c" * 300 + ".ckpt")
    for flag in ("--checkpoint", "--metrics-csv"):
        r = train_here("--data", _npz(tmp_path), *QUICK, flag, long)
        _one_error(r, f"{flag} cannot be written", "name of 305 bytes, more than the 255")


# ------------------------------------------------------------------------------------------ 6: Ctrl+C at start-up
@pytest.mark.slow  # a subprocess: the signal must arrive while torch is imported
def test_ctrl_c_while_torch_is_imported_is_one_line_and_130(tmp_path):
    """SIGINT arrives exactly when the first ``import torch`` starts (a hook sends it): no traceback."""
    code = (
        "import builtins, os, runpy, signal, sys\n"
        "real = builtins.__import__\n"
        "def hook(name, *a, **k):\n"
        "    if name == 'torch' and 'torch' not in sys.modules:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = hook\n"
        f"sys.argv = ['main.py', 'train', '--data', {str(_npz(tmp_path))!r}]\n"
        "runpy.run_path('main.py', run_name='__main__')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 128 + signal.SIGINT, r.stderr
    assert r.stderr.strip() == "interrupted" and "Traceback" not in r.stderr


# ------------------------------------------------------------------------------------------ 7: edges
def test_a_checkpoint_with_nothing_left_to_train_says_so(tmp_path):
    data = _npz(tmp_path)
    ck = tmp_path / "run.ckpt"
    assert train_here("--data", data, *QUICK, "--checkpoint", ck).returncode == 0
    _one_error(train_here("--data", data, *QUICK, "--resume", ck), "has done 1 epochs", "nothing is left to train")
    met = tmp_path / "m.csv"
    r = train_here("--data", data, *QUICK, "--resume", ck, "--metrics-csv", met)
    assert r.returncode == 0, r.stderr
    assert "nothing was left to train: the model stays at step 6" in r.stdout and "done in" not in r.stdout
    assert met.exists()
    at_bound = tmp_path / "bound.ckpt"
    write_checkpoint(at_bound, replace(load_checkpoint(ck), step=MAX_COUNT))
    r = train_here("--data", data, *QUICK[2:], "--epochs", 5, "--resume", at_bound)
    _one_error(r, "at step 1,000,000,000,000, the most a checkpoint may hold")


def test_a_symlink_loop_is_named_as_a_loop(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    r = train_here("--data", tmp_path / "a", *QUICK)
    assert r.returncode == 2 and r.stderr.strip() == "error: 'a': a symbolic link loop (the link leads back to itself)"


def test_non_regular_files_named_like_images_are_counted_as_skipped(tmp_path):
    for i in range(4):
        Image.fromarray(np.full((8, 8), i * 60, np.uint8)).save(tmp_path / f"{i}.png")
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    ds = load_dataset(tmp_path)
    assert len(ds.x_train) + len(ds.x_test) == 4
    assert ds.note.endswith("; 2 skipped (named like images but not regular files)"), ds.note
