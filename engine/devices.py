"""Which device a run trains on, at which precision, with which optimizer: CUDA, then MPS, then the CPU."""

from __future__ import annotations

import torch

from .config import ConfigError


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when available, then MPS, then CPU; a forced device that is missing raises ConfigError."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if has_mps else torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for, but this torch build sees no CUDA GPU")
    if requested.startswith("cuda:") and int(requested[5:]) >= (n := torch.cuda.device_count()):
        raise ConfigError(f"device {requested!r} asked for, but this machine has {n} CUDA GPU{'s' * (n != 1)}")
    if requested == "mps" and not has_mps:
        raise ConfigError("device 'mps' asked for, but Apple MPS is not available here")
    return torch.device(requested)


def available_devices() -> list[tuple[str, str]]:
    """(value, label) pairs of the devices this machine really has, best first, for a settings menu."""
    out = [("auto", "Auto (best available)")]
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        out.append((f"cuda:{i}", f"CUDA {i}: {torch.cuda.get_device_name(i)}"))
    mps = getattr(torch.backends, "mps", None)
    if mps and mps.is_available():
        out.append(("mps", "Apple MPS"))
    out.append(("cpu", "CPU"))
    return out


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "fp32":
        return None
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA GPU; use bf16 on the CPU")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def make_optimizer(model: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam; the fused kernel where torch has one for the device (CPU and CUDA), else the foreach one."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)
