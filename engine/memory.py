"""Memory budgets and estimates, checked before anything large is allocated.

One budget for the whole program: ``budget_bytes()`` is a fraction of the memory this process may still use
(``MemAvailable``, or the cgroup limit of a container when lower). Loaders bound every decompression and every
array they build by it; a training run estimates its data, model, optimizer and largest activation against it
before building anything. A refusal is one sentence naming the setting or the file and the figures."""

from __future__ import annotations

import os
from pathlib import Path

BUDGET_FRACTION = 0.5  # of the available memory: room is left for the window, torch and copies we cannot see
GIB = 1 << 30


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup v2 memory limit, or None when there is no limit."""
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((base / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def available_bytes() -> int:
    """Memory this process may still allocate: MemAvailable, lowered to the container's limit if there is one."""
    found = [v for v in (_meminfo_available(), _cgroup_room()) if v is not None]
    if not found:
        try:
            found = [os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")]
        except (OSError, ValueError, AttributeError):
            found = [8 * GIB]
    return min(found)


def budget_bytes() -> int:
    """The most any one dataset or run may claim: ``BUDGET_FRACTION`` of the available memory."""
    return int(available_bytes() * BUDGET_FRACTION)


def fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def budget_text(budget: int | None = None) -> str:
    """How the cap is stated in messages: ``"the 11.0 GB cap (half the memory available)"``."""
    budget = budget_bytes() if budget is None else budget
    return f"the {fmt_bytes(budget)} cap (half the memory available)"


def dataset_bytes(n_images: int, n_values: int, itemsize: int = 1) -> int:
    """What a dataset of ``n_images`` images of ``n_values`` pixel values each takes while it is stored: the values
    as read (``itemsize`` bytes each), their train/test split copy, and the stored pixels (uint8, or float32 for
    float values off the 1/255 grid), alive together at the peak."""
    stored = 1 if itemsize == 1 else 4
    return int(n_images) * int(n_values) * (2 * int(itemsize) + stored)
