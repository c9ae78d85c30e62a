"""IDX loader: MNIST-layout sets found from any file or the folder, headers checked against real sizes."""

from __future__ import annotations

import gzip
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from engine.data import DatasetError
from engine.data.idx import FASHION_MNIST_CLASSES, load_idx
from engine.data.dataset import as_float01

FASHION = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file's bytes: magic (0, 0, dtype code, rank), big-endian dims, then the data."""
    return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray) -> Path:
    data = idx_bytes(arr.astype(np.uint8))
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def make_set(folder: Path, n_train=30, n_test=10, h=5, w=4, gz=True, labels=True, sep="-", prefix="", seed=0):
    """Write a small MNIST-layout set; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / f"{prefix}{split}-images{sep}idx3-ubyte{ext}", x)
        if labels:
            write_idx(folder / f"{prefix}{split}-labels{sep}idx1-ubyte{ext}", y)
        out[split] = (x, y)
    return out


def raises(path_or_callable, *names: str, match: str | None = None) -> str:
    """Call the loader, expect DatasetError; its one-line message must name every given file name."""
    call = path_or_callable if callable(path_or_callable) else (lambda: load_idx(path_or_callable))
    with pytest.raises(DatasetError) as info:
        call()
    msg = str(info.value)
    assert "\n" not in msg
    for n in names:
        assert n in msg, msg
    if match is not None:
        assert match in msg, msg
    return msg


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize(
    "pick",
    ["", "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "train-labels-idx1-ubyte"],
)
def test_pair_loads_from_the_folder_or_any_of_its_files(tmp_path, gz, pick):
    arrays = make_set(tmp_path / "digits", gz=gz)
    path = tmp_path / "digits" / (pick + (".gz" if gz and pick else ""))
    ds = load_idx(path)
    (xtr, ytr), (xte, yte) = arrays["train"], arrays["t10k"]
    assert ds.x_train.shape == (30, 1, 5, 4) and ds.x_test.shape == (10, 1, 5, 4)
    assert ds.x_train.dtype == np.uint8 and ds.x_train.flags.c_contiguous
    np.testing.assert_allclose(as_float01(ds.x_train)[:, 0], xtr / 255, rtol=1e-6)
    np.testing.assert_allclose(as_float01(ds.x_test)[:, 0], xte / 255, rtol=1e-6)
    assert ds.y_train.dtype == np.int64 and ds.y_train.tolist() == ytr.tolist() and ds.y_test.tolist() == yte.tolist()
    assert ds.name == "digits" and ds.source == str(path) and ds.class_names is None


def test_dot_naming_variant_and_emnist_prefix_transposed(tmp_path):
    arrays = make_set(tmp_path, sep=".", prefix="emnist-letters-", gz=False, h=3, w=6)
    ds = load_idx(tmp_path / "emnist-letters-train-images.idx3-ubyte")
    assert ds.name == "emnist-letters"
    assert ds.x_train.shape == (30, 1, 6, 3)  # EMNIST is stored transposed: loaded upright
    np.testing.assert_allclose(as_float01(ds.x_train)[:, 0], arrays["train"][0].transpose(0, 2, 1) / 255, rtol=1e-6)


def test_single_images_file_gets_a_deterministic_holdout(tmp_path):
    x = np.arange(50 * 4, dtype=np.uint8).reshape(50, 2, 2)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", x)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(50) % 7)
    a, b = load_idx(tmp_path), load_idx(tmp_path / "train-labels-idx1-ubyte.gz")
    assert (len(a.x_train), len(a.x_test)) == (45, 5)
    np.testing.assert_array_equal(as_float01(a.x_test), as_float01(b.x_test))
    rows = (
        np.concatenate([as_float01(a.x_train), as_float01(a.x_test)])[:, 0, 0, 0] * 255
    )  # first pixel = 4 * image index
    assert sorted(np.round(rows / 4).astype(int).tolist()) == list(range(50))
    idx = np.round(as_float01(a.x_train)[:, 0, 0, 0] * 255 / 4).astype(int)
    assert a.y_train.tolist() == (idx % 7).tolist()  # labels follow their images through the split


def test_labels_are_optional_and_dropped_unless_both_splits_have_them(tmp_path):
    make_set(tmp_path / "a", labels=False)
    assert load_idx(tmp_path / "a").y_train is None
    make_set(tmp_path / "b")
    (tmp_path / "b" / "t10k-labels-idx1-ubyte.gz").unlink()
    ds = load_idx(tmp_path / "b")
    assert ds.y_train is None and ds.y_test is None and len(ds.x_test) == 10


def test_unpacked_copy_wins_over_gz(tmp_path):
    make_set(tmp_path, gz=True, seed=1)
    raw = make_set(tmp_path, gz=False, seed=2)
    np.testing.assert_allclose(as_float01(load_idx(tmp_path).x_train)[:, 0], raw["train"][0] / 255, rtol=1e-6)


def test_fashion_named_folder_gets_class_names(tmp_path):
    make_set(tmp_path / "fashion-mnist")
    assert load_idx(tmp_path / "fashion-mnist").class_names == FASHION_MNIST_CLASSES


# ---- bad files: every one a one-line DatasetError naming the file ----


def test_empty_file(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"")
    raises(tmp_path / "train-images-idx3-ubyte", "train-images-idx3-ubyte", match="empty")


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data(tmp_path, gz):
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    data = idx_bytes(np.zeros((10, 28, 28), np.uint8))[:-100]
    (tmp_path / name).write_bytes(gzip.compress(data) if gz else data)
    msg = raises(tmp_path / name, name, match="truncated")
    assert "10 images of 28x28 (7840 bytes)" in msg and "7740" in msg


@pytest.mark.parametrize("gz", [False, True])
def test_trailing_garbage(tmp_path, gz):
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    data = idx_bytes(np.zeros((10, 4, 4), np.uint8)) + b"junk"
    (tmp_path / name).write_bytes(gzip.compress(data) if gz else data)
    raises(tmp_path / name, name, match="trailing data")


def test_cut_gzip_stream(tmp_path):
    blob = gzip.compress(idx_bytes(np.random.default_rng(0).integers(0, 256, (50, 8, 8), dtype=np.uint8)))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    raises(tmp_path / "train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", match="gzip")


def test_wrong_magic(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x12\x34\x08\x03" + bytes(100))
    raises(tmp_path / "train-images-idx3-ubyte", "train-images-idx3-ubyte", match="not an IDX file")


def test_unsupported_dtype_code(tmp_path):
    x = np.zeros((2, 3, 3), ">f4")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(x, code=0x0D))
    raises(tmp_path / "train-images-idx3-ubyte", "train-images-idx3-ubyte", match="float32")


def test_labels_header_in_an_images_file(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros(10, np.uint8))
    raises(tmp_path, "train-images-idx3-ubyte", match="0x00000803")


def test_label_count_mismatch_names_both_files(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((10, 4, 4), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    raises(tmp_path, "train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", match="9 labels for 10 images")


def test_test_split_of_another_image_size(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((10, 4, 4), np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10, 5, 5), np.uint8))
    raises(tmp_path, tmp_path.name, match="1x4x4 but test images are 1x5x5")


def test_labels_file_alone(tmp_path):
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(10, np.uint8))
    raises(tmp_path / "train-labels-idx1-ubyte", "train-labels-idx1-ubyte", match="no IDX images file")


def test_folder_with_two_datasets_asks_for_a_file(tmp_path):
    make_set(tmp_path, prefix="emnist-digits-")
    make_set(tmp_path, prefix="emnist-letters-")
    raises(tmp_path, tmp_path.name, match="several IDX datasets")
    assert load_idx(tmp_path / "emnist-digits-train-images-idx3-ubyte.gz").name == "emnist-digits"


@pytest.mark.parametrize("gz", [False, True])
def test_header_claiming_a_billion_images_fails_fast_without_allocating(tmp_path, gz):
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    data = bytes([0, 0, 8, 3]) + struct.pack(">3I", 10**9, 28, 28) + bytes(84)  # 100 bytes
    (tmp_path / name).write_bytes(gzip.compress(data) if gz else data)
    tracemalloc.start()
    try:
        msg = raises(tmp_path / name, name, match="truncated")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"peak {peak} bytes traced"  # the claim is 784 GB
    assert "1000000000 images of 28x28 (784000000000 bytes)" in msg
    assert ("cannot hold more than 35088" if gz else "holds 84") in msg


def test_real_fashion_mnist():
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{FASHION} is not installed (Debian package dataset-fashion-mnist)")
    ds = load_idx(FASHION, name="Fashion-MNIST")
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.image_shape == (1, 28, 28)
    assert 0.0 == as_float01(ds.x_train).min() and as_float01(ds.x_train).max() == 1.0
    assert ds.n_classes == 10 and ds.class_names == FASHION_MNIST_CLASSES
    assert np.bincount(ds.y_train).tolist() == [6000] * 10 and np.bincount(ds.y_test).tolist() == [1000] * 10
    assert 0.25 < as_float01(ds.x_train).mean() < 0.32  # Fashion-MNIST's mean pixel is 0.286


def test_the_picked_file_is_used_even_beside_an_unpacked_copy(tmp_path):
    make_set(tmp_path, gz=False)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    raises(tmp_path / "train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", match="gzip")
    assert len(load_idx(tmp_path).x_train) == 30  # the folder pick takes the unpacked copy
