"""Hostile and unlucky data files: decompression bombs, endless lines, FIFOs and devices, sizes beyond memory,
common CSV variants and file names that try to forge a second line. Every refusal is one line naming the file,
and memory stays bounded (numpy's allocations are traced by tracemalloc)."""

import gzip
import io
import os
import struct
import threading
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import engine.memory
from engine.data import DatasetError, load_dataset


def _refused(path, *needles, peak_below=None):
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError) as e:
            load_dataset(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(e.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    if peak_below is not None:
        assert peak < peak_below, f"peak {peak / 2**20:.1f} MiB traced: {msg}"
    return msg


def _gzip_stream(path, head: bytes, zeros: int) -> None:
    """``head`` then ``zeros`` zero bytes, gzip-compressed without ever holding them in memory."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    with open(path, "wb") as f:
        f.write(comp.compress(head))
        for _ in range(zeros >> 20):
            f.write(comp.compress(block))
        f.write(comp.flush())


@pytest.fixture
def small_budget(monkeypatch):
    """Pretend only 64 MiB are available: the budget (half of it) is 32 MiB."""
    monkeypatch.setattr(engine.memory, "available_bytes", lambda: 64 << 20)


# --------------------------------------------------------------------------------------------------- bombs
@pytest.mark.slow
def test_gz_idx_expanding_far_beyond_its_header_stops_after_the_claim(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    _gzip_stream(p, bytes([0, 0, 8, 3]) + struct.pack(">3I", 10, 28, 28), 200 << 20)  # 200 MB of zeros
    assert p.stat().st_size < 1 << 20
    _refused(p, "'train-images-idx3-ubyte.gz'", "trailing data after the 7840 bytes", peak_below=20 << 20)


def test_gz_idx_whose_honest_claim_exceeds_the_memory_budget_is_refused_from_its_header(tmp_path, small_budget):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    _gzip_stream(p, bytes([0, 0, 8, 3]) + struct.pack(">3I", 100_000, 28, 28), 80 << 20)
    msg = _refused(p, "100,000 images of 784 values", "cap (half the memory available)", peak_below=4 << 20)
    assert "32.0 MB" in msg or "33.6 MB" in msg


def test_sparse_npy_claiming_more_than_the_budget_is_refused_before_reading(tmp_path, small_budget):
    p = tmp_path / "huge.npy"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (50_000, 64, 64)})
    with open(p, "wb") as f:
        f.write(header.getvalue())
        f.truncate(len(header.getvalue()) + 50_000 * 64 * 64)  # sparse: takes no disk space
    _refused(p, "'huge.npy'", "50,000 images", "cap", peak_below=4 << 20)


def _npz_member(zout, name, shape, dtype, payload_bytes):
    """A deflated .npy member whose header claims ``shape`` but whose data is ``payload_bytes`` zeros."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zout.open(info, "w", force_zip64=True) as m:
        m.write(header.getvalue())
        block = bytes(1 << 20)
        left = payload_bytes
        while left > 0:
            m.write(block[: min(left, len(block))])
            left -= len(block)


@pytest.mark.slow
def test_zip_bombed_npz_member_stops_after_its_header_claim(tmp_path):
    p = tmp_path / "bomb.npz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        _npz_member(z, "x.npy", (10, 28, 28), "u1", 300 << 20)
    assert p.stat().st_size < 2 << 20
    _refused(p, "'bomb.npz'", "trailing data", peak_below=20 << 20)


def test_zip_bombed_npz_with_an_honest_huge_claim_is_refused_by_the_budget(tmp_path, small_budget):
    p = tmp_path / "bomb.npz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        _npz_member(z, "x_train.npy", (100_000, 28, 28), "u1", 100_000 * 784)
        _npz_member(z, "x_test.npy", (10, 28, 28), "u1", 7840)
    _refused(p, "100,010 images", "cap", peak_below=4 << 20)


def test_csv_gz_with_one_endless_line_is_refused_at_the_line_bound(tmp_path):
    p = tmp_path / "long.csv.gz"
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"0," * (1 << 19)
    with open(p, "wb") as f:
        for _ in range(64):  # 64 MiB in one line
            f.write(comp.compress(block))
        f.write(comp.flush())
    _refused(p, "'long.csv.gz'", "line 1 is longer than", peak_below=200 << 20)


def test_csv_rows_far_longer_than_the_first_are_refused(tmp_path):
    p = tmp_path / "rows.csv"
    p.write_text("0,1,2,3,4\n" + "1," * 100_000 + "1\n")
    _refused(p, "line 2 is longer than")


def test_csv_larger_than_the_budget_allows_is_refused_while_reading(tmp_path, small_budget):
    p = tmp_path / "big.csv.gz"
    row = ("0," * 783 + "0\n").encode()
    with gzip.open(p, "wb", compresslevel=1) as f:
        for _ in range(6000):  # 9.4 MB of text, more than a sixth of the 32 MiB budget
            f.write(row)
    _refused(p, "of text", peak_below=40 << 20)


# --------------------------------------------------------------------------------------- not regular files
@pytest.mark.parametrize("name", ["data.csv", "train-images-idx3-ubyte", "x.npz", "x.npy", "plain"])
def test_a_fifo_is_refused_at_once_instead_of_blocking(tmp_path, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    result = {}

    def load():
        try:
            load_dataset(fifo)
        except DatasetError as e:
            result["msg"] = str(e)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # unblock the reader so the thread can end, then fail
        with open(fifo, "wb"):
            pass
        pytest.fail("loading a FIFO blocked")
    assert result["msg"] == f"{name!r}: is a named pipe (FIFO), not a regular file"


@pytest.mark.parametrize("name", ["zero.csv", "zero.npy", "train-images-idx3-ubyte.gz"])
def test_a_symlink_to_dev_zero_is_refused_without_reading(tmp_path, name):
    link = tmp_path / name
    os.symlink("/dev/zero", link)
    _refused(link, f"{name!r}: is a device, not a regular file", peak_below=1 << 20)


def test_an_image_folder_holding_a_fifo_and_a_dev_zero_link_named_like_images_loads_the_real_ones(tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(6):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    os.mkfifo(tmp_path / "a" / "pipe.png")
    os.symlink("/dev/zero", tmp_path / "b" / "zero.png")
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("ds", load_dataset(tmp_path)), daemon=True)
    t.start()
    t.join(20)
    if t.is_alive():
        with open(tmp_path / "a" / "pipe.png", "wb"):
            pass
        pytest.fail("an image folder holding a FIFO blocked")
    ds = result["ds"]
    assert len(ds.x_train) + len(ds.x_test) == 12


# ------------------------------------------------------------------------------------------------ CSV variants
def _rows(n=20, side=4, header=True):
    out = [["label"] + [f"pixel{i}" for i in range(side * side)]] if header else []
    out += [[str(i % 3)] + [str((i * 7 + j) % 256) for j in range(side * side)] for i in range(n)]
    return out


@pytest.mark.parametrize("header", [True, False])
def test_csv_with_a_utf8_byte_order_mark_loads(tmp_path, header):
    p = tmp_path / "excel.csv"
    p.write_text("\n".join(",".join(r) for r in _rows(header=header)), encoding="utf-8-sig")
    assert p.read_bytes().startswith(b"\xef\xbb\xbf")
    ds = load_dataset(p)
    assert ds.image_shape == (1, 4, 4) and ds.y_train is not None and len(ds.x_train) + len(ds.x_test) == 20


def test_csv_with_quoted_numeric_cells_loads_like_the_plain_one(tmp_path):
    plain, quoted = tmp_path / "plain.csv", tmp_path / "quoted.csv"
    rows = _rows()
    plain.write_text("\n".join(",".join(r) for r in rows))
    quoted.write_text("\n".join(",".join(f'"{c}"' for c in r) for r in rows))
    a, b = load_dataset(plain), load_dataset(quoted)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)


def test_csv_quoted_text_cell_is_located_by_row_and_column(tmp_path):
    rows = _rows()
    rows[3][5] = "abc"
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(",".join(f'"{c}"' for c in r) for r in rows))
    _refused(p, "'bad.csv': row 4, column 6: 'abc' is not a number")


# ------------------------------------------------------------------------------------------------ file names
@pytest.mark.parametrize("name", ["evil\nerror: all good.csv", "quote'd\r.npy", "tab\there-ubyte"])
def test_names_are_quoted_so_a_message_stays_one_line(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"\x00garbage that is no dataset at all")
    msg = _refused(p, repr(name))
    assert msg.startswith(repr(name) + ": ")
