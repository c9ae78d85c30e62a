"""2-D point sets for the 2-D Lab: the built-in shapes, points drawn with a brush, and CSV files of (x, y) rows.

Every set is a float64 array (N, 2) in data coordinates. The built-ins are scaled to about [−2.5, 2.5]² and are
reproducible from their seed; ``noise`` is the standard deviation of the Gaussian noise added to each coordinate
(for ``eight_gaussians``: the standard deviation of each mode, the σ of ``EIGHT_RADIUS``-circle modes)."""

from __future__ import annotations

import csv
import math
import warnings
import zlib
from pathlib import Path

import numpy as np

from ..data._common import fail
from ..data.csv import _first_line, _is_number, _lines, _open_text

MIN_POINTS, MAX_POINTS = 100, 20_000  # the built-ins' count setting
CSV_MAX_POINTS = MAX_POINTS  # rows a CSV file may hold
EIGHT_RADIUS = 2.0  # radius of the circle that holds the 8 Gaussians' means
DEFAULT_NOISE = {"moons": 0.08, "rings": 0.06, "eight_gaussians": 0.1, "spiral": 0.08, "checkerboard": 0.0}
NAMES = {
    "moons": "Two moons",
    "rings": "Rings",
    "eight_gaussians": "8 Gaussians",
    "spiral": "Spiral",
    "checkerboard": "Checkerboard",
}


def eight_means() -> np.ndarray:
    """The 8 modes of ``eight_gaussians``, (8, 2), evenly on a circle of radius EIGHT_RADIUS."""
    a = np.arange(8) * (2 * math.pi / 8)
    return EIGHT_RADIUS * np.stack([np.cos(a), np.sin(a)], 1)


def make_points(name: str, n: int, noise: float | None = None, seed: int = 0) -> np.ndarray:
    """``n`` points of the built-in set ``name`` (a key of NAMES) with Gaussian ``noise`` (None: its default)."""
    if name not in NAMES:
        raise ValueError(f"unknown point set {name!r}: one of {', '.join(NAMES)}")
    n = int(n)
    if not MIN_POINTS <= n <= MAX_POINTS:
        raise ValueError(f"number of points {n:,}: between {MIN_POINTS:,} and {MAX_POINTS:,}")
    noise = DEFAULT_NOISE[name] if noise is None else float(noise)
    if not (math.isfinite(noise) and 0.0 <= noise <= 1.0):
        raise ValueError(f"noise {noise}: between 0 and 1")
    rng = np.random.default_rng(seed)
    x = _SHAPES[name](n, rng)
    return x + noise * rng.standard_normal(x.shape)


def _moons(n, rng):
    t = rng.uniform(0, math.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    return 1.6 * np.stack([x - 0.5, y - 0.25], 1)


def _rings(n, rng):
    r = np.where(rng.random(n) < 0.5, 1.0, 2.2)
    t = rng.uniform(0, 2 * math.pi, n)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _eight(n, rng):
    return eight_means()[rng.integers(0, 8, n)]


def _spiral(n, rng):
    t = np.sqrt(rng.random(n)) * 3 * math.pi  # uniform along the arm's length, roughly
    r = t / (3 * math.pi) * 2.4
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _checkerboard(n, rng):
    """Uniform on the 8 dark squares of a 4×4 board over [−2, 2]² (column + row even)."""
    col = rng.integers(0, 4, n)
    row = 2 * rng.integers(0, 2, n) + col % 2
    return np.stack([col + rng.random(n) - 2, row + rng.random(n) - 2], 1).astype(float)


_SHAPES = {
    "moons": _moons,
    "rings": _rings,
    "eight_gaussians": _eight,
    "spiral": _spiral,
    "checkerboard": _checkerboard,
}


# ----------------------------------------------------------------------------------------------- drawing
def brush(center, radius: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points uniform in the disc of ``radius`` around ``center``, (count, 2): one dab of the brush."""
    r = radius * np.sqrt(rng.random(count))
    t = rng.uniform(0, 2 * math.pi, count)
    return np.asarray(center, float)[None] + np.stack([r * np.cos(t), r * np.sin(t)], 1)


def erase(points: np.ndarray, center, radius: float) -> np.ndarray:
    """``points`` without those within ``radius`` of ``center``."""
    d2 = ((points - np.asarray(center, float)[None]) ** 2).sum(1)
    return points[d2 > radius * radius]


# ----------------------------------------------------------------------------------------------- CSV
def load_points_csv(path) -> np.ndarray:
    """(x, y) rows of a CSV file as (N, 2) float64. A first row that is not two numbers is a header. One line
    naming the file and the problem (DatasetError) for anything else: not two columns, a cell that is not a finite
    number, no rows, more than CSV_MAX_POINTS rows, or a file too large to read (the loaders' bounds)."""
    path = Path(path)
    rows: list[tuple[float, float]] = []
    try:
        with _open_text(path) as f:
            reader = csv.reader(_lines(f, path, 2 * 40 + 1024))
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != 2:
                    raise fail(path, f"row {reader.line_num} has {len(row)} columns, expected 2 (x, y)")
                if reader.line_num == 1 and not all(_is_number(c) for c in row):
                    continue  # a header
                for j, cell in enumerate(row, start=1):
                    if not _is_number(cell):
                        raise fail(path, f"row {reader.line_num}, column {j}: {cell.strip()!r} is not a number")
                x, y = float(row[0]), float(row[1])
                if not (math.isfinite(x) and math.isfinite(y)):
                    raise fail(path, f"row {reader.line_num}: {row[0].strip()}, {row[1].strip()} is not finite")
                rows.append((x, y))
                if len(rows) > CSV_MAX_POINTS:
                    raise fail(path, f"more than {CSV_MAX_POINTS:,} points")
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, zlib.error) as e:
        raise fail(path, f"cannot read as CSV text ({_first_line(e)})") from None
    if not rows:
        raise fail(path, "no (x, y) rows")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(rows, float)


def bounds(points: np.ndarray, margin: float = 0.15, pad: float = 0.5) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): a square-ish box around ``points`` with a relative ``margin`` and at least ``pad`` on
    each side, for views and density grids; the unit box around 0 for no points."""
    if points is None or not len(points):
        return -3.0, 3.0, -3.0, 3.0
    lo, hi = points.min(0), points.max(0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - np.maximum(margin * span, pad), hi + np.maximum(margin * span, pad)
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def grid(box, n: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Cell centres of an n×n grid over ``box`` = (x0, x1, y0, y1): (xs (n,), ys (n,), points (n·n, 2) row-major
    with y the slow axis, cell area)."""
    x0, x1, y0, y1 = box
    dx, dy = (x1 - x0) / n, (y1 - y0) / n
    xs = x0 + dx * (np.arange(n) + 0.5)
    ys = y0 + dy * (np.arange(n) + 0.5)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, np.stack([gx.ravel(), gy.ravel()], 1), dx * dy
