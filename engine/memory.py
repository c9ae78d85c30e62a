"""Memory budgets and estimates, checked before anything large is allocated.

One budget for the whole program: ``budget_bytes()`` is a fraction of the memory this process may still use
(the smallest of ``MemAvailable``, the room under the cgroup limit of a container, v1 or v2, nested or not, and
the room under RLIMIT_AS). Loaders bound every decompression and every
array they build by it; a training run estimates its data, model, optimizer and largest activation against it
before building anything. A refusal is one sentence naming the setting or the file and the figures."""

from __future__ import annotations

import os
from pathlib import Path

BUDGET_FRACTION = 0.5  # of the available memory: room is left for the window, torch and copies we cannot see
GIB = 1 << 30


# Where the limits are read; tests point these at fake files.
MEMINFO = Path("/proc/meminfo")
PROC_CGROUP = Path("/proc/self/cgroup")
PROC_STATUS = Path("/proc/self/status")
CGROUP_ROOT = Path("/sys/fs/cgroup")
_NO_LIMIT = 1 << 60  # cgroup v1 writes "no limit" as a huge number (9223372036854771712 on 4 kB pages)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        v = int(text)
    except ValueError:
        return None
    return None if v >= _NO_LIMIT else v


def meminfo_available(meminfo: Path | None = None) -> int | None:
    """The machine's ``MemAvailable`` in bytes, or None where /proc/meminfo cannot say."""
    try:
        with open(meminfo or MEMINFO, "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _own_cgroups(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """(v2 path, v1 memory-controller path) of this process's cgroups, from /proc/self/cgroup lines
    ``0::/path`` (v2) and ``4:memory:/path`` (v1)."""
    v2 = v1 = None
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _hid, controllers, path = parts
        if controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v2, v1


def _levels(mount: Path, path: str | None) -> list[Path]:
    """The cgroup folder of ``path`` under ``mount`` and each parent up to the mount, innermost first. Inside a
    container the path seen in /proc may not exist under the mount (the container's root is the mount): then the
    mount alone."""
    if path is None:
        return []
    rel = [p for p in path.strip("/").split("/") if p and p not in (".", "..")]
    levels = [mount.joinpath(*rel[:i]) for i in range(len(rel), -1, -1)]
    present = [p for p in levels if p.is_dir()]
    return present if present and present[0] == levels[0] else [mount]


def cgroup_room(proc_cgroup: Path | None = None, root: Path | None = None) -> int | None:
    """Bytes left under the tightest cgroup memory limit that applies to this process, or None when none does.

    cgroup v2: ``memory.max`` minus ``memory.current`` of the process's cgroup (the path in /proc/self/cgroup) and
    of every parent, since a parent's limit holds its children too. cgroup v1: ``memory.limit_in_bytes`` minus
    ``memory.usage_in_bytes`` of the memory controller's cgroup and its parents."""
    proc_cgroup = proc_cgroup or PROC_CGROUP
    root = root or CGROUP_ROOT
    v2, v1 = _own_cgroups(proc_cgroup)
    rooms = []
    for folder in _levels(root, v2) if (root / "cgroup.controllers").exists() else []:
        limit = _read_int(folder / "memory.max")
        if limit is not None:
            rooms.append(limit - (_read_int(folder / "memory.current") or 0))
    mount = next((root / d for d in ("memory", "memory,cpu", "cpu,memory") if (root / d).is_dir()), None)
    for folder in _levels(mount, v1) if mount is not None else []:
        limit = _read_int(folder / "memory.limit_in_bytes")
        if limit is not None:
            rooms.append(limit - (_read_int(folder / "memory.usage_in_bytes") or 0))
    return max(0, min(rooms)) if rooms else None


def address_space_room(proc_status: Path | None = None) -> int | None:
    """Bytes of address space left under RLIMIT_AS (``ulimit -v``), or None when it is unlimited."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    used = 0
    try:
        with open(proc_status or PROC_STATUS, "rb") as f:
            for line in f:
                if line.startswith(b"VmSize:"):
                    used = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    return max(0, soft - used)


def available_bytes() -> int:
    """Memory this process may still allocate: the smallest of the machine's MemAvailable, the room under its
    cgroup's limit (v1 or v2, nested) and the room under RLIMIT_AS."""
    found = [v for v in (meminfo_available(), cgroup_room(), address_space_room()) if v is not None]
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
