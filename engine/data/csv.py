"""CSV files in the Kaggle MNIST layout: one image per row, an optional label column, then H*W pixel columns.

A first row that is not all numbers is a header; there the label column is the one named ``label`` (any position,
any case) and every other column is a pixel. Without a header, the first column is the label when the column count
is a square plus one (785 = 28*28 + 1), and there are no labels when it is a square. Pixel values follow the
shared rule (0..255 are divided by 255). Plain or gzip-compressed (``.csv.gz``); comma-separated.

Pairs: a file named like ``mnist_train.csv`` / ``train.csv`` with a ``mnist_test.csv`` / ``test.csv`` beside it
keeps that split, whichever of the two is picked. A test file without labels next to a labelled train file (the
Kaggle competition layout) is ignored and the train file gets the 10% holdout.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import quote
from ..memory import budget_bytes, budget_text, fmt_bytes
from ._common import fail, make_dataset, open_input
from .dataset import Dataset
from .idx import GZIP_MAGIC

CSV_SUFFIXES = (".csv", ".csv.gz")


@dataclass(frozen=True)
class _Layout:
    header: bool
    label: int | None  # column index of the label, or None
    ncols: int
    side: int  # images are side x side


FIRST_LINE_MAX = 8 << 20  # characters in the first row (a header or the first image): 2M pixel cells at most
CELL_MAX = 40  # characters per cell a data row may use on average (a float's repr needs at most 24)


@contextmanager
def _open_text(path: Path):
    """The file as text: regular files only (no FIFO, no /dev/zero), gzip detected by magic, UTF-8 with an optional
    byte-order mark (Excel writes one)."""
    with open_input(path) as raw:
        gz = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        with io.TextIOWrapper(stream, encoding="utf-8-sig", newline="") as text:
            yield text


def _lines(f, path: Path, row_max: int | None = None):
    """The file's lines, each read with a bound: the first at most FIRST_LINE_MAX characters, the others at most
    ``row_max``, and all of them together at most a share of the memory budget. A longer line or a larger file is
    refused with a DatasetError instead of being read whole."""
    total_max = budget_bytes() // 6  # text → float32 takes up to 2x its bytes, growing arrays 2x more, then copies
    total, n = 0, 0
    while True:
        limit = FIRST_LINE_MAX if n == 0 or row_max is None else row_max
        line = f.readline(limit + 1)
        if not line:
            return
        n += 1
        if len(line) > limit:
            raise fail(path, f"line {n} is longer than {limit:,} characters: not an image row")
        total += len(line)
        if total > total_max:
            raise fail(
                path, f"more than {fmt_bytes(total_max)} of text, more than a sixth of {budget_text()} allows to load"
            )
        yield line


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _layout(path: Path) -> _Layout:
    """Header, label column and image side, from the first row only."""
    try:
        with _open_text(path) as f:
            row = next(csv.reader(_lines(f, path)), None)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, zlib.error) as e:
        raise fail(path, f"cannot read as CSV text ({_first_line(e)})") from None
    if not row:
        raise fail(path, "empty file")
    cells = [c.strip().lower() for c in row]
    header = not all(_is_number(c) for c in cells)
    n = len(cells)
    if header:
        label = cells.index("label") if "label" in cells else None
    else:
        label = 0 if n > 1 and math.isqrt(n - 1) ** 2 == n - 1 else None
    npix = n - (label is not None)
    side = math.isqrt(npix)
    if side == 0 or side * side != npix:
        labelled = "with" if label is not None else "without"
        raise fail(path, f"{npix} pixel columns do not make a square image ({n} columns, {labelled} a label)")
    return _Layout(header, label, n, side)


def _locate_bad_cell(path: Path, lay: _Layout, err: Exception) -> Exception:
    """After a fast parse failed, find the first bad cell with the csv module, for a message with row and column."""
    with _open_text(path) as f:
        reader = csv.reader(_lines(f, path, _row_max(lay)))
        for row in reader:
            if not row or (lay.header and reader.line_num == 1):
                continue
            if len(row) != lay.ncols:
                return fail(path, f"row {reader.line_num} has {len(row)} columns, expected {lay.ncols}")
            for j, cell in enumerate(row, start=1):
                if not _is_number(cell):
                    return fail(path, f"row {reader.line_num}, column {j}: {cell.strip()!r} is not a number")
    return fail(path, f"cannot parse ({err})")


def _row_max(lay: _Layout) -> int:
    return lay.ncols * CELL_MAX + 1024


def _first_line(e: Exception) -> str:
    s = str(e).strip().splitlines()
    return s[0][:200] if s else type(e).__name__


BLOCK_VALUES = 1 << 23  # cells parsed at once (32 MB as float32), whatever the column count


def _blocks(lines, rows: int):
    """Lists of at most ``rows`` lines from the iterator ``lines``."""
    block = []
    for line in lines:
        block.append(line)
        if len(block) == rows:
            yield block
            block = []
    if block:
        yield block


def _compact(block: np.ndarray) -> np.ndarray:
    """A parsed block as uint8 when every value is a whole number 0..255 (exact), else as it is (float32)."""
    if block.size and block.min() >= 0 and block.max() <= 255 and np.array_equal(block, np.rint(block)):
        return block.astype(np.uint8)
    return block


def read_csv(path: Path, lay: _Layout) -> tuple[np.ndarray, np.ndarray | None]:
    """(pixels (N, side, side) with values as written, labels or None). Rows are parsed in blocks of about
    BLOCK_VALUES cells, each kept as uint8 when that is exact, so memory follows the compact result rather than
    the text or a float copy of it. Whole numbers that are all 0 or 1 become 0 and 255, as the float pixel rule
    reads them (values in [0, 1] are intensities)."""
    rows = max(1, BLOCK_VALUES // lay.ncols)
    pix, lab = [], []
    try:
        with _open_text(path) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": reported below
            lines = _lines(f, path, _row_max(lay))
            if lay.header:
                next(lines, None)
            for block in _blocks(lines, rows):
                data = np.loadtxt(block, delimiter=",", quotechar='"', dtype=np.float32, ndmin=2)
                if data.size == 0:
                    continue
                if data.shape[1] != lay.ncols:
                    raise ValueError(f"{data.shape[1]} columns")
                if lay.label is not None:
                    lab.append(data[:, lay.label].copy())
                    data = np.delete(data, lay.label, axis=1)
                pix.append(_compact(data))
    except ValueError as e:
        raise _locate_bad_cell(path, lay, e) from None
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as e:
        raise fail(path, f"cannot read ({_first_line(e)})") from None
    if not pix:
        raise fail(path, "no data rows")
    if all(p.dtype == np.uint8 for p in pix):
        x = np.concatenate(pix) if len(pix) > 1 else pix[0]
        if x.max() <= 1:
            x *= np.uint8(255)  # 0/1 intensities, as the float rule reads them
    else:
        x = np.concatenate([p.astype(np.float32, copy=False) for p in pix])
    del pix
    labels = (np.concatenate(lab) if len(lab) > 1 else lab[0]) if lab else None
    return x.reshape(-1, lay.side, lay.side), labels


def _pair(path: Path) -> tuple[Path, Path | None]:
    """(train file, test file or None) for a picked file or folder."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.lower().endswith(CSV_SUFFIXES) and p.is_file())
        train = [p for p in files if "train" in p.name.lower()]
        if len(train) != 1 and len(files) != 1:
            raise fail(path, f"holds {len(files)} CSV files and no single *train*.csv: pick a file")
        path = train[0] if len(train) == 1 else files[0]
    low = path.name.lower()
    for a, b in (("train", "test"), ("test", "train")):
        i = low.rfind(a)
        if i >= 0:
            other = path.with_name(path.name[:i] + b + path.name[i + len(a) :])
            if other.is_file():
                return (path, other) if a == "train" else (other, path)
            break
    return path, None


def load_csv(path) -> Dataset:
    """Load a CSV file (or the folder holding a ``*train*.csv``), keeping a train/test pair's split."""
    picked = Path(path)
    train, test = _pair(picked)
    lay = _layout(train)
    if test is not None:
        test_lay = _layout(test)
        if lay.label is not None and test_lay.label is None:
            test = None  # Kaggle's test.csv has no labels: hold out from train instead
        elif test_lay.side != lay.side:
            raise fail(
                test, f"images are {test_lay.side}x{test_lay.side} but {quote(train.name)} has {lay.side}x{lay.side}"
            )
    x_train, y_train = read_csv(train, lay)
    x_test, y_test = read_csv(test, test_lay) if test is not None else (None, None)
    stem = train.name[: -len(".csv.gz")] if train.name.lower().endswith(".gz") else train.stem
    name = stem.replace("train", "").replace("TRAIN", "").strip("-_. ") or train.parent.resolve().name
    return make_dataset(picked, name, x_train, y_train, x_test, y_test)
