"""Frames (a traversal grid, an interpolation path) written as a PNG grid or an animated GIF with pillow, atomically."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..files import atomic_write


def to_uint8(images: np.ndarray) -> np.ndarray:
    """(..., C, H, W) floats in [0, 1] -> (..., H, W, C) uint8."""
    a = np.clip(np.rint(np.asarray(images, np.float64) * 255.0), 0, 255).astype(np.uint8)
    return np.moveaxis(a, -3, -1)


def _pil(a: np.ndarray) -> Image.Image:  # (H, W, C) uint8
    return Image.fromarray(a[..., 0], "L") if a.shape[-1] == 1 else Image.fromarray(a[..., :3], "RGB")


def grid_image(images: np.ndarray, gap: int = 2) -> np.ndarray:
    """(rows, cols, C, H, W) in [0, 1] -> one (H', W', C) uint8 picture with ``gap`` white pixels between tiles."""
    rows, cols, c, h, w = images.shape
    tiles = to_uint8(images)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, c), 255, np.uint8)
    for r in range(rows):
        for k in range(cols):
            out[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = tiles[r, k]
    return out


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
