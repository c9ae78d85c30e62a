"""A folder of image files (PNG, JPEG, BMP, GIF; read with pillow).

Layouts: ``root/<class>/*.png`` (labels from the sorted sub-folder names), ``root/*.png`` (unlabelled), and either
of these inside ``root/train`` and ``root/test`` (split kept). Hidden files and folders are skipped. GIFs give
their first frame.

Images may differ in size: each is scaled to cover the target size and centre-cropped (engine/data/resize.py). The
target is the chosen resolution, else the folder's most common size when it is at most 64 px, else 64×64. The
result is grayscale (C=1) if every image is grayscale (a gray mode, or R = G = B), else RGB (C=3, alpha dropped),
unless ``channels`` says which. Two passes over the files, each on a thread pool (pillow releases the GIL while it
decodes and resizes): the headers (sizes and modes, no pixels), then the pixels, decoded straight into one
preallocated uint8 array; JPEGs are decoded at a reduced scale when the target is much smaller.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..files import open_regular
from ..memory import budget_bytes, budget_text, fmt_bytes
from ._common import check_budget, fail, make_dataset
from .dataset import Dataset, DatasetError
from .progress import LoadProgress
from .resize import check_resolution, cover_box, target_size

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_GRAY_MODES = {"1", "L", "LA"}  # converted to "L"
_DEEP_GRAY_MODES = {"I", "I;16", "I;16B", "I;16L", "F"}  # more than 8 bits: pillow's convert("L") would clip


def _deep_gray(im: Image.Image) -> np.ndarray:
    """A 16-bit (or 32-bit int / float) grayscale image as uint8, rescaled rather than clipped: 16-bit and int
    images map 0..65535 to 0..255 (int images whose values all fit in 0..255 are kept as they are); float images
    map 0..1 to 0..255 when their values lie in [0, 1], else are clipped to 0..255."""
    a = np.asarray(im)
    if im.mode == "F":
        a = a.astype(np.float64)
        if np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0:
            a = a * 255.0
        return np.clip(np.nan_to_num(np.rint(a), nan=0.0), 0, 255).astype(np.uint8)
    a = a.astype(np.int64)
    if im.mode == "I" and a.min() >= 0 and a.max() <= 255:
        return a.astype(np.uint8)
    return np.rint(np.clip(a, 0, 65535) / 257.0).astype(np.uint8)


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _rel(path: Path, root: Path) -> str:
    """How messages name a file: relative to the picked folder's parent, e.g. ``pets/cat/003.png``."""
    return str(path.relative_to(root.parent))


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES


def _skipped(paths) -> int:
    """Entries named like images that are not regular files (a FIFO, a device, a socket, a broken or looping
    link): skipped, never opened, and counted so that the summary says so."""
    return sum(1 for p in paths if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_file() and not p.is_dir())


def _scan(folder: Path, root: Path, skipped: list[int] | None = None) -> tuple[list[Path], list[str] | None]:
    """(image files, class of each file or None if the folder is flat); ``skipped`` gets the count of entries
    named like images that are not regular files added to its first item."""
    entries = _visible(folder)
    loose = [p for p in entries if _is_image(p)]
    subs = {p.name: _visible(p) for p in entries if p.is_dir()}
    if skipped is not None:
        skipped[0] += _skipped(entries) + sum(_skipped(v) for v in subs.values())
    classes = {c: [q for q in inner if _is_image(q)] for c, inner in subs.items()}
    classes = {c: files for c, files in classes.items() if files}
    if loose and classes:
        raise fail(_rel(folder, root), "mixes loose images with class sub-folders; keep one layout")
    if not classes:
        return loose, None
    files = [f for c in sorted(classes) for f in classes[c]]
    return files, [c for c in sorted(classes) for _ in classes[c]]


_WORKERS_MAX = 8  # decoding threads at most: pillow releases the GIL, but disks and memory bandwidth do not scale
_CHUNK = 32  # images per task: cancel takes effect within about one chunk per thread


def _workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(_WORKERS_MAX, cores))


def _unreadable(path: Path, root: Path, e: BaseException) -> DatasetError:
    if isinstance(e, UnidentifiedImageError):
        return fail(_rel(path, root), "corrupt or unreadable image (not a format pillow recognises)")
    return fail(_rel(path, root), f"corrupt or unreadable image ({e})")


_READ_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _header(path: Path, root: Path) -> tuple[tuple[int, int], str]:
    """((height, width), mode) from the file's header, without decoding the pixels."""
    try:
        with open_regular(path) as f, Image.open(f) as im:  # a FIFO or a device is refused, never waited on
            w, h = im.size
            return (h, w), im.mode
    except _READ_ERRORS as e:
        raise _unreadable(path, root, e) from None


def _decode(path: Path, root: Path, size: tuple[int, int], channels: int, out: np.ndarray) -> bool:
    """Decode one image into ``out`` (C, th, tw) uint8: scaled to cover ``size`` and centre-cropped, grey ("L") or
    RGB as ``channels`` says. Returns whether the picture is grey (a grey mode, or R = G = B)."""
    th, tw = size
    try:
        with open_regular(path) as f, Image.open(f) as im:
            if im.format == "JPEG":  # let the JPEG decoder scale down by 1/2..1/8 while decoding: far less work
                w0, h0 = im.size
                scale = max(tw / w0, th / h0)
                im.draft("L" if channels == 1 else im.mode, (max(1, round(w0 * scale)), max(1, round(h0 * scale))))
            im.load()
            if im.mode in _DEEP_GRAY_MODES:
                im = Image.fromarray(_deep_gray(im), "L")
            elif im.mode not in ("L", "RGB"):
                im = im.convert("L" if im.mode in _GRAY_MODES else "RGB")
            if channels == 1 and im.mode != "L":
                im = im.convert("L")
            if im.size != (tw, th):
                im = im.resize((tw, th), Image.Resampling.BILINEAR, box=cover_box(*im.size, tw, th))
            a = np.asarray(im)
    except _READ_ERRORS as e:
        raise _unreadable(path, root, e) from None
    if a.ndim == 2:
        out[:] = a  # grey on every channel
        return True
    out[:] = a.transpose(2, 0, 1)
    return bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())


def read_image(path, size: tuple[int, int], channels: int) -> np.ndarray:
    """One image file as a dataset of ``size`` (H, W) and ``channels`` (1 or 3) would hold it: (C, H, W) uint8,
    by the folder loader's own rules (scaled to cover, centre-cropped, grey or RGB). Raises DatasetError naming
    the file."""
    path = Path(path)
    if not _is_image(path):
        what = "not a file" if not path.is_file() else f"not an image file ({', '.join(IMAGE_SUFFIXES)})"
        raise fail(path.name, what)
    out = np.empty((channels, *size), np.uint8)
    _decode(path, path.parent, size, channels, out)
    return out


DECODE_BYTES_PER_PIXEL = 8  # a decoded picture (up to 4 bytes a pixel) and its converted or resized copy


def _decode_workers(heads, files, root: Path) -> int:
    """Decoding threads such that the pictures being decoded at once stay within a quarter of the memory budget; the
    largest picture alone beyond the budget is refused before any pixel is decoded."""
    i = max(range(len(heads)), key=lambda k: heads[k][0][0] * heads[k][0][1])
    (h, w), _mode = heads[i]
    need = h * w * DECODE_BYTES_PER_PIXEL
    budget = budget_bytes()
    if need > budget:
        raise fail(
            _rel(files[i], root),
            f"a {w:,}x{h:,} picture needs {fmt_bytes(need)} to decode, more than {budget_text(budget)}",
        )
    return max(1, min(_workers(), budget // 4 // max(need, 1)))


def _parallel(work, n: int, progress: LoadProgress, text: str, workers: int | None = None) -> list:
    """Run ``work(start, stop)`` over [0, n) in chunks on a thread pool, in order; results per chunk. The first
    error (in file order) is raised; a cancel stops the pool within about one chunk per thread."""
    starts = range(0, n, _CHUNK)
    results = []
    pool = ThreadPoolExecutor(max_workers=workers or _workers(), thread_name_prefix="image-decode")
    try:
        futures = [pool.submit(work, s, min(s + _CHUNK, n)) for s in starts]
        for s, f in zip(starts, futures):
            while True:
                try:
                    results.append(f.result(timeout=0.1))
                    break
                except FuturesTimeout:
                    progress.check()
            progress.update(min(s + _CHUNK, n), n, text)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def load_image_folder(
    path, resolution: int | None = None, channels: int | None = None, progress: LoadProgress | None = None
) -> Dataset:
    """Load a folder of images (see the module docstring for the layouts). ``resolution`` (a side in pixels) makes
    every image that square size; ``channels`` (1 or 3) forces grey or RGB; ``progress`` reports and cancels."""
    resolution = check_resolution(resolution)
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    progress = progress or LoadProgress()
    root = Path(path)
    if not root.is_dir():
        raise fail(root, "not a folder")
    subs = {p.name.lower(): p for p in _visible(root) if p.is_dir()}
    parts = [subs["train"], subs["test"]] if "train" in subs and "test" in subs else [root]
    skipped = [0]
    scans = [_scan(p, root, skipped) for p in parts]
    for part, (files, _) in zip(parts, scans):
        if not files:
            raise fail(part, f"no images ({', '.join(IMAGE_SUFFIXES)}) found")
    labelled = all(classes is not None for _, classes in scans)
    names = sorted({c for _, classes in scans for c in classes}) if labelled else None
    index = {c: i for i, c in enumerate(names or ())}
    files = [f for fs, _ in scans for f in fs]
    n = len(files)

    def headers(a, b):
        return [_header(f, root) for f in files[a:b]]

    heads = [h for chunk in _parallel(headers, n, progress, "Reading image sizes") for h in chunk]
    sizes = Counter(size for size, _ in heads)
    th, tw = target_size(sizes, resolution)
    grey_modes = _GRAY_MODES | _DEEP_GRAY_MODES
    c = channels or (1 if all(mode in grey_modes for _, mode in heads) else 3)
    check_budget(root, n, c * th * tw)  # before a pixel is decoded: the sizes are known from the headers
    workers = _decode_workers(heads, files, root)
    x = np.empty((n, c, th, tw), np.uint8)  # the one allocation for the pixels of every split

    def decode(a, b):
        return [_decode(files[i], root, (th, tw), c, x[i]) for i in range(a, b)]

    grey = all(g for chunk in _parallel(decode, n, progress, "Decoding images", workers) for g in chunk)
    if c == 3 and channels is None and grey:
        x = np.ascontiguousarray(x[:, :1])  # every picture is grey after all (e.g. palette GIFs of grey)
        c = 1
    what = "grey" if c == 1 else "RGB"
    count = f"{len(sizes):,} sizes" if len(sizes) > 1 else "one size"
    note = f"{n:,} images of {count} → {th}×{tw} {what}"
    if skipped[0]:
        note += f"; {skipped[0]:,} skipped (named like images but not regular files)"
    ys = [np.array([index[k] for k in classes], np.int64) if labelled else None for _, classes in scans]
    if len(scans) == 2:
        n0 = len(scans[0][0])
        x_train, x_test = x[:n0], x[n0:]
        return replace(make_dataset(root, root.resolve().name, x_train, ys[0], x_test, ys[1], names), note=note)
    return replace(make_dataset(root, root.resolve().name, x, ys[0], None, None, names), note=note)
