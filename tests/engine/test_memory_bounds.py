"""Inputs are judged before their bytes are kept: a run from the file headers, an image folder from its picture
sizes (and its decoding threads bounded by them), a CSV parsed in blocks so memory follows the compact result."""

import struct
import tracemalloc

import numpy as np
import pytest
from PIL import Image

import engine.data.csv as csv_loader
import engine.data.images as images
import engine.memory
from engine.data import DatasetError, load_dataset, peek_dataset
from tests.engine.test_cli import _train

MB = 1 << 20


def _sparse_idx(path, n, side):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", n, side, side))
        f.truncate(16 + n * side * side)


@pytest.mark.slow  # the command in a subprocess
def test_a_run_too_large_for_memory_is_refused_from_the_headers(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte"
    _sparse_idx(p, 200, 1000)  # 200 MB the loader would accept; a run on 1000x1000 images cannot fit
    assert peek_dataset(p) == (200, (1, 1000, 1000)) and peek_dataset(p, 32, 3) == (200, (3, 32, 32))
    r = _train("--data", p, "--epochs", 1, "--device", "cpu")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "judged from the file's headers, before reading its images" in r.stderr
    assert "mostly the model (hidden 400, latent dim 2, images 1x1000x1000)" in r.stderr
    assert "data:" not in r.stdout and len(r.stderr.strip().splitlines()) == 1


def test_peek_reads_npz_headers_and_declines_what_it_cannot_tell(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x_train=np.zeros((30, 5, 6, 3), np.uint8), x_test=np.zeros((7, 5, 6, 3), np.uint8))
    assert peek_dataset(p) == (37, (3, 5, 6))
    (tmp_path / "d.csv").write_text("label,a\n1,2\n")
    assert peek_dataset(tmp_path / "d.csv") is None  # a CSV's row count is not in a header


def _pictures(folder, n, size):
    folder.mkdir()
    for i in range(n):
        Image.fromarray(np.full((size, size, 3), i * 30 % 256, np.uint8)).save(folder / f"{i}.png")


def test_a_picture_too_large_to_decode_is_refused_by_name_before_decoding(tmp_path, monkeypatch):
    _pictures(tmp_path / "pics", 3, 400)
    monkeypatch.setattr(engine.memory, "available_bytes", lambda: 2 * MB)  # a 1 MB budget: 400² × 8 B is 1.3 MB
    monkeypatch.setattr(images, "_decode", lambda *a: pytest.fail("decoded"))
    with pytest.raises(DatasetError) as e:
        load_dataset(tmp_path / "pics")
    assert (
        str(e.value)
        == "'pics/0.png': a 400x400 picture needs 1.3 MB to decode, more than the 1.0 MB cap (half the memory available)"
    )


def test_decoding_threads_follow_the_picture_sizes(tmp_path, monkeypatch):
    _pictures(tmp_path / "pics", 4, 300)
    seen = []
    real = images._parallel
    monkeypatch.setattr(images, "_parallel", lambda *a: seen.append(a[-1] if len(a) == 5 else None) or real(*a))
    monkeypatch.setattr(images, "_workers", lambda: 8)
    monkeypatch.setattr(engine.memory, "available_bytes", lambda: 16 * MB)  # 8 MB budget: a quarter holds 2.9
    ds = load_dataset(tmp_path / "pics")
    assert seen == [None, 2] and len(ds.x_train) + len(ds.x_test) == 4  # 300² × 8 B = 0.72 MB each


def test_a_folder_too_large_at_its_target_size_is_refused_before_decoding(tmp_path, monkeypatch):
    _pictures(tmp_path / "pics", 20, 40)
    monkeypatch.setattr(engine.memory, "available_bytes", lambda: 200_000)  # 100 kB: 20 × 3 × 40² × 3 B is 288 kB
    monkeypatch.setattr(images, "_decode", lambda *a: pytest.fail("decoded"))
    with pytest.raises(DatasetError, match="'pics': 20 images of 4,800 values need 288.0 kB in memory"):
        load_dataset(tmp_path / "pics")


def _csv(path, rows, values):
    lines = ["label," + ",".join(f"p{i}" for i in range(784))]
    lines += [f"{r % 10}," + ",".join(values(r)) for r in range(rows)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "values,stored",
    [
        (lambda r: [str((r + i) % 256) for i in range(784)], lambda r, i: (r + i) % 256),  # 0..255: /255
        (lambda r: [str((r + i) % 2) for i in range(784)], lambda r, i: 255 * ((r + i) % 2)),  # 0/1: intensities
    ],
)
def test_csv_blocks_give_the_same_pixels_as_one_parse(tmp_path, monkeypatch, values, stored):
    p = tmp_path / "mnist_train.csv"
    _csv(p, 90, values)
    whole = load_dataset(p)
    monkeypatch.setattr(csv_loader, "BLOCK_VALUES", 785 * 7)  # 7 rows a block: 13 blocks
    blocked = load_dataset(p)
    np.testing.assert_array_equal(whole.x_train, blocked.x_train)
    np.testing.assert_array_equal(whole.y_train, blocked.y_train)
    assert whole.x_train.dtype == np.uint8
    expect = np.array([[stored(r, i) for i in range(784)] for r in range(90)], np.uint8)
    got = np.concatenate([whole.x_train, whole.x_test]).reshape(90, 784)
    assert sorted(map(bytes, got)) == sorted(map(bytes, expect))  # every row, whichever split it went to


def test_a_large_integer_csv_peaks_near_its_uint8_size(tmp_path, monkeypatch):
    """Parsed in blocks kept as uint8: the traced peak stays near the 1-byte-a-pixel result, far below the float32
    copy of the whole table (4 bytes a pixel) that a single parse holds."""
    p = tmp_path / "big.csv"
    _csv(p, 3000, lambda r: [str((r * 7 + i) % 256) for i in range(784)])
    monkeypatch.setattr(csv_loader, "BLOCK_VALUES", 785 * 100)
    tracemalloc.start()
    try:
        ds = load_dataset(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    pixels = 3000 * 784
    assert ds.x_train.dtype == np.uint8 and len(ds.x_train) + len(ds.x_test) == 3000
    assert peak < 3.5 * pixels, f"{peak / pixels:.1f} bytes a pixel"
