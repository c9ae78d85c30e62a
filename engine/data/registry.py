"""Pick the loader for a path the user chose: by folder contents, file name, then magic bytes."""

from __future__ import annotations

import errno
import gzip
import os
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..files import quote
from ._common import fail, nchw, open_input
from .csv import CSV_SUFFIXES, load_csv
from .dataset import Dataset, DatasetError
from .idx import GZIP_MAGIC, IDX_NAME, load_idx, peek_idx
from .images import IMAGE_SUFFIXES, load_image_folder
from .npz import NPY_MAGIC, ZIP_MAGIC, load_npz, peek_npz
from .progress import LoadProgress
from .resize import check_resolution, resize_array, to_channels

SUPPORTED_SUFFIXES = (".npz", ".npy", *CSV_SUFFIXES, "-ubyte", "-ubyte.gz", ".idx")
FILE_DIALOG_FILTER = "Datasets (*.gz *.npz *.npy *.csv *-ubyte *.idx*);;All files (*)"
LOADERS: dict[str, Callable[[Path], Dataset]] = {
    "idx": load_idx,
    "npz": load_npz,
    "csv": load_csv,
    "images": load_image_folder,
}


def _looks_idx(head: bytes) -> bool:
    """IDX magic: two zero bytes, a dtype code 0x08..0x0E, a rank 1..4."""
    return len(head) >= 4 and head[:2] == b"\0\0" and 0x08 <= head[2] <= 0x0E and 1 <= head[3] <= 4


def _holds_images(folder: Path, depth: int) -> bool:
    """An image file within ``depth`` levels of ``folder`` (class folders, or train/ and test/ of class folders)."""
    try:
        with os.scandir(folder) as it:
            subdirs = []
            for e in it:
                if e.name.startswith("."):
                    continue
                if e.name.lower().endswith(IMAGE_SUFFIXES) and e.is_file():
                    return True
                if e.is_dir():
                    subdirs.append(Path(e.path))
    except OSError:
        return False
    return depth > 1 and any(_holds_images(d, depth - 1) for d in subdirs)


def _folder_format(path: Path, entries: list[Path]) -> str:
    """A folder with images in it or in class sub-folders is an image folder (a CSV beside them, such as a
    metadata.csv, is not the data); a CSV is the data only when it is the only data there."""
    if any(_holds_images(p, 2) if p.is_dir() else p.name.lower().endswith(IMAGE_SUFFIXES) for p in entries):
        return "images"
    if any(p.is_file() and p.name.lower().endswith(CSV_SUFFIXES) for p in entries):
        return "csv"  # one CSV, or a train/test pair (its loader says when the choice is unclear)
    return "images"  # the image loader says what is missing


def _files_beside_images(path: Path) -> str | None:
    """The note for an image folder that also holds CSV files (not read): what was found and what was used."""
    if not path.is_dir():
        return None
    csvs = sorted(p.name for p in path.iterdir() if p.is_file() and p.name.lower().endswith(CSV_SUFFIXES))
    if not csvs:
        return None
    shown = ", ".join(csvs[:2]) + (f" and {len(csvs) - 2} more" if len(csvs) > 2 else "")
    return f"read as an image folder; {shown} beside the images not read"


def missing_reason(path: Path) -> str:
    """Why ``path`` cannot be opened, in words: a symbolic link loop is named as such, not as a missing file."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link loop (the link leads back to itself)"
        if e.errno == errno.ENOENT and path.is_symlink():
            return f"a symbolic link to {quote(os.readlink(path))}, which does not exist"
        if e.errno not in (errno.ENOENT, None):
            return f"cannot read: {e.strerror or e}"
    return "no such file or folder"


def detect_format(path: Path) -> str:
    """One of LOADERS' keys for ``path``, or DatasetError naming it (missing, empty, unknown)."""
    path = Path(path)
    if not path.exists():
        raise fail(path, missing_reason(path))
    if path.is_dir():
        entries = [p for p in path.iterdir() if not p.name.startswith(".")]
        if not entries:
            raise fail(path, "empty folder")
        if any(IDX_NAME.match(p.name) for p in entries):
            return "idx"
        return _folder_format(path, entries)
    with open_input(path) as f:  # a FIFO or a device is refused here, without blocking
        try:
            head = f.read(8)
            f.seek(0)
        except OSError as e:
            raise fail(path, f"cannot read: {e.strerror or e}") from None
        if not head:
            raise fail(path, "empty file")
        inner, gz_error = b"", None
        if head.startswith(GZIP_MAGIC):
            try:
                with gzip.GzipFile(fileobj=f, mode="rb") as g:
                    inner = g.read(4)
            except (OSError, EOFError, zlib.error) as e:
                gz_error = e
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(IMAGE_SUFFIXES):
        raise fail(path, "is a single image: pick the folder that holds the images")
    if head.startswith((NPY_MAGIC, *ZIP_MAGIC)):
        return "npz"
    if IDX_NAME.match(path.name) or _looks_idx(head) or _looks_idx(inner):
        return "idx"
    if name.endswith((".npz", ".npy")):
        return "npz"  # its loader explains what is wrong with it
    if "ubyte" in name or ".idx" in name:
        return "idx"
    if gz_error is not None:
        raise fail(path, f"corrupt or truncated gzip data ({gz_error})")
    raise fail(path, "unknown dataset format (expected IDX, .npz/.npy, .csv or a folder of images)")


def peek_dataset(
    path: str | os.PathLike, resolution: int | None = None, channels: int | None = None
) -> tuple[int, tuple[int, int, int]] | None:
    """(image count, (C, H, W) as a run will see them) from the file headers alone, before any pixel is read or
    decompressed, so a run can be refused before its data is loaded; None when the format cannot tell that
    cheaply (CSV, image folders) or the file is one the loader will refuse anyway."""
    path = Path(path).expanduser()
    try:
        kind = detect_format(path)
    except DatasetError:
        return None
    peek = {"idx": peek_idx, "npz": peek_npz}.get(kind)
    got = peek(path) if peek is not None else None
    if got is None:
        return None
    n, shape = got
    try:
        c, h, w = nchw(np.empty((0, *shape), np.uint8), path).shape[1:]  # the layout rule, on no data
    except DatasetError:
        return None
    if resolution is not None:
        h = w = int(resolution)
    return int(n), (channels or c, h, w)


def load_dataset(
    path: str | os.PathLike,
    resolution: int | None = None,
    channels: int | None = None,
    progress: LoadProgress | None = None,
) -> Dataset:
    """Load whatever dataset ``path`` (a file or folder) holds; DatasetError (naming the file) if it cannot.

    ``resolution`` (a side in pixels) makes the images that square size (scale to cover, centre-crop); ``channels``
    (1 or 3) forces grey or RGB. An image folder needs a common size anyway and picks one itself when neither is
    given (engine/data/images.py); the array formats keep their native size and channels unless asked.
    ``progress`` reports progress and carries the cancel request (LoadCancelled)."""
    path = Path(path).expanduser()
    resolution = check_resolution(resolution)
    kind = detect_format(path)
    if kind == "images":
        ds = load_image_folder(path, resolution, channels, progress)
        beside = _files_beside_images(path)
        return ds if beside is None else replace(ds, note="; ".join(filter(None, (ds.note, beside))))
    ds = LOADERS[kind](path)
    if progress is not None:
        progress.check()
    return adjust_images(ds, resolution, channels)


def adjust_images(ds: Dataset, resolution: int | None = None, channels: int | None = None) -> Dataset:
    """``ds`` with its images made ``resolution``×``resolution`` (scale to cover, centre-crop) and/or ``channels``
    (1 or 3) channels; ``ds`` itself when neither changes anything."""
    resolution = check_resolution(resolution)
    _, h, w = ds.image_shape
    if (resolution is None or (h, w) == (resolution, resolution)) and channels in (None, ds.image_shape[0]):
        return ds
    th, tw = (resolution, resolution) if resolution is not None else (h, w)
    xs = [to_channels(resize_array(x, th, tw), channels or x.shape[1]) for x in (ds.x_train, ds.x_test)]
    c = xs[0].shape[1]
    note = f"{len(xs[0]) + len(xs[1]):,} images of {h}×{w} → {th}×{tw} {'grey' if c == 1 else 'RGB'}"
    return replace(ds, x_train=xs[0], x_test=xs[1], note=note, _fingerprint=[])
