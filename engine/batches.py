"""Stored pixels to model input: datasets live as uint8 (N, C, H, W) on the device and each batch becomes float
there, so the host holds a quarter of the bytes and a GPU receives a quarter of them."""

from __future__ import annotations

import torch

from .data.dataset import PIXEL_SCALE


def to_float(x: torch.Tensor) -> torch.Tensor:
    """A batch as float32 in [0, 1]: uint8 divided by 255 on x's device (on the CPU bit-identical to
    ``engine.data.dataset.as_float01``), a float32 batch unchanged (no copy)."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(PIXEL_SCALE)
    return x if x.dtype == torch.float32 else x.to(torch.float32)
