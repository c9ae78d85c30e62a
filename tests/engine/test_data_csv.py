"""CSV loader: Kaggle/pjreddie MNIST layouts, header detection, pairs, and bad cells reported by row and column."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from engine.data import DatasetError
from engine.data.csv import load_csv
from engine.data.dataset import as_float01

RNG = np.random.default_rng(0)


def write(path: Path, x: np.ndarray, y: np.ndarray | None = None, header: bool = True, label_at: int = 0) -> Path:
    """Rows of (label, pixels...) with the label inserted at column ``label_at``."""
    cols = [f"pixel{i}" for i in range(x.shape[1])]
    rows = x.astype(object)
    if y is not None:
        cols.insert(label_at, "label")
        rows = np.insert(rows, label_at, y, axis=1)
    lines = ([",".join(cols)] if header else []) + [",".join(map(str, r)) for r in rows]
    text = "\n".join(lines) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if path.name.endswith(".gz") else text.encode())
    return path


def data(n=20, side=4):
    return RNG.integers(0, 256, (n, side * side)), RNG.integers(0, 10, n)


def raises(path, *names: str, match: str) -> str:
    with pytest.raises(DatasetError) as info:
        load_csv(path)
    msg = str(info.value)
    assert match in msg and "\n" not in msg and all(n in msg for n in names), msg
    return msg


def test_kaggle_train_with_an_unlabelled_test_csv_uses_a_holdout(tmp_path):
    x, y = data(30)
    write(tmp_path / "train.csv", x, y)
    write(tmp_path / "test.csv", data(8)[0])  # Kaggle's competition test set: no label column
    for pick in ("train.csv", "test.csv", ""):
        ds = load_csv(tmp_path / pick)
        assert (len(ds.x_train), len(ds.x_test)) == (27, 3), pick
        assert ds.image_shape == (1, 4, 4) and ds.x_train.dtype == np.uint8
        flat = np.concatenate([as_float01(ds.x_train), as_float01(ds.x_test)]).reshape(30, 16) * 255
        order = [int(np.flatnonzero((np.round(f) == x).all(axis=1))[0]) for f in flat]
        assert sorted(order) == list(range(30))  # every row back once, pixels / 255
        assert np.concatenate([ds.y_train, ds.y_test]).tolist() == y[order].tolist()
        assert ds.name == tmp_path.name


@pytest.mark.parametrize("pick", ["mnist_train.csv", "mnist_test.csv"])
def test_headerless_pair_keeps_its_split_from_either_file(tmp_path, pick):
    (xa, ya), (xb, yb) = data(12), data(5)
    write(tmp_path / "mnist_train.csv", xa, ya, header=False)
    write(tmp_path / "mnist_test.csv", xb, yb, header=False)
    ds = load_csv(tmp_path / pick)
    assert ds.name == "mnist" and ds.source == str(tmp_path / pick)
    np.testing.assert_allclose(as_float01(ds.x_train).reshape(12, 16), xa / 255, rtol=1e-6)
    np.testing.assert_allclose(as_float01(ds.x_test).reshape(5, 16), xb / 255, rtol=1e-6)
    assert ds.y_train.tolist() == ya.tolist() and ds.y_test.tolist() == yb.tolist()


def test_label_column_anywhere_in_the_header(tmp_path):
    x, y = data(10, side=3)
    write(tmp_path / "d.csv", x, y, label_at=5)
    ds = load_csv(tmp_path / "d.csv")
    flat = np.concatenate([as_float01(ds.x_train), as_float01(ds.x_test)]).reshape(10, 9) * 255
    order = [int(np.flatnonzero((np.round(f) == x).all(axis=1))[0]) for f in flat]
    assert np.concatenate([ds.y_train, ds.y_test]).tolist() == y[order].tolist()


def test_headerless_square_column_count_is_unlabelled_and_gz_works(tmp_path):
    write(tmp_path / "pix.csv.gz", data(10, side=5)[0], header=False)
    ds = load_csv(tmp_path / "pix.csv.gz")
    assert ds.y_train is None and ds.image_shape == (1, 5, 5) and ds.name == "pix"


def test_float_pixels_in_unit_range_are_kept(tmp_path):
    (tmp_path / "f.csv").write_text("0.25,0.5,0.75,1.0\n0,0,0.5,0.5\n1,1,1,1\n")
    ds = load_csv(tmp_path / "f.csv")
    assert sorted(np.concatenate([as_float01(ds.x_train), as_float01(ds.x_test)]).reshape(3, 4)[:, 0].tolist()) == [
        0.0,
        0.25,
        1.0,
    ]


# ---- bad files ----


def test_non_numeric_cell_gives_row_and_column(tmp_path):
    x, y = data(6)
    lines = write(tmp_path / "train.csv", x, y).read_text().splitlines()
    cells = lines[3].split(",")
    cells[4] = "oops"
    lines[3] = ",".join(cells)
    (tmp_path / "train.csv").write_text("\n".join(lines))
    raises(tmp_path / "train.csv", "train.csv", match="row 4, column 5: 'oops' is not a number")


def test_ragged_row(tmp_path):
    (tmp_path / "r.csv").write_text("1,2,3,4,5\n1,2,3\n1,2,3,4,5\n")
    raises(tmp_path / "r.csv", "r.csv", match="row 2 has 3 columns, expected 5")


def test_empty_cell(tmp_path):
    (tmp_path / "e.csv").write_text("1,2,3,4,5\n1,2,,4,5\n")
    raises(tmp_path / "e.csv", "e.csv", match="row 2, column 3")


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty file"),
        ("label,pixel0,pixel1\n1,2,3\n", "2 pixel columns do not make a square image"),
        ("1,2,3,4,5,6,7\n", "do not make a square image"),
        ("label,pixel0,pixel1,pixel2,pixel3\n", "no data rows"),
        ("0,1,2,300\n0,0,0,0\n", "span 0..300"),
        ("0,1,2,-3\n0,0,0,0\n", "span -3..2"),
        ("0,1,2,nan\n0,0,0,0\n", "NaN or infinite pixel value in image 0"),
        ("3.5,1,2,3,4\n1,0,0,0,0\n", "labels are not whole numbers"),
    ],
)
def test_bad_contents(tmp_path, text, match):
    (tmp_path / "bad.csv").write_text(text)
    raises(tmp_path / "bad.csv", "bad.csv", match=match)


def test_pair_of_different_image_sizes(tmp_path):
    write(tmp_path / "train.csv", *data(5, side=4))
    write(tmp_path / "test.csv", *data(5, side=3))
    raises(tmp_path / "train.csv", "test.csv", match="images are 3x3 but 'train.csv' has 4x4")


def test_folder_with_several_csv_files_and_no_train(tmp_path):
    write(tmp_path / "a.csv", *data(5))
    write(tmp_path / "b.csv", *data(5))
    raises(tmp_path, tmp_path.name, match="pick a file")
