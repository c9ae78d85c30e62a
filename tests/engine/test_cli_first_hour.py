"""What a new user types first: top-level --help / --version, a misspelt command, the window without a display,
and the train command's help, device list, settings order and terminal progress."""

from __future__ import annotations

import csv
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.cli import build_parser
from engine.limits import RANGES, range_text
from tests.conftest import make_blobs

ROOT = Path(__file__).resolve().parents[2]


def _main(*args, display: bool = False, timeout: int = 120):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT)
    if display:
        env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.run(
        [sys.executable, "main.py", *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _npz(tmp_path) -> Path:
    ds = make_blobs(n_train=300, n_test=60)
    p = tmp_path / "blobs.npz"
    np.savez(p, x=np.round(ds.x_train[:, 0] * 255).astype(np.uint8), y=ds.y_train)
    return p


# ------------------------------------------------------------------------------------------- main.py itself
@pytest.mark.slow  # starts the command in a subprocess
def test_top_level_help_prints_usage_without_opening_a_window():
    for flag in ("--help", "-h"):
        r = _main(flag)
        assert r.returncode == 0, r.stderr
        assert "main.py train" in r.stdout and "open the ELBO Studio window" in r.stdout
        assert r.stderr == ""


@pytest.mark.slow  # starts the command in a subprocess
def test_top_level_version_is_the_projects():
    r = _main("--version")
    want = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert r.returncode == 0 and r.stdout.strip() == f"ELBO Studio {want}", (r.stdout, r.stderr)


@pytest.mark.slow  # starts the command in a subprocess
def test_an_unknown_command_is_one_line_naming_the_commands():
    r = _main("trian")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "'trian'" in lines[0] and "train" in lines[0].replace("'trian'", ""), r.stderr
    assert r.stdout == ""


@pytest.mark.slow  # starts the command in a subprocess
def test_the_window_without_a_display_says_how_to_run_instead_of_aborting():
    r = _main()
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "main.py train" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and "Aborted" not in r.stderr


# ------------------------------------------------------------------------------------------- main.py train
def test_every_train_option_has_help_and_ranges_come_from_the_limits_table():
    p = build_parser()
    helps = {a.dest: a.help for a in p._actions}
    missing = [dest for dest, text in helps.items() if not text]
    assert not missing, f"options without help text: {missing}"
    for dest in ("epochs", "latent_dim", "hidden", "batch_size", "lr", "beta", "seed", "iwae_k"):
        assert range_text(dest) in helps[dest], (dest, helps[dest])


@pytest.mark.slow  # starts the command in a subprocess
def test_device_choices_name_no_gpu_that_is_not_there_and_a_missing_one_is_refused_in_one_line(tmp_path):
    text = build_parser().format_help()
    assert "cuda:0" not in text and "cuda:1" not in text and "cuda:N" in text
    import torch

    if torch.cuda.device_count() >= 8:
        return
    r = _main("train", "--data", _npz(tmp_path), "--device", "cuda:7", "--epochs", 1)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cuda" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # starts the command in a subprocess
def test_a_bad_setting_is_reported_before_the_data_is_read(tmp_path):
    missing = tmp_path / "not-there"
    for flag, value, named in (
        ("--lr", "1e9", "lr"),
        ("--latent-dim", "0", "latent_dim"),
        ("--batch-size", "999999", "batch_size"),
    ):
        r = _main("train", "--data", missing, flag, value)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith(f"error: invalid settings: {named} must lie in"), r.stderr
        hi = RANGES[named][2]
        assert f"{hi:,g}]" in r.stderr and "not-there" not in r.stderr  # refused before the path was looked at


def test_a_bad_flag_or_output_is_answered_before_torch_loads(tmp_path):
    """Refusals need no torch (1.3 s to import): the command answers them at once, in a fresh interpreter."""
    code = (
        "import sys, main\n"
        "a = main.main(['train', '--data', sys.argv[1], '--epochs', '0'])\n"
        "b = main.main(['train', '--data', sys.argv[1], '--checkpoint', sys.argv[1]])\n"
        "print(a, b, 'torch' in sys.modules)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "d.npz")], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.stdout.split() == ["2", "2", "False"], r.stdout + r.stderr
    bad_setting, bad_output = r.stderr.splitlines()
    assert bad_setting == "error: invalid settings: epochs must lie in [1, 100,000], got 0"
    assert bad_output.startswith("error: ") and "--checkpoint is the same file as --data" in bad_output


@pytest.mark.slow  # starts the command in a subprocess
def test_metrics_csv_counts_steps_from_one_and_the_finish_line_is_singular(tmp_path):
    data, met = _npz(tmp_path), tmp_path / "m.csv"
    r = _main(
        "train",
        "--data",
        data,
        "--epochs",
        1,
        "--batch-size",
        50,
        "--hidden",
        16,
        "--iwae-k",
        2,
        "--threads",
        1,
        "--metrics-csv",
        met,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(met.open()))
    assert [int(row["step"]) for row in rows] == list(range(1, 7))  # ⌈270/50⌉ = 6 steps, numbered 1..6
    assert rows[-1]["test_elbo"] and rows[-1]["epoch"] == "1" and not rows[-2]["test_elbo"]
    assert "done in" in r.stdout and "6 steps" in r.stdout


@pytest.mark.slow  # starts the command in a subprocess
def test_a_terminal_sees_a_progress_line_within_the_epoch(tmp_path):
    data = _npz(tmp_path)
    main_fd, sub_fd = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["--data", data, "--epochs", 1, "--batch-size", 10, "--hidden", 16, "--iwae-k", 2, "--threads", 1]
    proc = subprocess.Popen(
        [sys.executable, "main.py", "train", *map(str, args)], cwd=ROOT, env=env, stdout=sub_fd, stderr=sub_fd
    )
    os.close(sub_fd)
    out = b""
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=300)
    os.close(main_fd)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-2000:]
    assert re.search(r"\r  epoch 1 \[[#.]+\] \d+/27", text), text[-2000:]  # 270 examples / 10 per step


def test_the_readme_states_the_limits_table():
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| settings |"))
    names = {
        "latent_dim": "latent dim",
        "hidden": "hidden",
        "epochs": "epochs",
        "batch_size": "batch size",
        "lr": "learning rate",
        "beta": "β",
        "free_bits": "free bits",
        "seed": "seed",
        "iwae_k": "IWAE K",
        "iwae_examples": "IWAE examples",
        "eval_examples": "test examples",
    }
    for key, words in names.items():
        assert f"{words} {range_text(key)}" in row, (key, range_text(key))
    assert f"warm-up {range_text('warmup_epochs')} epochs" in row
    assert set(names) <= set(RANGES)
