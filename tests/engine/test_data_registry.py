"""load_dataset: picks the right loader from a folder's contents, a file's name or its magic bytes."""

from __future__ import annotations

import fnmatch
import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import engine.data as data
from engine.data import FILE_DIALOG_FILTER, DatasetError, load_dataset
from engine.data.registry import SUPPORTED_SUFFIXES, detect_format
from engine.data.dataset import as_float01
from tests.engine.test_data_idx import idx_bytes, make_set


def raises(path, *names: str, match: str) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    msg = str(info.value)
    assert match in msg and "\n" not in msg and all(n in msg for n in names), msg
    return msg


@pytest.fixture
def examples(tmp_path):
    """One small dataset per format; maps a label to (path, expected format, expected n_train + n_test)."""
    make_set(tmp_path / "idx", n_train=20, n_test=5)
    x = np.random.default_rng(0).integers(0, 256, (10, 4, 4), dtype=np.uint8)
    (tmp_path / "digits.bin").write_bytes(idx_bytes(x))  # IDX by magic, under any name
    (tmp_path / "digits.data").write_bytes(gzip.compress(idx_bytes(x)))  # gzipped IDX by magic
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=np.arange(10), x_test=x[:3], y_test=np.arange(3))
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "keras-no-suffix", x=x)  # np.savez adds .npz: rename to drop it
    (tmp_path / "keras-no-suffix.npz").rename(tmp_path / "archive")
    (tmp_path / "csv").mkdir()
    np.savetxt(tmp_path / "csv" / "mnist_train.csv", np.c_[np.arange(10), x.reshape(10, -1)], fmt="%d", delimiter=",")
    for i in range(6):
        (tmp_path / "imgs" / "a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i]).save(tmp_path / "imgs" / "a" / f"{i}.png")
    return {
        "idx folder": (tmp_path / "idx", "idx", 25),
        "idx file": (tmp_path / "idx" / "t10k-images-idx3-ubyte.gz", "idx", 25),
        "raw idx by magic": (tmp_path / "digits.bin", "idx", 10),
        "gz idx by magic": (tmp_path / "digits.data", "idx", 10),
        "npz": (tmp_path / "mnist.npz", "npz", 13),
        "npy": (tmp_path / "x.npy", "npz", 10),
        "npz by magic": (tmp_path / "archive", "npz", 10),
        "csv file": (tmp_path / "csv" / "mnist_train.csv", "csv", 10),
        "csv folder": (tmp_path / "csv", "csv", 10),
        "image folder": (tmp_path / "imgs", "images", 6),
    }


def test_every_format_is_detected_and_loaded(examples):
    for label, (path, fmt, n) in examples.items():
        assert detect_format(path) == fmt, label
        ds = load_dataset(str(path))
        assert len(ds.x_train) + len(ds.x_test) == n, label
        assert (
            ds.x_train.dtype == np.uint8 and 0 <= as_float01(ds.x_train).min() and as_float01(ds.x_train).max() <= 1
        ), label
        assert ds.source == str(path), label


def test_missing_path(tmp_path):
    raises(tmp_path / "nope.npz", "nope.npz", match="no such file or folder")


def test_empty_file_of_each_kind(tmp_path):
    for name in ("train-images-idx3-ubyte.gz", "a.npz", "a.csv", "a.dat"):
        (tmp_path / name).write_bytes(b"")
        raises(tmp_path / name, name, match="empty file")


def test_empty_folder(tmp_path):
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / ".DS_Store").write_bytes(b"x")  # hidden files do not count
    raises(tmp_path / "nothing", "nothing", match="empty folder")


def test_unknown_format(tmp_path):
    (tmp_path / "notes.dat").write_bytes(b"just some text, not a dataset\n")
    raises(tmp_path / "notes.dat", "notes.dat", match="unknown dataset format")
    (tmp_path / "blob.gz").write_bytes(gzip.compress(b"text inside gzip"))
    raises(tmp_path / "blob.gz", "blob.gz", match="unknown dataset format")
    (tmp_path / "PKnotes.txt").write_bytes(b"PK is how these notes start")
    raises(tmp_path / "PKnotes.txt", "PKnotes.txt", match="unknown dataset format")


def test_corrupt_gzip_of_unknown_name(tmp_path):
    (tmp_path / "blob").write_bytes(b"\x1f\x8b\x08\x00 not a deflate stream")
    raises(tmp_path / "blob", "blob", match="corrupt or truncated gzip data")


def test_single_image_file_asks_for_its_folder(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "one.png")
    raises(tmp_path / "one.png", "one.png", match="pick the folder")


def test_errors_from_loaders_pass_through_naming_the_file(tmp_path):
    make_set(tmp_path)
    blob = (tmp_path / "train-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(blob[:-30])
    raises(tmp_path, "train-images-idx3-ubyte.gz", match="gzip")


def test_file_dialog_filter_matches_every_supported_name():
    groups = FILE_DIALOG_FILTER.split(";;")
    assert groups[-1] == "All files (*)" and groups[0].startswith("Datasets (")
    patterns = groups[0][len("Datasets (") : -1].split()
    names = [
        "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte.gz", "train-images.idx3-ubyte", "mnist.npz", "x.npy",
        "train.csv", "mnist_test.csv.gz",
    ]  # fmt: skip
    for name in names:
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name
        assert name.endswith(SUPPORTED_SUFFIXES) or ".idx" in name, name
    assert not any(fnmatch.fnmatch("photo.png", p) for p in patterns)


@pytest.mark.slow
def test_public_api_and_no_qt():
    for name in ("Dataset", "DatasetError", "load_dataset", "default_dataset", "make_shapes", "FILE_DIALOG_FILTER"):
        assert hasattr(data, name), name
    qt = "{'PySide6', 'pyqtgraph', 'superqt', 'gui'}"
    code = f"import sys, engine.data; print(sorted(m for m in sys.modules if m.split('.')[0] in {qt}))"
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert run.stdout.strip() == "[]"
