"""Helpers shared by every loader: one error format, one pixel rule, one label rule, one way to build a Dataset.

Pixel rule (the same for every format, decided jointly over train and test so both get the same scale):

* integer dtypes (uint8, int16, ...): values must lie in 0..255 and are divided by 255;
* bool: False/True become 0.0/1.0;
* floats: NaN/Inf are refused; values in [0, 1] are kept; whole numbers in [0, 255] with a maximum above 1
  are divided by 255; anything else (negative, above 255, or fractional above 1) is refused.

Storage rule: the result is held as uint8 (value / 255 is the pixel) whenever that is exact: integer and bool
sources, whole-number floats, and floats in [0, 1] that all lie on the 1/255 grid; other float sources stay float32
so that nothing is rounded.

Layout rule: (N, H, W) gets one channel; (N, H, W, C) with C in {1, 3, 4} becomes channels-first unless the
second axis is already 1, 3 or 4 (then it is read as (N, C, H, W)). A fourth (alpha) channel is dropped, as
the image-folder loader does, so colour datasets always have C = 3.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..files import NotRegularFile, display_name, open_regular, quote
from ..memory import budget_bytes, budget_text, dataset_bytes, fmt_bytes
from .dataset import Dataset, DatasetError, as_float01, split_holdout

CHANNELS = (1, 3, 4)
MAX_LABEL = 65_535  # a larger "label" is almost surely a pixel or id column read as labels
_BLOCK = 4096  # images per block when scanning float pixels, so temporaries stay small
_READ_BLOCK = 1 << 24  # bytes per read when streaming a decompressed array into place
DEFLATE_MAX_RATIO = 1032  # deflate (gzip, zip) cannot expand data more than this: bounds any size claim


def label_of(path: str | os.PathLike) -> str:
    """The name an error message uses, quoted repr-style (engine/files.py): a path's file name (or the whole path
    if it has none); a str as given, so a loader can say ``'cats/img3.png'``."""
    if isinstance(path, str):
        return quote(path)
    return display_name(path)


def fail(path: str | os.PathLike, what: str) -> DatasetError:
    """A one-line DatasetError naming the file: ``fail(p, "empty file")`` -> ``"'train.csv': empty file"``."""
    return DatasetError(f"{label_of(path)}: {what}")


def open_input(path, mode: str = "rb"):
    """Open a data file for reading: regular files only (engine/files.py: a FIFO or /dev/zero is refused without
    blocking or streaming); any OSError becomes a DatasetError naming the file."""
    try:
        return open_regular(path, mode)
    except NotRegularFile as e:
        raise fail(path, e.strerror) from None
    except IsADirectoryError:
        raise fail(path, "is a folder, not a file") from None
    except OSError as e:
        raise fail(path, f"cannot read: {e.strerror or e}") from None


def check_budget(path, n_images: int, n_values: int, what: str = "images", itemsize: int = 1) -> None:
    """DatasetError before allocating when a dataset of ``n_images`` images of ``n_values`` values each, read as
    ``itemsize``-byte values, would not fit the memory budget (engine/memory.py) while it is stored."""
    need = dataset_bytes(n_images, n_values, itemsize)
    budget = budget_bytes()
    if need > budget:
        raise fail(
            path,
            f"{n_images:,} {what} of {n_values:,} values need {fmt_bytes(need)} in memory, more than "
            f"{budget_text(budget)}",
        )


def read_bounded(f, need: int, path, claim: str) -> np.ndarray:
    """Exactly ``need`` bytes from the (possibly decompressing) stream ``f`` into one uint8 array, then EOF.

    The stream is read in 16 MB blocks straight into the array (no copies, memory follows the data as it comes),
    and never past ``need`` + 1 bytes: a stream holding more than its header claims is refused after one extra
    byte, whatever it would expand to. DatasetError if the stream holds less or more."""
    out = np.empty(need, np.uint8)
    view, got = memoryview(out), 0
    while got < need:
        n = f.readinto(view[got : got + _READ_BLOCK])
        if not n:
            break
        got += n
    if got < need:
        raise fail(path, f"truncated: header claims {claim} ({need} bytes) but the data holds {got}")
    if f.read(1):
        raise fail(path, f"trailing data after the {need} bytes the header claims ({claim})")
    return out


def nchw(a: np.ndarray, path) -> np.ndarray:
    """A (N, C, H, W) view of ``a`` following the layout rule above (no copy)."""
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4:
        if a.shape[1] not in CHANNELS:
            if a.shape[3] not in CHANNELS:
                raise fail(path, f"images of shape {a.shape}: expected 1, 3 or 4 channels first or last")
            a = a.transpose(0, 3, 1, 2)
        if a.shape[1] == 4:
            a = a[:, :3]
    else:
        raise fail(path, f"images of shape {a.shape}: expected (N,H,W), (N,H,W,C) or (N,C,H,W)")
    if 0 in a.shape[1:]:
        raise fail(path, f"no pixels: images of shape {tuple(a.shape)}")
    return a


def _pixel_scale(arrays: dict[str, np.ndarray], path) -> float:
    """The divisor (1 or 255) mapping every array into [0, 1], or DatasetError if the values are not pixels.

    ``arrays`` maps a name used in messages ("image", "train image", ...) to an (N, C, H, W) array."""
    kinds = {a.dtype.kind for a in arrays.values()}
    if not kinds <= set("biuf"):
        raise fail(path, f"pixels of dtype {next(iter(arrays.values())).dtype} are not numbers")
    lo, hi, whole = np.inf, -np.inf, True
    for what, a in arrays.items():
        if a.dtype.kind in "biu":
            lo, hi = min(lo, int(a.min())), max(hi, int(a.max()))
            continue
        for i in range(0, len(a), _BLOCK):  # blocks keep the isfinite/round temporaries small
            blk = a[i : i + _BLOCK]
            finite = np.isfinite(blk)
            if not finite.all():
                bad = i + int(np.argmin(finite.reshape(len(blk), -1).all(axis=1)))
                raise fail(path, f"NaN or infinite pixel value in {what} {bad}")
            lo, hi = min(lo, float(blk.min())), max(hi, float(blk.max()))
            whole = whole and bool(np.array_equal(blk, np.round(blk)))
    if lo < 0 or hi > 255:
        raise fail(path, f"pixel values span {lo:g}..{hi:g}, outside the pixel range 0..255 (or 0..1)")
    if kinds == {"b"}:
        return 1.0
    if kinds & set("iu"):
        return 255.0
    if hi <= 1:
        return 1.0
    if not whole:
        raise fail(path, f"float pixel values span {lo:g}..{hi:g}: expected 0..1, or whole numbers 0..255")
    return 255.0


def _on_grid(v: np.ndarray) -> bool:
    """Whether float pixels in [0, 1] are all exactly k / 255 (as float32) for whole k: then uint8 storage is exact."""
    for i in range(0, len(v), _BLOCK):
        blk = np.asarray(v[i : i + _BLOCK], dtype=np.float32)
        k = np.rint(blk * np.float32(255))
        if not np.array_equal(as_float01(k.astype(np.uint8)), blk):
            return False
    return True


def _store(arrays: list[np.ndarray], scale: float) -> list[np.ndarray]:
    """The storage of every split, one dtype for all (the Dataset rule): C-contiguous uint8 when that is exact,
    float32 in [0, 1] when float pixels lie off the 1/255 grid. At most one allocation per split."""
    if all(v.dtype.kind == "b" for v in arrays):
        return [np.ascontiguousarray(v, dtype=np.uint8) * np.uint8(255) for v in arrays]
    if scale == 255.0 or all(v.dtype.kind in "biu" for v in arrays):
        out = [np.ascontiguousarray(v if v.dtype.kind in "biu" else np.rint(v), dtype=np.uint8) for v in arrays]
        return [u if u.flags.writeable else u.copy() for u in out]  # a read-only buffer (IDX bytes): torch warns
    if all(v.dtype.kind in "biu" or _on_grid(v) for v in arrays):
        out = []
        for v in arrays:
            u = np.empty(v.shape, np.uint8)
            for i in range(0, len(v), _BLOCK):
                u[i : i + _BLOCK] = np.rint(np.asarray(v[i : i + _BLOCK], np.float32) * np.float32(255))
            out.append(u)
        return out
    return [np.ascontiguousarray(v, dtype=np.float32) for v in arrays]


def to_labels(y, n: int, path) -> np.ndarray:
    """Validate labels for ``n`` images: whole numbers 0..MAX_LABEL, shape (n,) or (n, 1); returns int64 (n,)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise fail(path, f"labels of shape {y.shape}: expected one label per image")
    if len(y) != n:
        raise fail(path, f"{len(y)} labels for {n} images")
    if y.dtype.kind not in "biuf":
        raise fail(path, f"labels of dtype {y.dtype} are not numbers")
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and np.array_equal(y, np.round(y))):
        raise fail(path, "labels are not whole numbers")
    if n and (y.min() < 0 or y.max() > MAX_LABEL):
        raise fail(path, f"labels span {y.min():g}..{y.max():g}, expected 0..{MAX_LABEL}")
    return y.astype(np.int64)


def make_dataset(
    path,
    name: str,
    x_train,
    y_train=None,
    x_test=None,
    y_test=None,
    class_names: tuple[str, ...] | None = None,
    source: str | None = None,
) -> Dataset:
    """Build the Dataset from raw arrays (any pixel dtype/layout): the one exit of every loader.

    Pixels are checked and scaled by the module's rule, train and test together. Without ``x_test`` a deterministic
    10% holdout is split off first (on the raw, usually uint8, arrays: cheaper than splitting floats). Labels are
    kept only if every split has them. Storage follows the Dataset rule (uint8 unless float pixels are off the
    1/255 grid); at most one allocation per split."""
    x_train = nchw(np.asarray(x_train), path)
    if x_test is None:
        if len(x_train) < 2:
            raise fail(path, f"{len(x_train)} image(s): need at least 2 to hold some out for testing")
        scale = _pixel_scale({"image": x_train}, path)  # before the split, so messages give indices in the file
        if y_train is not None:
            y_train = to_labels(y_train, len(x_train), path)
        x_train, x_test, y_train, y_test = split_holdout(x_train, y_train)
    else:
        x_test = nchw(np.asarray(x_test), path)
        if x_train.shape[1:] != x_test.shape[1:]:
            a, b = ("x".join(map(str, x.shape[1:])) for x in (x_train, x_test))
            raise fail(path, f"train images are {a} but test images are {b}")
        scale = _pixel_scale({"train image": x_train, "test image": x_test}, path)  # one scale for both
    for x, what in ((x_train, "train"), (x_test, "test")):
        if len(x) == 0:
            raise fail(path, f"the {what} split holds no images")
    if y_train is None or y_test is None:
        y_train = y_test = class_names = None
    else:
        y_train, y_test = to_labels(y_train, len(x_train), path), to_labels(y_test, len(x_test), path)
        top = max(int(y_train.max()), int(y_test.max()))
        if class_names is not None and top >= len(class_names):
            raise fail(path, f"label {top} but only {len(class_names)} class names")
    check_budget(path, len(x_train) + len(x_test), math.prod(x_train.shape[1:]), itemsize=x_train.dtype.itemsize)
    x_train, x_test = _store([x_train, x_test], scale)
    return Dataset(
        name=name,
        source=str(path) if source is None else source,
        x_train=x_train,
        x_test=x_test,
        y_train=y_train,
        y_test=y_test,
        class_names=tuple(class_names) if class_names is not None else None,
    )
