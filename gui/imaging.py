"""Numpy images (n, C, H, W) float in [0, 1] -> uint8 mosaics -> QImage, and PNG export. Pixels only, no model math."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

from engine.files import atomic_write


def to_uint8(img: np.ndarray) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W) or (H, W, 3) uint8."""
    a = np.asarray(img, dtype=np.float32)
    a = np.clip(np.nan_to_num(a, nan=0.0), 0.0, 1.0)
    a = (a * 255.0 + 0.5).astype(np.uint8)
    if a.shape[0] == 1:
        return a[0]
    return np.ascontiguousarray(a[:3].transpose(1, 2, 0))


def mosaic(images: np.ndarray, cols: int, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile (n, C, H, W) into one (C, rows·(H+pad)−pad, cols·(W+pad)−pad) image, row-major."""
    images = np.asarray(images, dtype=np.float32)
    n, c, h, w = images.shape
    cols = max(1, min(cols, n)) if n else max(1, cols)
    rows = max(1, -(-n // cols))
    out = np.full((c, rows * (h + pad) - pad, cols * (w + pad) - pad), pad_value, np.float32)
    for i in range(n):
        r, k = divmod(i, cols)
        out[:, r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = images[i]
    return out


def to_qimage(img: np.ndarray) -> QImage:
    """(C, H, W) float in [0, 1] -> a QImage that owns its pixels (grey for C = 1, RGB otherwise)."""
    a = to_uint8(img)
    if a.ndim == 2:
        h, w = a.shape
        q = QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8)
    else:
        h, w, _ = a.shape
        q = QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return q.copy()  # detach from the numpy buffer


def save_png(path: str | Path, img: np.ndarray) -> None:
    """Write (C, H, W) in [0, 1] as a PNG at its native resolution, atomically."""
    from PIL import Image

    pil = Image.fromarray(to_uint8(img))
    atomic_write(path, lambda f: pil.save(f, format="PNG"))
