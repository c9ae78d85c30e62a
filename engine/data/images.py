"""A folder of image files (PNG, JPEG, BMP, GIF; read with pillow).

Layouts: ``root/<class>/*.png`` (labels from the sorted sub-folder names), ``root/*.png`` (unlabelled), and either
of these inside ``root/train`` and ``root/test`` (split kept). Hidden files and folders are skipped. All images must
share one size; the result is grayscale (C=1) if every image is grayscale (a gray mode, or R = G = B), else RGB
(C=3, alpha dropped). GIFs give their first frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ._common import fail, make_dataset
from .dataset import Dataset

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


def _scan(folder: Path, root: Path) -> tuple[list[Path], list[str] | None]:
    """(image files, class of each file or None if the folder is flat)."""
    entries = _visible(folder)
    loose = [p for p in entries if _is_image(p)]
    classes = {p.name: [q for q in _visible(p) if _is_image(q)] for p in entries if p.is_dir()}
    classes = {c: files for c, files in classes.items() if files}
    if loose and classes:
        raise fail(_rel(folder, root), "mixes loose images with class sub-folders; keep one layout")
    if not classes:
        return loose, None
    files = [f for c in sorted(classes) for f in classes[c]]
    return files, [c for c in sorted(classes) for _ in classes[c]]


def _read(path: Path, root: Path) -> np.ndarray:
    """One image as uint8 (H, W) if grayscale (by mode or by content), else (H, W, 3); DatasetError if corrupt."""
    try:
        with Image.open(path) as im:
            im.load()
            a = _deep_gray(im) if im.mode in _DEEP_GRAY_MODES else np.asarray(
                im.convert("L" if im.mode in _GRAY_MODES else "RGB"))
    except UnidentifiedImageError:
        raise fail(_rel(path, root), "corrupt or unreadable image (not a format pillow recognises)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise fail(_rel(path, root), f"corrupt or unreadable image ({e})") from None
    if a.ndim == 3 and (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all():
        return a[..., 0].copy()  # colour mode, gray content (e.g. a palette GIF or an RGB JPEG of a gray scan)
    return a


def load_image_folder(path) -> Dataset:
    """Load a folder of images (see the module docstring for the layouts)."""
    root = Path(path)
    if not root.is_dir():
        raise fail(root, "not a folder")
    subs = {p.name.lower(): p for p in _visible(root) if p.is_dir()}
    parts = [subs["train"], subs["test"]] if "train" in subs and "test" in subs else [root]
    scans = [_scan(p, root) for p in parts]
    for part, (files, _) in zip(parts, scans):
        if not files:
            raise fail(part, f"no images ({', '.join(IMAGE_SUFFIXES)}) found")
    labelled = all(classes is not None for _, classes in scans)
    names = sorted({c for _, classes in scans for c in classes}) if labelled else None
    index = {c: i for i, c in enumerate(names or ())}

    splits, first = [], None
    for files, classes in scans:
        imgs = []
        for f in files:
            a = _read(f, root)
            if first is None:
                first = (f, a.shape[:2])
            elif a.shape[:2] != first[1]:
                (h, w), (h0, w0) = a.shape[:2], first[1]
                what = f"image is {w}x{h} but {first[0].name} is {w0}x{h0}; all images must share one size"
                raise fail(_rel(f, root), what)
            imgs.append(a)
        splits.append((imgs, np.array([index[c] for c in classes], np.int64) if labelled else None))
    rgb = any(a.ndim == 3 for imgs, _ in splits for a in imgs)
    stacked = [(_stack(imgs, rgb), y) for imgs, y in splits]
    del splits  # the per-image arrays: only the stacks are kept
    (x_train, y_train), (x_test, y_test) = stacked[0], stacked[1] if len(stacked) == 2 else (None, None)
    return make_dataset(root, root.resolve().name, x_train, y_train, x_test, y_test, names)


def _stack(imgs: list[np.ndarray], rgb: bool) -> np.ndarray:
    """(N, C, H, W) uint8 from (H, W) gray and (H, W, 3) colour images; gray is repeated on 3 channels if ``rgb``."""
    if not rgb:
        return np.stack(imgs)[:, None]
    return np.stack([a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in imgs]).transpose(0, 3, 1, 2)
