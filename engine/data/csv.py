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
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._common import fail, make_dataset
from .dataset import Dataset
from .idx import is_gzip

CSV_SUFFIXES = (".csv", ".csv.gz")


@dataclass(frozen=True)
class _Layout:
    header: bool
    label: int | None  # column index of the label, or None
    ncols: int
    side: int  # images are side x side


def _open_text(path: Path):
    return gzip.open(path, "rt", newline="") if is_gzip(path) else open(path, newline="")


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
            row = next(csv.reader(f), None)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as e:
        raise fail(path, f"cannot read as CSV text ({e})") from None
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
        reader = csv.reader(f)
        for row in reader:
            if not row or (lay.header and reader.line_num == 1):
                continue
            if len(row) != lay.ncols:
                return fail(path, f"row {reader.line_num} has {len(row)} columns, expected {lay.ncols}")
            for j, cell in enumerate(row, start=1):
                if not _is_number(cell):
                    return fail(path, f"row {reader.line_num}, column {j}: {cell.strip()!r} is not a number")
    return fail(path, f"cannot parse ({err})")


def read_csv(path: Path, lay: _Layout) -> tuple[np.ndarray, np.ndarray | None]:
    """(pixels as float32 (N, side, side) with values as written, labels or None)."""
    try:
        with _open_text(path) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": reported below
            data = np.loadtxt(f, delimiter=",", skiprows=int(lay.header), dtype=np.float32, ndmin=2)
    except ValueError as e:
        raise _locate_bad_cell(path, lay, e) from None
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise fail(path, f"cannot read ({e})") from None
    if len(data) == 0:
        raise fail(path, "no data rows")
    if lay.label is None:
        return data.reshape(-1, lay.side, lay.side), None
    labels = data[:, lay.label].copy()
    pixels = data[:, 1:] if lay.label == 0 else np.delete(data, lay.label, axis=1)
    return pixels.reshape(-1, lay.side, lay.side), labels


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
            raise fail(test, f"images are {test_lay.side}x{test_lay.side} but {train.name} has {lay.side}x{lay.side}")
    x_train, y_train = read_csv(train, lay)
    x_test, y_test = read_csv(test, test_lay) if test is not None else (None, None)
    stem = train.name[: -len(".csv.gz")] if train.name.lower().endswith(".gz") else train.stem
    name = stem.replace("train", "").replace("TRAIN", "").strip("-_. ") or train.parent.resolve().name
    return make_dataset(picked, name, x_train, y_train, x_test, y_test)
