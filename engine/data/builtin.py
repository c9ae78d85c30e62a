"""Datasets that need no file picked: a generated Shapes set, and Fashion-MNIST where the system has it.

Nothing is ever downloaded. ``default_dataset()`` is Fashion-MNIST from the Debian package
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``, or the folder in ``$ELBO_STUDIO_FASHION_DIR``)
when its files are there, else the Shapes set.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._common import make_dataset
from .dataset import Dataset
from .idx import FASHION_MNIST_CLASSES, load_idx

FASHION_DIR_ENV = "ELBO_STUDIO_FASHION_DIR"
FASHION_DIR_DEFAULT = "/usr/share/datasets/fashion-mnist"
SHAPE_CLASSES = ("square", "circle", "triangle", "cross")
_PERIOD = np.array([np.pi / 2, 0.0, 2 * np.pi / 3, np.pi / 2])  # rotational symmetry of each kind (circle: none)
_CHUNK = 512  # images per vectorised block: (B, H, W) float temporaries stay cache-sized


def shape_factors(n: int, size: int = 28, seed: int = 0) -> dict[str, np.ndarray]:
    """The generative factors of ``n`` Shapes images: kind (the label), centre x/y and radius in pixels, rotation
    in radians (0 for circles). ``make_shapes(n_train, n_test, size, seed)`` draws exactly
    ``shape_factors(n_train + n_test, size, seed)``, train images first."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, len(SHAPE_CLASSES), n)
    radius = rng.uniform(0.18, 0.36, n) * size
    reach = 1.05 * radius + 1.0  # farthest ink from the centre: a cross's bar corner (1.044 r) plus the soft edge
    lo, hi = reach, size - reach  # the whole shape stays inside the frame
    return {
        "kind": kind,
        "x": lo + rng.uniform(0, 1, n) * (hi - lo),
        "y": lo + rng.uniform(0, 1, n) * (hi - lo),
        "radius": radius,
        "rotation": rng.uniform(0, 1, n) * _PERIOD[kind],
    }


def _render(f: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Rasterise shapes as (B, size, size) float32 coverage in [0, 1] with a ~1 px anti-aliased edge.

    Each kind is a distance-like function d (in pixels, < 0 inside) in the shape's rotated frame (u, v); the pixel
    value is clip(0.5 - d, 0, 1), a linear ramp one pixel wide across the edge. Kinds are drawn in groups, so every
    step is one vectorised pass over (B_kind, H, W)."""
    c = np.arange(size, dtype=np.float32) + 0.5  # pixel centres
    out = np.empty((len(f["kind"]), size, size), np.float32)
    for i, name in enumerate(SHAPE_CLASSES):
        idx = np.flatnonzero(f["kind"] == i)
        if len(idx) == 0:
            continue
        col = lambda a: a[idx].astype(np.float32)[:, None, None]  # noqa: E731  (B, 1, 1)
        dx, dy, r = c[None, None, :] - col(f["x"]), c[None, :, None] - col(f["y"]), col(f["radius"])  # (B,1,W) (B,H,1)
        if name == "circle":
            d = np.sqrt(dx * dx + dy * dy) - 0.85 * r
        else:
            cos, sin = col(np.cos(f["rotation"])), col(np.sin(f["rotation"]))
            u, v = dx * cos + dy * sin, dy * cos - dx * sin  # (B, H, W) in the shape's frame
            au = np.abs(u, out=u)
            if name == "square":  # half-side 0.72 r: corners stay within r
                d = np.maximum(au, np.abs(v)) - 0.72 * r
            elif name == "triangle":  # equilateral, circumradius r: three half-planes at r/2 from the centre
                d = np.maximum(-v, 0.866 * au + 0.5 * v) - 0.5 * r
            else:  # cross: union of two bars, arm length r, half-width 0.3 r
                av = np.abs(v, out=v)
                d = np.minimum(np.maximum(au - r, av - 0.3 * r), np.maximum(au - 0.3 * r, av - r))
        out[idx] = np.clip(0.5 - d, 0.0, 1.0)
    return out


def make_shapes(n_train: int = 12000, n_test: int = 2000, size: int = 28, seed: int = 0) -> Dataset:
    """A built-in grayscale dataset with known factors (see ``shape_factors``): labels are the kind, class names
    ``SHAPE_CLASSES``. Deterministic for a seed; the test images are the last ``n_test`` of one draw."""
    n = n_train + n_test
    f = shape_factors(n, size, seed)
    x = np.empty((n, 1, size, size), np.float32)
    for i in range(0, n, _CHUNK):
        x[i : i + _CHUNK, 0] = _render({k: a[i : i + _CHUNK] for k, a in f.items()}, size)
    return make_dataset(
        "shapes", "Shapes (built-in)", x[:n_train], f["kind"][:n_train], x[n_train:], f["kind"][n_train:],
        SHAPE_CLASSES, source="builtin:shapes",
    )  # fmt: skip


def fashion_mnist_path() -> Path | None:
    """The Fashion-MNIST folder ($ELBO_STUDIO_FASHION_DIR or the Debian package's) if its train images are there."""
    folder = Path(os.environ.get(FASHION_DIR_ENV) or FASHION_DIR_DEFAULT)
    names = ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz")
    return folder if any((folder / n).is_file() for n in names) else None


def default_dataset() -> Dataset:
    """Fashion-MNIST when installed (a broken install raises DatasetError), else ``make_shapes()``."""
    folder = fashion_mnist_path()
    if folder is None:
        return make_shapes()
    return load_idx(folder, name="Fashion-MNIST", class_names=FASHION_MNIST_CLASSES)
