"""The bounds of every setting, in one table. engine/config.py enforces them; the CLI's help, the window's fields
and the README's "Limits" table state them from here (tests/engine/test_limits.py holds the README to it).

Combinations (memory, an image size against the architecture) are checked against the dataset before a run
starts: engine/memory.py and engine/preflight.check_run."""

from __future__ import annotations

# name: (kind, lo, hi, lo_open). A setting must be a ``kind`` (int: a whole number; float: a finite real) in
# [lo, hi], or (lo, hi] when lo_open.
MODEL_RANGES = {
    "latent_dim": (int, 1, 1024, False),
    "hidden": (int, 8, 65_536, False),
    "n_classes": (int, 0, 65_536, False),  # 0: not conditional; 1 is refused apart (engine/config.py)
}
MAX_CHANNELS, MAX_SIDE = 4, 16_384  # an image's channels and sides
TRAIN_RANGES = {
    "epochs": (int, 1, 100_000, False),
    "batch_size": (int, 1, 65_536, False),
    "lr": (float, 0.0, 10.0, True),
    "beta": (float, 0.0, 1000.0, False),
    "warmup_epochs": (float, 0.0, 100_000.0, False),
    "free_bits": (float, 0.0, 100.0, False),
    "seed": (int, 0, 2**31 - 1, False),
    "threads": (int, 0, 4096, False),  # 0 = chosen while training (engine/threads.py)
    "iwae_k": (int, 1, 100_000, False),
    "iwae_examples": (int, 1, 1_000_000, False),
    "eval_examples": (int, 1, 10_000_000, False),
    "latent_examples": (int, 1, 1_000_000, False),
    "mi_samples": (int, 1, 1_000_000, False),
    "metrics_hz": (float, 0.0, 1e9, True),
    "snapshot_interval_s": (float, 0.0, 1e9, False),
}
RANGES = {**MODEL_RANGES, **TRAIN_RANGES}
MAX_COUNT = 10**12  # the largest step, epoch or batch counter a checkpoint may hold

_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def number_text(v) -> str:
    """A bound as the README writes it: 1,024; 2³¹−1; 10⁶; 0.5."""
    if float(v) == int(v):
        n = int(v)
        for e in range(6, 64):
            if n == 10**e:
                return f"10{str(e).translate(_SUPERSCRIPT)}"
            if n == 2**e - 1 and e >= 20:
                return f"2{str(e).translate(_SUPERSCRIPT)}−1"
        return f"{n:,}"
    return f"{v:g}"


def range_text(name: str) -> str:
    """The bound of setting ``name``: '1–1,024', or '(0, 10]' for an open lower end."""
    _, lo, hi, lo_open = RANGES[name]
    if lo_open:
        return f"({number_text(lo)}, {number_text(hi)}]"
    return f"{number_text(lo)}–{number_text(hi)}"


def bounds(name: str) -> tuple[float, float]:
    """(lo, hi) of setting ``name``."""
    _, lo, hi, _ = RANGES[name]
    return lo, hi
