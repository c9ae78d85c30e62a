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


def training_bytes(model_cfg, train_cfg, n_train: int, n_test: int, device_data: int = 0) -> dict[str, int]:
    """Estimated bytes of one training run, by part: ``device_data``, the bytes of the dataset the run copies to
    its device (0 when it uses the host arrays in place; engine/placement.py decides), the parameters with their gradients,
    Adam moments and the trainer's good copy, the activations of a training batch, and those of the largest
    evaluation block (a 1000-example ELBO block or an IWAE chunk). Parameters are counted on torch's meta device, so nothing is allocated."""
    from .model import VAE  # local: the estimate is used before torch builds anything real
    import torch

    with torch.device("meta"):
        n_params = sum(p.numel() for p in VAE(model_cfg).parameters())
    pixels = model_cfg.n_pixels
    c, h, w = model_cfg.image_shape
    data = int(device_data)
    # weights, gradients, two Adam moments, the good copy (weights + moments): 7 float32 copies
    model = 7 * 4 * n_params
    # per example in flight while training: input, decoder output, the likelihood's temporaries and their
    # gradients (~6 images), conv feature maps (32 channels at H/2×W/2, 64 at H/4×W/4, forward and backward)
    # and the hidden layers; evaluating (no gradients) keeps about half of that
    conv = (32 * (h // 2 + 1) * (w // 2 + 1) + 64 * (h // 4 + 1) * (w // 4 + 1)) * 2 if model_cfg.arch == "conv" else 0
    train_example = 4 * (6 * pixels + conv + 4 * model_cfg.hidden + 6 * model_cfg.latent_dim)
    eval_example = train_example // 2
    from .chunking import IWAE_CHUNK_VALUES

    b = max(1, min(100, n_test, train_cfg.iwae_examples))
    iwae_rows = min(max(1, IWAE_CHUNK_VALUES // (b * pixels)), train_cfg.iwae_k) * b
    train_act = train_example * min(train_cfg.batch_size, n_train)
    eval_act = eval_example * max(min(1000, n_test, train_cfg.eval_examples), iwae_rows)
    return {"data": data, "model": model, "training": train_act, "evaluation": eval_act}


GPU_FRACTION = 0.9  # of a CUDA device's free memory a run may plan to use


def device_budget(device) -> tuple[int, str] | None:
    """(bytes, how they are described) for a CUDA device: a fraction of its free memory; None for the host."""
    if getattr(device, "type", None) != "cuda":
        return None
    import torch

    free, _total = torch.cuda.mem_get_info(device)
    return int(free * GPU_FRACTION), f"the {fmt_bytes(free * GPU_FRACTION)} free on {device}"


def check_training_fits(
    model_cfg, train_cfg, n_train: int, n_test: int, device_data: int = 0, budget: int | None = None, device=None
) -> None:
    """ConfigError naming the largest part and its setting when the run's estimate exceeds the budget."""
    from .config import ConfigError

    parts = training_bytes(model_cfg, train_cfg, n_train, n_test, device_data)
    total = sum(parts.values())
    gpu = device_budget(device) if budget is None else None
    if gpu is not None:
        budget, cap = gpu
    else:
        budget = budget_bytes() if budget is None else budget
        cap = budget_text(budget)
    if total <= budget:
        return
    part = max(parts, key=parts.get)
    images = "x".join(map(str, model_cfg.image_shape))
    why = {
        "data": f"the dataset on the device ({n_train + n_test:,} images of {images})",
        "model": f"the model (hidden {model_cfg.hidden}, latent dim {model_cfg.latent_dim}, images {images}) "
        f"with its optimizer state",
        "training": f"the training activations (batch size {train_cfg.batch_size}, hidden {model_cfg.hidden}, "
        f"images {images})",
        "evaluation": f"the evaluation activations (IWAE K {train_cfg.iwae_k}, hidden {model_cfg.hidden}, "
        f"images {images})",
    }[part]
    raise ConfigError(
        f"this run needs about {fmt_bytes(total)} of memory, mostly {why}: more than {cap}; lower those settings"
    )
