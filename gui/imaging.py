"""Numpy images (n, C, H, W) float in [0, 1] -> QImage, and PNG export (the uint8 and mosaic rules are
engine/inspect/frames.py's, which the GIF and PNG exports of traversals share). Pixels only, no model math."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

from engine.files import atomic_write
from engine.inspect.frames import mosaic, to_uint8  # noqa: F401 - the pixel rules, kept once in the engine


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
