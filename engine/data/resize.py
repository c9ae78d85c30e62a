"""Bringing images to one size: scale to cover the target, then centre-crop (torchvision's ``Resize`` of the shorter
side followed by ``CenterCrop``, generalised to a non-square target); and the choice of that target for a folder."""

from __future__ import annotations

from collections import Counter

import numpy as np

RESOLUTIONS = (28, 32, 64, 128)  # the square sizes a user picks from
DEFAULT_MAX_SIDE = 64  # a folder whose most common size is larger is brought to 64×64
MIN_SIDE, MAX_SIDE = 4, 512  # resolutions accepted from the CLI or a caller


def check_resolution(resolution: int | None) -> int | None:
    if resolution is not None and not (MIN_SIDE <= int(resolution) <= MAX_SIDE):
        raise ValueError(f"resolution must be between {MIN_SIDE} and {MAX_SIDE} pixels, got {resolution}")
    return None if resolution is None else int(resolution)


def target_size(sizes: Counter, resolution: int | None) -> tuple[int, int]:
    """(height, width) the images become: ``resolution`` square when chosen; otherwise the most common (h, w) when
    its larger side is at most 64 (ties: the size seen first), else 64×64."""
    if resolution is not None:
        return resolution, resolution
    (h, w), _ = sizes.most_common(1)[0]
    return (h, w) if max(h, w) <= DEFAULT_MAX_SIDE else (DEFAULT_MAX_SIDE, DEFAULT_MAX_SIDE)


def cover_box(w: int, h: int, tw: int, th: int) -> tuple[float, float, float, float]:
    """The source region (left, top, right, bottom) that scales onto a (tw, th) target: the largest centred region
    of the target's aspect ratio, i.e. the shorter side scaled to fit and the rest cropped evenly."""
    scale = max(tw / w, th / h)
    bw, bh = tw / scale, th / scale
    left, top = max(0.0, (w - bw) / 2), max(0.0, (h - bh) / 2)  # never below 0 by rounding
    return left, top, min(float(w), left + bw), min(float(h), top + bh)


def resize_array(x: np.ndarray, th: int, tw: int, chunk: int = 256) -> np.ndarray:
    """(N, C, H, W) uint8 or float32 images scaled to cover (th, tw) and centre-cropped, same dtype; antialiased
    bilinear, in chunks so the float temporaries stay small. For formats that arrive as arrays (IDX, npz, CSV)."""
    n, c, h, w = x.shape
    if (h, w) == (th, tw):
        return x
    import torch  # here: reading a dataset at its own size needs no torch (the window reads one while torch loads)
    import torch.nn.functional as F

    scale = max(th / h, tw / w)
    sh, sw = max(th, round(h * scale)), max(tw, round(w * scale))
    top, left = (sh - th) // 2, (sw - tw) // 2
    out = np.empty((n, c, th, tw), x.dtype)
    for s in range(0, n, chunk):
        t = torch.from_numpy(np.ascontiguousarray(x[s : s + chunk])).to(torch.float32)
        y = F.interpolate(t, size=(sh, sw), mode="bilinear", antialias=scale < 1, align_corners=False)
        y = y[:, :, top : top + th, left : left + tw]
        out[s : s + chunk] = (y.round().clamp(0, 255) if x.dtype == np.uint8 else y.clamp(0, 1)).numpy()
    return out


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """(N, C, H, W) with C ∈ {1, 3} as ``channels`` channels: grey repeated on RGB, or RGB to grey with the ITU-R
    601 luma weights (pillow's convert("L"))."""
    c = x.shape[1]
    if c == channels:
        return x
    if channels == 3:
        return np.ascontiguousarray(np.repeat(x, 3, axis=1))
    luma = np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), x.astype(np.float32), axes=([0], [1]))
    luma = luma[:, None]  # (N, 1, H, W)
    return np.rint(luma).clip(0, 255).astype(np.uint8) if x.dtype == np.uint8 else luma.astype(np.float32)
