"""Where the training images live during a run, and how a batch reaches the device without a host sync.

- CPU: the dataset's own array, zero copy; a batch is an index into it.
- GPU, when the stored bytes (uint8) fit in ``DEVICE_SHARE`` of the memory free on the device at the start: copied
  there once; batches are drawn by indexing on the device with an index that lives there too, so a step never
  waits for the host.
- GPU, when they do not fit: they stay in host memory, pinned; each batch is gathered on the host into one of two
  pinned staging buffers and copied with ``non_blocking=True``, so the copy overlaps the step before it. The host
  waits only for the copy out of the same buffer two batches back (a CUDA event), never for a step.

The choice and its reason are reported when the run starts (engine/messages.py RunStarted.data_placement)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .batches import to_float

DEVICE_SHARE = 0.5  # the dataset may take this share of the device's free memory; the rest is for the model,
# the optimizer, activations and evaluation


@dataclass(frozen=True)
class Placement:
    on_device: bool  # the images are copied to the training device once (always true on the CPU)
    pinned: bool  # host-resident images in page-locked memory (asynchronous copies)
    reason: str  # one line for the status bar and the CLI


def free_memory(device: torch.device) -> int | None:
    """Bytes free on a CUDA device now; None where torch cannot tell (the CPU, MPS)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return None


def choose_placement(nbytes: int, device: torch.device, free_bytes: int | None, can_pin: bool = True) -> Placement:
    """Device-resident when the images fit in DEVICE_SHARE of ``free_bytes``; else host memory, pinned if possible."""
    size = _fmt_bytes(nbytes)
    if device.type == "cpu":
        return Placement(True, False, f"images used in place in host memory ({size})")
    if free_bytes is None or nbytes <= DEVICE_SHARE * free_bytes:
        return Placement(True, False, f"images on {device} ({size})")
    where = "pinned host memory, copied asynchronously" if can_pin else "host memory"
    return Placement(
        False,
        can_pin,
        f"images kept in {where}: {size} is more than {DEVICE_SHARE:.0%} of the "
        f"{_fmt_bytes(free_bytes)} free on {device}",
    )


def can_pin_memory() -> bool:
    return torch.cuda.is_available()


class TrainingImages:
    """The training images of a run: ``batch(idx)`` returns float32 (B, C, H, W) on the device for the indices
    ``idx``, which must live on ``index_device`` (the training device when the images are there, else the CPU)."""

    def __init__(self, x: np.ndarray, device: torch.device, placement: Placement | None = None):
        self.device = device
        self.placement = placement or choose_placement(x.nbytes, device, free_memory(device), can_pin_memory())
        host = torch.from_numpy(x)
        if self.placement.on_device:
            self.x = host.to(device)  # the CPU: the same memory
            self.index_device = device
            return
        self.x = host.pin_memory() if self.placement.pinned else host
        self.index_device = torch.device("cpu")
        self._staging: list[torch.Tensor | None] = [None, None]
        self._copied: list = [None, None]  # CUDA events: the copy out of each staging buffer has finished
        self._turn = 0

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        if self.placement.on_device:
            return to_float(self.x[idx])
        k, self._turn = self._turn, 1 - self._turn
        if self._copied[k] is not None:
            self._copied[k].synchronize()  # the copy from this buffer two batches back: long done, normally
        buf = self._staging[k]
        if buf is None or len(buf) < len(idx):
            buf = torch.empty((len(idx), *self.x.shape[1:]), dtype=self.x.dtype, pin_memory=self.placement.pinned)
            self._staging[k] = buf
        part = buf[: len(idx)]
        torch.index_select(self.x, 0, idx, out=part)
        on_device = part.to(self.device, non_blocking=self.placement.pinned)
        if self.device.type == "cuda":
            event = torch.cuda.Event()
            event.record()
            self._copied[k] = event
        return to_float(on_device)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"
