"""Frames (a traversal grid, an interpolation path) written as a PNG grid or an animated GIF with pillow, atomically."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..files import atomic_write


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


def grid_image(images: np.ndarray, gap: int = 2) -> np.ndarray:
    """(rows, cols, C, H, W) in [0, 1] -> one (C, H', W') picture with ``gap`` white pixels between tiles."""
    rows, cols, c, h, w = images.shape
    return mosaic(np.asarray(images).reshape(rows * cols, c, h, w), cols, gap)


def _pil(img: np.ndarray) -> Image.Image:  # (C, H, W) in [0, 1]
    return Image.fromarray(to_uint8(img))


def png_bytes(images: np.ndarray, scale: int = 1) -> bytes:
    """A (rows, cols, C, H, W) grid as PNG bytes, each pixel ``scale``×``scale``."""
    im = _pil(grid_image(images))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def gif_bytes(frames: np.ndarray, ms_per_frame: int = 120, scale: int = 1, bounce: bool = True) -> bytes:
    """Frames (n, ..., C, H, W) in [0, 1] as an endlessly looping GIF; each frame may itself be a grid
    (n, rows, cols, C, H, W). ``bounce``: play forward then back, so the loop has no jump."""
    frames = np.asarray(frames)
    if frames.ndim == 4:
        frames = frames[:, None, None]
    pics = [_pil(grid_image(f)) for f in frames]
    if scale > 1:
        pics = [p.resize((p.width * scale, p.height * scale), Image.Resampling.NEAREST) for p in pics]
    if bounce and len(pics) > 2:
        pics = pics + pics[-2:0:-1]
    buf = io.BytesIO()
    pics[0].save(buf, "GIF", save_all=True, append_images=pics[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()


def write_png(path, images: np.ndarray, scale: int = 1) -> None:
    data = png_bytes(images, scale)
    atomic_write(path, lambda f: f.write(data))


def write_gif(path, frames: np.ndarray, ms_per_frame: int = 120, scale: int = 1) -> None:
    data = gif_bytes(frames, ms_per_frame, scale)
    atomic_write(path, lambda f: f.write(data))
